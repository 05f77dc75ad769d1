//! A consumer group as Kafka 4.x's records on `__consumer_offsets` (codec: [`CgKind`]):
//! draining the changes of an operation, the tombstones that delete the group, and the replay
//! that rebuilds it at start.
//!
//! Records of one operation are written in the order Kafka's GroupMetadataManager writes them,
//! so Kafka's own replay (which checks, e.g., that a member's assignment is gone before the
//! member) would accept them: removed members' tombstones (current assignment, target
//! assignment, subscription), subscriptions, group epoch, subscribed topics, target assignments,
//! assignment epoch, current assignments.

use std::time::{Duration, Instant};

use super::{ConsumerGroup, ConsumerMember, Dirty};
use crate::coordinator::assignor::Assignment;
use crate::coordinator::codec::{
    encode_cg_value, encode_key, CgCurrentValue, CgKind, CgMemberValue, CgRecord, CgValue, Key,
};

/// Kafka's `MemberState` values.
const STABLE: i8 = 0;
const UNREVOKED_PARTITIONS: i8 = 1;
const UNRELEASED_PARTITIONS: i8 = 2;

fn key(group: &str, kind: CgKind) -> Vec<u8> {
    encode_key(&Key::Consumer {
        group: group.to_string(),
        kind,
    })
}

fn put(out: &mut Vec<CgRecord>, group: &str, kind: CgKind, v: &CgValue) {
    out.push((key(group, kind), Some(encode_cg_value(v))));
}

fn tombstone(out: &mut Vec<CgRecord>, group: &str, kind: CgKind) {
    out.push((key(group, kind), None));
}

impl ConsumerGroup {
    /// The subscription (5) and current-assignment (8) values of a member.
    pub(super) fn member_records_of(&self, id: &str) -> Option<(CgMemberValue, CgCurrentValue)> {
        let m = self.members.get(id)?;
        let state = if !m.pending_revocation.is_empty() {
            UNREVOKED_PARTITIONS
        } else if m.epoch == self.assignment_epoch
            && self.target.get(id).is_some_and(|t| *t != m.assigned)
        {
            UNRELEASED_PARTITIONS
        } else {
            STABLE
        };
        Some((
            CgMemberValue {
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed_topic_names: m.subscribed_names.clone(),
                subscribed_topic_regex: m.subscribed_regex.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                server_assignor: m.server_assignor.clone(),
                classic: m.classic.as_ref().map(|c| c.to_value()),
            },
            CgCurrentValue {
                member_epoch: m.epoch,
                previous_member_epoch: m.previous_epoch,
                state,
                assigned: m.assigned.clone(),
                pending_revocation: m.pending_revocation.clone(),
            },
        ))
    }

    /// The records for everything that changed since the last call (empty when nothing did).
    pub fn take_records(&mut self, group: &str) -> Vec<CgRecord> {
        let d = std::mem::take(&mut self.dirty);
        let mut out = Vec::new();
        for id in &d.removed {
            if self.members.contains_key(id) {
                continue;
            }
            tombstone(&mut out, group, CgKind::Current(id.clone()));
            tombstone(&mut out, group, CgKind::Target(id.clone()));
            tombstone(&mut out, group, CgKind::Member(id.clone()));
        }
        let mut current = Vec::new();
        for id in d.members.union(&d.current) {
            let Some((member, cur)) = self.member_records_of(id) else {
                continue;
            };
            if d.members.contains(id) {
                put(
                    &mut out,
                    group,
                    CgKind::Member(id.clone()),
                    &CgValue::Member(member),
                );
            }
            if d.current.contains(id) {
                current.push((id.clone(), cur));
            }
        }
        if self.group_epoch != d.persisted_group_epoch {
            put(
                &mut out,
                group,
                CgKind::Epoch,
                &CgValue::Epoch(self.group_epoch),
            );
        }
        if d.metadata {
            put(
                &mut out,
                group,
                CgKind::PartitionMetadata,
                &CgValue::PartitionMetadata(self.subscribed_metadata.clone()),
            );
        }
        for id in &d.targets {
            match self.target.get(id) {
                Some(a) => put(
                    &mut out,
                    group,
                    CgKind::Target(id.clone()),
                    &CgValue::Target(a.clone()),
                ),
                None if !d.removed.contains(id) => {
                    tombstone(&mut out, group, CgKind::Target(id.clone()))
                }
                None => {}
            }
        }
        if self.assignment_epoch != d.persisted_assignment_epoch {
            put(
                &mut out,
                group,
                CgKind::TargetEpoch,
                &CgValue::Epoch(self.assignment_epoch),
            );
        }
        for (id, cur) in current {
            put(&mut out, group, CgKind::Current(id), &CgValue::Current(cur));
        }
        self.dirty = Dirty {
            persisted_group_epoch: self.group_epoch,
            persisted_assignment_epoch: self.assignment_epoch,
            ..Dirty::default()
        };
        out
    }

    /// The tombstones that delete the whole group (DeleteGroups, or its conversion to a
    /// classic group), in Kafka's order.
    pub fn tombstones(&self, group: &str) -> Vec<CgRecord> {
        let mut out = Vec::new();
        for id in self.members.keys() {
            tombstone(&mut out, group, CgKind::Current(id.clone()));
        }
        for id in self.members.keys().chain(self.target.keys()) {
            tombstone(&mut out, group, CgKind::Target(id.clone()));
        }
        tombstone(&mut out, group, CgKind::TargetEpoch);
        for id in self.members.keys() {
            tombstone(&mut out, group, CgKind::Member(id.clone()));
        }
        tombstone(&mut out, group, CgKind::PartitionMetadata);
        tombstone(&mut out, group, CgKind::Epoch);
        out
    }

    fn member_for_replay(&mut self, id: &str, now: Instant) -> &mut ConsumerMember {
        self.members
            .entry(id.to_string())
            .or_insert_with(|| ConsumerMember {
                id: id.to_string(),
                instance_id: None,
                rack_id: None,
                client_id: String::new(),
                client_host: String::new(),
                rebalance_timeout_ms: -1,
                subscribed_names: Vec::new(),
                subscribed_regex: None,
                server_assignor: None,
                epoch: 0,
                previous_epoch: 0,
                assigned: Assignment::new(),
                pending_revocation: Assignment::new(),
                session_deadline: now,
                revocation_deadline: None,
                last_sent: None,
                classic: None,
            })
    }

    /// Applies one record read back from the log (`None` = tombstone). The group tombstone
    /// (kind [`CgKind::Epoch`]) is the coordinator's to apply: it drops the whole group.
    pub fn replay(&mut self, kind: CgKind, value: Option<CgValue>, now: Instant) {
        match (kind, value) {
            (CgKind::Epoch, Some(CgValue::Epoch(e))) => self.group_epoch = e,
            (CgKind::PartitionMetadata, Some(CgValue::PartitionMetadata(t))) => {
                self.subscribed_metadata = t
            }
            (CgKind::PartitionMetadata, None) => self.subscribed_metadata.clear(),
            (CgKind::TargetEpoch, Some(CgValue::Epoch(e))) => self.assignment_epoch = e,
            (CgKind::TargetEpoch, None) => self.assignment_epoch = 0,
            (CgKind::Target(id), Some(CgValue::Target(a))) => {
                self.target.insert(id, a);
            }
            (CgKind::Target(id), None) => {
                self.target.remove(&id);
            }
            (CgKind::Member(id), Some(CgValue::Member(v))) => {
                let m = self.member_for_replay(&id, now);
                m.instance_id = v.instance_id;
                m.rack_id = v.rack_id;
                m.client_id = v.client_id;
                m.client_host = v.client_host;
                m.subscribed_names = v.subscribed_topic_names;
                m.subscribed_regex = v.subscribed_topic_regex;
                m.rebalance_timeout_ms = v.rebalance_timeout_ms;
                m.server_assignor = v.server_assignor;
                m.classic = v.classic.map(super::classic::ClassicMeta::from_value);
            }
            (CgKind::Member(id), None) => {
                self.members.remove(&id);
            }
            (CgKind::Current(id), Some(CgValue::Current(v))) => {
                let m = self.member_for_replay(&id, now);
                m.epoch = v.member_epoch;
                m.previous_epoch = v.previous_member_epoch;
                m.assigned = v.assigned;
                m.pending_revocation = v.pending_revocation;
            }
            (CgKind::Current(id), None) => {
                if let Some(m) = self.members.get_mut(&id) {
                    m.epoch = -1;
                    m.previous_epoch = -1;
                    m.assigned.clear();
                    m.pending_revocation.clear();
                }
            }
            (kind, value) => {
                tracing::debug!(?kind, ?value, "ignoring consumer group record");
            }
        }
    }

    /// After the replay: members half-deleted by a torn write go away; every member's session
    /// timeout (and a revoking member's rebalance timeout) starts again now, as after a
    /// coordinator failover in Kafka; the assignor is re-derived from the members.
    pub fn finish_load(&mut self, now: Instant, session_timeout_ms: u64) {
        self.members.retain(|_, m| m.epoch >= 0);
        let members = &self.members;
        self.target.retain(|id, _| members.contains_key(id));
        for m in self.members.values_mut() {
            // A classic member keeps the session timeout of its JoinGroup.
            let session_ms = m
                .classic
                .as_ref()
                .map_or(session_timeout_ms, |c| c.session_timeout_ms.max(0) as u64);
            m.session_deadline = now + Duration::from_millis(session_ms);
            m.revocation_deadline = (!m.pending_revocation.is_empty())
                .then(|| now + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64));
            m.last_sent = None;
        }
        self.assignor = self.preferred_assignor();
        self.dirty = Dirty {
            persisted_group_epoch: self.group_epoch,
            persisted_assignment_epoch: self.assignment_epoch,
            ..Dirty::default()
        };
    }
}
