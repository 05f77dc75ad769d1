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

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::consumer_group::{HeartbeatRequest, TopicsView};
use crate::config::group_configs;
use crate::handlers::{ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::ConsumerGroupHeartbeat, min: 0, max: 1 };

pub fn topics_view(broker: &crate::broker::Broker) -> TopicsView {
    TopicsView { by_name: broker.metadata.topics().into_iter().map(|t| (t.name, (t.id, t.partitions))).collect() }
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: ConsumerGroupHeartbeatRequest = ctx.decode(body)?;
    let mut resp = ConsumerGroupHeartbeatResponse::default().with_member_epoch(-1);
    let group = req.group_id.0.to_string();
    if group.is_empty() {
        resp.error_code = WireError::InvalidRequest.code();
        resp.error_message = Some(StrBytes::from_static_str("GroupId can't be empty."));
        return ctx.reply(&resp);
    }
    let Ok(coordinator) = ctx.broker.group_coordinator() else {
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
