//! DeleteGroups (key 42), versions 0-2.
//!
//! Deletes groups that have no members (NON_EMPTY_GROUP otherwise, GROUP_ID_NOT_FOUND for
//! unknown ones): tombstones for the group and each committed offset are appended to
//! `__consumer_offsets` and fsynced before the answer.

use bytes::Bytes;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{ApiKey, DeleteGroupsRequest, DeleteGroupsResponse};

use crate::handlers::errors::log_error_code;
use crate::handlers::{ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::DeleteGroups, min: 0, max: 2 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DeleteGroupsRequest = ctx.decode(body)?;
    let loaded = ctx.broker.groups.is_loaded();
    let mut pending = Vec::new();
    let mut results = Vec::with_capacity(req.groups_names.len());
    for g in req.groups_names {
        let code = if !loaded {
            WireError::GroupIdNotFound.code()
        } else {
            match ctx.broker.groups.delete(g.0.as_str()) {
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
    }
    let version = ctx.version;
    let mut resp = DeleteGroupsResponse::default().with_results(results);
    Ok(Reply::Later(Box::pin(async move {
        for (i, w) in pending {
            if let Err(e) = w.durable().await {
                resp.results[i].error_code = log_error_code(&e);
            }
        }
        encode_body(&resp, version)
    })))
}
