//! ListConfigResources (key 74), versions 0-1 (KIP-1142; v0 was ListClientMetricsResources).
//!
//! The config resources that exist, by type, as Kafka 4.4 lists them: TOPIC (2) every topic,
//! internal ones included; BROKER (4) and BROKER_LOGGER (8) this broker's node id; GROUP (32)
//! the groups that have dynamic configs set (not every group, as Kafka); CLIENT_METRICS (16)
//! the client-metrics subscriptions, of which Strom has none (it refuses to create them), so
//! the list is empty. An empty type filter means every type the version supports (v0: only
//! CLIENT_METRICS); a type outside them answers UNSUPPORTED_VERSION for the whole request,
//! like Kafka. `kafka-configs --entity-type groups --describe` (4.1 tools) uses it.
//!
//! Authorization: DESCRIBE_CONFIGS on the cluster, else CLUSTER_AUTHORIZATION_FAILED.

use bytes::Bytes;
use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ApiKey, ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::ListConfigResources),
    min: 0,
    max: 1,
};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

/// The types a version lists, in Kafka's order.
fn supported(version: i16) -> &'static [i8] {
    if version == 0 {
        &[CLIENT_METRICS]
    } else {
        &[TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP]
    }
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: ListConfigResourcesRequest = ctx.decode(body)?;
    if !ctx.authz().cluster(op::DESCRIBE_CONFIGS) {
        return ctx.reply(&ListConfigResourcesResponse::default().with_error_code(WireError::ClusterAuthorizationFailed.code()));
    }
    let supported = supported(ctx.version);
    let types: Vec<i8> = if req.resource_types.is_empty() {
        supported.to_vec()
    } else {
        req.resource_types.clone()
    };
    if types.iter().any(|t| !supported.contains(t)) {
        let resp =
            ListConfigResourcesResponse::default().with_error_code(WireError::UnsupportedVersion.code());
        return ctx.reply(&resp);
    }
    let b = &ctx.broker;
    let mut out = Vec::new();
    let mut push = |name: String, kind: i8| {
        out.push(
            ConfigResource::default()
                .with_resource_name(StrBytes::from_string(name))
                .with_resource_type(kind),
        )
    };
    // Kafka's order: groups, client metrics, broker loggers, brokers, topics.
    if types.contains(&GROUP) {
        for g in b.metadata.groups_with_configs() {
            push(g, GROUP);
        }
    }
    if types.contains(&BROKER_LOGGER) {
        push(b.config.node_id.to_string(), BROKER_LOGGER);
    }
    if types.contains(&BROKER) {
        push(b.config.node_id.to_string(), BROKER);
    }
    if types.contains(&TOPIC) {
        for t in b.metadata.topics() {
            push(t.name, TOPIC);
        }
    }
    ctx.reply(&ListConfigResourcesResponse::default().with_config_resources(out))
}
