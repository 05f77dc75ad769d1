//! Group commit across partitions for produce requests.
//!
//! A produce with acks=all (or one that `flush.messages` makes due) hands the partitions it
//! wrote to the flusher and parks once. One dedicated thread takes every request queued since
//! its last pass, flushes each log they touched once ([`PartitionLog::flush_many_blocking`]:
//! writeback is started on every file before the first `fdatasync`, so the device works on all
//! partitions together), then completes all those requests. Per pass that is one thread wake-up
//! and one per waiting request, where awaiting `flush_to` per partition cost a blocking-pool
//! round trip per partition per request, one partition after another.
//!
//! The flusher only batches: each log's group commit, its ordering and its poisoning on a failed
//! fsync stay in [`PartitionLog`].
//!
//! Supervision: a panic during a pass is caught and logged (ERROR, with the panic message);
//! every request of that pass is answered with a storage error (KAFKA_STORAGE_ERROR: the
//! client retries; nothing was acknowledged) and the thread goes on with the next pass. This is
//! a restart of the task without losing its queue: the thread keeps no state between passes,
//! and a log forgets what a flush covered only once its fsyncs returned (`partition/flush.rs`),
//! so an abandoned pass leaves everything for the next one. The rate needs no bound: passes are
//! driven by requests, one at a time. Shutting the broker down instead would turn one bad pass
//! into an outage of every partition.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
#[cfg(test)]
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::log::{LogError, PartitionLog};

/// What one log's flush came to, shared by every request that waited for it.
pub type FlushOutcome = Result<(), Arc<LogError>>;

/// Logs to flush and the offset each must be durable below.
pub type FlushItems = Vec<(Arc<PartitionLog>, i64)>;

struct Request {
    items: FlushItems,
    /// None: nobody waits (acks=0 with `flush.messages` due).
    done: Option<oneshot::Sender<Vec<FlushOutcome>>>,
}

pub struct Flusher {
    tx: mpsc::Sender<Request>,
    /// Test-only fault: the next pass panics half-way (after its logs' flush locks were taken).
    #[cfg(test)]
    pub(crate) panic_next_pass: Arc<AtomicBool>,
}

impl Flusher {
    /// Starts the flusher thread; it ends when the `Flusher` is dropped and its queue is empty.
    pub fn start() -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        #[cfg(test)]
        let panic_next_pass = Arc::new(AtomicBool::new(false));
        let pass = {
            #[cfg(test)]
            let fault = panic_next_pass.clone();
            move |logs: &FlushItems| {
                #[cfg(test)]
                if fault.swap(false, Ordering::AcqRel) {
                    if let Some((log, _)) = logs.first() {
                        log.begin_flush_then_panic();
                    }
                }
                PartitionLog::flush_many_blocking(logs)
            }
        };
        std::thread::Builder::new()
            .name("strom-flusher".into())
            .spawn(move || run(rx, pass))?;
        Ok(Flusher {
            tx,
            #[cfg(test)]
            panic_next_pass,
        })
    }

    /// Queues `items` for the next pass. With `wait`, the receiver gets one outcome per item,
    /// in order; it errors only if the flusher thread is gone.
    pub fn submit(
        &self,
        items: FlushItems,
        wait: bool,
    ) -> Option<oneshot::Receiver<Vec<FlushOutcome>>> {
        let (done, rx) = if wait {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        // A send fails only when the thread is gone; the dropped sender then fails `rx`.
        let _ = self.tx.send(Request { items, done });
        rx
    }
}

fn run(rx: mpsc::Receiver<Request>, pass: impl Fn(&FlushItems) -> Vec<Result<(), LogError>>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        // Each log once, at the highest offset any request needs.
        let mut slot: HashMap<usize, usize> = HashMap::new();
        let mut logs: FlushItems = Vec::new();
        for req in &batch {
            for (log, target) in &req.items {
                let key = Arc::as_ptr(log) as usize;
                match slot.get(&key) {
                    Some(&i) => logs[i].1 = logs[i].1.max(*target),
                    None => {
                        slot.insert(key, logs.len());
                        logs.push((log.clone(), *target));
                    }
                }
            }
        }
        let outcomes: Vec<FlushOutcome> = match std::panic::catch_unwind(AssertUnwindSafe(|| {
            pass(&logs)
        })) {
            Ok(results) => results.into_iter().map(|r| r.map_err(Arc::new)).collect(),
            Err(payload) => {
                let message = crate::tasks::panic_message(payload.as_ref());
                tracing::error!(task = "flusher", panic = %message, logs = logs.len(), "flush pass panicked; its requests fail with a storage error, the flusher goes on");
                let failed = Arc::new(LogError::Io(std::io::Error::other(format!(
                    "flush pass panicked: {message}"
                ))));
                vec![Err(failed); logs.len()]
            }
        };
        for req in batch {
            if let Some(done) = req.done {
                let mine = req
                    .items
                    .iter()
                    .map(|(log, _)| outcomes[slot[&(Arc::as_ptr(log) as usize)]].clone())
                    .collect();
                let _ = done.send(mine);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogConfig;
    use crate::protocol::batch::tests::build_batch;

    /// A panic half-way through a pass fails that pass's requests with a storage error; the
    /// flusher goes on, and the next pass still covers what the failed one had taken: the
    /// sealed segment gets its fsync (its index files, written only after it, appear) and the
    /// directory its fsync.
    #[tokio::test]
    async fn a_panicking_pass_fails_its_requests_and_the_next_pass_covers_everything() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 100,
            ..LogConfig::default()
        };
        let log = Arc::new(
            PartitionLog::open(&dir.path().join("t-0"), "t-0", config, crate::log::now_ms())
                .unwrap(),
        );
        let flusher = Flusher::start().unwrap();
        for _ in 0..2 {
            // The second append rolls: segment 0 is sealed, not yet fsynced.
            log.append(&test_batch(3), 0, crate::log::now_ms()).unwrap();
        }
        let end = log.log_end_offset();
        let sealed_index = dir.path().join("t-0").join(format!("{:020}.index", 0));
        flusher.panic_next_pass.store(true, Ordering::Release);
        let failed = flusher
            .submit(vec![(log.clone(), end)], true)
            .unwrap()
            .await;
        let failed = failed.expect("the flusher answers the requests of a panicked pass");
        assert!(
            matches!(&failed[0], Err(e) if e.to_string().contains("panicked")),
            "{failed:?}"
        );
        assert!(log.flushed_offset() < end);
        assert!(!sealed_index.exists());
        let again = flusher
            .submit(vec![(log.clone(), end)], true)
            .unwrap()
            .await;
        let again = again.expect("the flusher still runs after a panic");
        assert!(again[0].is_ok(), "{again:?}");
        assert_eq!(log.flushed_offset(), end);
        assert!(
            sealed_index.exists(),
            "the sealed segment taken by the panicked pass was never fsynced"
        );
    }

    fn test_batch(n: i32) -> Vec<u8> {
        build_batch(crate::log::now_ms(), n, b"value")
    }

    #[tokio::test]
    async fn one_pass_flushes_every_log_of_every_request() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            Arc::new(
                PartitionLog::open(
                    &dir.path().join(name),
                    name,
                    LogConfig::default(),
                    crate::log::now_ms(),
                )
                .unwrap(),
            )
        };
        let (a, b) = (open("a-0"), open("b-0"));
        let flusher = Flusher::start().unwrap();
        let mut waits = Vec::new();
        for round in 0..20 {
            let mut items = Vec::new();
            for log in [&a, &b] {
                let data = test_batch(3);
                let info = log.append(&data, 0, crate::log::now_ms()).unwrap();
                items.push((log.clone(), info.last_offset + 1));
            }
            if round % 2 == 0 {
                items.reverse();
            }
            let ends: Vec<i64> = items.iter().map(|(_, e)| *e).collect();
            waits.push((flusher.submit(items, true).unwrap(), ends));
        }
        // Fire-and-forget requests are flushed too.
        let data = test_batch(1);
        let info = a.append(&data, 0, crate::log::now_ms()).unwrap();
        assert!(flusher
            .submit(vec![(a.clone(), info.last_offset + 1)], false)
            .is_none());
        for (rx, ends) in waits {
            let outcomes = rx.await.unwrap();
            assert_eq!(outcomes.len(), ends.len());
            assert!(outcomes.iter().all(|o| o.is_ok()));
        }
        assert_eq!(b.flushed_offset(), 60);
        // The last request queued behind the waited ones; a later waited pass covers it.
        let data = test_batch(1);
        let info = b.append(&data, 0, crate::log::now_ms()).unwrap();
        let rx = flusher
            .submit(vec![(b.clone(), info.last_offset + 1)], true)
            .unwrap();
        assert!(rx.await.unwrap()[0].is_ok());
        assert_eq!(a.flushed_offset(), 61);
        assert_eq!(b.flushed_offset(), 61);
    }
}
