//! DeleteRecords (key 21), versions 0-2 (all that Kafka 4.1 serves) — `kafka-delete-records`.
//!
//! Moves each partition's log start offset forward: records below it are no longer served and
//! whole segments below it are deleted. Offset -1 means the high watermark; another negative
//! offset or one above the high watermark is OFFSET_OUT_OF_RANGE; an offset at or below the
//! current log start changes nothing. The new log start offset is fsynced before the answer
//! and returned as `low_watermark` (-1 on error). As in Kafka: internal topics are refused
//! with INVALID_TOPIC_EXCEPTION, topics whose `cleanup.policy` lacks `delete` with
//! POLICY_VIOLATION, unknown partitions get UNKNOWN_TOPIC_OR_PARTITION.
//!
//! A partition the topic lacks: this answer and Metadata's (only existing partitions listed)
//! match Kafka 4.1.1 field for field (checked side by side). kafka-clients 4.1.1's
//! `Admin.deleteRecords` of such a partition never maps it to a leader and re-sends Metadata
//! without backoff until `default.api.timeout.ms` (TimeoutException), against Apache Kafka
//! just the same.
//!
//! Single node: the low watermark is ours alone, so there is nothing to wait for (Kafka waits
//! until every follower has moved its log start; `timeout_ms` is not needed).
//!
//! Authorization: DELETE on each topic, else its partitions TOPIC_AUTHORIZATION_FAILED (low
//! watermark -1), decided before the topic is looked up.

use bytes::Bytes;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};

use crate::handlers::authz::op;
use crate::handlers::errors::log_error_code;
use crate::handlers::{blocking, Api, ApiSpec, Reply, RequestContext};
use crate::metadata::is_internal_topic;
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::DeleteRecords),
    min: 0,
    max: 2,
};

/// The request's "up to the high watermark" offset.
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DeleteRecordsRequest = ctx.decode(body)?;
    // A log-start checkpoint written and fsynced per partition: on the blocking pool, so this connection's worker thread serves others meanwhile.
    blocking(move || respond(ctx, req)).await?
}

fn respond(ctx: RequestContext, req: DeleteRecordsRequest) -> Result<Reply, ProtocolError> {
    let mut deletable = ctx.authz().names(op::DELETE, crate::security::acl::resource::TOPIC);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = t.name.0.as_str();
            let allowed = deletable.allows(topic);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    if !allowed {
                        return r.with_error_code(WireError::TopicAuthorizationFailed.code());
                    }
                    match delete(&ctx, topic, p.partition_index, p.offset) {
                        Ok(low) => r.with_low_watermark(low),
                        Err(code) => r.with_error_code(code),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ctx.reply(&DeleteRecordsResponse::default().with_topics(topics))
}

/// Deletes records of one partition below `offset`; the new low watermark or a wire error.
fn delete(ctx: &RequestContext, topic: &str, index: i32, offset: i64) -> Result<i64, i16> {
    let Some(part) = ctx.broker.partition(topic, index) else {
        return Err(WireError::UnknownTopicOrPartition.code());
    };
    if is_internal_topic(topic) {
        return Err(WireError::InvalidTopicException.code());
    }
    if !part.log.config().delete_retention_enabled {
        return Err(WireError::PolicyViolation.code());
    }
    let hw = part.high_watermark();
    let target = if offset == HIGH_WATERMARK { hw } else { offset };
    if target < 0 || target > hw {
        return Err(WireError::OffsetOutOfRange.code());
    }
    part.log
        .advance_log_start(target)
        .map_err(|e| log_error_code(&e))
}
