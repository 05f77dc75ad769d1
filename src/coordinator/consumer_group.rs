//! A KIP-848 consumer group (`group.protocol=consumer`): the broker computes the assignment.
//!
//! Epochs: the group epoch moves on every membership or subscription change (including a
//! subscribed topic gaining partitions); the target assignment is recomputed by the group's
//! server-side assignor when it lags the group epoch. Each member is reconciled towards its
//! target on its heartbeats: partitions it must give up are revoked first (its epoch stays),
//! and only once it reports them released does it move to the target epoch and receive new
//! partitions; a partition still held by another member is handed over only after that member
//! released it. Members that stop heartbeating (session timeout) or do not revoke in time
//! (rebalance timeout) are removed.
//!
//! Known gap: membership is kept in memory only; after a broker restart members get
//! UNKNOWN_MEMBER_ID and rejoin (committed offsets are durable and survive).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::coordinator::assignor::{self, Assignment, MemberSpec};
use crate::protocol::WireError;

/// What the coordinator knows of the cluster's topics for one heartbeat.
pub struct TopicsView {
    pub by_name: BTreeMap<String, (Uuid, i32)>,
}

impl TopicsView {
    pub fn name_of(&self, id: &Uuid) -> Option<&str> {
        self.by_name
            .iter()
            .find(|(_, (i, _))| i == id)
            .map(|(n, _)| n.as_str())
    }
}

pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub subscribed_names: Vec<String>,
    pub subscribed_regex: Option<String>,
    pub epoch: i32,
    previous_epoch: i32,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    session_deadline: Instant,
    revocation_deadline: Option<Instant>,
    /// Last assignment sent, so unchanged assignments are not repeated.
    last_sent: Option<Assignment>,
}

pub struct ConsumerGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Assignment>,
    /// Partition counts of the subscribed topics at the last epoch bump.
    subscribed_metadata: BTreeMap<Uuid, i32>,
}

pub struct HeartbeatRequest {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_names: Option<Vec<String>>,
    pub subscribed_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// Partitions the member says it owns (null: unchanged).
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
    /// v0: the broker generates the member id on join.
    pub generate_id: bool,
}

pub struct HeartbeatResponse {
    pub member_id: String,
    pub member_epoch: i32,
    pub assignment: Option<Assignment>,
}

pub struct ConsumerLimits {
    pub session_timeout_ms: u64,
    pub max_size: usize,
}

pub type HeartbeatError = (i16, String);

impl ConsumerGroup {
    pub fn new() -> Self {
        ConsumerGroup {
            group_epoch: 0,
            assignment_epoch: 0,
            assignor: assignor::ASSIGNORS[0].to_string(),
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            subscribed_metadata: BTreeMap::new(),
        }
    }

    /// Kafka's consumer-group state names.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.group_epoch {
            "Assigning"
        } else if self.members.values().any(|m| {
            m.epoch != self.assignment_epoch
                || self.target.get(&m.id).is_some_and(|t| *t != m.assigned)
        }) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    pub fn heartbeat(
        &mut self,
        req: HeartbeatRequest,
        topics: &TopicsView,
        limits: &ConsumerLimits,
        now: Instant,
    ) -> Result<HeartbeatResponse, HeartbeatError> {
        if let Some(a) = &req.server_assignor {
            if !assignor::ASSIGNORS.contains(&a.as_str()) {
                return Err((
                    WireError::UnsupportedAssignor.code(),
                    format!("Assignor {a} is not supported. Supported assignors: uniform, range."),
                ));
            }
        }
        if let Some(re) = &req.subscribed_regex {
            if regex::Regex::new(re).is_err() {
                return Err((
                    WireError::InvalidRegularExpression.code(),
                    format!("SubscribedTopicRegex `{re}` is not a valid regular expression."),
                ));
            }
        }
        let session = Duration::from_millis(limits.session_timeout_ms);
        if req.member_epoch < 0 {
            // -1: leave; -2: a static member leaving temporarily (treated as a leave).
            if self.members.remove(&req.member_id).is_some() {
                self.target.remove(&req.member_id);
                self.group_epoch += 1;
            }
            return Ok(HeartbeatResponse {
                member_id: req.member_id,
                member_epoch: req.member_epoch,
                assignment: None,
            });
        }
        let id = if req.member_epoch == 0 {
            if req.subscribed_names.is_none() && req.subscribed_regex.is_none() {
                return Err((
                    WireError::InvalidRequest.code(),
                    "SubscribedTopicNames or SubscribedTopicRegex must be set in first request."
                        .into(),
                ));
            }
            let id = if req.member_id.is_empty() {
                if !req.generate_id {
                    return Err((
                        WireError::InvalidRequest.code(),
                        "MemberId can't be empty.".into(),
                    ));
                }
                Uuid::new_v4().to_string()
            } else {
                req.member_id.clone()
            };
            if !self.members.contains_key(&id) && self.members.len() >= limits.max_size {
                return Err((
                    WireError::GroupMaxSizeReached.code(),
                    "The consumer group has reached its maximum capacity.".into(),
                ));
            }
            // A static member coming back replaces its previous incarnation.
            if let Some(instance) = &req.instance_id {
                let old: Vec<String> = self
                    .members
                    .values()
                    .filter(|m| m.instance_id.as_ref() == Some(instance) && m.id != id)
                    .map(|m| m.id.clone())
                    .collect();
                for o in old {
                    self.members.remove(&o);
                    self.target.remove(&o);
                }
            }
            // A (re)join starts from nothing.
            self.members.remove(&id);
            self.members.insert(
                id.clone(),
                ConsumerMember {
                    id: id.clone(),
                    instance_id: req.instance_id.clone(),
                    rack_id: req.rack_id.clone(),
                    client_id: req.client_id.clone(),
                    client_host: req.client_host.clone(),
                    rebalance_timeout_ms: if req.rebalance_timeout_ms >= 0 {
                        req.rebalance_timeout_ms
                    } else {
                        300_000
                    },
                    subscribed_names: Vec::new(),
                    subscribed_regex: None,
                    epoch: 0,
                    previous_epoch: 0,
                    assigned: Assignment::new(),
                    pending_revocation: Assignment::new(),
                    session_deadline: now + session,
                    revocation_deadline: None,
                    last_sent: None,
                },
            );
            self.group_epoch += 1;
            id
        } else {
            let Some(m) = self.members.get(&req.member_id) else {
                return Err((
                    WireError::UnknownMemberId.code(),
                    format!("Member {} is not a member of the group.", req.member_id),
                ));
            };
            let owned_ok = req
                .owned
                .as_ref()
                .is_none_or(|o| assignor::minus(o, &m.assigned).is_empty());
            if req.member_epoch != m.epoch && !(req.member_epoch == m.previous_epoch && owned_ok) {
                return Err((WireError::FencedMemberEpoch.code(), format!("The consumer group member has a smaller member epoch ({}) than the one known by the group coordinator ({}).", req.member_epoch, m.epoch)));
            }
            req.member_id.clone()
        };
        let m = self.members.get_mut(&id).expect("member present");
        m.session_deadline = now + session;
        // -1 (and every null field) means "unchanged" after the join.
        if req.rebalance_timeout_ms >= 0 {
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        if req.rack_id.is_some() {
            m.rack_id = req.rack_id.clone();
        }
        let mut changed = false;
        if let Some(names) = req.subscribed_names {
            let mut names = names;
            names.sort();
            names.dedup();
            if names != m.subscribed_names {
                m.subscribed_names = names;
                changed = true;
            }
        }
        if req.subscribed_regex.is_some() && req.subscribed_regex != m.subscribed_regex {
            m.subscribed_regex = req.subscribed_regex.filter(|r| !r.is_empty());
            changed = true;
        }
        if let Some(owned) = &req.owned {
            if !m.pending_revocation.is_empty()
                && assignor::intersect(owned, &m.pending_revocation).is_empty()
            {
                m.pending_revocation.clear();
                m.revocation_deadline = None;
            }
        }
        if let Some(a) = req.server_assignor {
            if a != self.assignor {
                self.assignor = a;
                changed = true;
            }
        }
        if changed {
            self.group_epoch += 1;
        }
        self.refresh_metadata(topics);
        if self.assignment_epoch < self.group_epoch {
            self.compute_target(topics);
        }
        self.reconcile(&id, now);
        let m = self.members.get_mut(&id).expect("member present");
        let assignment = if m.last_sent.as_ref() != Some(&m.assigned) || req.member_epoch == 0 {
            m.last_sent = Some(m.assigned.clone());
            Some(m.assigned.clone())
        } else {
            None
        };
        Ok(HeartbeatResponse {
            member_id: id,
            member_epoch: m.epoch,
            assignment,
        })
    }

    /// Topic ids each member subscribes to (names and regex), among existing topics.
    fn subscriptions(&self, topics: &TopicsView) -> BTreeMap<String, BTreeSet<Uuid>> {
        self.members
            .values()
            .map(|m| {
                let re = m
                    .subscribed_regex
                    .as_ref()
                    .and_then(|r| regex::Regex::new(&format!("^(?:{r})$")).ok());
                let ids = topics
                    .by_name
                    .iter()
                    .filter(|(name, _)| {
                        m.subscribed_names.contains(name)
                            || (re.as_ref().is_some_and(|re| re.is_match(name))
                                && !crate::metadata::is_internal_topic(name))
                    })
                    .map(|(_, (id, _))| *id)
                    .collect();
                (m.id.clone(), ids)
            })
            .collect()
    }

    fn refresh_metadata(&mut self, topics: &TopicsView) {
        let subs = self.subscriptions(topics);
        let all: BTreeSet<Uuid> = subs.values().flatten().copied().collect();
        let meta: BTreeMap<Uuid, i32> = topics
            .by_name
            .values()
            .filter(|(id, _)| all.contains(id))
            .map(|(id, n)| (*id, *n))
            .collect();
        if meta != self.subscribed_metadata {
            self.subscribed_metadata = meta;
            self.group_epoch += 1;
        }
    }

    fn compute_target(&mut self, topics: &TopicsView) {
        let subs = self.subscriptions(topics);
        let specs: Vec<MemberSpec<'_>> = self
            .members
            .values()
            .map(|m| MemberSpec {
                member_id: &m.id,
                topics: subs.get(&m.id).cloned().unwrap_or_default(),
                current: &m.assigned,
            })
            .collect();
        self.target = assignor::assign(&self.assignor, &specs, &self.subscribed_metadata);
        self.assignment_epoch = self.group_epoch;
    }

    /// Moves one member towards its target: revoke first, then assign what is free.
    fn reconcile(&mut self, id: &str, now: Instant) {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let held_by_others: Assignment =
            self.members
                .values()
                .filter(|o| o.id != id)
                .fold(Assignment::new(), |mut acc, o| {
                    for (t, ps) in o.assigned.iter().chain(o.pending_revocation.iter()) {
                        acc.entry(*t).or_default().extend(ps.iter().copied());
                    }
                    acc
                });
        let assignment_epoch = self.assignment_epoch;
        let m = self.members.get_mut(id).expect("member present");
        if !m.pending_revocation.is_empty() {
            return;
        }
        let revoke = assignor::minus(&m.assigned, &target);
        if !revoke.is_empty() {
            m.assigned = assignor::intersect(&m.assigned, &target);
            m.pending_revocation = revoke;
            m.revocation_deadline =
                Some(now + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64));
            return;
        }
        let free = assignor::minus(&target, &held_by_others);
        if m.epoch != assignment_epoch {
            m.previous_epoch = m.epoch;
            m.epoch = assignment_epoch;
        }
        m.assigned = free;
    }

    /// Expires members whose session ended or who did not revoke in time. Returns true if any.
    pub fn tick(&mut self, now: Instant) -> bool {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline <= now || m.revocation_deadline.is_some_and(|d| d <= now)
            })
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            tracing::info!(member = %id, "consumer group member expired");
            self.members.remove(id);
            self.target.remove(id);
        }
        if !gone.is_empty() {
            self.group_epoch += 1;
        }
        !gone.is_empty()
    }

    /// OffsetCommit/OffsetFetch validation of a member epoch (KIP-848 rules).
    pub fn validate_member_epoch(&self, member_id: &str, epoch: i32) -> Result<(), i16> {
        let Some(m) = self.members.get(member_id) else {
            return Err(WireError::UnknownMemberId.code());
        };
        if epoch > m.epoch {
            return Err(WireError::FencedMemberEpoch.code());
        }
        if epoch < m.epoch {
            return Err(WireError::StaleMemberEpoch.code());
        }
        Ok(())
    }
}

impl Default for ConsumerGroup {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> TopicsView {
        TopicsView {
            by_name: [("t".to_string(), (Uuid::from_u128(7), 4))]
                .into_iter()
                .collect(),
        }
    }

    fn hb(id: &str, epoch: i32, owned: Option<Assignment>) -> HeartbeatRequest {
        HeartbeatRequest {
            member_id: id.into(),
            member_epoch: epoch,
            instance_id: None,
            rack_id: None,
            rebalance_timeout_ms: if epoch == 0 { 1000 } else { -1 },
            subscribed_names: if epoch == 0 {
                Some(vec!["t".into()])
            } else {
                None
            },
            subscribed_regex: None,
            server_assignor: None,
            owned,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            generate_id: false,
        }
    }

    #[test]
    fn join_then_second_member_revokes_before_assign() {
        let limits = ConsumerLimits {
            session_timeout_ms: 45_000,
            max_size: 10,
        };
        let mut g = ConsumerGroup::new();
        let t0 = Instant::now();
        let a = g
            .heartbeat(hb("a", 0, None), &topics(), &limits, t0)
            .expect("join a");
        assert_eq!(
            assignor::size(a.assignment.as_ref().expect("assignment")),
            4
        );
        let ea = a.member_epoch;
        let b = g
            .heartbeat(hb("b", 0, None), &topics(), &limits, t0)
            .expect("join b");
        assert_eq!(
            assignor::size(b.assignment.as_ref().expect("assignment")),
            0,
            "a still holds everything"
        );
        // a heartbeats: told to revoke two partitions, epoch unchanged.
        let a2 = g
            .heartbeat(
                hb("a", ea, Some(a.assignment.clone().expect("a"))),
                &topics(),
                &limits,
                t0,
            )
            .expect("hb a");
        assert_eq!(a2.member_epoch, ea);
        let kept = a2.assignment.expect("new assignment");
        assert!(
            !g.tick(t0 + Duration::from_millis(500)),
            "revoking member keeps its rebalance timeout"
        );
        assert_eq!(assignor::size(&kept), 2);
        // a acks (owns only what it kept): moves to the new epoch.
        let a3 = g
            .heartbeat(hb("a", ea, Some(kept.clone())), &topics(), &limits, t0)
            .expect("hb a");
        assert!(a3.member_epoch > ea);
        // b now gets the released partitions.
        let b2 = g
            .heartbeat(
                hb("b", b.member_epoch, Some(Assignment::new())),
                &topics(),
                &limits,
                t0,
            )
            .expect("hb b");
        assert_eq!(
            assignor::size(b2.assignment.as_ref().expect("assignment")),
            2
        );
        assert_eq!(g.state(), "Stable");
        assert_eq!(g.validate_member_epoch("b", b2.member_epoch), Ok(()));
        // b's session expires.
        assert!(g.tick(t0 + Duration::from_secs(46)));
        assert!(g.members.is_empty());
    }

    #[test]
    fn fenced_epoch_and_unknown_member() {
        let limits = ConsumerLimits {
            session_timeout_ms: 45_000,
            max_size: 10,
        };
        let mut g = ConsumerGroup::new();
        let t0 = Instant::now();
        let a = g
            .heartbeat(hb("a", 0, None), &topics(), &limits, t0)
            .expect("join");
        let e = g
            .heartbeat(hb("a", a.member_epoch + 5, None), &topics(), &limits, t0)
            .err()
            .expect("fenced");
        assert_eq!(e.0, WireError::FencedMemberEpoch.code());
        let e = g
            .heartbeat(hb("zz", 3, None), &topics(), &limits, t0)
            .err()
            .expect("unknown");
        assert_eq!(e.0, WireError::UnknownMemberId.code());
        let mut bad = hb("b", 0, None);
        bad.server_assignor = Some("nope".into());
        assert_eq!(
            g.heartbeat(bad, &topics(), &limits, t0).err().map(|e| e.0),
            Some(WireError::UnsupportedAssignor.code())
        );
    }
}
