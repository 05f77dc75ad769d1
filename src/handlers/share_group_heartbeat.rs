//! ShareGroupHeartbeat (key 76), version 1: joins (epoch 0), heartbeats and leaves (epoch -1)
//! a share group (KIP-932), whose assignment the broker computes with Kafka's `simple`
//! assignor (see [`crate::coordinator::share_group`]).
//!
//! Checks in Kafka 4.4's order: the member id must be 1-36 characters (INVALID_REQUEST, no
//! message, as Kafka's `isMemberIdValid`), then `throwIfShareGroupHeartbeatRequestIsInvalid`'s
//! messages (blank member id, group id or rack id; a join without subscribed topics; an epoch
//! below -1). A group id used by another kind of group answers GROUP_ID_NOT_FOUND "Group X is
//! not a share group."; a full group GROUP_MAX_SIZE_REACHED. The group's
//! `share.session.timeout.ms` / `share.heartbeat.interval.ms` (else the broker's
//! `group.share.*`) apply. The response is sent after the fsync of the records its changes
//! wrote (membership, epochs and assignments survive a restart). Served only where the share
//! APIs are (a single node, see [`crate::coordinator::share`]); a cluster answers
//! COORDINATOR_NOT_AVAILABLE.
//!
//! Authorization: READ on the group (GROUP_AUTHORIZATION_FAILED), then DESCRIBE on every
//! subscribed topic (TOPIC_AUTHORIZATION_FAILED).

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ApiKey, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

use crate::config::group_configs;
use crate::coordinator::share_group::{HeartbeatRequest, Limits};
use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::ShareGroupHeartbeat), min: 1, max: 1 };

fn validate(req: &ShareGroupHeartbeatRequest) -> Result<(), Option<&'static str>> {
    let blank = |s: &str| s.trim().is_empty();
    if req.member_id.is_empty() || req.member_id.chars().count() > 36 {
        return Err(None);
    }
    if blank(&req.member_id) {
        return Err(Some("MemberId can't be empty."));
    }
    if blank(&req.group_id.0) {
        return Err(Some("GroupId can't be empty."));
    }
    if req.rack_id.as_ref().is_some_and(|r| blank(r)) {
        return Err(Some("RackId can't be empty."));
    }
    if req.member_epoch == 0 && req.subscribed_topic_names.as_ref().is_none_or(|t| t.is_empty()) {
        return Err(Some("SubscribedTopicNames must be set in first request."));
    }
    if req.member_epoch < -1 {
        return Err(Some("MemberEpoch is invalid."));
    }
    Ok(())
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: ShareGroupHeartbeatRequest = ctx.decode(body)?;
    let mut resp = ShareGroupHeartbeatResponse::default().with_member_epoch(-1);
    if let Err(message) = validate(&req) {
        resp.error_code = WireError::InvalidRequest.code();
        resp.error_message = message.map(StrBytes::from_static_str);
        return ctx.reply(&resp);
    }
    let group = req.group_id.0.to_string();
    // READ on the group, then DESCRIBE on every subscribed topic name.
    let authz = ctx.authz();
    if !authz.group(op::READ, &group) {
        resp.error_code = WireError::GroupAuthorizationFailed.code();
        return ctx.reply(&resp);
    }
    if let Some(names) = &req.subscribed_topic_names {
        let mut describable = authz.names(op::DESCRIBE, crate::security::acl::resource::TOPIC);
        if names.iter().any(|t| !describable.allows(t.0.as_str())) {
            resp.error_code = WireError::TopicAuthorizationFailed.code();
            return ctx.reply(&resp);
        }
    }
    let coordinator = match ctx.broker.group_coordinator().await {
        Ok(c) if ctx.broker.share_manager().await.is_ok() => c,
        _ => {
            resp.error_code = WireError::CoordinatorNotAvailable.code();
            return ctx.reply(&resp);
        }
    };
    let overrides = ctx.broker.metadata.group_configs(&group);
    let groups = &ctx.broker.effective_config().groups;
    let (session_ms, heartbeat_ms, ..) = group_configs::share_ints(&overrides, groups);
    let limits = Limits {
        max_size: groups.share_max_size,
        session_timeout: Duration::from_millis(session_ms),
        heartbeat_interval_ms: heartbeat_ms,
    };
    let topics: std::collections::HashMap<String, (uuid::Uuid, i32)> =
        ctx.broker.metadata.topics().into_iter().map(|t| (t.name, (t.id, t.partitions))).collect();
    let view = |name: &str| topics.get(name).copied();
    let hb = HeartbeatRequest {
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        rack_id: req.rack_id.as_ref().map(|s| s.to_string()),
        subscribed: req.subscribed_topic_names.as_ref().map(|v| v.iter().map(|t| t.0.to_string()).collect()),
    };
    let client_host = format!("/{}", ctx.peer.ip());
    let pending = match coordinator.share_heartbeat(&group, hb, ctx.client_id(), &client_host, &view, &limits) {
        Ok((r, pending)) => {
            resp.member_id = Some(StrBytes::from_string(r.member_id));
            resp.member_epoch = r.member_epoch;
            resp.heartbeat_interval_ms = r.heartbeat_interval_ms;
            resp.assignment = r.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter().map(|(t, ps)| TopicPartitions::default().with_topic_id(t).with_partitions(ps)).collect(),
                )
            });
            pending
        }
        Err((code, msg)) => {
            resp.error_code = code;
            resp.error_message = Some(StrBytes::from_string(msg));
            resp.member_id = Some(req.member_id.clone());
            None
        }
    };
    let Some(w) = pending else { return ctx.reply(&resp) };
    let version = ctx.version;
    Ok(Reply::Later(Box::pin(async move {
        if w.durable().await.is_err() {
            resp = ShareGroupHeartbeatResponse::default()
                .with_member_epoch(-1)
                .with_member_id(resp.member_id)
                .with_error_code(WireError::NotCoordinator.code())
                .with_error_message(Some(StrBytes::from_static_str("The group coordinator could not persist the heartbeat.")));
        }
        encode_body(&resp, version)
    })))
}
