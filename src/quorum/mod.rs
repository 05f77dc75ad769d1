//! The cluster quorum: an opaque log of byte payloads replicated across a fixed set of voters
//! with Raft (the `openraft` crate, 0.9), the role KRaft's controller quorum plays in Kafka.
//! In a multi-node cluster (other voters in `controller.quorum.voters`) it carries the metadata log; see
//! [`crate::cluster`].
//!
//! What it promises:
//! - [`Quorum::propose`] returns the payload's log index once a majority of voters has it
//!   fsynced and this node (the leader) has handed it to its [`Applier`]. Every voter's applier
//!   receives the same payloads in the same index order, each exactly once per process lifetime
//!   after the snapshot it started from (or installed).
//! - Nothing is acknowledged before it is durable: a log append is fsynced before openraft is
//!   told it is flushed, votes and snapshots are written with
//!   [`Storage::write_file_synced`](crate::log::io::Storage::write_file_synced). A failed fsync
//!   poisons the log store (every later write fails until restart), which stops this node's
//!   Raft; see [`log_store`].
//! - Every file access goes through the [`Storage`] seam, so tests inject disk faults.
//!
//! Layout: `log_store.rs` (the durable Raft log and vote, `<dir>/raft.log`, `vote.json`,
//! `purged.json`), `state_machine.rs` (calls the [`Applier`], snapshots in
//! `<dir>/snapshot.bin`), `network.rs` (the voter-to-voter RPC over TCP: server and clients),
//! this file (type config, configuration, bootstrapping, the [`Quorum`] handle). On-disk
//! formats are in docs/FORMAT.md.
//!
//! Bootstrapping: a node whose directory holds no Raft state and whose id is the lowest among
//! the voters initializes the membership with all voters; the others wait to hear from it. A
//! node with state never re-initializes. So all nodes may start at once, in any order.
//!
//! Known gaps: the voter set is fixed (no membership changes, no observers: a node must be one
//! of the voters); a follower does not forward proposals ([`QuorumError::NotLeader`] names the
//! leader); the commit index is not persisted, so after a restart the applier catches up from
//! the snapshot as soon as this node learns the commit index from a leader (or becomes one).

mod log_store;
mod network;
mod state_machine;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{Raft, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::log::io::Storage;

pub use log_store::LogStoreError;

openraft::declare_raft_types!(
    /// The Raft types of the quorum: node ids are Kafka's `node.id`, entries carry opaque
    /// payloads, and the state machine answers with the applied index.
    pub TypeConfig:
        D = Payload,
        R = u64,
        NodeId = u64,
        Node = Voter,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A Raft log entry of the quorum.
pub type Entry = openraft::Entry<TypeConfig>;

/// A voter as the membership records it: the address of its quorum RPC listener.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voter {
    /// `host:port`, as in Kafka's `controller.quorum.voters`.
    pub addr: String,
}

/// An application payload. Serialized as a lowercase hex string (half the size of a JSON
/// array of numbers, and cheap to check).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Payload(pub Vec<u8>);

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} bytes)", self.0.len())
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(self.0.len() * 2);
        for b in &self.0 {
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
        s.serialize_str(&out)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HexVisitor;
        impl serde::de::Visitor<'_> for HexVisitor {
            type Value = Payload;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a lowercase hex string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Payload, E> {
                decode_hex(v.as_bytes())
                    .map(Payload)
                    .ok_or_else(|| E::custom("payload is not lowercase hex of whole bytes"))
            }
        }
        d.deserialize_str(HexVisitor)
    }
}

fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|p| Some((nibble(p[0])? << 4) | nibble(p[1])?))
        .collect()
}

/// What the application implements to receive committed payloads. Called on an async worker
/// of the Raft state machine task, one call at a time: keep each call short.
pub trait Applier: Send + Sync + 'static {
    /// A committed payload, in log order, exactly once per process lifetime after the last
    /// snapshot installed or loaded. `index` strictly increases (indexes of Raft's own
    /// entries, such as a new leader's blank entry, are skipped).
    fn apply(&self, index: u64, payload: &[u8]);
    /// The whole applied state, for a snapshot. Called between two `apply` calls, so the
    /// state is exactly that of the entries applied so far.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the whole state with a snapshot's (one this or another voter's `snapshot`
    /// produced). An error stops this node's Raft; the snapshot is not kept.
    fn install(&self, snapshot: &[u8]) -> Result<(), String>;
}

/// At most this many voters (Raft's cost grows with each; KRaft quorums have 3 or 5).
pub const VOTERS_MAX: usize = 31;
/// Largest payload [`Quorum::propose`] accepts by default.
pub const PAYLOAD_BYTES_MAX_DEFAULT: usize = 1 << 20;
/// Largest payload any configuration may accept: a hex-encoded entry must fit a log record
/// ([`log_store::RECORD_BODY_BYTES_MAX`]) and an RPC frame.
pub const PAYLOAD_BYTES_MAX_LIMIT: usize = 8 << 20;

/// How to run one quorum member.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    /// This node's id (Kafka's `node.id`); must be one of `voters`.
    pub node_id: u64,
    /// Directory of the Raft log, vote and snapshot (created if missing).
    pub dir: PathBuf,
    /// Where the quorum RPC server listens; port 0 picks a free port (see
    /// [`Quorum::local_addr`]).
    pub listen: SocketAddr,
    /// The voters: id -> `host:port` of their RPC listener (`controller.quorum.voters`, see
    /// [`parse_voters`]).
    pub voters: BTreeMap<u64, String>,
    /// A leader sends heartbeats this often. It is also openraft's deadline for one
    /// AppendEntries round trip, which includes the follower's fsync.
    pub heartbeat_interval_ms: u64,
    /// A follower that hears no leader for a random time in
    /// [`election_timeout_min_ms`, `election_timeout_max_ms`) starts an election.
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Deadline for opening a connection to another voter.
    pub connect_timeout_ms: u64,
    /// Deadline for sending one snapshot chunk and, for the last one, installing it.
    pub install_snapshot_timeout_ms: u64,
    /// A snapshot is taken every this many applied entries, after which the log before it is
    /// purged (keeping `log_entries_kept_after_snapshot` of them for slow followers).
    pub snapshot_every_entries: u64,
    pub log_entries_kept_after_snapshot: u64,
    /// [`Quorum::propose`] refuses larger payloads (at most [`PAYLOAD_BYTES_MAX_LIMIT`]).
    pub payload_bytes_max: usize,
}

impl QuorumConfig {
    /// A configuration with the default timeouts: heartbeat 200 ms, election 1000-2000 ms
    /// (Kafka's `controller.quorum.election.timeout.ms` is 1000), connect 500 ms, snapshot
    /// chunk 10 s; a snapshot every 5000 entries keeping 1000.
    pub fn new(
        node_id: u64,
        dir: PathBuf,
        listen: SocketAddr,
        voters: BTreeMap<u64, String>,
    ) -> Self {
        QuorumConfig {
            node_id,
            dir,
            listen,
            voters,
            heartbeat_interval_ms: 200,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            connect_timeout_ms: 500,
            install_snapshot_timeout_ms: 10_000,
            snapshot_every_entries: 5000,
            log_entries_kept_after_snapshot: 1000,
            payload_bytes_max: PAYLOAD_BYTES_MAX_DEFAULT,
        }
    }

    fn validate(&self) -> Result<(), QuorumError> {
        let bad = |why: String| Err(QuorumError::Config(why));
        if self.voters.is_empty() || self.voters.len() > VOTERS_MAX {
            return bad(format!(
                "{} voters; between 1 and {VOTERS_MAX} are allowed",
                self.voters.len()
            ));
        }
        if !self.voters.contains_key(&self.node_id) {
            return bad(format!("node {} is not one of the voters", self.node_id));
        }
        if let Some((id, _)) = self.voters.iter().find(|(_, a)| a.trim().is_empty()) {
            return bad(format!("voter {id} has no address"));
        }
        if self.heartbeat_interval_ms == 0
            || self.election_timeout_min_ms <= self.heartbeat_interval_ms
            || self.election_timeout_max_ms <= self.election_timeout_min_ms
        {
            return bad("need 0 < heartbeat < election timeout min < max".into());
        }
        if self.connect_timeout_ms == 0 || self.install_snapshot_timeout_ms == 0 {
            return bad("timeouts must be positive".into());
        }
        if self.snapshot_every_entries == 0 {
            return bad("snapshot_every_entries must be positive".into());
        }
        if self.payload_bytes_max == 0 || self.payload_bytes_max > PAYLOAD_BYTES_MAX_LIMIT {
            return bad(format!(
                "payload_bytes_max must be in 1..={PAYLOAD_BYTES_MAX_LIMIT}"
            ));
        }
        Ok(())
    }

    fn raft_config(&self) -> Result<openraft::Config, QuorumError> {
        let config = openraft::Config {
            cluster_name: "strom-quorum".into(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            install_snapshot_timeout: self.install_snapshot_timeout_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every_entries),
            max_in_snapshot_log_to_keep: self.log_entries_kept_after_snapshot,
            // Chunks of 1 MiB stay far below the RPC frame limit once JSON-encoded.
            snapshot_max_chunk_size: 1 << 20,
            max_payload_entries: 300,
            ..Default::default()
        };
        config
            .validate()
            .map_err(|e| QuorumError::Config(e.to_string()))
    }
}

/// Parses Kafka's `controller.quorum.voters`: `1@host:9093,2@[::1]:9093,...`.
pub fn parse_voters(text: &str) -> Result<BTreeMap<u64, String>, QuorumError> {
    let mut voters = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || QuorumError::Config(format!("bad voter {part:?}: expected id@host:port"));
        let (id, addr) = part.split_once('@').ok_or_else(bad)?;
        let id: u64 = id.parse().map_err(|_| bad())?;
        // Kafka's node ids are non-negative Java ints.
        if id > i32::MAX as u64 {
            return Err(bad());
        }
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad());
        }
        if voters.insert(id, addr.to_string()).is_some() {
            return Err(QuorumError::Config(format!("voter {id} listed twice")));
        }
    }
    if voters.is_empty() {
        return Err(QuorumError::Config("no voters".into()));
    }
    Ok(voters)
}

#[derive(Debug, Error)]
pub enum QuorumError {
    /// This node is not the leader; `leader` is the one it knows of, with its address.
    #[error("not the quorum leader; the leader is {leader:?}")]
    NotLeader { leader: Option<(u64, String)> },
    #[error("payload of {size_bytes} bytes is over the limit of {limit_bytes}")]
    PayloadTooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error("no quorum leader known after {timeout_ms} ms")]
    NoLeader { timeout_ms: u64 },
    #[error("invalid quorum configuration: {0}")]
    Config(String),
    #[error("quorum storage: {0}")]
    Storage(#[from] LogStoreError),
    #[error("quorum I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Raft stopped on this node (shut down, or a storage error such as a failed fsync).
    #[error("the quorum has stopped on this node: {0}")]
    Stopped(String),
}

/// The role of this node, as Raft sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Candidate,
    Follower,
    Learner,
    Shutdown,
}

/// A point-in-time view of this node's Raft state, for DescribeQuorum and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    pub node_id: u64,
    pub role: Role,
    /// Raft's term (Kafka's leader epoch).
    pub term: u64,
    pub leader: Option<u64>,
    pub last_log_index: Option<u64>,
    /// The highest index this node knows to be committed (Kafka's high watermark).
    pub commit_index: Option<u64>,
    pub last_applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    /// The voters of the effective membership: id -> address.
    pub voters: BTreeMap<u64, String>,
    /// When this node leads: for each voter, the highest index known to match the leader's
    /// log (None: nothing matched yet).
    pub matched: Option<BTreeMap<u64, Option<u64>>>,
    /// When this node leads: how long since a quorum last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
    /// The log store refused writes after a failed fsync; a restart is needed.
    pub storage_poisoned: bool,
}

/// The quorum as its leader sees it (Kafka's DescribeQuorum): any voter can ask the leader
/// for it ([`Quorum::leader_view`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaderView {
    pub leader: u64,
    /// Raft's term (Kafka's leader epoch).
    pub term: u64,
    /// The leader's last log index.
    pub last_log_index: Option<u64>,
    /// The highest index applied, so committed (Kafka's high watermark).
    pub last_applied_index: Option<u64>,
    /// Each voter's highest index known to match the leader's log.
    pub matched: BTreeMap<u64, Option<u64>>,
    /// Milliseconds since a quorum last acknowledged the leader.
    pub millis_since_quorum_ack: Option<u64>,
}

impl LeaderView {
    pub(crate) fn of(m: &openraft::RaftMetrics<u64, Voter>) -> LeaderView {
        LeaderView {
            leader: m.id,
            term: m.current_term,
            last_log_index: m.last_log_index,
            last_applied_index: m.last_applied.map(|l| l.index),
            matched: m
                .replication
                .as_ref()
                .map(|r| r.iter().map(|(id, l)| (*id, l.map(|l| l.index))).collect())
                .unwrap_or_default(),
            millis_since_quorum_ack: m.millis_since_quorum_ack,
        }
    }
}

/// Brokers' liveness as the quorum leader hears it: node -> when its last heartbeat arrived,
/// and when a broker's heartbeat connection closed — or its quorum port refused a connection —
/// without a heartbeat since (its process ended: the kernel closed its sockets). Kept in memory only (like Kafka's controller, a new
/// leader starts with nobody heard and gives registered brokers a session timeout of grace).
#[derive(Debug, Default)]
pub struct Heartbeats {
    heard: std::sync::Mutex<std::collections::HashMap<i32, std::time::Instant>>,
    gone: std::sync::Mutex<std::collections::HashMap<i32, std::time::Instant>>,
}

impl Heartbeats {
    /// Records a heartbeat of `node` now.
    pub fn record(&self, node: i32) {
        let now = std::time::Instant::now();
        self.heard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node, now);
        self.gone
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&node);
    }

    /// `node`'s heartbeat connection closed (EOF or reset, not an idle timeout).
    pub fn disconnected(&self, node: i32) {
        tracing::debug!(node, "broker's heartbeat connection closed");
        self.gone
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node, std::time::Instant::now());
    }

    /// Every node heard from, with when.
    pub fn snapshot(&self) -> std::collections::HashMap<i32, std::time::Instant> {
        self.heard.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Nodes whose heartbeat connection closed and that have not heartbeated since, with when.
    pub fn gone(&self) -> std::collections::HashMap<i32, std::time::Instant> {
        self.gone.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A running quorum member: its Raft node and RPC server.
pub struct Quorum {
    node_id: u64,
    raft: Raft<TypeConfig>,
    log: log_store::LogStore,
    server: network::RpcServer,
    payload_bytes_max: usize,
    heartbeats: Arc<Heartbeats>,
    /// This broker's heartbeat connection to the leader (its address and stream): kept open,
    /// so the leader sees it close when this process ends.
    heartbeat_link: tokio::sync::Mutex<Option<(String, tokio::net::TcpStream)>>,
}

impl Quorum {
    /// Opens (or creates) the Raft state in `config.dir`, binds the RPC listener and starts
    /// Raft; initializes the membership if this node has no state and the lowest id.
    pub async fn start(
        config: QuorumConfig,
        applier: Arc<dyn Applier>,
        storage: Arc<dyn Storage>,
    ) -> Result<Quorum, QuorumError> {
        config.validate()?;
        let raft_config = Arc::new(config.raft_config()?);
        let dir = config.dir.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let log = log_store::LogStore::open(storage.clone(), &dir)?;
            let sm = state_machine::StateMachine::open(storage, &dir, applier)?;
            Ok::<_, QuorumError>((log, sm))
        })
        .await
        .map_err(|e| QuorumError::Stopped(format!("opening the quorum state failed: {e}")))?;
        let (log, sm) = opened?;
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let heartbeats = Arc::new(Heartbeats::default());
        let net = network::NetworkFactory::new(
            config.node_id,
            Duration::from_millis(config.connect_timeout_ms),
            heartbeats.clone(),
        );
        let raft = Raft::new(config.node_id, raft_config, net, log.clone(), sm)
            .await
            .map_err(|e| QuorumError::Stopped(e.to_string()))?;
        let server = network::RpcServer::start(listener, raft.clone(), heartbeats.clone())?;
        let quorum = Quorum {
            node_id: config.node_id,
            raft,
            log,
            server,
            payload_bytes_max: config.payload_bytes_max,
            heartbeats,
            heartbeat_link: tokio::sync::Mutex::new(None),
        };
        if let Err(e) = quorum.bootstrap(&config.voters).await {
            quorum.shutdown().await;
            return Err(e);
        }
        Ok(quorum)
    }

    async fn bootstrap(&self, voters: &BTreeMap<u64, String>) -> Result<(), QuorumError> {
        let lowest = voters.keys().next().copied();
        let stopped = |e: openraft::error::Fatal<u64>| QuorumError::Stopped(e.to_string());
        if lowest != Some(self.node_id) || self.raft.is_initialized().await.map_err(stopped)? {
            return Ok(());
        }
        let members: BTreeMap<u64, Voter> = voters
            .iter()
            .map(|(id, addr)| (*id, Voter { addr: addr.clone() }))
            .collect();
        match self.raft.initialize(members).await {
            Ok(()) => {
                tracing::info!(
                    node = self.node_id,
                    ?voters,
                    "quorum membership initialized"
                );
                Ok(())
            }
            // Someone (an earlier run of this node) got there first: the goal is reached.
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(QuorumError::Stopped(e.to_string())),
        }
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The address the RPC server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow().current_leader
    }

    /// The leader this node knows of, with its address.
    pub fn leader_with_addr(&self) -> Option<(u64, String)> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let id = m.current_leader?;
        let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
        Some((id, addr))
    }

    pub fn is_leader(&self) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.node_id)
    }

    /// Waits until a leader is known (this node or another) and returns its id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64, QuorumError> {
        let mut metrics = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(leader) = metrics.borrow_and_update().current_leader {
                return Ok(leader);
            }
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Err(_) => {
                    return Err(QuorumError::NoLeader {
                        timeout_ms: timeout.as_millis() as u64,
                    })
                }
                Ok(Err(_)) => return Err(QuorumError::Stopped("raft metrics closed".into())),
                Ok(Ok(())) => {}
            }
        }
    }

    /// Appends `payload` to the replicated log. On the leader, returns its index once it is
    /// committed and applied here; elsewhere fails with [`QuorumError::NotLeader`].
    pub async fn propose(&self, payload: Vec<u8>) -> Result<u64, QuorumError> {
        if payload.len() > self.payload_bytes_max {
            return Err(QuorumError::PayloadTooLarge {
                size_bytes: payload.len(),
                limit_bytes: self.payload_bytes_max,
            });
        }
        match self.raft.client_write(Payload(payload)).await {
            Ok(resp) => Ok(resp.log_id.index),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(QuorumError::NotLeader {
                    leader: f.leader_id.zip(f.leader_node.map(|n| n.addr)),
                })
            }
            Err(e) => Err(QuorumError::Stopped(e.to_string())),
        }
    }

    /// Proposes only while this node leads in `term`, never forwarded: for decisions made
    /// from what the leader of that term saw (the controller's fencing and elections). A
    /// deposed leader's pending decision is dropped instead of being carried to the next
    /// leader, which decides from its own view. (An entry this leader appended may still be
    /// committed by a later leader that holds it, as Raft does; such decisions are
    /// conditional on partition epochs.)
    pub async fn propose_in_term(&self, payload: Vec<u8>, term: u64) -> Result<u64, QuorumError> {
        if !self.is_leader() || self.term() != term {
            return Err(QuorumError::NotLeader { leader: None });
        }
        self.propose(payload).await
    }

    /// Proposes from any voter: on the leader as [`Quorum::propose`]; elsewhere the payload goes
    /// to the leader over the quorum RPC, and this returns once the entry is applied here too
    /// (so this node's state shows it). Retries while a leader is being elected or moves, until
    /// `timeout`. An entry may be committed even when this returns an error (a lost answer):
    /// payloads should be safe to apply twice or checked against the state.
    pub async fn propose_anywhere(
        &self,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<u64, QuorumError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(QuorumError::NoLeader {
                    timeout_ms: timeout.as_millis() as u64,
                });
            }
            match self.propose(payload.clone()).await {
                Err(QuorumError::NotLeader {
                    leader: Some((_, addr)),
                }) => {
                    let answer =
                        network::forward_propose(&addr, &Payload(payload.clone()), left).await;
                    match answer {
                        Ok(network::ProposeResponse::Applied(index)) => {
                            let left =
                                deadline.saturating_duration_since(tokio::time::Instant::now());
                            self.raft
                                .wait(Some(left))
                                .applied_index_at_least(Some(index), "a forwarded proposal")
                                .await
                                .map_err(|e| QuorumError::Stopped(e.to_string()))?;
                            return Ok(index);
                        }
                        Ok(network::ProposeResponse::Failed(why)) => {
                            return Err(QuorumError::Stopped(why))
                        }
                        // The leader moved or could not be reached: look again.
                        Ok(network::ProposeResponse::NotLeader) | Err(_) => {}
                    }
                }
                Err(QuorumError::NotLeader { leader: None }) => {}
                other => return other,
            }
            tokio::time::sleep(Duration::from_millis(50).min(left)).await;
        }
    }

    /// Tells the leader that broker `node` is alive: recorded here when this node leads, else
    /// sent to the leader within `timeout`. Fails when no leader is known or it did not answer.
    pub async fn heartbeat(&self, node: i32, timeout: Duration) -> Result<(), QuorumError> {
        let mut link = self.heartbeat_link.lock().await;
        if self.is_leader() {
            *link = None;
            self.heartbeats.record(node);
            return Ok(());
        }
        let Some((_, addr)) = self.leader_with_addr() else {
            *link = None;
            return Err(QuorumError::NotLeader { leader: None });
        };
        if link.as_ref().is_some_and(|(a, _)| *a != addr) {
            *link = None;
        }
        match network::send_heartbeat(&mut link, &addr, node, timeout).await {
            Ok(network::HeartbeatResponse::Ok) => Ok(()),
            Ok(network::HeartbeatResponse::NotLeader) => {
                *link = None;
                Err(QuorumError::NotLeader { leader: None })
            }
            Err(why) => {
                *link = None;
                Err(QuorumError::Stopped(why))
            }
        }
    }

    /// The quorum as its leader sees it: from this node when it leads, else asked of the
    /// leader within `timeout`.
    pub async fn leader_view(&self, timeout: Duration) -> Result<LeaderView, QuorumError> {
        if self.is_leader() {
            return Ok(LeaderView::of(&self.raft.metrics().borrow()));
        }
        let Some((leader, addr)) = self.leader_with_addr() else {
            return Err(QuorumError::NotLeader { leader: None });
        };
        match network::fetch_leader_view(&addr, timeout).await {
            Ok(Some(view)) => Ok(view),
            Ok(None) => Err(QuorumError::NotLeader {
                leader: Some((leader, addr)),
            }),
            Err(why) => Err(QuorumError::Stopped(why)),
        }
    }

    /// The brokers this node has heard from while leading, with when (see [`Heartbeats`]).
    pub fn heard_from(&self) -> std::collections::HashMap<i32, std::time::Instant> {
        self.heartbeats.snapshot()
    }

    /// The brokers whose heartbeat connection to this node closed and that have not
    /// heartbeated since, with when (see [`Heartbeats::gone`]).
    pub fn gone(&self) -> std::collections::HashMap<i32, std::time::Instant> {
        self.heartbeats.gone()
    }

    /// This node's Raft term now (changes with every election).
    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// This node's Raft state now.
    pub fn status(&self) -> QuorumStatus {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        let voters = membership
            .voter_ids()
            .filter_map(|id| Some((id, membership.get_node(&id)?.addr.clone())))
            .collect();
        QuorumStatus {
            node_id: self.node_id,
            role: match m.state {
                ServerState::Leader => Role::Leader,
                ServerState::Candidate => Role::Candidate,
                ServerState::Follower => Role::Follower,
                ServerState::Learner => Role::Learner,
                ServerState::Shutdown => Role::Shutdown,
            },
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            commit_index: self.log.committed_index(),
            last_applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            voters,
            matched: m.replication.as_ref().map(|r| {
                r.iter()
                    .map(|(id, matched)| (*id, matched.map(|l| l.index)))
                    .collect()
            }),
            millis_since_quorum_ack: m.millis_since_quorum_ack,
            storage_poisoned: self.log.is_poisoned(),
        }
    }

    /// Stops Raft and the RPC server, and waits for both.
    pub async fn shutdown(self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(node = self.node_id, error = %e, "raft core ended badly");
        }
        self.server.shutdown().await;
    }
}

impl Drop for Quorum {
    /// A quorum dropped without [`Quorum::shutdown`] still stops serving: with the server's
    /// handles gone, the last `Raft` handle goes and its core task ends.
    fn drop(&mut self) {
        self.server.cancel();
    }
}
