//! DeleteShareGroupOffsets (key 92), version 0: forgets a share group's state for whole topics
//! (`kafka-share-groups --delete-offsets`, `Admin.deleteShareGroupOffsets`); a later
//! subscription starts those partitions again from `share.auto.offset.reset`.
//!
//! As Kafka 4.4: an unknown group or one of another type is GROUP_ID_NOT_FOUND, a share group
//! with members NON_EMPTY_GROUP (top level); per topic, an unknown topic or one the group has
//! no state for is UNKNOWN_TOPIC_OR_PARTITION ("There is no offset information to delete.").
//! The state's tombstones are durable before the response.
//!
//! Authorization: DELETE on the group (top-level GROUP_AUTHORIZATION_FAILED), then READ on each
//! topic (TOPIC_AUTHORIZATION_FAILED for the topic).

use bytes::Bytes;
use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
use kafka_protocol::messages::{ApiKey, DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::DeleteShareGroupOffsets), min: 0, max: 0 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DeleteShareGroupOffsetsRequest = ctx.decode(body)?;
    let version = ctx.version;
    let broker = ctx.broker.clone();
    let group = req.group_id.0.to_string();
    let top = move |code: i16, message: Option<String>| {
        encode_body(
            &DeleteShareGroupOffsetsResponse::default()
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string)),
            version,
        )
    };
    if group.is_empty() {
        return Ok(Reply::Now(top(WireError::InvalidGroupId.code(), None)?));
    }
    // DELETE on the group, then READ on each topic.
    let authz = ctx.authz();
    if !authz.group(op::DELETE, &group) {
        return Ok(Reply::Now(top(WireError::GroupAuthorizationFailed.code(), None)?));
    }
    let mut readable = authz.names(op::READ, crate::security::acl::resource::TOPIC);
    let denied: std::collections::HashSet<String> = req.topics.iter().map(|t| t.topic_name.0.to_string()).filter(|t| !readable.allows(t)).collect();
    let (Ok(coordinator), Ok(_)) = (broker.group_coordinator().await, broker.share_manager().await) else {
        return Ok(Reply::Now(top(WireError::CoordinatorNotAvailable.code(), None)?));
    };
    match coordinator.with_share_group(&group, |g| g.members.len()) {
        None if coordinator.exists(&group) => {
            return Ok(Reply::Now(top(WireError::GroupIdNotFound.code(), Some(format!("Group {group} is not a share group.")))?))
        }
        None => return Ok(Reply::Now(top(WireError::GroupIdNotFound.code(), Some(format!("Group {group} not found.")))?)),
        Some(n) if n > 0 => return Ok(Reply::Now(top(WireError::NonEmptyGroup.code(), Some("The group is not empty.".into()))?)),
        Some(_) => {}
    }
    Ok(Reply::Later(Box::pin(async move {
        let keys = match broker.shares.keys_of(&group).await {
            Ok(k) => k,
            Err(code) => return top(code, None),
        };
        let mut responses = Vec::new();
        for t in &req.topics {
            let name = t.topic_name.0.to_string();
            let mut topic = DeleteShareGroupOffsetsResponseTopic::default().with_topic_name(t.topic_name.clone());
            if denied.contains(&name) {
                topic.error_code = WireError::TopicAuthorizationFailed.code();
                responses.push(topic);
                continue;
            }
            let meta = broker.metadata.topic(&name);
            match meta {
                None => {
                    topic.error_code = WireError::UnknownTopicOrPartition.code();
                    topic.error_message = Some(StrBytes::from_static_str("This server does not host this topic-partition."));
                }
                Some(m) => {
                    topic.topic_id = m.id;
                    let of_topic: Vec<_> = keys.iter().filter(|k| k.topic_id == m.id).cloned().collect();
                    if of_topic.is_empty() {
                        topic.error_code = WireError::UnknownTopicOrPartition.code();
                        topic.error_message = Some(StrBytes::from_static_str("There is no offset information to delete."));
                    } else if let Err(code) = broker.shares.delete(&group, &of_topic).await {
                        topic.error_code = code;
                        topic.error_message = Some(StrBytes::from_static_str("The share-partition state could not be deleted."));
                    }
                }
            }
            responses.push(topic);
        }
        encode_body(&DeleteShareGroupOffsetsResponse::default().with_responses(responses), version)
    })))
}
