//! The broker's background tasks, supervised.
//!
//! [`spawn_background`] starts, each under a supervisor:
//!
//! - `maintenance`: segment rolls by `segment.ms`, retention, idempotent-producer expiry (every
//!   `log.retention.check.interval.ms`) and the periodic `flush.ms` flush;
//! - `group-timers`: the group coordinator's session, rebalance and offset-retention timers;
//! - `txn-timers`: the transaction coordinator's timeouts and transactional-id expiry;
//! - in a multi-node cluster, `cluster-heartbeat`, `cluster-controller` and `cluster-replicas`
//!   ([`crate::cluster`]).
//!
//! A panic in one of them is logged at ERROR with the task's name and the panic message, and
//! the task is started again after a backoff (doubling, capped). All three are restartable:
//! they keep no state of their own between ticks (only when they last ran), and what they act
//! on (logs, groups, transactions) lives in the broker, whose locks are released on unwind.
//! A task that panics more than `max_restarts` times within `window` is taken to be failing
//! for good: the supervisor cancels the shutdown token, so `serve` returns and the binary exits
//! non-zero ([`BackgroundTasks::join`]) - a broker that silently stops expiring sessions or
//! enforcing retention (a disk that fills up) is worse than one that stops visibly.
//!
//! A task that ends while the broker is not shutting down is treated the same way (it should
//! run until shutdown).
//!
//! The produce flusher is a thread of its own and supervises itself (see
//! [`crate::log::flusher`]): a panicking pass fails its requests and the thread goes on.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::broker::Broker;

/// How a supervisor restarts its task.
#[derive(Debug, Clone, Copy)]
pub struct Supervision {
    /// More panics than this within `window` shut the broker down.
    pub max_restarts: usize,
    pub window: Duration,
    /// Wait before the first restart; doubled for each restart in the window, up to
    /// `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Default for Supervision {
    fn default() -> Self {
        Supervision {
            max_restarts: 5,
            window: Duration::from_secs(600),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// A background task that failed for good; the broker was shut down because of it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("background task {task} failed: {reason}")]
pub struct TaskFailed {
    pub task: &'static str,
    pub reason: String,
}

/// The supervisors of the running background tasks.
pub struct BackgroundTasks {
    handles: Vec<(&'static str, JoinHandle<Result<(), TaskFailed>>)>,
    #[cfg(test)]
    faults: Vec<(&'static str, Arc<std::sync::atomic::AtomicUsize>)>,
}

impl BackgroundTasks {
    /// Waits for every task to end (they end once the shutdown token is cancelled) and returns
    /// the first failure that shut the broker down.
    pub async fn join(self) -> Result<(), TaskFailed> {
        let mut outcome = Ok(());
        for (task, handle) in self.handles {
            let result = match handle.await {
                Ok(r) => r,
                // A supervisor only panics on a bug of its own; say so instead of dropping it.
                Err(e) => Err(TaskFailed {
                    task,
                    reason: format!("supervisor failed: {e}"),
                }),
            };
            if let (Err(e), Ok(())) = (result, &outcome) {
                outcome = Err(e);
            }
        }
        outcome
    }

    /// Test-only fault: task `name` panics at each of its next `count` polls.
    #[cfg(test)]
    pub(crate) fn inject_panics(&self, name: &str, count: usize) {
        let (_, f) = self
            .faults
            .iter()
            .find(|(n, _)| *n == name)
            .expect("known task");
        f.store(count, std::sync::atomic::Ordering::Release);
    }
}

/// Starts the broker's supervised background tasks; they run until `shutdown` is cancelled
/// (which they also do themselves when one fails for good).
pub fn spawn_background(
    broker: Arc<Broker>,
    shutdown: CancellationToken,
    supervision: Supervision,
) -> BackgroundTasks {
    let mut tasks = BackgroundTasks {
        handles: Vec::new(),
        #[cfg(test)]
        faults: Vec::new(),
    };
    let b = broker.clone();
    tasks.add("maintenance", &shutdown, supervision, move |s| {
        maintenance(b.clone(), s)
    });
    let groups = broker.groups.clone();
    tasks.add("group-timers", &shutdown, supervision, move |s| {
        groups.clone().run_timers(s)
    });
    let txns = broker.txns.clone();
    tasks.add("txn-timers", &shutdown, supervision, move |s| {
        txns.clone().run_timers(s)
    });
    let shares = broker.shares.clone();
    tasks.add("share-timers", &shutdown, supervision, move |s| {
        shares.clone().run_timers(s)
    });
    let b = broker.clone();
    tasks.add("dead-letters", &shutdown, supervision, move |s| {
        b.clone().run_dead_letter_writer(s)
    });
    if broker.is_cluster() {
        let node = crate::cluster::Node::new(broker.clone());
        let n = node.clone();
        tasks.add("cluster-heartbeat", &shutdown, supervision, move |s| {
            n.clone().heartbeats(s)
        });
        let n = node.clone();
        tasks.add("cluster-controller", &shutdown, supervision, move |s| {
            n.clone().controller(s)
        });
        tasks.add("cluster-replicas", &shutdown, supervision, move |s| {
            node.clone().replicas(s)
        });
    }
    tasks
}

impl BackgroundTasks {
    fn add<F, Fut>(
        &mut self,
        name: &'static str,
        shutdown: &CancellationToken,
        supervision: Supervision,
        make: F,
    ) where
        F: Fn(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        #[cfg(test)]
        let fault = {
            let f = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            self.faults.push((name, f.clone()));
            f
        };
        #[cfg(test)]
        let make = move |s| with_fault(name, fault.clone(), make(s));
        let handle = tokio::spawn(supervise(name, shutdown.clone(), supervision, make));
        self.handles.push((name, handle));
    }
}

/// Runs `make(shutdown)` as a task until it ends at shutdown, restarting it after a panic as
/// `supervision` allows (see the module doc).
async fn supervise<F, Fut>(
    name: &'static str,
    shutdown: CancellationToken,
    supervision: Supervision,
    make: F,
) -> Result<(), TaskFailed>
where
    F: Fn(CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut recent: VecDeque<Instant> = VecDeque::new();
    loop {
        let reason = match tokio::spawn(make(shutdown.clone())).await {
            Ok(()) if shutdown.is_cancelled() => return Ok(()),
            Ok(()) => "ended while the broker was running".to_string(),
            // The runtime is shutting down.
            Err(e) if e.is_cancelled() => return Ok(()),
            Err(e) => format!("panicked: {}", panic_message(e.into_panic().as_ref())),
        };
        error!(task = name, reason = %reason, "background task failed");
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > supervision.window)
        {
            recent.pop_front();
        }
        if recent.len() >= supervision.max_restarts {
            error!(
                task = name,
                restarts = recent.len(),
                window_s = supervision.window.as_secs(),
                "background task keeps failing; shutting the broker down"
            );
            shutdown.cancel();
            return Err(TaskFailed { task: name, reason });
        }
        let backoff = supervision
            .backoff_initial
            .saturating_mul(1 << recent.len().min(20))
            .min(supervision.backoff_max);
        recent.push_back(now);
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
        warn!(
            task = name,
            after_ms = backoff.as_millis() as u64,
            "restarting background task"
        );
    }
}

/// The message a panic was raised with (`panic!("...")` carries a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Test-only: `fut`, made to panic at a poll while `fault` counts down.
#[cfg(test)]
fn with_fault<Fut>(
    name: &'static str,
    fault: Arc<std::sync::atomic::AtomicUsize>,
    fut: Fut,
) -> impl Future<Output = ()> + Send + 'static
where
    Fut: Future<Output = ()> + Send + 'static,
{
    use std::sync::atomic::Ordering;
    let mut fut = Box::pin(fut);
    std::future::poll_fn(move |cx| {
        let armed = fault
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if armed {
            panic!("injected fault in {name}");
        }
        fut.as_mut().poll(cx)
    })
}

/// Rolls by `segment.ms`, retention and producer expiry every
/// `log.retention.check.interval.ms` (on the blocking pool: it deletes files), and the
/// periodic `flush.ms` flush, until `shutdown`.
async fn maintenance(broker: Arc<Broker>, shutdown: CancellationToken) {
    let retention_every = Duration::from_millis(broker.config.retention_check_interval_ms);
    let flush_every = broker.config.flush_interval_ms;
    let tick = retention_every
        .min(Duration::from_secs(5))
        .max(Duration::from_millis(10));
    let mut last_retention = Instant::now();
    let mut last_flush = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.cancelled() => return,
        }
        if last_retention.elapsed() >= retention_every {
            last_retention = Instant::now();
            let b = broker.clone();
            let run = tokio::task::spawn_blocking(move || b.run_maintenance(crate::log::now_ms()));
            if let Err(e) = run.await {
                if e.is_panic() {
                    // This task's panic: the supervisor logs it and restarts the task.
                    std::panic::resume_unwind(e.into_panic());
                }
                return;
            }
        }
        if (0..i64::MAX).contains(&flush_every)
            && last_flush.elapsed() >= Duration::from_millis(flush_every as u64)
        {
            last_flush = Instant::now();
            for p in broker.replicas.all() {
                let end = p.log.log_end_offset();
                if let Err(e) = p.log.flush_to(end).await {
                    // A failed fsync poisons the log, which says so once; later flushes of it
                    // fail at once.
                    tracing::debug!(log = p.log.name(), error = %e, "periodic flush failed");
                }
            }
        }
    }
}

/// How long the binary waits for [`BackgroundTasks::join`] after shutdown.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(15);

#[cfg(test)]
mod tests;
