//! The composition root: configuration, cluster metadata, logs and partitions of one broker,
//! and the administrative operations that must change several of them together (create or
//! delete a topic, add partitions, alter topic configs). Handlers call into this.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use thiserror::Error;
use tracing::info;
use uuid::Uuid;

use crate::config::dynamic::{self, DynamicConfigs};
use crate::config::{topic, BrokerConfig, ConfigError};
use crate::coordinator::txn::{TransactionCoordinator, TXN_TOPIC};
use crate::coordinator::{GroupCoordinator, OFFSETS_TOPIC};
use crate::log::io::{OsStorage, Storage};
use crate::log::{LogConfig, LogError, LogManager};
use crate::metadata::{
    MetadataError, MetadataRecord, MetadataStore, TopicMeta, METADATA_DIR, METADATA_LOG,
};
use crate::protocol::WireError;
use crate::replica::throttle::ReplicationQuota;
use crate::replica::{Partition, ReplicaManager};

/// The leader of a partition as the committed metadata names it ([`Broker::leader_hint`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderHint {
    /// -1 when the partition has no leader.
    pub leader: i32,
    pub epoch: i32,
    /// The leader's client endpoint (its registration).
    pub endpoint: Option<crate::metadata::BrokerRegistration>,
}

/// Errors of administrative operations, mapped to wire codes by handlers.
#[derive(Debug, Error)]
pub enum AdminError {
    #[error("Topic '{0}' already exists.")]
    TopicExists(String),
    #[error("This server does not host this topic-partition.")]
    UnknownTopic,
    #[error("{0}")]
    InvalidTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidConfig(String),
    /// A broker limit (`strom.max.partitions`): POLICY_VIOLATION, as Kafka answers its own
    /// per-request partition limit.
    #[error("{0}")]
    PolicyViolation(String),
    #[error("Topic deletion is disabled.")]
    DeletionDisabled,
    /// INVALID_REQUEST (e.g. a broker key that cannot change at run time).
    #[error("{0}")]
    InvalidRequest(String),
    #[error("storage error: {0}")]
    Storage(String),
    /// COORDINATOR_NOT_AVAILABLE.
    #[error("{0}")]
    CoordinatorNotAvailable(String),
}

impl From<LogError> for AdminError {
    fn from(e: LogError) -> Self {
        AdminError::Storage(e.to_string())
    }
}
impl From<MetadataError> for AdminError {
    fn from(e: MetadataError) -> Self {
        AdminError::Storage(e.to_string())
    }
}

/// A topic about to be created: its metadata and where its partitions' replicas go.
struct NewTopic {
    meta: TopicMeta,
    replicas: Vec<Vec<i32>>,
}

/// Where a partition lives, as Metadata and DescribeTopicPartitions report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

mod dead_letter;

pub struct Broker {
    /// The static configuration (file, `--set`, flags).
    pub config: BrokerConfig,
    /// `config` with the dynamic broker configs applied (see `config::dynamic`): what topic
    /// defaults resolve against. Replaced whole when a dynamic config changes.
    effective: RwLock<Arc<BrokerConfig>>,
    pub metadata: MetadataStore,
    pub logs: LogManager,
    pub replicas: Arc<ReplicaManager>,
    pub groups: Arc<GroupCoordinator>,
    pub txns: Arc<TransactionCoordinator>,
    /// Share groups' share-partitions, sessions and state (KIP-932).
    pub shares: Arc<crate::coordinator::share::ShareManager>,
    /// The share coordinator: share-partition state of the `__share_group_state` partitions
    /// this broker leads.
    pub share_states: Arc<crate::coordinator::share::coordinator::ShareCoordinator>,
    /// Serializes the lazy creation and loading of `__share_group_state`.
    share_init: tokio::sync::Mutex<()>,
    /// Serializes metadata-changing operations so validation and commit see the same state.
    admin: Mutex<()>,
    /// Serializes the lazy creation of `__consumer_offsets`.
    group_init: Mutex<()>,
    /// Serializes the lazy creation and loading of `__transaction_state`.
    txn_init: tokio::sync::Mutex<()>,
    /// Topic names whose auto-creation (started by a Metadata request) has not finished: as
    /// in Kafka, where the controller creates them while the broker keeps answering
    /// UNKNOWN_TOPIC_OR_PARTITION, Metadata answers them unknown until creation is done.
    auto_creating: Mutex<HashSet<String>>,
    /// Set by [`Broker::controlled_shutdown`]: heartbeats stop, the broker is on its way out.
    stopping: std::sync::atomic::AtomicBool,
    /// Connections to the other brokers of a cluster (transaction markers, verification).
    pub peers: crate::peer::Peers,
    /// When this broker last saw each broker of the cluster unfenced (see
    /// [`Broker::listed_brokers`]).
    unfenced_seen: Mutex<HashMap<i32, std::time::Instant>>,
    /// Replication throttles ([`crate::replica::throttle`]): what this broker serves as leader
    /// to out-of-sync followers, and fetches as an out-of-sync follower, of throttled replicas;
    /// bounded by the effective `leader/follower.replication.throttled.rate`.
    pub leader_quota: Arc<ReplicationQuota>,
    pub follower_quota: Arc<ReplicationQuota>,
    /// The dynamic broker configs last applied by [`Broker::sync_dynamic_configs`].
    applied_dynamic: Mutex<Option<DynamicConfigs>>,
    /// `authorizer.class.name`'s authorizer (None: none configured, everything is allowed and
    /// the ACL APIs answer SECURITY_DISABLED); the ACLs it decides over are the metadata's.
    pub authorizer: Option<Arc<crate::security::authorizer::Authorizer>>,
    /// The client quotas' rates (the quotas themselves are the metadata's).
    pub quotas: crate::quota::QuotaManager,
}

pub const MAX_PARTITIONS_PER_TOPIC: i32 = 100_000;

/// Topic names being created in the background; taken out of the broker's in-flight set
/// however creation ends (a panic included).
struct InFlight(Arc<Broker>, Vec<String>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut inflight = self.0.auto_creating.lock();
        for n in &self.1 {
            inflight.remove(n);
        }
    }
}

/// Runs blocking `f` (file creation, fsyncs) on Tokio's blocking pool; a panic in it resumes
/// here.
async fn off_thread<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, AdminError> + Send + 'static,
) -> Result<R, AdminError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(AdminError::Storage(format!("blocking task cancelled: {e}"))),
    }
}

/// Topics one Metadata request may auto-create; the names beyond are answered
/// UNKNOWN_TOPIC_OR_PARTITION and not created (a client that retries gets the next ones), so
/// one request cannot create thousands of topics.
pub const MAX_AUTO_CREATE_PER_REQUEST: usize = 100;

/// Topic names being auto-created at once, over all requests; names beyond wait for a retry.
pub const MAX_AUTO_CREATE_IN_FLIGHT: usize = 1_000;

impl Broker {
    /// Opens the data directory: replays metadata, then opens (and recovers) every partition.
    pub fn open(config: BrokerConfig) -> anyhow::Result<Arc<Self>> {
        Self::open_with_storage(config, Arc::new(OsStorage))
    }

    /// [`Broker::open`] on `storage`: every file the broker reads or writes (segments,
    /// indexes, checkpoints, the metadata log, directories) goes through it, so tests can
    /// inject disk faults or cut the power.
    pub fn open_with_storage(
        config: BrokerConfig,
        storage: Arc<dyn Storage>,
    ) -> anyhow::Result<Arc<Self>> {
        let root = config.log_dir.clone();
        let logs = LogManager::with_storage(&root, storage.clone())?;
        let metadata_log = root.join(METADATA_DIR).join(METADATA_LOG);
        if !storage.exists(&metadata_log) {
            // Without the metadata every partition would be unknown: starting would hide (or,
            // once topics are re-created, shadow) all of the data.
            if let Some(example) = logs.partition_dirs().first() {
                anyhow::bail!(
                    "{} holds partition directories (such as {example}) but no metadata log \
                     ({}): refusing to start, as every partition would be unknown. Restore the \
                     metadata log, or move the partition directories out of the data directory \
                     to start empty",
                    root.display(),
                    metadata_log.display()
                );
            }
        }
        let metadata = MetadataStore::open_with(&root, storage.clone())?;
        crate::metadata::check_node_id(storage.as_ref(), &root, config.node_id)?;
        let broker = Self::assemble(config, metadata, logs);
        broker.bootstrap_scram()?;
        let mut known = HashSet::new();
        for t in broker.metadata.topics() {
            for p in 0..t.partitions {
                known.insert(LogManager::dir_name(&t.name, p));
                broker.open_partition(&t, p)?;
            }
        }
        broker.logs.quarantine_strays(&known)?;
        if broker.metadata.topic(OFFSETS_TOPIC).is_some() {
            broker.load_groups()?;
        }
        info!(
            topics = broker.metadata.topics().len(),
            partitions = known.len(),
            cluster_id = %broker.metadata.cluster_id,
            "broker state loaded"
        );
        Ok(broker)
    }

    /// A broker of a multi-node cluster (other voters in `controller.quorum.voters`): starts this node's member of
    /// the metadata quorum (waiting, up to `start_timeout`, for a leader and an agreed cluster
    /// id) and registers the broker. It hosts nothing yet: [`crate::cluster`] opens the
    /// partitions the committed metadata assigns to it, once the controller has unfenced it.
    pub async fn open_cluster(
        config: BrokerConfig,
        start_timeout: std::time::Duration,
    ) -> anyhow::Result<Arc<Self>> {
        Self::open_cluster_with_storage(config, Arc::new(OsStorage), start_timeout).await
    }

    /// [`Broker::open_cluster`] on `storage`: segments, the metadata log and the quorum's Raft
    /// log and vote (tests pass a power-off storage, see [`crate::log::io::PowerOffStorage`]).
    pub async fn open_cluster_with_storage(
        config: BrokerConfig,
        storage: Arc<dyn Storage>,
        start_timeout: std::time::Duration,
    ) -> anyhow::Result<Arc<Self>> {
        let root = config.log_dir.clone();
        let logs = {
            let (root, storage) = (root.clone(), storage.clone());
            tokio::task::spawn_blocking(move || LogManager::with_storage(&root, storage)).await??
        };
        let c = &config.cluster;
        let listen = c
            .controller_listen
            .ok_or_else(|| anyhow::anyhow!("a cluster node needs a controller listener"))?;
        let voters = c
            .voters
            .iter()
            .map(|(id, addr)| (*id as u64, addr.clone()))
            .collect();
        let quorum = crate::quorum::QuorumConfig::new(
            config.node_id as u64,
            std::path::PathBuf::new(),
            listen,
            voters,
        );
        info!(node = config.node_id, quorum = %listen, "joining the metadata quorum");
        let metadata = MetadataStore::start_replicated(
            &root,
            storage.clone(),
            quorum,
            config.node_id,
            start_timeout,
        )
        .await?;
        crate::metadata::check_node_id(storage.as_ref(), &root, config.node_id)?;
        let broker = Self::assemble(config, metadata, logs);
        let b = broker.clone();
        off_thread(move || {
            let c = &b.config;
            b.bootstrap_scram()?;
            b.metadata.commit(&[MetadataRecord::RegisterBroker {
                node: c.node_id,
                host: c.advertised_host.clone(),
                port: c.advertised_port,
                rack: c.cluster.rack.clone(),
                listeners: listener_endpoints(c),
            }])?;
            Ok(())
        })
        .await?;
        info!(
            node = broker.config.node_id,
            cluster_id = %broker.metadata.cluster_id,
            "registered with the cluster"
        );
        Ok(broker)
    }

    /// `--add-scram`: makes each credential whose user has none for that mechanism yet (the
    /// first start, as `kafka-storage format --add-scram`; a credential changed or deleted
    /// later through AlterUserScramCredentials is never overwritten while it exists).
    fn bootstrap_scram(&self) -> Result<(), crate::metadata::MetadataError> {
        use crate::security::scram::{self, Mechanism};
        let mut records = Vec::new();
        for b in &self.config.security.bootstrap_scram {
            // The name was checked when the argument was parsed.
            let Some(m) = Mechanism::from_name(&b.mechanism) else {
                continue;
            };
            if self.metadata.scram_credential(&b.user, m).is_some() {
                continue;
            }
            let salt = scram::random_salt();
            let salted =
                scram::salted_password(m, b.password.as_bytes(), &salt, b.iterations as u32);
            let c = scram::credential(m, &salted, &salt, b.iterations);
            records.push(MetadataRecord::scram_credential(&b.user, m, &c));
            info!(user = %b.user, mechanism = %b.mechanism, "bootstrap SCRAM credential made");
        }
        if !records.is_empty() {
            self.metadata.commit(&records)?;
        }
        Ok(())
    }

    /// The broker around opened metadata and logs, hosting nothing yet.
    fn assemble(config: BrokerConfig, metadata: MetadataStore, logs: LogManager) -> Arc<Self> {
        let config_node = config.node_id;
        let groups = Arc::new(GroupCoordinator::new(config.groups.clone()));
        let replicas = Arc::new(ReplicaManager::default());
        let shares = Arc::new(crate::coordinator::share::ShareManager::new());
        let share_states = Arc::new(
            crate::coordinator::share::coordinator::ShareCoordinator::new(
                config.groups.share_updates_per_snapshot,
            ),
        );
        let txns = Arc::new(TransactionCoordinator::new(
            config.txns.clone(),
            replicas.clone(),
            groups.clone(),
        ));
        let dynamic = DynamicConfigs {
            cluster: metadata.broker_configs(None),
            broker: metadata.broker_configs(Some(config.node_id)),
        };
        // Values were checked when they were altered; a key a newer static file no longer
        // accepts is reported, and the static configuration is used.
        let effective = dynamic::effective(&config, &dynamic).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "dynamic broker configs not applied");
            config.clone()
        });
        let leader_quota = Arc::new(ReplicationQuota::new(
            effective.cluster.leader_replication_throttled_rate,
        ));
        let follower_quota = Arc::new(ReplicationQuota::new(
            effective.cluster.follower_replication_throttled_rate,
        ));
        if config.security.authorizer.is_some()
            && metadata.quorum().is_some()
            && !config
                .security
                .super_users
                .iter()
                .any(|u| u == "User:ANONYMOUS")
        {
            // Kafka fails the same way: follower fetches, transaction markers and share state
            // travel over the PLAINTEXT inter-broker listener as User:ANONYMOUS.
            tracing::warn!(
                "authorizer.class.name is set in a cluster but super.users does not name \
                 User:ANONYMOUS: brokers reach each other over PLAINTEXT as that principal, so \
                 replication works only if it is granted CLUSTER_ACTION on the cluster"
            );
        }
        let authorizer = config.security.authorizer.as_ref().map(|_| {
            Arc::new(crate::security::authorizer::Authorizer::new(
                config.security.super_users.clone(),
                config.security.allow_if_no_acls,
            ))
        });
        Arc::new(Broker {
            authorizer,
            quotas: crate::quota::QuotaManager::default(),
            config,
            effective: RwLock::new(Arc::new(effective)),
            metadata,
            logs,
            replicas,
            groups,
            txns,
            shares,
            share_states,
            share_init: tokio::sync::Mutex::new(()),
            admin: Mutex::new(()),
            group_init: Mutex::new(()),
            txn_init: tokio::sync::Mutex::new(()),
            auto_creating: Mutex::new(HashSet::new()),
            stopping: std::sync::atomic::AtomicBool::new(false),
            peers: crate::peer::Peers::new(config_node),
            unfenced_seen: Mutex::new(HashMap::new()),
            leader_quota,
            follower_quota,
            applied_dynamic: Mutex::new(Some(dynamic)),
        })
    }

    /// The log of partition `index` of `t`, checked against the topic's id (a directory left by
    /// an older topic of the same name is set aside, see [`LogManager::open_for_topic`]).
    fn open_log(
        &self,
        t: &TopicMeta,
        index: i32,
    ) -> Result<Arc<crate::log::PartitionLog>, LogError> {
        let id = crate::metadata::base64_url_uuid(t.id);
        self.logs
            .open_for_topic(&t.name, index, &id, self.log_config(&t.configs))
    }

    fn open_partition(&self, t: &TopicMeta, index: i32) -> Result<Arc<Partition>, LogError> {
        let log = self.open_log(t, index)?;
        let me = self.config.node_id;
        let p = Arc::new(Partition::new(
            Arc::from(t.name.as_str()),
            t.id,
            index,
            log,
            0,
            me,
        ));
        // The role the metadata gives this node (one node: it leads alone, as created).
        if let Some(state) = self.metadata.partition_state(&t.id, index) {
            if state.leader == me {
                if state.replicas != [me] || state.leader_epoch != 0 {
                    p.become_leader(me, state.replicas, state.isr, state.leader_epoch)?;
                }
            } else {
                p.become_follower(state.leader, state.leader_epoch);
            }
        }
        self.replicas.insert(p.clone());
        Ok(p)
    }

    /// Opens partition `index` of `t` for a cluster, leading nothing (a follower of no leader
    /// yet): [`crate::cluster`] gives it the role the committed metadata says. An open one is
    /// returned as it is.
    pub fn host_replica(&self, t: &TopicMeta, index: i32) -> Result<Arc<Partition>, LogError> {
        if let Some(p) = self.replicas.get(&t.name, index) {
            if p.topic_id == t.id {
                return Ok(p);
            }
            // The replica of a deleted topic of the same name: never serve the new topic from
            // its log (the cluster's reconciliation removes it first; this is the backstop).
            self.unhost_replica(&t.name, index)?;
        }
        let log = self.open_log(t, index)?;
        let p = Arc::new(Partition::new(
            Arc::from(t.name.as_str()),
            t.id,
            index,
            log,
            0,
            self.config.node_id,
        ));
        p.load_epoch_checkpoint()?;
        p.forget_high_watermark();
        p.become_follower(-1, -1);
        self.replicas.insert(p.clone());
        Ok(p)
    }

    /// Stops hosting partition `index` of `topic` (a deleted topic's, or one moved away) and
    /// removes its log.
    pub fn unhost_replica(&self, topic: &str, index: i32) -> Result<(), LogError> {
        if let Some(p) = self.replicas.remove(topic, index) {
            p.wake_waiters();
            self.logs.delete(topic, index)?;
        }
        Ok(())
    }

    /// Opens the partitions of committed topic `name` that the metadata assigns to this node,
    /// each in the role it gives (leader or follower); ones already open are left as they are.
    pub fn host_topic(&self, name: &str) -> Result<Vec<Arc<Partition>>, AdminError> {
        let meta = self.metadata.topic(name).ok_or(AdminError::UnknownTopic)?;
        let me = self.config.node_id;
        let mut hosted = Vec::new();
        for p in 0..meta.partitions {
            let mine = self
                .metadata
                .partition_state(&meta.id, p)
                .is_none_or(|s| s.replicas.contains(&me));
            if !mine {
                continue;
            }
            hosted.push(match self.replicas.get(name, p) {
                Some(open) => open,
                None => self.open_partition(&meta, p)?,
            });
        }
        Ok(hosted)
    }

    /// The group coordinator, creating `__consumer_offsets` on first use like Kafka. Creating
    /// the topic (its partitions, a metadata fsync) and loading it run on a blocking thread,
    /// so the first group request does not hold an async worker meanwhile.
    pub async fn group_coordinator(self: &Arc<Self>) -> Result<&GroupCoordinator, AdminError> {
        if !self.groups.is_loaded() {
            let b = self.clone();
            off_thread(move || b.init_groups()).await?;
        }
        Ok(&self.groups)
    }

    fn init_groups(&self) -> Result<(), AdminError> {
        let _guard = self.group_init.lock();
        if self.groups.is_loaded() {
            return Ok(());
        }
        if self.metadata.topic(OFFSETS_TOPIC).is_none() {
            let mut configs = BTreeMap::new();
            configs.insert("cleanup.policy".to_string(), "compact".to_string());
            configs.insert("segment.bytes".to_string(), "104857600".to_string());
            let partitions = Some(self.config.groups.offsets_partitions);
            // One replica on a single node; in a cluster as many as asked, and (as in Kafka)
            // not before that many brokers are alive.
            let rf = if self.is_cluster() {
                let live = self.live_brokers().len();
                let rf = self.config.groups.offsets_replication_factor;
                if live < rf as usize {
                    return Err(AdminError::CoordinatorNotAvailable(format!(
                        "Number of alive brokers '{live}' does not meet the required replication factor '{rf}' for the offsets topic (configured via 'offsets.topic.replication.factor')."
                    )));
                }
                rf
            } else {
                1
            };
            match self.create_topic(OFFSETS_TOPIC, partitions, Some(rf), configs, false) {
                Ok(_) | Err(AdminError::TopicExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if self.is_cluster() {
            // Each partition loads when this broker starts leading it (crate::cluster).
            let meta = self
                .metadata
                .topic(OFFSETS_TOPIC)
                .ok_or(AdminError::UnknownTopic)?;
            self.groups.prepare(meta.partitions);
            return Ok(());
        }
        self.load_groups()
    }

    /// The transaction coordinator, creating and loading `__transaction_state` on first use
    /// (and at start when it exists, so prepared transactions are completed). The topic is
    /// created on a blocking thread.
    pub async fn txn_coordinator(self: &Arc<Self>) -> Result<&TransactionCoordinator, AdminError> {
        if !self.txns.is_loaded() {
            // Offsets of transactions land in the group coordinator: it must be loaded first.
            self.group_coordinator().await?;
            let _guard = self.txn_init.lock().await;
            if !self.txns.is_loaded() {
                if self.metadata.topic(TXN_TOPIC).is_none() {
                    let b = self.clone();
                    off_thread(move || {
                        let mut configs = BTreeMap::new();
                        configs.insert("cleanup.policy".to_string(), "compact".to_string());
                        configs.insert("segment.bytes".to_string(), "104857600".to_string());
                        let partitions = Some(b.config.txns.partitions);
                        // One replica on a single node; in a cluster as many as asked, and
                        // (as in Kafka) not before that many brokers are alive.
                        let rf = if b.is_cluster() {
                            let live = b.live_brokers().len();
                            let rf = b.config.txns.replication_factor;
                            if live < rf as usize {
                                return Err(AdminError::CoordinatorNotAvailable(format!(
                                    "Number of alive brokers '{live}' does not meet the required replication factor '{rf}' for the transactions state topic (configured via 'transaction.state.log.replication.factor')."
                                )));
                            }
                            configs.insert(
                                "min.insync.replicas".to_string(),
                                b.config.txns.min_isr.to_string(),
                            );
                            rf
                        } else {
                            1
                        };
                        match b.create_topic(TXN_TOPIC, partitions, Some(rf), configs, false) {
                            Ok(_) | Err(AdminError::TopicExists(_)) => Ok(()),
                            Err(e) => Err(e),
                        }
                    })
                    .await?;
                }
                let meta = self
                    .metadata
                    .topic(TXN_TOPIC)
                    .ok_or(AdminError::UnknownTopic)?;
                if self.is_cluster() {
                    // Each partition loads when this broker starts leading it (crate::cluster).
                    self.txns.prepare(meta.partitions);
                } else {
                    let partitions = (0..meta.partitions)
                        .map(|p| self.partition(TXN_TOPIC, p).ok_or(AdminError::UnknownTopic))
                        .collect::<Result<Vec<_>, _>>()?;
                    self.txns.load(partitions).await?;
                }
            }
        }
        Ok(&self.txns)
    }

    /// The share-partition manager, creating `__share_group_state` on first use
    /// (`share.coordinator.state.topic.num.partitions` partitions, compacted, as Kafka's share
    /// coordinator does; in a cluster with `share.coordinator.state.topic.replication.factor`
    /// replicas, once that many brokers are alive). A single node loads every state partition
    /// here; a cluster loads each where it is led (`crate::cluster`) and reaches the others
    /// through their leaders (the store `crate::cluster` sets when the broker joins).
    pub async fn share_manager(
        self: &Arc<Self>,
    ) -> Result<&crate::coordinator::share::ShareManager, AdminError> {
        use crate::coordinator::runtime::PartitionedCoordinator;
        use crate::coordinator::share::coordinator::LocalStore;
        use crate::coordinator::share::STATE_TOPIC;
        if self.shares.is_loaded() {
            return Ok(&self.shares);
        }
        let _guard = self.share_init.lock().await;
        if self.shares.is_loaded() {
            return Ok(&self.shares);
        }
        let b = self.clone();
        off_thread(move || {
            if b.metadata.topic(STATE_TOPIC).is_none() {
                let mut configs = BTreeMap::new();
                configs.insert("cleanup.policy".to_string(), "compact".to_string());
                configs.insert("segment.bytes".to_string(), "104857600".to_string());
                let partitions = Some(b.config.groups.share_state_partitions);
                let rf = if b.is_cluster() {
                    let live = b.live_brokers().len();
                    let rf = b.config.groups.share_state_replication_factor;
                    if live < rf as usize {
                        return Err(AdminError::CoordinatorNotAvailable(format!(
                            "Number of alive brokers '{live}' does not meet the required replication factor '{rf}' for the share state topic (configured via 'share.coordinator.state.topic.replication.factor')."
                        )));
                    }
                    configs.insert(
                        "min.insync.replicas".to_string(),
                        b.config.groups.share_state_min_isr.to_string(),
                    );
                    rf
                } else {
                    1
                };
                match b.create_topic(STATE_TOPIC, partitions, Some(rf), configs, false) {
                    Ok(_) | Err(AdminError::TopicExists(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            let meta = b
                .metadata
                .topic(STATE_TOPIC)
                .ok_or(AdminError::UnknownTopic)?;
            b.share_states.prepare(meta.partitions);
            if b.is_cluster() {
                // Each partition loads when this broker starts leading it, and the store that
                // reaches the others was set when the broker joined (crate::cluster).
                if !b.shares.has_store() {
                    return Err(AdminError::CoordinatorNotAvailable(
                        "the broker has not joined its cluster yet".into(),
                    ));
                }
                b.shares.mark_ready();
                return Ok(());
            }
            for i in 0..meta.partitions {
                let p = b.partition(STATE_TOPIC, i).ok_or(AdminError::UnknownTopic)?;
                b.share_states
                    .load_partition(i, p)
                    .map_err(|e| AdminError::Storage(e.to_string()))?;
            }
            b.shares
                .set_store(Arc::new(LocalStore(b.share_states.clone())));
            b.shares.mark_ready();
            Ok(())
        })
        .await?;
        Ok(&self.shares)
    }

    /// The share-partition of `group` on topic `topic_id` partition `index`, if this broker
    /// leads it; else Kafka's per-partition error (UNKNOWN_TOPIC_ID,
    /// UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER).
    pub fn share_target(
        &self,
        group: &str,
        topic_id: uuid::Uuid,
        index: i32,
    ) -> Result<crate::coordinator::share::Target, i16> {
        use crate::protocol::WireError;
        let meta = self
            .metadata
            .topic_by_id(&topic_id)
            .ok_or(WireError::UnknownTopicId.code())?;
        if index < 0 || index >= meta.partitions {
            return Err(WireError::UnknownTopicOrPartition.code());
        }
        let p = self
            .partition(&meta.name, index)
            .filter(|p| p.is_leader())
            .ok_or(WireError::NotLeaderOrFollower.code())?;
        Ok(crate::coordinator::share::Target {
            key: crate::coordinator::share::codec::StateKey {
                group: group.to_string(),
                topic_id,
                partition: index,
            },
            partition: p,
        })
    }

    /// A share group's settings: its group configs over the broker's.
    pub fn share_settings(&self, group: &str) -> crate::coordinator::share::GroupSettings {
        use crate::config::group_configs::{self, AutoReset};
        use crate::coordinator::share::{AutoOffsetReset, DeadLetterTopic, GroupSettings};
        let overrides = self.metadata.group_configs(group);
        let g = &self.effective_config().groups;
        let (_, _, lock_ms, delivery_limit, max_in_flight) =
            group_configs::share_ints(&overrides, g);
        let text = |k: &str| group_configs::text_value(k, &overrides).to_string();
        let auto_offset_reset =
            match group_configs::parse_auto_offset_reset(&text("share.auto.offset.reset")) {
                Some(AutoReset::Earliest) => AutoOffsetReset::Earliest,
                Some(AutoReset::ByDurationMs(ms)) => AutoOffsetReset::ByDuration(ms),
                _ => AutoOffsetReset::Latest,
            };
        let dlq = text("errors.deadletterqueue.topic.name");
        GroupSettings {
            partition: crate::coordinator::share::partition::Settings {
                lock_ms,
                delivery_limit,
                max_in_flight,
                dead_letter: !dlq.is_empty(),
            },
            auto_offset_reset,
            read_committed: text("share.isolation.level").eq_ignore_ascii_case("read_committed"),
            renew_enabled: text("share.renew.acknowledge.enable").eq_ignore_ascii_case("true"),
            dead_letter: (!dlq.is_empty()).then(|| DeadLetterTopic {
                topic: dlq,
                copy_record: text("errors.deadletterqueue.copy.record.enable")
                    .eq_ignore_ascii_case("true"),
            }),
        }
    }

    /// Where transactional id `id`'s coordinator is: this broker on a single node; in a
    /// cluster the leader of its `__transaction_state` partition (node id, host, port), or
    /// why there is none now.
    pub fn txn_coordinator_node(&self, id: &str) -> Result<(i32, String, u16), String> {
        self.coordinator_node(TXN_TOPIC, id)
    }

    /// KIP-890 on the write path: has the coordinator of transactional id `txn_id` check that
    /// `partitions` are part of the producer's open transaction (`add` false: Transactions V1
    /// verification) or add them to it (`add`: Transactions V2, where the broker adds a
    /// partition on the producer's first write to it). Answered by this broker's coordinator
    /// when it is the one, else by the coordinator's broker (AddPartitionsToTxn v5, as a Kafka
    /// broker asks). Coordinator moves and unreachable coordinators answer
    /// NOT_ENOUGH_REPLICAS, which producers retry (Kafka does the same).
    pub async fn txn_add_or_verify(
        self: &Arc<Self>,
        txn_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        add: bool,
    ) -> Result<(), i16> {
        let retriable = |code: i16| {
            if code == WireError::NotCoordinator.code()
                || code == WireError::CoordinatorNotAvailable.code()
                || code == WireError::CoordinatorLoadInProgress.code()
            {
                WireError::NotEnoughReplicas.code()
            } else {
                code
            }
        };
        let coordinator = self
            .txn_coordinator()
            .await
            .map_err(|_| WireError::NotEnoughReplicas.code())?;
        let (node, host, port) = self
            .txn_coordinator_node(txn_id)
            .map_err(|_| WireError::NotEnoughReplicas.code())?;
        if node == self.config.node_id {
            let result = if add {
                coordinator
                    .add_partitions(txn_id, producer_id, producer_epoch, partitions)
                    .await
            } else {
                let mut result = Ok(());
                for (topic, partition) in partitions {
                    result = coordinator
                        .verify_partition(txn_id, producer_id, producer_epoch, topic, *partition)
                        .await;
                    if result.is_err() {
                        break;
                    }
                }
                result
            };
            return result.map_err(retriable);
        }
        use kafka_protocol::messages::add_partitions_to_txn_request::{
            AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
        };
        use kafka_protocol::messages::{
            AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, ProducerId, TopicName,
            TransactionalId,
        };
        use kafka_protocol::protocol::StrBytes;
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            topics.entry(t.as_str()).or_default().push(*p);
        }
        let req = AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(txn_id.to_string())))
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(producer_epoch)
                .with_verify_only(!add)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            AddPartitionsToTxnTopic::default()
                                .with_name(TopicName(StrBytes::from_string(t.to_string())))
                                .with_partitions(ps)
                        })
                        .collect(),
                ),
        ]);
        let resp: AddPartitionsToTxnResponse = self
            .peers
            .request(&format!("{host}:{port}"), ApiKey::AddPartitionsToTxn, 5, &req)
            .await
            .map_err(|e| {
                tracing::debug!(txn_id, node, error = %e, "transaction verification request failed");
                WireError::NotEnoughReplicas.code()
            })?;
        if resp.error_code != 0 {
            return Err(retriable(resp.error_code));
        }
        let code = resp
            .results_by_transaction
            .iter()
            .flat_map(|t| &t.topic_results)
            .flat_map(|t| &t.results_by_partition)
            .map(|p| p.partition_error_code)
            .find(|c| *c != 0);
        match code {
            None => Ok(()),
            Some(c) => Err(retriable(c)),
        }
    }

    /// Where group `group`'s coordinator is: this broker on a single node; in a cluster the
    /// leader of its `__consumer_offsets` partition (node id, host, port), or why there is
    /// none now.
    pub fn group_coordinator_node(&self, group: &str) -> Result<(i32, String, u16), String> {
        self.coordinator_node(OFFSETS_TOPIC, group)
    }

    /// The leader of `key`'s partition of internal topic `topic` (node id, host, port): this
    /// broker on a single node.
    fn coordinator_node(&self, topic: &str, key: &str) -> Result<(i32, String, u16), String> {
        if !self.is_cluster() {
            let c = &self.config;
            return Ok((c.node_id, c.advertised_host.clone(), c.advertised_port));
        }
        let meta = self
            .metadata
            .topic(topic)
            .ok_or_else(|| format!("{topic} does not exist yet"))?;
        let index = crate::coordinator::partition_for(key, meta.partitions);
        let leader = self
            .metadata
            .partition_state(&meta.id, index)
            .map_or(-1, |s| s.leader);
        match self.metadata.broker(leader) {
            Some(b) if !b.fenced => Ok((b.node, b.host, b.port)),
            _ => Err(format!("{topic} partition {index} has no available leader")),
        }
    }

    /// Whether this broker is one of a multi-node cluster (its metadata on the quorum).
    pub fn is_cluster(&self) -> bool {
        self.metadata.quorum().is_some()
    }

    /// Whether broker `node` may take a leadership now: registered and not fenced (on a single
    /// node, only itself).
    pub fn may_lead(&self, node: i32) -> bool {
        if !self.is_cluster() {
            return node == self.config.node_id;
        }
        self.metadata.broker(node).is_some_and(|b| !b.fenced)
    }

    /// Whether a controlled shutdown has begun (heartbeats are no longer sent).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Kafka's controlled shutdown, for a broker of a cluster about to stop: its heartbeats
    /// stop, it fences itself through the quorum (the controller keeps a fenced broker fenced
    /// until it hears a heartbeat sent after the fence), and it waits until the controller
    /// has moved every leadership it held to an in-sync replica — so clients switch leaders
    /// without waiting out `broker.session.timeout.ms`. Gives up after `timeout` (the
    /// shutdown goes on; the leaderships then move when the session expires).
    pub async fn controlled_shutdown(
        self: &Arc<Self>,
        timeout: std::time::Duration,
    ) -> anyhow::Result<()> {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        let me = self.config.node_id;
        let b = self.clone();
        let wait = async move {
            // A heartbeat already on its way lands before the fence.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let fence = vec![crate::metadata::MetadataRecord::BrokerFencing {
                node: me,
                fenced: true,
            }];
            let m = b.clone();
            tokio::task::spawn_blocking(move || m.metadata.commit(&fence)).await??;
            let mut changes = b.metadata.subscribe();
            loop {
                let leading = b
                    .metadata
                    .topics()
                    .iter()
                    .flat_map(|t| {
                        (0..t.partitions).filter_map(|i| b.metadata.partition_state(&t.id, i))
                    })
                    .filter(|s| s.leader == me && s.replicas.len() > 1)
                    .count();
                if leading == 0 {
                    return anyhow::Ok(());
                }
                changes.changed().await?;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| anyhow::anyhow!("leaderships not moved within {timeout:?}"))?
    }

    /// Waits until the controller has unfenced this broker (its heartbeats reached the active
    /// controller), as a Kafka broker waits before it serves clients: until then Metadata
    /// would list no broker at all. Needs the cluster tasks running.
    pub async fn wait_unfenced(&self, timeout: std::time::Duration) -> anyhow::Result<()> {
        let mut changes = self.metadata.subscribe();
        let me = self.config.node_id;
        let wait = async {
            loop {
                if self.metadata.broker(me).is_some_and(|b| !b.fenced) {
                    return;
                }
                if changes.changed().await.is_err() {
                    // The store is gone (shutting down): nothing more will change.
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| anyhow::anyhow!("not unfenced by the controller within {timeout:?}"))
    }

    /// The brokers clients are told about (Metadata, DescribeCluster): on a single node itself;
    /// in a cluster the registered brokers the controller has not fenced, by node id.
    pub fn live_brokers(&self) -> Vec<crate::metadata::BrokerRegistration> {
        if self.is_cluster() {
            let mut v: Vec<_> = self
                .metadata
                .brokers()
                .into_iter()
                .filter(|b| !b.fenced)
                .collect();
            v.sort_by_key(|b| b.node);
            return v;
        }
        let c = &self.config;
        vec![crate::metadata::BrokerRegistration {
            node: c.node_id,
            host: c.advertised_host.clone(),
            port: c.advertised_port,
            rack: c.cluster.rack.clone(),
            fenced: false,
            listeners: listener_endpoints(c),
        }]
    }

    /// Broker `node`'s registration (on a single node: this broker), if known.
    pub fn registration(&self, node: i32) -> Option<crate::metadata::BrokerRegistration> {
        if self.is_cluster() {
            return self.metadata.broker(node);
        }
        self.live_brokers().into_iter().find(|b| b.node == node)
    }

    /// The brokers Metadata and DescribeCluster list: the live ones, and in a cluster also
    /// those fenced less than `broker.session.timeout.ms` after this broker last saw them
    /// unfenced — the window in which Kafka, which fences only at the session timeout, still
    /// lists a broker that died. Strom fences a crashed broker within ~0.3 s; a client that
    /// cached it (librdkafka caches coordinators) and uses it in that window fails to
    /// connect and looks it up again, where a broker gone from the list at once would leave
    /// librdkafka 2.12 retrying a request to its terminating handle without end. No partition
    /// names a fenced broker as its leader either way.
    pub fn listed_brokers(&self) -> Vec<crate::metadata::BrokerRegistration> {
        if !self.is_cluster() {
            return self.live_brokers();
        }
        let grace = std::time::Duration::from_millis(self.config.cluster.broker_session_timeout_ms);
        let now = std::time::Instant::now();
        let mut seen = self.unfenced_seen.lock();
        let mut v: Vec<_> = self
            .metadata
            .brokers()
            .into_iter()
            .filter(|b| {
                if !b.fenced {
                    seen.insert(b.node, now);
                    return true;
                }
                seen.get(&b.node)
                    .is_some_and(|t| now.duration_since(*t) < grace)
            })
            .collect();
        v.sort_by_key(|b| b.node);
        v
    }

    /// Records which brokers are unfenced now (called as the committed metadata is acted on;
    /// a listing records them too), so that [`Broker::listed_brokers`] knows when each was last
    /// seen so.
    pub fn note_unfenced_brokers(&self) {
        let now = std::time::Instant::now();
        let mut seen = self.unfenced_seen.lock();
        for b in self.metadata.brokers() {
            if !b.fenced {
                seen.insert(b.node, now);
            }
        }
    }

    /// The active controller: the metadata quorum's leader in a cluster (-1 while none is
    /// known), this node on its own.
    pub fn controller_id(&self) -> i32 {
        match self.metadata.quorum() {
            Some(q) => q.leader().map_or(-1, |l| l as i32),
            None => self.config.node_id,
        }
    }

    /// Loads the transaction coordinator at start if its topic exists.
    pub async fn load_transactions(self: &Arc<Self>) -> Result<(), AdminError> {
        if self.metadata.topic(TXN_TOPIC).is_some() && !self.is_cluster() {
            self.txn_coordinator().await?;
        }
        Ok(())
    }

    fn load_groups(&self) -> Result<(), AdminError> {
        let meta = self
            .metadata
            .topic(OFFSETS_TOPIC)
            .ok_or(AdminError::UnknownTopic)?;
        let partitions = (0..meta.partitions)
            .map(|p| {
                self.partition(OFFSETS_TOPIC, p)
                    .ok_or(AdminError::UnknownTopic)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.groups.load(partitions)?;
        Ok(())
    }

    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        topic::resolve(&self.effective_config(), overrides)
    }

    /// The configuration in force: the static one with the dynamic broker configs applied.
    pub fn effective_config(&self) -> Arc<BrokerConfig> {
        self.effective.read().clone()
    }

    /// The dynamic broker configs in force for this broker.
    pub fn dynamic_configs(&self) -> DynamicConfigs {
        DynamicConfigs {
            cluster: self.metadata.broker_configs(None),
            broker: self.metadata.broker_configs(Some(self.config.node_id)),
        }
    }

    /// AlterConfigs / IncrementalAlterConfigs on a BROKER resource: applies `changes` (`None`
    /// removes a key; with `replace`, every other dynamic key of the resource goes too) to this
    /// broker's (`node` = Some) or the cluster-wide (None) dynamic configs. Only
    /// [`dynamic::is_dynamic`] keys may be set (INVALID_REQUEST, Kafka's message); values are
    /// checked as in a config file (INVALID_CONFIG). Persisted in the metadata log; every
    /// partition's log settings are resolved again, so topics without an override of their own
    /// follow at once.
    pub fn alter_broker_configs(
        &self,
        node: Option<i32>,
        changes: BTreeMap<String, Option<String>>,
        replace: bool,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let fixed: Vec<&str> = changes
            .iter()
            .filter(|(k, v)| v.is_some() && !dynamic::is_dynamic(k))
            .map(|(k, _)| k.as_str())
            .collect();
        if !fixed.is_empty() {
            return Err(AdminError::InvalidRequest(format!(
                "Cannot update these configs dynamically: Set({})",
                fixed.join(", ")
            )));
        }
        let _guard = self.admin.lock();
        let mut changes = changes;
        // Removing a key that is not set changes nothing (and may name any key).
        let current = self.metadata.broker_configs(node);
        changes.retain(|k, v| v.is_some() || current.contains_key(k));
        if replace {
            for k in current.keys() {
                changes.entry(k.clone()).or_insert(None);
            }
        }
        let mut next = self.dynamic_configs();
        let layer = if node.is_some() {
            &mut next.broker
        } else {
            &mut next.cluster
        };
        for (k, v) in &changes {
            match v {
                Some(v) => layer.insert(k.clone(), v.clone()),
                None => layer.remove(k),
            };
        }
        let effective = dynamic::effective(&self.config, &next).map_err(|e| match e {
            ConfigError::Invalid { key, value, reason } => AdminError::InvalidConfig(format!(
                "Invalid value {value} for configuration {key}: {reason}"
            )),
            other => AdminError::InvalidConfig(other.to_string()),
        })?;
        if validate_only || changes.is_empty() {
            return Ok(());
        }
        self.metadata.commit(&[MetadataRecord::AlterBrokerConfig {
            node,
            configs: changes,
        }])?;
        self.set_effective(effective);
        for t in self.metadata.topics() {
            let lc = self.log_config(&t.configs);
            for p in 0..t.partitions {
                if let Some(part) = self.replicas.get(&t.name, p) {
                    part.log.set_config(lc.clone());
                }
            }
        }
        Ok(())
    }

    fn set_effective(&self, effective: BrokerConfig) {
        self.leader_quota
            .set_limit(effective.cluster.leader_replication_throttled_rate);
        self.follower_quota
            .set_limit(effective.cluster.follower_replication_throttled_rate);
        *self.effective.write() = Arc::new(effective);
    }

    /// In a cluster, brings this broker's effective configuration up to the dynamic broker
    /// configs in the metadata, whichever broker committed them (each reconciliation calls it,
    /// then [`Broker::sync_partition_configs`] for every hosted partition).
    pub fn sync_dynamic_configs(&self) {
        let dynamic = self.dynamic_configs();
        let mut applied = self.applied_dynamic.lock();
        if applied.as_ref() != Some(&dynamic) {
            match dynamic::effective(&self.config, &dynamic) {
                Ok(e) => self.set_effective(e),
                Err(e) => tracing::warn!(error = %e, "dynamic broker configs not applied"),
            }
            *applied = Some(dynamic);
        }
    }

    /// A hosted partition of topic `t` brought up to the metadata: its log settings (`lc`, the
    /// topic's resolved configs) and its replication throttles (the follower one only while
    /// `isr` lacks this broker).
    pub fn sync_partition_configs(
        &self,
        t: &TopicMeta,
        lc: &LogConfig,
        part: &Partition,
        isr: &[i32],
    ) {
        let me = self.config.node_id;
        if part.log.config() != *lc {
            part.log.set_config(lc.clone());
        }
        let listed = |key: &str| topic::throttles(t.configs.get(key), part.index, me);
        part.set_throttled(
            listed("leader.replication.throttled.replicas"),
            listed("follower.replication.throttled.replicas") && !isr.contains(&me),
        );
    }

    /// A partition's leader, leader epoch, replicas and ISR as the metadata says (a topic
    /// recorded before assignments: this node alone, at the epoch its log leads with).
    pub fn replication_of(&self, meta: &TopicMeta, partition: i32) -> Replication {
        match self.metadata.partition_state(&meta.id, partition) {
            Some(p) => Replication {
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                replicas: p.replicas,
                isr: p.isr,
            },
            None => {
                let me = self.config.node_id;
                Replication {
                    leader: me,
                    leader_epoch: self
                        .partition(&meta.name, partition)
                        .map(|p| p.leader_epoch())
                        .unwrap_or(0),
                    replicas: vec![me],
                    isr: vec![me],
                }
            }
        }
    }

    /// The error for a request about partition `index` of `topic` that this broker does not
    /// host: in a cluster, NOT_LEADER_OR_FOLLOWER when the partition exists (another broker
    /// has it: the client looks the leader up again), else `unknown`.
    pub fn not_hosted_code(&self, topic: Option<&TopicMeta>, index: i32, unknown: i16) -> i16 {
        match topic {
            Some(t) if self.is_cluster() && (0..t.partitions).contains(&index) => {
                crate::protocol::WireError::NotLeaderOrFollower.code()
            }
            _ => unknown,
        }
    }

    /// Where partition `index` of `topic` is led, as the committed metadata says: for the
    /// leader hint (KIP-951) a NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH answer to a
    /// produce or fetch carries, so the client goes to the new leader without a Metadata
    /// round trip. None on a single node, or when the partition is unknown; the endpoint is
    /// None when the leader is not a registered, unfenced broker.
    pub fn leader_hint(&self, topic: &TopicMeta, index: i32) -> Option<LeaderHint> {
        if !self.is_cluster() {
            return None;
        }
        let state = self.metadata.partition_state(&topic.id, index)?;
        let endpoint = self
            .metadata
            .broker(state.leader)
            .filter(|b| !b.fenced && state.leader >= 0);
        Some(LeaderHint {
            leader: state.leader,
            epoch: state.leader_epoch,
            endpoint,
        })
    }

    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.replicas.get(topic, index)
    }

    /// Partition `index` of `meta` as hosted here, for a produce. In a cluster, when the
    /// committed metadata names this broker its leader but this broker has not taken that
    /// leadership up yet (the reconciliation that follows a commit runs a few milliseconds
    /// behind it), waits until `deadline` for it: a produce that arrives right after its
    /// topic was created, or right after the leadership moved here, then finds the leader in
    /// place instead of being answered NOT_LEADER_OR_FOLLOWER (which a client sending without
    /// retries reports as a failure). At once when this replica leads, the metadata names
    /// another leader, or on a single node.
    pub async fn partition_to_lead(
        &self,
        meta: &TopicMeta,
        index: i32,
        deadline: tokio::time::Instant,
    ) -> Option<Arc<Partition>> {
        let me = self.config.node_id;
        loop {
            let p = self.partition(&meta.name, index);
            if !self.is_cluster() || p.as_ref().is_some_and(|p| p.is_leader()) {
                return p;
            }
            let committed_here = self
                .metadata
                .partition_state(&meta.id, index)
                .is_some_and(|st| st.leader == me);
            if !committed_here || tokio::time::Instant::now() >= deadline {
                return p;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// Replica lists for new partitions over the registered brokers (this node alone when
    /// none registered: a single node), spread as [`crate::metadata::placement`] does, from a
    /// random starting broker like Kafka.
    fn place_replicas(&self, partitions: i32, rf: i16) -> Result<Vec<Vec<i32>>, AdminError> {
        use crate::metadata::placement::{place, Candidate};
        let mut candidates: Vec<Candidate> = self
            .metadata
            .brokers()
            .into_iter()
            .filter(|b| !b.fenced)
            .map(|b| Candidate {
                node: b.node,
                rack: b.rack,
            })
            .collect();
        if candidates.is_empty() {
            candidates.push(Candidate {
                node: self.config.node_id,
                rack: None,
            });
        }
        let r = Uuid::new_v4().as_u128();
        let n = candidates.len();
        place(
            &candidates,
            partitions,
            rf,
            (r % n as u128) as usize,
            ((r >> 64) % n as u128) as usize,
        )
        .map_err(AdminError::InvalidReplicationFactor)
    }

    /// Creates a topic (or only validates the request).
    pub fn create_topic(
        &self,
        name: &str,
        partitions: Option<i32>,
        replication_factor: Option<i16>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMeta, AdminError> {
        let new = self.new_topic(name, partitions, replication_factor, configs)?;
        self.create_new_topic(new, validate_only)
    }

    /// CreateTopics with manual replica assignments: partition `i` on the brokers of
    /// `assignments[i]`, the first its leader; every list as long as the first.
    pub fn create_topic_assigned(
        &self,
        name: &str,
        assignments: Vec<Vec<i32>>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMeta, AdminError> {
        validate_topic_name(name)?;
        let partitions = assignments.len() as i32;
        if partitions <= 0 || partitions > MAX_PARTITIONS_PER_TOPIC {
            return Err(AdminError::InvalidPartitions(format!("Number of partitions must be in [1, {MAX_PARTITIONS_PER_TOPIC}], got {partitions}.")));
        }
        let rf = assignments[0].len();
        for replicas in &assignments {
            self.validate_assignment(replicas)?;
            if replicas.len() != rf {
                return Err(AdminError::InvalidReplicaAssignment(format!(
                    "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {rf} replica(s).",
                    replicas.len()
                )));
            }
        }
        topic::validate_all(configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|(_, r)| AdminError::InvalidConfig(r))?;
        let new = NewTopic {
            meta: TopicMeta {
                name: name.to_string(),
                id: Uuid::new_v4(),
                partitions,
                configs,
            },
            replicas: assignments,
        };
        self.create_new_topic(new, validate_only)
    }

    fn create_new_topic(
        &self,
        new: NewTopic,
        validate_only: bool,
    ) -> Result<TopicMeta, AdminError> {
        let _guard = self.admin.lock();
        let existing = self.metadata.topics();
        let canonical = canonical_names(&existing);
        self.check_new_topic(&new.meta, &canonical, partition_total(&existing))?;
        if validate_only {
            return Ok(new.meta);
        }
        self.commit_topics(std::slice::from_ref(&new))?;
        Ok(new.meta)
    }

    /// Validates what a topic can be checked for without the admin lock and builds it.
    fn new_topic(
        &self,
        name: &str,
        partitions: Option<i32>,
        replication_factor: Option<i16>,
        configs: BTreeMap<String, String>,
    ) -> Result<NewTopic, AdminError> {
        validate_topic_name(name)?;
        let partitions = partitions.unwrap_or(self.config.num_partitions);
        if partitions <= 0 || partitions > MAX_PARTITIONS_PER_TOPIC {
            return Err(AdminError::InvalidPartitions(format!("Number of partitions must be in [1, {MAX_PARTITIONS_PER_TOPIC}], got {partitions}.")));
        }
        let rf = replication_factor.unwrap_or(self.config.default_replication_factor);
        let replicas = self.place_replicas(partitions, rf)?;
        topic::validate_all(configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|(_, r)| AdminError::InvalidConfig(r))?;
        Ok(NewTopic {
            meta: TopicMeta {
                name: name.to_string(),
                id: Uuid::new_v4(),
                partitions,
                configs,
            },
            replicas,
        })
    }

    /// Under the admin lock: `meta` must not exist, collide with an existing name (`canonical`:
    /// canonical name -> name), or take the broker past `strom.max.partitions` (`total`: the
    /// partitions that exist).
    fn check_new_topic(
        &self,
        meta: &TopicMeta,
        canonical: &HashMap<String, String>,
        total: i64,
    ) -> Result<(), AdminError> {
        if self.metadata.topic(&meta.name).is_some() {
            return Err(AdminError::TopicExists(meta.name.clone()));
        }
        if let Some(other) = canonical.get(&canonical_name(&meta.name)) {
            return Err(AdminError::InvalidTopic(format!(
                "Topic '{}' collides with existing topic: {other}",
                meta.name
            )));
        }
        self.check_partition_cap(total, i64::from(meta.partitions))
    }

    /// `strom.max.partitions`: `total` partitions exist and `adding` more are asked for.
    fn check_partition_cap(&self, total: i64, adding: i64) -> Result<(), AdminError> {
        let max = i64::from(self.config.max_partitions);
        if total + adding > max {
            return Err(AdminError::PolicyViolation(format!(
                "Adding {adding} partition(s) would exceed the broker's limit of {max} partitions \
                 (strom.max.partitions); {total} exist."
            )));
        }
        Ok(())
    }

    /// Makes topics durable with one metadata fsync, then opens their partitions.
    fn commit_topics(&self, new: &[NewTopic]) -> Result<(), AdminError> {
        let records: Vec<MetadataRecord> = new
            .iter()
            .map(|n| MetadataRecord::CreateTopic {
                name: n.meta.name.clone(),
                id: n.meta.id,
                partitions: n.meta.partitions,
                configs: n.meta.configs.clone(),
                replicas: n.replicas.clone(),
            })
            .collect();
        let topics: Vec<TopicMeta> = new.iter().map(|n| n.meta.clone()).collect();
        let topics = topics.as_slice();
        self.metadata.commit(&records)?;
        for (i, t) in topics.iter().enumerate() {
            // In a cluster the brokers host their replicas as the committed metadata says
            // (crate::cluster), this one included.
            for p in (0..t.partitions).filter(|_| !self.is_cluster()) {
                if let Err(e) = self.open_partition(t, p) {
                    // E.g. out of file handles: a topic recorded but not openable would keep
                    // the broker from starting again. Undo this and the remaining topics.
                    tracing::warn!(topic = t.name, partition = p, error = %e, "creating the topic failed; rolling it back");
                    self.roll_back_creation(&topics[i..]);
                    return Err(e.into());
                }
            }
            info!(topic = t.name, partitions = t.partitions, id = %t.id, "created topic");
        }
        Ok(())
    }

    /// Removes topics whose creation was committed but could not be completed: their metadata
    /// (a DeleteTopic record) and whatever partitions were opened.
    fn roll_back_creation(&self, topics: &[TopicMeta]) {
        let records: Vec<MetadataRecord> = topics
            .iter()
            .map(|t| MetadataRecord::DeleteTopic { id: t.id })
            .collect();
        if let Err(e) = self.metadata.commit(&records) {
            tracing::error!(error = %e, "could not roll back a failed topic creation");
            return;
        }
        for t in topics {
            for p in 0..t.partitions {
                self.replicas.remove(&t.name, p);
                if let Err(e) = self.logs.delete(&t.name, p) {
                    tracing::warn!(topic = t.name, partition = p, error = %e, "could not remove a rolled-back partition");
                }
            }
        }
    }

    /// Whether a Metadata request started creating `name` and creation has not finished.
    pub fn is_auto_creating(&self, name: &str) -> bool {
        self.auto_creating.lock().contains(name)
    }

    /// The names being created now (usually none): one lock for a whole Metadata request.
    pub fn auto_creating_names(&self) -> HashSet<String> {
        self.auto_creating.lock().clone()
    }

    /// Starts auto-creating (Metadata with `allow_auto_topic_creation`) those of `names` that
    /// are unknown and not already being created, at most [`MAX_AUTO_CREATE_PER_REQUEST`] of
    /// them in request order and [`MAX_AUTO_CREATE_IN_FLIGHT`] over all requests, and returns
    /// without waiting: the metadata fsync runs on a blocking thread, and until it is done
    /// [`Broker::is_auto_creating`] names them. Kafka's broker likewise hands the creation to
    /// its controller and answers the triggering request, and those arriving while the
    /// controller works, with UNKNOWN_TOPIC_OR_PARTITION. Needs a Tokio runtime.
    pub fn start_auto_create(self: &Arc<Self>, names: &[&str]) {
        if !self.config.auto_create_topics_enable || names.is_empty() {
            return;
        }
        let mut started: Vec<String> = Vec::new();
        {
            let mut inflight = self.auto_creating.lock();
            for name in names {
                if started.len() >= MAX_AUTO_CREATE_PER_REQUEST
                    || inflight.len() >= MAX_AUTO_CREATE_IN_FLIGHT
                {
                    break;
                }
                if self.metadata.topic(name).is_none() && inflight.insert(name.to_string()) {
                    started.push(name.to_string());
                }
            }
        }
        if started.is_empty() {
            return;
        }
        let done = InFlight(self.clone(), started);
        tokio::task::spawn_blocking(move || {
            let names: Vec<&str> = done.1.iter().map(String::as_str).collect();
            done.0.auto_create_topics(&names);
            drop(names);
            drop(done);
        });
    }

    /// Starts creating the internal topics a streams group's topology needs (repartition and
    /// changelog topics, each with its partition count, replication factor and configs), in the
    /// background as Kafka's broker does from StreamsGroupHeartbeat; topics that exist or are
    /// already being created are skipped, at most [`MAX_AUTO_CREATE_IN_FLIGHT`] names are in
    /// flight. A topic that cannot be created (a bad config, the partition cap) is logged;
    /// the group keeps reporting it missing. Needs a Tokio runtime.
    pub fn start_internal_topics(
        self: &Arc<Self>,
        topics: Vec<crate::coordinator::streams_group::topology::InternalTopic>,
    ) {
        let mut started = Vec::new();
        {
            let mut inflight = self.auto_creating.lock();
            for t in topics {
                if inflight.len() >= MAX_AUTO_CREATE_IN_FLIGHT {
                    break;
                }
                if self.metadata.topic(&t.name).is_none() && inflight.insert(t.name.clone()) {
                    started.push(t);
                }
            }
        }
        if started.is_empty() {
            return;
        }
        let names: Vec<String> = started.iter().map(|t| t.name.clone()).collect();
        let done = InFlight(self.clone(), names);
        tokio::task::spawn_blocking(move || {
            for t in started {
                let created = done.0.create_topic(
                    &t.name,
                    Some(t.partitions),
                    t.replication_factor,
                    t.configs,
                    false,
                );
                match created {
                    Ok(_) | Err(AdminError::TopicExists(_)) => {}
                    Err(e) => {
                        tracing::warn!(topic = %t.name, error = %e, "cannot create a streams internal topic")
                    }
                }
            }
            drop(done);
        });
    }

    /// Auto-creates (Metadata with `allow_auto_topic_creation`) those of `names` that are
    /// unknown and valid, with broker defaults, when `auto.create.topics.enable` is on: at most
    /// [`MAX_AUTO_CREATE_PER_REQUEST`] of them, in request order, within `strom.max.partitions`,
    /// all made durable by one metadata fsync. Returns how many were created; a name not
    /// created is simply not created (the caller answers UNKNOWN_TOPIC_OR_PARTITION).
    pub fn auto_create_topics(&self, names: &[&str]) -> usize {
        if !self.config.auto_create_topics_enable {
            return 0;
        }
        let _guard = self.admin.lock();
        let existing = self.metadata.topics();
        let mut canonical = canonical_names(&existing);
        let mut total = partition_total(&existing);
        let mut batch: Vec<NewTopic> = Vec::new();
        for name in names {
            if batch.len() >= MAX_AUTO_CREATE_PER_REQUEST {
                break;
            }
            let Ok(new) = self.new_topic(name, None, None, BTreeMap::new()) else {
                continue;
            };
            if self.check_new_topic(&new.meta, &canonical, total).is_err() {
                continue;
            }
            total += i64::from(new.meta.partitions);
            canonical.insert(canonical_name(&new.meta.name), new.meta.name.clone());
            batch.push(new);
        }
        if batch.is_empty() {
            return 0;
        }
        match self.commit_topics(&batch) {
            Ok(()) => batch.len(),
            Err(e) => {
                tracing::warn!(error = %e, topics = batch.len(), "auto-creating topics failed");
                0
            }
        }
    }

    pub fn delete_topic(&self, name: &str) -> Result<TopicMeta, AdminError> {
        if !self.config.delete_topic_enable {
            return Err(AdminError::DeletionDisabled);
        }
        let _guard = self.admin.lock();
        let meta = self.metadata.topic(name).ok_or(AdminError::UnknownTopic)?;
        self.metadata
            .commit(&[MetadataRecord::DeleteTopic { id: meta.id }])?;
        for p in 0..meta.partitions {
            let hosted = self.replicas.remove(name, p);
            if let Some(part) = &hosted {
                part.wake_waiters();
            }
            // In a cluster only the partitions this broker hosts are here (the others' brokers
            // remove theirs as they apply the deletion).
            if hosted.is_some() || !self.is_cluster() {
                self.logs.delete(name, p)?;
            }
        }
        info!(topic = name, "deleted topic");
        Ok(meta)
    }

    /// Raises `name` to `count` partitions (or only validates). `assignments`, when given, are
    /// the replica lists of the new partitions, checked like Kafka's controller does: one per
    /// new partition, each naming only registered brokers (this one), once each, with the
    /// topic's replication factor (1).
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<&[Vec<i32>]>,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let _guard = self.admin.lock();
        let meta = self.metadata.topic(name).ok_or(AdminError::UnknownTopic)?;
        if count == meta.partitions {
            return Err(AdminError::InvalidPartitions(format!(
                "Topic already has {count} partition(s)."
            )));
        }
        if count < meta.partitions {
            return Err(AdminError::InvalidPartitions(format!(
                "The topic {name} currently has {} partition(s); {count} would not be an increase.",
                meta.partitions
            )));
        }
        if count > MAX_PARTITIONS_PER_TOPIC {
            return Err(AdminError::InvalidPartitions(format!(
                "Number of partitions must be at most {MAX_PARTITIONS_PER_TOPIC}."
            )));
        }
        self.check_partition_cap(
            partition_total(&self.metadata.topics()),
            i64::from(count) - i64::from(meta.partitions),
        )?;
        if let Some(assignments) = assignments {
            let additional = i64::from(count) - i64::from(meta.partitions);
            if assignments.len() as i64 != additional {
                return Err(AdminError::InvalidReplicaAssignment(format!(
                    "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                    assignments.len()
                )));
            }
            for replicas in assignments {
                self.validate_assignment(replicas)?;
            }
        }
        if validate_only {
            return Ok(());
        }
        let replicas = match assignments {
            Some(a) => a.to_vec(),
            None => {
                // As many replicas as the topic's first partition has.
                let rf = self
                    .metadata
                    .partition_state(&meta.id, 0)
                    .map_or(1, |p| p.replicas.len() as i16);
                self.place_replicas(count - meta.partitions, rf)?
            }
        };
        self.metadata.commit(&[MetadataRecord::CreatePartitions {
            id: meta.id,
            count,
            replicas,
        }])?;
        let meta = self.metadata.topic(name).ok_or(AdminError::UnknownTopic)?;
        for p in (0..count).filter(|_| !self.is_cluster()) {
            if self.replicas.get(name, p).is_none() {
                self.open_partition(&meta, p)?;
            }
        }
        Ok(())
    }

    /// One manual replica assignment, with Kafka's messages: brokers registered (a single node
    /// is the only one), none twice.
    pub fn validate_assignment(&self, replicas: &[i32]) -> Result<(), AdminError> {
        let bad = |m: String| Err(AdminError::InvalidReplicaAssignment(m));
        if replicas.is_empty() {
            return bad("The manual partition assignment includes an empty replica list.".into());
        }
        let mut sorted = replicas.to_vec();
        sorted.sort_unstable();
        for (i, &b) in sorted.iter().enumerate() {
            let registered = if self.is_cluster() {
                self.metadata.broker(b).is_some()
            } else {
                b == self.config.node_id
            };
            if !registered {
                return bad(format!("The manual partition assignment includes broker {b}, but no such broker is registered."));
            }
            if i > 0 && sorted[i - 1] == b {
                return bad(format!(
                    "The manual partition assignment includes the broker {b} more than once."
                ));
            }
        }
        Ok(())
    }

    /// Applies topic config changes (`None` = delete the override). With `replace`, every
    /// override not named is removed (legacy AlterConfigs semantics).
    /// IncrementalAlterConfigs on a GROUP: applies `changes` (`None` removes a key) to the
    /// group's dynamic configs after checking the result (Kafka's `GroupConfig.validate`), and
    /// persists them in the metadata log. The group need not exist, as in Kafka; KIP-848
    /// groups pick the values up at their members' next heartbeat.
    pub fn alter_group_configs(
        &self,
        group: &str,
        changes: BTreeMap<String, Option<String>>,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let _guard = self.admin.lock();
        let mut next = self.metadata.group_configs(group);
        for (k, v) in &changes {
            match v {
                Some(v) => next.insert(k.clone(), v.clone()),
                None => next.remove(k),
            };
        }
        crate::config::group_configs::validate(&next, &self.config.groups)
            .map_err(AdminError::InvalidConfig)?;
        if validate_only || changes.is_empty() {
            return Ok(());
        }
        self.metadata.commit(&[MetadataRecord::AlterGroupConfig {
            group: group.to_string(),
            configs: changes,
        }])?;
        Ok(())
    }

    pub fn alter_topic_configs(
        &self,
        name: &str,
        changes: BTreeMap<String, Option<String>>,
        replace: bool,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        for (k, v) in &changes {
            let spec = topic::spec(k).ok_or_else(|| {
                AdminError::InvalidConfig(format!("Unknown topic config name: {k}"))
            })?;
            if let Some(v) = v {
                topic::validate(spec, v).map_err(|r| {
                    AdminError::InvalidConfig(format!(
                        "Invalid value {v} for configuration {k}: {r}"
                    ))
                })?;
            }
        }
        let _guard = self.admin.lock();
        let meta = self.metadata.topic(name).ok_or(AdminError::UnknownTopic)?;
        let mut changes = changes;
        if replace {
            for k in meta.configs.keys() {
                changes.entry(k.clone()).or_insert(None);
            }
        }
        if validate_only {
            return Ok(());
        }
        self.metadata.commit(&[MetadataRecord::AlterTopicConfig {
            id: meta.id,
            configs: changes,
        }])?;
        let meta = self.metadata.topic(name).ok_or(AdminError::UnknownTopic)?;
        let lc = self.log_config(&meta.configs);
        for p in 0..meta.partitions {
            if let Some(part) = self.replicas.get(name, p) {
                part.log.set_config(lc.clone());
            }
        }
        Ok(())
    }

    /// Periodic maintenance: retention, time-based rolls, the recovery-point checkpoints.
    pub fn run_maintenance(&self, now_ms: i64) {
        for p in self.replicas.all() {
            if let Err(e) = p.log.roll_if_expired(now_ms) {
                tracing::warn!(log = p.log.name(), error = %e, "roll failed");
            }
            if let Err(e) = p.log.apply_retention(now_ms) {
                tracing::warn!(log = p.log.name(), error = %e, "retention failed");
            }
            p.log
                .expire_producers(now_ms, self.config.producer_id_expiration_ms);
            if let Err(e) = p.log.checkpoint_recovery_point() {
                tracing::warn!(log = p.log.name(), error = %e, "recovery point checkpoint failed");
            }
        }
    }

    /// Graceful stop: flush everything and write indexes.
    pub fn close(&self) {
        self.logs.close_all();
    }
}

/// Kafka's topic name rules.
pub fn validate_topic_name(name: &str) -> Result<(), AdminError> {
    if name.is_empty() {
        return Err(AdminError::InvalidTopic(
            "Topic name is illegal, it can't be empty".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(AdminError::InvalidTopic(
            "Topic name cannot be \".\" or \"..\"".into(),
        ));
    }
    if name.len() > 249 {
        return Err(AdminError::InvalidTopic(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(AdminError::InvalidTopic(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// Partitions of all `topics`.
fn partition_total(topics: &[TopicMeta]) -> i64 {
    topics.iter().map(|t| i64::from(t.partitions)).sum()
}

/// Canonical name (`.` as `_`) -> name, of all `topics`.
fn canonical_names(topics: &[TopicMeta]) -> HashMap<String, String> {
    topics
        .iter()
        .map(|t| (canonical_name(&t.name), t.name.clone()))
        .collect()
}

fn canonical_name(name: &str) -> String {
    name.replace('.', "_")
}

/// This broker's client listeners as registered: name and advertised address of each.
fn listener_endpoints(c: &BrokerConfig) -> Vec<crate::metadata::ListenerEndpoint> {
    c.client_listeners
        .iter()
        .map(|l| crate::metadata::ListenerEndpoint {
            name: l.name.clone(),
            host: l.advertised_host.clone(),
            port: l.advertised_port,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::io::FaultyStorage;

    /// A broker in a temporary directory on a disk whose faults the test controls.
    fn faulty_broker() -> (tempfile::TempDir, FaultyStorage, Arc<Broker>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = BrokerConfig {
            log_dir: dir.path().to_path_buf(),
            ..BrokerConfig::default()
        };
        let storage = FaultyStorage::default();
        let b = Broker::open_with_storage(config, Arc::new(storage.clone())).expect("open");
        (dir, storage, b)
    }

    /// A topic deleted and re-created under the same name before a broker acted on the
    /// deletion: hosting the new topic's partition never hands back the old topic's replica
    /// and its log.
    #[test]
    fn a_re_created_topic_is_never_served_from_the_old_topics_log() {
        let (_dir, _storage, b) = faulty_broker();
        let old = TopicMeta {
            name: "t".into(),
            id: uuid::Uuid::new_v4(),
            partitions: 1,
            configs: Default::default(),
        };
        let p = b.host_replica(&old, 0).expect("host old");
        p.log
            .append_as_follower(
                &crate::protocol::batch::tests::build_batch(crate::log::now_ms(), 3, b"v"),
                crate::log::now_ms(),
            )
            .expect("append");
        assert_eq!(p.log.log_end_offset(), 3);
        assert!(Arc::ptr_eq(&p, &b.host_replica(&old, 0).expect("again")));
        let new = TopicMeta {
            id: uuid::Uuid::new_v4(),
            ..old.clone()
        };
        let q = b.host_replica(&new, 0).expect("host new");
        assert_eq!(q.topic_id, new.id);
        assert_eq!(q.log.log_end_offset(), 0, "a fresh log, not the old one");
    }

    /// Until the metadata fsync of an auto-creation is done, the topic is being created (and
    /// Metadata answers it unknown); a second start for the same name starts nothing; once the
    /// fsync returns, the topic exists and is no longer in flight.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_auto_created_topic_is_in_flight_until_its_fsync_returns() {
        let (_dir, storage, b) = faulty_broker();
        storage.faults.hold_syncs();
        b.start_auto_create(&["slow"]);
        b.start_auto_create(&["slow"]);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(b.is_auto_creating("slow"));
        assert!(b.metadata.topic("slow").is_none());
        storage.faults.release_syncs();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while b.is_auto_creating("slow") {
            assert!(std::time::Instant::now() < deadline, "creation never ended");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let t = b.metadata.topic("slow").expect("created");
        assert_eq!(t.partitions, 1);
        assert_eq!(b.metadata.topics().len(), 1);
    }

    /// A streams group's internal topics are created in the background with their partition
    /// counts and configs; while they are being created, they are in flight (Metadata answers
    /// them unknown) and a second request for them starts nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streams_internal_topics_are_created_with_their_configs() {
        use crate::coordinator::streams_group::topology::InternalTopic;
        let (_dir, storage, b) = faulty_broker();
        use crate::coordinator::streams_group::topology::configure;
        use crate::protocol::streams::{KeyValue, Subtopology, TopicInfo, Topology};
        // What a word count's topology asks for, with the configs Streams sends.
        let topology = Topology {
            epoch: 1,
            subtopologies: vec![
                Subtopology {
                    subtopology_id: "0".into(),
                    source_topics: vec!["input".into()],
                    repartition_sink_topics: vec!["app-rep-repartition".into()],
                    ..Subtopology::default()
                },
                Subtopology {
                    subtopology_id: "1".into(),
                    repartition_source_topics: vec![TopicInfo {
                        name: "app-rep-repartition".into(),
                        topic_configs: vec![KeyValue {
                            key: "segment.bytes".into(),
                            value: "52428800".into(),
                        }],
                        ..TopicInfo::default()
                    }],
                    state_changelog_topics: vec![TopicInfo {
                        name: "app-store-changelog".into(),
                        topic_configs: vec![KeyValue {
                            key: "message.timestamp.type".into(),
                            value: "CreateTime".into(),
                        }],
                        ..TopicInfo::default()
                    }],
                    ..Subtopology::default()
                },
            ],
        };
        let wanted: Vec<InternalTopic> = configure(
            &topology,
            &|t| (t == "input").then_some(3),
            &["input".to_string()],
        )
        .to_create;
        assert_eq!(wanted.len(), 2);
        storage.faults.hold_syncs();
        b.start_internal_topics(wanted.clone());
        b.start_internal_topics(wanted);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(b.is_auto_creating("app-store-changelog"));
        storage.faults.release_syncs();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while b.is_auto_creating("app-rep-repartition") || b.is_auto_creating("app-store-changelog")
        {
            assert!(std::time::Instant::now() < deadline, "creation never ended");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let changelog = b.metadata.topic("app-store-changelog").expect("created");
        assert_eq!(changelog.partitions, 3);
        assert_eq!(changelog.configs["cleanup.policy"], "compact");
        let repartition = b.metadata.topic("app-rep-repartition").expect("created");
        assert_eq!(repartition.configs["cleanup.policy"], "delete");
        assert_eq!(repartition.configs["retention.ms"], "-1");
        assert_eq!(repartition.configs["segment.bytes"], "52428800");
        assert_eq!(b.metadata.topics().len(), 2);
    }

    /// Creating `__consumer_offsets` on the first group request (50 partitions, a metadata
    /// fsync) must not hold the async worker: on a one-thread runtime, other work goes on while
    /// the creation waits on a slow disk.
    #[tokio::test(flavor = "current_thread")]
    async fn creating_the_offsets_topic_does_not_block_the_runtime() {
        let (_dir, storage, b) = faulty_broker();
        storage.faults.hold_syncs();
        // A safety net: if the runtime is blocked, the syncs are released after 5 s.
        let faults = storage.faults.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(5));
            faults.release_syncs();
        });
        let b2 = b.clone();
        let first = tokio::spawn(async move { b2.group_coordinator().await.map(|_| ()) });
        let started = std::time::Instant::now();
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let waited = started.elapsed();
        storage.faults.release_syncs();
        first.await.unwrap().unwrap();
        assert!(
            waited < std::time::Duration::from_secs(2),
            "a 50 ms timer fired after {waited:?}: the runtime was blocked"
        );
        assert!(b.metadata.topic(OFFSETS_TOPIC).is_some());
    }
}
