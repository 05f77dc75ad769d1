//! Leader epochs of one partition: which epoch started writing at which offset, and the end
//! offset of any epoch (what OffsetForLeaderEpoch answers, what a follower truncates to).
//!
//! The semantics are Kafka's `LeaderEpochFileCache.endOffsetFor`. A single node leads every
//! partition with epoch 0 from offset 0 for its whole life, so the cache holds one entry and is
//! never written down. In a cluster the partition appends an entry per new epoch and persists
//! the list in the partition directory as [`CHECKPOINT_FILE`] ([`LeaderEpochCache::encode`]:
//! Kafka's `leader-epoch-checkpoint` text format) before any record of the new epoch is
//! appended, so after a crash the file names every epoch the log holds (and perhaps one past
//! its end, which loading drops).

/// The leader-epoch checkpoint's name in a partition directory.
pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// Kafka's "no epoch" (-1) and "no offset" (-1).
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_OFFSET: i64 = -1;

/// Epoch `epoch` started writing at `start_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// Entries strictly increasing in both epoch and start offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// A cache whose only epoch is `epoch`, starting at `start_offset`.
    pub fn single(epoch: i32, start_offset: i64) -> Self {
        let mut c = LeaderEpochCache::default();
        c.assign(epoch, start_offset);
        c
    }

    /// Kafka's `leader-epoch-checkpoint` text: a version line (0), the entry count, then one
    /// `epoch start_offset` line per entry.
    pub fn encode(&self) -> String {
        let mut out = format!("0\n{}\n", self.entries.len());
        for e in &self.entries {
            out.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        out
    }

    /// Parses [`LeaderEpochCache::encode`]'s text; None when it is not that (wrong version,
    /// count, numbers, or entries that do not strictly increase).
    pub fn decode(data: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(data).ok()?;
        let mut lines = text.lines();
        if lines.next()?.trim() != "0" {
            return None;
        }
        let count: usize = lines.next()?.trim().parse().ok()?;
        let mut c = LeaderEpochCache::default();
        for _ in 0..count {
            let mut f = lines.next()?.split_whitespace();
            let epoch: i32 = f.next()?.parse().ok()?;
            let start_offset: i64 = f.next()?.parse().ok()?;
            if f.next().is_some() || epoch < 0 || start_offset < 0 {
                return None;
            }
            if c.entries
                .last()
                .is_some_and(|l| epoch <= l.epoch || start_offset < l.start_offset)
            {
                return None;
            }
            c.entries.push(EpochEntry {
                epoch,
                start_offset,
            });
        }
        lines.all(|l| l.trim().is_empty()).then_some(c)
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`. An epoch not above the latest, or a start
    /// offset below the latest start, is ignored (Kafka logs and ignores it too), so the
    /// invariant holds whatever the caller does.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) {
        if epoch < 0 || start_offset < 0 {
            return;
        }
        if let Some(last) = self.entries.last() {
            if epoch <= last.epoch || start_offset < last.start_offset {
                return;
            }
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }

    /// The log start offset moved to `start`: entries wholly below it go, and the last one at or
    /// below it now starts at `start` (its earlier records are gone).
    pub fn truncate_from_start(&mut self, start: i64) {
        let below = self
            .entries
            .iter()
            .take_while(|e| e.start_offset <= start)
            .count();
        if below == 0 {
            return;
        }
        let kept_epoch = self.entries[below - 1].epoch;
        self.entries.drain(..below);
        self.entries.insert(
            0,
            EpochEntry {
                epoch: kept_epoch,
                start_offset: start,
            },
        );
    }

    /// The log was truncated to end at `end`: epochs starting at or after it go.
    pub fn truncate_from_end(&mut self, end: i64) {
        self.entries.retain(|e| e.start_offset < end);
    }

    /// `(epoch, end offset)` for a requested epoch, given the log end offset:
    /// - undefined (-1) requested, or no entry above it and it is not the latest: (-1, -1);
    /// - the latest epoch: (latest, log end offset);
    /// - an epoch in the past: (the largest known epoch <= requested, start of the next epoch);
    /// - an epoch below every known one: (requested, start of the first epoch) — its records
    ///   are gone, so a follower must restart from the log start.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let Some(higher) = self.entries.iter().find(|e| e.epoch > requested) else {
            return (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        };
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            Some(floor) => (floor.epoch, higher.start_offset),
            None => (requested, higher.start_offset),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncating_the_end_drops_the_epochs_that_started_there_or_later() {
        let mut c = LeaderEpochCache::single(0, 0);
        c.assign(1, 10);
        c.assign(3, 20);
        c.truncate_from_end(20);
        assert_eq!(c.latest_epoch(), Some(1));
        assert_eq!(c.end_offset_for(1, 15), (1, 15));
        c.truncate_from_end(5);
        assert_eq!(c.latest_epoch(), Some(0));
        c.assign(2, 5);
        assert_eq!(c.end_offset_for(0, 9), (0, 5));
    }

    #[test]
    fn checkpoint_text_round_trips_and_rejects_damage() {
        let mut c = LeaderEpochCache::single(0, 0);
        c.assign(3, 100);
        c.assign(4, 100);
        c.assign(7, 250);
        let text = c.encode();
        assert_eq!(text, "0\n4\n0 0\n3 100\n4 100\n7 250\n");
        assert_eq!(LeaderEpochCache::decode(text.as_bytes()), Some(c));
        assert_eq!(
            LeaderEpochCache::decode(b"0\n0\n"),
            Some(LeaderEpochCache::default())
        );
        for bad in [
            "1\n1\n0 0\n",
            "0\n2\n0 0\n",
            "0\n1\n0 x\n",
            "0\n2\n3 10\n2 20\n",
            "0\n2\n2 20\n3 10\n",
            "0\n1\n0 0 0\n",
            "0\n1\n0 0\n5 5\n",
            "0\n1\n-1 0\n",
            "",
        ] {
            assert_eq!(LeaderEpochCache::decode(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn single_epoch_like_a_single_node() {
        let c = LeaderEpochCache::single(0, 0);
        assert_eq!(c.end_offset_for(0, 42), (0, 42));
        assert_eq!(c.end_offset_for(1, 42), (-1, -1), "future epoch");
        assert_eq!(c.end_offset_for(-1, 42), (-1, -1), "undefined epoch");
        // An epoch below every known one: (requested, first start), as Kafka answers.
        assert_eq!(c.end_offset_for(-5, 42), (-5, 0));
        let empty = LeaderEpochCache::default();
        assert_eq!(empty.end_offset_for(0, 42), (-1, -1));
    }

    #[test]
    fn several_epochs() {
        let mut c = LeaderEpochCache::default();
        c.assign(1, 0);
        c.assign(3, 10);
        c.assign(5, 25);
        c.assign(4, 30); // not above the latest: ignored
        c.assign(6, 20); // start below the latest start: ignored
        assert_eq!(c.latest_epoch(), Some(5));
        assert_eq!(c.end_offset_for(5, 40), (5, 40));
        assert_eq!(c.end_offset_for(3, 40), (3, 25));
        assert_eq!(
            c.end_offset_for(4, 40),
            (3, 25),
            "unknown epoch between known ones"
        );
        assert_eq!(c.end_offset_for(2, 40), (1, 10));
        assert_eq!(c.end_offset_for(0, 40), (0, 0), "below every known epoch");
        assert_eq!(c.end_offset_for(6, 40), (-1, -1));
    }

    #[test]
    fn truncation_from_start_keeps_the_covering_epoch() {
        let mut c = LeaderEpochCache::default();
        c.assign(1, 0);
        c.assign(3, 10);
        c.assign(5, 25);
        c.truncate_from_start(12);
        assert_eq!(
            c.entries(),
            &[
                EpochEntry {
                    epoch: 3,
                    start_offset: 12
                },
                EpochEntry {
                    epoch: 5,
                    start_offset: 25
                }
            ]
        );
        assert_eq!(c.end_offset_for(1, 40), (1, 12));
        c.truncate_from_start(5); // below the first start: nothing to do
        assert_eq!(c.entries()[0].start_offset, 12);
        c.truncate_from_start(30);
        assert_eq!(
            c.entries(),
            &[EpochEntry {
                epoch: 5,
                start_offset: 30
            }]
        );
        assert_eq!(c.end_offset_for(5, 40), (5, 40));
    }
}
