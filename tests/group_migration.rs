//! Online migration between classic and consumer groups (KIP-848,
//! `group.consumer.migration.policy`): real librdkafka consumers (classic and
//! `group.protocol=consumer`) for the upgrade and downgrade, raw requests for the protocol
//! details, a restart in the middle, and the `disabled` policy.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes};
use common::{wait_for, RawClient, TestBroker};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, GroupId, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, ListGroupsRequest, ListGroupsResponse,
    OffsetCommitRequest, OffsetCommitResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};

const GROUP_ID_NOT_FOUND: i16 = 69;
const REBALANCE_IN_PROGRESS: i16 = 27;
const ILLEGAL_GENERATION: i16 = 22;
const MEMBER_ID_REQUIRED: i16 = 79;

fn create_topic(b: &TestBroker, topic: &str, partitions: i32) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(b.create_topic(topic, partitions, &[]));
}

fn group_type(raw: &mut RawClient, group: &str) -> Option<String> {
    let r: ListGroupsResponse = raw.call(ApiKey::ListGroups, 5, &ListGroupsRequest::default());
    r.groups
        .iter()
        .find(|g| g.group_id.as_str() == group)
        .map(|g| g.group_type.to_string())
}

/// Partitions each consumer owns now (librdkafka's current assignment).
fn owned(consumers: &[(&str, &BaseConsumer)], topic: &str) -> BTreeMap<String, BTreeSet<i32>> {
    consumers
        .iter()
        .map(|(name, c)| {
            let a = c.assignment().expect("assignment");
            let ps = a
                .elements()
                .iter()
                .filter(|e| e.topic() == topic)
                .map(|e| e.partition())
                .collect();
            (name.to_string(), ps)
        })
        .collect()
}

/// Polls every consumer until `done` holds for what they own, asserting at every observation
/// that no partition is owned by two consumers.
fn poll_until(
    consumers: &[(&str, &BaseConsumer)],
    topic: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&BTreeMap<String, BTreeSet<i32>>) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        for (_, c) in consumers {
            if let Some(Err(e)) = c.poll(Duration::from_millis(50)) {
                eprintln!("consumer error: {e}");
            }
        }
        let now = owned(consumers, topic);
        let mut seen = BTreeSet::new();
        for (name, ps) in &now {
            for p in ps {
                assert!(
                    seen.insert(*p),
                    "partition {p} owned twice ({name}): {now:?}"
                );
            }
        }
        if done(&now) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {now:?}"
        );
    }
}

fn covers(now: &BTreeMap<String, BTreeSet<i32>>, total: usize) -> bool {
    now.values().map(BTreeSet::len).sum::<usize>() == total
}

/// A classic-protocol consumer with the given `partition.assignment.strategy`.
fn classic(b: &TestBroker, group: &str, strategy: &str) -> BaseConsumer {
    b.consumer(&[
        ("group.id", group),
        ("group.protocol", "classic"),
        ("partition.assignment.strategy", strategy),
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "500"),
        ("auto.offset.reset", "earliest"),
    ])
}

fn modern(b: &TestBroker, group: &str) -> BaseConsumer {
    b.consumer(&[
        ("group.id", group),
        ("group.protocol", "consumer"),
        ("auto.offset.reset", "earliest"),
    ])
}

#[test]
fn classic_group_upgrades_when_a_consumer_protocol_member_joins_then_classic_members_leave() {
    upgrade_then_classic_members_leave("range,roundrobin", "mig-up");
}

/// Cooperative classic members report the partitions they own in their subscription: they
/// keep them across the upgrade instead of giving everything up.
#[test]
fn cooperative_classic_group_upgrades_too() {
    upgrade_then_classic_members_leave("cooperative-sticky", "mig-coop");
}

fn upgrade_then_classic_members_leave(strategy: &str, topic: &str) {
    let b = TestBroker::start(&[
        "group.initial.rebalance.delay.ms=0",
        "group.consumer.heartbeat.interval.ms=500",
    ]);
    create_topic(&b, topic, 6);
    let group = &format!("{topic}-group");
    let a = classic(&b, group, strategy);
    let c2 = classic(&b, group, strategy);
    a.subscribe(&[topic]).expect("subscribe a");
    c2.subscribe(&[topic]).expect("subscribe b");
    poll_until(
        &[("a", &a), ("b", &c2)],
        topic,
        Duration::from_secs(60),
        "the classic group to spread 6 partitions",
        |n| covers(n, 6) && n.values().all(|p| p.len() == 3),
    );
    let mut raw = RawClient::connect(b.port);
    assert_eq!(group_type(&mut raw, group).as_deref(), Some("classic"));

    let c = modern(&b, group);
    c.subscribe(&[topic]).expect("subscribe c");
    let all = [("a", &a), ("b", &c2), ("c", &c)];
    poll_until(
        &all,
        topic,
        Duration::from_secs(90),
        "2 partitions each in the upgraded group",
        |n| covers(n, 6) && n.values().all(|p| p.len() == 2),
    );
    assert_eq!(group_type(&mut raw, group).as_deref(), Some("consumer"));

    // Classic members leave one by one; the others keep every partition.
    drop(a);
    poll_until(
        &[("b", &c2), ("c", &c)],
        topic,
        Duration::from_secs(90),
        "3 partitions each after a left",
        |n| covers(n, 6) && n.values().all(|p| p.len() == 3),
    );
    drop(c2);
    poll_until(
        &[("c", &c)],
        topic,
        Duration::from_secs(90),
        "all 6 partitions with the consumer-protocol member",
        |n| covers(n, 6),
    );
    assert_eq!(group_type(&mut raw, group).as_deref(), Some("consumer"));
}

#[test]
fn group_downgrades_when_the_last_consumer_protocol_member_leaves() {
    let b = TestBroker::start(&[
        "group.initial.rebalance.delay.ms=0",
        "group.consumer.heartbeat.interval.ms=500",
    ]);
    let topic = "mig-down";
    create_topic(&b, topic, 6);
    let group = "mig-down-group";
    let a = classic(&b, group, "range,roundrobin");
    let c2 = classic(&b, group, "range,roundrobin");
    a.subscribe(&[topic]).expect("subscribe a");
    c2.subscribe(&[topic]).expect("subscribe b");
    poll_until(
        &[("a", &a), ("b", &c2)],
        topic,
        Duration::from_secs(60),
        "the classic group",
        |n| covers(n, 6) && n.values().all(|p| p.len() == 3),
    );
    let c = modern(&b, group);
    c.subscribe(&[topic]).expect("subscribe c");
    poll_until(
        &[("a", &a), ("b", &c2), ("c", &c)],
        topic,
        Duration::from_secs(90),
        "the upgraded group",
        |n| covers(n, 6) && n.values().all(|p| p.len() == 2),
    );
    let mut raw = RawClient::connect(b.port);
    assert_eq!(group_type(&mut raw, group).as_deref(), Some("consumer"));
    c.unsubscribe();
    drop(c);
    poll_until(
        &[("a", &a), ("b", &c2)],
        topic,
        Duration::from_secs(90),
        "the downgraded classic group to spread 6 partitions",
        |n| covers(n, 6) && n.values().all(|p| p.len() == 3),
    );
    assert_eq!(group_type(&mut raw, group).as_deref(), Some("classic"));
}

/// A ConsumerProtocol subscription v0 of one topic.
fn subscription(topic: &str) -> Bytes {
    let mut b = Vec::new();
    b.put_i16(0);
    b.put_i32(1);
    b.put_i16(topic.len() as i16);
    b.extend_from_slice(topic.as_bytes());
    b.put_i32(-1);
    Bytes::from(b)
}

/// A ConsumerProtocol assignment v0 of some partitions of one topic.
fn assignment(topic: &str, parts: &[i32]) -> Bytes {
    let mut b = Vec::new();
    b.put_i16(0);
    b.put_i32(1);
    b.put_i16(topic.len() as i16);
    b.extend_from_slice(topic.as_bytes());
    b.put_i32(parts.len() as i32);
    for p in parts {
        b.put_i32(*p);
    }
    b.put_i32(-1);
    Bytes::from(b)
}

/// Partitions of `topic` in a ConsumerProtocol assignment.
fn decode_assignment(mut b: &[u8]) -> BTreeSet<i32> {
    use bytes::Buf;
    let mut out = BTreeSet::new();
    let _v = b.get_i16();
    for _ in 0..b.get_i32() {
        let n = b.get_i16() as usize;
        b.advance(n);
        for _ in 0..b.get_i32() {
            out.insert(b.get_i32());
        }
    }
    out
}

fn join(raw: &mut RawClient, group: &str, member: &str, topic: &str) -> JoinGroupResponse {
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(StrBytes::from_string(member.into()))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(subscription(topic))]);
    raw.call(ApiKey::JoinGroup, 5, &req)
}

fn sync(
    raw: &mut RawClient,
    group: &str,
    member: &str,
    generation: i32,
    given: Vec<(String, Bytes)>,
) -> SyncGroupResponse {
    let req = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_member_id(StrBytes::from_string(member.into()))
        .with_generation_id(generation)
        .with_assignments(
            given
                .into_iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(StrBytes::from_string(m))
                        .with_assignment(a)
                })
                .collect(),
        );
    raw.call(ApiKey::SyncGroup, 3, &req)
}

fn heartbeat(raw: &mut RawClient, group: &str, member: &str, generation: i32) -> i16 {
    let r: HeartbeatResponse = raw.call(
        ApiKey::Heartbeat,
        3,
        &HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.into())))
            .with_member_id(StrBytes::from_string(member.into()))
            .with_generation_id(generation),
    );
    r.error_code
}

fn cg_join(raw: &mut RawClient, group: &str, topic: &str) -> ConsumerGroupHeartbeatResponse {
    raw.call(
        ApiKey::ConsumerGroupHeartbeat,
        0,
        &ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.into())))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_string(topic.into()))]))
            .with_topic_partitions(Some(vec![])),
    )
}

fn commit(raw: &mut RawClient, group: &str, topic: &str, member: &str, generation: i32) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_member_id(StrBytes::from_string(member.into()))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)])]);
    let r: OffsetCommitResponse = raw.call(ApiKey::OffsetCommit, 8, &req);
    r.topics[0].partitions[0].error_code
}

/// (member id, member type) of a consumer group's members (ConsumerGroupDescribe v1).
fn member_types(raw: &mut RawClient, group: &str) -> BTreeMap<String, i8> {
    let r: ConsumerGroupDescribeResponse = raw.call(
        ApiKey::ConsumerGroupDescribe,
        1,
        &ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(StrBytes::from_string(group.into()))]),
    );
    let g = &r.groups[0];
    assert_eq!(g.error_code, 0, "{g:?}");
    g.members
        .iter()
        .map(|m| (m.member_id.to_string(), m.member_type))
        .collect()
}

/// A classic group of one member (id, generation) that owns all of `topic`'s 4 partitions.
fn one_member_classic_group(raw: &mut RawClient, group: &str, topic: &str) -> (String, i32) {
    let first = join(raw, group, "", topic);
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
    let id = first.member_id.to_string();
    let j = join(raw, group, &id, topic);
    assert_eq!(j.error_code, 0, "{j:?}");
    let s = sync(
        raw,
        group,
        &id,
        j.generation_id,
        vec![(id.clone(), assignment(topic, &[0, 1, 2, 3]))],
    );
    assert_eq!(s.error_code, 0);
    (id, j.generation_id)
}

#[test]
fn classic_member_protocol_in_a_consumer_group_survives_a_restart_and_downgrades() {
    let mut b = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    let topic = "mig-raw";
    create_topic(&b, topic, 4);
    let group = "mig-raw-group";
    let mut raw = RawClient::connect(b.port);
    let (a, generation) = one_member_classic_group(&mut raw, group, topic);

    // The consumer-protocol member joins: upgrade; a still holds everything.
    let c = cg_join(&mut raw, group, topic);
    assert_eq!(c.error_code, 0, "{c:?}");
    let c_id = c.member_id.clone().expect("member id");
    assert_eq!(group_type(&mut raw, group).as_deref(), Some("consumer"));
    assert!(c
        .assignment
        .as_ref()
        .is_none_or(|a| a.topic_partitions.iter().all(|t| t.partitions.is_empty())));
    // a keeps its generation as member epoch; it must rejoin to give partitions up.
    assert_eq!(
        heartbeat(&mut raw, group, &a, generation),
        REBALANCE_IN_PROGRESS
    );
    assert_eq!(
        heartbeat(&mut raw, group, &a, generation + 7),
        ILLEGAL_GENERATION
    );

    // Offsets of a classic member are checked against its member epoch as a generation.
    assert_eq!(commit(&mut raw, group, topic, &a, generation), 0);
    assert_eq!(
        commit(&mut raw, group, topic, &a, generation + 1),
        ILLEGAL_GENERATION
    );

    // Restart mid-migration: the classic member is still there with its epoch.
    b.kill9();
    b.restart();
    let mut raw = RawClient::connect(b.port);
    assert_eq!(group_type(&mut raw, group).as_deref(), Some("consumer"));
    let types = member_types(&mut raw, group);
    assert_eq!(types.get(&a), Some(&0), "classic member: {types:?}");
    assert_eq!(
        types.get(c_id.as_str()),
        Some(&1),
        "consumer member: {types:?}"
    );
    assert_eq!(
        heartbeat(&mut raw, group, &a, generation),
        REBALANCE_IN_PROGRESS
    );

    // a rejoins owning nothing (eager): new epoch, no leader, 2 partitions at sync.
    let j = join(&mut raw, group, &a, topic);
    assert_eq!(j.error_code, 0, "{j:?}");
    assert!(j.generation_id > generation);
    assert!(j.leader.is_empty() && j.members.is_empty());
    assert_eq!(j.protocol_name.as_ref().map(|s| s.as_str()), Some("range"));
    let s = sync(&mut raw, group, &a, j.generation_id, vec![]);
    assert_eq!(s.error_code, 0, "{s:?}");
    let a_parts = decode_assignment(&s.assignment);
    assert_eq!(a_parts.len(), 2, "{a_parts:?}");
    assert_eq!(heartbeat(&mut raw, group, &a, j.generation_id), 0);

    // c heartbeats and gets the other two.
    let r: ConsumerGroupHeartbeatResponse = raw.call(
        ApiKey::ConsumerGroupHeartbeat,
        0,
        &ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.into())))
            .with_member_id(c_id.clone())
            .with_member_epoch(c.member_epoch)
            .with_rebalance_timeout_ms(-1),
    );
    assert_eq!(r.error_code, 0, "{r:?}");
    let c_parts: BTreeSet<i32> = r
        .assignment
        .as_ref()
        .expect("assignment")
        .topic_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().copied())
        .collect();
    assert!(c_parts.is_disjoint(&a_parts));
    assert_eq!(c_parts.len() + a_parts.len(), 4);

    // c leaves: the group becomes classic again and rebalances.
    let r: ConsumerGroupHeartbeatResponse = raw.call(
        ApiKey::ConsumerGroupHeartbeat,
        0,
        &ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.into())))
            .with_member_id(c_id)
            .with_member_epoch(-1),
    );
    assert_eq!(r.error_code, 0, "{r:?}");
    assert_eq!(group_type(&mut raw, group).as_deref(), Some("classic"));
    b.kill9();
    b.restart();
    let mut raw = RawClient::connect(b.port);
    assert_eq!(group_type(&mut raw, group).as_deref(), Some("classic"));
    // a is a member of the classic group: it rejoins and leads a new generation.
    let j = wait_for(Duration::from_secs(20), "a rejoined", || {
        let j = join(&mut raw, group, &a, topic);
        (j.error_code == 0).then_some(j)
    });
    assert_eq!(j.leader.as_str(), a);
    let s = sync(
        &mut raw,
        group,
        &a,
        j.generation_id,
        vec![(a.clone(), assignment(topic, &[0, 1, 2, 3]))],
    );
    assert_eq!(s.error_code, 0);
    assert_eq!(decode_assignment(&s.assignment).len(), 4);
}

#[test]
fn expiry_of_the_last_consumer_protocol_member_downgrades_the_group() {
    let b = TestBroker::start(&[
        "group.initial.rebalance.delay.ms=0",
        "group.consumer.session.timeout.ms=1500",
    ]);
    let topic = "mig-exp";
    create_topic(&b, topic, 4);
    let group = "mig-exp-group";
    let mut raw = RawClient::connect(b.port);
    let (a, generation) = one_member_classic_group(&mut raw, group, topic);
    let c = cg_join(&mut raw, group, topic);
    assert_eq!(c.error_code, 0, "{c:?}");
    // c never heartbeats again (a's session, 30 s, outlasts the wait).
    wait_for(Duration::from_secs(20), "the downgrade", || {
        (group_type(&mut raw, group).as_deref() == Some("classic")).then_some(())
    });
    // The classic group took the consumer group's epoch, past a's generation: a rejoins.
    assert_eq!(
        heartbeat(&mut raw, group, &a, generation),
        ILLEGAL_GENERATION
    );
    let j = join(&mut raw, group, &a, topic);
    assert_eq!(j.error_code, 0, "{j:?}");
    assert_eq!(j.leader.as_str(), a);
    assert!(j.generation_id > generation);
}

#[test]
fn disabled_policy_keeps_the_refusal() {
    let b = TestBroker::start(&[
        "group.initial.rebalance.delay.ms=0",
        "group.consumer.migration.policy=disabled",
    ]);
    let topic = "mig-off";
    create_topic(&b, topic, 4);
    let group = "mig-off-group";
    let mut raw = RawClient::connect(b.port);
    let (a, generation) = one_member_classic_group(&mut raw, group, topic);
    let c = cg_join(&mut raw, group, topic);
    assert_eq!(c.error_code, GROUP_ID_NOT_FOUND, "{c:?}");
    assert_eq!(group_type(&mut raw, group).as_deref(), Some("classic"));
    assert_eq!(heartbeat(&mut raw, group, &a, generation), 0);
}
