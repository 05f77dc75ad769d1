//! Consumer groups with a real client (librdkafka): partition split and rebalance, committed
//! offsets surviving a restart, a static member coming back without a rebalance, many groups.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{wait_for, RawClient, TestBroker};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

fn create_topic(b: &TestBroker, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = b.client().create().expect("admin");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let r = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        ))
        .expect("create");
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
}

fn produce(b: &TestBroker, topic: &str, partitions: i32, n: usize) {
    let p: BaseProducer = b
        .client()
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for i in 0..n {
        let v = format!("v{i}");
        let key = format!("k{i}");
        let mut rec = BaseRecord::to(topic)
            .key(&key)
            .payload(&v)
            .partition((i % partitions as usize) as i32);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    p.poll(Duration::from_millis(10));
                }
            }
        }
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

fn consumer(b: &TestBroker, group: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut c = b.client();
    c.set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("consumer")
}

fn assigned(c: &BaseConsumer) -> usize {
    c.assignment().map(|a| a.count()).unwrap_or(0)
}

#[test]
fn three_members_split_six_partitions_and_rebalance_when_one_leaves() {
    let b = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    create_topic(&b, "g6", 6);
    produce(&b, "g6", 6, 60);
    let cs: Vec<BaseConsumer> = (0..3).map(|_| consumer(&b, "split", &[])).collect();
    for c in &cs {
        c.subscribe(&["g6"]).expect("subscribe");
    }
    wait_for(Duration::from_secs(30), "2 partitions each", || {
        for c in &cs {
            let _ = c.poll(Duration::from_millis(20));
        }
        let counts: Vec<usize> = cs.iter().map(assigned).collect();
        (counts == [2, 2, 2]).then_some(())
    });
    let mut cs = cs;
    let leaving = cs.pop().expect("third");
    leaving.unsubscribe();
    drop(leaving);
    let started = std::time::Instant::now();
    wait_for(
        Duration::from_secs(30),
        "3 partitions each after a leave",
        || {
            for c in &cs {
                let _ = c.poll(Duration::from_millis(20));
            }
            let mut counts: Vec<usize> = cs.iter().map(assigned).collect();
            counts.sort_unstable();
            (counts == [3, 3]).then_some(())
        },
    );
    eprintln!(
        "rebalance after a leaving member took {:?}",
        started.elapsed()
    );
}

#[test]
fn committed_offsets_survive_restart_and_consumption_resumes() {
    let mut b = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    create_topic(&b, "resume", 2);
    produce(&b, "resume", 2, 100);
    {
        let c = consumer(&b, "resumer", &[]);
        c.subscribe(&["resume"]).expect("subscribe");
        let mut got = 0;
        wait_for(Duration::from_secs(30), "60 records", || {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                got += 1;
                if got == 60 {
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition_offset(
                        "resume",
                        m.partition(),
                        Offset::Offset(m.offset() + 1),
                    )
                    .expect("tpl");
                    c.commit(&tpl, CommitMode::Sync).expect("commit");
                    return Some(());
                }
            }
            None
        });
        // Commit exactly what was consumed on the other partition too.
        c.commit_consumer_state(CommitMode::Sync)
            .expect("commit state");
        let committed = c.committed(Duration::from_secs(10)).expect("committed");
        assert!(committed
            .elements()
            .iter()
            .all(|e| matches!(e.offset(), Offset::Offset(_))));
    }
    b.stop();
    b.restart();
    let c = consumer(&b, "resumer", &[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("resume", 0);
    tpl.add_partition("resume", 1);
    let committed = wait_for(
        Duration::from_secs(30),
        "committed offsets after restart",
        || {
            c.committed_offsets(tpl.clone(), Duration::from_secs(5))
                .ok()
        },
    );
    let total: i64 = committed
        .elements()
        .iter()
        .map(|e| {
            if let Offset::Offset(o) = e.offset() {
                o
            } else {
                0
            }
        })
        .sum();
    assert!(
        total >= 60,
        "committed offsets after restart sum to {total}"
    );
    c.subscribe(&["resume"]).expect("subscribe");
    let mut rest = 0;
    wait_for(Duration::from_secs(30), "the remaining records", || {
        if let Some(Ok(_)) = c.poll(Duration::from_millis(100)) {
            rest += 1;
        }
        (rest as i64 == 100 - total).then_some(())
    });
}

fn join(
    raw: &mut RawClient,
    group: &str,
    member: &str,
    instance: Option<&str>,
) -> JoinGroupResponse {
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(StrBytes::from_string(member.into()))
        .with_group_instance_id(instance.map(|i| StrBytes::from_string(i.into())))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from_static(b"m"))]);
    raw.call(ApiKey::JoinGroup, 9, &req)
}

#[test]
fn static_member_restarts_without_rebalance() {
    let b = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    let mut raw = RawClient::connect(b.port);
    let first = join(&mut raw, "statics", "", Some("member-1"));
    assert_eq!(
        first.error_code, 0,
        "static members skip MEMBER_ID_REQUIRED"
    );
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("statics")))
        // v5 requires them (Kafka: INCONSISTENT_GROUP_PROTOCOL without).
        .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
        .with_protocol_name(Some(StrBytes::from_static_str("range")))
        .with_generation_id(first.generation_id)
        .with_member_id(first.member_id.clone())
        .with_group_instance_id(Some(StrBytes::from_static_str("member-1")))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(first.member_id.clone())
            .with_assignment(Bytes::from_static(b"A"))]);
    let s: SyncGroupResponse = raw.call(ApiKey::SyncGroup, 5, &sync);
    assert_eq!((s.error_code, &s.assignment[..]), (0, &b"A"[..]));
    // The member restarts: a new connection, no member id, the same instance id.
    let mut raw2 = RawClient::connect(b.port);
    let again = join(&mut raw2, "statics", "", Some("member-1"));
    assert_eq!(again.error_code, 0);
    assert_eq!(
        again.generation_id, first.generation_id,
        "no rebalance: same generation"
    );
    assert_ne!(again.member_id, first.member_id);
    let hb = HeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("statics")))
        .with_generation_id(first.generation_id)
        .with_member_id(first.member_id.clone())
        .with_group_instance_id(Some(StrBytes::from_static_str("member-1")));
    let r: HeartbeatResponse = raw.call(ApiKey::Heartbeat, 4, &hb);
    assert_eq!(
        r.error_code, 82,
        "the old incarnation is fenced (FENCED_INSTANCE_ID)"
    );
    let sync2 = sync.with_member_id(again.member_id.clone());
    let s2: SyncGroupResponse = raw2.call(ApiKey::SyncGroup, 5, &sync2);
    assert_eq!(
        &s2.assignment[..],
        b"A",
        "the returning member keeps its assignment"
    );
}

#[test]
fn a_thousand_groups_keep_their_offsets_across_restart() {
    let mut b = TestBroker::start(&[]);
    create_topic(&b, "many", 1);
    let mut raw = RawClient::connect(b.port);
    let commit = |raw: &mut RawClient, group: String, offset: i64| {
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("many")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)])]);
        let r: OffsetCommitResponse = raw.call(ApiKey::OffsetCommit, 8, &req);
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
    };
    // The first commit creates __consumer_offsets (FindCoordinator does it for real clients).
    let fc: FindCoordinatorResponse = raw.call(
        ApiKey::FindCoordinator,
        4,
        &FindCoordinatorRequest::default()
            .with_coordinator_keys(vec![StrBytes::from_static_str("g-0")]),
    );
    assert_eq!(fc.coordinators[0].error_code, 0);
    for i in 0..1000i64 {
        commit(&mut raw, format!("g-{i}"), i * 7);
    }
    b.stop();
    b.restart();
    let mut raw = RawClient::connect(b.port);
    let groups: Vec<OffsetFetchRequestGroup> = (0..1000)
        .map(|i| {
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(format!("g-{i}"))))
                .with_topics(None)
        })
        .collect();
    let r: OffsetFetchResponse = raw.call(
        ApiKey::OffsetFetch,
        8,
        &OffsetFetchRequest::default().with_groups(groups),
    );
    assert_eq!(r.groups.len(), 1000);
    for (i, g) in r.groups.iter().enumerate() {
        let off = g
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .map(|p| p.committed_offset);
        assert_eq!(off, Some(i as i64 * 7), "group {}", g.group_id.0.as_str());
    }
}
