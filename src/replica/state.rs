//! The replication state of one partition on its leader, as Kafka keeps it: the assigned
//! replicas, the in-sync replica set (ISR), each follower's log end offset and when it was last
//! caught up, and the high watermark — the offset below which every ISR member has the records,
//! and so what consumers may read.
//!
//! Kafka's rules (`Partition.scala`, `Replica.scala`), which this follows:
//! - the high watermark is the minimum log end offset over the ISR (the leader's own included)
//!   and never moves backwards while a leader leads;
//! - a follower is caught up when a fetch asks for an offset at or past the leader's log end
//!   offset as it was when the previous fetch was answered (it has everything the leader had);
//!   one that has not been caught up for `replica.lag.time.max.ms` is a candidate to leave the
//!   ISR, and one outside the ISR whose log end reached the high watermark (and whose fetch is
//!   of the current leader epoch) is a candidate to join it. Changing the ISR is the
//!   controller's decision (AlterPartition); this state only proposes and then applies it.
//! - `min.insync.replicas` is checked against the ISR size for acks=all.
//!
//! On a single node the ISR is the leader alone, so the high watermark is the log end offset
//! after every append.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerState {
    /// The offset the follower fetched from last: it has every record below it (-1: unknown
    /// since this leadership began).
    pub log_end_offset: i64,
    /// When the follower was last caught up (see the module docs).
    pub last_caught_up: Instant,
    /// The leader's log end offset when it answered the follower's previous fetch.
    last_fetch_leader_end: i64,
    last_fetch: Instant,
}

/// A proposed ISR change, to be made by the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub isr: Vec<i32>,
}

#[derive(Debug, Clone)]
pub struct LeaderState {
    pub node: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader_epoch: i32,
    followers: BTreeMap<i32, FollowerState>,
    high_watermark: i64,
    /// Followers proposed to join the ISR and not yet committed: the high watermark waits for
    /// them too (Kafka's maximal ISR), so a member the controller adds already holds every
    /// record below the high watermark and may be elected without losing any.
    pending: Vec<i32>,
}

impl LeaderState {
    /// A leadership of `node` starting now, with the high watermark it had (a new leader keeps
    /// its checkpointed high watermark; followers' positions are unknown until they fetch).
    pub fn new(
        node: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader_epoch: i32,
        high_watermark: i64,
        now: Instant,
    ) -> Self {
        let followers = replicas
            .iter()
            .filter(|r| **r != node)
            .map(|r| {
                (
                    *r,
                    FollowerState {
                        log_end_offset: -1,
                        last_caught_up: now,
                        last_fetch_leader_end: -1,
                        last_fetch: now,
                    },
                )
            })
            .collect();
        LeaderState {
            node,
            replicas,
            isr,
            leader_epoch,
            followers,
            high_watermark,
            pending: Vec::new(),
        }
    }

    /// A single node's partition: it is the only replica.
    pub fn single(node: i32, leader_epoch: i32, log_end_offset: i64) -> Self {
        Self::new(
            node,
            vec![node],
            vec![node],
            leader_epoch,
            log_end_offset,
            Instant::now(),
        )
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn follower(&self, replica: i32) -> Option<&FollowerState> {
        self.followers.get(&replica)
    }

    /// Recomputes the high watermark from the ISR members' log end offsets (`leader_end`: the
    /// leader's own). Returns whether it moved (delayed fetches and produces should look).
    pub fn maybe_advance_high_watermark(&mut self, leader_end: i64) -> bool {
        let mut hw = leader_end;
        for r in self.isr.iter().chain(&self.pending) {
            if *r == self.node {
                continue;
            }
            match self.followers.get(r) {
                Some(f) => hw = hw.min(f.log_end_offset),
                // An ISR member this leader does not know (the assignment changed): hold.
                None => return false,
            }
        }
        if hw > self.high_watermark {
            self.high_watermark = hw;
            return true;
        }
        false
    }

    /// A fetch from follower `replica` at `fetch_offset` (so it has every record below it),
    /// answered when the leader's log ends at `leader_end`. Returns whether the high watermark
    /// moved, and an ISR expansion to propose when the follower has caught up to it.
    pub fn on_follower_fetch(
        &mut self,
        replica: i32,
        fetch_offset: i64,
        leader_end: i64,
        now: Instant,
    ) -> (bool, Option<IsrChange>) {
        let Some(f) = self.followers.get_mut(&replica) else {
            return (false, None);
        };
        if fetch_offset >= leader_end {
            f.last_caught_up = now;
        } else if f.last_fetch_leader_end >= 0 && fetch_offset >= f.last_fetch_leader_end {
            // It has everything the leader had when the previous fetch was answered.
            f.last_caught_up = f.last_fetch;
        }
        f.log_end_offset = fetch_offset;
        f.last_fetch_leader_end = leader_end;
        f.last_fetch = now;
        let moved = self.maybe_advance_high_watermark(leader_end);
        let expand =
            (!self.isr.contains(&replica) && fetch_offset >= self.high_watermark).then(|| {
                let mut isr = self.isr.clone();
                isr.push(replica);
                isr.sort_unstable();
                IsrChange { isr }
            });
        (moved, expand)
    }

    /// The ISR without the followers not caught up for `max_lag` (None: nothing to shrink).
    /// The leader itself always stays.
    pub fn isr_shrink(&self, now: Instant, max_lag: Duration) -> Option<IsrChange> {
        let keep: Vec<i32> =
            self.isr
                .iter()
                .copied()
                .filter(|r| {
                    *r == self.node
                        || self.followers.get(r).is_some_and(|f| {
                            now.saturating_duration_since(f.last_caught_up) <= max_lag
                        })
                })
                .collect();
        (keep.len() < self.isr.len()).then_some(IsrChange { isr: keep })
    }

    /// Applies a replica set the controller committed (a reassignment): joining replicas are
    /// tracked from now on (position unknown until they fetch), leaving ones forgotten.
    pub fn set_replicas(&mut self, replicas: Vec<i32>, now: Instant) {
        self.followers.retain(|r, _| replicas.contains(r));
        for r in &replicas {
            if *r != self.node && !self.followers.contains_key(r) {
                self.followers.insert(
                    *r,
                    FollowerState {
                        log_end_offset: -1,
                        last_caught_up: now,
                        last_fetch_leader_end: -1,
                        last_fetch: now,
                    },
                );
            }
        }
        self.pending.retain(|r| replicas.contains(r));
        self.replicas = replicas;
    }

    /// Applies an ISR the controller committed (or confirms the one in force after a proposal
    /// was refused); proposals pending end. The high watermark may move (a smaller ISR).
    pub fn set_isr(&mut self, isr: Vec<i32>, leader_end: i64) -> bool {
        self.isr = isr;
        self.pending.clear();
        self.maybe_advance_high_watermark(leader_end)
    }

    /// The ISR change this leader should propose now, if any: followers not caught up for
    /// `max_lag` leave; otherwise followers whose log reached the high watermark, caught up
    /// within `max_lag` and `eligible` (registered, unfenced) join. A proposed addition counts
    /// for the high watermark from now on (see `pending`) until [`LeaderState::set_isr`].
    pub fn isr_proposal(
        &mut self,
        now: Instant,
        max_lag: Duration,
        eligible: &dyn Fn(i32) -> bool,
    ) -> Option<IsrChange> {
        if let Some(shrink) = self.isr_shrink(now, max_lag) {
            return Some(shrink);
        }
        let joining: Vec<i32> = self
            .followers
            .iter()
            .filter(|(r, f)| {
                !self.isr.contains(r)
                    && f.log_end_offset >= 0
                    && f.log_end_offset >= self.high_watermark
                    && now.saturating_duration_since(f.last_caught_up) <= max_lag
                    && eligible(**r)
            })
            .map(|(r, _)| *r)
            .collect();
        if joining.is_empty() {
            return None;
        }
        for r in &joining {
            if !self.pending.contains(r) {
                self.pending.push(*r);
            }
        }
        let mut isr = self.isr.clone();
        isr.extend(joining);
        isr.sort_unstable();
        Some(IsrChange { isr })
    }

    /// Whether acks=all may be accepted: the ISR has at least `min_insync` members.
    pub fn enough_replicas(&self, min_insync: usize) -> bool {
        self.isr.len() >= min_insync
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three(now: Instant) -> LeaderState {
        LeaderState::new(1, vec![1, 2, 3], vec![1, 2, 3], 5, 0, now)
    }

    #[test]
    fn a_single_node_high_watermark_is_its_log_end() {
        let mut s = LeaderState::single(1, 0, 10);
        assert_eq!(s.high_watermark(), 10);
        assert!(s.maybe_advance_high_watermark(15));
        assert_eq!(s.high_watermark(), 15);
        assert!(!s.maybe_advance_high_watermark(12), "never backwards");
        assert_eq!(s.high_watermark(), 15);
    }

    #[test]
    fn the_high_watermark_is_the_minimum_over_the_isr() {
        let t0 = Instant::now();
        let mut s = three(t0);
        assert!(
            !s.maybe_advance_high_watermark(10),
            "followers unknown: hold"
        );
        let (moved, _) = s.on_follower_fetch(2, 10, 10, t0);
        assert!(!moved, "follower 3 still unknown");
        let (moved, _) = s.on_follower_fetch(3, 7, 10, t0);
        assert!(moved);
        assert_eq!(s.high_watermark(), 7);
        s.on_follower_fetch(3, 10, 10, t0);
        assert_eq!(s.high_watermark(), 10);
        // Follower 3 leaves the ISR: the high watermark follows 1 and 2 alone.
        s.on_follower_fetch(2, 14, 14, t0);
        assert!(s.set_isr(vec![1, 2], 14));
        assert_eq!(s.high_watermark(), 14);
    }

    #[test]
    fn a_follower_that_stops_catching_up_is_proposed_out_and_comes_back_when_caught_up() {
        let t0 = Instant::now();
        let lag = Duration::from_secs(30);
        let mut s = three(t0);
        s.on_follower_fetch(2, 0, 0, t0);
        s.on_follower_fetch(3, 0, 0, t0);
        // Follower 2 keeps up; follower 3 fetches old offsets only.
        let t1 = t0 + Duration::from_secs(20);
        s.on_follower_fetch(2, 100, 100, t1);
        s.on_follower_fetch(3, 10, 100, t1);
        assert_eq!(s.isr_shrink(t1, lag), None);
        let t2 = t0 + Duration::from_secs(31);
        s.on_follower_fetch(2, 100, 100, t2);
        assert_eq!(s.isr_shrink(t2, lag), Some(IsrChange { isr: vec![1, 2] }));
        s.set_isr(vec![1, 2], 100);
        // Follower 3 reaches the high watermark: proposed back in.
        let (_, expand) = s.on_follower_fetch(3, 100, 100, t2);
        assert_eq!(expand, Some(IsrChange { isr: vec![1, 2, 3] }));
        assert!(s.enough_replicas(2) && !s.enough_replicas(3));
    }

    #[test]
    fn a_proposed_member_holds_the_high_watermark_until_the_isr_is_set() {
        let t0 = Instant::now();
        let lag = Duration::from_secs(10);
        let mut s = LeaderState::new(1, vec![1, 2, 3], vec![1, 2], 0, 0, t0);
        s.maybe_advance_high_watermark(10);
        s.on_follower_fetch(2, 10, 10, t0);
        assert_eq!(s.high_watermark(), 10);
        s.on_follower_fetch(3, 10, 10, t0);
        assert_eq!(
            s.isr_proposal(t0, lag, &|_| true),
            Some(IsrChange { isr: vec![1, 2, 3] })
        );
        // 2 has 20, 3 only 15: while 3's addition is pending the high watermark waits for it.
        s.on_follower_fetch(2, 20, 20, t0);
        s.on_follower_fetch(3, 15, 20, t0);
        assert_eq!(s.high_watermark(), 15);
        s.set_isr(vec![1, 2], 20);
        assert_eq!(s.high_watermark(), 20);
        // Not eligible (fenced): not proposed.
        let mut s = LeaderState::new(1, vec![1, 2], vec![1], 0, 0, t0);
        s.on_follower_fetch(2, 0, 0, t0);
        assert_eq!(s.isr_proposal(t0, lag, &|r| r != 2), None);
    }

    #[test]
    fn fetching_what_the_leader_had_at_the_previous_answer_counts_as_caught_up() {
        let t0 = Instant::now();
        let lag = Duration::from_secs(10);
        let mut s = three(t0);
        s.on_follower_fetch(3, 0, 0, t0);
        // The leader keeps growing, so the follower never fetches at the current end, but each
        // fetch has what the leader had when the previous one was answered.
        let mut end = 0;
        for i in 1..=20u64 {
            let now = t0 + Duration::from_secs(i);
            let prev = end;
            end += 50;
            s.on_follower_fetch(3, prev, end, now);
            s.on_follower_fetch(2, end, end, now);
        }
        assert_eq!(s.isr_shrink(t0 + Duration::from_secs(20), lag), None);
    }
}
