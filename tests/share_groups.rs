//! Share groups (KIP-932) against the real broker binary, over the wire: ShareGroupHeartbeat,
//! ShareFetch and ShareAcknowledge with Kafka's error codes, acquisition locks, delivery
//! counts, and what survives kill -9 — every acknowledged acceptance, every delivery count —
//! including a crash loop under a share-consuming load (`share_consumers_lose_nothing_across_kill9`,
//! `STROM_SHARE_CRASH_CYCLES` cycles, 3 by default; the Java 4.4 `KafkaShareConsumer` is
//! exercised by compat-tests' share-* scenarios).
//!
//! The share consumers here speak the protocol with the `kafka-protocol` crate (v1 of
//! ShareFetch/ShareAcknowledge; v2's codec is checked against the Java client's bytes in
//! `protocol::share`), one connection per consumer as a client keeps its share session.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::share::{
    ack_codes, acquired, group_configs, produce_round_robin, Acquired, Conn, Member, ACCEPT,
    REJECT, RELEASE,
};
use common::{wait_for, RawClient, TestBroker};
use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, GroupId,
    MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

fn create_topic(b: &TestBroker, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(b.create_topic(name, partitions, configs));
}

fn produce(b: &TestBroker, topic: &str, partitions: i32, n: usize) {
    produce_round_robin(b.client(), topic, partitions, n);
}

fn topic_id(port: u16, topic: &str) -> Uuid {
    let mut raw = RawClient::connect(port);
    let r: MetadataResponse = raw.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))])),
    );
    r.topics[0].topic_id
}

fn fetch_until(m: &mut Member, n: usize) -> Acquired {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got
        .iter()
        .map(|(_, f, l, _)| (l - f + 1) as usize)
        .sum::<usize>()
        < n
    {
        assert!(Instant::now() < deadline, "only {got:?} acquired");
        let r = m.fetch(&BTreeMap::new(), 500).expect("fetch");
        assert_eq!(r.error_code, 0);
        got.extend(acquired(&r));
    }
    got
}

#[test]
fn share_fetch_and_acknowledge_follow_kafkas_rules() {
    let b = TestBroker::start(&["group.share.min.record.lock.duration.ms=1000"]);
    create_topic(&b, "q", 1, &[]);
    produce(&b, "q", 1, 10);
    group_configs(
        b.port,
        "sg",
        &[
            ("share.auto.offset.reset", "earliest"),
            ("share.record.lock.duration.ms", "1500"),
        ],
    );
    let id = topic_id(b.port, "q");
    let mut a = Member::join(b.port, "sg", "member-a", "q", id, vec![0]).expect("join a");
    let mut c = Member::join(b.port, "sg", "member-c", "q", id, vec![0]).expect("join c");

    // Epoch 0 opens the session; every record comes with delivery count 1.
    let got = fetch_until(&mut a, 10);
    assert_eq!(got, vec![(0, 0, 9, 1)]);
    // Accept 0-4, release 5-9: the release is delivered again (count 2) to another member.
    let r = a
        .acknowledge(0, &[(0, 4, ACCEPT), (5, 9, RELEASE)])
        .expect("ack");
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    let got = fetch_until(&mut c, 5);
    assert_eq!(got, vec![(0, 5, 9, 2)]);
    // Records another member holds, or that were never acquired, are INVALID_RECORD_STATE.
    let r = a.acknowledge(0, &[(5, 5, ACCEPT)]).expect("ack");
    assert_eq!(r.responses[0].partitions[0].error_code, 121);
    let r = a.acknowledge(0, &[(0, 0, ACCEPT)]).expect("ack");
    assert_eq!(
        r.responses[0].partitions[0].error_code, 121,
        "already accepted"
    );
    // Overlapping or backwards batches are INVALID_REQUEST.
    let r = c
        .acknowledge(0, &[(5, 7, ACCEPT), (6, 8, ACCEPT)])
        .expect("ack");
    assert_eq!(r.responses[0].partitions[0].error_code, 42);
    let r = c.acknowledge(0, &[(7, 6, ACCEPT)]).expect("ack");
    assert_eq!(r.responses[0].partitions[0].error_code, 42);
    // A wrong session epoch, an acknowledgement at epoch 0, an unknown session.
    let saved = c.epoch;
    c.epoch = saved + 5;
    assert_eq!(
        c.acknowledge(0, &[(5, 5, ACCEPT)]).expect("ack").error_code,
        123
    );
    c.epoch = 0;
    assert_eq!(
        c.acknowledge(0, &[(5, 5, ACCEPT)]).expect("ack").error_code,
        123
    );
    c.epoch = saved;
    let mut stranger = Member {
        conn: Conn::open(b.port).unwrap(),
        group: "sg".into(),
        id: "nobody".into(),
        epoch: 3,
        topic: id,
        partitions: vec![0],
        max_records: 200,
    };
    assert_eq!(
        stranger
            .fetch(&BTreeMap::new(), 0)
            .expect("fetch")
            .error_code,
        122
    );
    // An invalid member id is INVALID_REQUEST.
    let mut bad = Member {
        conn: Conn::open(b.port).unwrap(),
        group: "sg".into(),
        id: "x".repeat(37),
        epoch: 0,
        topic: id,
        partitions: vec![0],
        max_records: 200,
    };
    assert_eq!(
        bad.fetch(&BTreeMap::new(), 0).expect("fetch").error_code,
        42
    );
    // The lock expires: c's records go back (count kept at 2) and a gets them with count 3.
    std::thread::sleep(Duration::from_millis(2000));
    let got = fetch_until(&mut a, 5);
    assert_eq!(got, vec![(0, 5, 9, 3)]);
    let r = c.acknowledge(0, &[(5, 9, ACCEPT)]).expect("ack");
    assert_eq!(
        r.responses[0].partitions[0].error_code, 121,
        "the lock expired"
    );
    let r = a.acknowledge(0, &[(5, 9, ACCEPT)]).expect("ack");
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    // Everything is accepted: the start offset is the log end.
    let mut raw = RawClient::connect(b.port);
    let d: DescribeShareGroupOffsetsResponse = raw.call(
        ApiKey::DescribeShareGroupOffsets,
        0,
        &DescribeShareGroupOffsetsRequest::default().with_groups(vec![
            DescribeShareGroupOffsetsRequestGroup::default()
                .with_group_id(GroupId(StrBytes::from_static_str("sg")))
                .with_topics(None),
        ]),
    );
    assert_eq!(d.groups[0].topics[0].partitions[0].start_offset, 10);
}

#[test]
fn accepted_records_and_delivery_counts_survive_kill9() {
    let mut b = TestBroker::start(&[]);
    create_topic(&b, "q", 1, &[]);
    produce(&b, "q", 1, 10);
    group_configs(b.port, "sg", &[("share.auto.offset.reset", "earliest")]);
    let id = topic_id(b.port, "q");
    let mut a = Member::join(b.port, "sg", "member-a", "q", id, vec![0]).expect("join");
    assert_eq!(fetch_until(&mut a, 10), vec![(0, 0, 9, 1)]);
    let r = a.acknowledge(0, &[(0, 4, ACCEPT)]).expect("ack");
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    b.kill9();
    b.restart();
    // The accepted records never come back; the acquired ones do, delivered a second time.
    let mut a = Member::join(b.port, "sg", "member-a2", "q", id, vec![0]).expect("join");
    assert_eq!(fetch_until(&mut a, 5), vec![(0, 5, 9, 2)]);
    let r = a
        .fetch(&BTreeMap::from([(0, vec![(5, 9, ACCEPT)])]), 300)
        .expect("fetch");
    assert_eq!(ack_codes(&r)[&0], 0);
    assert!(acquired(&r).is_empty());
}

/// `share.isolation.level=read_committed`: aborted records and transaction markers are never
/// delivered, only committed ones; read_uncommitted delivers the aborted records too (never
/// the markers).
#[test]
fn read_committed_share_groups_skip_aborted_records() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let b = TestBroker::start(&[]);
    create_topic(&b, "tq", 1, &[]);
    let p: BaseProducer = b
        .client()
        .set("transactional.id", "share-tx")
        .create()
        .expect("producer");
    p.init_transactions(Duration::from_secs(30)).expect("init");
    let send = |v: &str| {
        let mut rec = BaseRecord::<str, str>::to("tq").payload(v).partition(0);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    p.poll(Duration::from_millis(10));
                }
            }
        }
    };
    p.begin_transaction().expect("begin");
    for i in 0..3 {
        send(&format!("aborted-{i}"));
    }
    p.flush(Duration::from_secs(30)).expect("flush");
    p.abort_transaction(Duration::from_secs(30)).expect("abort");
    p.begin_transaction().expect("begin");
    for i in 0..2 {
        send(&format!("committed-{i}"));
    }
    p.commit_transaction(Duration::from_secs(30))
        .expect("commit");
    // Offsets: aborted 0-2, abort marker 3, committed 4-5, commit marker 6.
    let id = topic_id(b.port, "tq");
    group_configs(
        b.port,
        "rc",
        &[
            ("share.auto.offset.reset", "earliest"),
            ("share.isolation.level", "read_committed"),
        ],
    );
    group_configs(b.port, "ru", &[("share.auto.offset.reset", "earliest")]);
    let mut rc = Member::join(b.port, "rc", "member-rc", "tq", id, vec![0]).expect("join");
    assert_eq!(fetch_until(&mut rc, 2), vec![(0, 4, 5, 1)]);
    let r = rc
        .fetch(&BTreeMap::from([(0, vec![(4, 5, ACCEPT)])]), 300)
        .expect("fetch");
    assert!(acquired(&r).is_empty(), "{:?}", acquired(&r));
    let mut ru = Member::join(b.port, "ru", "member-ru", "tq", id, vec![0]).expect("join");
    assert_eq!(fetch_until(&mut ru, 5), vec![(0, 0, 2, 1), (0, 4, 5, 1)]);
}

/// Consumers accept most records, release some, reject a few (dead-lettered), while the
/// broker is killed -9 and restarted; at the end every record is accepted or on the
/// dead-letter topic, and no record whose acceptance was acknowledged was ever delivered
/// again.
#[test]
fn share_consumers_lose_nothing_across_kill9() {
    let cycles: usize = std::env::var("STROM_SHARE_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    // Enough records to keep the consumers busy through every cycle (they take 10 records
    // per fetch and work 30 ms on each batch).
    let total: usize = 1300 * (cycles + 1);
    let mut b = TestBroker::start(&["group.share.min.record.lock.duration.ms=1000"]);
    create_topic(&b, "work", 3, &[]);
    create_topic(
        &b,
        "dlq.work",
        1,
        &[("errors.deadletterqueue.group.enable", "true")],
    );
    produce(&b, "work", 3, total);
    group_configs(
        b.port,
        "workers",
        &[
            ("share.auto.offset.reset", "earliest"),
            ("share.record.lock.duration.ms", "2000"),
            ("errors.deadletterqueue.topic.name", "dlq.work"),
        ],
    );
    let id = topic_id(b.port, "work");
    let port = b.port;
    // (partition, offset) whose ACCEPT the broker acknowledged, and every delivery seen.
    let accepted: Arc<Mutex<BTreeSet<(i32, i64)>>> = Arc::default();
    let rejected: Arc<Mutex<BTreeSet<(i32, i64)>>> = Arc::default();
    // ACCEPTs sent whose answer never came (the broker was killed meanwhile).
    let unconfirmed: Arc<Mutex<BTreeSet<(i32, i64)>>> = Arc::default();
    let violations: Arc<Mutex<Vec<String>>> = Arc::default();
    let deliveries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..3 {
        let (accepted, rejected, unconfirmed, violations, deliveries, stop) = (
            accepted.clone(),
            rejected.clone(),
            unconfirmed.clone(),
            violations.clone(),
            deliveries.clone(),
            stop.clone(),
        );
        workers.push(std::thread::spawn(move || {
            let mut n: u64 = w as u64 * 7919;
            while !stop.load(Ordering::Acquire) {
                let joined = Member::join(
                    port,
                    "workers",
                    &format!("worker-{w}"),
                    "work",
                    id,
                    vec![0, 1, 2],
                );
                if std::env::var("STROM_SHARE_DEBUG").is_ok() {
                    eprintln!("worker {w} joined: {}", joined.is_some());
                }
                let Some(mut m) = joined else {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                m.max_records = 10;
                let mut pending: BTreeMap<i32, Vec<(i64, i64, i8)>> = BTreeMap::new();
                while !stop.load(Ordering::Acquire) {
                    let r = m.fetch(&pending, 500);
                    std::thread::sleep(Duration::from_millis(30));
                    if std::env::var("STROM_SHARE_DEBUG").is_ok() {
                        eprintln!(
                            "worker {w} fetch: {:?} acks {:?} codes {:?}",
                            r.as_ref().map(|r| (r.error_code, acquired(r))),
                            pending.values().map(Vec::len).collect::<Vec<_>>(),
                            r.as_ref().map(ack_codes)
                        );
                    }
                    let r = r.filter(|r| r.error_code == 0);
                    let Some(r) = r else {
                        let mut u = unconfirmed.lock().unwrap();
                        for (p, batches) in &pending {
                            for (f, l, t) in batches {
                                if *t == ACCEPT {
                                    u.extend((*f..=*l).map(|o| (*p, o)));
                                }
                            }
                        }
                        break;
                    };
                    let codes = ack_codes(&r);
                    for (p, batches) in &pending {
                        if codes.get(p).copied().unwrap_or(-1) != 0 {
                            continue;
                        }
                        for (f, l, t) in batches {
                            for o in *f..=*l {
                                match *t {
                                    ACCEPT => {
                                        accepted.lock().unwrap().insert((*p, o));
                                    }
                                    REJECT => {
                                        rejected.lock().unwrap().insert((*p, o));
                                    }
                                    _ => {}
                                }
                            }
                        }
                    }
                    pending.clear();
                    for (p, f, l, _) in acquired(&r) {
                        for o in f..=l {
                            deliveries.fetch_add(1, Ordering::Relaxed);
                            if accepted.lock().unwrap().contains(&(p, o)) {
                                violations.lock().unwrap().push(format!(
                                    "{p}:{o} delivered after its acceptance was acknowledged"
                                ));
                            }
                            n = n
                                .wrapping_mul(6364136223846793005)
                                .wrapping_add(1442695040888963407);
                            let t = match (n >> 33) % 100 {
                                0..=1 => REJECT,
                                2..=9 => RELEASE,
                                _ => ACCEPT,
                            };
                            pending.entry(p).or_default().push((o, o, t));
                        }
                    }
                }
            }
        }));
    }
    let finished = |b: &TestBroker| -> bool {
        let Some(mut c) = Conn::open(b.port) else {
            return false;
        };
        let Some(d): Option<DescribeShareGroupOffsetsResponse> = c.call(
            ApiKey::DescribeShareGroupOffsets,
            0,
            &DescribeShareGroupOffsetsRequest::default().with_groups(vec![
                DescribeShareGroupOffsetsRequestGroup::default()
                    .with_group_id(GroupId(StrBytes::from_static_str("workers")))
                    .with_topics(None),
            ]),
        ) else {
            return false;
        };
        let starts: Vec<i64> = d.groups[0]
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.start_offset.max(0)))
            .collect();
        if std::env::var("STROM_SHARE_DEBUG").is_ok() {
            eprintln!("start offsets {starts:?}");
        }
        starts.iter().sum::<i64>() == total as i64
    };
    let mut busy_kills = 0;
    for cycle in 0..cycles {
        std::thread::sleep(Duration::from_millis(700 + 300 * (cycle as u64 % 3)));
        // A kill counts only while records are still being worked on.
        if !finished(&b) {
            busy_kills += 1;
        }
        b.kill9();
        b.restart();
    }
    wait_for(Duration::from_secs(120), "every record finished", || {
        finished(&b).then_some(())
    });
    stop.store(true, Ordering::Release);
    for w in workers {
        w.join().expect("worker");
    }
    let violations = violations.lock().unwrap().clone();
    assert!(
        violations.is_empty(),
        "{} violations, e.g. {:?}",
        violations.len(),
        &violations[..violations.len().min(5)]
    );
    // Every record ended accepted or dead-lettered: read the dead-letter topic.
    let dlq = read_dlq(&b);
    let accepted = accepted.lock().unwrap().clone();
    let mut missing = Vec::new();
    for i in 0..total {
        let p = (i % 3) as i32;
        let o = (i / 3) as i64;
        if !accepted.contains(&(p, o)) && !dlq.contains(&(p, o)) {
            missing.push((p, o));
        }
    }
    // A record accepted just before a kill may be accepted without the consumer hearing it:
    // finished (the start offset passed it) and never delivered again. Nothing else may be
    // missing.
    let unconfirmed = unconfirmed.lock().unwrap().clone();
    if std::env::var("STROM_SHARE_DEBUG").is_ok() {
        for l in b
            .log()
            .lines()
            .filter(|l| l.contains("dead") || l.contains("share") || l.contains("WARN"))
        {
            eprintln!("broker: {l}");
        }
    }
    let lost: Vec<_> = missing
        .iter()
        .filter(|r| !unconfirmed.contains(r))
        .collect();
    assert!(
        lost.is_empty(),
        "{} records neither accepted nor dead-lettered, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    eprintln!(
        "share crash loop: {cycles} kill -9 cycles ({busy_kills} under load), {total} records, {} deliveries, {} accepted with an acknowledgement, {} dead-lettered ({} rejects acknowledged), {} finished without the consumer hearing the acknowledgement",
        deliveries.load(Ordering::Relaxed),
        accepted.len(),
        dlq.len(),
        rejected.lock().unwrap().len(),
        missing.len()
    );
    assert_eq!(
        busy_kills, cycles,
        "the consumers finished before the kills"
    );
    let rejected = rejected.lock().unwrap().clone();
    for r in &rejected {
        assert!(
            dlq.contains(r),
            "rejected {r:?} is not on the dead-letter topic"
        );
    }
}

/// (partition, offset) of every record on `dlq.work`, from its headers.
fn read_dlq(b: &TestBroker) -> HashSet<(i32, i64)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers;
    use rdkafka::Message;
    let c: BaseConsumer = b
        .client()
        .set("group.id", "dlq-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset("dlq.work", 0, rdkafka::Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let mut out = HashSet::new();
    let mut idle = Instant::now();
    while idle.elapsed() < Duration::from_secs(3) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            idle = Instant::now();
            let h = m.headers().expect("headers");
            let get = |k: &str| -> String {
                h.iter()
                    .find(|x| x.key == k)
                    .and_then(|x| x.value)
                    .map(|v| String::from_utf8_lossy(v).to_string())
                    .unwrap_or_default()
            };
            assert_eq!(get("__dlq.errors.topic"), "work");
            assert_eq!(get("__dlq.errors.group"), "workers");
            out.insert((
                get("__dlq.errors.partition").parse().unwrap(),
                get("__dlq.errors.offset").parse().unwrap(),
            ));
        }
    }
    out
}
