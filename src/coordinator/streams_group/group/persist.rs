//! A streams group as Kafka's `__consumer_offsets` records and back: the record values its
//! state amounts to, the records that changed since the last write, tombstones, and replay.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::{flatten, task_ids, StreamsGroup, StreamsLimits, StreamsMember, Tasks};
use crate::coordinator::streams_group::records::{
    self, CurrentValue, Kind, MemberValue, MetadataValue, TasksValue, Value,
};
use crate::protocol::streams::KeyValue;

fn tasks_value(t: &Tasks) -> TasksValue {
    TasksValue {
        active: task_ids(&t.active),
        standby: task_ids(&t.standby),
        warmup: task_ids(&t.warmup),
    }
}

fn tasks_of(v: &TasksValue) -> Tasks {
    Tasks {
        active: flatten(&v.active),
        standby: flatten(&v.standby),
        warmup: flatten(&v.warmup),
    }
}

impl StreamsGroup {
    /// The group as Kafka's streams-group records would hold it now, by record kind.
    pub(super) fn record_values(&self, limits: &StreamsLimits) -> BTreeMap<Kind, Value> {
        let mut out = BTreeMap::new();
        out.insert(
            Kind::Metadata,
            Value::Metadata(MetadataValue {
                epoch: self.group_epoch,
                metadata_hash: self.metadata_hash,
                validated_topology_epoch: self.validated_topology_epoch,
                last_assignment_configs: Some(vec![KeyValue {
                    key: "num.standby.replicas".into(),
                    value: limits.num_standby_replicas.to_string(),
                }]),
            }),
        );
        if let Some(t) = &self.topology {
            out.insert(Kind::Topology, Value::Topology(t.clone()));
        }
        out.insert(Kind::TargetEpoch, Value::TargetEpoch(self.assignment_epoch));
        for (id, t) in &self.target {
            out.insert(Kind::Target(id.clone()), Value::Target(tasks_value(t)));
        }
        for m in self.members.values() {
            out.insert(
                Kind::Member(m.id.clone()),
                Value::Member(MemberValue {
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    topology_epoch: m.topology_epoch,
                    process_id: m.process_id.clone(),
                    user_endpoint: m.user_endpoint.clone(),
                    client_tags: m.client_tags.clone(),
                }),
            );
            out.insert(
                Kind::Current(m.id.clone()),
                Value::Current(CurrentValue {
                    member_epoch: m.epoch,
                    previous_member_epoch: m.previous_epoch,
                    // Kafka's MemberState: 1 stable, 2 unrevoked tasks.
                    state: if m.pending_revocation.is_empty() {
                        1
                    } else {
                        2
                    },
                    assigned: tasks_value(&m.assigned),
                    pending_revocation: TasksValue {
                        active: task_ids(&m.pending_revocation),
                        ..TasksValue::default()
                    },
                }),
            );
        }
        out
    }

    /// The records that bring `__consumer_offsets` from what was last written to the group as
    /// it is now (changed values, tombstones for what went away), and takes them as written.
    /// In Kafka's order: group metadata and topology first, tombstones of members last.
    pub fn take_records(
        &mut self,
        group_id: &str,
        limits: &StreamsLimits,
    ) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let now = self.record_values(limits);
        let mut out = Vec::new();
        for (kind, value) in &now {
            if self.persisted.get(kind) != Some(value) {
                out.push((
                    records::encode_key(group_id, kind),
                    Some(records::encode_value(value)),
                ));
            }
        }
        for kind in self.persisted.keys() {
            if !now.contains_key(kind) {
                out.push((records::encode_key(group_id, kind), None));
            }
        }
        self.persisted = now;
        out
    }

    /// Tombstones for every record the group has written (DeleteGroups of an empty group),
    /// its metadata last.
    pub fn tombstones(&self, group_id: &str) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let mut kinds: Vec<&Kind> = self
            .persisted
            .keys()
            .filter(|k| **k != Kind::Metadata)
            .collect();
        kinds.push(&Kind::Metadata);
        kinds
            .into_iter()
            .map(|k| (records::encode_key(group_id, k), None))
            .collect()
    }

    /// Replays one record (None: a tombstone) while loading the group from its log.
    pub fn replay(&mut self, kind: Kind, value: Option<Value>) {
        match (kind, value) {
            (Kind::Metadata, Some(Value::Metadata(m))) => {
                self.group_epoch = m.epoch;
                self.metadata_hash = m.metadata_hash;
                self.validated_topology_epoch = m.validated_topology_epoch;
            }
            (Kind::Topology, Some(Value::Topology(t))) => self.topology = Some(t),
            (Kind::Topology, None) => self.topology = None,
            (Kind::TargetEpoch, Some(Value::TargetEpoch(e))) => self.assignment_epoch = e,
            (Kind::Target(id), Some(Value::Target(t))) => {
                self.target.insert(id, tasks_of(&t));
            }
            (Kind::Target(id), None) => {
                self.target.remove(&id);
            }
            (Kind::Member(id), Some(Value::Member(v))) => {
                let now = Instant::now();
                let m = self
                    .members
                    .entry(id.clone())
                    .or_insert_with(|| StreamsMember {
                        id,
                        instance_id: None,
                        rack_id: None,
                        client_id: String::new(),
                        client_host: String::new(),
                        rebalance_timeout_ms: 0,
                        topology_epoch: 0,
                        process_id: String::new(),
                        user_endpoint: None,
                        client_tags: Vec::new(),
                        epoch: 0,
                        previous_epoch: 0,
                        assigned: Tasks::default(),
                        pending_revocation: BTreeSet::new(),
                        session_deadline: now,
                        revocation_deadline: None,
                        last_sent: None,
                    });
                m.instance_id = v.instance_id;
                m.rack_id = v.rack_id;
                m.client_id = v.client_id;
                m.client_host = v.client_host;
                m.rebalance_timeout_ms = v.rebalance_timeout_ms;
                m.topology_epoch = v.topology_epoch;
                m.process_id = v.process_id;
                m.user_endpoint = v.user_endpoint;
                m.client_tags = v.client_tags;
            }
            (Kind::Member(id), None) => {
                self.members.remove(&id);
            }
            (Kind::Current(id), Some(Value::Current(c))) => {
                if let Some(m) = self.members.get_mut(&id) {
                    m.epoch = c.member_epoch;
                    m.previous_epoch = c.previous_member_epoch;
                    m.assigned = tasks_of(&c.assigned);
                    m.pending_revocation = flatten(&c.pending_revocation.active);
                }
            }
            // A current-assignment tombstone comes with the member's; other combinations do
            // not occur in a log Kafka or Strom wrote.
            _ => {}
        }
    }

    /// After replay: sessions (and revocation deadlines) start now; what was replayed counts
    /// as written.
    pub fn finish_load(&mut self, now: Instant, limits: &StreamsLimits) {
        let session = Duration::from_millis(limits.session_timeout_ms);
        for m in self.members.values_mut() {
            m.session_deadline = now + session;
            if !m.pending_revocation.is_empty() {
                m.revocation_deadline =
                    Some(now + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64));
            }
        }
        self.endpoint_information_epoch = self.endpoint_information_epoch.max(1);
        self.persisted = self.record_values(limits);
    }
}
