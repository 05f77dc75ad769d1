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

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, DescribeShareGroupOffsetsRequest};
use uuid::Uuid;

use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::share::{encode_describe_offsets_response, OffsetsGroup, OffsetsPartition, OffsetsTopic};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::DescribeShareGroupOffsets), min: 0, max: 1 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DescribeShareGroupOffsetsRequest = ctx.decode_as(body, 0)?;
    let broker = ctx.broker.clone();
    let shares = broker.share_manager().await.ok();
    let mut groups = Vec::with_capacity(req.groups.len());
    for g in &req.groups {
        let group = g.group_id.0.to_string();
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
            // The lag needs the high watermark: known where a replica of the partition is
            // hosted (a follower's lags its leader's by at most a fetch), else -1.
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
        groups.push(OffsetsGroup { group_id: group, topics, ..Default::default() });
    }
    Ok(Reply::Now(encode_describe_offsets_response(&groups, ctx.version)?))
}
