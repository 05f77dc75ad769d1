//! Codecs for the share-group fetch APIs (KIP-932): ShareFetch (key 78) and ShareAcknowledge
//! (key 79), versions 1-2. `kafka-protocol` 0.18 has only v1; Kafka 4.2+ clients send v2
//! (ShareAcquireMode, KIP-1206; Renew acknowledgements, KIP-1222). One codec serves both
//! versions, so the handlers see one request type. Requests are decoded and responses encoded
//! on the bounds-checked primitives of [`super::wire`]; v1 is checked byte for byte against
//! the crate, v2 against bodies written by Kafka 4.4.0's Java client (tests/fixtures/wire,
//! `compat-tests/wire/gen.sh`).
//!
//! A ShareFetch response is mostly record batches read from segment files: like
//! [`super::fetch_response`], [`encode_share_fetch_response`] returns the pieces around the
//! records so they go from the file to the socket by sendfile.
//!
//! Wire notes: both APIs are flexible in every version; `Records` is non-nullable from v1.

use anyhow::{bail, Result};
use bytes::{BufMut, BytesMut};
use uuid::Uuid;

use super::fetch_response::FetchPieces;
use super::wire::{Reader, Writer};
use super::{ProtocolError, HEADER_ROOM};

/// The versions served (and decoded here).
pub const MIN_VERSION: i16 = 1;
pub const MAX_VERSION: i16 = 2;

/// Acknowledge types (the `AcknowledgeTypes` bytes).
pub const ACK_GAP: i8 = 0;
pub const ACK_ACCEPT: i8 = 1;
pub const ACK_RELEASE: i8 = 2;
pub const ACK_REJECT: i8 = 3;
pub const ACK_RENEW: i8 = 4;

/// `ShareAcquireMode` (v2): 0 batch-optimized, 1 record-limit.
pub const ACQUIRE_BATCH_OPTIMIZED: i8 = 0;
pub const ACQUIRE_RECORD_LIMIT: i8 = 1;

/// One acknowledgement range: `types` holds one type for the whole range or one per offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckBatch {
    pub first_offset: i64,
    pub last_offset: i64,
    pub types: Vec<i8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionAcks {
    pub partition: i32,
    pub batches: Vec<AckBatch>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicAcks {
    pub topic_id: Uuid,
    pub partitions: Vec<PartitionAcks>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForgottenTopic {
    pub topic_id: Uuid,
    pub partitions: Vec<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareFetchRequest {
    pub group_id: Option<String>,
    pub member_id: Option<String>,
    pub share_session_epoch: i32,
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub max_records: i32,
    pub batch_size: i32,
    /// v2; 0 (batch-optimized) before.
    pub acquire_mode: i8,
    /// v2; false before.
    pub is_renew_ack: bool,
    /// Partitions to fetch from, each with the acknowledgements piggybacked on the fetch.
    pub topics: Vec<TopicAcks>,
    pub forgotten: Vec<ForgottenTopic>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareAcknowledgeRequest {
    pub group_id: Option<String>,
    pub member_id: Option<String>,
    pub share_session_epoch: i32,
    /// v2; false before.
    pub is_renew_ack: bool,
    pub topics: Vec<TopicAcks>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderIdAndEpoch {
    pub leader_id: i32,
    pub leader_epoch: i32,
}

impl Default for LeaderIdAndEpoch {
    fn default() -> Self {
        LeaderIdAndEpoch {
            leader_id: -1,
            leader_epoch: -1,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcquiredRange {
    pub first_offset: i64,
    pub last_offset: i64,
    pub delivery_count: i16,
}

impl AcquiredRange {
    /// The records in the range.
    pub fn len(&self) -> i64 {
        self.last_offset - self.first_offset + 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() <= 0
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchPartitionResponse {
    pub partition: i32,
    pub error_code: i16,
    pub error_message: Option<String>,
    pub ack_error_code: i16,
    pub ack_error_message: Option<String>,
    pub current_leader: LeaderIdAndEpoch,
    /// The length of the record bytes that follow this partition's fields (sent separately).
    pub records_len: usize,
    pub acquired: Vec<AcquiredRange>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeEndpoint {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareFetchResponse {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub error_message: Option<String>,
    pub acquisition_lock_timeout_ms: i32,
    pub responses: Vec<(Uuid, Vec<FetchPartitionResponse>)>,
    pub node_endpoints: Vec<NodeEndpoint>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckPartitionResponse {
    pub partition: i32,
    pub error_code: i16,
    pub error_message: Option<String>,
    pub current_leader: LeaderIdAndEpoch,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareAcknowledgeResponse {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub error_message: Option<String>,
    /// v2 only.
    pub acquisition_lock_timeout_ms: i32,
    pub responses: Vec<(Uuid, Vec<AckPartitionResponse>)>,
    pub node_endpoints: Vec<NodeEndpoint>,
}

fn check_version(version: i16) -> Result<()> {
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        bail!("version {version} is not served");
    }
    Ok(())
}

fn array<T>(
    r: &mut Reader<'_>,
    min_element: usize,
    mut item: impl FnMut(&mut Reader<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = r.compact_array_len(min_element)?.unwrap_or(0);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(item(r)?);
    }
    Ok(out)
}

fn ack_batch(r: &mut Reader<'_>) -> Result<AckBatch> {
    let first_offset = r.i64()?;
    let last_offset = r.i64()?;
    let types = array(r, 1, |r| r.i8())?;
    r.skip_tagged_fields()?;
    Ok(AckBatch {
        first_offset,
        last_offset,
        types,
    })
}

fn topic_acks(r: &mut Reader<'_>) -> Result<TopicAcks> {
    let topic_id = r.uuid()?;
    let partitions = array(r, 6, |r| {
        let partition = r.i32()?;
        let batches = array(r, 18, ack_batch)?;
        r.skip_tagged_fields()?;
        Ok(PartitionAcks { partition, batches })
    })?;
    r.skip_tagged_fields()?;
    Ok(TopicAcks {
        topic_id,
        partitions,
    })
}

fn decode_err(what: &'static str) -> impl FnOnce(anyhow::Error) -> ProtocolError {
    move |source| ProtocolError::Decode { what, source }
}

pub fn decode_share_fetch(body: &[u8], version: i16) -> Result<ShareFetchRequest, ProtocolError> {
    (|| {
        check_version(version)?;
        let mut r = Reader::new(body);
        let mut q = ShareFetchRequest {
            group_id: r.compact_nullable_string()?,
            member_id: r.compact_nullable_string()?,
            share_session_epoch: r.i32()?,
            max_wait_ms: r.i32()?,
            min_bytes: r.i32()?,
            max_bytes: r.i32()?,
            max_records: r.i32()?,
            batch_size: r.i32()?,
            ..Default::default()
        };
        if version >= 2 {
            q.acquire_mode = r.i8()?;
            q.is_renew_ack = r.bool()?;
        }
        q.topics = array(&mut r, 18, topic_acks)?;
        q.forgotten = array(&mut r, 18, |r| {
            let topic_id = r.uuid()?;
            let partitions = array(r, 4, |r| r.i32())?;
            r.skip_tagged_fields()?;
            Ok(ForgottenTopic {
                topic_id,
                partitions,
            })
        })?;
        r.skip_tagged_fields()?;
        r.finish()?;
        Ok(q)
    })()
    .map_err(decode_err("ShareFetch request"))
}

pub fn decode_share_acknowledge(
    body: &[u8],
    version: i16,
) -> Result<ShareAcknowledgeRequest, ProtocolError> {
    (|| {
        check_version(version)?;
        let mut r = Reader::new(body);
        let mut q = ShareAcknowledgeRequest {
            group_id: r.compact_nullable_string()?,
            member_id: r.compact_nullable_string()?,
            share_session_epoch: r.i32()?,
            ..Default::default()
        };
        if version >= 2 {
            q.is_renew_ack = r.bool()?;
        }
        q.topics = array(&mut r, 18, topic_acks)?;
        r.skip_tagged_fields()?;
        r.finish()?;
        Ok(q)
    })()
    .map_err(decode_err("ShareAcknowledge request"))
}

fn leader(w: &mut Writer<'_>, l: &LeaderIdAndEpoch) {
    w.i32(l.leader_id);
    w.i32(l.leader_epoch);
    w.no_tagged_fields();
}

fn node_endpoints(w: &mut Writer<'_>, nodes: &[NodeEndpoint]) {
    w.compact_array_len(nodes.len());
    for n in nodes {
        w.i32(n.node_id);
        w.compact_string(&n.host);
        w.i32(n.port);
        w.compact_nullable_string(n.rack.as_deref());
        w.no_tagged_fields();
    }
}

fn check_encode_version(version: i16) -> Result<(), ProtocolError> {
    check_version(version).map_err(ProtocolError::Encode)
}

/// Encodes a ShareFetch response at `version` into pieces: `pieces[0]` (with the frame header
/// room in front), then the records of the i-th partition (in response order, `records_len`
/// bytes each, possibly 0) followed by `pieces[i + 1]`.
pub fn encode_share_fetch_response(
    resp: &ShareFetchResponse,
    version: i16,
) -> Result<FetchPieces, ProtocolError> {
    check_encode_version(version)?;
    let mut pieces = Vec::new();
    let mut cur = BytesMut::with_capacity(HEADER_ROOM + 256);
    cur.put_bytes(0, HEADER_ROOM);
    {
        let mut w = Writer { buf: &mut cur };
        w.i32(resp.throttle_time_ms);
        w.i16(resp.error_code);
        w.compact_nullable_string(resp.error_message.as_deref());
        w.i32(resp.acquisition_lock_timeout_ms);
        w.compact_array_len(resp.responses.len());
    }
    for (topic_id, partitions) in &resp.responses {
        let mut w = Writer { buf: &mut cur };
        w.uuid(topic_id);
        w.compact_array_len(partitions.len());
        for p in partitions {
            let mut w = Writer { buf: &mut cur };
            w.i32(p.partition);
            w.i16(p.error_code);
            w.compact_nullable_string(p.error_message.as_deref());
            w.i16(p.ack_error_code);
            w.compact_nullable_string(p.ack_error_message.as_deref());
            leader(&mut w, &p.current_leader);
            let len = u32::try_from(p.records_len)
                .ok()
                .filter(|l| *l < u32::MAX)
                .ok_or_else(|| ProtocolError::Encode(anyhow::anyhow!("records too large")))?;
            w.uvarint(len + 1);
            pieces.push(std::mem::replace(&mut cur, BytesMut::with_capacity(64)));
            let mut w = Writer { buf: &mut cur };
            w.compact_array_len(p.acquired.len());
            for a in &p.acquired {
                w.i64(a.first_offset);
                w.i64(a.last_offset);
                w.i16(a.delivery_count);
                w.no_tagged_fields();
            }
            w.no_tagged_fields();
        }
        Writer { buf: &mut cur }.no_tagged_fields();
    }
    let mut w = Writer { buf: &mut cur };
    node_endpoints(&mut w, &resp.node_endpoints);
    w.no_tagged_fields();
    pieces.push(cur);
    Ok(FetchPieces { pieces })
}

pub fn encode_share_acknowledge_response(
    resp: &ShareAcknowledgeResponse,
    version: i16,
) -> Result<BytesMut, ProtocolError> {
    check_encode_version(version)?;
    let mut buf = BytesMut::with_capacity(HEADER_ROOM + 128);
    buf.put_bytes(0, HEADER_ROOM);
    let mut w = Writer { buf: &mut buf };
    w.i32(resp.throttle_time_ms);
    w.i16(resp.error_code);
    w.compact_nullable_string(resp.error_message.as_deref());
    if version >= 2 {
        w.i32(resp.acquisition_lock_timeout_ms);
    }
    w.compact_array_len(resp.responses.len());
    for (topic_id, partitions) in &resp.responses {
        w.uuid(topic_id);
        w.compact_array_len(partitions.len());
        for p in partitions {
            w.i32(p.partition);
            w.i16(p.error_code);
            w.compact_nullable_string(p.error_message.as_deref());
            leader(&mut w, &p.current_leader);
            w.no_tagged_fields();
        }
        w.no_tagged_fields();
    }
    node_endpoints(&mut w, &resp.node_endpoints);
    w.no_tagged_fields();
    Ok(buf)
}

#[cfg(test)]
mod tests;

/// One partition of a DescribeShareGroupOffsets response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetsPartition {
    pub partition: i32,
    pub start_offset: i64,
    pub leader_epoch: i32,
    /// v1 (KIP-1226); -1 when unknown.
    pub lag: i64,
    pub error_code: i16,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetsTopic {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: Vec<OffsetsPartition>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetsGroup {
    pub group_id: String,
    pub topics: Vec<OffsetsTopic>,
    pub error_code: i16,
    pub error_message: Option<String>,
}

/// Encodes a DescribeShareGroupOffsets response, versions 0-1 (v1 adds each partition's Lag;
/// the crate has v0 only). The request's bytes are v0's in both versions.
pub fn encode_describe_offsets_response(
    groups: &[OffsetsGroup],
    version: i16,
) -> Result<BytesMut, ProtocolError> {
    if !(0..=1).contains(&version) {
        return Err(ProtocolError::Encode(anyhow::anyhow!(
            "DescribeShareGroupOffsets v{version}"
        )));
    }
    let mut buf = BytesMut::with_capacity(HEADER_ROOM + 128);
    buf.put_bytes(0, HEADER_ROOM);
    let mut w = Writer { buf: &mut buf };
    w.i32(0);
    w.compact_array_len(groups.len());
    for g in groups {
        w.compact_string(&g.group_id);
        w.compact_array_len(g.topics.len());
        for t in &g.topics {
            w.compact_string(&t.name);
            w.uuid(&t.topic_id);
            w.compact_array_len(t.partitions.len());
            for p in &t.partitions {
                w.i32(p.partition);
                w.i64(p.start_offset);
                w.i32(p.leader_epoch);
                if version >= 1 {
                    w.i64(p.lag);
                }
                w.i16(p.error_code);
                w.compact_nullable_string(p.error_message.as_deref());
                w.no_tagged_fields();
            }
            w.no_tagged_fields();
        }
        w.i16(g.error_code);
        w.compact_nullable_string(g.error_message.as_deref());
        w.no_tagged_fields();
    }
    w.no_tagged_fields();
    Ok(buf)
}
