//! A streams group (KIP-1071, `group.protocol=streams`): the broker owns the topology's task
//! assignment the way it owns a KIP-848 consumer group's partition assignment.
//!
//! Parts: request validation ([`validate`], Kafka 4.4's
//! `throwIfStreamsGroupHeartbeatRequestIsInvalid` word for word), the topology checked
//! against the cluster ([`topology`]), the sticky task assignor with standbys ([`assignor`])
//! and the group state machine in memory ([`group`]: epochs, target assignment,
//! revoke-before-assign reconciliation, endpoint information, shutdown requests, expiry,
//! describe), its records in Kafka 4.4's layout ([`records`], types 17 and 19-23), and the
//! group turned into those records (only what changed since the last write, tombstones for
//! departed members) and rebuilt from them. The group coordinator appends them to
//! `__consumer_offsets`, replays them at load, lists, describes and deletes streams groups
//! (`GroupCoordinator::streams_heartbeat`), expires members on its timers and checks offset
//! commits against member epochs; `Broker::start_internal_topics` creates the internal
//! topics; `handlers::streams_group_heartbeat` / `streams_group_describe` serve the APIs.
//! Not built: warm-up replicas, rack-aware assignment tags, the initial rebalance delay and
//! assignment interval (the target is computed on the heartbeat that changes the group), and
//! topology descriptions (StreamsGroupTopologyDescriptionUpdate).

pub mod assignor;
pub mod group;
pub mod records;
pub mod topology;

use crate::protocol::streams::HeartbeatRequest;
use crate::protocol::WireError;

/// Kafka's error code for a topology it refuses (`StreamsInvalidTopologyException`).
pub const STREAMS_INVALID_TOPOLOGY: i16 = WireError::StreamsInvalidTopology.code();

/// Kafka 4.4's checks of a StreamsGroupHeartbeat before the coordinator sees it, in its
/// order and with its messages: (error code, message).
pub fn validate(req: &HeartbeatRequest) -> Result<(), (i16, String)> {
    let invalid = |m: &str| Err((WireError::InvalidRequest.code(), m.to_string()));
    let empty = |s: &str| s.trim().is_empty();
    if empty(&req.member_id) {
        return invalid("MemberId can't be empty.");
    }
    if empty(&req.group_id) {
        return invalid("GroupId can't be empty.");
    }
    if req.instance_id.as_deref().is_some_and(empty) {
        return invalid("InstanceId can't be empty.");
    }
    if req.rack_id.as_deref().is_some_and(empty) {
        return invalid("RackId can't be empty.");
    }
    if req.member_epoch == 0 {
        if req.rebalance_timeout_ms == -1 {
            return invalid("RebalanceTimeoutMs must be provided in first request.");
        }
        let non_empty = |t: &Option<Vec<_>>| t.as_ref().is_some_and(|v| !v.is_empty());
        if non_empty(&req.active_tasks) {
            return invalid("ActiveTasks must be empty when (re-)joining.");
        }
        if non_empty(&req.standby_tasks) {
            return invalid("StandbyTasks must be empty when (re-)joining.");
        }
        if non_empty(&req.warmup_tasks) {
            return invalid("WarmupTasks must be empty when (re-)joining.");
        }
        let Some(topology) = &req.topology else {
            return invalid("Topology must be non-null when (re-)joining.");
        };
        for s in &topology.subtopologies {
            for t in &s.state_changelog_topics {
                if t.partitions != 0 {
                    return Err((
                        STREAMS_INVALID_TOPOLOGY,
                        format!(
                            "Changelog topic {} must have an undefined partition count, but it is set to {}.",
                            t.name, t.partitions
                        ),
                    ));
                }
            }
        }
    } else if req.member_epoch == -2 {
        if req.instance_id.is_none() {
            return invalid("InstanceId can't be null.");
        }
    } else if req.member_epoch < -2 {
        return invalid(&format!(
            "MemberEpoch is {}, but must be greater than or equal to -2.",
            req.member_epoch
        ));
    }
    let tasks = [&req.active_tasks, &req.standby_tasks, &req.warmup_tasks];
    if tasks.iter().any(|t| t.is_some()) && tasks.iter().any(|t| t.is_none()) {
        return invalid("If one task-type is non-null, all must be non-null.");
    }
    if req.member_epoch != 0 && req.topology.is_some() {
        return invalid("Topology can only be provided when (re-)joining.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::streams::{TaskIds, TopicInfo, Topology};

    fn join() -> HeartbeatRequest {
        HeartbeatRequest {
            group_id: "app".into(),
            member_id: "m1".into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            topology: Some(Topology::default()),
            ..HeartbeatRequest::default()
        }
    }

    #[test]
    fn requests_are_checked_as_kafka_4_4_does() {
        let task = || Some(vec![TaskIds::default()]);
        let cases: Vec<(HeartbeatRequest, Result<(), &str>)> = vec![
            (join(), Ok(())),
            (
                HeartbeatRequest {
                    member_id: " ".into(),
                    ..join()
                },
                Err("MemberId can't be empty."),
            ),
            (
                HeartbeatRequest {
                    group_id: "".into(),
                    ..join()
                },
                Err("GroupId can't be empty."),
            ),
            (
                HeartbeatRequest {
                    instance_id: Some("".into()),
                    ..join()
                },
                Err("InstanceId can't be empty."),
            ),
            (
                HeartbeatRequest {
                    rack_id: Some(" ".into()),
                    ..join()
                },
                Err("RackId can't be empty."),
            ),
            (
                HeartbeatRequest {
                    rebalance_timeout_ms: -1,
                    ..join()
                },
                Err("RebalanceTimeoutMs must be provided in first request."),
            ),
            (
                HeartbeatRequest {
                    active_tasks: task(),
                    ..join()
                },
                Err("ActiveTasks must be empty when (re-)joining."),
            ),
            (
                HeartbeatRequest {
                    standby_tasks: task(),
                    ..join()
                },
                Err("StandbyTasks must be empty when (re-)joining."),
            ),
            (
                HeartbeatRequest {
                    warmup_tasks: task(),
                    ..join()
                },
                Err("WarmupTasks must be empty when (re-)joining."),
            ),
            (
                HeartbeatRequest {
                    topology: None,
                    ..join()
                },
                Err("Topology must be non-null when (re-)joining."),
            ),
            (
                HeartbeatRequest {
                    active_tasks: Some(vec![]),
                    ..join()
                },
                Err("If one task-type is non-null, all must be non-null."),
            ),
            (
                HeartbeatRequest {
                    member_epoch: -2,
                    topology: None,
                    ..join()
                },
                Err("InstanceId can't be null."),
            ),
            (
                HeartbeatRequest {
                    member_epoch: -3,
                    topology: None,
                    ..join()
                },
                Err("MemberEpoch is -3, but must be greater than or equal to -2."),
            ),
            (
                HeartbeatRequest {
                    member_epoch: 4,
                    ..join()
                },
                Err("Topology can only be provided when (re-)joining."),
            ),
            (
                HeartbeatRequest {
                    member_epoch: 4,
                    topology: None,
                    ..join()
                },
                Ok(()),
            ),
        ];
        for (req, want) in cases {
            let got = validate(&req);
            assert_eq!(
                got.as_ref().map(|_| ()).map_err(|e| e.1.as_str()),
                want,
                "{req:?}"
            );
            if let Err((code, _)) = got {
                assert_eq!(code, WireError::InvalidRequest.code());
            }
        }
        let mut bad = join();
        bad.topology = Some(Topology {
            epoch: 0,
            subtopologies: vec![crate::protocol::streams::Subtopology {
                state_changelog_topics: vec![TopicInfo {
                    name: "c".into(),
                    partitions: 3,
                    ..TopicInfo::default()
                }],
                ..Default::default()
            }],
        });
        assert_eq!(
            validate(&bad),
            Err((
                STREAMS_INVALID_TOPOLOGY,
                "Changelog topic c must have an undefined partition count, but it is set to 3."
                    .into()
            ))
        );
    }
}
