//! Power loss of every node of a three-node cluster at once: what the cluster acknowledged
//! with acks=all survives (`strom.acks.all.fsync=true`, the default: an acks=all batch is
//! answered only when `min.insync.replicas` replicas have fsynced it). Apache Kafka does not
//! promise this (it acknowledges from the page cache of the ISR), so this suite has no Kafka
//! oracle.
//!
//! The three brokers run in this process, each on its own runtime and its own
//! [`PowerOffStorage`] (an in-memory filesystem that knows what was fsynced: segments, the
//! metadata log, the quorum's Raft log and vote), talking to each other and to the clients
//! over TCP on loopback. Each cycle:
//! 1. start the three nodes on the surviving state (seeded order; they wait for a quorum) and
//!    check everything acknowledged in earlier cycles (below);
//! 2. run a workload through librdkafka: acks=all producers without retries, idempotent
//!    producers and acks=1 producers (whose records may be lost) on a topic with replication factor 3 and `min.insync.replicas=2`, and offset
//!    commits of a group (`__consumer_offsets` is replicated the same way);
//! 3. once a seeded number of acks arrived, with requests still in flight, cut the power of
//!    all three: every write not fsynced is dropped (a seeded half of the files with unsynced
//!    appends keep a torn prefix), the old brokers' storage fails from then on, and their
//!    runtimes are dropped without a flush or close.
//!
//! Checked after every restart: every partition's ISR whole again (the copies the cut left
//! different reconciled); every acknowledged acks=all record at its acknowledged offset with
//! its value; no value twice; every partition is dense from its start to its high watermark; the
//! group's committed offset of each partition lies between the last acknowledged commit and
//! the last attempted one.
//!
//! `STROM_CLUSTER_POWER_OFF_SEED` (default 1) and `STROM_CLUSTER_POWER_OFF_CYCLES` (default 2)
//! set the run.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer, PurgeConfig};
use rdkafka::{Message, Offset, TopicPartitionList};
use strom::broker::Broker;
use strom::config::BrokerConfig;
use strom::log::io::{PowerOffStats, PowerOffStorage, Storage};
use tokio_util::sync::CancellationToken;

mod common;

const LOCALHOST: std::net::Ipv4Addr = std::net::Ipv4Addr::LOCALHOST;
const TOPIC: &str = "durable";
const PARTITIONS: i32 = 3;
const GROUP: &str = "power-group";
/// acks in flight per producer.
const WINDOW: usize = 16;
const DEADLINE: Duration = Duration::from_secs(90);
/// How long a node may take to join the quorum and be unfenced.
const START_TIMEOUT: Duration = Duration::from_secs(60);

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
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The ports of the three nodes: (client, controller) each, fixed for the whole run (the
/// voters' addresses are part of the configuration).
struct Ports(Vec<(u16, u16)>);

impl Ports {
    fn pick() -> Self {
        // All held at once while picked, so no two are the same.
        let held: Vec<std::net::TcpListener> = (0..6)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let p: Vec<u16> = held
            .iter()
            .map(|l| l.local_addr().expect("addr").port())
            .collect();
        Ports((0..3).map(|i| (p[2 * i], p[2 * i + 1])).collect())
    }

    fn voters(&self) -> String {
        self.0
            .iter()
            .enumerate()
            .map(|(i, (_, c))| format!("{}@127.0.0.1:{c}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn bootstrap(&self) -> String {
        self.0
            .iter()
            .map(|(p, _)| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn config(node: i32, ports: &Ports) -> BrokerConfig {
    let (port, controller) = ports.0[node as usize - 1];
    let sets = [
        "process.roles=broker,controller".to_string(),
        format!("node.id={node}"),
        format!("controller.quorum.voters={}", ports.voters()),
        "controller.listener.names=CONTROLLER".to_string(),
        format!("listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"),
        format!("log.dirs=/power-off/node{node}"),
        "strom.admin.listener=".to_string(),
        "broker.session.timeout.ms=2000".to_string(),
        "broker.heartbeat.interval.ms=250".to_string(),
        "replica.lag.time.max.ms=3000".to_string(),
        "default.replication.factor=3".to_string(),
        "min.insync.replicas=2".to_string(),
        "offsets.topic.num.partitions=3".to_string(),
        "transaction.state.log.num.partitions=2".to_string(),
        "group.initial.rebalance.delay.ms=0".to_string(),
    ];
    let props: Vec<(String, String)> = sets
        .iter()
        .map(|s| {
            let (k, v) = s.split_once('=').expect("key=value");
            (k.to_string(), v.to_string())
        })
        .collect();
    BrokerConfig::from_properties(&props).expect("config")
}

/// A node serving in this process on its own runtime.
struct Running {
    rt: tokio::runtime::Runtime,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
}

/// Starts node `node` on `storage`; waits (up to [`START_TIMEOUT`]) until it is unfenced. The
/// ports of a node whose power was cut a moment ago may still be held while its runtime winds
/// down: binding is retried.
fn start(node: i32, ports: &Ports, storage: &PowerOffStorage) -> Running {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(format!("node{node}"))
        .enable_all()
        .build()
        .expect("runtime");
    let config = config(node, ports);
    let storage: Arc<dyn Storage> = Arc::new(storage.clone());
    let (broker, shutdown) = rt.block_on(async move {
        let deadline = Instant::now() + START_TIMEOUT;
        let listener = loop {
            match strom::server::bind(config.listen, config.listen_backlog) {
                Ok(l) => break l,
                Err(e) => {
                    assert!(Instant::now() < deadline, "node {node}: bind: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let broker = loop {
            match Broker::open_cluster_with_storage(config.clone(), storage.clone(), START_TIMEOUT)
                .await
            {
                Ok(b) => break b,
                // The quorum listener's port not yet released by the old runtime.
                Err(e) if e.to_string().contains("in use") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("node {node}: open on the surviving state: {e:#}"),
            }
        };
        broker.load_transactions().await.expect("load transactions");
        let shutdown = CancellationToken::new();
        let tasks = strom::tasks::spawn_background(
            broker.clone(),
            shutdown.clone(),
            strom::tasks::Supervision::default(),
        );
        std::mem::forget(tasks);
        tokio::spawn(strom::server::serve(
            broker.clone(),
            listener,
            shutdown.clone(),
        ));
        broker.wait_unfenced(START_TIMEOUT).await.expect("unfenced");
        (broker, shutdown)
    });
    Running {
        rt,
        broker,
        shutdown,
    }
}

impl Running {
    /// Drops the node without a flush or a close (its storage is already dead).
    fn cut(self) {
        self.shutdown.cancel();
        drop(self.broker);
        self.rt.shutdown_background();
    }
}

/// Starts the three nodes at once (each waits for a quorum), in a seeded order.
fn start_all(ports: &Ports, storages: &[PowerOffStorage], rng: &mut Rng) -> Vec<Running> {
    let mut order = [1, 2, 3];
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let delays: Vec<u64> = (0..3).map(|_| rng.below(300)).collect();
    let mut started: Vec<(i32, Running)> = std::thread::scope(|s| {
        let handles: Vec<_> = order
            .iter()
            .zip(&delays)
            .map(|(&node, &delay)| {
                let storage = &storages[node as usize - 1];
                s.spawn(move || {
                    std::thread::sleep(Duration::from_millis(delay));
                    (node, start(node, ports, storage))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("start thread"))
            .collect()
    });
    started.sort_by_key(|(n, _)| *n);
    started.into_iter().map(|(_, r)| r).collect()
}

fn client(ports: &Ports, settings: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", ports.bootstrap())
        .set("message.timeout.ms", "10000")
        .set("request.timeout.ms", "5000")
        .set("socket.connection.setup.timeout.ms", "3000")
        .set("reconnect.backoff.max.ms", "200")
        .set("metadata.max.age.ms", "1000");
    for (k, v) in settings {
        c.set(*k, *v);
    }
    c
}

#[derive(Debug, Clone)]
struct Acked {
    /// acks=all (must survive) or acks=1 (may be lost; at most once).
    durable: bool,
    partition: i32,
    offset: i64,
    value: Vec<u8>,
}

#[derive(Default)]
struct Acks {
    records: Mutex<Vec<Acked>>,
    count: AtomicUsize,
    commits_acked: AtomicUsize,
}

#[derive(Default)]
struct Totals {
    records: Vec<Acked>,
    /// Per partition: (last acknowledged, last attempted) committed offset.
    commits: BTreeMap<i32, (i64, i64)>,
    commits_acked: usize,
    next_commit: i64,
    stats: Vec<PowerOffStats>,
}

/// Sends records until `stop`, WINDOW in flight; records what was acknowledged.
fn produce_loop(
    producer: FutureProducer,
    durable: bool,
    tag: &str,
    cycle: u64,
    seed: u64,
    stop: &AtomicBool,
    acks: &Acks,
) {
    let mut rng = Rng(seed);
    let mut inflight = std::collections::VecDeque::new();
    let settle = |(mut a, f): (Acked, rdkafka::producer::DeliveryFuture)| {
        if let Ok(Ok(d)) = futures::executor::block_on(f) {
            assert_eq!(d.partition, a.partition);
            a.offset = d.offset;
            if durable {
                acks.count.fetch_add(1, Ordering::AcqRel);
            }
            acks.records.lock().expect("lock").push(a);
        }
    };
    let mut i = 0usize;
    while !stop.load(Ordering::Acquire) {
        let partition = rng.below(PARTITIONS as u64) as i32;
        let value =
            format!("c{cycle}-{tag}-{i}-{}", "x".repeat(rng.below(300) as usize)).into_bytes();
        i += 1;
        let rec = FutureRecord::<(), _>::to(TOPIC)
            .partition(partition)
            .payload(&value);
        let Ok(f) = producer.send_result(rec) else {
            break;
        };
        inflight.push_back((
            Acked {
                durable,
                partition,
                offset: -1,
                value,
            },
            f,
        ));
        while inflight.len() >= WINDOW {
            settle(inflight.pop_front().expect("in flight"));
        }
    }
    producer.purge(PurgeConfig::default().queue().inflight());
    while let Some(x) = inflight.pop_front() {
        settle(x);
    }
}

/// The group coordinator's client port, asked of node `ask` (FindCoordinator v0).
fn coordinator(ports: &Ports, ask: usize) -> Option<u16> {
    use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
    use kafka_protocol::protocol::StrBytes;
    let req = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str(GROUP));
    let port = ports.0[ask % 3].0;
    let r: FindCoordinatorResponse =
        common::try_call_at(LOCALHOST, port, ApiKey::FindCoordinator, 0, &req)?;
    (r.error_code == 0).then_some(r.port as u16)
}

/// Commits `offset` for `partition` (OffsetCommit v8, a simple group) at the coordinator on
/// `port`; true when acknowledged. Raw requests with timeouts: librdkafka's synchronous commit
/// waits forever once every broker is gone.
fn commit(port: u16, partition: i32, offset: i64) -> bool {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{ApiKey, GroupId, OffsetCommitRequest, OffsetCommitResponse};
    use kafka_protocol::protocol::StrBytes;
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(StrBytes::from_static_str(TOPIC).into())
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)])]);
    let resp: Option<OffsetCommitResponse> =
        common::try_call_at(LOCALHOST, port, ApiKey::OffsetCommit, 8, &req);
    resp.is_some_and(|r| {
        r.topics.len() == 1
            && r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .all(|p| p.error_code == 0)
    })
}

/// Commits rising offsets for the group until `stop`; returns per partition (last
/// acknowledged, last attempted).
fn commit_loop(
    ports: &Ports,
    first: i64,
    stop: &AtomicBool,
    acks: &Acks,
) -> BTreeMap<i32, (i64, i64)> {
    let mut out: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    let mut offset = first;
    let mut ask = 0;
    let mut at: Option<u16> = None;
    while !stop.load(Ordering::Acquire) {
        let Some(port) = at.or_else(|| coordinator(ports, ask)) else {
            ask += 1;
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        at = Some(port);
        offset += 1;
        let p = (offset % PARTITIONS as i64) as i32;
        out.entry(p).or_insert((-1, -1)).1 = offset;
        if commit(port, p, offset) {
            out.get_mut(&p).expect("entry").0 = offset;
            acks.commits_acked.fetch_add(1, Ordering::AcqRel);
        } else {
            // Not (or no longer) the coordinator: ask again.
            at = None;
            ask += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    out
}

/// Every partition from its start to its high watermark: (partition, offset) -> value; checks
/// each partition is dense.
/// (`until`: per partition, the high watermark to wait for first — after a restart it starts
/// low and moves up as the in-sync followers report their positions.)
fn read_all(ports: &Ports, until: &BTreeMap<i32, i64>) -> BTreeMap<(i32, i64), Vec<u8>> {
    let c: BaseConsumer = client(
        ports,
        &[
            ("group.id", "power-verify"),
            ("enable.auto.commit", "false"),
            ("fetch.wait.max.ms", "20"),
        ],
    )
    .create()
    .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    let mut high = BTreeMap::new();
    let mut next = BTreeMap::new();
    for p in 0..PARTITIONS {
        let want = until.get(&p).copied().unwrap_or(0);
        let (l, h) = common_wait(|| {
            c.fetch_watermarks(TOPIC, p, Duration::from_secs(5))
                .ok()
                .filter(|(_, h)| *h >= want)
        });
        next.insert(p, l);
        high.insert(p, h);
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + DEADLINE;
    while next.iter().any(|(p, n)| *n < high[p]) {
        assert!(Instant::now() < deadline, "read up to {next:?} of {high:?}");
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let p = m.partition();
                assert_eq!(m.offset(), next[&p], "{TOPIC}-{p}: offsets not dense");
                next.insert(p, m.offset() + 1);
                out.insert((p, m.offset()), m.payload().unwrap_or_default().to_vec());
            }
            // A broker of the restarted cluster not reachable yet: the client retries.
            Some(Err(e)) => eprintln!("read: {e}"),
            None => {}
        }
    }
    out
}

/// Polls `f` for up to 30 s.
fn common_wait<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn create_topic(ports: &Ports) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = client(ports, &[]).create().expect("admin");
    // Small segments: rolls and sealed-segment flushes all the time.
    let topic =
        NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(3)).set("segment.bytes", "16384");
    let r = futures::executor::block_on(admin.create_topics(&[topic], &AdminOptions::new()))
        .expect("create_topics");
    assert!(r.iter().all(|x| x.is_ok()), "create: {r:?}");
}

fn verify_records(ports: &Ports, totals: &Totals) -> usize {
    let mut until: BTreeMap<i32, i64> = BTreeMap::new();
    for a in totals.records.iter().filter(|a| a.durable) {
        let e = until.entry(a.partition).or_insert(0);
        *e = (*e).max(a.offset + 1);
    }
    let read = read_all(ports, &until);
    let mut seen: HashMap<&[u8], (i32, i64)> = HashMap::new();
    for (at, v) in &read {
        if let Some(prev) = seen.insert(v.as_slice(), *at) {
            panic!(
                "{} at {prev:?} and again at {at:?}",
                String::from_utf8_lossy(&v[..v.len().min(40)])
            );
        }
    }
    let mut lost = Vec::new();
    for a in totals.records.iter().filter(|a| a.durable) {
        if read.get(&(a.partition, a.offset)) != Some(&a.value) {
            lost.push((
                a.partition,
                a.offset,
                String::from_utf8_lossy(&a.value[..a.value.len().min(24)]).to_string(),
            ));
        }
    }
    let durable = totals.records.iter().filter(|a| a.durable).count();
    assert!(
        lost.is_empty(),
        "{} of {durable} acknowledged acks=all records lost (partition, offset, value), first: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    durable
}

/// Waits until every partition of the topic has a leader and all three replicas in its ISR
/// (the copies that differed after the cut reconciled).
fn wait_isr_whole(ports: &Ports) {
    let c: BaseConsumer = client(ports, &[("group.id", "power-verify")])
        .create()
        .expect("consumer");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let whole = c
            .fetch_metadata(Some(TOPIC), Duration::from_secs(5))
            .ok()
            .is_some_and(|md| {
                md.topics().iter().any(|t| {
                    t.name() == TOPIC
                        && t.partitions().len() == PARTITIONS as usize
                        && t.partitions()
                            .iter()
                            .all(|p| p.leader() > 0 && p.isr().len() == 3)
                })
            });
        if whole {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the ISR of every partition not whole 60 s after the restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn verify_commits(ports: &Ports, totals: &Totals) -> usize {
    let consumer: BaseConsumer = client(ports, &[("group.id", GROUP)])
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(TOPIC, p);
    }
    // A partition answered with an error (librdkafka reports it on the element, with no
    // offset) is asked again: only an answer without errors says what is committed.
    let got = common_wait(|| {
        consumer
            .committed_offsets(tpl.clone(), Duration::from_secs(10))
            .ok()
            .filter(|l| l.elements().iter().all(|e| e.error().is_ok()))
    });
    for (p, (acked, attempted)) in &totals.commits {
        let c = got
            .find_partition(TOPIC, *p)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
            .unwrap_or(-1);
        assert!(
            c >= *acked && c <= *attempted,
            "partition {p}: committed {c}, last acknowledged commit {acked}, last attempted {attempted}"
        );
    }
    totals.commits.len()
}

/// One cycle's workload until the power cut of all three nodes; returns the storages to
/// restart on.
fn run_cycle(
    nodes: Vec<Running>,
    ports: &Ports,
    storages: &[PowerOffStorage],
    cycle: u64,
    rng: &mut Rng,
    totals: &mut Totals,
) -> Vec<PowerOffStorage> {
    let stop = AtomicBool::new(false);
    let acks = Acks::default();
    let target = 50 + rng.below(600) as usize;
    let commits_target = rng.below(30) as usize;
    let seeds = [rng.next(), rng.next(), rng.next()];
    let linger = rng.below(4).to_string();
    let plain: FutureProducer = client(
        ports,
        &[
            ("acks", "all"),
            ("enable.idempotence", "false"),
            ("message.send.max.retries", "0"),
            ("linger.ms", &linger),
        ],
    )
    .create()
    .expect("producer");
    let idempotent: FutureProducer = client(
        ports,
        &[("enable.idempotence", "true"), ("linger.ms", &linger)],
    )
    .create()
    .expect("producer");
    let one: FutureProducer = client(
        ports,
        &[
            ("acks", "1"),
            ("enable.idempotence", "false"),
            ("message.send.max.retries", "0"),
            ("linger.ms", &linger),
        ],
    )
    .create()
    .expect("producer");
    let to_purge = [plain.clone(), idempotent.clone(), one.clone()];
    let first_commit = totals.next_commit;
    let (next, commits) = std::thread::scope(|s| {
        let (stop, acks) = (&stop, &acks);
        s.spawn(move || produce_loop(plain, true, "all", cycle, seeds[0], stop, acks));
        s.spawn(move || produce_loop(idempotent, true, "idem", cycle, seeds[1], stop, acks));
        s.spawn(move || produce_loop(one, false, "one", cycle, seeds[2], stop, acks));
        let commits = s.spawn(move || commit_loop(ports, first_commit, stop, acks));
        // Cut the power once enough was acknowledged, with requests still in flight.
        let deadline = Instant::now() + DEADLINE;
        while acks.count.load(Ordering::Acquire) < target
            || acks.commits_acked.load(Ordering::Acquire) < commits_target
        {
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: {} of {target} acks, {} of {commits_target} commits",
                acks.count.load(Ordering::Acquire),
                acks.commits_acked.load(Ordering::Acquire)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // All three at once.
        let next: Vec<PowerOffStorage> = storages
            .iter()
            .map(|st| {
                let (next, stats) = st.power_off();
                totals.stats.push(stats);
                next
            })
            .collect();
        stop.store(true, Ordering::Release);
        for n in nodes {
            n.cut();
        }
        for p in &to_purge {
            p.purge(PurgeConfig::default().queue().inflight());
        }
        let c = commits.join().expect("commit thread");
        (next, c)
    });
    totals
        .records
        .extend(acks.records.into_inner().expect("lock"));
    totals.commits_acked += acks.commits_acked.load(Ordering::Acquire);
    for (p, (acked, attempted)) in commits {
        let e = totals.commits.entry(p).or_insert((-1, -1));
        if acked >= 0 {
            e.0 = acked;
        }
        e.1 = e.1.max(attempted);
    }
    // The next cycle's commits are all higher than any attempted before.
    totals.next_commit = totals
        .commits
        .values()
        .map(|c| c.1)
        .fold(first_commit, i64::max);
    next
}

#[test]
fn acknowledged_writes_survive_a_power_loss_of_every_node() {
    let seed = env_u64("STROM_CLUSTER_POWER_OFF_SEED", 1);
    let cycles = env_u64("STROM_CLUSTER_POWER_OFF_CYCLES", 2);
    let mut rng = Rng(seed);
    let ports = Ports::pick();
    let mut storages: Vec<PowerOffStorage> = (0..3)
        .map(|_| PowerOffStorage::new(rng.next(), true))
        .collect();
    let mut totals = Totals::default();
    let started = Instant::now();
    let (mut records, mut commits) = (0, 0);
    for cycle in 0..=cycles {
        let nodes = start_all(&ports, &storages, &mut rng);
        if cycle == 0 {
            create_topic(&ports);
        }
        wait_isr_whole(&ports);
        records = verify_records(&ports, &totals);
        commits = verify_commits(&ports, &totals);
        if cycle == cycles {
            for n in nodes {
                n.cut();
            }
            break;
        }
        storages = run_cycle(nodes, &ports, &storages, cycle, &mut rng, &mut totals);
    }
    let dropped: u64 = totals.stats.iter().map(|s| s.bytes_dropped).sum();
    let torn: usize = totals.stats.iter().map(|s| s.files_torn).sum();
    eprintln!(
        "cluster power-off: seed {seed}, {cycles} cuts of all three nodes in {:.1}s: {records} \
         acknowledged acks=all records and the commits of {commits} partitions ({} commits \
         acknowledged) verified after the last cut; at the cuts: {dropped} unsynced bytes \
         dropped, {torn} torn files; lost 0",
        started.elapsed().as_secs_f64(),
        totals.commits_acked,
    );
}
