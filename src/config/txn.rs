//! Transaction coordinator settings (`transaction.*`, `transactional.id.expiration.ms`):
//! plain values parsed by [`super::BrokerConfig`] and read by `coordinator::txn`.

/// Settings of the transaction coordinator (Kafka's keys, see config).
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transaction.state.log.num.partitions`.
    pub partitions: i32,
    /// `transaction.state.log.replication.factor`: replicas of `__transaction_state`
    /// partitions in a cluster (a single node uses 1).
    pub replication_factor: i16,
    /// `transaction.state.log.min.isr`: `__transaction_state`'s `min.insync.replicas`.
    pub min_isr: i16,
    /// `transactional.id.expiration.ms`: an idle id (no open transaction) is removed after this.
    pub id_expiration_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`: how often expiry runs.
    pub remove_expired_interval_ms: u64,
}
