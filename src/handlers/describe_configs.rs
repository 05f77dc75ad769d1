//! DescribeConfigs (key 32), versions 1-4 (all that Kafka 4.1 serves).
//!
//! TOPIC (2): every topic key with its effective value, `config_source` (TOPIC_CONFIG,
//! STATIC_BROKER_CONFIG, DEFAULT_CONFIG), synonyms when asked, and (v3+) Kafka's config type
//! and documentation when asked. Sources and synonyms follow Kafka's rules exactly, quirks
//! included (see `config::describe`). PASSWORD keys are sensitive (value and synonym values
//! null, as Kafka answers); the others not. Not read-only. An invalid name is
//! INVALID_TOPIC_EXCEPTION, an unknown topic UNKNOWN_TOPIC_OR_PARTITION.
//!
//! BROKER (4), named by our node id: every broker key Strom understands with the value in
//! force, its source (DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG,
//! STATIC_BROKER_CONFIG, DEFAULT_CONFIG) and synonyms in Kafka's order; read-only unless it
//! can change at run time (`config::dynamic`). The empty name means the cluster-wide dynamic
//! defaults: only the keys set there. Another id, or a name that is not a number:
//! INVALID_REQUEST with Kafka's message.
//!
//! BROKER_LOGGER (8), by our node id: an empty list — Strom has no run-time adjustable loggers
//! (`RUST_LOG` at start).
//!
//! GROUP (32), any group name (the group need not exist, as in Kafka): the KIP-848 consumer
//! group, share-group and streams-group keys of `config::group_configs` (sorted by name) with
//! their effective value, source GROUP_CONFIG when the group sets it, else the broker key's or
//! DEFAULT_CONFIG for the text keys (synonyms: the group's own, then the broker key's or the
//! default), as Kafka's `createGroupConfigEntry`. Other types (CLIENT_METRICS):
//! INVALID_REQUEST.
//!
//! `configuration_keys` null or empty means every key, else only those named.
//!
//! Authorization: DESCRIBE_CONFIGS on the topic or group, or on the cluster for broker,
//! broker-logger and client-metrics resources, else that resource's
//! TOPIC_/GROUP_/CLUSTER_AUTHORIZATION_FAILED with Kafka's default message.

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::{validate_topic_name, Broker};
use crate::config::describe::{type_code, ConfigEntry, Describer};
use crate::handlers::authz::op;
use crate::handlers::errors::admin_error_code;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::DescribeConfigs),
    min: 1,
    max: 4,
};

/// Kafka's ConfigResource.Type ids.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;
pub const RESOURCE_GROUP: i8 = 32;

/// A resource's error: (code, message).
type Refusal = (i16, Option<String>);

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DescribeConfigsRequest = ctx.decode(body)?;
    let effective = ctx.broker.effective_config();
    let describer =
        Describer::with_dynamic(&effective, &ctx.broker.config, ctx.broker.dynamic_configs());
    let authz = ctx.authz();
    let results = req
        .resources
        .iter()
        .map(|res| {
            let out = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            if let Some((e, message)) = authz.config_resource(
                op::DESCRIBE_CONFIGS,
                res.resource_type,
                res.resource_name.as_str(),
            ) {
                return out
                    .with_error_code(e.code())
                    .with_error_message(Some(StrBytes::from_static_str(message)));
            }
            match entries(&ctx.broker, &describer, res) {
                Ok(entries) => out.with_configs(
                    entries
                        .into_iter()
                        .filter(|e| wanted(res, e.name))
                        .map(|e| {
                            encode_entry(
                                e,
                                req.include_synonyms,
                                req.include_documentation,
                                ctx.version,
                            )
                        })
                        .collect(),
                ),
                Err((code, message)) => out
                    .with_error_code(code)
                    .with_error_message(message.map(StrBytes::from_string)),
            }
        })
        .collect();
    ctx.reply(&DescribeConfigsResponse::default().with_results(results))
}

fn wanted(res: &DescribeConfigsResource, key: &str) -> bool {
    match &res.configuration_keys {
        Some(keys) if !keys.is_empty() => keys.iter().any(|k| k.as_str() == key),
        _ => true,
    }
}

fn entries(
    broker: &Broker,
    describer: &Describer<'_>,
    res: &DescribeConfigsResource,
) -> Result<Vec<ConfigEntry>, Refusal> {
    let name = res.resource_name.as_str();
    match res.resource_type {
        RESOURCE_TOPIC => {
            validate_topic_name(name).map_err(|e| (admin_error_code(&e), Some(e.to_string())))?;
            let meta = broker
                .metadata
                .topic(name)
                .ok_or((WireError::UnknownTopicOrPartition.code(), None))?;
            Ok(describer.topic_entries(&meta.configs))
        }
        RESOURCE_BROKER => {
            if name.is_empty() {
                return Ok(describer.cluster_default_entries());
            }
            if parse_broker_id(name)? != broker.config.node_id {
                return Err(invalid_request(format!(
                    "Unexpected broker id, expected {} or empty string, but received {name}",
                    broker.config.node_id
                )));
            }
            Ok(describer.broker_entries())
        }
        RESOURCE_BROKER_LOGGER => {
            if name.is_empty() {
                return Err(invalid_request("Broker id must not be empty".into()));
            }
            if parse_broker_id(name)? != broker.config.node_id {
                return Err(invalid_request(format!(
                    "Unexpected broker id, expected {} but received {name}",
                    broker.config.node_id
                )));
            }
            Ok(Vec::new())
        }
        RESOURCE_GROUP => {
            if name.is_empty() {
                return Err(invalid_request("Group name must not be empty.".into()));
            }
            Ok(describer.group_entries(&broker.metadata.group_configs(name)))
        }
        other => Err(invalid_request(format!(
            "Unsupported resource type: {other}"
        ))),
    }
}

fn invalid_request(message: String) -> Refusal {
    (WireError::InvalidRequest.code(), Some(message))
}

fn parse_broker_id(name: &str) -> Result<i32, Refusal> {
    name.parse()
        .map_err(|_| invalid_request(format!("Broker id must be an integer, but it is: {name}")))
}

fn encode_entry(
    e: ConfigEntry,
    include_synonyms: bool,
    include_documentation: bool,
    version: i16,
) -> DescribeConfigsResourceResult {
    // Passwords (keystore passwords, inline keys) are sensitive: named, never shown, as in
    // Kafka.
    let sensitive = e.type_name == "PASSWORD";
    let shown = |v: Option<String>| v.filter(|_| !sensitive).map(StrBytes::from_string);
    let mut c = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(e.name))
        .with_value(shown(e.value))
        .with_read_only(e.read_only)
        .with_is_sensitive(sensitive)
        .with_config_source(e.source as i8);
    if include_synonyms {
        c.synonyms = e
            .synonyms
            .into_iter()
            .map(|s| {
                DescribeConfigsSynonym::default()
                    .with_name(StrBytes::from_string(s.name))
                    .with_value(shown(s.value))
                    .with_source(s.source as i8)
            })
            .collect();
    }
    if version >= 3 {
        c.config_type = type_code(e.type_name);
        if include_documentation {
            c.documentation = e.doc.map(StrBytes::from_static_str);
        }
    }
    c
}
