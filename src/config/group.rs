//! Group coordinator settings (`group.*`, `offsets.*`, `offset.metadata.max.bytes`): plain
//! values parsed by [`super::BrokerConfig`] and read by `coordinator`, so the dependency
//! points down (config knows nothing of the coordinator).

/// Settings of the group coordinator (Kafka's keys, see config).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub session_timeout_min_ms: i32,
    pub session_timeout_max_ms: i32,
    pub max_size: usize,
    pub initial_rebalance_delay_ms: u64,
    pub offsets_retention_ms: i64,
    pub offset_metadata_max_bytes: usize,
    pub offsets_partitions: i32,
    /// `offsets.topic.replication.factor`: replicas of `__consumer_offsets` partitions (at most
    /// the live brokers when the topic is created).
    pub offsets_replication_factor: i16,
    /// `group.consumer.session.timeout.ms` (KIP-848 groups).
    pub consumer_session_timeout_ms: u64,
    /// `group.consumer.heartbeat.interval.ms`.
    pub consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.min.session.timeout.ms` / `.max.`: bounds of a group's
    /// `consumer.session.timeout.ms`.
    pub consumer_session_timeout_min_ms: i32,
    pub consumer_session_timeout_max_ms: i32,
    /// `group.consumer.min.heartbeat.interval.ms` / `.max.`: bounds of a group's
    /// `consumer.heartbeat.interval.ms`.
    pub consumer_heartbeat_interval_min_ms: i32,
    pub consumer_heartbeat_interval_max_ms: i32,
    /// `group.consumer.max.size`.
    pub consumer_max_size: usize,
    /// `group.consumer.migration.policy`.
    pub migration_policy: MigrationPolicy,
    // Streams groups (KIP-1071).
    /// `group.streams.session.timeout.ms`.
    pub streams_session_timeout_ms: u64,
    /// `group.streams.heartbeat.interval.ms`.
    pub streams_heartbeat_interval_ms: i32,
    /// `group.streams.min.session.timeout.ms`.
    pub streams_session_timeout_min_ms: i32,
    /// `group.streams.max.session.timeout.ms`.
    pub streams_session_timeout_max_ms: i32,
    /// `group.streams.min.heartbeat.interval.ms`.
    pub streams_heartbeat_interval_min_ms: i32,
    /// `group.streams.max.heartbeat.interval.ms`.
    pub streams_heartbeat_interval_max_ms: i32,
    /// `group.streams.max.size`.
    pub streams_max_size: usize,
    /// `group.streams.num.standby.replicas`.
    pub streams_num_standby_replicas: i32,
    /// `group.streams.max.standby.replicas`.
    pub streams_max_standby_replicas: i32,
    /// `group.streams.acceptable.recovery.lag`.
    pub streams_acceptable_recovery_lag: i64,
    /// `group.streams.task.offset.interval.ms`.
    pub streams_task_offset_interval_ms: i32,
    // Share groups (KIP-932) and their share-partitions.
    /// `group.share.session.timeout.ms`.
    pub share_session_timeout_ms: u64,
    /// `group.share.min.session.timeout.ms`.
    pub share_session_timeout_min_ms: i32,
    /// `group.share.max.session.timeout.ms`.
    pub share_session_timeout_max_ms: i32,
    /// `group.share.heartbeat.interval.ms`.
    pub share_heartbeat_interval_ms: i32,
    /// `group.share.min.heartbeat.interval.ms`.
    pub share_heartbeat_interval_min_ms: i32,
    /// `group.share.max.heartbeat.interval.ms`.
    pub share_heartbeat_interval_max_ms: i32,
    /// `group.share.max.size`.
    pub share_max_size: usize,
    /// `group.share.record.lock.duration.ms`.
    pub share_record_lock_duration_ms: i32,
    /// `group.share.min.record.lock.duration.ms`.
    pub share_record_lock_duration_min_ms: i32,
    /// `group.share.max.record.lock.duration.ms`.
    pub share_record_lock_duration_max_ms: i32,
    /// `group.share.delivery.count.limit`.
    pub share_delivery_count_limit: i32,
    /// `group.share.min.delivery.count.limit`.
    pub share_delivery_count_limit_min: i32,
    /// `group.share.max.delivery.count.limit`.
    pub share_delivery_count_limit_max: i32,
    /// `group.share.partition.max.record.locks`.
    pub share_partition_max_record_locks: i32,
    /// `group.share.min.partition.max.record.locks`.
    pub share_partition_max_record_locks_min: i32,
    /// `group.share.max.partition.max.record.locks`.
    pub share_partition_max_record_locks_max: i32,
    /// `group.share.max.share.sessions`.
    pub share_max_sessions: usize,
    /// `share.coordinator.state.topic.num.partitions`.
    pub share_state_partitions: i32,
    /// `share.coordinator.state.topic.replication.factor`.
    pub share_state_replication_factor: i16,
    /// `share.coordinator.state.topic.min.isr`.
    pub share_state_min_isr: i16,
    /// `share.coordinator.snapshot.update.records.per.snapshot`.
    pub share_updates_per_snapshot: i32,
    /// `errors.deadletterqueue.topic.name.prefix`.
    pub dlq_topic_prefix: String,
    /// `errors.deadletterqueue.auto.create.topics.enable`.
    pub dlq_auto_create: bool,
}

/// `group.consumer.migration.policy`: which online conversions between a classic and a
/// consumer group are allowed (conversions of empty groups always are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationPolicy {
    Disabled,
    Upgrade,
    Downgrade,
    Bidirectional,
}

impl MigrationPolicy {
    /// Kafka's values, case-insensitive.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "disabled" => Some(Self::Disabled),
            "upgrade" => Some(Self::Upgrade),
            "downgrade" => Some(Self::Downgrade),
            "bidirectional" => Some(Self::Bidirectional),
            _ => None,
        }
    }

    /// Kafka's name of the policy.
    pub fn name(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Upgrade => "upgrade",
            Self::Downgrade => "downgrade",
            Self::Bidirectional => "bidirectional",
        }
    }

    pub fn upgrade(self) -> bool {
        matches!(self, Self::Upgrade | Self::Bidirectional)
    }

    pub fn downgrade(self) -> bool {
        matches!(self, Self::Downgrade | Self::Bidirectional)
    }
}
