//! LeaveGroup (key 13), versions 0-5.
//!
//! v0-2 remove one member by id; v3+ remove a batch (by member id or, for static members, by
//! group instance id) with a per-member error. The group rebalances without them at once.
//! Classic members of a consumer group (online migration) leave it the same way (group epoch
//! bumped); a consumer-protocol member named here answers UNKNOWN_MEMBER_ID, as in Kafka.
//!
//! Authorization: READ on the group, else GROUP_AUTHORIZATION_FAILED (no member results).

use bytes::Bytes;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{ApiKey, LeaveGroupRequest, LeaveGroupResponse};

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::LeaveGroup), min: 0, max: 5 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: LeaveGroupRequest = ctx.decode(body)?;
    if !ctx.authz().group(op::READ, req.group_id.0.as_str()) {
        return ctx.reply(&LeaveGroupResponse::default().with_error_code(WireError::GroupAuthorizationFailed.code()));
    }
    let Ok(c) = ctx.broker.group_coordinator().await else {
        return ctx.reply(&LeaveGroupResponse::default().with_error_code(WireError::CoordinatorNotAvailable.code()));
    };
    let group = req.group_id.0.as_str();
    let mut resp = LeaveGroupResponse::default();
    let mut writes = Vec::new();
    if ctx.version < 3 {
        let (code, pending) = c.leave(group, req.member_id.as_str(), None);
        resp.error_code = code;
        writes.extend(pending);
    } else {
        resp.members = req
            .members
            .iter()
            .map(|m| {
                let (code, pending) = c.leave(group, m.member_id.as_str(), m.group_instance_id.as_ref().map(|s| s.as_str()));
                writes.extend(pending);
                MemberResponse::default().with_member_id(m.member_id.clone()).with_group_instance_id(m.group_instance_id.clone()).with_error_code(code)
            })
            .collect();
    }
    if writes.is_empty() {
        return ctx.reply(&resp);
    }
    // The group without the member must survive a restart before the member is told it left.
    let version = ctx.version;
    Ok(Reply::Later(Box::pin(async move {
        for w in writes {
            if w.durable().await.is_err() {
                resp.error_code = WireError::NotCoordinator.code();
                resp.members.iter_mut().for_each(|m| m.error_code = WireError::NotCoordinator.code());
            }
        }
        encode_body(&resp, version)
    })))
}
