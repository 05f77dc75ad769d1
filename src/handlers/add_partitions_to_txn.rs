//! AddPartitionsToTxn (key 24), versions 0-5.
//!
//! v0-3 (clients): one transaction, partitions registered with it before the producer writes
//! to them. v4+ batches several transactions (the broker-to-coordinator shape); `verify_only`
//! checks that each partition is already part of the producer's open transaction without
//! adding it. Unknown partitions get UNKNOWN_TOPIC_OR_PARTITION and the others
//! OPERATION_NOT_ATTEMPTED, as in Kafka; coordinator errors apply to every partition.
//!
//! Authorization (Kafka's `handleAddPartitionsToTxnRequest`): v0-3 need WRITE on the
//! transactional id (else every partition TRANSACTIONAL_ID_AUTHORIZATION_FAILED), then WRITE
//! on each topic; a topic it may not write, and any internal topic, is
//! TOPIC_AUTHORIZATION_FAILED and nothing is added (the others OPERATION_NOT_ATTEMPTED). v4+
//! is broker-to-broker: CLUSTER_ACTION on the cluster, else the top-level error
//! CLUSTER_AUTHORIZATION_FAILED.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey};

use crate::broker::Broker;
use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::AddPartitionsToTxn), min: 0, max: 5 };

/// `denied`: topics the producer may not write (v0-3), answered TOPIC_AUTHORIZATION_FAILED.
async fn add(broker: &Arc<Broker>, txn_id: &str, pid: i64, epoch: i16, verify_only: bool, topics: &[AddPartitionsToTxnTopic], denied: &HashSet<String>) -> Vec<AddPartitionsToTxnTopicResult> {
    let wanted: Vec<(String, i32)> = topics.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), *p))).collect();
    // The coordinator need not host a partition (in a cluster): the metadata says what exists.
    let refused: Vec<Option<WireError>> = wanted
        .iter()
        .map(|(t, p)| {
            if denied.contains(t) {
                Some(WireError::TopicAuthorizationFailed)
            } else if !broker.metadata.topic(t).is_some_and(|m| *p >= 0 && *p < m.partitions) {
                Some(WireError::UnknownTopicOrPartition)
            } else {
                None
            }
        })
        .collect();
    let codes: Vec<i16> = if refused.iter().any(Option::is_some) {
        refused.iter().map(|r| r.unwrap_or(WireError::OperationNotAttempted).code()).collect()
    } else {
        let result = match broker.txn_coordinator().await {
            Err(_) => Err(WireError::CoordinatorNotAvailable.code()),
            Ok(c) if verify_only => {
                let mut codes = Vec::with_capacity(wanted.len());
                for (t, p) in &wanted {
                    codes.push(c.verify_partition(txn_id, pid, epoch, t, *p).await.err().unwrap_or(0));
                }
                return results(topics, codes);
            }
            Ok(c) => c.add_partitions(txn_id, pid, epoch, &wanted).await,
        };
        let code = result.err().unwrap_or(0);
        vec![code; wanted.len()]
    };
    results(topics, codes)
}

fn results(topics: &[AddPartitionsToTxnTopic], codes: Vec<i16>) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut codes = codes.into_iter();
    topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default().with_name(t.name.clone()).with_results_by_partition(
                t.partitions
                    .iter()
                    .map(|p| AddPartitionsToTxnPartitionResult::default().with_partition_index(*p).with_partition_error_code(codes.next().unwrap_or(0)))
                    .collect(),
            )
        })
        .collect()
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: AddPartitionsToTxnRequest = ctx.decode(body)?;
    let broker = ctx.broker.clone();
    let version = ctx.version;
    let authz = ctx.authz();
    let mut denied = HashSet::new();
    if version <= 3 {
        if !authz.transactional_id(op::WRITE, req.v3_and_below_transactional_id.0.as_str()) {
            let codes = vec![WireError::TransactionalIdAuthorizationFailed.code(); req.v3_and_below_topics.iter().map(|t| t.partitions.len()).sum()];
            return ctx.reply(&AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results(&req.v3_and_below_topics, codes)));
        }
        let mut writable = authz.names(op::WRITE, crate::security::acl::resource::TOPIC);
        for t in &req.v3_and_below_topics {
            let name = t.name.0.as_str();
            // Internal topics are never added by a client, authorizer or not.
            if crate::metadata::is_internal_topic(name) || !writable.allows(name) {
                denied.insert(name.to_string());
            }
        }
    } else if !authz.cluster(op::CLUSTER_ACTION) {
        return ctx.reply(&AddPartitionsToTxnResponse::default().with_error_code(WireError::ClusterAuthorizationFailed.code()));
    }
    Ok(Reply::Later(Box::pin(async move {
        let mut resp = AddPartitionsToTxnResponse::default();
        if version <= 3 {
            resp.results_by_topic_v3_and_below = add(
                &broker,
                req.v3_and_below_transactional_id.0.as_str(),
                req.v3_and_below_producer_id.0,
                req.v3_and_below_producer_epoch,
                false,
                &req.v3_and_below_topics,
                &denied,
            )
            .await;
        } else {
            let mut out = Vec::with_capacity(req.transactions.len());
            for t in &req.transactions {
                let topics = add(&broker, t.transactional_id.0.as_str(), t.producer_id.0, t.producer_epoch, t.verify_only, &t.topics, &denied).await;
                out.push(AddPartitionsToTxnResult::default().with_transactional_id(t.transactional_id.clone()).with_topic_results(topics));
            }
            resp.results_by_transaction = out;
        }
        encode_body(&resp, version)
    })))
}
