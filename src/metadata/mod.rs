//! Cluster metadata: topics, topic ids, partition counts, topic and dynamic broker configs.
//!
//! Persisted as an append-only metadata log (`<log.dirs>/strom-metadata/metadata.log`) replayed
//! at start — or, with a metadata quorum, as entries of the Raft log ([`replicated`]). Each line is
//! `<crc32c of the JSON, 8 hex digits> <JSON record>\n` (docs/FORMAT.md). A torn last line (a
//! crash mid-append) is truncated; a damaged line anywhere else is a hard error, never a
//! silently empty broker. Every change is fsynced before it is applied and answered; a failed
//! fsync poisons the log (every later change is refused until a restart replays what is
//! durable), as a partition log's does: retrying an fsync after a failure can silently lose
//! the data it did not write. All file access goes through the [`Storage`] seam.

mod controller;
pub use controller::{Elected, Election, ReassignError};
pub mod placement;
pub mod replicated;
mod state;

use state::State;
pub use state::{BrokerRegistration, ListenerEndpoint, PartitionState, TopicMeta};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::log::io::{OsStorage, SharedFile, Storage};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Error)]
pub enum MetadataError {
    #[error("metadata log {path} is damaged at line {line}: {reason}")]
    Corrupt {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("metadata I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the metadata log is poisoned by a failed fsync; it refuses writes until restart")]
    Poisoned,
    #[error("metadata quorum: {0}")]
    Quorum(String),
    #[error(
        "the data directory belongs to node {recorded} (meta.properties), but node.id is \
         {configured}: the metadata names this node's replicas by id. If the data moved, \
         configure node.id={recorded}; for a new node, start with an empty data directory"
    )]
    NodeIdMismatch { recorded: i32, configured: i32 },
}

/// One change to the cluster metadata.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetadataRecord {
    CreateTopic {
        name: String,
        id: Uuid,
        partitions: i32,
        configs: BTreeMap<String, String>,
        /// The replicas of each partition, the first the leader (Kafka's PartitionRecord).
        /// Empty in records written before assignments were recorded: the single node then.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        replicas: Vec<Vec<i32>>,
    },
    DeleteTopic {
        id: Uuid,
    },
    CreatePartitions {
        id: Uuid,
        count: i32,
        /// The replicas of each new partition (as in `CreateTopic`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        replicas: Vec<Vec<i32>>,
    },
    /// A partition's leader, ISR or replicas change (Kafka's PartitionChangeRecord): a new
    /// leader bumps the leader epoch; every change bumps the partition epoch.
    PartitionChange {
        id: Uuid,
        partition: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        leader: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        isr: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replicas: Option<Vec<i32>>,
        /// A reassignment's replicas being added and removed (`replicas` then holds the
        /// target followed by the removing ones); empty lists end it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        adding: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        removing: Option<Vec<i32>>,
        /// Applied only if the partition epoch is still this (Kafka's AlterPartition check):
        /// a change decided on state that moved meanwhile changes nothing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        partition_epoch: Option<i32>,
    },
    /// The controller fenced a broker it stopped hearing from (or unfenced one that is back):
    /// a fenced broker leads nothing and is in no ISR it shares with others.
    BrokerFencing {
        node: i32,
        fenced: bool,
    },
    /// A broker joined (or came back, a new incarnation): where clients reach it, and its rack.
    /// It starts fenced (KIP-841: a restarted broker may have lost unflushed records, so the
    /// controller takes it out of the ISRs first, then unfences it on its next heartbeat).
    RegisterBroker {
        node: i32,
        host: String,
        port: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rack: Option<String>,
        /// Its client listeners' advertised addresses (`host`/`port`: the inter-broker one).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        listeners: Vec<ListenerEndpoint>,
    },
    /// `None` removes an override.
    AlterTopicConfig {
        id: Uuid,
        configs: BTreeMap<String, Option<String>>,
    },
    /// Producer ids below `end` have been handed out (or reserved); ids are never reused.
    ProducerIdBlock {
        end: i64,
    },
    /// Dynamic broker configs: of broker `node`, or cluster-wide when `node` is None; `None`
    /// values remove one.
    AlterBrokerConfig {
        node: Option<i32>,
        configs: BTreeMap<String, Option<String>>,
    },
    /// Dynamic configs of a group (the GROUP config resource); `None` removes one.
    AlterGroupConfig {
        group: String,
        configs: BTreeMap<String, Option<String>>,
    },
    /// The cluster's id, in a replicated metadata log: the first one committed wins (every
    /// voter proposes its own at first start; later ones change nothing).
    ClusterId {
        id: String,
    },
    /// A block of `size` producer ids for broker `node`, taken from where the last block ended
    /// (replicated metadata: two brokers can never compute the same block).
    AllocateProducerIds {
        node: i32,
        size: i64,
    },
    /// A user's SCRAM credential for one mechanism (Kafka's UserScramCredentialRecord;
    /// `mechanism` is Kafka's type: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512). Only what verifies the
    /// password is kept, base64-encoded: salt, StoredKey, ServerKey.
    ScramCredential {
        user: String,
        mechanism: i8,
        salt: String,
        stored_key: String,
        server_key: String,
        iterations: i32,
    },
    /// Kafka's RemoveUserScramCredentialRecord.
    RemoveScramCredential {
        user: String,
        mechanism: i8,
    },
    /// An ACL binding (Kafka's AccessControlEntryRecord); creating one that exists changes
    /// nothing.
    Acl(crate::security::acl::AclBinding),
    /// Kafka's RemoveAccessControlEntryRecord.
    RemoveAcl(crate::security::acl::AclBinding),
    /// Kafka's ClientQuotaRecord: `entity` is (type, name or null for the default) sorted by
    /// type; `value` None removes the key.
    ClientQuota {
        entity: crate::quota::Entity,
        key: String,
        value: Option<f64>,
    },
}

impl MetadataRecord {
    /// The record of `user`'s SCRAM credential for `mechanism` (bytes base64-encoded).
    pub fn scram_credential(
        user: &str,
        mechanism: crate::security::scram::Mechanism,
        c: &crate::security::scram::Credential,
    ) -> MetadataRecord {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        MetadataRecord::ScramCredential {
            user: user.to_string(),
            mechanism: mechanism.type_id(),
            salt: b64(&c.salt),
            stored_key: b64(&c.stored_key),
            server_key: b64(&c.server_key),
            iterations: c.iterations,
        }
    }
}

/// The open metadata log: its file and where the next record goes.
struct LogFile {
    file: SharedFile,
    end: u64,
    /// Records in the log (its log end offset, as DescribeQuorum shows it).
    records: u64,
}

pub struct MetadataStore {
    path: PathBuf,
    backend: Backend,
    state: Arc<RwLock<State>>,
    pub cluster_id: String,
    /// (next id to hand out, end of the reserved block).
    producer_ids: Mutex<(i64, i64)>,
    /// Counts applied changes; brokers of a cluster watch it to act on new metadata.
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

/// Where changes go before they apply.
enum Backend {
    /// The metadata log file of a single node.
    Local {
        file: Mutex<LogFile>,
        /// Set by a failed fsync; never cleared.
        poisoned: AtomicBool,
    },
    /// The metadata quorum ([`replicated`]).
    Replicated(replicated::Replicated),
}

/// Producer ids reserved per metadata record.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

pub const METADATA_DIR: &str = "strom-metadata";
/// The metadata log's file name inside [`METADATA_DIR`].
pub const METADATA_LOG: &str = "metadata.log";

/// Kafka's internal topics (`Topic.isInternal`): flagged internal in metadata answers, and
/// records cannot be deleted from them.
pub const INTERNAL_TOPICS: &[&str] = &[
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
];

pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

impl MetadataStore {
    /// Opens the metadata log under `root`, replaying it.
    pub fn open(root: &Path) -> Result<Self, MetadataError> {
        Self::open_with(root, Arc::new(OsStorage))
    }

    /// Opens the metadata log under `root` on `storage`, replaying it.
    pub fn open_with(root: &Path, storage: Arc<dyn Storage>) -> Result<Self, MetadataError> {
        let dir = root.join(METADATA_DIR);
        storage.create_dir_all(&dir)?;
        let cluster_id = load_or_create_cluster_id(storage.as_ref(), root)?;
        let path = dir.join(METADATA_LOG);
        let mut state = State::default();
        let text = match storage.read_file(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut valid_len = 0usize;
        let mut line_no = 0usize;
        let mut records = 0u64;
        let mut rest = &text[..];
        while !rest.is_empty() {
            line_no += 1;
            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                tracing::warn!(
                    line = line_no,
                    "truncating torn last line of the metadata log"
                );
                break;
            };
            let line = &rest[..nl];
            let is_last = nl + 1 == rest.len();
            match parse_line(line) {
                Ok(rec) => state.apply(&rec),
                Err(reason) if is_last => {
                    tracing::warn!(
                        line = line_no,
                        reason,
                        "truncating damaged last line of the metadata log"
                    );
                    break;
                }
                Err(reason) => {
                    return Err(MetadataError::Corrupt {
                        path: path.display().to_string(),
                        line: line_no,
                        reason,
                    });
                }
            }
            valid_len += nl + 1;
            records += 1;
            rest = &rest[nl + 1..];
        }
        let file = storage.open_or_create(&path)?;
        if (valid_len as u64) < file.size()? {
            file.set_len(valid_len as u64)?;
            file.sync_data()?;
        }
        storage.sync_dir(&dir)?;
        let end = state.producer_id_block_end;
        Ok(MetadataStore {
            path,
            backend: Backend::Local {
                file: Mutex::new(LogFile {
                    file,
                    end: valid_len as u64,
                    records,
                }),
                poisoned: AtomicBool::new(false),
            },
            state: Arc::new(RwLock::new(state)),
            cluster_id,
            producer_ids: Mutex::new((end, end)),
            changes: Arc::new(tokio::sync::watch::channel(0).0),
        })
    }

    /// Durably appends `records` and applies them, atomically with respect to readers. With a
    /// replicated log: once committed by the quorum and applied here (blocks; call it from a
    /// blocking thread, as every caller does).
    pub fn commit(&self, records: &[MetadataRecord]) -> Result<(), MetadataError> {
        let (file, poisoned) = match &self.backend {
            Backend::Local { file, poisoned } => (file, poisoned),
            Backend::Replicated(r) => return r.commit(records),
        };
        let mut log = file.lock();
        if poisoned.load(Ordering::Acquire) {
            return Err(MetadataError::Poisoned);
        }
        let mut buf = Vec::new();
        for rec in records {
            let json =
                serde_json::to_string(rec).map_err(|e| std::io::Error::other(e.to_string()))?;
            let crc = crc32c::crc32c(json.as_bytes());
            buf.extend_from_slice(format!("{crc:08x} {json}\n").as_bytes());
        }
        if let Err(e) = log.file.write_all_at(&buf, log.end) {
            // Leave only whole lines: the next append goes where this one started.
            if log.file.set_len(log.end).is_err() {
                self.poison("could not undo a failed write");
            }
            return Err(e.into());
        }
        if let Err(e) = log.file.sync_data() {
            self.poison(&format!("fsync failed: {e}"));
            return Err(e.into());
        }
        log.end += buf.len() as u64;
        log.records += records.len() as u64;
        let mut state = self.state.write();
        for rec in records {
            state.apply(rec);
        }
        drop(state);
        self.changes.send_modify(|n| *n += 1);
        Ok(())
    }

    /// The controller's commit: as [`MetadataStore::commit`], but on a replicated store only
    /// while this node leads the metadata quorum in `term` (the term the decision was made
    /// in). A controller that lost its leadership while the write waited — e.g. cut off from
    /// the other voters, it fenced brokers it could no longer hear — fails instead of handing
    /// its stale decisions to the next leader.
    pub fn commit_as_controller(
        &self,
        records: &[MetadataRecord],
        term: u64,
    ) -> Result<(), MetadataError> {
        match &self.backend {
            Backend::Replicated(r) => r.commit_in_term(records, term),
            Backend::Local { .. } => self.commit(records),
        }
    }

    /// Hands out a producer id never given before, also across restarts: ids come from blocks
    /// whose reservation is durable before any id of them is used.
    /// Reserving a block costs a metadata fsync: callers on async workers first call
    /// [`MetadataStore::reserve_producer_ids`] on a blocking thread when
    /// [`MetadataStore::producer_id_ready`] says the block is used up.
    pub fn allocate_producer_id(&self) -> Result<i64, MetadataError> {
        let mut ids = self.producer_ids.lock();
        self.reserve_locked(&mut ids)?;
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    /// Whether [`MetadataStore::allocate_producer_id`] can answer without writing.
    pub fn producer_id_ready(&self) -> bool {
        let ids = self.producer_ids.lock();
        ids.0 < ids.1
    }

    /// Makes the next producer id available without a write (reserving a block if needed).
    pub fn reserve_producer_ids(&self) -> Result<(), MetadataError> {
        self.reserve_locked(&mut self.producer_ids.lock())
    }

    /// `ids` is (next, end of the durable block).
    fn reserve_locked(&self, ids: &mut (i64, i64)) -> Result<(), MetadataError> {
        if ids.0 < ids.1 {
            return Ok(());
        }
        if let Backend::Replicated(r) = &self.backend {
            let node = r.node();
            self.commit(&[MetadataRecord::AllocateProducerIds {
                node,
                size: PRODUCER_ID_BLOCK,
            }])?;
            let block = self.state.read().producer_blocks.get(&node).copied();
            *ids = block.ok_or_else(|| {
                MetadataError::Quorum("the producer id block was not applied".into())
            })?;
            return Ok(());
        }
        let end = ids.1 + PRODUCER_ID_BLOCK;
        self.commit(&[MetadataRecord::ProducerIdBlock { end }])?;
        ids.1 = end;
        Ok(())
    }

    pub fn topic(&self, name: &str) -> Option<TopicMeta> {
        self.state.read().by_name.get(name).cloned()
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<TopicMeta> {
        let st = self.state.read();
        st.name_by_id
            .get(id)
            .and_then(|n| st.by_name.get(n))
            .cloned()
    }

    /// All topics, sorted by name.
    /// The dynamic broker configs of broker `node` (None: the cluster-wide ones).
    pub fn broker_configs(&self, node: Option<i32>) -> BTreeMap<String, String> {
        self.state
            .read()
            .broker_configs
            .get(&node)
            .cloned()
            .unwrap_or_default()
    }

    /// The dynamic configs set on a group (empty when none).
    /// `user`'s SCRAM credential for `mechanism`, if any.
    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: crate::security::scram::Mechanism,
    ) -> Option<crate::security::scram::Credential> {
        self.state
            .read()
            .scram
            .get(&(user.to_string(), mechanism.type_id()))
            .cloned()
    }

    /// Every client quota (one shared copy, replaced whole when a quota changes).
    pub fn client_quotas(&self) -> Arc<crate::quota::Quotas> {
        self.state.read().quotas.clone()
    }

    /// Every ACL binding, sorted (one shared copy, replaced whole when the ACLs change).
    pub fn acls(&self) -> Arc<Vec<crate::security::acl::AclBinding>> {
        self.state.read().acls.clone()
    }

    /// Every user with SCRAM credentials: (user, [(mechanism type, iterations)]).
    pub fn scram_users(&self) -> BTreeMap<String, Vec<(i8, i32)>> {
        let mut out: BTreeMap<String, Vec<(i8, i32)>> = BTreeMap::new();
        for ((user, m), c) in &self.state.read().scram {
            out.entry(user.clone())
                .or_default()
                .push((*m, c.iterations));
        }
        out
    }

    pub fn group_configs(&self, group: &str) -> BTreeMap<String, String> {
        self.state
            .read()
            .group_configs
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// A partition's replicas, ISR, leader and epochs; None for a topic recorded before
    /// assignments were (its single node leads it).
    pub fn partition_state(&self, topic: &Uuid, partition: i32) -> Option<PartitionState> {
        let state = self.state.read();
        let parts = state.partitions.get(topic)?;
        parts.get(usize::try_from(partition).ok()?).cloned()
    }

    /// The controller's decisions on the state now, given which brokers are `live` (see
    /// [`controller`]): fencing, unfencing, leader elections and ISR removals to commit.
    pub fn controller_decisions(&self, live: &dyn Fn(i32) -> bool) -> Vec<MetadataRecord> {
        controller::decide(&self.state.read(), live)
    }

    /// ElectLeaders: the election of each of `targets` (topic, partition) — or, with None, of
    /// every partition, leaving out those that need none, as Kafka does — among the brokers
    /// `usable` says may lead; the changes decided are committed together (each conditional
    /// on its partition epoch). Per target: None for an unknown topic or partition. Blocks.
    #[allow(clippy::type_complexity)]
    pub fn elect_leaders(
        &self,
        targets: Option<Vec<(String, i32)>>,
        election: Election,
        usable: &dyn Fn(i32) -> bool,
    ) -> Result<Vec<(String, i32, Option<Elected>)>, MetadataError> {
        let results: Vec<(String, i32, Option<Elected>)> = {
            let state = self.state.read();
            let decide = |name: &str, i: i32| {
                let id = state.by_name.get(name)?.id;
                controller::elect(&state, &id, i, election, usable)
            };
            match targets {
                Some(targets) => targets
                    .into_iter()
                    .map(|(t, i)| {
                        let e = decide(&t, i);
                        (t, i, e)
                    })
                    .collect(),
                None => {
                    let mut all = Vec::new();
                    for (name, meta) in &state.by_name {
                        for i in 0..meta.partitions {
                            let e = decide(name, i);
                            if !matches!(e, Some(Elected::NotNeeded)) {
                                all.push((name.clone(), i, e));
                            }
                        }
                    }
                    all
                }
            }
        };
        let changes: Vec<MetadataRecord> = results
            .iter()
            .filter_map(|(_, _, e)| match e {
                Some(Elected::Change(r)) => Some(r.clone()),
                _ => None,
            })
            .collect();
        if !changes.is_empty() {
            self.commit(&changes)?;
        }
        Ok(results)
    }

    /// AlterPartitionReassignments: for each (topic, partition, target) — None cancels — the
    /// outcome; the changes decided are committed together, each conditional on its
    /// partition epoch. Targets must be validated already (registered brokers, none twice).
    /// Blocks.
    #[allow(clippy::type_complexity)]
    pub fn reassign_partitions(
        &self,
        requests: Vec<(String, i32, Option<Vec<i32>>)>,
        usable: &dyn Fn(i32) -> bool,
    ) -> Result<Vec<(String, i32, Result<(), ReassignError>)>, MetadataError> {
        let mut changes = Vec::new();
        let results = {
            let state = self.state.read();
            requests
                .into_iter()
                .map(|(t, i, target)| {
                    let r = match state.by_name.get(&t) {
                        None => Err(ReassignError::UnknownPartition),
                        Some(meta) => {
                            controller::reassign(&state, &meta.id, i, target.as_deref(), usable)
                                .map(|rec| changes.extend(rec))
                        }
                    };
                    (t, i, r)
                })
                .collect()
        };
        if !changes.is_empty() {
            self.commit(&changes)?;
        }
        Ok(results)
    }

    /// Partitions being reassigned (all, or those of `only` that are): (topic, partition,
    /// replicas, adding, removing), by topic and partition.
    #[allow(clippy::type_complexity)]
    pub fn reassignments(
        &self,
        only: Option<&[(String, i32)]>,
    ) -> Vec<(String, i32, Vec<i32>, Vec<i32>, Vec<i32>)> {
        let state = self.state.read();
        let mut out = Vec::new();
        for (name, meta) in &state.by_name {
            let Some(parts) = state.partitions.get(&meta.id) else {
                continue;
            };
            for (i, p) in parts.iter().enumerate() {
                let i = i as i32;
                if p.adding.is_empty() && p.removing.is_empty() {
                    continue;
                }
                if only.is_some_and(|o| !o.iter().any(|(t, x)| t == name && *x == i)) {
                    continue;
                }
                out.push((
                    name.clone(),
                    i,
                    p.replicas.clone(),
                    p.adding.clone(),
                    p.removing.clone(),
                ));
            }
        }
        out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        out
    }

    /// On a single node, the records in the metadata log (what DescribeQuorum shows as the
    /// log end offset and high watermark of its one-voter quorum); None with a quorum.
    pub fn local_log_end(&self) -> Option<i64> {
        match &self.backend {
            Backend::Local { file, .. } => Some(file.lock().records as i64),
            Backend::Replicated(_) => None,
        }
    }

    /// Wakes on every applied change (its value counts them).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The registration of broker `node`.
    pub fn broker(&self, node: i32) -> Option<BrokerRegistration> {
        self.state.read().brokers.get(&node).cloned()
    }

    /// The registered brokers, by node id.
    pub fn brokers(&self) -> Vec<BrokerRegistration> {
        self.state.read().brokers.values().cloned().collect()
    }

    /// The groups that have dynamic configs set, sorted.
    pub fn groups_with_configs(&self) -> Vec<String> {
        let mut v: Vec<String> = self.state.read().group_configs.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn topics(&self) -> Vec<TopicMeta> {
        let mut v: Vec<TopicMeta> = self.state.read().by_name.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_poisoned(&self) -> bool {
        match &self.backend {
            Backend::Local { poisoned, .. } => poisoned.load(Ordering::Acquire),
            Backend::Replicated(r) => r.is_poisoned(),
        }
    }

    fn poison(&self, why: &str) {
        let Backend::Local { poisoned, .. } = &self.backend else {
            return;
        };
        if !poisoned.swap(true, Ordering::AcqRel) {
            tracing::error!(
                why,
                "metadata log poisoned; topic and config changes are refused until restart"
            );
        }
    }
}

fn parse_line(line: &[u8]) -> Result<MetadataRecord, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    let (crc, json) = text.split_once(' ').ok_or("missing checksum")?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| "bad checksum field".to_string())?;
    if crc32c::crc32c(json.as_bytes()) != crc {
        return Err("checksum mismatch".into());
    }
    serde_json::from_str(json).map_err(|e| format!("bad record: {e}"))
}

/// `meta.properties` at the root of the data dir, like Kafka's: holds the cluster id.
fn load_or_create_cluster_id(storage: &dyn Storage, root: &Path) -> Result<String, MetadataError> {
    let path = root.join("meta.properties");
    let existing = match storage.read_file(&path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        // Never mint a new cluster id over one that could not be read.
        Err(e) => return Err(e.into()),
    };
    if let Some(text) = existing {
        for (k, v) in crate::config::parse_properties(&text) {
            if k == "cluster.id" && !v.is_empty() {
                return Ok(v);
            }
        }
        return Err(MetadataError::Corrupt {
            path: path.display().to_string(),
            line: 0,
            reason: "no cluster.id".into(),
        });
    }
    let id = base64_url_uuid(Uuid::new_v4());
    let text = format!("#Strom metadata\nversion=1\ncluster.id={id}\n");
    storage.write_file_synced(&path, text.as_bytes())?;
    Ok(id)
}

/// Checks that the data directory was this node's (`node.id` in `meta.properties`, as Kafka
/// keeps it), recording it when absent (directories from before it was kept).
pub fn check_node_id(storage: &dyn Storage, root: &Path, node: i32) -> Result<(), MetadataError> {
    let path = root.join("meta.properties");
    let text = String::from_utf8_lossy(&storage.read_file(&path)?).into_owned();
    let recorded = crate::config::parse_properties(&text)
        .into_iter()
        .find(|(k, _)| k == "node.id")
        .map(|(_, v)| v);
    match recorded {
        Some(v) => match v.trim().parse::<i32>() {
            Ok(r) if r == node => Ok(()),
            Ok(r) => Err(MetadataError::NodeIdMismatch {
                recorded: r,
                configured: node,
            }),
            Err(_) => Err(MetadataError::Corrupt {
                path: path.display().to_string(),
                line: 0,
                reason: format!("bad node.id '{v}'"),
            }),
        },
        None => {
            let mut text = text;
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("node.id={node}\n"));
            storage.write_file_synced(&path, text.as_bytes())?;
            Ok(())
        }
    }
}

/// Kafka prints cluster ids as URL-safe base64 of a UUID without padding (22 chars).
pub fn base64_url_uuid(id: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write;

    #[test]
    fn coordinator_topics_are_internal() {
        assert!(super::is_internal_topic(crate::coordinator::OFFSETS_TOPIC));
        assert!(super::is_internal_topic(crate::coordinator::txn::TXN_TOPIC));
        assert!(!super::is_internal_topic("__user_topic"));
    }

    use super::*;

    #[test]
    fn replay_and_torn_tail() {
        let dir = tempfile::tempdir().expect("tmp");
        let id = Uuid::new_v4();
        let cluster;
        {
            let m = MetadataStore::open(dir.path()).expect("open");
            cluster = m.cluster_id.clone();
            m.commit(&[MetadataRecord::CreateTopic {
                name: "a".into(),
                id,
                partitions: 2,
                configs: BTreeMap::new(),
                replicas: Vec::new(),
            }])
            .expect("commit");
            let mut c = BTreeMap::new();
            c.insert("retention.ms".to_string(), Some("5".to_string()));
            m.commit(&[MetadataRecord::AlterTopicConfig { id, configs: c }])
                .expect("commit");
            m.commit(&[MetadataRecord::CreatePartitions {
                id,
                count: 3,
                replicas: Vec::new(),
            }])
            .expect("commit");
        }
        // Torn tail.
        let path = dir.path().join(METADATA_DIR).join("metadata.log");
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"0000 {\"type\":\"delete_t").expect("write");
        drop(f);
        let m = MetadataStore::open(dir.path()).expect("reopen");
        assert_eq!(m.cluster_id, cluster);
        let t = m.topic("a").expect("topic");
        assert_eq!(t.partitions, 3);
        assert_eq!(t.configs.get("retention.ms").map(String::as_str), Some("5"));
        assert_eq!(m.topic_by_id(&id).map(|t| t.name), Some("a".to_string()));
        m.commit(&[MetadataRecord::DeleteTopic { id }])
            .expect("commit");
        drop(m);
        let m = MetadataStore::open(dir.path()).expect("reopen");
        assert!(m.topic("a").is_none());
    }

    #[test]
    fn damaged_middle_line_is_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let m = MetadataStore::open(dir.path()).expect("open");
            for n in ["a", "b"] {
                m.commit(&[MetadataRecord::CreateTopic {
                    name: n.into(),
                    id: Uuid::new_v4(),
                    partitions: 1,
                    configs: BTreeMap::new(),
                    replicas: Vec::new(),
                }])
                .expect("commit");
            }
        }
        let path = dir.path().join(METADATA_DIR).join("metadata.log");
        let mut text = std::fs::read(&path).expect("read");
        text[12] ^= 1;
        std::fs::write(&path, text).expect("write");
        assert!(matches!(
            MetadataStore::open(dir.path()),
            Err(MetadataError::Corrupt { .. })
        ));
    }

    #[test]
    fn producer_ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().expect("tmp");
        let first: Vec<i64> = {
            let m = MetadataStore::open(dir.path()).expect("open");
            (0..3)
                .map(|_| m.allocate_producer_id().expect("id"))
                .collect()
        };
        assert_eq!(first, vec![0, 1, 2]);
        let m = MetadataStore::open(dir.path()).expect("reopen");
        assert_eq!(m.allocate_producer_id().expect("id"), PRODUCER_ID_BLOCK);
    }

    #[test]
    fn a_failed_fsync_poisons_the_metadata_log_until_restart() {
        use crate::log::io::FaultyStorage;
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().expect("tmp");
        let storage = FaultyStorage::default();
        let topic = |name: &str| MetadataRecord::CreateTopic {
            name: name.into(),
            id: Uuid::new_v4(),
            partitions: 1,
            configs: BTreeMap::new(),
            replicas: Vec::new(),
        };
        let m = MetadataStore::open_with(dir.path(), Arc::new(storage.clone())).expect("open");
        m.commit(&[topic("a")]).expect("commit");
        storage.faults.fail_sync.store(true, Ordering::Release);
        assert!(matches!(m.commit(&[topic("b")]), Err(MetadataError::Io(_))));
        assert!(
            m.topic("b").is_none(),
            "a change whose fsync failed is not applied"
        );
        // The disk is fine again, but a retried fsync could report success for data the
        // failed one dropped: the log stays poisoned.
        storage.faults.fail_sync.store(false, Ordering::Release);
        assert!(m.is_poisoned());
        assert!(matches!(
            m.commit(&[topic("c")]),
            Err(MetadataError::Poisoned)
        ));
        assert!(matches!(
            m.allocate_producer_id(),
            Err(MetadataError::Poisoned)
        ));
        assert!(m.topic("c").is_none());
        drop(m);
        let m = MetadataStore::open_with(dir.path(), Arc::new(storage)).expect("reopen");
        assert!(!m.is_poisoned());
        assert!(m.topic("a").is_some());
        m.commit(&[topic("d")]).expect("commit after restart");
    }

    /// Assignments: replicas per partition, leader = first replica, a PartitionChange bumps the
    /// leader epoch only when the leader changes and the partition epoch always; records
    /// written before assignments existed still read (no state: the single node leads).
    #[test]
    fn partition_assignments_and_changes_replay() {
        let dir = tempfile::tempdir().expect("tmp");
        let id = Uuid::new_v4();
        {
            let m = MetadataStore::open(dir.path()).expect("open");
            m.commit(&[MetadataRecord::CreateTopic {
                name: "r".into(),
                id,
                partitions: 2,
                configs: BTreeMap::new(),
                replicas: vec![vec![1, 2, 3], vec![2, 3, 1]],
            }])
            .expect("commit");
            m.commit(&[
                MetadataRecord::PartitionChange {
                    id,
                    partition: 0,
                    leader: None,
                    isr: Some(vec![1, 2]),
                    replicas: None,
                    adding: None,
                    removing: None,
                    partition_epoch: None,
                },
                MetadataRecord::PartitionChange {
                    id,
                    partition: 0,
                    leader: Some(2),
                    isr: None,
                    replicas: None,
                    adding: None,
                    removing: None,
                    partition_epoch: Some(1),
                },
                MetadataRecord::CreatePartitions {
                    id,
                    count: 3,
                    replicas: vec![vec![3, 1, 2]],
                },
                MetadataRecord::RegisterBroker {
                    node: 2,
                    host: "h2".into(),
                    port: 9092,
                    rack: Some("r2".into()),
                    listeners: Vec::new(),
                },
            ])
            .expect("commit");
        }
        let m = MetadataStore::open(dir.path()).expect("reopen");
        let p0 = m.partition_state(&id, 0).expect("p0");
        assert_eq!(
            (
                p0.leader,
                p0.isr.clone(),
                p0.leader_epoch,
                p0.partition_epoch
            ),
            (2, vec![1, 2], 1, 2)
        );
        assert_eq!(m.partition_state(&id, 1).map(|p| p.leader), Some(2));
        assert_eq!(
            m.partition_state(&id, 2).map(|p| p.replicas),
            Some(vec![3, 1, 2])
        );
        assert!(m.partition_state(&id, 3).is_none());
        assert_eq!(m.brokers().len(), 1);
        // A record from before assignments: no `replicas` field.
        let old: MetadataRecord = serde_json::from_str(
            r#"{"type":"create_topic","name":"o","id":"6f1c2a52-8a2c-4a55-9d3c-3a0c2f7f5b11","partitions":1,"configs":{}}"#,
        )
        .expect("old record");
        assert!(matches!(old, MetadataRecord::CreateTopic { replicas, .. } if replicas.is_empty()));
        m.commit(&[MetadataRecord::DeleteTopic { id }])
            .expect("delete");
        assert!(m.partition_state(&id, 0).is_none());
    }

    #[test]
    fn the_data_directory_remembers_its_node_id() {
        let dir = tempfile::tempdir().expect("tmp");
        let _m = MetadataStore::open(dir.path()).expect("open");
        check_node_id(&OsStorage, dir.path(), 3).expect("recorded");
        check_node_id(&OsStorage, dir.path(), 3).expect("same node");
        let e = check_node_id(&OsStorage, dir.path(), 4).expect_err("another node");
        assert!(matches!(
            e,
            MetadataError::NodeIdMismatch {
                recorded: 3,
                configured: 4
            }
        ));
        drop(_m);
        let m = MetadataStore::open(dir.path()).expect("cluster id still read");
        assert!(!m.cluster_id.is_empty());
    }

    #[test]
    fn cluster_id_format() {
        assert_eq!(base64_url_uuid(Uuid::nil()).len(), 22);
    }
}
