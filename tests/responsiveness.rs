//! Other connections keep being served while one connection's request does blocking work
//! (issue 12 #6): the broker runs in this process on a runtime with few workers, one
//! connection starts the heavy request, and a second connection's ApiVersions must be answered
//! while it is still under way. No timing is asserted: "under way" is read from the broker's
//! state (the topic's last partition not yet opened).
//!
//! `measure_other_connection_latency` (ignored; run by hand with `--ignored --nocapture`)
//! prints the second connection's ApiVersions latency while each kind of heavy request runs.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes};
use common::RawClient;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    ListOffsetsRequest, ListOffsetsResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom::broker::Broker;
use strom::config::BrokerConfig;
use tokio_util::sync::CancellationToken;

/// A broker served by this process on a runtime of `workers` threads.
struct InProcess {
    rt: Option<tokio::runtime::Runtime>,
    port: u16,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl InProcess {
    fn start(workers: usize, sets: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = BrokerConfig {
            log_dir: dir.path().join("data"),
            ..BrokerConfig::default()
        };
        for (k, v) in sets {
            config.set(k, v).expect("config");
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .expect("runtime");
        let broker = Broker::open(config).expect("open");
        let listener = rt
            .block_on(async { strom::server::bind("127.0.0.1:0".parse().expect("addr"), 128) })
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let shutdown = CancellationToken::new();
        rt.spawn(strom::server::serve(
            broker.clone(),
            listener,
            shutdown.clone(),
        ));
        InProcess {
            rt: Some(rt),
            port,
            broker,
            shutdown,
            _dir: dir,
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(10));
        }
    }
}

fn create_topic_request(name: &'static str, partitions: i32) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_timeout_ms(600_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(name)))
            .with_num_partitions(partitions)
            .with_replication_factor(1)])
}

fn api_versions(c: &mut RawClient) {
    let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 2, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0);
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Each partition keeps its segment file open; 15,000 stays below a 20,000 open-file limit
/// (Kafka's 100,000-partition maximum needs a higher `ulimit -n`). Measured only: creating
/// them takes minutes in a debug build (several fsyncs per partition).
const BIG: i32 = 15_000;
/// Enough for the creation to be under way for seconds while another connection is served.
const TEST_PARTITIONS: i32 = 1_000;

/// With one worker thread, creating a topic of 1,000 partitions (a metadata fsync and 1,000
/// partition directories, each with its own fsyncs) must not keep another connection waiting
/// for all of it.
#[test]
fn another_connection_is_served_while_a_topic_of_1000_partitions_is_created() {
    let b = InProcess::start(1, &[]);
    let port = b.port;
    let creator = std::thread::spawn(move || {
        let mut a = RawClient::connect(port).with_read_timeout(Duration::from_secs(600));
        let r: CreateTopicsResponse = a.call(
            ApiKey::CreateTopics,
            7,
            &create_topic_request("big", TEST_PARTITIONS),
        );
        r.topics[0].error_code
    });
    wait_until("the creation to start", || {
        b.broker.partition("big", 0).is_some()
    });
    let mut other = RawClient::connect(port);
    api_versions(&mut other);
    assert!(
        b.broker.partition("big", TEST_PARTITIONS - 1).is_none(),
        "an ApiVersions on another connection was answered only after the whole topic was created"
    );
    assert_eq!(creator.join().expect("creator"), 0);
    assert!(b.broker.partition("big", TEST_PARTITIONS - 1).is_some());
}

// ---------------------------------------------------------------------------------------------
// Measurement

fn uvarint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// A zstd-compressed magic-2 batch of `count` records of `value_len` zero bytes, record `i`
/// stamped `base_ts + i`; returns (batch, decompressed size).
fn zstd_batch(count: i32, value_len: usize, base_ts: i64) -> (Vec<u8>, usize) {
    let mut records = Vec::new();
    let value = vec![0u8; value_len];
    for i in 0..count {
        let mut body = vec![0u8]; // attributes
        uvarint(zigzag(i64::from(i)), &mut body); // timestamp delta
        uvarint(zigzag(i64::from(i)), &mut body); // offset delta
        uvarint(zigzag(-1), &mut body); // null key
        uvarint(zigzag(value_len as i64), &mut body);
        body.extend_from_slice(&value);
        body.push(0); // no headers
        uvarint(zigzag(body.len() as i64), &mut records);
        records.extend(body);
    }
    let plain = records.len();
    let compressed = zstd::encode_all(&records[..], 3).expect("zstd");
    let mut b = Vec::new();
    b.put_i64(0);
    b.put_i32((49 + compressed.len()) as i32);
    b.put_i32(-1);
    b.push(2);
    b.put_u32(0);
    b.put_i16(4); // zstd
    b.put_i32(count - 1);
    b.put_i64(base_ts);
    b.put_i64(base_ts + i64::from(count) - 1);
    b.put_i64(-1);
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(count);
    b.extend_from_slice(&compressed);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    (b, plain)
}

fn produce(c: &mut RawClient, topic: &'static str, acks: i16, batch: Vec<u8>) {
    let req = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(batch)))])]);
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req);
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
}

/// Runs `heavy` on its own connection (repeatedly until `runs` are done) while another
/// connection sends ApiVersions back to back; prints that connection's latencies.
fn measure(label: &str, port: u16, heavy: impl FnOnce(RawClient) + Send + 'static) {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let started = Instant::now();
    let worker = std::thread::spawn(move || {
        heavy(RawClient::connect(port).with_read_timeout(Duration::from_secs(600)));
        d.store(true, Ordering::Release);
    });
    let mut other = RawClient::connect(port).with_read_timeout(Duration::from_secs(600));
    let mut lat = Vec::new();
    while !done.load(Ordering::Acquire) {
        let t = Instant::now();
        api_versions(&mut other);
        lat.push(t.elapsed());
    }
    worker.join().expect("heavy");
    lat.sort();
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    println!(
        "{label}: heavy ran {:.2} s; other connection: {} ApiVersions, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        started.elapsed().as_secs_f64(),
        lat.len(),
        pct(0.5),
        pct(0.99),
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
}

#[test]
#[ignore = "measurement: prints latencies, run with --ignored --nocapture"]
fn measure_other_connection_latency() {
    let workers: usize = std::env::var("STROM_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    println!("runtime: {workers} worker threads");
    // Comma-separated subset of: create, list_offsets, roll (default: all).
    let only = std::env::var("STROM_SCENARIOS").ok();
    let want = |s: &str| only.as_ref().is_none_or(|o| o.split(',').any(|x| x == s));
    let b = InProcess::start(workers, &[]);
    let port = b.port;
    measure("idle", port, |_| std::thread::sleep(Duration::from_secs(1)));

    let create: i32 = std::env::var("STROM_CREATE_PARTITIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(BIG);
    if want("create") {
        measure(
            &format!("CreateTopics {create} partitions"),
            port,
            move |mut a| {
                let r: CreateTopicsResponse = a.call(
                    ApiKey::CreateTopics,
                    7,
                    &create_topic_request("big", create),
                );
                assert_eq!(r.topics[0].error_code, 0);
            },
        );
    }

    // ~60 MiB of records in one zstd batch; ListOffsets by a timestamp inside it.
    let base_ts = 1_700_000_000_000;
    let (batch, plain) = zstd_batch(1_000_000, 50, base_ts);
    println!(
        "zstd batch: {} bytes compressed, {} bytes of records",
        batch.len(),
        plain
    );
    let mut configs = BTreeMap::new();
    configs.insert("max.message.bytes".to_string(), (8 << 20).to_string());
    b.broker
        .create_topic("compressed", Some(1), None, configs, false)
        .expect("create");
    let mut c = RawClient::connect(port);
    produce(&mut c, "compressed", 1, batch);
    if want("list_offsets") {
        measure(
            "ListOffsets by timestamp, 10 x 60 MiB decompressed",
            port,
            move |mut a| {
                for _ in 0..10 {
                    let req = ListOffsetsRequest::default()
                        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
                        .with_topics(vec![ListOffsetsTopic::default()
                            .with_name(TopicName(StrBytes::from_static_str("compressed")))
                            .with_partitions(vec![ListOffsetsPartition::default()
                                .with_partition_index(0)
                                .with_timestamp(base_ts + 999_000)])]);
                    let r: ListOffsetsResponse = a.call(ApiKey::ListOffsets, 7, &req);
                    let p = &r.topics[0].partitions[0];
                    assert_eq!((p.error_code, p.offset), (0, 999_000));
                }
            },
        );
    }

    if !want("roll") {
        return;
    }
    // Every produce rolls a segment (segment.bytes = 14).
    let mut configs = BTreeMap::new();
    configs.insert("segment.bytes".to_string(), "14".to_string());
    b.broker
        .create_topic("rolling", Some(1), None, configs, false)
        .expect("create");
    measure(
        "Produce acks=1, a segment roll each, 2,000 produces",
        port,
        move |mut a| {
            for _ in 0..2_000 {
                let (batch, _) = zstd_batch(1, 10, base_ts);
                produce(&mut a, "rolling", 1, batch);
            }
        },
    );
}
