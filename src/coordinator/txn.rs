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
    partitions: RwLock<Vec<Arc<CoordinatorPartition>>>,
    replicas: Arc<ReplicaManager>,
    groups: Arc<GroupCoordinator>,
    pub config: TxnConfig,
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
            config,
        }
    }

    pub fn is_loaded(&self) -> bool {
        !self.partitions.read().is_empty()
    }

    /// Attaches and replays `__transaction_state`; completes transactions a crash left prepared.
    pub async fn load(&self, partitions: Vec<Arc<Partition>>) -> Result<(), LogError> {
        let mut state: HashMap<String, TxnMeta> = HashMap::new();
        for p in &partitions {
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
        }
        tracing::info!(
            transactional_ids = state.len(),
            "transaction coordinator loaded"
        );
        *self.partitions.write() = partitions
            .into_iter()
            .map(CoordinatorPartition::new)
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
            .ok_or(WireError::CoordinatorNotAvailable.code())?;
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
        let write = at
            .append(&data, None)
            .map_err(|_| WireError::KafkaStorageError.code())?;
        write
            .durable()
            .await
            .map_err(|_| WireError::KafkaStorageError.code())
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
        if bump && epoch == m.last_producer_epoch && epoch + 1 == m.producer_epoch {
            // A retry of an EndTxn that already completed and bumped the epoch.
            return if done {
                Ok((m.producer_id, m.producer_epoch))
            } else {
                Err(WireError::InvalidTxnState.code())
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

    /// Prepare (persisted), markers to every partition (fsynced), offsets settled, Complete.
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
        prepared.last_update_ms = now_ms();
        if m.state != prepared.state {
            self.persist(id, &prepared).await?;
        }
        *m = prepared;
        // Every marker is appended first, then all are waited for together (one fsync per
        // log, in parallel), not one append-and-fsync after another.
        let mut writes = Vec::with_capacity(m.partitions.len());
        for (topic, partition) in m.partitions.clone() {
            let marker = build_marker(m.producer_id, marker_epoch, commit, 0, now_ms());
            let written = if topic == OFFSETS_TOPIC {
                // Through the group coordinator: the transaction's offsets apply once the
                // marker is durable, in order with the partition's other writes.
                self.groups
                    .append_marker(partition, &marker, m.producer_id, commit)
                    .map(|w| (None, Some(w)))
            } else {
                let Some(part) = self.replicas.get(&topic, partition) else {
                    continue;
                };
                part.append_as_leader(&marker, now_ms(), true).map(|info| {
                    part.appended();
                    (Some((part.clone(), info.last_offset + 1)), None)
                })
            };
            match written {
                Ok(w) => writes.push(w),
                Err(e) => {
                    tracing::warn!(topic, partition, error = %e, "writing a transaction marker failed");
                    return Err(WireError::KafkaStorageError.code());
                }
            }
        }
        let durable = writes.into_iter().map(|w| async move {
            match w {
                (Some((part, end)), _) => part.log.flush_to(end).await,
                (_, Some(write)) => write.durable().await,
                (None, None) => Ok(()),
            }
        });
        for r in futures::future::join_all(durable).await {
            r.map_err(|_| WireError::KafkaStorageError.code())?;
        }
        let mut done = m.clone();
        if marker_epoch != m.producer_epoch {
            // The markers carry the new epoch: the producer continues with it (V2 bump, fence).
            done.last_producer_epoch = m.producer_epoch;
            done.producer_epoch = marker_epoch;
        }
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

    /// Aborts transactions open longer than their timeout, fencing their producers.
    async fn abort_timed_out(&self, now: i64) {
        for (id, e) in self.entries() {
            let Ok(mut m) = e.try_lock() else { continue };
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
            let Some(at) = self.partitions.read().get(partition as usize).cloned() else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::log::{LogConfig, PartitionLog};
    use std::sync::atomic::{AtomicI64, Ordering};

    const EXPIRY_MS: i64 = 10_000;

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
}
