//! Durability of a partition log: group-committed fdatasync, one at a time per log.
//!
//! `flush_to` (async, coordinators) and `flush_many_blocking` (the produce flusher's thread,
//! many logs per pass) both take the log's `flush_lock`, so fsyncs of one log never overlap and
//! the flushed offset only moves once the data below it is durable. A sealed segment's index
//! files are written only after its data was fsynced. A failed fsync poisons the log.
//!
//! A roll creates the new segment file without fsyncing the directory (that would stall the
//! appender under the partition lock); the next flush fsyncs the directory before its target
//! counts as durable, so a segment's directory entry is durable before any record in it is
//! acknowledged as durable.
//!
//! A flush job only reads what it covers; `Inner` forgets the covered segments and directory
//! changes in [`PartitionLog::finish_flush`], after the fsyncs returned. A job abandoned half-way
//! (a panic in the flusher thread) therefore leaves everything for the next flush to cover.

use super::*;

/// One group-committed fsync: every file it covers and the offset it makes durable.
struct FlushJob {
    sealed: Vec<(SharedFile, i64)>,
    active: SharedFile,
    target: i64,
    /// `Inner::rolls` when the job was taken; the directory needs an fsync when it is ahead
    /// of `Inner::dir_synced_rolls`.
    rolls: u64,
    sync_dir: bool,
}

impl FlushJob {
    /// Starts writeback of every file the job covers without waiting for it (advisory: the
    /// fdatasync in [`FlushJob::sync`] is what makes the data durable and reports errors).
    fn start_writeback(&self) {
        for (f, _) in &self.sealed {
            let _ = f.start_writeback();
        }
        let _ = self.active.start_writeback();
    }

    fn sync(&self, storage: &dyn Storage, dir: &Path) -> std::io::Result<()> {
        let started = std::time::Instant::now();
        if self.sync_dir {
            storage.sync_dir(dir)?;
        }
        for (f, _) in &self.sealed {
            f.sync_data()?;
        }
        let r = self.active.sync_data();
        crate::metrics::global()
            .fsync_duration
            .observe(started.elapsed().as_secs_f64());
        r
    }
}

impl PartitionLog {
    /// Makes every offset below `offset` durable. Concurrent callers share one fsync.
    pub async fn flush_to(&self, offset: i64) -> Result<(), LogError> {
        if self.flushed_offset() >= offset {
            return Ok(());
        }
        let _guard = self.flush_lock.lock().await;
        if self.flushed_offset() >= offset {
            return Ok(());
        }
        self.check_poisoned()?;
        let job = self.begin_flush();
        let (storage, dir) = (self.storage.clone(), self.dir.clone());
        match tokio::task::spawn_blocking(move || {
            let result = job.sync(storage.as_ref(), &dir);
            (job, result)
        })
        .await
        {
            Ok((job, result)) => self.finish_flush(&job, result),
            Err(e) => {
                self.poison(&format!("fsync task failed: {e}"));
                Err(LogError::Poisoned(self.name.clone()))
            }
        }
    }

    /// Makes each log durable below its offset in one pass (the produce flusher's thread; must
    /// not run on the async runtime): writeback is started on every file before the first
    /// fdatasync, so the device works on all of them at once. Each log keeps its own group
    /// commit and poisoning; one outcome per log, in order. A log may appear only once.
    pub fn flush_many_blocking(logs: &[(Arc<PartitionLog>, i64)]) -> Vec<Result<(), LogError>> {
        let mut outcomes: Vec<Result<(), LogError>> = Vec::with_capacity(logs.len());
        // Each log's flush lock is held from taking its job until the job is finished.
        let mut held = Vec::new();
        let mut jobs = Vec::new();
        for (i, (log, target)) in logs.iter().enumerate() {
            let guard = log.flush_lock.blocking_lock();
            if log.flushed_offset() >= *target {
                outcomes.push(Ok(()));
                continue;
            }
            if let Err(e) = log.check_poisoned() {
                outcomes.push(Err(e));
                continue;
            }
            outcomes.push(Ok(()));
            jobs.push((i, log.begin_flush()));
            held.push(guard);
        }
        for (_, job) in &jobs {
            job.start_writeback();
        }
        for (i, job) in &jobs {
            let log = &logs[*i].0;
            let result = job.sync(log.storage.as_ref(), &log.dir);
            outcomes[*i] = logs[*i].0.finish_flush(job, result);
        }
        drop(held);
        outcomes
    }

    /// Test-only fault: dies the way a bug inside a flush would, between taking a job (flush
    /// lock held) and finishing it.
    #[cfg(test)]
    pub(crate) fn begin_flush_then_panic(&self) -> ! {
        let _guard = self.flush_lock.blocking_lock();
        let _job = self.begin_flush();
        panic!("injected fault in the flush of {}", self.name);
    }

    /// Synchronous flush for shutdown and tests.
    pub fn flush_blocking(&self) -> Result<(), LogError> {
        self.check_poisoned()?;
        let job = self.begin_flush();
        let result = job.sync(self.storage.as_ref(), &self.dir);
        self.finish_flush(&job, result)
    }

    /// What an fsync must cover: sealed segments not yet synced, the active segment, the
    /// directory if a roll created a file since the last flush, and the log end it makes
    /// durable. Nothing is taken out of `Inner` here (see the module doc).
    fn begin_flush(&self) -> FlushJob {
        let mut inner = self.inner.lock();
        inner.records_since_flush = 0;
        FlushJob {
            sealed: inner.unsynced.clone(),
            active: inner.segments.last().expect("active segment").file.clone(),
            target: inner.next_offset,
            rolls: inner.rolls,
            sync_dir: inner.rolls > inner.dir_synced_rolls,
        }
    }

    /// Records a finished fsync: advances the flushed offset and writes the now-durable sealed
    /// segments' indexes, or poisons the log on failure (an fsync is never retried).
    fn finish_flush(&self, job: &FlushJob, result: std::io::Result<()>) -> Result<(), LogError> {
        if let Err(e) = result {
            self.poison(&format!("fsync failed: {e}"));
            return Err(LogError::Io(e));
        }
        {
            let mut inner = self.inner.lock();
            inner.dir_synced_rolls = inner.dir_synced_rolls.max(job.rolls);
            inner
                .unsynced
                .retain(|(f, _)| !job.sealed.iter().any(|(s, _)| Arc::ptr_eq(f, s)));
        }
        self.flushed_offset.fetch_max(job.target, Ordering::AcqRel);
        let bases: Vec<i64> = job.sealed.iter().map(|(_, b)| *b).collect();
        self.write_sealed_indexes(&bases);
        if !bases.is_empty() {
            // Once per roll (not per flush: it costs two fsyncs): segments now sealed and
            // flushed lie below it, so recovery after a crash scans only the active segment.
            if let Err(e) = self.write_recovery_point(job.target) {
                warn!(log = %self.name, error = %e, "could not write the recovery point");
            }
            // And a producer snapshot, so recovery after a crash replays the headers of the
            // active segment only instead of the whole log.
            if let Err(e) = self.write_producer_snapshot() {
                warn!(log = %self.name, error = %e, "could not write the producer snapshot");
            }
        }
        Ok(())
    }

    fn write_sealed_indexes(&self, bases: &[i64]) {
        if bases.is_empty() {
            return;
        }
        let inner = self.inner.lock();
        for seg in inner
            .segments
            .iter()
            .filter(|s| bases.contains(&s.base_offset))
        {
            if let Err(e) = seg.write_indexes(self.storage.as_ref(), &self.dir) {
                // Missing indexes only cost a verification scan at the next start.
                warn!(log = %self.name, base = seg.base_offset, error = %e, "could not write segment indexes");
            }
        }
    }
}
