//! TxnOffsetCommit (key 28), versions 0-6 (v5: Transactions V2, which adds the group's
//! `__consumer_offsets` partition to the transaction implicitly, without AddOffsetsToTxn;
//! v6 names topics by id, KIP-1319: codec in [`crate::protocol::v44`], an unknown id gets
//! UNKNOWN_TOPIC_ID).
//!
//! Offsets committed inside a transaction: written to `__consumer_offsets` as transactional
//! records and applied to the group only when the transaction commits (dropped on abort);
//! until then OffsetFetch with `require_stable` reports UNSTABLE_OFFSET_COMMIT for them.
//! v3+ carries the consumer's generation and member id, checked like OffsetCommit.
//!
//! Authorization: WRITE on the transactional id and READ on the group (each failing every
//! partition), then READ on each topic (its partitions TOPIC_AUTHORIZATION_FAILED; the others
//! are committed).

use bytes::Bytes;
use kafka_protocol::messages::txn_offset_commit_response::{TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic};
use kafka_protocol::messages::{ApiKey, TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::coordinator::codec::OffsetValue;
use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::log::now_ms;
use crate::broker::Broker;
use crate::protocol::{encode_body, v44, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::TxnOffsetCommit), min: 0, max: 6 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: TxnOffsetCommitRequest = if ctx.version >= 6 {
        let m = &ctx.broker.metadata;
        v44::decode_txn_offset_commit_v6(&body, &|id| m.topic_by_id(id).map(|t| t.name))?
    } else {
        ctx.decode(body)?
    };
    let broker = ctx.broker.clone();
    let version = ctx.version;
    // WRITE on the transactional id and READ on the group (each failing every partition),
    // then READ on each topic (TOPIC_AUTHORIZATION_FAILED for its partitions; the others go on).
    let authz = ctx.authz();
    let whole = if !authz.transactional_id(op::WRITE, req.transactional_id.0.as_str()) {
        Some(WireError::TransactionalIdAuthorizationFailed)
    } else if !authz.group(op::READ, req.group_id.0.as_str()) {
        Some(WireError::GroupAuthorizationFailed)
    } else {
        None
    };
    let mut readable = authz.names(op::READ, crate::security::acl::resource::TOPIC);
    let denied: std::collections::HashSet<String> = req.topics.iter().map(|t| t.name.0.to_string()).filter(|t| whole.is_none() && !readable.allows(t)).collect();
    if let Some(e) = whole {
        let topics = req
            .topics
            .iter()
            .map(|t| TxnOffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(t.partitions.iter().map(|p| TxnOffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(e.code())).collect()))
            .collect();
        return Ok(Reply::Now(encode(&broker, &TxnOffsetCommitResponse::default().with_topics(topics), version)?));
    }
    Ok(Reply::Later(Box::pin(async move {
        let now = now_ms();
        let mut offsets = Vec::new();
        let mut known = Vec::new();
        for t in &req.topics {
            let hidden = denied.contains(t.name.0.as_str());
            let exists = if hidden { None } else { broker.metadata.topic(t.name.0.as_str()) };
            for p in &t.partitions {
                let ok = hidden || exists.as_ref().is_some_and(|m| p.partition_index >= 0 && p.partition_index < m.partitions);
                known.push(ok);
                if ok && !hidden {
                    offsets.push((
                        t.name.0.to_string(),
                        p.partition_index,
                        OffsetValue {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default(),
                            commit_timestamp: now,
                        },
                    ));
                }
            }
        }
        let code = if known.iter().any(|k| !k) {
            None
        } else if offsets.is_empty() {
            Some(0)
        } else {
            let result = match broker.group_coordinator().await {
                Ok(groups) => {
                    // The transaction must hold the group's offsets partition: checked with the
                    // transaction's coordinator (KIP-890), which v5+ (Transactions V2) asks
                    // to add it.
                    let p = crate::coordinator::partition_for(req.group_id.0.as_str(), broker.config.groups.offsets_partitions);
                    let part = [(crate::coordinator::OFFSETS_TOPIC.to_string(), p)];
                    match broker.txn_add_or_verify(req.transactional_id.0.as_str(), req.producer_id.0, req.producer_epoch, &part, version >= 5).await {
                        // As Kafka's group coordinator normalizes it: the client finds its
                        // coordinator again and retries.
                        Err(code) if code == WireError::NotEnoughReplicas.code() => Err(WireError::CoordinatorNotAvailable.code()),
                        Err(code) => Err(code),
                        Ok(()) => {
                            let instance = req.group_instance_id.as_ref().map(|s| s.as_str());
                            match groups.txn_commit(req.group_id.0.as_str(), req.producer_id.0, req.producer_epoch, req.member_id.as_str(), instance, req.generation_id, offsets) {
                                Ok(Some(w)) => w.durable().await.map_err(|_| WireError::KafkaStorageError.code()),
                                Ok(None) => Ok(()),
                                Err(code) => Err(code),
                            }
                        }
                    }
                }
                Err(_) => Err(WireError::CoordinatorNotAvailable.code()),
            };
            Some(result.err().unwrap_or(0))
        };
        let mut known = known.into_iter();
        let topics = req
            .topics
            .iter()
            .map(|t| {
                TxnOffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let ok = known.next().unwrap_or(false);
                            let c = match code {
                                _ if denied.contains(t.name.0.as_str()) => WireError::TopicAuthorizationFailed.code(),
                                Some(c) => c,
                                None if ok => WireError::OperationNotAttempted.code(),
                                None => WireError::UnknownTopicOrPartition.code(),
                            };
                            TxnOffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(c)
                        })
                        .collect(),
                )
            })
            .collect();
        encode(&broker, &TxnOffsetCommitResponse::default().with_topics(topics), version)
    })))
}

fn encode(broker: &Broker, resp: &TxnOffsetCommitResponse, version: i16) -> Result<bytes::BytesMut, ProtocolError> {
    if version >= 6 {
        return Ok(v44::encode_txn_offset_commit_v6(resp, &|n| broker.metadata.topic(n).map(|t| t.id)));
    }
    encode_body(resp, version)
}
