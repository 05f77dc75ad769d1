//! Cluster membership settings, with Kafka's KRaft property names: `process.roles`,
//! `controller.quorum.voters` (`1@host:port,2@host:port`), `controller.quorum.bootstrap.servers`
//! (`host:port,...`, KIP-853), `controller.listener.names`.
//!
//! Strom runs as one node by default. A configuration that names more than this node as a
//! voter starts a multi-node cluster (replication, failover, coordinators moving with their
//! partitions), as a Kafka `server.properties` would: every node broker and controller
//! (combined mode), listed in `controller.quorum.voters`, with a controller listener. What
//! Strom cannot run (separate broker and controller nodes, KIP-853's dynamic quorum) is
//! refused at start with an error naming the key. `strom.cluster.preview`, which the multi-node
//! cluster needed before it was complete, is accepted and changes nothing.

use std::collections::BTreeMap;

use super::{invalid, ConfigError};

/// What `process.roles` and the quorum keys say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `process.roles` contains `broker` (unset: both roles, Strom's combined mode).
    pub broker: bool,
    /// `process.roles` contains `controller`.
    pub controller: bool,
    /// Whether `process.roles` was set at all.
    pub roles_set: bool,
    /// `controller.quorum.voters`: node id -> `host:port` of its controller listener.
    pub voters: BTreeMap<i32, String>,
    /// `controller.quorum.bootstrap.servers`.
    pub bootstrap_servers: Vec<String>,
    /// `controller.listener.names`.
    pub controller_listener_names: Vec<String>,
    /// The address of the controller listener (the metadata quorum's), when `listeners` has one.
    pub controller_listen: Option<std::net::SocketAddr>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// `replica.selector.class` is Kafka's `RackAwareReplicaSelector`: a leader sends a
    /// consumer that names its rack (`client.rack`) to an in-sync follower in that rack
    /// (KIP-392 follower fetching).
    pub rack_aware_reads: bool,
    /// `replica.lag.time.max.ms`: a follower not caught up for this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// `broker.session.timeout.ms`: the controller fences a broker it has not heard from for
    /// this long (its leaderships move to other in-sync replicas).
    pub broker_session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms`.
    pub broker_heartbeat_interval_ms: u64,
    /// `auto.leader.rebalance.enable`: the controller gives leaderships back to preferred
    /// replicas every `leader.imbalance.check.interval.seconds`.
    pub auto_leader_rebalance: bool,
    pub leader_imbalance_check_interval_s: u64,
    /// `leader.replication.throttled.rate` (bytes/s): what this broker serves, as leader, to
    /// out-of-sync followers of the partitions its topics' `leader.replication.throttled.replicas`
    /// name for it. Dynamic (set per broker by `kafka-reassign-partitions --throttle`).
    pub leader_replication_throttled_rate: u64,
    /// `follower.replication.throttled.rate` (bytes/s): what this broker fetches, as an
    /// out-of-sync follower, of the partitions `follower.replication.throttled.replicas` names
    /// for it.
    pub follower_replication_throttled_rate: u64,
}

impl ClusterConfig {
    pub fn new() -> Self {
        ClusterConfig {
            broker: true,
            controller: true,
            replica_lag_time_max_ms: 30_000,
            broker_session_timeout_ms: 9_000,
            auto_leader_rebalance: true,
            leader_imbalance_check_interval_s: 300,
            broker_heartbeat_interval_ms: 2_000,
            leader_replication_throttled_rate: i64::MAX as u64,
            follower_replication_throttled_rate: i64::MAX as u64,
            ..Default::default()
        }
    }

    /// Whether these settings name voters besides `node_id`: a multi-node cluster.
    pub fn is_multi_node(&self, node_id: i32) -> bool {
        self.voters.keys().any(|id| *id != node_id) || self.bootstrap_servers.len() > 1
    }

    /// `process.roles`: a non-empty list of `broker` and `controller`, each at most once.
    pub fn set_roles(&mut self, key: &str, v: &str) -> Result<(), ConfigError> {
        let roles: Vec<&str> = v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if roles.is_empty() {
            return Err(invalid(key, v, "at least one of broker, controller"));
        }
        let (mut broker, mut controller) = (false, false);
        for r in roles {
            let seen = match r {
                "broker" => std::mem::replace(&mut broker, true),
                "controller" => std::mem::replace(&mut controller, true),
                other => {
                    return Err(invalid(
                        key,
                        v,
                        format!("unknown process role '{other}' (broker, controller)"),
                    ))
                }
            };
            if seen {
                return Err(invalid(key, v, format!("duplicate role '{r}'")));
            }
        }
        self.broker = broker;
        self.controller = controller;
        self.roles_set = true;
        Ok(())
    }

    /// `controller.quorum.voters`: `id@host:port` entries (Kafka's format), ids unique.
    pub fn set_voters(&mut self, key: &str, v: &str) -> Result<(), ConfigError> {
        let mut voters = BTreeMap::new();
        for entry in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (id, addr) = entry
                .split_once('@')
                .ok_or_else(|| invalid(key, v, format!("'{entry}' is not ID@HOST:PORT")))?;
            let id: i32 = id
                .trim()
                .parse()
                .ok()
                .filter(|id| *id >= 0)
                .ok_or_else(|| invalid(key, v, format!("'{id}' is not a node id")))?;
            check_host_port(key, v, addr)?;
            if voters.insert(id, addr.trim().to_string()).is_some() {
                return Err(invalid(key, v, format!("voter {id} listed twice")));
            }
        }
        self.voters = voters;
        Ok(())
    }

    /// `controller.quorum.bootstrap.servers`: `host:port` entries.
    pub fn set_bootstrap_servers(&mut self, key: &str, v: &str) -> Result<(), ConfigError> {
        let mut servers = Vec::new();
        for entry in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            check_host_port(key, v, entry)?;
            servers.push(entry.to_string());
        }
        self.bootstrap_servers = servers;
        Ok(())
    }

    pub fn set_controller_listener_names(&mut self, v: &str) {
        self.controller_listener_names = v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
    }

    /// Whether Strom can run what these settings describe: one node always; several in
    /// combined mode (every node `broker,controller`, listed in `controller.quorum.voters`,
    /// with a controller listener). The error names the keys.
    pub fn check_supported(&self, node_id: i32) -> Result<(), ConfigError> {
        let multi = self.is_multi_node(node_id);
        if self.roles_set && !(self.broker && self.controller) {
            let role = if self.broker { "broker" } else { "controller" };
            return Err(ConfigError::Unsupported(format!(
                "process.roles={role}: Strom runs every node as broker and controller \
                 (process.roles=broker,controller); separate {} nodes are not supported yet",
                if self.broker { "controller" } else { "broker" }
            )));
        }
        if multi {
            if !self.voters.contains_key(&node_id) {
                return Err(ConfigError::Unsupported(format!(
                    "controller.quorum.voters must list this node ({node_id}): every Strom node \
                     is a voter (controller.quorum.bootstrap.servers alone, KIP-853's dynamic \
                     quorum, is not supported yet)"
                )));
            }
            if self.controller_listen.is_none() {
                return Err(ConfigError::Unsupported(
                    "a multi-node cluster needs a controller listener: name it in \
                     controller.listener.names and give it an address in listeners \
                     (e.g. listeners=PLAINTEXT://:9092,CONTROLLER://:9093)"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}

fn check_host_port(key: &str, v: &str, addr: &str) -> Result<(), ConfigError> {
    match addr.trim().rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(invalid(key, v, format!("'{addr}' is not HOST:PORT"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_formats_parse_and_bad_ones_name_the_key() {
        let mut c = ClusterConfig::new();
        c.set_roles("process.roles", "broker,controller")
            .expect("roles");
        assert!(c.broker && c.controller && c.roles_set);
        c.set_voters("controller.quorum.voters", "1@localhost:9093, 2@h2:9093")
            .expect("voters");
        assert_eq!(c.voters.get(&2).map(String::as_str), Some("h2:9093"));
        for bad in ["1@h", "x@h:1", "1@h:1,1@h:2", "-1@h:1", "h:1"] {
            let e = c
                .set_voters("controller.quorum.voters", bad)
                .expect_err(bad);
            assert!(e.to_string().contains("controller.quorum.voters"), "{e}");
        }
        for bad in ["", "broker,broker", "router"] {
            assert!(
                ClusterConfig::new()
                    .set_roles("process.roles", bad)
                    .is_err(),
                "{bad}"
            );
        }
        c.set_bootstrap_servers("controller.quorum.bootstrap.servers", "a:1,b:2")
            .expect("bootstrap");
        assert_eq!(c.bootstrap_servers.len(), 2);
        assert!(c
            .set_bootstrap_servers("controller.quorum.bootstrap.servers", "a")
            .is_err());
    }

    #[test]
    fn what_strom_cannot_run_is_refused() {
        let mut c = ClusterConfig::new();
        assert!(c.check_supported(1).is_ok(), "no quorum settings");
        c.set_voters("controller.quorum.voters", "1@localhost:9093")
            .expect("voters");
        assert!(c.check_supported(1).is_ok(), "only this node");
        let e = c
            .check_supported(2)
            .expect_err("a quorum without this node");
        assert!(e.to_string().contains("controller.quorum.voters"), "{e}");
        c.set_voters("controller.quorum.voters", "1@a:1,2@b:1,3@c:1")
            .expect("voters");
        let e = c.check_supported(1).expect_err("no controller listener");
        assert!(e.to_string().contains("controller listener"), "{e}");
        let mut c = ClusterConfig::new();
        c.set_bootstrap_servers("controller.quorum.bootstrap.servers", "a:1,b:1,c:1")
            .expect("bootstrap");
        let e = c.check_supported(1).expect_err("a dynamic quorum");
        assert!(e.to_string().contains("KIP-853"), "{e}");
        let mut c = ClusterConfig::new();
        c.set_roles("process.roles", "broker").expect("roles");
        assert!(
            c.check_supported(1).is_err(),
            "a broker without controllers"
        );
    }

    #[test]
    fn a_kafka_three_node_server_properties_without_a_controller_listener_is_refused() {
        let props = |kv: &[(&str, &str)]| -> Vec<(String, String)> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let three = props(&[
            ("process.roles", "broker,controller"),
            ("node.id", "2"),
            ("controller.quorum.voters", "1@h1:9093,2@h2:9093,3@h3:9093"),
            ("controller.listener.names", "CONTROLLER"),
        ]);
        let e = crate::config::BrokerConfig::from_properties(&three).expect_err("refused");
        assert!(matches!(e, ConfigError::Unsupported(_)), "{e}");
        let one = props(&[
            ("process.roles", "broker,controller"),
            ("node.id", "1"),
            ("controller.quorum.voters", "1@localhost:9093"),
        ]);
        let c = crate::config::BrokerConfig::from_properties(&one).expect("one node");
        assert_eq!(c.cluster.voters.len(), 1);
    }

    #[test]
    fn three_combined_nodes_with_a_controller_listener_make_a_cluster() {
        let props = |kv: &[(&str, &str)]| -> Vec<(String, String)> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let mut kv = vec![
            ("process.roles", "broker,controller"),
            ("node.id", "2"),
            ("controller.quorum.voters", "1@h1:9093,2@h2:9093,3@h3:9093"),
            ("controller.listener.names", "CONTROLLER"),
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
            ),
            ("broker.rack", "r2"),
        ];
        let c = crate::config::BrokerConfig::from_properties(&props(&kv)).expect("a cluster");
        assert!(c.cluster.is_multi_node(c.node_id));
        assert_eq!(c.cluster.rack.as_deref(), Some("r2"));
        assert!(c.cluster.controller_listen.is_some());
        kv[4] = ("listeners", "PLAINTEXT://127.0.0.1:9092");
        let e =
            crate::config::BrokerConfig::from_properties(&props(&kv)).expect_err("no CONTROLLER");
        assert!(e.to_string().contains("controller listener"), "{e}");
        kv[0] = ("process.roles", "broker");
        assert!(crate::config::BrokerConfig::from_properties(&props(&kv)).is_err());
    }
}
