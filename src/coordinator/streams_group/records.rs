//! A streams group's records in `__consumer_offsets`, in Kafka 4.4's layout (so Kafka's tools
//! read them and a group survives a restart the way Kafka's does): key `{i16 type, string
//! group[, string member]}` (classic strings), value `{i16 0, flexible fields}`.
//!
//! | type | record | value |
//! |---|---|---|
//! | 17 | StreamsGroupMetadata | group epoch, metadata hash; tagged: validated topology epoch (0), last assignment configs (1) |
//! | 19 | StreamsGroupMemberMetadata | instance/rack/client ids, rebalance timeout, topology epoch, process id, endpoint, client tags |
//! | 20 | StreamsGroupTargetAssignmentMetadata | assignment epoch (tagged 0: assignment timestamp) |
//! | 21 | StreamsGroupTargetAssignmentMember | active/standby/warm-up tasks |
//! | 22 | StreamsGroupCurrentMemberAssignment | member epochs, state, tasks and tasks pending revocation |
//! | 23 | StreamsGroupTopology | the topology |
//!
//! A null value is a tombstone. Checked byte for byte against Kafka 4.4.0's
//! `GroupCoordinatorRecordSerde` (tests/fixtures/wire/streams_record_*). Tagged fields we do
//! not keep (description epochs, assignment timestamps and per-task assignment epochs) are
//! skipped when read and not written.

use anyhow::{bail, Result};
use bytes::BytesMut;

use crate::protocol::streams::{
    endpoint, key_value, put_array, put_endpoint, put_key_value, put_strings, put_task_ids,
    put_topic_info, subtopology, task_ids, vec, Endpoint, KeyValue, TaskIds, Topology,
};
use crate::protocol::wire::{Reader, Writer};

/// Which streams-group record a key names; member records carry the member id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Metadata,
    Member(String),
    TargetEpoch,
    Target(String),
    Current(String),
    Topology,
}

impl Kind {
    pub fn record_type(&self) -> i16 {
        match self {
            Kind::Metadata => 17,
            Kind::Member(_) => 19,
            Kind::TargetEpoch => 20,
            Kind::Target(_) => 21,
            Kind::Current(_) => 22,
            Kind::Topology => 23,
        }
    }

    /// Whether `record_type` is a streams-group record.
    pub fn is_streams(record_type: i16) -> bool {
        matches!(record_type, 17 | 19..=23)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataValue {
    pub epoch: i32,
    pub metadata_hash: i64,
    /// -1: none validated.
    pub validated_topology_epoch: i32,
    pub last_assignment_configs: Option<Vec<KeyValue>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub topology_epoch: i32,
    pub process_id: String,
    pub user_endpoint: Option<Endpoint>,
    pub client_tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TasksValue {
    pub active: Vec<TaskIds>,
    pub standby: Vec<TaskIds>,
    pub warmup: Vec<TaskIds>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentValue {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// Kafka's `MemberState`: 1 stable, 2 unrevoked tasks, 3 unreleased tasks.
    pub state: i8,
    pub assigned: TasksValue,
    pub pending_revocation: TasksValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Metadata(MetadataValue),
    Member(MemberValue),
    TargetEpoch(i32),
    Target(TasksValue),
    Current(CurrentValue),
    Topology(Topology),
}

pub fn encode_key(group: &str, kind: &Kind) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let mut w = Writer { buf: &mut buf };
    w.i16(kind.record_type());
    w.string(group);
    match kind {
        Kind::Member(m) | Kind::Target(m) | Kind::Current(m) => w.string(m),
        Kind::Metadata | Kind::TargetEpoch | Kind::Topology => {}
    }
    buf.to_vec()
}

/// Decodes a key whose record type [`Kind::is_streams`]: (group, kind).
pub fn decode_key(b: &[u8]) -> Result<(String, Kind)> {
    let mut r = Reader::new(b);
    let t = r.i16()?;
    let group = r.string()?;
    let kind = match t {
        17 => Kind::Metadata,
        19 => Kind::Member(r.string()?),
        20 => Kind::TargetEpoch,
        21 => Kind::Target(r.string()?),
        22 => Kind::Current(r.string()?),
        23 => Kind::Topology,
        _ => bail!("not a streams group record type: {t}"),
    };
    r.finish()?;
    Ok((group, kind))
}

fn put_tasks(w: &mut Writer<'_>, tasks: &[TaskIds]) {
    put_array(w, tasks, put_task_ids);
}

fn put_tasks_value(w: &mut Writer<'_>, t: &TasksValue) {
    put_tasks(w, &t.active);
    put_tasks(w, &t.standby);
    put_tasks(w, &t.warmup);
}

/// Writes a tagged-field section of `(tag, bytes)` fields.
fn put_tagged(w: &mut Writer<'_>, fields: &[(u32, Vec<u8>)]) {
    w.uvarint(fields.len() as u32);
    for (tag, bytes) in fields {
        w.uvarint(*tag);
        w.uvarint(bytes.len() as u32);
        w.buf.extend_from_slice(bytes);
    }
}

pub fn encode_value(v: &Value) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let mut w = Writer { buf: &mut buf };
    w.i16(0);
    match v {
        Value::Metadata(m) => {
            w.i32(m.epoch);
            w.i64(m.metadata_hash);
            let mut tagged = Vec::new();
            if m.validated_topology_epoch != -1 {
                tagged.push((0, m.validated_topology_epoch.to_be_bytes().to_vec()));
            }
            if let Some(configs) = m.last_assignment_configs.as_ref().filter(|c| !c.is_empty()) {
                let mut field = BytesMut::new();
                put_array(&mut Writer { buf: &mut field }, configs, put_key_value);
                tagged.push((1, field.to_vec()));
            }
            put_tagged(&mut w, &tagged);
            return buf.to_vec();
        }
        Value::Member(m) => {
            w.compact_nullable_string(m.instance_id.as_deref());
            w.compact_nullable_string(m.rack_id.as_deref());
            w.compact_string(&m.client_id);
            w.compact_string(&m.client_host);
            w.i32(m.rebalance_timeout_ms);
            w.i32(m.topology_epoch);
            w.compact_string(&m.process_id);
            match &m.user_endpoint {
                None => w.i8(-1),
                Some(e) => {
                    w.i8(1);
                    put_endpoint(&mut w, e);
                }
            }
            put_array(&mut w, &m.client_tags, put_key_value);
        }
        Value::TargetEpoch(e) => w.i32(*e),
        Value::Target(t) => put_tasks_value(&mut w, t),
        Value::Current(c) => {
            w.i32(c.member_epoch);
            w.i32(c.previous_member_epoch);
            w.i8(c.state);
            put_tasks_value(&mut w, &c.assigned);
            put_tasks_value(&mut w, &c.pending_revocation);
        }
        Value::Topology(t) => {
            w.i32(t.epoch);
            w.compact_array_len(t.subtopologies.len());
            for s in &t.subtopologies {
                w.compact_string(&s.subtopology_id);
                put_strings(&mut w, &s.source_topics);
                put_strings(&mut w, &s.source_topic_regex);
                put_array(&mut w, &s.state_changelog_topics, put_topic_info);
                put_strings(&mut w, &s.repartition_sink_topics);
                put_array(&mut w, &s.repartition_source_topics, put_topic_info);
                put_array(&mut w, &s.copartition_groups, |w, g| {
                    for list in [
                        &g.source_topics,
                        &g.source_topic_regex,
                        &g.repartition_source_topics,
                    ] {
                        put_array(w, list, |w, i| w.i16(*i));
                    }
                    w.no_tagged_fields();
                });
                w.no_tagged_fields();
            }
        }
    }
    w.no_tagged_fields();
    buf.to_vec()
}

fn tasks(r: &mut Reader<'_>) -> Result<Vec<TaskIds>> {
    // Each entry's tag 0 (AssignmentEpochs) is skipped, not kept.
    vec(r, 3, task_ids)
}

fn tasks_value(r: &mut Reader<'_>) -> Result<TasksValue> {
    Ok(TasksValue {
        active: tasks(r)?,
        standby: tasks(r)?,
        warmup: tasks(r)?,
    })
}

/// Decodes the value of a record of `kind`.
pub fn decode_value(kind: &Kind, b: &[u8]) -> Result<Value> {
    let mut r = Reader::new(b);
    let version = r.i16()?;
    if version != 0 {
        bail!("unsupported streams group record version {version}");
    }
    let v = match kind {
        Kind::Metadata => {
            let epoch = r.i32()?;
            let metadata_hash = r.i64()?;
            let mut m = MetadataValue {
                epoch,
                metadata_hash,
                validated_topology_epoch: -1,
                last_assignment_configs: None,
            };
            let n = r.uvarint()?;
            for _ in 0..n {
                let tag = r.uvarint()?;
                let size = r.uvarint()? as usize;
                let mut f = Reader::new(r.bytes(size)?);
                match tag {
                    0 => m.validated_topology_epoch = f.i32()?,
                    1 => m.last_assignment_configs = Some(vec(&mut f, 3, key_value)?),
                    _ => {}
                }
            }
            r.finish()?;
            return Ok(Value::Metadata(m));
        }
        Kind::Member(_) => Value::Member(MemberValue {
            instance_id: r.compact_nullable_string()?,
            rack_id: r.compact_nullable_string()?,
            client_id: r.compact_string()?,
            client_host: r.compact_string()?,
            rebalance_timeout_ms: r.i32()?,
            topology_epoch: r.i32()?,
            process_id: r.compact_string()?,
            user_endpoint: match r.i8()? {
                -1 => None,
                1 => Some(endpoint(&mut r)?),
                m => bail!("bad nullable-struct marker {m}"),
            },
            client_tags: vec(&mut r, 3, key_value)?,
        }),
        Kind::TargetEpoch => Value::TargetEpoch(r.i32()?),
        Kind::Target(_) => Value::Target(tasks_value(&mut r)?),
        Kind::Current(_) => Value::Current(CurrentValue {
            member_epoch: r.i32()?,
            previous_member_epoch: r.i32()?,
            state: r.i8()?,
            assigned: tasks_value(&mut r)?,
            pending_revocation: tasks_value(&mut r)?,
        }),
        Kind::Topology => {
            let epoch = r.i32()?;
            let subtopologies = vec(&mut r, 8, subtopology)?;
            Value::Topology(Topology {
                epoch,
                subtopologies,
            })
        }
    };
    r.skip_tagged_fields()?;
    r.finish()?;
    Ok(v)
}

#[cfg(test)]
mod tests;
