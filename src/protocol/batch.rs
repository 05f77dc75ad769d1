//! Zero-copy view of a Kafka record batch (magic 2) header.
//!
//! Layout (61-byte header, big-endian), see docs/FORMAT.md:
//! ```text
//! 0  baseOffset i64        | 8  batchLength i32     | 12 partitionLeaderEpoch i32
//! 16 magic i8              | 17 crc u32 (CRC32C over bytes 21..end)
//! 21 attributes i16        | 23 lastOffsetDelta i32 | 27 baseTimestamp i64
//! 35 maxTimestamp i64      | 43 producerId i64      | 51 producerEpoch i16
//! 53 baseSequence i32      | 57 recordsCount i32    | 61 records...
//! ```
//! `batchLength` counts the bytes after the length field itself, so a batch occupies
//! `12 + batchLength` bytes. The CRC does not cover `baseOffset` or `partitionLeaderEpoch`,
//! which is why the broker can assign offsets by patching them in place.

use thiserror::Error;

pub const HEADER_LEN: usize = 61;
/// Bytes before and including the length field.
pub const LOG_OVERHEAD: usize = 12;
const OFF_BASE_OFFSET: usize = 0;
const OFF_LENGTH: usize = 8;
const OFF_LEADER_EPOCH: usize = 12;
const OFF_MAGIC: usize = 16;
const OFF_CRC: usize = 17;
const OFF_ATTRIBUTES: usize = 21;
const OFF_LAST_OFFSET_DELTA: usize = 23;
const OFF_BASE_TIMESTAMP: usize = 27;
const OFF_MAX_TIMESTAMP: usize = 35;
const OFF_PRODUCER_ID: usize = 43;
const OFF_PRODUCER_EPOCH: usize = 51;
const OFF_BASE_SEQUENCE: usize = 53;
const OFF_RECORDS_COUNT: usize = 57;

pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
pub const ATTR_TIMESTAMP_TYPE_LOG_APPEND: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;

/// Why a batch was refused. Mapped to wire errors by the handlers.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BatchError {
    /// Truncated data, bad magic, impossible length: Kafka answers CORRUPT_MESSAGE.
    #[error("corrupt batch: {0}")]
    Corrupt(&'static str),
    /// Checksum mismatch: CORRUPT_MESSAGE.
    #[error("batch CRC mismatch")]
    CrcMismatch,
    /// Structurally sound but semantically invalid (count vs offset delta): INVALID_RECORD.
    #[error("invalid batch: {0}")]
    Invalid(&'static str),
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// A borrowed, header-validated batch. Constructed only through [`BatchView::parse`] or
/// [`BatchView::parse_header`], so its accessors never go out of bounds.
#[derive(Clone, Copy)]
pub struct BatchView<'a> {
    bytes: &'a [u8],
}

impl<'a> BatchView<'a> {
    /// Total size in bytes of the batch starting at `buf[0]`, if its header is present.
    /// Returns `Ok(None)` when fewer than 12 bytes are available (a torn tail).
    pub fn peek_size(buf: &[u8]) -> Result<Option<usize>, BatchError> {
        if buf.len() < LOG_OVERHEAD {
            return Ok(None);
        }
        let len = be_i32(buf, OFF_LENGTH);
        if len < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::Corrupt("batch length smaller than header"));
        }
        Ok(Some(LOG_OVERHEAD + len as usize))
    }

    /// Parses the batch at the start of `buf`, checking magic, length, count, offset delta and
    /// the CRC. `buf` may contain more data after the batch.
    pub fn parse(buf: &'a [u8]) -> Result<Self, BatchError> {
        let view = Self::parse_header(buf)?;
        if view.stored_crc() != view.computed_crc() {
            return Err(BatchError::CrcMismatch);
        }
        Ok(view)
    }

    /// Like [`parse`](Self::parse) but without the CRC check (used where the CRC was verified
    /// earlier, e.g. reading back our own log).
    pub fn parse_header(buf: &'a [u8]) -> Result<Self, BatchError> {
        let size = Self::peek_size(buf)?.ok_or(BatchError::Corrupt("truncated batch header"))?;
        if buf.len() < size {
            return Err(BatchError::Corrupt(
                "batch extends past the end of the data",
            ));
        }
        if buf[OFF_MAGIC] != 2 {
            return Err(BatchError::Corrupt(
                "unsupported magic (only v2 batches are accepted)",
            ));
        }
        let view = BatchView {
            bytes: &buf[..size],
        };
        let count = view.records_count();
        if count < 0 {
            return Err(BatchError::Invalid("negative record count"));
        }
        if view.is_control() {
            if count != 1 {
                return Err(BatchError::Invalid("control batch must hold one record"));
            }
        } else if count == 0 {
            return Err(BatchError::Invalid("batch holds no records"));
        }
        if view.last_offset_delta() != count - 1 {
            return Err(BatchError::Invalid(
                "lastOffsetDelta does not match record count",
            ));
        }
        // Each record takes at least 7 bytes (length, attributes, 3 varints, 2 counts).
        if view.compression() == 0 && (count as usize).saturating_mul(7) > size - HEADER_LEN {
            return Err(BatchError::Invalid(
                "record count larger than the batch can hold",
            ));
        }
        Ok(view)
    }

    /// Reads the fixed header fields from a buffer holding at least the 61-byte header (the
    /// records may be absent). Accessors other than the header fields must not be used.
    pub fn parse_header_only(header: &'a [u8]) -> Result<Self, BatchError> {
        if header.len() < HEADER_LEN {
            return Err(BatchError::Corrupt("truncated batch header"));
        }
        Self::peek_size(header)?;
        if header[OFF_MAGIC] != 2 {
            return Err(BatchError::Corrupt("unsupported magic"));
        }
        Ok(BatchView {
            bytes: &header[..HEADER_LEN],
        })
    }

    /// Size the batch declares for itself (`12 + batchLength`).
    pub fn declared_size(&self) -> usize {
        LOG_OVERHEAD + be_i32(self.bytes, OFF_LENGTH) as usize
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
    pub fn base_offset(&self) -> i64 {
        be_i64(self.bytes, OFF_BASE_OFFSET)
    }
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.bytes, OFF_LAST_OFFSET_DELTA)
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + self.last_offset_delta() as i64
    }
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(self.bytes, OFF_LEADER_EPOCH)
    }
    pub fn stored_crc(&self) -> u32 {
        be_i32(self.bytes, OFF_CRC) as u32
    }
    pub fn computed_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[OFF_ATTRIBUTES..])
    }
    pub fn attributes(&self) -> i16 {
        be_i16(self.bytes, OFF_ATTRIBUTES)
    }
    pub fn compression(&self) -> i16 {
        self.attributes() & ATTR_COMPRESSION_MASK
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & ATTR_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & ATTR_CONTROL != 0
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & ATTR_TIMESTAMP_TYPE_LOG_APPEND != 0
    }
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.bytes, OFF_BASE_TIMESTAMP)
    }
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.bytes, OFF_MAX_TIMESTAMP)
    }
    pub fn producer_id(&self) -> i64 {
        be_i64(self.bytes, OFF_PRODUCER_ID)
    }
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.bytes, OFF_PRODUCER_EPOCH)
    }
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.bytes, OFF_BASE_SEQUENCE)
    }
    pub fn records_count(&self) -> i32 {
        be_i32(self.bytes, OFF_RECORDS_COUNT)
    }
}

/// Walks the concatenated batches of a produce request or a log read.
pub struct BatchIter<'a> {
    rest: &'a [u8],
    verify_crc: bool,
}

impl<'a> BatchIter<'a> {
    pub fn new(buf: &'a [u8], verify_crc: bool) -> Self {
        BatchIter {
            rest: buf,
            verify_crc,
        }
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<BatchView<'a>, BatchError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = if self.verify_crc {
            BatchView::parse(self.rest)
        } else {
            BatchView::parse_header(self.rest)
        };
        match parsed {
            Ok(view) => {
                self.rest = &self.rest[view.size()..];
                Some(Ok(view))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Sets `baseOffset` of the batch at `buf[0]` (not covered by the CRC).
pub fn patch_base_offset(buf: &mut [u8], base_offset: i64) {
    buf[OFF_BASE_OFFSET..OFF_BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Sets `partitionLeaderEpoch` of the batch at `buf[0]` (not covered by the CRC).
pub fn patch_leader_epoch(buf: &mut [u8], epoch: i32) {
    buf[OFF_LEADER_EPOCH..OFF_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Switches the batch whose header is `header` and whose records follow as `rest` to
/// LogAppendTime with `now_ms` as its max timestamp, and recomputes the CRC (both fields are
/// covered by it; only the header changes). Used only for topics configured with
/// `message.timestamp.type=LogAppendTime`.
pub fn patch_log_append_time(header: &mut [u8; HEADER_LEN], rest: &[u8], now_ms: i64) {
    let attrs = be_i16(header, OFF_ATTRIBUTES) | ATTR_TIMESTAMP_TYPE_LOG_APPEND;
    header[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attrs.to_be_bytes());
    header[OFF_MAX_TIMESTAMP..OFF_MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[OFF_ATTRIBUTES..]), rest);
    header[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a valid uncompressed batch with `n` records of `value` (no key, no headers).
    pub fn build_batch(base_ts: i64, n: i32, value: &[u8]) -> Vec<u8> {
        let mut records = Vec::new();
        for i in 0..n {
            let mut body = Vec::new();
            body.push(0u8); // attributes
            put_varint(&mut body, i as i64); // timestamp delta
            put_varint(&mut body, i as i64); // offset delta
            put_varint(&mut body, -1); // key length (null)
            put_varint(&mut body, value.len() as i64);
            body.extend_from_slice(value);
            put_varint(&mut body, 0); // headers
            put_varint(&mut records, body.len() as i64);
            records.extend_from_slice(&body);
        }
        let mut b = vec![0u8; HEADER_LEN];
        b.extend_from_slice(&records);
        let len = (b.len() - LOG_OVERHEAD) as i32;
        b[OFF_LENGTH..OFF_LENGTH + 4].copy_from_slice(&len.to_be_bytes());
        b[OFF_LEADER_EPOCH..OFF_LEADER_EPOCH + 4].copy_from_slice(&(-1i32).to_be_bytes());
        b[OFF_MAGIC] = 2;
        b[OFF_LAST_OFFSET_DELTA..OFF_LAST_OFFSET_DELTA + 4].copy_from_slice(&(n - 1).to_be_bytes());
        b[OFF_BASE_TIMESTAMP..OFF_BASE_TIMESTAMP + 8].copy_from_slice(&base_ts.to_be_bytes());
        b[OFF_MAX_TIMESTAMP..OFF_MAX_TIMESTAMP + 8]
            .copy_from_slice(&(base_ts + n as i64 - 1).to_be_bytes());
        b[OFF_PRODUCER_ID..OFF_PRODUCER_ID + 8].copy_from_slice(&(-1i64).to_be_bytes());
        b[OFF_PRODUCER_EPOCH..OFF_PRODUCER_EPOCH + 2].copy_from_slice(&(-1i16).to_be_bytes());
        b[OFF_BASE_SEQUENCE..OFF_BASE_SEQUENCE + 4].copy_from_slice(&(-1i32).to_be_bytes());
        b[OFF_RECORDS_COUNT..OFF_RECORDS_COUNT + 4].copy_from_slice(&n.to_be_bytes());
        let crc = crc32c::crc32c(&b[OFF_ATTRIBUTES..]);
        b[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn put_varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }

    #[test]
    fn parses_valid_batch_and_patches_offset_without_breaking_crc() {
        let mut b = build_batch(1000, 3, b"hello");
        patch_base_offset(&mut b, 42);
        patch_leader_epoch(&mut b, 7);
        let v = BatchView::parse(&b).expect("valid");
        assert_eq!(v.base_offset(), 42);
        assert_eq!(v.last_offset(), 44);
        assert_eq!(v.partition_leader_epoch(), 7);
        assert_eq!(v.records_count(), 3);
        assert_eq!(v.max_timestamp(), 1002);
    }

    #[test]
    fn detects_crc_mismatch_and_bad_counts() {
        let mut b = build_batch(0, 2, b"x");
        let last = b.len() - 1;
        b[last] ^= 0xff;
        assert_eq!(BatchView::parse(&b).err(), Some(BatchError::CrcMismatch));

        let mut b = build_batch(0, 2, b"x");
        b[OFF_RECORDS_COUNT..OFF_RECORDS_COUNT + 4].copy_from_slice(&5i32.to_be_bytes());
        assert!(matches!(
            BatchView::parse_header(&b),
            Err(BatchError::Invalid(_))
        ));

        let mut b = build_batch(0, 2, b"x");
        b[OFF_MAGIC] = 1;
        assert!(matches!(
            BatchView::parse_header(&b),
            Err(BatchError::Corrupt(_))
        ));
        assert!(matches!(
            BatchView::parse_header(&b[..30]),
            Err(BatchError::Corrupt(_))
        ));
    }

    #[test]
    fn log_append_time_patch_keeps_crc_valid() {
        let b = build_batch(5, 3, b"value");
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&b[..HEADER_LEN]);
        patch_log_append_time(&mut header, &b[HEADER_LEN..], 99);
        let mut b2 = header.to_vec();
        b2.extend_from_slice(&b[HEADER_LEN..]);
        let v = BatchView::parse(&b2).expect("valid after patch");
        assert!(v.is_log_append_time());
        assert_eq!(v.max_timestamp(), 99);
    }

    #[test]
    fn iterates_concatenated_batches() {
        let mut all = build_batch(0, 1, b"a");
        all.extend(build_batch(0, 2, b"b"));
        let counts: Vec<i32> = BatchIter::new(&all, true)
            .map(|r| r.expect("valid").records_count())
            .collect();
        assert_eq!(counts, vec![1, 2]);
    }
}
