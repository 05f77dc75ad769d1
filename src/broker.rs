//! The composition root: configuration, cluster metadata, logs and partitions of one broker,
//! and the administrative operations that must change several of them together (create or
//! delete a topic, add partitions, alter topic configs). Handlers call into this.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use thiserror::Error;
use tracing::info;
use uuid::Uuid;

use crate::config::{topic, BrokerConfig};
use crate::coordinator::txn::{TransactionCoordinator, TXN_TOPIC};
use crate::coordinator::{GroupCoordinator, OFFSETS_TOPIC};
use crate::log::io::{OsStorage, Storage};
use crate::log::{LogConfig, LogError, LogManager};
use crate::metadata::{
    MetadataError, MetadataRecord, MetadataStore, TopicMeta, METADATA_DIR, METADATA_LOG,
};
use crate::replica::{Partition, ReplicaManager};

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
    #[error("Topic deletion is disabled.")]
    DeletionDisabled,
    #[error("storage error: {0}")]
    Storage(String),
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

pub struct Broker {
    pub config: BrokerConfig,
    pub metadata: MetadataStore,
    pub logs: LogManager,
    pub replicas: Arc<ReplicaManager>,
    pub groups: Arc<GroupCoordinator>,
    pub txns: Arc<TransactionCoordinator>,
    /// Serializes metadata-changing operations so validation and commit see the same state.
    admin: Mutex<()>,
    /// Serializes the lazy creation of `__consumer_offsets`.
    group_init: Mutex<()>,
    /// Serializes the lazy creation and loading of `__transaction_state`.
    txn_init: tokio::sync::Mutex<()>,
}

pub const MAX_PARTITIONS_PER_TOPIC: i32 = 100_000;

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
        let metadata = MetadataStore::open_with(&root, storage)?;
        let groups = Arc::new(GroupCoordinator::new(config.groups.clone()));
        let replicas = Arc::new(ReplicaManager::default());
        let txns = Arc::new(TransactionCoordinator::new(
            config.txns.clone(),
            replicas.clone(),
            groups.clone(),
        ));
        let broker = Arc::new(Broker {
            config,
            metadata,
            logs,
            replicas,
            groups,
            txns,
            admin: Mutex::new(()),
            group_init: Mutex::new(()),
            txn_init: tokio::sync::Mutex::new(()),
        });
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
        info!(topics = broker.metadata.topics().len(), cluster_id = %broker.metadata.cluster_id, "broker state loaded");
        Ok(broker)
    }

    fn open_partition(&self, t: &TopicMeta, index: i32) -> Result<Arc<Partition>, LogError> {
        let log = self
            .logs
            .open(&t.name, index, self.log_config(&t.configs))?;
        let p = Arc::new(Partition::new(
            Arc::from(t.name.as_str()),
            t.id,
            index,
            log,
            0,
        ));
        self.replicas.insert(p.clone());
        Ok(p)
    }

    /// The group coordinator, creating `__consumer_offsets` on first use like Kafka.
    pub fn group_coordinator(&self) -> Result<&GroupCoordinator, AdminError> {
        if !self.groups.is_loaded() {
            let _guard = self.group_init.lock();
            if !self.groups.is_loaded() {
                if self.metadata.topic(OFFSETS_TOPIC).is_none() {
                    let mut configs = BTreeMap::new();
                    configs.insert("cleanup.policy".to_string(), "compact".to_string());
                    configs.insert("segment.bytes".to_string(), "104857600".to_string());
                    let partitions = Some(self.config.groups.offsets_partitions);
                    match self.create_topic(OFFSETS_TOPIC, partitions, Some(1), configs, false) {
                        Ok(_) | Err(AdminError::TopicExists(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                self.load_groups()?;
            }
        }
        Ok(&self.groups)
    }

    /// The transaction coordinator, creating and loading `__transaction_state` on first use
    /// (and at start when it exists, so prepared transactions are completed).
    pub async fn txn_coordinator(&self) -> Result<&TransactionCoordinator, AdminError> {
        if !self.txns.is_loaded() {
            // Offsets of transactions land in the group coordinator: it must be loaded first.
            self.group_coordinator()?;
            let _guard = self.txn_init.lock().await;
            if !self.txns.is_loaded() {
                if self.metadata.topic(TXN_TOPIC).is_none() {
                    let mut configs = BTreeMap::new();
                    configs.insert("cleanup.policy".to_string(), "compact".to_string());
                    configs.insert("segment.bytes".to_string(), "104857600".to_string());
                    let partitions = Some(self.config.txns.partitions);
                    match self.create_topic(TXN_TOPIC, partitions, Some(1), configs, false) {
                        Ok(_) | Err(AdminError::TopicExists(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                let meta = self
                    .metadata
                    .topic(TXN_TOPIC)
                    .ok_or(AdminError::UnknownTopic)?;
                let partitions = (0..meta.partitions)
                    .map(|p| self.partition(TXN_TOPIC, p).ok_or(AdminError::UnknownTopic))
                    .collect::<Result<Vec<_>, _>>()?;
                self.txns.load(partitions).await?;
            }
        }
        Ok(&self.txns)
    }

    /// Loads the transaction coordinator at start if its topic exists.
    pub async fn load_transactions(&self) -> Result<(), AdminError> {
        if self.metadata.topic(TXN_TOPIC).is_some() {
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
        topic::resolve(&self.config, overrides)
    }

    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.replicas.get(topic, index)
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
        validate_topic_name(name)?;
        let partitions = partitions.unwrap_or(self.config.num_partitions);
        if partitions <= 0 || partitions > MAX_PARTITIONS_PER_TOPIC {
            return Err(AdminError::InvalidPartitions(format!("Number of partitions must be in [1, {MAX_PARTITIONS_PER_TOPIC}], got {partitions}.")));
        }
        let rf = replication_factor.unwrap_or(self.config.default_replication_factor);
        if rf != 1 {
            return Err(AdminError::InvalidReplicationFactor(format!(
                "Replication factor: {rf} larger than available brokers: 1."
            )));
        }
        topic::validate_all(configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|(_, r)| AdminError::InvalidConfig(r))?;
        let _guard = self.admin.lock();
        if self.metadata.topic(name).is_some() {
            return Err(AdminError::TopicExists(name.to_string()));
        }
        let canon = canonical_name(name);
        if let Some(other) = self
            .metadata
            .topics()
            .into_iter()
            .find(|t| canonical_name(&t.name) == canon)
        {
            return Err(AdminError::InvalidTopic(format!(
                "Topic '{name}' collides with existing topic: {}",
                other.name
            )));
        }
        let meta = TopicMeta {
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions,
            configs,
        };
        if validate_only {
            return Ok(meta);
        }
        self.metadata.commit(&[MetadataRecord::CreateTopic {
            name: meta.name.clone(),
            id: meta.id,
            partitions,
            configs: meta.configs.clone(),
        }])?;
        for p in 0..partitions {
            self.open_partition(&meta, p)?;
        }
        info!(topic = name, partitions, id = %meta.id, "created topic");
        Ok(meta)
    }

    /// Creates `name` with broker defaults if auto-creation is enabled; returns the topic.
    pub fn auto_create_topic(&self, name: &str) -> Option<TopicMeta> {
        if !self.config.auto_create_topics_enable || validate_topic_name(name).is_err() {
            return None;
        }
        match self.create_topic(name, None, None, BTreeMap::new(), false) {
            Ok(t) => Some(t),
            Err(AdminError::TopicExists(_)) => self.metadata.topic(name),
            Err(_) => None,
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
            if let Some(part) = self.replicas.remove(name, p) {
                part.wake_waiters();
            }
            self.logs.delete(name, p)?;
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
        self.metadata
            .commit(&[MetadataRecord::CreatePartitions { id: meta.id, count }])?;
        let meta = self.metadata.topic(name).ok_or(AdminError::UnknownTopic)?;
        for p in 0..count {
            if self.replicas.get(name, p).is_none() {
                self.open_partition(&meta, p)?;
            }
        }
        Ok(())
    }

    /// One manual replica assignment, with Kafka's messages (a single node is the only
    /// registered broker, and every topic has replication factor 1).
    fn validate_assignment(&self, replicas: &[i32]) -> Result<(), AdminError> {
        let bad = |m: String| Err(AdminError::InvalidReplicaAssignment(m));
        if replicas.is_empty() {
            return bad("The manual partition assignment includes an empty replica list.".into());
        }
        let mut sorted = replicas.to_vec();
        sorted.sort_unstable();
        for (i, &b) in sorted.iter().enumerate() {
            if b != self.config.node_id {
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

fn canonical_name(name: &str) -> String {
    name.replace('.', "_")
}
