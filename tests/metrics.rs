//! The admin listener: `/metrics` after a known workload (bytes and records in, bytes out,
//! request counts per API, connections, partitions, consumer-group lag), the health endpoints,
//! and the listener's binding rules.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{free_port, RawClient, TestBroker};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, GroupId, OffsetCommitRequest,
    OffsetCommitResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

/// (status line, body) of a GET.
fn get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect admin");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let (head, body) = out.split_once("\r\n\r\n").expect("http response");
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// Sample lines `name{labels} value` of the exposition, by `name{labels}`.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

#[test]
fn metrics_match_a_known_workload_and_health_answers() {
    let admin = free_port();
    let b = TestBroker::start(&[&format!("strom.admin.listener=127.0.0.1:{admin}")]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(b.create_topic("m", 1, &[]));
    let mut raw = RawClient::connect(b.port);
    let mut produced = 0usize;
    for i in 0..4 {
        let value = format!("value-{i}-{}", "x".repeat(100 * i));
        let records: Vec<strom::protocol::records::KeyValue<'_>> = (0..5)
            .map(|_| (Some(&b"k"[..]), Some(value.as_bytes())))
            .collect();
        let batch = strom::protocol::records::build_batch(&records, strom::log::now_ms());
        produced += batch.len();
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("m")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(bytes::Bytes::from(batch)))])]);
        let r: ProduceResponse = raw.call(ApiKey::Produce, 9, &req);
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("m")))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let f: FetchResponse = raw.call(ApiKey::Fetch, 12, &fetch);
    let fetched = f.responses[0].partitions[0]
        .records
        .as_ref()
        .map_or(0, |r| r.len());
    assert_eq!(fetched, produced, "one fetch returns every batch");
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("m")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(3)])]);
    let c: OffsetCommitResponse = raw.call(ApiKey::OffsetCommit, 8, &commit);
    assert_eq!(c.topics[0].partitions[0].error_code, 0);

    let (status, text) = get(admin, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text");
    let m = samples(&text);
    let at = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in\n{text}"));
    assert_eq!(
        at("strom_topic_bytes_in_total{topic=\"m\"}"),
        produced as f64
    );
    assert_eq!(at("strom_topic_records_in_total{topic=\"m\"}"), 20.0);
    assert_eq!(
        at("strom_topic_bytes_out_total{topic=\"m\"}"),
        produced as f64
    );
    assert_eq!(
        at("strom_request_duration_seconds_count{api=\"Produce\"}"),
        4.0
    );
    assert_eq!(
        at("strom_request_duration_seconds_count{api=\"Fetch\"}"),
        1.0
    );
    assert_eq!(
        at("strom_consumer_group_lag{group=\"g\",topic=\"m\",partition=\"0\"}"),
        17.0,
        "20 records, committed at 3"
    );
    assert_eq!(at("strom_connections{listener=\"PLAINTEXT\"}"), 1.0);
    // `m` and the 50 partitions of __consumer_offsets.
    assert_eq!(at("strom_partitions"), 51.0);
    assert!(
        at("strom_log_fsync_duration_seconds_count") >= 4.0,
        "acks=all fsyncs"
    );

    assert_eq!(get(admin, "/health/live").0, "HTTP/1.1 200 OK");
    let (status, body) = get(admin, "/health/ready");
    assert_eq!(
        (status.as_str(), body.trim()),
        ("HTTP/1.1 200 OK", "{\"status\":\"ready\"}")
    );
    assert_eq!(get(admin, "/nope").0, "HTTP/1.1 404 Not Found");
}

#[test]
fn an_explicit_admin_address_that_cannot_be_bound_stops_start_up() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--set")
        .arg(format!("strom.admin.listener=127.0.0.1:{port}"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run strom");
    assert!(!out.status.success(), "must not start");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(&format!(
            "cannot listen on strom.admin.listener 127.0.0.1:{port}"
        )),
        "{log}"
    );
}

/// `strom.log.format=json`: every line on stderr is one JSON object (level, message and the
/// fields); start-up logs one summary line for all partitions, not one per partition.
#[test]
fn json_logs_are_one_object_per_line_with_a_start_up_summary() {
    let mut b = TestBroker::start(&["strom.log.format=json", "strom.admin.listener="]);
    let mut raw = RawClient::connect(b.port);
    let create = kafka_protocol::messages::CreateTopicsRequest::default()
        .with_topics(vec![
            kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                .with_name(kafka_protocol::messages::TopicName(
                    kafka_protocol::protocol::StrBytes::from_static_str("json-logs"),
                ))
                .with_num_partitions(8)
                .with_replication_factor(1),
        ])
        .with_timeout_ms(30_000);
    let _: kafka_protocol::messages::CreateTopicsResponse =
        raw.call(kafka_protocol::messages::ApiKey::CreateTopics, 7, &create);
    b.stop();
    b.restart();
    let log = b.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let messages: Vec<&str> = lines
        .iter()
        .map(|v| v["message"].as_str().unwrap_or(""))
        .collect();
    assert!(lines
        .iter()
        .all(|v| v["level"].is_string() && v["timestamp"].is_string()));
    let serving = lines
        .iter()
        .filter(|v| v["message"] == "Strom is serving Kafka clients")
        .count();
    assert_eq!(serving, 2, "two starts: {messages:?}");
    let summary: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["message"] == "broker state loaded")
        .collect();
    assert_eq!(summary.last().expect("summary")["partitions"], 8);
    assert!(
        !messages.contains(&"opened log"),
        "one line per partition at info: {messages:?}"
    );
}
