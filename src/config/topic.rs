//! Topic-level configuration keys (Kafka's names), their broker-level defaults, validation,
//! and resolution into the log layer's typed [`LogConfig`].

use std::collections::BTreeMap;

use crate::config::BrokerConfig;
use crate::log::LogConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Integer within [min, max].
    Long {
        min: i64,
        max: i64,
    },
    Bool,
    /// One of the listed strings (case-sensitive like Kafka).
    Enum(&'static [&'static str]),
    /// Comma-separated list of the listed strings.
    List(&'static [&'static str]),
    /// `*` or a comma-separated list of `partition:broker` (Kafka's throttled-replica lists).
    Replicas,
}

#[derive(Debug, Clone, Copy)]
pub struct TopicConfigSpec {
    pub name: &'static str,
    /// The broker key that sets the default, as in Kafka.
    pub broker_key: Option<&'static str>,
    pub kind: Kind,
    pub default: &'static str,
    /// Kafka's config type name for DescribeConfigs v3+ (`INT`, `LONG`, `STRING`, ...).
    pub type_name: &'static str,
    pub doc: &'static str,
}

const LONG_MAX: i64 = i64::MAX;
const INT_MAX: i64 = i32::MAX as i64;

pub const TOPIC_CONFIGS: &[TopicConfigSpec] = &[
    TopicConfigSpec { name: "cleanup.policy", broker_key: Some("log.cleanup.policy"), kind: Kind::List(&["delete", "compact"]), default: "delete", type_name: "LIST", doc: "Retention policy: delete old segments. 'compact' is accepted; compaction itself is not performed yet (all records are kept)." },
    TopicConfigSpec { name: "compression.type", broker_key: Some("compression.type"), kind: Kind::Enum(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]), default: "producer", type_name: "STRING", doc: "Batches are stored as the producer compressed them; only 'producer' is honoured exactly (others are accepted, recompression is not done yet)." },
    TopicConfigSpec { name: "delete.retention.ms", broker_key: Some("log.cleaner.delete.retention.ms"), kind: Kind::Long { min: 0, max: LONG_MAX }, default: "86400000", type_name: "LONG", doc: "Tombstone retention for compacted topics." },
    TopicConfigSpec { name: "errors.deadletterqueue.group.enable", broker_key: None, kind: Kind::Bool, default: "false", type_name: "BOOLEAN", doc: "Whether share groups may use this topic as their dead-letter topic (KIP-1191)." },
    TopicConfigSpec { name: "file.delete.delay.ms", broker_key: Some("log.segment.delete.delay.ms"), kind: Kind::Long { min: 0, max: LONG_MAX }, default: "60000", type_name: "LONG", doc: "Delay before deleting a segment file (Strom deletes at once; open readers keep their file handle)." },
    TopicConfigSpec { name: "flush.messages", broker_key: None, kind: Kind::Long { min: 1, max: LONG_MAX }, default: "9223372036854775807", type_name: "LONG", doc: "Fsync after this many messages, for any acks." },
    TopicConfigSpec { name: "flush.ms", broker_key: None, kind: Kind::Long { min: 0, max: LONG_MAX }, default: "9223372036854775807", type_name: "LONG", doc: "Fsync at least this often (the broker-wide log.flush.interval.ms drives the timer)." },
    TopicConfigSpec { name: "follower.replication.throttled.replicas", broker_key: None, kind: Kind::Replicas, default: "", type_name: "LIST", doc: "Replicas (partition:broker, or * for all) that fetch at most their broker's follower.replication.throttled.rate while out of sync." },
    TopicConfigSpec { name: "index.interval.bytes", broker_key: Some("log.index.interval.bytes"), kind: Kind::Long { min: 0, max: INT_MAX }, default: "4096", type_name: "INT", doc: "Bytes between offset-index entries." },
    TopicConfigSpec { name: "leader.replication.throttled.replicas", broker_key: None, kind: Kind::Replicas, default: "", type_name: "LIST", doc: "Replicas (partition:broker, or * for all) whose leader limits what it serves to out-of-sync followers to its leader.replication.throttled.rate." },
    TopicConfigSpec { name: "max.compaction.lag.ms", broker_key: Some("log.cleaner.max.compaction.lag.ms"), kind: Kind::Long { min: 1, max: LONG_MAX }, default: "9223372036854775807", type_name: "LONG", doc: "Compaction lag bound (compaction not performed yet)." },
    TopicConfigSpec { name: "max.message.bytes", broker_key: Some("message.max.bytes"), kind: Kind::Long { min: 0, max: INT_MAX }, default: "1048588", type_name: "INT", doc: "Largest record batch accepted." },
    TopicConfigSpec { name: "message.timestamp.type", broker_key: Some("log.message.timestamp.type"), kind: Kind::Enum(&["CreateTime", "LogAppendTime"]), default: "CreateTime", type_name: "STRING", doc: "CreateTime keeps producer timestamps; LogAppendTime stamps batches with broker time." },
    TopicConfigSpec { name: "min.cleanable.dirty.ratio", broker_key: Some("log.cleaner.min.cleanable.ratio"), kind: Kind::Enum(&["0.5"]), default: "0.5", type_name: "DOUBLE", doc: "Compaction trigger (compaction not performed yet)." },
    TopicConfigSpec { name: "min.compaction.lag.ms", broker_key: Some("log.cleaner.min.compaction.lag.ms"), kind: Kind::Long { min: 0, max: LONG_MAX }, default: "0", type_name: "LONG", doc: "Compaction lag (compaction not performed yet)." },
    TopicConfigSpec { name: "min.insync.replicas", broker_key: Some("min.insync.replicas"), kind: Kind::Long { min: 1, max: INT_MAX }, default: "1", type_name: "INT", doc: "acks=all produce fails with NOT_ENOUGH_REPLICAS when fewer replicas are in sync." },
    TopicConfigSpec { name: "preallocate", broker_key: Some("log.preallocate"), kind: Kind::Bool, default: "false", type_name: "BOOLEAN", doc: "Segment preallocation (not done; files grow as written)." },
    TopicConfigSpec { name: "retention.bytes", broker_key: Some("log.retention.bytes"), kind: Kind::Long { min: -1, max: LONG_MAX }, default: "-1", type_name: "LONG", doc: "Delete oldest segments while the partition is larger; -1 = no size limit." },
    TopicConfigSpec { name: "retention.ms", broker_key: None, kind: Kind::Long { min: -1, max: LONG_MAX }, default: "604800000", type_name: "LONG", doc: "Delete segments whose newest record is older; -1 = keep forever." },
    TopicConfigSpec { name: "segment.bytes", broker_key: Some("log.segment.bytes"), kind: Kind::Long { min: 14, max: INT_MAX }, default: "1073741824", type_name: "INT", doc: "Roll the active segment at this size." },
    TopicConfigSpec { name: "segment.index.bytes", broker_key: Some("log.index.size.max.bytes"), kind: Kind::Long { min: 4, max: INT_MAX }, default: "10485760", type_name: "INT", doc: "Index size bound (indexes are sized to their segment)." },
    TopicConfigSpec { name: "segment.ms", broker_key: None, kind: Kind::Long { min: 1, max: LONG_MAX }, default: "604800000", type_name: "LONG", doc: "Roll the active segment after this long." },
    TopicConfigSpec { name: "unclean.leader.election.enable", broker_key: Some("unclean.leader.election.enable"), kind: Kind::Bool, default: "false", type_name: "BOOLEAN", doc: "Single node: no effect." },
];

/// Whether a throttled-replica list (`leader.replication.throttled.replicas` /
/// `follower.replication.throttled.replicas`) names `partition` on `broker`.
pub fn throttles(list: Option<&String>, partition: i32, broker: i32) -> bool {
    let Some(list) = list.map(|l| l.trim()) else {
        return false;
    };
    list == "*"
        || list.split(',').any(|item| {
            item.split_once(':').is_some_and(|(p, b)| {
                p.trim().parse::<i32>() == Ok(partition) && b.trim().parse::<i32>() == Ok(broker)
            })
        })
}

pub fn spec(name: &str) -> Option<&'static TopicConfigSpec> {
    TOPIC_CONFIGS.iter().find(|s| s.name == name)
}

/// Checks `value` against the key's type and range.
pub fn validate(spec: &TopicConfigSpec, value: &str) -> Result<(), String> {
    let v = value.trim();
    match spec.kind {
        Kind::Long { min, max } => {
            let n: i64 = v.parse().map_err(|_| format!("'{v}' is not an integer"))?;
            if n < min || n > max {
                return Err(format!("{n} is outside [{min}, {max}]"));
            }
        }
        Kind::Bool => {
            if !matches!(v.to_ascii_lowercase().as_str(), "true" | "false") {
                return Err(format!("'{v}' is not true or false"));
            }
        }
        Kind::Enum(allowed) => {
            // min.cleanable.dirty.ratio is a double in Kafka.
            if spec.type_name == "DOUBLE" {
                let d: f64 = v.parse().map_err(|_| format!("'{v}' is not a number"))?;
                if !(0.0..=1.0).contains(&d) {
                    return Err(format!("{d} is outside [0, 1]"));
                }
            } else if !allowed.contains(&v) {
                return Err(format!("'{v}' is not one of {allowed:?}"));
            }
        }
        Kind::Replicas => {
            if v != "*" && !v.is_empty() {
                for item in v.split(',').map(str::trim) {
                    let ok = item.split_once(':').is_some_and(|(p, b)| {
                        p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
                    });
                    if !ok {
                        return Err(format!(
                            "'{item}' is not [partitionId]:[brokerId] (the list must be * or such entries)"
                        ));
                    }
                }
            }
        }
        Kind::List(allowed) => {
            let items: Vec<&str> = v.split(',').map(str::trim).collect();
            if items.is_empty() || items.iter().any(|i| !allowed.contains(i)) {
                return Err(format!("'{v}' must be a list of {allowed:?}"));
            }
        }
    }
    Ok(())
}

/// Validates a set of topic overrides; returns the first problem as (key, reason).
pub fn validate_all<'a, I: IntoIterator<Item = (&'a str, &'a str)>>(
    items: I,
) -> Result<(), (String, String)> {
    for (k, v) in items {
        let s =
            spec(k).ok_or_else(|| (k.to_string(), format!("Unknown topic config name: {k}")))?;
        validate(s, v).map_err(|r| {
            (
                k.to_string(),
                format!("Invalid value {v} for configuration {k}: {r}"),
            )
        })?;
    }
    Ok(())
}

/// Where an effective topic config value comes from (DescribeConfigs `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    TopicOverride = 1,
    /// A dynamic config of this broker.
    DynamicBroker = 2,
    /// A cluster-wide dynamic config.
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
    /// A group's own setting (the GROUP resource).
    GroupConfig = 8,
}

/// The effective value of `name` for a topic with `overrides`, and its source.
pub fn effective(
    broker: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
    name: &str,
) -> Option<(String, Source)> {
    if let Some(v) = overrides.get(name) {
        return Some((v.clone(), Source::TopicOverride));
    }
    if let Some(v) = broker.topic_defaults.get(name) {
        return Some((v.clone(), Source::StaticBroker));
    }
    spec(name).map(|s| (s.default.to_string(), Source::Default))
}

/// Resolves the typed log settings of a topic.
pub fn resolve(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> LogConfig {
    let get = |name: &str| {
        effective(broker, overrides, name)
            .map(|(v, _)| v)
            .unwrap_or_default()
    };
    let long = |name: &str, dflt: i64| get(name).parse::<i64>().unwrap_or(dflt);
    let d = LogConfig::default();
    LogConfig {
        segment_bytes: long("segment.bytes", d.segment_bytes as i64).max(14) as u64,
        segment_ms: long("segment.ms", d.segment_ms),
        retention_ms: long("retention.ms", d.retention_ms),
        retention_bytes: long("retention.bytes", d.retention_bytes),
        max_message_bytes: long("max.message.bytes", d.max_message_bytes as i64).max(0) as usize,
        log_append_time: get("message.timestamp.type") == "LogAppendTime",
        index_interval_bytes: long("index.interval.bytes", d.index_interval_bytes as i64).max(0)
            as u64,
        flush_messages: long("flush.messages", d.flush_messages),
        delete_retention_enabled: get("cleanup.policy")
            .split(',')
            .any(|p| p.trim() == "delete"),
        compact: get("cleanup.policy")
            .split(',')
            .any(|p| p.trim() == "compact"),
        min_insync_replicas: long("min.insync.replicas", 1).clamp(1, i64::from(i32::MAX)) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_and_resolution() {
        assert!(validate_all([("retention.ms", "1000")]).is_ok());
        assert!(validate_all([("retention.ms", "abc")]).is_err());
        assert!(validate_all([("cleanup.policy", "delete,compact")]).is_ok());
        assert!(validate_all([("cleanup.policy", "nope")]).is_err());
        assert!(validate_all([("no.such", "1")]).is_err());
        let broker = BrokerConfig::default();
        let mut o = BTreeMap::new();
        o.insert("segment.bytes".to_string(), "2048".to_string());
        o.insert(
            "message.timestamp.type".to_string(),
            "LogAppendTime".to_string(),
        );
        let lc = resolve(&broker, &o);
        assert_eq!(lc.segment_bytes, 2048);
        assert!(lc.log_append_time);
        assert_eq!(lc.retention_ms, 604_800_000);
        assert_eq!(
            effective(&broker, &o, "segment.bytes").map(|x| x.1),
            Some(Source::TopicOverride)
        );
        assert_eq!(
            effective(&broker, &o, "retention.ms").map(|x| x.1),
            Some(Source::Default)
        );
    }

    #[test]
    fn throttled_replica_lists() {
        let spec = spec("leader.replication.throttled.replicas").expect("spec");
        for ok in ["", "*", "0:1", "0:1, 1:2,2:3"] {
            assert!(validate(spec, ok).is_ok(), "{ok}");
        }
        for bad in ["1", "a:1", "0:1,", "0:-1", "**"] {
            assert!(validate(spec, bad).is_err(), "{bad}");
        }
        let list = |v: &str| Some(v.to_string());
        assert!(throttles(list("*").as_ref(), 7, 3));
        assert!(throttles(list("0:1, 7:3").as_ref(), 7, 3));
        assert!(!throttles(list("0:1,7:2").as_ref(), 7, 3));
        assert!(!throttles(list("").as_ref(), 0, 1));
        assert!(!throttles(None, 0, 1));
    }
}
