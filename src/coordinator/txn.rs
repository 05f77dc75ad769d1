//! The transaction coordinator (Transactions V1, KIP-98).
//!
//! Per transactional id: producer id and epoch, timeout, state and the partitions of the open
//! transaction, persisted in `__transaction_state` ([`txn_codec`], Kafka's layout) and fsynced
//! before any answer depends on them; memory takes the new state only once its record is
//! durable (a failed write leaves it as it was). EndTxn moves Ongoing -> Prepare{Commit,Abort}
//! (persisted), appends a commit/abort marker (control batch) to every partition of the
//! transaction (through the group coordinator for `__consumer_offsets`, which settles the
//! transactional offsets once the marker is durable), waits for all their fsyncs at once, then
//! persists Complete{Commit,Abort}. A transaction past its timeout is aborted with the epoch bumped, which
//! fences the zombie producer; InitProducerId on an id with an open transaction does the same.
//! Transactions left in a Prepare state by a crash are completed at load. With Transactions V2
//! (KIP-890, EndTxn v5) every EndTxn bumps the epoch with its markers.
//!
//! Expiry (`transactional.id.expiration.ms`, checked every
//! `transaction.remove.expired.transaction.cleanup.interval.ms`): an id in Empty,
//! CompleteCommit or CompleteAbort whose last update is at least that old gets a tombstone in
//! `__transaction_state` (fsynced) and is then dropped from memory, as in Kafka. An id with a
//! transaction open or being completed is never expired. Afterwards the id is unknown: the old
//! producer gets INVALID_PRODUCER_ID_MAPPING, and InitProducerId starts it afresh (new producer
//! id, epoch 0). Replay applies tombstones, so an expired id stays gone across restarts.
//!
//! Concurrency: each id's state sits behind its own async mutex, held across the append and
//! fsync of its record, so records of one id reach the log in the order memory changed. An
//! entry that is removed (expired, or a creation whose first record failed) is marked `Dead`
//! before its mutex is released; whoever was waiting on it looks the id up again.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tokio_util::sync::CancellationToken;

use crate::coordinator::runtime::{self, CoordinatorPartition, Replayed};
use crate::coordinator::txn_codec::{self, TxnState, TxnValue};
use crate::coordinator::{partition_for, GroupCoordinator, OFFSETS_TOPIC};
use crate::log::{now_ms, LogError};
use crate::protocol::records::{build_batch, build_marker, KeyValue};
use crate::protocol::WireError;
use crate::replica::{Partition, ReplicaManager};

pub const TXN_TOPIC: &str = "__transaction_state";

pub use crate::config::txn::TxnConfig;

#[derive(Debug, Clone)]
pub struct TxnMeta {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last Transactions-V2 bump (-1 if none): a retried EndTxn carries it.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub start_ms: i64,
    pub last_update_ms: i64,
}

impl TxnMeta {
    /// The state of an entry that is not (or no longer) a live transactional id.
    fn dead() -> Self {
        TxnMeta {
            producer_id: -1,
            producer_epoch: -1,
            last_producer_epoch: -1,
            timeout_ms: 0,
            state: TxnState::Dead,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: -1,
        }
    }

    fn to_value(&self) -> TxnValue {
        let mut grouped: Vec<(String, Vec<i32>)> = Vec::new();
        for (t, p) in &self.partitions {
            match grouped.last_mut() {
                Some((name, ps)) if name == t => ps.push(*p),
                _ => grouped.push((t.clone(), vec![*p])),
            }
        }
        TxnValue {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions: grouped,
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
        }
    }

    fn from_value(v: TxnValue) -> Self {
        TxnMeta {
            producer_id: v.producer_id,
            producer_epoch: v.producer_epoch,
            last_producer_epoch: -1,
            timeout_ms: v.timeout_ms,
            state: v.state,
            partitions: v
                .partitions
                .into_iter()
                .flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p)))
                .collect(),
            start_ms: v.start_ms,
            last_update_ms: v.last_update_ms,
        }
    }
}

type Entry = Arc<AsyncMutex<TxnMeta>>;
type Guard = OwnedMutexGuard<TxnMeta>;

/// Whether expiry may remove an id in this state (Kafka's `isExpirationAllowed`).
fn expiration_allowed(state: TxnState) -> bool {
    matches!(
        state,
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
    )
}

/// Tombstones are written in batches of at most this many key bytes (well below the topic's
/// `max.message.bytes`, even for ids of the largest length).
const TOMBSTONE_BATCH_BYTES_MAX: usize = 256 << 10;

/// How often an operation re-resolves an id whose entry was removed while it waited.
const LOOKUP_ATTEMPTS_MAX: usize = 16;

pub struct TransactionCoordinator {
    txns: Mutex<HashMap<String, Entry>>,
    /// One slot per `__transaction_state` partition: all filled on a single node; in a
    /// cluster those this broker leads (see [`TransactionCoordinator::load_partition`]).
    partitions: RwLock<Vec<Option<Arc<CoordinatorPartition>>>>,
    replicas: Arc<ReplicaManager>,
    groups: Arc<GroupCoordinator>,
    /// In a cluster: writes the markers of partitions led by other brokers.
    markers: std::sync::OnceLock<Arc<dyn MarkerSender>>,
    pub config: TxnConfig,
}

/// Writes transaction markers through other brokers: in a cluster, WriteTxnMarkers to the
/// leaders of the partitions this broker does not lead.
pub trait MarkerSender: Send + Sync {
    /// Writes the marker of producer `producer_id` at `producer_epoch` (commit or abort) to
    /// each of `partitions` through its leader, and answers each partition's error code, in
    /// order: 0 once the leader has it in its log and its in-sync replicas have it too.
    fn send(
        &self,
        partitions: Vec<(String, i32)>,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> futures::future::BoxFuture<'static, Vec<i16>>;
}

/// How long writing a transaction's markers may take before EndTxn gives up for now
/// (CONCURRENT_TRANSACTIONS: the transaction stays prepared, the coordinator's timer keeps
/// completing it, and the client's retried EndTxn sees it done).
const MARKERS_TIMEOUT: Duration = Duration::from_secs(15);

/// A prepared transaction that no request is completing (its markers failed, or a new
/// coordinator loaded it) is completed by the timer once its last update is this old.
const PREPARED_RETRY_MS: i64 = 1_000;

/// A marker appended here, waiting to be durable (and replicated).
enum LocalMarker {
    Log(Arc<Partition>, i64),
    Group(runtime::Write),
}

/// Upper bound on transactional ids kept (each costs memory until it expires).
const MAX_TRANSACTIONAL_IDS: usize = 1_000_000;

impl TransactionCoordinator {
    pub fn new(
        config: TxnConfig,
        replicas: Arc<ReplicaManager>,
        groups: Arc<GroupCoordinator>,
    ) -> Self {
        TransactionCoordinator {
            txns: Mutex::new(HashMap::new()),
            partitions: RwLock::new(Vec::new()),
            replicas,
            groups,
            markers: std::sync::OnceLock::new(),
            config,
        }
    }

    pub fn is_loaded(&self) -> bool {
        !self.partitions.read().is_empty()
    }

    /// In a cluster: markers for partitions led elsewhere go through `sender`.
    pub fn set_marker_sender(&self, sender: Arc<dyn MarkerSender>) {
        let _ = self.markers.set(sender);
    }

    /// In a cluster: `__transaction_state` has `count` partitions, each loaded when this
    /// broker starts leading it ([`TransactionCoordinator::load_partition`]). Until then the
    /// ids of a partition answer NOT_COORDINATOR.
    pub fn prepare(&self, count: i32) {
        let mut partitions = self.partitions.write();
        if partitions.is_empty() {
            *partitions = vec![None; count.max(0) as usize];
        }
    }

    /// Whether partition `index` is loaded (this broker coordinates its transactional ids).
    pub fn is_partition_loaded(&self, index: i32) -> bool {
        self.partitions
            .read()
            .get(index as usize)
            .is_some_and(|p| p.is_some())
    }

    /// In a cluster, once this broker leads `__transaction_state` partition `index`: replays
    /// it and serves its transactional ids. Transactions it finds prepared are completed by
    /// the timer ([`TransactionCoordinator::run_timers`]).
    pub fn load_partition(&self, index: i32, partition: Arc<Partition>) -> Result<(), LogError> {
        let count = self.partitions.read().len() as i32;
        if index < 0 || index >= count {
            return Err(LogError::Io(std::io::Error::other(format!(
                "{TXN_TOPIC} has no partition {index}"
            ))));
        }
        let state = Self::replay(&partition)?;
        tracing::info!(
            partition = index,
            transactional_ids = state.len(),
            "transaction coordinator partition loaded"
        );
        {
            let mut map = self.txns.lock();
            map.retain(|id, _| partition_for(id, count) != index);
            for (id, m) in state {
                map.insert(id, Arc::new(AsyncMutex::new(m)));
            }
        }
        self.partitions.write()[index as usize] = Some(CoordinatorPartition::new(partition));
        Ok(())
    }

    /// In a cluster, once this broker no longer leads partition `index`: its ids are
    /// forgotten here (their requests answer NOT_COORDINATOR; clients find the new one).
    pub fn unload_partition(&self, index: i32) {
        let count = {
            let mut partitions = self.partitions.write();
            match partitions.get_mut(index as usize) {
                Some(slot) if slot.is_some() => *slot = None,
                _ => return,
            }
            partitions.len() as i32
        };
        self.txns
            .lock()
            .retain(|id, _| partition_for(id, count) != index);
        tracing::info!(
            partition = index,
            "transaction coordinator partition unloaded"
        );
    }

    /// The transactional ids one `__transaction_state` partition holds, from its log.
    fn replay(p: &Partition) -> Result<HashMap<String, TxnMeta>, LogError> {
        let mut state: HashMap<String, TxnMeta> = HashMap::new();
        runtime::replay(&p.log, |r| {
            let Replayed::Record { key, value, .. } = r else {
                return;
            };
            let Ok(id) = txn_codec::decode_key(key) else {
                return;
            };
            match value.and_then(|v| txn_codec::decode_value(v).ok()) {
                Some(v) => {
                    state.insert(id, TxnMeta::from_value(v));
                }
                None => {
                    state.remove(&id);
                }
            }
        })?;
        Ok(state)
    }

    /// Attaches and replays `__transaction_state`; completes transactions a crash left prepared.
    pub async fn load(&self, partitions: Vec<Arc<Partition>>) -> Result<(), LogError> {
        let mut state: HashMap<String, TxnMeta> = HashMap::new();
        for p in &partitions {
            state.extend(Self::replay(p)?);
        }
        tracing::info!(
            transactional_ids = state.len(),
            "transaction coordinator loaded"
        );
        *self.partitions.write() = partitions
            .into_iter()
            .map(|p| Some(CoordinatorPartition::new(p)))
            .collect();
        let prepared: Vec<String> = state
            .iter()
            .filter(|(_, m)| matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort))
            .map(|(id, _)| id.clone())
            .collect();
        {
            let mut map = self.txns.lock();
            for (id, m) in state {
                map.insert(id, Arc::new(AsyncMutex::new(m)));
            }
        }
        for id in prepared {
            let Some(entry) = self.get(&id) else { continue };
            let mut m = entry.lock().await;
            let commit = m.state == TxnState::PrepareCommit;
            let epoch = m.producer_epoch;
            if let Err(code) = self
                .write_markers_and_complete(&id, &mut m, commit, epoch)
                .await
            {
                tracing::warn!(transactional_id = %id, code, "could not complete prepared transaction at load");
            }
        }
        Ok(())
    }

    fn get(&self, id: &str) -> Option<Entry> {
        self.txns.lock().get(id).cloned()
    }

    /// The locked state of a live id, or None if the id is unknown (never seen, or expired).
    async fn lock_live(&self, id: &str) -> Result<Option<Guard>, i16> {
        self.partition_of(id)?;
        for _ in 0..LOOKUP_ATTEMPTS_MAX {
            let Some(entry) = self.get(id) else {
                return Ok(None);
            };
            let guard = entry.lock_owned().await;
            if guard.state != TxnState::Dead {
                return Ok(Some(guard));
            }
            // Removed while we waited: the map now has no entry or a newer one.
        }
        Err(WireError::ConcurrentTransactions.code())
    }

    /// Removes `entry` from the map if it is still the one registered for `id`.
    fn unregister(&self, id: &str, entry: &Entry) {
        let mut map = self.txns.lock();
        if map.get(id).is_some_and(|e| Arc::ptr_eq(e, entry)) {
            map.remove(id);
        }
    }

    /// The partition serving `id`: COORDINATOR_NOT_AVAILABLE before `__transaction_state` is
    /// loaded, NOT_COORDINATOR once its log failed an fsync (memory may then hold a state that
    /// is not durable; a restart replays what is).
    fn partition_of(&self, id: &str) -> Result<Arc<CoordinatorPartition>, i16> {
        let partitions = self.partitions.read();
        let p = partitions
            .get(partition_for(id, partitions.len() as i32) as usize)
            .ok_or(WireError::CoordinatorNotAvailable.code())?
            .as_ref()
            .ok_or(WireError::NotCoordinator.code())?;
        if !p.is_available() {
            return Err(WireError::NotCoordinator.code());
        }
        Ok(p.clone())
    }

    /// Appends records (key, value or tombstone) to one `__transaction_state` partition as one
    /// batch and waits for their fsync.
    async fn append_synced(
        at: &Arc<CoordinatorPartition>,
        records: &[KeyValue<'_>],
    ) -> Result<(), i16> {
        let data = build_batch(records, now_ms());
        let code = |e: LogError| match e {
            // Leadership moved: the client finds the new coordinator.
            LogError::NotLeader(_) => WireError::NotCoordinator.code(),
            // Too few in-sync replicas (Kafka's mapping): retried.
            LogError::NotEnoughReplicas { .. } => WireError::CoordinatorNotAvailable.code(),
            _ => WireError::KafkaStorageError.code(),
        };
        let write = at.append(&data, None).map_err(code)?;
        write.durable().await.map_err(code)
    }

    /// Writes `m` as the id's state and waits until it is durable. Callers change memory only
    /// after this succeeded, so a failed write leaves the state as it was.
    async fn persist(&self, id: &str, m: &TxnMeta) -> Result<(), i16> {
        let at = self.partition_of(id)?;
        let key = txn_codec::encode_key(id);
        let value = txn_codec::encode_value(&m.to_value());
        Self::append_synced(&at, &[(Some(&key), Some(&value))]).await
    }

    /// InitProducerId for a transactional id: a new (or expired) id gets a fresh producer id;
    /// an existing one gets its epoch bumped (aborting, and so fencing, any open transaction of
    /// the old epoch).
    pub async fn init_producer_id(
        &self,
        id: &str,
        timeout_ms: i32,
        alloc: impl Fn() -> Result<i64, i16>,
    ) -> Result<(i64, i16), i16> {
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(WireError::InvalidTransactionTimeout.code());
        }
        self.partition_of(id)?;
        for _ in 0..LOOKUP_ATTEMPTS_MAX {
            // Either the live entry of the id, or a new one registered (locked, so nobody can
            // use it before its first record is durable) under the map lock.
            let (entry, created) = {
                let mut map = self.txns.lock();
                match map.get(id) {
                    Some(e) => (e.clone(), None),
                    None => {
                        if map.len() >= MAX_TRANSACTIONAL_IDS {
                            return Err(WireError::CoordinatorNotAvailable.code());
                        }
                        let e: Entry = Arc::new(AsyncMutex::new(TxnMeta::dead()));
                        let Ok(guard) = e.clone().try_lock_owned() else {
                            return Err(WireError::CoordinatorNotAvailable.code());
                        };
                        map.insert(id.to_string(), e.clone());
                        (e, Some(guard))
                    }
                }
            };
            if let Some(mut m) = created {
                let result = self.create(id, &mut m, timeout_ms, &alloc).await;
                if result.is_err() {
                    // Waiters on this entry see Dead and look the id up again.
                    m.state = TxnState::Dead;
                    self.unregister(id, &entry);
                }
                return result;
            }
            let mut m = entry.lock_owned().await;
            if m.state == TxnState::Dead {
                continue; // expired (or never created) while we waited
            }
            return self.bump_epoch(id, &mut m, timeout_ms, &alloc).await;
        }
        Err(WireError::ConcurrentTransactions.code())
    }

    async fn create(
        &self,
        id: &str,
        m: &mut TxnMeta,
        timeout_ms: i32,
        alloc: &impl Fn() -> Result<i64, i16>,
    ) -> Result<(i64, i16), i16> {
        let next = TxnMeta {
            producer_id: alloc()?,
            producer_epoch: 0,
            last_producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms(),
        };
        self.persist(id, &next).await?;
        *m = next;
        Ok((m.producer_id, m.producer_epoch))
    }

    async fn bump_epoch(
        &self,
        id: &str,
        m: &mut TxnMeta,
        timeout_ms: i32,
        alloc: &impl Fn() -> Result<i64, i16>,
    ) -> Result<(i64, i16), i16> {
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(WireError::ConcurrentTransactions.code())
            }
            TxnState::Ongoing => {
                // Fence the previous producer: abort its transaction under a bumped epoch.
                let fenced_epoch = m.producer_epoch.saturating_add(1);
                self.write_markers_and_complete(id, m, false, fenced_epoch)
                    .await?;
            }
            _ => {}
        }
        let mut next = m.clone();
        if next.producer_epoch >= i16::MAX - 1 {
            next.producer_id = alloc()?;
            next.producer_epoch = 0;
        } else {
            next.producer_epoch += 1;
        }
        next.last_producer_epoch = -1;
        next.timeout_ms = timeout_ms;
        next.state = TxnState::Empty;
        next.partitions.clear();
        next.last_update_ms = now_ms();
        self.persist(id, &next).await?;
        *m = next;
        Ok((m.producer_id, m.producer_epoch))
    }

    fn check_producer(m: &TxnMeta, pid: i64, epoch: i16) -> Result<(), i16> {
        if m.producer_id != pid {
            return Err(WireError::InvalidProducerIdMapping.code());
        }
        if m.producer_epoch != epoch {
            return Err(WireError::ProducerFenced.code());
        }
        Ok(())
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: registers partitions with the open transaction.
    pub async fn add_partitions(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        parts: &[(String, i32)],
    ) -> Result<(), i16> {
        let mut m = self
            .lock_live(id)
            .await?
            .ok_or(WireError::InvalidProducerIdMapping.code())?;
        Self::check_producer(&m, pid, epoch)?;
        if matches!(
            m.state,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        ) {
            return Err(WireError::ConcurrentTransactions.code());
        }
        if m.state == TxnState::Ongoing && parts.iter().all(|p| m.partitions.contains(p)) {
            return Ok(());
        }
        let mut next = m.clone();
        if next.state != TxnState::Ongoing {
            next.partitions.clear();
            next.start_ms = now_ms();
        }
        next.partitions.extend(parts.iter().cloned());
        next.state = TxnState::Ongoing;
        next.last_update_ms = now_ms();
        self.persist(id, &next).await?;
        *m = next;
        Ok(())
    }

    /// EndTxn: commits or aborts the open transaction (idempotent for a retried request).
    /// With `bump` (Transactions V2, EndTxn v5) the producer epoch moves to epoch + 1 with the
    /// markers, fencing every write of the finished transaction, and the new (id, epoch) is
    /// returned; on epoch exhaustion the producer continues under a new id at epoch 0.
    pub async fn end_txn(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        commit: bool,
        bump: bool,
        alloc: impl Fn() -> Result<i64, i16>,
    ) -> Result<(i64, i16), i16> {
        let mut m = self
            .lock_live(id)
            .await?
            .ok_or(WireError::InvalidProducerIdMapping.code())?;
        if m.producer_id != pid {
            return Err(WireError::InvalidProducerIdMapping.code());
        }
        let done = (m.state == TxnState::CompleteCommit && commit)
            || (m.state == TxnState::CompleteAbort && !commit);
        // The epoch before the bump is kept in memory only: a coordinator that loaded the id
        // (another broker's leadership ended mid-EndTxn) knows the bump from its
        // Prepare/Complete record alone.
        let bumped_from_here = epoch == m.last_producer_epoch
            || (m.last_producer_epoch < 0
                && matches!(
                    m.state,
                    TxnState::PrepareCommit
                        | TxnState::PrepareAbort
                        | TxnState::CompleteCommit
                        | TxnState::CompleteAbort
                ));
        if bump && bumped_from_here && epoch.checked_add(1) == Some(m.producer_epoch) {
            // A retry of an EndTxn that bumped the epoch: completed, or still completing.
            return match m.state {
                _ if done => Ok((m.producer_id, m.producer_epoch)),
                TxnState::PrepareCommit | TxnState::PrepareAbort => {
                    Err(WireError::ConcurrentTransactions.code())
                }
                _ => Err(WireError::InvalidTxnState.code()),
            };
        }
        if m.producer_epoch != epoch {
            return Err(WireError::ProducerFenced.code());
        }
        let marker_epoch = if bump { epoch.saturating_add(1) } else { epoch };
        match (m.state, commit) {
            (TxnState::Ongoing, _) => {
                self.write_markers_and_complete(id, &mut m, commit, marker_epoch)
                    .await?
            }
            // V2 may abort a transaction that never added a partition.
            (TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort, false)
                if bump =>
            {
                self.write_markers_and_complete(id, &mut m, false, marker_epoch)
                    .await?
            }
            _ if done && !bump => {}
            (TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence, _) => {
                return Err(WireError::ConcurrentTransactions.code())
            }
            _ => return Err(WireError::InvalidTxnState.code()),
        }
        if bump && m.producer_epoch >= i16::MAX - 1 {
            let mut next = m.clone();
            next.producer_id = alloc()?;
            next.producer_epoch = 0;
            next.last_producer_epoch = -1;
            self.persist(id, &next).await?;
            *m = next;
        }
        Ok((m.producer_id, m.producer_epoch))
    }

    /// Transactions V1 partition verification: whether the producer's open transaction at
    /// this epoch includes the partition (a transactional write to any other partition is a
    /// hanging-transaction risk and is refused with INVALID_TXN_STATE, like Kafka 3.6+).
    pub async fn verify_partition(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), i16> {
        let m = self
            .lock_live(id)
            .await?
            .ok_or(WireError::InvalidProducerIdMapping.code())?;
        if m.producer_id != pid {
            return Err(WireError::InvalidProducerIdMapping.code());
        }
        if epoch < m.producer_epoch {
            return Err(WireError::ProducerFenced.code());
        }
        if m.state == TxnState::Ongoing
            && m.producer_epoch == epoch
            && m.partitions.contains(&(topic.to_string(), partition))
        {
            Ok(())
        } else {
            Err(WireError::InvalidTxnState.code())
        }
    }

    /// Prepare (persisted, with the epoch the markers carry), markers to every partition
    /// (durable, and replicated in a cluster), offsets settled, Complete.
    async fn write_markers_and_complete(
        &self,
        id: &str,
        m: &mut TxnMeta,
        commit: bool,
        marker_epoch: i16,
    ) -> Result<(), i16> {
        let mut prepared = m.clone();
        prepared.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        if marker_epoch != m.producer_epoch {
            // The markers carry the new epoch: the producer continues with it (V2 bump,
            // fence). Recorded with the prepare, so whoever completes it uses the same.
            prepared.last_producer_epoch = m.producer_epoch;
            prepared.producer_epoch = marker_epoch;
        }
        prepared.last_update_ms = now_ms();
        if m.state != prepared.state || m.producer_epoch != prepared.producer_epoch {
            self.persist(id, &prepared).await?;
        }
        *m = prepared;
        self.write_markers(id, m, commit).await?;
        let mut done = m.clone();
        done.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        done.partitions.clear();
        done.last_update_ms = now_ms();
        self.persist(id, &done).await?;
        *m = done;
        Ok(())
    }

    /// Writes the marker of `m`'s transaction to each of its partitions and waits until all
    /// are durable: those led here appended here (through the group coordinator for
    /// `__consumer_offsets`, which settles the transactional offsets once the marker is
    /// durable), all appended first and then waited for together (one fsync per log, in
    /// parallel); in a cluster the others through their leaders ([`MarkerSender`]), retried
    /// (leaders move) for up to [`MARKERS_TIMEOUT`].
    async fn write_markers(&self, id: &str, m: &TxnMeta, commit: bool) -> Result<(), i16> {
        let coordinator_epoch = self.partition_of(id)?.partition.leader_epoch().max(0);
        let sender = self.markers.get().cloned();
        let deadline = tokio::time::Instant::now() + MARKERS_TIMEOUT;
        let mut backoff = Duration::from_millis(50);
        let mut pending: Vec<(String, i32)> = m.partitions.iter().cloned().collect();
        loop {
            let mut local = Vec::new();
            let mut remote = Vec::new();
            let mut again = Vec::new();
            for (topic, partition) in std::mem::take(&mut pending) {
                let marker = build_marker(
                    m.producer_id,
                    m.producer_epoch,
                    commit,
                    coordinator_epoch,
                    now_ms(),
                );
                let written = if topic == OFFSETS_TOPIC {
                    if sender.is_some() && !self.groups.is_partition_loaded(partition) {
                        remote.push((topic, partition));
                        continue;
                    }
                    self.groups
                        .append_marker(partition, &marker, m.producer_id, commit)
                        .map(LocalMarker::Group)
                } else {
                    match self.replicas.get(&topic, partition) {
                        Some(part) if sender.is_none() || part.is_leader() => {
                            part.append_as_leader(&marker, now_ms(), true).map(|info| {
                                part.appended();
                                LocalMarker::Log(part.clone(), info.last_offset + 1)
                            })
                        }
                        // A single node without the partition: the topic was deleted.
                        None if sender.is_none() => continue,
                        _ => {
                            remote.push((topic, partition));
                            continue;
                        }
                    }
                };
                match written {
                    Ok(w) => local.push(((topic, partition), w)),
                    Err(LogError::NotLeader(_)) if sender.is_some() => {
                        remote.push((topic, partition))
                    }
                    // Retried until the partition's ISR is back to min.insync.replicas.
                    Err(LogError::NotEnoughReplicas { .. }) if sender.is_some() => {
                        again.push((topic, partition))
                    }
                    Err(e) => {
                        tracing::warn!(topic, partition, error = %e, "writing a transaction marker failed");
                        return Err(WireError::KafkaStorageError.code());
                    }
                }
            }
            let local_done =
                futures::future::join_all(local.into_iter().map(|(tp, w)| async move {
                    let r = match w {
                        LocalMarker::Log(part, end) => match part.log.flush_to(end).await {
                            Ok(()) => part.wait_high_watermark(end, MARKERS_TIMEOUT).await,
                            Err(e) => Err(e),
                        },
                        LocalMarker::Group(write) => write.durable().await,
                    };
                    (tp, r)
                }));
            let remote_done = async {
                match (&sender, remote.is_empty()) {
                    (Some(sender), false) => {
                        let codes = sender
                            .send(
                                remote.clone(),
                                m.producer_id,
                                m.producer_epoch,
                                commit,
                                coordinator_epoch,
                            )
                            .await;
                        remote.into_iter().zip(codes).collect()
                    }
                    _ => Vec::new(),
                }
            };
            let (local_results, remote_results) = tokio::join!(local_done, remote_done);
            pending = again;
            for (tp, r) in local_results {
                match r {
                    Ok(()) => {}
                    Err(LogError::NotLeader(_) | LogError::NotEnoughReplicas { .. })
                        if sender.is_some() =>
                    {
                        pending.push(tp)
                    }
                    Err(e) => {
                        tracing::warn!(topic = tp.0, partition = tp.1, error = %e, "a transaction marker did not become durable");
                        return Err(WireError::KafkaStorageError.code());
                    }
                }
            }
            for (tp, code) in remote_results {
                if code != 0 {
                    tracing::debug!(
                        topic = tp.0,
                        partition = tp.1,
                        code,
                        "a transaction marker was not written; retrying"
                    );
                    pending.push(tp);
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() + backoff >= deadline {
                tracing::warn!(
                    transactional_id = %id,
                    partitions = ?pending,
                    "transaction markers not written yet; the transaction stays prepared and is retried"
                );
                return Err(WireError::ConcurrentTransactions.code());
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// Background work until shutdown: aborts transactions past their timeout (every second)
    /// and removes expired transactional ids (every
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`, first after one interval,
    /// like Kafka's scheduler).
    pub async fn run_timers(self: Arc<Self>, shutdown: CancellationToken) {
        let mut timeouts = tokio::time::interval(Duration::from_millis(1000));
        let period = Duration::from_millis(self.config.remove_expired_interval_ms.max(1));
        let mut expiry = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = timeouts.tick() => self.abort_timed_out(now_ms()).await,
                _ = expiry.tick() => {
                    self.remove_expired(now_ms()).await;
                }
                _ = shutdown.cancelled() => return,
            }
        }
    }

    fn entries(&self) -> Vec<(String, Entry)> {
        self.txns
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Aborts transactions open longer than their timeout, fencing their producers, and
    /// completes prepared transactions that no request is completing (markers that could not
    /// be written, or a transaction a new coordinator found prepared).
    async fn abort_timed_out(&self, now: i64) {
        for (id, e) in self.entries() {
            let Ok(mut m) = e.try_lock() else { continue };
            if matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
                && now - m.last_update_ms >= PREPARED_RETRY_MS
            {
                let commit = m.state == TxnState::PrepareCommit;
                let epoch = m.producer_epoch;
                if let Err(code) = self
                    .write_markers_and_complete(&id, &mut m, commit, epoch)
                    .await
                {
                    tracing::debug!(transactional_id = %id, code, "completing a prepared transaction failed; will retry");
                }
                continue;
            }
            if m.state == TxnState::Ongoing
                && m.start_ms >= 0
                && now - m.start_ms > i64::from(m.timeout_ms)
            {
                tracing::info!(transactional_id = %id, "aborting transaction past its timeout");
                let fenced_epoch = m.producer_epoch.saturating_add(1);
                // The markers carry the bumped epoch, which fences the silent producer.
                if let Err(code) = self
                    .write_markers_and_complete(&id, &mut m, false, fenced_epoch)
                    .await
                {
                    tracing::warn!(transactional_id = %id, code, "aborting a timed-out transaction failed; will retry");
                }
            }
        }
    }

    /// Removes every transactional id without an open transaction whose last update is at
    /// least `transactional.id.expiration.ms` before `now`: tombstones are appended to its
    /// `__transaction_state` partition and fsynced, then the ids leave memory. Ids busy with a
    /// request are skipped until the next run. Returns how many ids were removed.
    pub async fn remove_expired(&self, now: i64) -> usize {
        let cutoff = now.saturating_sub(self.config.id_expiration_ms);
        let partitions = self.partitions.read().len() as i32;
        if partitions == 0 {
            return 0;
        }
        // Expired ids by partition, each held locked until its tombstone is durable.
        let mut by_partition: HashMap<i32, Vec<(String, Entry, Guard)>> = HashMap::new();
        for (id, e) in self.entries() {
            let Ok(m) = e.clone().try_lock_owned() else {
                continue;
            };
            if expiration_allowed(m.state) && m.last_update_ms <= cutoff {
                by_partition
                    .entry(partition_for(&id, partitions))
                    .or_default()
                    .push((id, e, m));
            }
        }
        let mut removed = 0;
        for (partition, mut expired) in by_partition {
            let Some(at) = self
                .partitions
                .read()
                .get(partition as usize)
                .cloned()
                .flatten()
            else {
                continue;
            };
            if !at.is_available() {
                continue;
            }
            while !expired.is_empty() {
                let mut size = 0;
                let n = expired
                    .iter()
                    .take_while(|(id, _, _)| {
                        size += id.len() + 64;
                        size <= TOMBSTONE_BATCH_BYTES_MAX
                    })
                    .count()
                    .max(1);
                let chunk: Vec<_> = expired.drain(..n).collect();
                let keys: Vec<Vec<u8>> = chunk
                    .iter()
                    .map(|(id, _, _)| txn_codec::encode_key(id))
                    .collect();
                let records: Vec<KeyValue<'_>> =
                    keys.iter().map(|k| (Some(k.as_slice()), None)).collect();
                if let Err(code) = Self::append_synced(&at, &records).await {
                    tracing::warn!(
                        partition,
                        code,
                        ids = chunk.len(),
                        "writing tombstones of expired transactional ids failed; will retry"
                    );
                    continue;
                }
                for (id, e, mut m) in chunk {
                    tracing::info!(
                        transactional_id = %id,
                        producer_id = m.producer_id,
                        last_update_ms = m.last_update_ms,
                        "transactional id expired"
                    );
                    m.state = TxnState::Dead;
                    self.unregister(&id, &e);
                    removed += 1;
                }
            }
        }
        removed
    }

    /// (transactional id, producer id, state, start ms) of every transaction (ListTransactions).
    pub async fn list(&self) -> Vec<(String, i64, TxnState, i64)> {
        let mut out = Vec::new();
        for (id, e) in self.entries() {
            let m = e.lock().await;
            if m.state != TxnState::Dead {
                out.push((id, m.producer_id, m.state, m.start_ms));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The state of a live transactional id (None if unknown or expired).
    pub async fn describe(&self, id: &str) -> Option<TxnMeta> {
        let m = self.lock_live(id).await.ok()??;
        Some(m.clone())
    }
}

impl runtime::PartitionedCoordinator for TransactionCoordinator {
    fn prepare(&self, count: i32) {
        TransactionCoordinator::prepare(self, count)
    }
    fn is_partition_loaded(&self, index: i32) -> bool {
        TransactionCoordinator::is_partition_loaded(self, index)
    }
    fn load_partition(&self, index: i32, partition: Arc<Partition>) -> Result<(), LogError> {
        TransactionCoordinator::load_partition(self, index, partition)
    }
    fn unload_partition(&self, index: i32) {
        TransactionCoordinator::unload_partition(self, index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::log::{LogConfig, PartitionLog};
    use std::sync::atomic::{AtomicI64, Ordering};

    const EXPIRY_MS: i64 = 10_000;

    /// [`coordinator`] with both partitions loaded, as their leader's would be.
    fn coordinator_serving_all(
        dir: &std::path::Path,
    ) -> (TransactionCoordinator, Vec<Arc<Partition>>) {
        let (c, logs) = coordinator(dir);
        c.prepare(2);
        for (i, p) in logs.iter().enumerate() {
            c.load_partition(i as i32, p.clone()).expect("load");
        }
        (c, logs)
    }

    fn coordinator(dir: &std::path::Path) -> (TransactionCoordinator, Vec<Arc<Partition>>) {
        let defaults = BrokerConfig::default();
        let config = TxnConfig {
            partitions: 2,
            id_expiration_ms: EXPIRY_MS,
            ..defaults.txns.clone()
        };
        let logs = (0..2)
            .map(|p| {
                let log =
                    PartitionLog::open(dir, &format!("{TXN_TOPIC}-{p}"), LogConfig::default(), 0)
                        .expect("open log");
                Arc::new(Partition::new(
                    Arc::from(TXN_TOPIC),
                    uuid::Uuid::nil(),
                    p,
                    Arc::new(log),
                    0,
                    1,
                ))
            })
            .collect();
        let groups = Arc::new(GroupCoordinator::new(defaults.groups));
        let c = TransactionCoordinator::new(config, Arc::new(ReplicaManager::default()), groups);
        (c, logs)
    }

    #[tokio::test]
    async fn a_failed_write_leaves_the_transactional_state_as_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = crate::log::io::FaultyStorage::default();
        let log = PartitionLog::open_with(
            Arc::new(storage.clone()),
            dir.path(),
            &format!("{TXN_TOPIC}-0"),
            LogConfig::default(),
            0,
        )
        .expect("open log");
        let p = Arc::new(Partition::new(
            Arc::from(TXN_TOPIC),
            uuid::Uuid::nil(),
            0,
            Arc::new(log),
            0,
            1,
        ));
        let defaults = BrokerConfig::default();
        let config = TxnConfig {
            partitions: 1,
            ..defaults.txns.clone()
        };
        let groups = Arc::new(GroupCoordinator::new(defaults.groups));
        let c = TransactionCoordinator::new(config, Arc::new(ReplicaManager::default()), groups);
        c.load(vec![p]).await.expect("load");
        let alloc = ids();
        let (pid, epoch) = c.init_producer_id("t", 60_000, &alloc).await.expect("init");
        storage
            .faults
            .enospc
            .store(true, std::sync::atomic::Ordering::Release);
        assert_eq!(
            c.init_producer_id("t", 60_000, &alloc).await,
            Err(WireError::KafkaStorageError.code())
        );
        let m = c.describe("t").await.expect("known");
        assert_eq!((m.producer_id, m.producer_epoch), (pid, epoch), "no bump");
        storage
            .faults
            .enospc
            .store(false, std::sync::atomic::Ordering::Release);
        let (pid2, epoch2) = c.init_producer_id("t", 60_000, &alloc).await.expect("init");
        assert_eq!((pid2, epoch2), (pid, epoch + 1));
    }

    async fn loaded(dir: &std::path::Path) -> TransactionCoordinator {
        let (c, logs) = coordinator(dir);
        c.load(logs).await.expect("load");
        c
    }

    fn ids() -> impl Fn() -> Result<i64, i16> {
        let next = AtomicI64::new(1000);
        move || Ok(next.fetch_add(1, Ordering::Relaxed))
    }

    #[tokio::test]
    async fn idle_ids_expire_durably_and_restart_fresh() {
        let dir = tempfile::tempdir().expect("tempdir");
        let alloc = ids();
        let (pid, epoch) = {
            let c = loaded(dir.path()).await;
            let (pid, epoch) = c
                .init_producer_id("idle", 60_000, &alloc)
                .await
                .expect("init");
            c.init_producer_id("kept", 60_000, &alloc)
                .await
                .expect("init");
            let now = now_ms();
            assert_eq!(c.remove_expired(now).await, 0, "nothing is old yet");
            // Age "idle" only: both are past the cutoff at now + EXPIRY_MS, so bump "kept".
            let later = now + EXPIRY_MS + 1;
            {
                let e = c.get("kept").expect("kept");
                e.lock().await.last_update_ms = later;
            }
            assert_eq!(c.remove_expired(later).await, 1);
            let listed: Vec<String> = c.list().await.into_iter().map(|t| t.0).collect();
            assert_eq!(listed, vec!["kept".to_string()]);
            assert!(c.describe("idle").await.is_none());
            // The old producer is unknown now.
            assert_eq!(
                c.add_partitions("idle", pid, epoch, &[("t".into(), 0)])
                    .await,
                Err(WireError::InvalidProducerIdMapping.code())
            );
            assert_eq!(
                c.end_txn("idle", pid, epoch, true, false, &alloc).await,
                Err(WireError::InvalidProducerIdMapping.code())
            );
            (pid, epoch)
        };
        // Replay honours the tombstone.
        let c = loaded(dir.path()).await;
        assert!(c.describe("idle").await.is_none());
        assert!(c.describe("kept").await.is_some());
        let (pid2, epoch2) = c
            .init_producer_id("idle", 60_000, &alloc)
            .await
            .expect("init");
        assert_ne!(pid2, pid, "a fresh producer id after expiry");
        assert_eq!(epoch2, 0);
        assert_eq!(epoch, 0);
    }

    #[tokio::test]
    async fn ids_with_a_transaction_in_progress_never_expire() {
        let dir = tempfile::tempdir().expect("tempdir");
        let alloc = ids();
        let c = loaded(dir.path()).await;
        let (pid, epoch) = c
            .init_producer_id("open", 60_000, &alloc)
            .await
            .expect("init");
        c.add_partitions("open", pid, epoch, &[("t".into(), 0)])
            .await
            .expect("add");
        let far = now_ms() + 100 * EXPIRY_MS;
        assert_eq!(c.remove_expired(far).await, 0);
        let m = c.describe("open").await.expect("still there");
        assert_eq!(m.state, TxnState::Ongoing);
        // Once complete it may expire (the partition has no log here: no marker is written).
        c.end_txn("open", pid, epoch, true, false, &alloc)
            .await
            .expect("commit");
        assert_eq!(c.remove_expired(far).await, 1);
        assert!(c.list().await.is_empty());
    }

    #[tokio::test]
    async fn a_request_waiting_on_an_expiring_id_sees_it_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let alloc = ids();
        let c = Arc::new(loaded(dir.path()).await);
        let (pid, _) = c
            .init_producer_id("race", 60_000, &alloc)
            .await
            .expect("init");
        // Hold the entry as expiry does, start an InitProducerId that must wait on it, then
        // remove the entry the way expiry does.
        let entry = c.get("race").expect("entry");
        let mut held = entry.clone().lock_owned().await;
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move {
                let alloc = ids();
                c.init_producer_id("race", 60_000, move || alloc().map(|p| p + 1_000_000))
                    .await
            })
        };
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "InitProducerId waits on the held entry"
        );
        held.state = TxnState::Dead;
        c.unregister("race", &entry);
        drop(held);
        let (pid2, epoch2) = waiter.await.expect("join").expect("init");
        assert_ne!(pid2, pid);
        assert!(
            pid2 >= 1_000_000,
            "allocated anew, not a bump of the removed entry: {pid2}"
        );
        assert_eq!(epoch2, 0);
        let m = c.describe("race").await.expect("registered again");
        assert_eq!((m.producer_id, m.producer_epoch), (pid2, 0));
    }

    /// In a cluster each `__transaction_state` partition is served by its leader: unloaded,
    /// its ids answer NOT_COORDINATOR; another coordinator that loads the same log (the new
    /// leader's replica) serves them as they were, and continues their epochs.
    #[tokio::test]
    async fn a_partition_moves_to_another_coordinator_with_its_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, logs) = coordinator_serving_all(dir.path());
        let alloc = ids();
        let (pid, epoch) = a
            .init_producer_id("moving", 60_000, &alloc)
            .await
            .expect("init");
        let index = partition_for("moving", 2);
        a.unload_partition(index);
        assert_eq!(
            a.init_producer_id("moving", 60_000, &alloc).await,
            Err(WireError::NotCoordinator.code()),
            "an unloaded partition's ids are not served here"
        );
        assert!(a.describe("moving").await.is_none());

        let (b, _) = coordinator(dir.path());
        b.prepare(2);
        assert_eq!(
            b.init_producer_id("moving", 60_000, &alloc).await,
            Err(WireError::NotCoordinator.code()),
            "nothing served before its partition loads"
        );
        b.load_partition(index, logs[index as usize].clone())
            .expect("load");
        let m = b.describe("moving").await.expect("loaded");
        assert_eq!((m.producer_id, m.producer_epoch), (pid, epoch));
        assert_eq!(
            b.init_producer_id("moving", 60_000, &alloc).await,
            Ok((pid, epoch + 1)),
            "the new coordinator bumps the epoch the old one gave"
        );
    }

    /// Transactions V2: a client whose EndTxn reached a coordinator that bumped the epoch and
    /// then lost its leadership retries it at the new coordinator with the old epoch; that one
    /// knows the bump from the log alone and answers the retry with the new epoch (before,
    /// PRODUCER_FENCED: the Java 4.4 producer died when its coordinator's broker was killed).
    #[tokio::test]
    async fn a_retried_v2_end_txn_is_answered_by_the_next_coordinator() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, logs) = coordinator_serving_all(dir.path());
        let alloc = ids();
        let (pid, epoch) = a
            .init_producer_id("v2", 60_000, &alloc)
            .await
            .expect("init");
        a.add_partitions("v2", pid, epoch, &[("gone".to_string(), 0)])
            .await
            .expect("add");
        assert_eq!(
            a.end_txn("v2", pid, epoch, true, true, &alloc).await,
            Ok((pid, epoch + 1))
        );

        let (b, _) = coordinator(dir.path());
        b.prepare(2);
        let index = partition_for("v2", 2);
        b.load_partition(index, logs[index as usize].clone())
            .expect("load");
        assert_eq!(
            b.end_txn("v2", pid, epoch, true, true, &alloc).await,
            Ok((pid, epoch + 1)),
            "the retry is answered with the bumped epoch"
        );
        assert_eq!(
            b.end_txn("v2", pid, epoch, false, true, &alloc).await,
            Err(WireError::InvalidTxnState.code()),
            "the other outcome is not a retry"
        );
    }
}
