//! The transaction coordinator (Transactions V1, KIP-98).
//!
//! Per transactional id: producer id and epoch, timeout, state and the partitions of the open
//! transaction, persisted in `__transaction_state` ([`txn_codec`], Kafka's layout) and fsynced
//! before any answer depends on them. EndTxn moves Ongoing -> Prepare{Commit,Abort} (persisted),
//! writes a commit/abort marker (control batch) to every partition of the transaction and waits
//! for their fsync, tells the group coordinator to settle transactional offsets, then persists
//! Complete{Commit,Abort}. A transaction past its timeout is aborted with the epoch bumped, which
//! fences the zombie producer; InitProducerId on an id with an open transaction does the same.
//! Transactions left in a Prepare state by a crash are completed at load.
//!
//! Known gaps: Transactions V2 (KIP-890: epoch bump per transaction, implicit partition adds)
//! is not advertised, so clients use V1; produce-side verification that a partition was added
//! to the transaction is not done.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::Mutex as AsyncMutex;
use tokio_util::sync::CancellationToken;

use crate::coordinator::txn_codec::{self, TxnState, TxnValue};
use crate::coordinator::{partition_for, GroupCoordinator, OFFSETS_TOPIC};
use crate::log::{now_ms, PartitionLog};
use crate::protocol::batch::BatchIter;
use crate::protocol::records::{build_batch, build_marker, for_each_record};
use crate::protocol::WireError;
use crate::replica::ReplicaManager;

pub const TXN_TOPIC: &str = "__transaction_state";

#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transaction.state.log.num.partitions`.
    pub partitions: i32,
}

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

pub struct TransactionCoordinator {
    txns: Mutex<HashMap<String, Entry>>,
    logs: RwLock<Vec<Arc<PartitionLog>>>,
    replicas: Arc<ReplicaManager>,
    groups: Arc<GroupCoordinator>,
    pub config: TxnConfig,
}

/// Upper bound on transactional ids kept (each costs memory until expiry exists).
const MAX_TRANSACTIONAL_IDS: usize = 1_000_000;

impl TransactionCoordinator {
    pub fn new(
        config: TxnConfig,
        replicas: Arc<ReplicaManager>,
        groups: Arc<GroupCoordinator>,
    ) -> Self {
        TransactionCoordinator {
            txns: Mutex::new(HashMap::new()),
            logs: RwLock::new(Vec::new()),
            replicas,
            groups,
            config,
        }
    }

    pub fn is_loaded(&self) -> bool {
        !self.logs.read().is_empty()
    }

    /// Attaches and replays `__transaction_state`; completes transactions a crash left prepared.
    pub async fn load(&self, logs: Vec<Arc<PartitionLog>>) -> Result<(), crate::log::LogError> {
        let mut state: HashMap<String, TxnMeta> = HashMap::new();
        for log in &logs {
            let end = log.log_end_offset();
            let mut offset = log.log_start_offset();
            while offset < end {
                let r = log.read(offset, 4 << 20, end, true)?;
                if r.data.is_empty() {
                    break;
                }
                for batch in BatchIter::new(&r.data, false) {
                    let batch = batch?;
                    offset = batch.last_offset() + 1;
                    let _ = for_each_record(&batch, 64 << 20, |rec| {
                        let Some(id) = rec.key.and_then(|k| txn_codec::decode_key(k).ok()) else {
                            return;
                        };
                        match rec.value.and_then(|v| txn_codec::decode_value(v).ok()) {
                            Some(v) => {
                                state.insert(id, TxnMeta::from_value(v));
                            }
                            None => {
                                state.remove(&id);
                            }
                        }
                    });
                }
            }
        }
        tracing::info!(
            transactional_ids = state.len(),
            "transaction coordinator loaded"
        );
        *self.logs.write() = logs;
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

    async fn persist(&self, id: &str, m: &TxnMeta) -> Result<(), i16> {
        let log = {
            let logs = self.logs.read();
            logs.get(partition_for(id, logs.len() as i32) as usize)
                .cloned()
        };
        let Some(log) = log else {
            return Err(WireError::CoordinatorNotAvailable.code());
        };
        let key = txn_codec::encode_key(id);
        let value = txn_codec::encode_value(&m.to_value());
        let mut data = build_batch(&[(Some(&key), Some(&value))], now_ms());
        let info = log
            .append_internal(&mut data, 0, now_ms())
            .map_err(|_| WireError::KafkaStorageError.code())?;
        log.flush_to(info.last_offset + 1)
            .await
            .map_err(|_| WireError::KafkaStorageError.code())
    }

    /// InitProducerId for a transactional id: a new id gets a fresh producer id; an existing one
    /// gets its epoch bumped (aborting, and so fencing, any open transaction of the old epoch).
    pub async fn init_producer_id(
        &self,
        id: &str,
        timeout_ms: i32,
        alloc: impl Fn() -> Result<i64, i16>,
    ) -> Result<(i64, i16), i16> {
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(WireError::InvalidTransactionTimeout.code());
        }
        let entry = {
            let map = self.txns.lock();
            match map.get(id) {
                Some(e) => Some(e.clone()),
                None => {
                    if map.len() >= MAX_TRANSACTIONAL_IDS {
                        return Err(WireError::CoordinatorNotAvailable.code());
                    }
                    None
                }
            }
        };
        let now = now_ms();
        let Some(entry) = entry else {
            let m = TxnMeta {
                producer_id: alloc()?,
                producer_epoch: 0,
                last_producer_epoch: -1,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                start_ms: -1,
                last_update_ms: now,
            };
            self.persist(id, &m).await?;
            let out = (m.producer_id, m.producer_epoch);
            // A concurrent InitProducerId for the same new id: the first one wins.
            let existing = {
                let mut map = self.txns.lock();
                match map.get(id) {
                    Some(e) => Some(e.clone()),
                    None => {
                        map.insert(id.to_string(), Arc::new(AsyncMutex::new(m)));
                        None
                    }
                }
            };
            if let Some(e) = existing {
                let g = e.lock().await;
                return Ok((g.producer_id, g.producer_epoch));
            }
            return Ok(out);
        };
        let mut m = entry.lock().await;
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(WireError::ConcurrentTransactions.code())
            }
            TxnState::Ongoing => {
                // Fence the previous producer: abort its transaction under a bumped epoch.
                let fenced_epoch = m.producer_epoch.saturating_add(1);
                self.write_markers_and_complete(id, &mut m, false, fenced_epoch)
                    .await?;
            }
            _ => {}
        }
        if m.producer_epoch >= i16::MAX - 1 {
            m.producer_id = alloc()?;
            m.producer_epoch = 0;
        } else {
            m.producer_epoch += 1;
        }
        m.last_producer_epoch = -1;
        m.timeout_ms = timeout_ms;
        m.state = TxnState::Empty;
        m.partitions.clear();
        m.last_update_ms = now;
        self.persist(id, &m).await?;
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
        let entry = self
            .get(id)
            .ok_or(WireError::InvalidProducerIdMapping.code())?;
        let mut m = entry.lock().await;
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
        let entry = self
            .get(id)
            .ok_or(WireError::InvalidProducerIdMapping.code())?;
        let mut m = entry.lock().await;
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
            m.producer_id = alloc()?;
            m.producer_epoch = 0;
            m.last_producer_epoch = -1;
            let snapshot = m.clone();
            self.persist(id, &snapshot).await?;
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
        let entry = self
            .get(id)
            .ok_or(WireError::InvalidProducerIdMapping.code())?;
        let m = entry.lock().await;
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
        for (topic, partition) in m.partitions.clone() {
            let Some(part) = self.replicas.get(&topic, partition) else {
                continue;
            };
            let mut marker = build_marker(m.producer_id, marker_epoch, commit, 0, now_ms());
            let info = part.log.append_internal(&mut marker, part.leader_epoch(), now_ms()).map_err(|e| {
                tracing::warn!(topic, partition, error = %e, "writing a transaction marker failed");
                WireError::KafkaStorageError.code()
            })?;
            part.wake_waiters();
            part.log
                .flush_to(info.last_offset + 1)
                .await
                .map_err(|_| WireError::KafkaStorageError.code())?;
            if topic == OFFSETS_TOPIC {
                self.groups.complete_txn(m.producer_id, commit);
            }
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

    /// Aborts transactions open longer than their timeout, fencing their producers.
    pub async fn run_timers(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(1000));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let entries: Vec<(String, Entry)> = self
                .txns
                .lock()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let now = now_ms();
            for (id, e) in entries {
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
    }

    /// (transactional id, producer id, state, start ms) of every transaction (ListTransactions).
    pub fn list(&self) -> Vec<(String, i64, TxnState, i64)> {
        let entries: Vec<(String, Entry)> = self
            .txns
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out: Vec<_> = entries
            .into_iter()
            .filter_map(|(id, e)| {
                e.try_lock()
                    .ok()
                    .map(|m| (id, m.producer_id, m.state, m.start_ms))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub async fn describe(&self, id: &str) -> Option<TxnMeta> {
        let e = self.get(id)?;
        let m = e.lock().await;
        Some(m.clone())
    }
}
