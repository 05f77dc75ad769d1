//! OffsetFetch (key 9), versions 1-10 (v10 names topics by id: codec in
//! [`crate::protocol::v44`]; an unknown id gets UNKNOWN_TOPIC_ID, and when all offsets are
//! asked for, those of deleted topics, which have no id, are left out).
//!
//! v1-7: one group, a topic list or (v2+) null for all committed offsets; v8+: several
//! groups. Partitions without a commit answer offset -1. With `require_stable` (v7+), a
//! partition whose offset an undecided transaction may still change answers
//! UNSTABLE_OFFSET_COMMIT (the client retries).
//!
//! Authorization: DESCRIBE on each group (else GROUP_AUTHORIZATION_FAILED for it), then
//! DESCRIBE on each topic: named topics it may not describe are TOPIC_AUTHORIZATION_FAILED
//! (offset -1) without being looked up; an all-topics fetch leaves them out.

use bytes::Bytes;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{ApiKey, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::codec::OffsetValue;
use crate::coordinator::GroupCoordinator;
use crate::handlers::authz::{op, Authz};
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::security::acl::resource;
use crate::protocol::{v44, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::OffsetFetch), min: 1, max: 10 };

type Found = Vec<(String, Vec<(i32, Option<OffsetValue>, i16)>)>;

fn lookup(c: &GroupCoordinator, group: &str, wanted: Option<Vec<(String, Vec<i32>)>>, require_stable: bool) -> Result<Found, i16> {
    let flat: Option<Vec<(String, i32)>> = wanted.map(|w| w.into_iter().flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p))).collect());
    let rows = c.fetch_offsets(group, flat.as_deref())?;
    let mut out: Found = Vec::new();
    for (t, p, v) in rows {
        // read_committed consumers must not start from an offset a pending transaction may move.
        let (v, code) = if require_stable && c.is_unstable(group, &t, p) { (None, WireError::UnstableOffsetCommit.code()) } else { (v, 0) };
        match out.last_mut() {
            Some((name, parts)) if *name == t => parts.push((p, v, code)),
            _ => out.push((t, vec![(p, v, code)])),
        }
    }
    Ok(out)
}

/// [`lookup`] as the principal may see it: DESCRIBE on the group (else
/// GROUP_AUTHORIZATION_FAILED), then DESCRIBE on each topic — named topics it may not describe
/// are answered TOPIC_AUTHORIZATION_FAILED without being looked up, and an all-topics lookup
/// silently leaves them out.
fn authorized_lookup(c: &GroupCoordinator, authz: &Authz, group: &str, wanted: Option<Vec<(String, Vec<i32>)>>, require_stable: bool) -> Result<Found, i16> {
    if !authz.group(op::DESCRIBE, group) {
        return Err(WireError::GroupAuthorizationFailed.code());
    }
    let mut describable = authz.names(op::DESCRIBE, resource::TOPIC);
    match wanted {
        Some(w) => {
            let (allowed, denied): (Vec<_>, Vec<_>) = w.into_iter().partition(|(t, _)| describable.allows(t));
            let mut found = if allowed.is_empty() { Vec::new() } else { lookup(c, group, Some(allowed), require_stable)? };
            for (t, ps) in denied {
                found.push((t, ps.into_iter().map(|p| (p, None, WireError::TopicAuthorizationFailed.code())).collect()));
            }
            Ok(found)
        }
        None => {
            let mut found = lookup(c, group, None, require_stable)?;
            found.retain(|(t, _)| describable.allows(t));
            Ok(found)
        }
    }
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: OffsetFetchRequest = if ctx.version >= 10 {
        let m = &ctx.broker.metadata;
        v44::decode_offset_fetch_v10(&body, &|id| m.topic_by_id(id).map(|t| t.name))?
    } else {
        ctx.decode(body)?
    };
    let coordinator = ctx.broker.group_coordinator().await.ok();
    let authz = ctx.authz();
    let mut resp = OffsetFetchResponse::default();
    if ctx.version < 8 {
        let wanted = req.topics.map(|ts| ts.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect());
        let Some(c) = coordinator else {
            resp.error_code = WireError::CoordinatorNotAvailable.code();
            return ctx.reply(&resp);
        };
        let found = match authorized_lookup(c, &authz, req.group_id.0.as_str(), wanted, req.require_stable) {
            Ok(found) => found,
            Err(code) => {
                resp.error_code = code;
                return ctx.reply(&resp);
            }
        };
        resp.topics = found
            .into_iter()
            .map(|(t, parts)| {
                OffsetFetchResponseTopic::default().with_name(TopicName(StrBytes::from_string(t))).with_partitions(
                    parts
                        .into_iter()
                        .map(|(p, v, code)| {
                            let v = v.unwrap_or(OffsetValue { offset: -1, leader_epoch: -1, metadata: String::new(), commit_timestamp: -1 });
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(v.offset)
                                .with_committed_leader_epoch(v.leader_epoch)
                                .with_metadata(Some(StrBytes::from_string(v.metadata)))
                                .with_error_code(code)
                        })
                        .collect(),
                )
            })
            .collect();
        return ctx.reply(&resp);
    }
    resp.groups = req
        .groups
        .into_iter()
        .map(|g| {
            let mut out = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
            let Some(c) = coordinator else {
                out.error_code = WireError::CoordinatorNotAvailable.code();
                return out;
            };
            let wanted = g.topics.map(|ts| ts.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect());
            let found = match authorized_lookup(c, &authz, g.group_id.0.as_str(), wanted, req.require_stable) {
                Ok(found) => found,
                Err(code) => {
                    out.error_code = code;
                    return out;
                }
            };
            out.topics = found
                .into_iter()
                .map(|(t, parts)| {
                    OffsetFetchResponseTopics::default().with_name(TopicName(StrBytes::from_string(t))).with_partitions(
                        parts
                            .into_iter()
                            .map(|(p, v, code)| {
                                let v = v.unwrap_or(OffsetValue { offset: -1, leader_epoch: -1, metadata: String::new(), commit_timestamp: -1 });
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(v.offset)
                                    .with_committed_leader_epoch(v.leader_epoch)
                                    .with_metadata(Some(StrBytes::from_string(v.metadata)))
                                .with_error_code(code)
                            })
                            .collect(),
                    )
                })
                .collect();
            out
        })
        .collect();
    if ctx.version >= 10 {
        let m = &ctx.broker.metadata;
        return Ok(Reply::Now(v44::encode_offset_fetch_v10(&resp, &|n| m.topic(n).map(|t| t.id))));
    }
    ctx.reply(&resp)
}
