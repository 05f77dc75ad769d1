use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::*;
use crate::log::io::OsStorage;

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn topic(name: &str) -> MetadataRecord {
    MetadataRecord::CreateTopic {
        name: name.into(),
        id: Uuid::new_v4(),
        partitions: 3,
        configs: BTreeMap::new(),
        replicas: vec![vec![1, 2, 3]; 3],
    }
}

async fn start(
    root: &std::path::Path,
    id: u64,
    addrs: &BTreeMap<u64, SocketAddr>,
) -> Arc<MetadataStore> {
    let voters = addrs.iter().map(|(i, a)| (*i, a.to_string())).collect();
    let mut config = QuorumConfig::new(id, root.to_path_buf(), addrs[&id], voters);
    config.snapshot_every_entries = 20;
    config.log_entries_kept_after_snapshot = 5;
    let store = MetadataStore::start_replicated(
        root,
        Arc::new(OsStorage),
        config,
        id as i32,
        Duration::from_secs(30),
    )
    .await
    .expect("start");
    Arc::new(store)
}

/// Runs a (blocking) commit off the async workers, as the broker's callers do.
async fn commit(m: &Arc<MetadataStore>, records: Vec<MetadataRecord>) {
    let m = m.clone();
    tokio::task::spawn_blocking(move || m.commit(&records))
        .await
        .expect("join")
        .expect("commit");
}

async fn producer_ids(m: &Arc<MetadataStore>, n: usize) -> Vec<i64> {
    let m = m.clone();
    tokio::task::spawn_blocking(move || {
        (0..n)
            .map(|_| m.allocate_producer_id().expect("id"))
            .collect()
    })
    .await
    .expect("join")
}

/// Three voters share one metadata log: a change made on any of them is visible on all, the
/// cluster id is one, producer-id blocks never overlap, and a voter restarted from its
/// directory (after snapshots purged its log) comes back with the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_voters_share_topics_cluster_id_and_producer_id_blocks() {
    let run = async {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("tmp")).collect();
        let addrs: BTreeMap<u64, SocketAddr> = (1..=3).map(|i| (i, free_addr())).collect();
        let (a, b, c) = tokio::join!(
            start(dirs[0].path(), 1, &addrs),
            start(dirs[1].path(), 2, &addrs),
            start(dirs[2].path(), 3, &addrs)
        );
        let stores = [a, b, c];
        assert!(stores.iter().all(|s| s.cluster_id == stores[0].cluster_id));
        // Commits from every voter, the leader and the followers alike.
        for (i, s) in stores.iter().enumerate() {
            for n in 0..10 {
                commit(s, vec![topic(&format!("t{i}-{n}"))]).await;
                // Read-your-write on the voter that committed.
                assert!(s.topic(&format!("t{i}-{n}")).is_some());
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while stores.iter().any(|s| s.topics().len() != 30) {
            assert!(tokio::time::Instant::now() < deadline, "replicated to all");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let names = |s: &MetadataStore| {
            s.topics()
                .into_iter()
                .map(|t| (t.name, t.id))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&stores[1]), names(&stores[0]));
        assert_eq!(names(&stores[2]), names(&stores[0]));

        // Producer ids from two brokers never collide.
        let (x, y) = tokio::join!(
            producer_ids(&stores[0], 1500),
            producer_ids(&stores[2], 1500)
        );
        let mut all: Vec<i64> = x.iter().chain(&y).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 3000, "no producer id handed out twice");

        // Voter 3 restarts from its directory (its log was purged by snapshots).
        let cluster = stores[0].cluster_id.clone();
        let [s1, s2, s3] = stores;
        drop(s3);
        tokio::time::sleep(Duration::from_millis(300)).await;
        commit(&s1, vec![topic("while-3-was-away")]).await;
        let s3 = start(dirs[2].path(), 3, &addrs).await;
        assert_eq!(s3.cluster_id, cluster);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while s3.topic("while-3-was-away").is_none() || s3.topics().len() != 31 {
            assert!(tokio::time::Instant::now() < deadline, "voter 3 caught up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(names(&s3), names(&s1));
        // Its next producer ids are new ones too.
        let z = producer_ids(&s3, 10).await;
        assert!(z.iter().all(|id| !all.contains(id)), "{z:?}");
        drop((s1, s2, s3));
    };
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("test finished in time");
}

/// A quorum snapshot carries everything the state holds: SCRAM credentials and ACLs survive a
/// snapshot install (a voter that catches up from a snapshot authenticates and authorizes as
/// the others do).
#[test]
fn snapshots_carry_scram_credentials_acls_and_quotas() {
    use crate::security::acl::{op, pattern, permission, resource, AclBinding};
    use crate::security::scram::{self, Mechanism};
    let mut s = State::default();
    let salted = scram::salted_password(Mechanism::Sha512, b"pw", b"salt", 4096);
    let c = scram::credential(Mechanism::Sha512, &salted, b"salt", 4096);
    s.apply(&MetadataRecord::scram_credential(
        "alice",
        Mechanism::Sha512,
        &c,
    ));
    let acl = |name: &str| AclBinding {
        resource_type: resource::TOPIC,
        name: name.into(),
        pattern: pattern::PREFIXED,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: op::READ,
        permission: permission::ALLOW,
    };
    for n in ["b", "a", "c"] {
        s.apply(&MetadataRecord::Acl(acl(n)));
    }
    s.apply(&MetadataRecord::Acl(acl("a")));
    s.apply(&MetadataRecord::RemoveAcl(acl("c")));
    let user = vec![("user".to_string(), Some("alice".to_string()))];
    s.apply(&MetadataRecord::ClientQuota {
        entity: user.clone(),
        key: "producer_byte_rate".into(),
        value: Some(1024.0),
    });
    let bytes = serde_json::to_vec(&Snapshot::of(&s)).expect("encode");
    let back: Snapshot = serde_json::from_slice(&bytes).expect("decode");
    let restored = back.into_state();
    assert_eq!(
        restored
            .scram
            .get(&("alice".to_string(), Mechanism::Sha512.type_id())),
        Some(&c)
    );
    assert_eq!(*restored.acls, vec![acl("a"), acl("b")]);
    assert_eq!(restored.quotas[&user]["producer_byte_rate"], 1024.0);
}
