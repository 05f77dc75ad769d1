//! Per-group dynamic configs: the GROUP config resource (`kafka-configs --entity-type groups`,
//! Kafka 4.x `GroupConfig`), kept in the metadata log and read by the coordinator through the
//! handlers. Each key overrides a broker key for one group; unset, the broker's value applies.
//! Strom serves the keys of KIP-848 consumer groups and the streams-group keys its streams
//! coordinator applies (session timeout, heartbeat interval, standby replicas); Kafka's share
//! keys and the streams keys for what Strom's assignor does not have (warm-up replicas,
//! assignment intervals, rack tags, assignor choice) are refused with INVALID_CONFIG, as are
//! unknown names (Kafka's message).

use std::collections::BTreeMap;

use crate::config::group::GroupConfig;

/// One key of the GROUP resource.
pub struct GroupConfigSpec {
    pub name: &'static str,
    /// The broker key whose value applies when the group sets none.
    pub broker_key: &'static str,
    pub type_name: &'static str,
    pub doc: &'static str,
    /// The broker's value of `broker_key`.
    broker_value: fn(&GroupConfig) -> i64,
    /// The smallest value the key's type allows (Kafka's `ConfigDef.Range.atLeast`).
    at_least: i64,
    /// Inclusive bounds from the broker's min/max keys (None: no such broker key).
    bounds: fn(&GroupConfig) -> (Option<i64>, Option<i64>),
}

pub const GROUP_CONFIGS: &[GroupConfigSpec] = &[
    GroupConfigSpec {
        name: "consumer.heartbeat.interval.ms",
        broker_key: "group.consumer.heartbeat.interval.ms",
        type_name: "INT",
        doc: "The heartbeat interval given to the members.",
        broker_value: |g| i64::from(g.consumer_heartbeat_interval_ms),
        at_least: 1,
        bounds: |g| {
            (
                Some(i64::from(g.consumer_heartbeat_interval_min_ms)),
                Some(i64::from(g.consumer_heartbeat_interval_max_ms)),
            )
        },
    },
    GroupConfigSpec {
        name: "consumer.session.timeout.ms",
        broker_key: "group.consumer.session.timeout.ms",
        type_name: "INT",
        doc: "The timeout to detect client failures when using the consumer group protocol.",
        broker_value: |g| g.consumer_session_timeout_ms as i64,
        at_least: 1,
        bounds: |g| {
            (
                Some(i64::from(g.consumer_session_timeout_min_ms)),
                Some(i64::from(g.consumer_session_timeout_max_ms)),
            )
        },
    },
    GroupConfigSpec {
        name: "streams.heartbeat.interval.ms",
        broker_key: "group.streams.heartbeat.interval.ms",
        type_name: "INT",
        doc: "The heartbeat interval given to the members.",
        broker_value: |g| i64::from(g.streams_heartbeat_interval_ms),
        at_least: 1,
        bounds: |g| {
            (
                Some(i64::from(g.streams_heartbeat_interval_min_ms)),
                Some(i64::from(g.streams_heartbeat_interval_max_ms)),
            )
        },
    },
    GroupConfigSpec {
        name: "streams.num.standby.replicas",
        broker_key: "group.streams.num.standby.replicas",
        type_name: "INT",
        doc: "The number of standby replicas for each task.",
        broker_value: |g| i64::from(g.streams_num_standby_replicas),
        at_least: 0,
        bounds: |g| (None, Some(i64::from(g.streams_max_standby_replicas))),
    },
    GroupConfigSpec {
        name: "streams.session.timeout.ms",
        broker_key: "group.streams.session.timeout.ms",
        type_name: "INT",
        doc: "The timeout to detect client failures when using the streams group protocol.",
        broker_value: |g| g.streams_session_timeout_ms as i64,
        at_least: 1,
        bounds: |g| {
            (
                Some(i64::from(g.streams_session_timeout_min_ms)),
                Some(i64::from(g.streams_session_timeout_max_ms)),
            )
        },
    },
];

/// Kafka's group keys for share and streams groups (and the internal ones): known names that
/// Strom cannot apply yet.
const NOT_SERVED_PREFIXES: &[&str] = &["share.", "streams.", "errors.deadletterqueue."];

pub fn spec(name: &str) -> Option<&'static GroupConfigSpec> {
    GROUP_CONFIGS.iter().find(|s| s.name == name)
}

/// Checks a group's configs after a change (`configs`: every key it would set), as Kafka's
/// `GroupConfig.validate`: known names, INT values, the broker's bounds. The error is
/// INVALID_CONFIG's message.
pub fn validate(configs: &BTreeMap<String, String>, broker: &GroupConfig) -> Result<(), String> {
    for (name, value) in configs {
        let Some(spec) = spec(name) else {
            if NOT_SERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
                return Err(format!(
                    "Group config {name} is a share-group setting or a streams-group setting Strom's assignor does not apply."
                ));
            }
            return Err(format!("Unknown group config name: {name}"));
        };
        let v: i32 = value.trim().parse().map_err(|_| {
            format!("Invalid value {value} for configuration {name}: Not a number of type INT")
        })?;
        if i64::from(v) < spec.at_least {
            return Err(format!(
                "Invalid value {value} for configuration {name}: Value must be at least {}",
                spec.at_least
            ));
        }
        let v = i64::from(v);
        match (spec.bounds)(broker) {
            (Some(min), Some(max)) if v < min || v > max => {
                return Err(format!(
                    "{name} must be in the range {min} to {max} inclusive."
                ));
            }
            (None, Some(max)) if v > max => {
                return Err(format!("{name} must be less than or equal to {max}"));
            }
            (Some(min), None) if v < min => {
                return Err(format!("{name} must be greater than or equal to {min}"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A key's value for a group: its own setting, else the broker's.
pub fn effective(
    spec: &GroupConfigSpec,
    overrides: &BTreeMap<String, String>,
    broker: &GroupConfig,
) -> i64 {
    overrides
        .get(spec.name)
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or_else(|| (spec.broker_value)(broker))
}

/// What a KIP-848 group runs with: session timeout and heartbeat interval, in ms.
pub fn consumer_timings(overrides: &BTreeMap<String, String>, broker: &GroupConfig) -> (u64, i32) {
    let get = |name| spec(name).map(|s| effective(s, overrides, broker));
    let session =
        get("consumer.session.timeout.ms").unwrap_or(broker.consumer_session_timeout_ms as i64);
    let heartbeat = get("consumer.heartbeat.interval.ms")
        .unwrap_or(i64::from(broker.consumer_heartbeat_interval_ms));
    (
        session.max(1) as u64,
        heartbeat.clamp(1, i64::from(i32::MAX)) as i32,
    )
}

/// What a streams group runs with: session timeout (ms), heartbeat interval (ms) and standby
/// replicas per task.
pub fn streams_settings(
    overrides: &BTreeMap<String, String>,
    broker: &GroupConfig,
) -> (u64, i32, usize) {
    let get = |name, default: i64| spec(name).map_or(default, |s| effective(s, overrides, broker));
    let session = get(
        "streams.session.timeout.ms",
        broker.streams_session_timeout_ms as i64,
    );
    let heartbeat = get(
        "streams.heartbeat.interval.ms",
        i64::from(broker.streams_heartbeat_interval_ms),
    );
    let standbys = get(
        "streams.num.standby.replicas",
        i64::from(broker.streams_num_standby_replicas),
    );
    (
        session.max(1) as u64,
        heartbeat.clamp(1, i64::from(i32::MAX)) as i32,
        standbys.clamp(0, 1000) as usize,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;

    fn configs(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kafka_messages_and_bounds() {
        let g = BrokerConfig::default().groups;
        assert_eq!(
            validate(&configs(&[("consumer.session.timeout.ms", "50000")]), &g),
            Ok(())
        );
        assert_eq!(
            validate(&configs(&[("consumer.session.timeout.ms", "1000")]), &g),
            Err(
                "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive.".into()
            )
        );
        assert_eq!(
            validate(&configs(&[("consumer.heartbeat.interval.ms", "20000")]), &g),
            Err(
                "consumer.heartbeat.interval.ms must be in the range 5000 to 15000 inclusive."
                    .into()
            )
        );
        assert_eq!(
            validate(&configs(&[("consumer.session.timeout.ms", "abc")]), &g),
            Err("Invalid value abc for configuration consumer.session.timeout.ms: Not a number of type INT".into())
        );
        assert_eq!(
            validate(&configs(&[("nope", "1")]), &g),
            Err("Unknown group config name: nope".into())
        );
        assert!(validate(&configs(&[("share.record.lock.duration.ms", "30000")]), &g).is_err());
        assert!(validate(&configs(&[("streams.num.warmup.replicas", "1")]), &g).is_err());
        assert_eq!(
            validate(&configs(&[("streams.num.standby.replicas", "3")]), &g),
            Err("streams.num.standby.replicas must be less than or equal to 2".into())
        );
        assert_eq!(
            validate(&configs(&[("streams.num.standby.replicas", "-1")]), &g),
            Err("Invalid value -1 for configuration streams.num.standby.replicas: Value must be at least 0".into())
        );
        assert_eq!(
            validate(&configs(&[("streams.session.timeout.ms", "70000")]), &g),
            Err("streams.session.timeout.ms must be in the range 45000 to 60000 inclusive.".into())
        );
        let over = configs(&[
            ("streams.num.standby.replicas", "1"),
            ("streams.heartbeat.interval.ms", "6000"),
        ]);
        assert_eq!(streams_settings(&over, &g), (45_000, 6_000, 1));
        assert_eq!(streams_settings(&BTreeMap::new(), &g), (45_000, 5_000, 0));
        let over = configs(&[("consumer.session.timeout.ms", "50000")]);
        assert_eq!(consumer_timings(&over, &g), (50_000, 5_000));
        assert_eq!(consumer_timings(&BTreeMap::new(), &g), (45_000, 5_000));
    }
}
