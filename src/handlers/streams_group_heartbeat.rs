//! StreamsGroupHeartbeat (key 88), versions 0-1: the Streams rebalance protocol (KIP-1071).
//!
//! A Kafka Streams client (`group.protocol=streams`) joins (epoch 0, with its topology),
//! heartbeats and leaves (epoch -1, or -2 for a static member) a streams group whose task
//! assignment the broker computes (`coordinator::streams_group`: sticky, with standby replicas).
//! The request is first checked as Kafka 4.4 checks it (`streams_group::validate`, its
//! messages); the response carries the member epoch, the member's active/standby tasks when
//! they changed, the topology's status (missing source or internal topics, incorrectly
//! partitioned topics, a shutdown requested by another member) and, when the endpoint epoch
//! moved, every member's endpoint-to-partitions map for interactive queries. Internal topics
//! (changelogs, repartition topics) the topology needs are created by the broker in the
//! background, as Kafka does; until they exist the status says MISSING_INTERNAL_TOPICS and the
//! member gets no tasks. The response is sent after the fsync of the records its changes wrote.
//! Group configs `streams.session.timeout.ms`, `streams.heartbeat.interval.ms` and
//! `streams.num.standby.replicas` apply over the broker's `group.streams.*`.
//! v1 adds `TopologyDescriptionRequired`: always false (Strom keeps no topology description,
//! so it never asks for one).
//!
//! Authorization: READ on the group (GROUP_AUTHORIZATION_FAILED), then DESCRIBE on every topic
//! of a topology sent (source, repartition and changelog topics), else
//! TOPIC_AUTHORIZATION_FAILED. (Kafka's CREATE check for the internal topics it would create is
//! not made: Strom creates them as the broker.)

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::coordinator::streams_group::{self, group::TopicsView};
use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::metadata::is_internal_topic;
use crate::protocol::streams::{decode_heartbeat, encode_heartbeat, HeartbeatResponse};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::STREAMS_GROUP_HEARTBEAT,
    min: 0,
    max: 1,
};

fn error(code: i16, message: String) -> HeartbeatResponse {
    HeartbeatResponse {
        error_code: code,
        error_message: Some(message),
        ..HeartbeatResponse::default()
    }
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req = decode_heartbeat(&body, ctx.version)?;
    let version = ctx.version;
    if let Err((code, message)) = streams_group::validate(&req) {
        return Ok(Reply::Now(encode_heartbeat(&error(code, message), version)));
    }
    // READ on the group, then DESCRIBE on every topic of the topology (source, repartition and
    // changelog topics), else TOPIC_AUTHORIZATION_FAILED.
    let authz = ctx.authz();
    if !authz.group(op::READ, &req.group_id) {
        return Ok(Reply::Now(encode_heartbeat(&error(WireError::GroupAuthorizationFailed.code(), "The client is not authorized to read the group.".into()), version)));
    }
    if let Some(t) = &req.topology {
        let mut describable = authz.names(op::DESCRIBE, crate::security::acl::resource::TOPIC);
        let denied = t.subtopologies.iter().any(|s| {
            s.source_topics.iter().chain(&s.repartition_sink_topics).chain(s.state_changelog_topics.iter().map(|i| &i.name)).chain(s.repartition_source_topics.iter().map(|i| &i.name)).any(|n| !describable.allows(n))
        });
        if denied {
            return Ok(Reply::Now(encode_heartbeat(&error(WireError::TopicAuthorizationFailed.code(), "The client is not authorized to describe the topology's topics.".into()), version)));
        }
    }
    let Ok(coordinator) = ctx.broker.group_coordinator().await else {
        let resp = error(
            WireError::CoordinatorNotAvailable.code(),
            "The coordinator is not available.".into(),
        );
        return Ok(Reply::Now(encode_heartbeat(&resp, version)));
    };
    let topics: BTreeMap<String, i32> = ctx
        .broker
        .metadata
        .topics()
        .into_iter()
        .map(|t| (t.name, t.partitions))
        .collect();
    // Source-topic regexes match user topics only, as Kafka's.
    let names: Vec<String> = topics
        .keys()
        .filter(|n| !is_internal_topic(n))
        .cloned()
        .collect();
    let partitions_of = |name: &str| topics.get(name).copied();
    let view = TopicsView {
        partitions_of: &partitions_of,
        names: &names,
    };
    let group_configs = ctx.broker.metadata.group_configs(&req.group_id);
    let client_host = format!("/{}", ctx.peer.ip());
    let outcome = coordinator.streams_heartbeat(
        &req.group_id,
        &req,
        ctx.client_id(),
        &client_host,
        &view,
        &group_configs,
    );
    let (out, pending) = match outcome {
        Ok(r) => r,
        Err((code, message)) => {
            return Ok(Reply::Now(encode_heartbeat(&error(code, message), version)));
        }
    };
    if !out.to_create.is_empty() {
        ctx.broker.start_internal_topics(out.to_create);
    }
    let resp = out.response;
    let Some(w) = pending else {
        return Ok(Reply::Now(encode_heartbeat(&resp, version)));
    };
    // The epochs and tasks in the response must survive a restart: answer after the fsync.
    Ok(Reply::Later(Box::pin(async move {
        if w.durable().await.is_err() {
            let failed = error(
                WireError::NotCoordinator.code(),
                "The group coordinator could not persist the heartbeat.".into(),
            );
            return Ok(encode_heartbeat(&failed, version));
        }
        Ok(encode_heartbeat(&resp, version))
    })))
}
