//! A real Strom broker as a child process for integration tests.
//!
//! [`TestBroker::start`] runs the `strom` binary on a free 127.0.0.1 port with its own temporary
//! data directory and stderr captured to `broker.log` in that directory. It is ready when the
//! child itself owns the listening socket (checked through `/proc`, so a foreign process that
//! won the race for the port is never mistaken for our broker) and answers an ApiVersions
//! request. `stop()` is SIGTERM and expects exit status 0, `kill9()` is SIGKILL, `restart()`
//! starts again on the same port and data directory; dropping kills the child, and prints the
//! tail of its log when the test is failing. Every wait is a condition with a deadline.
#![allow(dead_code)]

pub mod cluster;
pub mod share;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::FutureProducer;

/// How long a broker may take to start serving or to stop.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at finding a port nobody else grabs between our probe and the broker's bind.
const PORT_ATTEMPTS: usize = 5;

pub struct TestBroker {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    _tmp: Option<tempfile::TempDir>,
}

/// A port that was free a moment ago: bind port 0 on loopback, read it, release it.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

enum Spawn {
    Ready,
    /// The child exited because it could not bind its port.
    PortTaken,
}

impl TestBroker {
    /// Starts a broker with `--set key=value` overrides, e.g. `&["max.connections=5"]`.
    pub fn start(sets: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let extra = sets
            .iter()
            .flat_map(|s| ["--set".to_string(), (*s).to_string()])
            .collect();
        let mut b = TestBroker {
            child: None,
            port: 0,
            dir,
            extra,
            _tmp: Some(tmp),
        };
        for _ in 0..PORT_ATTEMPTS {
            b.port = free_port();
            if let Spawn::Ready = b.spawn() {
                return b;
            }
        }
        panic!(
            "no free port after {PORT_ATTEMPTS} attempts; log:\n{}",
            b.log()
        );
    }

    fn spawn(&mut self) -> Spawn {
        let log_start = self.log().len();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_strom"))
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&self.extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn strom");
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().expect("wait"))
            {
                self.child = None;
                let log = self.log();
                if log.get(log_start..).unwrap_or("").contains("cannot listen") {
                    return Spawn::PortTaken;
                }
                panic!("broker exited during start-up: {status}; log:\n{log}");
            }
            if owns_listener(pid, self.port) && api_versions_ok(self.port) {
                return Spawn::Ready;
            }
            assert!(
                Instant::now() < deadline,
                "broker did not serve within {START_TIMEOUT:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The temporary directory: `data/` (the broker's log dirs) and `broker.log`.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("broker.log")
    }

    /// Everything the broker wrote to stderr, across restarts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).expect("broker running")
    }

    /// True while the child process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().expect("wait").is_none(),
            None => false,
        }
    }

    /// Graceful stop (SIGTERM); asserts the broker exits with status 0 within the deadline.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        signal(c.id(), libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "broker exit status {status}; log:\n{}",
                    self.log()
                );
                return;
            }
            if Instant::now() >= deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "broker did not stop within {STOP_TIMEOUT:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port and data directory (after `stop` or `kill9`). The port
    /// may briefly be held by someone else: retried for a bounded time.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart() of a running broker");
        let deadline = Instant::now() + START_TIMEOUT;
        while let Spawn::PortTaken = self.spawn() {
            assert!(
                Instant::now() < deadline,
                "port {} stayed taken; log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A librdkafka config pointing at this broker.
    pub fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap());
        c
    }

    pub fn producer(&self, settings: &[(&str, &str)]) -> FutureProducer {
        with(self.client(), settings).create().expect("producer")
    }

    /// A consumer for manual assignment (`assign`); pass `group.id` for subscribe/commit.
    pub fn consumer(&self, settings: &[(&str, &str)]) -> BaseConsumer {
        let mut c = self.client();
        c.set("group.id", "test-consumer")
            .set("enable.auto.commit", "false");
        with(c, settings).create().expect("consumer")
    }

    pub fn admin(&self) -> AdminClient<DefaultClientContext> {
        self.client().create().expect("admin client")
    }

    /// Creates a topic through the AdminClient; panics unless it succeeds.
    pub async fn create_topic(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        for (k, v) in configs {
            t = t.set(k, v);
        }
        let r = self
            .admin()
            .create_topics(&[t], &AdminOptions::new())
            .await
            .expect("create_topics");
        assert!(r.iter().all(|x| x.is_ok()), "create topic {name}: {r:?}");
    }
}

fn with(mut c: ClientConfig, settings: &[(&str, &str)]) -> ClientConfig {
    for (k, v) in settings {
        c.set(*k, *v);
    }
    c
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last lines of {} ---", self.log_path().display());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

pub fn signal(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; the pid is our own
    // child, which has not been reaped yet (Child::try_wait/wait reap it), so it cannot be reused.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

/// True when process `pid` holds the socket listening on 127.0.0.1:`port`.
pub fn owns_listener(pid: u32, port: u16) -> bool {
    owns_listener_at(pid, std::net::Ipv4Addr::LOCALHOST, port)
}

/// Whether process `pid` holds a socket listening on `ip:port`, read from the process's own
/// `/proc/<pid>/net/tcp` (its network namespace's table, so a broker started in a namespace
/// of its own is found too).
pub fn owns_listener_at(pid: u32, ip: std::net::Ipv4Addr, port: u16) -> bool {
    let Ok(tcp) = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")) else {
        return false;
    };
    // The kernel prints the address as the host-order u32 of the network-order bytes.
    let local = format!("{:08X}:{port:04X}", u32::from_le_bytes(ip.octets()));
    let inodes: Vec<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // sl local_address rem_address st ... inode (field 9); st 0A is LISTEN.
            (f.len() > 9 && f[1] == local && f[3] == "0A").then(|| f[9].to_string())
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .any(|target| {
            let t = target.to_string_lossy();
            inodes.iter().any(|i| t == format!("socket:[{i}]"))
        })
}

/// Whether the broker on 127.0.0.1:`port` answers ApiVersions v0 without error.
pub fn api_versions_ok(port: u16) -> bool {
    api_versions_ok_at(std::net::Ipv4Addr::LOCALHOST, port)
}

pub fn api_versions_ok_at(ip: std::net::Ipv4Addr, port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&(ip, port).into(), Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    // size 10, key 18, version 0, correlation 1, client id null.
    let req = [0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff];
    if s.write_all(&req).is_err() {
        return false;
    }
    let mut head = [0u8; 10];
    if s.read_exact(&mut head).is_err() {
        return false;
    }
    // correlation id 1, error code 0.
    head[4..8] == [0, 0, 0, 1] && head[8..10] == [0, 0]
}

/// One request to `ip:port` over a fresh connection (5 s to connect, 10 s for the answer);
/// None when the broker cannot be reached or does not answer, or the answer does not decode.
pub fn try_call_at<Req, Resp>(
    ip: std::net::Ipv4Addr,
    port: u16,
    key: kafka_protocol::messages::ApiKey,
    version: i16,
    req: &Req,
) -> Option<Resp>
where
    Req: kafka_protocol::protocol::Encodable,
    Resp: kafka_protocol::protocol::Decodable,
{
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::{RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    let mut s = TcpStream::connect_timeout(&(ip, port).into(), Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("raw-test")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, key.request_header_version(version))
        .ok()?;
    req.encode(&mut body, version).ok()?;
    let mut frame = BytesMut::new();
    frame.put_i32(i32::try_from(body.len()).ok()?);
    frame.extend_from_slice(&body);
    s.write_all(&frame).ok()?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let len = usize::try_from(i32::from_be_bytes(len)).ok()?;
    if len > 16 << 20 {
        return None;
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).ok()?;
    let mut bytes = bytes::Bytes::from(buf);
    let rh = ResponseHeader::decode(&mut bytes, key.response_header_version(version)).ok()?;
    (rh.correlation_id == 1).then_some(())?;
    Resp::decode(&mut bytes, version).ok()
}

/// Polls `f` until it returns Some, or panics after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends requests over one connection with the `kafka-protocol` crate and decodes the
/// responses: for tests that need exact protocol fields no client library exposes.
pub struct RawClient {
    stream: TcpStream,
    correlation: i32,
}

impl RawClient {
    pub fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        RawClient {
            stream,
            correlation: 0,
        }
    }

    /// Waits up to `timeout` for each response (30 s by default).
    pub fn with_read_timeout(self, timeout: Duration) -> Self {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("timeout");
        self
    }

    pub fn call<Req, Resp>(
        &mut self,
        key: kafka_protocol::messages::ApiKey,
        version: i16,
        req: &Req,
    ) -> Resp
    where
        Req: kafka_protocol::protocol::Encodable,
        Resp: kafka_protocol::protocol::Decodable,
    {
        use bytes::{Buf, BytesMut};
        let mut body = BytesMut::new();
        req.encode(&mut body, version).expect("encode body");
        let mut bytes = self.call_bytes(key, version, &body);
        let resp = Resp::decode(&mut bytes, version).expect("decode response");
        assert_eq!(bytes.remaining(), 0, "trailing bytes in response");
        resp
    }

    /// Sends `body` (already encoded at `version`) with a request header and returns the
    /// response body after its header: for versions the crate cannot encode.
    pub fn call_bytes(
        &mut self,
        key: kafka_protocol::messages::ApiKey,
        version: i16,
        body: &[u8],
    ) -> bytes::Bytes {
        use bytes::{BufMut, BytesMut};
        use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
        use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("raw-test")));
        let mut request = BytesMut::new();
        header
            .encode(&mut request, key.request_header_version(version))
            .expect("encode header");
        request.extend_from_slice(body);
        let mut frame = BytesMut::new();
        frame.put_i32(i32::try_from(request.len()).expect("request size"));
        frame.extend_from_slice(&request);
        self.stream.write_all(&frame).expect("write");
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).expect("read length");
        let len = usize::try_from(i32::from_be_bytes(len)).expect("non-negative length");
        assert!(len < 256 << 20, "response of {len} bytes");
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf).expect("read body");
        let mut bytes = bytes::Bytes::from(buf);
        // ApiVersions responses always use header v0 (KIP-511).
        let header_version = if key == ApiKey::ApiVersions {
            0
        } else {
            key.response_header_version(version)
        };
        let rh = ResponseHeader::decode(&mut bytes, header_version).expect("response header");
        assert_eq!(rh.correlation_id, self.correlation, "correlation id");
        bytes
    }
}

/// One record as produced and as consumed, compared field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub partition: i32,
    /// The offset the producer was acknowledged with (-1 until then, and for acks=0).
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp_ms: i64,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// `n` deterministic records spread round-robin over `partitions`: some null keys and values,
/// zero to three headers including a duplicated key and a null value, explicit timestamps that
/// are not monotonic, values of varying size.
pub fn gen_records(n: usize, partitions: i32, tag: &str) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            let headers = match i % 4 {
                0 => vec![],
                1 => vec![("trace".to_string(), Some(format!("t{i}").into_bytes()))],
                2 => vec![
                    ("dup".to_string(), Some(b"first".to_vec())),
                    ("dup".to_string(), Some(b"second".to_vec())),
                ],
                _ => vec![
                    ("dup".to_string(), Some(b"a".to_vec())),
                    ("null".to_string(), None),
                    ("dup".to_string(), Some(Vec::new())),
                ],
            };
            Rec {
                partition: (i % partitions as usize) as i32,
                offset: -1,
                key: (i % 7 != 3).then(|| format!("{tag}-key-{i}").into_bytes()),
                value: (i % 11 != 5)
                    .then(|| format!("{tag}-value-{i}-{}", "v".repeat(i % 97)).into_bytes()),
                timestamp_ms: 1_700_000_000_000 + (i as i64 % 1000) * 1000 + i as i64,
                headers,
            }
        })
        .collect()
}

/// Produces `recs` in order (enqueued without waiting, so per-partition order is send order)
/// and returns them with the offsets they were acknowledged with. Panics on any failure.
pub async fn produce_recs(p: &FutureProducer, topic: &str, recs: &[Rec]) -> Vec<Rec> {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::FutureRecord;
    let mut pending = Vec::with_capacity(recs.len());
    for r in recs {
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k.as_str(),
                value: v.as_deref(),
            });
        }
        let mut fr = FutureRecord::<[u8], [u8]>::to(topic)
            .partition(r.partition)
            .timestamp(r.timestamp_ms)
            .headers(headers);
        if let Some(k) = &r.key {
            fr = fr.key(k.as_slice());
        }
        if let Some(v) = &r.value {
            fr = fr.payload(v.as_slice());
        }
        let f = p
            .send_result(fr)
            .map_err(|(e, _)| e)
            .expect("enqueue (queue.buffering.max.messages too small?)");
        pending.push(f);
    }
    let mut out = Vec::with_capacity(recs.len());
    for (r, f) in recs.iter().zip(pending) {
        let d = f
            .await
            .expect("delivery report")
            .map_err(|(e, _)| e)
            .expect("delivered");
        assert_eq!(d.partition, r.partition);
        let mut r = r.clone();
        r.offset = d.offset;
        out.push(r);
    }
    out
}

/// Converts a consumed message into a [`Rec`].
pub fn rec_of<M: rdkafka::Message>(m: &M) -> Rec {
    use rdkafka::message::Headers;
    Rec {
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        timestamp_ms: m.timestamp().to_millis().unwrap_or(-1),
        headers: m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|x| (x.key.to_string(), x.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Reads `partition`s of `topic` from `start` until `expected` records arrived, with a deadline.
/// Returns them sorted by (partition, offset). Fails on a consumer error or on extra records
/// seen within a short grace period after the expected count.
pub fn consume_recs(
    b: &TestBroker,
    topic: &str,
    partitions: i32,
    start: rdkafka::Offset,
    expected: usize,
) -> Vec<Rec> {
    consume_topics(b, &[(topic, partitions, expected)], start)
        .remove(topic)
        .unwrap_or_default()
}

/// [`consume_recs`] for several `(topic, partitions, expected records)` at once, with one
/// consumer: records by topic, each sorted by (partition, offset).
pub fn consume_topics(
    b: &TestBroker,
    topics: &[(&str, i32, usize)],
    start: rdkafka::Offset,
) -> std::collections::BTreeMap<String, Vec<Rec>> {
    use rdkafka::consumer::Consumer;
    use rdkafka::Message;
    let c = b.consumer(&[("fetch.wait.max.ms", "50")]);
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut out = std::collections::BTreeMap::new();
    for (topic, partitions, expected) in topics {
        for p in 0..*partitions {
            tpl.add_partition_offset(topic, p, start).expect("tpl");
        }
        out.insert(topic.to_string(), Vec::with_capacity(*expected));
    }
    c.assign(&tpl).expect("assign");
    let expected: usize = topics.iter().map(|t| t.2).sum();
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while got < expected {
        assert!(
            Instant::now() < deadline,
            "read {got} of {expected} records from {topics:?}"
        );
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("consume");
            out.get_mut(m.topic())
                .expect("a requested topic")
                .push(rec_of(&m));
            got += 1;
        }
    }
    // Nothing beyond what was expected (bounded: a few empty polls).
    for _ in 0..3 {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("consume");
            panic!("{}: unexpected extra record {:?}", m.topic(), rec_of(&m));
        }
    }
    for recs in out.values_mut() {
        recs.sort_by_key(|r| (r.partition, r.offset));
    }
    out
}

/// `recs` sorted the way [`consume_recs`] returns them.
pub fn sorted(mut recs: Vec<Rec>) -> Vec<Rec> {
    recs.sort_by_key(|r| (r.partition, r.offset));
    recs
}

/// Asserts two record lists are identical, reporting the first difference rather than
/// megabytes of debug output.
pub fn assert_same(got: &[Rec], want: &[Rec], what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{what}: record #{i} differs");
    }
    assert_eq!(got.len(), want.len(), "{what}: record count");
}
