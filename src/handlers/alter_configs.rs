//! AlterConfigs (key 33), versions 0-2 (all that Kafka 4.1 serves): the legacy API that
//! replaces a resource's whole set of overrides.
//!
//! TOPIC: the given keys become the topic's complete set of overrides (keys not named return
//! to their defaults), validated (unknown key or bad value: INVALID_CONFIG) and persisted
//! atomically; `validate_only` checks and changes nothing. Empty name: INVALID_REQUEST; an
//! invalid name INVALID_TOPIC_EXCEPTION; unknown topic UNKNOWN_TOPIC_OR_PARTITION.
//!
//! BROKER: the given keys become the resource's complete set of dynamic broker configs (see
//! `config::dynamic`): our node id for this broker's, the empty name for the cluster-wide
//! ones. A key that cannot change at run time gets Kafka's INVALID_REQUEST "Cannot update
//! these configs dynamically: Set(...)"; a bad value INVALID_CONFIG. An empty config list
//! removes the resource's dynamic configs, as in Kafka.
//!
//! Like Kafka: a resource named twice fails both entries, a key named twice or a null value
//! fails its resource (INVALID_REQUEST). Other resource types: INVALID_REQUEST.
//!
//! Authorization: ALTER_CONFIGS on the topic or group, or on the cluster for broker resources,
//! else that resource's TOPIC_/GROUP_/CLUSTER_AUTHORIZATION_FAILED.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ApiKey};
use kafka_protocol::protocol::StrBytes;

use crate::broker::{validate_topic_name, AdminError, Broker};
use crate::handlers::authz::op;
use crate::handlers::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::handlers::errors::admin_error_code;
use crate::handlers::{blocking, Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::AlterConfigs),
    min: 0,
    max: 2,
};

/// A resource's error: (code, message).
pub(crate) type Refusal = (i16, String);

pub(crate) fn invalid_request(message: impl Into<String>) -> Refusal {
    (WireError::InvalidRequest.code(), message.into())
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: AlterConfigsRequest = ctx.decode(body)?;
    // A metadata fsync: on the blocking pool, so this connection's worker thread serves others meanwhile.
    blocking(move || respond(ctx, req)).await?
}

fn respond(ctx: RequestContext, req: AlterConfigsRequest) -> Result<Reply, ProtocolError> {
    let repeated = repeated_resources(
        req.resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let authz = ctx.authz();
    let responses = req
        .resources
        .iter()
        .map(|res| {
            let name = res.resource_name.as_str();
            let outcome = if repeated.contains(&(res.resource_type, name)) {
                Err(invalid_request("Each resource must appear at most once."))
            } else if let Some((e, message)) =
                authz.config_resource(op::ALTER_CONFIGS, res.resource_type, name)
            {
                Err((e.code(), message.to_string()))
            } else {
                let configs: Vec<(&str, Option<&str>)> = res
                    .configs
                    .iter()
                    .map(|c| (c.name.as_str(), c.value.as_ref().map(|v| v.as_str())))
                    .collect();
                alter(
                    &ctx.broker,
                    res.resource_type,
                    name,
                    &configs,
                    req.validate_only,
                )
            };
            let mut r = AlterConfigsResourceResponse::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            if let Err((code, msg)) = outcome {
                r.error_code = code;
                r.error_message = Some(StrBytes::from_string(msg));
            }
            r
        })
        .collect();
    ctx.reply(&AlterConfigsResponse::default().with_responses(responses))
}

fn alter(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    configs: &[(&str, Option<&str>)],
    validate_only: bool,
) -> Result<(), Refusal> {
    check_keys_unique(configs.iter().map(|(k, _)| *k))?;
    let nulls: Vec<&str> = configs
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| *k)
        .collect();
    if !nulls.is_empty() {
        return Err(invalid_request(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        )));
    }
    match resource_type {
        RESOURCE_TOPIC => {
            check_topic_name(name)?;
            let changes: BTreeMap<String, Option<String>> = configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect();
            broker
                .alter_topic_configs(name, changes, true, validate_only)
                .map_err(|e| topic_refusal(name, &e))
        }
        RESOURCE_BROKER => {
            let node = broker_node(broker, name)?;
            let changes: BTreeMap<String, Option<String>> = configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect();
            broker
                .alter_broker_configs(node, changes, true, validate_only)
                .map_err(|e| broker_refusal(&e))
        }
        other => Err(invalid_request(format!("Unknown resource type {other}"))),
    }
}

/// (type, name) pairs that occur more than once.
pub(crate) fn repeated_resources<'a>(
    resources: impl Iterator<Item = (i8, &'a str)>,
) -> HashSet<(i8, &'a str)> {
    let mut counts: HashMap<(i8, &str), usize> = HashMap::new();
    for r in resources {
        *counts.entry(r).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(r, _)| r)
        .collect()
}

pub(crate) fn check_keys_unique<'a>(keys: impl Iterator<Item = &'a str>) -> Result<(), Refusal> {
    let mut seen = HashSet::new();
    for k in keys {
        if !seen.insert(k) {
            return Err(invalid_request("Error due to duplicate config keys"));
        }
    }
    Ok(())
}

/// Kafka's controller checks a topic resource's name before anything else.
pub(crate) fn check_topic_name(name: &str) -> Result<(), Refusal> {
    if name.is_empty() {
        return Err(invalid_request("Default topic resources are not allowed."));
    }
    validate_topic_name(name).map_err(|e| (admin_error_code(&e), e.to_string()))
}

pub(crate) fn topic_refusal(name: &str, e: &AdminError) -> Refusal {
    let msg = match e {
        AdminError::UnknownTopic => format!("The topic '{name}' does not exist."),
        other => other.to_string(),
    };
    (admin_error_code(e), msg)
}

/// A change to broker configs: the name must be empty (cluster default) or our node id, and
/// any key to set is refused as Kafka refuses a read-only config — Strom has no dynamic broker
/// configs. Nothing to set is a successful no-op.
/// The dynamic-config layer a BROKER resource names: our node id (Some) or the cluster-wide
/// defaults (the empty name, None); another id or a non-number is INVALID_REQUEST, Kafka's words.
pub(crate) fn broker_node(broker: &Broker, name: &str) -> Result<Option<i32>, Refusal> {
    if name.is_empty() {
        return Ok(None);
    }
    let id: i32 = name
        .parse()
        .map_err(|_| invalid_request(format!("Node id must be an integer, but it is: {name}")))?;
    if id != broker.config.node_id {
        return Err(invalid_request(format!(
            "Unexpected broker id, expected {}, but received {name}",
            broker.config.node_id
        )));
    }
    Ok(Some(id))
}

/// A broker-resource refusal: INVALID_REQUEST for keys that cannot change at run time,
/// INVALID_CONFIG for bad values.
pub(crate) fn broker_refusal(e: &AdminError) -> Refusal {
    (admin_error_code(e), e.to_string())
}
