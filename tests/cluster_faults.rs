//! Seeded fault schedules against a three-node cluster (tests/common/cluster.rs), with the
//! checks of a Jepsen-style Kafka workload. While an idempotent acks=all producer writes
//! numbered records to a topic with replication factor 3 and `min.insync.replicas=2` and a
//! consumer group reads them and commits its position, and a transactional producer commits
//! and aborts small transactions across the partitions of a second topic, each schedule
//! applies a few faults,
//! waiting after each until the cluster has healed (every node serving, every partition's ISR
//! whole again): kill -9 of a partition leader, of a follower, of the active controller; a
//! SIGSTOP longer than the session and lag timeouts; all three killed at once and restarted
//! in a random order; a rolling restart with SIGTERM. Then everything is read back and
//! checked: every acknowledged record is at the offset its acknowledgement named (nothing
//! acknowledged lost or overwritten), no value twice (idempotence), values in send order
//! within each partition, the group's committed offsets never behind an acknowledged commit,
//! the three copies of each partition byte for byte the same, and under read_committed every
//! committed transaction whole, no aborted one visible, one of unknown outcome all or nothing.
//!
//! Network faults need each node in a network namespace of its own (tests/common/cluster.rs
//! `Net`: root, iproute2 and nftables): the leader of a partition or the active controller cut
//! off from both other nodes while clients still reach it, or one link between two nodes cut,
//! for 3 to 9 s (shorter and longer than a controller election plus the session timeout).
//! Without namespaces (not root, or `STROM_CLUSTER_NETNS=0`) the suite runs on loopback
//! without them.
//!
//! `STROM_CLUSTER_FAULT_SCHEDULES` (default 2), `STROM_CLUSTER_FAULT_SEED` (the first seed,
//! default 1) and `STROM_CLUSTER_FAULT_STEPS` (faults per schedule, default 3) set the run:
//! `STROM_CLUSTER_FAULT_SCHEDULES=100 cargo test --release --test cluster_faults -- --nocapture`
//! is the long one; `STROM_CLUSTER_FAULT_KINDS=IsolateLeader,CutLink` applies only those kinds.
//! A failure names its seed; rerun that seed alone to repeat it.
//!
//! `STROM_CLUSTER_TARGET=kafka` runs the same schedules and checks against three Apache Kafka
//! 4.4 nodes started from the same `server.properties` files (tests/common/cluster.rs
//! [`Flavour::Kafka`]; jars from `bash compat-tests/install.sh java`, or `STROM_KAFKA_LIB`):
//! the oracle for what clients see, and for how long healing takes.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{
    create_topic, message_or_transient, read_all_with_offsets, wait_identical_replicas, Cluster,
    Flavour, PARTITIONS, TOPIC,
};
use common::wait_for;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const GROUP: &str = "fault-group";
/// The topic the transactional producer writes (replication factor 3, [`PARTITIONS`]).
const TXN_TOPIC: &str = "transactional";

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
    IsolateLeader,
    IsolateController,
    CutLink,
}

const FAULTS: [Fault; 9] = [
    Fault::KillLeader,
    Fault::KillFollower,
    Fault::KillController,
    Fault::Pause,
    Fault::KillAll,
    Fault::RollingRestart,
    Fault::IsolateLeader,
    Fault::IsolateController,
    Fault::CutLink,
];

/// The faults that need the nodes in network namespaces of their own.
fn needs_network(f: Fault) -> bool {
    matches!(
        f,
        Fault::IsolateLeader | Fault::IsolateController | Fault::CutLink
    )
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

/// How long a link stays cut: 3 to 9 s, so some cuts end before a new controller is elected
/// and has waited out the session timeout (the cut-off node keeps its place) and some after
/// (it is fenced and its leaderships move).
fn cut_for(rng: &mut Rng) -> Duration {
    Duration::from_millis(3_000 + rng.below(6_000))
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
            let victim = cluster.active_controller().unwrap_or_else(|| rng.node());
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
        Fault::IsolateLeader | Fault::IsolateController => {
            let victim = if matches!(fault, Fault::IsolateLeader) {
                let p = rng.below(PARTITIONS as u64) as i32;
                cluster.partitions()[&p].0
            } else {
                cluster.active_controller().unwrap_or_else(|| rng.node())
            };
            let victim = if victim > 0 { victim } else { rng.node() };
            // Cut off from both other nodes (the quorum and its followers) while clients still
            // reach it, longer than the session and lag timeouts.
            for other in (1..=3).filter(|&o| o != victim) {
                cluster.cut(victim, other);
            }
            std::thread::sleep(cut_for(rng));
            cluster.mend();
            format!("{fault:?}(node {victim})")
        }
        Fault::CutLink => {
            let a = rng.node();
            let b = (a + rng.below(2) as i32) % 3 + 1;
            cluster.cut(a, b);
            std::thread::sleep(cut_for(rng));
            cluster.mend();
            format!("CutLink({a}-{b})")
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

/// What the transactional producer knows of each transaction it began.
#[derive(Default, Debug)]
struct Txns {
    /// Transaction number -> how many records it sent (values `<n>-<i>`).
    sizes: BTreeMap<u64, u64>,
    committed: BTreeSet<u64>,
    aborted: BTreeSet<u64>,
    /// Producers replaced after a fatal error (a new one fences the old).
    restarts: u64,
}

const TXN_CALL: Duration = Duration::from_secs(30);

fn txn_producer(client: &ClientConfig) -> ThreadedProducer<DefaultProducerContext> {
    client
        .clone()
        .set("transactional.id", "fault-txn")
        .set("transaction.timeout.ms", "20000")
        .set("request.timeout.ms", "5000")
        .set("metadata.max.age.ms", "1000")
        .create()
        .expect("transactional producer")
}

/// Until `stop`: transactions of 1-4 records over the partitions of [`TXN_TOPIC`], three in
/// four committed and the rest aborted (seeded), each outcome recorded only when the broker
/// confirmed it. A commit that fails retriably is retried; one that needs an abort is aborted;
/// a fatal error (e.g. fenced) replaces the producer, whose init completes or aborts what the
/// old one left open — that transaction's outcome stays unknown (all or nothing, checked).
fn transact_until(
    client: ClientConfig,
    stop: Arc<AtomicBool>,
    seed: u64,
    done: std::sync::mpsc::Sender<Txns>,
) {
    let mut rng = Rng(seed ^ 0x5458_4e53);
    let mut txns = Txns::default();
    let mut producer: Option<ThreadedProducer<DefaultProducerContext>> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Acquire) {
        let p = match &producer {
            Some(p) => p,
            None => {
                let p = txn_producer(&client);
                if let Err(e) = p.init_transactions(TXN_CALL) {
                    eprintln!("transactional producer: init: {e}");
                    // Retriable (a coordinator moving) or not: a new producer tries again.
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
                producer.insert(p)
            }
        };
        if let Err(e) = p.begin_transaction() {
            eprintln!("transactional producer: begin: {e}");
            producer = None;
            txns.restarts += 1;
            continue;
        }
        n += 1;
        let k = 1 + rng.below(4);
        let commit = rng.below(4) != 0;
        txns.sizes.insert(n, k);
        for i in 0..k {
            let value = format!("{n}-{i}");
            let mut record = BaseRecord::<(), str>::to(TXN_TOPIC)
                .partition(((n + i) % PARTITIONS as u64) as i32)
                .payload(value.as_str());
            loop {
                match p.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    // The transaction is in error: the commit below fails and aborts it.
                    Err(_) => break,
                }
            }
        }
        let mut outcome = if commit {
            p.commit_transaction(TXN_CALL)
        } else {
            p.abort_transaction(TXN_CALL)
        };
        let mut tries = 0;
        let finished = loop {
            if let Err(e) = &outcome {
                eprintln!("transactional producer: transaction {n} (commit {commit}): {e}");
            }
            match outcome {
                Ok(()) => break Some(commit),
                Err(KafkaError::Transaction(ref e)) if e.is_retriable() && tries < 3 => {
                    tries += 1;
                    outcome = if commit {
                        p.commit_transaction(TXN_CALL)
                    } else {
                        p.abort_transaction(TXN_CALL)
                    };
                }
                Err(KafkaError::Transaction(ref e)) if e.txn_requires_abort() => {
                    break p.abort_transaction(TXN_CALL).is_ok().then_some(false);
                }
                Err(_) => break None,
            }
        };
        match finished {
            Some(true) => {
                txns.committed.insert(n);
            }
            Some(false) => {
                txns.aborted.insert(n);
            }
            None => {
                producer = None;
                txns.restarts += 1;
            }
        }
    }
    let _ = done.send(txns);
}

/// Every record of [`TXN_TOPIC`] a read_committed consumer sees: (partition, offset, value).
/// First waits until no transaction is open (each partition's last stable offset has reached
/// its high watermark), then reads to the end of every partition.
fn read_committed(cluster: &Cluster) -> Vec<(i32, i64, String)> {
    let committed: BaseConsumer = cluster
        .client()
        .set("group.id", "cluster-test-txn-reader")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let uncommitted: BaseConsumer = cluster
        .client()
        .set("group.id", "cluster-test-txn-reader")
        .set("isolation.level", "read_uncommitted")
        .create()
        .expect("consumer");
    // Open transactions end within transaction.timeout.ms (20 s) of their producer's last word.
    for p in 0..PARTITIONS {
        wait_for(
            Duration::from_secs(60),
            "the last stable offset reaches the high watermark",
            || {
                let lso = committed
                    .fetch_watermarks(TXN_TOPIC, p, Duration::from_secs(5))
                    .ok()?
                    .1;
                let hw = uncommitted
                    .fetch_watermarks(TXN_TOPIC, p, Duration::from_secs(5))
                    .ok()?
                    .1;
                (lso == hw).then_some(())
            },
        );
    }
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TXN_TOPIC, p, Offset::Beginning)
            .expect("add");
    }
    committed.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let mut at_end = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while at_end.len() < PARTITIONS as usize {
        assert!(
            Instant::now() < deadline,
            "read_committed stalled: {} records, at end {at_end:?}",
            out.len()
        );
        match committed.poll(Duration::from_millis(500)) {
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(m) => {
                if let Some(m) = message_or_transient(m) {
                    let v = std::str::from_utf8(m.payload().expect("payload")).expect("utf8");
                    out.push((m.partition(), m.offset(), v.to_string()));
                    at_end.remove(&m.partition());
                }
            }
            None => {}
        }
    }
    out
}

/// All or nothing: a committed transaction's records all visible once each, an aborted one's
/// none, one of unknown outcome all or none; transactions in order within each partition.
fn check_transactions(txns: &Txns, read: &[(i32, i64, String)], context: &str) {
    let mut seen: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let mut last: BTreeMap<i32, u64> = BTreeMap::new();
    for (p, o, v) in read {
        let (n, i) = v
            .split_once('-')
            .and_then(|(n, i)| Some((n.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
            .unwrap_or_else(|| panic!("{context}: unexpected value {v:?} at {p}/{o}"));
        assert!(
            txns.sizes.get(&n).is_some_and(|k| i < *k),
            "{context}: {v:?} at {p}/{o} was never sent"
        );
        assert!(
            seen.entry(n).or_default().insert(i),
            "{context}: {v:?} read twice (again at {p}/{o})"
        );
        if let Some(l) = last.insert(*p, n) {
            assert!(
                l <= n,
                "{context}: partition {p} holds transaction {l} before {n} (offset {o})"
            );
        }
    }
    for (n, k) in &txns.sizes {
        let got = seen.get(n).map_or(0, |s| s.len() as u64);
        if txns.committed.contains(n) {
            assert_eq!(
                got, *k,
                "{context}: committed transaction {n} shows {got} of its {k} records"
            );
        } else if txns.aborted.contains(n) {
            assert_eq!(
                got, 0,
                "{context}: aborted transaction {n} shows {got} of its {k} records"
            );
        } else {
            assert!(
                got == 0 || got == *k,
                "{context}: transaction {n} of unknown outcome shows {got} of its {k} records"
            );
        }
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
    let flavour = Flavour::from_env();
    let target = flavour.name();
    let mut cluster = Cluster::start_in_namespaces_as(flavour.clone(), &[])
        .unwrap_or_else(|| Cluster::start_as(flavour, &[]));
    // Without namespaces the network faults are left out (the schedule of a seed differs).
    // STROM_CLUSTER_FAULT_KINDS=IsolateLeader,CutLink: only these.
    let kinds = std::env::var("STROM_CLUSTER_FAULT_KINDS").unwrap_or_default();
    let faults: Vec<Fault> = FAULTS
        .into_iter()
        .filter(|&f| cluster.net.is_some() || !needs_network(f))
        .filter(|f| kinds.is_empty() || kinds.split(',').any(|k| k.trim() == format!("{f:?}")))
        .collect();
    assert!(!faults.is_empty(), "no fault kind left to apply");
    create_topic(&cluster).await;
    let admin: AdminClient<DefaultClientContext> = cluster.client().create().expect("admin");
    let created = admin
        .create_topics(
            &[NewTopic::new(
                TXN_TOPIC,
                PARTITIONS,
                TopicReplication::Fixed(3),
            )],
            &AdminOptions::new(),
        )
        .await
        .expect("create_topics");
    assert!(created.iter().all(|r| r.is_ok()), "create: {created:?}");
    drop(admin);
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
    let transacting = {
        let client = cluster.client();
        let stop = stop.clone();
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || transact_until(client, stop, seed, done));
        result
    };
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
        let fault = faults[rng.below(faults.len() as u64) as usize];
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
    let txns = transacting
        .recv_timeout(Duration::from_secs(180))
        .expect("the transactional producer reports its transactions");

    let read = tokio::task::block_in_place(|| read_all_with_offsets(&cluster));
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));
    let context = format!("{target}, seed {seed}, faults: {applied:?}");
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
    // Transactions: all or nothing under read_committed.
    let txn_read = tokio::task::block_in_place(|| read_committed(&cluster));
    check_transactions(&txns, &txn_read, &context);
    // The three copies of each partition are the same bytes.
    tokio::task::block_in_place(|| wait_identical_replicas(&cluster, &context));
    eprintln!(
        "{target} seed {seed}: {} records acknowledged ({} sends failed), {} read back, commits {:?}; \
         transactions: {} begun, {} committed, {} aborted, {} unknown, {} producer restarts, \
         {} records read committed; {}",
        acked.records.len(),
        acked.failed,
        read.len(),
        acked_commits,
        txns.sizes.len(),
        txns.committed.len(),
        txns.aborted.len(),
        txns.sizes.len() - txns.committed.len() - txns.aborted.len(),
        txns.restarts,
        txn_read.len(),
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
