//! The records of `__share_group_state`, in Kafka's layout (the share coordinator's
//! `ShareSnapshot` and `ShareUpdate` record types, key and value version 0): a key is an int16
//! record type (0 snapshot, 1 update) followed by the group id, topic id and partition; a
//! value is an int16 version followed by the flexible body. A snapshot holds the whole durable
//! state of a share-partition; an update holds the state batches one operation changed. A
//! share-partition's state is its last snapshot with every later update applied. Checked byte
//! for byte against Kafka 4.4.0's generated classes (tests/fixtures/wire).

use anyhow::{bail, Result};
use bytes::BytesMut;
use uuid::Uuid;

use super::partition::StateBatch;
use crate::protocol::wire::{Reader, Writer};

pub const SNAPSHOT: i16 = 0;
pub const UPDATE: i16 = 1;

/// A share-partition: (group, topic id, partition).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateKey {
    pub group: String,
    pub topic_id: Uuid,
    pub partition: i32,
}

impl StateKey {
    /// Kafka's share-coordinator key ("group:topicId:partition"), which picks the
    /// `__share_group_state` partition.
    pub fn coordinator_key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.group,
            crate::metadata::base64_url_uuid(self.topic_id),
            self.partition
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateValue {
    /// Snapshot or update.
    pub kind: i16,
    pub snapshot_epoch: i32,
    /// Snapshots only (0 in updates): the state epoch, raised by offset resets.
    pub state_epoch: i32,
    pub leader_epoch: i32,
    pub start_offset: i64,
    /// Snapshots only.
    pub create_timestamp: i64,
    pub write_timestamp: i64,
    pub batches: Vec<StateBatch>,
}

pub fn encode_key(kind: i16, key: &StateKey) -> Vec<u8> {
    let mut buf = BytesMut::with_capacity(2 + 2 + key.group.len() + 20);
    let mut w = Writer { buf: &mut buf };
    w.i16(kind);
    w.string(&key.group);
    w.uuid(&key.topic_id);
    w.i32(key.partition);
    buf.to_vec()
}

pub fn decode_key(bytes: &[u8]) -> Result<(i16, StateKey)> {
    let mut r = Reader::new(bytes);
    let kind = r.i16()?;
    if kind != SNAPSHOT && kind != UPDATE {
        bail!("unknown share state record type {kind}");
    }
    let key = StateKey {
        group: r.string()?,
        topic_id: r.uuid()?,
        partition: r.i32()?,
    };
    r.finish()?;
    Ok((kind, key))
}

pub fn encode_value(v: &StateValue) -> Vec<u8> {
    let mut buf = BytesMut::with_capacity(64 + v.batches.len() * 20);
    let mut w = Writer { buf: &mut buf };
    w.i16(0);
    w.i32(v.snapshot_epoch);
    if v.kind == SNAPSHOT {
        w.i32(v.state_epoch);
    }
    w.i32(v.leader_epoch);
    w.i64(v.start_offset);
    if v.kind == SNAPSHOT {
        w.i64(v.create_timestamp);
        w.i64(v.write_timestamp);
    }
    w.compact_array_len(v.batches.len());
    for b in &v.batches {
        w.i64(b.first_offset);
        w.i64(b.last_offset);
        w.i8(b.state);
        w.i16(b.delivery_count);
        w.no_tagged_fields();
    }
    w.no_tagged_fields();
    buf.to_vec()
}

pub fn decode_value(kind: i16, bytes: &[u8]) -> Result<StateValue> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if version != 0 {
        bail!("share state value version {version}");
    }
    let snapshot = kind == SNAPSHOT;
    let snapshot_epoch = r.i32()?;
    let state_epoch = if snapshot { r.i32()? } else { 0 };
    let leader_epoch = r.i32()?;
    let start_offset = r.i64()?;
    let (create_timestamp, write_timestamp) = if snapshot {
        (r.i64()?, r.i64()?)
    } else {
        (0, 0)
    };
    let n = r.compact_array_len(20)?.unwrap_or(0);
    let mut batches = Vec::with_capacity(n);
    for _ in 0..n {
        let b = StateBatch {
            first_offset: r.i64()?,
            last_offset: r.i64()?,
            state: r.i8()?,
            delivery_count: r.i16()?,
        };
        r.skip_tagged_fields()?;
        if b.last_offset < b.first_offset {
            bail!(
                "state batch {}-{} runs backwards",
                b.first_offset,
                b.last_offset
            );
        }
        batches.push(b);
    }
    // Tag 0 (DeliveryCompleteCount, KIP-1226) and any later tag: not needed to rebuild state.
    r.skip_tagged_fields()?;
    r.finish()?;
    Ok(StateValue {
        kind,
        snapshot_epoch,
        state_epoch,
        leader_epoch,
        start_offset,
        create_timestamp,
        write_timestamp,
        batches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::share::partition::{
        STATE_ACKNOWLEDGED, STATE_ARCHIVED, STATE_AVAILABLE,
    };
    use crate::protocol::wire::fixture;

    const U: Uuid = Uuid::from_u64_pair(0x0123_4567_89ab_cdef, 0x0fed_cba9_8765_4321);

    fn prefixed(prefix: i16, body: &[u8]) -> Vec<u8> {
        let mut v = prefix.to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn records_match_kafka() {
        let key = StateKey {
            group: "sg".into(),
            topic_id: U,
            partition: 3,
        };
        assert_eq!(
            encode_key(SNAPSHOT, &key),
            prefixed(0, &fixture("share_snapshot_key"))
        );
        assert_eq!(
            encode_key(UPDATE, &key),
            prefixed(1, &fixture("share_update_key"))
        );
        assert_eq!(
            decode_key(&encode_key(UPDATE, &key)).unwrap(),
            (UPDATE, key)
        );
        let snapshot = StateValue {
            kind: SNAPSHOT,
            snapshot_epoch: 2,
            state_epoch: 1,
            leader_epoch: 5,
            start_offset: 100,
            create_timestamp: 1_700_000_000_000,
            write_timestamp: 1_700_000_001_000,
            batches: vec![
                StateBatch {
                    first_offset: 100,
                    last_offset: 104,
                    state: STATE_AVAILABLE,
                    delivery_count: 2,
                },
                StateBatch {
                    first_offset: 105,
                    last_offset: 105,
                    state: STATE_ARCHIVED,
                    delivery_count: 5,
                },
            ],
        };
        let bytes = encode_value(&snapshot);
        assert_eq!(bytes, prefixed(0, &fixture("share_snapshot_value")));
        assert_eq!(decode_value(SNAPSHOT, &bytes).unwrap(), snapshot);
        let update = StateValue {
            kind: UPDATE,
            snapshot_epoch: 2,
            state_epoch: 0,
            leader_epoch: 5,
            start_offset: 103,
            create_timestamp: 0,
            write_timestamp: 0,
            batches: vec![StateBatch {
                first_offset: 103,
                last_offset: 110,
                state: STATE_ACKNOWLEDGED,
                delivery_count: 1,
            }],
        };
        let bytes = encode_value(&update);
        assert_eq!(bytes, prefixed(0, &fixture("share_update_value")));
        assert_eq!(decode_value(UPDATE, &bytes).unwrap(), update);
        for n in 0..bytes.len() {
            assert!(decode_value(UPDATE, &bytes[..n]).is_err());
        }
    }

    #[test]
    fn coordinator_key_is_kafkas() {
        let key = StateKey {
            group: "g".into(),
            topic_id: U,
            partition: 7,
        };
        assert_eq!(key.coordinator_key(), "g:ASNFZ4mrze8P7cuph2VDIQ:7");
    }
}
