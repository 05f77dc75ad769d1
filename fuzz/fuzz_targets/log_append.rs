//! Arbitrary produce data appended to a fresh `PartitionLog` (in a tempdir, on tmpfs when
//! available): every append returns `Ok` or a `LogError` describing a refused batch, never a
//! panic, and a refused append changes nothing. Then the log is read back (must equal exactly
//! the bytes accepted, offsets patched), reopened after a simulated crash (drop without close:
//! the recovery scan must keep every batch `append` accepted) and after a clean close.
//!
//! Input layout: byte 0 holds flags, the rest is a sequence of appends `[u16 len][data]`
//! (a length past the end takes what is left).
//! - bit 0: small segments (`segment.bytes` 256: rolls on nearly every append)
//! - bit 1: `message.timestamp.type=LogAppendTime`
//! - bit 2: fix up batch CRCs before appending (so mutations reach the header/producer checks)
//! - bit 3: `append_internal` (the coordinators' path: control batches allowed)
//! - bit 4: small `max.message.bytes` (256)
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strom::log::{LogConfig, LogError, PartitionLog};
use strom::protocol::batch::{
    patch_base_offset, patch_leader_epoch, patch_log_append_time, BatchIter, BatchView, HEADER_LEN,
};

const NOW: i64 = 1_700_000_000_000;

fn base_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        base.join(format!("strom-fuzz-log-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let config = LogConfig {
        segment_bytes: if flags & 1 == 1 { 256 } else { 1 << 20 },
        log_append_time: flags & 2 == 2,
        max_message_bytes: if flags & 16 == 16 { 256 } else { 1 << 20 },
        index_interval_bytes: 128,
        ..LogConfig::default()
    };
    std::fs::create_dir_all(base_dir()).expect("fuzz base dir");
    let dir = tempfile::tempdir_in(base_dir()).expect("tempdir");
    let log = PartitionLog::open(dir.path(), "fuzz-0", config.clone(), NOW).expect("open new log");

    // Exactly the bytes the log accepted, in order, with offsets as patched.
    let mut accepted: Vec<u8> = Vec::new();
    let mut leo = 0i64;
    while !rest.is_empty() {
        let (chunk, tail) = if rest.len() >= 2 {
            let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let body = &rest[2..];
            body.split_at(n.min(body.len()))
        } else {
            (rest, &[][..])
        };
        rest = tail;
        let mut buf = chunk.to_vec();
        if flags & 4 == 4 {
            fix_crcs(&mut buf);
        }
        let result = if flags & 8 == 8 {
            log.append_internal(&buf, 3, NOW)
        } else {
            log.append(&buf, 3, NOW)
        };
        match result {
            Ok(info) if info.duplicate => {
                assert_eq!(info.records, 0);
                assert!(info.last_offset < leo, "a duplicate points into the log");
            }
            Ok(info) => {
                assert_eq!(info.base_offset, leo, "offsets are contiguous");
                assert_eq!(info.last_offset, leo + info.records - 1);
                assert!(info.records >= 1);
                leo = info.last_offset + 1;
                // What must have been written (the log leaves the input alone): each batch
                // with baseOffset and epoch set (LogAppendTime and its CRC too), still valid.
                let mut next = info.base_offset;
                for v in BatchIter::new(&buf, true) {
                    let mut b = v.expect("accepted data re-parses").bytes().to_vec();
                    patch_base_offset(&mut b, next);
                    patch_leader_epoch(&mut b, 3);
                    if config.log_append_time {
                        let mut h = [0u8; HEADER_LEN];
                        h.copy_from_slice(&b[..HEADER_LEN]);
                        patch_log_append_time(&mut h, &b[HEADER_LEN..], NOW);
                        b[..HEADER_LEN].copy_from_slice(&h);
                    }
                    let v = BatchView::parse(&b).expect("the stored batch is valid");
                    assert_eq!(v.base_offset(), next);
                    assert_eq!(v.partition_leader_epoch(), 3);
                    if config.log_append_time {
                        assert!(v.is_log_append_time() && v.max_timestamp() == NOW);
                    }
                    next = v.last_offset() + 1;
                    accepted.extend_from_slice(&b);
                }
                assert_eq!(next, leo);
            }
            Err(e) => assert!(
                matches!(
                    e,
                    LogError::InvalidBatch(_)
                        | LogError::RecordTooLarge { .. }
                        | LogError::Sequence(_)
                ),
                "unexpected append error {e:?}"
            ),
        }
        assert_eq!(
            log.log_end_offset(),
            leo,
            "a refused append changes nothing"
        );
    }
    assert_eq!(read_all(&log), accepted);
    check_partial_reads(&log, flags);
    let _ = log.find_batch_by_timestamp(NOW - 1).expect("time lookup");
    let _ = log
        .find_batch_with_max_timestamp()
        .expect("max timestamp lookup");

    // Crash: no flush, no close. Page-cache data is all there, so recovery keeps it all.
    drop(log);
    let log = PartitionLog::open(dir.path(), "fuzz-0", config.clone(), NOW).expect("recover");
    assert_eq!(
        log.log_end_offset(),
        leo,
        "recovery keeps every accepted batch"
    );
    assert_eq!(read_all(&log), accepted);
    log.close().expect("close");
    drop(log);
    let log = PartitionLog::open(dir.path(), "fuzz-0", config, NOW).expect("reopen");
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(read_all(&log), accepted);
});

/// Reads the whole log, segment by segment.
fn read_all(log: &PartitionLog) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log
            .read(offset, usize::MAX, i64::MAX, true)
            .expect("read back");
        let mut last = None;
        for v in BatchIter::new(&r.data, true) {
            let v = v.expect("read returns whole valid batches");
            assert!(last.is_none_or(|l: i64| v.base_offset() == l + 1));
            last = Some(v.last_offset());
        }
        let last = last.expect("a read below the LEO returns data");
        assert!(last >= offset);
        out.extend_from_slice(&r.data);
        offset = last + 1;
    }
    out
}

/// Reads at every offset with a small budget: whole batches only, the first one containing
/// the offset.
fn check_partial_reads(log: &PartitionLog, flags: u8) {
    let leo = log.log_end_offset();
    let max_bytes = usize::from(flags) * 3 + 1;
    for offset in log.log_start_offset()..leo.min(64) {
        for min_one in [true, false] {
            let r = log.read(offset, max_bytes, leo, min_one).expect("read");
            let mut first = true;
            for v in BatchIter::new(&r.data, true) {
                let v = v.expect("whole batches");
                if first {
                    assert!(v.base_offset() <= offset && offset <= v.last_offset());
                    first = false;
                }
            }
            if min_one {
                assert!(!r.data.is_empty(), "min_one returns the first batch");
            } else {
                assert!(r.data.len() <= max_bytes);
            }
        }
    }
}

/// Recomputes the CRC of every chunk that `peek_size` delimits (as far as the data goes).
fn fix_crcs(buf: &mut [u8]) {
    let mut pos = 0usize;
    while let Ok(Some(size)) = BatchView::peek_size(&buf[pos..]) {
        let Some(end) = pos.checked_add(size).filter(|&e| e <= buf.len()) else {
            return;
        };
        let crc = crc32c::crc32c(&buf[pos + 21..end]);
        buf[pos + 17..pos + 21].copy_from_slice(&crc.to_be_bytes());
        pos = end;
    }
}
