//! A share group's records in `__consumer_offsets`, in Kafka 4.4's layout: key `{i16 type,
//! string group[, string member]}`, value `{i16 0, flexible fields}`; a null value is a
//! tombstone.
//!
//! | type | record | value |
//! |---|---|---|
//! | 10 | ShareGroupMemberMetadata | rack id, client id, client host, subscribed topic names |
//! | 11 | ShareGroupMetadata | group epoch, metadata hash |
//! | 14 | ShareGroupCurrentMemberAssignment | member epochs, state (0 stable), assigned partitions |
//!
//! Strom writes these three: a share member's assignment is its target the moment it is
//! computed (no revocation handshake in share groups), so the target records (12, 13) would
//! repeat the current ones; on replay the target is the members' current assignments. Checked
//! byte for byte against Kafka 4.4.0's `GroupCoordinatorRecordSerde`
//! (tests/fixtures/wire/share_record_*).

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use bytes::BytesMut;
use uuid::Uuid;

use crate::protocol::wire::{Reader, Writer};

/// Which share-group record a key names; member records carry the member id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Member(String),
    Metadata,
    Current(String),
}

impl Kind {
    pub fn record_type(&self) -> i16 {
        match self {
            Kind::Member(_) => 10,
            Kind::Metadata => 11,
            Kind::Current(_) => 14,
        }
    }

    /// Whether `record_type` is a share-group record (10 to 15; Strom reads the three it
    /// writes and skips the others).
    pub fn is_share(record_type: i16) -> bool {
        (10..=15).contains(&record_type)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberValue {
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentValue {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: i8,
    pub assigned: BTreeMap<Uuid, Vec<i32>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Member(MemberValue),
    Metadata { epoch: i32, metadata_hash: i64 },
    Current(CurrentValue),
}

pub fn encode_key(group: &str, kind: &Kind) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let mut w = Writer { buf: &mut buf };
    w.i16(kind.record_type());
    w.string(group);
    match kind {
        Kind::Member(m) | Kind::Current(m) => w.string(m),
        Kind::Metadata => {}
    }
    buf.to_vec()
}

/// Decodes a key whose record type [`Kind::is_share`]: (group, kind), or None for a share
/// record type Strom does not keep (12, 13, 15).
pub fn decode_key(b: &[u8]) -> Result<Option<(String, Kind)>> {
    let mut r = Reader::new(b);
    let t = r.i16()?;
    let group = r.string()?;
    let kind = match t {
        10 => Kind::Member(r.string()?),
        11 => Kind::Metadata,
        14 => Kind::Current(r.string()?),
        12 | 13 | 15 => return Ok(None),
        _ => bail!("not a share group record type: {t}"),
    };
    r.finish()?;
    Ok(Some((group, kind)))
}

pub fn encode_value(v: &Value) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let mut w = Writer { buf: &mut buf };
    w.i16(0);
    match v {
        Value::Member(m) => {
            w.compact_nullable_string(m.rack_id.as_deref());
            w.compact_string(&m.client_id);
            w.compact_string(&m.client_host);
            w.compact_array_len(m.subscribed_topic_names.len());
            for t in &m.subscribed_topic_names {
                w.compact_string(t);
            }
        }
        Value::Metadata {
            epoch,
            metadata_hash,
        } => {
            w.i32(*epoch);
            w.i64(*metadata_hash);
        }
        Value::Current(c) => {
            w.i32(c.member_epoch);
            w.i32(c.previous_member_epoch);
            w.i8(c.state);
            w.compact_array_len(c.assigned.len());
            for (id, parts) in &c.assigned {
                w.uuid(id);
                w.compact_array_len(parts.len());
                for p in parts {
                    w.i32(*p);
                }
                w.no_tagged_fields();
            }
        }
    }
    w.no_tagged_fields();
    buf.to_vec()
}

pub fn decode_value(kind: &Kind, b: &[u8]) -> Result<Value> {
    let mut r = Reader::new(b);
    let version = r.i16()?;
    if version != 0 {
        bail!("share group record value version {version}");
    }
    let v = match kind {
        Kind::Member(_) => {
            let rack_id = r.compact_nullable_string()?;
            let client_id = r.compact_string()?;
            let client_host = r.compact_string()?;
            let n = r.compact_array_len(1)?.unwrap_or(0);
            let mut subscribed_topic_names = Vec::with_capacity(n);
            for _ in 0..n {
                subscribed_topic_names.push(r.compact_string()?);
            }
            Value::Member(MemberValue {
                rack_id,
                client_id,
                client_host,
                subscribed_topic_names,
            })
        }
        Kind::Metadata => Value::Metadata {
            epoch: r.i32()?,
            metadata_hash: r.i64()?,
        },
        Kind::Current(_) => {
            let member_epoch = r.i32()?;
            let previous_member_epoch = r.i32()?;
            let state = r.i8()?;
            let n = r.compact_array_len(18)?.unwrap_or(0);
            let mut assigned = BTreeMap::new();
            for _ in 0..n {
                let id = r.uuid()?;
                let k = r.compact_array_len(4)?.unwrap_or(0);
                let mut parts = Vec::with_capacity(k);
                for _ in 0..k {
                    parts.push(r.i32()?);
                }
                r.skip_tagged_fields()?;
                assigned.insert(id, parts);
            }
            Value::Current(CurrentValue {
                member_epoch,
                previous_member_epoch,
                state,
                assigned,
            })
        }
    };
    r.skip_tagged_fields()?;
    r.finish()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::wire::fixture;

    const U: Uuid = Uuid::from_u64_pair(0x0123_4567_89ab_cdef, 0x0fed_cba9_8765_4321);

    fn check(name: &str, kind: Kind, value: Value) {
        assert_eq!(
            encode_key("sg", &kind),
            fixture(&format!("{name}_key")),
            "{name} key"
        );
        let bytes = encode_value(&value);
        assert_eq!(bytes, fixture(&format!("{name}_value")), "{name} value");
        assert_eq!(
            decode_key(&encode_key("sg", &kind)).unwrap(),
            Some(("sg".to_string(), kind.clone()))
        );
        assert_eq!(decode_value(&kind, &bytes).unwrap(), value);
        for n in 0..bytes.len() {
            assert!(decode_value(&kind, &bytes[..n]).is_err());
        }
    }

    #[test]
    fn records_match_kafka() {
        check(
            "share_record_member",
            Kind::Member("m1".into()),
            Value::Member(MemberValue {
                rack_id: Some("r1".into()),
                client_id: "c1".into(),
                client_host: "/127.0.0.1".into(),
                subscribed_topic_names: vec!["a".into(), "b".into()],
            }),
        );
        check(
            "share_record_metadata",
            Kind::Metadata,
            Value::Metadata {
                epoch: 7,
                metadata_hash: 12345,
            },
        );
        check(
            "share_record_current",
            Kind::Current("m1".into()),
            Value::Current(CurrentValue {
                member_epoch: 7,
                previous_member_epoch: 6,
                state: 0,
                assigned: BTreeMap::from([(U, vec![0, 2])]),
            }),
        );
    }
}
