//! Codecs for the Streams rebalance protocol (KIP-1071): StreamsGroupHeartbeat (key 88) and
//! StreamsGroupDescribe (key 89), versions 0-1, which `kafka-protocol` 0.18 does not have.
//! Requests are decoded, responses encoded (what a broker needs), on the bounds-checked
//! primitives of [`super::wire`]; each is checked byte for byte against bodies written by
//! Kafka 4.4.0's Java client (tests/fixtures/wire, `compat-tests/wire/gen.sh`).
//!
//! Wire notes: both APIs are flexible from v0; a nullable struct is written as an int8 (-1
//! null, 1 present) before its fields; every struct ends with a tagged-field section, which
//! we skip when reading and write empty.

use anyhow::{bail, Result};
use bytes::{BufMut, BytesMut};

use super::wire::{Reader, Writer};
use super::{ProtocolError, HEADER_ROOM};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// An internal topic the topology needs (changelog or repartition).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    /// 0: decided by the broker (a changelog gets its source topics' partition count).
    pub partitions: i32,
    /// 0 or -1: the broker default.
    pub replication_factor: i16,
    pub topic_configs: Vec<KeyValue>,
}

/// Topics whose partitions must be processed together, as indexes into the subtopology's
/// source topics, source regexes and repartition source topics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopartitionGroup {
    pub source_topics: Vec<i16>,
    pub source_topic_regex: Vec<i16>,
    pub repartition_source_topics: Vec<i16>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subtopology {
    pub subtopology_id: String,
    pub source_topics: Vec<String>,
    pub source_topic_regex: Vec<String>,
    pub state_changelog_topics: Vec<TopicInfo>,
    pub repartition_sink_topics: Vec<String>,
    pub repartition_source_topics: Vec<TopicInfo>,
    pub copartition_groups: Vec<CopartitionGroup>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    pub epoch: i32,
    pub subtopologies: Vec<Subtopology>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskOffset {
    pub subtopology_id: String,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskIds {
    pub subtopology_id: String,
    pub partitions: Vec<i32>,
}

/// StreamsGroupHeartbeat request, v0-1 (the two versions have the same fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub endpoint_information_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub topology: Option<Topology>,
    pub active_tasks: Option<Vec<TaskIds>>,
    pub standby_tasks: Option<Vec<TaskIds>>,
    pub warmup_tasks: Option<Vec<TaskIds>>,
    pub process_id: Option<String>,
    pub user_endpoint: Option<Endpoint>,
    pub client_tags: Option<Vec<KeyValue>>,
    pub task_offsets: Option<Vec<TaskOffset>>,
    pub task_end_offsets: Option<Vec<TaskOffset>>,
    pub shutdown_application: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub status_code: i8,
    pub status_detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointToPartitions {
    pub user_endpoint: Endpoint,
    pub active_partitions: Vec<TopicPartitions>,
    pub standby_partitions: Vec<TopicPartitions>,
}

/// StreamsGroupHeartbeat response. v0 carries the acceptable recovery lag as an int32
/// (`AcceptableRecoveryLagLegacy`), v1 as an int64 plus `TopologyDescriptionRequired`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatResponse {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub error_message: Option<String>,
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    pub acceptable_recovery_lag: i64,
    pub task_offset_interval_ms: i32,
    pub status: Option<Vec<Status>>,
    pub active_tasks: Option<Vec<TaskIds>>,
    pub standby_tasks: Option<Vec<TaskIds>>,
    pub warmup_tasks: Option<Vec<TaskIds>>,
    pub topology_description_required: bool,
    pub endpoint_information_epoch: i32,
    pub partitions_by_user_endpoint: Option<Vec<EndpointToPartitions>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeRequest {
    pub group_ids: Vec<String>,
    pub include_authorized_operations: bool,
    /// v1+.
    pub include_topology_description: bool,
}

/// A subtopology as StreamsGroupDescribe shows it (no regexes or copartition groups).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedSubtopology {
    pub subtopology_id: String,
    pub source_topics: Vec<String>,
    pub repartition_sink_topics: Vec<String>,
    pub state_changelog_topics: Vec<TopicInfo>,
    pub repartition_source_topics: Vec<TopicInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedTopology {
    pub epoch: i32,
    pub subtopologies: Option<Vec<DescribedSubtopology>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    pub active_tasks: Vec<TaskIds>,
    pub standby_tasks: Vec<TaskIds>,
    pub warmup_tasks: Vec<TaskIds>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedMember {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub topology_epoch: i32,
    pub process_id: String,
    pub user_endpoint: Option<Endpoint>,
    pub client_tags: Vec<KeyValue>,
    pub task_offsets: Vec<TaskOffset>,
    pub task_end_offsets: Vec<TaskOffset>,
    pub assignment: Assignment,
    pub target_assignment: Assignment,
    pub is_classic: bool,
}

/// One group of a StreamsGroupDescribe response. The v1 topology description (nodes and
/// stores, uploaded by StreamsGroupTopologyDescriptionUpdate) is always written as null: Strom
/// keeps none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedGroup {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub group_id: String,
    pub group_state: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub topology: Option<DescribedTopology>,
    pub members: Vec<DescribedMember>,
    pub authorized_operations: i32,
    /// v1+.
    pub topology_description_status: i8,
    /// v1+.
    pub assignor_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeResponse {
    pub throttle_time_ms: i32,
    pub groups: Vec<DescribedGroup>,
}

fn decode_err(what: &'static str) -> impl FnOnce(anyhow::Error) -> ProtocolError {
    move |source| ProtocolError::Decode { what, source }
}

fn check_version(version: i16) -> Result<()> {
    if !(0..=1).contains(&version) {
        bail!("version {version} not supported");
    }
    Ok(())
}

// The readers and writers below are shared with the streams group's `__consumer_offsets`
// records (`coordinator::streams_group::records`), which use the same structs.

/// Reads a compact array of `min` bytes or more per element with `f` (None: null).
pub(crate) fn array<T>(
    r: &mut Reader<'_>,
    min: usize,
    mut f: impl FnMut(&mut Reader<'_>) -> Result<T>,
) -> Result<Option<Vec<T>>> {
    let Some(n) = r.compact_array_len(min)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(f(r)?);
    }
    Ok(Some(out))
}

/// A compact array that may not be null.
pub(crate) fn vec<T>(
    r: &mut Reader<'_>,
    min: usize,
    f: impl FnMut(&mut Reader<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    match array(r, min, f)? {
        Some(v) => Ok(v),
        None => bail!("null where an array is required"),
    }
}

pub(crate) fn strings(r: &mut Reader<'_>) -> Result<Vec<String>> {
    vec(r, 1, |r| r.compact_string())
}

pub(crate) fn int32s(r: &mut Reader<'_>) -> Result<Vec<i32>> {
    vec(r, 4, |r| r.i32())
}

pub(crate) fn int16s(r: &mut Reader<'_>) -> Result<Vec<i16>> {
    vec(r, 2, |r| r.i16())
}

/// The int8 before a nullable struct: -1 null, 1 present.
fn present(r: &mut Reader<'_>) -> Result<bool> {
    match r.i8()? {
        -1 => Ok(false),
        1 => Ok(true),
        b => bail!("bad nullable-struct marker {b}"),
    }
}

pub(crate) fn key_value(r: &mut Reader<'_>) -> Result<KeyValue> {
    let kv = KeyValue {
        key: r.compact_string()?,
        value: r.compact_string()?,
    };
    r.skip_tagged_fields()?;
    Ok(kv)
}

pub(crate) fn topic_info(r: &mut Reader<'_>) -> Result<TopicInfo> {
    let t = TopicInfo {
        name: r.compact_string()?,
        partitions: r.i32()?,
        replication_factor: r.i16()?,
        topic_configs: vec(r, 3, key_value)?,
    };
    r.skip_tagged_fields()?;
    Ok(t)
}

pub(crate) fn copartition_group(r: &mut Reader<'_>) -> Result<CopartitionGroup> {
    let g = CopartitionGroup {
        source_topics: int16s(r)?,
        source_topic_regex: int16s(r)?,
        repartition_source_topics: int16s(r)?,
    };
    r.skip_tagged_fields()?;
    Ok(g)
}

pub(crate) fn subtopology(r: &mut Reader<'_>) -> Result<Subtopology> {
    let s = Subtopology {
        subtopology_id: r.compact_string()?,
        source_topics: strings(r)?,
        source_topic_regex: strings(r)?,
        state_changelog_topics: vec(r, 8, topic_info)?,
        repartition_sink_topics: strings(r)?,
        repartition_source_topics: vec(r, 8, topic_info)?,
        copartition_groups: vec(r, 4, copartition_group)?,
    };
    r.skip_tagged_fields()?;
    Ok(s)
}

pub(crate) fn task_ids(r: &mut Reader<'_>) -> Result<TaskIds> {
    let t = TaskIds {
        subtopology_id: r.compact_string()?,
        partitions: int32s(r)?,
    };
    r.skip_tagged_fields()?;
    Ok(t)
}

fn task_offset(r: &mut Reader<'_>) -> Result<TaskOffset> {
    let t = TaskOffset {
        subtopology_id: r.compact_string()?,
        partition: r.i32()?,
        offset: r.i64()?,
    };
    r.skip_tagged_fields()?;
    Ok(t)
}

pub(crate) fn endpoint(r: &mut Reader<'_>) -> Result<Endpoint> {
    let e = Endpoint {
        host: r.compact_string()?,
        port: r.i16()? as u16,
    };
    r.skip_tagged_fields()?;
    Ok(e)
}

pub fn decode_heartbeat(body: &[u8], version: i16) -> Result<HeartbeatRequest, ProtocolError> {
    let go = || -> Result<HeartbeatRequest> {
        check_version(version)?;
        let mut r = Reader::new(body);
        let req = HeartbeatRequest {
            group_id: r.compact_string()?,
            member_id: r.compact_string()?,
            member_epoch: r.i32()?,
            endpoint_information_epoch: r.i32()?,
            instance_id: r.compact_nullable_string()?,
            rack_id: r.compact_nullable_string()?,
            rebalance_timeout_ms: r.i32()?,
            topology: if present(&mut r)? {
                let t = Topology {
                    epoch: r.i32()?,
                    subtopologies: vec(&mut r, 8, subtopology)?,
                };
                r.skip_tagged_fields()?;
                Some(t)
            } else {
                None
            },
            active_tasks: array(&mut r, 3, task_ids)?,
            standby_tasks: array(&mut r, 3, task_ids)?,
            warmup_tasks: array(&mut r, 3, task_ids)?,
            process_id: r.compact_nullable_string()?,
            user_endpoint: if present(&mut r)? {
                Some(endpoint(&mut r)?)
            } else {
                None
            },
            client_tags: array(&mut r, 3, key_value)?,
            task_offsets: array(&mut r, 14, task_offset)?,
            task_end_offsets: array(&mut r, 14, task_offset)?,
            shutdown_application: r.bool()?,
        };
        r.skip_tagged_fields()?;
        r.finish()?;
        Ok(req)
    };
    go().map_err(decode_err("StreamsGroupHeartbeat request"))
}

pub fn decode_describe(body: &[u8], version: i16) -> Result<DescribeRequest, ProtocolError> {
    let go = || -> Result<DescribeRequest> {
        check_version(version)?;
        let mut r = Reader::new(body);
        let req = DescribeRequest {
            group_ids: strings(&mut r)?,
            include_authorized_operations: r.bool()?,
            include_topology_description: if version >= 1 { r.bool()? } else { false },
        };
        r.skip_tagged_fields()?;
        r.finish()?;
        Ok(req)
    };
    go().map_err(decode_err("StreamsGroupDescribe request"))
}

fn body_buf() -> BytesMut {
    let mut buf = BytesMut::with_capacity(HEADER_ROOM + 256);
    buf.put_bytes(0, HEADER_ROOM);
    buf
}

pub(crate) fn put_array<T>(
    w: &mut Writer<'_>,
    items: &[T],
    mut f: impl FnMut(&mut Writer<'_>, &T),
) {
    w.compact_array_len(items.len());
    for item in items {
        f(w, item);
    }
}

fn put_nullable_array<T>(
    w: &mut Writer<'_>,
    items: &Option<Vec<T>>,
    f: impl FnMut(&mut Writer<'_>, &T),
) {
    match items {
        None => w.uvarint(0),
        Some(items) => put_array(w, items, f),
    }
}

pub(crate) fn put_strings(w: &mut Writer<'_>, items: &[String]) {
    put_array(w, items, |w, s| w.compact_string(s));
}

pub(crate) fn put_int32s(w: &mut Writer<'_>, items: &[i32]) {
    put_array(w, items, |w, v| w.i32(*v));
}

pub(crate) fn put_key_value(w: &mut Writer<'_>, kv: &KeyValue) {
    w.compact_string(&kv.key);
    w.compact_string(&kv.value);
    w.no_tagged_fields();
}

pub(crate) fn put_topic_info(w: &mut Writer<'_>, t: &TopicInfo) {
    w.compact_string(&t.name);
    w.i32(t.partitions);
    w.i16(t.replication_factor);
    put_array(w, &t.topic_configs, put_key_value);
    w.no_tagged_fields();
}

pub(crate) fn put_task_ids(w: &mut Writer<'_>, t: &TaskIds) {
    w.compact_string(&t.subtopology_id);
    put_int32s(w, &t.partitions);
    w.no_tagged_fields();
}

fn put_task_offset(w: &mut Writer<'_>, t: &TaskOffset) {
    w.compact_string(&t.subtopology_id);
    w.i32(t.partition);
    w.i64(t.offset);
    w.no_tagged_fields();
}

pub(crate) fn put_endpoint(w: &mut Writer<'_>, e: &Endpoint) {
    w.compact_string(&e.host);
    w.i16(e.port as i16);
    w.no_tagged_fields();
}

fn put_topic_partitions(w: &mut Writer<'_>, t: &TopicPartitions) {
    w.compact_string(&t.topic);
    put_int32s(w, &t.partitions);
    w.no_tagged_fields();
}

/// Encodes a StreamsGroupHeartbeat response body at `version` (0 or 1), with room for the
/// frame header in front.
pub fn encode_heartbeat(resp: &HeartbeatResponse, version: i16) -> BytesMut {
    let mut buf = body_buf();
    let mut w = Writer { buf: &mut buf };
    w.i32(resp.throttle_time_ms);
    w.i16(resp.error_code);
    w.compact_nullable_string(resp.error_message.as_deref());
    w.compact_string(&resp.member_id);
    w.i32(resp.member_epoch);
    w.i32(resp.heartbeat_interval_ms);
    if version == 0 {
        w.i32(resp.acceptable_recovery_lag.clamp(0, i64::from(i32::MAX)) as i32);
    }
    w.i32(resp.task_offset_interval_ms);
    if version >= 1 {
        w.i64(resp.acceptable_recovery_lag);
    }
    put_nullable_array(&mut w, &resp.status, |w, s| {
        w.i8(s.status_code);
        w.compact_string(&s.status_detail);
        w.no_tagged_fields();
    });
    put_nullable_array(&mut w, &resp.active_tasks, put_task_ids);
    put_nullable_array(&mut w, &resp.standby_tasks, put_task_ids);
    put_nullable_array(&mut w, &resp.warmup_tasks, put_task_ids);
    if version >= 1 {
        w.bool(resp.topology_description_required);
    }
    w.i32(resp.endpoint_information_epoch);
    put_nullable_array(&mut w, &resp.partitions_by_user_endpoint, |w, e| {
        put_endpoint(w, &e.user_endpoint);
        put_array(w, &e.active_partitions, put_topic_partitions);
        put_array(w, &e.standby_partitions, put_topic_partitions);
        w.no_tagged_fields();
    });
    w.no_tagged_fields();
    buf
}

fn put_assignment(w: &mut Writer<'_>, a: &Assignment) {
    put_array(w, &a.active_tasks, put_task_ids);
    put_array(w, &a.standby_tasks, put_task_ids);
    put_array(w, &a.warmup_tasks, put_task_ids);
    w.no_tagged_fields();
}

/// Encodes a StreamsGroupDescribe response body at `version` (0 or 1).
pub fn encode_describe(resp: &DescribeResponse, version: i16) -> BytesMut {
    let mut buf = body_buf();
    let mut w = Writer { buf: &mut buf };
    w.i32(resp.throttle_time_ms);
    put_array(&mut w, &resp.groups, |w, g| {
        w.i16(g.error_code);
        w.compact_nullable_string(g.error_message.as_deref());
        w.compact_string(&g.group_id);
        w.compact_string(&g.group_state);
        w.i32(g.group_epoch);
        w.i32(g.assignment_epoch);
        match &g.topology {
            None => w.i8(-1),
            Some(t) => {
                w.i8(1);
                w.i32(t.epoch);
                put_nullable_array(w, &t.subtopologies, |w, s| {
                    w.compact_string(&s.subtopology_id);
                    put_strings(w, &s.source_topics);
                    put_strings(w, &s.repartition_sink_topics);
                    put_array(w, &s.state_changelog_topics, put_topic_info);
                    put_array(w, &s.repartition_source_topics, put_topic_info);
                    w.no_tagged_fields();
                });
                w.no_tagged_fields();
            }
        }
        put_array(w, &g.members, |w, m| {
            w.compact_string(&m.member_id);
            w.i32(m.member_epoch);
            w.compact_nullable_string(m.instance_id.as_deref());
            w.compact_nullable_string(m.rack_id.as_deref());
            w.compact_string(&m.client_id);
            w.compact_string(&m.client_host);
            w.i32(m.topology_epoch);
            w.compact_string(&m.process_id);
            match &m.user_endpoint {
                None => w.i8(-1),
                Some(e) => {
                    w.i8(1);
                    put_endpoint(w, e);
                }
            }
            put_array(w, &m.client_tags, put_key_value);
            put_array(w, &m.task_offsets, put_task_offset);
            put_array(w, &m.task_end_offsets, put_task_offset);
            put_assignment(w, &m.assignment);
            put_assignment(w, &m.target_assignment);
            w.bool(m.is_classic);
            w.no_tagged_fields();
        });
        w.i32(g.authorized_operations);
        if version >= 1 {
            w.i8(-1); // TopologyDescription: none kept
            w.i8(g.topology_description_status);
            w.compact_nullable_string(g.assignor_name.as_deref());
        }
        w.no_tagged_fields();
    });
    w.no_tagged_fields();
    buf
}

#[cfg(test)]
mod tests;
