//! The metadata log replicated by the metadata quorum ([`crate::quorum`], Raft): the role
//! KRaft's metadata log plays in Kafka. Each commit is one quorum entry holding a batch of
//! [`MetadataRecord`]s as JSON; every voter applies committed entries to its [`State`] in log
//! order, so all of them hold the same topics, configs and producer-id blocks.
//!
//! - A commit on any voter goes to the leader (forwarded when this voter is not it) and returns
//!   once the entry is applied here, so a caller reads its own change back at once.
//! - The cluster id is replicated too: every voter proposes its `meta.properties` id at start,
//!   the first committed wins, and all voters report that one.
//! - Producer ids come in blocks the quorum hands out in log order
//!   ([`MetadataRecord::AllocateProducerIds`]), so two brokers never get the same id.
//! - Snapshots hold the whole state as JSON (a few MB at most: metadata, not data).
//!
//! A multi-node broker (other voters in `controller.quorum.voters`, see [`crate::cluster`]) opens its metadata
//! here.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::{
    load_or_create_cluster_id, Backend, BrokerRegistration, MetadataError, MetadataRecord,
    MetadataStore, PartitionState, State, TopicMeta,
};
use crate::log::io::Storage;
use crate::quorum::{Applier, Quorum, QuorumConfig, QuorumError};

/// How long a commit waits for the quorum (leader elections included).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) struct Replicated {
    quorum: Quorum,
    rt: tokio::runtime::Handle,
    node: i32,
}

impl Replicated {
    pub(super) fn node(&self) -> i32 {
        self.node
    }

    pub(super) fn is_poisoned(&self) -> bool {
        self.quorum.status().storage_poisoned
    }

    /// Proposes `records` as one entry and waits until it is applied here. Must not run on an
    /// async worker thread (it blocks on the quorum).
    pub(super) fn commit(&self, records: &[MetadataRecord]) -> Result<(), MetadataError> {
        let payload = encode(records)?;
        self.rt
            .block_on(self.quorum.propose_anywhere(payload, COMMIT_TIMEOUT))
            .map(drop)
            .map_err(quorum_error)
    }

    /// As [`Replicated::commit`], but only while this node leads the quorum in `term`, never
    /// forwarded (see [`Quorum::propose_in_term`]).
    pub(super) fn commit_in_term(
        &self,
        records: &[MetadataRecord],
        term: u64,
    ) -> Result<(), MetadataError> {
        let payload = encode(records)?;
        self.rt
            .block_on(self.quorum.propose_in_term(payload, term))
            .map(drop)
            .map_err(quorum_error)
    }

    pub fn quorum(&self) -> &Quorum {
        &self.quorum
    }
}

/// One quorum entry: the records as a JSON array (what [`StateApplier`] reads).
fn encode(records: &[MetadataRecord]) -> Result<Vec<u8>, MetadataError> {
    serde_json::to_vec(records).map_err(|e| MetadataError::Quorum(format!("encoding records: {e}")))
}

fn quorum_error(e: QuorumError) -> MetadataError {
    MetadataError::Quorum(e.to_string())
}

/// Applies committed entries to the shared state.
struct StateApplier {
    state: Arc<RwLock<State>>,
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Applier for StateApplier {
    fn apply(&self, index: u64, payload: &[u8]) {
        match serde_json::from_slice::<Vec<MetadataRecord>>(payload) {
            Ok(records) => {
                let mut state = self.state.write();
                for r in &records {
                    state.apply(r);
                }
                drop(state);
                self.changes.send_modify(|n| *n += 1);
            }
            // Written by this code on some voter: a failure is a bug (e.g. a newer version's
            // record), logged loudly; the entry changes nothing here.
            Err(e) => tracing::error!(index, error = %e, "unreadable metadata entry skipped"),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        let snap = Snapshot::of(&self.state.read());
        serde_json::to_vec(&snap).unwrap_or_default()
    }

    fn install(&self, snapshot: &[u8]) -> Result<(), String> {
        let snap: Snapshot =
            serde_json::from_slice(snapshot).map_err(|e| format!("bad metadata snapshot: {e}"))?;
        *self.state.write() = snap.into_state();
        self.changes.send_modify(|n| *n += 1);
        Ok(())
    }
}

/// The whole metadata state, in a JSON-friendly shape (no non-string map keys).
#[derive(Serialize, Deserialize)]
struct Snapshot {
    cluster_id: Option<String>,
    topics: Vec<TopicMeta>,
    producer_id_block_end: i64,
    /// (node, start, end).
    producer_blocks: Vec<(i32, i64, i64)>,
    /// (node or None for cluster-wide, configs).
    broker_configs: Vec<(Option<i32>, BTreeMap<String, String>)>,
    group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// (topic id, its partitions).
    #[serde(default)]
    partitions: Vec<(uuid::Uuid, Vec<PartitionState>)>,
    #[serde(default)]
    brokers: Vec<BrokerRegistration>,
    /// SCRAM credentials as their records (`MetadataRecord::ScramCredential`).
    #[serde(default)]
    scram: Vec<MetadataRecord>,
    #[serde(default)]
    acls: Vec<crate::security::acl::AclBinding>,
    #[serde(default)]
    quotas: Vec<(crate::quota::Entity, BTreeMap<String, f64>)>,
}

impl Snapshot {
    fn of(s: &State) -> Snapshot {
        let mut topics: Vec<TopicMeta> = s.by_name.values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        let mut producer_blocks: Vec<(i32, i64, i64)> = s
            .producer_blocks
            .iter()
            .map(|(n, (a, b))| (*n, *a, *b))
            .collect();
        producer_blocks.sort_unstable();
        let mut broker_configs: Vec<_> = s
            .broker_configs
            .iter()
            .map(|(n, c)| (*n, c.clone()))
            .collect();
        broker_configs.sort_by_key(|(n, _)| *n);
        Snapshot {
            cluster_id: s.cluster_id.clone(),
            topics,
            producer_id_block_end: s.producer_id_block_end,
            producer_blocks,
            broker_configs,
            group_configs: s
                .group_configs
                .iter()
                .map(|(g, c)| (g.clone(), c.clone()))
                .collect(),
            partitions: {
                let mut p: Vec<_> = s.partitions.iter().map(|(i, v)| (*i, v.clone())).collect();
                p.sort_by_key(|(i, _)| *i);
                p
            },
            brokers: s.brokers.values().cloned().collect(),
            scram: s
                .scram
                .iter()
                .filter_map(|((user, m), c)| {
                    let m = crate::security::scram::Mechanism::from_type(*m)?;
                    Some(MetadataRecord::scram_credential(user, m, c))
                })
                .collect(),
            acls: s.acls.to_vec(),
            quotas: s
                .quotas
                .iter()
                .map(|(e, q)| (e.clone(), q.clone()))
                .collect(),
        }
    }

    fn into_state(self) -> State {
        let mut s = State {
            cluster_id: self.cluster_id,
            producer_id_block_end: self.producer_id_block_end,
            ..State::default()
        };
        for t in self.topics {
            s.name_by_id.insert(t.id, t.name.clone());
            s.by_name.insert(t.name.clone(), t);
        }
        s.producer_blocks = self
            .producer_blocks
            .into_iter()
            .map(|(n, a, b)| (n, (a, b)))
            .collect();
        s.broker_configs = self.broker_configs.into_iter().collect();
        s.group_configs = self.group_configs.into_iter().collect();
        s.partitions = self.partitions.into_iter().collect();
        s.brokers = self.brokers.into_iter().map(|b| (b.node, b)).collect();
        let mut acls = self.acls;
        acls.sort();
        acls.dedup();
        s.acls = std::sync::Arc::new(acls);
        s.quotas = std::sync::Arc::new(self.quotas.into_iter().collect());
        for r in &self.scram {
            if matches!(r, MetadataRecord::ScramCredential { .. }) {
                s.apply(r);
            }
        }
        s
    }
}

impl MetadataStore {
    /// Opens the replicated metadata log of voter `node` (quorum state under
    /// `<root>/strom-metadata/quorum`), waits until the quorum has a leader and the cluster id
    /// is agreed (this node's `meta.properties` id, or the one another voter committed first),
    /// and returns the store. Needs a multi-threaded Tokio runtime.
    pub async fn start_replicated(
        root: &Path,
        storage: Arc<dyn Storage>,
        mut config: QuorumConfig,
        node: i32,
        timeout: Duration,
    ) -> Result<MetadataStore, MetadataError> {
        let dir = root.join(super::METADATA_DIR);
        storage.create_dir_all(&dir)?;
        config.dir = dir.join("quorum");
        let local_id = load_or_create_cluster_id(storage.as_ref(), root)?;
        let state = Arc::new(RwLock::new(State::default()));
        let changes = Arc::new(tokio::sync::watch::channel(0).0);
        let applier = Arc::new(StateApplier {
            state: state.clone(),
            changes: changes.clone(),
        });
        let quorum = Quorum::start(config, applier, storage)
            .await
            .map_err(quorum_error)?;
        let started = Instant::now();
        let cluster_id = loop {
            if let Some(id) = state.read().cluster_id.clone() {
                break id;
            }
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(MetadataError::Quorum(format!(
                    "no cluster id agreed within {timeout:?}"
                )));
            }
            let payload = encode(&[MetadataRecord::ClusterId {
                id: local_id.clone(),
            }])?;
            quorum
                .propose_anywhere(payload, left)
                .await
                .map_err(quorum_error)?;
        };
        if cluster_id != local_id {
            tracing::info!(%cluster_id, "joined the cluster id another voter committed");
        }
        Ok(MetadataStore {
            path: dir.join("quorum"),
            backend: Backend::Replicated(Replicated {
                quorum,
                rt: tokio::runtime::Handle::current(),
                node,
            }),
            state,
            cluster_id,
            producer_ids: Mutex::new((0, 0)),
            changes,
        })
    }

    /// The metadata quorum, when the log is replicated.
    pub fn quorum(&self) -> Option<&Quorum> {
        match &self.backend {
            Backend::Replicated(r) => Some(r.quorum()),
            Backend::Local { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests;
