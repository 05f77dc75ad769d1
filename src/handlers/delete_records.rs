//! DeleteRecords (key 21), versions 0-2.
//!
//! Moves each partition's log start offset forward (`kafka-delete-records`): records below it
//! are no longer served, and whole segments below it are deleted. Offset -1 means the high
//! watermark; an offset above the high watermark is OFFSET_OUT_OF_RANGE. The new log start
//! offset is fsynced before the answer and is returned as the low watermark.

use bytes::Bytes;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};

use crate::handlers::errors::log_error_code;
use crate::handlers::{ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::DeleteRecords, min: 0, max: 2 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DeleteRecordsRequest = ctx.decode(body)?;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index).with_low_watermark(-1);
                    let Some(part) = ctx.broker.partition(t.name.0.as_str(), p.partition_index) else {
                        r.error_code = WireError::UnknownTopicOrPartition.code();
                        return r;
                    };
                    let hw = part.high_watermark();
                    let target = if p.offset == -1 { hw } else { p.offset };
                    if target < 0 || target > hw {
                        r.error_code = WireError::OffsetOutOfRange.code();
                        return r;
                    }
                    match part.log.advance_log_start(target) {
                        Ok(start) => r.low_watermark = start,
                        Err(e) => r.error_code = log_error_code(&e),
                    }
                    r
                })
                .collect();
            DeleteRecordsTopicResult::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    ctx.reply(&DeleteRecordsResponse::default().with_topics(topics))
}
