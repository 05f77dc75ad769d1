//! The broker keys Strom understands, one entry each: name, Kafka type, default, doc, how a
//! value is parsed into [`BrokerConfig`] and how DescribeConfigs reads it back. Parsing
//! (`BrokerConfig::set`), the defaults (`BrokerConfig::default`) and DescribeConfigs
//! (`describe::broker_values`) all come from [`BROKER_KEYS`], so adding a key is one entry.
//!
//! Not listed here: the broker keys that set a topic config's default (`log.segment.bytes`,
//! `message.max.bytes`, ...), which come from `topic::TOPIC_CONFIGS`, and the Kafka keys that
//! are accepted but configure nothing (`IGNORED_KEYS`).

use std::path::PathBuf;

use crate::config::group::MigrationPolicy;
use crate::config::{invalid, listeners, parse_bool, parse_num, scaled_ms, topic};
use crate::config::{BrokerConfig, ConfigError};

type Setter = fn(&mut BrokerConfig, &str, &str) -> Result<(), ConfigError>;
type Getter = fn(&BrokerConfig) -> Option<String>;

/// One broker configuration key.
pub struct BrokerKey {
    pub name: &'static str,
    /// Kafka's config type name for DescribeConfigs v3+ (`INT`, `LONG`, `STRING`, ...).
    pub type_name: &'static str,
    /// Applied through `set` by `BrokerConfig::default()`. None: the key is unset by default,
    /// as in Kafka (its effect then comes from another key or a topic config's default).
    pub default: Option<&'static str>,
    pub doc: &'static str,
    /// Parses `value` for key `name` (an alias may differ from `self.name`) into the config.
    pub set: Setter,
    /// The value DescribeConfigs reports (None: unset and without a default).
    pub get: Getter,
}

const I32_MAX: i64 = i32::MAX as i64;

fn some(v: impl ToString) -> Option<String> {
    Some(v.to_string())
}

/// The value the key was explicitly set to, if any.
fn raw(c: &BrokerConfig, key: &str) -> Option<String> {
    c.explicit.get(key).cloned()
}

/// Aliases: `log.dir` is `log.dirs`.
pub fn canonical(key: &str) -> &str {
    match key {
        "log.dir" => "log.dirs",
        other => other,
    }
}

pub fn key(name: &str) -> Option<&'static BrokerKey> {
    let name = canonical(name);
    BROKER_KEYS.iter().find(|k| k.name == name)
}

/// A key of [`crate::config::security::LISTENER_KEYS`], broker-wide (a listener may override
/// it); checked per listener once every key is read.
fn set_listener_scoped(c: &mut BrokerConfig, key: &str, v: &str) -> Result<(), ConfigError> {
    c.security.global.insert(key.to_string(), v.to_string());
    Ok(())
}

/// `log.retention.{hours,minutes,ms}`: Kafka's ms wins over minutes wins over hours.
fn set_retention(c: &mut BrokerConfig, key: &str, v: &str) -> Result<(), ConfigError> {
    let ms = scaled_ms(key, v)?;
    let rank = |k: &str| match k {
        "log.retention.ms" => 3,
        "log.retention.minutes" => 2,
        _ => 1,
    };
    let current = c
        .explicit
        .keys()
        .filter(|k| {
            k.starts_with("log.retention.")
                && *k != "log.retention.bytes"
                && *k != "log.retention.check.interval.ms"
        })
        .map(|k| rank(k))
        .max()
        .unwrap_or(0);
    if rank(key) >= current {
        c.topic_defaults.insert("retention.ms", ms.to_string());
    }
    Ok(())
}

/// `log.roll.{hours,ms}`: ms wins over hours.
fn set_roll(c: &mut BrokerConfig, key: &str, v: &str) -> Result<(), ConfigError> {
    let ms = scaled_ms(key, v)?;
    if key == "log.roll.ms" || !c.explicit.contains_key("log.roll.ms") {
        c.topic_defaults.insert("segment.ms", ms.to_string());
    }
    Ok(())
}

/// Kafka's rack-aware replica selector (KIP-392), the one `replica.selector.class` Strom serves.
const RACK_AWARE_SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

pub static BROKER_KEYS: &[BrokerKey] = &[
    BrokerKey {
        name: "node.id",
        type_name: "INT",
        default: Some("1"),
        doc: "this broker's id",
        set: |c, k, v| {
            c.node_id = parse_num(k, v, 0, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.node_id),
    },
    BrokerKey {
        name: "log.dirs",
        type_name: "STRING",
        default: Some("./data"),
        doc: "the data directory (one; `log.dir` is an alias)",
        set: |c, k, v| {
            let first = v.split(',').next().unwrap_or("").trim();
            if first.is_empty() {
                return Err(invalid(k, v, "must name a directory"));
            }
            if v.contains(',') {
                return Err(invalid(k, v, "Strom uses a single log directory"));
            }
            c.log_dir = PathBuf::from(first);
            Ok(())
        },
        get: |c| some(c.log_dir.display()),
    },
    BrokerKey {
        name: "listeners",
        type_name: "STRING",
        default: Some("PLAINTEXT://127.0.0.1:9092"),
        doc: "NAME://HOST:PORT list; one PLAINTEXT client listener so far, plus the controller's",
        set: |c, k, v| {
            let all = listeners::parse(k, v)?;
            // Provisional until every key is read (listeners::resolve): the PLAINTEXT entry,
            // else the first.
            let first = all
                .iter()
                .find(|l| l.name == "PLAINTEXT")
                .unwrap_or(&all[0]);
            c.listen = first.bind_addr().map_err(|e| invalid(k, v, e))?;
            c.client_listener_name = first.name.clone();
            c.listeners = v.to_string();
            if c.advertised_listeners.is_none() {
                c.advertised_host = c.listen.ip().to_string();
                c.advertised_port = c.listen.port();
            }
            Ok(())
        },
        get: |c| Some(c.listeners.clone()),
    },
    BrokerKey {
        name: "advertised.listeners",
        type_name: "STRING",
        // Derived from `listeners` when not set, as in Kafka.
        default: None,
        doc: "the address clients are told to use, by listener name (default: the listener)",
        set: |c, k, v| {
            let all = listeners::parse(k, v)?;
            // Provisional as for `listeners`: the entry of the client listener, else the first.
            let mine = all
                .iter()
                .find(|l| l.name == c.client_listener_name)
                .unwrap_or(&all[0]);
            c.advertised_host = mine.host.trim_matches(|c| c == '[' || c == ']').to_string();
            c.advertised_port = mine.port;
            c.advertised_listeners = Some(v.to_string());
            Ok(())
        },
        get: |c| {
            c.advertised_listeners.clone().or_else(|| {
                Some(format!(
                    "{}://{}:{}",
                    c.client_listener_name, c.advertised_host, c.advertised_port
                ))
            })
        },
    },
    BrokerKey {
        name: "listener.security.protocol.map",
        type_name: "STRING",
        default: None,
        doc: "NAME:PROTOCOL for listener names that are not protocol names",
        set: |c, k, v| {
            c.listener_protocols = listeners::parse_protocol_map(k, v)?;
            Ok(())
        },
        get: |c| raw(c, "listener.security.protocol.map"),
    },
    BrokerKey {
        name: "process.roles",
        type_name: "LIST",
        default: None,
        doc: "broker,controller (combined, the only mode so far; unset means the same)",
        set: |c, k, v| c.cluster.set_roles(k, v),
        get: |c| raw(c, "process.roles"),
    },
    BrokerKey {
        name: "controller.quorum.voters",
        type_name: "LIST",
        default: None,
        doc: "ID@HOST:PORT of each controller (every node; more than this one: a multi-node cluster)",
        set: |c, k, v| c.cluster.set_voters(k, v),
        get: |c| raw(c, "controller.quorum.voters"),
    },
    BrokerKey {
        name: "controller.quorum.bootstrap.servers",
        type_name: "LIST",
        default: None,
        doc: "HOST:PORT of controllers (KIP-853); more than one needs controller.quorum.voters too (no dynamic quorum)",
        set: |c, k, v| c.cluster.set_bootstrap_servers(k, v),
        get: |c| raw(c, "controller.quorum.bootstrap.servers"),
    },
    BrokerKey {
        name: "controller.listener.names",
        type_name: "LIST",
        default: None,
        doc: "names of the controller listeners",
        set: |c, _, v| {
            c.cluster.set_controller_listener_names(v);
            Ok(())
        },
        get: |c| raw(c, "controller.listener.names"),
    },
    BrokerKey {
        name: "strom.cluster.preview",
        type_name: "BOOLEAN",
        default: None,
        doc: "no effect: the multi-node cluster needed it while it was a preview; accepted so such configurations still start",
        set: |_, k, v| {
            parse_bool(k, v)?;
            Ok(())
        },
        get: |_| None,
    },
    BrokerKey {
        name: "broker.rack",
        type_name: "STRING",
        default: None,
        doc: "this broker's rack: replicas of a partition go to different racks",
        set: |c, _, v| {
            c.cluster.rack = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        },
        get: |c| c.cluster.rack.clone(),
    },
    BrokerKey {
        name: "replica.selector.class",
        type_name: "CLASS",
        default: None,
        doc: "org.apache.kafka.common.replica.RackAwareReplicaSelector: consumers with client.rack read from an in-sync replica in their rack (KIP-392); unset: from the leader",
        set: |c, k, v| {
            c.cluster.rack_aware_reads = match v {
                "" | "null" | "org.apache.kafka.common.replica.LeaderSelector" => false,
                RACK_AWARE_SELECTOR => true,
                _ => return Err(invalid(k, v, format!("Strom serves {RACK_AWARE_SELECTOR} (or none)"))),
            };
            Ok(())
        },
        get: |c| c.cluster.rack_aware_reads.then(|| RACK_AWARE_SELECTOR.to_string()),
    },
    BrokerKey {
        name: "leader.replication.throttled.rate",
        type_name: "LONG",
        default: Some("9223372036854775807"),
        doc: "bytes/s this broker serves as leader to out-of-sync followers of throttled replicas (topic config leader.replication.throttled.replicas); dynamic",
        set: |c, k, v| {
            c.cluster.leader_replication_throttled_rate = parse_num(k, v, 0, i64::MAX)? as u64;
            Ok(())
        },
        get: |c| some(c.cluster.leader_replication_throttled_rate),
    },
    BrokerKey {
        name: "follower.replication.throttled.rate",
        type_name: "LONG",
        default: Some("9223372036854775807"),
        doc: "bytes/s this broker fetches as an out-of-sync follower of throttled replicas (topic config follower.replication.throttled.replicas); dynamic",
        set: |c, k, v| {
            c.cluster.follower_replication_throttled_rate = parse_num(k, v, 0, i64::MAX)? as u64;
            Ok(())
        },
        get: |c| some(c.cluster.follower_replication_throttled_rate),
    },
    BrokerKey {
        name: "replica.lag.time.max.ms",
        type_name: "LONG",
        default: Some("30000"),
        doc: "a follower not caught up for this long leaves the ISR",
        set: |c, k, v| {
            c.cluster.replica_lag_time_max_ms = parse_num(k, v, 1, i64::from(i32::MAX))? as u64;
            Ok(())
        },
        get: |c| some(c.cluster.replica_lag_time_max_ms),
    },
    BrokerKey {
        name: "broker.session.timeout.ms",
        type_name: "INT",
        default: Some("9000"),
        doc: "the controller fences a broker silent this long and moves its leaderships",
        set: |c, k, v| {
            c.cluster.broker_session_timeout_ms =
                parse_num(k, v, 1, i64::from(i32::MAX))? as u64;
            Ok(())
        },
        get: |c| some(c.cluster.broker_session_timeout_ms),
    },
    BrokerKey {
        name: "auto.leader.rebalance.enable",
        type_name: "BOOLEAN",
        default: Some("true"),
        doc: "the controller moves leaderships back to preferred replicas periodically",
        set: |c, k, v| {
            c.cluster.auto_leader_rebalance = parse_bool(k, v)?;
            Ok(())
        },
        get: |c| some(c.cluster.auto_leader_rebalance),
    },
    BrokerKey {
        name: "leader.imbalance.check.interval.seconds",
        type_name: "LONG",
        default: Some("300"),
        doc: "how often the controller checks for leaderships off their preferred replica",
        set: |c, k, v| {
            c.cluster.leader_imbalance_check_interval_s = parse_num(k, v, 1, 86_400 * 365)? as u64;
            Ok(())
        },
        get: |c| some(c.cluster.leader_imbalance_check_interval_s),
    },
    BrokerKey {
        name: "broker.heartbeat.interval.ms",
        type_name: "INT",
        default: Some("2000"),
        doc: "how often a broker tells the controller it is alive",
        set: |c, k, v| {
            c.cluster.broker_heartbeat_interval_ms =
                parse_num(k, v, 1, i64::from(i32::MAX))? as u64;
            Ok(())
        },
        get: |c| some(c.cluster.broker_heartbeat_interval_ms),
    },
    BrokerKey {
        name: "num.partitions",
        type_name: "INT",
        default: Some("1"),
        doc: "partitions of auto-created topics and of CreateTopics with -1",
        set: |c, k, v| {
            c.num_partitions = parse_num(k, v, 1, 1_000_000)? as i32;
            Ok(())
        },
        get: |c| some(c.num_partitions),
    },
    BrokerKey {
        name: "default.replication.factor",
        type_name: "INT",
        default: Some("1"),
        doc: "replication factor of new topics",
        set: |c, k, v| {
            c.default_replication_factor = parse_num(k, v, 1, i64::from(i16::MAX))? as i16;
            Ok(())
        },
        get: |c| some(c.default_replication_factor),
    },
    BrokerKey {
        name: "auto.create.topics.enable",
        type_name: "BOOLEAN",
        default: Some("true"),
        doc: "Metadata requests create unknown topics (at most 100 per request)",
        set: |c, k, v| {
            c.auto_create_topics_enable = parse_bool(k, v)?;
            Ok(())
        },
        get: |c| some(c.auto_create_topics_enable),
    },
    BrokerKey {
        name: "delete.topic.enable",
        type_name: "BOOLEAN",
        default: Some("true"),
        doc: "allow DeleteTopics",
        set: |c, k, v| {
            c.delete_topic_enable = parse_bool(k, v)?;
            Ok(())
        },
        get: |c| some(c.delete_topic_enable),
    },
    BrokerKey {
        name: "strom.max.partitions",
        type_name: "INT",
        default: Some("10000"),
        doc: "partitions the broker holds in all, internal topics included; creations past it get POLICY_VIOLATION",
        set: |c, k, v| {
            c.max_partitions = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.max_partitions),
    },
    BrokerKey {
        name: "socket.request.max.bytes",
        type_name: "INT",
        default: Some("104857600"),
        doc: "largest request frame, checked before allocating",
        set: |c, k, v| {
            c.socket_request_max_bytes = parse_num(k, v, 1024, I32_MAX)? as usize;
            Ok(())
        },
        get: |c| some(c.socket_request_max_bytes),
    },
    BrokerKey {
        name: "queued.max.request.bytes",
        type_name: "LONG",
        default: Some("268435456"),
        doc: "request bytes being received or handled across all connections (-1: 1 GiB)",
        set: |c, k, v| {
            let n = parse_num(k, v, -1, i64::MAX)?;
            c.queued_max_request_bytes = if n < 0 { 1 << 30 } else { n as usize };
            Ok(())
        },
        get: |c| some(c.queued_max_request_bytes),
    },
    BrokerKey {
        name: "max.connections",
        type_name: "INT",
        default: Some("10000"),
        doc: "connections beyond this are refused",
        set: |c, k, v| {
            c.max_connections = parse_num(k, v, 1, I32_MAX)? as usize;
            Ok(())
        },
        get: |c| some(c.max_connections),
    },
    BrokerKey {
        name: "socket.listen.backlog.size",
        type_name: "INT",
        default: Some("1024"),
        doc: "pending connections the kernel queues",
        set: |c, k, v| {
            c.listen_backlog = parse_num(k, v, 1, I32_MAX)? as u32;
            Ok(())
        },
        get: |c| some(c.listen_backlog),
    },
    BrokerKey {
        name: "connections.max.idle.ms",
        type_name: "LONG",
        default: Some("600000"),
        doc: "idle (or half-sent) connections are closed",
        set: |c, k, v| {
            c.connections_max_idle_ms = parse_num(k, v, 1, i64::MAX)? as u64;
            Ok(())
        },
        get: |c| some(c.connections_max_idle_ms),
    },
    BrokerKey {
        name: "strom.request.receive.timeout.ms",
        type_name: "LONG",
        default: Some("60000"),
        doc: "a request must arrive whole within this of its size being read",
        set: |c, k, v| {
            c.request_receive_timeout_ms = parse_num(k, v, 1, i64::MAX)? as u64;
            Ok(())
        },
        get: |c| some(c.request_receive_timeout_ms),
    },
    BrokerKey {
        name: "strom.log.format",
        type_name: "STRING",
        default: Some("text"),
        doc: "Log lines on stderr: text (human-readable) or json (one JSON object per line)",
        set: |c, k, v| {
            c.log_json = match v {
                "text" => false,
                "json" => true,
                _ => return Err(invalid(k, v, "expected text or json")),
            };
            Ok(())
        },
        get: |c| Some(if c.log_json { "json" } else { "text" }.to_string()),
    },
    BrokerKey {
        name: "strom.admin.listener",
        type_name: "STRING",
        default: Some("127.0.0.1:9644"),
        doc: "HTTP admin listener (/metrics, /health/live, /health/ready); empty disables it",
        set: |c, k, v| {
            if !v.is_empty() {
                v.parse::<std::net::SocketAddr>()
                    .map_err(|e| invalid(k, v, e.to_string()))?;
            }
            c.admin_listener = v.to_string();
            Ok(())
        },
        get: |c| Some(c.admin_listener.clone()),
    },
    BrokerKey {
        name: "strom.max.inflight.requests.per.connection",
        type_name: "INT",
        default: Some("1000"),
        doc: "pipelined requests per connection",
        set: |c, k, v| {
            c.max_inflight_requests_per_connection = parse_num(k, v, 1, 100_000)? as usize;
            Ok(())
        },
        get: |c| some(c.max_inflight_requests_per_connection),
    },
    BrokerKey {
        name: "strom.connection.max.queued.bytes",
        type_name: "LONG",
        default: Some("16777216"),
        doc: "request and queued response bytes one connection may hold",
        set: |c, k, v| {
            c.connection_max_queued_bytes = parse_num(k, v, 1024, 1 << 40)? as usize;
            Ok(())
        },
        get: |c| some(c.connection_max_queued_bytes),
    },
    BrokerKey {
        name: "fetch.max.bytes",
        type_name: "INT",
        default: Some("57671680"),
        doc: "cap on one fetch response",
        set: |c, k, v| {
            c.fetch_max_bytes = parse_num(k, v, 1024, I32_MAX)? as usize;
            Ok(())
        },
        get: |c| some(c.fetch_max_bytes),
    },
    BrokerKey {
        name: "log.retention.check.interval.ms",
        type_name: "LONG",
        default: Some("300000"),
        doc: "how often retention runs",
        set: |c, k, v| {
            c.retention_check_interval_ms = parse_num(k, v, 1, i64::MAX)? as u64;
            Ok(())
        },
        get: |c| some(c.retention_check_interval_ms),
    },
    BrokerKey {
        name: "log.flush.interval.ms",
        type_name: "LONG",
        // Unset: fsync only on demand (BrokerConfig's base value, i64::MAX).
        default: None,
        doc: "fsync every partition at least this often (topic default of flush.ms)",
        set: |c, k, v| {
            c.flush_interval_ms = parse_num(k, v, 0, i64::MAX)?;
            c.topic_defaults
                .insert("flush.ms", c.flush_interval_ms.to_string());
            Ok(())
        },
        get: |c| raw(c, "log.flush.interval.ms"),
    },
    BrokerKey {
        name: "log.flush.interval.messages",
        type_name: "LONG",
        default: None,
        doc: "fsync after this many messages, for any acks (topic default of flush.messages)",
        set: |c, k, v| {
            let spec = topic::spec("flush.messages").ok_or_else(|| invalid(k, v, "no spec"))?;
            topic::validate(spec, v).map_err(|r| invalid(k, v, r))?;
            c.topic_defaults.insert("flush.messages", v.to_string());
            Ok(())
        },
        get: |c| c.topic_default("flush.messages"),
    },
    BrokerKey {
        name: "log.retention.ms",
        type_name: "LONG",
        default: None,
        doc: "delete segments older than this (-1: keep); wins over minutes and hours",
        set: set_retention,
        get: |c| raw(c, "log.retention.ms"),
    },
    BrokerKey {
        name: "log.retention.minutes",
        type_name: "INT",
        default: None,
        doc: "delete segments older than this; wins over hours",
        set: set_retention,
        get: |c| raw(c, "log.retention.minutes"),
    },
    BrokerKey {
        name: "log.retention.hours",
        type_name: "INT",
        // Described as 168 when unset (Kafka's default); the topic default of retention.ms
        // says the same, so nothing is applied.
        default: None,
        doc: "delete segments older than this (default 168)",
        set: set_retention,
        get: |c| raw(c, "log.retention.hours").or_else(|| some(168)),
    },
    BrokerKey {
        name: "log.roll.ms",
        type_name: "LONG",
        default: None,
        doc: "roll segments at this age; wins over hours",
        set: set_roll,
        get: |c| raw(c, "log.roll.ms"),
    },
    BrokerKey {
        name: "log.roll.hours",
        type_name: "INT",
        default: None,
        doc: "roll segments at this age (default 168)",
        set: set_roll,
        get: |c| raw(c, "log.roll.hours").or_else(|| some(168)),
    },
    BrokerKey {
        name: "strom.acks.all.fsync",
        type_name: "BOOLEAN",
        default: Some("true"),
        doc: "acks=all is answered only after fsync (group commit)",
        set: |c, k, v| {
            c.acks_all_fsync = parse_bool(k, v)?;
            Ok(())
        },
        get: |c| some(c.acks_all_fsync),
    },
    BrokerKey {
        name: "producer.id.expiration.ms",
        type_name: "INT",
        default: Some("86400000"),
        doc: "idle idempotent-producer state expires",
        set: |c, k, v| {
            c.producer_id_expiration_ms = parse_num(k, v, 1, i64::MAX)?;
            Ok(())
        },
        get: |c| some(c.producer_id_expiration_ms),
    },
    BrokerKey {
        name: "group.min.session.timeout.ms",
        type_name: "INT",
        default: Some("6000"),
        doc: "smallest classic session timeout allowed",
        set: |c, k, v| {
            c.groups.session_timeout_min_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.session_timeout_min_ms),
    },
    BrokerKey {
        name: "group.max.session.timeout.ms",
        type_name: "INT",
        default: Some("1800000"),
        doc: "largest classic session timeout allowed",
        set: |c, k, v| {
            c.groups.session_timeout_max_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.session_timeout_max_ms),
    },
    BrokerKey {
        name: "group.max.size",
        type_name: "INT",
        default: Some("10000"),
        doc: "members per classic group",
        set: |c, k, v| {
            c.groups.max_size = parse_num(k, v, 1, I32_MAX)? as usize;
            Ok(())
        },
        get: |c| some(c.groups.max_size),
    },
    BrokerKey {
        name: "group.initial.rebalance.delay.ms",
        type_name: "INT",
        default: Some("3000"),
        doc: "a new classic group waits this long for more members",
        set: |c, k, v| {
            c.groups.initial_rebalance_delay_ms = parse_num(k, v, 0, I32_MAX)? as u64;
            Ok(())
        },
        get: |c| some(c.groups.initial_rebalance_delay_ms),
    },
    BrokerKey {
        name: "group.consumer.session.timeout.ms",
        type_name: "INT",
        default: Some("45000"),
        doc: "session timeout of KIP-848 group members",
        set: |c, k, v| {
            c.groups.consumer_session_timeout_ms = parse_num(k, v, 1, I32_MAX)? as u64;
            Ok(())
        },
        get: |c| some(c.groups.consumer_session_timeout_ms),
    },
    BrokerKey {
        name: "group.consumer.heartbeat.interval.ms",
        type_name: "INT",
        default: Some("5000"),
        doc: "heartbeat interval of KIP-848 group members",
        set: |c, k, v| {
            c.groups.consumer_heartbeat_interval_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.consumer_heartbeat_interval_ms),
    },
    BrokerKey {
        name: "group.consumer.min.session.timeout.ms",
        type_name: "INT",
        default: Some("45000"),
        doc: "smallest consumer.session.timeout.ms a group may set",
        set: |c, k, v| {
            c.groups.consumer_session_timeout_min_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.consumer_session_timeout_min_ms),
    },
    BrokerKey {
        name: "group.consumer.max.session.timeout.ms",
        type_name: "INT",
        default: Some("60000"),
        doc: "largest consumer.session.timeout.ms a group may set",
        set: |c, k, v| {
            c.groups.consumer_session_timeout_max_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.consumer_session_timeout_max_ms),
    },
    BrokerKey {
        name: "group.consumer.min.heartbeat.interval.ms",
        type_name: "INT",
        default: Some("5000"),
        doc: "smallest consumer.heartbeat.interval.ms a group may set",
        set: |c, k, v| {
            c.groups.consumer_heartbeat_interval_min_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.consumer_heartbeat_interval_min_ms),
    },
    BrokerKey {
        name: "group.consumer.max.heartbeat.interval.ms",
        type_name: "INT",
        default: Some("15000"),
        doc: "largest consumer.heartbeat.interval.ms a group may set",
        set: |c, k, v| {
            c.groups.consumer_heartbeat_interval_max_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.consumer_heartbeat_interval_max_ms),
    },
    BrokerKey {
        name: "group.consumer.max.size",
        type_name: "INT",
        default: Some("10000"),
        doc: "members per KIP-848 group",
        set: |c, k, v| {
            c.groups.consumer_max_size = parse_num(k, v, 1, I32_MAX)? as usize;
            Ok(())
        },
        get: |c| some(c.groups.consumer_max_size),
    },
    BrokerKey {
        name: "group.consumer.migration.policy",
        type_name: "STRING",
        default: Some("bidirectional"),
        doc: "online classic <-> consumer group migration: disabled, upgrade, downgrade, bidirectional",
        set: |c, k, v| {
            c.groups.migration_policy = MigrationPolicy::parse(v).ok_or_else(|| {
                invalid(k, v, "expected disabled, upgrade, downgrade or bidirectional")
            })?;
            Ok(())
        },
        get: |c| raw(c, "group.consumer.migration.policy").or_else(|| some(c.groups.migration_policy.name())),
    },
    BrokerKey {
        name: "group.streams.session.timeout.ms",
        type_name: "INT",
        default: Some("45000"),
        doc: "session timeout of streams group members",
        set: |c, k, v| {
            c.groups.streams_session_timeout_ms = parse_num(k, v, 1, I32_MAX)? as u64;
            Ok(())
        },
        get: |c| some(c.groups.streams_session_timeout_ms),
    },
    BrokerKey {
        name: "group.streams.heartbeat.interval.ms",
        type_name: "INT",
        default: Some("5000"),
        doc: "heartbeat interval of streams group members",
        set: |c, k, v| {
            c.groups.streams_heartbeat_interval_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.streams_heartbeat_interval_ms),
    },
    BrokerKey {
        name: "group.streams.min.session.timeout.ms",
        type_name: "INT",
        default: Some("45000"),
        doc: "smallest streams.session.timeout.ms a group may set",
        set: |c, k, v| {
            c.groups.streams_session_timeout_min_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.streams_session_timeout_min_ms),
    },
    BrokerKey {
        name: "group.streams.max.session.timeout.ms",
        type_name: "INT",
        default: Some("60000"),
        doc: "largest streams.session.timeout.ms a group may set",
        set: |c, k, v| {
            c.groups.streams_session_timeout_max_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.streams_session_timeout_max_ms),
    },
    BrokerKey {
        name: "group.streams.min.heartbeat.interval.ms",
        type_name: "INT",
        default: Some("5000"),
        doc: "smallest streams.heartbeat.interval.ms a group may set",
        set: |c, k, v| {
            c.groups.streams_heartbeat_interval_min_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.streams_heartbeat_interval_min_ms),
    },
    BrokerKey {
        name: "group.streams.max.heartbeat.interval.ms",
        type_name: "INT",
        default: Some("15000"),
        doc: "largest streams.heartbeat.interval.ms a group may set",
        set: |c, k, v| {
            c.groups.streams_heartbeat_interval_max_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.streams_heartbeat_interval_max_ms),
    },
    BrokerKey {
        name: "group.streams.max.size",
        type_name: "INT",
        default: Some("10000"),
        doc: "members per streams group",
        set: |c, k, v| {
            c.groups.streams_max_size = parse_num(k, v, 1, I32_MAX)? as usize;
            Ok(())
        },
        get: |c| some(c.groups.streams_max_size),
    },
    BrokerKey {
        name: "group.streams.num.standby.replicas",
        type_name: "INT",
        default: Some("0"),
        doc: "standby replicas per stateful task",
        set: |c, k, v| {
            c.groups.streams_num_standby_replicas = parse_num(k, v, 0, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.streams_num_standby_replicas),
    },
    BrokerKey {
        name: "group.streams.max.standby.replicas",
        type_name: "INT",
        default: Some("2"),
        doc: "largest streams.num.standby.replicas a group may set",
        set: |c, k, v| {
            c.groups.streams_max_standby_replicas = parse_num(k, v, 0, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.streams_max_standby_replicas),
    },
    BrokerKey {
        name: "group.streams.acceptable.recovery.lag",
        type_name: "LONG",
        default: Some("10000"),
        doc: "lag up to which a task's state counts as caught up",
        set: |c, k, v| {
            c.groups.streams_acceptable_recovery_lag = parse_num(k, v, 0, i64::MAX)?;
            Ok(())
        },
        get: |c| some(c.groups.streams_acceptable_recovery_lag),
    },
    BrokerKey {
        name: "group.streams.task.offset.interval.ms",
        type_name: "INT",
        default: Some("60000"),
        doc: "how often members report task offsets",
        set: |c, k, v| {
            c.groups.streams_task_offset_interval_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.streams_task_offset_interval_ms),
    },
    BrokerKey {
        name: "group.share.session.timeout.ms",
        type_name: "INT",
        default: Some("45000"),
        doc: "share-group member session timeout",
        set: |c, k, v| {
            c.groups.share_session_timeout_ms = parse_num(k, v, 1, I32_MAX)? as u64;
            Ok(())
        },
        get: |c| some(c.groups.share_session_timeout_ms),
    },
    BrokerKey {
        name: "group.share.min.session.timeout.ms",
        type_name: "INT",
        default: Some("45000"),
        doc: "smallest share.session.timeout.ms a group may set",
        set: |c, k, v| {
            c.groups.share_session_timeout_min_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.share_session_timeout_min_ms),
    },
    BrokerKey {
        name: "group.share.max.session.timeout.ms",
        type_name: "INT",
        default: Some("60000"),
        doc: "largest share.session.timeout.ms a group may set",
        set: |c, k, v| {
            c.groups.share_session_timeout_max_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.share_session_timeout_max_ms),
    },
    BrokerKey {
        name: "group.share.heartbeat.interval.ms",
        type_name: "INT",
        default: Some("5000"),
        doc: "heartbeat interval given to share-group members",
        set: |c, k, v| {
            c.groups.share_heartbeat_interval_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.share_heartbeat_interval_ms),
    },
    BrokerKey {
        name: "group.share.min.heartbeat.interval.ms",
        type_name: "INT",
        default: Some("5000"),
        doc: "smallest share.heartbeat.interval.ms a group may set",
        set: |c, k, v| {
            c.groups.share_heartbeat_interval_min_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.share_heartbeat_interval_min_ms),
    },
    BrokerKey {
        name: "group.share.max.heartbeat.interval.ms",
        type_name: "INT",
        default: Some("15000"),
        doc: "largest share.heartbeat.interval.ms a group may set",
        set: |c, k, v| {
            c.groups.share_heartbeat_interval_max_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.share_heartbeat_interval_max_ms),
    },
    BrokerKey {
        name: "group.share.max.size",
        type_name: "INT",
        default: Some("200"),
        doc: "members per share group",
        set: |c, k, v| {
            c.groups.share_max_size = parse_num(k, v, 1, 1000)? as usize;
            Ok(())
        },
        get: |c| some(c.groups.share_max_size),
    },
    BrokerKey {
        name: "group.share.record.lock.duration.ms",
        type_name: "INT",
        default: Some("30000"),
        doc: "how long a delivered record stays locked to its consumer (acquisition lock)",
        set: |c, k, v| {
            c.groups.share_record_lock_duration_ms = parse_num(k, v, 1000, 3_600_000)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.share_record_lock_duration_ms),
    },
    BrokerKey {
        name: "group.share.min.record.lock.duration.ms",
        type_name: "INT",
        default: Some("15000"),
        doc: "smallest share.record.lock.duration.ms a group may set",
        set: |c, k, v| {
            c.groups.share_record_lock_duration_min_ms = parse_num(k, v, 1000, 30_000)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.share_record_lock_duration_min_ms),
    },
    BrokerKey {
        name: "group.share.max.record.lock.duration.ms",
        type_name: "INT",
        default: Some("60000"),
        doc: "largest share.record.lock.duration.ms a group may set",
        set: |c, k, v| {
            c.groups.share_record_lock_duration_max_ms = parse_num(k, v, 30000, 3_600_000)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.share_record_lock_duration_max_ms),
    },
    BrokerKey {
        name: "group.share.delivery.count.limit",
        type_name: "INT",
        default: Some("5"),
        doc: "deliveries of a record before it is archived (or dead-lettered)",
        set: |c, k, v| {
            c.groups.share_delivery_count_limit = parse_num(k, v, 2, 10)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.share_delivery_count_limit),
    },
    BrokerKey {
        name: "group.share.min.delivery.count.limit",
        type_name: "INT",
        default: Some("2"),
        doc: "smallest share.delivery.count.limit a group may set",
        set: |c, k, v| {
            c.groups.share_delivery_count_limit_min = parse_num(k, v, 2, 5)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.share_delivery_count_limit_min),
    },
    BrokerKey {
        name: "group.share.max.delivery.count.limit",
        type_name: "INT",
        default: Some("10"),
        doc: "largest share.delivery.count.limit a group may set",
        set: |c, k, v| {
            c.groups.share_delivery_count_limit_max = parse_num(k, v, 5, 25)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.share_delivery_count_limit_max),
    },
    BrokerKey {
        name: "group.share.partition.max.record.locks",
        type_name: "INT",
        default: Some("2000"),
        doc: "records in flight per share-partition",
        set: |c, k, v| {
            c.groups.share_partition_max_record_locks = parse_num(k, v, 100, 10_000)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.share_partition_max_record_locks),
    },
    BrokerKey {
        name: "group.share.min.partition.max.record.locks",
        type_name: "INT",
        default: Some("100"),
        doc: "smallest share.partition.max.record.locks a group may set",
        set: |c, k, v| {
            c.groups.share_partition_max_record_locks_min = parse_num(k, v, 100, 2000)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.share_partition_max_record_locks_min),
    },
    BrokerKey {
        name: "group.share.max.partition.max.record.locks",
        type_name: "INT",
        default: Some("4000"),
        doc: "largest share.partition.max.record.locks a group may set",
        set: |c, k, v| {
            c.groups.share_partition_max_record_locks_max = parse_num(k, v, 2000, 10_000)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.share_partition_max_record_locks_max),
    },
    BrokerKey {
        name: "group.share.max.share.sessions",
        type_name: "INT",
        default: Some("2000"),
        doc: "share sessions (one per consumer and broker) this broker keeps",
        set: |c, k, v| {
            c.groups.share_max_sessions = parse_num(k, v, 1, I32_MAX)? as usize;
            Ok(())
        },
        get: |c| some(c.groups.share_max_sessions),
    },
    BrokerKey {
        name: "share.coordinator.state.topic.num.partitions",
        type_name: "INT",
        default: Some("50"),
        doc: "partitions of __share_group_state",
        set: |c, k, v| {
            c.groups.share_state_partitions = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.share_state_partitions),
    },
    BrokerKey {
        name: "share.coordinator.state.topic.replication.factor",
        type_name: "SHORT",
        default: Some("3"),
        doc: "replicas of each __share_group_state partition in a cluster (one on a single node)",
        set: |c, k, v| {
            c.groups.share_state_replication_factor = parse_num(k, v, 1, 32767)? as i16;
            Ok(())
        },
        get: |c| some(c.groups.share_state_replication_factor),
    },
    BrokerKey {
        name: "share.coordinator.state.topic.min.isr",
        type_name: "SHORT",
        default: Some("2"),
        doc: "min.insync.replicas of __share_group_state in a cluster",
        set: |c, k, v| {
            c.groups.share_state_min_isr = parse_num(k, v, 1, 32767)? as i16;
            Ok(())
        },
        get: |c| some(c.groups.share_state_min_isr),
    },
    BrokerKey {
        name: "share.coordinator.snapshot.update.records.per.snapshot",
        type_name: "INT",
        default: Some("500"),
        doc: "share-state update records between two snapshots of a share-partition",
        set: |c, k, v| {
            c.groups.share_updates_per_snapshot = parse_num(k, v, 0, 500)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.share_updates_per_snapshot),
    },
    BrokerKey {
        name: "errors.deadletterqueue.topic.name.prefix",
        type_name: "STRING",
        default: Some("dlq."),
        doc: "prefix a share group's dead-letter topic must have (empty: any name)",
        set: |c, _k, v| {
            c.groups.dlq_topic_prefix = v.trim().to_string();
            Ok(())
        },
        get: |c| some(&c.groups.dlq_topic_prefix),
    },
    BrokerKey {
        name: "errors.deadletterqueue.auto.create.topics.enable",
        type_name: "BOOLEAN",
        default: Some("false"),
        doc: "create a missing dead-letter topic when a record is dead-lettered",
        set: |c, k, v| {
            c.groups.dlq_auto_create = parse_bool(k, v)?;
            Ok(())
        },
        get: |c| some(c.groups.dlq_auto_create),
    },
    BrokerKey {
        name: "offsets.retention.minutes",
        type_name: "INT",
        default: Some("10080"),
        doc: "committed offsets of empty groups expire after this",
        set: |c, k, v| {
            c.groups.offsets_retention_ms = parse_num(k, v, 1, I32_MAX)? * 60_000;
            Ok(())
        },
        get: |c| some(c.groups.offsets_retention_ms / 60_000),
    },
    BrokerKey {
        name: "offset.metadata.max.bytes",
        type_name: "INT",
        default: Some("4096"),
        doc: "largest metadata string of a committed offset",
        set: |c, k, v| {
            c.groups.offset_metadata_max_bytes = parse_num(k, v, 0, I32_MAX)? as usize;
            Ok(())
        },
        get: |c| some(c.groups.offset_metadata_max_bytes),
    },
    BrokerKey {
        name: "offsets.topic.num.partitions",
        type_name: "INT",
        default: Some("50"),
        doc: "partitions of __consumer_offsets",
        set: |c, k, v| {
            c.groups.offsets_partitions = parse_num(k, v, 1, 1000)? as i32;
            Ok(())
        },
        get: |c| some(c.groups.offsets_partitions),
    },
    BrokerKey {
        name: "offsets.topic.replication.factor",
        type_name: "SHORT",
        default: Some("3"),
        doc: "replicas of __consumer_offsets partitions in a cluster (a single node uses 1)",
        set: |c, k, v| {
            c.groups.offsets_replication_factor = parse_num(k, v, 1, i64::from(i16::MAX))? as i16;
            Ok(())
        },
        get: |c| some(c.groups.offsets_replication_factor),
    },
    BrokerKey {
        name: "transaction.max.timeout.ms",
        type_name: "INT",
        default: Some("900000"),
        doc: "largest transaction timeout a producer may ask",
        set: |c, k, v| {
            c.txns.max_timeout_ms = parse_num(k, v, 1, I32_MAX)? as i32;
            Ok(())
        },
        get: |c| some(c.txns.max_timeout_ms),
    },
    BrokerKey {
        name: "transaction.state.log.num.partitions",
        type_name: "INT",
        default: Some("50"),
        doc: "partitions of __transaction_state",
        set: |c, k, v| {
            c.txns.partitions = parse_num(k, v, 1, 1000)? as i32;
            Ok(())
        },
        get: |c| some(c.txns.partitions),
    },
    BrokerKey {
        name: "transaction.state.log.replication.factor",
        type_name: "SHORT",
        default: Some("3"),
        doc: "replicas of __transaction_state partitions in a cluster (a single node uses 1)",
        set: |c, k, v| {
            c.txns.replication_factor = parse_num(k, v, 1, i64::from(i16::MAX))? as i16;
            Ok(())
        },
        get: |c| some(c.txns.replication_factor),
    },
    BrokerKey {
        name: "transaction.state.log.min.isr",
        type_name: "INT",
        default: Some("2"),
        doc: "min.insync.replicas of __transaction_state in a cluster",
        set: |c, k, v| {
            c.txns.min_isr = parse_num(k, v, 1, i64::from(i16::MAX))? as i16;
            Ok(())
        },
        get: |c| some(c.txns.min_isr),
    },
    BrokerKey {
        name: "transactional.id.expiration.ms",
        type_name: "INT",
        default: Some("604800000"),
        doc: "transactional ids idle this long (no open transaction) are removed",
        set: |c, k, v| {
            c.txns.id_expiration_ms = parse_num(k, v, 1, I32_MAX)?;
            Ok(())
        },
        get: |c| some(c.txns.id_expiration_ms),
    },
    BrokerKey {
        name: "transaction.remove.expired.transaction.cleanup.interval.ms",
        type_name: "INT",
        default: Some("3600000"),
        doc: "how often expired transactional ids are removed",
        set: |c, k, v| {
            c.txns.remove_expired_interval_ms = parse_num(k, v, 1, I32_MAX)? as u64;
            Ok(())
        },
        get: |c| some(c.txns.remove_expired_interval_ms),
    },
    BrokerKey {
        name: "ssl.keystore.type",
        type_name: "STRING",
        default: None,
        doc: "keystore format of TLS listeners: PEM or PKCS12 (a JKS-named PKCS12 file is read too)",
        set: set_listener_scoped,
        get: |c| raw(c, "ssl.keystore.type"),
    },
    BrokerKey {
        name: "ssl.keystore.location",
        type_name: "STRING",
        default: None,
        doc: "keystore file: PEM (PKCS#8 key then the certificate chain) or PKCS12",
        set: set_listener_scoped,
        get: |c| raw(c, "ssl.keystore.location"),
    },
    BrokerKey {
        name: "ssl.keystore.password",
        type_name: "PASSWORD",
        default: None,
        doc: "password of a PKCS12 keystore",
        set: set_listener_scoped,
        get: |_| None,
    },
    BrokerKey {
        name: "ssl.key.password",
        type_name: "PASSWORD",
        default: None,
        doc: "password of an encrypted private key (Strom reads unencrypted PEM keys)",
        set: set_listener_scoped,
        get: |_| None,
    },
    BrokerKey {
        name: "ssl.keystore.key",
        type_name: "PASSWORD",
        default: None,
        doc: "the PEM private key itself (with ssl.keystore.certificate.chain)",
        set: set_listener_scoped,
        get: |_| None,
    },
    BrokerKey {
        name: "ssl.keystore.certificate.chain",
        type_name: "STRING",
        default: None,
        doc: "the PEM certificate chain itself (with ssl.keystore.key)",
        set: set_listener_scoped,
        get: |c| raw(c, "ssl.keystore.certificate.chain"),
    },
    BrokerKey {
        name: "ssl.truststore.type",
        type_name: "STRING",
        default: None,
        doc: "truststore format: PEM or PKCS12",
        set: set_listener_scoped,
        get: |c| raw(c, "ssl.truststore.type"),
    },
    BrokerKey {
        name: "ssl.truststore.location",
        type_name: "STRING",
        default: None,
        doc: "the CA certificates client certificates are checked against",
        set: set_listener_scoped,
        get: |c| raw(c, "ssl.truststore.location"),
    },
    BrokerKey {
        name: "ssl.truststore.password",
        type_name: "PASSWORD",
        default: None,
        doc: "password of a PKCS12 truststore",
        set: set_listener_scoped,
        get: |_| None,
    },
    BrokerKey {
        name: "ssl.truststore.certificates",
        type_name: "STRING",
        default: None,
        doc: "the trusted PEM certificates themselves",
        set: set_listener_scoped,
        get: |c| raw(c, "ssl.truststore.certificates"),
    },
    BrokerKey {
        name: "ssl.client.auth",
        type_name: "STRING",
        default: Some("none"),
        doc: "client certificates: none, requested or required (mTLS)",
        set: set_listener_scoped,
        get: |c| raw(c, "ssl.client.auth").or(some("none")),
    },
    BrokerKey {
        name: "ssl.enabled.protocols",
        type_name: "LIST",
        default: Some("TLSv1.2,TLSv1.3"),
        doc: "TLS versions served",
        set: set_listener_scoped,
        get: |c| raw(c, "ssl.enabled.protocols").or(some("TLSv1.2,TLSv1.3")),
    },
    BrokerKey {
        name: "ssl.protocol",
        type_name: "STRING",
        default: Some("TLSv1.3"),
        doc: "accepted for compatibility: ssl.enabled.protocols decides",
        set: set_listener_scoped,
        get: |c| raw(c, "ssl.protocol").or(some("TLSv1.3")),
    },
    BrokerKey {
        name: "ssl.cipher.suites",
        type_name: "LIST",
        default: None,
        doc: "TLS cipher suites by IANA name (unset: rustls' safe defaults)",
        set: set_listener_scoped,
        get: |c| raw(c, "ssl.cipher.suites"),
    },
    BrokerKey {
        name: "ssl.principal.mapping.rules",
        type_name: "STRING",
        default: Some("DEFAULT"),
        doc: "RULE:pattern/replacement/[LU] list mapping a client certificate's DN to a principal name",
        set: set_listener_scoped,
        get: |c| raw(c, "ssl.principal.mapping.rules").or(some("DEFAULT")),
    },
    BrokerKey {
        name: "sasl.enabled.mechanisms",
        type_name: "LIST",
        default: Some("GSSAPI"),
        doc: "SASL mechanisms of SASL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER",
        set: set_listener_scoped,
        get: |c| raw(c, "sasl.enabled.mechanisms").or(some("GSSAPI")),
    },
    BrokerKey {
        name: "connections.max.reauth.ms",
        type_name: "LONG",
        default: Some("0"),
        doc: "SASL session lifetime told to clients (KIP-368; 0: none)",
        set: set_listener_scoped,
        get: |c| raw(c, "connections.max.reauth.ms").or(some(0)),
    },
    BrokerKey {
        name: "sasl.server.max.receive.size",
        type_name: "INT",
        default: Some("524288"),
        doc: "largest SASL token read before authentication",
        set: set_listener_scoped,
        get: |c| raw(c, "sasl.server.max.receive.size").or(some(524288)),
    },
    BrokerKey {
        name: "sasl.oauthbearer.jwks.endpoint.url",
        type_name: "STRING",
        default: None,
        doc: "OAUTHBEARER: the JWKS whose keys sign the tokens (https:, http: or file: URL)",
        set: set_listener_scoped,
        get: |c| raw(c, "sasl.oauthbearer.jwks.endpoint.url"),
    },
    BrokerKey {
        name: "sasl.oauthbearer.jwks.endpoint.refresh.ms",
        type_name: "LONG",
        default: Some("3600000"),
        doc: "how often a JWKS URL is fetched again (a file is re-read when it changes)",
        set: set_listener_scoped,
        get: |c| raw(c, "sasl.oauthbearer.jwks.endpoint.refresh.ms").or(some("3600000")),
    },
    BrokerKey {
        name: "sasl.oauthbearer.expected.audience",
        type_name: "LIST",
        default: None,
        doc: "OAUTHBEARER: a token's aud must name one of these (empty: not checked)",
        set: set_listener_scoped,
        get: |c| raw(c, "sasl.oauthbearer.expected.audience"),
    },
    BrokerKey {
        name: "sasl.oauthbearer.expected.issuer",
        type_name: "STRING",
        default: None,
        doc: "OAUTHBEARER: a token's iss must be this (empty: not checked)",
        set: set_listener_scoped,
        get: |c| raw(c, "sasl.oauthbearer.expected.issuer"),
    },
    BrokerKey {
        name: "sasl.oauthbearer.sub.claim.name",
        type_name: "STRING",
        default: Some("sub"),
        doc: "OAUTHBEARER: the claim naming the principal",
        set: set_listener_scoped,
        get: |c| raw(c, "sasl.oauthbearer.sub.claim.name").or(some("sub")),
    },
    BrokerKey {
        name: "sasl.oauthbearer.scope.claim.name",
        type_name: "STRING",
        default: Some("scope"),
        doc: "accepted: scopes are not checked (as Kafka's validator)",
        set: set_listener_scoped,
        get: |c| raw(c, "sasl.oauthbearer.scope.claim.name").or(some("scope")),
    },
    BrokerKey {
        name: "sasl.oauthbearer.clock.skew.seconds",
        type_name: "INT",
        default: Some("30"),
        doc: "OAUTHBEARER: tolerance for exp and nbf",
        set: set_listener_scoped,
        get: |c| raw(c, "sasl.oauthbearer.clock.skew.seconds").or(some("30")),
    },
    BrokerKey {
        name: "connection.failed.authentication.delay.ms",
        type_name: "INT",
        default: Some("100"),
        doc: "how long a failed authentication waits before its connection is closed",
        set: |c, k, v| {
            c.security.failed_auth_delay_ms = parse_num(k, v, 0, I32_MAX)? as u64;
            Ok(())
        },
        get: |c| some(c.security.failed_auth_delay_ms),
    },
    BrokerKey {
        name: "inter.broker.listener.name",
        type_name: "STRING",
        default: None,
        doc: "the listener brokers of a cluster use to reach each other (PLAINTEXT so far)",
        set: |c, _, v| {
            c.inter_broker_listener = Some(v.to_string());
            Ok(())
        },
        get: |c| c.inter_broker_listener.clone(),
    },
    BrokerKey {
        name: "security.inter.broker.protocol",
        type_name: "STRING",
        default: Some("PLAINTEXT"),
        doc: "names the inter-broker listener when inter.broker.listener.name is unset",
        set: |c, k, v| {
            if crate::config::security::Protocol::parse(v).is_none() {
                return Err(invalid(k, v, "not a security protocol"));
            }
            c.inter_broker_protocol = v.to_string();
            Ok(())
        },
        get: |c| Some(c.inter_broker_protocol.clone()),
    },
    BrokerKey {
        name: "sasl.mechanism.inter.broker.protocol",
        type_name: "STRING",
        default: Some("GSSAPI"),
        doc: "accepted for compatibility: brokers talk to each other over PLAINTEXT so far",
        set: |_, _, _| Ok(()),
        get: |c| raw(c, "sasl.mechanism.inter.broker.protocol").or(some("GSSAPI")),
    },
    BrokerKey {
        name: "authorizer.class.name",
        type_name: "STRING",
        default: Some(""),
        doc: "ACL authorization: org.apache.kafka.metadata.authorizer.StandardAuthorizer (or \
              kafka.security.authorizer.AclAuthorizer, the same) enforces ACLs; empty: none",
        set: |c, k, v| {
            let v = v.trim();
            if v.is_empty() || crate::config::security::AUTHORIZER_CLASSES.contains(&v) {
                c.security.authorizer = (!v.is_empty()).then(|| v.to_string());
                return Ok(());
            }
            Err(ConfigError::Unsupported(format!(
                "{k}={v}: Strom's authorizer has the semantics of Kafka's StandardAuthorizer and \
                 answers to the names {}; a custom authorizer class cannot be loaded",
                crate::config::security::AUTHORIZER_CLASSES.join(", ")
            )))
        },
        get: |c| Some(c.security.authorizer.clone().unwrap_or_default()),
    },
    BrokerKey {
        name: "super.users",
        type_name: "STRING",
        default: Some(""),
        doc: "principals allowed every operation, `;`-separated (User:admin;User:CN=broker,O=org)",
        set: |c, k, v| {
            c.security.super_users = crate::config::security::parse_super_users(v)
                .map_err(|reason| invalid(k, v, reason))?;
            Ok(())
        },
        get: |c| Some(c.security.super_users.join(";")),
    },
    BrokerKey {
        name: "allow.everyone.if.no.acl.found",
        type_name: "BOOLEAN",
        default: Some("false"),
        doc: "a resource with no ACL at all is open to every principal (false: deny by default)",
        set: |c, _, v| {
            // Kafka's Boolean.parseBoolean: "true" in any case, everything else false.
            c.security.allow_if_no_acls = v.trim().eq_ignore_ascii_case("true");
            Ok(())
        },
        get: |c| some(c.security.allow_if_no_acls),
    },
];
