//! The storage engine. Knows record batches and files; knows nothing of the wire protocol.
//!
//! - [`manager::LogManager`]: the data directory, opening/recovering partition logs, retention.
//! - [`partition::PartitionLog`]: append/read/truncate/roll of one partition, LEO, log start
//!   offset, group-committed fsync, poisoning on I/O failure.
//! - [`flusher::Flusher`]: one thread that group-commits produce data across partitions.
//! - [`segment::Segment`]: one `.log` file with its indexes ([`index`]).

pub mod config;
pub mod flusher;
pub mod index;
pub mod io;
pub mod manager;
pub mod partition;
pub mod producer_state;
pub mod segment;

use thiserror::Error;

pub use config::LogConfig;
pub use manager::LogManager;
pub use partition::{AppendInfo, PartitionLog, RangeResult, ReadResult};

/// Errors of the log layer; handlers map them to wire error codes in one place.
#[derive(Debug, Error)]
pub enum LogError {
    #[error("offset {offset} out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    #[error("invalid batch: {0}")]
    InvalidBatch(#[from] crate::protocol::batch::BatchError),
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    RecordTooLarge { size: usize, max: usize },
    /// Records refused one by one (Kafka's RecordValidationException): (index of the record
    /// in the partition's data, why), nothing appended.
    #[error("One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: {}", .0.len(), shown(.0))]
    InvalidRecords(Vec<(i32, String)>),
    #[error("log {0} is poisoned after an earlier I/O failure")]
    Poisoned(String),
    /// Recovery found damaged durable data and quarantined it (see partition/recovery.rs).
    #[error("log offline: {0}")]
    Offline(String),
    #[error("{0}")]
    Sequence(#[from] producer_state::SequenceError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A leader append on a replica that does not lead the partition (now).
    #[error("this broker does not lead partition {0}")]
    NotLeader(String),
    /// A write of the broker's own with fewer in-sync replicas than `min.insync.replicas`.
    #[error("the in-sync replicas of {partition} are {isr}, below min.insync.replicas {min}")]
    NotEnoughReplicas {
        partition: String,
        isr: usize,
        min: i32,
    },
}

/// The first three record errors, as Kafka lists them in its message.
fn shown(errors: &[(i32, String)]) -> String {
    let parts: Vec<String> = errors
        .iter()
        .take(3)
        .map(|(i, m)| format!("RecordError(batchIndex={i}, message='{m}')"))
        .collect();
    format!("[{}]", parts.join(", "))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
