//! A cluster's transaction coordinator writes the markers of partitions led by other brokers
//! through them: one WriteTxnMarkers request per leader, as Kafka's
//! TransactionMarkerChannelManager sends them. Leaders are looked up in the committed
//! metadata each time (the coordinator retries what failed, and leaders move).

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use futures::future::BoxFuture;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    ApiKey, ProducerId, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::coordinator::txn::MarkerSender;
use crate::protocol::WireError;

/// The WriteTxnMarkers version brokers send each other.
const VERSION: i16 = 1;

pub struct ClusterMarkers {
    /// Weak: the broker owns its transaction coordinator, which owns this.
    pub broker: Weak<Broker>,
}

impl MarkerSender for ClusterMarkers {
    fn send(
        &self,
        partitions: Vec<(String, i32)>,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> BoxFuture<'static, Vec<i16>> {
        let broker = self.broker.clone();
        Box::pin(async move {
            let not_leader = WireError::NotLeaderOrFollower.code();
            let Some(broker) = broker.upgrade() else {
                return vec![not_leader; partitions.len()];
            };
            let me = broker.config.node_id;
            let mut codes = vec![not_leader; partitions.len()];
            // Partitions by their leader's address: (index in `partitions`, topic, partition).
            let mut by_leader: BTreeMap<String, Vec<(usize, String, i32)>> = BTreeMap::new();
            for (i, (topic, partition)) in partitions.iter().enumerate() {
                let Some(meta) = broker.metadata.topic(topic) else {
                    // Deleted since it joined the transaction: nothing to mark.
                    codes[i] = 0;
                    continue;
                };
                let leader = broker
                    .metadata
                    .partition_state(&meta.id, *partition)
                    .map_or(-1, |s| s.leader);
                match broker.metadata.broker(leader) {
                    // Led here now: the coordinator writes it itself on its next round.
                    Some(b) if !b.fenced && b.node != me => by_leader
                        .entry(format!("{}:{}", b.host, b.port))
                        .or_default()
                        .push((i, topic.clone(), *partition)),
                    _ => {}
                }
            }
            let requests = by_leader.into_iter().map(|(addr, parts)| {
                let broker = broker.clone();
                async move {
                    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                    for (_, t, p) in &parts {
                        topics.entry(t.as_str()).or_default().push(*p);
                    }
                    let marker = WritableTxnMarker::default()
                        .with_producer_id(ProducerId(producer_id))
                        .with_producer_epoch(producer_epoch)
                        .with_transaction_result(commit)
                        .with_coordinator_epoch(coordinator_epoch)
                        .with_topics(
                            topics
                                .into_iter()
                                .map(|(t, ps)| {
                                    WritableTxnMarkerTopic::default()
                                        .with_name(TopicName(StrBytes::from_string(t.to_string())))
                                        .with_partition_indexes(ps)
                                })
                                .collect(),
                        );
                    let req = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
                    let resp: Result<WriteTxnMarkersResponse, String> = broker
                        .peers
                        .request(&addr, ApiKey::WriteTxnMarkers, VERSION, &req)
                        .await;
                    (parts, resp)
                }
            });
            for (parts, resp) in futures::future::join_all(requests).await {
                let resp = match resp {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::debug!(error = %e, "WriteTxnMarkers to a partition leader failed");
                        continue;
                    }
                };
                let answered: BTreeMap<(&str, i32), i16> = resp
                    .markers
                    .iter()
                    .flat_map(|m| &m.topics)
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(move |p| ((t.name.0.as_str(), p.partition_index), p.error_code))
                    })
                    .collect();
                for (i, t, p) in parts {
                    if let Some(code) = answered.get(&(t.as_str(), p)) {
                        codes[i] = *code;
                    }
                }
            }
            codes
        })
    }
}

/// Has `broker`'s transaction coordinator write markers through the other brokers.
pub fn install(broker: &Arc<Broker>) {
    broker.txns.set_marker_sender(Arc::new(ClusterMarkers {
        broker: Arc::downgrade(broker),
    }));
}
