//! One segment of a partition log: `<20-digit base offset>.log` plus its two indexes.
//!
//! The `.log` file is the concatenation of record batches exactly as stored (offsets
//! patched), with no framing of our own, so Kafka's `DumpLogSegments` can read it.
//! All I/O is positional (`pread`/`pwrite`) on a shared `Arc<File>`, so readers copy out of a
//! file without holding the partition lock, and a reader keeps a deleted segment's file open
//! until it is done.

use std::io;
use std::path::{Path, PathBuf};

use crate::log::index::{OffsetIndex, TimeIndex};
use crate::log::io::{SharedFile, Storage};
use crate::protocol::batch::{BatchError, BatchView, HEADER_LEN};

pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// Location and summary of one batch found by scanning a segment.
#[derive(Debug, Clone, Copy)]
pub struct BatchPos {
    pub position: u64,
    pub size: u64,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

#[derive(Debug)]
pub struct Segment {
    pub base_offset: i64,
    pub file: SharedFile,
    log_path: PathBuf,
    /// Bytes of valid data in the file.
    pub size: u64,
    /// One past the last offset stored in this segment (== base_offset when empty).
    pub next_offset: i64,
    pub index: OffsetIndex,
    pub time_index: TimeIndex,
    pub max_timestamp: i64,
    /// Offset (relative) of the batch holding `max_timestamp`: the final time-index entry.
    max_timestamp_rel: u32,
    /// Wall-clock time the segment was created or first written, for `segment.ms` rolls.
    pub created_ms: i64,
    bytes_since_index_entry: u64,
    /// Blocks are reserved up to here (see [`Segment::append`]); a hint, never trusted for
    /// correctness: too low costs a redundant fallocate, too high a slower write.
    allocated: u64,
}

/// Reservation ahead of the write position: a quarter of what the segment already holds (so a
/// busy partition reserves in growing steps and a quiet one wastes little), at least 128 KiB
/// and at most 8 MiB past the end.
const PREALLOC_MIN: u64 = 128 << 10;
const PREALLOC_MAX: u64 = 8 << 20;

impl Segment {
    pub fn log_path(dir: &Path, base_offset: i64) -> PathBuf {
        dir.join(format!("{}.log", file_stem(base_offset)))
    }
    pub fn index_path(dir: &Path, base_offset: i64) -> PathBuf {
        dir.join(format!("{}.index", file_stem(base_offset)))
    }
    pub fn time_index_path(dir: &Path, base_offset: i64) -> PathBuf {
        dir.join(format!("{}.timeindex", file_stem(base_offset)))
    }

    pub fn create(
        storage: &dyn Storage,
        dir: &Path,
        base_offset: i64,
        now_ms: i64,
    ) -> io::Result<Self> {
        let log_path = Self::log_path(dir, base_offset);
        let file = storage.open(&log_path, true)?;
        // Stale indexes from an earlier incarnation of this base offset must not survive.
        storage.remove_file(&Self::index_path(dir, base_offset))?;
        storage.remove_file(&Self::time_index_path(dir, base_offset))?;
        Ok(Self::empty(base_offset, file, log_path, now_ms))
    }

    fn empty(base_offset: i64, file: SharedFile, log_path: PathBuf, now_ms: i64) -> Self {
        Segment {
            base_offset,
            file,
            log_path,
            size: 0,
            next_offset: base_offset,
            index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            max_timestamp: -1,
            max_timestamp_rel: 0,
            created_ms: now_ms,
            bytes_since_index_entry: 0,
            allocated: 0,
        }
    }

    /// Opens a segment whose index files exist (written only after its data was fsynced)
    /// without reading its batches: the indexes are validated against the file, and only the
    /// batches after the last offset-index entry (a few KiB) are walked, header by header, to
    /// find the segment's end, which must be the end of the file. `None` when any of that fails
    /// (missing or invalid indexes, a bad header, a batch past the end): the caller then
    /// verifies the segment with [`Segment::open_scanned`].
    pub fn open_trusted(
        storage: &dyn Storage,
        dir: &Path,
        base_offset: i64,
        now_ms: i64,
    ) -> io::Result<Option<Self>> {
        let log_path = Self::log_path(dir, base_offset);
        let file = storage.open(&log_path, false)?;
        let file_len = file.size()?;
        let Some((index, time_index)) = Self::load_indexes(storage, dir, base_offset, file_len)
        else {
            return Ok(None);
        };
        let mut seg = Self::empty(base_offset, file, log_path, now_ms);
        let (rel, mut pos) = index.last().map_or((0, 0), |(r, p)| (r, u64::from(p)));
        let mut expected = base_offset + i64::from(rel);
        let mut header = [0u8; HEADER_LEN];
        let mut last = None;
        while pos < file_len {
            if pos + HEADER_LEN as u64 > file_len {
                return Ok(None);
            }
            seg.file.read_exact_at(&mut header, pos)?;
            let Ok(v) = BatchView::parse_header_only(&header) else {
                return Ok(None);
            };
            let size = v.declared_size() as u64;
            // The indexed batch starts exactly at its offset; later ones follow in order.
            let in_order = if last.is_none() {
                v.base_offset() == expected
            } else {
                v.base_offset() >= expected
            };
            if !in_order || v.last_offset() < v.base_offset() || pos + size > file_len {
                return Ok(None);
            }
            seg.max_timestamp = seg.max_timestamp.max(v.max_timestamp());
            expected = v.last_offset() + 1;
            last = Some(v.last_offset());
            pos += size;
        }
        if file_len > 0 && last.is_none() {
            return Ok(None);
        }
        seg.size = file_len;
        seg.allocated = file_len;
        seg.next_offset = last.map_or(base_offset, |l| l + 1);
        seg.max_timestamp = seg
            .max_timestamp
            .max(time_index.last_timestamp().unwrap_or(-1));
        seg.index = index;
        seg.time_index = time_index;
        Ok(Some(seg))
    }

    /// Opens a segment by walking its batches, rebuilding the indexes: batches wholly below
    /// `durable_below` (the recovery point: they were fsynced) by their headers alone, the
    /// rest by reading them whole and checking their CRCs. `size` is set to the length of the
    /// valid prefix (whole, valid batches with increasing offsets); the file is not changed:
    /// the caller decides whether what follows is a torn unflushed tail (truncated,
    /// [`Segment::truncate_invalid_tail`]) or damage to flushed data (quarantined). Returns the
    /// segment and the file's length.
    pub fn open_scanned(
        storage: &dyn Storage,
        dir: &Path,
        base_offset: i64,
        durable_below: i64,
        now_ms: i64,
    ) -> io::Result<(Self, u64)> {
        let log_path = Self::log_path(dir, base_offset);
        let file = storage.open(&log_path, false)?;
        let file_len = file.size()?;
        let mut seg = Self::empty(base_offset, file, log_path, now_ms);
        let valid_len = seg.scan(file_len, durable_below, 4096)?;
        seg.size = valid_len;
        seg.allocated = valid_len;
        Ok((seg, file_len))
    }

    /// Cuts the file to the valid prefix [`Segment::open_scanned`] found, durably.
    pub fn truncate_invalid_tail(&self) -> io::Result<()> {
        self.file.set_len(self.size)?;
        self.file.sync_data()
    }

    fn load_indexes(
        storage: &dyn Storage,
        dir: &Path,
        base_offset: i64,
        file_len: u64,
    ) -> Option<(OffsetIndex, TimeIndex)> {
        let idx = storage
            .read_file(&Self::index_path(dir, base_offset))
            .ok()?;
        let tidx = storage
            .read_file(&Self::time_index_path(dir, base_offset))
            .ok()?;
        let idx = OffsetIndex::from_bytes(&idx, file_len)?;
        let tidx = TimeIndex::from_bytes(&tidx, u32::MAX)?;
        Some((idx, tidx))
    }

    /// Walks the batches of the file from the start, checking that offsets increase (and the
    /// CRCs of batches not wholly below `durable_below`), and rebuilds the indexes. Returns the
    /// length of the valid prefix.
    fn scan(&mut self, file_len: u64, durable_below: i64, index_interval: u64) -> io::Result<u64> {
        let mut pos = 0u64;
        let mut expected_next = self.base_offset;
        let mut header = [0u8; HEADER_LEN];
        let mut body: Vec<u8> = Vec::new();
        while pos + HEADER_LEN as u64 <= file_len {
            self.file.read_exact_at(&mut header, pos)?;
            let size = match BatchView::peek_size(&header) {
                Ok(Some(s)) => s as u64,
                _ => break,
            };
            if pos + size > file_len {
                break; // torn tail
            }
            let durable = BatchView::parse_header_only(&header)
                .is_ok_and(|h| h.last_offset() < durable_below);
            let parsed = if durable {
                BatchView::parse_header_only(&header)
            } else {
                body.resize(size as usize, 0);
                self.file.read_exact_at(&mut body, pos)?;
                BatchView::parse(&body)
            };
            let Ok(v) = parsed else {
                break;
            };
            if v.base_offset() < expected_next {
                break; // offsets must strictly increase
            }
            let bp = BatchPos {
                position: pos,
                size,
                base_offset: v.base_offset(),
                last_offset: v.last_offset(),
                max_timestamp: v.max_timestamp(),
            };
            self.track_batch(&bp, index_interval);
            expected_next = bp.last_offset + 1;
            pos += size;
        }
        Ok(pos)
    }

    /// Updates in-memory indexes and stats for a batch written at `bp.position`.
    pub fn track_batch(&mut self, bp: &BatchPos, index_interval: u64) {
        let rel = (bp.base_offset - self.base_offset) as u32;
        if self.index.is_empty() || self.bytes_since_index_entry >= index_interval {
            self.index.push(rel, bp.position as u32);
            if bp.max_timestamp > self.max_timestamp {
                self.time_index.push(bp.max_timestamp, rel);
            }
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += bp.size;
        if bp.max_timestamp > self.max_timestamp {
            self.max_timestamp = bp.max_timestamp;
            self.max_timestamp_rel = rel;
        }
        self.next_offset = bp.last_offset + 1;
    }

    /// Writes `parts` (`len` bytes in all) at the end. Disk blocks are reserved ahead of the
    /// write position with fallocate (KEEP_SIZE: the file's size, which recovery trusts, still
    /// ends at the data), so appends fill reserved blocks instead of paying ext4's delayed
    /// allocation page by page (half the write(2) system time, measured). Sealing gives back
    /// what was not used.
    pub fn append(&mut self, parts: &mut [io::IoSlice<'_>], len: u64) -> io::Result<u64> {
        let position = self.size;
        let end = position + len;
        if end > self.allocated {
            let ahead = (position / 4).clamp(PREALLOC_MIN, PREALLOC_MAX);
            let upto = end + ahead;
            // A failure (unsupported, or no space: the write then reports it) only loses the hint.
            if self.file.preallocate(position, upto - position).is_ok() {
                self.allocated = upto;
            } else {
                self.allocated = end;
            }
        }
        if let Err(e) = self.file.write_all_vectored_at(parts, position) {
            self.allocated = position;
            return Err(e);
        }
        self.size = end;
        Ok(position)
    }

    /// Gives back the blocks reserved past the data (the segment will not grow again). ext4
    /// frees blocks past the end on a truncate even to the same size.
    pub fn seal(&mut self) {
        if self.allocated > self.size {
            if let Err(e) = self.file.set_len(self.size) {
                tracing::warn!(path = %self.log_path.display(), error = %e, "could not release preallocated blocks");
            }
            self.allocated = self.size;
        }
    }

    /// Reads the header of the batch at `position`.
    pub fn read_batch_pos(&self, position: u64) -> io::Result<Option<BatchPos>> {
        if position + HEADER_LEN as u64 > self.size {
            return Ok(None);
        }
        let mut header = [0u8; HEADER_LEN];
        self.file.read_exact_at(&mut header, position)?;
        let v = BatchView::parse_header_only(&header).map_err(corrupt)?;
        Ok(Some(BatchPos {
            position,
            size: v.declared_size() as u64,
            base_offset: v.base_offset(),
            last_offset: v.last_offset(),
            max_timestamp: v.max_timestamp(),
        }))
    }

    /// Calls `f` with the header of every batch in the segment, in order.
    pub fn for_each_header(&self, mut f: impl FnMut(&BatchView<'_>, u64)) -> io::Result<()> {
        let mut header = [0u8; HEADER_LEN];
        let mut pos = 0u64;
        while pos + HEADER_LEN as u64 <= self.size {
            self.file.read_exact_at(&mut header, pos)?;
            let view = BatchView::parse_header_only(&header).map_err(corrupt)?;
            f(&view, pos);
            pos += view.declared_size() as u64;
        }
        Ok(())
    }

    /// Reads `size` bytes at `position` (one whole batch).
    pub fn read_at(&self, position: u64, size: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; size];
        self.file.read_exact_at(&mut buf, position)?;
        Ok(buf)
    }

    /// Position of the first batch whose last offset is `>= offset`, or `None` if the segment
    /// holds no such batch.
    pub fn find_batch(&self, offset: i64) -> io::Result<Option<BatchPos>> {
        let rel = (offset.max(self.base_offset) - self.base_offset) as u32;
        let mut pos = self.index.lookup(rel) as u64;
        while let Some(bp) = self.read_batch_pos(pos)? {
            if bp.last_offset >= offset {
                return Ok(Some(bp));
            }
            pos += bp.size;
        }
        Ok(None)
    }

    /// Truncates the segment so it ends right before `position`.
    pub fn truncate_to(&mut self, position: u64, next_offset: i64) -> io::Result<()> {
        self.file.set_len(position)?;
        self.size = position;
        self.allocated = position;
        self.next_offset = next_offset;
        self.index.truncate_to_position(position as u32);
        self.time_index
            .truncate_to_offset((next_offset - self.base_offset).max(0) as u32);
        Ok(())
    }

    /// Writes both indexes to disk (fsynced), for a sealed segment or at clean shutdown. The
    /// time index on disk ends with the segment's max timestamp (as Kafka's does once a segment
    /// is inactive), so a segment opened without a scan knows it.
    pub fn write_indexes(&self, storage: &dyn Storage, dir: &Path) -> io::Result<()> {
        let mut time_index = self.time_index.clone();
        if self.max_timestamp >= 0 {
            time_index.push(self.max_timestamp, self.max_timestamp_rel);
        }
        storage.write_file_synced(
            &Self::index_path(dir, self.base_offset),
            &self.index.to_bytes(),
        )?;
        storage.write_file_synced(
            &Self::time_index_path(dir, self.base_offset),
            &time_index.to_bytes(),
        )
    }

    /// Removes the segment's files (durable after the directory's fsync). Best effort: a file
    /// left behind is found and handled by recovery.
    pub fn delete_files(&self, storage: &dyn Storage, dir: &Path) {
        let _ = storage.remove_file(&self.log_path);
        let _ = storage.remove_file(&Self::index_path(dir, self.base_offset));
        let _ = storage.remove_file(&Self::time_index_path(dir, self.base_offset));
    }
}

fn corrupt(e: BatchError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}
