//! KIP-848 consumer groups across broker restarts, over raw ConsumerGroupHeartbeat /
//! ConsumerGroupDescribe requests: members, epochs and assignments come back from
//! `__consumer_offsets`; members carry on with their epochs; a member that never returns is
//! expired after its session timeout; empty groups change protocol type keeping their offsets;
//! a deleted consumer group stays deleted.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{wait_for, RawClient, TestBroker};
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::consumer_group_heartbeat_response::Assignment as HbAssignment;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, DeleteGroupsRequest,
    DeleteGroupsResponse, GroupId, JoinGroupRequest, JoinGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

const TOPIC: &str = "cg-restart";
const GROUP_ID_NOT_FOUND: i16 = 69;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const NON_EMPTY_GROUP: i16 = 68;

fn create_topic(b: &TestBroker, partitions: i32) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(b.create_topic(TOPIC, partitions, &[]));
}

type Parts = BTreeSet<(Uuid, i32)>;

fn parts_of(a: &Option<HbAssignment>) -> Option<Parts> {
    a.as_ref().map(|a| {
        a.topic_partitions
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
            .collect()
    })
}

fn owned(p: &Parts) -> Vec<TopicPartitions> {
    let topics: BTreeSet<Uuid> = p.iter().map(|(t, _)| *t).collect();
    topics
        .into_iter()
        .map(|t| {
            TopicPartitions::default()
                .with_topic_id(t)
                .with_partitions(p.iter().filter(|(x, _)| *x == t).map(|(_, n)| *n).collect())
        })
        .collect()
}

/// One member driven by hand: its id, epoch and what it owns.
struct Member {
    id: String,
    epoch: i32,
    owns: Parts,
}

impl Member {
    fn new(id: &str) -> Self {
        Member {
            id: id.to_string(),
            epoch: 0,
            owns: Parts::new(),
        }
    }

    /// Joins (epoch 0) or heartbeats with what it owns; adopts the epoch and any assignment
    /// (a client revokes and acknowledges at once). Returns the response.
    fn heartbeat(&mut self, raw: &mut RawClient, group: &str) -> ConsumerGroupHeartbeatResponse {
        let mut req = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.into())))
            .with_member_id(StrBytes::from_string(self.id.clone()))
            .with_member_epoch(self.epoch)
            .with_rebalance_timeout_ms(-1)
            .with_topic_partitions(Some(owned(&self.owns)));
        if self.epoch == 0 {
            req = req
                .with_rebalance_timeout_ms(30_000)
                .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str(
                    TOPIC,
                ))]));
        }
        let r: ConsumerGroupHeartbeatResponse = raw.call(ApiKey::ConsumerGroupHeartbeat, 1, &req);
        if r.error_code == 0 {
            self.epoch = r.member_epoch;
            if let Some(p) = parts_of(&r.assignment) {
                self.owns = p;
            }
        }
        r
    }

    fn leave(&mut self, raw: &mut RawClient, group: &str) {
        self.epoch = -1;
        let r = self.heartbeat(raw, group);
        assert_eq!(r.error_code, 0, "leave: {r:?}");
    }
}

fn describe(
    raw: &mut RawClient,
    group: &str,
) -> kafka_protocol::messages::consumer_group_describe_response::DescribedGroup {
    let r: ConsumerGroupDescribeResponse = raw.call(
        ApiKey::ConsumerGroupDescribe,
        1,
        &ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(StrBytes::from_string(group.into()))]),
    );
    r.groups.into_iter().next().expect("one group")
}

/// (member id, epoch, assigned partitions) per member, sorted.
fn members_of(
    g: &kafka_protocol::messages::consumer_group_describe_response::DescribedGroup,
) -> Vec<(String, i32, Parts)> {
    let mut v: Vec<_> = g
        .members
        .iter()
        .map(|m| {
            let parts = m
                .assignment
                .topic_partitions
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
                .collect();
            (m.member_id.to_string(), m.member_epoch, parts)
        })
        .collect();
    v.sort();
    v
}

/// Heartbeats every member until the group is Stable with `total` partitions spread.
fn stabilize(raw: &mut RawClient, group: &str, members: &mut [Member], total: usize) {
    wait_for(Duration::from_secs(20), "a stable group", || {
        for m in members.iter_mut() {
            let r = m.heartbeat(raw, group);
            assert_eq!(r.error_code, 0, "{}: {r:?}", m.id);
        }
        let g = describe(raw, group);
        let spread: usize = members.iter().map(|m| m.owns.len()).sum();
        (g.group_state.as_str() == "Stable" && spread == total).then_some(())
    });
}

fn commit(raw: &mut RawClient, group: &str, partition: i32, offset: i64) {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)])]);
    let r: OffsetCommitResponse = raw.call(ApiKey::OffsetCommit, 8, &req);
    assert_eq!(r.topics[0].partitions[0].error_code, 0, "commit {group}");
}

fn committed(raw: &mut RawClient, group: &str, partition: i32) -> i64 {
    let r: OffsetFetchResponse = raw.call(
        ApiKey::OffsetFetch,
        8,
        &OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_string(group.into())))
            .with_topics(None)]),
    );
    r.groups[0]
        .topics
        .iter()
        .filter(|t| t.name.as_str() == TOPIC)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == partition)
        .map(|p| p.committed_offset)
        .unwrap_or(-1)
}

fn classic_join(raw: &mut RawClient, group: &str, instance: &str) -> JoinGroupResponse {
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(StrBytes::default())
        .with_group_instance_id(Some(StrBytes::from_string(instance.into())))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from_static(b"m"))]);
    raw.call(ApiKey::JoinGroup, 9, &req)
}

fn listed(raw: &mut RawClient) -> Vec<(String, String)> {
    let r: ListGroupsResponse = raw.call(ApiKey::ListGroups, 5, &ListGroupsRequest::default());
    r.groups
        .iter()
        .map(|g| (g.group_id.0.to_string(), g.group_type.to_string()))
        .collect()
}

#[test]
fn consumer_group_comes_back_after_restart_and_members_carry_on() {
    let mut b = TestBroker::start(&[]);
    create_topic(&b, 4);
    let mut raw = RawClient::connect(b.port);
    let mut ms = [Member::new("member-a"), Member::new("member-b")];
    stabilize(&mut raw, "cg", &mut ms, 4);
    assert!(ms.iter().all(|m| m.owns.len() == 2), "2 partitions each");
    let before = describe(&mut raw, "cg");
    assert_eq!(before.error_code, 0);
    let before_members = members_of(&before);
    assert_eq!(before_members.len(), 2);

    // No graceful shutdown: what the responses promised was already in the log.
    b.kill9();
    b.restart();
    let mut raw = RawClient::connect(b.port);
    let after = describe(&mut raw, "cg");
    assert_eq!(after.error_code, 0, "{after:?}");
    assert_eq!(
        members_of(&after),
        before_members,
        "members, epochs, assignments"
    );
    assert_eq!(
        (after.group_epoch, after.assignment_epoch),
        (before.group_epoch, before.assignment_epoch)
    );
    assert_eq!(after.group_state.as_str(), "Stable");
    assert_eq!(after.assignor_name, before.assignor_name);

    // Both members heartbeat with the epochs they had: accepted, nothing moves.
    for m in ms.iter_mut() {
        let (epoch, owns) = (m.epoch, m.owns.clone());
        let r = m.heartbeat(&mut raw, "cg");
        assert_eq!(r.error_code, 0, "{}: {r:?}", m.id);
        assert_eq!(r.member_epoch, epoch, "{} not bumped", m.id);
        if let Some(p) = parts_of(&r.assignment) {
            assert_eq!(p, owns, "{} keeps its partitions", m.id);
        }
    }
    let again = describe(&mut raw, "cg");
    assert_eq!(members_of(&again), before_members);
    assert_eq!(
        again.group_epoch, before.group_epoch,
        "no rebalance after restart"
    );
}

#[test]
fn member_that_does_not_return_after_restart_expires_after_its_session() {
    let session_ms = 4_000;
    let set = format!("group.consumer.session.timeout.ms={session_ms}");
    let mut b = TestBroker::start(&[&set, "group.consumer.heartbeat.interval.ms=300"]);
    create_topic(&b, 4);
    let mut raw = RawClient::connect(b.port);
    let mut ms = [Member::new("stays"), Member::new("gone")];
    stabilize(&mut raw, "cg-expiry", &mut ms, 4);
    let group_epoch = describe(&mut raw, "cg-expiry").group_epoch;

    b.stop();
    b.restart();
    let restarted = Instant::now();
    let mut raw = RawClient::connect(b.port);
    let g = describe(&mut raw, "cg-expiry");
    assert_eq!(g.members.len(), 2, "both members are loaded: {g:?}");
    let [stays, _] = &mut ms;
    // Only `stays` heartbeats; `gone` is removed once its session (re-armed at load) ends.
    wait_for(Duration::from_secs(30), "the absent member expired", || {
        let r = stays.heartbeat(&mut raw, "cg-expiry");
        assert_eq!(r.error_code, 0, "{r:?}");
        std::thread::sleep(Duration::from_millis(200));
        let g = describe(&mut raw, "cg-expiry");
        (g.members.len() == 1).then_some(g)
    });
    let waited = restarted.elapsed();
    assert!(
        waited >= Duration::from_millis(session_ms / 2),
        "expired after {waited:?}, before its session timeout"
    );
    // The one left gets everything.
    wait_for(
        Duration::from_secs(20),
        "all partitions to the survivor",
        || {
            let r = stays.heartbeat(&mut raw, "cg-expiry");
            assert_eq!(r.error_code, 0, "{r:?}");
            (stays.owns.len() == 4).then_some(())
        },
    );
    let g = describe(&mut raw, "cg-expiry");
    assert!(g.group_epoch > group_epoch);
    assert_eq!(members_of(&g)[0].0, "stays");
    // The expiry itself was persisted: after another restart only `stays` is there.
    b.stop();
    b.restart();
    let mut raw = RawClient::connect(b.port);
    let g = describe(&mut raw, "cg-expiry");
    assert_eq!(
        members_of(&g)
            .iter()
            .map(|m| m.0.as_str())
            .collect::<Vec<_>>(),
        ["stays"]
    );
}

#[test]
fn empty_classic_group_becomes_consumer_group_and_keeps_offsets() {
    let mut b = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    create_topic(&b, 2);
    let mut raw = RawClient::connect(b.port);
    commit(&mut raw, "offsets-only", 0, 42);
    commit(&mut raw, "offsets-only", 1, 7);
    // Only a join (epoch 0) converts or creates; a heartbeat with an epoch does not.
    let mut stray = Member::new("stray");
    stray.epoch = 3;
    let r = stray.heartbeat(&mut raw, "offsets-only");
    assert_eq!(r.error_code, GROUP_ID_NOT_FOUND, "{r:?}");
    stray.epoch = 3;
    let r = stray.heartbeat(&mut raw, "no-such-group");
    assert_eq!(r.error_code, GROUP_ID_NOT_FOUND, "{r:?}");
    let mut m = Member::new("m1");
    let r = m.heartbeat(&mut raw, "offsets-only");
    assert_eq!(r.error_code, 0, "conversion: {r:?}");
    assert!(r.member_epoch > 0);
    assert_eq!(committed(&mut raw, "offsets-only", 0), 42);
    assert!(listed(&mut raw).contains(&("offsets-only".into(), "consumer".into())));

    // A classic group with a member whose embedded protocol is not a ConsumerProtocol
    // subscription cannot be upgraded online (tests/group_migration.rs has the upgrade).
    let j = classic_join(&mut raw, "busy-classic", "i1");
    assert_eq!(j.error_code, 0);
    let r = Member::new("m2").heartbeat(&mut raw, "busy-classic");
    assert_eq!(r.error_code, GROUP_ID_NOT_FOUND, "{r:?}");

    b.stop();
    b.restart();
    let mut raw = RawClient::connect(b.port);
    assert_eq!(committed(&mut raw, "offsets-only", 0), 42);
    assert_eq!(committed(&mut raw, "offsets-only", 1), 7);
    let g = describe(&mut raw, "offsets-only");
    assert_eq!(g.error_code, 0, "{g:?}");
    assert_eq!(members_of(&g)[0].0, "m1");
    let r = m.heartbeat(&mut raw, "offsets-only");
    assert_eq!(
        r.error_code, 0,
        "the converted group's member carries on: {r:?}"
    );
}

#[test]
fn empty_consumer_group_becomes_classic_on_join_group() {
    let mut b = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    create_topic(&b, 2);
    let mut raw = RawClient::connect(b.port);
    let mut m = Member::new("m1");
    assert_eq!(m.heartbeat(&mut raw, "flip").error_code, 0);
    // Non-empty consumer group: a classic member whose metadata is not a ConsumerProtocol
    // subscription is refused (tests/group_migration.rs has classic members joining).
    let j = classic_join(&mut raw, "flip", "i1");
    assert_eq!(j.error_code, INCONSISTENT_GROUP_PROTOCOL);
    m.leave(&mut raw, "flip");
    commit(&mut raw, "flip", 0, 5);
    // Empty now: JoinGroup turns it into a classic group.
    let j = classic_join(&mut raw, "flip", "i1");
    assert_eq!(j.error_code, 0, "{j:?}");
    assert_eq!(describe(&mut raw, "flip").error_code, GROUP_ID_NOT_FOUND);
    // The classic generation completes (and is persisted) with the leader's SyncGroup.
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("flip")))
        // v5 requires them (Kafka: INCONSISTENT_GROUP_PROTOCOL without).
        .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
        .with_protocol_name(Some(StrBytes::from_static_str("range")))
        .with_generation_id(j.generation_id)
        .with_member_id(j.member_id.clone())
        .with_group_instance_id(Some(StrBytes::from_static_str("i1")))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(j.member_id.clone())
            .with_assignment(Bytes::from_static(b"A"))]);
    let s: SyncGroupResponse = raw.call(ApiKey::SyncGroup, 5, &sync);
    assert_eq!(s.error_code, 0);

    b.stop();
    b.restart();
    let mut raw = RawClient::connect(b.port);
    assert_eq!(
        describe(&mut raw, "flip").error_code,
        GROUP_ID_NOT_FOUND,
        "still classic after restart"
    );
    assert!(listed(&mut raw).contains(&("flip".into(), "classic".into())));
    assert_eq!(
        committed(&mut raw, "flip", 0),
        5,
        "offsets survive the conversion"
    );
}

#[test]
fn deleted_consumer_group_stays_deleted_after_restart() {
    let mut b = TestBroker::start(&[]);
    create_topic(&b, 2);
    let mut raw = RawClient::connect(b.port);
    let mut m = Member::new("m1");
    assert_eq!(m.heartbeat(&mut raw, "doomed").error_code, 0);
    let delete = |raw: &mut RawClient| -> i16 {
        let r: DeleteGroupsResponse = raw.call(
            ApiKey::DeleteGroups,
            2,
            &DeleteGroupsRequest::default()
                .with_groups_names(vec![GroupId(StrBytes::from_static_str("doomed"))]),
        );
        r.results[0].error_code
    };
    assert_eq!(delete(&mut raw), NON_EMPTY_GROUP);
    m.leave(&mut raw, "doomed");
    commit(&mut raw, "doomed", 0, 9);
    assert_eq!(
        describe(&mut raw, "doomed").error_code,
        0,
        "empty, not gone"
    );
    assert_eq!(delete(&mut raw), 0);
    assert_eq!(describe(&mut raw, "doomed").error_code, GROUP_ID_NOT_FOUND);

    b.stop();
    b.restart();
    let mut raw = RawClient::connect(b.port);
    assert_eq!(describe(&mut raw, "doomed").error_code, GROUP_ID_NOT_FOUND);
    assert!(!listed(&mut raw).iter().any(|(g, _)| g == "doomed"));
    assert_eq!(committed(&mut raw, "doomed", 0), -1, "offsets deleted too");
}
