//! DescribeConfigs (key 32), versions 1-4.
//!
//! TOPIC resources: every topic config key with its effective value and source (topic
//! override, static broker config, default), synonyms in precedence order when asked (v1+),
//! Kafka's config type and documentation (v3+). BROKER resources (our node id): every broker
//! key Strom understands, with STATIC_BROKER_CONFIG for explicitly set keys; the empty name
//! (cluster-wide dynamic defaults) has none, since Strom has no dynamic broker configs yet.
//! `configuration_keys` filters. Unknown topics: UNKNOWN_TOPIC_OR_PARTITION; another broker id
//! or an unsupported resource type: INVALID_REQUEST.

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::config::topic::{self, Source};
use crate::handlers::{ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::DescribeConfigs, min: 1, max: 4 };

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Kafka's ConfigType codes for DescribeConfigs v3+.
pub fn type_code(type_name: &str) -> i8 {
    match type_name {
        "BOOLEAN" => 1,
        "STRING" => 2,
        "INT" => 3,
        "SHORT" => 4,
        "LONG" => 5,
        "DOUBLE" => 6,
        "LIST" => 7,
        "CLASS" => 8,
        "PASSWORD" => 9,
        _ => 0,
    }
}

/// The broker key that sets a topic key's default, as Kafka names it in synonyms.
fn broker_synonym(name: &str) -> Option<&'static str> {
    match name {
        "retention.ms" => Some("log.retention.ms"),
        "segment.ms" => Some("log.roll.ms"),
        "flush.messages" => Some("log.flush.interval.messages"),
        "flush.ms" => Some("log.flush.interval.ms"),
        other => topic::spec(other).and_then(|s| s.broker_key),
    }
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DescribeConfigsRequest = ctx.decode(body)?;
    let broker = &ctx.broker;
    let v3 = ctx.version >= 3;
    let results = req
        .resources
        .iter()
        .map(|res| {
            let mut out = DescribeConfigsResult::default().with_resource_type(res.resource_type).with_resource_name(res.resource_name.clone());
            let wanted = |k: &str| res.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|x| x.as_str() == k));
            match res.resource_type {
                RESOURCE_TOPIC => {
                    let Some(meta) = broker.metadata.topic(res.resource_name.as_str()) else {
                        out.error_code = WireError::UnknownTopicOrPartition.code();
                        out.error_message = Some(StrBytes::from_string(format!("Topic {} does not exist.", res.resource_name.as_str())));
                        return out;
                    };
                    out.configs = topic::TOPIC_CONFIGS
                        .iter()
                        .filter(|s| wanted(s.name))
                        .map(|s| {
                            let (value, source) = topic::effective(&broker.config, &meta.configs, s.name).unwrap_or((s.default.to_string(), Source::Default));
                            let mut c = DescribeConfigsResourceResult::default()
                                .with_name(StrBytes::from_static_str(s.name))
                                .with_value(Some(StrBytes::from_string(value)))
                                .with_config_source(source as i8);
                            if req.include_synonyms {
                                let mut syn = Vec::new();
                                if let Some(v) = meta.configs.get(s.name) {
                                    syn.push(synonym(s.name, v, Source::TopicOverride));
                                }
                                let bkey = broker_synonym(s.name);
                                if let (Some(k), Some(v)) = (bkey, broker.config.topic_defaults.get(s.name)) {
                                    syn.push(synonym(k, v, Source::StaticBroker));
                                }
                                syn.push(synonym(bkey.unwrap_or(s.name), s.default, Source::Default));
                                c.synonyms = syn;
                            }
                            if v3 {
                                c.config_type = type_code(s.type_name);
                                if req.include_documentation {
                                    c.documentation = Some(StrBytes::from_static_str(s.doc));
                                }
                            }
                            c
                        })
                        .collect();
                }
                RESOURCE_BROKER => {
                    let name = res.resource_name.as_str();
                    if name.is_empty() {
                        return out; // no cluster-wide dynamic defaults
                    }
                    if name.parse::<i32>().ok() != Some(broker.config.node_id) {
                        out.error_code = WireError::InvalidRequest.code();
                        out.error_message = Some(StrBytes::from_string(format!("Unexpected broker id, expected {}, but received {name}", broker.config.node_id)));
                        return out;
                    }
                    out.configs = broker
                        .config
                        .describe_entries()
                        .into_iter()
                        .filter(|e| wanted(e.name))
                        .map(|e| {
                            let source = if e.explicit { Source::StaticBroker } else { Source::Default };
                            let mut c = DescribeConfigsResourceResult::default()
                                .with_name(StrBytes::from_static_str(e.name))
                                .with_value(e.value.clone().map(StrBytes::from_string))
                                .with_read_only(true)
                                .with_config_source(source as i8);
                            if req.include_synonyms {
                                if let Some(v) = &e.value {
                                    c.synonyms = vec![synonym(e.name, v, source)];
                                }
                            }
                            if v3 {
                                c.config_type = type_code(e.type_name);
                            }
                            c
                        })
                        .collect();
                }
                other => {
                    out.error_code = WireError::InvalidRequest.code();
                    out.error_message = Some(StrBytes::from_string(format!("Resource type {other} is not supported by this broker.")));
                }
            }
            out
        })
        .collect();
    ctx.reply(&DescribeConfigsResponse::default().with_results(results))
}

fn synonym(name: &str, value: &str, source: Source) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_value(Some(StrBytes::from_string(value.to_string())))
        .with_source(source as i8)
}
