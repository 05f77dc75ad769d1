//! Per-partition log settings, resolved from broker defaults and topic overrides by the
//! metadata layer (this module does not parse property strings).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment is older than this.
    pub segment_ms: i64,
    /// `retention.ms`: delete sealed segments whose newest record is older; -1 keeps forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest sealed segments while the log is bigger; -1 = no limit.
    pub retention_bytes: i64,
    /// `max.message.bytes`: largest batch accepted.
    pub max_message_bytes: usize,
    /// `message.timestamp.type=LogAppendTime`.
    pub log_append_time: bool,
    /// `index.interval.bytes`.
    pub index_interval_bytes: u64,
    /// `flush.messages`: fsync after this many appended records (i64::MAX = never by count).
    pub flush_messages: i64,
    /// `cleanup.policy` contains `delete`.
    pub delete_retention_enabled: bool,
    /// `cleanup.policy` contains `compact`: every record a client writes must have a key.
    pub compact: bool,
    /// `min.insync.replicas`: not used by the log itself; the partition's leader refuses the
    /// broker's own writes (transaction markers, coordinator records) while its ISR is
    /// smaller, as Kafka's acks=-1 internal appends do.
    pub min_insync_replicas: i32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            log_append_time: false,
            index_interval_bytes: 4096,
            flush_messages: i64::MAX,
            delete_retention_enabled: true,
            compact: false,
            min_insync_replicas: 1,
        }
    }
}
