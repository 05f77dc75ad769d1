//! The state of one share-partition — (share group, topic, partition) — as Kafka's
//! `SharePartition` keeps it (KIP-932): which records of the partition's log are available to
//! the group's consumers, acquired by one of them under a time-limited lock, acknowledged, or
//! archived, and how often each was delivered.
//!
//! The window `[start_offset, end_offset)` holds every offset the group has seen and not yet
//! finished, densely: an offset that is not a deliverable record (a transaction marker, an
//! aborted record under read_committed, an offset compaction removed) is archived when first
//! seen. Everything below `start_offset` is done; `end_offset` is where the next new records
//! are read from. The window never holds more than `max_in_flight` offsets (Kafka's
//! `group.share.partition.max.record.locks`): while it is full, only records already in it can
//! be delivered again, and the group waits for acknowledgements to move `start_offset`.
//!
//! This module is pure: no I/O, no clock. Every operation returns the [`Change`] to persist on
//! `__share_group_state` (the offsets whose durable state changed, and the start offset), and
//! the records to dead-letter. Acquired records are persisted as available with their delivery
//! count: after a restart they are delivered again, and the count is kept (Kafka persists the
//! count with every state batch).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::protocol::share::{
    AckBatch, AcquiredRange, ACK_ACCEPT, ACK_GAP, ACK_REJECT, ACK_RELEASE, ACK_RENEW,
};

/// Kafka's `RecordState` ids, as persisted in state batches.
pub const STATE_AVAILABLE: i8 = 0;
pub const STATE_ACQUIRED: i8 = 1;
pub const STATE_ACKNOWLEDGED: i8 = 2;
/// KIP-1191: on its way to the dead-letter topic; archived once the copy is written (or
/// failed). Not finished: the start offset does not pass it, and a restart resumes the copy.
pub const STATE_ARCHIVING: i8 = 3;
pub const STATE_ARCHIVED: i8 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Available,
    Acquired { member: Arc<str>, deadline_ms: i64 },
    Acknowledged,
    Archiving,
    Archived,
}

impl State {
    /// What is persisted: an acquisition is not (it becomes available after a restart).
    fn durable_id(&self) -> i8 {
        match self {
            State::Available | State::Acquired { .. } => STATE_AVAILABLE,
            State::Acknowledged => STATE_ACKNOWLEDGED,
            State::Archiving => STATE_ARCHIVING,
            State::Archived => STATE_ARCHIVED,
        }
    }

    fn is_done(&self) -> bool {
        matches!(self, State::Acknowledged | State::Archived)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub state: State,
    pub delivery_count: i16,
}

/// A run of offsets with one durable state and delivery count (Kafka's `PersisterStateBatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateBatch {
    pub first_offset: i64,
    pub last_offset: i64,
    pub state: i8,
    pub delivery_count: i16,
}

/// What an operation changed durably: written as a ShareUpdate record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub start_offset: i64,
    pub batches: Vec<StateBatch>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

/// Why a record goes to the dead-letter topic (KIP-1191).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetter {
    /// A consumer rejected it.
    Rejected,
    /// It was delivered `share.delivery.count.limit` times without being accepted.
    DeliveryLimit,
}

/// Limits and settings that apply to one operation (group configs can change at any time).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub lock_ms: i64,
    pub delivery_limit: i16,
    pub max_in_flight: i64,
    /// The group has a dead-letter topic: rejected and over-limit records go through
    /// `Archiving` (and are reported in [`Outcome::dead_letters`]) instead of straight to
    /// `Archived`.
    pub dead_letter: bool,
}

/// A batch of the log as the acquisition sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    /// A control batch, or data that must not be delivered (aborted, under read_committed).
    pub skip: bool,
}

/// An acknowledgement error, per partition (Kafka answers it in AcknowledgeErrorCode or the
/// ShareAcknowledge partition's ErrorCode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckError {
    /// INVALID_REQUEST: malformed ranges or types.
    InvalidRequest(String),
    /// INVALID_RECORD_STATE: a record not acquired by this member (or no longer).
    InvalidRecordState(String),
}

#[derive(Debug, Clone, Default)]
pub struct SharePartition {
    start_offset: i64,
    end_offset: i64,
    entries: BTreeMap<i64, Entry>,
    /// The earliest lock deadline of any acquired record (i64::MAX when none): a cheap check
    /// for the lock timer.
    next_deadline_ms: i64,
}

/// Outcome of an acknowledgement or a lock expiry.
#[derive(Debug, Default)]
pub struct Outcome {
    pub change: Change,
    pub dead_letters: Vec<(i64, DeadLetter, i16)>,
}

impl SharePartition {
    /// A share-partition starting at `start_offset` with nothing in flight.
    pub fn new(start_offset: i64) -> Self {
        SharePartition {
            start_offset,
            end_offset: start_offset,
            entries: BTreeMap::new(),
            next_deadline_ms: i64::MAX,
        }
    }

    /// Rebuilds from persisted state: the start offset and the state batches at or above it.
    pub fn from_state(start_offset: i64, batches: &[StateBatch]) -> Self {
        let mut sp = SharePartition::new(start_offset);
        sp.apply_durable(start_offset, batches);
        sp
    }

    /// Applies a persisted change (replay): states of the offsets named, then the start offset.
    pub fn apply_durable(&mut self, start_offset: i64, batches: &[StateBatch]) {
        if start_offset > self.start_offset {
            self.move_start(start_offset);
        }
        for b in batches {
            let first = b.first_offset.max(self.start_offset);
            if b.last_offset < first {
                continue;
            }
            // Offsets between the window's end and a batch were seen and are not records.
            if first > self.end_offset {
                for o in self.end_offset..first {
                    self.entries.insert(
                        o,
                        Entry {
                            state: State::Archived,
                            delivery_count: 0,
                        },
                    );
                }
            }
            let state = match b.state {
                STATE_ACKNOWLEDGED => State::Acknowledged,
                STATE_ARCHIVING => State::Archiving,
                STATE_ARCHIVED => State::Archived,
                _ => State::Available,
            };
            for o in first..=b.last_offset {
                self.entries.insert(
                    o,
                    Entry {
                        state: state.clone(),
                        delivery_count: b.delivery_count,
                    },
                );
            }
            self.end_offset = self.end_offset.max(b.last_offset + 1);
        }
        self.advance_start();
    }

    pub fn start_offset(&self) -> i64 {
        self.start_offset
    }

    pub fn end_offset(&self) -> i64 {
        self.end_offset
    }

    pub fn entry(&self, offset: i64) -> Option<&Entry> {
        self.entries.get(&offset)
    }

    /// Offsets in flight (the window's size).
    pub fn in_flight(&self) -> i64 {
        self.end_offset - self.start_offset
    }

    /// Offsets in the window already finished (acknowledged or archived).
    pub fn finished_count(&self) -> i64 {
        self.entries.values().filter(|e| e.state.is_done()).count() as i64
    }

    /// Records currently acquired by some consumer.
    pub fn acquired_count(&self) -> usize {
        self.entries
            .values()
            .filter(|e| matches!(e.state, State::Acquired { .. }))
            .count()
    }

    /// The whole durable state, for a snapshot record.
    pub fn durable_state(&self) -> Change {
        let changed: Vec<i64> = self.entries.keys().copied().collect();
        self.change_for(&changed)
    }

    /// Where the next acquisition reads the log from: the first available record in the
    /// window, else the window's end (None when the window is full and nothing in it is
    /// available).
    pub fn next_fetch_offset(&self, settings: &Settings) -> Option<i64> {
        if let Some((o, _)) = self
            .entries
            .iter()
            .find(|(_, e)| e.state == State::Available)
        {
            return Some(*o);
        }
        (self.in_flight() < settings.max_in_flight).then_some(self.end_offset)
    }

    /// Whether anything could be acquired now with `log_end` as the end of what may be read.
    pub fn has_acquirable(&self, log_end: i64, settings: &Settings) -> bool {
        self.entries.values().any(|e| e.state == State::Available)
            || (self.end_offset < log_end && self.in_flight() < settings.max_in_flight)
    }

    /// The log's start moved to `log_start` (retention, DeleteRecords): records below it are
    /// gone and can no longer be delivered or acknowledged.
    pub fn log_start_moved(&mut self, log_start: i64) -> Option<Change> {
        if log_start <= self.start_offset {
            return None;
        }
        self.move_start(log_start);
        Some(Change {
            start_offset: self.start_offset,
            batches: Vec::new(),
        })
    }

    fn move_start(&mut self, to: i64) {
        self.entries = self.entries.split_off(&to);
        self.start_offset = to;
        self.end_offset = self.end_offset.max(to);
    }

    /// Moves `start_offset` past the finished records at the front of the window.
    fn advance_start(&mut self) -> bool {
        let mut moved = false;
        while let Some(e) = self.entries.get(&self.start_offset) {
            if !e.state.is_done() {
                break;
            }
            self.entries.remove(&self.start_offset);
            self.start_offset += 1;
            moved = true;
        }
        if self.entries.is_empty() && self.start_offset < self.end_offset {
            // Nothing in flight: every offset up to the end was finished.
            self.start_offset = self.end_offset;
            moved = true;
        }
        moved
    }

    /// Acquires records for `member` from the log batches read at
    /// [`SharePartition::next_fetch_offset`]: available records in the window and new ones
    /// after it, in offset order, at most `max_records` (with `record_limit` exactly; else whole
    /// batches, stopping at the first batch boundary at or past the limit, Kafka's
    /// batch_optimized mode). Returns the acquired ranges (their delivery counts already
    /// raised) and the change to persist.
    pub fn acquire(
        &mut self,
        member: &Arc<str>,
        batches: &[LogBatch],
        max_records: i64,
        record_limit: bool,
        settings: &Settings,
        now_ms: i64,
    ) -> (Vec<AcquiredRange>, Change) {
        let deadline_ms = now_ms.saturating_add(settings.lock_ms);
        let mut acquired: Vec<AcquiredRange> = Vec::new();
        let mut changed: Vec<i64> = Vec::new();
        let mut taken: i64 = 0;
        let max_records = max_records.max(1);
        'batches: for b in batches {
            if taken >= max_records {
                break;
            }
            if b.last_offset < self.start_offset {
                continue;
            }
            // Offsets the log skipped (compaction, a deleted range) before this batch.
            if b.base_offset > self.end_offset && self.in_flight() < settings.max_in_flight {
                for o in self.end_offset..b.base_offset {
                    self.entries.insert(
                        o,
                        Entry {
                            state: State::Archived,
                            delivery_count: 0,
                        },
                    );
                    changed.push(o);
                }
                self.end_offset = b.base_offset;
            }
            for o in b.base_offset.max(self.start_offset)..=b.last_offset {
                if o >= self.end_offset {
                    if o > self.end_offset || self.in_flight() >= settings.max_in_flight {
                        break 'batches;
                    }
                    self.end_offset = o + 1;
                    if b.skip {
                        self.entries.insert(
                            o,
                            Entry {
                                state: State::Archived,
                                delivery_count: 0,
                            },
                        );
                        changed.push(o);
                        continue;
                    }
                    self.entries.insert(
                        o,
                        Entry {
                            state: State::Available,
                            delivery_count: 0,
                        },
                    );
                } else if b.skip {
                    continue;
                }
                let Some(e) = self.entries.get_mut(&o) else {
                    continue;
                };
                if e.state != State::Available {
                    continue;
                }
                if record_limit && taken >= max_records {
                    break 'batches;
                }
                e.state = State::Acquired {
                    member: member.clone(),
                    deadline_ms,
                };
                e.delivery_count = e.delivery_count.saturating_add(1);
                taken += 1;
                changed.push(o);
                match acquired.last_mut() {
                    Some(r) if r.last_offset + 1 == o && r.delivery_count == e.delivery_count => {
                        r.last_offset = o;
                    }
                    _ => acquired.push(AcquiredRange {
                        first_offset: o,
                        last_offset: o,
                        delivery_count: e.delivery_count,
                    }),
                }
            }
        }
        if !acquired.is_empty() {
            self.next_deadline_ms = self.next_deadline_ms.min(deadline_ms);
        }
        self.advance_start();
        let change = self.change_for(&changed);
        (acquired, change)
    }

    /// Applies `member`'s acknowledgements, all or nothing: every range is checked first
    /// (Kafka's errors: INVALID_REQUEST for malformed ranges and types, INVALID_RECORD_STATE
    /// for records this member does not hold), then applied. RENEW (when `renew_allowed`)
    /// extends the locks.
    pub fn acknowledge(
        &mut self,
        member: &str,
        batches: &[AckBatch],
        renew_allowed: bool,
        settings: &Settings,
        now_ms: i64,
    ) -> Result<Outcome, AckError> {
        validate_ranges(batches, renew_allowed)?;
        for b in batches {
            for o in b.first_offset..=b.last_offset {
                let held = self.entries.get(&o).is_some_and(
                    |e| matches!(&e.state, State::Acquired { member: m, .. } if &**m == member),
                );
                if !held {
                    return Err(AckError::InvalidRecordState(format!(
                        "The record at offset {o} is not acquired by this member."
                    )));
                }
            }
        }
        let mut out = Outcome::default();
        let mut changed = Vec::new();
        let renew_deadline = now_ms.saturating_add(settings.lock_ms);
        for b in batches {
            for (i, o) in (b.first_offset..=b.last_offset).enumerate() {
                let t = if b.types.len() == 1 {
                    b.types[0]
                } else {
                    b.types[i]
                };
                let e = self.entries.get_mut(&o).expect("checked above");
                match t {
                    ACK_ACCEPT => e.state = State::Acknowledged,
                    ACK_GAP => e.state = State::Archived,
                    ACK_REJECT => {
                        if settings.dead_letter {
                            e.state = State::Archiving;
                            out.dead_letters
                                .push((o, DeadLetter::Rejected, e.delivery_count));
                        } else {
                            e.state = State::Archived;
                        }
                    }
                    ACK_RELEASE => {
                        if e.delivery_count >= settings.delivery_limit {
                            if settings.dead_letter {
                                e.state = State::Archiving;
                                out.dead_letters.push((
                                    o,
                                    DeadLetter::DeliveryLimit,
                                    e.delivery_count,
                                ));
                            } else {
                                e.state = State::Archived;
                            }
                        } else {
                            e.state = State::Available;
                        }
                    }
                    ACK_RENEW => {
                        if let State::Acquired { deadline_ms, .. } = &mut e.state {
                            *deadline_ms = renew_deadline;
                        }
                        self.next_deadline_ms = self.next_deadline_ms.min(renew_deadline);
                        continue;
                    }
                    _ => unreachable!("types validated"),
                }
                changed.push(o);
            }
        }
        self.advance_start();
        out.change = self.change_for(&changed);
        Ok(out)
    }

    /// Releases every record `member` holds (its share session closed, or it left the
    /// group): available again with the delivery count kept, archived once at the limit.
    pub fn release_member(&mut self, member: &str, settings: &Settings) -> Outcome {
        self.release_where(settings, |m, _| m == member)
    }

    /// Releases every record whose lock expired by `now_ms`.
    pub fn expire_locks(&mut self, now_ms: i64, settings: &Settings) -> Outcome {
        if now_ms < self.next_deadline_ms {
            return Outcome::default();
        }
        let out = self.release_where(settings, |_, deadline| deadline <= now_ms);
        self.next_deadline_ms = self
            .entries
            .values()
            .filter_map(|e| match &e.state {
                State::Acquired { deadline_ms, .. } => Some(*deadline_ms),
                _ => None,
            })
            .min()
            .unwrap_or(i64::MAX);
        out
    }

    pub fn next_deadline_ms(&self) -> i64 {
        self.next_deadline_ms
    }

    fn release_where(&mut self, settings: &Settings, pick: impl Fn(&str, i64) -> bool) -> Outcome {
        let mut out = Outcome::default();
        let mut changed = Vec::new();
        for (o, e) in self.entries.iter_mut() {
            let State::Acquired {
                member,
                deadline_ms,
            } = &e.state
            else {
                continue;
            };
            if !pick(member, *deadline_ms) {
                continue;
            }
            if e.delivery_count >= settings.delivery_limit {
                if settings.dead_letter {
                    e.state = State::Archiving;
                    out.dead_letters
                        .push((*o, DeadLetter::DeliveryLimit, e.delivery_count));
                } else {
                    e.state = State::Archived;
                }
            } else {
                e.state = State::Available;
            }
            changed.push(*o);
        }
        self.advance_start();
        out.change = self.change_for(&changed);
        out
    }

    /// Records whose dead-letter copy was written (or failed for good): archived at last.
    pub fn archive(&mut self, offsets: &[i64]) -> Change {
        let mut changed = Vec::new();
        for o in offsets {
            if let Some(e) = self.entries.get_mut(o) {
                if e.state == State::Archiving {
                    e.state = State::Archived;
                    changed.push(*o);
                }
            }
        }
        self.advance_start();
        self.change_for(&changed)
    }

    /// Records on their way to the dead-letter topic (after a restart: to send again), with
    /// why and their delivery count.
    pub fn archiving(&self, delivery_limit: i16) -> Vec<(i64, DeadLetter, i16)> {
        self.entries
            .iter()
            .filter(|(_, e)| e.state == State::Archiving)
            .map(|(o, e)| {
                let why = if e.delivery_count >= delivery_limit {
                    DeadLetter::DeliveryLimit
                } else {
                    DeadLetter::Rejected
                };
                (*o, why, e.delivery_count)
            })
            .collect()
    }

    /// The durable state of `offsets` (ascending) still in the window, as runs.
    fn change_for(&self, offsets: &[i64]) -> Change {
        let mut batches: Vec<StateBatch> = Vec::new();
        let mut sorted: Vec<i64> = offsets.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        for o in sorted {
            // Offsets that left the window are covered by the start offset.
            let Some(e) = self.entries.get(&o) else {
                continue;
            };
            let state = e.state.durable_id();
            match batches.last_mut() {
                Some(b)
                    if b.last_offset + 1 == o
                        && b.state == state
                        && b.delivery_count == e.delivery_count =>
                {
                    b.last_offset = o;
                }
                _ => batches.push(StateBatch {
                    first_offset: o,
                    last_offset: o,
                    state,
                    delivery_count: e.delivery_count,
                }),
            }
        }
        Change {
            start_offset: self.start_offset,
            batches,
        }
    }
}

/// Kafka's request-level checks of acknowledgement batches (`validateAcknowledgementBatches`
/// and the share fetch/acknowledge handlers): ascending, non-overlapping ranges; one type for
/// the range or one per offset; known types.
pub fn validate_ranges(batches: &[AckBatch], renew_allowed: bool) -> Result<(), AckError> {
    let mut prev_last = i64::MIN;
    for b in batches {
        if b.first_offset < 0 || b.last_offset < b.first_offset {
            return Err(AckError::InvalidRequest(format!(
                "Acknowledgement batch {}-{} runs backwards.",
                b.first_offset, b.last_offset
            )));
        }
        if b.first_offset <= prev_last {
            return Err(AckError::InvalidRequest(
                "Acknowledgement batches overlap or are out of order.".into(),
            ));
        }
        prev_last = b.last_offset;
        let span = b.last_offset - b.first_offset + 1;
        if b.types.len() != 1 && b.types.len() as i64 != span {
            return Err(AckError::InvalidRequest(format!(
                "Acknowledgement batch {}-{} has {} types.",
                b.first_offset,
                b.last_offset,
                b.types.len()
            )));
        }
        for t in &b.types {
            let known = matches!(*t, ACK_GAP | ACK_ACCEPT | ACK_RELEASE | ACK_REJECT)
                || (*t == ACK_RENEW && renew_allowed);
            if !known {
                return Err(AckError::InvalidRequest(format!(
                    "Unknown acknowledge type {t}."
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
