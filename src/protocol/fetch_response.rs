//! A Fetch response encoder that leaves the record bytes out.
//!
//! A fetch response is mostly record batches read straight from segment files. Encoding them
//! through `kafka-protocol` would copy every byte into the response buffer; instead this module
//! encodes everything around the records and returns the pieces between them, so the
//! connection writes `piece, records, piece, records, ..., piece` with the records sent from the
//! file by the kernel (`sendfile(2)`).
//!
//! The layout is Kafka's FetchResponse, versions 4-18 (flexible from 12). It covers what Strom
//! sets: a partition's diverging epoch (tagged field 0, v12+, told to a follower whose log
//! diverged from the leader's) and current leader (tagged field 1, v12+, the KIP-951 hint
//! with NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH), and the response's node endpoints
//! (tagged field 0, v16+, where those leaders are); no snapshot id.
//! [`encode_fetch_response`] refuses a response with a field it cannot encode rather than drop
//! it. A unit test checks every version byte for byte against `kafka-protocol`'s encoder.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::FetchResponse;

use super::{ProtocolError, HEADER_ROOM};

/// The encoded pieces of a fetch response: `pieces[0]` (with the frame header room in front),
/// then the records of the i-th non-null `records_len` entry followed by `pieces[i + 1]`.
#[derive(Debug)]
pub struct FetchPieces {
    pub pieces: Vec<BytesMut>,
}

/// Encodes `resp` at `version` (4..=18). Each partition's `records` must be `None`; its record
/// bytes are given by length in `records_len`, one entry per partition in order (`None` encodes
/// null records).
pub fn encode_fetch_response(
    resp: &FetchResponse,
    version: i16,
    records_len: &[Option<usize>],
) -> Result<FetchPieces, ProtocolError> {
    if !(4..=18).contains(&version) {
        return Err(encode_err(format!("fetch response version {version}")));
    }
    if (!resp.node_endpoints.is_empty() && version < 16) || !resp.unknown_tagged_fields.is_empty() {
        return Err(encode_err("fetch response tagged fields".into()));
    }
    let flexible = version >= 12;
    let mut enc = Enc {
        flexible,
        pieces: Vec::new(),
        cur: BytesMut::with_capacity(HEADER_ROOM + 256),
    };
    enc.cur.put_bytes(0, HEADER_ROOM);
    enc.cur.put_i32(resp.throttle_time_ms);
    if version >= 7 {
        enc.cur.put_i16(resp.error_code);
        enc.cur.put_i32(resp.session_id);
    }
    let mut lens = records_len.iter();
    enc.array_len(Some(resp.responses.len()));
    for topic in &resp.responses {
        if version >= 13 {
            enc.cur.put_slice(topic.topic_id.as_bytes());
        } else {
            enc.string(topic.topic.0.as_str());
        }
        enc.array_len(Some(topic.partitions.len()));
        for p in &topic.partitions {
            check_partition(p, flexible)?;
            enc.cur.put_i32(p.partition_index);
            enc.cur.put_i16(p.error_code);
            enc.cur.put_i64(p.high_watermark);
            enc.cur.put_i64(p.last_stable_offset);
            if version >= 5 {
                enc.cur.put_i64(p.log_start_offset);
            }
            enc.array_len(p.aborted_transactions.as_ref().map(Vec::len));
            for a in p.aborted_transactions.iter().flatten() {
                if !a.unknown_tagged_fields.is_empty() {
                    return Err(encode_err("aborted transaction tagged fields".into()));
                }
                enc.cur.put_i64(a.producer_id.0);
                enc.cur.put_i64(a.first_offset);
                enc.tagged_none();
            }
            if version >= 11 {
                enc.cur.put_i32(p.preferred_read_replica.0);
            }
            let len = *lens
                .next()
                .ok_or_else(|| encode_err("fewer record lengths than partitions".into()))?;
            enc.bytes_len(len);
            if len.is_some() {
                enc.cut();
            }
            let diverging = p.diverging_epoch != Default::default();
            let leader = p.current_leader != Default::default();
            if !diverging && !leader {
                enc.tagged_none();
            } else {
                enc.varint(u64::from(diverging) + u64::from(leader));
                if diverging {
                    // Tag 0: EpochEndOffset (int32, int64, no tagged fields).
                    enc.varint(0);
                    enc.varint(13);
                    enc.cur.put_i32(p.diverging_epoch.epoch);
                    enc.cur.put_i64(p.diverging_epoch.end_offset);
                    enc.cur.put_u8(0);
                }
                if leader {
                    // Tag 1: LeaderIdAndEpoch (int32, int32, no tagged fields).
                    enc.varint(1);
                    enc.varint(9);
                    enc.cur.put_i32(p.current_leader.leader_id.0);
                    enc.cur.put_i32(p.current_leader.leader_epoch);
                    enc.cur.put_u8(0);
                }
            }
        }
        enc.tagged_none();
    }
    if resp.node_endpoints.is_empty() {
        enc.tagged_none();
    } else {
        // One tagged field, tag 0: the node endpoints (v16+).
        let mut field = Enc {
            flexible: true,
            pieces: Vec::new(),
            cur: BytesMut::with_capacity(64),
        };
        field.array_len(Some(resp.node_endpoints.len()));
        for n in &resp.node_endpoints {
            if !n.unknown_tagged_fields.is_empty() {
                return Err(encode_err("node endpoint tagged fields".into()));
            }
            field.cur.put_i32(n.node_id.0);
            field.string(n.host.as_str());
            field.cur.put_i32(n.port);
            match &n.rack {
                None => field.varint(0),
                Some(r) => field.string(r.as_str()),
            }
            field.tagged_none();
        }
        enc.varint(1);
        enc.varint(0);
        enc.varint(field.cur.len() as u64);
        enc.cur.put_slice(&field.cur);
    }
    if lens.next().is_some() {
        return Err(encode_err("more record lengths than partitions".into()));
    }
    enc.pieces.push(enc.cur);
    Ok(FetchPieces { pieces: enc.pieces })
}

fn check_partition(p: &PartitionData, flexible: bool) -> Result<(), ProtocolError> {
    let plain = p.records.is_none()
        && (flexible || p.diverging_epoch == Default::default())
        && (flexible || p.current_leader == Default::default())
        && p.snapshot_id == Default::default()
        && p.unknown_tagged_fields.is_empty();
    if plain {
        Ok(())
    } else {
        Err(encode_err(
            "fetch partition with records or tagged fields".into(),
        ))
    }
}

fn encode_err(what: String) -> ProtocolError {
    ProtocolError::Encode(anyhow::anyhow!("cannot encode {what}"))
}

struct Enc {
    flexible: bool,
    pieces: Vec<BytesMut>,
    cur: BytesMut,
}

impl Enc {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.cur.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.cur.put_u8(v as u8);
    }

    fn array_len(&mut self, len: Option<usize>) {
        match (len, self.flexible) {
            (None, false) => self.cur.put_i32(-1),
            (None, true) => self.varint(0),
            (Some(n), false) => self.cur.put_i32(n as i32),
            (Some(n), true) => self.varint(n as u64 + 1),
        }
    }

    fn bytes_len(&mut self, len: Option<usize>) {
        self.array_len(len);
    }

    fn string(&mut self, s: &str) {
        if self.flexible {
            self.varint(s.len() as u64 + 1);
        } else {
            self.cur.put_i16(s.len() as i16);
        }
        self.cur.put_slice(s.as_bytes());
    }

    fn tagged_none(&mut self) {
        if self.flexible {
            self.cur.put_u8(0);
        }
    }

    /// Ends the current piece: record bytes go here.
    fn cut(&mut self) {
        let next = BytesMut::with_capacity(64);
        self.pieces.push(std::mem::replace(&mut self.cur, next));
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse};
    use kafka_protocol::messages::{BrokerId, ProducerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::*;
    use crate::protocol::encode_body;

    fn sample(records: bool) -> FetchResponse {
        let mut topics = Vec::new();
        for (t, name) in ["orders", "a-much-longer-topic-name.with.dots"]
            .iter()
            .enumerate()
        {
            let mut parts = Vec::new();
            for p in 0..4i32 {
                let mut pd = PartitionData::default()
                    .with_partition_index(p)
                    .with_error_code(if p == 3 { 6 } else { 0 })
                    .with_high_watermark(1000 * p as i64 + t as i64)
                    .with_last_stable_offset(900 + p as i64)
                    .with_log_start_offset(p as i64)
                    .with_preferred_read_replica(BrokerId(-1));
                if p == 1 {
                    pd.aborted_transactions = Some(vec![
                        AbortedTransaction::default()
                            .with_producer_id(ProducerId(7))
                            .with_first_offset(12),
                        AbortedTransaction::default()
                            .with_producer_id(ProducerId(9))
                            .with_first_offset(40),
                    ]);
                } else if p == 2 {
                    pd.aborted_transactions = Some(Vec::new());
                }
                // kafka-protocol's default for nullable records is an empty, non-null value.
                pd.records = None;
                if records && p != 3 {
                    // Lengths around the varint boundaries of the compact length prefix.
                    let len = [0usize, 126, 127, 200_000][(p as usize + t) % 4];
                    pd.records = Some(Bytes::from(vec![b'a' + p as u8; len]));
                }
                parts.push(pd);
            }
            topics.push(
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_static_str(name)))
                    .with_topic_id(uuid::Uuid::from_u128(0x1234_5678_9abc_def0 + t as u128))
                    .with_partitions(parts),
            );
        }
        FetchResponse::default()
            .with_throttle_time_ms(5)
            .with_error_code(0)
            .with_session_id(0)
            .with_responses(topics)
    }

    #[test]
    fn matches_kafka_protocol_encoding_at_every_version() {
        for version in 4..=18i16 {
            let mut full = sample(true);
            if version >= 12 {
                // A diverging epoch (tagged field) on one partition.
                full.responses[0].partitions[2].diverging_epoch =
                    kafka_protocol::messages::fetch_response::EpochEndOffset::default()
                        .with_epoch(3)
                        .with_end_offset(1234);
                // Leader hints (KIP-951): alone on one partition, beside a diverging epoch
                // on another.
                let hint = kafka_protocol::messages::fetch_response::LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(2))
                    .with_leader_epoch(17);
                full.responses[0].partitions[3].current_leader = hint.clone();
                full.responses[0].partitions[2].current_leader = hint;
            }
            if version >= 16 {
                full.node_endpoints = vec![
                    kafka_protocol::messages::fetch_response::NodeEndpoint::default()
                        .with_node_id(BrokerId(2))
                        .with_host(StrBytes::from_static_str("broker-2.example"))
                        .with_port(9092)
                        .with_rack(Some(StrBytes::from_static_str("rack-b"))),
                    kafka_protocol::messages::fetch_response::NodeEndpoint::default()
                        .with_node_id(BrokerId(3))
                        .with_host(StrBytes::from_static_str("10.0.0.3"))
                        .with_port(19092),
                ];
            }
            let expected = encode_body(&full, version).expect("reference encode");
            let mut stripped = full.clone();
            let mut lens = Vec::new();
            let mut records = Vec::new();
            for t in &mut stripped.responses {
                for p in &mut t.partitions {
                    let r = p.records.take();
                    lens.push(r.as_ref().map(Bytes::len));
                    records.extend(r);
                }
            }
            let pieces = encode_fetch_response(&stripped, version, &lens).expect("encode");
            assert_eq!(pieces.pieces.len(), records.len() + 1, "v{version}");
            let mut spliced = Vec::new();
            for (i, piece) in pieces.pieces.iter().enumerate() {
                spliced.extend_from_slice(piece);
                if let Some(r) = records.get(i) {
                    spliced.extend_from_slice(r);
                }
            }
            assert_eq!(spliced, expected.to_vec(), "v{version}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_encode() {
        let resp = sample(true);
        assert!(
            encode_fetch_response(&resp, 12, &[None; 8]).is_err(),
            "records present"
        );
        let resp = sample(false);
        assert!(
            encode_fetch_response(&resp, 12, &[None; 7]).is_err(),
            "too few lengths"
        );
        assert!(
            encode_fetch_response(&resp, 12, &[None; 9]).is_err(),
            "too many lengths"
        );
        assert!(
            encode_fetch_response(&resp, 3, &[None; 8]).is_err(),
            "version"
        );
        encode_fetch_response(&resp, 12, &[None; 8]).expect("plain response");
        let mut resp = sample(false);
        resp.node_endpoints = vec![Default::default()];
        assert!(
            encode_fetch_response(&resp, 15, &[None; 8]).is_err(),
            "node endpoints before v16"
        );
        let mut resp = sample(false);
        resp.responses[0].partitions[0].current_leader.leader_epoch = 4;
        assert!(
            encode_fetch_response(&resp, 11, &[None; 8]).is_err(),
            "a current leader before v12"
        );
    }
}
