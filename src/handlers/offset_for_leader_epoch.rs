//! OffsetForLeaderEpoch (key 23), versions 2-4.
//!
//! For a leader epoch a consumer (KIP-320) or follower saw, the end offset of that epoch: the
//! log end offset for the current epoch, (-1, -1) for an undefined or future epoch.
//! `current_leader_epoch` is checked like Fetch (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH).
//! The epoch arithmetic lives in `replica::Partition::end_offset_for_epoch`.

use bytes::Bytes;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::handlers::{ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::OffsetForLeaderEpoch, min: 2, max: 4 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: OffsetForLeaderEpochRequest = ctx.decode(body)?;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = EpochEndOffset::default().with_partition(p.partition).with_leader_epoch(-1).with_end_offset(-1);
                    let Some(part) = ctx.broker.partition(t.topic.0.as_str(), p.partition) else {
                        r.error_code = WireError::UnknownTopicOrPartition.code();
                        return r;
                    };
                    let epoch = part.leader_epoch();
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch != epoch {
                        r.error_code = if p.current_leader_epoch > epoch { WireError::UnknownLeaderEpoch.code() } else { WireError::FencedLeaderEpoch.code() };
                        return r;
                    }
                    let (e, off) = part.end_offset_for_epoch(p.leader_epoch);
                    r.leader_epoch = e;
                    r.end_offset = off;
                    r
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(t.topic).with_partitions(partitions)
        })
        .collect();
    ctx.reply(&OffsetForLeaderEpochResponse::default().with_topics(topics))
}
