//! Broker configuration under Apache Kafka's property names, so an operator's existing
//! `server.properties` is accepted. Every limit the broker enforces lives here.
//!
//! Sources, later wins: built-in defaults < `--config` file < `--set key=value` < CLI flags
//! (`--data-dir`, `--listen`, `--advertised-listener`). Unknown keys and invalid values are
//! errors naming the key. Kafka keys that configure machinery Strom does not have (ZooKeeper,
//! thread pools) are accepted and logged as ignored; the quorum keys are parsed and checked
//! ([`cluster`]): a configuration describing more than this one node is refused.

pub mod broker;
pub mod cluster;
pub mod describe;
pub mod dynamic;
pub mod group;
pub mod group_configs;
pub mod listeners;
pub mod security;
pub mod topic;
pub mod txn;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("unknown configuration key '{0}'")]
    UnknownKey(String),
    #[error("invalid value '{value}' for configuration key '{key}': {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("cannot read config file {path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Unsupported(String),
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// The effective broker configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub log_dir: PathBuf,
    /// The client listener's address (from `listeners`, see [`listeners::resolve`]).
    pub listen: SocketAddr,
    /// `listeners` as configured.
    pub listeners: String,
    /// `advertised.listeners` as configured.
    pub advertised_listeners: Option<String>,
    /// `listener.security.protocol.map`.
    pub listener_protocols: BTreeMap<String, String>,
    /// The name of the broker's own listener: what it registers for other brokers (see
    /// [`listeners::resolve`]); `listen` and `advertised_*` are that listener's.
    pub client_listener_name: String,
    /// Every listener clients connect to, with its protocol and security settings.
    pub client_listeners: Vec<listeners::ClientListener>,
    /// `ssl.*`, `sasl.*` and their `listener.name.*` overrides.
    pub security: security::SecurityConfig,
    /// `inter.broker.listener.name`.
    pub inter_broker_listener: Option<String>,
    /// `security.inter.broker.protocol`.
    pub inter_broker_protocol: String,
    pub advertised_host: String,
    pub advertised_port: u16,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    /// `strom.max.partitions`: partitions the broker may hold in all, internal topics included
    /// (Kafka has no such cap; KIP-578 proposed one). Creations past it get POLICY_VIOLATION.
    pub max_partitions: i32,
    pub delete_topic_enable: bool,
    /// `socket.request.max.bytes`: the largest request frame accepted, checked before allocation.
    pub socket_request_max_bytes: usize,
    /// `queued.max.request.bytes`: request bytes buffered across all connections (-1 in Kafka
    /// means unbounded; Strom defaults to 256 MiB).
    pub queued_max_request_bytes: usize,
    /// `max.connections`.
    pub max_connections: usize,
    /// `socket.listen.backlog.size`: connections the kernel queues before they are accepted
    /// (Kafka defaults to 50; Strom to 1024, so a reconnect storm is not answered with resets).
    pub listen_backlog: u32,
    /// `connections.max.idle.ms`.
    pub connections_max_idle_ms: u64,
    /// `strom.request.receive.timeout.ms`: a request frame must arrive whole within this of its
    /// size being read; until then it holds its share of `queued.max.request.bytes`.
    pub request_receive_timeout_ms: u64,
    /// `strom.admin.listener`: the HTTP admin address ("" = none).
    pub admin_listener: String,
    /// `strom.log.format=json`: log lines as JSON objects.
    pub log_json: bool,
    /// Largest requests a connection may have in flight (pipelined) at once.
    pub max_inflight_requests_per_connection: usize,
    /// `strom.connection.max.queued.bytes`: request and encoded response bytes one connection
    /// may hold before it stops reading (a client that pipelines and never reads stalls itself).
    pub connection_max_queued_bytes: usize,
    /// `fetch.max.bytes` (broker cap on a fetch response).
    pub fetch_max_bytes: usize,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// `log.flush.interval.ms`: background fsync period for all logs (i64::MAX = only on demand).
    pub flush_interval_ms: i64,
    /// `strom.acks.all.fsync`: answer acks=all only after fsync (default true).
    pub acks_all_fsync: bool,
    /// `producer.id.expiration.ms`: idle idempotent-producer state is dropped after this.
    pub producer_id_expiration_ms: i64,
    /// Group coordinator settings (`group.*`, `offsets.*`, `offset.metadata.max.bytes`).
    pub groups: group::GroupConfig,
    /// Transaction coordinator settings (`transaction.*`).
    pub txns: txn::TxnConfig,
    /// `process.roles` and the controller quorum (`controller.quorum.*`).
    pub cluster: cluster::ClusterConfig,
    /// Topic-level defaults derived from the `log.*` broker keys, by topic key name.
    pub topic_defaults: BTreeMap<&'static str, String>,
    /// Every key explicitly set (file, --set, flags) with its value, for DescribeConfigs.
    pub explicit: BTreeMap<String, String>,
}

/// Kafka broker keys accepted for compatibility that configure nothing in Strom.
const IGNORED_KEYS: &[&str] = &[
    "broker.id",
    "num.network.threads",
    "num.io.threads",
    "num.recovery.threads.per.data.dir",
    "num.replica.fetchers",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    // The share coordinator's and share fetch's machinery (threads, buffers, batching of its
    // appends, purgatory housekeeping): Strom's has none of these knobs.
    "share.coordinator.threads",
    "share.coordinator.append.linger.ms",
    "share.coordinator.load.buffer.size",
    "share.coordinator.cached.buffer.max.bytes",
    "share.coordinator.write.timeout.ms",
    "share.coordinator.state.topic.prune.interval.ms",
    "share.coordinator.cold.partition.snapshot.interval.ms",
    "group.share.assignor.offload.enable",
    "group.share.initialize.retry.interval.ms",
    "share.fetch.purgatory.purge.interval.requests",
    "zookeeper.connect",
    "zookeeper.connection.timeout.ms",
    "log.cleaner.enable",
    "log.cleaner.threads",
    "metadata.log.dir",
    "confluent.support.metrics.enable",
];

impl BrokerConfig {
    /// Parses the CLI arguments (without the program name).
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Result<Self, ConfigError> {
        let mut props: Vec<(String, String)> = Vec::new();
        let mut flags: Vec<(String, String)> = Vec::new();
        let mut scram = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = || -> Result<String, ConfigError> {
                match inline.clone() {
                    Some(v) => Ok(v),
                    None => args
                        .next()
                        .ok_or_else(|| ConfigError::Usage(format!("{name} needs a value"))),
                }
            };
            match name.as_str() {
                "--config" | "-c" => {
                    let path = value()?;
                    let text = std::fs::read_to_string(&path).map_err(|err| ConfigError::Io {
                        path: path.clone(),
                        err,
                    })?;
                    props.extend(parse_properties(&text));
                }
                "--set" => {
                    let kv = value()?;
                    let (k, v) = kv.split_once('=').ok_or_else(|| {
                        ConfigError::Usage(format!("--set expects key=value, got '{kv}'"))
                    })?;
                    props.push((k.trim().to_string(), v.trim().to_string()));
                }
                "--data-dir" => flags.push(("log.dirs".into(), value()?)),
                "--log-format" => flags.push(("strom.log.format".into(), value()?)),
                "--listen" => flags.push(("listeners".into(), format!("PLAINTEXT://{}", value()?))),
                "--advertised-listener" => flags.push((
                    "advertised.listeners".into(),
                    format!("PLAINTEXT://{}", value()?),
                )),
                "--add-scram" => {
                    let v = value()?;
                    scram.push(
                        security::parse_add_scram(&v)
                            .map_err(|e| ConfigError::Usage(format!("--add-scram: {e}")))?,
                    );
                }
                "--help" | "-h" => return Err(ConfigError::Usage(usage())),
                other => {
                    return Err(ConfigError::Usage(format!(
                        "unknown argument '{other}'\n{}",
                        usage()
                    )))
                }
            }
        }
        props.extend(flags);
        let mut c = Self::from_properties(&props)?;
        c.security.bootstrap_scram = scram;
        Ok(c)
    }

    pub fn from_properties(props: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut c = BrokerConfig::default();
        for (k, v) in props {
            c.set(k, v)?;
        }
        listeners::resolve(&mut c)?;
        c.cluster.check_supported(c.node_id)?;
        c.check_share_bounds()?;
        Ok(c)
    }

    /// Kafka's `ShareGroupConfig` checks across keys: each share default between its bounds,
    /// and room for a session per member of the largest group.
    fn check_share_bounds(&self) -> Result<(), ConfigError> {
        let g = &self.groups;
        let pairs: [(&str, i64, &str, i64); 7] = [
            (
                "group.share.max.delivery.count.limit",
                g.share_delivery_count_limit_max.into(),
                "group.share.delivery.count.limit",
                g.share_delivery_count_limit.into(),
            ),
            (
                "group.share.delivery.count.limit",
                g.share_delivery_count_limit.into(),
                "group.share.min.delivery.count.limit",
                g.share_delivery_count_limit_min.into(),
            ),
            (
                "group.share.max.partition.max.record.locks",
                g.share_partition_max_record_locks_max.into(),
                "group.share.partition.max.record.locks",
                g.share_partition_max_record_locks.into(),
            ),
            (
                "group.share.partition.max.record.locks",
                g.share_partition_max_record_locks.into(),
                "group.share.min.partition.max.record.locks",
                g.share_partition_max_record_locks_min.into(),
            ),
            (
                "group.share.record.lock.duration.ms",
                g.share_record_lock_duration_ms.into(),
                "group.share.min.record.lock.duration.ms",
                g.share_record_lock_duration_min_ms.into(),
            ),
            (
                "group.share.max.record.lock.duration.ms",
                g.share_record_lock_duration_max_ms.into(),
                "group.share.record.lock.duration.ms",
                g.share_record_lock_duration_ms.into(),
            ),
            (
                "group.share.max.share.sessions",
                g.share_max_sessions as i64,
                "group.share.max.size",
                g.share_max_size as i64,
            ),
        ];
        for (big, b, small, s) in pairs {
            if b < s {
                return Err(invalid(
                    big,
                    &b.to_string(),
                    format!("{big} must be greater than or equal to {small}"),
                ));
            }
        }
        Ok(())
    }

    /// Applies one broker property.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let v = value.trim();
        if let Some(k) = broker::key(key) {
            (k.set)(self, key, v)?;
        } else if let Some(spec) = topic::TOPIC_CONFIGS
            .iter()
            .find(|s| s.broker_key == Some(key))
        {
            topic::validate(spec, v).map_err(|r| invalid(key, v, r))?;
            self.topic_defaults.insert(spec.name, v.to_string());
        } else if key.starts_with("listener.name.") && self.security.set_listener_key(key, v) {
            // Checked with the listener it names, once every key is read.
        } else if IGNORED_KEYS.contains(&key)
            || key.starts_with("listener.name.")
            || key.starts_with("log4j")
        {
            tracing::info!(key, "configuration key accepted but has no effect in Strom");
        } else {
            return Err(ConfigError::UnknownKey(key.to_string()));
        }
        self.explicit.insert(key.to_string(), v.to_string());
        Ok(())
    }

    /// The topic-level default for `name` (a topic config key), as a string.
    pub fn topic_default(&self, name: &str) -> Option<String> {
        self.topic_defaults
            .get(name)
            .cloned()
            .or_else(|| topic::spec(name).map(|s| s.default.to_string()))
    }
}

impl BrokerConfig {
    /// Every field before any key is applied. The meaningful values come from the defaults in
    /// [`broker::BROKER_KEYS`]; `flush_interval_ms` stays i64::MAX (fsync only on demand) unless
    /// `log.flush.interval.ms` is set, as that key has no default.
    fn unset() -> Self {
        BrokerConfig {
            node_id: 0,
            log_dir: PathBuf::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            listeners: String::new(),
            advertised_listeners: None,
            listener_protocols: BTreeMap::new(),
            client_listener_name: "PLAINTEXT".into(),
            client_listeners: Vec::new(),
            security: security::SecurityConfig::default(),
            inter_broker_listener: None,
            inter_broker_protocol: "PLAINTEXT".into(),
            advertised_host: String::new(),
            advertised_port: 0,
            num_partitions: 0,
            default_replication_factor: 0,
            auto_create_topics_enable: false,
            max_partitions: 0,
            delete_topic_enable: false,
            socket_request_max_bytes: 0,
            queued_max_request_bytes: 0,
            max_connections: 0,
            listen_backlog: 0,
            connections_max_idle_ms: 0,
            request_receive_timeout_ms: 0,
            admin_listener: String::new(),
            log_json: false,
            max_inflight_requests_per_connection: 0,
            connection_max_queued_bytes: 0,
            fetch_max_bytes: 0,
            retention_check_interval_ms: 0,
            flush_interval_ms: i64::MAX,
            acks_all_fsync: false,
            producer_id_expiration_ms: 0,
            cluster: cluster::ClusterConfig::new(),
            txns: txn::TxnConfig {
                max_timeout_ms: 0,
                partitions: 0,
                id_expiration_ms: 0,
                remove_expired_interval_ms: 0,
                replication_factor: 0,
                min_isr: 0,
            },
            groups: group::GroupConfig {
                session_timeout_min_ms: 0,
                session_timeout_max_ms: 0,
                max_size: 0,
                initial_rebalance_delay_ms: 0,
                offsets_retention_ms: 0,
                offset_metadata_max_bytes: 0,
                offsets_partitions: 0,
                offsets_replication_factor: 0,
                consumer_session_timeout_ms: 0,
                consumer_heartbeat_interval_ms: 0,
                consumer_session_timeout_min_ms: 0,
                consumer_session_timeout_max_ms: 0,
                consumer_heartbeat_interval_min_ms: 0,
                consumer_heartbeat_interval_max_ms: 0,
                consumer_max_size: 0,
                migration_policy: group::MigrationPolicy::Bidirectional,
                streams_session_timeout_ms: 0,
                streams_heartbeat_interval_ms: 0,
                streams_session_timeout_min_ms: 0,
                streams_session_timeout_max_ms: 0,
                streams_heartbeat_interval_min_ms: 0,
                streams_heartbeat_interval_max_ms: 0,
                streams_max_size: 0,
                streams_num_standby_replicas: 0,
                streams_max_standby_replicas: 0,
                streams_acceptable_recovery_lag: 0,
                streams_task_offset_interval_ms: 0,
                share_session_timeout_ms: 0,
                share_session_timeout_min_ms: 0,
                share_session_timeout_max_ms: 0,
                share_heartbeat_interval_ms: 0,
                share_heartbeat_interval_min_ms: 0,
                share_heartbeat_interval_max_ms: 0,
                share_max_size: 0,
                share_record_lock_duration_ms: 0,
                share_record_lock_duration_min_ms: 0,
                share_record_lock_duration_max_ms: 0,
                share_delivery_count_limit: 0,
                share_delivery_count_limit_min: 0,
                share_delivery_count_limit_max: 0,
                share_partition_max_record_locks: 0,
                share_partition_max_record_locks_min: 0,
                share_partition_max_record_locks_max: 0,
                share_max_sessions: 0,
                share_state_partitions: 0,
                share_updates_per_snapshot: 0,
                share_state_replication_factor: 0,
                share_state_min_isr: 0,
                dlq_topic_prefix: String::new(),
                dlq_auto_create: false,
            },
            topic_defaults: BTreeMap::new(),
            explicit: BTreeMap::new(),
        }
    }
}

impl Default for BrokerConfig {
    /// The defaults of [`broker::BROKER_KEYS`], applied in table order (not recorded as
    /// explicitly set).
    fn default() -> Self {
        let mut c = BrokerConfig::unset();
        for k in broker::BROKER_KEYS {
            if let Some(v) = k.default {
                // Checked for every key by the `every_default_parses` test.
                (k.set)(&mut c, k.name, v).expect("built-in default is valid");
            }
        }
        c
    }
}

fn usage() -> String {
    "usage: strom [--data-dir DIR] [--listen HOST:PORT] [--advertised-listener HOST:PORT] \
     [--log-format text|json] [--config server.properties] [--set key=value]... \
     [--add-scram 'SCRAM-SHA-256=[name=NAME,password=PASSWORD]']..."
        .to_string()
}

/// Parses Java-properties text: `key=value` or `key: value`, `#`/`!` comments, no escapes
/// beyond a trailing backslash continuation.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            continue;
        }
        pending.push_str(line);
        let full = std::mem::take(&mut pending);
        let split = full.find(['=', ':']);
        let (k, v) = match split {
            Some(i) => (&full[..i], &full[i + 1..]),
            None => (full.as_str(), ""),
        };
        out.push((k.trim().to_string(), v.trim().to_string()));
    }
    out
}

fn parse_num(key: &str, v: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    let n: i64 = v.parse().map_err(|_| invalid(key, v, "not an integer"))?;
    if n < min || n > max {
        return Err(invalid(key, v, format!("must be in [{min}, {max}]")));
    }
    Ok(n)
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, v, "expected true or false")),
    }
}

fn scaled_ms(key: &str, v: &str) -> Result<i64, ConfigError> {
    let n: i64 = v.parse().map_err(|_| invalid(key, v, "not an integer"))?;
    if n < -1 {
        return Err(invalid(key, v, "must be -1 or non-negative"));
    }
    if n == -1 {
        return Ok(-1);
    }
    let factor = if key.ends_with(".hours") {
        3_600_000
    } else if key.ends_with(".minutes") {
        60_000
    } else {
        1
    };
    n.checked_mul(factor)
        .ok_or_else(|| invalid(key, v, "too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cli_and_properties() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("server.properties");
        std::fs::write(
            &path,
            "# comment\nnode.id=3\nlisteners=PLAINTEXT://127.0.0.1:9999\nnum.network.threads=3\nlog.retention.hours=1\nlog.segment.bytes=1048576\n",
        )
        .expect("write");
        let c = BrokerConfig::from_args(args(&[
            "--config",
            path.to_str().expect("utf8"),
            "--set",
            "num.partitions=4",
            "--data-dir",
            "/tmp/x",
        ]))
        .expect("parse");
        assert_eq!(c.node_id, 3);
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.num_partitions, 4);
        assert_eq!(c.log_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.topic_default("retention.ms").as_deref(), Some("3600000"));
        assert_eq!(c.topic_default("segment.bytes").as_deref(), Some("1048576"));
        assert_eq!(c.advertised_port, 9999);
    }

    #[test]
    fn no_key_is_both_served_and_ignored() {
        for k in IGNORED_KEYS {
            assert!(
                broker::key(k).is_none(),
                "{k} is a broker key and in IGNORED_KEYS"
            );
        }
    }

    #[test]
    fn share_defaults_must_sit_between_their_bounds() {
        let props = |kv: &[(&str, &str)]| -> Vec<(String, String)> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(BrokerConfig::from_properties(&[]).is_ok());
        let err =
            BrokerConfig::from_properties(&props(&[("group.share.max.share.sessions", "10")]))
                .expect_err("fewer sessions than group members");
        assert!(err.to_string().contains("group.share.max.share.sessions must be greater than or equal to group.share.max.size"), "{err}");
        let err = BrokerConfig::from_properties(&props(&[
            ("group.share.delivery.count.limit", "2"),
            ("group.share.min.delivery.count.limit", "3"),
        ]))
        .expect_err("default under its minimum");
        assert!(err.to_string().contains("group.share.delivery.count.limit must be greater than or equal to group.share.min.delivery.count.limit"), "{err}");
        assert!(BrokerConfig::from_properties(&props(&[
            ("group.share.max.share.sessions", "10"),
            ("group.share.max.size", "10")
        ]))
        .is_ok());
    }

    #[test]
    fn every_default_parses() {
        for k in broker::BROKER_KEYS {
            if let Some(v) = k.default {
                let mut c = BrokerConfig::unset();
                assert!((k.set)(&mut c, k.name, v).is_ok(), "default of {}", k.name);
                assert_eq!(
                    (k.get)(&BrokerConfig::default()).as_deref(),
                    Some(v),
                    "{}",
                    k.name
                );
            }
        }
        let mut names: Vec<&str> = broker::BROKER_KEYS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), broker::BROKER_KEYS.len(), "a key listed twice");
    }

    /// README's configuration table lists every broker key (keys sharing a row are written
    /// `log.retention.ms` / `.minutes` / `.hours`: a dotted suffix counts there).
    #[test]
    fn readme_lists_every_broker_key() {
        let readme = include_str!("../../README.md");
        let missing: Vec<&str> = broker::BROKER_KEYS
            .iter()
            .map(|k| k.name)
            .filter(|name| {
                let row_suffix = |i: usize| readme.contains(&format!("`{}`", &name[i..]));
                !readme.contains(&format!("`{name}`"))
                    && !name.match_indices('.').any(|(i, _)| row_suffix(i))
            })
            .collect();
        assert!(
            missing.is_empty(),
            "README's config table misses {missing:?}"
        );
    }

    #[test]
    fn errors_name_the_key() {
        let e = BrokerConfig::from_args(args(&["--set", "no.such.key=1"])).expect_err("unknown");
        assert!(e.to_string().contains("no.such.key"));
        let e =
            BrokerConfig::from_args(args(&["--set", "num.partitions=zero"])).expect_err("invalid");
        assert!(e.to_string().contains("num.partitions"));
        let e =
            BrokerConfig::from_args(args(&["--set", "log.segment.bytes=-5"])).expect_err("invalid");
        assert!(e.to_string().contains("log.segment.bytes"));
    }
}
