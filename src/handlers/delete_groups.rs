//! DeleteGroups (key 42), versions 0-3.
//!
//! Deletes groups that have no members (NON_EMPTY_GROUP otherwise, GROUP_ID_NOT_FOUND for
//! unknown ones): tombstones for the group and each committed offset are appended to
//! `__consumer_offsets` and fsynced before the answer. v3 (codec in [`crate::protocol::v44`])
//! adds an error message per group: as in Kafka 4.4, null for a group's own error, the
//! failure's text when the write of the tombstones failed. An empty share group's
//! share-partition state on `__share_group_state` is deleted first (Kafka's order); if that
//! fails, the group stays.
//!
//! Authorization: DELETE on each group, else GROUP_AUTHORIZATION_FAILED for it (never reaching
//! the coordinator).

use bytes::Bytes;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{ApiKey, DeleteGroupsRequest, DeleteGroupsResponse};

use crate::handlers::errors::log_error_code;
use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, v44, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::DeleteGroups), min: 0, max: 3 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    // v3's request bytes are v2's.
    let req: DeleteGroupsRequest = ctx.decode_as(body, ctx.version.min(2))?;
    let broker = ctx.broker.clone();
    let version = ctx.version;
    let mut deletable = ctx.authz().names(op::DELETE, crate::security::acl::resource::GROUP);
    let allowed: Vec<bool> = req.groups_names.iter().map(|g| deletable.allows(g.0.as_str())).collect();
    Ok(Reply::Later(Box::pin(async move {
        let loaded = broker.groups.is_loaded();
        let mut pending = Vec::new();
        let mut results = Vec::with_capacity(req.groups_names.len());
        let mut messages: Vec<Option<String>> = Vec::with_capacity(req.groups_names.len());
        for (g, allowed) in req.groups_names.into_iter().zip(allowed) {
            if !allowed {
                results.push(DeletableGroupResult::default().with_group_id(g).with_error_code(WireError::GroupAuthorizationFailed.code()));
                messages.push(None);
                continue;
            }
            let id = g.0.to_string();
            let mut message = None;
            // A share group's state on __share_group_state goes first (Kafka's order): if that
            // fails, the group stays.
            let empty_share = loaded && broker.groups.with_share_group(&id, |s| s.members.is_empty()).unwrap_or(false);
            let code = if !loaded {
                WireError::GroupIdNotFound.code()
            } else if let Some(code) = match empty_share {
                true => match broker.share_manager().await {
                    Ok(shares) => match shares.keys_of(&id).await {
                        Ok(keys) => shares.delete(&id, &keys).await.err(),
                        Err(code) => Some(code),
                    },
                    Err(_) => None,
                },
                false => None,
            } {
                message = Some("The share group's state could not be deleted.".to_string());
                code
            } else {
                match broker.groups.delete(&id) {
                    Ok(p) => {
                        if let Some(p) = p {
                            pending.push((results.len(), p));
                        }
                        0
                    }
                    Err(code) => code,
                }
            };
            results.push(DeletableGroupResult::default().with_group_id(g).with_error_code(code));
            messages.push(message);
        }
        let mut resp = DeleteGroupsResponse::default().with_results(results);
        for (i, w) in pending {
            if let Err(e) = w.durable().await {
                resp.results[i].error_code = log_error_code(&e);
                messages[i] = Some(e.to_string());
            }
        }
        if version >= 3 {
            return Ok(v44::encode_delete_groups_v3(&resp, &messages));
        }
        encode_body(&resp, version)
    })))
}
