//! DescribeShareGroupOffsets (key 90), versions 0-1 (v1 adds each partition's Lag, KIP-1226;
//! its encoder is in [`crate::protocol::share`], the request is v0's bytes): what
//! `kafka-share-groups --describe` and `Admin.listShareGroupOffsets` show.
//!
//! As Kafka 4.4: with no topic list, every share-partition of the group that has state; with
//! topics, each requested partition — one without state answers start offset -1 (and lag -1),
//! an unknown topic name the zero topic id with start offset -1. A group that does not exist
//! or is of another type is not an error: it has no offsets. Start offset = the share-partition
//! start offset (everything below it acknowledged or archived); lag = high watermark - start
//! offset - records at or above it already finished.
//!
//! Authorization: DESCRIBE on each group, else GROUP_AUTHORIZATION_FAILED for it.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, DescribeShareGroupOffsetsRequest};
use uuid::Uuid;

use crate::broker::Broker;
use crate::coordinator::share::codec::StateKey;
use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::share::{encode_describe_offsets_response, OffsetsGroup, OffsetsPartition, OffsetsTopic};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::DescribeShareGroupOffsets), min: 0, max: 1 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DescribeShareGroupOffsetsRequest = ctx.decode_as(body, 0)?;
    let broker = ctx.broker.clone();
    let shares = broker.share_manager().await.ok();
    let mut groups = Vec::with_capacity(req.groups.len());
    // DESCRIBE on each group.
    let authz = ctx.authz();
    for g in &req.groups {
        let group = g.group_id.0.to_string();
        if !authz.group(op::DESCRIBE, &group) {
            groups.push(OffsetsGroup { group_id: group, error_code: WireError::GroupAuthorizationFailed.code(), ..Default::default() });
            continue;
        }
        let Some(shares) = shares else {
            groups.push(OffsetsGroup {
                group_id: group,
                error_code: WireError::CoordinatorNotAvailable.code(),
                ..Default::default()
            });
            continue;
        };
        let state = match shares.start_offsets(&group).await {
            Ok(s) => s,
            Err(code) => {
                groups.push(OffsetsGroup { group_id: group, error_code: code, ..Default::default() });
                continue;
            }
        };
        let partition_of = |topic_id: Uuid, partition: i32, name: &str| -> OffsetsPartition {
            let found = state.iter().find(|(k, _, _)| k.topic_id == topic_id && k.partition == partition);
            // The lag needs the high watermark: this broker's where it hosts a replica (a
            // follower's lags its leader's by at most a fetch); else asked of the leader below.
            let p = broker.partition(name, partition);
            let leader_epoch = broker.metadata.partition_state(&topic_id, partition).map_or(0, |s| s.leader_epoch);
            match (found, p) {
                (Some((_, start, done)), Some(p)) => OffsetsPartition {
                    partition,
                    start_offset: *start,
                    leader_epoch,
                    lag: (p.high_watermark() - start - done).max(0),
                    ..Default::default()
                },
                (Some((_, start, _)), None) => {
                    OffsetsPartition { partition, start_offset: *start, leader_epoch, lag: -1, ..Default::default() }
                }
                (None, _) => OffsetsPartition { partition, start_offset: -1, leader_epoch, lag: -1, ..Default::default() },
            }
        };
        let mut topics: Vec<OffsetsTopic> = Vec::new();
        match &g.topics {
            None => {
                for (k, _, _) in &state {
                    let Some(meta) = broker.metadata.topic_by_id(&k.topic_id) else { continue };
                    let p = partition_of(k.topic_id, k.partition, &meta.name);
                    match topics.last_mut() {
                        Some(t) if t.topic_id == k.topic_id => t.partitions.push(p),
                        _ => topics.push(OffsetsTopic { name: meta.name.clone(), topic_id: k.topic_id, partitions: vec![p] }),
                    }
                }
            }
            Some(requested) => {
                for t in requested {
                    let name = t.topic_name.0.to_string();
                    let meta = broker.metadata.topic(&name);
                    let topic_id = meta.as_ref().map_or(Uuid::nil(), |m| m.id);
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|&p| match &meta {
                            Some(_) => partition_of(topic_id, p, &name),
                            None => OffsetsPartition { partition: p, start_offset: -1, lag: -1, ..Default::default() },
                        })
                        .collect();
                    topics.push(OffsetsTopic { name, topic_id, partitions });
                }
            }
        }
        remote_lags(&broker, &mut topics, &state).await;
        groups.push(OffsetsGroup { group_id: group, topics, ..Default::default() });
    }
    Ok(Reply::Now(encode_describe_offsets_response(&groups, ctx.version)?))
}

/// Fills the lag of partitions with state that this broker hosts no replica of, from their
/// leaders' high watermarks (ListOffsets latest, in a cluster); left -1 where a leader does
/// not answer.
async fn remote_lags(broker: &Broker, topics: &mut [OffsetsTopic], state: &[(StateKey, i64, i64)]) {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, ListOffsetsResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let mut by_leader: BTreeMap<String, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
    for t in topics.iter() {
        for p in &t.partitions {
            if p.start_offset < 0 || p.lag >= 0 || broker.partition(&t.name, p.partition).is_some() {
                continue;
            }
            let leader = broker.metadata.partition_state(&t.topic_id, p.partition).map_or(-1, |s| s.leader);
            if let Some(b) = broker.metadata.broker(leader).filter(|b| !b.fenced && b.node != broker.config.node_id) {
                by_leader.entry(format!("{}:{}", b.host, b.port)).or_default().entry(t.name.clone()).or_default().push(p.partition);
            }
        }
    }
    for (addr, asked) in by_leader {
        let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(
            asked
                .iter()
                .map(|(name, ps)| {
                    ListOffsetsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name.clone())))
                        .with_partitions(ps.iter().map(|p| ListOffsetsPartition::default().with_partition_index(*p).with_timestamp(-1)).collect())
                })
                .collect(),
        );
        let resp: ListOffsetsResponse = match broker.peers.request(&addr, ApiKey::ListOffsets, 7, &req).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%addr, error = %e, "ListOffsets for a share-group lag failed");
                continue;
            }
        };
        for rt in &resp.topics {
            for rp in rt.partitions.iter().filter(|p| p.error_code == 0) {
                let Some(t) = topics.iter_mut().find(|t| t.name == rt.name.0.as_str()) else { continue };
                let Some((_, start, done)) = state.iter().find(|(k, _, _)| k.topic_id == t.topic_id && k.partition == rp.partition_index) else { continue };
                if let Some(p) = t.partitions.iter_mut().find(|p| p.partition == rp.partition_index) {
                    p.lag = (rp.offset - start - done).max(0);
                }
            }
        }
    }
}
