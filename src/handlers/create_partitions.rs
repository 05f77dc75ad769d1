//! CreatePartitions (key 37), versions 0-3.
//!
//! Raises a topic's partition count (never lowers it: INVALID_PARTITIONS). Manual assignments
//! must place each new partition on this broker alone. `validate_only` changes nothing. A topic
//! named twice in one request gets INVALID_REQUEST, like Kafka.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::AdminError;
use crate::handlers::errors::admin_error_code;
use crate::handlers::{ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::CreatePartitions, min: 0, max: 3 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: CreatePartitionsRequest = ctx.decode(body)?;
    let broker = &ctx.broker;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for t in &req.topics {
        *counts.entry(t.name.0.to_string()).or_default() += 1;
    }
    let node = broker.config.node_id;
    let results = req
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let mut r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            if counts.get(&name).copied().unwrap_or(0) > 1 {
                r.error_code = WireError::InvalidRequest.code();
                r.error_message = Some(StrBytes::from_string(format!("Duplicate topic in request: {name}")));
                return r;
            }
            let outcome = (|| {
                if let Some(assignments) = &t.assignments {
                    let current = broker.metadata.topic(&name).map(|m| m.partitions).ok_or(AdminError::UnknownTopic)?;
                    if assignments.len() as i64 != i64::from(t.count) - i64::from(current) {
                        return Err(AdminError::InvalidPartitions(format!(
                            "Increasing the number of partitions by {} but {} assignments provided.",
                            i64::from(t.count) - i64::from(current),
                            assignments.len()
                        )));
                    }
                    if assignments.iter().any(|a| a.broker_ids.len() != 1 || a.broker_ids[0].0 != node) {
                        return Err(AdminError::InvalidReplicationFactor(format!("Every new partition must be assigned to broker {node} alone.")));
                    }
                }
                broker.create_partitions(&name, t.count, req.validate_only)
            })();
            if let Err(e) = outcome {
                r.error_code = admin_error_code(&e);
                r.error_message = Some(StrBytes::from_string(e.to_string()));
            }
            r
        })
        .collect();
    ctx.reply(&CreatePartitionsResponse::default().with_results(results))
}
