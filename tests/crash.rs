//! Crash safety: the broker runs as a child process, an idempotent librdkafka producer writes
//! with acks=all, and the broker is killed with SIGKILL at random moments. After every restart
//! each acknowledged record must be in the log exactly once, at the offset it was acknowledged
//! with, and offsets must never go backwards. Bounded: a few cycles of a few hundred ms of load.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestBroker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

const PARTITIONS: i32 = 3;

fn bootstrap(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// Produces until `stop_after`, returning every acknowledged (partition, offset, value).
async fn produce_until_killed(
    port: u16,
    topic: &str,
    cycle: usize,
    run_for: Duration,
    broker: &mut TestBroker,
) -> Vec<(i32, i64, String)> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap(port))
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "4000")
        .set("reconnect.backoff.max.ms", "200")
        .create()
        .expect("producer");
    // Warm up (metadata, producer id) so the kill lands in steady-state load.
    let warm = format!("c{cycle}-warmup");
    let d = producer
        .send(
            FutureRecord::to(topic).partition(0).key("k").payload(&warm),
            Duration::from_secs(10),
        )
        .await
        .expect("warm-up record acknowledged");
    let mut acked = vec![(d.partition, d.offset, warm)];
    let mut pending = Vec::new();
    // The kill lands `run_for` into the load, but not before some load record was acknowledged
    // (on a starved machine the first acks can take longer than `run_for`), so every cycle
    // kills a broker in the middle of acknowledged writes.
    let load_acked = Arc::new(AtomicBool::new(false));
    let mut started = Instant::now();
    let mut i = 0u64;
    let mut killed = false;
    let give_up = Instant::now() + Duration::from_secs(30);
    while started.elapsed() < run_for + Duration::from_millis(300) {
        if !killed && started.elapsed() >= run_for {
            if load_acked.load(Ordering::Acquire) || Instant::now() > give_up {
                broker.kill9();
                killed = true;
            } else {
                started = Instant::now() - run_for;
            }
        }
        let value = format!("c{cycle}-{i}");
        let p = (i % PARTITIONS as u64) as i32;
        let producer = producer.clone();
        let topic = topic.to_string();
        let load_acked = load_acked.clone();
        pending.push(tokio::spawn(async move {
            let rec = FutureRecord::to(&topic)
                .partition(p)
                .key("k")
                .payload(&value);
            let d = producer.send(rec, Duration::from_secs(0)).await.ok()?;
            load_acked.store(true, Ordering::Release);
            Some((d.partition, d.offset, value))
        }));
        i += 1;
        if i.is_multiple_of(50) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    if !killed {
        broker.kill9();
    }
    for h in pending {
        if let Ok(Some(a)) = h.await {
            acked.push(a);
        }
    }
    acked
}

fn read_all(port: u16, topic: &str) -> BTreeMap<i32, Vec<(i64, String)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap(port))
        .set("group.id", "crash-verify")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut out: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for p in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .expect("watermarks");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
        consumer.assign(&tpl).expect("assign");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got: Vec<(i64, String)> = Vec::new();
        while got.last().map_or(0, |(o, _)| o + 1) < high {
            assert!(
                Instant::now() < deadline,
                "timed out reading partition {p} up to {high}"
            );
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                got.push((m.offset(), v));
            }
        }
        out.insert(p, got);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_sigkill() {
    let topic = "crash";
    let mut broker = TestBroker::start(&[]);
    let port = broker.port;
    broker.create_topic(topic, PARTITIONS, &[]).await;
    let mut acked_all: Vec<(i32, i64, String)> = Vec::new();
    let mut last_end: HashMap<i32, i64> = HashMap::new();
    // CI runs a few cycles; `STROM_CRASH_CYCLES=200 cargo test --release --test crash` runs more.
    let cycles: usize = std::env::var("STROM_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    for cycle in 0..cycles {
        let run_for = Duration::from_millis(200 + (cycle as u64 * 137) % 400);
        let acked = produce_until_killed(port, topic, cycle, run_for, &mut broker).await;
        assert!(
            acked.len() > 1,
            "cycle {cycle} acknowledged nothing under load"
        );
        acked_all.extend(acked);
        broker.restart();
        // Offsets never go backwards across a crash.
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap(port))
            .create()
            .expect("consumer");
        for p in 0..PARTITIONS {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks");
            let prev = last_end.get(&p).copied().unwrap_or(0);
            let max_acked = acked_all
                .iter()
                .filter(|a| a.0 == p)
                .map(|a| a.1 + 1)
                .max()
                .unwrap_or(0);
            assert!(
                high >= prev.max(max_acked),
                "partition {p}: end offset {high} behind {prev} / acked {max_acked}"
            );
            last_end.insert(p, high);
        }
    }
    let log = read_all(port, topic);
    let mut seen = HashSet::new();
    for (p, recs) in &log {
        for (i, (off, v)) in recs.iter().enumerate() {
            assert_eq!(
                *off, i as i64,
                "partition {p}: offsets must be contiguous from 0"
            );
            assert!(
                seen.insert(v.clone()),
                "duplicate record {v} (idempotent producer)"
            );
        }
    }
    for (p, off, v) in &acked_all {
        let stored = log
            .get(p)
            .and_then(|r| r.get(*off as usize))
            .map(|(_, v)| v.as_str());
        assert_eq!(
            stored,
            Some(v.as_str()),
            "acknowledged record {v} missing at {p}:{off}"
        );
    }
    eprintln!("crash test: {} acknowledged records over {cycles} SIGKILL cycles, all present exactly once", acked_all.len());
    drop(broker);
}
