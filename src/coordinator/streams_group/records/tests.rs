//! Each record against the key and value bytes Kafka 4.4.0's `GroupCoordinatorRecordSerde`
//! writes (tests/fixtures/wire/streams_record_*, values in its README).

use super::*;
use crate::protocol::streams::{CopartitionGroup, Subtopology, TopicInfo};
use crate::protocol::wire::fixture;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: v.into(),
    }
}

fn tasks(id: &str, p: &[i32]) -> TaskIds {
    TaskIds {
        subtopology_id: id.into(),
        partitions: p.to_vec(),
    }
}

/// Encodes `value` under `kind`, compares both with Kafka's bytes, decodes them back, and
/// checks every strict prefix of the value is refused.
fn check(name: &str, kind: Kind, value: Value) {
    let key = fixture(&format!("streams_record_{name}_key"));
    assert_eq!(encode_key("app", &kind), key, "{name} key");
    assert_eq!(decode_key(&key).unwrap(), ("app".to_string(), kind.clone()));
    let bytes = fixture(&format!("streams_record_{name}_value"));
    assert_eq!(encode_value(&value), bytes, "{name} value");
    assert_eq!(decode_value(&kind, &bytes).unwrap(), value);
    for n in 0..bytes.len() {
        assert!(
            decode_value(&kind, &bytes[..n]).is_err(),
            "{name}: {n}-byte prefix decoded"
        );
    }
}

#[test]
fn records_match_kafkas_bytes() {
    check(
        "metadata",
        Kind::Metadata,
        Value::Metadata(MetadataValue {
            epoch: 5,
            metadata_hash: 1_234_567_890_123,
            validated_topology_epoch: 1,
            last_assignment_configs: Some(vec![kv("num.standby.replicas", "1")]),
        }),
    );
    check(
        "topology",
        Kind::Topology,
        Value::Topology(Topology {
            epoch: 1,
            subtopologies: vec![
                Subtopology {
                    subtopology_id: "0".into(),
                    source_topics: vec!["input".into()],
                    repartition_sink_topics: vec!["app-rep-repartition".into()],
                    ..Subtopology::default()
                },
                Subtopology {
                    subtopology_id: "1".into(),
                    state_changelog_topics: vec![TopicInfo {
                        name: "app-store-changelog".into(),
                        partitions: 0,
                        replication_factor: 0,
                        topic_configs: vec![kv("cleanup.policy", "compact")],
                    }],
                    repartition_source_topics: vec![TopicInfo {
                        name: "app-rep-repartition".into(),
                        partitions: 4,
                        replication_factor: -1,
                        topic_configs: vec![],
                    }],
                    copartition_groups: vec![CopartitionGroup {
                        source_topics: vec![],
                        source_topic_regex: vec![],
                        repartition_source_topics: vec![0],
                    }],
                    ..Subtopology::default()
                },
            ],
        }),
    );
    check(
        "member",
        Kind::Member("m1".into()),
        Value::Member(MemberValue {
            instance_id: None,
            rack_id: Some("r1".into()),
            client_id: "app-client".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 30_000,
            topology_epoch: 1,
            process_id: "p-1".into(),
            user_endpoint: Some(Endpoint {
                host: "localhost".into(),
                port: 8080,
            }),
            client_tags: vec![kv("zone", "a")],
        }),
    );
    check("target_epoch", Kind::TargetEpoch, Value::TargetEpoch(5));
    check(
        "target_member",
        Kind::Target("m1".into()),
        Value::Target(TasksValue {
            active: vec![tasks("0", &[0, 1]), tasks("1", &[2])],
            standby: vec![tasks("1", &[3])],
            warmup: vec![],
        }),
    );
    check(
        "current",
        Kind::Current("m1".into()),
        Value::Current(CurrentValue {
            member_epoch: 5,
            previous_member_epoch: 4,
            state: 1,
            assigned: TasksValue {
                active: vec![tasks("0", &[0])],
                ..TasksValue::default()
            },
            pending_revocation: TasksValue {
                active: vec![tasks("0", &[1])],
                ..TasksValue::default()
            },
        }),
    );
}

#[test]
fn other_record_types_are_not_streams_records() {
    assert!(decode_key(&[0, 3, 0, 1, b'g']).is_err());
    assert!(Kind::is_streams(17) && !Kind::is_streams(18) && Kind::is_streams(23));
    assert!(!Kind::is_streams(8) && !Kind::is_streams(24));
}
