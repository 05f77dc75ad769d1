//! Broker-wide limits over the wire (issue 12 #7, #9): the partition cap
//! (`strom.max.partitions`) on CreateTopics, CreatePartitions and auto-creation; the
//! per-request bound on topics auto-created by one Metadata request; ConsumerGroupHeartbeat
//! naming a server assignor the broker does not have.

mod common;

use common::{RawClient, TestBroker};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, CreatePartitionsRequest,
    CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, GroupId, MetadataRequest,
    MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

const POLICY_VIOLATION: i16 = 44;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const UNSUPPORTED_ASSIGNOR: i16 = 112;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn metadata(raw: &mut RawClient, names: Option<Vec<String>>, auto: bool) -> MetadataResponse {
    let req = MetadataRequest::default()
        .with_topics(names.map(|n| {
            n.into_iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(name(&n))))
                .collect()
        }))
        .with_allow_auto_topic_creation(auto);
    raw.call(ApiKey::Metadata, 12, &req)
}

/// Names of every topic the broker lists.
fn listed(raw: &mut RawClient) -> Vec<String> {
    metadata(raw, None, false)
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect()
}

fn create(raw: &mut RawClient, topic: &str, partitions: i32, validate_only: bool) -> (i16, String) {
    let req = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(-1)])
        .with_timeout_ms(30_000)
        .with_validate_only(validate_only);
    let r: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &req);
    let t = &r.topics[0];
    (
        t.error_code,
        t.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

fn add_partitions(raw: &mut RawClient, topic: &str, count: i32) -> (i16, String) {
    let req = CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(name(topic))
            .with_count(count)])
        .with_timeout_ms(30_000);
    let r: CreatePartitionsResponse = raw.call(ApiKey::CreatePartitions, 3, &req);
    let t = &r.results[0];
    (
        t.error_code,
        t.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

fn partitions_of(raw: &mut RawClient, topic: &str) -> usize {
    let r = metadata(raw, Some(vec![topic.to_string()]), false);
    r.topics[0].partitions.len()
}

#[test]
fn the_partition_cap_refuses_creations_with_policy_violation() {
    let b = TestBroker::start(&["strom.max.partitions=10", "num.partitions=3"]);
    let mut raw = RawClient::connect(b.port);

    assert_eq!(create(&mut raw, "six", 6, false).0, 0);
    // 6 + 5 > 10: refused, validate-only too, and nothing is created.
    let (code, msg) = create(&mut raw, "five", 5, false);
    assert_eq!(code, POLICY_VIOLATION, "{msg}");
    assert!(msg.contains("strom.max.partitions"), "{msg}");
    assert_eq!(create(&mut raw, "five", 5, true).0, POLICY_VIOLATION);
    assert!(!listed(&mut raw).contains(&"five".to_string()));
    // Exactly up to the cap is allowed.
    assert_eq!(create(&mut raw, "four", 4, false).0, 0);

    // CreatePartitions beyond the cap: refused, count unchanged.
    let (code, msg) = add_partitions(&mut raw, "six", 7);
    assert_eq!(code, POLICY_VIOLATION, "{msg}");
    assert_eq!(partitions_of(&mut raw, "six"), 6);

    // Auto-creation at the cap creates nothing (num.partitions=3 would exceed it).
    let r = metadata(&mut raw, Some(vec!["auto".to_string()]), true);
    assert_eq!(r.topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    assert!(!listed(&mut raw).contains(&"auto".to_string()));
}

/// Kafka 4's limit: one CreateTopics asking for more than 10,000 partitions in all is refused
/// whole, each topic POLICY_VIOLATION, even when the broker's cap would allow them.
#[test]
fn one_create_topics_request_is_limited_to_10000_partitions() {
    let b = TestBroker::start(&["strom.max.partitions=100000"]);
    let mut raw = RawClient::connect(b.port);
    let topic = |n: &str, p: i32| {
        CreatableTopic::default()
            .with_name(name(n))
            .with_num_partitions(p)
            .with_replication_factor(-1)
    };
    let req = CreateTopicsRequest::default()
        .with_topics(vec![topic("a", 5_000), topic("b", 5_001)])
        .with_timeout_ms(30_000);
    let r: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &req);
    for t in &r.topics {
        assert_eq!(t.error_code, POLICY_VIOLATION, "{t:?}");
        assert_eq!(
            t.error_message.as_deref(),
            Some("Excessively large number of partitions per request.")
        );
    }
    assert!(listed(&mut raw).is_empty());
    // At the limit exactly, both pass (validate-only: creating 10,000 partitions is slow).
    let req = CreateTopicsRequest::default()
        .with_topics(vec![topic("a", 5_000), topic("b", 5_000)])
        .with_timeout_ms(30_000)
        .with_validate_only(true);
    let r: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &req);
    assert!(r.topics.iter().all(|t| t.error_code == 0), "{r:?}");
}

#[test]
fn one_metadata_request_auto_creates_a_bounded_number_of_topics() {
    let bound = strom::broker::MAX_AUTO_CREATE_PER_REQUEST;
    let b = TestBroker::start(&[]);
    let mut raw = RawClient::connect(b.port);
    let names: Vec<String> = (0..10_000).map(|i| format!("auto-{i:05}")).collect();
    let started = std::time::Instant::now();
    let r = metadata(&mut raw, Some(names.clone()), true);
    eprintln!(
        "Metadata naming 10,000 unknown topics: {:?}",
        started.elapsed()
    );
    assert_eq!(r.topics.len(), names.len());
    assert!(r
        .topics
        .iter()
        .all(|t| t.error_code == UNKNOWN_TOPIC_OR_PARTITION));
    // Creation goes on in the background, as in Kafka: wait for it.
    let created = settled(&mut raw, bound);
    assert_eq!(created.len(), bound, "created {} topics", created.len());
    // The first names of the request are the ones created.
    assert_eq!(created, names[..bound].to_vec());
    // The next request creates the next ones; the ones that exist are listed.
    let r = metadata(&mut raw, Some(names[..2 * bound].to_vec()), true);
    assert!(r.topics[..bound].iter().all(|t| t.error_code == 0));
    assert!(r.topics[bound..]
        .iter()
        .all(|t| t.error_code == UNKNOWN_TOPIC_OR_PARTITION));
    assert_eq!(settled(&mut raw, 2 * bound).len(), 2 * bound);
}

/// The listed topics once `want` exist, or after 10 s, whatever is listed then.
fn settled(raw: &mut RawClient, want: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let l = listed(raw);
        if l.len() >= want || std::time::Instant::now() > deadline {
            return l;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Metadata requests arriving while an auto-creation is under way answer the topic unknown,
/// as Kafka's broker does while its controller creates it; once created, it is listed. (librdkafka
/// pipelines two such requests; the second used to see the topic Strom had just created.)
#[test]
fn a_topic_being_auto_created_stays_unknown_until_created() {
    let b = TestBroker::start(&[]);
    let mut raw = RawClient::connect(b.port);
    let r = metadata(&mut raw, Some(vec!["pipelined".into()]), true);
    assert_eq!(r.topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(settled(&mut raw, 1), vec!["pipelined".to_string()]);
    let r = metadata(&mut raw, Some(vec!["pipelined".into()]), true);
    assert_eq!(r.topics[0].error_code, 0, "{r:?}");
}

#[test]
fn an_unknown_server_assignor_is_unsupported_assignor() {
    let b = TestBroker::start(&[]);
    let mut raw = RawClient::connect(b.port);
    assert_eq!(create(&mut raw, "t", 1, false).0, 0);
    let join = |raw: &mut RawClient, assignor: &str| -> ConsumerGroupHeartbeatResponse {
        let req = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_member_id(StrBytes::from_static_str("m1"))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_server_assignor(Some(StrBytes::from_string(assignor.to_string())))
            .with_subscribed_topic_names(Some(vec![name("t")]))
            .with_topic_partitions(Some(vec![]));
        raw.call(ApiKey::ConsumerGroupHeartbeat, 1, &req)
    };
    let r = join(&mut raw, "sticky-nonesuch");
    assert_eq!(r.error_code, UNSUPPORTED_ASSIGNOR, "{r:?}");
    // Kafka 4.x's GroupMetadataManager message, word for word.
    assert_eq!(
        r.error_message.map(|m| m.to_string()).as_deref(),
        Some(
            "ServerAssignor sticky-nonesuch is not supported. Supported assignors: uniform, range."
        )
    );
    // A known one still works.
    let r = join(&mut raw, "range");
    assert_eq!(r.error_code, 0, "{r:?}");
}

/// A creation that fails half-way (here: out of file handles) is rolled back, so the broker
/// starts again under the same limits (before: the topic stayed recorded, and a broker that
/// could not open it refused to start).
#[test]
fn a_creation_that_runs_out_of_file_handles_is_rolled_back() {
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().expect("tempdir");
    let start = |port: u16| -> Child {
        Command::new("prlimit")
            .arg("--nofile=200:200")
            .arg(env!("CARGO_BIN_EXE_strom"))
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(["--set", "strom.admin.listener="])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn strom under prlimit")
    };
    let ready = |child: &mut Child, port: u16| -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if child.try_wait().expect("wait").is_some() {
                return false;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    let port = common::free_port();
    let mut child = start(port);
    assert!(ready(&mut child, port), "starts under 200 file handles");
    let mut raw = RawClient::connect(port);
    let (code, message) = create(&mut raw, "big", 400, false);
    assert_eq!(code, 56, "KAFKA_STORAGE_ERROR: {message}");
    assert!(!listed(&mut raw).contains(&"big".to_string()));
    assert_eq!(
        create(&mut raw, "small", 2, false).0,
        0,
        "handles were given back"
    );
    drop(raw);
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let port = common::free_port();
    let mut child = start(port);
    let started = ready(&mut child, port);
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "restarts under the same limit");
}
