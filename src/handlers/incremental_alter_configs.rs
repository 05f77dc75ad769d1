//! IncrementalAlterConfigs (key 44), versions 0-1 (all that Kafka 4.1 serves) — what
//! `kafka-configs --alter` and `Admin.incrementalAlterConfigs` use.
//!
//! TOPIC: SET (0) and DELETE (1) any topic key; APPEND (2) and SUBTRACT (3) only list-typed
//! keys (`cleanup.policy`), else INVALID_CONFIG "Can't APPEND to key ... because its type is
//! not LIST." APPEND/SUBTRACT start from the topic's override, else Kafka's static default (not
//! the broker's), like Kafka's controller. SET of an unknown key or a bad value: INVALID_CONFIG;
//! DELETE of a key without override (even an unknown one) is a no-op, as in Kafka. The result
//! is validated and persisted atomically per resource; `validate_only` changes nothing.
//! Name checks as in AlterConfigs.
//!
//! BROKER (our node id, or "" for cluster-wide): SET/DELETE of dynamic broker configs
//! (`config::dynamic`; APPEND/SUBTRACT on `log.cleanup.policy`), persisted in the metadata log
//! and applied at once; a key that cannot change at run time is INVALID_REQUEST "Cannot update
//! these configs dynamically: Set(...)", a bad value INVALID_CONFIG; deleting a key that is not
//! set is a no-op.
//! BROKER_LOGGER: no run-time adjustable loggers, INVALID_CONFIG.
//!
//! GROUP: SET and DELETE of the KIP-848 consumer group keys (`consumer.session.timeout.ms`,
//! `consumer.heartbeat.interval.ms`), checked against the broker's
//! `group.consumer.{min,max}.*` bounds with Kafka's messages (INVALID_CONFIG); APPEND/SUBTRACT
//! are INVALID_CONFIG (no LIST keys). Persisted in the metadata log; applied to the group's
//! members at their next heartbeat.
//!
//! Like Kafka: a resource named twice fails both entries; a key named twice, a null value for
//! anything but DELETE, or an unknown operation fails the resource (INVALID_REQUEST).
//!
//! Authorization: ALTER_CONFIGS on the topic or group, or on the cluster for broker,
//! broker-logger and client-metrics resources, else that resource's
//! TOPIC_/GROUP_/CLUSTER_AUTHORIZATION_FAILED.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::config::topic::{self, Kind};
use crate::handlers::authz::op;
use crate::handlers::alter_configs::{
    broker_node, broker_refusal, check_keys_unique, check_topic_name, invalid_request, repeated_resources,
    topic_refusal, Refusal,
};
use crate::handlers::describe_configs::{
    RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_GROUP, RESOURCE_TOPIC,
};
use crate::handlers::errors::admin_error_code;
use crate::handlers::{blocking, Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::IncrementalAlterConfigs),
    min: 0,
    max: 1,
};

/// Kafka's AlterConfigOp.OpType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Set,
    Delete,
    Append,
    Subtract,
}

impl Op {
    fn from_id(id: i8) -> Option<Op> {
        match id {
            0 => Some(Op::Set),
            1 => Some(Op::Delete),
            2 => Some(Op::Append),
            3 => Some(Op::Subtract),
            _ => None,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Op::Set => "SET",
            Op::Delete => "DELETE",
            Op::Append => "APPEND",
            Op::Subtract => "SUBTRACT",
        }
    }
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: IncrementalAlterConfigsRequest = ctx.decode(body)?;
    // A metadata fsync: on the blocking pool, so this connection's worker thread serves others meanwhile.
    blocking(move || respond(ctx, req)).await?
}

fn respond(ctx: RequestContext, req: IncrementalAlterConfigsRequest) -> Result<Reply, ProtocolError> {
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
            let outcome = if repeated.contains(&(res.resource_type, res.resource_name.as_str())) {
                Err(invalid_request("Each resource must appear at most once."))
            } else if let Some((e, message)) = authz.config_resource(
                op::ALTER_CONFIGS,
                res.resource_type,
                res.resource_name.as_str(),
            ) {
                Err((e.code(), message.to_string()))
            } else {
                alter(&ctx.broker, res, req.validate_only)
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
    ctx.reply(&IncrementalAlterConfigsResponse::default().with_responses(responses))
}

fn alter(broker: &Broker, res: &AlterConfigsResource, validate_only: bool) -> Result<(), Refusal> {
    let name = res.resource_name.as_str();
    check_keys_unique(res.configs.iter().map(|c| c.name.as_str()))?;
    let mut ops: Vec<(&str, Op, Option<&str>)> = Vec::with_capacity(res.configs.len());
    let mut nulls = Vec::new();
    for c in &res.configs {
        let op = Op::from_id(c.config_operation).ok_or_else(|| {
            invalid_request(format!("Unknown operations type {}", c.config_operation))
        })?;
        let value = c.value.as_ref().map(|v| v.as_str());
        if op != Op::Delete && value.is_none() {
            nulls.push(c.name.as_str());
        }
        ops.push((c.name.as_str(), op, value));
    }
    if !nulls.is_empty() {
        return Err(invalid_request(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        )));
    }
    match res.resource_type {
        RESOURCE_TOPIC => {
            check_topic_name(name)?;
            let meta = broker
                .metadata
                .topic(name)
                .ok_or_else(|| topic_refusal(name, &crate::broker::AdminError::UnknownTopic))?;
            let changes = topic_changes(&meta.configs, &ops)?;
            broker
                .alter_topic_configs(name, changes, false, validate_only)
                .map_err(|e| topic_refusal(name, &e))
        }
        RESOURCE_BROKER => {
            let node = broker_node(broker, name)?;
            let changes = broker_changes(&broker.metadata.broker_configs(node), &broker.effective_config(), &ops)?;
            broker
                .alter_broker_configs(node, changes, false, validate_only)
                .map_err(|e| broker_refusal(&e))
        }
        RESOURCE_GROUP => {
            if name.is_empty() {
                return Err(invalid_request("Group name must not be empty."));
            }
            let changes = topic_changes(&broker.metadata.group_configs(name), &ops)?;
            broker
                .alter_group_configs(name, changes, validate_only)
                .map_err(|e| (admin_error_code(&e), e.to_string()))
        }
        RESOURCE_BROKER_LOGGER => Err((
            WireError::InvalidConfig.code(),
            "Strom has no run-time adjustable loggers (set RUST_LOG at start).".into(),
        )),
        other => Err(invalid_request(format!("Unknown resource type {other}"))),
    }
}

/// The override changes (`None` = remove) that `ops` make to a topic with `overrides`.
pub fn topic_changes(
    overrides: &BTreeMap<String, String>,
    ops: &[(&str, Op, Option<&str>)],
) -> Result<BTreeMap<String, Option<String>>, Refusal> {
    let mut changes = BTreeMap::new();
    for &(key, op, value) in ops {
        let new = match op {
            Op::Set => value.map(str::to_string),
            Op::Delete => {
                if !overrides.contains_key(key) {
                    continue; // nothing to remove: no change, whatever the key
                }
                None
            }
            Op::Append | Op::Subtract => {
                let spec = topic::spec(key).filter(|s| matches!(s.kind, Kind::List(_)));
                let Some(spec) = spec else {
                    return Err(not_a_list(op, key));
                };
                Some(edit_list(
                    overrides.get(key).map_or(spec.default, |v| v.as_str()),
                    op,
                    value,
                ))
            }
        };
        changes.insert(key.to_string(), new);
    }
    Ok(changes)
}

/// The dynamic-config changes (`None` = remove) that `ops` make to a BROKER resource whose
/// dynamic configs are `current`. APPEND/SUBTRACT apply to LIST keys (`log.cleanup.policy`)
/// and start from the resource's dynamic value, else the value in force.
fn broker_changes(
    current: &BTreeMap<String, String>,
    effective: &crate::config::BrokerConfig,
    ops: &[(&str, Op, Option<&str>)],
) -> Result<BTreeMap<String, Option<String>>, Refusal> {
    let mut changes = BTreeMap::new();
    for &(key, op, value) in ops {
        let new = match op {
            Op::Set => value.map(str::to_string),
            Op::Delete => None,
            Op::Append | Op::Subtract => {
                let spec = topic::TOPIC_CONFIGS
                    .iter()
                    .find(|s| s.broker_key == Some(key) && matches!(s.kind, Kind::List(_)));
                let Some(spec) = spec else {
                    return Err(not_a_list(op, key));
                };
                let base = current
                    .get(key)
                    .cloned()
                    .or_else(|| effective.topic_default(spec.name))
                    .unwrap_or_default();
                Some(edit_list(&base, op, value))
            }
        };
        changes.insert(key.to_string(), new);
    }
    Ok(changes)
}

/// Kafka's refusal of APPEND/SUBTRACT on a key that is not a LIST.
fn not_a_list(op: Op, key: &str) -> Refusal {
    (
        WireError::InvalidConfig.code(),
        format!("Can't {} to key {key} because its type is not LIST.", op.verb()),
    )
}

/// `base` (a comma-separated list) with `value`'s items appended (if absent) or subtracted.
fn edit_list(base: &str, op: Op, value: Option<&str>) -> String {
    let mut list = split_list(base);
    for item in split_list(value.unwrap_or("")) {
        if op == Op::Append {
            if !list.contains(&item) {
                list.push(item);
            }
        } else if let Some(i) = list.iter().position(|x| *x == item) {
            list.remove(i);
        }
    }
    list.join(",")
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn set_delete_append_subtract() {
        let o = overrides(&[("retention.ms", "1000")]);
        let c = topic_changes(
            &o,
            &[
                ("segment.bytes", Op::Set, Some("2048")),
                ("retention.ms", Op::Delete, None),
                ("cleanup.policy", Op::Append, Some("compact")),
            ],
        )
        .expect("valid");
        assert_eq!(c.get("segment.bytes"), Some(&Some("2048".to_string())));
        assert_eq!(c.get("retention.ms"), Some(&None));
        // APPEND starts from Kafka's default ("delete"), not from nothing.
        assert_eq!(
            c.get("cleanup.policy"),
            Some(&Some("delete,compact".to_string()))
        );

        let o = overrides(&[("cleanup.policy", "delete,compact")]);
        let c =
            topic_changes(&o, &[("cleanup.policy", Op::Subtract, Some("delete"))]).expect("valid");
        assert_eq!(c.get("cleanup.policy"), Some(&Some("compact".to_string())));
        let c = topic_changes(
            &o,
            &[("cleanup.policy", Op::Append, Some("compact,delete"))],
        )
        .expect("valid");
        assert_eq!(
            c.get("cleanup.policy"),
            Some(&Some("delete,compact".to_string())),
            "APPEND does not repeat items"
        );
    }

    #[test]
    fn delete_without_override_is_a_no_op_and_lists_only_append() {
        let o = overrides(&[]);
        let c = topic_changes(
            &o,
            &[
                ("no.such.key", Op::Delete, None),
                ("retention.ms", Op::Delete, None),
            ],
        )
        .expect("no-op");
        assert!(c.is_empty());
        for op in [Op::Append, Op::Subtract] {
            let e = topic_changes(&o, &[("retention.ms", op, Some("5"))]).expect_err("not a list");
            assert_eq!(e.0, WireError::InvalidConfig.code());
            assert!(e.1.contains("because its type is not LIST"), "{}", e.1);
            let e = topic_changes(&o, &[("no.such", op, Some("5"))]).expect_err("unknown");
            assert_eq!(e.0, WireError::InvalidConfig.code());
        }
    }
}
