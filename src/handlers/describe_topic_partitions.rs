//! DescribeTopicPartitions (key 75), version 0 — what `kafka-topics --describe` uses since
//! Kafka 3.8 (KIP-966).
//!
//! Topics in name order — every topic when the list is empty, else the named ones (unknown:
//! UNKNOWN_TOPIC_OR_PARTITION, invalid name: INVALID_TOPIC_EXCEPTION; when listing all, only
//! existing topics appear). Each with id, internal flag, partitions (leader = us, epoch,
//! replicas = ISR = us, empty eligible / last known ELR, no offline replicas) and the topic
//! operations the principal may perform.
//!
//! Paging as in Kafka: at most `response_partition_limit` partitions per answer (clamped to
//! [1, 2000]); `cursor` (topic, first partition) resumes. When the limit ends inside a topic,
//! `next_cursor` names that topic and the next partition; when it ends exactly at a topic
//! boundary and more topics follow, it names the next topic at partition 0 (which may not
//! exist — only the next page says). A cursor whose topic is not in a non-empty topic list,
//! or whose partition is negative, is INVALID_REQUEST for every named topic.
//!
//! Authorization: DESCRIBE on each topic, every denial audited (all-topics requests too):
//! listing all topics leaves the others out, a named one lists them last as
//! TOPIC_AUTHORIZATION_FAILED with a zero id.

use std::collections::BTreeSet;

use bytes::Bytes;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::broker::{validate_topic_name, Broker};
use crate::handlers::authz::{op, Authz};
use crate::security::acl::resource;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::metadata::is_internal_topic;
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::DescribeTopicPartitions),
    min: 0,
    max: 0,
};

/// Kafka's `max.request.partition.size.limit` default: the most partitions in one answer.
const MAX_PARTITIONS: i32 = 2000;

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DescribeTopicPartitionsRequest = ctx.decode(body)?;
    let fetch_all = req.topics.is_empty();
    let cursor = req
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.0.to_string(), c.partition_index));
    let from = cursor.as_ref().map_or("", |(t, _)| t.as_str());
    let names: BTreeSet<String> = if fetch_all {
        ctx.broker
            .metadata
            .topics()
            .into_iter()
            .map(|t| t.name)
            .filter(|n| n.as_str() >= from)
            .collect()
    } else {
        req.topics
            .iter()
            .map(|t| t.name.to_string())
            .filter(|n| n.as_str() >= from)
            .collect()
    };
    let bad_cursor = match &cursor {
        Some((topic, _)) if !fetch_all && !names.contains(topic) => Some(format!(
            "DescribeTopicPartitionsRequest topic list should contain the cursor topic: {topic}"
        )),
        Some((topic, p)) if *p < 0 => Some(format!(
            "DescribeTopicPartitionsRequest cursor partition must be valid: {topic}:{p}"
        )),
        _ => None,
    };
    if bad_cursor.is_some() {
        // Kafka fails the whole request: every named topic gets the error, nothing else.
        let topics = req
            .topics
            .iter()
            .map(|t| {
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(WireError::InvalidRequest.code())
                    .with_name(Some(t.name.clone()))
            })
            .collect();
        return ctx.reply(&DescribeTopicPartitionsResponse::default().with_topics(topics));
    }
    // DESCRIBE on each topic (every denial audited, all-topics requests too): an all-topics
    // request leaves the others out, a named one lists them last, TOPIC_AUTHORIZATION_FAILED.
    let authz = ctx.authz();
    let (names, denied): (BTreeSet<String>, BTreeSet<String>) =
        names.into_iter().partition(|n| authz.topic(op::DESCRIBE, n));
    let limit = req.response_partition_limit.clamp(1, MAX_PARTITIONS);
    let (mut topics, next_cursor) = page(&ctx.broker, &authz, names, cursor, limit, fetch_all);
    if !fetch_all {
        topics.extend(denied.into_iter().map(|n| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_error_code(WireError::TopicAuthorizationFailed.code())
                .with_name(Some(TopicName(StrBytes::from_string(n))))
                .with_topic_id(Uuid::nil())
        }));
    }
    ctx.reply(
        &DescribeTopicPartitionsResponse::default()
            .with_topics(topics)
            .with_next_cursor(next_cursor),
    )
}

fn page(
    broker: &Broker,
    authz: &Authz,
    names: BTreeSet<String>,
    cursor: Option<(String, i32)>,
    limit: i32,
    fetch_all: bool,
) -> (Vec<DescribeTopicPartitionsResponseTopic>, Option<Cursor>) {
    let mut remaining = limit;
    let mut topics = Vec::new();
    for name in names {
        if remaining == 0 {
            return (topics, Some(cursor_at(name, 0)));
        }
        let Some(meta) = broker.metadata.topic(&name) else {
            if !fetch_all {
                let code = match validate_topic_name(&name) {
                    Ok(()) => WireError::UnknownTopicOrPartition.code(),
                    Err(_) => WireError::InvalidTopicException.code(),
                };
                topics.push(
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_error_code(code)
                        .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                        .with_topic_id(Uuid::nil())
                        .with_is_internal(is_internal_topic(&name))
                        .with_topic_authorized_operations(authz.operations(resource::TOPIC, &name)),
                );
            }
            continue;
        };
        let first = match &cursor {
            Some((t, p)) if *t == name => *p,
            _ => 0,
        };
        let end = i64::from(meta.partitions).min(i64::from(first) + i64::from(remaining)) as i32;
        let partitions: Vec<_> = (first..end)
            .map(|p| {
                let r = broker.replication_of(&meta, p);
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p)
                    .with_leader_id(BrokerId(r.leader))
                    .with_leader_epoch(r.leader_epoch)
                    .with_replica_nodes(r.replicas.into_iter().map(BrokerId).collect())
                    .with_isr_nodes(r.isr.into_iter().map(BrokerId).collect())
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new()))
                    .with_offline_replicas(Vec::new())
            })
            .collect();
        remaining -= partitions.len() as i32;
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                .with_topic_id(meta.id)
                .with_is_internal(is_internal_topic(&name))
                .with_partitions(partitions)
                .with_topic_authorized_operations(authz.operations(resource::TOPIC, &name)),
        );
        if end < meta.partitions {
            return (topics, Some(cursor_at(name, end)));
        }
    }
    (topics, None)
}

fn cursor_at(topic: String, partition: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(TopicName(StrBytes::from_string(topic)))
        .with_partition_index(partition)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::config::BrokerConfig;

    fn broker(dir: &std::path::Path, topics: &[(&str, i32)]) -> Arc<Broker> {
        let config = BrokerConfig {
            log_dir: dir.to_path_buf(),
            ..BrokerConfig::default()
        };
        let b = Broker::open(config).expect("open");
        for (name, n) in topics {
            b.create_topic(name, Some(*n), None, BTreeMap::new(), false)
                .expect("create");
        }
        b
    }

    /// (name, partition indexes, error code) of one topic in a page.
    type TopicSummary = (String, Vec<i32>, i16);

    /// The topics of a page, and its next cursor.
    fn run(
        b: &Broker,
        names: &[&str],
        cursor: Option<(&str, i32)>,
        limit: i32,
    ) -> (Vec<TopicSummary>, Option<(String, i32)>) {
        let fetch_all = names.is_empty();
        let set: BTreeSet<String> = if fetch_all {
            b.metadata.topics().into_iter().map(|t| t.name).collect()
        } else {
            names.iter().map(|s| s.to_string()).collect()
        };
        let from = cursor.map_or("", |c| c.0);
        let set = set.into_iter().filter(|n| n.as_str() >= from).collect();
        let (topics, next) = page(
            b,
            &Authz::none(),
            set,
            cursor.map(|(t, p)| (t.to_string(), p)),
            limit,
            fetch_all,
        );
        (
            topics
                .into_iter()
                .map(|t| {
                    (
                        t.name.map(|n| n.0.to_string()).unwrap_or_default(),
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                        t.error_code,
                    )
                })
                .collect(),
            next.map(|c| (c.topic_name.0.to_string(), c.partition_index)),
        )
    }

    #[test]
    fn pages_walk_every_partition_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let b = broker(dir.path(), &[("a", 3), ("b", 2), ("c", 1)]);
        let (t, next) = run(&b, &[], None, 2);
        assert_eq!(t, vec![("a".into(), vec![0, 1], 0)]);
        assert_eq!(next, Some(("a".into(), 2)));
        let (t, next) = run(&b, &[], Some(("a", 2)), 2);
        assert_eq!(t, vec![("a".into(), vec![2], 0), ("b".into(), vec![0], 0)]);
        assert_eq!(next, Some(("b".into(), 1)));
        let (t, next) = run(&b, &[], Some(("b", 1)), 1);
        assert_eq!(t, vec![("b".into(), vec![1], 0)]);
        // The limit ends exactly at a topic boundary: the cursor names the next topic.
        assert_eq!(next, Some(("c".into(), 0)));
        let (t, next) = run(&b, &[], Some(("c", 0)), 5);
        assert_eq!(t, vec![("c".into(), vec![0], 0)]);
        assert_eq!(next, None);
        let (t, next) = run(&b, &[], None, 2000);
        assert_eq!(t.len(), 3);
        assert_eq!(next, None);
    }

    #[test]
    fn named_topics_report_unknown_and_invalid_names() {
        let dir = tempfile::tempdir().expect("tmp");
        let b = broker(dir.path(), &[("a", 1)]);
        let (t, next) = run(&b, &["a", "nope", "bad name"], None, 10);
        assert_eq!(
            t,
            vec![
                ("a".into(), vec![0], 0),
                (
                    "bad name".into(),
                    vec![],
                    WireError::InvalidTopicException.code()
                ),
                (
                    "nope".into(),
                    vec![],
                    WireError::UnknownTopicOrPartition.code()
                ),
            ]
        );
        assert_eq!(next, None);
    }
}
