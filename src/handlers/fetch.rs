//! Fetch (key 1), versions 4-18.
//!
//! Returns whole batches from each partition's log up to the high watermark (the last stable
//! offset for read_committed, with the aborted transactions overlapping the returned range,
//! in offset order, so the client can skip them), bounded by the request's
//! `max_bytes` (capped by the broker's `fetch.max.bytes`) and each partition's
//! `partition_max_bytes`; the first batch is returned whole even when larger, so consumers
//! always make progress. When fewer than `min_bytes` are available the fetch waits up to
//! `max_wait_ms`, woken by appends to any of its partitions. Fetch sessions (KIP-227) are
//! answered sessionless (session id 0), which clients handle by sending full requests; a
//! request for an existing session gets FETCH_SESSION_ID_NOT_FOUND. v13+ names topics by id.
//! Record bytes are never copied: the response is encoded around them and each partition's
//! batches go from the segment file to the socket with sendfile(2) (see
//! [`crate::protocol::fetch_response`] and the connection writer).
//! Follower fetches (a replica id: `replica_id` up to v14, `replica_state` from v15) are
//! served by the partition's leader to its replicas: records up to the log end (not the high
//! watermark), and the follower's fetch offset moves the high watermark (waking delayed
//! produces). A follower fetch for a partition this broker does not lead, or from a broker
//! that is not one of its replicas, gets NOT_LEADER_OR_FOLLOWER; so does a consumer's fetch
//! before v11 to a follower. A consumer's fetch from v11 (client metadata, KIP-392) is served
//! by any replica up to that replica's high watermark, and with `replica.selector.class` set
//! to the rack-aware selector a leader answers a consumer in another rack with the in-sync
//! follower of its rack as preferred read replica (no records). NOT_LEADER_OR_FOLLOWER and
//! FENCED_LEADER_EPOCH answers name the current leader and its endpoint (KIP-951).
//!
//! Authorization (Kafka's `handleFetchRequest`): a follower's fetch needs CLUSTER_ACTION on
//! the cluster, else every partition is TOPIC_AUTHORIZATION_FAILED (topic ACLs are not
//! consulted); a consumer's needs READ on each topic, else that topic's partitions are
//! TOPIC_AUTHORIZATION_FAILED, decided before the topic is looked up (a v13 topic id nobody
//! knows is UNKNOWN_TOPIC_ID: there is no name to authorize).
//!
//! Client quotas ([`crate::quota`]): a consumer's answer counts against its
//! `consumer_byte_rate`; over it, the answer carries `throttle_time_ms` and no records (those
//! bytes are taken back out of the rate), and the connection reads nothing for that long.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::broker::Broker;
use crate::handlers::authz::op;
use crate::handlers::errors::{epoch_error_code, log_error_code};
use crate::metadata::TopicMeta;
use crate::handlers::{Api, ApiSpec, Part, PartsBody, Reply, RequestContext};
use crate::protocol::fetch_response::encode_fetch_response;
use crate::protocol::{encode_body, ProtocolError, WireError};
use crate::replica::throttle::ReplicationQuota;
use crate::replica::Partition;

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::Fetch), min: 4, max: 18 };

/// Longest a fetch may wait, whatever the client asks.
const MAX_WAIT_MS: i32 = 30_000;

struct Target {
    topic: usize,
    partition: i32,
    fetch_offset: i64,
    max_bytes: usize,
    current_leader_epoch: i32,
    /// A follower's latest epoch in its log (v12+; -1 unknown).
    last_fetched_epoch: i32,
    part: Result<Arc<Partition>, i16>,
    /// KIP-392: the follower this leader sends the consuming client to (its rack's).
    preferred: Option<i32>,
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: FetchRequest = ctx.decode(body)?;
    let version = ctx.version;
    if version >= 7 && (req.session_id != 0 || req.session_epoch > 0) {
        let resp = FetchResponse::default().with_error_code(WireError::FetchSessionIdNotFound.code());
        return Ok(Reply::Now(encode_body(&resp, version)?));
    }
    let broker = &ctx.broker;
    let replica = if version >= 15 { req.replica_state.replica_id.0 } else { req.replica_id.0 };
    let replica = (replica >= 0).then_some(replica);
    let authz = ctx.authz();
    let follower_denied = replica.is_some() && !authz.cluster(op::CLUSTER_ACTION);
    let mut readable = authz.names(op::READ, crate::security::acl::resource::TOPIC);
    let mut topics = Vec::with_capacity(req.topics.len());
    let mut targets = Vec::new();
    for ft in &req.topics {
        let meta = if version >= 13 { broker.metadata.topic_by_id(&ft.topic_id) } else { broker.metadata.topic(ft.topic.0.as_str()) };
        let unknown = if version >= 13 { WireError::UnknownTopicId.code() } else { WireError::UnknownTopicOrPartition.code() };
        let name = if version >= 13 { meta.as_ref().map(|m| m.name.as_str()) } else { Some(ft.topic.0.as_str()) };
        let denied = follower_denied || (replica.is_none() && name.is_some_and(|n| !readable.allows(n)));
        let meta = if denied { None } else { meta };
        topics.push((ft.topic.clone(), ft.topic_id, meta.clone()));
        for fp in &ft.partitions {
            let part = meta
                .as_ref()
                .and_then(|m| broker.partition(&m.name, fp.partition))
                .ok_or(if denied {
                    WireError::TopicAuthorizationFailed.code()
                } else if meta.is_some() {
                    broker.not_hosted_code(meta.as_ref(), fp.partition, WireError::UnknownTopicOrPartition.code())
                } else {
                    unknown
                });
            targets.push(Target {
                topic: topics.len() - 1,
                partition: fp.partition,
                fetch_offset: fp.fetch_offset,
                max_bytes: fp.partition_max_bytes.max(0) as usize,
                current_leader_epoch: fp.current_leader_epoch,
                last_fetched_epoch: fp.last_fetched_epoch,
                part,
                preferred: None,
            });
        }
    }
    let throttler = ctx.throttler();
    // A consumer under a consumer_byte_rate gets at most what its quota window allows (Kafka's
    // getMaxValueInQuotaWindow), or every answer would be throttled and sent empty.
    let quota_cap = if replica.is_none() { throttler.window_cap(crate::quota::Kind::Fetch) } else { None };
    let max_bytes = (req.max_bytes.max(0) as usize).min(broker.config.fetch_max_bytes).min(quota_cap.unwrap_or(usize::MAX));
    let min_bytes = req.min_bytes.max(0) as usize;
    let read_committed = req.isolation_level == 1;
    // KIP-392: a consumer names its rack (v11+); with the rack-aware selector a leader sends
    // it to an in-sync follower in that rack, and any replica serves a v11+ consumer up to its
    // own high watermark (Kafka's: a fetch with client metadata may read from a follower).
    let follower_reads = version >= 11 && replica.is_none();
    if follower_reads && broker.is_cluster() && broker.config.cluster.rack_aware_reads && !req.rack_id.is_empty() {
        let rack_of = |id: i32| broker.metadata.broker(id).and_then(|b| b.rack);
        for t in &mut targets {
            if let Ok(p) = &t.part {
                t.preferred = p.preferred_read_replica(req.rack_id.as_str(), &rack_of);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.clamp(0, MAX_WAIT_MS) as u64);
    // Replication throttle (leader side): only a follower's fetch, only partitions throttled
    // here, only while that follower is out of sync.
    let quota = replica.map(|_| broker.leader_quota.clone());
    let hinter = broker.clone();
    let session = ctx.session.clone();
    Ok(Reply::LaterParts(Box::pin(async move {
        let notify = Arc::new(Notify::new());
        loop {
            let waiting = Instant::now() < deadline;
            if waiting {
                for t in &targets {
                    if let Ok(p) = &t.part {
                        p.add_waiter(&notify);
                    }
                }
            }
            let (mut parts, bytes, errors) = read_all(&targets, max_bytes, read_committed, replica, follower_reads, quota.as_deref());
            if bytes >= min_bytes.max(1) || errors || !waiting || targets.is_empty() {
                // Client quotas (consumers): bytes over the consumer_byte_rate are not sent —
                // the answer has no records, the throttle time, and the bytes are taken back.
                let throttle = if replica.is_none() { throttler.record(crate::quota::Kind::Fetch, bytes) } else { 0 };
                if throttle > 0 {
                    throttler.unrecord(crate::quota::Kind::Fetch, bytes);
                    for (_, _, records) in parts.iter_mut() {
                        if records.is_some() {
                            *records = Some(Part::Bytes(Bytes::new()));
                        }
                    }
                }
                for (t, (_, _, records)) in targets.iter().zip(&parts) {
                    if let (Ok(p), Some(r)) = (&t.part, records) {
                        crate::metrics::global().topic(&p.topic).bytes_out.inc_by(r.len() as u64);
                        if let (Some(q), Some(f)) = (&quota, replica) {
                            if throttled(p, f) {
                                q.record(r.len() as u64);
                            }
                        }
                    }
                }
                let (parts, endpoints) = with_leader_hints(&hinter, session.listener(), version, &targets, &topics, parts);
                return encode(version, &topics, parts, endpoints, throttle);
            }
            let _ = tokio::time::timeout_at(deadline, notify.notified()).await;
        }
    })))
}

/// One partition's answer: the response fields, and its records (sent from the segment file).
type PartitionAnswer = (usize, PartitionData, Option<Part>);

/// Whether what `p` serves follower `replica` counts against the leader replication throttle.
fn throttled(p: &Partition, replica: i32) -> bool {
    p.leader_throttled() && !p.is_in_sync(replica)
}

/// `quota`: the leader replication throttle, for a follower's fetch. While it is exceeded,
/// throttled partitions answer without records (as Kafka's leader does). `follower_reads`: a
/// consumer's fetch a follower serves too (up to its high watermark).
fn read_all(targets: &[Target], max_bytes: usize, read_committed: bool, replica: Option<i32>, follower_reads: bool, quota: Option<&ReplicationQuota>) -> (Vec<PartitionAnswer>, usize, bool) {
    let mut out = Vec::with_capacity(targets.len());
    let mut total = 0usize;
    let mut errors = false;
    for t in targets {
        let mut pd = PartitionData::default()
            .with_partition_index(t.partition)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1);
        let mut records = None;
        match &t.part {
            Err(code) => {
                pd.error_code = *code;
                errors = true;
            }
            Ok(p) => {
                // Kafka's order: the leader epoch the fetcher knows, then leadership (and, for
                // a follower, that it is a replica), then divergence.
                let epoch_check = p.check_current_epoch(t.current_leader_epoch);
                let fenced = epoch_check.is_err();
                // A follower whose last fetched epoch ended earlier here than its fetch offset
                // (or is unknown here) has a log that diverged: it is told where to truncate,
                // and its offset does not count as progress.
                let diverged = match replica {
                    Some(_) if !fenced && t.last_fetched_epoch >= 0 && p.is_leader() => {
                        let (e, end) = p.end_offset_for_epoch(t.last_fetched_epoch);
                        (e < t.last_fetched_epoch || end < t.fetch_offset).then_some((e, end))
                    }
                    _ => None,
                };
                // A follower's fetch offset is its progress: recorded before reading.
                let served = fenced
                    || match (replica, diverged) {
                        (Some(_), Some(_)) => true,
                        (Some(r), None) => p.on_follower_fetch(r, t.fetch_offset).is_ok(),
                        (None, _) => follower_reads || p.is_leader(),
                    };
                if let Err(e) = epoch_check {
                    pd.error_code = epoch_error_code(e);
                    errors = true;
                } else if let Some((e, end)) = diverged {
                    pd.diverging_epoch = kafka_protocol::messages::fetch_response::EpochEndOffset::default().with_epoch(e).with_end_offset(end);
                    pd.high_watermark = p.high_watermark();
                    pd.last_stable_offset = p.log.last_stable_offset().min(pd.high_watermark);
                    pd.log_start_offset = p.log.log_start_offset();
                    records = Some(Part::Bytes(Bytes::new()));
                    // Answer at once (as for an error): the follower must truncate first.
                    errors = true;
                } else if !served {
                    pd.error_code = WireError::NotLeaderOrFollower.code();
                    errors = true;
                } else if let Some(r) = t.preferred {
                    // Sent to a follower in the client's rack: no records, answered at once.
                    pd.preferred_read_replica = BrokerId(r);
                    pd.high_watermark = p.high_watermark();
                    pd.last_stable_offset = p.log.last_stable_offset().min(pd.high_watermark);
                    pd.log_start_offset = p.log.log_start_offset();
                    records = Some(Part::Bytes(Bytes::new()));
                    errors = true;
                } else {
                    let hw = p.high_watermark();
                    let lso = p.log.last_stable_offset().min(hw);
                    // Followers replicate everything the leader has; consumers see committed records.
                    let bound = match replica {
                        Some(_) => p.log.log_end_offset(),
                        None if read_committed => lso,
                        None => hw,
                    };
                    // Throttled: nothing while over the rate (empty, not an error), else at
                    // most a second's worth (one batch at least), so the rate holds closely.
                    let mut limit = t.max_bytes.min(max_bytes.saturating_sub(total));
                    let bound = match (replica, quota) {
                        (Some(r), Some(q)) if throttled(p, r) => {
                            limit = limit.min(usize::try_from(q.limit()).unwrap_or(usize::MAX));
                            if q.exceeded() {
                                t.fetch_offset.min(bound)
                            } else {
                                bound
                            }
                        }
                        _ => bound,
                    };
                    match p.log.read_range(t.fetch_offset, limit, bound, total == 0) {
                        Ok(r) => {
                            pd.high_watermark = hw;
                            pd.last_stable_offset = lso;
                            pd.log_start_offset = r.log_start_offset;
                            if read_committed {
                                pd.aborted_transactions = Some(
                                    p.log
                                        .aborted_transactions(t.fetch_offset, r.end_offset)
                                        .into_iter()
                                        .map(|a| AbortedTransaction::default().with_producer_id(ProducerId(a.producer_id)).with_first_offset(a.first_offset))
                                        .collect(),
                                );
                            }
                            records = Some(match r.range {
                                Some(range) => {
                                    total += range.len;
                                    if range.file.as_file().is_some() {
                                        Part::File(range)
                                    } else {
                                        // A storage without plain files (fault injection): copy.
                                        match range.read_to_bytes() {
                                            Ok(b) => Part::Bytes(b),
                                            Err(e) => {
                                                pd.error_code = log_error_code(&e.into());
                                                errors = true;
                                                Part::Bytes(Bytes::new())
                                            }
                                        }
                                    }
                                }
                                None => Part::Bytes(Bytes::new()),
                            });
                        }
                        Err(e) => {
                            pd.error_code = log_error_code(&e);
                            errors = true;
                        }
                    }
                }
            }
        }
        if read_committed && pd.aborted_transactions.is_none() {
            pd.aborted_transactions = Some(Vec::new());
        }
        out.push((t.topic, pd, records));
    }
    (out, total, errors)
}

/// The topics of the request in order: name, id, and what the metadata knows of it.
type Topics = [(TopicName, uuid::Uuid, Option<TopicMeta>)];

/// KIP-951: a partition answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH carries its
/// current leader and epoch (v12+), and the response the endpoints of those leaders (v16+), so
/// the client fetches from the new leader without asking for Metadata first.
fn with_leader_hints(broker: &Broker, listener: &str, version: i16, targets: &[Target], topics: &Topics, mut parts: Vec<PartitionAnswer>) -> (Vec<PartitionAnswer>, Vec<NodeEndpoint>) {
    let mut endpoints: Vec<NodeEndpoint> = Vec::new();
    if version < 12 {
        return (parts, endpoints);
    }
    let moved = [WireError::NotLeaderOrFollower.code(), WireError::FencedLeaderEpoch.code()];
    for (t, (ti, pd, _)) in targets.iter().zip(parts.iter_mut()) {
        if !moved.contains(&pd.error_code) {
            continue;
        }
        let Some(hint) = topics[*ti].2.as_ref().and_then(|m| broker.leader_hint(m, t.partition)) else {
            continue;
        };
        pd.current_leader = LeaderIdAndEpoch::default().with_leader_id(BrokerId(hint.leader)).with_leader_epoch(hint.epoch);
        if let Some((b, (host, port))) = hint.endpoint.filter(|_| version >= 16).and_then(|b| b.endpoint(listener).map(|e| (b, e))) {
            if !endpoints.iter().any(|e| e.node_id.0 == b.node) {
                endpoints.push(NodeEndpoint::default().with_node_id(BrokerId(b.node)).with_host(StrBytes::from_string(host)).with_port(i32::from(port)).with_rack(b.rack.map(StrBytes::from_string)));
            }
        }
    }
    (parts, endpoints)
}

/// Encodes the response around the record bytes: the pieces of the encoded body with each
/// partition's records between them.
fn encode(version: i16, topics: &Topics, parts: Vec<PartitionAnswer>, node_endpoints: Vec<NodeEndpoint>, throttle_ms: i32) -> Result<PartsBody, ProtocolError> {
    let mut responses: Vec<FetchableTopicResponse> = topics
        .iter()
        .map(|(name, id, _)| {
            let mut t = FetchableTopicResponse::default();
            if version >= 13 {
                t.topic_id = *id;
            } else {
                t.topic = name.clone();
            }
            t
        })
        .collect();
    // Partitions of one topic are contiguous in `parts` (targets follow the request's topics),
    // so the records below are in the order the encoder lays the partitions out.
    let mut lens = Vec::with_capacity(parts.len());
    let mut records = Vec::with_capacity(parts.len());
    for (ti, mut pd, rec) in parts {
        pd.records = None; // the default is an empty, non-null value; ours go in `rest`
        // Empty, not null, when there are none (errors too), as Kafka answers.
        lens.push(Some(rec.as_ref().map_or(0, Part::len)));
        records.push(rec);
        responses[ti].partitions.push(pd);
    }
    let resp = FetchResponse::default().with_responses(responses).with_node_endpoints(node_endpoints).with_throttle_time_ms(throttle_ms);
    let mut pieces = encode_fetch_response(&resp, version, &lens)?.pieces.into_iter();
    let head = pieces.next().ok_or_else(|| ProtocolError::Encode(anyhow::anyhow!("empty fetch encoding")))?;
    let mut rest = Vec::with_capacity(records.len() * 2);
    for (rec, piece) in records.into_iter().zip(pieces) {
        if let Some(rec) = rec.filter(|r| !r.is_empty()) {
            rest.push(rec);
        }
        rest.push(Part::Bytes(piece.freeze()));
    }
    Ok(PartsBody { head, rest })
}
