//! Three `strom` processes as one cluster (the preview: `strom.cluster.preview=true`), each a
//! broker and a metadata-quorum voter, configured with Kafka's property names. A topic with
//! replication factor 3 and `min.insync.replicas=2` takes an idempotent acks=all producer
//! (librdkafka) while the leader of one partition is killed with SIGKILL: the producer carries
//! on against the new leader, and every acknowledged record is read back exactly once. The
//! killed broker restarts, catches up and re-enters every ISR; then another broker is killed so
//! that the restarted one leads a partition, and everything acknowledged is read back from the
//! survivors — the returning replica held the data it was counted in the ISR for. Last, with
//! all three back, every partition's three copies are byte for byte the same log.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{api_versions_ok, free_port, owns_listener, wait_for};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "replicated";
const PARTITIONS: i32 = 3;
const START_TIMEOUT: Duration = Duration::from_secs(60);

struct Node {
    id: i32,
    port: u16,
    controller_port: u16,
    voters: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Node {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "node {} already running", self.id);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("broker.log"))
            .expect("log file");
        let sets = [
            "process.roles=broker,controller".to_string(),
            format!("node.id={}", self.id),
            format!("controller.quorum.voters={}", self.voters),
            "controller.listener.names=CONTROLLER".to_string(),
            format!(
                "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                self.port, self.controller_port
            ),
            "strom.cluster.preview=true".to_string(),
            "strom.admin.listener=".to_string(),
            "broker.session.timeout.ms=2000".to_string(),
            "broker.heartbeat.interval.ms=250".to_string(),
            "replica.lag.time.max.ms=3000".to_string(),
            "default.replication.factor=3".to_string(),
            "min.insync.replicas=2".to_string(),
            "group.initial.rebalance.delay.ms=0".to_string(),
        ];
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strom"));
        cmd.arg("--data-dir").arg(self.dir.path().join("data"));
        for s in &sets {
            cmd.arg("--set").arg(s);
        }
        let child = cmd
            .env("RUST_LOG", "info,openraft=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn strom");
        self.child = Some(child);
    }

    /// True once the process serves Kafka clients; panics if it exited.
    fn ready(&mut self) -> bool {
        let child = self.child.as_mut().expect("running");
        if let Some(status) = child.try_wait().expect("wait") {
            panic!(
                "node {} exited during start-up: {status}; log:\n{}",
                self.id,
                self.log()
            );
        }
        owns_listener(child.id(), self.port) && api_versions_ok(self.port)
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- last lines of node {} ---", self.id);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

struct Cluster {
    nodes: Vec<Node>,
}

impl Cluster {
    fn start() -> Self {
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, (_, c))| format!("{}@127.0.0.1:{c}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes: Vec<Node> = ports
            .iter()
            .enumerate()
            .map(|(i, &(port, controller_port))| Node {
                id: i as i32 + 1,
                port,
                controller_port,
                voters: voters.clone(),
                dir: tempfile::tempdir().expect("tempdir"),
                child: None,
            })
            .collect();
        for n in &mut nodes {
            n.spawn();
        }
        let mut c = Cluster { nodes };
        for i in 1..=3 {
            c.wait_ready(i);
        }
        c
    }

    fn node(&mut self, id: i32) -> &mut Node {
        &mut self.nodes[id as usize - 1]
    }

    fn wait_ready(&mut self, id: i32) {
        let n = self.node(id);
        let deadline = Instant::now() + START_TIMEOUT;
        while !n.ready() {
            assert!(
                Instant::now() < deadline,
                "node {id} did not serve within {START_TIMEOUT:?}; log:\n{}",
                n.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client config bootstrapped from every node that is running.
    fn client(&self) -> ClientConfig {
        let boot = self
            .nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(Node::addr)
            .collect::<Vec<_>>()
            .join(",");
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", boot);
        c
    }

    /// Partition -> (leader, replicas, isr), from a fresh Metadata request.
    fn partitions(&self) -> BTreeMap<i32, (i32, Vec<i32>, Vec<i32>)> {
        self.partitions_of(TOPIC)
    }

    fn partitions_of(&self, topic: &str) -> BTreeMap<i32, (i32, Vec<i32>, Vec<i32>)> {
        let consumer: BaseConsumer = self
            .client()
            .set("group.id", "cluster-test-metadata")
            .create()
            .expect("consumer");
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        md.topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| {
                t.partitions()
                    .iter()
                    .map(|p| {
                        let mut isr = p.isr().to_vec();
                        isr.sort_unstable();
                        (p.id(), (p.leader(), p.replicas().to_vec(), isr))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until every partition has a leader and `want` in its ISR (sorted).
    fn wait_isr(&self, want: &[i32], what: &str) -> BTreeMap<i32, (i32, Vec<i32>, Vec<i32>)> {
        wait_for(Duration::from_secs(30), what, || {
            let ps = self.partitions();
            (ps.len() == PARTITIONS as usize
                && ps
                    .values()
                    .all(|(leader, _, isr)| *leader > 0 && isr.as_slice() == want))
            .then_some(ps)
        })
    }
}

fn producer(cluster: &Cluster) -> FutureProducer {
    cluster
        .client()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("request.timeout.ms", "5000")
        .set("message.timeout.ms", "60000")
        .set("metadata.max.age.ms", "1000")
        .create()
        .expect("producer")
}

/// Sends `values` spread over the partitions, `pace` apart in groups of 50; returns the values
/// acknowledged and the slowest acknowledgement.
async fn produce(
    p: &FutureProducer,
    values: std::ops::Range<u64>,
    pace: Duration,
) -> (Vec<u64>, Duration, Vec<String>) {
    let mut sends = Vec::new();
    for v in values {
        let payload = v.to_string();
        let started = Instant::now();
        let partition = (v % PARTITIONS as u64) as i32;
        let fut = p.send_result(
            FutureRecord::<(), _>::to(TOPIC)
                .partition(partition)
                .payload(&payload),
        );
        let fut = fut.expect("queue has room");
        sends.push(async move { (v, fut.await, started.elapsed()) });
        if v % 50 == 0 {
            tokio::time::sleep(pace).await;
        }
    }
    let mut acked = Vec::new();
    let mut errors = Vec::new();
    let mut slowest = Duration::ZERO;
    for (v, r, took) in futures::future::join_all(sends).await {
        match r {
            Ok(Ok(_)) => {
                acked.push(v);
                slowest = slowest.max(took);
            }
            Ok(Err((e, _))) => errors.push(format!("{v}: {e}")),
            Err(_) => errors.push(format!("{v}: cancelled")),
        }
    }
    (acked, slowest, errors)
}

/// Reads every partition from the start to its high watermark; values in read order.
fn read_all(cluster: &Cluster) -> Vec<u64> {
    let consumer: BaseConsumer = cluster
        .client()
        .set("group.id", "cluster-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut ends = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(TOPIC, p, Duration::from_secs(10))
            .expect("watermarks");
        ends.insert(p, high);
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .expect("add");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let mut done: BTreeSet<i32> = ends
        .iter()
        .filter(|(_, e)| **e == 0)
        .map(|(p, _)| *p)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.len() < PARTITIONS as usize {
        assert!(
            Instant::now() < deadline,
            "read stalled: {} records, done {done:?}, ends {ends:?}",
            out.len()
        );
        let Some(m) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let m = m.expect("fetch");
        let v: u64 = std::str::from_utf8(m.payload().expect("payload"))
            .expect("utf8")
            .parse()
            .expect("number");
        out.push(v);
        if m.offset() + 1 >= ends[&m.partition()] {
            done.insert(m.partition());
        }
    }
    out
}

fn check_no_loss(acked: &BTreeSet<u64>, read: &[u64]) {
    let seen: BTreeSet<u64> = read.iter().copied().collect();
    assert_eq!(seen.len(), read.len(), "duplicates in the log");
    let lost: Vec<&u64> = acked.difference(&seen).take(10).collect();
    assert!(
        lost.is_empty(),
        "acknowledged records lost (first 10): {lost:?}"
    );
}

async fn create_topic(cluster: &Cluster) {
    let admin: AdminClient<DefaultClientContext> = cluster.client().create().expect("admin");
    let r = admin
        .create_topics(
            &[NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(3))],
            &AdminOptions::new(),
        )
        .await
        .expect("create_topics");
    assert!(r.iter().all(|x| x.is_ok()), "create: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_then_rejoins_without_losing_acknowledged_records() {
    let mut cluster = Cluster::start();
    create_topic(&cluster).await;
    let before = cluster.wait_isr(&[1, 2, 3], "every replica in sync after create");
    for (p, (_, replicas, _)) in &before {
        let mut r = replicas.clone();
        r.sort_unstable();
        assert_eq!(r, [1, 2, 3], "partition {p} replicas");
    }

    // Phase 1: all three up.
    let p = producer(&cluster);
    let (acked1, _, errors) = produce(&p, 0..3_000, Duration::from_millis(2)).await;
    assert!(errors.is_empty(), "errors with every broker up: {errors:?}");
    let mut acked: BTreeSet<u64> = acked1.into_iter().collect();

    // Phase 2: kill -9 the leader of partition 0 while producing.
    let victim = before[&0].0;
    let sending = {
        let p = p.clone();
        tokio::spawn(async move { produce(&p, 3_000..9_000, Duration::from_millis(25)).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.node(victim).kill9();
    let killed_at = Instant::now();
    let (acked2, slowest, errors) = sending.await.expect("producer task");
    assert!(
        errors.is_empty(),
        "an idempotent acks=all producer must ride through the failover: {errors:?}"
    );
    eprintln!(
        "failover: leader {victim} killed; slowest acknowledgement {slowest:?}; \
         {} records acknowledged, all sends done {:?} after the kill",
        acked2.len(),
        killed_at.elapsed()
    );
    acked.extend(acked2);
    let survivors: Vec<i32> = (1..=3).filter(|n| *n != victim).collect();
    let after = cluster.wait_isr(&survivors, "the ISR without the killed broker");
    assert!(
        after.values().all(|(leader, _, _)| *leader != victim),
        "a killed broker still leads: {after:?}"
    );
    check_no_loss(&acked, &read_all(&cluster));

    // Phase 3: the killed broker restarts, catches up and re-enters every ISR.
    cluster.node(victim).spawn();
    cluster.wait_ready(victim);
    let rejoined = cluster.wait_isr(&[1, 2, 3], "the restarted broker back in every ISR");

    // Phase 4: kill a leader whose successor, in replica order, is the restarted broker, so
    // it must lead with the data it was counted in the ISR for.
    let (&part, (second_victim, _, _)) = rejoined
        .iter()
        .find(|(_, (leader, replicas, _))| {
            let third = 6 - victim - leader;
            *leader != victim
                && replicas.iter().position(|r| *r == victim)
                    < replicas.iter().position(|r| *r == third)
        })
        .expect("a partition the restarted broker would take over");
    let second_victim = *second_victim;
    cluster.node(second_victim).kill9();
    let survivors: Vec<i32> = (1..=3).filter(|n| *n != second_victim).collect();
    let last = cluster.wait_isr(&survivors, "the ISR without the second victim");
    assert_eq!(
        last[&part].0, victim,
        "the restarted broker leads partition {part}: {last:?}"
    );
    let p = producer(&cluster);
    let (acked3, _, errors) = produce(&p, 9_000..10_000, Duration::from_millis(2)).await;
    assert!(
        errors.is_empty(),
        "errors after the second kill: {errors:?}"
    );
    acked.extend(acked3);
    let read = read_all(&cluster);
    check_no_loss(&acked, &read);
    assert_eq!(acked.len(), 10_000, "every send acknowledged");

    // Phase 5: the second victim returns too. Once every ISR is whole, the three copies of each
    // partition hold the same bytes: a returning replica that kept records the new leader
    // never had (the tail a killed leader appended but nobody fetched) must have cut them.
    cluster.node(second_victim).spawn();
    cluster.wait_ready(second_victim);
    cluster.wait_isr(&[1, 2, 3], "the second victim back in every ISR");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sizes: Vec<Vec<usize>> = (0..PARTITIONS)
            .map(|p| {
                cluster
                    .nodes
                    .iter()
                    .map(|n| partition_bytes(n, p).len())
                    .collect()
            })
            .collect();
        let same = (0..PARTITIONS).all(|p| {
            let copies: Vec<Vec<u8>> = cluster
                .nodes
                .iter()
                .map(|n| partition_bytes(n, p))
                .collect();
            copies.windows(2).all(|w| w[0] == w[1])
        });
        if same {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replicas differ (bytes per partition per node: {sizes:?})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The segment data of partition `p` of [`TOPIC`] on node `n`, segments in offset order.
fn partition_bytes(n: &Node, p: i32) -> Vec<u8> {
    let dir = n.dir.path().join("data").join(format!("{TOPIC}-{p}"));
    let mut segments: Vec<(i64, std::path::PathBuf)> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    let base = name.strip_suffix(".log")?.parse::<i64>().ok()?;
                    Some((base, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    segments.sort();
    segments
        .into_iter()
        .flat_map(|(_, path)| std::fs::read(path).unwrap_or_default())
        .collect()
}

/// Consumes with a consumer group until `want` records arrived; returns their values.
fn consume_group(cluster: &Cluster, group: &str, want: usize) -> Vec<u64> {
    let consumer: BaseConsumer = cluster
        .client()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < want {
        assert!(
            Instant::now() < deadline,
            "group {group} read {} of {want} records",
            out.len()
        );
        let Some(m) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let m = m.expect("group fetch");
        let v: u64 = std::str::from_utf8(m.payload().expect("payload"))
            .expect("utf8")
            .parse()
            .expect("number");
        out.push(v);
    }
    // Anything beyond `want` would be a record read twice: give it a moment to show up.
    let settle = Instant::now() + Duration::from_secs(1);
    while Instant::now() < settle {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("group fetch");
            let v = std::str::from_utf8(m.payload().expect("payload")).expect("utf8");
            out.push(v.parse().expect("number"));
        }
    }
    consumer
        .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        .expect("commit");
    out
}

/// A consumer group's coordinator lives on the leader of its `__consumer_offsets` partition.
/// Offsets committed there are replicated before the commit is answered: after the
/// coordinator's broker is killed with SIGKILL, the group carries on from them on the new
/// leader, reading exactly the records produced since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_offsets_survive_the_coordinator_being_killed() {
    let mut cluster = Cluster::start();
    create_topic(&cluster).await;
    cluster.wait_isr(&[1, 2, 3], "every replica in sync after create");
    let p = producer(&cluster);
    let (acked, _, errors) = produce(&p, 0..3_000, Duration::from_millis(1)).await;
    assert!(errors.is_empty(), "{errors:?}");
    drop(p);
    let group = "cluster-group";
    let mut first = consume_group(&cluster, group, acked.len());
    first.sort_unstable();
    assert_eq!(first, acked, "the group's first pass reads everything once");

    let offsets = cluster.partitions_of("__consumer_offsets");
    let index = strom::coordinator::partition_for(group, offsets.len() as i32);
    let coordinator = offsets[&index].0;
    assert!(coordinator > 0, "a coordinator: {offsets:?}");
    cluster.node(coordinator).kill9();
    let killed_at = Instant::now();

    let p = producer(&cluster);
    let (acked, _, errors) = produce(&p, 3_000..4_000, Duration::from_millis(1)).await;
    assert!(errors.is_empty(), "after the kill: {errors:?}");
    let mut second = consume_group(&cluster, group, acked.len());
    second.sort_unstable();
    assert_eq!(
        second, acked,
        "the group resumes from its committed offsets on the new coordinator"
    );
    eprintln!(
        "coordinator {coordinator} (partition {index}) killed; the group read the next {} records {:?} later",
        second.len(),
        killed_at.elapsed()
    );
}
