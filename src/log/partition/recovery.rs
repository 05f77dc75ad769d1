//! Opening a partition log: recovery after a crash or a clean shutdown.
//!
//! Segments with index files were fsynced and are trusted; the others (always including the
//! active one) are scanned batch by batch with CRCs, truncated at the first torn or corrupt
//! batch, and fsynced. Offsets must stay contiguous: everything after a truncation point, or
//! after a segment that starts past the end of the one before it, is dropped. Producer state
//! comes from the clean-shutdown snapshot or a replay of the batch headers.

use super::*;

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
        storage.create_dir_all(dir)?;
        let mut bases: Vec<i64> = storage
            .list_dir(dir)?
            .into_iter()
            .filter(|e| !e.is_dir)
            .filter_map(|e| e.name.strip_suffix(".log")?.parse::<i64>().ok())
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
                seg.delete_files(storage.as_ref(), dir);
                continue;
            }
            let has_indexes = storage.exists(&Segment::index_path(dir, base))
                && storage.exists(&Segment::time_index_path(dir, base));
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
                    seg.delete_files(storage.as_ref(), dir);
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
                s.delete_files(storage.as_ref(), dir);
            }
        }
        let stored_start = storage
            .read_file(&dir.join(LOG_START_FILE))
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.trim().parse::<i64>().ok());
        if segments.is_empty() {
            let base = stored_start.unwrap_or(0).max(0);
            segments.push(Segment::create(storage.as_ref(), dir, base, now_ms)?);
            storage.sync_dir(dir)?;
        }
        let active = segments.last().expect("at least one segment");
        // The active segment will change: its index files on disk would go stale.
        storage.remove_file(&Segment::index_path(dir, active.base_offset))?;
        storage.remove_file(&Segment::time_index_path(dir, active.base_offset))?;
        let next_offset = active.next_offset;
        let first_base = segments[0].base_offset;
        let log_start_offset = stored_start
            .unwrap_or(first_base)
            .clamp(first_base, next_offset);
        if stored_start.is_some_and(|s| s > log_start_offset) {
            // A crash lost unflushed records above a DeleteRecords point: persist the clamped
            // start, or a later restart would move it past records appended since.
            storage.write_file_synced(
                &dir.join(LOG_START_FILE),
                log_start_offset.to_string().as_bytes(),
            )?;
        }
        let producers = load_producer_state(storage.as_ref(), dir, name, &segments, next_offset)?;
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
}

/// Loads the clean-shutdown snapshot if it matches the log's end, else replays every batch
/// header. The snapshot is removed once read: a later crash must not find a stale one.
fn load_producer_state(
    storage: &dyn Storage,
    dir: &Path,
    name: &str,
    segments: &[Segment],
    next_offset: i64,
) -> Result<ProducerStateMap, LogError> {
    let path = dir.join(PRODUCER_SNAPSHOT_FILE);
    let snapshot = storage
        .read_file(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Snapshot>(&b).ok());
    storage.remove_file(&path)?;
    storage.sync_dir(dir)?;
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
