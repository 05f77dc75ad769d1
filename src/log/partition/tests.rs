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
        append_n(&log, 18, 1000);
        log.flush_blocking().expect("flush");
        append_n(&log, 2, 2000); // 54..60, never flushed
                                 // No close(): simulate a crash. Then tear the active segment's (unflushed) tail.
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
        PartitionLog::open_with(Arc::new(storage), dir.path(), "t-0", small_config(), 0).is_err(),
        "recovery must fsync what it recovered before calling it flushed"
    );
    let log = PartitionLog::open(dir.path(), "t-0", small_config(), 0).expect("reopen");
    assert_eq!(log.flushed_offset(), 60);
}

#[test]
fn a_roll_leaves_the_directory_fsync_to_the_next_flush() {
    // The directory fsync used to run in the roll, under the partition lock, on the producer's
    // async worker. It belongs to the flush: the new segment's directory entry must be durable
    // before any record in it is reported durable, and not before that is needed.
    use crate::log::io::FaultyStorage;
    use std::sync::atomic::Ordering;
    let open = |dir: &Path| {
        let storage = FaultyStorage::default();
        let faults = storage.faults.clone();
        let log = PartitionLog::open_with(Arc::new(storage), dir, "t-0", small_config(), 0)
            .expect("open");
        (log, faults)
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, faults) = open(dir.path());
    let at_open = faults.dir_syncs.load(Ordering::Acquire);
    append_n(&log, 20, 1000); // several rolls
    let segments = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "log"))
        })
        .count();
    assert!(segments > 2, "{segments} segments");
    assert_eq!(
        faults.dir_syncs.load(Ordering::Acquire),
        at_open,
        "a roll fsynced the directory under the partition lock"
    );
    log.flush_blocking().expect("flush");
    assert_eq!(log.flushed_offset(), 60);
    let after_flush = faults.dir_syncs.load(Ordering::Acquire);
    assert!(
        after_flush > at_open,
        "the flush did not fsync the directory"
    );
    log.flush_blocking().expect("flush");
    append_n(&log, 1, 2000); // no roll
    log.flush_blocking().expect("flush");
    assert_eq!(
        faults.dir_syncs.load(Ordering::Acquire),
        after_flush,
        "no roll, no directory fsync"
    );

    // A failed directory fsync fails the flush: nothing in the new segments counts as durable.
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, faults) = open(dir.path());
    append_n(&log, 20, 1000);
    faults.fail_dir_sync.store(true, Ordering::Release);
    assert!(
        log.flush_blocking().is_err(),
        "the flush ignored its directory fsync"
    );
    assert_eq!(log.flushed_offset(), 0);
    assert!(matches!(log.flush_blocking(), Err(LogError::Poisoned(_))));
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

/// Segment files (name -> bytes) of a partition directory.
fn segment_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".log") || n.contains("index"))
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).expect("read");
            (n, bytes)
        })
        .collect()
}

fn sorted_logs(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs
}

#[test]
fn a_bad_header_in_a_trusted_segment_deletes_nothing() {
    // Issue 12 #8: a bad header in an fsynced segment used to truncate it and delete every
    // later segment at the next start.
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = PartitionLog::open(dir.path(), "t-0", small_config(), 0).expect("open");
        append_n(&log, 30, 1000);
        log.close().expect("close");
    }
    let logs = sorted_logs(dir.path());
    assert!(logs.len() >= 4, "rolled by size");
    // The magic byte of the first batch of the second segment.
    let mut data = std::fs::read(&logs[1]).expect("read");
    data[16] = 9;
    std::fs::write(&logs[1], &data).expect("write");
    let before = segment_files(dir.path());
    let log = PartitionLog::open(dir.path(), "t-0", small_config(), 0).expect("reopen");
    assert_eq!(log.offline_reason(), None);
    assert_eq!(log.log_end_offset(), 90, "no record dropped");
    assert_eq!(log.segment_count(), logs.len());
    drop(log);
    let after = segment_files(dir.path());
    for (name, bytes) in &before {
        if name.ends_with(".log") {
            assert_eq!(after.get(name), Some(bytes), "{name} kept byte for byte");
        }
    }
}

#[test]
fn damage_below_the_recovery_point_is_quarantined_and_the_log_goes_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = PartitionLog::open(dir.path(), "t-0", small_config(), 0).expect("open");
        append_n(&log, 30, 1000);
        log.close().expect("close");
    }
    let logs = sorted_logs(dir.path());
    assert!(logs.len() >= 4, "rolled by size");
    // The second segment lost its indexes (so it is walked) and its second batch's header
    // is damaged (the magic byte).
    std::fs::remove_file(logs[1].with_extension("index")).expect("rm");
    let mut data = std::fs::read(&logs[1]).expect("read");
    let batch = BatchView::peek_size(&data).expect("ok").expect("some");
    data[batch + 16] = 9;
    std::fs::write(&logs[1], &data).expect("write");
    let log_bytes: u64 = logs
        .iter()
        .map(|p| std::fs::metadata(p).expect("stat").len())
        .sum();

    let log = PartitionLog::open(dir.path(), "t-0", small_config(), 0).expect("reopen");
    let reason = log.offline_reason().expect("offline").to_string();
    assert!(reason.contains("below the recovery point 90"), "{reason}");
    assert!(matches!(
        log.append(&build_batch(5000, 1, b"x"), 0, 5000),
        Err(LogError::Offline(_))
    ));
    assert!(matches!(
        log.read(0, usize::MAX, i64::MAX, true),
        Err(LogError::Offline(_))
    ));
    assert!(log.close().is_err());
    drop(log);
    // Nothing deleted: the damaged segment and every later one were renamed aside whole.
    let files = segment_files(dir.path());
    let corrupt: u64 = files
        .iter()
        .filter(|(n, _)| n.ends_with(".log.corrupt"))
        .map(|(_, b)| b.len() as u64)
        .sum();
    let kept: u64 = files
        .iter()
        .filter(|(n, _)| n.ends_with(".log"))
        .map(|(_, b)| b.len() as u64)
        .sum();
    assert_eq!(corrupt + kept, log_bytes, "every byte is still on disk");
    assert_eq!(
        files.keys().filter(|n| n.ends_with(".log.corrupt")).count(),
        logs.len() - 1
    );
    // Still offline at the next start, without scanning anything.
    let log = PartitionLog::open(dir.path(), "t-0", small_config(), 0).expect("reopen");
    assert!(log
        .offline_reason()
        .is_some_and(|r| r.contains("quarantined")));
}

#[test]
fn a_crash_scans_only_the_unflushed_tail() {
    // Counts the bytes recovery reads through the storage.
    #[derive(Debug, Default)]
    struct Counting {
        read: Arc<std::sync::atomic::AtomicU64>,
    }
    #[derive(Debug)]
    struct CountingFile {
        inner: SharedFile,
        read: Arc<std::sync::atomic::AtomicU64>,
    }
    impl crate::log::io::SegmentFile for CountingFile {
        fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
            self.read.fetch_add(buf.len() as u64, Ordering::Relaxed);
            self.inner.read_exact_at(buf, pos)
        }
        fn write_all_at(&self, buf: &[u8], pos: u64) -> std::io::Result<()> {
            self.inner.write_all_at(buf, pos)
        }
        fn sync_data(&self) -> std::io::Result<()> {
            self.inner.sync_data()
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.inner.set_len(len)
        }
        fn size(&self) -> std::io::Result<u64> {
            self.inner.size()
        }
    }
    impl Storage for Counting {
        fn open(&self, path: &Path, create: bool) -> std::io::Result<SharedFile> {
            Ok(Arc::new(CountingFile {
                inner: OsStorage.open(path, create)?,
                read: self.read.clone(),
            }))
        }
        fn open_or_create(&self, path: &Path) -> std::io::Result<SharedFile> {
            OsStorage.open_or_create(path)
        }
        fn write_file_synced(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
            OsStorage.write_file_synced(path, data)
        }
        fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
            OsStorage.read_file(path)
        }
        fn exists(&self, path: &Path) -> bool {
            OsStorage.exists(path)
        }
        fn list_dir(&self, dir: &Path) -> std::io::Result<Vec<crate::log::io::DirEntry>> {
            OsStorage.list_dir(dir)
        }
        fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
            OsStorage.create_dir_all(dir)
        }
        fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
            OsStorage.rename(from, to)
        }
        fn remove_file(&self, path: &Path) -> std::io::Result<()> {
            OsStorage.remove_file(path)
        }
        fn remove_dir_all(&self, dir: &Path) -> std::io::Result<()> {
            OsStorage.remove_dir_all(dir)
        }
        fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
            OsStorage.sync_dir(dir)
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 256 << 10,
        ..LogConfig::default()
    };
    let value = vec![3u8; 4000];
    let batch = build_batch(1000, 4, &value);
    let active_bytes;
    {
        let log = PartitionLog::open(dir.path(), "t-0", config.clone(), 0).expect("open");
        while log.segment_count() < 9 {
            log.append(&batch, 0, 1000).expect("append");
        }
        log.flush_blocking().expect("flush"); // seals and indexes 8 segments
        for _ in 0..3 {
            log.append(&batch, 0, 1000).expect("append");
        }
        active_bytes = log.inner.lock().segments.last().expect("active").size;
    } // crash: the active segment has no indexes
    let total: u64 = sorted_logs(dir.path())
        .iter()
        .map(|p| std::fs::metadata(p).expect("stat").len())
        .sum();
    let storage = Counting::default();
    let read = storage.read.clone();
    let log =
        PartitionLog::open_with(Arc::new(storage), dir.path(), "t-0", config, 0).expect("reopen");
    assert_eq!(log.segment_count(), 9);
    // Producer state is replayed from batch headers (no snapshot after a crash): 61 bytes a
    // batch. Batch bodies are read only in the unflushed active segment.
    let batches = total / batch.len() as u64;
    let bound = active_bytes + (batches + 8 * 4) * crate::protocol::batch::HEADER_LEN as u64;
    let got = read.load(Ordering::Relaxed);
    assert!(
        got <= bound,
        "recovery read {got} bytes of a {total}-byte log (bound {bound}: the active segment's {active_bytes} plus headers)"
    );
}

/// A follower's log written from the leader's bytes is the leader's log: same offsets, same
/// bytes, and the producer state to lead with later (duplicates detected, aborted
/// transactions known); offsets that do not continue past the log end are refused.
#[test]
fn a_follower_append_keeps_the_leaders_offsets_and_producer_state() {
    use crate::protocol::records::{build_batch_as, build_marker, BatchProducer};
    let (ld, fd) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let leader = PartitionLog::open(ld.path(), "t-0", small_config(), 0).expect("open");
    let follower = PartitionLog::open(fd.path(), "t-0", small_config(), 0).expect("open");
    let idem = |seq: i32| {
        let p = BatchProducer {
            producer_id: 7,
            producer_epoch: 0,
            base_sequence: seq,
            transactional: false,
            control: false,
        };
        build_batch_as(
            &[(Some(b"k"), Some(b"v1")), (Some(b"k"), Some(b"v2"))],
            1000,
            p,
        )
    };
    let txn = BatchProducer {
        producer_id: 9,
        producer_epoch: 3,
        base_sequence: 0,
        transactional: true,
        control: false,
    };
    append_n(&leader, 3, 1000);
    leader.append(&idem(0), 4, 1000).expect("idempotent");
    leader
        .append(&build_batch_as(&[(None, Some(b"t"))], 1000, txn), 4, 1000)
        .expect("transactional");
    leader
        .append_internal(&build_marker(9, 3, false, 0, 1000), 4, 1000)
        .expect("abort marker");
    append_n(&leader, 20, 2000);
    let end = leader.log_end_offset();

    // Replicate in fetch-sized pieces, as a follower's fetches would.
    let mut at = 0;
    while at < end {
        let r = leader.read(at, 300, end, true).expect("read");
        let info = follower
            .append_as_follower(&r.data, 5000)
            .expect("follower append");
        assert_eq!(info.base_offset, at);
        at = info.last_offset + 1;
    }
    assert_eq!(follower.log_end_offset(), end);
    assert!(follower.segment_count() > 1, "rolled like the leader");
    let all = |log: &PartitionLog| {
        let mut out = Vec::new();
        let mut at = 0;
        while at < end {
            let r = log.read(at, 1 << 20, end, true).expect("read");
            at = *offsets_in(&r.data).last().expect("offsets") + 1;
            out.extend_from_slice(&r.data);
        }
        out
    };
    assert_eq!(all(&follower), all(&leader), "byte for byte");
    assert_eq!(
        follower.aborted_transactions(0, end),
        leader.aborted_transactions(0, end)
    );
    assert_eq!(follower.last_stable_offset(), leader.last_stable_offset());
    // Leading later: a retry of the idempotent batch is a duplicate with the original offsets.
    let dup = follower.append(&idem(0), 6, 6000).expect("retry");
    assert!(dup.duplicate);
    assert_eq!(dup.base_offset, 9);

    // Offsets must continue past the end: the same bytes again are refused, unchanged.
    let r = leader.read(0, 300, end, true).expect("read");
    let before = follower.log_end_offset();
    assert!(follower.append_as_follower(&r.data, 7000).is_err());
    assert_eq!(follower.log_end_offset(), before);
    // A gap (a compacted leader log) is fine.
    let mut b = build_batch(3000, 2, b"later");
    batch::patch_base_offset(&mut b, before + 10);
    let info = follower.append_as_follower(&b, 7000).expect("gap");
    assert_eq!(
        (info.base_offset, follower.log_end_offset()),
        (before + 10, before + 12)
    );
    // Survives a reopen (recovery reads what the follower wrote).
    drop(follower);
    let follower = PartitionLog::open(fd.path(), "t-0", small_config(), 0).expect("reopen");
    assert_eq!(follower.log_end_offset(), before + 12);
}
