//! Partition state above the log: leader epoch, the replication state ([`state`]: replicas,
//! ISR, follower positions, high watermark), and wake-ups for delayed (long-poll) fetches.
//! Single node today: this broker leads every partition and the ISR is itself, so the high
//! watermark follows the log end offset, moved by [`Partition::appended`] after every append.
//! Kept separate from `log` so replication can move the high watermark by follower progress
//! without the log knowing.

pub mod leader_epoch;
pub mod state;

use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::log::PartitionLog;
use leader_epoch::LeaderEpochCache;
use state::LeaderState;

pub struct Partition {
    pub topic: Arc<str>,
    pub topic_id: Uuid,
    pub index: i32,
    pub log: Arc<PartitionLog>,
    leader_epoch: AtomicI32,
    /// Which epoch started at which offset (one entry while a single node leads forever).
    epochs: Mutex<LeaderEpochCache>,
    /// Replicas, ISR, follower positions and the high watermark, while this broker leads.
    leader: Mutex<LeaderState>,
    /// The high watermark of `leader`, readable without the lock (every fetch reads it).
    high_watermark: AtomicI64,
    /// Delayed fetches waiting for data on this partition.
    waiters: Mutex<Vec<Arc<Notify>>>,
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
            leader: Mutex::new(LeaderState::single(node, leader_epoch, end)),
            high_watermark: AtomicI64::new(end),
            waiters: Mutex::new(Vec::new()),
        }
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
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
    /// log end offset on a single node) and wakes delayed fetches.
    pub fn appended(&self) {
        {
            let mut leader = self.leader.lock();
            if leader.maybe_advance_high_watermark(self.log.log_end_offset()) {
                self.high_watermark
                    .store(leader.high_watermark(), Ordering::Release);
            }
        }
        self.wake_waiters();
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
