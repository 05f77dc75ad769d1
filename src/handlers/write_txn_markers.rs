//! WriteTxnMarkers (key 27), version 1: a transaction coordinator on another broker of the
//! cluster has this broker, the leader of some of a transaction's partitions, write its
//! commit or abort marker to them (Kafka 4.4 also has v2, which adds the transaction version;
//! only Strom brokers send this request to Strom, with v1).
//!
//! Each marker is appended as the partition's leader (NOT_LEADER_OR_FOLLOWER when this broker
//! does not lead it now, UNKNOWN_TOPIC_OR_PARTITION when the topic does not exist) and
//! answered once durable and, in a cluster, held by the partition's in-sync replicas, as
//! Kafka appends markers with acks=-1. A `__consumer_offsets` partition takes its marker
//! through the group coordinator, which commits or drops the transaction's offsets with it.
//!
//! Authorization: ALTER on the cluster (an admin's abort; denial not audited) or
//! CLUSTER_ACTION, else every partition CLUSTER_AUTHORIZATION_FAILED.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::write_txn_markers_response::{WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult};
use kafka_protocol::messages::{ApiKey, WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use crate::broker::Broker;
use crate::coordinator::OFFSETS_TOPIC;
use crate::handlers::authz::op;
use crate::handlers::errors::log_error_code;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::log::{now_ms, LogError};
use crate::protocol::records::build_marker;
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::WriteTxnMarkers), min: 1, max: 1 };

/// How long a marker waits for the partition's in-sync replicas.
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes one marker to one partition: its error code.
async fn write(broker: &Broker, topic: &str, partition: i32, marker: &[u8], producer_id: i64, commit: bool) -> i16 {
    let code = |e: &LogError| log_error_code(e);
    if topic == OFFSETS_TOPIC {
        if !broker.groups.is_partition_loaded(partition) {
            return WireError::NotLeaderOrFollower.code();
        }
        return match broker.groups.append_marker(partition, marker, producer_id, commit) {
            Ok(w) => w.durable().await.err().map_or(0, |e| code(&e)),
            Err(e) => code(&e),
        };
    }
    let Some(p) = broker.replicas.get(topic, partition) else {
        let exists = broker.metadata.topic(topic).is_some_and(|t| partition >= 0 && partition < t.partitions);
        return if exists { WireError::NotLeaderOrFollower.code() } else { WireError::UnknownTopicOrPartition.code() };
    };
    let end = match p.append_as_leader(marker, now_ms(), true) {
        Ok(info) => {
            p.appended();
            info.last_offset + 1
        }
        Err(e) => return code(&e),
    };
    if let Err(e) = p.log.flush_to(end).await {
        return code(&e);
    }
    p.wait_high_watermark(end, REPLICATION_TIMEOUT).await.err().map_or(0, |e| code(&e))
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: WriteTxnMarkersRequest = ctx.decode(body)?;
    // ALTER on the cluster (an admin's abort, KIP-664; denial not audited) or CLUSTER_ACTION
    // (a transaction coordinator), else every partition CLUSTER_AUTHORIZATION_FAILED.
    let authz = ctx.authz();
    if !authz.cluster_quietly(op::ALTER) && !authz.cluster(op::CLUSTER_ACTION) {
        let code = WireError::ClusterAuthorizationFailed.code();
        let markers = req
            .markers
            .iter()
            .map(|m| {
                let topics = m.topics.iter().map(|t| WritableTxnMarkerTopicResult::default().with_name(t.name.clone()).with_partitions(t.partition_indexes.iter().map(|p| WritableTxnMarkerPartitionResult::default().with_partition_index(*p).with_error_code(code)).collect())).collect();
                WritableTxnMarkerResult::default().with_producer_id(m.producer_id).with_topics(topics)
            })
            .collect();
        return ctx.reply(&WriteTxnMarkersResponse::default().with_markers(markers));
    }
    let broker = ctx.broker.clone();
    let version = ctx.version;
    Ok(Reply::Later(Box::pin(async move {
        let mut markers = Vec::with_capacity(req.markers.len());
        for m in &req.markers {
            let pid = m.producer_id.0;
            let marker = build_marker(pid, m.producer_epoch, m.transaction_result, m.coordinator_epoch, now_ms());
            // Every partition of the marker at once: one fsync and one replication wait each.
            let writes = m.topics.iter().flat_map(|t| t.partition_indexes.iter().map(move |p| (t.name.0.as_str(), *p))).map(|(topic, p)| {
                let (broker, marker) = (&broker, &marker);
                async move { write(broker, topic, p, marker, pid, m.transaction_result).await }
            });
            let mut codes = futures::future::join_all(writes).await.into_iter();
            let topics = m
                .topics
                .iter()
                .map(|t| {
                    WritableTxnMarkerTopicResult::default().with_name(t.name.clone()).with_partitions(
                        t.partition_indexes
                            .iter()
                            .map(|p| WritableTxnMarkerPartitionResult::default().with_partition_index(*p).with_error_code(codes.next().unwrap_or(0)))
                            .collect(),
                    )
                })
                .collect();
            markers.push(WritableTxnMarkerResult::default().with_producer_id(m.producer_id).with_topics(topics));
        }
        encode_body(&WriteTxnMarkersResponse::default().with_markers(markers), version)
    })))
}
