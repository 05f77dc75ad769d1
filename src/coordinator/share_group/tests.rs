use super::*;

const T: Uuid = Uuid::from_u64_pair(1, 1);
const T2: Uuid = Uuid::from_u64_pair(2, 2);

fn topics(name: &str) -> Option<(Uuid, i32)> {
    match name {
        "t" => Some((T, 4)),
        "t2" => Some((T2, 1)),
        _ => None,
    }
}

const LIMITS: Limits = Limits {
    max_size: 3,
    session_timeout: Duration::from_secs(45),
    heartbeat_interval_ms: 5000,
};

fn join(g: &mut ShareGroup, id: &str, subs: &[&str], now: Instant) -> HeartbeatResponse {
    g.heartbeat(
        "g",
        HeartbeatRequest {
            member_id: id.into(),
            member_epoch: 0,
            rack_id: None,
            subscribed: Some(subs.iter().map(|s| s.to_string()).collect()),
        },
        "client",
        "/127.0.0.1",
        &topics,
        &LIMITS,
        now,
    )
    .expect("join")
}

fn beat(
    g: &mut ShareGroup,
    id: &str,
    epoch: i32,
    now: Instant,
) -> Result<HeartbeatResponse, HeartbeatError> {
    g.heartbeat(
        "g",
        HeartbeatRequest {
            member_id: id.into(),
            member_epoch: epoch,
            rack_id: None,
            subscribed: None,
        },
        "client",
        "/127.0.0.1",
        &topics,
        &LIMITS,
        now,
    )
}

fn count(a: &BTreeMap<Uuid, Vec<i32>>) -> usize {
    a.values().map(Vec::len).sum()
}

#[test]
fn the_first_member_joins_at_epoch_two_with_every_partition() {
    let mut g = ShareGroup::new();
    let now = Instant::now();
    let r = join(&mut g, "a", &["t"], now);
    assert_eq!(r.member_epoch, 2);
    assert_eq!(r.assignment, Some(BTreeMap::from([(T, vec![0, 1, 2, 3])])));
    let recs = g.take_records("g");
    assert_eq!(recs.len(), 3, "member, metadata, current assignment");
    // A plain heartbeat carries no assignment.
    let r = beat(&mut g, "a", 2, now).unwrap();
    assert_eq!((r.member_epoch, r.assignment), (2, None));
}

#[test]
fn a_second_member_splits_the_partitions_and_the_first_follows() {
    let mut g = ShareGroup::new();
    let now = Instant::now();
    join(&mut g, "a", &["t"], now);
    let b = join(&mut g, "b", &["t"], now);
    assert_eq!(b.member_epoch, 3);
    assert_eq!(count(b.assignment.as_ref().unwrap()), 2);
    let a = beat(&mut g, "a", 2, now).unwrap();
    assert_eq!(a.member_epoch, 3);
    let a_parts = a.assignment.unwrap();
    assert_eq!(count(&a_parts), 2);
    let mut all: Vec<i32> = a_parts[&T].clone();
    all.extend(&b.assignment.unwrap()[&T]);
    all.sort_unstable();
    assert_eq!(all, vec![0, 1, 2, 3], "no partition lost or doubled");
}

#[test]
fn members_beyond_the_partitions_share_them() {
    let mut g = ShareGroup::new();
    let now = Instant::now();
    for id in ["a", "b", "c"] {
        join(&mut g, id, &["t2"], now);
    }
    for id in ["a", "b", "c"] {
        let epoch = g.members[id].epoch;
        beat(&mut g, id, epoch, now).unwrap();
        assert_eq!(
            g.members[id].assigned,
            BTreeMap::from([(T2, vec![0])]),
            "{id}"
        );
    }
}

#[test]
fn epochs_are_checked_and_a_lost_response_is_tolerated() {
    let mut g = ShareGroup::new();
    let now = Instant::now();
    join(&mut g, "a", &["t"], now);
    join(&mut g, "b", &["t"], now);
    beat(&mut g, "a", 2, now).unwrap(); // a moves to 3, previous 2
    assert!(
        beat(&mut g, "a", 2, now).is_ok(),
        "the previous epoch is accepted"
    );
    assert_eq!(
        beat(&mut g, "a", 4, now).unwrap_err().0,
        WireError::FencedMemberEpoch.code()
    );
    assert_eq!(
        beat(&mut g, "a", 1, now).unwrap_err().0,
        WireError::FencedMemberEpoch.code()
    );
    assert_eq!(
        beat(&mut g, "zz", 3, now).unwrap_err().0,
        WireError::UnknownMemberId.code()
    );
}

#[test]
fn the_group_size_is_bounded_and_leaving_or_expiring_frees_partitions() {
    let mut g = ShareGroup::new();
    let now = Instant::now();
    for id in ["a", "b", "c"] {
        join(&mut g, id, &["t"], now);
    }
    let full = g
        .heartbeat(
            "g",
            HeartbeatRequest {
                member_id: "d".into(),
                member_epoch: 0,
                rack_id: None,
                subscribed: Some(vec!["t".into()]),
            },
            "c",
            "/h",
            &topics,
            &LIMITS,
            now,
        )
        .unwrap_err();
    assert_eq!(full.0, WireError::GroupMaxSizeReached.code());
    let left = beat(&mut g, "c", -1, now).unwrap();
    assert_eq!(left.member_epoch, -1);
    g.take_records("g");
    assert_eq!(
        g.expire(now + Duration::from_secs(46)),
        vec!["a".to_string(), "b".to_string()]
    );
    assert_eq!(g.state(), "Empty");
    let recs = g.take_records("g");
    assert!(
        recs.iter().filter(|(_, v)| v.is_none()).count() == 4,
        "two tombstones per member"
    );
}

#[test]
fn records_replay_to_the_same_group() {
    let mut g = ShareGroup::new();
    let now = Instant::now();
    join(&mut g, "a", &["t", "t2"], now);
    join(&mut g, "b", &["t"], now);
    let mut recs = g.take_records("g");
    beat(&mut g, "a", 2, now).unwrap();
    recs.extend(g.take_records("g"));
    let mut back = ShareGroup::new();
    for (k, v) in &recs {
        let (_, kind) = records::decode_key(k).unwrap().unwrap();
        let value = v.as_ref().map(|v| records::decode_value(&kind, v).unwrap());
        back.replay(kind, value, now, LIMITS.session_timeout);
    }
    assert_eq!(back.epoch, g.epoch);
    for id in ["a", "b"] {
        assert_eq!(back.members[id].epoch, g.members[id].epoch);
        assert_eq!(back.members[id].assigned, g.members[id].assigned);
        assert_eq!(back.members[id].subscribed, g.members[id].subscribed);
    }
}

#[test]
fn the_assignor_is_balanced_and_sticky() {
    let now = Instant::now();
    let member = |subs: &[&str]| ShareMember {
        epoch: 1,
        previous_epoch: 0,
        rack_id: None,
        client_id: String::new(),
        client_host: String::new(),
        subscribed: subs.iter().map(|s| s.to_string()).collect(),
        assigned: BTreeMap::new(),
        deadline: now,
    };
    let mut members = BTreeMap::new();
    members.insert("a".to_string(), member(&["t"]));
    members.insert("b".to_string(), member(&["t"]));
    members.insert("c".to_string(), member(&["t"]));
    let first = simple_assign(&members, &BTreeMap::new(), &topics);
    let counts: Vec<usize> = first.values().map(count).collect();
    assert_eq!(counts, vec![2, 1, 1]);
    // c leaves: a and b keep what they had and share c's partition.
    members.remove("c");
    let second = simple_assign(&members, &first, &topics);
    for id in ["a", "b"] {
        for p in &first[id][&T] {
            if second[id][&T].len() <= 2 && first[id][&T].len() <= 2 {
                assert!(second[id][&T].contains(p), "{id} kept {p}");
            }
        }
        assert_eq!(count(&second[id]), 2);
    }
}
