//! Record-level reading of a batch, for the few features that need it (ListOffsets by time).
//! Never used on the produce or fetch path. Decompression is capped so a compressed batch
//! cannot inflate past a bound (a decompression bomb gets an error, not an OOM).

use std::io::Read;

use crate::protocol::batch::{BatchView, HEADER_LEN};

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("decompressed size exceeds {0} bytes")]
    TooLarge(usize),
    #[error("unsupported compression codec {0}")]
    UnknownCodec(i16),
    #[error("malformed records: {0}")]
    Malformed(&'static str),
    #[error("decompression failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Decompresses the records section of a batch; at most `cap` output bytes.
pub fn decompress(codec: i16, data: &[u8], cap: usize) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    match codec {
        0 => out.extend_from_slice(data),
        1 => read_capped(flate2::read::GzDecoder::new(data), cap, &mut out)?,
        2 => snappy(data, cap, &mut out)?,
        3 => read_capped(lz4_flex::frame::FrameDecoder::new(data), cap, &mut out)?,
        4 => read_capped(zstd::stream::read::Decoder::new(data)?, cap, &mut out)?,
        c => return Err(RecordsError::UnknownCodec(c)),
    }
    if out.len() > cap {
        return Err(RecordsError::TooLarge(cap));
    }
    Ok(out)
}

fn read_capped<R: Read>(r: R, cap: usize, out: &mut Vec<u8>) -> Result<(), RecordsError> {
    r.take(cap as u64 + 1).read_to_end(out)?;
    if out.len() > cap {
        return Err(RecordsError::TooLarge(cap));
    }
    Ok(())
}

/// Kafka's snappy is either raw snappy or the xerial (snappy-java) block framing.
fn snappy(data: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<(), RecordsError> {
    const XERIAL: &[u8] = b"\x82SNAPPY\x00";
    if data.starts_with(XERIAL) && data.len() >= 16 {
        let mut rest = &data[16..];
        while rest.len() >= 4 {
            let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            rest = &rest[4..];
            if n > rest.len() {
                return Err(RecordsError::Malformed("xerial block past end"));
            }
            raw_snappy(&rest[..n], cap.saturating_sub(out.len()), out)?;
            rest = &rest[n..];
        }
        Ok(())
    } else {
        raw_snappy(data, cap, out)
    }
}

fn raw_snappy(block: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<(), RecordsError> {
    let len = snap::raw::decompress_len(block)
        .map_err(|_| RecordsError::Malformed("bad snappy block"))?;
    if len > cap {
        return Err(RecordsError::TooLarge(cap));
    }
    let start = out.len();
    out.resize(start + len, 0);
    snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|_| RecordsError::Malformed("bad snappy block"))?;
    Ok(())
}

fn varint(buf: &mut &[u8]) -> Result<i64, RecordsError> {
    let mut z: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf
            .split_first()
            .ok_or(RecordsError::Malformed("truncated varint"))?;
        *buf = rest;
        z |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    Err(RecordsError::Malformed("varint too long"))
}

/// (offset, timestamp) of every record in the batch. For LogAppendTime batches every record
/// carries the batch's max timestamp.
pub fn record_timestamps(
    batch: &BatchView<'_>,
    cap: usize,
) -> Result<Vec<(i64, i64)>, RecordsError> {
    let data = decompress(batch.compression(), &batch.bytes()[HEADER_LEN..], cap)?;
    let mut buf = &data[..];
    let n = batch.records_count().max(0) as usize;
    let mut out = Vec::with_capacity(n.min(data.len()));
    for _ in 0..n {
        let len = varint(&mut buf)?;
        if len < 0 || len as usize > buf.len() {
            return Err(RecordsError::Malformed("record length past end"));
        }
        let mut rec = &buf[..len as usize];
        buf = &buf[len as usize..];
        rec = rec
            .get(1..)
            .ok_or(RecordsError::Malformed("empty record"))?; // attributes
        let ts_delta = varint(&mut rec)?;
        let off_delta = varint(&mut rec)?;
        let ts = if batch.is_log_append_time() {
            batch.max_timestamp()
        } else {
            batch.base_timestamp().wrapping_add(ts_delta)
        };
        // Deltas come from the wire: wrap like Kafka's `long` arithmetic, never panic.
        out.push((batch.base_offset().wrapping_add(off_delta), ts));
    }
    Ok(out)
}

/// One record of a batch, borrowed from the (decompressed) records buffer.
pub struct RecordRef<'a> {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

fn bytes_field<'a>(rec: &mut &'a [u8]) -> Result<Option<&'a [u8]>, RecordsError> {
    let len = varint(rec)?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    if len > rec.len() {
        return Err(RecordsError::Malformed("field length past end"));
    }
    let (v, rest) = rec.split_at(len);
    *rec = rest;
    Ok(Some(v))
}

/// Calls `f` for every record of the batch (keys and values; headers are skipped).
/// Used by coordinators replaying their internal topics.
pub fn for_each_record(
    batch: &BatchView<'_>,
    cap: usize,
    mut f: impl FnMut(RecordRef<'_>),
) -> Result<(), RecordsError> {
    let data = decompress(batch.compression(), &batch.bytes()[HEADER_LEN..], cap)?;
    let mut buf = &data[..];
    for _ in 0..batch.records_count().max(0) {
        let len = varint(&mut buf)?;
        if len < 0 || len as usize > buf.len() {
            return Err(RecordsError::Malformed("record length past end"));
        }
        let mut rec = &buf[..len as usize];
        buf = &buf[len as usize..];
        rec = rec
            .get(1..)
            .ok_or(RecordsError::Malformed("empty record"))?;
        let ts_delta = varint(&mut rec)?;
        let off_delta = varint(&mut rec)?;
        let key = bytes_field(&mut rec)?;
        let value = bytes_field(&mut rec)?;
        f(RecordRef {
            offset: batch.base_offset().wrapping_add(off_delta),
            timestamp: batch.base_timestamp().wrapping_add(ts_delta),
            key,
            value,
        });
    }
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Builds an uncompressed v2 batch (producer id -1) of `(key, value)` records, all stamped
/// `timestamp_ms`. Used by coordinators writing their internal topics; the log assigns offsets.
/// A record to write: (key, value), either may be null.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// Producer fields of a batch we write ourselves.
#[derive(Debug, Clone, Copy)]
pub struct BatchProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
    pub control: bool,
}

impl BatchProducer {
    pub const NONE: BatchProducer = BatchProducer {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
        control: false,
    };
}

pub fn build_batch(records: &[KeyValue<'_>], timestamp_ms: i64) -> Vec<u8> {
    build_batch_as(records, timestamp_ms, BatchProducer::NONE)
}

/// A transaction marker (control batch): key `{i16 version 0, i16 type}` (0 abort, 1 commit),
/// value `{i16 version 0, i32 coordinator epoch}`.
pub fn build_marker(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp_ms: i64,
) -> Vec<u8> {
    let key = [0u8, 0, 0, u8::from(commit)];
    let mut value = vec![0u8, 0];
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let p = BatchProducer {
        producer_id,
        producer_epoch,
        base_sequence: -1,
        transactional: true,
        control: true,
    };
    build_batch_as(&[(Some(&key), Some(&value))], timestamp_ms, p)
}

/// Whether a control batch is a commit marker (false: abort). None when malformed.
pub fn marker_is_commit(batch: &BatchView<'_>) -> Option<bool> {
    let mut out = None;
    for_each_record(batch, 1 << 16, |r| {
        if let Some(k) = r.key {
            if k.len() >= 4 {
                out = Some(i16::from_be_bytes([k[2], k[3]]) == 1);
            }
        }
    })
    .ok()?;
    out
}

/// A record with headers, for [`build_batch_with_headers`].
pub struct HeadedRecord<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a str, &'a [u8])>,
}

/// Builds an uncompressed v2 batch (producer id -1) of records with headers (the dead-letter
/// records of share groups), all stamped `timestamp_ms`.
pub fn build_batch_with_headers(records: &[HeadedRecord<'_>], timestamp_ms: i64) -> Vec<u8> {
    let plain: Vec<KeyValue<'_>> = records.iter().map(|r| (r.key, r.value)).collect();
    let headers: Vec<&[(&str, &[u8])]> = records.iter().map(|r| &r.headers[..]).collect();
    build(&plain, &headers, timestamp_ms, BatchProducer::NONE)
}

pub fn build_batch_as(
    records: &[KeyValue<'_>],
    timestamp_ms: i64,
    producer: BatchProducer,
) -> Vec<u8> {
    build(records, &[], timestamp_ms, producer)
}

/// `headers[i]`: record i's headers (none past the end of `headers`).
fn build(
    records: &[KeyValue<'_>],
    headers: &[&[(&str, &[u8])]],
    timestamp_ms: i64,
    producer: BatchProducer,
) -> Vec<u8> {
    let mut body = Vec::new();
    let mut rec = Vec::new();
    for (i, (k, v)) in records.iter().enumerate() {
        rec.clear();
        rec.push(0); // attributes
        put_varint(&mut rec, 0); // timestamp delta
        put_varint(&mut rec, i as i64); // offset delta
        for field in [k, v] {
            match field {
                Some(b) => {
                    put_varint(&mut rec, b.len() as i64);
                    rec.extend_from_slice(b);
                }
                None => put_varint(&mut rec, -1),
            }
        }
        let hs: &[(&str, &[u8])] = headers.get(i).copied().unwrap_or(&[]);
        put_varint(&mut rec, hs.len() as i64);
        for (hk, hv) in hs {
            put_varint(&mut rec, hk.len() as i64);
            rec.extend_from_slice(hk.as_bytes());
            put_varint(&mut rec, hv.len() as i64);
            rec.extend_from_slice(hv);
        }
        put_varint(&mut body, rec.len() as i64);
        body.extend_from_slice(&rec);
    }
    let n = records.len() as i32;
    let mut b = Vec::with_capacity(HEADER_LEN + body.len());
    b.extend_from_slice(&0i64.to_be_bytes()); // base offset
    b.extend_from_slice(&((HEADER_LEN - 12 + body.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // leader epoch
    b.push(2); // magic
    b.extend_from_slice(&[0; 4]); // crc, below
    let attributes: i16 =
        (if producer.transactional { 0x10 } else { 0 }) | (if producer.control { 0x20 } else { 0 });
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&(n - 1).to_be_bytes());
    b.extend_from_slice(&timestamp_ms.to_be_bytes());
    b.extend_from_slice(&timestamp_ms.to_be_bytes());
    b.extend_from_slice(&producer.producer_id.to_be_bytes());
    b.extend_from_slice(&producer.producer_epoch.to_be_bytes());
    b.extend_from_slice(&producer.base_sequence.to_be_bytes());
    b.extend_from_slice(&n.to_be_bytes());
    b.extend_from_slice(&body);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::tests::build_batch;

    #[test]
    fn timestamps_of_uncompressed_batch() {
        let b = build_batch(100, 3, b"abc");
        let v = BatchView::parse(&b).expect("valid");
        assert_eq!(
            record_timestamps(&v, 1 << 20).expect("ok"),
            vec![(0, 100), (1, 101), (2, 102)]
        );
    }

    #[test]
    fn offsets_and_timestamps_wrap_like_kafka() {
        // Found by fuzz/record_batch: base + delta from the wire overflowed (a panic with
        // overflow checks). Kafka adds them as Java longs, which wrap.
        let mut b = build_batch(0, 2, b"v"); // timestamp and offset deltas 0 and 1
        crate::protocol::batch::patch_base_offset(&mut b, i64::MAX);
        b[27..35].copy_from_slice(&i64::MAX.to_be_bytes()); // base timestamp (CRC not checked)
        let v = BatchView::parse_header(&b).expect("valid header");
        let want = vec![(i64::MAX, i64::MAX), (i64::MIN, i64::MIN)];
        assert_eq!(record_timestamps(&v, 1 << 20).expect("walk"), want);
        let mut seen = Vec::new();
        for_each_record(&v, 1 << 20, |r| seen.push((r.offset, r.timestamp))).expect("walk");
        assert_eq!(seen, want);
    }

    #[test]
    fn build_and_walk_records() {
        let recs: [super::KeyValue<'_>; 2] = [(Some(b"k1"), Some(b"v1")), (Some(b"k2"), None)];
        let b = super::build_batch(&recs, 77);
        let v = BatchView::parse(&b).expect("valid");
        let mut seen = Vec::new();
        for_each_record(&v, 1 << 20, |r| {
            seen.push((
                r.offset,
                r.timestamp,
                r.key.map(<[u8]>::to_vec),
                r.value.map(<[u8]>::to_vec),
            ))
        })
        .expect("walk");
        assert_eq!(
            seen,
            vec![
                (0, 77, Some(b"k1".to_vec()), Some(b"v1".to_vec())),
                (1, 77, Some(b"k2".to_vec()), None)
            ]
        );
    }

    #[test]
    fn markers() {
        let m = build_marker(7, 3, true, 0, 5);
        let v = BatchView::parse(&m).expect("valid");
        assert!(v.is_control() && v.is_transactional());
        assert_eq!((v.producer_id(), v.producer_epoch()), (7, 3));
        assert_eq!(marker_is_commit(&v), Some(true));
        let m = build_marker(7, 3, false, 0, 5);
        assert_eq!(
            marker_is_commit(&BatchView::parse(&m).expect("valid")),
            Some(false)
        );
    }

    #[test]
    fn capped_decompression() {
        use std::io::Write;
        let big = vec![0u8; 1 << 20];
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&big).expect("write");
        let gz = enc.finish().expect("finish");
        assert!(matches!(
            decompress(1, &gz, 1000),
            Err(RecordsError::TooLarge(_))
        ));
        assert_eq!(decompress(1, &gz, 1 << 20).expect("ok").len(), 1 << 20);
        let z = zstd::encode_all(&big[..], 3).expect("zstd");
        assert!(matches!(
            decompress(4, &z, 1000),
            Err(RecordsError::TooLarge(_))
        ));
        let s = snap::raw::Encoder::new()
            .compress_vec(&big)
            .expect("snappy");
        assert!(matches!(
            decompress(2, &s, 1000),
            Err(RecordsError::TooLarge(_))
        ));
        let mut l = lz4_flex::frame::FrameEncoder::new(Vec::new());
        l.write_all(&big).expect("lz4");
        let l = l.finish().expect("lz4");
        assert!(matches!(
            decompress(3, &l, 1000),
            Err(RecordsError::TooLarge(_))
        ));
    }
}
