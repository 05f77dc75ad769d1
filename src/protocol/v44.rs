//! Codecs for the message versions Kafka 4.2-4.4 serve that `kafka-protocol` 0.18 lacks.
//!
//! | API | version | what changed | here |
//! |---|---|---|---|
//! | ApiVersions | 5 | request: ClusterId, NodeId (KIP-1242) | request decoder; the response is v4's bytes |
//! | ListOffsets | 11 | new timestamp -6 (KIP-1023) | none: v10's bytes both ways |
//! | DescribeLogDirs | 5 | response: IsCordoned per log dir | response encoder; the request is v4's bytes |
//! | DeleteGroups | 3 | response: ErrorMessage per group | response encoder; the request is v2's bytes |
//! | OffsetCommit | 10 | topic ids replace names (KIP-848) | both |
//! | OffsetFetch | 10 | topic ids replace names (KIP-848) | both |
//! | TxnOffsetCommit | 6 | topic ids replace names (KIP-1319) | both |
//!
//! Decoders fill the crate's structs for the last version it knows, so handlers keep one
//! request type. A topic id is resolved to its name while decoding; an id the broker does
//! not know becomes [`unknown_id_name`], a name no topic can have, which the encoders turn
//! back into that id with UNKNOWN_TOPIC_ID. Each codec is checked byte for byte against the
//! bytes Kafka 4.4.0's Java client writes (tests/fixtures/wire, `compat-tests/wire/gen.sh`).

use anyhow::Result;
use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::delete_groups_response::DeleteGroupsResponse;
use kafka_protocol::messages::describe_log_dirs_response::DescribeLogDirsResponse;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, DeleteGroupsRequest, DescribeLogDirsRequest, GroupId,
    ListOffsetsRequest, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use uuid::Uuid;

use super::wire::{Reader, Writer};
use super::{Api, ProtocolError, WireError, HEADER_ROOM};

/// The stand-in name of a topic id the broker does not know: NUL cannot appear in a topic
/// name, so it never matches a topic.
pub fn unknown_id_name(id: Uuid) -> String {
    format!("\0{id}")
}

/// The id behind a name from [`unknown_id_name`].
fn unknown_id(name: &str) -> Option<Uuid> {
    name.strip_prefix('\0')
        .and_then(|s| Uuid::parse_str(s).ok())
}

/// How encoders find a topic's id: the broker's metadata.
pub type IdOf<'a> = &'a dyn Fn(&str) -> Option<Uuid>;

/// Where a response topic's id comes from: an unknown id echoes back with UNKNOWN_TOPIC_ID
/// (`Some(code)`), a known name maps through the metadata; None: no id (a deleted topic).
fn topic_ref(name: &str, id_of: IdOf) -> Option<(Uuid, Option<i16>)> {
    if let Some(id) = unknown_id(name) {
        return Some((id, Some(WireError::UnknownTopicId.code())));
    }
    id_of(name).map(|id| (id, None))
}

fn str_bytes(s: String) -> StrBytes {
    StrBytes::from_string(s)
}

fn decode_err(what: &'static str) -> impl FnOnce(anyhow::Error) -> ProtocolError {
    move |source| ProtocolError::Decode { what, source }
}

fn body_buf(capacity: usize) -> BytesMut {
    let mut buf = BytesMut::with_capacity(HEADER_ROOM + capacity);
    buf.put_bytes(0, HEADER_ROOM);
    buf
}

/// The fields of an ApiVersions v5 request the crate's struct has no room for.
pub struct ApiVersionsV5 {
    pub cluster_id: Option<String>,
    pub node_id: i32,
}

pub fn decode_api_versions_v5(
    body: &[u8],
) -> Result<(ApiVersionsRequest, ApiVersionsV5), ProtocolError> {
    let go = || -> Result<_> {
        let mut r = Reader::new(body);
        let name = r.compact_string()?;
        let version = r.compact_string()?;
        let cluster_id = r.compact_nullable_string()?;
        let node_id = r.i32()?;
        r.skip_tagged_fields()?;
        r.finish()?;
        let req = ApiVersionsRequest::default()
            .with_client_software_name(str_bytes(name))
            .with_client_software_version(str_bytes(version));
        Ok((
            req,
            ApiVersionsV5 {
                cluster_id,
                node_id,
            },
        ))
    };
    go().map_err(decode_err("ApiVersions v5 request"))
}

/// Resolves a topic id read from a request.
fn name_of(id: Uuid, names: &dyn Fn(&Uuid) -> Option<String>) -> TopicName {
    TopicName(str_bytes(names(&id).unwrap_or_else(|| unknown_id_name(id))))
}

/// How decoders find a topic's name from its id: the broker's metadata.
pub type NameOf<'a> = &'a dyn Fn(&Uuid) -> Option<String>;

/// One committed partition: (index, offset, leader epoch, metadata).
type CommitPartition = (i32, i64, i32, Option<StrBytes>);

/// The topics of an OffsetCommit v10 / TxnOffsetCommit v6 request, which share their layout:
/// topic id (resolved to a name), then partitions with offset, leader epoch and metadata.
fn commit_topics(
    r: &mut Reader<'_>,
    names: NameOf,
) -> Result<Vec<(TopicName, Vec<CommitPartition>)>> {
    let n = r.compact_array_len(18)?.unwrap_or(0);
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        let id = r.uuid()?;
        let np = r.compact_array_len(18)?.unwrap_or(0);
        let mut parts = Vec::with_capacity(np);
        for _ in 0..np {
            let index = r.i32()?;
            let offset = r.i64()?;
            let epoch = r.i32()?;
            let metadata = r.compact_nullable_string()?.map(str_bytes);
            r.skip_tagged_fields()?;
            parts.push((index, offset, epoch, metadata));
        }
        r.skip_tagged_fields()?;
        topics.push((name_of(id, names), parts));
    }
    Ok(topics)
}

pub fn decode_offset_commit_v10(
    body: &[u8],
    names: NameOf,
) -> Result<OffsetCommitRequest, ProtocolError> {
    let go = || -> Result<_> {
        let mut r = Reader::new(body);
        let group_id = r.compact_string()?;
        let generation = r.i32()?;
        let member_id = r.compact_string()?;
        let instance = r.compact_nullable_string()?;
        let topics = commit_topics(&mut r, names)?
            .into_iter()
            .map(|(name, parts)| {
                let parts = parts
                    .into_iter()
                    .map(|(index, offset, epoch, metadata)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(index)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(epoch)
                            .with_committed_metadata(metadata)
                    })
                    .collect();
                OffsetCommitRequestTopic::default()
                    .with_name(name)
                    .with_partitions(parts)
            })
            .collect();
        r.skip_tagged_fields()?;
        r.finish()?;
        Ok(OffsetCommitRequest::default()
            .with_group_id(GroupId(str_bytes(group_id)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(str_bytes(member_id))
            .with_group_instance_id(instance.map(str_bytes))
            .with_topics(topics))
    };
    go().map_err(decode_err("OffsetCommit v10 request"))
}

/// OffsetCommit v10 and TxnOffsetCommit v6 responses share one shape: topics by id with
/// (partition, error) pairs.
fn encode_commit_response(
    throttle_ms: i32,
    topics: &[(&str, Vec<(i32, i16)>)],
    id_of: IdOf,
) -> BytesMut {
    let mut buf = body_buf(16 + topics.len() * 32);
    let mut w = Writer { buf: &mut buf };
    w.i32(throttle_ms);
    let known: Vec<_> = topics
        .iter()
        .filter_map(|(name, parts)| topic_ref(name, id_of).map(|r| (r, parts)))
        .collect();
    w.compact_array_len(known.len());
    for ((id, unknown), parts) in known {
        w.uuid(&id);
        w.compact_array_len(parts.len());
        for &(index, code) in parts {
            w.i32(index);
            // A partition of an unknown id failed as an unknown topic: say which kind.
            w.i16(match (unknown, code) {
                (Some(id_code), c) if c == WireError::UnknownTopicOrPartition.code() => id_code,
                (_, c) => c,
            });
            w.no_tagged_fields();
        }
        w.no_tagged_fields();
    }
    w.no_tagged_fields();
    buf
}

pub fn encode_offset_commit_v10(resp: &OffsetCommitResponse, id_of: IdOf) -> BytesMut {
    let topics: Vec<(&str, Vec<(i32, i16)>)> = resp
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.as_str(),
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code))
                    .collect(),
            )
        })
        .collect();
    encode_commit_response(resp.throttle_time_ms, &topics, id_of)
}

pub fn decode_txn_offset_commit_v6(
    body: &[u8],
    names: NameOf,
) -> Result<TxnOffsetCommitRequest, ProtocolError> {
    let go = || -> Result<_> {
        let mut r = Reader::new(body);
        let txn_id = r.compact_string()?;
        let group_id = r.compact_string()?;
        let producer_id = r.i64()?;
        let producer_epoch = r.i16()?;
        let generation = r.i32()?;
        let member_id = r.compact_string()?;
        let instance = r.compact_nullable_string()?;
        let topics = commit_topics(&mut r, names)?
            .into_iter()
            .map(|(name, parts)| {
                let parts = parts
                    .into_iter()
                    .map(|(index, offset, epoch, metadata)| {
                        TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(index)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(epoch)
                            .with_committed_metadata(metadata)
                    })
                    .collect();
                TxnOffsetCommitRequestTopic::default()
                    .with_name(name)
                    .with_partitions(parts)
            })
            .collect();
        r.skip_tagged_fields()?;
        r.finish()?;
        Ok(TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(str_bytes(txn_id)))
            .with_group_id(GroupId(str_bytes(group_id)))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_generation_id(generation)
            .with_member_id(str_bytes(member_id))
            .with_group_instance_id(instance.map(str_bytes))
            .with_topics(topics))
    };
    go().map_err(decode_err("TxnOffsetCommit v6 request"))
}

pub fn encode_txn_offset_commit_v6(resp: &TxnOffsetCommitResponse, id_of: IdOf) -> BytesMut {
    let topics: Vec<(&str, Vec<(i32, i16)>)> = resp
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.as_str(),
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code))
                    .collect(),
            )
        })
        .collect();
    encode_commit_response(resp.throttle_time_ms, &topics, id_of)
}

pub fn decode_offset_fetch_v10(
    body: &[u8],
    names: NameOf,
) -> Result<OffsetFetchRequest, ProtocolError> {
    let go = || -> Result<_> {
        let mut r = Reader::new(body);
        let ng = r.compact_array_len(8)?.unwrap_or(0);
        let mut groups = Vec::with_capacity(ng);
        for _ in 0..ng {
            let group_id = r.compact_string()?;
            let member_id = r.compact_nullable_string()?;
            let member_epoch = r.i32()?;
            let topics = match r.compact_array_len(18)? {
                None => None,
                Some(nt) => {
                    let mut topics = Vec::with_capacity(nt);
                    for _ in 0..nt {
                        let id = r.uuid()?;
                        let np = r.compact_array_len(4)?.unwrap_or(0);
                        let mut indexes = Vec::with_capacity(np);
                        for _ in 0..np {
                            indexes.push(r.i32()?);
                        }
                        r.skip_tagged_fields()?;
                        topics.push(
                            OffsetFetchRequestTopics::default()
                                .with_name(name_of(id, names))
                                .with_partition_indexes(indexes),
                        );
                    }
                    Some(topics)
                }
            };
            r.skip_tagged_fields()?;
            groups.push(
                OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(str_bytes(group_id)))
                    .with_member_id(member_id.map(str_bytes))
                    .with_member_epoch(member_epoch)
                    .with_topics(topics),
            );
        }
        let require_stable = r.bool()?;
        r.skip_tagged_fields()?;
        r.finish()?;
        Ok(OffsetFetchRequest::default()
            .with_groups(groups)
            .with_require_stable(require_stable))
    };
    go().map_err(decode_err("OffsetFetch v10 request"))
}

/// Topics the broker has no id for (committed offsets of a deleted topic, listed when all
/// offsets are asked for) cannot be named by id and are left out.
pub fn encode_offset_fetch_v10(resp: &OffsetFetchResponse, id_of: IdOf) -> BytesMut {
    let mut buf = body_buf(16 + resp.groups.len() * 64);
    let mut w = Writer { buf: &mut buf };
    w.i32(resp.throttle_time_ms);
    w.compact_array_len(resp.groups.len());
    for g in &resp.groups {
        w.compact_string(g.group_id.0.as_str());
        let topics: Vec<_> = g
            .topics
            .iter()
            .filter_map(|t| topic_ref(t.name.0.as_str(), id_of).map(|r| (r, t)))
            .collect();
        w.compact_array_len(topics.len());
        for ((id, unknown), t) in topics {
            w.uuid(&id);
            w.compact_array_len(t.partitions.len());
            for p in &t.partitions {
                w.i32(p.partition_index);
                w.i64(p.committed_offset);
                w.i32(p.committed_leader_epoch);
                w.compact_nullable_string(p.metadata.as_ref().map(|m| m.as_str()));
                w.i16(unknown.unwrap_or(p.error_code));
                w.no_tagged_fields();
            }
            w.no_tagged_fields();
        }
        w.i16(g.error_code);
        w.no_tagged_fields();
    }
    w.no_tagged_fields();
    buf
}

/// DeleteGroups v3: v2's response plus an error message per group (`messages`, in the order
/// of `resp.results`; missing entries are null).
pub fn encode_delete_groups_v3(
    resp: &DeleteGroupsResponse,
    messages: &[Option<String>],
) -> BytesMut {
    let mut buf = body_buf(16 + resp.results.len() * 48);
    let mut w = Writer { buf: &mut buf };
    w.i32(resp.throttle_time_ms);
    w.compact_array_len(resp.results.len());
    for (i, r) in resp.results.iter().enumerate() {
        w.compact_string(r.group_id.0.as_str());
        w.i16(r.error_code);
        w.compact_nullable_string(messages.get(i).and_then(|m| m.as_deref()));
        w.no_tagged_fields();
    }
    w.no_tagged_fields();
    buf
}

/// DescribeLogDirs v5: v4's response plus IsCordoned per log dir (`cordoned`: none of ours
/// is; cordoning a log dir is a Kafka 4.4 operator action Strom does not offer).
pub fn encode_describe_log_dirs_v5(resp: &DescribeLogDirsResponse, cordoned: bool) -> BytesMut {
    let mut buf = body_buf(64);
    let mut w = Writer { buf: &mut buf };
    w.i32(resp.throttle_time_ms);
    w.i16(resp.error_code);
    w.compact_array_len(resp.results.len());
    for r in &resp.results {
        w.i16(r.error_code);
        w.compact_string(r.log_dir.as_str());
        w.compact_array_len(r.topics.len());
        for t in &r.topics {
            w.compact_string(t.name.0.as_str());
            w.compact_array_len(t.partitions.len());
            for p in &t.partitions {
                w.i32(p.partition_index);
                w.i64(p.partition_size);
                w.i64(p.offset_lag);
                w.bool(p.is_future_key);
                w.no_tagged_fields();
            }
            w.no_tagged_fields();
        }
        w.i64(r.total_bytes);
        w.i64(r.usable_bytes);
        w.bool(cordoned);
        w.no_tagged_fields();
    }
    w.no_tagged_fields();
    buf
}

/// For a request version this module serves, the crate version with the same request bytes,
/// or None when the bytes differ and a decoder here reads them.
pub fn same_bytes_as(key: ApiKey, version: i16) -> Option<i16> {
    match (key, version) {
        (ApiKey::ListOffsets, 11) => Some(10),
        (ApiKey::DescribeLogDirs, 5) => Some(4),
        (ApiKey::DeleteGroups, 3) => Some(2),
        (ApiKey::DescribeShareGroupOffsets, 1) => Some(0),
        _ => None,
    }
}

/// Decodes a request body of a version (or an API) the crate does not know (`None`: the
/// crate's decoder applies), resolving no topic id: the check the fuzz target runs on every
/// served version.
pub fn decode_request(key: Api, version: i16, body: &[u8]) -> Option<Result<(), ProtocolError>> {
    // ShareFetch and ShareAcknowledge: every version through protocol::share.
    if key == ApiKey::ShareFetch {
        return Some(super::share::decode_share_fetch(body, version).map(drop));
    }
    if key == ApiKey::ShareAcknowledge {
        return Some(super::share::decode_share_acknowledge(body, version).map(drop));
    }
    if key.crate_versions().is_some_and(|(_, max)| max >= version) {
        return None;
    }
    let none = |_: &Uuid| None;
    let Some(kafka) = key.kafka() else {
        return Some(match key {
            Api::STREAMS_GROUP_HEARTBEAT => {
                super::streams::decode_heartbeat(body, version).map(drop)
            }
            Api::STREAMS_GROUP_DESCRIBE => super::streams::decode_describe(body, version).map(drop),
            _ => Err(ProtocolError::UnknownApiKey(key.0)),
        });
    };
    Some(match (kafka, version) {
        (ApiKey::ApiVersions, 5) => decode_api_versions_v5(body).map(drop),
        (ApiKey::OffsetCommit, 10) => decode_offset_commit_v10(body, &none).map(drop),
        (ApiKey::OffsetFetch, 10) => decode_offset_fetch_v10(body, &none).map(drop),
        (ApiKey::TxnOffsetCommit, 6) => decode_txn_offset_commit_v6(body, &none).map(drop),
        _ => match same_bytes_as(kafka, version) {
            Some(v) => {
                let mut b = bytes::Bytes::copy_from_slice(body);
                let r = match kafka {
                    ApiKey::ListOffsets => ListOffsetsRequest::decode(&mut b, v).map(drop),
                    ApiKey::DescribeLogDirs => DescribeLogDirsRequest::decode(&mut b, v).map(drop),
                    ApiKey::DescribeShareGroupOffsets => {
                        kafka_protocol::messages::DescribeShareGroupOffsetsRequest::decode(
                            &mut b, v,
                        )
                        .map(drop)
                    }
                    _ => DeleteGroupsRequest::decode(&mut b, v).map(drop),
                };
                r.map_err(decode_err("request body"))
            }
            None => Err(ProtocolError::UnsupportedVersion { key, version }),
        },
    })
}

#[cfg(test)]
mod tests;
