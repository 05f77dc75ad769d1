//! Metadata (key 3), versions 0-13.
//!
//! Lists this broker, the cluster id, the controller (ourselves) and topics with their ids,
//! partitions, leader epoch, replicas and ISR. Topics may be named or (v10+) given by id. When
//! `allow_auto_topic_creation` is set and `auto.create.topics.enable` is on, unknown named
//! topics are created with the broker defaults, in the background; as in Kafka 4 that
//! response, and any answered before creation is done, still reports
//! UNKNOWN_TOPIC_OR_PARTITION for them, and a later lookup lists them. One request creates
//! at most `broker::MAX_AUTO_CREATE_PER_REQUEST` (100) topics, the first unknown names in
//! request order, with one metadata fsync, and none past `strom.max.partitions`; the other
//! names stay unknown (Kafka has no such bound: this keeps one request from creating, and
//! fsyncing, thousands of topics). `include_topic_authorized_operations` (v8+) and
//! `include_cluster_authorized_operations` (v8-10) get the principal's authorized-operation
//! bit sets (the cluster's only with DESCRIBE on it, else 0).
//!
//! Authorization (Kafka's `handleTopicMetadataRequest`): DESCRIBE on each topic. An
//! all-topics request silently leaves out the topics the principal may not describe; a named
//! one answers TOPIC_AUTHORIZATION_FAILED for them (name echoed, zero topic id, no
//! partitions) whether or not they exist; a known topic id the principal may not describe is
//! TOPIC_AUTHORIZATION_FAILED with a null name. Auto-creation is considered only for
//! describable names and needs CREATE on the cluster or on the topic, else
//! TOPIC_AUTHORIZATION_FAILED. A request for no topics needs nothing.

use std::collections::HashSet;

use bytes::Bytes;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::{validate_topic_name, Broker};
use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::security::acl::resource;
use crate::metadata::TopicMeta;
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::Metadata),
    min: 0,
    max: 13,
};

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: MetadataRequest = ctx.decode(body)?;
    let broker = &ctx.broker;
    let authz = ctx.authz();
    let denied_entry = |name: Option<&str>, id: uuid::Uuid| {
        MetadataResponseTopic::default()
            .with_error_code(WireError::TopicAuthorizationFailed.code())
            .with_name(name.map(|n| TopicName(StrBytes::from_string(n.to_string()))))
            .with_topic_id(id)
    };
    // v0: an empty list means all topics; v1+: null means all.
    let creating = broker.auto_creating_names();
    let all = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && ctx.version == 0,
    };
    let topics: Vec<MetadataResponseTopic> = if all {
        let mut describable = authz.names_quietly(op::DESCRIBE, resource::TOPIC);
        broker
            .metadata
            .topics()
            .iter()
            .filter(|t| !creating.contains(&t.name) && describable.allows(&t.name))
            .map(|t| topic_entry(broker, t))
            .collect()
    } else {
        let auto = (req.allow_auto_topic_creation || ctx.version < 4)
            && broker.config.auto_create_topics_enable;
        let mut describable = authz.names(op::DESCRIBE, resource::TOPIC);
        let named: Vec<&str> = req
            .topics
            .iter()
            .flatten()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.as_str()))
            .collect();
        let hidden: HashSet<&str> = named
            .iter()
            .copied()
            .filter(|n| !describable.allows(n))
            .collect();
        // Unknown when the request arrived or still being created: answered unknown.
        let unknown: HashSet<&str> = named
            .iter()
            .copied()
            .filter(|n| !hidden.contains(n))
            .filter(|n| creating.contains(*n) || broker.metadata.topic(n).is_none())
            .collect();
        // Describable but unknown, and not creatable by this principal.
        let not_creatable: HashSet<&str> =
            if auto && authz.enabled() && !authz.cluster_quietly(op::CREATE) {
                let mut creatable = authz.names(op::CREATE, resource::TOPIC);
                unknown
                    .iter()
                    .copied()
                    .filter(|n| validate_topic_name(n).is_ok() && !creatable.allows(n))
                    .collect()
            } else {
                HashSet::new()
            };
        if auto && unknown.len() > not_creatable.len() {
            // Like Kafka (KRaft): creation goes on in the background; the request that
            // triggers it, and any arriving before it is done, answer
            // UNKNOWN_TOPIC_OR_PARTITION; a later lookup finds the topic. One request starts
            // at most MAX_AUTO_CREATE_PER_REQUEST topics, made durable with one metadata fsync.
            let names: Vec<&str> = req
                .topics
                .iter()
                .flatten()
                .filter_map(|t| t.name.as_ref().map(|n| n.0.as_str()))
                .filter(|n| unknown.contains(n) && !not_creatable.contains(n))
                .collect();
            broker.start_auto_create(&names);
        }
        req.topics
            .iter()
            .flatten()
            .map(|rt| match &rt.name {
                Some(name) if hidden.contains(name.0.as_str()) => {
                    denied_entry(Some(name.0.as_str()), uuid::Uuid::nil())
                }
                Some(name) if not_creatable.contains(name.0.as_str()) => {
                    denied_entry(Some(name.0.as_str()), uuid::Uuid::nil()).with_is_internal(
                        crate::metadata::is_internal_topic(name.0.as_str()),
                    )
                }
                Some(name) => {
                    let name = name.0.to_string();
                    let found = if unknown.contains(name.as_str()) {
                        None
                    } else {
                        broker.metadata.topic(&name)
                    };
                    match found {
                        Some(t) => topic_entry(broker, &t),
                        None => {
                            let code = if validate_topic_name(&name).is_err() {
                                WireError::InvalidTopicException.code()
                            } else {
                                WireError::UnknownTopicOrPartition.code()
                            };
                            MetadataResponseTopic::default()
                                .with_error_code(code)
                                .with_name(Some(TopicName(StrBytes::from_string(name))))
                        }
                    }
                }
                None => match broker.metadata.topic_by_id(&rt.topic_id) {
                    Some(t) if !describable.allows(&t.name) => denied_entry(None, t.id),
                    Some(t) => topic_entry(broker, &t),
                    None => MetadataResponseTopic::default()
                        .with_error_code(WireError::UnknownTopicId.code())
                        .with_topic_id(rt.topic_id),
                },
            })
            .collect()
    };
    // Each broker at its address on the listener this request came through (a broker
    // without that listener is left out, as Kafka does).
    let listener = ctx.session.listener();
    let brokers: Vec<MetadataResponseBroker> = broker
        .listed_brokers()
        .into_iter()
        .filter_map(|b| {
            let (host, port) = b.endpoint(listener)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.node))
                    .with_host(StrBytes::from_string(host))
                    .with_port(i32::from(port))
                    .with_rack(b.rack.map(StrBytes::from_string)),
            )
        })
        .collect();
    let mut topics = topics;
    if req.include_topic_authorized_operations {
        for t in &mut topics {
            if t.error_code == WireError::TopicAuthorizationFailed.code() {
                continue;
            }
            if let Some(name) = &t.name {
                t.topic_authorized_operations = authz.operations(resource::TOPIC, name.0.as_str());
            }
        }
    }
    let mut resp = MetadataResponse::default();
    if req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations = if authz.cluster(op::DESCRIBE) {
            authz.operations(resource::CLUSTER, crate::security::acl::CLUSTER_NAME)
        } else {
            0
        };
    }
    let resp = resp
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(
            broker.metadata.cluster_id.clone(),
        )))
        .with_controller_id(BrokerId(broker.controller_id()))
        .with_topics(topics);
    ctx.reply(&resp)
}

pub fn topic_entry(broker: &Broker, t: &TopicMeta) -> MetadataResponseTopic {
    let partitions = (0..t.partitions)
        .map(|i| {
            let r = broker.replication_of(t, i);
            // No leader: every in-sync replica is down (Kafka answers LEADER_NOT_AVAILABLE).
            let code = if r.leader < 0 {
                WireError::LeaderNotAvailable.code()
            } else {
                0
            };
            MetadataResponsePartition::default()
                .with_error_code(code)
                .with_partition_index(i)
                .with_leader_id(BrokerId(r.leader))
                .with_leader_epoch(r.leader_epoch)
                .with_replica_nodes(r.replicas.into_iter().map(BrokerId).collect())
                .with_isr_nodes(r.isr.into_iter().map(BrokerId).collect())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(t.name.clone()))))
        .with_topic_id(t.id)
        .with_is_internal(crate::metadata::is_internal_topic(&t.name))
        .with_partitions(partitions)
}
