//! ConsumerGroupHeartbeat (key 68), versions 0-1: the KIP-848 consumer group protocol.
//!
//! Joins (epoch 0), heartbeats, leaves (epoch -1/-2) a consumer group whose assignment the
//! broker computes (`uniform` or `range` server assignor). v0: the broker generates the member
//! id on join; v1: the client does. The response carries the member epoch and, when it changed,
//! the member's assignment; partitions are revoked before they move (see coordinator).
//! The response is sent after the fsync of the records its changes wrote (membership, epochs,
//! assignments survive a restart). A join (epoch 0) to an empty classic group of the same id
//! (e.g. one with only committed offsets) makes it a consumer group, keeping its offsets. A
//! join to a non-empty classic group upgrades it online (`group.consumer.migration.policy`
//! upgrade/bidirectional, every member on the `consumer` embedded protocol, readable
//! metadata): its members stay as classic members. Otherwise, or for any other epoch to a
//! group that is not a consumer group, GROUP_ID_NOT_FOUND like Kafka. The leave of the last
//! consumer-protocol member, classic members remaining, turns the group classic again
//! (policy downgrade/bidirectional) and starts a rebalance.
//!
//! Authorization: READ on the group (GROUP_AUTHORIZATION_FAILED), then DESCRIBE on every
//! subscribed topic name: any denied is TOPIC_AUTHORIZATION_FAILED and the heartbeat is not
//! processed. (Regex subscriptions are not yet narrowed to the topics the member may describe.)

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::consumer_group::{
    HeartbeatRequest, TopicsView, LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH,
};
use crate::config::group_configs;
use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::ConsumerGroupHeartbeat), min: 0, max: 1 };

pub fn topics_view(broker: &crate::broker::Broker) -> TopicsView {
    TopicsView { by_name: broker.metadata.topics().into_iter().map(|t| (t.name, (t.id, t.partitions))).collect() }
}

/// The request-shape checks Kafka 4.4 makes before the coordinator sees a heartbeat
/// (`GroupCoordinatorService.throwIfConsumerGroupHeartbeatRequestIsInvalid`), in its order and
/// with its messages (INVALID_REQUEST).
fn validate(req: &ConsumerGroupHeartbeatRequest, version: i16) -> Result<(), &'static str> {
    let epoch = req.member_epoch;
    // Kafka's `throwIfEmptyString`: empty after trimming.
    let blank = |s: &str| s.trim().is_empty();
    if (version >= 1 || epoch > 0 || epoch == LEAVE_GROUP_MEMBER_EPOCH) && blank(&req.member_id) {
        return Err("MemberId can't be empty.");
    }
    if blank(&req.group_id.0) {
        return Err("GroupId can't be empty.");
    }
    if req.instance_id.as_ref().is_some_and(|s| blank(s)) {
        return Err("InstanceId can't be empty.");
    }
    if req.rack_id.as_ref().is_some_and(|s| blank(s)) {
        return Err("RackId can't be empty.");
    }
    match epoch {
        0 => {
            if req.rebalance_timeout_ms == -1 {
                return Err("RebalanceTimeoutMs must be provided in first request.");
            }
            if req.topic_partitions.as_ref().is_none_or(|tps| !tps.is_empty()) {
                return Err("TopicPartitions must be empty when (re-)joining.");
            }
            if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
                return Err("Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.");
            }
        }
        LEAVE_GROUP_STATIC_MEMBER_EPOCH if req.instance_id.is_none() => {
            return Err("InstanceId can't be null.");
        }
        e if e < LEAVE_GROUP_STATIC_MEMBER_EPOCH => return Err("MemberEpoch is invalid."),
        _ => {}
    }
    Ok(())
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: ConsumerGroupHeartbeatRequest = ctx.decode(body)?;
    let mut resp = ConsumerGroupHeartbeatResponse::default().with_member_epoch(-1);
    let group = req.group_id.0.to_string();
    if let Err(message) = validate(&req, ctx.version) {
        resp.error_code = WireError::InvalidRequest.code();
        resp.error_message = Some(StrBytes::from_static_str(message));
        return ctx.reply(&resp);
    }
    // READ on the group, then DESCRIBE on every subscribed topic name (Kafka 4.x).
    let authz = ctx.authz();
    if !authz.group(op::READ, &group) {
        resp.error_code = WireError::GroupAuthorizationFailed.code();
        return ctx.reply(&resp);
    }
    if let Some(names) = &req.subscribed_topic_names {
        let mut describable = authz.names(op::DESCRIBE, crate::security::acl::resource::TOPIC);
        let denied: Vec<&str> = names.iter().map(|t| t.0.as_str()).filter(|t| !describable.allows(t)).collect();
        if !denied.is_empty() {
            resp.error_code = WireError::TopicAuthorizationFailed.code();
            resp.error_message = Some(StrBytes::from_string(format!("The member is not authorized to describe the subscribed topics {denied:?}.")));
            return ctx.reply(&resp);
        }
    }
    let Ok(coordinator) = ctx.broker.group_coordinator().await else {
        resp.error_code = WireError::CoordinatorNotAvailable.code();
        return ctx.reply(&resp);
    };
    let owned = req.topic_partitions.as_ref().map(|tps| {
        let mut a: BTreeMap<uuid::Uuid, BTreeSet<i32>> = BTreeMap::new();
        for tp in tps {
            a.entry(tp.topic_id).or_default().extend(tp.partitions.iter().copied());
        }
        a.retain(|_, ps| !ps.is_empty());
        a
    });
    let hb = HeartbeatRequest {
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: req.rack_id.as_ref().map(|s| s.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_names: req.subscribed_topic_names.as_ref().map(|v| v.iter().map(|t| t.0.to_string()).collect()),
        subscribed_regex: req.subscribed_topic_regex.as_ref().map(|s| s.to_string()),
        server_assignor: req.server_assignor.as_ref().map(|s| s.to_string()),
        owned,
        client_id: ctx.client_id().to_string(),
        client_host: format!("/{}", ctx.peer.ip()),
        generate_id: ctx.version == 0,
    };
    // The group's own consumer.session.timeout.ms / consumer.heartbeat.interval.ms, if set.
    let (session_timeout_ms, heartbeat_interval_ms) =
        group_configs::consumer_timings(&ctx.broker.metadata.group_configs(&group), &coordinator.config);
    let pending = match coordinator.consumer_heartbeat(&group, hb, &topics_view(&ctx.broker), session_timeout_ms) {
        Ok((r, pending)) => {
            resp.member_id = Some(StrBytes::from_string(r.member_id));
            resp.member_epoch = r.member_epoch;
            resp.heartbeat_interval_ms = heartbeat_interval_ms;
            resp.assignment = r.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter().map(|(t, ps)| TopicPartitions::default().with_topic_id(t).with_partitions(ps.into_iter().collect())).collect(),
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
    // The epochs and assignment in the response must survive a restart: answer after the fsync.
    let version = ctx.version;
    Ok(Reply::Later(Box::pin(async move {
        if w.durable().await.is_err() {
            resp = ConsumerGroupHeartbeatResponse::default()
                .with_member_epoch(-1)
                .with_member_id(resp.member_id)
                .with_error_code(WireError::NotCoordinator.code())
                .with_error_message(Some(StrBytes::from_static_str("The group coordinator could not persist the heartbeat.")));
        }
        encode_body(&resp, version)
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as Owned;
    use kafka_protocol::messages::{GroupId, TopicName};

    fn join() -> ConsumerGroupHeartbeatRequest {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_member_id(StrBytes::from_static_str("m"))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str("t"))]))
            .with_topic_partitions(Some(Vec::new()))
    }

    #[test]
    fn requests_kafka_refuses_before_the_coordinator_are_refused_with_its_messages() {
        let s = |v: &str| Some(StrBytes::from_string(v.to_string()));
        let cases: Vec<(ConsumerGroupHeartbeatRequest, i16, Result<(), &str>)> = vec![
            (join(), 1, Ok(())),
            (join().with_member_id(StrBytes::default()), 0, Ok(())),
            (join().with_member_id(StrBytes::default()), 1, Err("MemberId can't be empty.")),
            (join().with_group_id(GroupId(StrBytes::default())), 1, Err("GroupId can't be empty.")),
            (join().with_instance_id(s("")), 1, Err("InstanceId can't be empty.")),
            (join().with_rack_id(s("")), 1, Err("RackId can't be empty.")),
            (join().with_member_id(StrBytes::from_static_str("  ")), 1, Err("MemberId can't be empty.")),
            (
                join().with_rebalance_timeout_ms(-1),
                1,
                Err("RebalanceTimeoutMs must be provided in first request."),
            ),
            (join().with_topic_partitions(None), 1, Err("TopicPartitions must be empty when (re-)joining.")),
            (
                join().with_topic_partitions(Some(vec![Owned::default()])),
                1,
                Err("TopicPartitions must be empty when (re-)joining."),
            ),
            (
                join().with_subscribed_topic_names(None),
                1,
                Err("Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining."),
            ),
            (join().with_subscribed_topic_names(None).with_subscribed_topic_regex(s("t.*")), 1, Ok(())),
            // A static leave must name its instance (franz-go 1.22 sends -2 without one).
            (join().with_member_epoch(-2), 1, Err("InstanceId can't be null.")),
            (join().with_member_epoch(-2).with_instance_id(s("i")), 1, Ok(())),
            (join().with_member_epoch(-1).with_member_id(StrBytes::default()), 0, Err("MemberId can't be empty.")),
            (join().with_member_epoch(-3), 1, Err("MemberEpoch is invalid.")),
            (join().with_member_epoch(5).with_topic_partitions(None).with_rebalance_timeout_ms(-1), 1, Ok(())),
        ];
        for (i, (req, version, want)) in cases.into_iter().enumerate() {
            assert_eq!(validate(&req, version), want, "case {i}");
        }
    }
}
