//! Produce (key 0), versions 3-13.
//!
//! Each partition's batches are validated by header and CRC, given offsets by patching the
//! batch header, and appended exactly as received (compressed batches stay compressed); on a
//! topic whose cleanup.policy includes compact every record is read (decompressed) to refuse
//! keyless ones with INVALID_RECORD and per-record errors, as Kafka does. The
//! append happens before the next request on the connection is read, so per-connection order
//! is append order. acks=0: no response (the connection is closed if a partition failed, the
//! only signal such a client gets). acks=1: answered after the write. acks=-1: answered after
//! the data is fsynced (group commit, `strom.acks.all.fsync`), and refused with
//! NOT_ENOUGH_REPLICAS when the effective minimum ISR exceeds the in-sync replicas (Kafka's:
//! `min.insync.replicas` capped at the partition's replica count, so a topic with fewer
//! replicas than that takes acks=all once all of them are in sync); with replicas,
//! it also waits (up to the request's timeout, then REQUEST_TIMED_OUT) until the high
//! watermark covers the batch, i.e. every in-sync replica has it, then answers
//! NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below `min.insync.replicas` meanwhile, or
//! NOT_LEADER_OR_FOLLOWER if leadership moved first. A partition this broker does not lead
//! answers NOT_LEADER_OR_FOLLOWER (after waiting up to 0.5 s when the committed metadata
//! already names this broker its leader and only the local reconciliation is behind).
//! v13 names topics by id. Idempotent producers (producer id >= 0): the log checks sequences
//! and epochs (OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH) and answers a retried
//! batch with its original offsets. Transactional batches: v12+ (Transactions V2) adds the
//! partition to the producer's transaction implicitly; below v12 the partition must already be
//! in the open transaction (INVALID_TXN_STATE otherwise).
//!
//! Authorization (Kafka's `handleProduceRequest`): a request whose first batch of some
//! partition is transactional needs WRITE on its transactional id (none counts as denied),
//! else every partition is TRANSACTIONAL_ID_AUTHORIZATION_FAILED and nothing is appended;
//! then WRITE on each topic, else its partitions are TOPIC_AUTHORIZATION_FAILED — decided
//! before the topic is looked up, so a denied principal never learns whether it exists (a
//! v13 topic id nobody knows is UNKNOWN_TOPIC_ID: there is no name to authorize). There is no
//! IDEMPOTENT_WRITE check here: InitProducerId made that one.
//!
//! Client quotas ([`crate::quota`]): the request's bytes count against the principal's and
//! client id's `producer_byte_rate`; over it, the response carries `throttle_time_ms` and the
//! connection reads nothing more for that long (acks=0 too). The records are appended anyway.

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, BrokerId, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::handlers::authz::op;
use crate::handlers::errors::log_error_code;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::log::{now_ms, LogError};
use crate::metadata::TopicMeta;
use crate::protocol::batch::BatchView;
use crate::protocol::{encode_body, ProtocolError, WireError};
use crate::replica::Partition;

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::Produce),
    min: 3,
    max: 13,
};

/// Whether the first batch of some partition is transactional (Kafka's
/// `RequestUtils.hasTransactionalRecords`).
fn has_transactional_batches(req: &ProduceRequest) -> bool {
    req.topic_data.iter().any(|td| {
        td.partition_data.iter().any(|pd| {
            pd.records
                .as_ref()
                .and_then(|r| BatchView::parse_header(r).ok())
                .is_some_and(|b| b.is_transactional())
        })
    })
}

fn denied(index: i32, e: WireError) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(e.code())
        .with_base_offset(-1)
        .with_log_start_offset(-1)
        .with_log_append_time_ms(-1)
}

/// How long a produce waits for a leadership the metadata gives this broker to be taken up
/// (see `Broker::partition_to_lead`).
const LEADERSHIP_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let size = body.len();
    let req: ProduceRequest = ctx.decode(body)?;
    let broker = ctx.broker.clone();
    let acks = req.acks;
    let authz = ctx.authz();
    if authz.enabled() && has_transactional_batches(&req) {
        let allowed = req
            .transactional_id
            .as_ref()
            .is_some_and(|t| authz.transactional_id(op::WRITE, t.0.as_str()));
        if !allowed {
            if acks == 0 {
                return Ok(Reply::NoneThenClose);
            }
            let responses = req
                .topic_data
                .iter()
                .map(|td| {
                    let parts = td
                        .partition_data
                        .iter()
                        .map(|pd| denied(pd.index, WireError::TransactionalIdAuthorizationFailed))
                        .collect();
                    let mut t = TopicProduceResponse::default().with_partition_responses(parts);
                    if ctx.version >= 13 {
                        t.topic_id = td.topic_id;
                    } else {
                        t.name = TopicName(td.name.0.clone());
                    }
                    t
                })
                .collect();
            return ctx.reply(&ProduceResponse::default().with_responses(responses));
        }
    }
    let mut writable = authz.names(op::WRITE, crate::security::acl::resource::TOPIC);
    let now = now_ms();
    let mut any_error = false;
    // Partitions to fsync before answering: (topic idx, partition idx, log, end offset).
    let mut to_sync = Vec::new();
    // acks=all batches the in-sync followers do not have yet: (topic, partition, end offset).
    // (topic index, partition index, partition, end offset to replicate, min.insync.replicas)
    let mut awaiting_hw: Vec<(usize, usize, std::sync::Arc<Partition>, i64, i64)> = Vec::new();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    // What the metadata knows of each topic of the request, for the leader hints.
    let mut metas = Vec::with_capacity(req.topic_data.len());
    // One bound for the whole request, however many partitions wait.
    let leadership_deadline = tokio::time::Instant::now() + LEADERSHIP_WAIT;
    for (ti, td) in req.topic_data.into_iter().enumerate() {
        let meta = if ctx.version >= 13 {
            broker.metadata.topic_by_id(&td.topic_id)
        } else {
            broker.metadata.topic(td.name.0.as_str())
        };
        // By name (v13: the name of a known id; an unknown id stays UNKNOWN_TOPIC_ID).
        let name = match (ctx.version >= 13, meta.as_ref()) {
            (true, Some(m)) => Some(m.name.as_str()),
            (true, None) => None,
            (false, _) => Some(td.name.0.as_str()),
        };
        let allowed = name.is_none_or(|n| writable.allows(n));
        let meta = if allowed { meta } else { None };
        let mut parts = Vec::with_capacity(td.partition_data.len());
        for (pi, pd) in td.partition_data.into_iter().enumerate() {
            if !allowed {
                parts.push(denied(pd.index, WireError::TopicAuthorizationFailed));
                any_error = true;
                continue;
            }
            let mut r = PartitionProduceResponse::default()
                .with_index(pd.index)
                .with_base_offset(-1)
                .with_log_start_offset(-1)
                .with_log_append_time_ms(-1);
            let unknown = if ctx.version >= 13 {
                WireError::UnknownTopicId.code()
            } else {
                WireError::UnknownTopicOrPartition.code()
            };
            let partition = match meta.as_ref() {
                Some(m) => broker.partition_to_lead(m, pd.index, leadership_deadline).await,
                None => None,
            };
            let Some(partition) = partition else {
                // In a cluster, a partition of a known topic that is not hosted here is led
                // elsewhere (Kafka's answer: NOT_LEADER_OR_FOLLOWER, so the client looks again).
                let elsewhere = broker.is_cluster()
                    && meta.as_ref().is_some_and(|m| (0..m.partitions).contains(&pd.index));
                r.error_code = if elsewhere {
                    WireError::NotLeaderOrFollower.code()
                } else {
                    unknown
                };
                any_error = true;
                parts.push(r);
                continue;
            };
            if !matches!(acks, -1..=1) {
                r.error_code = WireError::InvalidRequiredAcks.code();
                any_error = true;
                parts.push(r);
                continue;
            }
            // One look at the role: a leader's ISR always holds itself, a follower's is empty.
            let isr = partition.isr_size();
            if isr == 0 {
                r.error_code = WireError::NotLeaderOrFollower.code();
                any_error = true;
                parts.push(r);
                continue;
            }
            // Looked up only for acks=all (a config resolution per partition otherwise wasted).
            let min_isr = if acks == -1 { partition.effective_min_isr(min_insync(&broker, meta.as_ref().map(|m| &m.configs))) } else { 1 };
            if acks == -1 && min_isr > isr as i64 {
                r.error_code = WireError::NotEnoughReplicas.code();
                any_error = true;
                parts.push(r);
                continue;
            }
            let records = pd.records.unwrap_or_default();
            if let Err(code) = validate_records(ctx.version, &records) {
                r.error_code = code;
                any_error = true;
                parts.push(r);
                continue;
            }
            if let Err(code) = check_transaction(
                &broker,
                ctx.version,
                req.transactional_id.as_ref().map(|t| t.0.as_str()),
                &partition,
                &records,
            )
            .await
            {
                r.error_code = code;
                any_error = true;
                parts.push(r);
                continue;
            }
            // Appended straight from the request frame (the log patches copies of the headers).
            match partition.append_as_leader(&records, now, false) {
                Ok(info) => {
                    if !info.duplicate {
                        let m = crate::metrics::global().topic(&partition.topic);
                        m.bytes_in.inc_by(records.len() as u64);
                        m.records_in.inc_by(info.records.max(0) as u64);
                    }
                    r.base_offset = info.base_offset;
                    r.log_append_time_ms = info.log_append_time_ms;
                    r.log_start_offset = info.log_start_offset;
                    partition.appended();
                    if acks == -1 && partition.high_watermark() <= info.last_offset {
                        awaiting_hw.push((ti, pi, partition.clone(), info.last_offset + 1, min_isr));
                    }
                    let by_count = partition.log.flush_due_by_count();
                    if (acks == -1 && broker.config.acks_all_fsync) || by_count {
                        to_sync.push((ti, pi, partition.log.clone(), info.last_offset + 1));
                    }
                }
                Err(e) => {
                    tracing::debug!(log = partition.log.name(), error = %e, "produce refused");
                    r.error_code = log_error_code(&e);
                    r.error_message = Some(StrBytes::from_string(e.to_string()));
                    if let LogError::InvalidRecords(errors) = &e {
                        r.record_errors = errors
                            .iter()
                            .map(|(i, m)| BatchIndexAndErrorMessage::default().with_batch_index(*i).with_batch_index_error_message(Some(StrBytes::from_string(m.clone()))))
                            .collect();
                    }
                    any_error = true;
                }
            }
            parts.push(r);
        }
        let mut t = TopicProduceResponse::default().with_partition_responses(parts);
        if ctx.version >= 13 {
            t.topic_id = td.topic_id;
        } else {
            t.name = TopicName(td.name.0.clone());
        }
        responses.push(t);
        metas.push(meta);
    }
    // Handed to the flusher now, not when the response's turn comes: a pass covers every
    // request queued meanwhile, pipelined ones on this connection included.
    let pending = if to_sync.is_empty() {
        None
    } else {
        let items = to_sync
            .iter()
            .map(|(_, _, log, end)| (log.clone(), *end))
            .collect();
        broker.logs.flusher().submit(items, acks != 0)
    };
    // Client quotas: the request's bytes against its producer_byte_rate; a client over it is
    // told how long to back off and its connection reads nothing meanwhile (acks=0 too).
    let throttle = ctx.throttler().record(crate::quota::Kind::Produce, size);
    if acks == 0 {
        // Flushes required by flush.messages still happen, in the background.
        return Ok(if any_error {
            Reply::NoneThenClose
        } else {
            Reply::None
        });
    }
    let mut resp = ProduceResponse::default().with_responses(responses).with_throttle_time_ms(throttle);
    let version = ctx.version;
    let session = ctx.session.clone();
    if pending.is_none() && awaiting_hw.is_empty() {
        if any_error {
            with_leader_hints(&broker, session.listener(), version, &mut resp, &metas);
        }
        return Ok(Reply::Now(encode_body(&resp, version)?));
    }
    let timeout = std::time::Duration::from_millis(req.timeout_ms.clamp(0, 300_000) as u64);
    Ok(Reply::Later(Box::pin(async move {
        // The in-sync replicas first (the delayed produce), then the local fsync.
        let deadline = tokio::time::Instant::now() + timeout;
        for (ti, pi, partition, end, min_isr) in awaiting_hw {
            let (code, message) = match replicated(&partition, end, deadline).await {
                // Kafka checks the ISR again when the delayed produce completes.
                Replication::Done if (partition.isr_size() as i64) < min_isr => (
                    WireError::NotEnoughReplicasAfterAppend,
                    "the batch was written to fewer in-sync replicas than min.insync.replicas",
                ),
                Replication::Done => continue,
                Replication::NotLeader => (
                    WireError::NotLeaderOrFollower,
                    "leadership moved before the in-sync replicas had the batch",
                ),
                Replication::TimedOut => (
                    WireError::RequestTimedOut,
                    "the in-sync replicas did not acknowledge the batch in time",
                ),
            };
            let r = &mut resp.responses[ti].partition_responses[pi];
            r.error_code = code.code();
            r.error_message = Some(StrBytes::from_static_str(message));
        }
        let outcomes = match pending {
            Some(p) => p.await,
            None => Ok(Vec::new()),
        };
        for (k, (ti, pi, _, _)) in to_sync.into_iter().enumerate() {
            let error = match &outcomes {
                Ok(all) => match &all[k] {
                    Ok(()) => continue,
                    Err(e) => (log_error_code(e), e.to_string()),
                },
                Err(_) => (
                    WireError::KafkaStorageError.code(),
                    "the flusher stopped".to_string(),
                ),
            };
            let r = &mut resp.responses[ti].partition_responses[pi];
            r.error_code = error.0;
            r.error_message = Some(StrBytes::from_string(error.1));
        }
        with_leader_hints(&broker, session.listener(), version, &mut resp, &metas);
        encode_body(&resp, version)
    })))
}

/// KIP-951 (v10+): a partition answered NOT_LEADER_OR_FOLLOWER carries its current leader and
/// epoch, and the response the endpoints of those leaders, so the client sends to the new
/// leader without asking for Metadata first.
fn with_leader_hints(broker: &Broker, listener: &str, version: i16, resp: &mut ProduceResponse, metas: &[Option<TopicMeta>]) {
    if version < 10 {
        return;
    }
    let mut endpoints: Vec<NodeEndpoint> = Vec::new();
    for (t, meta) in resp.responses.iter_mut().zip(metas) {
        let Some(meta) = meta else { continue };
        for r in t.partition_responses.iter_mut().filter(|r| r.error_code == WireError::NotLeaderOrFollower.code()) {
            let Some(hint) = broker.leader_hint(meta, r.index) else { continue };
            r.current_leader = LeaderIdAndEpoch::default().with_leader_id(BrokerId(hint.leader)).with_leader_epoch(hint.epoch);
            if let Some((b, (host, port))) = hint.endpoint.and_then(|b| b.endpoint(listener).map(|e| (b, e))) {
                if !endpoints.iter().any(|e| e.node_id.0 == b.node) {
                    endpoints.push(NodeEndpoint::default().with_node_id(BrokerId(b.node)).with_host(StrBytes::from_string(host)).with_port(i32::from(port)).with_rack(b.rack.map(StrBytes::from_string)));
                }
            }
        }
    }
    resp.node_endpoints = endpoints;
}

/// How waiting for the in-sync replicas ended.
enum Replication {
    Done,
    /// This broker stopped leading first (the batch may or may not survive: the client retries).
    NotLeader,
    TimedOut,
}

/// Waits until the partition's high watermark reaches `end` (every in-sync replica has the
/// batch), `deadline`, or the end of this broker's leadership.
async fn replicated(p: &Partition, end: i64, deadline: tokio::time::Instant) -> Replication {
    let notify = std::sync::Arc::new(tokio::sync::Notify::new());
    loop {
        p.add_waiter(&notify);
        if p.high_watermark() >= end {
            return Replication::Done;
        }
        if !p.is_leader() {
            return Replication::NotLeader;
        }
        if tokio::time::Instant::now() >= deadline {
            return Replication::TimedOut;
        }
        let _ = tokio::time::timeout_at(deadline, notify.notified()).await;
    }
}

/// Kafka's ProduceRequest.validateRecords for v3+: exactly one whole magic-2 batch per
/// partition (INVALID_RECORD otherwise), and zstd only from v7 (UNSUPPORTED_COMPRESSION_TYPE).
/// A length field below the header size is left to the log, which answers CORRUPT_MESSAGE.
fn validate_records(version: i16, records: &[u8]) -> Result<(), i16> {
    let size = match BatchView::peek_size(records) {
        Ok(Some(size)) => size,
        Ok(None) => return Err(WireError::InvalidRecord.code()),
        Err(_) => return Ok(()),
    };
    if size > records.len() || records.len() < crate::protocol::batch::HEADER_LEN {
        return Err(WireError::InvalidRecord.code());
    }
    let view =
        BatchView::parse_header_only(records).map_err(|_| WireError::InvalidRecord.code())?;
    if view.compression() == 4 && version < 7 {
        return Err(WireError::UnsupportedCompressionType.code());
    }
    if size != records.len() {
        return Err(WireError::InvalidRecord.code());
    }
    Ok(())
}

/// Transactional batches: v12+ producers (Transactions V2) add the partition to their
/// transaction implicitly; older ones must have added it (verification, like Kafka 3.6+).
async fn check_transaction(
    broker: &std::sync::Arc<crate::broker::Broker>,
    version: i16,
    txn_id: Option<&str>,
    partition: &Partition,
    records: &[u8],
) -> Result<(), i16> {
    let Ok(header) = BatchView::parse_header_only(records) else {
        return Ok(());
    }; // the log reports it
    if !header.is_transactional() || header.producer_id() < 0 {
        return Ok(());
    }
    let Some(txn_id) = txn_id.filter(|t| !t.is_empty()) else {
        return Err(WireError::InvalidRecord.code());
    };
    let (pid, epoch) = (header.producer_id(), header.producer_epoch());
    // v12+ is Transactions V2: the broker adds the partition to the transaction itself.
    broker
        .txn_add_or_verify(txn_id, pid, epoch, &[(partition.topic.to_string(), partition.index)], version >= 12)
        .await
}

fn min_insync(
    broker: &std::sync::Arc<crate::broker::Broker>,
    overrides: Option<&std::collections::BTreeMap<String, String>>,
) -> i64 {
    let empty = Default::default();
    crate::config::topic::effective(
        &broker.effective_config(),
        overrides.unwrap_or(&empty),
        "min.insync.replicas",
    )
    .and_then(|(v, _)| v.parse().ok())
    .unwrap_or(1)
}
