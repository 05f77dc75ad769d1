//! OffsetDelete (key 47), version 0.
//!
//! Removes committed offsets of a group for partitions it is not consuming: a topic that an
//! active member of a `consumer` group subscribes to gets GROUP_SUBSCRIBED_TO_TOPIC.
//! Unknown group: GROUP_ID_NOT_FOUND. Tombstones are fsynced before the answer.
//!
//! Authorization: DELETE on the group (else the top-level GROUP_AUTHORIZATION_FAILED), then
//! READ on each topic (else its partitions TOPIC_AUTHORIZATION_FAILED).

use bytes::Bytes;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{ApiKey, OffsetDeleteRequest, OffsetDeleteResponse};

use crate::handlers::errors::log_error_code;
use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::OffsetDelete), min: 0, max: 0 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: OffsetDeleteRequest = ctx.decode(body)?;
    let authz = ctx.authz();
    if !authz.group(op::DELETE, req.group_id.0.as_str()) {
        return ctx.reply(&OffsetDeleteResponse::default().with_error_code(WireError::GroupAuthorizationFailed.code()));
    }
    let mut readable = authz.names(op::READ, crate::security::acl::resource::TOPIC);
    let denied: std::collections::HashSet<String> = req.topics.iter().map(|t| t.name.0.to_string()).filter(|t| !readable.allows(t)).collect();
    if !ctx.broker.groups.is_loaded() {
        return ctx.reply(&OffsetDeleteResponse::default().with_error_code(WireError::GroupIdNotFound.code()));
    }
    let wanted: Vec<(String, i32)> = req.topics.iter().filter(|t| !denied.contains(t.name.0.as_str())).flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), p.partition_index))).collect();
    match ctx.broker.groups.delete_offsets(req.group_id.0.as_str(), &wanted) {
        Err(code) => ctx.reply(&OffsetDeleteResponse::default().with_error_code(code)),
        Ok((codes, pending)) => {
            let mut codes = codes.into_iter();
            let topics = req
                .topics
                .into_iter()
                .map(|t| {
                    let hidden = denied.contains(t.name.0.as_str());
                    let parts = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let code = if hidden { WireError::TopicAuthorizationFailed.code() } else { codes.next().unwrap_or(0) };
                            OffsetDeleteResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code)
                        })
                        .collect();
                    OffsetDeleteResponseTopic::default().with_name(t.name).with_partitions(parts)
                })
                .collect();
            let mut resp = OffsetDeleteResponse::default().with_topics(topics);
            let version = ctx.version;
            Ok(Reply::Later(Box::pin(async move {
                if let Some(w) = pending {
                    if let Err(e) = w.durable().await {
                        resp.error_code = log_error_code(&e);
                    }
                }
                encode_body(&resp, version)
            })))
        }
    }
}
