//! IncrementalAlterConfigs (key 44), versions 0-1 — what `kafka-configs --alter` uses.
//!
//! TOPIC resources: SET (0) and DELETE (1) any topic key; APPEND (2) and SUBTRACT (3) only
//! list-typed keys (e.g. `cleanup.policy`), else INVALID_CONFIG. The result is validated like
//! CreateTopics (INVALID_CONFIG with the reason) and persisted atomically; `validate_only`
//! changes nothing. A resource named twice, a key named twice in one resource, or an unknown
//! operation: INVALID_REQUEST. BROKER resources are refused (no dynamic broker configs yet).

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::config::topic::{self, Kind};
use crate::handlers::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::handlers::errors::admin_error_code;
use crate::handlers::{ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::IncrementalAlterConfigs, min: 0, max: 1 };

type Outcome = Result<(), (i16, String)>;

fn invalid_config(msg: String) -> (i16, String) {
    (WireError::InvalidConfig.code(), msg)
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: IncrementalAlterConfigsRequest = ctx.decode(body)?;
    let mut seen: HashMap<(i8, String), usize> = HashMap::new();
    for r in &req.resources {
        *seen.entry((r.resource_type, r.resource_name.to_string())).or_default() += 1;
    }
    let responses = req
        .resources
        .iter()
        .map(|res| {
            let mut r = AlterConfigsResourceResponse::default().with_resource_type(res.resource_type).with_resource_name(res.resource_name.clone());
            let outcome: Outcome = if seen.get(&(res.resource_type, res.resource_name.to_string())).copied().unwrap_or(0) > 1 {
                Err((WireError::InvalidRequest.code(), format!("Duplicate resource {}", res.resource_name.as_str())))
            } else {
                match res.resource_type {
                    RESOURCE_TOPIC => alter_topic(&ctx, res, req.validate_only),
                    RESOURCE_BROKER => Err((WireError::InvalidRequest.code(), "Dynamic broker configuration is not supported by Strom yet; use server.properties or --set.".into())),
                    other => Err((WireError::InvalidRequest.code(), format!("Resource type {other} is not supported."))),
                }
            };
            if let Err((code, msg)) = outcome {
                r.error_code = code;
                r.error_message = Some(StrBytes::from_string(msg));
            }
            r
        })
        .collect();
    ctx.reply(&IncrementalAlterConfigsResponse::default().with_responses(responses))
}

fn alter_topic(ctx: &RequestContext, res: &kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource, validate_only: bool) -> Outcome {
    let name = res.resource_name.as_str();
    let meta = ctx.broker.metadata.topic(name).ok_or((WireError::UnknownTopicOrPartition.code(), format!("Topic {name} does not exist.")))?;
    let mut keys = HashSet::new();
    let mut changes: BTreeMap<String, Option<String>> = BTreeMap::new();
    for c in &res.configs {
        let key = c.name.to_string();
        if !keys.insert(key.clone()) {
            return Err((WireError::InvalidRequest.code(), format!("Duplicate config key {key}")));
        }
        let spec = topic::spec(&key).ok_or_else(|| invalid_config(format!("Unknown topic config name: {key}")))?;
        let current = || -> Vec<String> {
            let v = meta.configs.get(&key).cloned().or_else(|| ctx.broker.config.topic_default(&key)).unwrap_or_default();
            v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
        };
        let value = c.value.as_ref().map(|v| v.to_string());
        let new = match c.config_operation {
            0 => Some(value.ok_or_else(|| (WireError::InvalidRequest.code(), format!("Null value not supported for : {key}")))?),
            1 => None,
            op @ (2 | 3) => {
                if !matches!(spec.kind, Kind::List(_)) {
                    let verb = if op == 2 { "APPEND" } else { "SUBTRACT" };
                    return Err(invalid_config(format!("Config value append is not allowed for config key: {key} ({verb} on a non-list config)")));
                }
                let items: Vec<String> = value.unwrap_or_default().split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
                let mut list = current();
                if op == 2 {
                    for i in items {
                        if !list.contains(&i) {
                            list.push(i);
                        }
                    }
                } else {
                    list.retain(|x| !items.contains(x));
                }
                Some(list.join(","))
            }
            other => return Err((WireError::InvalidRequest.code(), format!("Unknown config operation {other}"))),
        };
        changes.insert(key, new);
    }
    ctx.broker.alter_topic_configs(name, changes, false, validate_only).map_err(|e| (admin_error_code(&e), e.to_string()))
}
