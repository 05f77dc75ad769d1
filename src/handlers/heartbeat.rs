//! Heartbeat (key 12), versions 0-4.
//!
//! Keeps a member's session alive. REBALANCE_IN_PROGRESS tells it to rejoin;
//! UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION / FENCED_INSTANCE_ID as in Kafka.
//! A classic member of a consumer group (online migration) is told to rejoin when the group
//! epoch moved past its member epoch, it has partitions to revoke, or partitions it waits for
//! became free; it must then rejoin within its rebalance timeout.
//!
//! Authorization: READ on the group, else GROUP_AUTHORIZATION_FAILED.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, HeartbeatRequest, HeartbeatResponse};

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::Heartbeat), min: 0, max: 4 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: HeartbeatRequest = ctx.decode(body)?;
    if !ctx.authz().group(op::READ, req.group_id.0.as_str()) {
        return ctx.reply(&HeartbeatResponse::default().with_error_code(WireError::GroupAuthorizationFailed.code()));
    }
    let code = match ctx.broker.group_coordinator().await {
        Ok(c) => c.heartbeat(req.group_id.0.as_str(), req.member_id.as_str(), req.group_instance_id.as_ref().map(|s| s.as_str()), req.generation_id),
        Err(_) => WireError::CoordinatorNotAvailable.code(),
    };
    ctx.reply(&HeartbeatResponse::default().with_error_code(code))
}
