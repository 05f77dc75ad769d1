//! Replication throttles (Kafka's `ReplicationQuotaManager`): a byte rate measured over a
//! sliding window of one-second samples, and the bound it is held to. A broker has two: what
//! it serves as leader to out-of-sync followers of throttled replicas
//! (`leader.replication.throttled.rate`) and what it fetches as an out-of-sync follower of
//! them (`follower.replication.throttled.rate`); which replicas are throttled comes from the
//! topic configs `leader/follower.replication.throttled.replicas`, which
//! `kafka-reassign-partitions --throttle` sets for the moving partitions
//! ([`crate::config::topic::throttles`]). In-sync replicas are never held back, as in Kafka:
//! the throttle slows catching up, not acks=all produce.
//!
//! Like Kafka's `Rate`, the window is at least `SAMPLES - 1` seconds long, so a throttle
//! set on an idle broker lets a burst of up to about ten seconds' worth through before it
//! holds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

/// One-second samples in the window (Kafka's `replication.quota.window.num` default 11).
const SAMPLES: usize = 11;

/// A byte rate and its bound.
pub struct ReplicationQuota {
    /// Bytes per second; `u64::MAX` (or anything at least `i64::MAX`) is unbounded.
    limit: AtomicU64,
    start: Instant,
    /// (second since `start`, bytes in that second), ring-indexed by second.
    samples: Mutex<[(u64, u64); SAMPLES]>,
}

impl std::fmt::Debug for ReplicationQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationQuota")
            .field("limit", &self.limit())
            .finish_non_exhaustive()
    }
}

impl Default for ReplicationQuota {
    fn default() -> Self {
        Self::new(u64::MAX)
    }
}

impl ReplicationQuota {
    pub fn new(limit: u64) -> Self {
        ReplicationQuota {
            limit: AtomicU64::new(limit),
            start: Instant::now(),
            samples: Mutex::new([(u64::MAX, 0); SAMPLES]),
        }
    }

    pub fn set_limit(&self, bytes_per_s: u64) {
        self.limit.store(bytes_per_s, Ordering::Relaxed);
    }

    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    fn bounded(&self) -> bool {
        self.limit() < i64::MAX as u64
    }

    /// Counts `bytes` replicated now.
    pub fn record(&self, bytes: u64) {
        self.record_at(self.start.elapsed().as_secs_f64(), bytes);
    }

    /// Whether the measured rate is above the bound now.
    pub fn exceeded(&self) -> bool {
        self.bounded() && self.rate_at(self.start.elapsed().as_secs_f64()) > self.limit() as f64
    }

    fn record_at(&self, now_s: f64, bytes: u64) {
        let sec = now_s as u64;
        let mut s = self.samples.lock();
        let slot = &mut s[(sec % SAMPLES as u64) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 = slot.1.saturating_add(bytes);
    }

    /// Bytes per second over the samples still in the window.
    fn rate_at(&self, now_s: f64) -> f64 {
        let sec = now_s as u64;
        let oldest = sec.saturating_sub(SAMPLES as u64 - 1);
        let s = self.samples.lock();
        let bytes: u64 = s
            .iter()
            .filter(|(at, _)| *at != u64::MAX && *at >= oldest && *at <= sec)
            .map(|(_, b)| *b)
            .sum();
        // The window: from the start of the oldest sample to now, at least SAMPLES - 1 s.
        let span = (now_s - oldest as f64).max((SAMPLES - 1) as f64);
        bytes as f64 / span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbounded_never_holds() {
        let q = ReplicationQuota::default();
        q.record(u64::MAX / 2);
        assert!(!q.exceeded());
    }

    #[test]
    fn the_rate_is_measured_over_the_window() {
        let q = ReplicationQuota::new(1000);
        // 9,000 bytes within the first second: 900 B/s over the 10 s minimum window.
        q.record_at(0.5, 9_000);
        assert!(q.rate_at(0.6) <= 1000.0);
        q.record_at(0.7, 2_000);
        assert!(
            q.rate_at(0.8) > 1000.0,
            "11,000 B in a 10 s window is over 1,000 B/s"
        );
        // Eleven seconds later those samples have left the window.
        assert_eq!(q.rate_at(12.0), 0.0);
        // A steady 1,000 B/s stays at the bound.
        for s in 20..40 {
            q.record_at(s as f64, 1000);
        }
        let r = q.rate_at(40.0);
        assert!((900.0..=1100.0).contains(&r), "{r}");
    }

    #[test]
    fn a_new_limit_applies_at_once() {
        let q = ReplicationQuota::new(u64::MAX);
        q.record(50_000);
        assert!(!q.exceeded());
        q.set_limit(1_000);
        assert!(q.exceeded());
        q.set_limit(i64::MAX as u64);
        assert!(!q.exceeded());
    }
}
