//! Share groups (KIP-932): membership by ShareGroupHeartbeat and the `simple` assignor, as
//! Kafka 4.4's GroupMetadataManager runs them. What members then fetch and acknowledge is the
//! share-partitions' business ([`crate::coordinator::share`]): the broker serving ShareFetch
//! does not consult membership (Kafka does not either).
//!
//! Differences from KIP-848 consumer groups: no revocation handshake (a partition moves at
//! once; share-partition locks make a short overlap harmless), partitions are shared by several
//! members when members outnumber them, and the group epoch starts at 1 (Kafka's
//! `ModernGroup`), so the first member joins at epoch 2. Unlike Kafka, a partition is
//! assignable as soon as its topic exists: Strom's share-partition state needs no separate
//! initialization round trip (Kafka assigns only after InitializeShareGroupState, one heartbeat
//! later), and `share.auto.offset.reset` is resolved when a share-partition is first fetched, as
//! in Kafka. Recomputing the target assignment is not throttled
//! (`group.share.assignment.interval.ms` is not applied).

pub mod records;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::coordinator::codec::CgRecord;
use crate::protocol::WireError;
use records::{CurrentValue, Kind, MemberValue, Value};

/// A topic as the assignor sees it: its id and partition count.
pub type TopicsView<'a> = &'a dyn Fn(&str) -> Option<(Uuid, i32)>;

pub type HeartbeatError = (i16, String);

#[derive(Debug, Clone)]
pub struct ShareMember {
    pub epoch: i32,
    pub previous_epoch: i32,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Sorted, deduplicated.
    pub subscribed: Vec<String>,
    pub assigned: BTreeMap<Uuid, Vec<i32>>,
    pub deadline: Instant,
}

#[derive(Debug, Default)]
struct Dirty {
    metadata: bool,
    members: BTreeSet<String>,
    current: BTreeSet<String>,
    removed: BTreeSet<String>,
}

#[derive(Debug)]
pub struct ShareGroup {
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ShareMember>,
    target: BTreeMap<String, BTreeMap<Uuid, Vec<i32>>>,
    metadata_hash: i64,
    dirty: Dirty,
}

/// What a heartbeat asks (ShareGroupHeartbeat v1, already validated).
#[derive(Debug, Clone)]
pub struct HeartbeatRequest {
    pub member_id: String,
    pub member_epoch: i32,
    pub rack_id: Option<String>,
    pub subscribed: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatResponse {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// None: unchanged since the member last got it.
    pub assignment: Option<BTreeMap<Uuid, Vec<i32>>>,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_size: usize,
    pub session_timeout: Duration,
    pub heartbeat_interval_ms: i32,
}

impl Default for ShareGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl ShareGroup {
    pub fn new() -> Self {
        ShareGroup {
            epoch: 1,
            assignment_epoch: 1,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            metadata_hash: 0,
            dirty: Dirty::default(),
        }
    }

    /// A new, empty group whose metadata record is to be written (AlterShareGroupOffsets on
    /// an unknown group creates it, as Kafka's does).
    pub fn created_empty() -> Self {
        let mut g = Self::new();
        g.dirty.metadata = true;
        g
    }

    /// Kafka's share group states: Empty or Stable.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        }
    }

    /// ShareGroupHeartbeat (join, heartbeat, leave).
    #[allow(clippy::too_many_arguments)]
    pub fn heartbeat(
        &mut self,
        group_id: &str,
        req: HeartbeatRequest,
        client_id: &str,
        client_host: &str,
        topics: TopicsView<'_>,
        limits: &Limits,
        now: Instant,
    ) -> Result<HeartbeatResponse, HeartbeatError> {
        if req.member_epoch == -1 {
            if !self.members.contains_key(&req.member_id) {
                return Err((
                    WireError::UnknownMemberId.code(),
                    format!(
                        "Member {} is not a member of group {group_id}.",
                        req.member_id
                    ),
                ));
            }
            self.remove_member(&req.member_id);
            return Ok(HeartbeatResponse {
                member_id: req.member_id,
                member_epoch: -1,
                heartbeat_interval_ms: 0,
                assignment: None,
            });
        }
        let known = self.members.contains_key(&req.member_id);
        if !known && self.members.len() >= limits.max_size {
            return Err((
                WireError::GroupMaxSizeReached.code(),
                format!(
                    "The share group has reached its maximum capacity of {} members.",
                    limits.max_size
                ),
            ));
        }
        if !known && req.member_epoch != 0 {
            return Err((
                WireError::UnknownMemberId.code(),
                format!(
                    "Member {} is not a member of group {group_id}.",
                    req.member_id
                ),
            ));
        }
        if known && req.member_epoch != 0 {
            let m = &self.members[&req.member_id];
            if req.member_epoch > m.epoch
                || (req.member_epoch < m.epoch && req.member_epoch != m.previous_epoch)
            {
                return Err((
                    WireError::FencedMemberEpoch.code(),
                    format!(
                        "The share group member has a smaller member epoch ({}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                        req.member_epoch, m.epoch
                    ),
                ));
            }
        }
        let full = req.member_epoch == 0 || req.subscribed.is_some();
        let mut bump = false;
        let member = self
            .members
            .entry(req.member_id.clone())
            .or_insert_with(|| ShareMember {
                epoch: 0,
                previous_epoch: -1,
                rack_id: None,
                client_id: String::new(),
                client_host: String::new(),
                subscribed: Vec::new(),
                assigned: BTreeMap::new(),
                deadline: now,
            });
        let mut changed = !known;
        if let Some(rack) = req.rack_id {
            if member.rack_id.as_deref() != Some(&rack) {
                member.rack_id = Some(rack);
                changed = true;
            }
        }
        if member.client_id != client_id || member.client_host != client_host {
            member.client_id = client_id.to_string();
            member.client_host = client_host.to_string();
            changed = true;
        }
        let mut subscription_changed = false;
        if let Some(mut subs) = req.subscribed {
            subs.sort();
            subs.dedup();
            if subs != member.subscribed {
                member.subscribed = subs;
                changed = true;
                subscription_changed = true;
                bump = true;
            }
        }
        member.deadline = now + limits.session_timeout;
        if changed {
            self.dirty.members.insert(req.member_id.clone());
        }
        let hash = self.topics_hash(topics);
        if hash != self.metadata_hash {
            self.metadata_hash = hash;
            bump = true;
        }
        if bump {
            self.epoch += 1;
            self.dirty.metadata = true;
        }
        if self.assignment_epoch < self.epoch {
            self.target = simple_assign(&self.members, &self.target, topics);
            self.assignment_epoch = self.epoch;
        }
        let m = self.members.get_mut(&req.member_id).expect("member");
        let before = m.assigned.clone();
        if m.epoch != self.assignment_epoch || subscription_changed {
            let target = self.target.get(&req.member_id).cloned().unwrap_or_default();
            m.assigned = filter_subscribed(&target, &m.subscribed, topics);
            if m.epoch != self.assignment_epoch {
                m.previous_epoch = m.epoch;
                m.epoch = self.assignment_epoch;
            }
            self.dirty.current.insert(req.member_id.clone());
        }
        let assignment = (full || m.assigned != before).then(|| m.assigned.clone());
        Ok(HeartbeatResponse {
            member_id: req.member_id,
            member_epoch: m.epoch,
            heartbeat_interval_ms: limits.heartbeat_interval_ms,
            assignment,
        })
    }

    fn remove_member(&mut self, id: &str) {
        self.members.remove(id);
        self.target.remove(id);
        self.dirty.removed.insert(id.to_string());
        self.dirty.members.remove(id);
        self.dirty.current.remove(id);
        self.epoch += 1;
        self.dirty.metadata = true;
    }

    /// Removes members whose session expired; returns their ids.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            self.remove_member(id);
        }
        gone
    }

    /// A fingerprint of the subscribed topics' ids and partition counts: a change (a topic
    /// created, deleted or grown) bumps the group epoch.
    fn topics_hash(&self, topics: TopicsView<'_>) -> i64 {
        let names: BTreeSet<&str> = self
            .members
            .values()
            .flat_map(|m| m.subscribed.iter().map(String::as_str))
            .collect();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for n in names {
            if let Some((id, parts)) = topics(n) {
                for b in id.as_bytes().iter().chain(&parts.to_be_bytes()) {
                    h ^= u64::from(*b);
                    h = h.wrapping_mul(0x100_0000_01b3);
                }
            }
        }
        h as i64
    }

    /// The records for everything that changed since the last call, in Kafka's order:
    /// removed members' tombstones, member metadata, group metadata, current assignments.
    pub fn take_records(&mut self, group: &str) -> Vec<CgRecord> {
        let d = std::mem::take(&mut self.dirty);
        let mut out: Vec<CgRecord> = Vec::new();
        for id in &d.removed {
            if self.members.contains_key(id) {
                continue;
            }
            out.push((records::encode_key(group, &Kind::Current(id.clone())), None));
            out.push((records::encode_key(group, &Kind::Member(id.clone())), None));
        }
        for id in &d.members {
            if let Some(m) = self.members.get(id) {
                let v = Value::Member(MemberValue {
                    rack_id: m.rack_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed.clone(),
                });
                out.push((
                    records::encode_key(group, &Kind::Member(id.clone())),
                    Some(records::encode_value(&v)),
                ));
            }
        }
        if d.metadata {
            let v = Value::Metadata {
                epoch: self.epoch,
                metadata_hash: self.metadata_hash,
            };
            out.push((
                records::encode_key(group, &Kind::Metadata),
                Some(records::encode_value(&v)),
            ));
        }
        for id in &d.current {
            if let Some(m) = self.members.get(id) {
                let v = Value::Current(CurrentValue {
                    member_epoch: m.epoch,
                    previous_member_epoch: m.previous_epoch,
                    state: 0,
                    assigned: m.assigned.clone(),
                });
                out.push((
                    records::encode_key(group, &Kind::Current(id.clone())),
                    Some(records::encode_value(&v)),
                ));
            }
        }
        out
    }

    /// The tombstones that delete the group.
    pub fn tombstones(&self, group: &str) -> Vec<CgRecord> {
        let mut out: Vec<CgRecord> = Vec::new();
        for id in self.members.keys() {
            out.push((records::encode_key(group, &Kind::Current(id.clone())), None));
            out.push((records::encode_key(group, &Kind::Member(id.clone())), None));
        }
        out.push((records::encode_key(group, &Kind::Metadata), None));
        out
    }

    /// Replays one record (a restart). Members come back with a fresh session deadline.
    pub fn replay(&mut self, kind: Kind, value: Option<Value>, now: Instant, session: Duration) {
        match (kind, value) {
            (
                Kind::Metadata,
                Some(Value::Metadata {
                    epoch,
                    metadata_hash,
                }),
            ) => {
                self.epoch = epoch;
                self.assignment_epoch = epoch;
                self.metadata_hash = metadata_hash;
            }
            (Kind::Member(id), Some(Value::Member(v))) => {
                let m = self.members.entry(id).or_insert_with(|| ShareMember {
                    epoch: 0,
                    previous_epoch: -1,
                    rack_id: None,
                    client_id: String::new(),
                    client_host: String::new(),
                    subscribed: Vec::new(),
                    assigned: BTreeMap::new(),
                    deadline: now + session,
                });
                m.rack_id = v.rack_id;
                m.client_id = v.client_id;
                m.client_host = v.client_host;
                m.subscribed = v.subscribed_topic_names;
            }
            (Kind::Current(id), Some(Value::Current(c))) => {
                if let Some(m) = self.members.get_mut(&id) {
                    m.epoch = c.member_epoch;
                    m.previous_epoch = c.previous_member_epoch;
                    m.assigned = c.assigned.clone();
                    self.target.insert(id, c.assigned);
                }
            }
            (Kind::Member(id), None) | (Kind::Current(id), None) => {
                self.members.remove(&id);
                self.target.remove(&id);
            }
            _ => {}
        }
    }
}

/// A member's target restricted to the topics it subscribes to.
fn filter_subscribed(
    target: &BTreeMap<Uuid, Vec<i32>>,
    subscribed: &[String],
    topics: TopicsView<'_>,
) -> BTreeMap<Uuid, Vec<i32>> {
    let ids: BTreeSet<Uuid> = subscribed
        .iter()
        .filter_map(|n| topics(n).map(|(id, _)| id))
        .collect();
    target
        .iter()
        .filter(|(id, _)| ids.contains(id))
        .map(|(id, p)| (*id, p.clone()))
        .collect()
}

/// Kafka's `simple` share assignor, behaviourally: the partitions of the topics a set of
/// members subscribes to are spread evenly over those members; when members outnumber
/// partitions each partition is shared by `ceil(members / partitions)` of them, so every
/// member gets at least one. Sticky: a member keeps what it had as long as that stays within
/// its share. Topics are pooled by subscriber set (one pool for a homogeneous group).
pub fn simple_assign(
    members: &BTreeMap<String, ShareMember>,
    old: &BTreeMap<String, BTreeMap<Uuid, Vec<i32>>>,
    topics: TopicsView<'_>,
) -> BTreeMap<String, BTreeMap<Uuid, Vec<i32>>> {
    // Subscriber sets by topic, then pools by subscriber set.
    let mut subscribers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, m) in members {
        for t in &m.subscribed {
            subscribers.entry(t.clone()).or_default().push(id.clone());
        }
    }
    let mut pools: BTreeMap<Vec<String>, Vec<(Uuid, i32)>> = BTreeMap::new();
    for (t, subs) in subscribers {
        if let Some((id, n)) = topics(&t) {
            let pool = pools.entry(subs).or_default();
            pool.extend((0..n.max(0)).map(|p| (id, p)));
        }
    }
    let mut out: BTreeMap<String, BTreeMap<Uuid, Vec<i32>>> = members
        .keys()
        .map(|id| (id.clone(), BTreeMap::new()))
        .collect();
    let mut totals: BTreeMap<String, usize> = members.keys().map(|id| (id.clone(), 0)).collect();
    for (subs, partitions) in pools {
        let (n, p) = (subs.len(), partitions.len());
        if n == 0 || p == 0 {
            continue;
        }
        let sharing = n.div_ceil(p);
        let slots = sharing * p;
        // Desired counts: as even as possible, the larger ones first.
        let desired: BTreeMap<&String, usize> = subs
            .iter()
            .enumerate()
            .map(|(i, id)| (id, slots / n + usize::from(i < slots % n)))
            .collect();
        let mut owners: BTreeMap<(Uuid, i32), Vec<&String>> = BTreeMap::new();
        let mut count: BTreeMap<&String, usize> = subs.iter().map(|id| (id, 0)).collect();
        // Keep old pairs within the member's and the partition's share.
        for id in &subs {
            let Some(prev) = old.get(id) else { continue };
            for (t, parts) in prev {
                for part in parts {
                    let key = (*t, *part);
                    if !partitions.contains(&key) {
                        continue;
                    }
                    let o = owners.entry(key).or_default();
                    if o.len() < sharing && count[id] < desired[id] {
                        o.push(id);
                        *count.get_mut(id).expect("member") += 1;
                    }
                }
            }
        }
        // Fill: each partition to the members furthest below their share.
        for key in &partitions {
            loop {
                let o = owners.entry(*key).or_default();
                if o.len() >= sharing {
                    break;
                }
                let pick = subs
                    .iter()
                    .filter(|id| count[id] < desired[id] && !o.contains(id))
                    .min_by_key(|id| (count[id], totals[*id]));
                let Some(id) = pick else { break };
                o.push(id);
                *count.get_mut(id).expect("member") += 1;
            }
        }
        for ((t, part), ids) in owners {
            for id in ids {
                out.get_mut(id)
                    .expect("member")
                    .entry(t)
                    .or_default()
                    .push(part);
                *totals.get_mut(id).expect("member") += 1;
            }
        }
    }
    for a in out.values_mut() {
        for parts in a.values_mut() {
            parts.sort_unstable();
        }
    }
    out
}

#[cfg(test)]
mod tests;
