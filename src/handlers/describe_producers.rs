//! DescribeProducers (key 61), version 0.
//!
//! The idempotent/transactional producers with state on each requested partition: id, epoch,
//! last sequence, last timestamp, and the first offset of an open transaction (-1 if none).
//!
//! Authorization: READ (not DESCRIBE, as Kafka) on each topic, else its partitions
//! TOPIC_AUTHORIZATION_FAILED "Topic authorization failed.".

use bytes::Bytes;
use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{ApiKey, DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::DescribeProducers), min: 0, max: 0 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DescribeProducersRequest = ctx.decode(body)?;
    let authz = ctx.authz();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            // One decision per topic entry, READ (not DESCRIBE), as Kafka's.
            let allowed = authz.topic(op::READ, t.name.0.as_str());
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&p| {
                    let mut r = PartitionResponse::default().with_partition_index(p);
                    if !allowed {
                        r.error_code = WireError::TopicAuthorizationFailed.code();
                        r.error_message = Some(kafka_protocol::protocol::StrBytes::from_static_str("Topic authorization failed."));
                        return r;
                    }
                    let Some(part) = ctx.broker.partition(t.name.0.as_str(), p) else {
                        r.error_code = WireError::UnknownTopicOrPartition.code();
                        return r;
                    };
                    let state = part.log.producer_state();
                    let mut active: Vec<ProducerState> = state
                        .entries()
                        .map(|(pid, e)| {
                            let last = e.batches.back();
                            ProducerState::default()
                                .with_producer_id(ProducerId(*pid))
                                .with_producer_epoch(i32::from(e.epoch))
                                .with_last_sequence(last.map_or(-1, |b| b.last_seq))
                                .with_last_timestamp(last.map_or(-1, |b| b.max_timestamp))
                                .with_coordinator_epoch(-1)
                                .with_current_txn_start_offset(state.ongoing_first_offset(*pid).unwrap_or(-1))
                        })
                        .collect();
                    active.sort_by_key(|s| s.producer_id.0);
                    r.active_producers = active;
                    r
                })
                .collect();
            TopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    ctx.reply(&DescribeProducersResponse::default().with_topics(topics))
}
