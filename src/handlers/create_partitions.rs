//! CreatePartitions (key 37), versions 0-3 (all that Kafka 4.1 serves).
//!
//! Raises a topic's partition count (`kafka-topics --alter --partitions`). As Kafka's
//! controller answers: unknown topic UNKNOWN_TOPIC_OR_PARTITION; the same or a lower count
//! INVALID_PARTITIONS; manual `assignments` must number exactly the new partitions and name
//! only registered brokers (this one) once each, else INVALID_REPLICA_ASSIGNMENT. A topic named
//! more than once gets a single INVALID_REQUEST result ("Duplicate topic name.") and is not
//! touched. An increase past `strom.max.partitions` gets POLICY_VIOLATION. `validate_only`
//! runs every check and changes nothing. New partitions are durable
//! (metadata fsynced) and open before the answer.
//!
//! Gaps: no controller mutation quota (`throttle_time_ms` is always 0).
//!
//! Authorization: ALTER on each topic, else TOPIC_AUTHORIZATION_FAILED (before the topic is
//! looked up).

use std::collections::HashSet;

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::errors::admin_error_code;
use crate::handlers::{blocking, Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::CreatePartitions),
    min: 0,
    max: 3,
};

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: CreatePartitionsRequest = ctx.decode(body)?;
    // Up to 100,000 new partition directories and a metadata fsync: on the blocking pool, so this connection's worker thread serves others meanwhile.
    blocking(move || respond(ctx, req)).await?
}

fn respond(ctx: RequestContext, req: CreatePartitionsRequest) -> Result<Reply, ProtocolError> {
    let broker = &ctx.broker;
    let mut seen = HashSet::new();
    let mut duplicates = Vec::new();
    for t in &req.topics {
        if !seen.insert(t.name.0.as_str()) && !duplicates.contains(&t.name) {
            duplicates.push(t.name.clone());
        }
    }
    let mut results: Vec<CreatePartitionsTopicResult> = duplicates
        .iter()
        .map(|name| {
            CreatePartitionsTopicResult::default()
                .with_name(name.clone())
                .with_error_code(WireError::InvalidRequest.code())
                .with_error_message(Some(StrBytes::from_static_str("Duplicate topic name.")))
        })
        .collect();
    // ALTER on each topic, decided before the topic is looked up.
    let mut alterable = ctx.authz().names(op::ALTER, crate::security::acl::resource::TOPIC);
    for t in req.topics.iter().filter(|t| !duplicates.contains(&t.name)) {
        if !alterable.allows(t.name.0.as_str()) {
            results.push(
                CreatePartitionsTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(WireError::TopicAuthorizationFailed.code()),
            );
            continue;
        }
        let assignments: Option<Vec<Vec<i32>>> = t.assignments.as_ref().map(|a| {
            a.iter()
                .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                .collect()
        });
        let mut r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        if let Err(e) = broker.create_partitions(
            t.name.0.as_str(),
            t.count,
            assignments.as_deref(),
            req.validate_only,
        ) {
            r.error_code = admin_error_code(&e);
            r.error_message = Some(StrBytes::from_string(e.to_string()));
        }
        results.push(r);
    }
    ctx.reply(&CreatePartitionsResponse::default().with_results(results))
}
