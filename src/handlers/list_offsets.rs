//! ListOffsets (key 2), versions 1-11 (v11's bytes are v10's: decoded and encoded as v10).
//! Answered by the partition's leader only: a follower, or (in a cluster) a broker without
//! the partition, answers NOT_LEADER_OR_FOLLOWER.
//!
//! Special timestamps: -1 latest (high watermark, or last stable offset for read_committed),
//! -2 earliest (log start offset), -3 the record with the largest timestamp (KIP-734),
//! -4 earliest local (= earliest: no tiered storage), -5 latest tiered and -6 earliest
//! pending upload (KIP-1023; no tiered storage: timestamp and offset -1, as Kafka 4.4 answers
//! for a topic without remote storage). A timestamp >= 0 finds the first record whose timestamp is at least
//! that, by the time index and then the records of one batch (decompressed with a size cap);
//! none gives offset -1 and timestamp -1. Requests that decompress run on the blocking pool,
//! at most 4 at a time broker-wide.
//!
//! Authorization: DESCRIBE on each topic, else its partitions TOPIC_AUTHORIZATION_FAILED
//! (offset and timestamp -1), decided before the topic is looked up.

use bytes::Bytes;
use tokio::sync::Semaphore;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};

use crate::handlers::authz::op;
use crate::handlers::errors::{epoch_error_code, log_error_code};
use crate::handlers::{blocking, Api, ApiSpec, Reply, RequestContext};
use crate::log::LogError;
use crate::protocol::batch::BatchView;
use crate::protocol::records::record_timestamps;
use crate::protocol::{ProtocolError, WireError};
use crate::replica::Partition;

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::ListOffsets), min: 1, max: 11 };

/// Requests decompressing at once (each up to [`DECOMPRESS_CAP`] per partition, one partition
/// at a time): bounds their memory and blocking threads broker-wide.
const DECOMPRESSIONS_MAX: usize = 4;
static DECOMPRESSIONS: Semaphore = Semaphore::const_new(DECOMPRESSIONS_MAX);

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: ListOffsetsRequest = ctx.decode_as(body, ctx.version.min(10))?;
    // Lookups by timestamp (and -3) decompress a batch of up to 64 MiB: on the blocking pool,
    // so this connection's worker thread serves others meanwhile. The rest answers from memory.
    let decompresses = req.topics.iter().flat_map(|t| &t.partitions).any(|p| p.timestamp >= 0 || p.timestamp == -3);
    if !decompresses {
        return respond(ctx, req);
    }
    // Never closed; an error would only mean a closed semaphore.
    let _permit = DECOMPRESSIONS.acquire().await.map_err(|e| ProtocolError::Encode(e.into()))?;
    blocking(move || respond(ctx, req)).await?
}

fn respond(ctx: RequestContext, req: ListOffsetsRequest) -> Result<Reply, ProtocolError> {
    let broker = &ctx.broker;
    let mut describable = ctx.authz().names(op::DESCRIBE, crate::security::acl::resource::TOPIC);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            if !describable.allows(t.name.0.as_str()) {
                let partitions = t.partitions.iter().map(|p| ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index).with_timestamp(-1).with_offset(-1).with_error_code(WireError::TopicAuthorizationFailed.code())).collect();
                return ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(partitions);
            }
            let meta = broker.metadata.topic(t.name.0.as_str());
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut r = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index).with_timestamp(-1).with_offset(-1);
                    let part = meta.as_ref().and_then(|m| broker.partition(&m.name, p.partition_index));
                    let Some(part) = part else {
                        r.error_code = broker.not_hosted_code(meta.as_ref(), p.partition_index, WireError::UnknownTopicOrPartition.code());
                        return r;
                    };
                    // Offsets come from the leader only (a follower's log end and high
                    // watermark lag behind).
                    if !part.is_leader() {
                        r.error_code = WireError::NotLeaderOrFollower.code();
                        return r;
                    }
                    let epoch = match part.check_current_epoch(p.current_leader_epoch) {
                        Ok(e) => e,
                        Err(e) => {
                            r.error_code = epoch_error_code(e);
                            return r;
                        }
                    };
                    match lookup(&part, p.timestamp, req.isolation_level == 1) {
                        Ok((offset, ts)) => {
                            r.offset = offset;
                            r.timestamp = ts;
                            if ctx.version >= 4 {
                                r.leader_epoch = epoch;
                            }
                        }
                        Err(e) => r.error_code = log_error_code(&e),
                    }
                    r
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    ctx.reply_as(&ListOffsetsResponse::default().with_topics(topics), ctx.version.min(10))
}

/// Largest decompressed batch we inspect (bounds memory for a hostile stored batch).
const DECOMPRESS_CAP: usize = 64 << 20;

fn lookup(p: &Partition, timestamp: i64, read_committed: bool) -> Result<(i64, i64), LogError> {
    let log = &p.log;
    let hw = if read_committed { log.last_stable_offset().min(p.high_watermark()) } else { p.high_watermark() };
    match timestamp {
        -1 => Ok((hw, -1)),
        -2 | -4 => Ok((log.log_start_offset(), -1)),
        -5 | -6 => Ok((-1, -1)),
        -3 => {
            let Some(batch) = log.find_batch_with_max_timestamp()? else { return Ok((-1, -1)) };
            let view = BatchView::parse_header(&batch)?;
            let max = view.max_timestamp();
            let recs = record_timestamps(&view, DECOMPRESS_CAP).map_err(|e| LogError::Io(std::io::Error::other(e.to_string())))?;
            let off = recs.iter().find(|(_, ts)| *ts == max).map(|(o, _)| *o).unwrap_or(view.last_offset());
            Ok((off, max))
        }
        t if t >= 0 => {
            let Some(batch) = log.find_batch_by_timestamp(t)? else { return Ok((-1, -1)) };
            let view = BatchView::parse_header(&batch)?;
            let recs = record_timestamps(&view, DECOMPRESS_CAP).map_err(|e| LogError::Io(std::io::Error::other(e.to_string())))?;
            let start = log.log_start_offset();
            Ok(recs
                .into_iter()
                .find(|(o, ts)| *ts >= t && *o >= start && *o < hw)
                .unwrap_or((-1, -1)))
        }
        _ => Ok((-1, -1)),
    }
}
