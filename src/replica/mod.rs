//! Partition state above the log: leader epoch, the replication state ([`state`]: replicas,
//! ISR, follower positions, high watermark), and wake-ups for delayed (long-poll) fetches.
//! On a single node this broker leads every partition and the ISR is itself, so the high
//! watermark follows the log end offset, moved by [`Partition::appended`] after every append;
//! in a cluster the roles, replicas and ISR come from the committed metadata
//! ([`crate::cluster`]) and the high watermark moves with follower fetches.
//! Kept separate from `log` so replication can move the high watermark by follower progress
//! without the log knowing.

pub mod fetcher;
pub mod leader_epoch;
pub mod state;
pub mod throttle;

use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::log::PartitionLog;
use leader_epoch::LeaderEpochCache;
use state::{IsrChange, LeaderState};

/// What this broker does for a partition.
#[derive(Debug, Clone)]
pub enum Role {
    Leader(LeaderState),
    /// Replicating from `leader`'s log at `leader_epoch`.
    Follower {
        leader: i32,
        leader_epoch: i32,
    },
}

/// A client's `current_leader_epoch` (KIP-320) that is not this replica's
/// ([`Partition::check_current_epoch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochMismatch {
    /// Older than this replica's: the client's leader is stale (FENCED_LEADER_EPOCH).
    Fenced,
    /// Newer than this replica's: this replica is behind the metadata (UNKNOWN_LEADER_EPOCH).
    Unknown,
}

/// Why a follower's fetch is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaFetchError {
    /// This broker does not lead the partition (NOT_LEADER_OR_FOLLOWER).
    NotLeader,
    /// The fetching broker is not one of the partition's replicas.
    UnknownReplica,
}

pub struct Partition {
    pub topic: Arc<str>,
    pub topic_id: Uuid,
    pub index: i32,
    pub log: Arc<PartitionLog>,
    leader_epoch: AtomicI32,
    /// Which epoch started at which offset (one entry while a single node leads forever).
    epochs: Mutex<LeaderEpochCache>,
    /// In a cluster: the epochs are kept in the partition's leader-epoch checkpoint, written
    /// before records of a new epoch are appended ([`Partition::load_epoch_checkpoint`]).
    persist_epochs: std::sync::atomic::AtomicBool,
    /// This replica's role: leading (replicas, ISR, follower positions, high watermark) or
    /// following another broker.
    role: Mutex<Role>,
    /// Held shared by every leader append ([`Partition::append_as_leader`]) and exclusively by
    /// role changes (Kafka's `leaderIsrUpdateLock`): an append decided while leading lands
    /// before the role changes, never after it on a follower's log with the next leader's
    /// epoch stamped on it.
    role_gate: RwLock<()>,
    /// The high watermark of `leader`, readable without the lock (every fetch reads it).
    high_watermark: AtomicI64,
    /// Delayed fetches waiting for data on this partition.
    waiters: Mutex<Vec<Arc<Notify>>>,
    /// Replication throttles on this replica ([`throttle`]): bit 0, as leader (its topic's
    /// `leader.replication.throttled.replicas` names it on this broker); bit 1, as an
    /// out-of-sync follower (`follower.replication.throttled.replicas`).
    throttled: std::sync::atomic::AtomicU8,
}

impl Partition {
    /// A partition led by `node`, its only replica. Everything in the log is committed (the
    /// ISR is this node alone), so the high watermark starts at the log end offset.
    pub fn new(
        topic: Arc<str>,
        topic_id: Uuid,
        index: i32,
        log: Arc<PartitionLog>,
        leader_epoch: i32,
        node: i32,
    ) -> Self {
        let end = log.log_end_offset();
        Partition {
            topic,
            topic_id,
            index,
            log,
            leader_epoch: AtomicI32::new(leader_epoch),
            epochs: Mutex::new(LeaderEpochCache::single(leader_epoch, 0)),
            persist_epochs: std::sync::atomic::AtomicBool::new(false),
            role: Mutex::new(Role::Leader(LeaderState::single(node, leader_epoch, end))),
            role_gate: RwLock::new(()),
            high_watermark: AtomicI64::new(end),
            waiters: Mutex::new(Vec::new()),
            throttled: std::sync::atomic::AtomicU8::new(0),
        }
    }

    /// Sets the replication throttles of this replica (from its topic's configs and, for the
    /// follower side, whether it is out of sync).
    pub fn set_throttled(&self, as_leader: bool, as_follower: bool) {
        let bits = u8::from(as_leader) | (u8::from(as_follower) << 1);
        self.throttled.store(bits, Ordering::Relaxed);
    }

    /// What this replica serves, leading, to out-of-sync followers counts against the
    /// broker's leader replication throttle.
    pub fn leader_throttled(&self) -> bool {
        self.throttled.load(Ordering::Relaxed) & 1 != 0
    }

    /// What this replica fetches, following, counts against the follower throttle.
    pub fn follower_throttled(&self) -> bool {
        self.throttled.load(Ordering::Relaxed) & 2 != 0
    }

    /// The minimum ISR an acks=all write needs: `min_insync` (the topic's
    /// `min.insync.replicas`) capped at the number of replicas, as Kafka's effective minimum
    /// ISR is (a topic with fewer replicas than `min.insync.replicas` takes acks=all writes
    /// once all of them are in sync).
    pub fn effective_min_isr(&self, min_insync: i64) -> i64 {
        let replicas = match &*self.role.lock() {
            Role::Leader(l) => l.replicas.len() as i64,
            Role::Follower { .. } => return min_insync,
        };
        min_insync.min(replicas.max(1))
    }

    /// Leading: whether `replica` is in the ISR.
    pub fn is_in_sync(&self, replica: i32) -> bool {
        match &*self.role.lock() {
            Role::Leader(l) => l.isr.contains(&replica),
            _ => false,
        }
    }

    /// For a replica of a multi-node cluster: takes the leader epochs from the partition's
    /// checkpoint ([`leader_epoch::CHECKPOINT_FILE`]) — none for an empty log without one —
    /// drops entries past the log end (an epoch recorded before a crash took its records) or
    /// below the log start, and from now on writes the checkpoint before the log holds a new
    /// epoch. A log that has records but no checkpoint predates them: it is taken as epoch 0
    /// throughout (what a single node writes).
    pub fn load_epoch_checkpoint(&self) -> Result<(), crate::log::LogError> {
        use crate::log::LogError;
        let (start, end) = (self.log.log_start_offset(), self.log.log_end_offset());
        let mut cache = match self.log.read_checkpoint(leader_epoch::CHECKPOINT_FILE)? {
            Some(data) => LeaderEpochCache::decode(&data).ok_or_else(|| {
                LogError::Offline(format!(
                    "{}: damaged {}",
                    self.log.name(),
                    leader_epoch::CHECKPOINT_FILE
                ))
            })?,
            None if start == end => LeaderEpochCache::default(),
            None => {
                tracing::warn!(
                    log = self.log.name(),
                    "no leader-epoch checkpoint: the log is taken as written in epoch 0"
                );
                LeaderEpochCache::single(0, start)
            }
        };
        cache.truncate_from_end(end);
        cache.truncate_from_start(start);
        *self.epochs.lock() = cache;
        self.persist_epochs.store(true, Ordering::Release);
        Ok(())
    }

    /// Writes `cache` as the checkpoint when this replica keeps one.
    fn save_epochs(&self, cache: &LeaderEpochCache) -> Result<(), crate::log::LogError> {
        if !self.persist_epochs.load(Ordering::Acquire) {
            return Ok(());
        }
        self.log
            .write_checkpoint(leader_epoch::CHECKPOINT_FILE, cache.encode().as_bytes())
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// The one check of a client's `current_leader_epoch` (Fetch, ListOffsets,
    /// OffsetForLeaderEpoch): -1 (none) passes; otherwise it must be this replica's leader
    /// epoch. Returns that epoch.
    pub fn check_current_epoch(&self, current: i32) -> Result<i32, EpochMismatch> {
        let epoch = self.leader_epoch();
        match current {
            c if c < 0 || c == epoch => Ok(epoch),
            c if c > epoch => Err(EpochMismatch::Unknown),
            _ => Err(EpochMismatch::Fenced),
        }
    }

    /// The epoch `requested` resolves to and its end offset (Kafka's
    /// LeaderEpochFileCache.endOffsetFor, see [`LeaderEpochCache::end_offset_for`]); (-1, -1)
    /// for an undefined or future epoch.
    pub fn end_offset_for_epoch(&self, requested: i32) -> (i32, i64) {
        let mut epochs = self.epochs.lock();
        // Retention and DeleteRecords move the log start without telling us; the cache follows
        // lazily (truncating from the start is idempotent).
        epochs.truncate_from_start(self.log.log_start_offset());
        epochs.end_offset_for(requested, self.log.log_end_offset())
    }

    /// Offsets below this are committed (every ISR member has them) and visible to consumers.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// After an append as leader: moves the high watermark as far as the ISR allows (to the
    /// log end offset on a single node) and wakes delayed fetches and produces.
    pub fn appended(&self) {
        {
            let mut role = self.role.lock();
            if let Role::Leader(leader) = &mut *role {
                if leader.maybe_advance_high_watermark(self.log.log_end_offset()) {
                    self.high_watermark
                        .store(leader.high_watermark(), Ordering::Release);
                }
            }
        }
        self.wake_waiters();
    }

    /// This replica's role now.
    pub fn role(&self) -> Role {
        self.role.lock().clone()
    }

    /// The ISR change to propose to the controller now, when leading (see
    /// [`LeaderState::isr_proposal`]), with the leader epoch it was decided in.
    pub fn isr_proposal(
        &self,
        max_lag: std::time::Duration,
        eligible: &dyn Fn(i32) -> bool,
    ) -> Option<(IsrChange, i32)> {
        let mut role = self.role.lock();
        let Role::Leader(leader) = &mut *role else {
            return None;
        };
        let epoch = leader.leader_epoch;
        leader
            .isr_proposal(Instant::now(), max_lag, eligible)
            .map(|c| (c, epoch))
    }

    /// Applies the ISR the controller committed while leading at `leader_epoch` (other epochs
    /// are ignored); moves the high watermark and wakes waiters when it moved.
    pub fn set_isr(&self, isr: Vec<i32>, leader_epoch: i32) {
        let moved = {
            let mut role = self.role.lock();
            let Role::Leader(leader) = &mut *role else {
                return;
            };
            if leader.leader_epoch != leader_epoch {
                return;
            }
            let moved = leader.set_isr(isr, self.log.log_end_offset());
            if moved {
                self.high_watermark
                    .store(leader.high_watermark(), Ordering::Release);
            }
            moved
        };
        if moved {
            self.wake_waiters();
        }
    }

    /// Applies the replica set the controller committed while leading at `leader_epoch` (a
    /// reassignment adding or dropping followers); other epochs are ignored.
    pub fn set_replicas(&self, replicas: Vec<i32>, leader_epoch: i32) {
        let mut role = self.role.lock();
        if let Role::Leader(leader) = &mut *role {
            if leader.leader_epoch == leader_epoch {
                leader.set_replicas(replicas, Instant::now());
            }
        }
    }

    /// Whether this broker leads the partition.
    pub fn is_leader(&self) -> bool {
        matches!(&*self.role.lock(), Role::Leader(_))
    }

    /// The ISR size while leading — at least 1, the leader itself — and 0 when following.
    pub fn isr_size(&self) -> usize {
        match &*self.role.lock() {
            Role::Leader(l) => l.isr.len(),
            Role::Follower { .. } => 0,
        }
    }

    /// Starts leading at `leader_epoch` with `replicas` and `isr` (from the controller). The
    /// high watermark carries over; the epoch cache records where the new epoch begins (in the
    /// checkpoint too, before the role changes: an error leaves the role as it was).
    pub fn become_leader(
        &self,
        node: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader_epoch: i32,
    ) -> Result<(), crate::log::LogError> {
        let _gate = self.role_gate.write();
        let end = self.log.log_end_offset();
        {
            // Where this leadership's epoch begins (an epoch already there is kept).
            let mut epochs = self.epochs.lock();
            let mut next = epochs.clone();
            next.assign(leader_epoch, end);
            if next != *epochs {
                self.save_epochs(&next)?;
                *epochs = next;
            }
        }
        self.leader_epoch.store(leader_epoch, Ordering::Release);
        let hw = self.high_watermark().min(end);
        let mut state = LeaderState::new(node, replicas, isr, leader_epoch, hw, Instant::now());
        // An ISR of this replica alone: everything it has is committed.
        state.maybe_advance_high_watermark(end);
        let hw = state.high_watermark();
        *self.role.lock() = Role::Leader(state);
        self.high_watermark.store(hw, Ordering::Release);
        self.wake_waiters();
        Ok(())
    }

    /// A replica of a multi-node cluster opened from disk: its log may end with records that
    /// were never committed (Strom keeps no high-watermark checkpoint), so its high watermark
    /// starts at the log start — consumers reading from this replica as a follower (KIP-392)
    /// see nothing uncommitted — until the leader names it ([`Partition::follower_high_watermark`])
    /// or, leading, its ISR's positions move it.
    pub fn forget_high_watermark(&self) {
        self.high_watermark
            .store(self.log.log_start_offset(), Ordering::Release);
    }

    /// Starts following `leader` at `leader_epoch`.
    pub fn become_follower(&self, leader: i32, leader_epoch: i32) {
        let _gate = self.role_gate.write();
        self.leader_epoch.store(leader_epoch, Ordering::Release);
        *self.role.lock() = Role::Follower {
            leader,
            leader_epoch,
        };
        self.wake_waiters();
    }

    /// A fetch from follower `replica` at `fetch_offset`: records its progress and moves the
    /// high watermark (waking delayed produces and fetches when it moved). Returns an ISR
    /// expansion to propose to the controller when the follower caught up.
    pub fn on_follower_fetch(
        &self,
        replica: i32,
        fetch_offset: i64,
    ) -> Result<Option<IsrChange>, ReplicaFetchError> {
        let (moved, expand) = {
            let mut role = self.role.lock();
            let Role::Leader(leader) = &mut *role else {
                return Err(ReplicaFetchError::NotLeader);
            };
            if leader.follower(replica).is_none() {
                return Err(ReplicaFetchError::UnknownReplica);
            }
            let (moved, expand) = leader.on_follower_fetch(
                replica,
                fetch_offset,
                self.log.log_end_offset(),
                Instant::now(),
            );
            if moved {
                self.high_watermark
                    .store(leader.high_watermark(), Ordering::Release);
            }
            (moved, expand)
        };
        if moved {
            self.wake_waiters();
        }
        Ok(expand)
    }

    /// KIP-392: leading, the replica a consumer in `client_rack` should fetch from instead of
    /// this leader — as Kafka's `RackAwareReplicaSelector` picks it: the leader when its own
    /// rack is the client's, else the in-sync follower in that rack that has everything below
    /// the high watermark and the most beyond it. None: fetch from the leader.
    pub fn preferred_read_replica(
        &self,
        client_rack: &str,
        rack_of: &dyn Fn(i32) -> Option<String>,
    ) -> Option<i32> {
        let role = self.role.lock();
        let Role::Leader(leader) = &*role else {
            return None;
        };
        if client_rack.is_empty() || rack_of(leader.node).as_deref() == Some(client_rack) {
            return None;
        }
        let hw = self.high_watermark();
        leader
            .isr
            .iter()
            .filter(|&&r| r != leader.node)
            .filter_map(|&r| Some((r, leader.follower(r)?.log_end_offset)))
            .filter(|&(r, end)| end >= hw && rack_of(r).as_deref() == Some(client_rack))
            .max_by_key(|&(r, end)| (end, -r))
            .map(|(r, _)| r)
    }

    /// Appends records as this partition's leader, stamped with the leader epoch: a producer's
    /// batches, or with `internal` the broker's own (coordinator records, transaction
    /// markers). Refused with [`crate::log::LogError::NotLeader`] unless this replica leads
    /// now, and in a cluster an internal write also with
    /// [`crate::log::LogError::NotEnoughReplicas`] while the ISR is smaller than
    /// `min.insync.replicas`; the role cannot change until the append is done (see
    /// `role_gate`).
    pub fn append_as_leader(
        &self,
        data: &[u8],
        now_ms: i64,
        internal: bool,
    ) -> Result<crate::log::AppendInfo, crate::log::LogError> {
        let _gate = self.role_gate.read();
        let (epoch, isr, replicas) = match &*self.role.lock() {
            Role::Leader(l) => (l.leader_epoch, l.isr.len(), l.replicas.len()),
            Role::Follower { .. } => {
                return Err(crate::log::LogError::NotLeader(format!(
                    "{}-{}",
                    self.topic, self.index
                )))
            }
        };
        if internal && self.persist_epochs.load(Ordering::Acquire) {
            // (A replica of a multi-node cluster.) The broker's own writes are acks=-1 (Kafka's): a transaction marker or
            // coordinator record held by fewer replicas than this could be lost with them.
            // Capped at the replication factor, as Kafka's effective minimum ISR is.
            let min = self
                .log
                .config()
                .min_insync_replicas
                .min(i32::try_from(replicas).unwrap_or(i32::MAX).max(1));
            if (isr as i64) < i64::from(min) {
                return Err(crate::log::LogError::NotEnoughReplicas {
                    partition: format!("{}-{}", self.topic, self.index),
                    isr,
                    min,
                });
            }
        }
        if internal {
            self.log.append_internal(data, epoch, now_ms)
        } else {
            self.log.append(data, epoch, now_ms)
        }
    }

    /// Appends what the leader sent (see `PartitionLog::append_as_follower`) and records in
    /// the epoch cache where each new leader epoch begins, as the batches say — in the
    /// checkpoint before the append, so the log never holds an epoch the checkpoint lacks.
    pub fn append_as_follower(
        &self,
        data: &[u8],
        now_ms: i64,
    ) -> Result<crate::log::AppendInfo, crate::log::LogError> {
        {
            let mut epochs = self.epochs.lock();
            // Almost every append is in the epoch the log already ends with: the cache is
            // copied only when a batch starts a newer one.
            let latest = epochs.latest_epoch();
            let newer = crate::protocol::batch::BatchIter::new(data, false)
                .flatten()
                .any(|v| latest.is_none_or(|l| v.partition_leader_epoch() > l));
            if newer {
                let mut next = epochs.clone();
                for view in crate::protocol::batch::BatchIter::new(data, false).flatten() {
                    let e = view.partition_leader_epoch();
                    if next.latest_epoch().is_none_or(|latest| e > latest) {
                        next.assign(e, view.base_offset());
                    }
                }
                self.save_epochs(&next)?;
                *epochs = next;
            }
        }
        let info = self.log.append_as_follower(data, now_ms)?;
        self.wake_waiters();
        Ok(info)
    }

    /// The latest leader epoch this replica's log holds records of (-1: none).
    pub fn latest_log_epoch(&self) -> i32 {
        self.epochs.lock().latest_epoch().unwrap_or(-1)
    }

    /// The leader said this replica's log diverged from its own after `epoch` ended at `end`
    /// (a diverging epoch in a fetch response): the log is cut where the two agree — at
    /// `end`, or earlier where this replica's own `epoch` ended; with no common epoch, at the
    /// high watermark (committed records are the same everywhere). Returns the new log end.
    pub fn truncate_diverged(&self, epoch: i32, end: i64) -> Result<i64, crate::log::LogError> {
        let target = if epoch < 0 || end < 0 {
            self.high_watermark()
        } else {
            let (own_epoch, own_end) = self.end_offset_for_epoch(epoch);
            if own_epoch < 0 {
                self.high_watermark()
            } else {
                end.min(own_end)
            }
        };
        let target = target.min(self.log.log_end_offset());
        self.log.truncate_to(target)?;
        {
            let mut epochs = self.epochs.lock();
            let before = epochs.clone();
            epochs.truncate_from_end(target);
            if *epochs != before {
                // Entries past the end are harmless (loading drops them): a failed write here
                // only keeps them longer.
                self.save_epochs(&epochs)?;
            }
        }
        let hw = self.high_watermark().min(target);
        self.high_watermark.store(hw, Ordering::Release);
        Ok(target)
    }

    /// Waits until the high watermark covers `end` — every in-sync replica has the records
    /// before it (for a write of the broker's own: coordinator records, transaction markers).
    /// Immediate on a single node (the high watermark follows each append). Fails with
    /// [`crate::log::LogError::NotLeader`] when this replica stops leading, or when the
    /// replicas stay behind for `timeout`.
    pub async fn wait_high_watermark(
        &self,
        end: i64,
        timeout: std::time::Duration,
    ) -> Result<(), crate::log::LogError> {
        let notify = Arc::new(Notify::new());
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.add_waiter(&notify);
            if self.high_watermark() >= end {
                return Ok(());
            }
            if !self.is_leader() {
                return Err(crate::log::LogError::NotLeader(format!(
                    "{}-{}",
                    self.topic, self.index
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(crate::log::LogError::Io(std::io::Error::other(
                    "the in-sync replicas did not acknowledge the write in time",
                )));
            }
            let _ = tokio::time::timeout_at(deadline, notify.notified()).await;
        }
    }

    /// A follower learns the leader's high watermark from a fetch response: its own is the
    /// smaller of that and its log end.
    pub fn follower_high_watermark(&self, leader_hw: i64) {
        let hw = leader_hw.min(self.log.log_end_offset());
        if hw > self.high_watermark() {
            self.high_watermark.store(hw, Ordering::Release);
            self.wake_waiters();
        }
    }

    /// Registers a delayed fetch to be woken on the next append.
    pub fn add_waiter(&self, n: &Arc<Notify>) {
        let mut w = self.waiters.lock();
        // Bound the list: drop waiters whose fetch already finished.
        if w.len() >= 64 {
            w.retain(|x| Arc::strong_count(x) > 1);
        }
        w.push(n.clone());
    }

    /// Wakes every delayed fetch waiting on this partition.
    pub fn wake_waiters(&self) {
        let waiters = std::mem::take(&mut *self.waiters.lock());
        for n in waiters {
            n.notify_one();
        }
    }
}

/// All partitions this broker hosts, by (topic, index).
#[derive(Default)]
pub struct ReplicaManager {
    partitions: DashMap<(Arc<str>, i32), Arc<Partition>>,
}

impl ReplicaManager {
    pub fn insert(&self, p: Arc<Partition>) {
        self.partitions.insert((p.topic.clone(), p.index), p);
    }

    pub fn get(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.partitions
            .get(&(Arc::from(topic), index))
            .map(|p| p.clone())
    }

    pub fn remove(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.partitions
            .remove(&(Arc::from(topic), index))
            .map(|(_, p)| p)
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions.iter().map(|e| e.value().clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogConfig;

    #[test]
    fn a_clients_current_leader_epoch_is_checked_in_one_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path(), "t-0", LogConfig::default(), 0).expect("open");
        let p = Partition::new(Arc::from("t"), Uuid::nil(), 0, Arc::new(log), 0, 1);
        p.become_leader(1, vec![1, 2], vec![1, 2], 5).expect("lead");
        assert_eq!(p.check_current_epoch(-1), Ok(5), "no epoch: not checked");
        assert_eq!(p.check_current_epoch(5), Ok(5));
        assert_eq!(p.check_current_epoch(4), Err(EpochMismatch::Fenced));
        assert_eq!(p.check_current_epoch(6), Err(EpochMismatch::Unknown));
        p.become_follower(2, 7);
        assert_eq!(
            p.check_current_epoch(7),
            Ok(7),
            "a follower checks the epoch it follows"
        );
        assert_eq!(p.check_current_epoch(5), Err(EpochMismatch::Fenced));
    }
}
