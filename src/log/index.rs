//! Sparse offset and time indexes of one segment.
//!
//! On disk (docs/FORMAT.md), like Kafka's:
//! - `<base>.index`: entries of 8 bytes, `relativeOffset u32 BE | position u32 BE`, strictly
//!   increasing in both fields; one entry per `log.index.interval.bytes` of log data.
//! - `<base>.timeindex`: entries of 12 bytes, `timestamp i64 BE | relativeOffset u32 BE`, both
//!   non-decreasing; an entry is added with an offset-index entry when the segment's max
//!   timestamp grew.
//!
//! Indexes are kept in memory and written when a segment is sealed and at clean shutdown. They
//! are derived data: when a file is missing or fails validation it is rebuilt from the log.

/// Offset index: maps a relative offset to the file position of the batch containing it.
#[derive(Debug, Default, Clone)]
pub struct OffsetIndex {
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    pub const ENTRY_BYTES: usize = 8;

    pub fn push(&mut self, relative_offset: u32, position: u32) {
        if let Some(&(last_off, last_pos)) = self.entries.last() {
            if relative_offset <= last_off || position <= last_pos {
                return;
            }
        }
        self.entries.push((relative_offset, position));
    }

    /// Position of the last indexed batch starting at or before `relative_offset` (0 if none).
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let idx = self
            .entries
            .partition_point(|&(off, _)| off <= relative_offset);
        if idx == 0 {
            0
        } else {
            self.entries[idx - 1].1
        }
    }

    /// The last indexed batch position at or before `position`, if any.
    pub fn floor_position(&self, position: u32) -> Option<u32> {
        let idx = self.entries.partition_point(|&(_, pos)| pos <= position);
        idx.checked_sub(1).map(|i| self.entries[i].1)
    }

    /// Drops entries at or past `position` (after truncation).
    pub fn truncate_to_position(&mut self, position: u32) {
        let idx = self.entries.partition_point(|&(_, pos)| pos < position);
        self.entries.truncate(idx);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The last entry (relative offset, position), if any.
    pub fn last(&self) -> Option<(u32, u32)> {
        self.entries.last().copied()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * Self::ENTRY_BYTES);
        for &(off, pos) in &self.entries {
            out.extend_from_slice(&off.to_be_bytes());
            out.extend_from_slice(&pos.to_be_bytes());
        }
        out
    }

    /// Decodes and validates an index read from disk against the segment's size.
    /// Returns `None` when the file is not a valid index for it.
    pub fn from_bytes(bytes: &[u8], segment_size: u64) -> Option<Self> {
        if !bytes.len().is_multiple_of(Self::ENTRY_BYTES) {
            return None;
        }
        let mut idx = OffsetIndex::default();
        for chunk in bytes.chunks_exact(Self::ENTRY_BYTES) {
            let off = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let pos = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            if u64::from(pos) >= segment_size {
                return None;
            }
            if let Some(&(lo, lp)) = idx.entries.last() {
                if off <= lo || pos <= lp {
                    return None;
                }
            }
            idx.entries.push((off, pos));
        }
        Some(idx)
    }
}

/// Time index: maps a timestamp to the first relative offset whose batch may hold it.
#[derive(Debug, Default, Clone)]
pub struct TimeIndex {
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    pub const ENTRY_BYTES: usize = 12;

    pub fn push(&mut self, timestamp: i64, relative_offset: u32) {
        if let Some(&(last_ts, last_off)) = self.entries.last() {
            if timestamp <= last_ts || relative_offset <= last_off {
                return;
            }
        }
        self.entries.push((timestamp, relative_offset));
    }

    /// Relative offset from which a scan for the first record with `timestamp >= target`
    /// may start: the last entry whose timestamp is below the target (everything up to it
    /// is older), or 0.
    pub fn scan_start(&self, target: i64) -> u32 {
        let idx = self.entries.partition_point(|&(ts, _)| ts < target);
        if idx == 0 {
            0
        } else {
            self.entries[idx - 1].1
        }
    }

    /// The last entry's timestamp: the segment's max timestamp once it was sealed (the final
    /// entry written with the indexes).
    pub fn last_timestamp(&self) -> Option<i64> {
        self.entries.last().map(|&(ts, _)| ts)
    }

    pub fn truncate_to_offset(&mut self, relative_offset: u32) {
        let idx = self
            .entries
            .partition_point(|&(_, off)| off < relative_offset);
        self.entries.truncate(idx);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * Self::ENTRY_BYTES);
        for &(ts, off) in &self.entries {
            out.extend_from_slice(&ts.to_be_bytes());
            out.extend_from_slice(&off.to_be_bytes());
        }
        out
    }

    pub fn from_bytes(bytes: &[u8], max_relative_offset: u32) -> Option<Self> {
        if !bytes.len().is_multiple_of(Self::ENTRY_BYTES) {
            return None;
        }
        let mut idx = TimeIndex::default();
        for chunk in bytes.chunks_exact(Self::ENTRY_BYTES) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let ts = i64::from_be_bytes(ts);
            let off = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            if off > max_relative_offset {
                return None;
            }
            if let Some(&(lt, lo)) = idx.entries.last() {
                if ts <= lt || off <= lo {
                    return None;
                }
            }
            idx.entries.push((ts, off));
        }
        Some(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_and_roundtrip() {
        let mut idx = OffsetIndex::default();
        idx.push(0, 0);
        idx.push(10, 4096);
        idx.push(20, 8192);
        idx.push(15, 9000); // out of order: ignored
        assert_eq!(idx.lookup(0), 0);
        assert_eq!(idx.lookup(9), 0);
        assert_eq!(idx.lookup(10), 4096);
        assert_eq!(idx.lookup(25), 8192);
        let back = OffsetIndex::from_bytes(&idx.to_bytes(), 10_000).expect("valid");
        assert_eq!(back.lookup(25), 8192);
        assert!(
            OffsetIndex::from_bytes(&idx.to_bytes(), 8000).is_none(),
            "position past end"
        );
        assert!(OffsetIndex::from_bytes(&[0u8; 7], 10).is_none());
        assert_eq!(idx.floor_position(0), Some(0));
        assert_eq!(idx.floor_position(8191), Some(4096));
        assert_eq!(idx.floor_position(u32::MAX), Some(8192));
        idx.truncate_to_position(8192);
        assert_eq!(idx.lookup(25), 4096);
        assert_eq!(OffsetIndex::default().floor_position(100), None);
    }

    #[test]
    fn time_index_scan_start() {
        let mut t = TimeIndex::default();
        t.push(100, 0);
        t.push(200, 5);
        t.push(300, 9);
        assert_eq!(t.scan_start(50), 0);
        assert_eq!(t.scan_start(200), 0);
        assert_eq!(t.scan_start(201), 5);
        assert_eq!(t.scan_start(1000), 9);
        let back = TimeIndex::from_bytes(&t.to_bytes(), 9).expect("valid");
        assert_eq!(back.scan_start(1000), 9);
        assert!(TimeIndex::from_bytes(&t.to_bytes(), 8).is_none());
    }
}
