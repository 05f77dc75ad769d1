//! ShareFetch (key 78), versions 1-2 (codec in [`crate::protocol::share`]; v2 adds
//! ShareAcquireMode, KIP-1206, and Renew acknowledgements, KIP-1222): a share-group member
//! takes records (locked to it for the acquisition lock duration) and acknowledges earlier
//! ones in the same request.
//!
//! Kafka 4.4's behaviour (its `KafkaApis.handleShareFetchRequest` and
//! `SharePartitionManager`): a null group id or a member id that is not 1-36 characters is
//! INVALID_REQUEST; the share session ([`crate::coordinator::share::session`]) decides what the
//! epoch means (0 opens and may not carry acknowledgements, -1 only acknowledges and then
//! releases the member's records and ends the session, any other epoch must be the session's
//! next); its errors (SHARE_SESSION_NOT_FOUND, INVALID_SHARE_SESSION_EPOCH,
//! SHARE_SESSION_LIMIT_REACHED) are top-level. Membership is not checked (Kafka does not
//! either). Acknowledgements are checked per partition (INVALID_REQUEST for malformed batches,
//! INVALID_RECORD_STATE for records this member does not hold) and applied before the fetch;
//! their outcome is the partition's AcknowledgeErrorCode. The fetch covers every partition of
//! the session, `MaxRecords` in all, waiting up to `MaxWaitMs` while nothing can be acquired;
//! every acquisition and acknowledgement is fsynced to `__share_group_state` before the
//! response. Records are the log's batches (whole, as stored) around the acquired ranges; the
//! client delivers only offsets inside AcquiredRecords. A new session's response lists every
//! partition; later ones those with records, errors or acknowledgements.
//!
//! Authorization: READ on the share group (top-level GROUP_AUTHORIZATION_FAILED), then READ on
//! each topic fetched or acknowledged (its partitions TOPIC_AUTHORIZATION_FAILED).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use uuid::Uuid;

use crate::coordinator::share::session::{member_id_valid, Opened};
use crate::coordinator::share::Target;
use crate::handlers::authz::{op, readable_share_target};
use crate::handlers::{Api, ApiSpec, Part, PartsBody, Reply, RequestContext};
use crate::protocol::share::{
    decode_share_fetch, encode_share_fetch_response, AckBatch, FetchPartitionResponse, ShareFetchResponse, ACQUIRE_RECORD_LIMIT,
};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(kafka_protocol::messages::ApiKey::ShareFetch), min: 1, max: 2 };

/// The longest a share fetch waits (a bound on a client's MaxWaitMs).
const MAX_WAIT: Duration = Duration::from_secs(60);

fn top_level(code: i16, version: i16) -> Result<Reply, ProtocolError> {
    let resp = ShareFetchResponse { error_code: code, ..Default::default() };
    let pieces = encode_share_fetch_response(&resp, version)?;
    Ok(Reply::Now(pieces.pieces.into_iter().next().unwrap_or_default()))
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let version = ctx.version;
    let req = decode_share_fetch(&body, version)?;
    let (Some(group), true) = (req.group_id.clone(), member_id_valid(req.member_id.as_deref())) else {
        return top_level(WireError::InvalidRequest.code(), version);
    };
    let member: Arc<str> = Arc::from(req.member_id.clone().unwrap_or_default());
    if req.is_renew_ack && (req.max_bytes != 0 || req.min_bytes != 0 || req.max_records != 0 || req.max_wait_ms != 0) {
        return top_level(WireError::InvalidRequest.code(), version);
    }
    let has_acks = req.topics.iter().any(|t| t.partitions.iter().any(|p| !p.batches.is_empty()));
    if req.share_session_epoch == 0 && has_acks {
        return top_level(WireError::InvalidRequest.code(), version);
    }
    // READ on the share group, then READ on each topic fetched or acknowledged.
    let authz = ctx.authz();
    if !authz.group(op::READ, &group) {
        return top_level(WireError::GroupAuthorizationFailed.code(), version);
    }
    let mut readable = authz.names(op::READ, crate::security::acl::resource::TOPIC);
    let broker = ctx.broker.clone();
    let Ok(shares) = broker.share_manager().await else {
        return top_level(WireError::CoordinatorNotAvailable.code(), version);
    };
    let add: Vec<(Uuid, i32)> = req.topics.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, p.partition))).collect();
    let forget: Vec<(Uuid, i32)> = req.forgotten.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p))).collect();
    let max_sessions = broker.effective_config().groups.share_max_sessions;
    let opened = shares.sessions.lock().on_fetch(&group, &member, req.share_session_epoch, &add, &forget, ctx.peer, max_sessions);
    let (opened, session_parts) = match opened {
        Ok(o) => o,
        Err(code) => return top_level(code, version),
    };
    if opened == Opened::New {
        shares.refresh_idle(&group, &session_parts);
    }
    let settings = broker.share_settings(&group);
    let lock_ms = settings.partition.lock_ms.clamp(0, i64::from(i32::MAX)) as i32;
    let acks: Vec<(Uuid, i32, Vec<AckBatch>)> = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().filter(|p| !p.batches.is_empty()).map(move |p| (t.topic_id, p.partition, p.batches.clone())))
        .collect();
    let renew = req.is_renew_ack;
    let record_limit = req.acquire_mode == ACQUIRE_RECORD_LIMIT;
    let max_records = i64::from(req.max_records.max(0));
    let max_bytes = req.max_bytes.max(0) as usize;
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    Ok(Reply::LaterParts(Box::pin(async move {
        let shares = &broker.shares;
        // Acknowledgements first (their releases may be fetched again at once).
        let mut parts: BTreeMap<(Uuid, i32), FetchPartitionResponse> = BTreeMap::new();
        for (topic_id, partition, batches) in &acks {
            let code = match readable_share_target(&broker, &mut readable, &group, *topic_id, *partition) {
                Err(code) => code,
                Ok(t) => match shares.acknowledge(&member, &t, batches, &settings, renew).await {
                    Ok(()) => 0,
                    Err((code, _)) => code,
                },
            };
            parts.insert(
                (*topic_id, *partition),
                FetchPartitionResponse { partition: *partition, ack_error_code: code, ..Default::default() },
            );
        }
        if opened == Opened::Final {
            broker.shares.end_session(&group, &member);
            return encode(&parts, Vec::new(), lock_ms, version);
        }
        let mut targets: Vec<Target> = Vec::new();
        for (topic_id, partition) in &session_parts {
            match readable_share_target(&broker, &mut readable, &group, *topic_id, *partition) {
                Ok(t) => targets.push(t),
                Err(code) => {
                    parts.entry((*topic_id, *partition)).or_insert_with(|| FetchPartitionResponse { partition: *partition, ..Default::default() }).error_code = code;
                }
            }
        }
        let mut records: BTreeMap<(Uuid, i32), Bytes> = BTreeMap::new();
        if max_records > 0 && max_bytes > 0 && !targets.is_empty() {
            let deadline = Instant::now() + wait;
            let fetched = shares.fetch(&member, &targets, &settings, max_records, record_limit, max_bytes, deadline).await;
            for (t, f) in targets.iter().zip(fetched) {
                let key = (t.key.topic_id, t.key.partition);
                let entry = parts.entry(key).or_insert_with(|| FetchPartitionResponse { partition: t.key.partition, ..Default::default() });
                if f.error != 0 {
                    entry.error_code = f.error;
                }
                entry.acquired = f.acquired;
                entry.current_leader.leader_id = broker.config.node_id;
                entry.current_leader.leader_epoch = t.partition.leader_epoch();
                if !f.records.is_empty() {
                    records.insert(key, f.records);
                }
            }
        }
        if opened == Opened::New {
            for (topic_id, partition) in &session_parts {
                parts.entry((*topic_id, *partition)).or_insert_with(|| FetchPartitionResponse { partition: *partition, ..Default::default() });
            }
        } else {
            parts.retain(|k, p| p.error_code != 0 || p.ack_error_code != 0 || !p.acquired.is_empty() || acks.iter().any(|(t, i, _)| (*t, *i) == *k));
        }
        let mut ordered: Vec<Bytes> = Vec::new();
        for (k, p) in parts.iter_mut() {
            let r = records.remove(k).unwrap_or_default();
            p.records_len = r.len();
            ordered.push(r);
        }
        encode(&parts, ordered, lock_ms, version)
    })))
}

fn encode(
    parts: &BTreeMap<(Uuid, i32), FetchPartitionResponse>,
    records: Vec<Bytes>,
    lock_ms: i32,
    version: i16,
) -> Result<PartsBody, ProtocolError> {
    let mut responses: Vec<(Uuid, Vec<FetchPartitionResponse>)> = Vec::new();
    for ((topic_id, _), p) in parts {
        match responses.last_mut() {
            Some((t, ps)) if t == topic_id => ps.push(p.clone()),
            _ => responses.push((*topic_id, vec![p.clone()])),
        }
    }
    let resp = ShareFetchResponse { acquisition_lock_timeout_ms: lock_ms, responses, ..Default::default() };
    let mut pieces = encode_share_fetch_response(&resp, version)?.pieces.into_iter();
    let head: BytesMut = pieces.next().unwrap_or_default();
    let mut rest = Vec::new();
    let mut records = records.into_iter();
    for piece in pieces {
        if let Some(r) = records.next() {
            if !r.is_empty() {
                rest.push(Part::Bytes(r));
            }
        }
        rest.push(Part::Bytes(piece.freeze()));
    }
    Ok(PartsBody { head, rest })
}
