//! SyncGroup (key 14), versions 0-5.
//!
//! Members wait until the leader sends the assignment for the generation; the leader's
//! request completes the rebalance (group Stable, membership persisted). Errors follow Kafka:
//! UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID,
//! INCONSISTENT_GROUP_PROTOCOL (v5 protocol type/name mismatch).
//! A classic member of a consumer group (online migration) gets its current assignment at once,
//! as a ConsumerProtocol Assignment; its generation is its member epoch; REBALANCE_IN_PROGRESS
//! when the group epoch moved past it (it must rejoin first).
//!
//! Authorization: v5 without protocol type or name: INCONSISTENT_GROUP_PROTOCOL; then READ on
//! the group, else GROUP_AUTHORIZATION_FAILED.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::SyncGroup), min: 0, max: 5 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: SyncGroupRequest = ctx.decode(body)?;
    let version = ctx.version;
    let broker = ctx.broker.clone();
    // Kafka checks that v5 carries the protocol type and name before READ on the group.
    if version >= 5 && (req.protocol_type.is_none() || req.protocol_name.is_none()) {
        return ctx.reply(&SyncGroupResponse::default().with_error_code(WireError::InconsistentGroupProtocol.code()));
    }
    let allowed = ctx.authz().group(op::READ, req.group_id.0.as_str());
    Ok(Reply::Later(Box::pin(async move {
        let mut resp = SyncGroupResponse::default();
        if !allowed {
            resp.error_code = WireError::GroupAuthorizationFailed.code();
            return encode_body(&resp, version);
        }
        let Ok(coordinator) = broker.group_coordinator().await else {
            resp.error_code = WireError::CoordinatorNotAvailable.code();
            return encode_body(&resp, version);
        };
        let assignments = req.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect();
        let r = coordinator
            .sync(
                req.group_id.0.as_str(),
                req.member_id.as_str(),
                req.group_instance_id.as_ref().map(|s| s.as_str()),
                req.generation_id,
                req.protocol_type.as_ref().map(|s| s.as_str()),
                req.protocol_name.as_ref().map(|s| s.as_str()),
                assignments,
            )
            .await;
        resp.error_code = r.error;
        resp.assignment = r.assignment;
        if version >= 5 {
            resp.protocol_type = r.protocol_type.map(StrBytes::from_string);
            resp.protocol_name = r.protocol_name.map(StrBytes::from_string);
        }
        encode_body(&resp, version)
    })))
}
