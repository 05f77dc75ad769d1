//! Opening a partition log: recovery after a crash or a clean shutdown.
//!
//! The recovery point (`recovery-point-offset-checkpoint`, like Kafka's per-directory file but
//! per partition) is an offset below which every record was fsynced; it is written after a
//! flush that sealed segments, by the periodic maintenance pass and at clean shutdown, and
//! lowered before a truncation, so it never claims more than what is durable.
//!
//! Segments with index files were fsynced whole (indexes are written only after that) and are
//! trusted: opened from their indexes plus a header walk of the few KiB after the last index
//! entry, without reading their batches. The others (always the active one after a crash)
//! are walked batch by batch: by their headers below the recovery point, read whole with their
//! CRCs checked above it. Where a walk stops before the end of the file:
//! - above the recovery point, in a segment never fsynced whole: a torn unflushed tail; it is
//!   truncated, later (unflushed) segments are deleted, and what is kept is fsynced;
//! - below the recovery point, or in a segment that had index files: damage to data that was
//!   durable. Nothing is deleted: that segment and every later one are renamed aside to
//!   `<file>.corrupt` and the partition stays offline (every read and write fails with
//!   KAFKA_STORAGE_ERROR) until an operator restores or removes those files, as Kafka takes
//!   a log directory offline on an I/O error instead of guessing.
//!
//! Producer state comes from the clean-shutdown snapshot or a replay of the batch headers.

use super::*;

/// The per-partition recovery-point checkpoint (docs/FORMAT.md).
pub(super) const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
/// Suffix of segment files quarantined by recovery.
pub const CORRUPT_SUFFIX: &str = ".corrupt";

/// Reads a checkpoint file holding one decimal offset.
pub(super) fn read_offset_file(storage: &dyn Storage, path: &Path) -> Option<i64> {
    storage
        .read_file(path)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.trim().parse::<i64>().ok())
}

/// What recovery found wrong with durable data.
struct Damage {
    /// Index (in `bases`) of the first segment to quarantine, if any file is to be moved.
    from: Option<usize>,
    reason: String,
}

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
        let entries = storage.list_dir(dir)?;
        let mut quarantined: Vec<String> = entries
            .iter()
            .filter(|e| e.name.ends_with(CORRUPT_SUFFIX))
            .map(|e| e.name.clone())
            .collect();
        if !quarantined.is_empty() {
            quarantined.sort();
            let reason = format!(
                "{} holds quarantined segment files ({}): the partition stays offline until they are restored or removed",
                dir.display(),
                quarantined.join(", ")
            );
            return Ok(Self::offline(storage, dir, name, config, reason));
        }
        let mut bases: Vec<i64> = entries
            .into_iter()
            .filter(|e| !e.is_dir)
            .filter_map(|e| e.name.strip_suffix(".log")?.parse::<i64>().ok())
            .collect();
        bases.sort_unstable();
        let stored_point = read_offset_file(storage.as_ref(), &dir.join(RECOVERY_POINT_FILE));
        let recovery_point = stored_point.unwrap_or(0);
        let has_indexes = |base: i64| {
            storage.exists(&Segment::index_path(dir, base))
                && storage.exists(&Segment::time_index_path(dir, base))
        };
        let mut segments: Vec<Segment> = Vec::new();
        let mut damage: Option<Damage> = None;
        let mut drop_from: Option<usize> = None;
        for (i, &base) in bases.iter().enumerate() {
            let indexed = has_indexes(base);
            let trusted = if indexed {
                Segment::open_trusted(storage.as_ref(), dir, base, now_ms)?
            } else {
                None
            };
            let (seg, intact) = match trusted {
                Some(seg) => (seg, true),
                None => {
                    let (seg, file_len) =
                        Segment::open_scanned(storage.as_ref(), dir, base, recovery_point, now_ms)?;
                    let intact = seg.size == file_len;
                    (seg, intact)
                }
            };
            if let Some(prev) = segments.last() {
                if seg.base_offset != prev.next_offset && seg.size > 0 {
                    // Records between the two are missing. Above the recovery point and
                    // never fsynced whole, that is an OS crash cutting an unflushed segment at
                    // a batch boundary while a later one survived: those records are lost as
                    // a torn tail's are. Otherwise durable data is gone.
                    if prev.next_offset < recovery_point || indexed {
                        damage = Some(Damage {
                            from: Some(i),
                            reason: format!(
                                "segment {base} starts past the end of the one before it ({}), below the recovery point {recovery_point} or in a fsynced segment",
                                prev.next_offset
                            ),
                        });
                    } else {
                        warn!(
                            log = name,
                            base,
                            expected = prev.next_offset,
                            "segment starts past the end of the one before it (unflushed records lost in a crash): dropping it and every later segment"
                        );
                        drop_from = Some(i);
                    }
                    break;
                }
            }
            if !intact {
                if seg.next_offset < recovery_point || indexed {
                    damage = Some(Damage {
                        from: Some(i),
                        reason: format!(
                            "segment {base} holds an invalid batch at offset {} (byte {}), below the recovery point {recovery_point} or in a fsynced segment",
                            seg.next_offset, seg.size
                        ),
                    });
                    break;
                }
                warn!(
                    log = name,
                    base,
                    valid_bytes = seg.size,
                    "truncated the invalid unflushed tail of a segment (data after it is dropped)"
                );
                seg.truncate_invalid_tail()?;
                segments.push(seg);
                drop_from = Some(i + 1);
                break;
            }
            if !indexed {
                // Data without index files may never have been fsynced (a crash before the
                // flush); the log reports everything it recovered as flushed, so make it so.
                seg.file.sync_data()?;
            }
            segments.push(seg);
        }
        if let Some(from) = drop_from.filter(|&f| f < bases.len()) {
            // Only unflushed data may be dropped: a later segment with index files, or one
            // starting below the recovery point, was durable.
            if let Some(&durable) = bases[from..]
                .iter()
                .find(|&&b| b < recovery_point || has_indexes(b))
            {
                damage = Some(Damage {
                    from: Some(from),
                    reason: format!(
                        "segment {durable} is durable (index files, or below the recovery point {recovery_point}) but follows lost records"
                    ),
                });
            } else {
                for &base in &bases[from..] {
                    warn!(
                        log = name,
                        base, "deleting an unflushed segment after a torn one"
                    );
                    storage.remove_file(&Segment::log_path(dir, base))?;
                }
                // Durably: a segment coming back after another crash would sit among new ones.
                storage.sync_dir(dir)?;
            }
        }
        // Drop empty trailing segments that are not the first (from a crash right after a roll).
        let mut removed_empty = false;
        while damage.is_none() && segments.len() > 1 && segments.last().is_some_and(|s| s.size == 0)
        {
            if let Some(s) = segments.pop() {
                s.delete_files(storage.as_ref(), dir);
                removed_empty = true;
            }
        }
        if removed_empty {
            storage.sync_dir(dir)?;
        }
        let stored_start = read_offset_file(storage.as_ref(), &dir.join(LOG_START_FILE));
        let end = segments
            .last()
            .map_or(stored_start.unwrap_or(0), |s| s.next_offset);
        if damage.is_none() && end < recovery_point {
            damage = Some(Damage {
                from: None,
                reason: format!(
                    "the log ends at {end}, below its recovery point {recovery_point}: fsynced records are missing"
                ),
            });
        }
        if let Some(d) = damage {
            let moved = match d.from {
                Some(from) => quarantine(storage.as_ref(), dir, &bases[from..])?,
                None => Vec::new(),
            };
            let reason = format!(
                "{}: {}{}; the partition is offline until an operator restores or removes them",
                dir.display(),
                d.reason,
                if moved.is_empty() {
                    String::new()
                } else {
                    format!(" (renamed aside: {})", moved.join(", "))
                }
            );
            return Ok(Self::offline(storage, dir, name, config, reason));
        }
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
        // The stored point is kept as it is (the next periodic checkpoint moves it): data this
        // recovery verified and fsynced counts as unflushed once more until then, which only
        // errs on the side of truncating a torn tail.
        // One line per partition only at debug: start-up logs one summary (broker.rs).
        tracing::debug!(
            log = name,
            segments = segments.len(),
            log_start_offset,
            next_offset,
            recovery_point,
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
                rolls: 0,
                dir_synced_rolls: 0,
                records_since_flush: 0,
                producers,
            }),
            config: RwLock::new(config),
            flushed_offset: AtomicI64::new(next_offset),
            end_offset: AtomicI64::new(next_offset),
            start_offset: AtomicI64::new(log_start_offset),
            flush_lock: tokio::sync::Mutex::new(()),
            poisoned: AtomicBool::new(false),
            offline: None,
            recovery_point: Mutex::new(recovery_point),
        })
    }

    /// A log that serves nothing: every read and write fails with the reason (damaged durable
    /// data was found). Nothing on disk is touched.
    fn offline(
        storage: Arc<dyn Storage>,
        dir: &Path,
        name: &str,
        config: LogConfig,
        reason: String,
    ) -> Self {
        tracing::error!(log = name, %reason, "partition log offline");
        PartitionLog {
            name: name.to_string(),
            storage,
            dir: dir.to_path_buf(),
            inner: Mutex::new(Inner {
                segments: Vec::new(),
                log_start_offset: 0,
                next_offset: 0,
                unsynced: Vec::new(),
                records_since_flush: 0,
                producers: ProducerStateMap::default(),
                rolls: 0,
                dir_synced_rolls: 0,
            }),
            config: RwLock::new(config),
            flushed_offset: AtomicI64::new(0),
            end_offset: AtomicI64::new(0),
            start_offset: AtomicI64::new(0),
            flush_lock: tokio::sync::Mutex::new(()),
            poisoned: AtomicBool::new(true),
            offline: Some(reason),
            recovery_point: Mutex::new(0),
        }
    }
}

/// Renames every file of the segments `bases` to `<file>.corrupt` (durably). Returns the new
/// names.
fn quarantine(storage: &dyn Storage, dir: &Path, bases: &[i64]) -> Result<Vec<String>, LogError> {
    let mut moved = Vec::new();
    for &base in bases {
        for path in [
            Segment::log_path(dir, base),
            Segment::index_path(dir, base),
            Segment::time_index_path(dir, base),
        ] {
            if !storage.exists(&path) {
                continue;
            }
            let mut to = path.clone().into_os_string();
            to.push(CORRUPT_SUFFIX);
            let to = PathBuf::from(to);
            storage.rename(&path, &to)?;
            moved.push(
                to.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
    }
    storage.sync_dir(dir)?;
    Ok(moved)
}

/// Loads the latest producer snapshot (written at clean shutdown and once per roll, see
/// flush.rs) and replays the batch headers after it; without a usable one, every batch header
/// of the log. A snapshot ending past the recovered log end describes records a crash took
/// back: it is removed (durably, before anything can be appended at those offsets again).
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
    let (mut state, from) = match snapshot {
        Some(s) if s.end_offset <= next_offset => (s.state, s.end_offset),
        other => {
            if other.is_some() {
                warn!(
                    log = name,
                    "producer snapshot ends past the recovered log; replaying the log"
                );
            }
            if storage.exists(&path) {
                storage.remove_file(&path)?;
                storage.sync_dir(dir)?;
            }
            (ProducerStateMap::default(), i64::MIN)
        }
    };
    let now = crate::log::now_ms();
    for seg in segments.iter().filter(|s| s.next_offset > from) {
        let mut marker_error = None;
        seg.for_each_header(|v, pos| {
            if v.base_offset() < from {
                return;
            }
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
