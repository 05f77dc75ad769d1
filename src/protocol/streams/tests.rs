//! The Streams codecs against the bytes Kafka 4.4.0's Java client writes for the same messages
//! (tests/fixtures/wire, field values in its README).

use super::*;
use crate::protocol::wire::fixture;

fn body(buf: BytesMut) -> Vec<u8> {
    buf[HEADER_ROOM..].to_vec()
}

fn st(s: &str) -> String {
    s.to_string()
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: st(k),
        value: st(v),
    }
}

fn tasks(id: &str, partitions: &[i32]) -> TaskIds {
    TaskIds {
        subtopology_id: st(id),
        partitions: partitions.to_vec(),
    }
}

fn localhost() -> Endpoint {
    Endpoint {
        host: st("localhost"),
        port: 8080,
    }
}

fn truncations_fail(bytes: &[u8], version: i16) {
    for n in 0..bytes.len() {
        assert!(
            decode_heartbeat(&bytes[..n], version).is_err(),
            "prefix of {n} bytes decoded"
        );
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(decode_heartbeat(&longer, version).is_err());
}

#[test]
fn heartbeat_request_with_a_topology() {
    let bytes = fixture("streams_group_heartbeat_v1_request");
    let want = HeartbeatRequest {
        group_id: st("app"),
        member_id: st("m1"),
        member_epoch: 0,
        endpoint_information_epoch: 0,
        instance_id: None,
        rack_id: Some(st("r1")),
        rebalance_timeout_ms: 30_000,
        topology: Some(Topology {
            epoch: 1,
            subtopologies: vec![
                Subtopology {
                    subtopology_id: st("0"),
                    source_topics: vec![st("input")],
                    state_changelog_topics: vec![TopicInfo {
                        name: st("app-store-changelog"),
                        partitions: 0,
                        replication_factor: 0,
                        topic_configs: vec![kv("cleanup.policy", "compact")],
                    }],
                    repartition_sink_topics: vec![st("app-rep-repartition")],
                    ..Subtopology::default()
                },
                Subtopology {
                    subtopology_id: st("1"),
                    repartition_source_topics: vec![TopicInfo {
                        name: st("app-rep-repartition"),
                        partitions: 4,
                        replication_factor: -1,
                        topic_configs: vec![],
                    }],
                    copartition_groups: vec![CopartitionGroup {
                        source_topics: vec![0],
                        source_topic_regex: vec![],
                        repartition_source_topics: vec![0],
                    }],
                    ..Subtopology::default()
                },
            ],
        }),
        active_tasks: Some(vec![]),
        standby_tasks: Some(vec![]),
        warmup_tasks: Some(vec![]),
        process_id: Some(st("p-1")),
        user_endpoint: Some(localhost()),
        client_tags: Some(vec![kv("zone", "a")]),
        task_offsets: Some(vec![TaskOffset {
            subtopology_id: st("0"),
            partition: 1,
            offset: 10,
        }]),
        task_end_offsets: Some(vec![TaskOffset {
            subtopology_id: st("0"),
            partition: 1,
            offset: 12,
        }]),
        shutdown_application: false,
    };
    assert_eq!(decode_heartbeat(&bytes, 1).unwrap(), want);
    // v0 and v1 requests have the same bytes.
    assert_eq!(decode_heartbeat(&bytes, 0).unwrap(), want);
    truncations_fail(&bytes, 1);
    assert!(decode_heartbeat(&bytes, 2).is_err());
}

#[test]
fn heartbeat_request_with_every_nullable_field_null() {
    let bytes = fixture("streams_group_heartbeat_v0_request_minimal");
    let want = HeartbeatRequest {
        group_id: st("app"),
        member_id: st("m1"),
        member_epoch: 5,
        endpoint_information_epoch: 1,
        rebalance_timeout_ms: -1,
        shutdown_application: true,
        ..HeartbeatRequest::default()
    };
    assert_eq!(decode_heartbeat(&bytes, 0).unwrap(), want);
    truncations_fail(&bytes, 0);
}

fn heartbeat_response() -> HeartbeatResponse {
    HeartbeatResponse {
        member_id: st("m1"),
        member_epoch: 2,
        heartbeat_interval_ms: 5000,
        acceptable_recovery_lag: 10_000,
        task_offset_interval_ms: 60_000,
        status: Some(vec![Status {
            status_code: 1,
            status_detail: st("Internal topics are missing: [app-rep-repartition]"),
        }]),
        active_tasks: Some(vec![tasks("0", &[0, 1])]),
        standby_tasks: Some(vec![]),
        warmup_tasks: Some(vec![]),
        topology_description_required: true,
        endpoint_information_epoch: 1,
        partitions_by_user_endpoint: Some(vec![EndpointToPartitions {
            user_endpoint: localhost(),
            active_partitions: vec![TopicPartitions {
                topic: st("input"),
                partitions: vec![0, 1],
            }],
            standby_partitions: vec![],
        }]),
        ..HeartbeatResponse::default()
    }
}

#[test]
fn heartbeat_responses() {
    let resp = heartbeat_response();
    assert_eq!(
        body(encode_heartbeat(&resp, 1)),
        fixture("streams_group_heartbeat_v1_response")
    );
    assert_eq!(
        body(encode_heartbeat(&resp, 0)),
        fixture("streams_group_heartbeat_v0_response")
    );
    let error = HeartbeatResponse {
        error_code: 42,
        error_message: Some(st("MemberEpoch is invalid.")),
        ..HeartbeatResponse::default()
    };
    assert_eq!(
        body(encode_heartbeat(&error, 0)),
        fixture("streams_group_heartbeat_v0_response_error")
    );
}

#[test]
fn describe_requests() {
    let v1 = decode_describe(&fixture("streams_group_describe_v1_request"), 1).unwrap();
    assert_eq!(
        v1,
        DescribeRequest {
            group_ids: vec![st("app"), st("nope")],
            include_authorized_operations: true,
            include_topology_description: true,
        }
    );
    let bytes = fixture("streams_group_describe_v0_request");
    let v0 = decode_describe(&bytes, 0).unwrap();
    assert_eq!(v0.group_ids, [st("app")]);
    assert!(!v0.include_authorized_operations && !v0.include_topology_description);
    for n in 0..bytes.len() {
        assert!(decode_describe(&bytes[..n], 0).is_err());
    }
}

#[test]
fn describe_responses() {
    let assignment = Assignment {
        active_tasks: vec![tasks("0", &[0, 1])],
        standby_tasks: vec![],
        warmup_tasks: vec![],
    };
    let mut resp = DescribeResponse {
        throttle_time_ms: 0,
        groups: vec![
            DescribedGroup {
                group_id: st("app"),
                group_state: st("Stable"),
                group_epoch: 3,
                assignment_epoch: 3,
                topology: Some(DescribedTopology {
                    epoch: 1,
                    subtopologies: Some(vec![DescribedSubtopology {
                        subtopology_id: st("0"),
                        source_topics: vec![st("input")],
                        repartition_sink_topics: vec![],
                        state_changelog_topics: vec![TopicInfo {
                            name: st("app-store-changelog"),
                            partitions: 2,
                            replication_factor: 1,
                            topic_configs: vec![],
                        }],
                        repartition_source_topics: vec![],
                    }]),
                }),
                members: vec![DescribedMember {
                    member_id: st("m1"),
                    member_epoch: 3,
                    client_id: st("app-client"),
                    client_host: st("/127.0.0.1"),
                    topology_epoch: 1,
                    process_id: st("p-1"),
                    user_endpoint: Some(localhost()),
                    client_tags: vec![kv("zone", "a")],
                    assignment: assignment.clone(),
                    target_assignment: assignment,
                    ..DescribedMember::default()
                }],
                authorized_operations: i32::MAX,
                ..DescribedGroup::default()
            },
            DescribedGroup {
                error_code: 69,
                error_message: Some(st("Group nope not found.")),
                group_id: st("nope"),
                group_state: st("Dead"),
                group_epoch: -1,
                assignment_epoch: -1,
                authorized_operations: i32::MIN,
                ..DescribedGroup::default()
            },
        ],
    };
    assert_eq!(
        body(encode_describe(&resp, 0)),
        fixture("streams_group_describe_v0_response")
    );
    resp.groups[0].assignor_name = Some(st("sticky"));
    assert_eq!(
        body(encode_describe(&resp, 1)),
        fixture("streams_group_describe_v1_response")
    );
}
