//! The quorum's durable Raft log and vote (openraft's `RaftLogStorage`), on files through the
//! [`Storage`] seam.
//!
//! Files in the quorum directory (docs/FORMAT.md):
//! - `raft.log`: the 8-byte magic `SQRAFT01`, then one record per entry: a 12-byte header
//!   (body length u32 BE, CRC-32C of those 4 length bytes u32 BE, CRC-32C of the body u32 BE)
//!   and the body: the entry as JSON. The length has its own checksum so that a damaged length
//!   is never mistaken for a record torn at the end of the file. Entry indexes strictly
//!   increase through the file; those after the purge point are contiguous.
//! - `vote.json`, `purged.json`: the vote and the last purged log id, each `<crc32c, 8 hex
//!   digits> <JSON>`, replaced whole with `write_file_synced`.
//!
//! Promises:
//! - An append is written and fsynced before openraft's `LogFlushed` callback is called (the
//!   append call itself waits for the fsync, on the blocking pool); a vote is durable before
//!   `save_vote` returns; a truncation is `set_len` + fsync; a purge writes `purged.json`
//!   durably, and entries up to it are then ignored on reading and at recovery.
//! - Purged bytes are reclaimed by compaction once they are at least
//!   [`LogStoreOptions::compact_dead_bytes_min`] and at least the live bytes: the live records
//!   are copied to `raft.log.compact`, fsynced, renamed over `raft.log`, and the directory is
//!   fsynced.
//! - Recovery at open: a torn last record (crash mid-append: a short header, zeros to the end
//!   of the file, a body past the end, or a bad body CRC on the very last record) is truncated
//!   away and the truncation fsynced. Damage anywhere else (a bad length checksum, a bad body
//!   followed by more records), a hole or a decreasing index is [`LogStoreError::Corrupt`]:
//!   committed entries are never silently dropped.
//! - A failed fsync (or a failed durable whole-file write, or a failure to undo a partial
//!   write) poisons the store: every later write fails with [`LogStoreError::Poisoned`] until
//!   a restart replays what is durable, because retrying an fsync after a failure can report
//!   success for data the kernel dropped (see `crate::metadata`). Reads go on.
//! - The committed log id is kept in memory only (for the status), not persisted: after a
//!   restart the state machine catches up once the commit index is learned again.
//!
//! Memory: entries are not cached; an index of (position, length, log id) per live entry is
//! (about 40 bytes each; snapshots purge the log, so this stays small). Reads go to the file.
//! Every file operation runs on tokio's blocking pool, never on an async worker.

mod format;

use std::collections::VecDeque;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, ErrorSubject, ErrorVerb, LogId, LogState, RaftLogReader, StorageError,
    StorageIOError, Vote,
};
use parking_lot::Mutex;
use thiserror::Error;

use super::{Entry, TypeConfig};
use crate::log::io::{SharedFile, Storage};
use format::{encode_checked, read_checked, record_header, recover};

pub(crate) const LOG_FILE: &str = "raft.log";
const COMPACT_FILE: &str = "raft.log.compact";
const VOTE_FILE: &str = "vote.json";
const PURGED_FILE: &str = "purged.json";
const MAGIC: &[u8; 8] = b"SQRAFT01";
const MAGIC_LEN: u64 = MAGIC.len() as u64;
const RECORD_HEADER_LEN: u64 = 12;
/// Largest record body written or accepted at recovery (an entry as JSON: payloads are capped
/// at `PAYLOAD_BYTES_MAX_LIMIT`, hex-encoded).
pub(crate) const RECORD_BODY_BYTES_MAX: usize = 32 << 20;
/// `limited_get_log_entries` stops after this many bytes of records (at least one entry).
const READ_BATCH_BYTES_MAX: u64 = 8 << 20;
/// Compaction copies through a buffer of this size.
const COPY_CHUNK_BYTES: usize = 1 << 20;

#[derive(Debug, Error)]
pub enum LogStoreError {
    #[error("quorum file {path} is damaged at byte {pos}: {reason}")]
    Corrupt {
        path: String,
        pos: u64,
        reason: String,
    },
    #[error("quorum log I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("the quorum log is poisoned by a failed fsync; it refuses writes until restart")]
    Poisoned,
    /// openraft asked for something that would break the log's invariants.
    #[error("quorum log invariant violated: {0}")]
    Invariant(String),
}

/// Tunables (tests shrink them).
#[derive(Debug, Clone)]
pub(crate) struct LogStoreOptions {
    /// Compact once the purged prefix of `raft.log` is at least this large (and at least as
    /// large as the live part).
    pub compact_dead_bytes_min: u64,
}

impl Default for LogStoreOptions {
    fn default() -> Self {
        LogStoreOptions {
            compact_dead_bytes_min: 4 << 20,
        }
    }
}

/// Where one live entry is in `raft.log`.
#[derive(Debug, Clone)]
struct Slot {
    pos: u64,
    body_len: u32,
    log_id: LogId<u64>,
}

impl Slot {
    fn end(&self) -> u64 {
        self.pos + RECORD_HEADER_LEN + self.body_len as u64
    }
}

/// The open log file and its index; guarded by one mutex.
struct Log {
    file: SharedFile,
    /// Bytes of valid records (the next record goes here).
    end: u64,
    purged: Option<LogId<u64>>,
    /// The live entries (index > purged), contiguous.
    slots: VecDeque<Slot>,
}

impl Log {
    fn last_log_id(&self) -> Option<LogId<u64>> {
        self.slots.back().map(|s| s.log_id).or(self.purged)
    }

    fn next_index(&self) -> u64 {
        self.last_log_id().map_or(0, |l| l.index + 1)
    }

    /// The position of the entry with `index` in `slots`, if live.
    fn slot_at(&self, index: u64) -> Option<usize> {
        let first = self.slots.front()?.log_id.index;
        let i = usize::try_from(index.checked_sub(first)?).ok()?;
        (i < self.slots.len()).then_some(i)
    }

    /// Where live records start: everything before is purged.
    fn live_start(&self) -> u64 {
        self.slots.front().map_or(self.end, |s| s.pos)
    }
}

struct Shared {
    dir: PathBuf,
    path: PathBuf,
    storage: Arc<dyn Storage>,
    options: LogStoreOptions,
    log: Mutex<Log>,
    vote: Mutex<Option<Vote<u64>>>,
    committed: Mutex<Option<LogId<u64>>>,
    /// Set by a failed durable write; never cleared.
    poisoned: AtomicBool,
}

/// The durable Raft log store; clones share it (the clone is also the log reader).
#[derive(Clone)]
pub(crate) struct LogStore {
    shared: Arc<Shared>,
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, recovering from a crash (see the module doc).
    pub(crate) fn open(storage: Arc<dyn Storage>, dir: &Path) -> Result<LogStore, LogStoreError> {
        Self::open_with(storage, dir, LogStoreOptions::default())
    }

    pub(crate) fn open_with(
        storage: Arc<dyn Storage>,
        dir: &Path,
        options: LogStoreOptions,
    ) -> Result<LogStore, LogStoreError> {
        storage.create_dir_all(dir)?;
        let vote: Option<Vote<u64>> = read_checked(storage.as_ref(), &dir.join(VOTE_FILE))?;
        let purged: Option<LogId<u64>> = read_checked(storage.as_ref(), &dir.join(PURGED_FILE))?;
        // A compaction that crashed before its rename left this behind; the log is whole.
        storage.remove_file(&dir.join(COMPACT_FILE))?;
        let path = dir.join(LOG_FILE);
        let file = storage.open_or_create(&path)?;
        let log = recover(&path, file, purged)?;
        storage.sync_dir(dir)?;
        tracing::info!(
            path = %path.display(),
            entries = log.slots.len(),
            last = ?log.last_log_id(),
            purged = ?log.purged,
            "quorum log opened"
        );
        Ok(LogStore {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                path,
                storage,
                options,
                log: Mutex::new(log),
                vote: Mutex::new(vote),
                committed: Mutex::new(None),
                poisoned: AtomicBool::new(false),
            }),
        })
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::Acquire)
    }

    /// The highest committed index openraft reported (in memory only).
    pub(crate) fn committed_index(&self) -> Option<u64> {
        self.shared.committed.lock().map(|l| l.index)
    }

    #[cfg(test)]
    /// The live entries with indexes in `[start, end)`, stopping after `bytes_max` bytes of
    /// records (but returning at least one entry when there is one).
    pub(crate) fn read_entries(
        &self,
        start: u64,
        end: u64,
        bytes_max: u64,
    ) -> Result<Vec<Entry>, LogStoreError> {
        self.shared.read_entries(start, end, bytes_max)
    }

    #[cfg(test)]
    /// Writes `entries` at the end of the log and fsyncs them.
    pub(crate) fn append_sync(&self, entries: Vec<Entry>) -> Result<(), LogStoreError> {
        let file = self.shared.write_entries(&entries)?;
        self.shared.sync(&file)
    }

    #[cfg(test)]
    pub(crate) fn truncate_sync(&self, since: u64) -> Result<(), LogStoreError> {
        self.shared.truncate(since)
    }

    #[cfg(test)]
    pub(crate) fn purge_sync(&self, upto: LogId<u64>) -> Result<(), LogStoreError> {
        self.shared.purge(upto)
    }

    pub(crate) fn log_state(&self) -> (Option<LogId<u64>>, Option<LogId<u64>>) {
        let log = self.shared.log.lock();
        (log.purged, log.last_log_id())
    }

    /// Runs `f` on the blocking pool with the shared state.
    async fn blocking<T, F>(&self, f: F) -> Result<T, LogStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T, LogStoreError> + Send + 'static,
    {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .map_err(|e| LogStoreError::Io(io::Error::other(format!("log task failed: {e}"))))?
    }
}

impl Shared {
    fn check_writable(&self) -> Result<(), LogStoreError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(LogStoreError::Poisoned);
        }
        Ok(())
    }

    fn poison(&self, why: &str) {
        if !self.poisoned.swap(true, Ordering::AcqRel) {
            tracing::error!(
                why,
                path = %self.path.display(),
                "quorum log poisoned; it refuses writes until restart"
            );
        }
    }

    /// A durable whole-file write; a failure poisons (its fsync may have failed).
    fn write_synced(&self, name: &str, data: &[u8]) -> Result<(), LogStoreError> {
        self.storage
            .write_file_synced(&self.dir.join(name), data)
            .map_err(|e| {
                self.poison(&format!("writing {name} failed: {e}"));
                LogStoreError::Io(e)
            })
    }

    /// Encodes and writes `entries` at the end of the log (not yet fsynced); returns the file
    /// to fsync.
    fn write_entries(&self, entries: &[Entry]) -> Result<SharedFile, LogStoreError> {
        self.check_writable()?;
        let mut log = self.log.lock();
        let mut buf = Vec::new();
        let mut new_slots = Vec::with_capacity(entries.len());
        for (next, entry) in (log.next_index()..).zip(entries) {
            if entry.log_id.index != next {
                return Err(LogStoreError::Invariant(format!(
                    "append of index {} where {next} is next",
                    entry.log_id.index
                )));
            }
            let body =
                serde_json::to_vec(entry).map_err(|e| LogStoreError::Invariant(e.to_string()))?;
            if body.is_empty() || body.len() > RECORD_BODY_BYTES_MAX {
                return Err(LogStoreError::Invariant(format!(
                    "entry {next} encodes to {} bytes",
                    body.len()
                )));
            }
            new_slots.push(Slot {
                pos: log.end + buf.len() as u64,
                body_len: body.len() as u32,
                log_id: entry.log_id,
            });
            buf.extend_from_slice(&record_header(&body));
            buf.extend_from_slice(&body);
        }
        if let Err(e) = log.file.write_all_at(&buf, log.end) {
            // Leave only whole records: the next append goes where this one started.
            if log.file.set_len(log.end).is_err() {
                self.poison("could not undo a failed write");
            }
            return Err(e.into());
        }
        log.end += buf.len() as u64;
        log.slots.extend(new_slots);
        Ok(log.file.clone())
    }

    /// fsyncs what was written; a failure poisons.
    fn sync(&self, file: &SharedFile) -> Result<(), LogStoreError> {
        file.sync_data().map_err(|e| {
            self.poison(&format!("fsync failed: {e}"));
            LogStoreError::Io(e)
        })
    }

    /// Removes the entries from index `since` on, durably.
    fn truncate(&self, since: u64) -> Result<(), LogStoreError> {
        self.check_writable()?;
        let mut log = self.log.lock();
        if log.purged.is_some_and(|p| since <= p.index) {
            return Err(LogStoreError::Invariant(format!(
                "truncation at {since}, at or below the purge point {:?}",
                log.purged
            )));
        }
        let Some(i) = log.slot_at(since) else {
            return Ok(()); // Nothing at or after `since`.
        };
        let new_end = log.slots[i].pos;
        if let Err(e) = log.file.set_len(new_end) {
            self.poison(&format!("truncation failed: {e}"));
            return Err(e.into());
        }
        self.sync(&log.file)?;
        log.slots.truncate(i);
        log.end = new_end;
        Ok(())
    }

    /// Forgets the entries up to `upto` (inclusive), durably; compacts when worth it.
    fn purge(&self, upto: LogId<u64>) -> Result<(), LogStoreError> {
        self.check_writable()?;
        let mut log = self.log.lock();
        if log.purged.is_some_and(|p| upto.index <= p.index) {
            return Ok(());
        }
        self.write_synced(PURGED_FILE, &encode_checked(&upto)?)?;
        while log
            .slots
            .front()
            .is_some_and(|s| s.log_id.index <= upto.index)
        {
            log.slots.pop_front();
        }
        log.purged = Some(upto);
        let dead = log.live_start() - MAGIC_LEN;
        let live = log.end - log.live_start();
        if dead >= self.options.compact_dead_bytes_min && dead >= live {
            self.compact(&mut log)?;
        }
        Ok(())
    }

    /// Rewrites the log without its purged prefix.
    fn compact(&self, log: &mut Log) -> Result<(), LogStoreError> {
        let tmp = self.dir.join(COMPACT_FILE);
        let start = log.live_start();
        let copy = || -> io::Result<SharedFile> {
            let new = self.storage.open(&tmp, true)?;
            new.write_all_at(MAGIC, 0)?;
            let mut buf = vec![0u8; COPY_CHUNK_BYTES];
            let mut at = start;
            while at < log.end {
                let n = buf.len().min((log.end - at) as usize);
                log.file.read_exact_at(&mut buf[..n], at)?;
                new.write_all_at(&buf[..n], at - start + MAGIC_LEN)?;
                at += n as u64;
            }
            new.sync_data()?;
            Ok(new)
        };
        let new = match copy() {
            Ok(f) => f,
            Err(e) => {
                // The live log was not touched: compaction is only postponed.
                tracing::warn!(error = %e, "quorum log compaction failed; will retry later");
                let _ = self.storage.remove_file(&tmp);
                return Ok(());
            }
        };
        // From the rename on, which file survives a crash is unknown until the directory is
        // fsynced; appends must not go to either until then.
        let renamed = self
            .storage
            .rename(&tmp, &self.path)
            .and_then(|()| self.storage.sync_dir(&self.dir));
        if let Err(e) = renamed {
            self.poison(&format!("compaction rename failed: {e}"));
            return Err(e.into());
        }
        let shift = start - MAGIC_LEN;
        for slot in log.slots.iter_mut() {
            slot.pos -= shift;
        }
        log.end -= shift;
        log.file = new;
        tracing::info!(reclaimed_bytes = shift, "quorum log compacted");
        Ok(())
    }

    fn read_entries(
        &self,
        start: u64,
        end: u64,
        bytes_max: u64,
    ) -> Result<Vec<Entry>, LogStoreError> {
        let log = self.log.lock();
        let Some(first) = log.slots.front().map(|s| s.log_id.index) else {
            return Ok(Vec::new());
        };
        let from = start.max(first);
        let Some(i) = log.slot_at(from) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut bytes = 0u64;
        let mut body = Vec::new();
        for slot in log.slots.range(i..) {
            if slot.log_id.index >= end || (!out.is_empty() && bytes >= bytes_max) {
                break;
            }
            let mut header = [0u8; RECORD_HEADER_LEN as usize];
            log.file.read_exact_at(&mut header, slot.pos)?;
            body.resize(slot.body_len as usize, 0);
            log.file
                .read_exact_at(&mut body, slot.pos + RECORD_HEADER_LEN)?;
            let corrupt = |reason: String| LogStoreError::Corrupt {
                path: self.path.display().to_string(),
                pos: slot.pos,
                reason,
            };
            if header != record_header(&body) {
                return Err(corrupt("checksum mismatch on read".into()));
            }
            let entry: Entry = serde_json::from_slice(&body)
                .map_err(|e| corrupt(format!("undecodable entry: {e}")))?;
            if entry.log_id != slot.log_id {
                return Err(corrupt(format!(
                    "holds {:?} where the index says {:?}",
                    entry.log_id, slot.log_id
                )));
            }
            bytes += slot.end() - slot.pos;
            out.push(entry);
        }
        Ok(out)
    }
}

fn io_err(verb: ErrorVerb, e: LogStoreError) -> StorageError<u64> {
    StorageError::IO {
        source: StorageIOError::new(ErrorSubject::Logs, verb, AnyError::new(&e)),
    }
}

fn vote_err(verb: ErrorVerb, e: LogStoreError) -> StorageError<u64> {
    StorageError::IO {
        source: StorageIOError::new(ErrorSubject::Vote, verb, AnyError::new(&e)),
    }
}

fn range_bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<u64>> {
        let (start, end) = range_bounds(&range);
        self.blocking(move |s| s.read_entries(start, end, u64::MAX))
            .await
            .map_err(|e| io_err(ErrorVerb::Read, e))
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError<u64>> {
        self.blocking(move |s| s.read_entries(start, end, READ_BATCH_BYTES_MAX))
            .await
            .map_err(|e| io_err(ErrorVerb::Read, e))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let (last_purged_log_id, last_log_id) = self.log_state();
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        let vote = *vote;
        self.blocking(move |s| {
            s.check_writable()?;
            s.write_synced(VOTE_FILE, &encode_checked(&vote)?)?;
            *s.vote.lock() = Some(vote);
            Ok(())
        })
        .await
        .map_err(|e| vote_err(ErrorVerb::Write, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        Ok(*self.shared.vote.lock())
    }

    /// Kept in memory for the status only; not persisted (see the module doc).
    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        *self.shared.committed.lock() = committed;
        Ok(())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        // Written (readable) and fsynced on the blocking pool; openraft hears of the flush
        // only after the fsync returned.
        let result = self
            .blocking(move |s| {
                let file = s.write_entries(&entries)?;
                Ok(s.sync(&file))
            })
            .await;
        match result {
            Ok(Ok(())) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Ok(Err(e)) => {
                let msg = e.to_string();
                callback.log_io_completed(Err(io::Error::other(msg)));
                Err(io_err(ErrorVerb::Write, e))
            }
            Err(e) => Err(io_err(ErrorVerb::Write, e)),
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.blocking(move |s| s.truncate(log_id.index))
            .await
            .map_err(|e| io_err(ErrorVerb::Delete, e))
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.blocking(move |s| s.purge(log_id))
            .await
            .map_err(|e| io_err(ErrorVerb::Delete, e))
    }
}

#[cfg(test)]
mod tests;
