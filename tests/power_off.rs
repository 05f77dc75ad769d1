//! Whole-broker power-off test: what the broker acknowledged survives an OS crash.
//!
//! A kill -9 cannot catch a missing fsync (the page cache survives it); a power cut can. The
//! broker runs in process on [`PowerOffStorage`], an in-memory filesystem that knows what was
//! fsynced (file data and directory entries). Each cycle:
//! 1. start a broker on the surviving state (127.0.0.1, port 0) and verify everything
//!    acknowledged in earlier cycles (below);
//! 2. run a workload through the Kafka protocol (librdkafka and raw requests): acks=all
//!    produces without retries, an idempotent producer, acks=1 produces (which may be lost),
//!    offset commits of a group, and transactions; small segments, so rolls and sealed-segment
//!    flushes happen all the time;
//! 3. once a seeded number of acks arrived, with requests still in flight, cut the power:
//!    every write not yet fsynced is dropped (a seeded half of the files with unsynced appends
//!    keep a torn prefix of them), the old broker's storage fails from then on, and its
//!    runtime is dropped without any flush or close.
//!
//! Verified after every restart: every acknowledged acks=all record (plain and idempotent) is
//! at its acknowledged offset with its key and value, exactly once in its partition; an
//! acknowledged acks=1 record appears at most once; every partition is dense from its log
//! start to its high watermark; OffsetFetch returns, for each partition, an offset between the
//! last acknowledged commit and the last attempted one; every committed transaction's records
//! are read by a read_committed consumer at their offsets.
//!
//! `STROM_POWER_OFF_SEED` (default 1) seeds the workload and the tears, `STROM_POWER_OFF_CYCLES`
//! (default 3) sets the number of power cuts. The long run (README): 200 cycles.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer, PurgeConfig};
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset, TopicPartitionList};
use strom::broker::Broker;
use strom::config::BrokerConfig;
use strom::log::io::{PowerOffStats, PowerOffStorage, Storage};
use tokio_util::sync::CancellationToken;

const DATA: &str = "/power-off/data";
const MIXED: &str = "mixed";
const MIXED_PARTITIONS: i32 = 3;
const TXN: &str = "txn";
const TXN_PARTITIONS: i32 = 2;
const GROUP: &str = "power-group";
/// Records each producer sends per cycle at most, and acks in flight per producer.
const MAX_RECORDS: usize = 600;
const WINDOW: usize = 16;
const MAX_COMMITS: usize = 150;
const MAX_TXNS: usize = 20;
const DEADLINE: Duration = Duration::from_secs(60);

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

/// A broker serving in this process on its own runtime.
struct Running {
    rt: tokio::runtime::Runtime,
    broker: Arc<Broker>,
    port: u16,
    shutdown: CancellationToken,
}

fn start(storage: &PowerOffStorage) -> Running {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut config = BrokerConfig {
        log_dir: PathBuf::from(DATA),
        ..BrokerConfig::default()
    };
    config
        .set("listeners", "PLAINTEXT://127.0.0.1:0")
        .expect("listeners");
    config
        .set("offsets.topic.num.partitions", "2")
        .expect("config");
    config
        .set("transaction.state.log.num.partitions", "2")
        .expect("config");
    let storage: Arc<dyn Storage> = Arc::new(storage.clone());
    let (broker, port, shutdown) = rt.block_on(async move {
        // Bind first: the broker advertises its listener's real port in Metadata.
        let listener = strom::server::bind(config.listen, config.listen_backlog).expect("bind");
        let addr = listener.local_addr().expect("addr");
        config
            .set("listeners", &format!("PLAINTEXT://{addr}"))
            .expect("listeners");
        let port = addr.port();
        let broker =
            tokio::task::spawn_blocking(move || Broker::open_with_storage(config, storage))
                .await
                .expect("join")
                .expect("open the broker on the surviving state");
        let shutdown = CancellationToken::new();
        tokio::spawn(strom::server::serve(
            broker.clone(),
            listener,
            shutdown.clone(),
        ));
        tokio::spawn(broker.groups.clone().run_timers(shutdown.clone()));
        broker.load_transactions().await.expect("load transactions");
        tokio::spawn(broker.txns.clone().run_timers(shutdown.clone()));
        (broker, port, shutdown)
    });
    Running {
        rt,
        broker,
        port,
        shutdown,
    }
}

impl Running {
    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn client(&self, settings: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap())
            .set("message.timeout.ms", "5000")
            .set("socket.connection.setup.timeout.ms", "3000")
            .set("reconnect.backoff.max.ms", "200");
        for (k, v) in settings {
            c.set(*k, *v);
        }
        c
    }

    /// Drops the broker without a flush or a close (its storage is already dead).
    fn cut(self) {
        self.shutdown.cancel();
        drop(self.broker);
        self.rt.shutdown_background();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    AcksAll,
    Idempotent,
    AcksOne,
    Txn,
}

#[derive(Debug, Clone)]
struct Acked {
    kind: Kind,
    partition: i32,
    offset: i64,
    key: Vec<u8>,
    value: Vec<u8>,
}

#[derive(Default)]
struct Acks {
    records: Mutex<Vec<Acked>>,
    /// acks=all records acknowledged (plain + idempotent) in this cycle.
    durable_count: AtomicUsize,
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

fn record_value(cycle: u64, tag: &str, i: usize, pad: usize) -> Vec<u8> {
    format!("c{cycle}-{tag}-{i}-{}", "x".repeat(pad)).into_bytes()
}

/// Sends up to MAX_RECORDS records until `stop`, WINDOW in flight; records what was acked.
#[allow(clippy::too_many_arguments)]
fn produce_loop(
    producer: FutureProducer,
    kind: Kind,
    tag: &str,
    cycle: u64,
    seed: u64,
    stop: &AtomicBool,
    acks: &Acks,
) {
    let mut rng = Rng(seed);
    let mut inflight: VecDeque<(Acked, rdkafka::producer::DeliveryFuture)> = VecDeque::new();
    let settle = |(mut a, f): (Acked, rdkafka::producer::DeliveryFuture)| {
        if let Ok(Ok(d)) = futures::executor::block_on(f) {
            assert_eq!(d.partition, a.partition);
            a.offset = d.offset;
            if kind != Kind::AcksOne {
                acks.durable_count.fetch_add(1, Ordering::AcqRel);
            }
            acks.records.lock().expect("lock").push(a);
        }
    };
    for i in 0..MAX_RECORDS {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let partition = (rng.below(MIXED_PARTITIONS as u64)) as i32;
        let key = format!("k{i}").into_bytes();
        let value = record_value(cycle, tag, i, rng.below(300) as usize);
        let rec = FutureRecord::to(MIXED)
            .partition(partition)
            .key(&key)
            .payload(&value);
        let Ok(f) = producer.send_result(rec) else {
            break;
        };
        inflight.push_back((
            Acked {
                kind,
                partition,
                offset: -1,
                key: key.clone(),
                value: value.clone(),
            },
            f,
        ));
        while inflight.len() >= WINDOW {
            settle(inflight.pop_front().expect("in flight"));
        }
    }
    if stop.load(Ordering::Acquire) {
        producer.purge(PurgeConfig::default().queue().inflight());
    }
    while let Some(x) = inflight.pop_front() {
        settle(x);
    }
}

/// Transactions of 1-4 records until `stop`; a transaction's records count as acknowledged
/// once `commit_transaction` returned OK.
fn txn_loop(producer: FutureProducer, cycle: u64, seed: u64, stop: &AtomicBool, acks: &Acks) {
    let mut rng = Rng(seed);
    for t in 0..MAX_TXNS {
        if stop.load(Ordering::Acquire) || producer.begin_transaction().is_err() {
            return;
        }
        let mut pending = Vec::new();
        for j in 0..=rng.below(4) as usize {
            let partition = rng.below(TXN_PARTITIONS as u64) as i32;
            let key = format!("t{t}-{j}").into_bytes();
            let value = record_value(cycle, "txn", t * 10 + j, rng.below(100) as usize);
            let rec = FutureRecord::to(TXN)
                .partition(partition)
                .key(&key)
                .payload(&value);
            let Ok(f) = producer.send_result(rec) else {
                return;
            };
            pending.push((partition, key, value, f));
        }
        let mut done = Vec::new();
        for (partition, key, value, f) in pending {
            match futures::executor::block_on(f) {
                Ok(Ok(d)) => done.push(Acked {
                    kind: Kind::Txn,
                    partition,
                    offset: d.offset,
                    key,
                    value,
                }),
                _ => return,
            }
        }
        if producer
            .commit_transaction(Timeout::After(Duration::from_secs(3)))
            .is_err()
        {
            return;
        }
        acks.records.lock().expect("lock").extend(done);
    }
}

/// One request over a fresh connection; `None` when the broker is gone.
fn raw_call<Req, Resp>(
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
    use kafka_protocol::protocol::{Decodable, Encodable};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1);
    let mut body = BytesMut::new();
    header
        .encode(&mut body, key.request_header_version(version))
        .expect("encode header");
    req.encode(&mut body, version).expect("encode body");
    let mut frame = BytesMut::new();
    frame.put_i32(i32::try_from(body.len()).expect("size"));
    frame.extend_from_slice(&body);
    stream.write_all(&frame).ok()?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let len = usize::try_from(i32::from_be_bytes(len)).ok()?;
    assert!(len < 16 << 20, "response of {len} bytes");
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).ok()?;
    let mut bytes = bytes::Bytes::from(buf);
    let rh = ResponseHeader::decode(&mut bytes, key.response_header_version(version))
        .expect("response header");
    assert_eq!(rh.correlation_id, 1);
    Some(Resp::decode(&mut bytes, version).expect("decode response"))
}

/// Commits `offset` for `partition` of MIXED (OffsetCommit v8, simple group); true when acked.
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
            .with_name(StrBytes::from_static_str(MIXED).into())
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)])]);
    let resp: Option<OffsetCommitResponse> = raw_call(port, ApiKey::OffsetCommit, 8, &req);
    resp.is_some_and(|r| {
        r.topics
            .iter()
            .flat_map(|t| &t.partitions)
            .all(|p| p.error_code == 0)
            && r.topics.len() == 1
    })
}

/// OffsetFetch v7 for MIXED's partitions: partition -> committed offset.
fn fetch_offsets(port: u16) -> BTreeMap<i32, i64> {
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    use kafka_protocol::messages::{ApiKey, GroupId, OffsetFetchRequest, OffsetFetchResponse};
    use kafka_protocol::protocol::StrBytes;
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(StrBytes::from_static_str(MIXED).into())
            .with_partition_indexes((0..MIXED_PARTITIONS).collect())]))
        .with_require_stable(true);
    let resp: OffsetFetchResponse =
        raw_call(port, ApiKey::OffsetFetch, 7, &req).expect("OffsetFetch answered");
    assert_eq!(resp.error_code, 0, "OffsetFetch error");
    let mut out = BTreeMap::new();
    for t in &resp.topics {
        for p in &t.partitions {
            assert_eq!(
                p.error_code, 0,
                "OffsetFetch partition {}",
                p.partition_index
            );
            out.insert(p.partition_index, p.committed_offset);
        }
    }
    out
}

fn commit_loop(
    port: u16,
    first_value: i64,
    stop: &AtomicBool,
    acks: &Acks,
) -> BTreeMap<i32, (i64, i64)> {
    // Per partition: (last acked, last attempted); -1 = none.
    let mut seen: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for i in 0..MAX_COMMITS {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let partition = (i % MIXED_PARTITIONS as usize) as i32;
        let value = first_value + i as i64;
        seen.entry(partition).or_insert((-1, -1)).1 = value;
        if commit(port, partition, value) {
            seen.entry(partition).or_insert((-1, -1)).0 = value;
            acks.commits_acked.fetch_add(1, Ordering::AcqRel);
        } else if stop.load(Ordering::Acquire) {
            break;
        }
    }
    seen
}

/// Reads every partition of `topic` from the start to its high watermark (read_uncommitted):
/// (partition, offset) -> (key, value), and checks each partition is dense.
fn read_all(r: &Running, topic: &str, partitions: i32) -> BTreeMap<(i32, i64), (Vec<u8>, Vec<u8>)> {
    let c: BaseConsumer = r
        .client(&[
            ("group.id", "power-verify"),
            ("enable.auto.commit", "false"),
            ("fetch.wait.max.ms", "20"),
        ])
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    let mut high = BTreeMap::new();
    let mut low = BTreeMap::new();
    for p in 0..partitions {
        let (l, h) = c
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .expect("watermarks");
        low.insert(p, l);
        high.insert(p, h);
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out = BTreeMap::new();
    let mut next: BTreeMap<i32, i64> = low.clone();
    let deadline = Instant::now() + DEADLINE;
    while next.iter().any(|(p, n)| *n < high[p]) {
        assert!(
            Instant::now() < deadline,
            "{topic}: read up to {next:?} of {high:?}"
        );
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("consume");
            let p = m.partition();
            assert_eq!(m.offset(), next[&p], "{topic}-{p}: offsets not dense");
            next.insert(p, m.offset() + 1);
            out.insert(
                (p, m.offset()),
                (
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().unwrap_or_default().to_vec(),
                ),
            );
        }
    }
    out
}

/// Reads TXN with read_committed until every acknowledged transactional record was seen.
fn read_committed(r: &Running, want: &[&Acked]) -> HashMap<(i32, i64), (Vec<u8>, Vec<u8>)> {
    let c: BaseConsumer = r
        .client(&[
            ("group.id", "power-verify-txn"),
            ("enable.auto.commit", "false"),
            ("isolation.level", "read_committed"),
            ("fetch.wait.max.ms", "20"),
        ])
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..TXN_PARTITIONS {
        tpl.add_partition_offset(TXN, p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut missing: std::collections::HashSet<(i32, i64)> =
        want.iter().map(|a| (a.partition, a.offset)).collect();
    let mut out = HashMap::new();
    let deadline = Instant::now() + DEADLINE;
    while !missing.is_empty() {
        assert!(
            Instant::now() < deadline,
            "read_committed: {} acknowledged transactional records never arrived, e.g. {:?}",
            missing.len(),
            missing.iter().next()
        );
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("consume");
            missing.remove(&(m.partition(), m.offset()));
            out.insert(
                (m.partition(), m.offset()),
                (
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().unwrap_or_default().to_vec(),
                ),
            );
        }
    }
    out
}

fn verify_mixed(r: &Running, totals: &Totals) -> usize {
    let log = read_all(r, MIXED, MIXED_PARTITIONS);
    let mut count: HashMap<&[u8], usize> = HashMap::new();
    for (_, v) in log.values() {
        *count.entry(v.as_slice()).or_default() += 1;
    }
    let mut checked = 0;
    for a in &totals.records {
        match a.kind {
            Kind::AcksAll | Kind::Idempotent => {
                let got = log.get(&(a.partition, a.offset));
                assert!(
                    got.is_some_and(|(k, v)| *k == a.key && *v == a.value),
                    "LOST: acknowledged {:?} record {}-{}@{} ({}) reads back as {:?}",
                    a.kind,
                    MIXED,
                    a.partition,
                    a.offset,
                    String::from_utf8_lossy(&a.value),
                    got.map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                );
                assert_eq!(
                    count.get(a.value.as_slice()),
                    Some(&1),
                    "acknowledged record {} is not in the log exactly once",
                    String::from_utf8_lossy(&a.value)
                );
                checked += 1;
            }
            Kind::AcksOne => assert!(
                count.get(a.value.as_slice()).copied().unwrap_or(0) <= 1,
                "acks=1 record {} duplicated",
                String::from_utf8_lossy(&a.value)
            ),
            Kind::Txn => {}
        }
    }
    checked
}

fn verify_commits(r: &Running, totals: &Totals) -> usize {
    let got = fetch_offsets(r.port);
    let mut checked = 0;
    for (p, (acked, attempted)) in &totals.commits {
        let c = got.get(p).copied().unwrap_or(-1);
        if *acked >= 0 {
            assert!(
                c >= *acked && c <= *attempted,
                "LOST COMMIT: partition {p}: OffsetFetch returns {c}, acknowledged {acked}, last attempted {attempted}"
            );
            checked += 1;
        } else {
            assert!(
                c <= *attempted,
                "partition {p}: committed {c} never attempted"
            );
        }
    }
    checked
}

fn verify_txns(r: &Running, totals: &Totals) -> usize {
    let want: Vec<&Acked> = totals
        .records
        .iter()
        .filter(|a| a.kind == Kind::Txn)
        .collect();
    let got = read_committed(r, &want);
    for a in &want {
        let g = got.get(&(a.partition, a.offset));
        assert!(
            g.is_some_and(|(k, v)| *k == a.key && *v == a.value),
            "LOST: committed transactional record {}-{}@{} ({}) reads back as {:?}",
            TXN,
            a.partition,
            a.offset,
            String::from_utf8_lossy(&a.value),
            g.map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        );
    }
    want.len()
}

fn txn_producer(r: &Running) -> FutureProducer {
    let p: FutureProducer = r
        .client(&[
            ("transactional.id", "power-txn"),
            ("transaction.timeout.ms", "10000"),
        ])
        .create()
        .expect("txn producer");
    p.init_transactions(Timeout::After(DEADLINE))
        .expect("init_transactions (aborts what the last cycle left open)");
    p
}

/// One cycle's workload until the power cut; returns the storage to restart on.
fn run_cycle(
    r: Running,
    storage: &PowerOffStorage,
    cycle: u64,
    rng: &mut Rng,
    totals: &mut Totals,
    txn: FutureProducer,
) -> PowerOffStorage {
    let stop = AtomicBool::new(false);
    let acks = Acks::default();
    let target = 20 + rng.below(300) as usize;
    let commits_target = rng.below(40) as usize;
    let seeds: [u64; 4] = [rng.next(), rng.next(), rng.next(), rng.next()];
    let linger = rng.below(4).to_string();
    let plain: FutureProducer = r
        .client(&[
            ("acks", "all"),
            ("enable.idempotence", "false"),
            ("message.send.max.retries", "0"),
            ("linger.ms", &linger),
        ])
        .create()
        .expect("producer");
    let idempotent: FutureProducer = r
        .client(&[("enable.idempotence", "true"), ("linger.ms", &linger)])
        .create()
        .expect("producer");
    let one: FutureProducer = r
        .client(&[
            ("acks", "1"),
            ("enable.idempotence", "false"),
            ("message.send.max.retries", "0"),
            ("linger.ms", &linger),
        ])
        .create()
        .expect("producer");
    let to_purge = [plain.clone(), idempotent.clone(), one.clone(), txn.clone()];
    let port = r.port;
    let first_commit = totals.next_commit;
    let (next, commits) = std::thread::scope(|s| {
        let (stop, acks) = (&stop, &acks);
        s.spawn(move || produce_loop(plain, Kind::AcksAll, "all", cycle, seeds[0], stop, acks));
        s.spawn(move || {
            produce_loop(
                idempotent,
                Kind::Idempotent,
                "idem",
                cycle,
                seeds[1],
                stop,
                acks,
            )
        });
        s.spawn(move || produce_loop(one, Kind::AcksOne, "one", cycle, seeds[2], stop, acks));
        s.spawn(move || txn_loop(txn, cycle, seeds[3], stop, acks));
        let commits = s.spawn(move || commit_loop(port, first_commit, stop, acks));
        // Cut the power once enough was acknowledged, with requests still in flight.
        let deadline = Instant::now() + DEADLINE;
        while acks.durable_count.load(Ordering::Acquire) < target
            || acks.commits_acked.load(Ordering::Acquire) < commits_target && !commits.is_finished()
        {
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: {} of {target} acks, {} of {commits_target} commits",
                acks.durable_count.load(Ordering::Acquire),
                acks.commits_acked.load(Ordering::Acquire)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let (next, stats) = storage.power_off();
        totals.stats.push(stats);
        stop.store(true, Ordering::Release);
        r.cut();
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
    totals.next_commit = first_commit + MAX_COMMITS as i64;
    for (p, (acked, attempted)) in commits {
        let e = totals.commits.entry(p).or_insert((-1, -1));
        if acked >= 0 {
            e.0 = acked;
        }
        e.1 = e.1.max(attempted);
    }
    next
}

#[test]
fn acknowledged_writes_survive_power_cuts() {
    let seed = env_u64("STROM_POWER_OFF_SEED", 1);
    let cycles = env_u64("STROM_POWER_OFF_CYCLES", 3);
    let mut rng = Rng(seed);
    let mut storage = PowerOffStorage::new(rng.next(), true);
    let mut totals = Totals::default();
    let started = Instant::now();
    let (mut checked_records, mut checked_commits, mut checked_txn) = (0, 0, 0);
    for cycle in 0..=cycles {
        let r = start(&storage);
        if cycle == 0 {
            let mut configs = BTreeMap::new();
            configs.insert("segment.bytes".to_string(), "8192".to_string());
            r.broker
                .create_topic(MIXED, Some(MIXED_PARTITIONS), None, configs.clone(), false)
                .expect("create");
            r.broker
                .create_topic(TXN, Some(TXN_PARTITIONS), None, configs, false)
                .expect("create");
        }
        checked_records = verify_mixed(&r, &totals);
        checked_commits = verify_commits(&r, &totals);
        let txn = txn_producer(&r);
        checked_txn = verify_txns(&r, &totals);
        if cycle == cycles {
            drop(txn);
            r.cut();
            break;
        }
        storage = run_cycle(r, &storage, cycle, &mut rng, &mut totals, txn);
    }
    let dropped: u64 = totals.stats.iter().map(|s| s.bytes_dropped).sum();
    let torn: usize = totals.stats.iter().map(|s| s.files_torn).sum();
    let reverted: usize = totals.stats.iter().map(|s| s.dirs_reverted).sum();
    let acks_one = totals
        .records
        .iter()
        .filter(|a| a.kind == Kind::AcksOne)
        .count();
    eprintln!(
        "power-off: seed {seed}, {cycles} cycles in {:.1}s: {checked_records} acks=all records, \
         {checked_txn} committed transactional records and {checked_commits} partitions' commits \
         ({} commits acknowledged) verified after the last cut; {acks_one} acks=1 records \
         acknowledged; at the cuts: {dropped} unsynced bytes dropped, {torn} torn files, \
         {reverted} directories reverted; lost 0",
        started.elapsed().as_secs_f64(),
        totals.commits_acked
    );
    assert!(checked_records > 0 && totals.commits_acked > 0);
}
