//! AlterConfigs (key 33), versions 0-2 (the legacy, replace-everything API).
//!
//! TOPIC resources: the given keys become the topic's complete set of overrides (keys not
//! named return to their defaults), validated (INVALID_CONFIG) and persisted atomically;
//! `validate_only` checks and changes nothing. BROKER resources: Strom has no dynamic broker
//! configuration yet, so they are refused with INVALID_REQUEST rather than pretending.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ApiKey};
use kafka_protocol::protocol::StrBytes;

use crate::broker::AdminError;
use crate::handlers::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::handlers::errors::admin_error_code;
use crate::handlers::{ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::AlterConfigs, min: 0, max: 2 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: AlterConfigsRequest = ctx.decode(body)?;
    let responses = req
        .resources
        .iter()
        .map(|res| {
            let mut r = AlterConfigsResourceResponse::default().with_resource_type(res.resource_type).with_resource_name(res.resource_name.clone());
            let outcome: Result<(), (i16, String)> = match res.resource_type {
                RESOURCE_TOPIC => {
                    let mut changes = BTreeMap::new();
                    let mut bad = None;
                    for c in &res.configs {
                        match &c.value {
                            Some(v) => {
                                changes.insert(c.name.to_string(), Some(v.to_string()));
                            }
                            None => bad = Some(format!("Null value not supported for : {}", c.name.as_str())),
                        }
                    }
                    match bad {
                        Some(msg) => Err((WireError::InvalidRequest.code(), msg)),
                        None => ctx
                            .broker
                            .alter_topic_configs(res.resource_name.as_str(), changes, true, req.validate_only)
                            .map_err(|e: AdminError| (admin_error_code(&e), e.to_string())),
                    }
                }
                RESOURCE_BROKER => Err((WireError::InvalidRequest.code(), "Dynamic broker configuration is not supported by Strom yet; use server.properties or --set.".into())),
                other => Err((WireError::InvalidRequest.code(), format!("Resource type {other} is not supported."))),
            };
            if let Err((code, msg)) = outcome {
                r.error_code = code;
                r.error_message = Some(StrBytes::from_string(msg));
            }
            r
        })
        .collect();
    ctx.reply(&AlterConfigsResponse::default().with_responses(responses))
}
