//! DescribeTopicPartitions (key 75), version 0 — what `kafka-topics --describe` uses since
//! Kafka 3.8.
//!
//! Topics in name order (all of them when none are named), each with id, internal flag and
//! partitions (leader, epoch, replicas, ISR; no eligible leader replicas on one node).
//! `response_partition_limit` bounds the partitions per response; when hit, `next_cursor`
//! names where to continue, and a request `cursor` resumes from there.

use bytes::Bytes;
use kafka_protocol::messages::describe_topic_partitions_response::{Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::{ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::DescribeTopicPartitions, min: 0, max: 0 };

/// Kafka's cap on `response_partition_limit`.
const MAX_PARTITIONS: i32 = 2000;

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DescribeTopicPartitionsRequest = ctx.decode(body)?;
    let broker = &ctx.broker;
    let mut names: Vec<String> = if req.topics.is_empty() {
        broker.metadata.topics().into_iter().map(|t| t.name).collect()
    } else {
        req.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, start_partition) = match &req.cursor {
        Some(c) => (Some(c.topic_name.0.to_string()), c.partition_index.max(0)),
        None => (None, 0),
    };
    let mut budget = if req.response_partition_limit <= 0 { MAX_PARTITIONS } else { req.response_partition_limit.min(MAX_PARTITIONS) };
    let me = BrokerId(broker.config.node_id);
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names.into_iter().filter(|n| start_topic.as_ref().is_none_or(|s| n >= s)) {
        let Some(meta) = broker.metadata.topic(&name) else {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(WireError::UnknownTopicOrPartition.code())
                    .with_name(Some(TopicName(StrBytes::from_string(name)))),
            );
            continue;
        };
        let first = if start_topic.as_deref() == Some(name.as_str()) { start_partition } else { 0 };
        if budget == 0 {
            next_cursor = Some(Cursor::default().with_topic_name(TopicName(StrBytes::from_string(name))).with_partition_index(first));
            break;
        }
        let mut partitions = Vec::new();
        let mut p = first;
        while p < meta.partitions && budget > 0 {
            let epoch = broker.partition(&name, p).map(|x| x.leader_epoch()).unwrap_or(0);
            partitions.push(
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p)
                    .with_leader_id(me)
                    .with_leader_epoch(epoch)
                    .with_replica_nodes(vec![me])
                    .with_isr_nodes(vec![me])
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new())),
            );
            p += 1;
            budget -= 1;
        }
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                .with_topic_id(meta.id)
                .with_is_internal(name.starts_with("__"))
                .with_partitions(partitions),
        );
        if p < meta.partitions {
            next_cursor = Some(Cursor::default().with_topic_name(TopicName(StrBytes::from_string(name))).with_partition_index(p));
            break;
        }
    }
    ctx.reply(&DescribeTopicPartitionsResponse::default().with_topics(topics).with_next_cursor(next_cursor))
}
