//! The dead-letter writer of share groups (KIP-1191): records a share group rejected, or that
//! reached `share.delivery.count.limit`, are copied to the group's dead-letter topic
//! (`errors.deadletterqueue.topic.name`) with Kafka's context headers, then archived.
//!
//! The share-partition hands them over through a bounded queue and never waits for it
//! ([`crate::coordinator::share::ShareManager`]); meanwhile they are `Archiving` (durable
//! state 3: not delivered again, the start offset waits, a restart sends them again). As in
//! Kafka the copy is best effort: a topic that is missing (and
//! `errors.deadletterqueue.auto.create.topics.enable` is off), lacks
//! `errors.deadletterqueue.group.enable=true`, starts with `__` or not with the broker's
//! `errors.deadletterqueue.topic.name.prefix`, or a failed write is logged and the records are
//! archived anyway. One record per offset, written to partition `source partition % the
//! topic's partitions` with the broker's time, key and value copied only with
//! `errors.deadletterqueue.copy.record.enable=true` (the source headers are not), headers
//! `__dlq.errors.{topic,partition,offset,group,delivery.count,message}`; fsynced before the
//! records are archived.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{off_thread, Broker};
use crate::coordinator::share::partition::DeadLetter;
use crate::coordinator::share::DeadLetters;
use crate::log::now_ms;
use crate::protocol::batch::BatchIter;
use crate::protocol::records::{build_batch_with_headers, for_each_record, HeadedRecord};

/// How long a dead-letter write waits for its partition's in-sync replicas.
const PRODUCE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Dead-letter batches queued at most (one per acknowledgement or lock expiry).
const QUEUE: usize = 1024;
/// Records per batch written.
const PER_BATCH: usize = 100;
/// The largest source record copied (Kafka reads at most 1 MiB per record).
const MAX_COPY: usize = 1 << 20;

const REJECTED: &str = "Offset rejected by client.";
const OVER_LIMIT: &str = "Offset delivery count exceeded the threshold.";

impl Broker {
    /// Runs the dead-letter writer until `shutdown`.
    pub async fn run_dead_letter_writer(self: Arc<Self>, shutdown: CancellationToken) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<DeadLetters>(QUEUE);
        self.shares.set_dead_letter_sink(tx);
        loop {
            let d = tokio::select! {
                d = rx.recv() => d,
                _ = shutdown.cancelled() => return,
            };
            let Some(d) = d else { return };
            let offsets: Vec<i64> = d.records.iter().map(|r| r.0).collect();
            let metrics = crate::metrics::global();
            match self.write_dead_letters(&d).await {
                Ok(n) => {
                    metrics.share_dead_lettered.inc_by(n as u64);
                    tracing::debug!(group = %d.key.group, topic = %d.topic.topic, records = n, "dead-lettered")
                }
                Err(e) => {
                    metrics
                        .share_dead_letter_failures
                        .inc_by(offsets.len() as u64);
                    tracing::warn!(group = %d.key.group, topic = %d.topic.topic, error = %e, "dead-letter copy failed; records archived without it")
                }
            }
            self.shares.archive_now(&d.key, &offsets);
        }
    }

    async fn write_dead_letters(self: &Arc<Self>, d: &DeadLetters) -> Result<usize, String> {
        let name = d.topic.topic.clone();
        if name.starts_with("__") {
            return Err(format!("dead-letter topic {name} cannot start with '__'"));
        }
        let config = self.effective_config();
        let prefix = &config.groups.dlq_topic_prefix;
        if !prefix.is_empty() && !name.starts_with(prefix.as_str()) {
            return Err(format!(
                "dead-letter topic {name} does not start with the prefix {prefix}"
            ));
        }
        let meta = match self.metadata.topic(&name) {
            Some(m) => m,
            None if config.groups.dlq_auto_create => {
                let b = self.clone();
                let n = name.clone();
                off_thread(move || {
                    let mut configs = BTreeMap::new();
                    configs.insert(
                        "errors.deadletterqueue.group.enable".to_string(),
                        "true".to_string(),
                    );
                    configs.insert(
                        "message.timestamp.type".to_string(),
                        "CreateTime".to_string(),
                    );
                    match b.create_topic(&n, None, None, configs, false) {
                        Ok(m) => Ok(m),
                        Err(super::AdminError::TopicExists(_)) => {
                            b.metadata.topic(&n).ok_or(super::AdminError::UnknownTopic)
                        }
                        Err(e) => Err(e),
                    }
                })
                .await
                .map_err(|e| format!("cannot create dead-letter topic {name}: {e}"))?
            }
            None => return Err(format!("dead-letter topic {name} does not exist")),
        };
        if meta
            .configs
            .get("errors.deadletterqueue.group.enable")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
            != Some("true")
        {
            return Err(format!(
                "topic {name} does not have errors.deadletterqueue.group.enable=true"
            ));
        }
        let source = self
            .metadata
            .topic_by_id(&d.key.topic_id)
            .map(|m| m.name)
            .unwrap_or_else(|| crate::metadata::base64_url_uuid(d.key.topic_id));
        let index = d.key.partition.rem_euclid(meta.partitions.max(1));
        // Led here: appended directly; else (a cluster) produced to its leader.
        let target = self.partition(&name, index).filter(|p| p.is_leader());
        let remote = match &target {
            Some(_) => None,
            None => {
                let leader = self
                    .metadata
                    .partition_state(&meta.id, index)
                    .map_or(-1, |s| s.leader);
                match self.metadata.broker(leader) {
                    Some(b) if !b.fenced && b.node != self.config.node_id => {
                        Some(format!("{}:{}", b.host, b.port))
                    }
                    _ => return Err(format!("{name}-{index} has no leader")),
                }
            }
        };
        let partition = d.key.partition.to_string();
        for chunk in d.records.chunks(PER_BATCH) {
            let texts: Vec<(String, String, String)> = chunk
                .iter()
                .map(|(o, why, count)| {
                    let message = match why {
                        DeadLetter::Rejected => REJECTED,
                        DeadLetter::DeliveryLimit => OVER_LIMIT,
                    };
                    (o.to_string(), count.to_string(), message.to_string())
                })
                .collect();
            let copies: Vec<Copied> = chunk
                .iter()
                .map(|(o, _, _)| {
                    if d.topic.copy_record {
                        source_record(&d.partition, *o)
                    } else {
                        (None, None)
                    }
                })
                .collect();
            let records: Vec<HeadedRecord<'_>> = chunk
                .iter()
                .enumerate()
                .map(|(i, _)| HeadedRecord {
                    key: copies[i].0.as_deref(),
                    value: copies[i].1.as_deref(),
                    headers: vec![
                        ("__dlq.errors.topic", source.as_bytes()),
                        ("__dlq.errors.partition", partition.as_bytes()),
                        ("__dlq.errors.offset", texts[i].0.as_bytes()),
                        ("__dlq.errors.group", d.key.group.as_bytes()),
                        ("__dlq.errors.delivery.count", texts[i].1.as_bytes()),
                        ("__dlq.errors.message", texts[i].2.as_bytes()),
                    ],
                })
                .collect();
            let batch = build_batch_with_headers(&records, now_ms());
            match (&target, &remote) {
                (Some(target), _) => {
                    let info = target
                        .append_as_leader(&batch, now_ms(), false)
                        .map_err(|e| e.to_string())?;
                    target.appended();
                    let end = info.last_offset + 1;
                    target.log.flush_to(end).await.map_err(|e| e.to_string())?;
                    target
                        .wait_high_watermark(end, PRODUCE_TIMEOUT)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                (None, Some(addr)) => self.produce_to(addr, &name, index, batch).await?,
                (None, None) => return Err(format!("{name}-{index} has no leader")),
            }
        }
        Ok(d.records.len())
    }
}

impl Broker {
    /// Produces `batch` to `topic`-`partition` through its leader at `addr` (acks=all).
    async fn produce_to(
        &self,
        addr: &str,
        topic: &str,
        partition: i32,
        batch: Vec<u8>,
    ) -> Result<(), String> {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
        use kafka_protocol::protocol::StrBytes;
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(PRODUCE_TIMEOUT.as_millis() as i32)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(bytes::Bytes::from(batch)))])]);
        let resp: ProduceResponse = self.peers.request(addr, ApiKey::Produce, 9, &req).await?;
        let code = resp
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .map(|p| p.error_code)
            .next()
            .unwrap_or(-1);
        if code != 0 {
            return Err(format!(
                "produce to {topic}-{partition} at {addr} answered error {code}"
            ));
        }
        Ok(())
    }
}

/// A source record's key and value.
type Copied = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The key and value of the record at `offset` (None when it is gone or too large).
fn source_record(p: &crate::replica::Partition, offset: i64) -> Copied {
    let Ok(r) = p.log.read(offset, MAX_COPY, p.high_watermark(), true) else {
        return (None, None);
    };
    let mut out = (None, None);
    for b in BatchIter::new(&r.data, false) {
        let Ok(b) = b else { break };
        if b.base_offset() > offset {
            break;
        }
        let _ = for_each_record(&b, MAX_COPY * 4, |rec| {
            if rec.offset == offset {
                out = (rec.key.map(<[u8]>::to_vec), rec.value.map(<[u8]>::to_vec));
            }
        });
    }
    out
}
