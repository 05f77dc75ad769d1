//! The share coordinator (Kafka's `ShareCoordinatorShard`): the state of share-partitions kept
//! on the `__share_group_state` partitions this broker leads. Each partition is replayed when
//! this broker starts leading it (every partition at start on a single node) into one folded
//! state per key — its last snapshot with every later update applied — and serves reads,
//! writes, initializations and deletions of those keys, each one record appended to the
//! partition ([`super::codec`]: a ShareUpdate with what changed, a ShareSnapshot of the whole
//! state every `share.coordinator.snapshot.update.records.per.snapshot` updates and at each
//! initialization) and durable (fsynced, and on every in-sync replica in a cluster) before it
//! is answered.
//!
//! Fencing, as Kafka's: every key remembers the leader epoch of the share-partition leader
//! that last read or wrote it; a request from an older leader is refused with
//! FENCED_LEADER_EPOCH, and a write naming another state epoch (the state was reset or
//! deleted since its writer read it) with FENCED_STATE_EPOCH. The folded state is updated when
//! the record is appended (under the key map's lock, so its order is the log's); a read is
//! answered only once the key's last record is durable, and an fsync failure poisons the
//! partition, which then answers nothing (NOT_COORDINATOR) until a restart replays it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use parking_lot::{Mutex, RwLock};

use super::codec::{self, StateKey, StateValue, SNAPSHOT, UPDATE};
use super::partition::SharePartition;
use super::store::{log_code, Pending, StateStore, StateWrite, StoredState};
use crate::coordinator::runtime::{
    replay, CoordinatorPartition, PartitionedCoordinator, Replayed, Write,
};
use crate::log::{now_ms, LogError};
use crate::protocol::records::build_batch;
use crate::protocol::WireError;
use crate::replica::Partition;

/// One key's folded state.
struct Folded {
    sp: SharePartition,
    state_epoch: i32,
    leader_epoch: i32,
    snapshot_epoch: i32,
    /// Updates written since the last snapshot.
    updates: i32,
    /// The log end offset just after the key's last record (its durability point).
    last_end: i64,
}

impl Folded {
    fn stored(&self) -> StoredState {
        let full = self.sp.durable_state();
        StoredState {
            state_epoch: self.state_epoch,
            leader_epoch: self.leader_epoch,
            start_offset: self.sp.start_offset(),
            batches: full.batches,
        }
    }
}

/// One loaded `__share_group_state` partition.
struct StatePart {
    cp: Arc<CoordinatorPartition>,
    keys: Mutex<HashMap<StateKey, Folded>>,
}

pub struct ShareCoordinator {
    /// By partition index; None where this broker does not serve it.
    parts: RwLock<Vec<Option<Arc<StatePart>>>>,
    count: AtomicI32,
    updates_per_snapshot: i32,
}

fn fenced_leader() -> i16 {
    WireError::FencedLeaderEpoch.code()
}

fn fenced_state() -> i16 {
    WireError::FencedStateEpoch.code()
}

impl ShareCoordinator {
    pub fn new(updates_per_snapshot: i32) -> Self {
        ShareCoordinator {
            parts: RwLock::new(Vec::new()),
            count: AtomicI32::new(0),
            updates_per_snapshot: updates_per_snapshot.max(0),
        }
    }

    /// The number of `__share_group_state` partitions (0 before [`PartitionedCoordinator::prepare`]).
    pub fn partition_count(&self) -> i32 {
        self.count.load(Ordering::Acquire)
    }

    /// The state partition of `key`.
    pub fn index_of(&self, key: &StateKey) -> i32 {
        crate::coordinator::partition_for(&key.coordinator_key(), self.partition_count())
    }

    fn part(&self, key: &StateKey) -> Result<Arc<StatePart>, i16> {
        let i = self.index_of(key);
        let part = self
            .parts
            .read()
            .get(i as usize)
            .cloned()
            .flatten()
            .ok_or(WireError::NotCoordinator.code())?;
        if !part.cp.is_available() {
            return Err(WireError::NotCoordinator.code());
        }
        Ok(part)
    }

    /// Whether the state partition of `key` is served here.
    pub fn serves(&self, key: &StateKey) -> bool {
        self.part(key).is_ok()
    }

    fn append(part: &StatePart, key: &StateKey, value: &StateValue) -> Result<Write, LogError> {
        let k = codec::encode_key(value.kind, key);
        let v = codec::encode_value(value);
        let data = build_batch(&[(Some(&k[..]), Some(&v[..]))], now_ms());
        part.cp.append(&data, None)
    }

    /// Reads `key` (see [`StateStore::read`]): the state and the write it must wait for.
    pub fn read(
        &self,
        key: &StateKey,
        leader_epoch: i32,
    ) -> Result<(Option<StoredState>, Write), i16> {
        let part = self.part(key)?;
        let mut keys = part.keys.lock();
        let Some(f) = keys.get_mut(key) else {
            let end = part.cp.log().log_end_offset();
            return Ok((None, part.cp.write_at(end)));
        };
        if leader_epoch >= 0 && leader_epoch < f.leader_epoch {
            return Err(fenced_leader());
        }
        if leader_epoch > f.leader_epoch {
            // A new leader: recorded, so earlier leaders' writes are refused from now on.
            let value = StateValue {
                kind: UPDATE,
                snapshot_epoch: f.snapshot_epoch,
                state_epoch: 0,
                leader_epoch,
                start_offset: f.sp.start_offset(),
                create_timestamp: 0,
                write_timestamp: 0,
                batches: Vec::new(),
            };
            let w = Self::append(&part, key, &value).map_err(|e| log_code(&e))?;
            f.leader_epoch = leader_epoch;
            f.updates += 1;
            f.last_end = w.end();
        }
        Ok((Some(f.stored()), part.cp.write_at(f.last_end)))
    }

    /// Writes one change of `key` (see [`StateStore::write`]).
    pub fn write(&self, key: &StateKey, w: StateWrite) -> Result<Write, i16> {
        let part = self.part(key)?;
        let mut keys = part.keys.lock();
        let f = keys.get_mut(key).ok_or_else(fenced_state)?;
        if w.leader_epoch < f.leader_epoch {
            return Err(fenced_leader());
        }
        if w.state_epoch != f.state_epoch {
            return Err(fenced_state());
        }
        let now = now_ms();
        let leader_epoch = w.leader_epoch.max(f.leader_epoch);
        let snapshot = f.updates >= self.updates_per_snapshot;
        // The state after this write: built whole for a snapshot (and installed as it is),
        // else applied from the update once it is appended.
        let (value, next) = if snapshot {
            let mut next = f.sp.clone();
            next.apply_durable(w.start_offset, &w.batches);
            let value = StateValue {
                kind: SNAPSHOT,
                snapshot_epoch: f.snapshot_epoch + 1,
                state_epoch: f.state_epoch,
                leader_epoch,
                start_offset: next.start_offset(),
                create_timestamp: now,
                write_timestamp: now,
                batches: next.durable_state().batches,
            };
            (value, Some(next))
        } else {
            let value = StateValue {
                kind: UPDATE,
                snapshot_epoch: f.snapshot_epoch,
                state_epoch: 0,
                leader_epoch,
                start_offset: w.start_offset,
                create_timestamp: 0,
                write_timestamp: 0,
                batches: w.batches,
            };
            (value, None)
        };
        let written = Self::append(&part, key, &value).map_err(|e| log_code(&e))?;
        match next {
            Some(next) => f.sp = next,
            None => f.sp.apply_durable(value.start_offset, &value.batches),
        }
        f.leader_epoch = leader_epoch;
        if snapshot {
            f.snapshot_epoch += 1;
            f.updates = 0;
        } else {
            f.updates += 1;
        }
        f.last_end = written.end();
        Ok(written)
    }

    /// Starts `key` afresh (see [`StateStore::initialize`]).
    pub fn initialize(
        &self,
        key: &StateKey,
        state_epoch: i32,
        start_offset: i64,
    ) -> Result<Write, i16> {
        let part = self.part(key)?;
        let mut keys = part.keys.lock();
        let (snapshot_epoch, leader_epoch) = match keys.get(key) {
            Some(f) if state_epoch <= f.state_epoch => return Err(fenced_state()),
            Some(f) => (f.snapshot_epoch, f.leader_epoch),
            None => (-1, -1),
        };
        let now = now_ms();
        let value = StateValue {
            kind: SNAPSHOT,
            snapshot_epoch: snapshot_epoch + 1,
            state_epoch,
            leader_epoch,
            start_offset,
            create_timestamp: now,
            write_timestamp: now,
            batches: Vec::new(),
        };
        let written = Self::append(&part, key, &value).map_err(|e| log_code(&e))?;
        keys.insert(
            key.clone(),
            Folded {
                sp: SharePartition::new(start_offset),
                state_epoch,
                leader_epoch,
                snapshot_epoch: snapshot_epoch + 1,
                updates: 0,
                last_end: written.end(),
            },
        );
        Ok(written)
    }

    /// Deletes `key`'s state: tombstones of both record types.
    pub fn delete(&self, key: &StateKey) -> Result<Write, i16> {
        let part = self.part(key)?;
        let mut keys = part.keys.lock();
        let k1 = codec::encode_key(SNAPSHOT, key);
        let k2 = codec::encode_key(UPDATE, key);
        let data = build_batch(&[(Some(&k1[..]), None), (Some(&k2[..]), None)], now_ms());
        let written = part.cp.append(&data, None).map_err(|e| log_code(&e))?;
        keys.remove(key);
        Ok(written)
    }

    /// Every key of `group` in the partitions served here, with its state and the write to
    /// wait for.
    pub fn group_states(&self, group: &str) -> (Vec<(StateKey, StoredState)>, Vec<Write>) {
        let parts: Vec<Arc<StatePart>> = self.parts.read().iter().flatten().cloned().collect();
        let mut out = Vec::new();
        let mut writes = Vec::new();
        for part in parts {
            if !part.cp.is_available() {
                continue;
            }
            let keys = part.keys.lock();
            let mut last = None;
            for (k, f) in keys.iter().filter(|(k, _)| k.group == group) {
                out.push((k.clone(), f.stored()));
                last = Some(last.unwrap_or(0).max(f.last_end));
            }
            if let Some(end) = last {
                writes.push(part.cp.write_at(end));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        (out, writes)
    }

    /// Replays one state partition into its folded keys.
    fn replay_partition(p: &Partition) -> Result<HashMap<StateKey, Folded>, LogError> {
        let mut keys: HashMap<StateKey, Folded> = HashMap::new();
        replay(&p.log, |r| {
            let Replayed::Record { key, value, .. } = r else {
                return;
            };
            let (kind, key) = match codec::decode_key(key) {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping a share state record");
                    return;
                }
            };
            let Some(value) = value else {
                if kind == SNAPSHOT {
                    keys.remove(&key);
                }
                return;
            };
            let v = match codec::decode_value(kind, value) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping a share state record");
                    return;
                }
            };
            if kind == SNAPSHOT {
                keys.insert(
                    key,
                    Folded {
                        sp: SharePartition::from_state(v.start_offset, &v.batches),
                        state_epoch: v.state_epoch,
                        leader_epoch: v.leader_epoch,
                        snapshot_epoch: v.snapshot_epoch,
                        updates: 0,
                        last_end: 0,
                    },
                );
            } else if let Some(f) = keys.get_mut(&key) {
                f.sp.apply_durable(v.start_offset, &v.batches);
                f.leader_epoch = f.leader_epoch.max(v.leader_epoch);
                f.updates += 1;
            }
        })?;
        let end = p.log.log_end_offset();
        for f in keys.values_mut() {
            f.last_end = end;
        }
        Ok(keys)
    }
}

impl PartitionedCoordinator for ShareCoordinator {
    fn prepare(&self, count: i32) {
        let mut parts = self.parts.write();
        if parts.len() != count.max(0) as usize {
            parts.resize(count.max(0) as usize, None);
        }
        self.count.store(count, Ordering::Release);
    }

    fn is_partition_loaded(&self, index: i32) -> bool {
        self.parts
            .read()
            .get(index as usize)
            .is_some_and(|p| p.is_some())
    }

    fn load_partition(&self, index: i32, partition: Arc<Partition>) -> Result<(), LogError> {
        let keys = Self::replay_partition(&partition)?;
        tracing::debug!(
            partition = index,
            keys = keys.len(),
            "share state partition loaded"
        );
        let part = Arc::new(StatePart {
            cp: CoordinatorPartition::new(partition),
            keys: Mutex::new(keys),
        });
        let mut parts = self.parts.write();
        if let Some(slot) = parts.get_mut(index as usize) {
            *slot = Some(part);
        }
        Ok(())
    }

    fn unload_partition(&self, index: i32) {
        if let Some(slot) = self.parts.write().get_mut(index as usize) {
            *slot = None;
        }
    }
}

/// The store of a single node: every state partition is served by this broker's coordinator.
pub struct LocalStore(pub Arc<ShareCoordinator>);

impl StateStore for LocalStore {
    fn read(
        &self,
        key: &StateKey,
        leader_epoch: i32,
    ) -> BoxFuture<'static, Result<Option<StoredState>, i16>> {
        let r = self.0.read(key, leader_epoch);
        Box::pin(async move {
            let (state, w) = r?;
            w.durable().await.map_err(|e| log_code(&e))?;
            Ok(state)
        })
    }

    fn write(&self, key: &StateKey, w: StateWrite) -> Pending {
        match self.0.write(key, w) {
            Ok(w) => Pending::Local(w),
            Err(code) => Pending::Failed(code),
        }
    }

    fn initialize(
        &self,
        key: &StateKey,
        state_epoch: i32,
        start_offset: i64,
    ) -> BoxFuture<'static, Result<(), i16>> {
        let r = self.0.initialize(key, state_epoch, start_offset);
        Box::pin(async move { r?.durable().await.map_err(|e| log_code(&e)) })
    }

    fn delete(&self, _group: &str, keys: Vec<StateKey>) -> BoxFuture<'static, Result<(), i16>> {
        let writes: Result<Vec<Write>, i16> = keys.iter().map(|k| self.0.delete(k)).collect();
        Box::pin(async move {
            for w in writes? {
                w.durable().await.map_err(|e| log_code(&e))?;
            }
            Ok(())
        })
    }

    fn group_states(
        &self,
        group: &str,
    ) -> BoxFuture<'static, Result<Vec<(StateKey, StoredState)>, i16>> {
        let (states, writes) = self.0.group_states(group);
        Box::pin(async move {
            for w in writes {
                w.durable().await.map_err(|e| log_code(&e))?;
            }
            Ok(states)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::share::partition::{StateBatch, STATE_ACKNOWLEDGED, STATE_AVAILABLE};
    use crate::log::{LogConfig, PartitionLog};

    fn state_partition(dir: &std::path::Path) -> Arc<Partition> {
        let log = PartitionLog::open(dir, "__share_group_state-0", LogConfig::default(), 0)
            .expect("open log");
        Arc::new(Partition::new(
            Arc::from(super::super::STATE_TOPIC),
            uuid::Uuid::nil(),
            0,
            Arc::new(log),
            0,
            1,
        ))
    }

    fn serving(p: &Arc<Partition>, per_snapshot: i32) -> ShareCoordinator {
        let c = ShareCoordinator::new(per_snapshot);
        c.prepare(1);
        c.load_partition(0, p.clone()).expect("load");
        c
    }

    fn key(partition: i32) -> StateKey {
        StateKey {
            group: "g".into(),
            topic_id: uuid::Uuid::from_u128(7),
            partition,
        }
    }

    fn batch(first: i64, last: i64, state: i8, count: i16) -> StateBatch {
        StateBatch {
            first_offset: first,
            last_offset: last,
            state,
            delivery_count: count,
        }
    }

    fn write(
        leader_epoch: i32,
        state_epoch: i32,
        start: i64,
        batches: Vec<StateBatch>,
    ) -> StateWrite {
        StateWrite {
            leader_epoch,
            state_epoch,
            start_offset: start,
            batches,
        }
    }

    #[tokio::test]
    async fn writes_fold_and_a_replay_gives_the_same_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = state_partition(dir.path());
        // A snapshot after every 2 updates: the replay crosses both record kinds.
        let c = serving(&p, 2);
        let k = key(0);
        assert_eq!(c.read(&k, 0).expect("read").0, None);
        c.initialize(&k, 0, 10)
            .expect("init")
            .durable()
            .await
            .expect("durable");
        for i in 0..5i64 {
            let b = batch(10 + i * 2, 11 + i * 2, STATE_AVAILABLE, 1);
            c.write(&k, write(0, 0, 10, vec![b]))
                .expect("write")
                .durable()
                .await
                .expect("durable");
        }
        let w = c
            .write(
                &k,
                write(0, 0, 10, vec![batch(10, 13, STATE_ACKNOWLEDGED, 1)]),
            )
            .expect("ack");
        w.durable().await.expect("durable");
        let (state, _) = c.read(&k, 0).expect("read");
        let state = state.expect("state");
        assert_eq!(
            state.start_offset, 14,
            "the acknowledged head moved the start"
        );
        assert_eq!(state.batches.first().map(|b| b.first_offset), Some(14));
        let again = serving(&p, 2);
        let (replayed, _) = again.read(&k, 0).expect("read");
        assert_eq!(replayed.as_ref(), Some(&state));
    }

    #[tokio::test]
    async fn an_older_leader_and_an_older_state_are_fenced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = state_partition(dir.path());
        let c = serving(&p, 500);
        let k = key(1);
        let fenced_state = WireError::FencedStateEpoch.code();
        let fenced_leader = WireError::FencedLeaderEpoch.code();
        // No state: a write has nothing to apply to.
        assert_eq!(
            c.write(&k, write(0, 0, 0, vec![])).err(),
            Some(fenced_state)
        );
        c.initialize(&k, 0, 0).expect("init");
        c.write(&k, write(3, 0, 0, vec![batch(0, 0, STATE_AVAILABLE, 1)]))
            .expect("leader 3");
        // A new leader (epoch 5) reads: the leader at 3 is fenced from now on, durably.
        c.read(&k, 5)
            .expect("leader 5 reads")
            .1
            .durable()
            .await
            .expect("durable");
        assert_eq!(c.read(&k, 4).err(), Some(fenced_leader));
        assert_eq!(
            c.write(&k, write(3, 0, 0, vec![])).err(),
            Some(fenced_leader)
        );
        let replayed = serving(&p, 500);
        assert_eq!(
            replayed.write(&k, write(4, 0, 0, vec![])).err(),
            Some(fenced_leader)
        );
        // An offset reset (state epoch 1) fences writes of the state read before it.
        assert_eq!(c.initialize(&k, 0, 7).err(), Some(fenced_state));
        c.initialize(&k, 1, 7).expect("reset");
        assert_eq!(
            c.write(&k, write(5, 0, 7, vec![])).err(),
            Some(fenced_state)
        );
        c.write(&k, write(5, 1, 7, vec![batch(7, 7, STATE_ACKNOWLEDGED, 1)]))
            .expect("new state");
        let (state, w) = c.read(&k, -1).expect("admin read");
        w.durable().await.expect("durable");
        assert_eq!(state.map(|s| (s.state_epoch, s.start_offset)), Some((1, 8)));
        // Deleted: gone after a replay too, and writes are fenced.
        c.delete(&k)
            .expect("delete")
            .durable()
            .await
            .expect("durable");
        assert_eq!(
            c.write(&k, write(5, 1, 8, vec![])).err(),
            Some(fenced_state)
        );
        assert!(serving(&p, 500).group_states("g").0.is_empty());
    }

    #[test]
    fn a_partition_not_served_here_answers_not_coordinator() {
        let c = ShareCoordinator::new(500);
        c.prepare(3);
        assert_eq!(
            c.read(&key(0), 0).err(),
            Some(WireError::NotCoordinator.code())
        );
        assert!(!c.serves(&key(0)));
    }
}
