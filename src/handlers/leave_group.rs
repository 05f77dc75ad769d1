//! LeaveGroup (key 13), versions 0-5.
//!
//! v0-2 remove one member by id; v3+ remove a batch (by member id or, for static members, by
//! group instance id) with a per-member error. The group rebalances without them at once.
//! Classic members of a consumer group (online migration) leave it the same way (group epoch
//! bumped); a consumer-protocol member named here answers UNKNOWN_MEMBER_ID, as in Kafka.

use bytes::Bytes;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{ApiKey, LeaveGroupRequest, LeaveGroupResponse};

use crate::handlers::{ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::LeaveGroup, min: 0, max: 5 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: LeaveGroupRequest = ctx.decode(body)?;
    let Ok(c) = ctx.broker.group_coordinator() else {
        return ctx.reply(&LeaveGroupResponse::default().with_error_code(WireError::CoordinatorNotAvailable.code()));
    };
    let group = req.group_id.0.as_str();
    let mut resp = LeaveGroupResponse::default();
    if ctx.version < 3 {
        resp.error_code = c.leave(group, req.member_id.as_str(), None);
    } else {
        resp.members = req
            .members
            .iter()
            .map(|m| {
                let code = c.leave(group, m.member_id.as_str(), m.group_instance_id.as_ref().map(|s| s.as_str()));
                MemberResponse::default().with_member_id(m.member_id.clone()).with_group_instance_id(m.group_instance_id.clone()).with_error_code(code)
            })
            .collect();
    }
    ctx.reply(&resp)
}
