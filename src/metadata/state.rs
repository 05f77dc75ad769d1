//! The metadata as applied: topics by name and id, their partitions' replicas, leaders and
//! epochs, registered brokers, producer-id blocks, broker and group configs, the cluster id —
//! and [`State::apply`], the one place a [`MetadataRecord`] changes it (replayed from the local
//! metadata log or applied from the quorum, in log order).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::MetadataRecord;

/// A partition's replication as the controller decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// -1: no leader (none of the ISR is available).
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// During a reassignment: replicas joining, and replicas leaving once the joining ones are
    /// in the ISR (`replicas` is the target followed by the leaving ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing: Vec<i32>,
}

impl PartitionState {
    fn new(replicas: Vec<i32>) -> Self {
        PartitionState {
            leader: replicas.first().copied().unwrap_or(-1),
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub node: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    /// Fenced by the controller (or not yet unfenced since registering).
    #[serde(default)]
    pub fenced: bool,
    /// Where clients reach it on each of its client listeners (`host`/`port` above are its
    /// inter-broker listener's). Empty in registrations written before listeners were
    /// recorded: `host`/`port` then serve every listener.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<ListenerEndpoint>,
}

/// A broker's advertised address on one listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl BrokerRegistration {
    /// Where a client connected through `listener` reaches this broker: its endpoint of the
    /// same name (None: the broker has no such listener, and Kafka then leaves it out).
    pub fn endpoint(&self, listener: &str) -> Option<(String, u16)> {
        if self.listeners.is_empty() {
            return Some((self.host.clone(), self.port));
        }
        self.listeners
            .iter()
            .find(|l| l.name == listener)
            .map(|l| (l.host.clone(), l.port))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) by_name: HashMap<String, TopicMeta>,
    pub(super) name_by_id: HashMap<Uuid, String>,
    pub(super) producer_id_block_end: i64,
    /// The last block of producer ids given to each broker: [start, end).
    pub(super) producer_blocks: HashMap<i32, (i64, i64)>,
    pub(super) group_configs: HashMap<String, BTreeMap<String, String>>,
    pub(super) broker_configs: HashMap<Option<i32>, BTreeMap<String, String>>,
    /// Set by the first [`MetadataRecord::ClusterId`] (replicated metadata only).
    pub(super) cluster_id: Option<String>,
    /// Each topic's partitions, by topic id (absent for topics recorded before assignments).
    pub(super) partitions: HashMap<Uuid, Vec<PartitionState>>,
    pub(super) brokers: BTreeMap<i32, BrokerRegistration>,
    /// SCRAM credentials by (user, mechanism type).
    pub(super) scram: BTreeMap<(String, i8), crate::security::scram::Credential>,
    /// ACL bindings, sorted and unique; what the authorizer reads (one `Arc` per request).
    pub(super) acls: std::sync::Arc<Vec<crate::security::acl::AclBinding>>,
    /// Client quotas (AlterClientQuotas); read per produce and fetch.
    pub(super) quotas: std::sync::Arc<crate::quota::Quotas>,
}

impl State {
    pub(super) fn apply(&mut self, rec: &MetadataRecord) {
        match rec {
            MetadataRecord::CreateTopic {
                name,
                id,
                partitions,
                configs,
                replicas,
            } => {
                if !replicas.is_empty() {
                    self.partitions.insert(
                        *id,
                        replicas.iter().cloned().map(PartitionState::new).collect(),
                    );
                }
                self.name_by_id.insert(*id, name.clone());
                self.by_name.insert(
                    name.clone(),
                    TopicMeta {
                        name: name.clone(),
                        id: *id,
                        partitions: *partitions,
                        configs: configs.clone(),
                    },
                );
            }
            MetadataRecord::DeleteTopic { id } => {
                if let Some(name) = self.name_by_id.remove(id) {
                    self.by_name.remove(&name);
                }
                self.partitions.remove(id);
            }
            MetadataRecord::CreatePartitions {
                id,
                count,
                replicas,
            } => {
                if let Some(t) = self
                    .name_by_id
                    .get(id)
                    .and_then(|n| self.by_name.get_mut(n))
                {
                    t.partitions = (*count).max(t.partitions);
                    if !replicas.is_empty() {
                        if let Some(parts) = self.partitions.get_mut(id) {
                            parts.extend(replicas.iter().cloned().map(PartitionState::new));
                        }
                    }
                }
            }
            MetadataRecord::PartitionChange {
                id,
                partition,
                leader,
                isr,
                replicas,
                adding,
                removing,
                partition_epoch,
            } => {
                let Some(p) = self
                    .partitions
                    .get_mut(id)
                    .and_then(|ps| ps.get_mut(usize::try_from(*partition).ok()?))
                else {
                    return;
                };
                if partition_epoch.is_some_and(|e| e != p.partition_epoch) {
                    return;
                }
                if let Some(r) = replicas {
                    p.replicas = r.clone();
                }
                if let Some(i) = isr {
                    p.isr = i.clone();
                }
                if let Some(a) = adding {
                    p.adding = a.clone();
                }
                if let Some(r) = removing {
                    p.removing = r.clone();
                }
                if let Some(l) = leader {
                    if *l != p.leader {
                        p.leader = *l;
                        p.leader_epoch += 1;
                    }
                }
                p.partition_epoch += 1;
            }
            MetadataRecord::RegisterBroker {
                node,
                host,
                port,
                rack,
                listeners,
            } => {
                self.brokers.insert(
                    *node,
                    BrokerRegistration {
                        node: *node,
                        host: host.clone(),
                        port: *port,
                        rack: rack.clone(),
                        fenced: true,
                        listeners: listeners.clone(),
                    },
                );
            }
            MetadataRecord::BrokerFencing { node, fenced } => {
                if let Some(b) = self.brokers.get_mut(node) {
                    b.fenced = *fenced;
                }
            }
            MetadataRecord::ProducerIdBlock { end } => {
                self.producer_id_block_end = self.producer_id_block_end.max(*end);
            }
            MetadataRecord::AllocateProducerIds { node, size } => {
                let start = self.producer_id_block_end;
                let end = start.saturating_add((*size).max(0));
                self.producer_id_block_end = end;
                self.producer_blocks.insert(*node, (start, end));
            }
            MetadataRecord::ClusterId { id } => {
                if self.cluster_id.is_none() {
                    self.cluster_id = Some(id.clone());
                }
            }
            MetadataRecord::AlterBrokerConfig { node, configs } => {
                let entry = self.broker_configs.entry(*node).or_default();
                for (k, v) in configs {
                    match v {
                        Some(v) => entry.insert(k.clone(), v.clone()),
                        None => entry.remove(k),
                    };
                }
            }
            MetadataRecord::AlterGroupConfig { group, configs } => {
                let entry = self.group_configs.entry(group.clone()).or_default();
                for (k, v) in configs {
                    match v {
                        Some(v) => entry.insert(k.clone(), v.clone()),
                        None => entry.remove(k),
                    };
                }
                if entry.is_empty() {
                    self.group_configs.remove(group);
                }
            }
            MetadataRecord::ScramCredential {
                user,
                mechanism,
                salt,
                stored_key,
                server_key,
                iterations,
            } => {
                use base64::Engine;
                let b64 = |s: &str| {
                    base64::engine::general_purpose::STANDARD
                        .decode(s)
                        .unwrap_or_default()
                };
                self.scram.insert(
                    (user.clone(), *mechanism),
                    crate::security::scram::Credential {
                        salt: b64(salt),
                        stored_key: b64(stored_key),
                        server_key: b64(server_key),
                        iterations: *iterations,
                    },
                );
            }
            MetadataRecord::ClientQuota { entity, key, value } => {
                let q = std::sync::Arc::make_mut(&mut self.quotas);
                match value {
                    Some(v) => {
                        q.entry(entity.clone()).or_default().insert(key.clone(), *v);
                    }
                    None => {
                        if let Some(keys) = q.get_mut(entity) {
                            keys.remove(key);
                            if keys.is_empty() {
                                q.remove(entity);
                            }
                        }
                    }
                }
            }
            MetadataRecord::Acl(b) => {
                if let Err(at) = self.acls.binary_search(b) {
                    std::sync::Arc::make_mut(&mut self.acls).insert(at, b.clone());
                }
            }
            MetadataRecord::RemoveAcl(b) => {
                if let Ok(at) = self.acls.binary_search(b) {
                    std::sync::Arc::make_mut(&mut self.acls).remove(at);
                }
            }
            MetadataRecord::RemoveScramCredential { user, mechanism } => {
                self.scram.remove(&(user.clone(), *mechanism));
            }
            MetadataRecord::AlterTopicConfig { id, configs } => {
                if let Some(t) = self
                    .name_by_id
                    .get(id)
                    .and_then(|n| self.by_name.get_mut(n))
                {
                    for (k, v) in configs {
                        match v {
                            Some(v) => t.configs.insert(k.clone(), v.clone()),
                            None => t.configs.remove(k),
                        };
                    }
                }
            }
        }
    }
}
