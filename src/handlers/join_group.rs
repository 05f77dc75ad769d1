//! JoinGroup (key 11), versions 0-9 (classic group protocol).
//!
//! v4+: a new dynamic member first gets MEMBER_ID_REQUIRED with its id, then joins with it.
//! Static members (`group.instance.id`, v5+) skip that round trip and keep their place and
//! assignment when they come back. The response waits until the group's join phase completes
//! (all members rejoined, or the rebalance timeout). The leader gets every member's metadata;
//! the broker never interprets it, so any client-side assignor works.
//! An empty KIP-848 consumer group of the same id becomes a classic group (its records are
//! tombstoned, offsets stay), as in Kafka 4.x. To a non-empty one the member joins as a classic
//! member of the consumer group (online migration, KIP-848): the answer comes at once, with
//! the member epoch as generation, no leader, and the member's first protocol; its assignment
//! comes from SyncGroup. A protocol type other than `consumer` answers
//! INCONSISTENT_GROUP_PROTOCOL.
//!
//! Authorization: READ on the group, else GROUP_AUTHORIZATION_FAILED (generation -1).

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{ApiKey, JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::group::JoinRequest;
use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::JoinGroup), min: 0, max: 9 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: JoinGroupRequest = ctx.decode(body)?;
    let version = ctx.version;
    let broker = ctx.broker.clone();
    let group_id = req.group_id.0.to_string();
    let join = JoinRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: ctx.client_id().to_string(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 { req.rebalance_timeout_ms } else { req.session_timeout_ms },
        protocol_type: req.protocol_type.to_string(),
        protocols: req.protocols.iter().map(|p| (p.name.to_string(), p.metadata.clone())).collect(),
        require_known_member_id: version >= 4,
    };
    let allowed = ctx.authz().group(op::READ, &group_id);
    Ok(Reply::Later(Box::pin(async move {
        let mut resp = JoinGroupResponse::default();
        if !allowed {
            resp.error_code = WireError::GroupAuthorizationFailed.code();
            resp.generation_id = -1;
            if version < 7 {
                resp.protocol_name = Some(StrBytes::default());
            }
            return encode_body(&resp, version);
        }
        if group_id.is_empty() {
            resp.error_code = WireError::InvalidGroupId.code();
            resp.member_id = StrBytes::from_string(join.member_id);
            resp.generation_id = -1;
            return encode_body(&resp, version);
        }
        let coordinator = match broker.group_coordinator().await {
            Ok(c) => c,
            Err(_) => {
                resp.error_code = WireError::CoordinatorNotAvailable.code();
                resp.generation_id = -1;
                return encode_body(&resp, version);
            }
        };
        let topics = crate::handlers::consumer_group_heartbeat::topics_view(&broker);
        let r = coordinator.join(&group_id, join, &topics).await;
        resp.error_code = r.error;
        resp.generation_id = r.generation;
        resp.member_id = StrBytes::from_string(r.member_id);
        resp.leader = StrBytes::from_string(r.leader);
        if version >= 7 {
            resp.protocol_type = r.protocol_type.map(StrBytes::from_string);
        }
        resp.protocol_name = r.protocol_name.map(StrBytes::from_string);
        if version < 7 && resp.protocol_name.is_none() {
            resp.protocol_name = Some(StrBytes::default());
        }
        resp.members = r
            .members
            .into_iter()
            .map(|m| {
                let mut jm = JoinGroupResponseMember::default().with_member_id(StrBytes::from_string(m.member_id)).with_metadata(m.metadata);
                if version >= 5 {
                    jm.group_instance_id = m.instance_id.map(StrBytes::from_string);
                }
                jm
            })
            .collect();
        encode_body(&resp, version)
    })))
}
