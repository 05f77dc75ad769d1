//! Idempotent-producer state of one partition: for each producer id, its epoch and its last
//! five batches (sequence range -> offsets), so a retried batch is answered with its original
//! offsets instead of being written twice, and gaps are refused.
//!
//! Rules (Kafka's, see ProducerStateManager):
//! - an older epoch than the producer's current one is refused (INVALID_PRODUCER_EPOCH);
//! - a newer epoch must start at sequence 0;
//! - a batch whose sequence range equals one of the last five is a duplicate;
//! - otherwise the first sequence must follow the last one (wrapping at i32::MAX);
//! - a producer id we hold no state for (new, expired, or removed by retention) may start at any
//!   sequence, so an idle producer never gets OUT_OF_ORDER_SEQUENCE after expiry.
//!
//! State is rebuilt at start from a snapshot written at clean shutdown, or else by replaying the
//! batch headers of the log. Entries expire after `producer.id.expiration.ms` of inactivity.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Batches remembered per producer for duplicate detection (Kafka: 5).
pub const BATCHES_KEPT: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
    /// Wall-clock ms of the last append, for expiry.
    pub last_update_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    #[error("producer epoch {got} is older than the current epoch {current}")]
    InvalidEpoch { got: i16, current: i16 },
    #[error("out of order sequence {got}, expected {expected}")]
    OutOfOrder { got: i32, expected: i32 },
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Append,
    Duplicate(BatchMeta),
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ProducerStateMap {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions in this partition: producer id -> offset of its first batch.
    #[serde(default)]
    ongoing: BTreeMap<i64, i64>,
    /// Aborted transactions (the index read_committed fetches return), in marker order.
    #[serde(default)]
    aborted: Vec<AbortedTxn>,
}

/// An aborted transaction's range in this partition (first batch .. abort marker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// Last sequence of a batch of `count` records starting at `first` (wrapping like Kafka).
pub fn last_seq(first: i32, count: i32) -> i32 {
    let last = i64::from(first) + i64::from(count) - 1;
    if last > i64::from(i32::MAX) {
        (last - i64::from(i32::MAX) - 1) as i32
    } else {
        last as i32
    }
}

impl ProducerStateMap {
    pub fn check(
        &self,
        pid: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> Result<Check, SequenceError> {
        let Some(entry) = self.producers.get(&pid) else {
            return Ok(Check::Append);
        };
        if epoch < entry.epoch {
            return Err(SequenceError::InvalidEpoch {
                got: epoch,
                current: entry.epoch,
            });
        }
        if epoch > entry.epoch {
            if first_seq != 0 {
                return Err(SequenceError::OutOfOrder {
                    got: first_seq,
                    expected: 0,
                });
            }
            return Ok(Check::Append);
        }
        if let Some(b) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return Ok(Check::Duplicate(*b));
        }
        match entry.batches.back() {
            None => Ok(Check::Append),
            Some(last) if first_seq == next_seq(last.last_seq) => Ok(Check::Append),
            Some(last) => Err(SequenceError::OutOfOrder {
                got: first_seq,
                expected: next_seq(last.last_seq),
            }),
        }
    }

    /// Records an appended batch (after `check` said Append, or while replaying the log).
    pub fn record(&mut self, pid: i64, epoch: i16, batch: BatchMeta, now_ms: i64) {
        let entry = self.producers.entry(pid).or_insert_with(|| ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            last_update_ms: now_ms,
        });
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_KEPT {
            entry.batches.pop_front();
        }
        entry.batches.push_back(batch);
        entry.last_update_ms = entry.last_update_ms.max(now_ms);
    }

    /// A transactional data batch: opens the producer's transaction here if not open yet.
    pub fn on_transactional_batch(&mut self, pid: i64, first_offset: i64) {
        self.ongoing.entry(pid).or_insert(first_offset);
    }

    /// A transaction marker: closes the producer's transaction here (recording it as aborted
    /// for read_committed readers) and fences older epochs.
    pub fn on_marker(
        &mut self,
        pid: i64,
        epoch: i16,
        commit: bool,
        marker_offset: i64,
        now_ms: i64,
    ) {
        if let Some(first) = self.ongoing.remove(&pid) {
            if !commit {
                self.aborted.push(AbortedTxn {
                    producer_id: pid,
                    first_offset: first,
                    last_offset: marker_offset,
                });
            }
        }
        let entry = self.producers.entry(pid).or_insert_with(|| ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            last_update_ms: now_ms,
        });
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.last_update_ms = entry.last_update_ms.max(now_ms);
    }

    /// First offset of the oldest open transaction: the last stable offset when below the
    /// high watermark.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.values().min().copied()
    }

    /// First offset of the producer's open transaction in this partition, if any.
    pub fn ongoing_first_offset(&self, pid: i64) -> Option<i64> {
        self.ongoing.get(&pid).copied()
    }

    /// Aborted transactions overlapping offsets `[from, to)`, by first offset.
    pub fn aborted_in(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let mut v: Vec<AbortedTxn> = self
            .aborted
            .iter()
            .filter(|a| a.last_offset >= from && a.first_offset < to)
            .copied()
            .collect();
        v.sort_by_key(|a| a.first_offset);
        v
    }

    /// Forgets aborted ranges wholly below the log start offset.
    pub fn prune_aborted(&mut self, log_start_offset: i64) {
        self.aborted.retain(|a| a.last_offset >= log_start_offset);
    }

    /// Drops producers idle for longer than `expiration_ms` (never one with an open transaction).
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        let ongoing = &self.ongoing;
        self.producers.retain(|pid, e| {
            ongoing.contains_key(pid) || now_ms - e.last_update_ms <= expiration_ms
        });
        before - self.producers.len()
    }

    /// Forgets batches at or past `offset` (log truncation).
    pub fn truncate_from(&mut self, offset: i64) {
        for e in self.producers.values_mut() {
            e.batches.retain(|b| b.last_offset < offset);
        }
        self.ongoing.retain(|_, first| *first < offset);
        self.aborted.retain(|a| a.last_offset < offset);
        self.producers.retain(|_, e| !e.batches.is_empty());
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    pub fn get(&self, pid: i64) -> Option<&ProducerEntry> {
        self.producers.get(&pid)
    }

    /// All producers with state here (for DescribeProducers).
    pub fn entries(&self) -> impl Iterator<Item = (&i64, &ProducerEntry)> {
        self.producers.iter()
    }
}

/// The snapshot written at clean shutdown: valid only if the log still ends at `end_offset`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub end_offset: i64,
    pub state: ProducerStateMap,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(first: i32, last: i32, off: i64) -> BatchMeta {
        BatchMeta {
            first_seq: first,
            last_seq: last,
            first_offset: off,
            last_offset: off + i64::from(last - first),
            max_timestamp: 0,
        }
    }

    #[test]
    fn sequence_rules() {
        let mut s = ProducerStateMap::default();
        assert_eq!(
            s.check(1, 0, 7, 9),
            Ok(Check::Append),
            "unknown producer may start anywhere"
        );
        s.record(1, 0, meta(0, 4, 100), 0);
        assert_eq!(s.check(1, 0, 5, 9), Ok(Check::Append));
        assert_eq!(s.check(1, 0, 0, 4), Ok(Check::Duplicate(meta(0, 4, 100))));
        assert!(matches!(
            s.check(1, 0, 7, 9),
            Err(SequenceError::OutOfOrder { expected: 5, .. })
        ));
        s.record(1, 0, meta(5, 9, 105), 0);
        assert_eq!(s.check(1, 1, 0, 0), Ok(Check::Append), "epoch bump from 0");
        assert!(matches!(
            s.check(1, 1, 3, 4),
            Err(SequenceError::OutOfOrder { .. })
        ));
        s.record(1, 1, meta(0, 0, 200), 0);
        assert!(matches!(
            s.check(1, 0, 10, 10),
            Err(SequenceError::InvalidEpoch { .. })
        ));
        for i in 1..=6 {
            s.record(1, 1, meta(i, i, 200 + i as i64), 0);
        }
        assert_eq!(s.get(1).map(|e| e.batches.len()), Some(BATCHES_KEPT));
        assert_eq!(
            s.check(1, 1, 1, 1),
            Err(SequenceError::OutOfOrder {
                got: 1,
                expected: 7
            }),
            "evicted batches are not duplicates"
        );
        assert_eq!(s.expire(10_000, 1_000), 1);
        assert!(s.is_empty());
    }

    #[test]
    fn transactions_and_aborted_index() {
        let mut s = ProducerStateMap::default();
        s.on_transactional_batch(5, 10);
        s.on_transactional_batch(5, 12);
        s.on_transactional_batch(6, 11);
        assert_eq!(s.first_unstable_offset(), Some(10));
        s.on_marker(5, 0, false, 13, 0);
        assert_eq!(s.first_unstable_offset(), Some(11));
        s.on_marker(6, 0, true, 14, 0);
        assert_eq!(s.first_unstable_offset(), None);
        assert_eq!(
            s.aborted_in(0, 100),
            vec![AbortedTxn {
                producer_id: 5,
                first_offset: 10,
                last_offset: 13
            }]
        );
        assert!(s.aborted_in(14, 100).is_empty());
        s.on_marker(5, 2, false, 20, 0);
        assert!(
            matches!(s.check(5, 1, 0, 0), Err(SequenceError::InvalidEpoch { .. })),
            "marker fenced epoch 1"
        );
    }

    #[test]
    fn sequence_wraps() {
        assert_eq!(last_seq(i32::MAX, 1), i32::MAX);
        assert_eq!(last_seq(i32::MAX, 2), 0);
        assert_eq!(next_seq(i32::MAX), 0);
    }
}
