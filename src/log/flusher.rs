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

use std::collections::HashMap;
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
}

impl Flusher {
    /// Starts the flusher thread; it ends when the `Flusher` is dropped and its queue is empty.
    pub fn start() -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("strom-flusher".into())
            .spawn(move || run(rx))?;
        Ok(Flusher { tx })
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

fn run(rx: mpsc::Receiver<Request>) {
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
        let outcomes: Vec<FlushOutcome> = PartitionLog::flush_many_blocking(&logs)
            .into_iter()
            .map(|r| r.map_err(Arc::new))
            .collect();
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
