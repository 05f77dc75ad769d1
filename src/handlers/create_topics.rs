//! CreateTopics (key 19), versions 2-7.
//!
//! Creates topics with a partition count (-1: `num.partitions`), replication factor (-1:
//! `default.replication.factor`; more than the live brokers is INVALID_REPLICATION_FACTOR, so 1
//! on a single node), optional manual assignments (registered brokers, none twice, every
//! partition as many: INVALID_REPLICA_ASSIGNMENT) and per-topic configs validated against
//! Kafka's topic config keys (INVALID_CONFIG). `validate_only` checks everything and changes
//! nothing. v5+ answers with the topic's effective configs and their sources; v7 with its id.
//! A name repeated within one request gets INVALID_REQUEST for each occurrence, like Kafka.
//! As in Kafka 4, a request asking for more than 10,000 partitions in all is refused whole
//! (POLICY_VIOLATION, "Excessively large number of partitions per request."). A topic that
//! would take the broker past `strom.max.partitions` gets POLICY_VIOLATION too.
//!
//! Authorization: CREATE on the cluster (denial not audited) or on each topic, else
//! TOPIC_AUTHORIZATION_FAILED "Authorization failed."; a created topic's configs, partition
//! count and replication factor only with DESCRIBE_CONFIGS on it, else topic_config_error_code
//! TOPIC_AUTHORIZATION_FAILED.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::AdminError;
use crate::config::topic;
use crate::handlers::authz::op;
use crate::handlers::errors::admin_error_code;
use crate::security::acl::resource;
use crate::handlers::{blocking, Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::CreateTopics), min: 2, max: 7 };

/// Kafka 4's `MAX_PARTITIONS_PER_BATCH`: one request asking for more partitions than this in
/// all (duplicates aside) is refused whole, every topic POLICY_VIOLATION, nothing created.
pub const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: CreateTopicsRequest = ctx.decode(body)?;
    // Up to 100,000 partition directories and a metadata fsync: on the blocking pool, so this connection's worker thread serves others meanwhile.
    blocking(move || respond(ctx, req)).await?
}

fn respond(ctx: RequestContext, req: CreateTopicsRequest) -> Result<Reply, ProtocolError> {
    let broker = &ctx.broker;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for t in &req.topics {
        *counts.entry(t.name.0.to_string()).or_default() += 1;
    }
    let requested: i64 = req
        .topics
        .iter()
        .filter(|t| counts.get(t.name.0.as_str()).copied().unwrap_or(0) == 1)
        .map(|t| match (t.assignments.is_empty(), t.num_partitions) {
            (false, _) => t.assignments.len() as i64,
            (true, -1) => i64::from(broker.config.num_partitions),
            (true, n) => i64::from(n.max(0)),
        })
        .sum();
    let too_many = requested > MAX_PARTITIONS_PER_REQUEST;
    // CREATE on the cluster (denial not audited), else CREATE on each topic; the configs are
    // answered only with DESCRIBE_CONFIGS on the topic (denial not audited).
    let authz = ctx.authz();
    let any_topic = authz.cluster_quietly(op::CREATE);
    let mut creatable = authz.names(op::CREATE, resource::TOPIC);
    let mut configs_visible = authz.names_quietly(op::DESCRIBE_CONFIGS, resource::TOPIC);
    let results = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let mut r = CreatableTopicResult::default().with_name(t.name.clone()).with_num_partitions(-1).with_replication_factor(-1);
            if counts.get(&name).copied().unwrap_or(0) > 1 {
                r.error_code = WireError::InvalidRequest.code();
                r.error_message = Some(StrBytes::from_string(format!("Create topics request from client contains duplicate topic '{name}'.")));
                return r;
            }
            if !any_topic && !creatable.allows(&name) {
                r.error_code = WireError::TopicAuthorizationFailed.code();
                r.error_message = Some(StrBytes::from_static_str("Authorization failed."));
                return r;
            }
            if too_many {
                r.error_code = WireError::PolicyViolation.code();
                r.error_message = Some(StrBytes::from_static_str("Excessively large number of partitions per request."));
                return r;
            }
            let outcome = (|| {
                let (partitions, rf) = if t.assignments.is_empty() {
                    let p = if t.num_partitions == -1 { None } else { Some(t.num_partitions) };
                    let rf = if t.replication_factor == -1 { None } else { Some(t.replication_factor) };
                    (p, rf)
                } else {
                    if t.num_partitions != -1 || t.replication_factor != -1 {
                        return Err(AdminError::InvalidPartitions(
                            "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
                        ));
                    }
                    let mut indexes: Vec<i32> = t.assignments.iter().map(|a| a.partition_index).collect();
                    indexes.sort_unstable();
                    if indexes.iter().enumerate().any(|(i, p)| *p != i as i32) {
                        return Err(AdminError::InvalidPartitions("Partitions should be a consecutive 0-based integer sequence".into()));
                    }
                    (None, None)
                };
                let mut configs = BTreeMap::new();
                for c in &t.configs {
                    let Some(v) = &c.value else {
                        return Err(AdminError::InvalidConfig(format!("Null value not supported for topic configs: {}", c.name.as_str())));
                    };
                    configs.insert(c.name.to_string(), v.to_string());
                }
                if t.assignments.is_empty() {
                    broker.create_topic(&name, partitions, rf, configs, req.validate_only).map(|m| (m, rf))
                } else {
                    let mut assignments: Vec<_> = t.assignments.iter().collect();
                    assignments.sort_by_key(|a| a.partition_index);
                    let assignments: Vec<Vec<i32>> = assignments.iter().map(|a| a.broker_ids.iter().map(|b| b.0).collect()).collect();
                    let rf = assignments.first().map(|a| a.len() as i16);
                    broker.create_topic_assigned(&name, assignments, configs, req.validate_only).map(|m| (m, rf))
                }
            })();
            match outcome {
                Ok((meta, _)) if !configs_visible.allows(&name) => {
                    if ctx.version >= 7 && !req.validate_only {
                        r.topic_id = meta.id;
                    }
                    if ctx.version >= 5 {
                        r.topic_config_error_code = WireError::TopicAuthorizationFailed.code();
                    }
                }
                Ok((meta, rf)) => {
                    r.num_partitions = meta.partitions;
                    // The replicas placed (in a cluster, as many as asked; validate_only places none).
                    r.replication_factor = broker
                        .metadata
                        .partition_state(&meta.id, 0)
                        .map_or(rf.unwrap_or(1).max(1), |s| s.replicas.len() as i16);
                    if ctx.version >= 7 && !req.validate_only {
                        r.topic_id = meta.id;
                    }
                    if ctx.version >= 5 {
                        r.configs = Some(
                            topic::TOPIC_CONFIGS
                                .iter()
                                .filter_map(|s| {
                                    let (v, src) = topic::effective(&broker.effective_config(), &meta.configs, s.name)?;
                                    Some(
                                        CreatableTopicConfigs::default()
                                            .with_name(StrBytes::from_static_str(s.name))
                                            .with_value(Some(StrBytes::from_string(v)))
                                            .with_config_source(src as i8),
                                    )
                                })
                                .collect(),
                        );
                    }
                }
                Err(e) => {
                    r.error_code = admin_error_code(&e);
                    r.error_message = Some(StrBytes::from_string(e.to_string()));
                    if ctx.version >= 5 {
                        r.topic_config_error_code = r.error_code;
                    }
                }
            }
            r
        })
        .collect();
    ctx.reply(&CreateTopicsResponse::default().with_topics(results))
}
