//! Seeded fault schedules against a three-node cluster (tests/common/cluster.rs), with the
//! checks of a Jepsen-style Kafka workload. While an idempotent acks=all producer writes
//! numbered records to a topic with replication factor 3 and `min.insync.replicas=2` and a
//! consumer group reads them and commits its position, each schedule applies a few faults,
//! waiting after each until the cluster has healed (every node serving, every partition's ISR
//! whole again): kill -9 of a partition leader, of a follower, of the active controller; a
//! SIGSTOP longer than the session and lag timeouts; all three killed at once and restarted
//! in a random order; a rolling restart with SIGTERM. Then everything is read back and
//! checked: every acknowledged record is at the offset its acknowledgement named (nothing
//! acknowledged lost or overwritten), no value twice (idempotence), values in send order
//! within each partition, the group's committed offsets never behind an acknowledged commit,
//! and the three copies of each partition byte for byte the same.
//!
//! `STROM_CLUSTER_FAULT_SCHEDULES` (default 2), `STROM_CLUSTER_FAULT_SEED` (the first seed,
//! default 1) and `STROM_CLUSTER_FAULT_STEPS` (faults per schedule, default 3) set the run:
//! `STROM_CLUSTER_FAULT_SCHEDULES=100 cargo test --release --test cluster_faults -- --nocapture`
//! is the long one. A failure names its seed; rerun that seed alone to repeat it.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{
    create_topic, read_all_with_offsets, wait_identical_replicas, Cluster, PARTITIONS, TOPIC,
};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const GROUP: &str = "fault-group";

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn node(&mut self) -> i32 {
        self.below(3) as i32 + 1
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    KillLeader,
    KillFollower,
    KillController,
    Pause,
    KillAll,
    RollingRestart,
}

const FAULTS: [Fault; 6] = [
    Fault::KillLeader,
    Fault::KillFollower,
    Fault::KillController,
    Fault::Pause,
    Fault::KillAll,
    Fault::RollingRestart,
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The node whose log last announced it became the active controller (the highest term).
fn controller(cluster: &Cluster) -> Option<i32> {
    let mut best: Option<(u64, i32)> = None;
    for n in &cluster.nodes {
        let log = std::fs::read_to_string(n.dir.path().join("broker.log")).unwrap_or_default();
        for line in log.lines() {
            if let Some(rest) = line
                .split("this node is the active controller term=")
                .nth(1)
            {
                let term: u64 = rest.trim().parse().unwrap_or(0);
                if best.is_none_or(|(t, _)| term > t) {
                    best = Some((term, n.id));
                }
            }
        }
    }
    best.map(|(_, id)| id)
}

/// Waits until every node serves and every partition of the topic has all three replicas in
/// its ISR.
fn heal(cluster: &mut Cluster) {
    for id in 1..=3 {
        if !cluster.node(id).is_running() {
            cluster.node(id).spawn();
        }
    }
    for id in 1..=3 {
        cluster.wait_ready(id);
    }
    cluster.wait_isr(&[1, 2, 3], "every ISR whole after the fault");
}

fn apply(cluster: &mut Cluster, rng: &mut Rng, fault: Fault) -> String {
    let pause = |rng: &mut Rng, base: u64| Duration::from_millis(base + rng.below(1500));
    match fault {
        Fault::KillLeader | Fault::KillFollower => {
            let parts = cluster.partitions();
            let p = rng.below(PARTITIONS as u64) as i32;
            let (leader, replicas, _) = parts[&p].clone();
            let victim = if matches!(fault, Fault::KillLeader) {
                leader
            } else {
                let followers: Vec<i32> = replicas.into_iter().filter(|r| *r != leader).collect();
                followers[rng.below(followers.len() as u64) as usize]
            };
            cluster.node(victim).kill9();
            std::thread::sleep(pause(rng, 500));
            cluster.node(victim).spawn();
            format!("{fault:?}(partition {p}: node {victim})")
        }
        Fault::KillController => {
            let victim = controller(cluster).unwrap_or_else(|| rng.node());
            cluster.node(victim).kill9();
            std::thread::sleep(pause(rng, 500));
            cluster.node(victim).spawn();
            format!("KillController(node {victim})")
        }
        Fault::Pause => {
            let victim = rng.node();
            cluster.node(victim).pause();
            // Longer than broker.session.timeout.ms (2 s) and replica.lag.time.max.ms (3 s).
            std::thread::sleep(pause(rng, 3_500));
            cluster.node(victim).resume();
            format!("Pause(node {victim})")
        }
        Fault::KillAll => {
            for id in 1..=3 {
                cluster.node(id).kill9();
            }
            let mut order = vec![1, 2, 3];
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i as u64 + 1) as usize);
            }
            for &id in &order {
                std::thread::sleep(Duration::from_millis(rng.below(1000)));
                cluster.node(id).spawn();
            }
            format!("KillAll(restart order {order:?})")
        }
        Fault::RollingRestart => {
            let first = rng.node();
            let order: Vec<i32> = (0..3).map(|k| (first - 1 + k) % 3 + 1).collect();
            for &id in &order {
                let clean = cluster.node(id).stop(Duration::from_secs(30));
                assert!(clean, "node {id} did not stop on SIGTERM within 30 s");
                cluster.node(id).spawn();
                cluster.wait_ready(id);
                cluster.wait_isr(&[1, 2, 3], "every ISR whole during the rolling restart");
            }
            format!("RollingRestart({order:?})")
        }
    }
}

/// What the workload saw acknowledged.
#[derive(Default)]
struct Acked {
    /// value -> (partition, offset) of its acknowledgement.
    records: HashMap<u64, (i32, i64)>,
    failed: u64,
}

async fn produce_until(p: FutureProducer, stop: Arc<AtomicBool>, acked: Arc<Mutex<Acked>>) {
    let mut next = 0u64;
    while !stop.load(Ordering::Acquire) {
        let mut sends = Vec::new();
        for _ in 0..50 {
            let v = next;
            next += 1;
            let payload = v.to_string();
            let fut = p
                .send_result(
                    FutureRecord::<(), _>::to(TOPIC)
                        .partition((v % PARTITIONS as u64) as i32)
                        .payload(&payload),
                )
                .expect("queue has room");
            sends.push(async move { (v, fut.await) });
        }
        for (v, r) in futures::future::join_all(sends).await {
            let mut a = acked.lock().expect("lock");
            match r {
                Ok(Ok(d)) => {
                    a.records.insert(v, (d.partition, d.offset));
                }
                _ => a.failed += 1,
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads with the group and commits its position every 300 ms; sends, per partition, the
/// highest offset a commit was acknowledged for to `done` — before the consumer is dropped:
/// librdkafka's close on drop has been seen to wait forever inside a rebalance callback
/// (rdkafka 0.39, `rd_kafka_assign` with no timeout), and the check must not hang with it.
fn consume_until(
    mut client: ClientConfig,
    stop: Arc<AtomicBool>,
    done: std::sync::mpsc::Sender<BTreeMap<i32, i64>>,
) {
    let consumer: BaseConsumer = client
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    let mut position: BTreeMap<i32, i64> = BTreeMap::new();
    let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
    let mut last_commit = Instant::now();
    while !stop.load(Ordering::Acquire) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            position.insert(m.partition(), m.offset() + 1);
        }
        if last_commit.elapsed() >= Duration::from_millis(300) && !position.is_empty() {
            last_commit = Instant::now();
            let mut tpl = TopicPartitionList::new();
            for (p, o) in &position {
                tpl.add_partition_offset(TOPIC, *p, Offset::Offset(*o))
                    .expect("add");
            }
            if consumer.commit(&tpl, CommitMode::Sync).is_ok() {
                for (p, o) in &position {
                    let c = committed.entry(*p).or_insert(*o);
                    *c = (*c).max(*o);
                }
            }
        }
    }
    let _ = done.send(committed);
    // Leave the group before the drop closes the consumer (its revocation handled here).
    consumer.unsubscribe();
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        let _ = consumer.poll(Duration::from_millis(50));
    }
}

fn committed_offsets(cluster: &Cluster) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = cluster
        .client()
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(TOPIC, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(30))
        .expect("committed offsets");
    got.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

async fn run_schedule(seed: u64, steps: u64) {
    let mut rng = Rng(seed);
    let mut cluster = Cluster::start();
    create_topic(&cluster).await;
    cluster.wait_isr(&[1, 2, 3], "every replica in sync after create");

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let producer: FutureProducer = cluster
        .client()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("request.timeout.ms", "5000")
        .set("message.timeout.ms", "120000")
        .set("metadata.max.age.ms", "1000")
        .create()
        .expect("producer");
    let producing = tokio::spawn(produce_until(producer.clone(), stop.clone(), acked.clone()));
    let consuming = {
        let client = cluster.client();
        let stop = stop.clone();
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || consume_until(client, stop, done));
        result
    };

    let mut applied = Vec::new();
    for _ in 0..steps {
        // Let the workload run a while between faults.
        tokio::time::sleep(Duration::from_millis(500 + rng.below(1500))).await;
        let fault = FAULTS[rng.below(FAULTS.len() as u64) as usize];
        let what = tokio::task::block_in_place(|| apply(&mut cluster, &mut rng, fault));
        let started = Instant::now();
        tokio::task::block_in_place(|| heal(&mut cluster));
        applied.push(format!("{what} healed in {:?}", started.elapsed()));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Release);
    producing.await.expect("producer task");
    let acked_commits = consuming
        .recv_timeout(Duration::from_secs(60))
        .expect("the consumer thread reports its commits");
    drop(producer);

    let read = tokio::task::block_in_place(|| read_all_with_offsets(&cluster));
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));
    let context = format!("seed {seed}, faults: {applied:?}");
    // Every acknowledged record is where its acknowledgement said.
    let at: HashMap<(i32, i64), u64> = read.iter().map(|&(p, o, v)| ((p, o), v)).collect();
    let mut lost = Vec::new();
    for (v, (p, o)) in &acked.records {
        if at.get(&(*p, *o)) != Some(v) {
            lost.push((*v, *p, *o, at.get(&(*p, *o)).copied()));
        }
    }
    lost.sort_unstable();
    assert!(
        lost.is_empty(),
        "{context}: {} acknowledged records not at their offsets (value, partition, offset, found), first: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    // No value twice; values in send order within each partition.
    let mut seen = HashMap::new();
    let mut last: BTreeMap<i32, u64> = BTreeMap::new();
    for &(p, o, v) in &read {
        if let Some(prev) = seen.insert(v, (p, o)) {
            panic!("{context}: value {v} at {prev:?} and at {:?}", (p, o));
        }
        if let Some(l) = last.insert(p, v) {
            assert!(
                l < v,
                "{context}: partition {p} holds {l} before {v} (offset {o})"
            );
        }
    }
    // Committed offsets never behind what a commit was acknowledged for.
    let committed = tokio::task::block_in_place(|| committed_offsets(&cluster));
    for (p, o) in &acked_commits {
        let c = committed.get(p).copied().unwrap_or(-1);
        assert!(
            c >= *o,
            "{context}: partition {p} committed {c}, a commit of {o} was acknowledged"
        );
    }
    // The three copies of each partition are the same bytes.
    tokio::task::block_in_place(|| wait_identical_replicas(&cluster, &context));
    eprintln!(
        "seed {seed}: {} records acknowledged ({} sends failed), {} read back, commits {:?}; {}",
        acked.records.len(),
        acked.failed,
        read.len(),
        acked_commits,
        applied.join("; ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_fault_schedules_lose_nothing_acknowledged() {
    let schedules = env_u64("STROM_CLUSTER_FAULT_SCHEDULES", 2);
    let first = env_u64("STROM_CLUSTER_FAULT_SEED", 1);
    let steps = env_u64("STROM_CLUSTER_FAULT_STEPS", 3);
    for seed in first..first + schedules {
        run_schedule(seed, steps).await;
    }
}
