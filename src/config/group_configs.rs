//! Per-group dynamic configs: the GROUP config resource (`kafka-configs --entity-type groups`,
//! Kafka 4.x `GroupConfig`), kept in the metadata log and read by the coordinator through the
//! handlers. Each key overrides a broker key for one group; unset, the broker's value applies.
//! Strom serves the keys of KIP-848 consumer groups, the share-group keys (KIP-932: numbers
//! bounded by the broker's `group.share.min/max.*`, and the text keys of
//! [`TEXT_GROUP_CONFIGS`], which have defaults instead of broker keys) and the streams-group
//! keys its streams coordinator applies (session timeout, heartbeat interval, standby
//! replicas); the keys for what Strom does not do (`share.assignment.interval.ms`, the
//! assignor offload, streams warm-up replicas, assignment intervals, rack tags, assignor
//! choice) are refused with INVALID_CONFIG, as are unknown names (Kafka's message).

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
        name: "share.delivery.count.limit",
        broker_key: "group.share.delivery.count.limit",
        type_name: "INT",
        doc: "The maximum number of delivery attempts for a record delivered to a share group.",
        broker_value: |g| i64::from(g.share_delivery_count_limit),
        at_least: 2,
        bounds: |g| {
            (
                Some(i64::from(g.share_delivery_count_limit_min)),
                Some(i64::from(g.share_delivery_count_limit_max)),
            )
        },
    },
    GroupConfigSpec {
        name: "share.heartbeat.interval.ms",
        broker_key: "group.share.heartbeat.interval.ms",
        type_name: "INT",
        doc: "The heartbeat interval given to the members.",
        broker_value: |g| i64::from(g.share_heartbeat_interval_ms),
        at_least: 1,
        bounds: |g| {
            (
                Some(i64::from(g.share_heartbeat_interval_min_ms)),
                Some(i64::from(g.share_heartbeat_interval_max_ms)),
            )
        },
    },
    GroupConfigSpec {
        name: "share.partition.max.record.locks",
        broker_key: "group.share.partition.max.record.locks",
        type_name: "INT",
        doc: "Share-group record lock limit per share-partition.",
        broker_value: |g| i64::from(g.share_partition_max_record_locks),
        at_least: 100,
        bounds: |g| {
            (
                Some(i64::from(g.share_partition_max_record_locks_min)),
                Some(i64::from(g.share_partition_max_record_locks_max)),
            )
        },
    },
    GroupConfigSpec {
        name: "share.record.lock.duration.ms",
        broker_key: "group.share.record.lock.duration.ms",
        type_name: "INT",
        doc: "The record acquisition lock duration in milliseconds for share groups.",
        broker_value: |g| i64::from(g.share_record_lock_duration_ms),
        at_least: 1000,
        bounds: |g| {
            (
                Some(i64::from(g.share_record_lock_duration_min_ms)),
                Some(i64::from(g.share_record_lock_duration_max_ms)),
            )
        },
    },
    GroupConfigSpec {
        name: "share.session.timeout.ms",
        broker_key: "group.share.session.timeout.ms",
        type_name: "INT",
        doc: "The timeout to detect client failures when using the share group protocol.",
        broker_value: |g| g.share_session_timeout_ms as i64,
        at_least: 1,
        bounds: |g| {
            (
                Some(i64::from(g.share_session_timeout_min_ms)),
                Some(i64::from(g.share_session_timeout_max_ms)),
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

/// A group key whose value is not a number (share groups): no broker synonym, a default.
pub struct TextGroupConfigSpec {
    pub name: &'static str,
    pub type_name: &'static str,
    pub doc: &'static str,
    pub default: &'static str,
    /// Kafka's validator; the error is INVALID_CONFIG's message.
    check: fn(&str) -> Result<(), String>,
}

fn check_bool(name: &str, v: &str) -> Result<(), String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "false" => Ok(()),
        _ => Err(format!(
            "Invalid value {v} for configuration {name}: Expected value to be either true or false"
        )),
    }
}

pub const TEXT_GROUP_CONFIGS: &[TextGroupConfigSpec] = &[
    TextGroupConfigSpec {
        name: "errors.deadletterqueue.copy.record.enable",
        type_name: "BOOLEAN",
        doc: "Whether a dead-lettered record's key and value are copied to the dead-letter topic.",
        default: "false",
        check: |v| check_bool("errors.deadletterqueue.copy.record.enable", v),
    },
    TextGroupConfigSpec {
        name: "errors.deadletterqueue.topic.name",
        type_name: "STRING",
        doc: "The dead-letter topic of the share group (empty: none).",
        default: "",
        check: |v| {
            if v.starts_with("__") {
                Err("errors.deadletterqueue.topic.name cannot start with '__'.".into())
            } else {
                Ok(())
            }
        },
    },
    TextGroupConfigSpec {
        name: "share.auto.offset.reset",
        type_name: "STRING",
        doc: "Where a share group starts consuming a partition it has no state for.",
        default: "latest",
        check: |v| {
            parse_auto_offset_reset(v).map(drop).ok_or_else(|| {
                format!("Invalid value `{v}` for configuration share.auto.offset.reset. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'.")
            })
        },
    },
    TextGroupConfigSpec {
        name: "share.isolation.level",
        type_name: "STRING",
        doc: "Whether a share group reads aborted transactional records (read_uncommitted) or not.",
        default: "read_uncommitted",
        check: |v| {
            match v.trim().to_ascii_lowercase().as_str() {
            "read_committed" | "read_uncommitted" => Ok(()),
            _ => Err(format!("Invalid value {v} for configuration share.isolation.level: String must be one of: read_committed, read_uncommitted")),
        }
        },
    },
    TextGroupConfigSpec {
        name: "share.renew.acknowledge.enable",
        type_name: "BOOLEAN",
        doc: "Whether members may renew acquisition locks (KIP-1222).",
        default: "true",
        check: |v| check_bool("share.renew.acknowledge.enable", v),
    },
];

/// Parses `share.auto.offset.reset` (None: not a valid value).
pub fn parse_auto_offset_reset(v: &str) -> Option<AutoReset> {
    let v = v.trim();
    match v.to_ascii_lowercase().as_str() {
        "earliest" => return Some(AutoReset::Earliest),
        "latest" => return Some(AutoReset::Latest),
        _ => {}
    }
    let d = v.strip_prefix("by_duration:")?;
    parse_iso_duration_ms(d.trim()).map(AutoReset::ByDurationMs)
}

/// `share.auto.offset.reset`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoReset {
    Earliest,
    Latest,
    ByDurationMs(i64),
}

/// A non-negative ISO-8601 duration `PnDTnHnMn.nS` (Java's `Duration.parse`), in ms.
fn parse_iso_duration_ms(s: &str) -> Option<i64> {
    let s = s.strip_prefix('P').or_else(|| s.strip_prefix('p'))?;
    let (days, time) = match s.find(['T', 't']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut ms: f64 = 0.0;
    let mut any = false;
    if !days.is_empty() {
        let d = days.strip_suffix(['D', 'd'])?;
        ms += d.parse::<f64>().ok()? * 86_400_000.0;
        any = true;
    }
    if let Some(mut t) = time {
        if t.is_empty() {
            return None;
        }
        for (unit, scale) in [('H', 3_600_000.0), ('M', 60_000.0), ('S', 1000.0)] {
            if let Some(i) = t.find([unit, unit.to_ascii_lowercase()]) {
                ms += t[..i].parse::<f64>().ok()? * scale;
                t = &t[i + 1..];
                any = true;
            }
        }
        if !t.is_empty() {
            return None;
        }
    }
    (any && ms >= 0.0 && ms.is_finite()).then_some(ms as i64)
}

/// Kafka's group keys Strom does not apply: known names, refused with INVALID_CONFIG.
const NOT_SERVED_PREFIXES: &[&str] = &["share.", "streams.", "errors.deadletterqueue."];

pub fn text_spec(name: &str) -> Option<&'static TextGroupConfigSpec> {
    TEXT_GROUP_CONFIGS.iter().find(|s| s.name == name)
}

/// A text key's value for a group: its own setting, else the default.
pub fn text_value<'a>(name: &str, overrides: &'a BTreeMap<String, String>) -> &'a str {
    match overrides.get(name) {
        Some(v) => v.trim(),
        None => text_spec(name).map_or("", |s| s.default),
    }
}

pub fn spec(name: &str) -> Option<&'static GroupConfigSpec> {
    GROUP_CONFIGS.iter().find(|s| s.name == name)
}

/// Checks a group's configs after a change (`configs`: every key it would set), as Kafka's
/// `GroupConfig.validate`: known names, INT values, the broker's bounds. The error is
/// INVALID_CONFIG's message.
pub fn validate(configs: &BTreeMap<String, String>, broker: &GroupConfig) -> Result<(), String> {
    for (name, value) in configs {
        if let Some(t) = text_spec(name) {
            (t.check)(value)?;
            continue;
        }
        let Some(spec) = spec(name) else {
            if NOT_SERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
                return Err(format!(
                    "Group config {name} is a share-group or streams-group setting Strom does not apply."
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

/// What a share group runs with (its int keys over the broker's): session timeout (ms),
/// heartbeat interval (ms), lock duration (ms), delivery count limit, records in flight.
pub fn share_ints(
    overrides: &BTreeMap<String, String>,
    broker: &GroupConfig,
) -> (u64, i32, i64, i16, i64) {
    let get = |name: &str| spec(name).map_or(0, |s| effective(s, overrides, broker));
    // Kafka re-clamps a group's value to the broker's current bounds.
    let bounded = |name: &str| {
        let s = spec(name).expect("share key");
        let v = effective(s, overrides, broker);
        match (s.bounds)(broker) {
            (Some(min), Some(max)) if min <= max => v.clamp(min, max),
            _ => v,
        }
    };
    (
        get("share.session.timeout.ms").max(1) as u64,
        get("share.heartbeat.interval.ms").clamp(1, i64::from(i32::MAX)) as i32,
        bounded("share.record.lock.duration.ms").max(1000),
        bounded("share.delivery.count.limit").clamp(2, i64::from(i16::MAX)) as i16,
        bounded("share.partition.max.record.locks").max(1),
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
        assert!(validate(&configs(&[("share.record.lock.duration.ms", "30000")]), &g).is_ok());
        assert_eq!(
            validate(&configs(&[("share.record.lock.duration.ms", "70000")]), &g),
            Err(
                "share.record.lock.duration.ms must be in the range 15000 to 60000 inclusive."
                    .into()
            )
        );
        assert!(validate(&configs(&[("share.assignment.interval.ms", "1000")]), &g).is_err());
        assert!(validate(&configs(&[("share.auto.offset.reset", "earliest")]), &g).is_ok());
        assert!(validate(
            &configs(&[("share.auto.offset.reset", "by_duration:PT1H30M")]),
            &g
        )
        .is_ok());
        assert!(validate(
            &configs(&[("share.auto.offset.reset", "by_duration:P1DT2.5S")]),
            &g
        )
        .is_ok());
        assert!(validate(
            &configs(&[("share.auto.offset.reset", "by_duration:PT")]),
            &g
        )
        .is_err());
        assert!(validate(&configs(&[("share.auto.offset.reset", "none")]), &g).is_err());
        assert_eq!(
            parse_auto_offset_reset("by_duration:PT1M"),
            Some(AutoReset::ByDurationMs(60_000))
        );
        assert!(validate(&configs(&[("share.isolation.level", "read_committed")]), &g).is_ok());
        assert!(validate(
            &configs(&[("errors.deadletterqueue.topic.name", "__x")]),
            &g
        )
        .is_err());
        assert!(validate(
            &configs(&[("errors.deadletterqueue.copy.record.enable", "yes")]),
            &g
        )
        .is_err());
        assert_eq!(
            validate(
                &configs(&[
                    ("share.heartbeat.interval.ms", "15000"),
                    ("share.session.timeout.ms", "45000")
                ]),
                &g
            ),
            Ok(())
        );
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
