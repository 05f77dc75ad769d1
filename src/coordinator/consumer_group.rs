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
//! Durability: every change is tracked as it happens (see `Dirty`) and the coordinator drains
//! it after each operation into Kafka's consumer-group records ([`records`]), appended to
//! `__consumer_offsets` before the response; a heartbeat that changes nothing writes nothing.
//! Replaying those records at start restores members, epochs and assignments, so members carry
//! on with their epochs after a restart; their session timeouts start again at load.
//! The group's server assignor is the one most members ask for (Kafka's rule), so it is
//! derived from the persisted members rather than stored.

mod classic;
mod records;

pub use classic::{ClassicJoinOk, DowngradedMember, CONSUMER_PROTOCOL_TYPE};

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

/// The member epoch of a static member that left temporarily (KIP-848).
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;
/// A dynamic member leaving the group (ConsumerGroupHeartbeat MemberEpoch).
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;

pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub subscribed_names: Vec<String>,
    pub subscribed_regex: Option<String>,
    /// The assignor this member asked for (None: the group's default).
    pub server_assignor: Option<String>,
    pub epoch: i32,
    previous_epoch: i32,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    session_deadline: Instant,
    revocation_deadline: Option<Instant>,
    /// Last assignment sent, so unchanged assignments are not repeated.
    last_sent: Option<Assignment>,
    /// Set for a member that uses the classic protocol (JoinGroup/SyncGroup/Heartbeat) inside
    /// this consumer group (online migration).
    pub classic: Option<classic::ClassicMeta>,
}

pub struct ConsumerGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: assignor::Assignor,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Assignment>,
    /// Names and partition counts of the subscribed topics at the last epoch bump.
    subscribed_metadata: BTreeMap<Uuid, (String, i32)>,
    /// Changes not yet turned into records.
    dirty: Dirty,
}

/// What changed since the coordinator last drained the group's records. The two epochs are
/// compared with their last persisted values instead of being flagged.
#[derive(Default)]
struct Dirty {
    persisted_group_epoch: i32,
    persisted_assignment_epoch: i32,
    metadata: bool,
    /// Members whose subscription record (5) changed.
    members: BTreeSet<String>,
    /// Members whose current-assignment record (8) changed.
    current: BTreeSet<String>,
    /// Members whose target assignment (7) changed or went away.
    targets: BTreeSet<String>,
    /// Members removed from the group (tombstones 8, 7, 5).
    removed: BTreeSet<String>,
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
            assignor: assignor::Assignor::ALL[0],
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            subscribed_metadata: BTreeMap::new(),
            dirty: Dirty::default(),
        }
    }

    /// Moves the group epoch on for a change of membership, subscriptions or subscribed topics.
    /// One bump covers every change until the target assignment is next computed, so a
    /// heartbeat that creates a member, sets its subscription and finds new topics moves the
    /// epoch by one, as in Kafka (which bumps once per heartbeat).
    fn bump_epoch(&mut self) {
        if self.assignment_epoch >= self.group_epoch {
            self.group_epoch += 1;
        }
    }

    /// Removes a member and its target assignment, remembering to write their tombstones.
    fn remove_member(&mut self, id: &str) -> bool {
        let known = self.members.remove(id).is_some();
        if known {
            self.target.remove(id);
            self.dirty.removed.insert(id.to_string());
            self.dirty.members.remove(id);
            self.dirty.current.remove(id);
            self.dirty.targets.remove(id);
        }
        known
    }

    /// Kafka's rule: the assignor most members ask for (ties: the first in
    /// [`assignor::Assignor::ALL`]), the default when nobody asks.
    fn preferred_assignor(&self) -> assignor::Assignor {
        let mut counts = [0usize; assignor::Assignor::ALL.len()];
        for m in self.members.values() {
            if let Some(i) = m
                .server_assignor
                .as_deref()
                .and_then(|a| assignor::Assignor::ALL.iter().position(|x| x.name() == a))
            {
                counts[i] += 1;
            }
        }
        let mut best = 0;
        for (i, c) in counts.iter().enumerate() {
            if *c > counts[best] {
                best = i;
            }
        }
        assignor::Assignor::ALL[best]
    }

    /// The member that owns a static member's instance id.
    fn static_owner(&self, instance: &str) -> Option<&ConsumerMember> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance))
    }

    /// A request naming `instance` must come from the member owning it (Kafka's
    /// UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID for heartbeats and leaves of static members).
    fn check_static_owner(&self, instance: &str, member_id: &str) -> Result<(), HeartbeatError> {
        match self.static_owner(instance) {
            None => Err((
                WireError::UnknownMemberId.code(),
                format!("Instance id {instance} is unknown."),
            )),
            Some(o) if o.id != member_id => Err((
                WireError::FencedInstanceId.code(),
                format!(
                    "Static member {member_id} with instance id {instance} was fenced by member {}.",
                    o.id
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Kafka's consumer-group state names.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.group_epoch {
            "Assigning"
        } else if self.members.values().any(|m| {
            m.epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH && m.epoch != self.assignment_epoch
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
            if assignor::Assignor::from_name(a).is_none() {
                return Err((
                    WireError::UnsupportedAssignor.code(),
                    format!(
                        "ServerAssignor {a} is not supported. Supported assignors: {}.",
                        assignor::Assignor::names()
                    ),
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
            if let Some(instance) = &req.instance_id {
                self.check_static_owner(instance, &req.member_id)?;
                if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                    // A static member leaving temporarily (KIP-848): it keeps its partitions,
                    // and the group its epoch, until its session ends or a new incarnation
                    // with the same instance id takes its place.
                    let m = self.members.get_mut(&req.member_id).expect("static owner");
                    if m.epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                        m.previous_epoch = m.epoch;
                        m.epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
                        self.dirty.current.insert(req.member_id.clone());
                    }
                    return Ok(HeartbeatResponse {
                        member_id: req.member_id,
                        member_epoch: req.member_epoch,
                        assignment: None,
                    });
                }
            }
            // -1: leave (a -2 without an instance id is refused by the handler, as in Kafka).
            if self.remove_member(&req.member_id) {
                self.bump_epoch();
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
                new_member_id()
            } else {
                req.member_id.clone()
            };
            if !self.members.contains_key(&id) && self.members.len() >= limits.max_size {
                return Err((
                    WireError::GroupMaxSizeReached.code(),
                    "The consumer group has reached its maximum capacity.".into(),
                ));
            }
            // A new incarnation of a static member replaces the previous one only once that
            // one left with epoch -2 (or expired, which removed it), as in Kafka: it takes
            // over its subscription and target assignment without a rebalance. A classic
            // member's instance id (online migration) is taken over at once, as Kafka does.
            let mut replaced = None;
            if let Some(instance) = &req.instance_id {
                if let Some(owner) = self.static_owner(instance).filter(|o| o.id != id) {
                    if owner.classic.is_none() && owner.epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                        return Err((
                            WireError::UnreleasedInstanceId.code(),
                            format!(
                                "Static member {id} with instance id {instance} cannot join the group because the instance id is owned by {} member.",
                                owner.id
                            ),
                        ));
                    }
                    let owner_id = owner.id.clone();
                    let subscription = (
                        owner.subscribed_names.clone(),
                        owner.subscribed_regex.clone(),
                        owner.server_assignor.clone(),
                        owner.rack_id.clone(),
                    );
                    let target = self.target.get(&owner_id).cloned();
                    self.remove_member(&owner_id);
                    tracing::info!(member = %id, replaced = %owner_id, instance = %instance, "static member rejoined under a new member id");
                    replaced = Some((subscription, target));
                }
            }
            // A (re)join starts from nothing.
            self.members.remove(&id);
            self.dirty.removed.remove(&id);
            let static_replacement = replaced.is_some();
            let (names, regex, assignor, rack, target) = match replaced {
                Some(((names, regex, assignor, rack), target)) => {
                    (names, regex, assignor, rack, target)
                }
                None => (Vec::new(), None, None, req.rack_id.clone(), None),
            };
            if let Some(t) = target {
                self.target.insert(id.clone(), t);
                self.dirty.targets.insert(id.clone());
            }
            self.members.insert(
                id.clone(),
                ConsumerMember {
                    id: id.clone(),
                    instance_id: req.instance_id.clone(),
                    rack_id: rack,
                    client_id: req.client_id.clone(),
                    client_host: req.client_host.clone(),
                    rebalance_timeout_ms: if req.rebalance_timeout_ms >= 0 {
                        req.rebalance_timeout_ms
                    } else {
                        300_000
                    },
                    subscribed_names: names,
                    subscribed_regex: regex,
                    server_assignor: assignor,
                    epoch: 0,
                    previous_epoch: 0,
                    assigned: Assignment::new(),
                    pending_revocation: Assignment::new(),
                    session_deadline: now + session,
                    revocation_deadline: None,
                    last_sent: None,
                    classic: None,
                },
            );
            self.dirty.members.insert(id.clone());
            self.dirty.current.insert(id.clone());
            if !static_replacement {
                self.bump_epoch();
            }
            id
        } else {
            if let Some(instance) = &req.instance_id {
                self.check_static_owner(instance, &req.member_id)?;
            }
            let Some(m) = self
                .members
                .get(&req.member_id)
                .filter(|m| m.classic.is_none())
            else {
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
        let before = self.member_records_of(&id);
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
        if req.server_assignor.is_some() {
            m.server_assignor = req.server_assignor;
        }
        self.settle_member(&id, before, changed, req.owned.as_ref(), topics, now);
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

    /// After a member's own fields changed: the group epoch, the target assignment and the
    /// member's reconciliation, and which of its records must be written. `owned` is what the
    /// member says it holds (None: unknown).
    fn settle_member(
        &mut self,
        id: &str,
        before: Option<(
            crate::coordinator::codec::CgMemberValue,
            crate::coordinator::codec::CgCurrentValue,
        )>,
        mut changed: bool,
        owned: Option<&Assignment>,
        topics: &TopicsView,
        now: Instant,
    ) {
        let m = self.members.get_mut(id).expect("member present");
        if let Some(owned) = owned {
            if !m.pending_revocation.is_empty()
                && assignor::intersect(owned, &m.pending_revocation).is_empty()
            {
                m.pending_revocation.clear();
                m.revocation_deadline = None;
            }
        }
        let preferred = self.preferred_assignor();
        if preferred != self.assignor {
            self.assignor = preferred;
            changed = true;
        }
        if changed {
            self.bump_epoch();
        }
        self.refresh_metadata(topics);
        if self.assignment_epoch < self.group_epoch {
            self.compute_target(topics);
        }
        self.reconcile(id, owned, now);
        let after = self.member_records_of(id);
        if before.as_ref().map(|b| &b.0) != after.as_ref().map(|a| &a.0) {
            self.dirty.members.insert(id.to_string());
        }
        if before.as_ref().map(|b| &b.1) != after.as_ref().map(|a| &a.1) {
            self.dirty.current.insert(id.to_string());
        }
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
        let meta: BTreeMap<Uuid, (String, i32)> = topics
            .by_name
            .iter()
            .filter(|(_, (id, _))| all.contains(id))
            .map(|(name, (id, n))| (*id, (name.clone(), *n)))
            .collect();
        if meta != self.subscribed_metadata {
            self.subscribed_metadata = meta;
            self.dirty.metadata = true;
            self.bump_epoch();
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
        let partitions: BTreeMap<Uuid, i32> = self
            .subscribed_metadata
            .iter()
            .map(|(id, (_, n))| (*id, *n))
            .collect();
        let target = assignor::assign(self.assignor, &specs, &partitions);
        for id in self.target.keys().chain(target.keys()) {
            if self.target.get(id) != target.get(id) {
                self.dirty.targets.insert(id.clone());
            }
        }
        self.target = target;
        self.assignment_epoch = self.group_epoch;
    }

    /// Moves one member towards its target: revoke first, then assign what is free.
    /// Partitions to revoke that the member says it no longer owns (`owned`) are not waited
    /// for (Kafka's `ownsRevokedPartitions`).
    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: Instant) {
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
        if !revoke.is_empty() && owned.is_none_or(|o| !assignor::intersect(o, &revoke).is_empty()) {
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
        let gone = self.expired(now);
        for id in &gone {
            tracing::info!(member = %id, "consumer group member expired");
            self.remove_member(id);
        }
        if !gone.is_empty() {
            self.bump_epoch();
        }
        !gone.is_empty()
    }

    /// Members whose session ended, who did not revoke in time, or (classic members) who did
    /// not rejoin or sync within their rebalance timeout.
    pub fn expired(&self, now: Instant) -> Vec<String> {
        self.members
            .values()
            .filter(|m| {
                m.session_deadline <= now
                    || m.revocation_deadline.is_some_and(|d| d <= now)
                    || m.classic
                        .as_ref()
                        .and_then(|c| c.deadline)
                        .is_some_and(|d| d <= now)
            })
            .map(|m| m.id.clone())
            .collect()
    }

    /// Removes an expired or leaving member and bumps the group epoch.
    pub fn expire(&mut self, id: &str) {
        if self.remove_member(id) {
            self.bump_epoch();
        }
    }

    /// OffsetCommit/OffsetFetch validation of a member epoch (KIP-848 rules; a classic member
    /// gets ILLEGAL_GENERATION for any other generation, as in Kafka).
    pub fn validate_member_epoch(&self, member_id: &str, epoch: i32) -> Result<(), i16> {
        let Some(m) = self.members.get(member_id) else {
            return Err(WireError::UnknownMemberId.code());
        };
        if m.classic.is_some() && epoch != m.epoch {
            return Err(WireError::IllegalGeneration.code());
        }
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
pub(crate) mod tests_support {
    use super::*;

    /// A heartbeat of `id` at `epoch` subscribing to topic "t" on join (epoch 0).
    pub fn hb(id: &str, epoch: i32) -> HeartbeatRequest {
        HeartbeatRequest {
            member_id: id.into(),
            member_epoch: epoch,
            instance_id: None,
            rack_id: None,
            rebalance_timeout_ms: if epoch == 0 { 1000 } else { -1 },
            subscribed_names: (epoch == 0).then(|| vec!["t".to_string()]),
            subscribed_regex: None,
            server_assignor: None,
            owned: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            generate_id: false,
        }
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
        assert_eq!(
            ea, 1,
            "one epoch bump for a heartbeat that creates the group, as Kafka"
        );
        assert_eq!((g.group_epoch, g.assignment_epoch), (1, 1));
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

    fn static_hb(id: &str, epoch: i32, owned: Option<Assignment>) -> HeartbeatRequest {
        let mut r = hb(id, epoch, owned);
        r.instance_id = Some("i1".into());
        r
    }

    #[test]
    fn a_static_instance_id_is_taken_over_only_once_released() {
        let limits = ConsumerLimits {
            session_timeout_ms: 45_000,
            max_size: 10,
        };
        let t0 = Instant::now();
        let mut g = ConsumerGroup::new();
        let mut log = Vec::new();
        let a = g
            .heartbeat(static_hb("a", 0, None), &topics(), &limits, t0)
            .expect("join a");
        log.extend(g.take_records("grp"));
        let held = a.assignment.clone().expect("assignment");
        assert_eq!(assignor::size(&held), 4);
        let epoch = g.group_epoch;

        // A second incarnation while a is alive: refused, a untouched.
        let e = g
            .heartbeat(static_hb("b", 0, None), &topics(), &limits, t0)
            .err()
            .expect("unreleased");
        assert_eq!(e.0, WireError::UnreleasedInstanceId.code());
        assert!(e.1.contains("owned by a"), "{}", e.1);
        assert!(g.members.contains_key("a") && !g.members.contains_key("b"));
        // Requests naming the instance id from another member id are fenced.
        let e = g
            .heartbeat(static_hb("b", 1, None), &topics(), &limits, t0)
            .err()
            .expect("fenced");
        assert_eq!(e.0, WireError::FencedInstanceId.code());
        let e = g
            .heartbeat(static_hb("b", -2, None), &topics(), &limits, t0)
            .err()
            .expect("fenced");
        assert_eq!(e.0, WireError::FencedInstanceId.code());

        // a leaves temporarily: it keeps its partitions, the group its epoch.
        let left = g
            .heartbeat(static_hb("a", -2, None), &topics(), &limits, t0)
            .expect("leave");
        assert_eq!(left.member_epoch, -2);
        log.extend(g.take_records("grp"));
        assert_eq!(g.members["a"].epoch, -2);
        assert_eq!(g.members["a"].assigned, held);
        assert_eq!(g.group_epoch, epoch);
        assert_eq!(g.state(), "Stable");

        // The new incarnation takes a's place and partitions without a rebalance.
        let b = g
            .heartbeat(static_hb("b", 0, None), &topics(), &limits, t0)
            .expect("join b");
        log.extend(g.take_records("grp"));
        assert!(!g.members.contains_key("a"));
        assert_eq!(b.assignment.as_ref(), Some(&held));
        assert_eq!(b.member_epoch, epoch);
        assert_eq!(
            g.group_epoch, epoch,
            "no rebalance for a static replacement"
        );

        // A restart replays to the same group.
        let r = replayed(&log, t0);
        assert_eq!(r.members.keys().collect::<Vec<_>>(), vec!["b"]);
        assert_eq!(r.members["b"].assigned, held);
        assert_eq!(r.members["b"].instance_id.as_deref(), Some("i1"));
        assert_eq!(r.group_epoch, epoch);

        // An expired static member releases its instance id too.
        assert!(g.tick(t0 + Duration::from_secs(46)));
        let c = g
            .heartbeat(
                static_hb("c", 0, None),
                &topics(),
                &limits,
                t0 + Duration::from_secs(46),
            )
            .expect("join c after b expired");
        assert_eq!(c.member_id, "c");
    }

    /// Replays records (through their encoded bytes) into a fresh group, as a restart does.
    fn replayed(records: &[crate::coordinator::codec::CgRecord], now: Instant) -> ConsumerGroup {
        use crate::coordinator::codec::{decode_cg_value, decode_key, Key};
        let mut g = ConsumerGroup::new();
        for (k, v) in records {
            let Key::Consumer { group, kind } = decode_key(k).expect("key") else {
                panic!("not a consumer group key");
            };
            assert_eq!(group, "grp");
            let v = v
                .as_ref()
                .map(|v| decode_cg_value(&kind, v).expect("value"));
            g.replay(kind, v, now);
        }
        g.finish_load(now, 45_000);
        g
    }

    #[test]
    fn records_replay_to_the_same_group_and_idle_heartbeats_write_nothing() {
        let limits = ConsumerLimits {
            session_timeout_ms: 45_000,
            max_size: 10,
        };
        let t0 = Instant::now();
        let mut g = ConsumerGroup::new();
        let mut log = Vec::new();
        let a = g
            .heartbeat(hb("a", 0, None), &topics(), &limits, t0)
            .expect("join a");
        log.extend(g.take_records("grp"));
        let mut b_join = hb("b", 0, None);
        b_join.server_assignor = Some("range".into());
        let b = g.heartbeat(b_join, &topics(), &limits, t0).expect("join b");
        log.extend(g.take_records("grp"));
        // a revokes, acks, b picks up the released partitions.
        let a2 = g
            .heartbeat(
                hb("a", a.member_epoch, a.assignment),
                &topics(),
                &limits,
                t0,
            )
            .expect("hb a");
        log.extend(g.take_records("grp"));
        let a3 = g
            .heartbeat(
                hb("a", a2.member_epoch, a2.assignment),
                &topics(),
                &limits,
                t0,
            )
            .expect("ack a");
        log.extend(g.take_records("grp"));
        let b2 = g
            .heartbeat(
                hb("b", b.member_epoch, Some(Assignment::new())),
                &topics(),
                &limits,
                t0,
            )
            .expect("hb b");
        log.extend(g.take_records("grp"));
        assert_eq!(g.state(), "Stable");
        assert_eq!(
            g.assignor,
            assignor::Assignor::Range,
            "the only assignor asked for"
        );
        // Plain heartbeats that change nothing produce no records.
        g.heartbeat(hb("a", a3.member_epoch, None), &topics(), &limits, t0)
            .expect("idle a");
        assert!(
            g.take_records("grp").is_empty(),
            "idle heartbeat wrote records"
        );

        let t1 = t0 + Duration::from_secs(100);
        let mut r = replayed(&log, t1);
        assert_eq!(
            (r.group_epoch, r.assignment_epoch, r.assignor.name()),
            (g.group_epoch, g.assignment_epoch, "range")
        );
        assert_eq!(r.target, g.target);
        assert_eq!(r.subscribed_metadata, g.subscribed_metadata);
        for (id, m) in &g.members {
            let l = &r.members[id];
            assert_eq!(
                (l.epoch, l.previous_epoch, &l.assigned, &l.subscribed_names),
                (m.epoch, m.previous_epoch, &m.assigned, &m.subscribed_names),
                "member {id}"
            );
        }
        assert_eq!(r.state(), "Stable");
        // Sessions were re-armed at load: nobody expires before the timeout.
        assert!(!r.tick(t1 + Duration::from_secs(44)));
        // Both carry on with their epochs, nothing to write, assignments unchanged.
        let ra = r
            .heartbeat(hb("a", a3.member_epoch, None), &topics(), &limits, t1)
            .expect("a after restart");
        assert_eq!(ra.member_epoch, a3.member_epoch);
        let rb = r
            .heartbeat(hb("b", b2.member_epoch, None), &topics(), &limits, t1)
            .expect("b after restart");
        assert_eq!(rb.member_epoch, b2.member_epoch);
        assert_eq!(rb.assignment, b2.assignment);
        assert!(r.take_records("grp").is_empty());

        // b leaves: tombstones; replaying everything drops it and keeps a.
        r.heartbeat(hb("b", -1, None), &topics(), &limits, t1)
            .expect("leave");
        let leave = r.take_records("grp");
        assert!(leave.iter().filter(|(_, v)| v.is_none()).count() >= 3);
        log.extend(leave);
        let r2 = replayed(&log, t1);
        assert_eq!(r2.members.keys().collect::<Vec<_>>(), ["a"]);
        assert!(!r2.target.contains_key("b"));
        assert_eq!(r2.group_epoch, r.group_epoch);
        // The group's deletion tombstones leave nothing behind.
        let mut all = log.clone();
        all.extend(r2.tombstones("grp"));
        let r3 = replayed(&all, t1);
        assert!(r3.members.is_empty() && r3.target.is_empty());
    }
}

/// A member id as Kafka 4.x assigns one (`Uuid.randomUuid().toString()`): 22 characters of
/// URL-safe base64, never starting with '-' (Kafka redraws those, as they read like options).
fn new_member_id() -> String {
    loop {
        let id = crate::metadata::base64_url_uuid(Uuid::new_v4());
        if !id.starts_with('-') {
            return id;
        }
    }
}

#[cfg(test)]
mod member_id_tests {
    #[test]
    fn member_ids_look_like_kafkas() {
        for _ in 0..1000 {
            let id = super::new_member_id();
            assert_eq!(id.len(), 22, "{id}");
            assert!(!id.starts_with('-'), "{id}");
            assert!(id
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        }
    }
}
