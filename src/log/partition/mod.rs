//! One partition's log: an ordered list of segments, the last one active.
//!
//! Invariants (asserted in debug builds and relied on everywhere):
//! - offsets are contiguous and strictly increasing across segments;
//! - `log_start_offset <= next_offset` (the log end offset, LEO);
//! - a sealed segment has index files on disk **iff** its data was fsynced, so recovery after a
//!   crash verifies (CRC scan) exactly the segments without index files, which always includes
//!   the active one.
//!
//! Durability: `append` writes to the page cache under the partition lock; `flush_to` makes
//! everything up to an offset durable with one `fdatasync` serving every waiter that queued
//! behind the one in progress (group commit). A failed fsync poisons the log: every later append
//! and flush fails, because retrying fsync after a failure can silently lose data.
//!
//! Files: `recovery.rs` (opening), `flush.rs` (fsync, group commit), `read.rs` (fetch reads),
//! `tests.rs`; appends, rolls, retention and truncation are here.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tracing::{info, warn};

use crate::log::io::{OsStorage, SharedFile, Storage};
use crate::log::producer_state::{self, BatchMeta, Check, ProducerStateMap, Snapshot};
use crate::log::segment::{BatchPos, Segment};
use crate::log::{LogConfig, LogError};
use crate::protocol::batch::{self, BatchView};

mod flush;
mod read;
mod recovery;

pub use read::{RangeResult, ReadResult};
pub use recovery::CORRUPT_SUFFIX;
use recovery::RECOVERY_POINT_FILE;

const LOG_START_FILE: &str = "log-start-offset";
const PRODUCER_SNAPSHOT_FILE: &str = "producer-state.json";

/// Result of a successful append.
#[derive(Debug, Clone, Copy)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker time stamped on the batches for LogAppendTime topics, else -1.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    pub records: i64,
    /// The batch was a retry of one already in the log (idempotent producer); the offsets are
    /// the original ones and nothing was written.
    pub duplicate: bool,
}

struct Inner {
    segments: Vec<Segment>,
    log_start_offset: i64,
    next_offset: i64,
    /// Sealed segments whose data is not yet fsynced (their index files are written after).
    unsynced: Vec<(SharedFile, i64)>,
    /// Segments created by rolls so far, and how many of them the last completed flush
    /// covered with a directory fsync (see `flush.rs`).
    rolls: u64,
    dir_synced_rolls: u64,
    records_since_flush: i64,
    producers: ProducerStateMap,
}

pub struct PartitionLog {
    name: String,
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    inner: Mutex<Inner>,
    config: RwLock<LogConfig>,
    /// Every offset below this is durable.
    flushed_offset: AtomicI64,
    /// Mirrors of `Inner` fields for lock-free readers.
    end_offset: AtomicI64,
    start_offset: AtomicI64,
    flush_lock: tokio::sync::Mutex<()>,
    poisoned: AtomicBool,
    /// Set when recovery found damaged durable data: the log serves nothing (see recovery.rs).
    offline: Option<String>,
    /// The recovery point last written to disk; held while writing a new one.
    recovery_point: Mutex<i64>,
}

impl PartitionLog {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn log_end_offset(&self) -> i64 {
        self.end_offset.load(Ordering::Acquire)
    }
    pub fn log_start_offset(&self) -> i64 {
        self.start_offset.load(Ordering::Acquire)
    }
    pub fn flushed_offset(&self) -> i64 {
        self.flushed_offset.load(Ordering::Acquire)
    }
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }
    pub fn config(&self) -> LogConfig {
        self.config.read().clone()
    }
    pub fn set_config(&self, config: LogConfig) {
        *self.config.write() = config;
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.inner.lock().segments.iter().map(|s| s.size).sum()
    }

    /// Why the log is offline, if recovery took it offline.
    pub fn offline_reason(&self) -> Option<&str> {
        self.offline.as_deref()
    }

    /// Reads fail only when recovery took the log offline (a poisoned log still serves them).
    fn check_online(&self) -> Result<(), LogError> {
        match &self.offline {
            Some(reason) => Err(LogError::Offline(reason.clone())),
            None => Ok(()),
        }
    }

    fn check_poisoned(&self) -> Result<(), LogError> {
        if let Some(reason) = &self.offline {
            return Err(LogError::Offline(reason.clone()));
        }
        if self.is_poisoned() {
            return Err(LogError::Poisoned(self.name.clone()));
        }
        Ok(())
    }

    /// Validates, assigns offsets to and appends the batches in `data`. `data` is not changed:
    /// each batch's header is copied and patched (offsets, leader epoch, LogAppendTime and its
    /// CRC all live in the 61-byte header) and written in front of the untouched rest with
    /// one vectored write, so a produce appends straight from the request frame.
    pub fn append(
        &self,
        data: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_with(data, leader_epoch, now_ms, false)
    }

    /// A compacted topic keeps the last record of each key: a record without one is refused,
    /// as Kafka's LogValidator does (INVALID_RECORD with one error per record, nothing
    /// appended). Reads every record, decompressing as needed (bounded like any batch).
    fn check_keys(&self, data: &[u8], batches: &[(usize, usize, i64)]) -> Result<(), LogError> {
        let mut errors = Vec::new();
        let mut index = 0i32;
        for &(at, size, _) in batches {
            let view = BatchView::parse(&data[at..at + size])?;
            let res = crate::protocol::records::for_each_record(&view, 64 << 20, |rec| {
                if rec.key.is_none() {
                    errors.push((
                        index,
                        format!(
                            "Compacted topic cannot accept message without key in topic partition {}",
                            self.name
                        ),
                    ));
                }
                index += 1;
            });
            res.map_err(|_| {
                LogError::InvalidBatch(batch::BatchError::Corrupt("unreadable records"))
            })?;
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(LogError::InvalidRecords(errors))
        }
    }

    /// Append for the broker's own writers (coordinators), which may write transaction
    /// markers (control batches); clients may not.
    pub fn append_internal(
        &self,
        data: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_with(data, leader_epoch, now_ms, true)
    }

    fn append_with(
        &self,
        data: &[u8],
        leader_epoch: i32,
        now_ms: i64,
        allow_control: bool,
    ) -> Result<AppendInfo, LogError> {
        self.check_poisoned()?;
        let config = self.config.read().clone();
        // Validate outside the lock: CRC is the expensive part.
        let mut batches: Vec<(usize, usize, i64)> = Vec::with_capacity(1);
        let mut pos = 0usize;
        let mut records = 0i64;
        for view in batch::BatchIter::new(data, true) {
            let view = view?;
            if view.size() > config.max_message_bytes {
                return Err(LogError::RecordTooLarge {
                    size: view.size(),
                    max: config.max_message_bytes,
                });
            }
            if view.is_control() && !allow_control {
                return Err(LogError::InvalidBatch(batch::BatchError::Invalid(
                    "control batches cannot be produced by clients",
                )));
            }
            let n = view.last_offset_delta() as i64 + 1;
            batches.push((pos, view.size(), n));
            records += n;
            pos += view.size();
        }
        if batches.is_empty() {
            return Err(LogError::InvalidBatch(batch::BatchError::Corrupt(
                "no record batch in produce data",
            )));
        }
        if config.compact && !allow_control {
            self.check_keys(data, &batches)?;
        }

        let mut inner = self.inner.lock();
        self.check_poisoned()?;
        // Idempotent producers: refuse gaps and stale epochs, answer retries with the original
        // offsets. (Produce v3+ carries one batch per partition; several are checked in turn.)
        let mut producer_batches = Vec::new();
        for (i, &(at, size, _)) in batches.iter().enumerate() {
            let view = BatchView::parse_header(&data[at..at + size])?;
            // The broker's own transactional writes (offsets, markers) carry no sequence.
            if view.producer_id() < 0 || view.is_control() || allow_control {
                continue;
            }
            let (pid, epoch, first) = (
                view.producer_id(),
                view.producer_epoch(),
                view.base_sequence(),
            );
            let last = producer_state::last_seq(first, view.records_count());
            match inner.producers.check(pid, epoch, first, last)? {
                Check::Duplicate(orig) if batches.len() == 1 => {
                    return Ok(AppendInfo {
                        base_offset: orig.first_offset,
                        last_offset: orig.last_offset,
                        log_append_time_ms: if config.log_append_time {
                            orig.max_timestamp
                        } else {
                            -1
                        },
                        log_start_offset: inner.log_start_offset,
                        records: 0,
                        duplicate: true,
                    });
                }
                Check::Duplicate(_) => {
                    return Err(LogError::InvalidBatch(batch::BatchError::Invalid(
                        "duplicate batch inside a multi-batch append",
                    )));
                }
                Check::Append => producer_batches.push((i, pid, epoch, first, last)),
            }
        }
        self.maybe_roll(&mut inner, &config, data.len() as u64, now_ms)?;
        let base_offset = inner.next_offset;
        let mut next = base_offset;
        let append_time = if config.log_append_time { now_ms } else { -1 };
        let mut headers: Vec<[u8; batch::HEADER_LEN]> = Vec::with_capacity(batches.len());
        for &(at, size, n) in &batches {
            let mut h = [0u8; batch::HEADER_LEN];
            h.copy_from_slice(&data[at..at + batch::HEADER_LEN]);
            batch::patch_base_offset(&mut h, next);
            batch::patch_leader_epoch(&mut h, leader_epoch);
            if config.log_append_time {
                batch::patch_log_append_time(
                    &mut h,
                    &data[at + batch::HEADER_LEN..at + size],
                    now_ms,
                );
            }
            headers.push(h);
            next += n;
        }
        let mut parts = Vec::with_capacity(2 * batches.len());
        for (h, &(at, size, _)) in headers.iter().zip(&batches) {
            parts.push(std::io::IoSlice::new(h));
            parts.push(std::io::IoSlice::new(
                &data[at + batch::HEADER_LEN..at + size],
            ));
        }
        let seg = inner.segments.last_mut().expect("active segment");
        let start_pos = seg.size;
        if let Err(e) = seg.append(&mut parts, data.len() as u64) {
            // Undo a partial write so the file holds only whole batches; the caller gets
            // KAFKA_STORAGE_ERROR and may retry when the condition (e.g. ENOSPC) clears.
            if seg.file.set_len(start_pos).is_err() {
                self.poison("could not undo a failed write");
            }
            seg.size = start_pos;
            return Err(e.into());
        }
        for (h, &(at, size, n)) in headers.iter().zip(&batches) {
            let view = BatchView::parse_header_only(h)?;
            let bp = BatchPos {
                position: start_pos + at as u64,
                size: size as u64,
                base_offset: view.base_offset(),
                last_offset: view.base_offset() + n - 1,
                max_timestamp: view.max_timestamp(),
            };
            seg.track_batch(&bp, config.index_interval_bytes);
        }
        debug_assert_eq!(seg.next_offset, next);
        for &(i, pid, epoch, first, last) in &producer_batches {
            let view = BatchView::parse_header_only(&headers[i])?;
            let meta = BatchMeta {
                first_seq: first,
                last_seq: last,
                first_offset: view.base_offset(),
                last_offset: view.last_offset(),
                max_timestamp: view.max_timestamp(),
            };
            inner.producers.record(pid, epoch, meta, now_ms);
        }
        for (h, &(at, size, _)) in headers.iter().zip(&batches) {
            let view = BatchView::parse_header_only(h)?;
            if view.producer_id() < 0 {
                continue;
            }
            if view.is_control() {
                let whole = BatchView::parse_header(&data[at..at + size])?;
                let commit = crate::protocol::records::marker_is_commit(&whole).unwrap_or(false);
                inner.producers.on_marker(
                    view.producer_id(),
                    view.producer_epoch(),
                    commit,
                    view.base_offset(),
                    now_ms,
                );
            } else if view.is_transactional() {
                inner
                    .producers
                    .on_transactional_batch(view.producer_id(), view.base_offset());
            }
        }
        inner.next_offset = next;
        inner.records_since_flush += records;
        self.end_offset.store(next, Ordering::Release);
        Ok(AppendInfo {
            base_offset,
            last_offset: next - 1,
            log_append_time_ms: append_time,
            log_start_offset: inner.log_start_offset,
            records,
            duplicate: false,
        })
    }

    /// A follower's append: record batches exactly as the leader wrote them — base offsets,
    /// leader epochs, timestamps and producer fields kept, nothing patched — as Kafka's
    /// `appendAsFollower`. Offsets must move forward from the log end (gaps are allowed: a
    /// compacted leader log has them); anything else is refused and nothing is written. The
    /// producer state follows the batches (no sequence checks: the leader made them), so this
    /// replica can lead later with the same duplicate detection and transaction state.
    pub fn append_as_follower(&self, data: &[u8], now_ms: i64) -> Result<AppendInfo, LogError> {
        self.check_poisoned()?;
        let config = self.config.read().clone();
        // (position, size, base offset, last offset), CRC-checked outside the lock.
        let mut batches: Vec<(usize, usize, i64, i64)> = Vec::with_capacity(1);
        let mut pos = 0usize;
        let mut records = 0i64;
        for view in batch::BatchIter::new(data, true) {
            let view = view?;
            batches.push((pos, view.size(), view.base_offset(), view.last_offset()));
            records += i64::from(view.last_offset_delta()) + 1;
            pos += view.size();
        }
        let Some(&(_, _, first_offset, _)) = batches.first() else {
            return Err(LogError::InvalidBatch(batch::BatchError::Corrupt(
                "no record batch in replicated data",
            )));
        };
        let mut inner = self.inner.lock();
        self.check_poisoned()?;
        let mut next = inner.next_offset;
        for &(_, _, base, last) in &batches {
            if base < next || last < base {
                return Err(LogError::InvalidBatch(batch::BatchError::Invalid(
                    "replicated batches must continue past the log end offset",
                )));
            }
            next = last + 1;
        }
        self.maybe_roll(&mut inner, &config, data.len() as u64, now_ms)?;
        let seg = inner.segments.last_mut().expect("active segment");
        let start_pos = seg.size;
        let mut parts = [std::io::IoSlice::new(data)];
        if let Err(e) = seg.append(&mut parts, data.len() as u64) {
            if seg.file.set_len(start_pos).is_err() {
                self.poison("could not undo a failed write");
            }
            seg.size = start_pos;
            return Err(e.into());
        }
        for &(at, size, base, last) in &batches {
            let view = BatchView::parse_header_only(&data[at..at + batch::HEADER_LEN])?;
            let bp = BatchPos {
                position: start_pos + at as u64,
                size: size as u64,
                base_offset: base,
                last_offset: last,
                max_timestamp: view.max_timestamp(),
            };
            seg.track_batch(&bp, config.index_interval_bytes);
        }
        for &(at, size, base, last) in &batches {
            let view = BatchView::parse_header_only(&data[at..at + batch::HEADER_LEN])?;
            let pid = view.producer_id();
            if pid < 0 {
                continue;
            }
            if view.is_control() {
                let whole = BatchView::parse_header(&data[at..at + size])?;
                let commit = crate::protocol::records::marker_is_commit(&whole).unwrap_or(false);
                inner
                    .producers
                    .on_marker(pid, view.producer_epoch(), commit, base, now_ms);
                continue;
            }
            let first_seq = view.base_sequence();
            let meta = BatchMeta {
                first_seq,
                last_seq: producer_state::last_seq(first_seq, view.records_count()),
                first_offset: base,
                last_offset: last,
                max_timestamp: view.max_timestamp(),
            };
            inner
                .producers
                .record(pid, view.producer_epoch(), meta, now_ms);
            if view.is_transactional() {
                inner.producers.on_transactional_batch(pid, base);
            }
        }
        inner.next_offset = next;
        inner.records_since_flush += records;
        self.end_offset.store(next, Ordering::Release);
        Ok(AppendInfo {
            base_offset: first_offset,
            last_offset: next - 1,
            log_append_time_ms: -1,
            log_start_offset: inner.log_start_offset,
            records,
            duplicate: false,
        })
    }

    /// Whether `flush.messages` asks for an fsync now.
    pub fn flush_due_by_count(&self) -> bool {
        let flush_messages = self.config.read().flush_messages;
        self.inner.lock().records_since_flush >= flush_messages
    }

    fn maybe_roll(
        &self,
        inner: &mut Inner,
        config: &LogConfig,
        incoming: u64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let active = inner.segments.last().expect("active segment");
        if active.size == 0 {
            return Ok(());
        }
        let too_big = active.size + incoming > config.segment_bytes;
        let too_old = now_ms - active.created_ms >= config.segment_ms;
        // Relative offsets and positions in the index are u32.
        let index_full = inner.next_offset - active.base_offset >= i64::from(u32::MAX) - (1 << 20)
            || active.size + incoming >= u64::from(u32::MAX);
        if too_big || too_old || index_full {
            self.roll(inner, now_ms)?;
        }
        Ok(())
    }

    fn roll(&self, inner: &mut Inner, now_ms: i64) -> Result<(), LogError> {
        let next = inner.next_offset;
        let new_seg = Segment::create(self.storage.as_ref(), &self.dir, next, now_ms)?;
        // The directory fsync is the next flush's (flush.rs): not here under the lock.
        inner.rolls += 1;
        let old = inner.segments.last_mut().expect("active segment");
        old.seal();
        inner.unsynced.push((old.file.clone(), old.base_offset));
        inner.segments.push(new_seg);
        Ok(())
    }

    /// Seals the active segment if it is older than `segment.ms` (called by the background task).
    pub fn roll_if_expired(&self, now_ms: i64) -> Result<(), LogError> {
        if self.offline.is_some() {
            return Ok(());
        }
        let config = self.config.read().clone();
        let mut inner = self.inner.lock();
        let active = inner.segments.last().expect("active segment");
        if active.size > 0 && now_ms - active.created_ms >= config.segment_ms {
            self.roll(&mut inner, now_ms)?;
        }
        Ok(())
    }

    /// Flushes and writes the active segment's indexes (clean shutdown).
    pub fn close(&self) -> Result<(), LogError> {
        self.flush_blocking()?;
        let inner = self.inner.lock();
        if let Some(active) = inner.segments.last() {
            active.write_indexes(self.storage.as_ref(), &self.dir)?;
        }
        let end = inner.next_offset;
        drop(inner);
        self.write_producer_snapshot()?;
        self.write_recovery_point(end)?;
        Ok(())
    }

    /// Durably replaces `name`, a small checkpoint file that a layer above keeps in this
    /// partition's directory (the replica's leader-epoch checkpoint), through the storage seam.
    pub fn write_checkpoint(&self, name: &str, data: &[u8]) -> Result<(), LogError> {
        self.storage.write_file_synced(&self.dir.join(name), data)?;
        Ok(())
    }

    /// The content of checkpoint file `name` in this partition's directory; None when absent.
    pub fn read_checkpoint(&self, name: &str) -> Result<Option<Vec<u8>>, LogError> {
        let path = self.dir.join(name);
        if !self.storage.exists(&path) {
            return Ok(None);
        }
        Ok(Some(self.storage.read_file(&path)?))
    }

    /// Writes the producer state as of the log end (`producer-state.json`): what recovery
    /// starts from before replaying the headers after it. Written at clean shutdown and once
    /// per roll; removed by a truncation below its end.
    fn write_producer_snapshot(&self) -> Result<(), LogError> {
        let snapshot = {
            let inner = self.inner.lock();
            Snapshot {
                end_offset: inner.next_offset,
                state: inner.producers.clone(),
            }
        };
        let json =
            serde_json::to_vec(&snapshot).map_err(|e| std::io::Error::other(e.to_string()))?;
        self.storage
            .write_file_synced(&self.dir.join(PRODUCER_SNAPSHOT_FILE), &json)?;
        Ok(())
    }

    /// Writes the recovery point if `offset` (which must be durable) is past the stored one.
    fn write_recovery_point(&self, offset: i64) -> Result<(), LogError> {
        let mut stored = self.recovery_point.lock();
        if offset > *stored {
            self.storage.write_file_synced(
                &self.dir.join(RECOVERY_POINT_FILE),
                offset.to_string().as_bytes(),
            )?;
            *stored = offset;
        }
        Ok(())
    }

    /// Checkpoints the recovery point at the flushed offset (the periodic maintenance pass):
    /// the next start after a crash then verifies only what was appended since. No-op when it
    /// did not move.
    pub fn checkpoint_recovery_point(&self) -> Result<(), LogError> {
        if self.offline.is_some() || self.is_poisoned() {
            return Ok(());
        }
        self.write_recovery_point(self.flushed_offset())
    }

    /// The last stable offset: below it every transaction is decided (committed or aborted).
    pub fn last_stable_offset(&self) -> i64 {
        let inner = self.inner.lock();
        inner
            .producers
            .first_unstable_offset()
            .map_or(inner.next_offset, |f| f.min(inner.next_offset))
    }

    /// Aborted transactions overlapping `[from, to)`, ordered by first offset.
    pub fn aborted_transactions(
        &self,
        from: i64,
        to: i64,
    ) -> Vec<crate::log::producer_state::AbortedTxn> {
        self.inner.lock().producers.aborted_in(from, to)
    }

    /// Drops idempotent-producer state idle longer than `expiration_ms`.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.inner.lock().producers.expire(now_ms, expiration_ms)
    }

    /// A copy of the idempotent-producer state (DescribeProducers, tests).
    pub fn producer_state(&self) -> ProducerStateMap {
        self.inner.lock().producers.clone()
    }

    fn poison(&self, why: &str) {
        if !self.poisoned.swap(true, Ordering::AcqRel) {
            tracing::error!(log = %self.name, why, "partition log poisoned; it refuses writes until restart");
        }
    }
    /// Batches to search for the first record with timestamp `>= target`: the first batch whose
    /// max timestamp reaches it, as raw bytes. `None` when no record is that new.
    pub fn find_batch_by_timestamp(&self, target: i64) -> Result<Option<Bytes>, LogError> {
        self.check_online()?;
        let inner = self.inner.lock();
        let log_start = inner.log_start_offset;
        for seg in &inner.segments {
            if seg.max_timestamp < target || seg.next_offset <= log_start {
                continue;
            }
            let rel = seg.time_index.scan_start(target);
            let from = (seg.base_offset + rel as i64).max(log_start);
            let Some(mut bp) = seg.find_batch(from)? else {
                continue;
            };
            loop {
                if bp.max_timestamp >= target {
                    let mut buf = vec![0u8; bp.size as usize];
                    read_exact_at(&seg.file, &mut buf, bp.position)?;
                    return Ok(Some(Bytes::from(buf)));
                }
                match seg.read_batch_pos(bp.position + bp.size)? {
                    Some(next) => bp = next,
                    None => break,
                }
            }
        }
        Ok(None)
    }

    /// The batch holding the largest timestamp in the log (first one on ties).
    pub fn find_batch_with_max_timestamp(&self) -> Result<Option<Bytes>, LogError> {
        self.check_online()?;
        let inner = self.inner.lock();
        let log_start = inner.log_start_offset;
        let Some(seg) = inner
            .segments
            .iter()
            .filter(|s| s.size > 0 && s.next_offset > log_start)
            .fold(None::<&Segment>, |best, s| match best {
                Some(b) if b.max_timestamp >= s.max_timestamp => Some(b),
                _ => Some(s),
            })
        else {
            return Ok(None);
        };
        let target = seg.max_timestamp;
        let rel = seg.time_index.scan_start(target);
        let from = (seg.base_offset + rel as i64).max(log_start);
        let mut cur = seg.find_batch(from)?;
        while let Some(bp) = cur {
            if bp.max_timestamp >= target {
                let mut buf = vec![0u8; bp.size as usize];
                read_exact_at(&seg.file, &mut buf, bp.position)?;
                return Ok(Some(Bytes::from(buf)));
            }
            cur = seg.read_batch_pos(bp.position + bp.size)?;
        }
        Ok(None)
    }

    /// Moves the log start offset forward to `offset` (DeleteRecords), deleting whole segments
    /// below it. The caller ensures `offset <= high watermark`.
    pub fn advance_log_start(&self, offset: i64) -> Result<i64, LogError> {
        self.check_online()?;
        let mut inner = self.inner.lock();
        if offset > inner.next_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: inner.log_start_offset,
                log_end: inner.next_offset,
            });
        }
        if offset <= inner.log_start_offset {
            return Ok(inner.log_start_offset);
        }
        self.storage.write_file_synced(
            &self.dir.join(LOG_START_FILE),
            offset.to_string().as_bytes(),
        )?;
        inner.log_start_offset = offset;
        self.start_offset.store(offset, Ordering::Release);
        self.delete_segments_below_start(&mut inner);
        Ok(offset)
    }

    fn delete_segments_below_start(&self, inner: &mut Inner) {
        let start = inner.log_start_offset;
        inner.producers.prune_aborted(start);
        while inner.segments.len() > 1 && inner.segments[1].base_offset <= inner.log_start_offset {
            let seg = inner.segments.remove(0);
            inner.unsynced.retain(|(_, b)| *b != seg.base_offset);
            seg.delete_files(self.storage.as_ref(), &self.dir);
        }
    }

    /// Deletes sealed segments past `retention.ms` / `retention.bytes`. Returns how many.
    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, LogError> {
        let config = self.config.read().clone();
        if !config.delete_retention_enabled {
            return Ok(0);
        }
        let mut inner = self.inner.lock();
        let mut total: i64 = inner.segments.iter().map(|s| s.size as i64).sum();
        let mut new_start = None;
        for (i, seg) in inner.segments.iter().enumerate() {
            if i + 1 == inner.segments.len() {
                break; // never the active segment
            }
            let expired_time = config.retention_ms >= 0
                && seg.max_timestamp >= 0
                && now_ms - seg.max_timestamp > config.retention_ms;
            let expired_size =
                config.retention_bytes >= 0 && total - seg.size as i64 >= config.retention_bytes;
            if !(expired_time || expired_size) {
                break;
            }
            total -= seg.size as i64;
            new_start = Some(inner.segments[i + 1].base_offset);
        }
        let Some(start) = new_start else { return Ok(0) };
        let before = inner.segments.len();
        if start > inner.log_start_offset {
            self.storage
                .write_file_synced(&self.dir.join(LOG_START_FILE), start.to_string().as_bytes())?;
            inner.log_start_offset = start;
            self.start_offset.store(start, Ordering::Release);
        }
        self.delete_segments_below_start(&mut inner);
        let deleted = before - inner.segments.len();
        if deleted > 0 {
            info!(log = %self.name, deleted, log_start_offset = start, "retention deleted segments");
        }
        Ok(deleted)
    }

    pub fn segment_count(&self) -> usize {
        self.inner.lock().segments.len()
    }

    /// Removes every offset `>= offset` (for a future follower catching up to a new leader).
    pub fn truncate_to(&self, offset: i64) -> Result<(), LogError> {
        self.check_poisoned()?;
        let mut inner = self.inner.lock();
        if offset >= inner.next_offset {
            return Ok(());
        }
        let offset = offset.max(inner.log_start_offset);
        {
            // Lowered before the data goes: a crash in between must not find the log ending
            // below its recovery point (which recovery treats as lost durable data).
            let mut stored = self.recovery_point.lock();
            if offset < *stored {
                self.storage.write_file_synced(
                    &self.dir.join(RECOVERY_POINT_FILE),
                    offset.to_string().as_bytes(),
                )?;
                *stored = offset;
            }
            // A producer snapshot past the cut would describe records that are gone.
            self.storage
                .remove_file(&self.dir.join(PRODUCER_SNAPSHOT_FILE))?;
            self.storage.sync_dir(&self.dir)?;
        }
        while inner.segments.len() > 1
            && inner
                .segments
                .last()
                .is_some_and(|s| s.base_offset >= offset)
        {
            if let Some(s) = inner.segments.pop() {
                inner.unsynced.retain(|(_, b)| *b != s.base_offset);
                s.delete_files(self.storage.as_ref(), &self.dir);
            }
        }
        let seg = inner.segments.last_mut().expect("active segment");
        let cut = seg
            .find_batch(offset)?
            .map(|bp| (bp.position, bp.base_offset));
        if let Some((pos, base)) = cut {
            let keep_until = if base < offset {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start: base,
                    log_end: base,
                });
            } else {
                pos
            };
            seg.truncate_to(keep_until, offset)?;
        }
        inner.next_offset = offset;
        inner.producers.truncate_from(offset);
        self.end_offset.store(offset, Ordering::Release);
        self.flushed_offset.fetch_min(offset, Ordering::AcqRel);
        Ok(())
    }
}

fn read_exact_at(file: &SharedFile, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
    file.read_exact_at(buf, pos)
}

#[cfg(test)]
mod tests;
