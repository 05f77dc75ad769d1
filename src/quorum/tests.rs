//! Quorums on loopback: election, replication in order, restart from disk, fail-over,
//! catch-up by log and by snapshot, hostile bytes on the RPC port. Every wait has a deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::log::io::OsStorage;

/// Records what it is given; its snapshot is the JSON of that record.
#[derive(Default)]
struct Recorder {
    applied: Mutex<Vec<(u64, Vec<u8>)>>,
    installs: AtomicUsize,
}

impl Applier for Recorder {
    fn apply(&self, index: u64, payload: &[u8]) {
        let mut applied = self.applied.lock();
        assert!(
            applied.last().is_none_or(|(last, _)| *last < index),
            "index {index} applied out of order"
        );
        applied.push((index, payload.to_vec()));
    }
    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(&*self.applied.lock()).unwrap_or_default()
    }
    fn install(&self, snapshot: &[u8]) -> Result<(), String> {
        let state = serde_json::from_slice(snapshot).map_err(|e| e.to_string())?;
        *self.applied.lock() = state;
        self.installs.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}

impl Recorder {
    fn applied(&self) -> Vec<(u64, Vec<u8>)> {
        self.applied.lock().clone()
    }
    fn payloads(&self) -> Vec<Vec<u8>> {
        self.applied.lock().iter().map(|(_, p)| p.clone()).collect()
    }
}

/// Runs a test body with an overall deadline.
async fn bounded<F: Future<Output = ()>>(limit: Duration, body: F) {
    tokio::time::timeout(limit, body)
        .await
        .expect("the test did not finish in time");
}

/// Polls `cond` every 20 ms until it holds; panics naming `what` after `limit`.
async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Addresses with ports free right now (the listeners are closed again on return).
fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr"))
        .collect()
}

fn payload(n: usize) -> Vec<u8> {
    format!("record-{n}").into_bytes()
}

/// Voters on loopback, each with its own directory that survives its restarts.
struct Cluster {
    _dirs: Vec<tempfile::TempDir>,
    configs: BTreeMap<u64, QuorumConfig>,
    appliers: BTreeMap<u64, Arc<Recorder>>,
    running: BTreeMap<u64, Quorum>,
}

impl Cluster {
    async fn start(voters: u64, tweak: impl Fn(&mut QuorumConfig)) -> Cluster {
        let addrs = free_addrs(voters as usize);
        let ids: Vec<u64> = (1..=voters).collect();
        let map: BTreeMap<u64, String> = ids
            .iter()
            .zip(&addrs)
            .map(|(id, a)| (*id, a.to_string()))
            .collect();
        let mut dirs = Vec::new();
        let mut configs = BTreeMap::new();
        for (id, addr) in ids.iter().zip(&addrs) {
            let dir = tempfile::tempdir().expect("tmp");
            let mut config = QuorumConfig::new(*id, dir.path().join("quorum"), *addr, map.clone());
            tweak(&mut config);
            configs.insert(*id, config);
            dirs.push(dir);
        }
        let mut cluster = Cluster {
            _dirs: dirs,
            configs,
            appliers: BTreeMap::new(),
            running: BTreeMap::new(),
        };
        // All at once, highest id first: the bootstrapping node comes last.
        let started = futures::future::join_all(ids.iter().rev().map(|id| {
            let config = cluster.configs[id].clone();
            async move {
                let applier = Arc::new(Recorder::default());
                let q = Quorum::start(config, applier.clone(), Arc::new(OsStorage)).await;
                (q.expect("start"), applier)
            }
        }))
        .await;
        for (q, applier) in started {
            cluster.appliers.insert(q.node_id(), applier);
            cluster.running.insert(q.node_id(), q);
        }
        cluster
    }

    /// (Re)starts a stopped node from its directory, with an empty applier.
    async fn restart(&mut self, id: u64) {
        let applier = Arc::new(Recorder::default());
        let q = Quorum::start(
            self.configs[&id].clone(),
            applier.clone(),
            Arc::new(OsStorage),
        )
        .await
        .expect("restart");
        self.appliers.insert(id, applier);
        self.running.insert(id, q);
    }

    async fn stop(&mut self, id: u64) {
        if let Some(q) = self.running.remove(&id) {
            q.shutdown().await;
        }
    }

    async fn stop_all(&mut self) {
        let ids: Vec<u64> = self.running.keys().copied().collect();
        for id in ids {
            self.stop(id).await;
        }
    }

    fn quorum(&self, id: u64) -> &Quorum {
        &self.running[&id]
    }

    fn applier(&self, id: u64) -> &Recorder {
        &self.appliers[&id]
    }

    /// Waits until every running node names the same running leader, which knows it leads.
    async fn agreed_leader(&self, limit: Duration) -> u64 {
        let mut leader = 0;
        wait_until("an agreed leader", limit, || {
            let seen: Vec<Option<u64>> = self.running.values().map(|q| q.leader()).collect();
            match seen[0] {
                Some(l) if seen.iter().all(|s| *s == Some(l)) => {
                    leader = l;
                    self.running.get(&l).is_some_and(|q| q.is_leader())
                }
                _ => false,
            }
        })
        .await;
        leader
    }

    /// Waits until every running node's applier holds exactly `want`.
    async fn all_applied(&self, want: &[Vec<u8>], limit: Duration) {
        wait_until("every voter to apply the same payloads", limit, || {
            self.running
                .keys()
                .all(|id| self.applier(*id).payloads() == want)
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_voter_elects_itself_and_restarts_from_disk() {
    bounded(Duration::from_secs(60), async {
        let mut cluster = Cluster::start(1, |c| {
            // Snapshots and purges happen along the way: a restart is snapshot + replay.
            c.snapshot_every_entries = 30;
            c.log_entries_kept_after_snapshot = 5;
        })
        .await;
        assert_eq!(cluster.agreed_leader(Duration::from_secs(10)).await, 1);
        let q = cluster.quorum(1);
        assert!(q.is_leader());
        let mut indexes = Vec::new();
        for n in 0..100 {
            indexes.push(q.propose(payload(n)).await.expect("propose"));
        }
        assert!(indexes.windows(2).all(|w| w[0] < w[1]), "{indexes:?}");
        let want: Vec<(u64, Vec<u8>)> = indexes
            .iter()
            .enumerate()
            .map(|(n, i)| (*i, payload(n)))
            .collect();
        assert_eq!(cluster.applier(1).applied(), want, "applied in order, once");
        let status = q.status();
        assert_eq!(status.role, Role::Leader);
        assert_eq!(status.commit_index, indexes.last().copied());
        wait_until("a snapshot", Duration::from_secs(10), || {
            q.status().snapshot_index.is_some()
        })
        .await;
        let last = *indexes.last().expect("some");

        cluster.stop(1).await;
        cluster.restart(1).await;
        wait_until(
            "the state back after restart",
            Duration::from_secs(20),
            || cluster.applier(1).applied() == want,
        )
        .await;
        assert_eq!(
            cluster.applier(1).installs.load(Ordering::Acquire),
            1,
            "the snapshot was loaded, the rest replayed"
        );
        cluster.agreed_leader(Duration::from_secs(10)).await;
        let next = cluster
            .quorum(1)
            .propose(payload(100))
            .await
            .expect("propose after restart");
        assert!(next > last, "{next} after {last}");
        assert_eq!(
            cluster.applier(1).applied().last(),
            Some(&(next, payload(100)))
        );
        cluster.stop_all().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_replicate_fail_over_and_catch_up() {
    bounded(Duration::from_secs(90), async {
        let mut cluster = Cluster::start(3, |_| {}).await;
        let leader = cluster.agreed_leader(Duration::from_secs(15)).await;
        let follower = *cluster
            .running
            .keys()
            .find(|id| **id != leader)
            .expect("one");
        match cluster.quorum(follower).propose(b"x".to_vec()).await {
            Err(QuorumError::NotLeader {
                leader: Some((id, addr)),
            }) => {
                assert_eq!(id, leader);
                assert_eq!(addr, cluster.configs[&leader].listen.to_string());
            }
            other => panic!("a follower's propose: {other:?}"),
        }

        // propose_in_term: never forwarded, and only in the term it names.
        let term = cluster.quorum(leader).term();
        assert!(matches!(
            cluster
                .quorum(follower)
                .propose_in_term(b"x".to_vec(), term)
                .await,
            Err(QuorumError::NotLeader { leader: None })
        ));
        assert!(matches!(
            cluster
                .quorum(leader)
                .propose_in_term(b"x".to_vec(), term + 1)
                .await,
            Err(QuorumError::NotLeader { leader: None })
        ));
        let index = cluster
            .quorum(leader)
            .propose_in_term(b"in-term".to_vec(), term)
            .await
            .expect("the leader of the term");
        assert!(cluster
            .applier(leader)
            .applied()
            .iter()
            .any(|(i, p)| *i == index && p.as_slice() == b"in-term"));

        // From a follower, propose_anywhere forwards to the leader and returns once the entry
        // is applied on the follower too.
        let index = cluster
            .quorum(follower)
            .propose_anywhere(b"forwarded".to_vec(), Duration::from_secs(10))
            .await
            .expect("forwarded");
        assert!(
            cluster
                .applier(follower)
                .applied()
                .iter()
                .any(|(i, p)| *i == index && p.as_slice() == b"forwarded"),
            "applied on the follower when propose_anywhere returns"
        );

        let mut want = vec![b"in-term".to_vec(), b"forwarded".to_vec()];
        for n in 0..50 {
            cluster
                .quorum(leader)
                .propose(payload(n))
                .await
                .expect("propose");
            want.push(payload(n));
        }
        cluster.all_applied(&want, Duration::from_secs(15)).await;
        let applied = cluster.applier(leader).applied();
        for id in cluster.running.keys() {
            assert_eq!(
                cluster.applier(*id).applied(),
                applied,
                "same indexes on {id}"
            );
        }
        let status = cluster.quorum(leader).status();
        assert_eq!(status.voters.len(), 3);
        let matched = status.matched.expect("the leader reports replication");
        assert_eq!(
            matched.len(),
            3,
            "every voter, the leader included: {matched:?}"
        );
        assert!(matched.values().all(|m| m.is_some()), "{matched:?}");

        // The leader goes away: the other two elect one of themselves.
        let started = Instant::now();
        cluster.stop(leader).await;
        let new_leader = cluster.agreed_leader(Duration::from_secs(15)).await;
        assert_ne!(new_leader, leader);
        let failover = started.elapsed();
        assert!(
            failover < Duration::from_secs(10),
            "fail-over took {failover:?}"
        );
        for n in 50..70 {
            cluster
                .quorum(new_leader)
                .propose(payload(n))
                .await
                .expect("propose");
            want.push(payload(n));
        }
        cluster.all_applied(&want, Duration::from_secs(15)).await;

        // The old leader comes back from its directory and catches up.
        cluster.restart(leader).await;
        cluster.all_applied(&want, Duration::from_secs(20)).await;
        assert_eq!(
            cluster.applier(leader).applied(),
            cluster.applier(new_leader).applied()
        );
        cluster.stop_all().await;
        eprintln!("fail-over took {failover:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_that_missed_a_purge_catches_up_by_snapshot() {
    bounded(Duration::from_secs(90), async {
        let mut cluster = Cluster::start(3, |c| {
            c.snapshot_every_entries = 10;
            c.log_entries_kept_after_snapshot = 0;
        })
        .await;
        let leader = cluster.agreed_leader(Duration::from_secs(15)).await;
        let mut want = Vec::new();
        for n in 0..5 {
            cluster
                .quorum(leader)
                .propose(payload(n))
                .await
                .expect("propose");
            want.push(payload(n));
        }
        cluster.all_applied(&want, Duration::from_secs(15)).await;
        let away = *cluster
            .running
            .keys()
            .find(|id| **id != leader)
            .expect("one");
        let away_last = cluster
            .quorum(away)
            .status()
            .last_log_index
            .expect("has a log");
        cluster.stop(away).await;

        for n in 5..45 {
            cluster
                .quorum(leader)
                .propose(payload(n))
                .await
                .expect("propose");
            want.push(payload(n));
        }
        cluster.all_applied(&want, Duration::from_secs(15)).await;
        let q = cluster.quorum(leader);
        wait_until(
            "the leader to purge past the stopped voter's log",
            Duration::from_secs(15),
            || q.status().purged_index.is_some_and(|p| p > away_last),
        )
        .await;

        cluster.restart(away).await;
        cluster.all_applied(&want, Duration::from_secs(20)).await;
        assert!(
            cluster.applier(away).installs.load(Ordering::Acquire) >= 1,
            "caught up through InstallSnapshot"
        );
        // And it follows the log again afterwards.
        cluster
            .quorum(leader)
            .propose(payload(45))
            .await
            .expect("propose");
        want.push(payload(45));
        cluster.all_applied(&want, Duration::from_secs(15)).await;
        cluster.stop_all().await;
    })
    .await;
}

/// Sends `bytes` on a new connection; returns whether the server closed it within 5 s.
async fn closed_after(addr: SocketAddr, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    // The server may close before taking everything: a failed write also counts.
    if s.write_all(bytes).await.is_err() {
        return true;
    }
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_rpc_port_does_not_hurt() {
    bounded(Duration::from_secs(90), async {
        let cluster = Cluster::start(3, |_| {}).await;
        let leader = cluster.agreed_leader(Duration::from_secs(15)).await;
        // A fixed pseudo-random byte stream (xorshift), so a failure can be replayed.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let random: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut unknown_kind = 5u32.to_be_bytes().to_vec();
        unknown_kind.extend_from_slice(&[9, b'{', b'}', b' ', b' ']);
        let mut bad_json = 6u32.to_be_bytes().to_vec();
        bad_json.extend_from_slice(&[network::KIND_VOTE, b'{', b'"', b'x', b'"', b':']);
        let mut far_snapshot = Vec::new();
        {
            let req = openraft::raft::InstallSnapshotRequest::<TypeConfig> {
                vote: openraft::Vote::new_committed(99, 1),
                meta: openraft::SnapshotMeta::default(),
                offset: u64::MAX - 1,
                data: vec![1, 2, 3],
                done: false,
            };
            let body = serde_json::to_vec(&req).expect("json");
            far_snapshot.extend_from_slice(&(body.len() as u32 + 1).to_be_bytes());
            far_snapshot.push(network::KIND_SNAPSHOT);
            far_snapshot.extend_from_slice(&body);
        }
        for id in cluster.running.keys() {
            let addr = cluster.quorum(*id).local_addr();
            assert!(closed_after(addr, &random).await, "random bytes to {id}");
            assert!(
                closed_after(addr, &u32::MAX.to_be_bytes()).await,
                "huge length to {id}"
            );
            assert!(
                closed_after(addr, &0u32.to_be_bytes()).await,
                "empty frame to {id}"
            );
            assert!(
                closed_after(addr, &unknown_kind).await,
                "unknown kind to {id}"
            );
            assert!(closed_after(addr, &bad_json).await, "bad JSON to {id}");
            assert!(
                closed_after(addr, &far_snapshot).await,
                "far snapshot chunk to {id}"
            );
            // A big frame that never arrives: the connection goes, nothing was allocated
            // beyond what arrived.
            let mut partial = (60u32 << 20).to_be_bytes().to_vec();
            partial.extend_from_slice(&[network::KIND_APPEND; 100]);
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.write_all(&partial).await.expect("write");
            drop(s);
        }
        let mut want = Vec::new();
        for n in 0..10 {
            cluster
                .quorum(leader)
                .propose(payload(n))
                .await
                .expect("propose");
            want.push(payload(n));
        }
        cluster.all_applied(&want, Duration::from_secs(15)).await;
        assert_eq!(cluster.agreed_leader(Duration::from_secs(5)).await, leader);
        let mut cluster = cluster;
        cluster.stop_all().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_stops_the_quorum_until_restart() {
    bounded(Duration::from_secs(60), async {
        let dir = tempfile::tempdir().expect("tmp");
        let addr = free_addrs(1)[0];
        let voters = BTreeMap::from([(1, addr.to_string())]);
        let config = QuorumConfig::new(1, dir.path().to_path_buf(), addr, voters);
        let storage = crate::log::io::FaultyStorage::default();
        let applier = Arc::new(Recorder::default());
        let q = Quorum::start(config.clone(), applier.clone(), Arc::new(storage.clone()))
            .await
            .expect("start");
        q.wait_for_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        let mut want = Vec::new();
        for n in 0..5 {
            q.propose(payload(n)).await.expect("propose");
            want.push(payload(n));
        }
        storage.faults.fail_sync.store(true, Ordering::Release);
        let failed = q.propose(payload(5)).await;
        assert!(matches!(failed, Err(QuorumError::Stopped(_))), "{failed:?}");
        assert!(q.status().storage_poisoned);
        // The disk recovers, but only a restart (replaying what is durable) clears the poison.
        storage.faults.fail_sync.store(false, Ordering::Release);
        assert!(q.propose(payload(6)).await.is_err());
        q.shutdown().await;

        let applier = Arc::new(Recorder::default());
        let q = Quorum::start(config, applier.clone(), Arc::new(storage))
            .await
            .expect("restart");
        wait_until(
            "the acknowledged payloads back",
            Duration::from_secs(20),
            || applier.payloads().starts_with(&want),
        )
        .await;
        q.wait_for_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        q.propose(payload(7)).await.expect("propose after restart");
        assert_eq!(applier.payloads().last(), Some(&payload(7)));
        q.shutdown().await;
    })
    .await;
}

#[test]
fn voters_parse_like_kafka() {
    let v = parse_voters("1@localhost:9093, 2@[::1]:9094,3@127.0.0.3:9095").expect("parse");
    assert_eq!(v.len(), 3);
    assert_eq!(v[&2], "[::1]:9094");
    for bad in [
        "",
        "1@host",
        "x@host:1",
        "1@:9093",
        "1@h:1,1@h:2",
        "-1@h:1",
        "4294967296@h:1",
    ] {
        assert!(
            matches!(parse_voters(bad), Err(QuorumError::Config(_))),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn a_node_that_is_not_a_voter_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let voters = parse_voters("1@127.0.0.1:1").expect("parse");
    let config = QuorumConfig::new(
        2,
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse().expect("addr"),
        voters,
    );
    let started = Quorum::start(config, Arc::new(Recorder::default()), Arc::new(OsStorage)).await;
    assert!(matches!(started, Err(QuorumError::Config(_))));
}

#[test]
fn payloads_round_trip_as_hex() {
    let p = Payload(vec![0, 1, 0xab, 0xff]);
    let json = serde_json::to_string(&p).expect("json");
    assert_eq!(json, "\"0001abff\"");
    assert_eq!(serde_json::from_str::<Payload>(&json).expect("back"), p);
    for bad in ["\"abc\"", "\"0G\"", "\"AB\"", "12"] {
        assert!(serde_json::from_str::<Payload>(bad).is_err(), "{bad}");
    }
}
