//! Three nodes as one cluster on loopback, for the cluster tests: each node a broker and a
//! metadata-quorum voter, started from a Kafka-named `server.properties` of its own (Strom's
//! `strom.admin.listener=` beside Kafka's keys), on free ports, with data in its own
//! temporary directory and its log in `broker.log` there. Nodes can be killed (SIGKILL), paused
//! (SIGSTOP), resumed, stopped (SIGTERM) and restarted on the same ports and data. Clients are
//! librdkafka. [`Cluster::start_in_namespaces`] runs each node in a network namespace of its own
//! instead (see [`Net`]), so that links between nodes can be cut ([`Cluster::cut`]) and mended.
//!
//! The nodes are `strom` processes, or with [`Flavour::Kafka`] Apache Kafka 4.4 brokers from
//! its jars started from the same properties files (formatted with `kafka-storage format` on
//! their first start): the oracle for what clients see of a cluster under faults.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{api_versions_ok_at, owns_listener_at, signal, wait_for};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

pub const TOPIC: &str = "replicated";
pub const PARTITIONS: i32 = 3;
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What the nodes run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavour {
    /// The `strom` binary (`STROM_BIN`, or this build's).
    Strom,
    /// Apache Kafka from the jars in `lib` (`kafka.Kafka`), all nodes formatted with `cluster_id`.
    Kafka { lib: PathBuf, cluster_id: String },
}

impl Flavour {
    /// `STROM_CLUSTER_TARGET=kafka`: Apache Kafka 4.4 from the jars in `STROM_KAFKA_LIB`
    /// (default `$COMPAT_CACHE/lib44`, compat-tests/.cache/lib44 without it, which
    /// `bash compat-tests/install.sh java` fills); otherwise Strom.
    pub fn from_env() -> Self {
        match std::env::var("STROM_CLUSTER_TARGET").as_deref() {
            Ok("kafka") => {
                // The compat suite's cache (COMPAT_CACHE, as compat-tests/run.sh uses it).
                let cache = std::env::var("COMPAT_CACHE").map_or_else(
                    |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("compat-tests/.cache"),
                    PathBuf::from,
                );
                let lib = std::env::var("STROM_KAFKA_LIB")
                    .map_or_else(|_| cache.join("lib44"), PathBuf::from);
                assert!(
                    lib.join("kafka_2.13-4.4.0.jar").exists(),
                    "no Kafka 4.4 jars in {} (run `bash compat-tests/install.sh java`, or set \
                     STROM_KAFKA_LIB)",
                    lib.display()
                );
                Flavour::Kafka {
                    lib,
                    cluster_id: kafka_cluster_id(),
                }
            }
            Ok("strom") | Err(_) => Flavour::Strom,
            Ok(other) => panic!("STROM_CLUSTER_TARGET={other}: expected strom or kafka"),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Flavour::Strom => "strom",
            Flavour::Kafka { .. } => "kafka",
        }
    }
}

/// A random cluster id as `kafka-storage random-uuid` prints it (22 base64url characters, not
/// starting with '-').
fn kafka_cluster_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u128;
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(bits);
        bits = (bits << 64) | h.finish() as u128;
    }
    let mut id: String = (0..22)
        .map(|i| ALPHABET[((bits >> (i * 6)) & 63) as usize] as char)
        .collect();
    if id.starts_with('-') {
        id.replace_range(0..1, "A");
    }
    id
}

pub struct Node {
    pub id: i32,
    /// The address its listeners bind: 127.0.0.1, or its own address in its own network
    /// namespace (`netns`).
    pub host: Ipv4Addr,
    pub netns: Option<String>,
    pub port: u16,
    pub controller_port: u16,
    pub voters: String,
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    /// More `key=value` settings, after the cluster's own.
    pub extra: Vec<String>,
    pub flavour: Flavour,
    /// Kafka: `kafka-storage format` has run on this node's log directory.
    formatted: bool,
}

impl Node {
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }

    /// This node's `server.properties`: Kafka's keys (both flavours read them), then Strom's
    /// own (Kafka ignores it), then [`Node::extra`].
    pub fn properties(&self) -> String {
        let h = self.host;
        let mut lines = vec![
            "process.roles=broker,controller".to_string(),
            format!("node.id={}", self.id),
            format!("controller.quorum.voters={}", self.voters),
            "controller.listener.names=CONTROLLER".to_string(),
            format!(
                "listeners=PLAINTEXT://{h}:{},CONTROLLER://{h}:{}",
                self.port, self.controller_port
            ),
            format!("advertised.listeners=PLAINTEXT://{h}:{}", self.port),
            "inter.broker.listener.name=PLAINTEXT".to_string(),
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT".to_string(),
            format!("log.dirs={}", self.dir.path().join("data").display()),
            "broker.session.timeout.ms=2000".to_string(),
            "broker.heartbeat.interval.ms=250".to_string(),
            "replica.lag.time.max.ms=3000".to_string(),
            "default.replication.factor=3".to_string(),
            "min.insync.replicas=2".to_string(),
            "offsets.topic.replication.factor=3".to_string(),
            "transaction.state.log.replication.factor=3".to_string(),
            "transaction.state.log.min.isr=2".to_string(),
            "group.initial.rebalance.delay.ms=0".to_string(),
            "strom.admin.listener=".to_string(),
        ];
        lines.extend(self.extra.iter().cloned());
        lines.join("\n") + "\n"
    }

    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "node {} already running", self.id);
        let props = self.dir.path().join("server.properties");
        std::fs::write(&props, self.properties()).expect("write server.properties");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("broker.log"))
            .expect("log file");
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if let Some(ns) = &self.netns {
            // `ip netns exec` execs the broker: the child's pid is the broker's.
            argv.extend(["ip", "netns", "exec", ns.as_str()].map(Into::into));
        }
        match &self.flavour {
            Flavour::Strom => {
                // STROM_BIN runs another build (e.g. a release binary for long fault runs).
                let bin = std::env::var("STROM_BIN")
                    .unwrap_or_else(|_| env!("CARGO_BIN_EXE_strom").into());
                argv.extend([bin.into(), "--config".into(), props.into_os_string()]);
            }
            Flavour::Kafka { lib, cluster_id } => {
                let java = self.java(lib);
                if !self.formatted {
                    let out = Command::new(&java[0])
                        .args(&java[1..])
                        .arg("kafka.tools.StorageTool")
                        .arg("format")
                        .arg(format!("--cluster-id={cluster_id}"))
                        .arg("-c")
                        .arg(&props)
                        .stdin(Stdio::null())
                        .output()
                        .expect("run kafka-storage format");
                    assert!(
                        out.status.success(),
                        "kafka-storage format on node {}: {}{}",
                        self.id,
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    self.formatted = true;
                }
                argv.extend(java);
                argv.extend(["kafka.Kafka".into(), props.into_os_string()]);
            }
        }
        let log_err = log.try_clone().expect("log file");
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .env("RUST_LOG", "info,openraft=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .expect("spawn the node");
        self.child = Some(child);
    }

    /// `java` and its arguments up to the main class, for Kafka from the jars in `lib`
    /// (its log, at INFO, to stdout).
    fn java(&self, lib: &std::path::Path) -> Vec<std::ffi::OsString> {
        let log4j = self.dir.path().join("log4j2.properties");
        std::fs::write(
            &log4j,
            "status = error\n\
             appender.out.type = Console\n\
             appender.out.name = STDOUT\n\
             appender.out.layout.type = PatternLayout\n\
             appender.out.layout.pattern = [%d{HH:mm:ss,SSS}] %p %c{1}: %m%n\n\
             rootLogger.level = INFO\n\
             rootLogger.appenderRef.out.ref = STDOUT\n\
             logger.request.name = kafka.request.logger\n\
             logger.request.level = WARN\n",
        )
        .expect("write log4j2.properties");
        vec![
            "java".into(),
            "-Xmx768m".into(),
            "-Xms256m".into(),
            // IPv4 sockets: the readiness check reads /proc/<pid>/net/tcp.
            "-Djava.net.preferIPv4Stack=true".into(),
            format!("-Dlog4j2.configurationFile={}", log4j.display()).into(),
            "-cp".into(),
            lib.join("*").into_os_string(),
        ]
    }

    /// True once the process serves Kafka clients; panics if it exited.
    pub fn ready(&mut self) -> bool {
        let child = self.child.as_mut().expect("running");
        if let Some(status) = child.try_wait().expect("wait") {
            panic!(
                "node {} exited during start-up: {status}; log:\n{}",
                self.id,
                self.log()
            );
        }
        owns_listener_at(child.id(), self.host, self.port)
            && api_versions_ok_at(self.host, self.port)
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            // A paused process dies from SIGKILL too; resuming first changes nothing.
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the process stays, silent (no heartbeats, no answers) until [`Node::resume`].
    pub fn pause(&mut self) {
        if let Some(c) = &self.child {
            signal(c.id(), libc::SIGSTOP);
        }
    }

    pub fn resume(&mut self) {
        if let Some(c) = &self.child {
            signal(c.id(), libc::SIGCONT);
        }
    }

    /// SIGTERM, then waits for the exit (SIGKILL after `timeout`). True when it exited by itself.
    pub fn stop(&mut self, timeout: Duration) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        signal(c.id(), libc::SIGCONT);
        signal(c.id(), libc::SIGTERM);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if c.try_wait().expect("wait").is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
        // STROM_CLUSTER_KEEP_LOGS=<dir>: the whole log and data directory are kept there when
        // the test fails; with STROM_CLUSTER_KEEP_ALWAYS=1 also when it passes.
        let keep_always = std::env::var("STROM_CLUSTER_KEEP_ALWAYS").as_deref() == Ok("1");
        if std::thread::panicking() || keep_always {
            if let Ok(keep) = std::env::var("STROM_CLUSTER_KEEP_LOGS") {
                let to = std::path::Path::new(&keep).join(format!("node{}", self.id));
                let _ = std::fs::create_dir_all(&to);
                let _ = Command::new("cp")
                    .arg("-a")
                    .arg(self.dir.path())
                    .arg(&to)
                    .status();
                eprintln!("node {} kept in {}", self.id, to.display());
            }
        }
        if std::thread::panicking() {
            let log = self.log();
            // The last 40 distinct messages (a line repeated but for its time stamp is shown
            // once, with its count): a loop does not hide what led to it.
            let mut tail: Vec<(String, usize)> = Vec::new();
            for l in log.lines() {
                let msg = l.split_once(' ').map_or(l, |(_, m)| m).to_string();
                match tail.last_mut() {
                    Some((last, n)) if *last == msg => *n += 1,
                    _ => tail.push((msg, 1)),
                }
            }
            eprintln!("--- last messages of node {} ---", self.id);
            for (msg, n) in &tail[tail.len().saturating_sub(40)..] {
                if *n > 1 {
                    eprintln!("{msg} (x{n})");
                } else {
                    eprintln!("{msg}");
                }
            }
        }
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    /// The namespaces the nodes run in, when started by [`Cluster::start_in_namespaces`];
    /// after `nodes`, so the brokers die before their namespaces go.
    pub net: Option<Net>,
}

impl Cluster {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts three Strom nodes with `extra` settings (`key=value`) on each.
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_as(Flavour::Strom, extra)
    }

    /// Starts three Strom nodes with `extra` settings on each and `own[i]` on node i + 1 only
    /// (e.g. `broker.rack`).
    pub fn start_each(extra: &[&str], own: [&[&str]; 3]) -> Self {
        let mut c = Self::start_as_unready(Flavour::Strom, extra);
        for (n, own) in c.nodes.iter_mut().zip(own) {
            n.extra.extend(own.iter().map(|s| s.to_string()));
        }
        c.spawn_all();
        c
    }

    /// Starts three nodes of `flavour` on loopback with `extra` settings on each.
    pub fn start_as(flavour: Flavour, extra: &[&str]) -> Self {
        let mut c = Self::start_as_unready(flavour, extra);
        c.spawn_all();
        c
    }

    /// Three nodes of `flavour` on loopback, not started yet.
    fn start_as_unready(flavour: Flavour, extra: &[&str]) -> Self {
        // Six distinct ports: all held at once while picked (one after another, the kernel
        // may hand the same free port out twice).
        let held: Vec<std::net::TcpListener> = (0..6)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
            .collect();
        let picked: Vec<u16> = held
            .iter()
            .map(|l| l.local_addr().expect("local addr").port())
            .collect();
        drop(held);
        let hosts = vec![(Ipv4Addr::LOCALHOST, None); 3];
        let ports: Vec<(u16, u16)> = (0..3).map(|i| (picked[2 * i], picked[2 * i + 1])).collect();
        Self::nodes(flavour, hosts, ports, extra, None)
    }

    /// Three nodes, each in a network namespace of its own (see [`Net`]), so that the links
    /// between them can be cut while clients (in this process's namespace) still reach every
    /// node. None when namespaces cannot be made here (not root, no `ip`/`nft`).
    pub fn start_in_namespaces(extra: &[&str]) -> Option<Self> {
        Self::start_in_namespaces_as(Flavour::Strom, extra)
    }

    /// [`Cluster::start_in_namespaces`] with nodes of `flavour`.
    pub fn start_in_namespaces_as(flavour: Flavour, extra: &[&str]) -> Option<Self> {
        let net = Net::create(3)?;
        let hosts = (1..=3).map(|i| (net.ip(i), Some(net.ns(i)))).collect();
        // Each node has its own address: the same two ports on all of them.
        let ports = vec![(9092, 9093); 3];
        let mut c = Self::nodes(flavour, hosts, ports, extra, Some(net));
        c.spawn_all();
        Some(c)
    }

    /// Starts every node and waits until each serves.
    fn spawn_all(&mut self) {
        for n in &mut self.nodes {
            n.spawn();
        }
        for i in 1..=3 {
            self.wait_ready(i);
        }
    }

    fn nodes(
        flavour: Flavour,
        hosts: Vec<(Ipv4Addr, Option<String>)>,
        ports: Vec<(u16, u16)>,
        extra: &[&str],
        net: Option<Net>,
    ) -> Self {
        let voters = ports
            .iter()
            .zip(&hosts)
            .enumerate()
            .map(|(i, ((_, c), (h, _)))| format!("{}@{h}:{c}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let nodes: Vec<Node> = ports
            .iter()
            .zip(hosts)
            .enumerate()
            .map(|(i, (&(port, controller_port), (host, netns)))| Node {
                id: i as i32 + 1,
                host,
                netns,
                port,
                controller_port,
                voters: voters.clone(),
                dir: tempfile::tempdir().expect("tempdir"),
                child: None,
                extra: extra.iter().map(|s| s.to_string()).collect(),
                flavour: flavour.clone(),
                formatted: false,
            })
            .collect();
        Cluster { nodes, net }
    }

    /// Drops every packet between nodes `a` and `b`, both ways (clients still reach both).
    /// Panics unless the cluster runs in namespaces.
    pub fn cut(&self, a: i32, b: i32) {
        self.net
            .as_ref()
            .expect("a cluster in namespaces")
            .cut(a, b);
    }

    /// Restores every link [`Cluster::cut`] dropped.
    pub fn mend(&self) {
        if let Some(net) = &self.net {
            net.mend();
        }
    }

    pub fn node(&mut self, id: i32) -> &mut Node {
        &mut self.nodes[id as usize - 1]
    }

    pub fn wait_ready(&mut self, id: i32) {
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

    /// The active controller (the metadata quorum's leader) as the running nodes report it in
    /// DescribeQuorum, the answer with the highest leader epoch; None when none answers.
    pub fn active_controller(&self) -> Option<i32> {
        use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
        use kafka_protocol::messages::{ApiKey, DescribeQuorumRequest, DescribeQuorumResponse};
        use kafka_protocol::protocol::StrBytes;
        let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(StrBytes::from_static_str("__cluster_metadata").into())
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .filter_map(|n| {
                let r: DescribeQuorumResponse =
                    super::try_call_at(n.host, n.port, ApiKey::DescribeQuorum, 0, &req)?;
                let p = r.topics.first()?.partitions.first()?;
                (r.error_code == 0 && p.error_code == 0 && p.leader_id.0 > 0)
                    .then_some((p.leader_epoch, p.leader_id.0))
            })
            .max()
            .map(|(_, id)| id)
    }

    /// A client config bootstrapped from every node that is running.
    pub fn client(&self) -> ClientConfig {
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
    pub fn partitions(&self) -> BTreeMap<i32, (i32, Vec<i32>, Vec<i32>)> {
        self.partitions_of(TOPIC)
    }

    pub fn partitions_of(&self, topic: &str) -> BTreeMap<i32, (i32, Vec<i32>, Vec<i32>)> {
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

    /// What each running node answers to Metadata for [`TOPIC`] (brokers, partitions with
    /// leader, replicas, ISR and error): for failure messages.
    pub fn metadata_views(&self) -> String {
        let mut out = String::new();
        for n in self.nodes.iter().filter(|n| n.child.is_some()) {
            let consumer: Result<BaseConsumer, _> = ClientConfig::new()
                .set("bootstrap.servers", n.addr())
                .set("group.id", "cluster-test-metadata")
                .create();
            let view = consumer.map_err(|e| e.to_string()).and_then(|c| {
                c.fetch_metadata(Some(TOPIC), Duration::from_secs(5))
                    .map_err(|e| e.to_string())
                    .map(|md| {
                        let brokers: Vec<i32> = md.brokers().iter().map(|b| b.id()).collect();
                        let topics: Vec<String> = md
                            .topics()
                            .iter()
                            .map(|t| {
                                let parts: Vec<String> = t
                                    .partitions()
                                    .iter()
                                    .map(|p| {
                                        format!(
                                            "p{} leader {} replicas {:?} isr {:?} err {:?}",
                                            p.id(),
                                            p.leader(),
                                            p.replicas(),
                                            p.isr(),
                                            p.error()
                                        )
                                    })
                                    .collect();
                                format!("{} err {:?}: {}", t.name(), t.error(), parts.join("; "))
                            })
                            .collect();
                        format!("brokers {brokers:?}; {}", topics.join(" | "))
                    })
            });
            out.push_str(&format!(
                "  node {}: {}\n",
                n.id,
                view.unwrap_or_else(|e| e)
            ));
        }
        out
    }

    /// Waits until every partition has a leader and `want` in its ISR (sorted).
    pub fn wait_isr(&self, want: &[i32], what: &str) -> BTreeMap<i32, (i32, Vec<i32>, Vec<i32>)> {
        self.wait_isr_of(TOPIC, PARTITIONS as usize, want, what)
    }

    /// [`Cluster::wait_isr`] for the `partitions` partitions of `topic`.
    pub fn wait_isr_of(
        &self,
        topic: &str,
        partitions: usize,
        want: &[i32],
        what: &str,
    ) -> BTreeMap<i32, (i32, Vec<i32>, Vec<i32>)> {
        wait_for(Duration::from_secs(30), what, || {
            let ps = self.partitions_of(topic);
            (ps.len() == partitions
                && ps
                    .values()
                    .all(|(leader, _, isr)| *leader > 0 && isr.as_slice() == want))
            .then_some(ps)
        })
    }
}

pub fn producer(cluster: &Cluster) -> FutureProducer {
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
pub async fn produce(
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

/// Reads every partition from the start to its high watermark; values in read order (see
/// [`read_all_with_offsets`]).
pub fn read_all(cluster: &Cluster) -> Vec<u64> {
    read_all_with_offsets(cluster)
        .into_iter()
        .map(|(_, _, v)| v)
        .collect()
}

pub async fn create_topic(cluster: &Cluster) {
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

/// The segment data of partition `p` of [`TOPIC`] on node `n`, segments in offset order.
pub fn partition_bytes(n: &Node, p: i32) -> Vec<u8> {
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

/// Waits (up to 30 s) until the copies of every partition of [`TOPIC`] on the three nodes are
/// the same bytes; panics naming `context` and each copy's size otherwise.
pub fn wait_identical_replicas(cluster: &Cluster, context: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let copies: Vec<Vec<Vec<u8>>> = (0..PARTITIONS)
            .map(|p| {
                cluster
                    .nodes
                    .iter()
                    .map(|n| partition_bytes(n, p))
                    .collect()
            })
            .collect();
        if copies.iter().all(|c| c.windows(2).all(|w| w[0] == w[1])) {
            return;
        }
        let sizes: Vec<Vec<usize>> = copies
            .iter()
            .map(|c| c.iter().map(Vec::len).collect())
            .collect();
        assert!(
            Instant::now() < deadline,
            "{context}: replicas differ (bytes per partition per node: {sizes:?})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One record read back: (partition, offset, value).
pub type Read = (i32, i64, u64);

/// Reads every partition of [`TOPIC`] from the start to its high watermark, with offsets.
pub fn read_all_with_offsets(cluster: &Cluster) -> Vec<Read> {
    let consumer: BaseConsumer = cluster
        .client()
        .set("group.id", "cluster-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut ends = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        // Retried with a fresh client: right after a fault heals, a node may answer one
        // Metadata request from a view still catching up, and librdkafka keeps what it was
        // told (seen twice in 130 schedules: "Unknown partition" for 30 s from one client).
        // What each node answers is printed the first time, to find out which view it was.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut asker: Option<BaseConsumer> = None;
        let mut reported = false;
        let high = loop {
            let c = asker.get_or_insert_with(|| {
                cluster
                    .client()
                    .set("group.id", "cluster-test-reader")
                    .create()
                    .expect("consumer")
            });
            match c.fetch_watermarks(TOPIC, p, Duration::from_secs(5)) {
                Ok((_, high)) => break high,
                Err(e) => {
                    if !reported {
                        reported = true;
                        eprintln!(
                            "watermarks of partition {p}: {e}; each node's metadata:\n{}",
                            cluster.metadata_views()
                        );
                    }
                    assert!(
                        Instant::now() < deadline,
                        "no watermarks for partition {p}: {e}; each node's metadata:\n{}",
                        cluster.metadata_views()
                    );
                    asker = None;
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        };
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
    let deadline = Instant::now() + Duration::from_secs(120);
    while done.len() < PARTITIONS as usize {
        assert!(
            Instant::now() < deadline,
            "read stalled: {} records, done {done:?}, ends {ends:?}",
            out.len()
        );
        let Some(m) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let Some(m) = message_or_transient(m) else {
            continue;
        };
        let v: u64 = std::str::from_utf8(m.payload().expect("payload"))
            .expect("utf8")
            .parse()
            .expect("number");
        out.push((m.partition(), m.offset(), v));
        if m.offset() + 1 >= ends[&m.partition()] {
            done.insert(m.partition());
        }
    }
    out
}

/// A consumer poll's message; None for librdkafka's report of a broker it cannot reach (a
/// killed broker stays in the Metadata broker list for a session timeout, as in Kafka), which
/// is no failure of the read. Any other error fails the test.
pub fn message_or_transient(
    m: rdkafka::error::KafkaResult<rdkafka::message::BorrowedMessage<'_>>,
) -> Option<rdkafka::message::BorrowedMessage<'_>> {
    match m {
        Ok(m) => Some(m),
        Err(rdkafka::error::KafkaError::MessageConsumption(
            rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure,
        )) => None,
        Err(e) => panic!("fetch: {e}"),
    }
}

/// Network namespaces for a three-node cluster: node `i` runs in namespace `strom-<tag>-<i>`
/// with address 10.213.<k>.(10+i)/24 on a veth whose other end is on a bridge in this
/// process's namespace, which holds 10.213.<k>.1 (so the test's clients reach every node, and
/// nodes reach each other across the bridge). [`Net::cut`] adds nftables drop rules inside the
/// two nodes' namespaces: packets are silently lost, as on a real partition, not refused.
/// Dropping the value deletes the namespaces and the bridge.
pub struct Net {
    tag: String,
    subnet: u8,
    nodes: i32,
}

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn sh_stdin(args: &[&str], input: &str) -> bool {
    use std::io::Write;
    let Ok(mut child) = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let wrote = child
        .stdin
        .take()
        .is_some_and(|mut i| i.write_all(input.as_bytes()).is_ok());
    child.wait().is_ok_and(|s| s.success()) && wrote
}

impl Net {
    /// None (after saying why on stderr) when this process cannot make namespaces.
    pub fn create(nodes: i32) -> Option<Net> {
        if std::env::var("STROM_CLUSTER_NETNS").as_deref() == Ok("0") {
            eprintln!("STROM_CLUSTER_NETNS=0: no network namespaces");
            return None;
        }
        // SAFETY: geteuid(2) reads a number and cannot fail.
        #[allow(unsafe_code)]
        let root = unsafe { libc::geteuid() } == 0;
        if !root || !sh(&["nft", "--version"]) || !sh(&["ip", "-V"]) {
            eprintln!("network namespaces need root, ip (iproute2) and nft (nftables): skipped");
            return None;
        }
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let pid = std::process::id();
        // A subnet and names no other test process on this machine uses at the same time:
        // the bridge name is the lock (creating it fails when it exists).
        for attempt in 0..250u32 {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let subnet = ((pid + n + attempt) % 250) as u8;
            let tag = format!("{subnet}");
            let net = Net { tag, subnet, nodes };
            if !sh(&["ip", "link", "add", &net.bridge(), "type", "bridge"]) {
                continue;
            }
            if net.setup() {
                return Some(net);
            }
            eprintln!("setting up network namespaces failed: skipped");
            return None;
        }
        None
    }

    fn bridge(&self) -> String {
        format!("strombr{}", self.tag)
    }

    fn veth(&self, i: i32) -> String {
        format!("strom{}v{i}", self.tag)
    }

    pub fn ns(&self, i: i32) -> String {
        format!("strom-{}-{i}", self.tag)
    }

    pub fn ip(&self, i: i32) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, 10 + i as u8)
    }

    fn setup(&self) -> bool {
        // Namespaces of a run that died without cleaning up (no live run holds this tag: its
        // bridge did not exist).
        for i in 1..=self.nodes {
            sh(&["ip", "netns", "del", &self.ns(i)]);
        }
        let br = self.bridge();
        let gw = format!("10.213.{}.1/24", self.subnet);
        let mut ok =
            sh(&["ip", "addr", "add", &gw, "dev", &br]) && sh(&["ip", "link", "set", &br, "up"]);
        for i in 1..=self.nodes {
            let (ns, veth) = (self.ns(i), self.veth(i));
            let addr = format!("{}/24", self.ip(i));
            ok = ok
                && sh(&["ip", "netns", "add", &ns])
                && sh(&[
                    "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns",
                    &ns,
                ])
                && sh(&["ip", "link", "set", &veth, "master", &br, "up"])
                && sh(&["ip", "-n", &ns, "addr", "add", &addr, "dev", "eth0"])
                && sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"])
                && sh(&["ip", "-n", &ns, "link", "set", "lo", "up"])
                && sh_stdin(
                    &["ip", "netns", "exec", &ns, "nft", "-f", "-"],
                    "table inet strom_test {\n\
                     chain input { type filter hook input priority 0; }\n\
                     chain output { type filter hook output priority 0; }\n\
                     }\n",
                );
        }
        ok
    }

    /// Runs `nft args...` inside node `i`'s namespace.
    fn nft(&self, i: i32, args: &[&str]) -> bool {
        let ns = self.ns(i);
        let mut argv = vec!["ip", "netns", "exec", &ns, "nft"];
        argv.extend_from_slice(args);
        sh(&argv)
    }

    /// Every packet between nodes `a` and `b` dropped, both ways, in both namespaces.
    pub fn cut(&self, a: i32, b: i32) {
        for (me, peer) in [(a, b), (b, a)] {
            let peer = self.ip(peer).to_string();
            for (chain, dir) in [("input", "saddr"), ("output", "daddr")] {
                let rule = [
                    "add",
                    "rule",
                    "inet",
                    "strom_test",
                    chain,
                    "ip",
                    dir,
                    &peer,
                    "drop",
                ];
                assert!(self.nft(me, &rule), "nft rule in {}", self.ns(me));
            }
        }
    }

    /// Every cut link restored.
    pub fn mend(&self) {
        for i in 1..=self.nodes {
            for chain in ["input", "output"] {
                let flush = ["flush", "chain", "inet", "strom_test", chain];
                assert!(self.nft(i, &flush), "nft flush in {}", self.ns(i));
            }
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 1..=self.nodes {
            sh(&["ip", "link", "del", &self.veth(i)]);
            sh(&["ip", "netns", "del", &self.ns(i)]);
        }
        sh(&["ip", "link", "del", &self.bridge()]);
    }
}
