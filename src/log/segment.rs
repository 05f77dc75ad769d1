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
        Ok(Segment {
            base_offset,
            file,
            log_path,
            size: 0,
            next_offset: base_offset,
            index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            max_timestamp: -1,
            created_ms: now_ms,
            bytes_since_index_entry: 0,
            allocated: 0,
        })
    }

    /// Opens an existing segment. With `verify`, every batch's CRC is checked and the file is
    /// truncated at the first invalid or torn batch; otherwise the indexes on disk are used when
    /// they validate, and headers are scanned to find the end. Returns the segment and the number
    /// of bytes truncated.
    pub fn open(
        storage: &dyn Storage,
        dir: &Path,
        base_offset: i64,
        verify: bool,
        now_ms: i64,
    ) -> io::Result<(Self, u64)> {
        let log_path = Self::log_path(dir, base_offset);
        let file = storage.open(&log_path, false)?;
        let file_len = file.size()?;
        let mut seg = Segment {
            base_offset,
            file,
            log_path,
            size: 0,
            next_offset: base_offset,
            index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            max_timestamp: -1,
            created_ms: now_ms,
            bytes_since_index_entry: 0,
            allocated: 0,
        };
        let stored_index = if verify {
            None
        } else {
            Self::load_indexes(storage, dir, base_offset, file_len)
        };
        let index_interval = 4096;
        let (valid_len, last) =
            seg.scan(file_len, verify, stored_index.is_none(), index_interval)?;
        let truncated = file_len - valid_len;
        if truncated > 0 {
            seg.file.set_len(valid_len)?;
            seg.file.sync_data()?;
        }
        seg.size = valid_len;
        if let Some(last) = last {
            seg.next_offset = last.last_offset + 1;
        }
        if let Some((idx, tidx)) = stored_index {
            seg.index = idx;
            seg.time_index = tidx;
        }
        Ok((seg, truncated))
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

    /// Walks the batches of the file from the start. Rebuilds the indexes when `rebuild`.
    /// Returns the length of the valid prefix and the last valid batch.
    fn scan(
        &mut self,
        file_len: u64,
        verify: bool,
        rebuild: bool,
        index_interval: u64,
    ) -> io::Result<(u64, Option<BatchPos>)> {
        const CHUNK: usize = 1 << 20;
        let mut pos = 0u64;
        let mut last = None;
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
            let view_ok = if verify || size <= CHUNK as u64 {
                body.resize(size as usize, 0);
                self.file.read_exact_at(&mut body, pos)?;
                let parsed = if verify {
                    BatchView::parse(&body)
                } else {
                    BatchView::parse_header(&body)
                };
                parsed.map(|v| (v.base_offset(), v.last_offset(), v.max_timestamp()))
            } else {
                BatchView::parse_header_only(&header)
                    .map(|v| (v.base_offset(), v.last_offset(), v.max_timestamp()))
            };
            let (base, last_off, max_ts) = match view_ok {
                Ok(t) => t,
                Err(_) => break,
            };
            if base < expected_next {
                break; // offsets must strictly increase
            }
            let bp = BatchPos {
                position: pos,
                size,
                base_offset: base,
                last_offset: last_off,
                max_timestamp: max_ts,
            };
            if rebuild {
                self.track_batch(&bp, index_interval);
            } else {
                self.max_timestamp = self.max_timestamp.max(max_ts);
            }
            expected_next = last_off + 1;
            last = Some(bp);
            pos += size;
        }
        Ok((pos, last))
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
        self.max_timestamp = self.max_timestamp.max(bp.max_timestamp);
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

    /// Writes both indexes to disk (fsynced), for a sealed segment or at clean shutdown.
    pub fn write_indexes(&self, storage: &dyn Storage, dir: &Path) -> io::Result<()> {
        storage.write_file_synced(
            &Self::index_path(dir, self.base_offset),
            &self.index.to_bytes(),
        )?;
        storage.write_file_synced(
            &Self::time_index_path(dir, self.base_offset),
            &self.time_index.to_bytes(),
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
