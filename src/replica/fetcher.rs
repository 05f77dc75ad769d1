//! The follower side of replication: a task that fetches one partition from its leader the
//! way a Kafka follower does — Fetch requests carrying this broker's replica id and the
//! partition's leader epoch, from its log end offset — appends what comes back unchanged
//! ([`Partition::append_as_follower`]) and takes the leader's high watermark
//! ([`Partition::follower_high_watermark`]). The leader counts each fetch offset as the
//! follower's progress, which moves its high watermark and completes acks=all produces; with
//! [`FetcherConfig::fsync`] the appended records are fsynced before the next fetch reports
//! that offset.
//!
//! Errors (connection lost, the leader not answering, a partition error) are logged and retried
//! after a backoff on a fresh connection; the task ends when its token is cancelled or the
//! partition stops being a follower. Each request carries the latest epoch in this replica's
//! log; a log that diverged from the leader's (records of an old leader's epoch the new
//! leader never had) gets a diverging epoch back and is truncated where the two agree
//! ([`Partition::truncate_diverged`]) before fetching on. Not yet: one fetcher per source
//! broker for many partitions.
//!
//! Replication throttles: see [`FetcherConfig::quota`] (the leader holds back its side in the
//! Fetch handler).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::throttle::ReplicationQuota;
use super::Partition;

/// How long a throttled follower waits before looking at its rate again.
const THROTTLE_PAUSE: Duration = Duration::from_millis(100);

/// The Fetch version followers send (topic ids, replica id in the request).
const VERSION: i16 = 13;
/// Largest response accepted from a leader.
const RESPONSE_BYTES_MAX: usize = 64 << 20;

/// How a follower fetches.
#[derive(Debug, Clone)]
pub struct FetcherConfig {
    /// This broker's node id (the replica id the leader knows it by).
    pub node: i32,
    /// The leader's address (`host:port` of its client listener).
    pub leader_addr: String,
    /// How long the leader may hold a fetch with no new data.
    pub max_wait_ms: i32,
    pub max_bytes: i32,
    /// Pause after a failure before reconnecting.
    pub backoff: Duration,
    /// Fsync what a fetch appended before the next fetch, whose offset tells the leader how
    /// far this replica has the log: with it the leader's high watermark (and so every acks=all
    /// answer) only covers records each in-sync replica has on disk (`strom.acks.all.fsync`).
    pub fsync: bool,
    /// The broker's follower replication throttle: while the partition is
    /// [`Partition::follower_throttled`] (named in its topic's
    /// `follower.replication.throttled.replicas` and out of sync) and the measured rate is
    /// over the bound, no fetch is sent; what throttled fetches bring counts against it.
    pub quota: Option<Arc<ReplicationQuota>>,
}

impl FetcherConfig {
    pub fn new(node: i32, leader_addr: String) -> Self {
        FetcherConfig {
            node,
            leader_addr,
            max_wait_ms: 500,
            max_bytes: 8 << 20,
            backoff: Duration::from_millis(200),
            fsync: false,
            quota: None,
        }
    }
}

/// Starts replicating `partition` from its leader; stops when `stop` is cancelled.
pub fn spawn(
    partition: Arc<Partition>,
    config: FetcherConfig,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut conn: Option<TcpStream> = None;
        let mut correlation = 0i32;
        // Where the last truncation cut the log: cut there again (after fetching on from it)
        // means the leader serves records its own epoch cache does not know of, and each
        // round would append and remove them again at once; warned and slowed to the backoff.
        let mut last_cut: Option<i64> = None;
        while !stop.is_cancelled() && !partition.is_leader() {
            if partition.follower_throttled() && config.quota.as_ref().is_some_and(|q| q.exceeded())
            {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(THROTTLE_PAUSE) => continue,
                }
            }
            correlation = correlation.wrapping_add(1);
            let round = fetch_once(&partition, &config, &mut conn, correlation);
            let result = tokio::select! {
                _ = stop.cancelled() => break,
                r = round => r,
            };
            let result = match result {
                Ok(Some(cut)) if last_cut == Some(cut) => {
                    tracing::warn!(
                        topic = %partition.topic,
                        partition = partition.index,
                        leader = %config.leader_addr,
                        cut,
                        latest_epoch = partition.latest_log_epoch(),
                        "the leader reported the same divergence again; slowing down"
                    );
                    Err("the same divergence again".to_string())
                }
                Ok(Some(cut)) => {
                    last_cut = Some(cut);
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::debug!(
                    topic = %partition.topic,
                    partition = partition.index,
                    leader = %config.leader_addr,
                    error = %e,
                    "follower fetch failed; retrying"
                );
                conn = None;
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(config.backoff) => {}
                }
            }
        }
    })
}

/// One fetch round trip: request from the log end, append, take the high watermark. Returns
/// where the log was cut when the leader reported a divergence instead.
async fn fetch_once(
    p: &Partition,
    config: &FetcherConfig,
    conn: &mut Option<TcpStream>,
    correlation: i32,
) -> Result<Option<i64>, String> {
    if conn.is_none() {
        let s = tokio::time::timeout(
            Duration::from_secs(5),
            TcpStream::connect(&config.leader_addr),
        )
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
        let _ = s.set_nodelay(true);
        *conn = Some(s);
    }
    let stream = conn.as_mut().ok_or("no connection")?;
    // Throttled: at most a second's worth of the rate per fetch (the leader still sends one
    // whole batch), so the rate holds closely.
    let max_bytes = match &config.quota {
        Some(q) if p.follower_throttled() => config
            .max_bytes
            .min(i32::try_from(q.limit()).unwrap_or(i32::MAX)),
        _ => config.max_bytes,
    };
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(config.node))
        .with_max_wait_ms(config.max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(config.max_bytes)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(p.topic_id)
            .with_partitions(vec![FetchPartition::default()
                .with_partition(p.index)
                .with_current_leader_epoch(p.leader_epoch())
                .with_last_fetched_epoch(p.latest_log_epoch())
                .with_fetch_offset(p.log.log_end_offset())
                .with_log_start_offset(p.log.log_start_offset())
                .with_partition_max_bytes(max_bytes)])]);
    let client_id = format!("strom-replica-{}", config.node);
    let frame = crate::peer::encode_request(ApiKey::Fetch, VERSION, correlation, &client_id, &req)?;
    let wait = Duration::from_millis(config.max_wait_ms.max(0) as u64) + Duration::from_secs(10);
    let resp = tokio::time::timeout(wait, async {
        stream
            .write_all(&frame)
            .await
            .map_err(|e| format!("send: {e}"))?;
        crate::peer::read_response::<FetchResponse>(
            stream,
            ApiKey::Fetch,
            VERSION,
            correlation,
            RESPONSE_BYTES_MAX,
        )
        .await
    })
    .await
    .map_err(|_| "no response in time".to_string())??;
    let pd = resp
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|pd| pd.partition_index == p.index)
        .ok_or("the partition is missing from the response")?;
    if pd.error_code != 0 {
        return Err(format!("leader answered error {}", pd.error_code));
    }
    let diverging = &pd.diverging_epoch;
    if diverging.epoch >= 0 || diverging.end_offset >= 0 {
        let end = p
            .truncate_diverged(diverging.epoch, diverging.end_offset)
            .map_err(|e| format!("truncate: {e}"))?;
        tracing::info!(
            topic = %p.topic,
            partition = p.index,
            epoch = diverging.epoch,
            end,
            "the log diverged from the leader's: truncated"
        );
        return Ok(Some(end));
    }
    if let Some(records) = pd.records.as_ref().filter(|r| !r.is_empty()) {
        if p.follower_throttled() {
            if let Some(q) = &config.quota {
                q.record(records.len() as u64);
            }
        }
        p.append_as_follower(records, crate::log::now_ms())
            .map_err(|e| format!("append: {e}"))?;
        if config.fsync {
            p.log
                .flush_to(p.log.log_end_offset())
                .await
                .map_err(|e| format!("fsync: {e}"))?;
        }
    }
    p.follower_high_watermark(pd.high_watermark);
    Ok(None)
}
