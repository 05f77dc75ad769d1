//! The streams group state machine driven through heartbeats, as a Streams client would.

use super::*;
use crate::coordinator::streams_group::records;
use crate::protocol::streams::{Subtopology, TopicInfo};

struct Cluster {
    topics: BTreeMap<String, i32>,
}

impl Cluster {
    fn new(topics: &[(&str, i32)]) -> Self {
        Cluster {
            topics: topics.iter().map(|(t, p)| (t.to_string(), *p)).collect(),
        }
    }

    fn create(&mut self, to_create: &[InternalTopic]) {
        for t in to_create {
            self.topics.insert(t.name.clone(), t.partitions);
        }
    }
}

/// Runs one heartbeat against `cluster`.
fn beat(
    g: &mut StreamsGroup,
    cluster: &Cluster,
    req: &HeartbeatRequest,
    now: Instant,
) -> Result<HeartbeatOutcome, HeartbeatError> {
    let names: Vec<String> = cluster.topics.keys().cloned().collect();
    let view = TopicsView {
        partitions_of: &|t| cluster.topics.get(t).copied(),
        names: &names,
    };
    g.heartbeat(
        req,
        "client",
        "/127.0.0.1",
        &view,
        &StreamsLimits::default(),
        now,
    )
}

fn word_count() -> Topology {
    Topology {
        epoch: 1,
        subtopologies: vec![
            Subtopology {
                subtopology_id: "0".into(),
                source_topics: vec!["input".into()],
                repartition_sink_topics: vec!["app-rep-repartition".into()],
                ..Subtopology::default()
            },
            Subtopology {
                subtopology_id: "1".into(),
                repartition_source_topics: vec![TopicInfo {
                    name: "app-rep-repartition".into(),
                    ..TopicInfo::default()
                }],
                state_changelog_topics: vec![TopicInfo {
                    name: "app-store-changelog".into(),
                    ..TopicInfo::default()
                }],
                ..Subtopology::default()
            },
        ],
    }
}

fn join(id: &str, process: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        group_id: "app".into(),
        member_id: id.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        topology: Some(word_count()),
        process_id: Some(process.into()),
        user_endpoint: Some(Endpoint {
            host: format!("{process}.local"),
            port: 8080,
        }),
        ..HeartbeatRequest::default()
    }
}

/// A steady-state heartbeat reporting what the member owns.
fn report(id: &str, epoch: i32, owned: &Tasks) -> HeartbeatRequest {
    HeartbeatRequest {
        group_id: "app".into(),
        member_id: id.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        active_tasks: Some(task_ids(&owned.active)),
        standby_tasks: Some(task_ids(&owned.standby)),
        warmup_tasks: Some(task_ids(&owned.warmup)),
        endpoint_information_epoch: i32::MAX,
        ..HeartbeatRequest::default()
    }
}

fn active(resp: &HeartbeatResponse) -> Option<BTreeSet<TaskId>> {
    resp.active_tasks.as_ref().map(|t| flatten(t))
}

fn tasks(active: &BTreeSet<TaskId>) -> Tasks {
    Tasks {
        active: active.clone(),
        ..Tasks::default()
    }
}

#[test]
fn a_word_count_waits_for_its_internal_topics_then_gets_every_task() {
    let now = Instant::now();
    let mut cluster = Cluster::new(&[("input", 3)]);
    let mut g = StreamsGroup::new();
    let out = beat(&mut g, &cluster, &join("m1", "p1"), now).unwrap();
    let statuses: Vec<i8> = out
        .response
        .status
        .iter()
        .flatten()
        .map(|s| s.status_code)
        .collect();
    assert_eq!(statuses, [status::MISSING_INTERNAL_TOPICS]);
    assert_eq!(active(&out.response), Some(BTreeSet::new()));
    assert_eq!(g.state(), "NotReady");
    let names: Vec<&str> = out.to_create.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["app-rep-repartition", "app-store-changelog"]);
    cluster.create(&out.to_create);

    let epoch = out.response.member_epoch;
    let out = beat(
        &mut g,
        &cluster,
        &report("m1", epoch, &Tasks::default()),
        now,
    )
    .unwrap();
    assert!(out.to_create.is_empty());
    assert_eq!(out.response.status, Some(vec![]));
    let all: BTreeSet<TaskId> = (0..3)
        .flat_map(|p| [("0".to_string(), p), ("1".to_string(), p)])
        .collect();
    assert_eq!(active(&out.response), Some(all));
    assert_eq!(out.response.member_epoch, g.group_epoch);
    assert_eq!(g.state(), "Stable");
}

#[test]
fn a_second_member_gets_tasks_only_after_the_first_released_them() {
    let now = Instant::now();
    let cluster = Cluster::new(&[
        ("input", 4),
        ("app-rep-repartition", 4),
        ("app-store-changelog", 4),
    ]);
    let mut g = StreamsGroup::new();
    let out = beat(&mut g, &cluster, &join("m1", "p1"), now).unwrap();
    let m1_all = active(&out.response).unwrap();
    assert_eq!(m1_all.len(), 8);
    let m1_epoch = out.response.member_epoch;

    // m2 joins: the new target splits the tasks, but m1 still holds them all.
    let out = beat(&mut g, &cluster, &join("m2", "p2"), now).unwrap();
    assert_eq!(active(&out.response), Some(BTreeSet::new()));
    let m2_epoch = out.response.member_epoch;
    assert_eq!(g.target["m1"].active.len(), 4);
    assert_eq!(g.target["m2"].active.len(), 4);

    // m1's next heartbeat revokes half: it keeps its epoch until it released them.
    let out = beat(
        &mut g,
        &cluster,
        &report("m1", m1_epoch, &tasks(&m1_all)),
        now,
    )
    .unwrap();
    let kept = active(&out.response).unwrap();
    assert_eq!(kept.len(), 4);
    assert_eq!(out.response.member_epoch, m1_epoch);
    assert_eq!(g.state(), "Reconciling");

    // m2 still cannot have them.
    let out = beat(
        &mut g,
        &cluster,
        &report("m2", m2_epoch, &Tasks::default()),
        now,
    )
    .unwrap();
    assert!(active(&out.response).is_none_or(|a| a.is_empty()));

    // m1 reports the revoked tasks gone: it moves to the new epoch.
    let out = beat(
        &mut g,
        &cluster,
        &report("m1", m1_epoch, &tasks(&kept)),
        now,
    )
    .unwrap();
    assert_eq!(out.response.member_epoch, g.assignment_epoch);
    let m2_epoch_now = g.members["m2"].epoch;
    let out = beat(
        &mut g,
        &cluster,
        &report("m2", m2_epoch_now, &Tasks::default()),
        now,
    )
    .unwrap();
    let m2_tasks = active(&out.response).unwrap();
    assert_eq!(m2_tasks.len(), 4);
    assert!(m2_tasks.is_disjoint(&kept));
    assert_eq!(g.state(), "Stable");
}

#[test]
fn fencing_leaving_and_expiry() {
    let now = Instant::now();
    let cluster = Cluster::new(&[
        ("input", 2),
        ("app-rep-repartition", 2),
        ("app-store-changelog", 2),
    ]);
    let mut g = StreamsGroup::new();
    let e1 = beat(&mut g, &cluster, &join("m1", "p1"), now)
        .unwrap()
        .response
        .member_epoch;
    let err = beat(
        &mut g,
        &cluster,
        &report("m1", e1 + 5, &Tasks::default()),
        now,
    )
    .err()
    .unwrap();
    assert_eq!(err.0, WireError::FencedMemberEpoch.code());
    let err = beat(
        &mut g,
        &cluster,
        &report("ghost", 3, &Tasks::default()),
        now,
    )
    .err()
    .unwrap();
    assert_eq!(err.0, WireError::UnknownMemberId.code());

    beat(&mut g, &cluster, &join("m2", "p2"), now).unwrap();
    let before = g.group_epoch;
    let mut leave = report("m2", -1, &Tasks::default());
    leave.active_tasks = None;
    leave.standby_tasks = None;
    leave.warmup_tasks = None;
    let out = beat(&mut g, &cluster, &leave, now).unwrap();
    assert_eq!(out.response.member_epoch, -1);
    assert!(!g.members.contains_key("m2"));
    assert_eq!(g.group_epoch, before + 1);

    // m1 stops heartbeating: gone after the session timeout.
    assert!(g.tick(now + Duration::from_secs(10)).is_empty());
    assert_eq!(g.tick(now + Duration::from_secs(46)), ["m1".to_string()]);
    assert_eq!(g.state(), "Empty");
}

#[test]
fn endpoints_and_shutdown_reach_every_member() {
    let now = Instant::now();
    let cluster = Cluster::new(&[
        ("input", 2),
        ("app-rep-repartition", 2),
        ("app-store-changelog", 2),
    ]);
    let mut g = StreamsGroup::new();
    let e1 = beat(&mut g, &cluster, &join("m1", "p1"), now)
        .unwrap()
        .response
        .member_epoch;
    // A member that knows an older endpoint epoch gets every endpoint's partitions.
    let mut req = report("m1", e1, &Tasks::default());
    req.endpoint_information_epoch = 0;
    req.active_tasks = None;
    req.standby_tasks = None;
    req.warmup_tasks = None;
    let out = beat(&mut g, &cluster, &req, now).unwrap();
    let endpoints = out.response.partitions_by_user_endpoint.expect("endpoints");
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0].user_endpoint.host, "p1.local");
    let topics: Vec<(&str, &[i32])> = endpoints[0]
        .active_partitions
        .iter()
        .map(|t| (t.topic.as_str(), t.partitions.as_slice()))
        .collect();
    assert_eq!(
        topics,
        [("app-rep-repartition", &[0, 1][..]), ("input", &[0, 1][..])]
    );
    // One that is up to date does not.
    req.endpoint_information_epoch = out.response.endpoint_information_epoch;
    let out = beat(&mut g, &cluster, &req, now).unwrap();
    assert!(out.response.partitions_by_user_endpoint.is_none());

    let e2 = beat(&mut g, &cluster, &join("m2", "p2"), now)
        .unwrap()
        .response
        .member_epoch;
    let mut down = report("m2", e2, &Tasks::default());
    down.shutdown_application = true;
    down.active_tasks = None;
    down.standby_tasks = None;
    down.warmup_tasks = None;
    beat(&mut g, &cluster, &down, now).unwrap();
    let out = beat(&mut g, &cluster, &req, now).unwrap();
    assert!(out
        .response
        .status
        .iter()
        .flatten()
        .any(|s| s.status_code == status::SHUTDOWN_APPLICATION));
}

#[test]
fn a_newer_topology_replaces_the_group_one_and_an_older_one_is_stale() {
    let now = Instant::now();
    let cluster = Cluster::new(&[
        ("input", 2),
        ("app-rep-repartition", 2),
        ("app-store-changelog", 2),
    ]);
    let mut g = StreamsGroup::new();
    let mut newer = join("m1", "p1");
    newer.topology.as_mut().unwrap().epoch = 2;
    beat(&mut g, &cluster, &newer, now).unwrap();
    let out = beat(&mut g, &cluster, &join("m2", "p2"), now).unwrap();
    assert!(out
        .response
        .status
        .iter()
        .flatten()
        .any(|s| s.status_code == status::STALE_TOPOLOGY));
    assert_eq!(g.topology.as_ref().unwrap().epoch, 2);
}

#[test]
fn describe_shows_the_topology_sized_and_each_members_tasks() {
    let now = Instant::now();
    let cluster = Cluster::new(&[
        ("input", 2),
        ("app-rep-repartition", 2),
        ("app-store-changelog", 2),
    ]);
    let mut g = StreamsGroup::new();
    beat(&mut g, &cluster, &join("m1", "p1"), now).unwrap();
    let d = g.describe("app", i32::MIN);
    assert_eq!(
        (d.group_id.as_str(), d.group_state.as_str()),
        ("app", "Stable")
    );
    assert_eq!(d.group_epoch, g.group_epoch);
    let subs = d.topology.as_ref().unwrap().subtopologies.as_ref().unwrap();
    assert_eq!(subs[1].state_changelog_topics[0].partitions, 2);
    assert_eq!(subs[1].repartition_source_topics[0].partitions, 2);
    let m = &d.members[0];
    assert_eq!((m.member_id.as_str(), m.process_id.as_str()), ("m1", "p1"));
    assert_eq!(m.assignment, m.target_assignment);
    let n: usize = m
        .assignment
        .active_tasks
        .iter()
        .map(|t| t.partitions.len())
        .sum();
    assert_eq!(n, 4);
    assert_eq!(d.assignor_name.as_deref(), Some("sticky"));
}

/// Replays `records` (as the loader would read them back from the log) into a new group.
fn reload(records: &[(Vec<u8>, Option<Vec<u8>>)], now: Instant) -> StreamsGroup {
    let mut g = StreamsGroup::new();
    for (k, v) in records {
        let (group, kind) = records::decode_key(k).unwrap();
        assert_eq!(group, "app");
        let value = v.as_ref().map(|v| records::decode_value(&kind, v).unwrap());
        g.replay(kind, value);
    }
    g.finish_load(now, &StreamsLimits::default());
    g
}

#[test]
fn the_records_written_rebuild_the_group_and_only_changes_are_written() {
    let now = Instant::now();
    let cluster = Cluster::new(&[
        ("input", 4),
        ("app-rep-repartition", 4),
        ("app-store-changelog", 4),
    ]);
    let limits = StreamsLimits::default();
    let mut g = StreamsGroup::new();
    let mut log: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    let e1 = beat(&mut g, &cluster, &join("m1", "p1"), now)
        .unwrap()
        .response
        .member_epoch;
    log.extend(g.take_records("app", &limits));
    assert!(
        g.take_records("app", &limits).is_empty(),
        "nothing changed, nothing written"
    );
    beat(&mut g, &cluster, &join("m2", "p2"), now).unwrap();
    let all = g.members["m1"].assigned.clone();
    beat(&mut g, &cluster, &report("m1", e1, &all), now).unwrap();
    let written = g.take_records("app", &limits);
    // m2 joined (member, current, target), m1's target and current changed, epochs moved.
    assert!(written.len() >= 6, "{}", written.len());
    log.extend(written);

    let mut r = reload(&log, now);
    assert_eq!(r.group_epoch, g.group_epoch);
    assert_eq!(r.assignment_epoch, g.assignment_epoch);
    assert_eq!(r.topology, g.topology);
    assert_eq!(r.target, g.target);
    for (id, m) in &g.members {
        let n = &r.members[id];
        assert_eq!(
            (n.epoch, &n.assigned, &n.pending_revocation),
            (m.epoch, &m.assigned, &m.pending_revocation),
            "{id}"
        );
        assert_eq!(
            (&n.process_id, &n.user_endpoint),
            (&m.process_id, &m.user_endpoint)
        );
    }
    // Every record value the reloaded group would write is what the original holds.
    assert_eq!(r.record_values(&limits), g.record_values(&limits));

    // After the reload m1 carries on: its release is accepted and no epoch moves for nothing.
    let epoch_before = r.group_epoch;
    let kept = r.members["m1"].assigned.clone();
    let e = r.members["m1"].epoch;
    let out = beat(&mut r, &cluster, &report("m1", e, &kept), now).unwrap();
    assert_eq!(r.group_epoch, epoch_before);
    assert_eq!(out.response.member_epoch, r.assignment_epoch);

    // A member leaving is written as tombstones of its three records.
    let mut leave = report("m2", r.members["m2"].epoch, &Tasks::default());
    leave.member_epoch = -1;
    leave.active_tasks = None;
    leave.standby_tasks = None;
    leave.warmup_tasks = None;
    r.take_records("app", &limits);
    beat(&mut r, &cluster, &leave, now).unwrap();
    let written = r.take_records("app", &limits);
    let tombstones: BTreeSet<Kind> = written
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| records::decode_key(k).unwrap().1)
        .collect();
    assert_eq!(
        tombstones,
        BTreeSet::from([
            Kind::Member("m2".into()),
            Kind::Target("m2".into()),
            Kind::Current("m2".into())
        ])
    );
}

#[test]
fn offset_commits_are_checked_against_the_members_epoch() {
    let now = Instant::now();
    let cluster = Cluster::new(&[
        ("input", 2),
        ("app-rep-repartition", 2),
        ("app-store-changelog", 2),
    ]);
    let mut g = StreamsGroup::new();
    let e = beat(&mut g, &cluster, &join("m1", "p1"), now)
        .unwrap()
        .response
        .member_epoch;
    assert_eq!(g.validate_member_epoch("m1", e), Ok(()));
    assert_eq!(
        g.validate_member_epoch("m1", e + 1),
        Err(WireError::FencedMemberEpoch.code())
    );
    assert_eq!(
        g.validate_member_epoch("m1", e - 1),
        Err(WireError::StaleMemberEpoch.code())
    );
    assert_eq!(
        g.validate_member_epoch("ghost", e),
        Err(WireError::UnknownMemberId.code())
    );
}
