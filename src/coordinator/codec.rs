//! Records of the `__consumer_offsets` internal topic, in Apache Kafka's own layout so Kafka's
//! tools can read them (docs/FORMAT.md):
//!
//! - offset commit: key v1 `{i16 1, string group, string topic, i32 partition}`,
//!   value v3 `{i16 3, i64 offset, i32 leader_epoch, string metadata, i64 commit_timestamp}`;
//! - group metadata: key v2 `{i16 2, string group}`, value v3 `{i16 3, string protocol_type,
//!   i32 generation, nullable string protocol, nullable string leader, i64 state_timestamp,
//!   [member_id, nullable instance_id, client_id, client_host, i32 rebalance_timeout,
//!   i32 session_timeout, bytes subscription, bytes assignment]}`;
//! - a null value is a tombstone (offset deleted / group deleted);
//! - KIP-848 consumer groups, Kafka 4.x's record types (key `{i16 type, string group[,
//!   string member]}`, value `{i16 0, flexible fields}`): 3 group epoch, 4 subscribed topics'
//!   partition counts, 5 member subscription, 6 target assignment epoch, 7 member target
//!   assignment, 8 member current assignment (epochs, state, assigned and pending-revocation
//!   partitions). See [`CgRecord`].
//!
//! Classic strings are i16-length-prefixed UTF-8 (-1 = null), bytes i32-length-prefixed.
//! Consumer-group values use Kafka's flexible encoding: compact strings and arrays (unsigned
//! varint length + 1, 0 = null), 16-byte uuids, and a tagged-field section (written empty,
//! skipped on read) closing every struct.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut};
use uuid::Uuid;

use crate::coordinator::assignor::Assignment;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
    /// A KIP-848 consumer-group record (key types 3 to 8).
    Consumer {
        group: String,
        kind: CgKind,
    },
    /// A KIP-1071 streams-group record (key types 17, 19 to 23), in
    /// [`crate::coordinator::streams_group::records`].
    Streams {
        group: String,
        kind: crate::coordinator::streams_group::records::Kind,
    },
    /// A KIP-932 share-group record (key types 10, 11 and 14), in
    /// [`crate::coordinator::share_group::records`].
    Share {
        group: String,
        kind: crate::coordinator::share_group::records::Kind,
    },
}

impl Key {
    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            Key::Offset { group, .. }
            | Key::Group { group }
            | Key::Consumer { group, .. }
            | Key::Streams { group, .. }
            | Key::Share { group, .. } => group,
        }
    }
}

/// Which consumer-group record a key names; member records carry the member id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum CgKind {
    /// 3: `ConsumerGroupMetadata` (group epoch).
    Epoch,
    /// 4: `ConsumerGroupPartitionMetadata` (subscribed topics and their partition counts).
    PartitionMetadata,
    /// 5: `ConsumerGroupMemberMetadata` (the member's subscription).
    Member(String),
    /// 6: `ConsumerGroupTargetAssignmentMetadata` (assignment epoch).
    TargetEpoch,
    /// 7: `ConsumerGroupTargetAssignmentMember`.
    Target(String),
    /// 8: `ConsumerGroupCurrentMemberAssignment`.
    Current(String),
}

impl CgKind {
    fn record_type(&self) -> i16 {
        match self {
            CgKind::Epoch => 3,
            CgKind::PartitionMetadata => 4,
            CgKind::Member(_) => 5,
            CgKind::TargetEpoch => 6,
            CgKind::Target(_) => 7,
            CgKind::Current(_) => 8,
        }
    }
}

/// `ConsumerGroupMemberMetadataValue` v0; `classic` is its tagged field 0
/// (`ClassicMemberMetadata`), present only for members that use the classic protocol inside a
/// consumer group (online migration).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgMemberValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    pub classic: Option<ClassicMemberValue>,
}

/// `ClassicMemberMetadata`: what a classic member sent in its JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassicMemberValue {
    pub session_timeout_ms: i32,
    /// (protocol name, ConsumerProtocol subscription bytes), in the member's preference order.
    pub protocols: Vec<(String, Vec<u8>)>,
}

/// `ConsumerGroupCurrentMemberAssignmentValue` v0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgCurrentValue {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// Kafka's `MemberState`: 0 stable, 1 unrevoked partitions, 2 unreleased partitions.
    pub state: i8,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
}

/// The value of a consumer-group record, by kind (None in [`decode_cg_value`] = tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgValue {
    /// 3 and 6: the group epoch or the assignment epoch.
    Epoch(i32),
    /// 4: topic id -> (name, partition count).
    PartitionMetadata(BTreeMap<Uuid, (String, i32)>),
    Member(CgMemberValue),
    Target(Assignment),
    Current(CgCurrentValue),
}

/// A consumer-group record ready to append: key and value (None = tombstone).
pub type CgRecord = (Vec<u8>, Option<Vec<u8>>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp: i64,
    pub members: Vec<MemberValue>,
}

/// The longest prefix of `s` that fits Kafka's string limit, cut at a character boundary.
fn clamp(s: &str) -> &str {
    let mut n = s.len().min(i16::MAX as usize);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

fn put_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            let s = clamp(s);
            out.put_i16(s.len() as i16);
            out.extend_from_slice(s.as_bytes());
        }
        None => out.put_i16(-1),
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn put_compact_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            let s = clamp(s);
            put_uvarint(out, s.len() as u32 + 1);
            out.extend_from_slice(s.as_bytes());
        }
        None => put_uvarint(out, 0),
    }
}

fn put_compact_len(out: &mut Vec<u8>, n: usize) {
    put_uvarint(out, u32::try_from(n).unwrap_or(u32::MAX - 1) + 1);
}

/// An empty tagged-field section (closes every flexible struct).
fn put_no_tags(out: &mut Vec<u8>) {
    put_uvarint(out, 0);
}

/// `[]TopicPartitions {uuid TopicId, []int32 Partitions}` of the flexible values.
fn put_assignment(out: &mut Vec<u8>, a: &Assignment) {
    put_compact_len(out, a.len());
    for (topic, parts) in a {
        out.extend_from_slice(topic.as_bytes());
        put_compact_len(out, parts.len());
        for p in parts {
            out.put_i32(*p);
        }
        put_no_tags(out);
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.extend_from_slice(b);
}

pub fn encode_key(k: &Key) -> Vec<u8> {
    let mut out = Vec::new();
    match k {
        Key::Offset {
            group,
            topic,
            partition,
        } => {
            out.put_i16(1);
            put_str(&mut out, Some(group));
            put_str(&mut out, Some(topic));
            out.put_i32(*partition);
        }
        Key::Group { group } => {
            out.put_i16(2);
            put_str(&mut out, Some(group));
        }
        Key::Streams { group, kind } => {
            return crate::coordinator::streams_group::records::encode_key(group, kind);
        }
        Key::Share { group, kind } => {
            return crate::coordinator::share_group::records::encode_key(group, kind);
        }
        Key::Consumer { group, kind } => {
            out.put_i16(kind.record_type());
            put_str(&mut out, Some(group));
            match kind {
                CgKind::Member(m) | CgKind::Target(m) | CgKind::Current(m) => {
                    put_str(&mut out, Some(m))
                }
                CgKind::Epoch | CgKind::PartitionMetadata | CgKind::TargetEpoch => {}
            }
        }
    }
    out
}

/// Encodes a consumer-group value (version 0, flexible).
pub fn encode_cg_value(v: &CgValue) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_i16(0);
    match v {
        CgValue::Epoch(e) => out.put_i32(*e),
        CgValue::PartitionMetadata(topics) => {
            put_compact_len(&mut out, topics.len());
            for (id, (name, partitions)) in topics {
                out.extend_from_slice(id.as_bytes());
                put_compact_str(&mut out, Some(name));
                out.put_i32(*partitions);
                // PartitionMetadata (racks per partition): unused since Kafka 4.0.
                put_compact_len(&mut out, 0);
                put_no_tags(&mut out);
            }
        }
        CgValue::Member(m) => {
            put_compact_str(&mut out, m.instance_id.as_deref());
            put_compact_str(&mut out, m.rack_id.as_deref());
            put_compact_str(&mut out, Some(&m.client_id));
            put_compact_str(&mut out, Some(&m.client_host));
            put_compact_len(&mut out, m.subscribed_topic_names.len());
            for n in &m.subscribed_topic_names {
                put_compact_str(&mut out, Some(n));
            }
            put_compact_str(&mut out, m.subscribed_topic_regex.as_deref());
            out.put_i32(m.rebalance_timeout_ms);
            put_compact_str(&mut out, m.server_assignor.as_deref());
            if let Some(c) = &m.classic {
                // Tagged fields: one field, tag 0, then its size and the struct.
                let mut field = Vec::new();
                field.put_i32(c.session_timeout_ms);
                put_compact_len(&mut field, c.protocols.len());
                for (name, meta) in &c.protocols {
                    put_compact_str(&mut field, Some(name));
                    put_compact_len(&mut field, meta.len());
                    field.extend_from_slice(meta);
                    put_no_tags(&mut field);
                }
                put_no_tags(&mut field);
                put_uvarint(&mut out, 1);
                put_uvarint(&mut out, 0);
                put_uvarint(&mut out, field.len() as u32);
                out.extend_from_slice(&field);
                return out;
            }
        }
        CgValue::Target(a) => put_assignment(&mut out, a),
        CgValue::Current(c) => {
            out.put_i32(c.member_epoch);
            out.put_i32(c.previous_member_epoch);
            out.put_i8(c.state);
            put_assignment(&mut out, &c.assigned);
            put_assignment(&mut out, &c.pending_revocation);
        }
    }
    put_no_tags(&mut out);
    out
}

pub fn encode_offset(v: &OffsetValue) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_i16(3);
    out.put_i64(v.offset);
    out.put_i32(v.leader_epoch);
    put_str(&mut out, Some(&v.metadata));
    out.put_i64(v.commit_timestamp);
    out
}

pub fn encode_group(v: &GroupValue) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_i16(3);
    put_str(&mut out, Some(&v.protocol_type));
    out.put_i32(v.generation);
    put_str(&mut out, v.protocol.as_deref());
    put_str(&mut out, v.leader.as_deref());
    out.put_i64(v.state_timestamp);
    out.put_i32(v.members.len() as i32);
    for m in &v.members {
        put_str(&mut out, Some(&m.member_id));
        put_str(&mut out, m.instance_id.as_deref());
        put_str(&mut out, Some(&m.client_id));
        put_str(&mut out, Some(&m.client_host));
        out.put_i32(m.rebalance_timeout_ms);
        out.put_i32(m.session_timeout_ms);
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out
}

#[derive(Debug, thiserror::Error)]
#[error("malformed __consumer_offsets record: {0}")]
pub struct CodecError(&'static str);

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn need(&self, n: usize) -> Result<(), CodecError> {
        if self.0.remaining() < n {
            Err(CodecError("truncated"))
        } else {
            Ok(())
        }
    }
    fn i16(&mut self) -> Result<i16, CodecError> {
        self.need(2)?;
        Ok(self.0.get_i16())
    }
    fn i32(&mut self) -> Result<i32, CodecError> {
        self.need(4)?;
        Ok(self.0.get_i32())
    }
    fn i64(&mut self) -> Result<i64, CodecError> {
        self.need(8)?;
        Ok(self.0.get_i64())
    }
    fn opt_str(&mut self) -> Result<Option<String>, CodecError> {
        let n = self.i16()?;
        if n < 0 {
            return Ok(None);
        }
        self.need(n as usize)?;
        let s = std::str::from_utf8(&self.0[..n as usize])
            .map_err(|_| CodecError("string not UTF-8"))?
            .to_string();
        self.0.advance(n as usize);
        Ok(Some(s))
    }
    fn str(&mut self) -> Result<String, CodecError> {
        self.opt_str()?.ok_or(CodecError("null string"))
    }
    fn i8(&mut self) -> Result<i8, CodecError> {
        self.need(1)?;
        Ok(self.0.get_i8())
    }
    fn uvarint(&mut self) -> Result<u32, CodecError> {
        let mut v: u32 = 0;
        for i in 0..5 {
            self.need(1)?;
            let b = self.0.get_u8();
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError("varint too long"))
    }
    /// A compact array length; each element takes at least `min_size` bytes, so a count the
    /// remaining input cannot hold is refused before anything is allocated.
    fn compact_len(&mut self, min_size: usize) -> Result<usize, CodecError> {
        let n = self.uvarint()?;
        if n == 0 {
            return Err(CodecError("null array"));
        }
        let n = (n - 1) as usize;
        if n.saturating_mul(min_size) > self.0.remaining() {
            return Err(CodecError("array longer than the record"));
        }
        Ok(n)
    }
    fn compact_opt_str(&mut self) -> Result<Option<String>, CodecError> {
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(None);
        }
        let n = (n - 1) as usize;
        self.need(n)?;
        let s = std::str::from_utf8(&self.0[..n])
            .map_err(|_| CodecError("string not UTF-8"))?
            .to_string();
        self.0.advance(n);
        Ok(Some(s))
    }
    fn compact_str(&mut self) -> Result<String, CodecError> {
        self.compact_opt_str()?.ok_or(CodecError("null string"))
    }
    fn uuid(&mut self) -> Result<Uuid, CodecError> {
        self.need(16)?;
        let mut b = [0u8; 16];
        self.0.copy_to_slice(&mut b);
        Ok(Uuid::from_bytes(b))
    }
    /// Skips a tagged-field section (fields we do not use, e.g. Kafka 4.1's MetadataHash).
    fn skip_tags(&mut self) -> Result<(), CodecError> {
        let n = self.uvarint()?;
        for _ in 0..n {
            let _tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.need(size)?;
            self.0.advance(size);
        }
        Ok(())
    }
    /// The member value's tagged fields: tag 0 is `ClassicMemberMetadata`, others are skipped.
    fn member_tags(&mut self) -> Result<Option<ClassicMemberValue>, CodecError> {
        let n = self.uvarint()?;
        let mut classic = None;
        for _ in 0..n {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.need(size)?;
            if tag != 0 {
                self.0.advance(size);
                continue;
            }
            let mut f = Reader(&self.0[..size]);
            let session_timeout_ms = f.i32()?;
            // name (>= 1 byte) + metadata (>= 1) + tags (1).
            let np = f.compact_len(3)?;
            let mut protocols = Vec::with_capacity(np);
            for _ in 0..np {
                let name = f.compact_str()?;
                let len = f.compact_len(1)?;
                f.need(len)?;
                let meta = f.0[..len].to_vec();
                f.0.advance(len);
                f.skip_tags()?;
                protocols.push((name, meta));
            }
            f.skip_tags()?;
            if !f.0.is_empty() {
                return Err(CodecError("trailing bytes in ClassicMemberMetadata"));
            }
            self.0.advance(size);
            classic = Some(ClassicMemberValue {
                session_timeout_ms,
                protocols,
            });
        }
        Ok(classic)
    }
    fn assignment(&mut self) -> Result<Assignment, CodecError> {
        let n = self.compact_len(18)?;
        let mut a = Assignment::new();
        for _ in 0..n {
            let topic = self.uuid()?;
            let np = self.compact_len(4)?;
            let parts = a.entry(topic).or_default();
            for _ in 0..np {
                parts.insert(self.i32()?);
            }
            self.skip_tags()?;
        }
        a.retain(|_, ps| !ps.is_empty());
        Ok(a)
    }
    fn bytes(&mut self) -> Result<Vec<u8>, CodecError> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(Vec::new());
        }
        self.need(n as usize)?;
        let v = self.0[..n as usize].to_vec();
        self.0.advance(n as usize);
        Ok(v)
    }
}

pub fn decode_key(b: &[u8]) -> Result<Key, CodecError> {
    let mut r = Reader(b);
    match r.i16()? {
        0 | 1 => Ok(Key::Offset {
            group: r.str()?,
            topic: r.str()?,
            partition: r.i32()?,
        }),
        2 => Ok(Key::Group { group: r.str()? }),
        t @ 3..=8 => {
            let group = r.str()?;
            let kind = match t {
                3 => CgKind::Epoch,
                4 => CgKind::PartitionMetadata,
                5 => CgKind::Member(r.str()?),
                6 => CgKind::TargetEpoch,
                7 => CgKind::Target(r.str()?),
                _ => CgKind::Current(r.str()?),
            };
            Ok(Key::Consumer { group, kind })
        }
        t if crate::coordinator::streams_group::records::Kind::is_streams(t) => {
            let (group, kind) = crate::coordinator::streams_group::records::decode_key(b)
                .map_err(|_| CodecError("malformed streams group key"))?;
            Ok(Key::Streams { group, kind })
        }
        t if crate::coordinator::share_group::records::Kind::is_share(t) => {
            match crate::coordinator::share_group::records::decode_key(b) {
                Ok(Some((group, kind))) => Ok(Key::Share { group, kind }),
                Ok(None) => Err(CodecError("share group record Strom does not keep")),
                Err(_) => Err(CodecError("malformed share group key")),
            }
        }
        // 9, 16: regular expressions, ...: not ours to replay.
        _ => Err(CodecError("unknown key version")),
    }
}

/// Decodes the value of a consumer-group record of `kind`.
pub fn decode_cg_value(kind: &CgKind, b: &[u8]) -> Result<CgValue, CodecError> {
    let mut r = Reader(b);
    if r.i16()? != 0 {
        return Err(CodecError("unsupported consumer group record version"));
    }
    let v = match kind {
        CgKind::Epoch | CgKind::TargetEpoch => CgValue::Epoch(r.i32()?),
        CgKind::PartitionMetadata => {
            // uuid + name + count + racks + tags: at least 23 bytes each.
            let n = r.compact_len(23)?;
            let mut topics = BTreeMap::new();
            for _ in 0..n {
                let id = r.uuid()?;
                let name = r.compact_str()?;
                let partitions = r.i32()?;
                let racks = r.compact_len(3)?;
                for _ in 0..racks {
                    let _partition = r.i32()?;
                    let nr = r.compact_len(1)?;
                    for _ in 0..nr {
                        r.compact_str()?;
                    }
                    r.skip_tags()?;
                }
                r.skip_tags()?;
                topics.insert(id, (name, partitions));
            }
            CgValue::PartitionMetadata(topics)
        }
        CgKind::Member(_) => {
            let instance_id = r.compact_opt_str()?;
            let rack_id = r.compact_opt_str()?;
            let client_id = r.compact_str()?;
            let client_host = r.compact_str()?;
            let n = r.compact_len(1)?;
            let mut subscribed_topic_names = Vec::with_capacity(n);
            for _ in 0..n {
                subscribed_topic_names.push(r.compact_str()?);
            }
            let subscribed_topic_regex = r.compact_opt_str()?;
            let rebalance_timeout_ms = r.i32()?;
            let server_assignor = r.compact_opt_str()?;
            let classic = r.member_tags()?;
            return Ok(CgValue::Member(CgMemberValue {
                instance_id,
                rack_id,
                client_id,
                client_host,
                subscribed_topic_names,
                subscribed_topic_regex,
                rebalance_timeout_ms,
                server_assignor,
                classic,
            }));
        }
        CgKind::Target(_) => CgValue::Target(r.assignment()?),
        CgKind::Current(_) => CgValue::Current(CgCurrentValue {
            member_epoch: r.i32()?,
            previous_member_epoch: r.i32()?,
            state: r.i8()?,
            assigned: r.assignment()?,
            pending_revocation: r.assignment()?,
        }),
    };
    r.skip_tags()?;
    Ok(v)
}

pub fn decode_offset(b: &[u8]) -> Result<OffsetValue, CodecError> {
    let mut r = Reader(b);
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.str()?;
    let commit_timestamp = r.i64()?;
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

pub fn decode_group(b: &[u8]) -> Result<GroupValue, CodecError> {
    let mut r = Reader(b);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(CodecError("unsupported group metadata version"));
    }
    let protocol_type = r.str()?;
    let generation = r.i32()?;
    let protocol = r.opt_str()?;
    let leader = r.opt_str()?;
    let state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    let n = r.i32()?;
    if n < 0 || n as usize > b.len() {
        return Err(CodecError("bad member count"));
    }
    let mut members = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let member_id = r.str()?;
        let instance_id = if version >= 3 { r.opt_str()? } else { None };
        let client_id = r.str()?;
        let client_host = r.str()?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout_ms = r.i32()?;
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        members.push(MemberValue {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips() {
        let k = Key::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        assert_eq!(decode_key(&encode_key(&k)).expect("key"), k);
        let k = Key::Group { group: "g".into() };
        assert_eq!(decode_key(&encode_key(&k)).expect("key"), k);
        let v = OffsetValue {
            offset: 42,
            leader_epoch: 0,
            metadata: "m".into(),
            commit_timestamp: 9,
        };
        assert_eq!(decode_offset(&encode_offset(&v)).expect("value"), v);
        let g = GroupValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            state_timestamp: 5,
            members: vec![MemberValue {
                member_id: "m1".into(),
                instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 1000,
                session_timeout_ms: 2000,
                subscription: vec![1, 2],
                assignment: vec![3],
            }],
        };
        assert_eq!(decode_group(&encode_group(&g)).expect("group"), g);
        assert!(decode_group(&[0, 3, 0]).is_err());
    }

    fn assignment(parts: &[(u128, &[i32])]) -> Assignment {
        parts
            .iter()
            .map(|(t, ps)| (Uuid::from_u128(*t), ps.iter().copied().collect()))
            .collect()
    }

    fn cg_roundtrip(kind: CgKind, v: CgValue) {
        let k = Key::Consumer {
            group: "grp".into(),
            kind: kind.clone(),
        };
        assert_eq!(decode_key(&encode_key(&k)).expect("key"), k);
        let bytes = encode_cg_value(&v);
        assert_eq!(decode_cg_value(&kind, &bytes).expect("value"), v);
        // Every strict prefix is refused, never misread.
        for n in 0..bytes.len() {
            assert!(decode_cg_value(&kind, &bytes[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn consumer_group_roundtrips() {
        cg_roundtrip(CgKind::Epoch, CgValue::Epoch(7));
        cg_roundtrip(CgKind::TargetEpoch, CgValue::Epoch(6));
        cg_roundtrip(
            CgKind::PartitionMetadata,
            CgValue::PartitionMetadata(
                [(Uuid::from_u128(1), ("t".to_string(), 3))]
                    .into_iter()
                    .collect(),
            ),
        );
        cg_roundtrip(
            CgKind::Member("m-1".into()),
            CgValue::Member(CgMemberValue {
                instance_id: Some("i".into()),
                rack_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                subscribed_topic_names: vec!["a".into(), "b".into()],
                subscribed_topic_regex: Some("x.*".into()),
                rebalance_timeout_ms: 300_000,
                server_assignor: Some("range".into()),
                classic: None,
            }),
        );
        cg_roundtrip(
            CgKind::Member("m-2".into()),
            CgValue::Member(CgMemberValue {
                instance_id: None,
                rack_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                subscribed_topic_names: vec!["a".into()],
                subscribed_topic_regex: None,
                rebalance_timeout_ms: 60_000,
                server_assignor: None,
                classic: Some(ClassicMemberValue {
                    session_timeout_ms: 10_000,
                    protocols: vec![
                        ("range".into(), vec![0, 1, 2]),
                        ("roundrobin".into(), vec![]),
                    ],
                }),
            }),
        );
        cg_roundtrip(
            CgKind::Target("m-1".into()),
            CgValue::Target(assignment(&[(1, &[0, 2]), (2, &[1])])),
        );
        cg_roundtrip(
            CgKind::Current("m-1".into()),
            CgValue::Current(CgCurrentValue {
                member_epoch: 5,
                previous_member_epoch: 4,
                state: 1,
                assigned: assignment(&[(1, &[0])]),
                pending_revocation: assignment(&[(1, &[2])]),
            }),
        );
    }

    #[test]
    fn consumer_group_bytes_match_kafka_layout() {
        // ConsumerGroupMetadataKey: type 3, group "g"; value: version 0, epoch 5, no tags.
        let k = encode_key(&Key::Consumer {
            group: "g".into(),
            kind: CgKind::Epoch,
        });
        assert_eq!(k, [0, 3, 0, 1, b'g']);
        assert_eq!(encode_cg_value(&CgValue::Epoch(5)), [0, 0, 0, 0, 0, 5, 0]);
        // Current assignment: epochs, state, one topic with partition 1, nothing pending.
        let v = encode_cg_value(&CgValue::Current(CgCurrentValue {
            member_epoch: 2,
            previous_member_epoch: 1,
            state: 0,
            assigned: assignment(&[(9, &[1])]),
            pending_revocation: Assignment::new(),
        }));
        let mut want = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 2];
        want.extend_from_slice(Uuid::from_u128(9).as_bytes());
        want.extend_from_slice(&[2, 0, 0, 0, 1, 0, 1, 0]);
        assert_eq!(v, want);
    }

    #[test]
    fn consumer_group_values_skip_unknown_tags_and_refuse_bombs() {
        // Kafka 4.1 writes MetadataHash as tagged field 0 of the group epoch value.
        let v = [0, 0, 0, 0, 0, 9, 1, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(
            decode_cg_value(&CgKind::Epoch, &v).expect("tagged"),
            CgValue::Epoch(9)
        );
        // A target assignment claiming 2^28 topics in a few bytes.
        let bomb = [0, 0, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert!(decode_cg_value(&CgKind::Target("m".into()), &bomb).is_err());
        assert!(decode_cg_value(&CgKind::Epoch, &[0, 1, 0, 0, 0, 1, 0]).is_err());
    }
}
