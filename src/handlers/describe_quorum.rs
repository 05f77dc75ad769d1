//! DescribeQuorum (key 55), versions 0-2: the metadata quorum of partition 0 of
//! `__cluster_metadata` (what `kafka-metadata-quorum describe --status/--replication` shows).
//!
//! In a cluster every voter answers with the leader's view (asked of the quorum leader over
//! the quorum's RPC when this node does not lead, as a Kafka broker forwards the request to
//! the active controller): leader id, leader epoch (the Raft term), high watermark (the last
//! applied entry), and per voter its log end offset as far as the leader knows it matches;
//! a voter caught up with the leader's log counts as caught up (and fetched) as of the last
//! quorum acknowledgement, one the leader has no match for shows -1. Offsets are Raft indexes
//! plus one (an end, like Kafka's). v2 adds each voter's controller listener (`nodes`); the
//! directory ids (KIP-853) are zero: voters are the static `controller.quorum.voters`.
//!
//! A single node is a quorum of one: itself, leading at epoch 0, its high watermark and log
//! end the number of records in its metadata log. Another topic or partition answers
//! UNKNOWN_TOPIC_OR_PARTITION; no reachable leader, NOT_LEADER_OR_FOLLOWER.
//!
//! Authorization: DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED.

use bytes::Bytes;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::DescribeQuorum),
    min: 0,
    max: 2,
};

const METADATA_TOPIC: &str = "__cluster_metadata";

/// How long a voter waits for the leader's view.
const LEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn replica(id: i32, end: i64, fetched: i64, caught_up: i64) -> ReplicaState {
    ReplicaState::default()
        .with_replica_id(BrokerId(id))
        .with_log_end_offset(end)
        .with_last_fetch_timestamp(fetched)
        .with_last_caught_up_timestamp(caught_up)
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DescribeQuorumRequest = ctx.decode(body)?;
    if !ctx.authz().cluster(op::DESCRIBE) {
        return ctx.reply(&DescribeQuorumResponse::default().with_error_code(WireError::ClusterAuthorizationFailed.code()));
    }
    let broker = &ctx.broker;
    let now = crate::log::now_ms();
    let listener = broker
        .config
        .cluster
        .controller_listener_names
        .first()
        .cloned()
        .unwrap_or_else(|| "CONTROLLER".to_string());
    let mut resp = DescribeQuorumResponse::default();

    // (leader, epoch, high watermark, voters) of the quorum, or a top-level error.
    let quorum = match broker.metadata.quorum() {
        None => {
            let end = broker.metadata.local_log_end().unwrap_or(0);
            let me = broker.config.node_id;
            let addr = broker
                .config
                .cluster
                .controller_listen
                .map(|a| (a.ip().to_string(), a.port()))
                .unwrap_or_else(|| {
                    (
                        broker.config.advertised_host.clone(),
                        broker.config.advertised_port,
                    )
                });
            Ok((
                me,
                0,
                end,
                vec![replica(me, end, now, now)],
                vec![(me, addr.0, addr.1)],
            ))
        }
        Some(q) => match q.leader_view(LEADER_TIMEOUT).await {
            Err(e) => Err(e.to_string()),
            Ok(view) => {
                let leader_end = view.last_log_index.map_or(0, |i| i as i64 + 1);
                let acked = view
                    .millis_since_quorum_ack
                    .map_or(-1, |ms| now - ms as i64);
                let status = q.status();
                let mut voters = Vec::new();
                let mut nodes = Vec::new();
                for (id, addr) in &status.voters {
                    let id = *id as i32;
                    if id as u64 == view.leader {
                        voters.push(replica(id, leader_end, now, now));
                    } else {
                        let end = view
                            .matched
                            .get(&(id as u64))
                            .copied()
                            .flatten()
                            .map_or(-1, |i| i as i64 + 1);
                        let caught_up = if end == leader_end { acked } else { -1 };
                        voters.push(replica(id, end, caught_up, caught_up));
                    }
                    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "0"));
                    nodes.push((id, host.to_string(), port.parse().unwrap_or(0)));
                }
                Ok((
                    view.leader as i32,
                    view.term as i32,
                    view.last_applied_index.map_or(0, |i| i as i64 + 1),
                    voters,
                    nodes,
                ))
            }
        },
    };
    let (leader, epoch, hw, voters, nodes) = match quorum {
        Ok(q) => q,
        Err(message) => {
            resp.error_code = WireError::NotLeaderOrFollower.code();
            if ctx.version >= 2 {
                resp.error_message = Some(StrBytes::from_string(message));
            }
            return ctx.reply(&resp);
        }
    };
    resp.topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let d = PartitionData::default().with_partition_index(p.partition_index);
                    if t.topic_name.as_str() != METADATA_TOPIC || p.partition_index != 0 {
                        return d
                            .with_error_code(WireError::UnknownTopicOrPartition.code())
                            .with_leader_id(BrokerId(-1))
                            .with_leader_epoch(-1)
                            .with_high_watermark(-1);
                    }
                    d.with_leader_id(BrokerId(leader))
                        .with_leader_epoch(epoch)
                        .with_high_watermark(hw)
                        .with_current_voters(voters.clone())
                })
                .collect();
            TopicData::default()
                .with_topic_name(t.topic_name.clone())
                .with_partitions(partitions)
        })
        .collect();
    if ctx.version >= 2 {
        resp.nodes = nodes
            .into_iter()
            .map(|(id, host, port)| {
                Node::default()
                    .with_node_id(BrokerId(id))
                    .with_listeners(vec![Listener::default()
                        .with_name(StrBytes::from_string(listener.clone()))
                        .with_host(StrBytes::from_string(host))
                        .with_port(port)])
            })
            .collect();
    }
    ctx.reply(&resp)
}
