//! The read path: which bytes of which segment answer a fetch.
//!
//! [`PartitionLog::read_range`] decides under the partition lock which segment and which
//! positions hold the whole batches to return, and hands back a [`FileRange`] that the caller
//! sends with `sendfile(2)` (or copies, see [`PartitionLog::read`]). Data never passes through
//! user space on the fetch path; finding where the returned range ends costs a few header
//! reads, starting from the offset index entry nearest to the byte limit.

use bytes::Bytes;

use super::PartitionLog;
use crate::log::io::FileRange;
use crate::log::LogError;
use crate::protocol::batch::{BatchView, HEADER_LEN};

/// Data read from the log: whole batches only.
#[derive(Debug, Clone)]
pub struct ReadResult {
    pub data: Bytes,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// Whole batches of one segment, as a file range.
#[derive(Debug, Clone)]
pub struct RangeResult {
    /// `None` when nothing is returned.
    pub range: Option<FileRange>,
    /// The offset after the last returned batch (the requested offset when nothing is).
    pub end_offset: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

impl PartitionLog {
    /// Reads whole batches starting with the one containing `offset`, ending before
    /// `upper_bound` (exclusive; e.g. the high watermark). At most `max_bytes`, except that with
    /// `min_one` the first batch is returned whole even if larger.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound: i64,
        min_one: bool,
    ) -> Result<ReadResult, LogError> {
        let r = self.read_range(offset, max_bytes, upper_bound, min_one)?;
        let data = match &r.range {
            Some(range) => range.read_to_bytes()?,
            None => Bytes::new(),
        };
        Ok(ReadResult {
            data,
            log_start_offset: r.log_start_offset,
            log_end_offset: r.log_end_offset,
        })
    }

    /// Like [`PartitionLog::read`], but returns where the batches are instead of copying them.
    /// The range covers whole batches of a single segment.
    pub fn read_range(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound: i64,
        min_one: bool,
    ) -> Result<RangeResult, LogError> {
        self.check_online()?;
        let empty = |log_start, log_end| RangeResult {
            range: None,
            end_offset: offset,
            log_start_offset: log_start,
            log_end_offset: log_end,
        };
        let (file, start, end, end_offset, floor, log_start, log_end) = {
            let inner = self.inner.lock();
            let (log_start, log_end) = (inner.log_start_offset, inner.next_offset);
            if offset < log_start || offset > log_end {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start,
                    log_end,
                });
            }
            let bound = upper_bound.min(log_end);
            if offset >= bound {
                return Ok(empty(log_start, log_end));
            }
            let idx = inner
                .segments
                .partition_point(|s| s.base_offset <= offset)
                .saturating_sub(1);
            let mut found = None;
            for seg in &inner.segments[idx..] {
                if let Some(bp) = seg.find_batch(offset)? {
                    found = Some((seg, bp));
                    break;
                }
            }
            let Some((seg, bp)) = found else {
                return Ok(empty(log_start, log_end));
            };
            if bp.base_offset >= bound {
                return Ok(empty(log_start, log_end));
            }
            let (end, end_offset) = if bound < seg.next_offset {
                match seg.find_batch(bound)? {
                    Some(b) => (b.position, b.base_offset),
                    None => (seg.size, seg.next_offset),
                }
            } else {
                (seg.size, seg.next_offset)
            };
            // Where to start looking for the last batch that fits `max_bytes`.
            let limit = bp.position.saturating_add(max_bytes as u64).min(end);
            let floor = u32::try_from(limit)
                .ok()
                .and_then(|l| seg.index.floor_position(l))
                .map_or(bp.position, |p| (p as u64).max(bp.position));
            (
                seg.file.clone(),
                bp.position,
                end,
                end_offset,
                floor,
                log_start,
                log_end,
            )
        };
        let available = end - start;
        if available <= max_bytes as u64 {
            return Ok(RangeResult {
                range: Some(FileRange {
                    file,
                    position: start,
                    len: available as usize,
                }),
                end_offset,
                log_start_offset: log_start,
                log_end_offset: log_end,
            });
        }
        // More is available than fits: end at the last batch boundary within the limit,
        // walking batch headers from the nearest indexed batch at or before it.
        let limit = start + max_bytes as u64;
        let mut pos = floor;
        let mut header = [0u8; HEADER_LEN];
        loop {
            file.read_exact_at(&mut header, pos)?;
            let view = BatchView::parse_header_only(&header)?;
            let next = pos + view.declared_size() as u64;
            if next > limit || next > end {
                if pos == start {
                    // The first batch alone is over the limit.
                    if !min_one {
                        return Ok(empty(log_start, log_end));
                    }
                    return Ok(RangeResult {
                        range: Some(FileRange {
                            file,
                            position: start,
                            len: (next.min(end) - start) as usize,
                        }),
                        end_offset: view.last_offset() + 1,
                        log_start_offset: log_start,
                        log_end_offset: log_end,
                    });
                }
                return Ok(RangeResult {
                    range: Some(FileRange {
                        file,
                        position: start,
                        len: (pos - start) as usize,
                    }),
                    end_offset: view.base_offset(),
                    log_start_offset: log_start,
                    log_end_offset: log_end,
                });
            }
            pos = next;
        }
    }
}
