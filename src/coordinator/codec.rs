//! Records of the `__consumer_offsets` internal topic, in Apache Kafka's own layout so Kafka's
//! tools can read them (docs/FORMAT.md):
//!
//! - offset commit: key v1 `{i16 1, string group, string topic, i32 partition}`,
//!   value v3 `{i16 3, i64 offset, i32 leader_epoch, string metadata, i64 commit_timestamp}`;
//! - group metadata: key v2 `{i16 2, string group}`, value v3 `{i16 3, string protocol_type,
//!   i32 generation, nullable string protocol, nullable string leader, i64 state_timestamp,
//!   [member_id, nullable instance_id, client_id, client_host, i32 rebalance_timeout,
//!   i32 session_timeout, bytes subscription, bytes assignment]}`;
//! - a null value is a tombstone (offset deleted / group deleted).
//!
//! Strings are i16-length-prefixed UTF-8 (-1 = null), bytes i32-length-prefixed.

use bytes::{Buf, BufMut};

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
}

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

fn put_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.put_i16(s.len().min(i16::MAX as usize) as i16);
            out.extend_from_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
        }
        None => out.put_i16(-1),
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
    }
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
        _ => Err(CodecError("unknown key version")),
    }
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
}
