//! Share groups (KIP-932) on three `strom` processes: share consumers work through a topic
//! whose partitions are led by different brokers while the leader of a partition they consume
//! (its share-partition) and the leader of a `__share_group_state` partition (the share
//! coordinator keeping the state) are killed with SIGKILL and restarted. No record whose
//! ACCEPT the broker acknowledged is delivered again; every record ends accepted (or was
//! accepted while its consumer lost the answer to the kill); and the delivery counts the state
//! keeps never fall back.
//!
//! The consumers speak the protocol with `tests/common/share.rs` (ShareFetch v1 carrying the
//! acknowledgements of the previous fetch), each with a share session per partition leader,
//! which they look up in Metadata again after an error, as a client does.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::share::{
    ack_codes, acquired, group_configs, produce_round_robin, Conn, Member, ACCEPT, RELEASE,
};
use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, GroupId,
    MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

const TOPIC: &str = "work";
/// Acknowledgements to send with a session's next fetch: partition -> (first, last, type).
type Acks = BTreeMap<i32, Vec<(i64, i64, i8)>>;
const GROUP: &str = "workers";
const PARTITIONS: i32 = 3;

/// Leader of each partition of [`TOPIC`] (and the topic id), as the node at `port` sees it.
fn leaders(port: u16) -> Option<(Uuid, BTreeMap<i32, i32>)> {
    let mut c = Conn::open(port)?;
    let r: MetadataResponse = c.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(TOPIC))))])),
    )?;
    let t = r.topics.first()?;
    (t.error_code == 0).then_some(())?;
    Some((
        t.topic_id,
        t.partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect(),
    ))
}

/// The share-partition start offsets of the group, as the node at `port` describes them.
fn start_offsets(port: u16) -> Option<BTreeMap<i32, i64>> {
    let mut c = Conn::open(port)?;
    let d: DescribeShareGroupOffsetsResponse = c.call(
        ApiKey::DescribeShareGroupOffsets,
        0,
        &DescribeShareGroupOffsetsRequest::default().with_groups(vec![
            DescribeShareGroupOffsetsRequestGroup::default()
                .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
                .with_topics(None),
        ]),
    )?;
    let g = d.groups.first()?;
    (g.error_code == 0).then_some(())?;
    Some(
        g.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.start_offset))
            })
            .collect(),
    )
}

/// The broker leading the `__share_group_state` partition of (group, topic, partition).
fn state_leader(cluster: &Cluster, topic: Uuid, partition: i32) -> i32 {
    let key = format!(
        "{GROUP}:{}:{partition}",
        strom::metadata::base64_url_uuid(topic)
    );
    let parts = cluster.partitions_of("__share_group_state");
    let index = strom::coordinator::partition_for(&key, parts.len() as i32);
    parts[&index].0
}

#[test]
fn share_consumers_lose_nothing_when_share_leaders_and_state_leaders_are_killed() {
    let mut cluster = Cluster::start_with(&["group.share.min.record.lock.duration.ms=1000"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<_> = cluster.client().create().expect("admin");
        let t = NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(3))
            .set("min.insync.replicas", "2");
        let r = admin
            .create_topics([&t], &AdminOptions::new())
            .await
            .expect("create");
        assert!(r.iter().all(|r| r.is_ok()), "{r:?}");
    });
    cluster.wait_isr_of(
        TOPIC,
        PARTITIONS as usize,
        &[1, 2, 3],
        "every replica in sync after create",
    );
    let total: usize = 18_000;
    produce_round_robin(cluster.client(), TOPIC, PARTITIONS, total);
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    group_configs(
        ports[0],
        GROUP,
        &[
            ("share.auto.offset.reset", "earliest"),
            ("share.record.lock.duration.ms", "2000"),
            // Kills expire locks too: a record must not reach the limit and be archived.
            ("share.delivery.count.limit", "10"),
        ],
    );
    let (topic, _) = leaders(ports[0]).expect("metadata");

    let accepted: Arc<Mutex<BTreeSet<(i32, i64)>>> = Arc::default();
    let unconfirmed: Arc<Mutex<BTreeSet<(i32, i64)>>> = Arc::default();
    // The highest delivery count seen per record: a later delivery must not report less.
    let counts: Arc<Mutex<BTreeMap<(i32, i64), i16>>> = Arc::default();
    let violations: Arc<Mutex<Vec<String>>> = Arc::default();
    let deliveries = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // The consumers take at most RATE records per second in all, so that the kills below
    // happen while records are being worked on.
    const RATE: u128 = 450;
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..3usize {
        let (accepted, unconfirmed, counts, violations, deliveries, stop, ports) = (
            accepted.clone(),
            unconfirmed.clone(),
            counts.clone(),
            violations.clone(),
            deliveries.clone(),
            stop.clone(),
            ports.clone(),
        );
        workers.push(std::thread::spawn(move || {
            let mut n: u64 = w as u64 * 7919 + 1;
            // One share session per leader: node -> (member, its acknowledgements to send).
            let mut sessions: BTreeMap<i32, (Member, Acks)> = BTreeMap::new();
            let mut route: BTreeMap<i32, i32> = BTreeMap::new();
            while !stop.load(Ordering::Acquire) {
                if deliveries.load(Ordering::Relaxed) as u128
                    > started.elapsed().as_millis() * RATE / 1000
                {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                if route.is_empty() {
                    route = ports
                        .iter()
                        .find_map(|p| leaders(*p))
                        .map(|(_, l)| l)
                        .unwrap_or_default();
                    route.retain(|_, l| *l > 0);
                    if route.is_empty() {
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                }
                let by_node: BTreeMap<i32, Vec<i32>> =
                    route.iter().fold(BTreeMap::new(), |mut m, (p, l)| {
                        m.entry(*l).or_insert_with(Vec::new).push(*p);
                        m
                    });
                let mut failed = false;
                // Sessions of nodes that lead other partitions now (or none) end: a client
                // forgets the partitions that moved.
                let stale: Vec<i32> = sessions
                    .iter()
                    .filter(|(n, (m, _))| by_node.get(n) != Some(&m.partitions))
                    .map(|(n, _)| *n)
                    .collect();
                for n in stale {
                    if let Some((_, pending)) = sessions.remove(&n) {
                        let mut u = unconfirmed.lock().unwrap();
                        for (p, batches) in &pending {
                            for (f, l, t) in batches {
                                if *t == ACCEPT {
                                    u.extend((*f..=*l).map(|o| (*p, o)));
                                }
                            }
                        }
                    }
                }
                for (node, parts) in by_node {
                    if let std::collections::btree_map::Entry::Vacant(slot) = sessions.entry(node) {
                        let Some(conn) = Conn::open(ports[node as usize - 1]) else {
                            failed = true;
                            continue;
                        };
                        let m = Member {
                            conn,
                            group: GROUP.into(),
                            id: format!("worker-{w}-{node}"),
                            epoch: 0,
                            topic,
                            partitions: parts.clone(),
                            max_records: 20,
                        };
                        slot.insert((m, BTreeMap::new()));
                    }
                    let (m, pending) = sessions.get_mut(&node).expect("session");
                    let r = m.fetch(pending, 300).filter(|r| r.error_code == 0);
                    std::thread::sleep(Duration::from_millis(10));
                    let Some(r) = r else {
                        let mut u = unconfirmed.lock().unwrap();
                        for (p, batches) in pending.iter() {
                            for (f, l, t) in batches {
                                if *t == ACCEPT {
                                    u.extend((*f..=*l).map(|o| (*p, o)));
                                }
                            }
                        }
                        sessions.remove(&node);
                        failed = true;
                        continue;
                    };
                    let codes = ack_codes(&r);
                    for (p, batches) in pending.iter() {
                        if codes.get(p).copied().unwrap_or(-1) != 0 {
                            // Not applied (a leader that moved): the consumer cannot know
                            // whether it was.
                            let mut u = unconfirmed.lock().unwrap();
                            for (f, l, t) in batches {
                                if *t == ACCEPT {
                                    u.extend((*f..=*l).map(|o| (*p, o)));
                                }
                            }
                            continue;
                        }
                        for (f, l, t) in batches {
                            if *t == ACCEPT {
                                accepted.lock().unwrap().extend((*f..=*l).map(|o| (*p, o)));
                            }
                        }
                    }
                    pending.clear();
                    if r.responses
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .any(|p| p.error_code != 0)
                    {
                        if std::env::var("STROM_SHARE_DEBUG").is_ok() {
                            eprintln!(
                                "worker {w} node {node}: {:?}",
                                r.responses
                                    .iter()
                                    .flat_map(|t| &t.partitions)
                                    .map(|p| (p.partition_index, p.error_code))
                                    .collect::<Vec<_>>()
                            );
                        }
                        failed = true;
                    }
                    for (p, f, l, count) in acquired(&r) {
                        for o in f..=l {
                            deliveries.fetch_add(1, Ordering::Relaxed);
                            if accepted.lock().unwrap().contains(&(p, o)) {
                                violations.lock().unwrap().push(format!(
                                    "{p}:{o} delivered after its acceptance was acknowledged"
                                ));
                            }
                            let mut c = counts.lock().unwrap();
                            let before = c.insert((p, o), count).unwrap_or(0);
                            if count <= before {
                                violations.lock().unwrap().push(format!(
                                    "{p}:{o} delivered with count {count} after count {before}"
                                ));
                            }
                            n = n
                                .wrapping_mul(6364136223846793005)
                                .wrapping_add(1442695040888963407);
                            let t = if (n >> 33) % 100 < 8 { RELEASE } else { ACCEPT };
                            pending.entry(p).or_default().push((o, o, t));
                        }
                    }
                }
                if failed {
                    // Look the leaders up again (a client refreshes its metadata).
                    route.clear();
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }));
    }
    let finished = |ports: &[u16]| -> bool {
        ports.iter().any(|p| {
            start_offsets(*p).is_some_and(|s| {
                s.len() == PARTITIONS as usize && s.values().sum::<i64>() == total as i64
            })
        })
    };

    // Kills, each while the consumers are busy: the leader of partition 0 (its
    // share-partition), then the leader of partition 1's share state, twice over.
    let mut killed = Vec::new();
    for round in 0..4 {
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            !finished(&ports),
            "the consumers finished before kill {round}"
        );
        let victim = if round % 2 == 0 {
            leaders(ports[0])
                .or_else(|| leaders(ports[1]))
                .and_then(|(_, l)| l.get(&0).copied())
                .filter(|l| *l > 0)
                .unwrap_or(1)
        } else {
            state_leader(&cluster, topic, 1)
        };
        let what = if round % 2 == 0 {
            "share-partition leader"
        } else {
            "share-state leader"
        };
        eprintln!("kill -9 node {victim} ({what})");
        killed.push((victim, what));
        cluster.node(victim).kill9();
        std::thread::sleep(Duration::from_millis(2000));
        cluster.node(victim).spawn();
        cluster.wait_ready(victim);
        cluster.wait_isr_of(
            TOPIC,
            PARTITIONS as usize,
            &[1, 2, 3],
            "every replica back in sync",
        );
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while !finished(&ports) {
        if Instant::now() >= deadline {
            for n in &cluster.nodes {
                for l in n
                    .log()
                    .lines()
                    .filter(|l| l.contains(" WARN strom") || l.contains(" ERROR"))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .take(40)
                {
                    eprintln!("node {}: {l}", n.id);
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "not every record finished: {:?}; {} accepted",
            ports.iter().map(|p| start_offsets(*p)).collect::<Vec<_>>(),
            accepted.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
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
    let accepted = accepted.lock().unwrap().clone();
    let unconfirmed = unconfirmed.lock().unwrap().clone();
    let lost: Vec<(i32, i64)> = (0..total)
        .map(|i| {
            (
                (i % PARTITIONS as usize) as i32,
                (i / PARTITIONS as usize) as i64,
            )
        })
        .filter(|r| !accepted.contains(r) && !unconfirmed.contains(r))
        .collect();
    assert!(
        lost.is_empty(),
        "{} records finished without an acknowledged acceptance, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    eprintln!(
        "cluster share loop: kills {killed:?}; {total} records, {} deliveries, {} accepted with an acknowledgement, {} finished without the consumer hearing it",
        deliveries.load(Ordering::Relaxed),
        accepted.len(),
        total - accepted.len()
    );
}
