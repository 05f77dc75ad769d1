//! The seam between a share-partition (on the broker leading its topic partition) and its
//! durable state (on the broker leading its `__share_group_state` partition), Kafka's
//! `Persister`: read the state when a share-partition starts, write each change, initialize
//! (a new share-partition, an offset reset), delete. On a single node every state partition
//! is local ([`super::coordinator::LocalStore`]); in a cluster `crate::cluster::share_state`
//! routes each key to the broker leading its state partition (Read/Write/Initialize/
//! DeleteShareGroupState between brokers) and to the local coordinator for the partitions
//! this broker leads.
//!
//! Errors are Kafka's wire codes (NOT_COORDINATOR when the state partition is not led where
//! the request went, FENCED_LEADER_EPOCH for a share-partition leader that was replaced,
//! FENCED_STATE_EPOCH for state that was reset or deleted since it was read).

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::codec::StateKey;
use super::partition::StateBatch;
use crate::coordinator::runtime::Write;
use crate::log::LogError;
use crate::protocol::WireError;

/// A share-partition's durable state, as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredState {
    pub state_epoch: i32,
    pub leader_epoch: i32,
    pub start_offset: i64,
    pub batches: Vec<StateBatch>,
}

/// One change of a share-partition's state: the start offset and the state of the offsets
/// the change touched, from the leader at `leader_epoch` of the state at `state_epoch`.
#[derive(Debug, Clone)]
pub struct StateWrite {
    pub leader_epoch: i32,
    pub state_epoch: i32,
    pub start_offset: i64,
    pub batches: Vec<StateBatch>,
}

/// A write on its way: awaited before a response that depends on it goes out.
pub enum Pending {
    /// Appended to a local state partition.
    Local(Write),
    /// Queued to the broker leading the state partition; answered with an error code.
    Remote(oneshot::Receiver<i16>),
    /// Refused before anything was written.
    Failed(i16),
}

impl Pending {
    /// Waits until the write is durable (fsynced and, in a cluster, on every in-sync replica
    /// of its state partition), or why it is not.
    pub async fn wait(self) -> Result<(), i16> {
        match self {
            Pending::Local(w) => w.durable().await.map_err(|e| log_code(&e)),
            Pending::Remote(rx) => match rx.await {
                Ok(0) => Ok(()),
                Ok(code) => Err(code),
                Err(_) => Err(WireError::NotCoordinator.code()),
            },
            Pending::Failed(code) => Err(code),
        }
    }
}

/// The wire code a share coordinator's request answers for one key: its refusal, or how its
/// append fared once durable.
pub async fn settled(outcome: Result<Write, i16>) -> i16 {
    match outcome {
        Err(code) => code,
        Ok(w) => w.durable().await.err().map_or(0, |e| log_code(&e)),
    }
}

/// The wire code of a log error met by a coordinator write.
pub fn log_code(e: &LogError) -> i16 {
    match e {
        LogError::NotLeader(_) => WireError::NotCoordinator.code(),
        LogError::NotEnoughReplicas { .. } => WireError::NotEnoughReplicas.code(),
        _ => WireError::KafkaStorageError.code(),
    }
}

/// Where share-partition state is kept (see the module documentation).
pub trait StateStore: Send + Sync {
    /// The state of `key` (None: it has none), durable. With `leader_epoch` >= 0 the reader
    /// is the share-partition's leader at that epoch: an older one is refused
    /// (FENCED_LEADER_EPOCH) and a newer one is recorded, fencing the writes of earlier
    /// leaders. -1 reads without fencing (the admin APIs).
    fn read(
        &self,
        key: &StateKey,
        leader_epoch: i32,
    ) -> BoxFuture<'static, Result<Option<StoredState>, i16>>;
    /// Writes one change; writes of one key made in order are applied in that order.
    fn write(&self, key: &StateKey, w: StateWrite) -> Pending;
    /// Starts the state of `key` afresh at `start_offset` with `state_epoch` (above the
    /// current one, if any), durable before this completes.
    fn initialize(
        &self,
        key: &StateKey,
        state_epoch: i32,
        start_offset: i64,
    ) -> BoxFuture<'static, Result<(), i16>>;
    /// Deletes the state of `keys`, durable before this completes.
    fn delete(&self, group: &str, keys: Vec<StateKey>) -> BoxFuture<'static, Result<(), i16>>;
    /// Every share-partition of `group` that has state, with it.
    fn group_states(
        &self,
        group: &str,
    ) -> BoxFuture<'static, Result<Vec<(StateKey, StoredState)>, i16>>;
}
