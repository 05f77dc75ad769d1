//! OffsetCommit (key 8), versions 2-10 (v10 names topics by id: codec in
//! [`crate::protocol::v44`]; an unknown id gets UNKNOWN_TOPIC_ID).
//!
//! Members commit with their generation; a consumer outside any group (generation -1, no
//! member id) may commit only while the group has no members. Offsets for partitions that do
//! not exist get UNKNOWN_TOPIC_OR_PARTITION; metadata over `offset.metadata.max.bytes` gets
//! OFFSET_METADATA_TOO_LARGE. Accepted offsets are appended to `__consumer_offsets` and the
//! response waits for that append's fsync: an acknowledged commit survives a crash.
//! `retention_time_ms` (v2-4) is ignored like in Kafka 4 (offsets.retention.minutes applies).
//! In a consumer group the generation is the member epoch; a classic member (online migration)
//! with any other epoch gets ILLEGAL_GENERATION, a consumer-protocol member STALE/FENCED.
//!
//! Authorization: READ on the group (else every partition GROUP_AUTHORIZATION_FAILED), then
//! READ on each topic (else its partitions TOPIC_AUTHORIZATION_FAILED, before the topic is
//! looked up).

use bytes::Bytes;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};

use crate::coordinator::codec::OffsetValue;
use crate::handlers::authz::op;
use crate::handlers::errors::log_error_code;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::log::now_ms;
use crate::broker::Broker;
use crate::protocol::{encode_body, v44, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::OffsetCommit), min: 2, max: 10 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: OffsetCommitRequest = if ctx.version >= 10 {
        let m = &ctx.broker.metadata;
        v44::decode_offset_commit_v10(&body, &|id| m.topic_by_id(id).map(|t| t.name))?
    } else {
        ctx.decode(body)?
    };
    let broker = &ctx.broker;
    let now = now_ms();
    let authz = ctx.authz();
    if !authz.group(op::READ, req.group_id.0.as_str()) {
        let topics = req
            .topics
            .iter()
            .map(|t| {
                let parts = t.partitions.iter().map(|p| OffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(WireError::GroupAuthorizationFailed.code())).collect();
                OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(parts)
            })
            .collect();
        return Ok(Reply::Now(encode(broker, &OffsetCommitResponse::default().with_topics(topics), ctx.version)?));
    }
    let mut readable = authz.names(op::READ, crate::security::acl::resource::TOPIC);
    // (topic index, partition index in response) for each offset handed to the coordinator.
    let mut slots = Vec::new();
    let mut offsets = Vec::new();
    let mut topics: Vec<OffsetCommitResponseTopic> = Vec::with_capacity(req.topics.len());
    for (ti, t) in req.topics.iter().enumerate() {
        let name = t.name.0.to_string();
        let allowed = readable.allows(&name);
        let known = if allowed { broker.metadata.topic(&name) } else { None };
        let mut parts = Vec::with_capacity(t.partitions.len());
        for (pi, p) in t.partitions.iter().enumerate() {
            let mut r = OffsetCommitResponsePartition::default().with_partition_index(p.partition_index);
            if !allowed {
                r.error_code = WireError::TopicAuthorizationFailed.code();
            } else if known.as_ref().is_none_or(|m| p.partition_index < 0 || p.partition_index >= m.partitions) {
                r.error_code = WireError::UnknownTopicOrPartition.code();
            } else {
                slots.push((ti, pi));
                offsets.push((
                    name.clone(),
                    p.partition_index,
                    OffsetValue {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default(),
                        commit_timestamp: now,
                    },
                ));
            }
            parts.push(r);
        }
        topics.push(OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(parts));
    }
    let version = ctx.version;
    let set_all = |topics: &mut Vec<OffsetCommitResponseTopic>, code: i16| {
        for &(ti, pi) in &slots {
            topics[ti].partitions[pi].error_code = code;
        }
    };
    if offsets.is_empty() {
        return Ok(Reply::Now(encode(&ctx.broker, &OffsetCommitResponse::default().with_topics(topics), ctx.version)?));
    }
    let coordinator = match broker.group_coordinator().await {
        Ok(c) => c,
        Err(_) => {
            set_all(&mut topics, WireError::CoordinatorNotAvailable.code());
            return Ok(Reply::Now(encode(&ctx.broker, &OffsetCommitResponse::default().with_topics(topics), ctx.version)?));
        }
    };
    let group = req.group_id.0.as_str();
    if group.is_empty() {
        set_all(&mut topics, WireError::InvalidGroupId.code());
        return Ok(Reply::Now(encode(&ctx.broker, &OffsetCommitResponse::default().with_topics(topics), ctx.version)?));
    }
    let generation = req.generation_id_or_member_epoch;
    let instance = req.group_instance_id.as_ref().map(|s| s.as_str());
    match coordinator.commit(group, req.member_id.as_str(), instance, generation, offsets) {
        Err(code) => {
            set_all(&mut topics, code);
            Ok(Reply::Now(encode(&ctx.broker, &OffsetCommitResponse::default().with_topics(topics), ctx.version)?))
        }
        Ok((codes, pending)) => {
            for (&(ti, pi), code) in slots.iter().zip(codes) {
                topics[ti].partitions[pi].error_code = code;
            }
            let mut resp = OffsetCommitResponse::default().with_topics(topics);
            let Some(w) = pending else { return Ok(Reply::Now(encode(&ctx.broker, &resp, version)?)) };
            let broker = ctx.broker.clone();
            Ok(Reply::Later(Box::pin(async move {
                if let Err(e) = w.durable().await {
                    let code = log_error_code(&e);
                    for &(ti, pi) in &slots {
                        let p = &mut resp.topics[ti].partitions[pi];
                        if p.error_code == 0 {
                            p.error_code = code;
                        }
                    }
                }
                encode(&broker, &resp, version)
            })))
        }
    }
}

fn encode(broker: &Broker, resp: &OffsetCommitResponse, version: i16) -> Result<bytes::BytesMut, ProtocolError> {
    if version >= 10 {
        return Ok(v44::encode_offset_commit_v10(resp, &|n| broker.metadata.topic(n).map(|t| t.id)));
    }
    encode_body(resp, version)
}
