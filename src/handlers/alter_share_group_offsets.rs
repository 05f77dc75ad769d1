//! AlterShareGroupOffsets (key 91), version 0: sets the start offset of share-partitions
//! (`kafka-share-groups --reset-offsets --execute`, `Admin.alterShareGroupOffsets`).
//!
//! As Kafka 4.4: the group must be a share group without members (NON_EMPTY_GROUP at the top
//! level otherwise; a group of another type GROUP_ID_NOT_FOUND); a group that does not exist
//! is created empty. Each partition of a known topic gets a fresh state starting at the given
//! offset (nothing in flight, delivery counts forgotten), durable before the response; an
//! unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION.
//!
//! Authorization: READ on the group (top-level GROUP_AUTHORIZATION_FAILED), then READ on each
//! topic (its partitions TOPIC_AUTHORIZATION_FAILED).

use bytes::Bytes;
use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::{ApiKey, AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::share::codec::StateKey;
use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::AlterShareGroupOffsets), min: 0, max: 0 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: AlterShareGroupOffsetsRequest = ctx.decode(body)?;
    let version = ctx.version;
    let broker = ctx.broker.clone();
    let group = req.group_id.0.to_string();
    let top = move |code: i16, message: Option<String>| {
        encode_body(
            &AlterShareGroupOffsetsResponse::default()
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string)),
            version,
        )
    };
    if group.is_empty() {
        return Ok(Reply::Now(top(WireError::InvalidGroupId.code(), None)?));
    }
    // READ on the group, then READ on each topic.
    let authz = ctx.authz();
    if !authz.group(op::READ, &group) {
        return Ok(Reply::Now(top(WireError::GroupAuthorizationFailed.code(), None)?));
    }
    let mut readable = authz.names(op::READ, crate::security::acl::resource::TOPIC);
    let denied: std::collections::HashSet<String> = req.topics.iter().map(|t| t.topic_name.0.to_string()).filter(|t| !readable.allows(t)).collect();
    let (Ok(coordinator), Ok(_)) = (broker.group_coordinator().await, broker.share_manager().await) else {
        return Ok(Reply::Now(top(WireError::CoordinatorNotAvailable.code(), None)?));
    };
    let pending = match coordinator.empty_share_group(&group) {
        Ok(p) => p,
        Err((code, message)) => return Ok(Reply::Now(top(code, Some(message))?)),
    };
    Ok(Reply::Later(Box::pin(async move {
        if let Some(w) = pending {
            if w.durable().await.is_err() {
                return top(WireError::NotCoordinator.code(), None);
            }
        }
        let mut responses = Vec::new();
        for t in &req.topics {
            let hidden = denied.contains(t.topic_name.0.as_str());
            let meta = if hidden { None } else { broker.metadata.topic(t.topic_name.0.as_str()) };
            let mut parts = Vec::new();
            for p in &t.partitions {
                let code = match &meta {
                    _ if hidden => WireError::TopicAuthorizationFailed.code(),
                    Some(m) if (0..m.partitions).contains(&p.partition_index) => {
                        let key = StateKey { group: group.clone(), topic_id: m.id, partition: p.partition_index };
                        match broker.shares.reset(&key, p.start_offset).await {
                            Ok(()) => 0,
                            Err(code) => code,
                        }
                    }
                    _ => WireError::UnknownTopicOrPartition.code(),
                };
                parts.push(AlterShareGroupOffsetsResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code));
            }
            responses.push(
                AlterShareGroupOffsetsResponseTopic::default()
                    .with_topic_name(t.topic_name.clone())
                    .with_topic_id(meta.map_or(uuid::Uuid::nil(), |m| m.id))
                    .with_partitions(parts),
            );
        }
        encode_body(&AlterShareGroupOffsetsResponse::default().with_responses(responses), version)
    })))
}
