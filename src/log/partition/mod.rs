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

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tracing::{info, warn};

use crate::log::io::{OsStorage, SharedFile, Storage};
use crate::log::producer_state::{self, BatchMeta, Check, ProducerStateMap, Snapshot};
use crate::log::segment::{write_file_synced, BatchPos, Segment};
use crate::log::{LogConfig, LogError};
use crate::protocol::batch::{self, BatchView};

mod read;

pub use read::{RangeResult, ReadResult};

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
    records_since_flush: i64,
    producers: ProducerStateMap,
}

/// One group-committed fsync: every file it covers and the offset it makes durable.
struct FlushJob {
    sealed: Vec<(SharedFile, i64)>,
    active: SharedFile,
    target: i64,
}

impl FlushJob {
    /// Starts writeback of every file the job covers without waiting for it (advisory: the
    /// fdatasync in [`FlushJob::sync`] is what makes the data durable and reports errors).
    fn start_writeback(&self) {
        for (f, _) in &self.sealed {
            let _ = f.start_writeback();
        }
        let _ = self.active.start_writeback();
    }

    fn sync(&self) -> std::io::Result<()> {
        for (f, _) in &self.sealed {
            f.sync_data()?;
        }
        self.active.sync_data()
    }
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
}

impl PartitionLog {
    /// Opens (recovering if needed) or creates the log in `dir`.
    pub fn open(dir: &Path, name: &str, config: LogConfig, now_ms: i64) -> Result<Self, LogError> {
        Self::open_with(Arc::new(OsStorage), dir, name, config, now_ms)
    }

    /// Opens the log through `storage` (tests inject disk faults this way).
    pub fn open_with(
        storage: Arc<dyn Storage>,
        dir: &Path,
        name: &str,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir)?;
        let mut bases: Vec<i64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name().into_string().ok()?;
                n.strip_suffix(".log")?.parse::<i64>().ok()
            })
            .collect();
        bases.sort_unstable();
        let mut segments: Vec<Segment> = Vec::new();
        let mut truncated_at: Option<usize> = None;
        for (i, &base) in bases.iter().enumerate() {
            if truncated_at.is_some() {
                // Everything after a truncation point is unreachable: offsets must stay contiguous.
                warn!(
                    log = name,
                    base, "deleting segment after a corrupt or torn batch"
                );
                let (seg, _) = Segment::open(storage.as_ref(), dir, base, false, now_ms)?;
                seg.delete_files(dir);
                continue;
            }
            let has_indexes = Segment::index_path(dir, base).exists()
                && Segment::time_index_path(dir, base).exists();
            let (seg, truncated) =
                Segment::open(storage.as_ref(), dir, base, !has_indexes, now_ms)?;
            if !has_indexes {
                // Data without index files may never have been fsynced (a crash before the
                // flush); the log reports everything it recovered as flushed, so make it so.
                seg.file.sync_data()?;
            }
            if let Some(prev) = segments.last() {
                if seg.base_offset != prev.next_offset && seg.size > 0 {
                    // An OS crash cut an unflushed segment exactly at a batch boundary while a
                    // later one survived (flushes go in order, so it is unflushed too). Offsets
                    // must stay contiguous: the records after the cut are lost, as the torn
                    // tail's are.
                    warn!(
                        log = name,
                        base,
                        expected = prev.next_offset,
                        "segment starts past the end of the one before it (unflushed records lost in a crash): dropping it and every later segment"
                    );
                    seg.delete_files(dir);
                    truncated_at = Some(i);
                    continue;
                }
            }
            if truncated > 0 {
                warn!(
                    log = name,
                    base,
                    bytes = truncated,
                    "truncated invalid tail of segment (data after it is dropped)"
                );
                truncated_at = Some(i);
            }
            segments.push(seg);
        }
        // Drop empty trailing segments that are not the first (from a crash right after a roll).
        while segments.len() > 1 && segments.last().is_some_and(|s| s.size == 0) {
            if let Some(s) = segments.pop() {
                s.delete_files(dir);
            }
        }
        let stored_start = std::fs::read_to_string(dir.join(LOG_START_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok());
        if segments.is_empty() {
            let base = stored_start.unwrap_or(0).max(0);
            segments.push(Segment::create(storage.as_ref(), dir, base, now_ms)?);
            sync_dir(dir)?;
        }
        let active = segments.last().expect("at least one segment");
        // The active segment will change: its index files on disk would go stale.
        let _ = std::fs::remove_file(Segment::index_path(dir, active.base_offset));
        let _ = std::fs::remove_file(Segment::time_index_path(dir, active.base_offset));
        let next_offset = active.next_offset;
        let first_base = segments[0].base_offset;
        let log_start_offset = stored_start
            .unwrap_or(first_base)
            .clamp(first_base, next_offset);
        if stored_start.is_some_and(|s| s > log_start_offset) {
            // A crash lost unflushed records above a DeleteRecords point: persist the clamped
            // start, or a later restart would move it past records appended since.
            write_file_synced(
                &dir.join(LOG_START_FILE),
                log_start_offset.to_string().as_bytes(),
            )?;
        }
        let producers = load_producer_state(dir, name, &segments, next_offset)?;
        info!(
            log = name,
            segments = segments.len(),
            log_start_offset,
            next_offset,
            producers = producers.len(),
            "opened log"
        );
        Ok(PartitionLog {
            name: name.to_string(),
            storage,
            dir: dir.to_path_buf(),
            inner: Mutex::new(Inner {
                segments,
                log_start_offset,
                next_offset,
                unsynced: Vec::new(),
                records_since_flush: 0,
                producers,
            }),
            config: RwLock::new(config),
            flushed_offset: AtomicI64::new(next_offset),
            end_offset: AtomicI64::new(next_offset),
            start_offset: AtomicI64::new(log_start_offset),
            flush_lock: tokio::sync::Mutex::new(()),
            poisoned: AtomicBool::new(false),
        })
    }

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

    fn check_poisoned(&self) -> Result<(), LogError> {
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
        sync_dir(&self.dir)?;
        let old = inner.segments.last_mut().expect("active segment");
        old.seal();
        inner.unsynced.push((old.file.clone(), old.base_offset));
        inner.segments.push(new_seg);
        Ok(())
    }

    /// Seals the active segment if it is older than `segment.ms` (called by the background task).
    pub fn roll_if_expired(&self, now_ms: i64) -> Result<(), LogError> {
        let config = self.config.read().clone();
        let mut inner = self.inner.lock();
        let active = inner.segments.last().expect("active segment");
        if active.size > 0 && now_ms - active.created_ms >= config.segment_ms {
            self.roll(&mut inner, now_ms)?;
        }
        Ok(())
    }

    /// Makes every offset below `offset` durable. Concurrent callers share one fsync.
    pub async fn flush_to(&self, offset: i64) -> Result<(), LogError> {
        if self.flushed_offset() >= offset {
            return Ok(());
        }
        let _guard = self.flush_lock.lock().await;
        if self.flushed_offset() >= offset {
            return Ok(());
        }
        self.check_poisoned()?;
        let job = self.begin_flush();
        match tokio::task::spawn_blocking(move || {
            let result = job.sync();
            (job, result)
        })
        .await
        {
            Ok((job, result)) => self.finish_flush(&job, result),
            Err(e) => {
                self.poison(&format!("fsync task failed: {e}"));
                Err(LogError::Poisoned(self.name.clone()))
            }
        }
    }

    /// Makes each log durable below its offset in one pass (the produce flusher's thread; must
    /// not run on the async runtime): writeback is started on every file before the first
    /// fdatasync, so the device works on all of them at once. Each log keeps its own group
    /// commit and poisoning; one outcome per log, in order. A log may appear only once.
    pub fn flush_many_blocking(logs: &[(Arc<PartitionLog>, i64)]) -> Vec<Result<(), LogError>> {
        let mut outcomes: Vec<Result<(), LogError>> = Vec::with_capacity(logs.len());
        // Each log's flush lock is held from taking its job until the job is finished.
        let mut held = Vec::new();
        let mut jobs = Vec::new();
        for (i, (log, target)) in logs.iter().enumerate() {
            let guard = log.flush_lock.blocking_lock();
            if log.flushed_offset() >= *target {
                outcomes.push(Ok(()));
                continue;
            }
            if let Err(e) = log.check_poisoned() {
                outcomes.push(Err(e));
                continue;
            }
            outcomes.push(Ok(()));
            jobs.push((i, log.begin_flush()));
            held.push(guard);
        }
        for (_, job) in &jobs {
            job.start_writeback();
        }
        for (i, job) in &jobs {
            let result = job.sync();
            outcomes[*i] = logs[*i].0.finish_flush(job, result);
        }
        drop(held);
        outcomes
    }

    /// Synchronous flush for shutdown and tests.
    pub fn flush_blocking(&self) -> Result<(), LogError> {
        self.check_poisoned()?;
        let job = self.begin_flush();
        let result = job.sync();
        self.finish_flush(&job, result)
    }

    /// Takes what an fsync must cover: sealed segments not yet synced, the active segment, and
    /// the log end it makes durable.
    fn begin_flush(&self) -> FlushJob {
        let mut inner = self.inner.lock();
        inner.records_since_flush = 0;
        FlushJob {
            sealed: std::mem::take(&mut inner.unsynced),
            active: inner.segments.last().expect("active segment").file.clone(),
            target: inner.next_offset,
        }
    }

    /// Records a finished fsync: advances the flushed offset and writes the now-durable sealed
    /// segments' indexes, or poisons the log on failure (an fsync is never retried).
    fn finish_flush(&self, job: &FlushJob, result: std::io::Result<()>) -> Result<(), LogError> {
        if let Err(e) = result {
            self.poison(&format!("fsync failed: {e}"));
            return Err(LogError::Io(e));
        }
        self.flushed_offset.fetch_max(job.target, Ordering::AcqRel);
        let bases: Vec<i64> = job.sealed.iter().map(|(_, b)| *b).collect();
        self.write_sealed_indexes(&bases);
        Ok(())
    }

    fn write_sealed_indexes(&self, bases: &[i64]) {
        if bases.is_empty() {
            return;
        }
        let inner = self.inner.lock();
        for seg in inner
            .segments
            .iter()
            .filter(|s| bases.contains(&s.base_offset))
        {
            if let Err(e) = seg.write_indexes(&self.dir) {
                // Missing indexes only cost a verification scan at the next start.
                warn!(log = %self.name, base = seg.base_offset, error = %e, "could not write segment indexes");
            }
        }
    }

    /// Flushes and writes the active segment's indexes (clean shutdown).
    pub fn close(&self) -> Result<(), LogError> {
        self.flush_blocking()?;
        let inner = self.inner.lock();
        if let Some(active) = inner.segments.last() {
            active.write_indexes(&self.dir)?;
        }
        let snapshot = Snapshot {
            end_offset: inner.next_offset,
            state: inner.producers.clone(),
        };
        let json =
            serde_json::to_vec(&snapshot).map_err(|e| std::io::Error::other(e.to_string()))?;
        write_file_synced(&self.dir.join(PRODUCER_SNAPSHOT_FILE), &json)?;
        Ok(())
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
        write_file_synced(
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
            seg.delete_files(&self.dir);
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
            write_file_synced(&self.dir.join(LOG_START_FILE), start.to_string().as_bytes())?;
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
        let mut inner = self.inner.lock();
        if offset >= inner.next_offset {
            return Ok(());
        }
        let offset = offset.max(inner.log_start_offset);
        while inner.segments.len() > 1
            && inner
                .segments
                .last()
                .is_some_and(|s| s.base_offset >= offset)
        {
            if let Some(s) = inner.segments.pop() {
                inner.unsynced.retain(|(_, b)| *b != s.base_offset);
                s.delete_files(&self.dir);
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

/// Loads the clean-shutdown snapshot if it matches the log's end, else replays every batch
/// header. The snapshot is removed once read: a later crash must not find a stale one.
fn load_producer_state(
    dir: &Path,
    name: &str,
    segments: &[Segment],
    next_offset: i64,
) -> Result<ProducerStateMap, LogError> {
    let path = dir.join(PRODUCER_SNAPSHOT_FILE);
    let snapshot = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Snapshot>(&b).ok());
    let _ = std::fs::remove_file(&path);
    if let Some(s) = snapshot {
        if s.end_offset == next_offset {
            return Ok(s.state);
        }
        warn!(
            log = name,
            "producer snapshot does not match the log end; replaying the log"
        );
    }
    let mut state = ProducerStateMap::default();
    let now = crate::log::now_ms();
    for seg in segments {
        let mut marker_error = None;
        seg.for_each_header(|v, pos| {
            if v.producer_id() >= 0 && v.is_control() {
                // Reading the marker's record tells commit from abort.
                let commit = seg.read_at(pos, v.declared_size()).map(|bytes| {
                    BatchView::parse_header(&bytes)
                        .ok()
                        .and_then(|b| crate::protocol::records::marker_is_commit(&b))
                        .unwrap_or(false)
                });
                match commit {
                    Ok(commit) => state.on_marker(
                        v.producer_id(),
                        v.producer_epoch(),
                        commit,
                        v.base_offset(),
                        now,
                    ),
                    Err(e) => marker_error = Some(e),
                }
                return;
            }
            if v.is_transactional() {
                state.on_transactional_batch(v.producer_id(), v.base_offset());
            }
            if v.producer_id() >= 0 && !v.is_control() {
                let first = v.base_sequence();
                let meta = BatchMeta {
                    first_seq: first,
                    last_seq: producer_state::last_seq(first, v.records_count()),
                    first_offset: v.base_offset(),
                    last_offset: v.last_offset(),
                    max_timestamp: v.max_timestamp(),
                };
                state.record(v.producer_id(), v.producer_epoch(), meta, now);
            }
        })?;
        if let Some(e) = marker_error {
            return Err(e.into());
        }
    }
    Ok(state)
}

fn read_exact_at(file: &SharedFile, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
    file.read_exact_at(buf, pos)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::tests::build_batch;

    fn small_config() -> LogConfig {
        LogConfig {
            segment_bytes: 1024,
            index_interval_bytes: 128,
            ..LogConfig::default()
        }
    }

    fn append_n(log: &PartitionLog, batches: usize, ts: i64) -> Vec<AppendInfo> {
        (0..batches)
            .map(|i| {
                let b = build_batch(ts + i as i64 * 10, 3, b"0123456789abcdef");
                log.append(&b, 0, ts).expect("append")
            })
            .collect()
    }

    fn offsets_in(data: &[u8]) -> Vec<i64> {
        batch::BatchIter::new(data, true)
            .flat_map(|v| {
                let v = v.expect("valid batch");
                v.base_offset()..=v.last_offset()
            })
            .collect()
    }

    /// Blocks reserved ahead of the write position are given back when a segment is sealed,
    /// and the file's size always ends at the data (recovery trusts it).
    #[test]
    fn preallocation_is_released_at_seal_and_never_shows_in_the_size() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            segment_bytes: 64 << 10,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(dir.path(), "t-0", config, 0).expect("open");
        let value = vec![7u8; 1000];
        let mut appended = 0;
        while log.segment_count() < 3 {
            let b = build_batch(1000, 4, &value);
            log.append(&b, 0, 1000).expect("append");
            appended += 4;
        }
        let mut logs: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        logs.sort();
        let active = logs.pop().expect("active");
        let inner: Vec<u64> = log.inner.lock().segments.iter().map(|s| s.size).collect();
        for (path, size) in logs.iter().zip(&inner) {
            let m = std::fs::metadata(path).expect("stat");
            assert_eq!(m.len(), *size, "{path:?}: size ends at the data");
            assert!(
                m.blocks() * 512 <= size.div_ceil(4096) * 4096 + 4096,
                "{path:?}: sealed segment keeps {} bytes of blocks for {size} bytes",
                m.blocks() * 512
            );
        }
        let m = std::fs::metadata(&active).expect("stat");
        assert_eq!(m.len(), *inner.last().expect("active size"));
        let r = log.read(0, usize::MAX, i64::MAX, true).expect("read");
        assert!(!offsets_in(&r.data).is_empty());
        assert_eq!(log.log_end_offset(), appended);
    }

    #[test]
    fn append_read_roll_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path(), "t-0", small_config(), 0).expect("open");
        let infos = append_n(&log, 40, 1000);
        assert_eq!(infos[0].base_offset, 0);
        assert_eq!(infos[39].last_offset, 119);
        assert!(log.segment_count() > 3, "rolled by size");
        let r = log.read(0, usize::MAX, i64::MAX, true).expect("read");
        assert_eq!(
            offsets_in(&r.data),
            (0..infos[0].records)
                .collect::<Vec<_>>()
                .into_iter()
                .chain(3..offsets_in(&r.data).len() as i64)
                .collect::<Vec<_>>()
        );
        // Read from the middle of a batch returns the whole batch.
        let r = log.read(61, 1, i64::MAX, true).expect("read");
        assert_eq!(offsets_in(&r.data), vec![60, 61, 62]);
        // Read with a small budget and min_one=false returns nothing.
        let r = log.read(61, 1, i64::MAX, false).expect("read");
        assert!(r.data.is_empty());
        // Upper bound stops the read.
        let r = log.read(0, usize::MAX, 3, true).expect("read");
        assert_eq!(offsets_in(&r.data), vec![0, 1, 2]);
        log.flush_blocking().expect("flush");
        log.close().expect("close");
        drop(log);

        let log = PartitionLog::open(dir.path(), "t-0", small_config(), 0).expect("reopen");
        assert_eq!(log.log_end_offset(), 120);
        let mut all = Vec::new();
        let mut off = 0;
        while off < 120 {
            let r = log.read(off, usize::MAX, i64::MAX, true).expect("read");
            let got = offsets_in(&r.data);
            off = *got.last().expect("data") + 1;
            all.extend(got);
        }
        assert_eq!(all, (0..120).collect::<Vec<_>>());
        assert!(matches!(
            log.read(121, 10, i64::MAX, true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
    }

    #[test]
    fn recovery_truncates_torn_tail_and_rebuilds_indexes() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let log = PartitionLog::open(dir.path(), "t-0", small_config(), 0).expect("open");
            append_n(&log, 20, 1000);
            log.flush_blocking().expect("flush");
            // No close(): simulate a crash. Then tear the active segment's tail.
        }
        let mut logs: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        logs.sort();
        let active = logs.last().expect("segment").clone();
        let len = std::fs::metadata(&active).expect("meta").len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&active)
            .expect("open");
        f.set_len(len - 5).expect("tear");
        // Remove a sealed segment's index to force a rebuild.
        let first_index = logs[0].with_extension("index");
        let _ = std::fs::remove_file(&first_index);

        let log = PartitionLog::open(dir.path(), "t-0", small_config(), 0).expect("reopen");
        assert_eq!(
            log.log_end_offset(),
            57,
            "the torn last batch (57..59) is gone"
        );
        let r = log.read(0, usize::MAX, i64::MAX, true).expect("read");
        assert_eq!(offsets_in(&r.data)[0], 0);
        // Appending continues at the recovered end.
        let b = build_batch(5000, 1, b"x");
        assert_eq!(log.append(&b, 0, 5000).expect("append").base_offset, 57);
    }

    #[test]
    fn recovery_drops_segments_after_one_cut_at_a_batch_boundary() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let log = PartitionLog::open(dir.path(), "t-0", small_config(), 0).expect("open");
            append_n(&log, 20, 1000);
            // No flush, no close: an OS crash that keeps some unflushed pages and not others.
        }
        let mut logs: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        logs.sort();
        assert!(logs.len() >= 3, "rolled by size");
        for p in &logs {
            let _ = std::fs::remove_file(p.with_extension("index"));
            let _ = std::fs::remove_file(p.with_extension("timeindex"));
        }
        // Cut the second segment after its first batch, exactly at a batch boundary.
        let data = std::fs::read(&logs[1]).expect("read");
        let first = BatchView::peek_size(&data).expect("ok").expect("some");
        assert!(first < data.len(), "the segment holds more than one batch");
        let base = BatchView::parse_header_only(&data)
            .expect("header")
            .base_offset();
        let kept_end = BatchView::parse_header_only(&data)
            .expect("header")
            .last_offset()
            + 1;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&logs[1])
            .expect("open")
            .set_len(first as u64)
            .expect("cut");

        let log = PartitionLog::open(dir.path(), "t-0", small_config(), 0).expect("reopen");
        assert!(base > 0);
        assert_eq!(
            log.log_end_offset(),
            kept_end,
            "nothing past the cut survives"
        );
        assert_eq!(log.segment_count(), 2);
        for p in &logs[2..] {
            assert!(!p.exists(), "{} deleted", p.display());
        }
        let mut all = Vec::new();
        let mut off = 0;
        while off < kept_end {
            let r = log.read(off, usize::MAX, i64::MAX, true).expect("read");
            let got = offsets_in(&r.data);
            off = *got.last().expect("data") + 1;
            all.extend(got);
        }
        assert_eq!(all, (0..kept_end).collect::<Vec<_>>(), "contiguous");
        let b = build_batch(5000, 1, b"x");
        assert_eq!(
            log.append(&b, 0, 5000).expect("append").base_offset,
            kept_end
        );
    }

    #[test]
    fn corrupt_byte_truncates_from_that_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let log = PartitionLog::open(dir.path(), "t-0", LogConfig::default(), 0).expect("open");
            append_n(&log, 10, 1000);
            log.flush_blocking().expect("flush");
        }
        let path = Segment::log_path(dir.path(), 0);
        let mut data = std::fs::read(&path).expect("read");
        let batch_size = BatchView::peek_size(&data).expect("ok").expect("some");
        data[batch_size * 4 + 70] ^= 0x55; // inside the 5th batch's records
        std::fs::write(&path, &data).expect("write");
        let log = PartitionLog::open(dir.path(), "t-0", LogConfig::default(), 0).expect("reopen");
        assert_eq!(
            log.log_end_offset(),
            12,
            "batches from the corrupt one on are dropped"
        );
    }

    #[test]
    fn retention_and_log_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = LogConfig {
            retention_bytes: 2048,
            ..small_config()
        };
        let log = PartitionLog::open(dir.path(), "t-0", cfg, 0).expect("open");
        append_n(&log, 40, 1000);
        let before = log.segment_count();
        let deleted = log.apply_retention(2000).expect("retention");
        assert!(deleted > 0);
        assert_eq!(log.segment_count(), before - deleted);
        assert!(log.size_bytes() <= 2048 + 1024);
        let start = log.log_start_offset();
        assert!(start > 0);
        assert!(matches!(
            log.read(0, 10, i64::MAX, true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_eq!(
            log.advance_log_start(start + 4).expect("delete records"),
            start + 4
        );
        drop(log);
        let log = PartitionLog::open(dir.path(), "t-0", small_config(), 0).expect("reopen");
        assert_eq!(
            log.log_start_offset(),
            start + 4,
            "log start offset persisted"
        );
    }

    #[test]
    fn log_start_clamped_by_a_lost_tail_is_persisted() {
        // Found by tests/log_model.rs: DeleteRecords past the flushed offset, a crash that
        // loses the unflushed tail, new appends at the reused offsets, another restart: the
        // stale stored start used to come back and hide the new records.
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let log = PartitionLog::open(dir.path(), "t-0", LogConfig::default(), 0).expect("open");
            append_n(&log, 2, 1000); // offsets 0..6
            log.flush_blocking().expect("flush");
            append_n(&log, 2, 2000); // 6..12, never flushed
            assert_eq!(log.advance_log_start(10).expect("delete records"), 10);
        } // crash
        let path = Segment::log_path(dir.path(), 0);
        let batch = BatchView::peek_size(&std::fs::read(&path).expect("read"))
            .expect("ok")
            .expect("some") as u64;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        f.set_len(2 * batch + 7).expect("tear the unflushed tail");
        let log = PartitionLog::open(dir.path(), "t-0", LogConfig::default(), 0).expect("reopen");
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (6, 6));
        let infos = append_n(&log, 2, 3000);
        assert_eq!(infos[0].base_offset, 6);
        log.close().expect("close");
        drop(log);
        let log = PartitionLog::open(dir.path(), "t-0", LogConfig::default(), 0).expect("reopen");
        assert_eq!(
            log.log_start_offset(),
            6,
            "records appended after the loss stay visible"
        );
        let r = log.read(6, usize::MAX, i64::MAX, true).expect("read");
        assert_eq!(offsets_in(&r.data), (6..12).collect::<Vec<_>>());
    }

    #[test]
    fn recovery_fsyncs_the_segments_it_scanned() {
        // Found by tests/log_model.rs: sealed segments never fsynced before a crash were
        // recovered, reported as flushed, and never fsynced after; an OS crash later could tear
        // one, and recovery would then drop every later (fsynced, acknowledged) segment.
        use crate::log::io::FaultyStorage;
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let log = PartitionLog::open(dir.path(), "t-0", small_config(), 0).expect("open");
            append_n(&log, 20, 1000); // several segments, none fsynced
        } // crash
        let storage = FaultyStorage::default();
        storage.faults.fail_sync.store(true, Ordering::Release);
        assert!(
            PartitionLog::open_with(Arc::new(storage), dir.path(), "t-0", small_config(), 0)
                .is_err(),
            "recovery must fsync what it recovered before calling it flushed"
        );
        let log = PartitionLog::open(dir.path(), "t-0", small_config(), 0).expect("reopen");
        assert_eq!(log.flushed_offset(), 60);
    }

    #[test]
    fn timestamp_lookup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path(), "t-0", small_config(), 0).expect("open");
        append_n(&log, 30, 1000); // batch i has timestamps 1000+10i .. +2
        let b = log
            .find_batch_by_timestamp(1101)
            .expect("lookup")
            .expect("found");
        let v = BatchView::parse(&b).expect("valid");
        assert_eq!(v.base_offset(), 30, "batch 10 holds ts 1100..1102");
        assert!(log
            .find_batch_by_timestamp(99_999)
            .expect("lookup")
            .is_none());
        let b = log
            .find_batch_with_max_timestamp()
            .expect("lookup")
            .expect("found");
        assert_eq!(BatchView::parse(&b).expect("valid").base_offset(), 87);
    }

    #[test]
    fn enospc_fails_the_append_and_recovers_when_space_returns() {
        use crate::log::io::FaultyStorage;
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = FaultyStorage::default();
        let log = PartitionLog::open_with(
            Arc::new(storage.clone()),
            dir.path(),
            "t-0",
            LogConfig::default(),
            0,
        )
        .expect("open");
        append_n(&log, 2, 1000);
        storage.faults.enospc.store(true, Ordering::Release);
        let b = build_batch(2000, 1, b"x");
        let err = log.append(&b, 0, 2000).expect_err("disk full");
        assert!(
            matches!(err, LogError::Io(ref e) if e.raw_os_error() == Some(libc::ENOSPC)),
            "{err}"
        );
        assert_eq!(
            crate::handlers::errors::log_error_code(&err),
            56,
            "KAFKA_STORAGE_ERROR"
        );
        assert!(!log.is_poisoned(), "a failed write is not a failed fsync");
        assert_eq!(
            offsets_in(
                &log.read(0, usize::MAX, i64::MAX, true)
                    .expect("reads still work")
                    .data
            )
            .len(),
            6
        );
        storage.faults.enospc.store(false, Ordering::Release);
        let b = build_batch(3000, 1, b"y");
        assert_eq!(
            log.append(&b, 0, 3000).expect("space is back").base_offset,
            6,
            "no gap"
        );
    }

    #[tokio::test]
    async fn failed_fsync_poisons_the_log() {
        use crate::log::io::FaultyStorage;
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = FaultyStorage::default();
        let log = PartitionLog::open_with(
            Arc::new(storage.clone()),
            dir.path(),
            "t-0",
            LogConfig::default(),
            0,
        )
        .expect("open");
        let infos = append_n(&log, 1, 1000);
        storage.faults.fail_sync.store(true, Ordering::Release);
        assert!(log.flush_to(infos[0].last_offset + 1).await.is_err());
        assert!(log.is_poisoned());
        storage.faults.fail_sync.store(false, Ordering::Release);
        // Never retried: the log stays poisoned, writes and flushes are refused.
        let b = build_batch(2000, 1, b"x");
        assert!(matches!(
            log.append(&b, 0, 2000),
            Err(LogError::Poisoned(_))
        ));
        assert!(log.flush_to(infos[0].last_offset + 1).await.is_err());
        assert!(
            log.read(0, usize::MAX, i64::MAX, true).is_ok(),
            "reads keep working"
        );
    }

    #[test]
    fn read_error_is_an_error_not_a_crash() {
        use crate::log::io::FaultyStorage;
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = FaultyStorage::default();
        let log = PartitionLog::open_with(
            Arc::new(storage.clone()),
            dir.path(),
            "t-0",
            LogConfig::default(),
            0,
        )
        .expect("open");
        append_n(&log, 3, 1000);
        storage.faults.fail_reads.store(true, Ordering::Release);
        assert!(matches!(
            log.read(0, usize::MAX, i64::MAX, true),
            Err(LogError::Io(_))
        ));
        storage.faults.fail_reads.store(false, Ordering::Release);
        assert!(log.read(0, usize::MAX, i64::MAX, true).is_ok());
    }

    #[tokio::test]
    async fn group_commit_flush() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log =
            Arc::new(PartitionLog::open(dir.path(), "t-0", LogConfig::default(), 0).expect("open"));
        let infos = append_n(&log, 5, 1000);
        let mut tasks = Vec::new();
        for info in &infos {
            let log = log.clone();
            let end = info.last_offset + 1;
            tasks.push(tokio::spawn(async move { log.flush_to(end).await }));
        }
        for t in tasks {
            t.await.expect("join").expect("flush");
        }
        assert_eq!(log.flushed_offset(), 15);
    }
}
