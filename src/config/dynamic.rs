//! Dynamic broker configs (Kafka's `DynamicBrokerConfig`, the part Strom serves): the broker
//! keys that set topic defaults — Kafka's `DynamicLogConfig`: `log.retention.{ms,minutes,hours}`,
//! `log.retention.bytes`, `log.roll.{ms,hours}`, `log.segment.bytes`, `message.max.bytes`,
//! `log.cleanup.policy`, `log.message.timestamp.type`, `log.index.interval.bytes`,
//! `min.insync.replicas`, `compression.type`, the `log.cleaner.*` topic defaults, ... — altered at
//! run time for this broker (resource name = node id) or cluster-wide (empty name) with
//! AlterConfigs / IncrementalAlterConfigs and kept in the metadata log. The effective
//! configuration is the static one with the cluster-wide values, then this broker's, applied on
//! top, as Kafka merges them (so within the merged set `log.retention.ms` still beats
//! `.minutes` and `.hours`). Topics without an override of their own pick a change up at once.
//! The replication throttles (`leader.replication.throttled.rate`,
//! `follower.replication.throttled.rate`, which `kafka-reassign-partitions --throttle` sets per
//! broker) are dynamic too. Other keys (listeners, threads, limits, ...) stay static: changing them is refused with
//! Kafka's "Cannot update these configs dynamically" (INVALID_REQUEST).
//! `log.flush.interval.{ms,messages}` stay static too: the flush timer is armed at start.

use std::collections::BTreeMap;

use crate::config::{topic, BrokerConfig, ConfigError};

/// The dynamic configs of one broker: cluster-wide defaults and its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicConfigs {
    /// Set for every broker (resource name "").
    pub cluster: BTreeMap<String, String>,
    /// Set for this broker (resource name = its node id).
    pub broker: BTreeMap<String, String>,
}

/// Whether `key` may be changed at run time.
pub fn is_dynamic(key: &str) -> bool {
    if key.starts_with("log.flush.") {
        return false;
    }
    matches!(
        key,
        "log.retention.ms"
            | "log.retention.minutes"
            | "log.retention.hours"
            | "log.roll.ms"
            | "log.roll.hours"
            | "leader.replication.throttled.rate"
            | "follower.replication.throttled.rate"
    ) || topic::TOPIC_CONFIGS
        .iter()
        .any(|s| s.broker_key == Some(key))
}

/// The configuration in force: `statics` with the cluster-wide then the broker's dynamic values
/// applied (its `explicit` is then the merged set, as Kafka merges the layers' properties;
/// DescribeConfigs tells the layers apart from the static configuration and the dynamic maps).
pub fn effective(
    statics: &BrokerConfig,
    dynamic: &DynamicConfigs,
) -> Result<BrokerConfig, ConfigError> {
    let mut c = statics.clone();
    for (k, v) in dynamic.cluster.iter().chain(dynamic.broker.iter()) {
        c.set(k, v)?;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_kafka_order() {
        let statics = BrokerConfig::from_properties(&[("log.retention.hours".into(), "24".into())])
            .expect("config");
        let mut d = DynamicConfigs::default();
        d.cluster.insert("log.retention.ms".into(), "60000".into());
        d.cluster
            .insert("log.segment.bytes".into(), "1048576".into());
        d.broker
            .insert("log.segment.bytes".into(), "2097152".into());
        let c = effective(&statics, &d).expect("effective");
        assert_eq!(
            c.topic_default("retention.ms").as_deref(),
            Some("60000"),
            "ms beats hours"
        );
        assert_eq!(
            c.topic_default("segment.bytes").as_deref(),
            Some("2097152"),
            "broker beats cluster"
        );
        assert!(is_dynamic("log.retention.hours") && is_dynamic("message.max.bytes"));
        assert!(!is_dynamic("num.partitions") && !is_dynamic("log.flush.interval.ms"));
    }
}
