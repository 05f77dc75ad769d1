//! What the group and transaction coordinators share about their internal topic partitions
//! (`__consumer_offsets`, `__transaction_state`): the one loader that replays a partition, and
//! the one write path, in the pattern of Kafka's `CoordinatorRuntime`.
//!
//! Write path: an operation checks its request against the coordinator's state and produces
//! records plus the state change they stand for (an [`Apply`]). [`CoordinatorPartition::append`]
//! appends the records through the [`Partition`] (stamped with its leader epoch, waking
//! long-poll fetchers of the internal topic) and queues the change; [`Write::durable`] waits for
//! the fsync covering the records and, in a cluster, for every in-sync replica to have them
//! (the high watermark), then applies every queued change up to them in log order, and only
//! then may the response go out. So a read never sees a change that a crash could
//! still take back, and a failed append (nothing written, see `PartitionLog::append`) applies
//! nothing. A failed fsync poisons the log: the changes queued behind it are never applied and
//! the coordinator stops serving the partition ([`CoordinatorPartition::is_available`]) until a
//! restart replays what is durable, as Kafka unloads a coordinator whose log failed.
//!
//! State kept only while a request is in flight (a classic group's rebalance, a KIP-848
//! member's heartbeat) changes before its records are written, as the protocol's waiting
//! requires; the coordinator reverts it by replaying the group when the append fails, and
//! answers only after `durable`.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::log::{now_ms, LogError, PartitionLog};
use crate::protocol::batch::{BatchIter, BatchView};
use crate::protocol::records::{for_each_record, marker_is_commit};
use crate::replica::Partition;

/// A state change to make once its records are durable.
pub type Apply = Box<dyn FnOnce() + Send>;

/// One partition of a coordinator's internal topic.
pub struct CoordinatorPartition {
    pub partition: Arc<Partition>,
    /// Changes of appended records not yet known durable, by the end offset of their records,
    /// in log order (pushed under this lock together with the append).
    queued: Mutex<VecDeque<(i64, Apply)>>,
    /// Held while queued changes run, so that they run one batch at a time, in log order.
    applying: Mutex<()>,
}

/// The durability point of one append.
pub struct Write {
    at: Arc<CoordinatorPartition>,
    end: i64,
}

impl Write {
    /// The log end offset just after the appended records.
    pub fn end(&self) -> i64 {
        self.end
    }

    /// Waits until the records are durable, then applies every change queued up to them.
    /// The wait runs as a task of its own, so a caller that goes away (a closed connection
    /// drops its response future) cannot leave a durable change unapplied.
    pub async fn durable(self) -> Result<(), LogError> {
        let task = tokio::spawn(async move {
            self.at.partition.log.flush_to(self.end).await?;
            replicated(&self.at.partition, self.end).await?;
            self.at.apply_to(self.end);
            Ok(())
        });
        task.await
            .unwrap_or_else(|e| Err(LogError::Io(std::io::Error::other(e.to_string()))))
    }
}

/// How long a coordinator write waits for the in-sync replicas of its partition.
const REPLICATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits until the partition's high watermark covers `end`: every in-sync replica has the
/// records, as a coordinator's acks=all append in Kafka (see
/// [`Partition::wait_high_watermark`]).
async fn replicated(p: &Partition, end: i64) -> Result<(), LogError> {
    p.wait_high_watermark(end, REPLICATION_TIMEOUT).await
}

impl CoordinatorPartition {
    pub fn new(partition: Arc<Partition>) -> Arc<Self> {
        Arc::new(CoordinatorPartition {
            partition,
            queued: Mutex::new(VecDeque::new()),
            applying: Mutex::new(()),
        })
    }

    pub fn log(&self) -> &Arc<PartitionLog> {
        &self.partition.log
    }

    /// False once the log failed an fsync: what memory holds for this partition may include
    /// changes that are not durable, so the coordinator must not serve it.
    pub fn is_available(&self) -> bool {
        !self.partition.log.is_poisoned()
    }

    /// Appends one batch (`data`, built by the coordinator) through the partition and queues
    /// `apply` to run once it is durable. On error nothing was written and nothing is queued.
    pub fn append(self: &Arc<Self>, data: &[u8], apply: Option<Apply>) -> Result<Write, LogError> {
        let end = {
            let mut queued = self.queued.lock();
            let info = self.partition.append_as_leader(data, now_ms(), true)?;
            let end = info.last_offset + 1;
            if let Some(apply) = apply {
                queued.push_back((end, apply));
            }
            end
        };
        self.partition.appended();
        Ok(Write {
            at: self.clone(),
            end,
        })
    }

    /// The durability point at log end offset `end` (e.g. of an earlier append).
    pub fn write_at(self: &Arc<Self>, end: i64) -> Write {
        Write {
            at: self.clone(),
            end,
        }
    }

    /// Runs, in log order, every queued change whose records end at or before `end` (all of
    /// them durable: an fsync covers everything appended before it).
    fn apply_to(&self, end: i64) {
        let _order = self.applying.lock();
        let ready: Vec<Apply> = {
            let mut queued = self.queued.lock();
            let n = queued.iter().take_while(|(e, _)| *e <= end).count();
            queued.drain(..n).map(|(_, a)| a).collect()
        };
        for apply in ready {
            apply();
        }
    }
}

/// A coordinator whose state is split by the partitions of its internal topic, each served
/// by the broker leading it (in a cluster, `crate::cluster` loads and unloads them with
/// leadership).
pub trait PartitionedCoordinator {
    /// The internal topic has `count` partitions, none loaded yet.
    fn prepare(&self, count: i32);
    fn is_partition_loaded(&self, index: i32) -> bool;
    /// Replays partition `index` and serves what it holds.
    fn load_partition(&self, index: i32, partition: Arc<Partition>) -> Result<(), LogError>;
    /// Forgets partition `index`'s state.
    fn unload_partition(&self, index: i32);
}

/// One record or marker read back from a coordinator partition, in log order.
pub enum Replayed<'a> {
    Record {
        key: &'a [u8],
        value: Option<&'a [u8]>,
        /// The producer id of a transactional batch (its records count at its commit marker).
        transactional: Option<i64>,
    },
    /// A transaction marker (control batch).
    Marker { producer_id: i64, commit: bool },
}

/// The one loader: reads `log` from its start to its end and hands every keyed record and
/// every transaction marker to `apply`, in log order. Unreadable batches are skipped with a
/// warning (their CRC was checked at append and at recovery; a record that does not decode is
/// the coordinator's to judge).
pub fn replay(log: &PartitionLog, mut apply: impl FnMut(Replayed<'_>)) -> Result<(), LogError> {
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    while offset < end {
        let r = log.read(offset, 4 << 20, end, true)?;
        if r.data.is_empty() {
            break;
        }
        for batch in BatchIter::new(&r.data, false) {
            let batch: BatchView<'_> = batch?;
            offset = batch.last_offset() + 1;
            if batch.is_control() {
                apply(Replayed::Marker {
                    producer_id: batch.producer_id(),
                    commit: marker_is_commit(&batch).unwrap_or(false),
                });
                continue;
            }
            let transactional = batch.is_transactional().then(|| batch.producer_id());
            let res = for_each_record(&batch, 64 << 20, |rec| {
                if let Some(key) = rec.key {
                    apply(Replayed::Record {
                        key,
                        value: rec.value,
                        transactional,
                    });
                }
            });
            if let Err(e) = res {
                tracing::warn!(log = log.name(), error = %e, "skipping an unreadable coordinator batch");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogConfig;
    use crate::protocol::records::build_batch;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn partition(dir: &std::path::Path) -> Arc<CoordinatorPartition> {
        let log = PartitionLog::open(dir, "__consumer_offsets-0", LogConfig::default(), 0)
            .map(Arc::new)
            .expect("open log");
        CoordinatorPartition::new(Arc::new(Partition::new(
            Arc::from("__consumer_offsets"),
            uuid::Uuid::nil(),
            0,
            log,
            0,
            1,
        )))
    }

    #[tokio::test]
    async fn changes_apply_only_once_durable_and_in_log_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = partition(dir.path());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let data = build_batch(&[(Some(b"k"), Some(b"v"))], now_ms());
        let mut writes = Vec::new();
        for i in 0..3 {
            let seen = seen.clone();
            let w = p
                .append(&data, Some(Box::new(move || seen.lock().push(i))))
                .expect("append");
            writes.push(w);
        }
        assert!(seen.lock().is_empty(), "nothing applies before an fsync");
        // The last write's durability covers (and applies) the earlier ones, in order.
        let last = writes.pop().expect("write");
        last.durable().await.expect("durable");
        assert_eq!(*seen.lock(), vec![0, 1, 2]);
        for w in writes {
            w.durable().await.expect("durable");
        }
        assert_eq!(*seen.lock(), vec![0, 1, 2], "each change applies once");
        let mut keys = 0;
        replay(p.log(), |r| {
            if let Replayed::Record { key, .. } = r {
                assert_eq!(key, b"k");
                keys += 1;
            }
        })
        .expect("replay");
        assert_eq!(keys, 3);
    }

    #[tokio::test]
    async fn a_failed_fsync_applies_nothing_and_makes_the_partition_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = crate::log::io::FaultyStorage::default();
        let log = PartitionLog::open_with(
            Arc::new(storage.clone()),
            dir.path(),
            "__consumer_offsets-0",
            LogConfig::default(),
            0,
        )
        .map(Arc::new)
        .expect("open log");
        let p = CoordinatorPartition::new(Arc::new(Partition::new(
            Arc::from("__consumer_offsets"),
            uuid::Uuid::nil(),
            0,
            log,
            0,
            1,
        )));
        let applied = Arc::new(AtomicI64::new(0));
        let data = build_batch(&[(Some(b"k"), Some(b"v"))], now_ms());
        storage.faults.fail_sync.store(true, Ordering::Release);
        let a = applied.clone();
        let w = p
            .append(
                &data,
                Some(Box::new(move || {
                    a.fetch_add(1, Ordering::AcqRel);
                })),
            )
            .expect("append");
        assert!(w.durable().await.is_err());
        assert_eq!(applied.load(Ordering::Acquire), 0);
        assert!(!p.is_available());
    }
}
