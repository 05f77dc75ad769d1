//! Coordinators: state machines whose changes are records in an internal topic, rebuilt by
//! replaying it at start.
//!
//! [`GroupCoordinator`] serves classic consumer groups and committed offsets; its records live
//! in `__consumer_offsets` ([`codec`], Kafka's own layout), partitioned by the group id's Java
//! hash like Kafka, created on first use. Writes go through [`runtime`]: an operation checks
//! the request under the group's lock and appends its records in the same critical section,
//! so a group's records reach the log in the order its operations ran. Committed offsets (and
//! transactional offsets, and their deletion) change in memory only once their records are
//! durable, in log order, so OffsetFetch never returns an offset a crash could take back.
//! Membership (a classic rebalance, a KIP-848 member's epoch and assignment) changes first, as
//! the protocols' waiting requires, is reverted by replaying the group when its append fails,
//! and is answered only after the fsync. A partition whose log failed an fsync is not served
//! (NOT_COORDINATOR) until a restart replays what is durable. In a cluster the coordinator
//! serves only the partitions this broker leads ([`GroupCoordinator::load_partition`] /
//! [`GroupCoordinator::unload_partition`], driven by [`crate::cluster`]), and "durable" also
//! means every in-sync replica has the records.
//!
//! KIP-848 groups live in the same [`Group`] entry as the classic state and the offsets
//! (`Group::consumer`); their records (key types 3-8) are drained from the group after each
//! operation. An empty group changes type when the other protocol arrives (Kafka 4.x): the old
//! type's tombstones are written first, and committed offsets stay. Non-empty groups migrate
//! online (KIP-848, `group.consumer.migration.policy`): a consumer-protocol member joining a
//! classic group whose members all use the `consumer` embedded protocol converts it, the
//! classic members staying as classic members of the consumer group (see
//! `consumer_group/classic.rs`); when the last consumer-protocol member leaves or expires and
//! classic members remain, the group turns classic again and rebalances.

pub mod assignor;
pub mod codec;
pub mod consumer_group;
pub mod group;
pub mod runtime;
pub mod share;
pub mod share_group;
pub mod streams_group;
pub mod txn;
pub mod txn_codec;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio_util::sync::CancellationToken;

use crate::coordinator::codec::{CgKind, CgRecord, Key, OffsetValue};
use crate::coordinator::group::{
    Group, GroupState, JoinOutcome, JoinRequest, JoinResult, Limits, SyncOutcome, SyncResult,
};
use crate::coordinator::runtime::{Apply, CoordinatorPartition, Replayed, Write};
use crate::log::{now_ms, LogError, PartitionLog};
use crate::protocol::records::{build_batch, KeyValue};
use crate::protocol::WireError;
use crate::replica::Partition;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

pub use crate::config::group::{GroupConfig, MigrationPolicy};

/// A durability point: callers await [`Write::durable`] before answering.
pub type Pending = Option<Write>;

pub struct GroupCoordinator {
    groups: Arc<Mutex<HashMap<String, Arc<Mutex<Group>>>>>,
    pub config: GroupConfig,
    limits: Limits,
    /// The `__consumer_offsets` partitions by index: all of them on a single node; in a
    /// cluster only those this broker leads (None: the group's coordinator is elsewhere, or
    /// not loaded yet). Empty until the topic is known.
    partitions: RwLock<Vec<Option<Arc<CoordinatorPartition>>>>,
}

/// Kafka's `Utils.abs(groupId.hashCode()) % partitions`, Java's String hash over UTF-16 units.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    (h & 0x7fff_ffff) % partitions.max(1)
}

/// One group as listed by ListGroups.
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
    /// "classic" or "consumer".
    pub group_type: &'static str,
}

/// One member as shown by DescribeGroups.
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

pub struct GroupDescription {
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> Self {
        let limits = Limits {
            session_timeout_min_ms: config.session_timeout_min_ms,
            session_timeout_max_ms: config.session_timeout_max_ms,
            max_size: config.max_size,
            initial_rebalance_delay_ms: config.initial_rebalance_delay_ms,
        };
        GroupCoordinator {
            groups: Arc::new(Mutex::new(HashMap::new())),
            config,
            limits,
            partitions: RwLock::new(Vec::new()),
        }
    }

    pub fn is_loaded(&self) -> bool {
        !self.partitions.read().is_empty()
    }

    /// Attaches the `__consumer_offsets` partitions and replays them. Offsets written inside a
    /// transaction stay pending until their commit marker (dropped at an abort marker).
    pub fn load(&self, partitions: Vec<Arc<Partition>>) -> Result<(), LogError> {
        let now = Instant::now();
        let mut groups: HashMap<String, Group> = HashMap::new();
        for p in &partitions {
            groups.extend(self.replay_groups(&p.log, None, now)?);
        }
        tracing::info!(groups = groups.len(), "group coordinator loaded");
        let mut map = self.groups.lock();
        for (id, g) in groups {
            map.insert(id, Arc::new(Mutex::new(g)));
        }
        *self.partitions.write() = partitions
            .into_iter()
            .map(|p| Some(CoordinatorPartition::new(p)))
            .collect();
        Ok(())
    }

    /// In a cluster: `__consumer_offsets` has `count` partitions, none loaded yet (each is
    /// loaded when this broker starts leading it, [`Self::load_partition`]).
    pub fn prepare(&self, count: i32) {
        let mut partitions = self.partitions.write();
        if partitions.is_empty() {
            *partitions = vec![None; count.max(0) as usize];
        }
    }

    /// Whether partition `index` is loaded (this broker coordinates its groups).
    pub fn is_partition_loaded(&self, index: i32) -> bool {
        self.partitions
            .read()
            .get(index as usize)
            .is_some_and(|p| p.is_some())
    }

    /// In a cluster, once this broker leads `__consumer_offsets` partition `index`: replays it
    /// and serves its groups. Groups still in memory from an earlier leadership are replaced
    /// by what the log says.
    pub fn load_partition(&self, index: i32, partition: Arc<Partition>) -> Result<(), LogError> {
        let count = self.partitions.read().len() as i32;
        if index < 0 || index >= count {
            return Err(LogError::Io(std::io::Error::other(format!(
                "__consumer_offsets has no partition {index}"
            ))));
        }
        let groups = self.replay_groups(&partition.log, None, Instant::now())?;
        tracing::info!(
            partition = index,
            groups = groups.len(),
            "group coordinator partition loaded"
        );
        {
            let mut map = self.groups.lock();
            map.retain(|id, _| partition_for(id, count) != index);
            for (id, g) in groups {
                map.insert(id, Arc::new(Mutex::new(g)));
            }
        }
        self.partitions.write()[index as usize] = Some(CoordinatorPartition::new(partition));
        Ok(())
    }

    /// In a cluster, once this broker no longer leads partition `index`: its groups are
    /// forgotten here (requests for them answer NOT_COORDINATOR; clients find the new one).
    pub fn unload_partition(&self, index: i32) {
        let count = {
            let mut partitions = self.partitions.write();
            match partitions.get_mut(index as usize) {
                Some(slot) if slot.is_some() => *slot = None,
                _ => return,
            }
            partitions.len() as i32
        };
        let mut gone = Vec::new();
        self.groups.lock().retain(|id, g| {
            let keep = partition_for(id, count) != index;
            if !keep {
                gone.push(g.clone());
            }
            keep
        });
        // As Kafka's onResignation: a JoinGroup or SyncGroup parked in a group is answered
        // NOT_COORDINATOR now, so its client finds the new coordinator instead of waiting out
        // its request timeout (the group may still be referenced by a timer).
        for g in gone {
            g.lock().fail_pending(WireError::NotCoordinator.code());
        }
        tracing::info!(partition = index, "group coordinator partition unloaded");
    }

    /// The groups one `__consumer_offsets` partition holds, replayed from its log (only the
    /// group `only`, when given).
    fn replay_groups(
        &self,
        log: &PartitionLog,
        only: Option<&str>,
        now: Instant,
    ) -> Result<HashMap<String, Group>, LogError> {
        let mut groups: HashMap<String, Group> = HashMap::new();
        runtime::replay(log, |r| {
            let (key, value, txn) = match r {
                Replayed::Marker {
                    producer_id,
                    commit,
                } => {
                    for g in groups.values_mut() {
                        g.settle_txn(producer_id, commit);
                    }
                    return;
                }
                Replayed::Record {
                    key,
                    value,
                    transactional,
                } => (key, value, transactional),
            };
            let Ok(key) = codec::decode_key(key) else {
                return;
            };
            if only.is_some_and(|id| id != key.group()) {
                return;
            }
            match key {
                Key::Offset {
                    group,
                    topic,
                    partition,
                } => {
                    let g = groups
                        .entry(group.clone())
                        .or_insert_with(|| Group::new(&group));
                    let value = value.and_then(|v| codec::decode_offset(v).ok());
                    match (txn, value) {
                        (Some(pid), Some(v)) => g
                            .pending_txn
                            .entry(pid)
                            .or_default()
                            .push((topic, partition, v)),
                        (None, Some(v)) => {
                            g.offsets.insert((topic, partition), v);
                        }
                        (_, None) => {
                            g.offsets.remove(&(topic, partition));
                        }
                    }
                }
                Key::Group { group } => match value {
                    Some(v) => match codec::decode_group(v) {
                        Ok(v) => groups
                            .entry(group.clone())
                            .or_insert_with(|| Group::new(&group))
                            .load(v, now),
                        Err(e) => {
                            tracing::warn!(%group, error = %e, "skipping group record")
                        }
                    },
                    None => {
                        // The classic metadata goes; offsets stay (an empty classic group
                        // converted to a consumer group keeps them).
                        if let Some(g) = groups.get_mut(&group) {
                            g.reset_classic();
                            if g.is_vacant() {
                                groups.remove(&group);
                            }
                        }
                    }
                },
                Key::Consumer { group, kind } => {
                    replay_consumer(&mut groups, group, kind, value, now);
                }
                Key::Streams { group, kind } => replay_streams(&mut groups, group, kind, value),
                Key::Share { group, kind } => replay_share(
                    &mut groups,
                    group,
                    kind,
                    value,
                    now,
                    Duration::from_millis(self.config.share_session_timeout_ms),
                ),
            }
        })?;
        for g in groups.values_mut() {
            if let Some(c) = g.consumer.as_mut() {
                c.finish_load(now, self.config.consumer_session_timeout_ms);
            }
            if let Some(s) = g.streams.as_mut() {
                s.finish_load(now, &self.streams_limits());
            }
        }
        Ok(groups)
    }

    /// Puts a group's membership back to what its partition's log holds, after an append of
    /// records for a change already made in memory failed (nothing of it was written). Offsets
    /// are kept: they change only once durable. Requests parked in the group are answered
    /// NOT_COORDINATOR so their clients look the coordinator up again and retry.
    fn revert(&self, g: &mut Group) {
        g.fail_pending(WireError::NotCoordinator.code());
        let replayed = match self.partition_of(&g.id) {
            Ok(p) => self.replay_groups(p.log(), Some(&g.id), Instant::now()),
            Err(_) => Ok(HashMap::new()),
        };
        let mut fresh = match replayed {
            Ok(mut groups) => groups.remove(&g.id).unwrap_or_else(|| Group::new(&g.id)),
            Err(e) => {
                tracing::warn!(group = %g.id, error = %e, "cannot replay the group; its membership is dropped");
                Group::new(&g.id)
            }
        };
        fresh.offsets = std::mem::take(&mut g.offsets);
        fresh.pending_txn = std::mem::take(&mut g.pending_txn);
        fresh.in_flight = std::mem::take(&mut g.in_flight);
        if fresh.is_vacant() {
            // Nothing of it was ever durable (e.g. the first heartbeat of a new group).
            fresh.state = GroupState::Dead;
            self.groups.lock().remove(&fresh.id);
        }
        tracing::warn!(group = %g.id, "a group write failed: membership reverted to the log");
        *g = fresh;
    }

    /// The partition serving `group`: COORDINATOR_NOT_AVAILABLE before `__consumer_offsets`
    /// is known, NOT_COORDINATOR when another broker leads its partition (in a cluster) or
    /// once its log failed an fsync.
    fn partition_of(&self, group: &str) -> Result<Arc<CoordinatorPartition>, i16> {
        let partitions = self.partitions.read();
        let p = partition_for(group, partitions.len() as i32) as usize;
        let p = partitions
            .get(p)
            .ok_or(WireError::CoordinatorNotAvailable.code())?
            .as_ref()
            .ok_or(WireError::NotCoordinator.code())?;
        if !p.is_available() {
            return Err(WireError::NotCoordinator.code());
        }
        Ok(p.clone())
    }

    /// Whether this coordinator serves `group` now (see [`Self::partition_of`]).
    pub fn check_available(&self, group: &str) -> Result<(), i16> {
        self.partition_of(group).map(|_| ())
    }

    /// TxnOffsetCommit: offsets written inside a producer's transaction, applied when it
    /// commits. Membership is checked when the request names a generation or member.
    #[allow(clippy::too_many_arguments)]
    pub fn txn_commit(
        &self,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        offsets: Vec<(String, i32, OffsetValue)>,
    ) -> Result<Pending, i16> {
        let gref = self.get_or_create(group_id)?;
        let g = gref.lock();
        if generation >= 0 || !member_id.is_empty() {
            g.validate_commit(member_id, instance_id, generation)?;
        }
        let records: Vec<(Vec<u8>, Option<Vec<u8>>)> = offsets
            .iter()
            .map(|(t, p, v)| {
                (
                    codec::encode_key(&Key::Offset {
                        group: group_id.to_string(),
                        topic: t.clone(),
                        partition: *p,
                    }),
                    Some(codec::encode_offset(v)),
                )
            })
            .collect();
        let at = self.partition_of(group_id)?;
        let refs: Vec<KeyValue<'_>> = records
            .iter()
            .map(|(k, v)| (Some(k.as_slice()), v.as_deref()))
            .collect();
        let producer = crate::protocol::records::BatchProducer {
            producer_id,
            producer_epoch,
            base_sequence: -1,
            transactional: true,
            control: false,
        };
        let data = crate::protocol::records::build_batch_as(&refs, now_ms(), producer);
        let group = gref.clone();
        let apply: Apply = Box::new(move || {
            group
                .lock()
                .pending_txn
                .entry(producer_id)
                .or_default()
                .extend(offsets);
        });
        let write = at
            .append(&data, Some(apply))
            .map_err(|e| storage_code(&e))?;
        Ok(Some(write))
    }

    /// Writes a transaction marker (`marker`, a control batch) to `__consumer_offsets`
    /// partition `index`; once durable, the producer's pending offsets in the groups of that
    /// partition are applied (commit) or dropped (abort), in log order with the partition's
    /// other writes.
    pub fn append_marker(
        &self,
        index: i32,
        marker: &[u8],
        producer_id: i64,
        commit: bool,
    ) -> Result<Write, LogError> {
        let (at, count) = {
            let partitions = self.partitions.read();
            let at = partitions
                .get(index as usize)
                .cloned()
                .flatten()
                .ok_or_else(|| LogError::NotLeader(format!("{OFFSETS_TOPIC}-{index}")))?;
            (at, partitions.len() as i32)
        };
        let groups: Vec<_> = self
            .groups
            .lock()
            .iter()
            .filter(|(id, _)| partition_for(id, count) == index)
            .map(|(_, g)| g.clone())
            .collect();
        let apply: Apply = Box::new(move || {
            for g in groups {
                g.lock().settle_txn(producer_id, commit);
            }
        });
        at.append(marker, Some(apply))
    }

    fn get(&self, id: &str) -> Option<Arc<Mutex<Group>>> {
        self.groups.lock().get(id).cloned()
    }

    fn get_or_create(&self, id: &str) -> Result<Arc<Mutex<Group>>, i16> {
        self.get_or_create_flagged(id).map(|(g, _)| g)
    }

    /// Takes a group that holds nothing (a refused first request made it) out of the map, so
    /// it is not listed; marked Dead for requests already holding it, which look again.
    fn discard_if_vacant(&self, gref: &Arc<Mutex<Group>>, g: &mut Group) {
        if !g.is_vacant() || !g.in_flight.is_empty() {
            return;
        }
        g.state = GroupState::Dead;
        let mut map = self.groups.lock();
        if map.get(&g.id).is_some_and(|e| Arc::ptr_eq(e, gref)) {
            map.remove(&g.id);
        }
    }

    /// [`Self::get_or_create`], also telling whether the group was created by this call.
    fn get_or_create_flagged(&self, id: &str) -> Result<(Arc<Mutex<Group>>, bool), i16> {
        let mut map = self.groups.lock();
        if let Some(g) = map.get(id) {
            return Ok((g.clone(), false));
        }
        // Bound the number of groups a client can create.
        if map.len() >= 1_000_000 {
            return Err(WireError::CoordinatorNotAvailable.code());
        }
        let g = Arc::new(Mutex::new(Group::new(id)));
        map.insert(id.to_string(), g.clone());
        Ok((g, true))
    }

    /// Appends records for `group` to its `__consumer_offsets` partition, with `apply` to
    /// run once they are durable. Without records there is nothing to change: `apply` is
    /// dropped (callers build it from the same list as the records).
    fn append(
        &self,
        group: &str,
        records: &[(Vec<u8>, Option<Vec<u8>>)],
        apply: Option<Apply>,
    ) -> Result<Pending, LogError> {
        if records.is_empty() {
            return Ok(None);
        }
        let at = self.partition_of(group).map_err(|_| {
            LogError::Io(std::io::Error::other(
                "the group's __consumer_offsets partition is not available",
            ))
        })?;
        let refs: Vec<KeyValue<'_>> = records
            .iter()
            .map(|(k, v)| (Some(k.as_slice()), v.as_deref()))
            .collect();
        let data = build_batch(&refs, now_ms());
        at.append(&data, apply).map(Some)
    }

    /// Persists the group's membership when a rebalance reached Stable or the group emptied.
    /// A failed append reverts the group to its log and answers NOT_COORDINATOR.
    fn persist_if_settled(&self, g: &mut Group, before: (i32, GroupState)) -> Result<Pending, i16> {
        let settled = matches!(g.state, GroupState::Stable | GroupState::Empty);
        if !settled || (g.generation, g.state) == before {
            return Ok(None);
        }
        let key = codec::encode_key(&Key::Group {
            group: g.id.clone(),
        });
        let value = codec::encode_group(&g.to_value());
        match self.append(&g.id, &[(key, Some(value))], None) {
            Ok(pending) => {
                if let Some(w) = &pending {
                    g.written_to = w.end();
                }
                Ok(pending)
            }
            Err(e) => {
                tracing::warn!(group = %g.id, error = %e, "could not persist group metadata");
                self.revert(g);
                Err(WireError::NotCoordinator.code())
            }
        }
    }

    /// Appends the records a KIP-848 group's last operation produced, if any. A failed append
    /// reverts the group to its log and answers NOT_COORDINATOR.
    fn persist_consumer(&self, g: &mut Group) -> Result<Pending, i16> {
        let Some(c) = g.consumer.as_mut() else {
            return Ok(None);
        };
        let records = c.take_records(&g.id);
        self.persist_records(g, &records)
    }

    /// Appends records for a change already made to `g`; a failed append reverts the group
    /// to its log and answers NOT_COORDINATOR (Kafka's answer to a failed coordinator write,
    /// which sends the client to look the coordinator up again and retry).
    fn persist_records(&self, g: &mut Group, records: &[CgRecord]) -> Result<Pending, i16> {
        match self.append(&g.id, records, None) {
            Ok(pending) => Ok(pending),
            Err(e) => {
                tracing::warn!(group = %g.id, error = %e, "could not persist a group change");
                self.revert(g);
                Err(WireError::NotCoordinator.code())
            }
        }
    }

    pub async fn join(
        &self,
        group_id: &str,
        req: JoinRequest,
        topics: &consumer_group::TopicsView,
    ) -> JoinResult {
        let member = req.member_id.clone();
        if let Err(code) = self.check_available(group_id) {
            return JoinResult::error(code, &member);
        }
        let g = if member.is_empty() {
            match self.get_or_create(group_id) {
                Ok(g) => g,
                Err(code) => return JoinResult::error(code, &member),
            }
        } else {
            match self.get(group_id) {
                Some(g) => g,
                None => return JoinResult::error(WireError::UnknownMemberId.code(), &member),
            }
        };
        if req.session_timeout_ms < self.limits.session_timeout_min_ms
            || req.session_timeout_ms > self.limits.session_timeout_max_ms
        {
            return JoinResult::error(WireError::InvalidSessionTimeout.code(), &member);
        }
        {
            let g = g.lock();
            if g.streams.is_some() || g.share.is_some() {
                // Kafka: a classic join to a streams or share group id.
                return JoinResult::error(WireError::InconsistentGroupProtocol.code(), &member);
            }
        }
        let to_consumer = {
            let g = g.lock();
            g.state != GroupState::Dead
                && g.consumer.as_ref().is_some_and(|c| !c.members.is_empty())
        };
        if to_consumer {
            return self.classic_join_consumer(group_id, req, topics).await;
        }
        let (outcome, converted, settled) = {
            let mut g = g.lock();
            // Kafka 4.x: an empty consumer group becomes a classic group on JoinGroup (its
            // tombstones first; offsets stay). A non-empty one answers
            // INCONSISTENT_GROUP_PROTOCOL from `Group::join` (no online migration).
            let mut converted = None;
            if g.state != GroupState::Dead
                && g.consumer.as_ref().is_some_and(|c| c.members.is_empty())
            {
                let records = g
                    .consumer
                    .as_ref()
                    .map(|c| c.tombstones(group_id))
                    .unwrap_or_default();
                // Written before memory changes: a failed append leaves the group as it was.
                match self.append(group_id, &records, None) {
                    Ok(p) => converted = p,
                    Err(e) => {
                        storage_code(&e);
                        return JoinResult::error(WireError::NotCoordinator.code(), &member);
                    }
                }
                tracing::info!(
                    group = group_id,
                    "converted the empty consumer group to a classic group"
                );
                g.consumer = None;
                g.reset_classic();
            }
            let before = (g.generation, g.state);
            let o = g.join(req, &self.limits, Instant::now());
            match self.persist_if_settled(&mut g, before) {
                Ok(settled) => (o, converted, settled),
                Err(code) => {
                    // The revert answered every parked request, this one's included.
                    let failed = JoinResult::error(code, &member);
                    (JoinOutcome::Now(failed), None, None)
                }
            }
        };
        for w in [converted, settled].into_iter().flatten() {
            if let Err(e) = w.durable().await {
                tracing::warn!(group = group_id, error = %e, "group write not durable");
                return JoinResult::error(WireError::NotCoordinator.code(), &member);
            }
        }
        match outcome {
            JoinOutcome::Now(r) => r,
            JoinOutcome::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| JoinResult::error(WireError::UnknownMemberId.code(), &member)),
        }
    }

    /// JoinGroup from a classic member to a non-empty consumer group (online migration).
    async fn classic_join_consumer(
        &self,
        group_id: &str,
        req: JoinRequest,
        topics: &consumer_group::TopicsView,
    ) -> JoinResult {
        let Some(g) = self.get(group_id) else {
            return JoinResult::error(WireError::UnknownMemberId.code(), &req.member_id);
        };
        let (result, pending) = {
            let mut g = g.lock();
            let Some(c) = g.consumer.as_mut().filter(|c| !c.members.is_empty()) else {
                // Changed type meanwhile: the client rejoins.
                return JoinResult::error(WireError::RebalanceInProgress.code(), &req.member_id);
            };
            let limits = self.consumer_limits();
            let r = c.classic_join(req, topics, &limits, Instant::now());
            match self.persist_consumer(&mut g) {
                Ok(p) => (r, p),
                Err(code) => {
                    let id = match r {
                        Ok(ok) => ok.member_id,
                        Err((_, id)) => id,
                    };
                    return JoinResult::error(code, &id);
                }
            }
        };
        if let Some(w) = pending {
            if w.durable().await.is_err() {
                let id = match result {
                    Ok(ok) => ok.member_id,
                    Err((_, id)) => id,
                };
                return JoinResult::error(WireError::NotCoordinator.code(), &id);
            }
        }
        match result {
            Ok(ok) => JoinResult {
                error: 0,
                generation: ok.generation,
                protocol_type: Some(consumer_group::CONSUMER_PROTOCOL_TYPE.to_string()),
                protocol_name: Some(ok.protocol_name),
                leader: String::new(),
                member_id: ok.member_id,
                members: Vec::new(),
            },
            Err((code, id)) => JoinResult::error(code, &id),
        }
    }

    /// Streams-group settings: Kafka 4.4's `group.streams.*` defaults (the broker keys and the
    /// group configs come with the StreamsGroupHeartbeat handler), the consumer groups' size cap.
    /// A streams group's limits: the broker's `group.streams.*`, with the group's own
    /// `streams.*` configs (`overrides`) where it sets them.
    fn streams_limits_for(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> streams_group::group::StreamsLimits {
        let (session_timeout_ms, heartbeat_interval_ms, num_standby_replicas) =
            crate::config::group_configs::streams_settings(overrides, &self.config);
        streams_group::group::StreamsLimits {
            session_timeout_ms,
            heartbeat_interval_ms,
            num_standby_replicas,
            max_size: self.config.streams_max_size,
            acceptable_recovery_lag: self.config.streams_acceptable_recovery_lag,
            task_offset_interval_ms: self.config.streams_task_offset_interval_ms,
        }
    }

    /// The broker's streams-group limits (at load, where group configs are not at hand: the
    /// first heartbeat after it applies the group's own).
    fn streams_limits(&self) -> streams_group::group::StreamsLimits {
        self.streams_limits_for(&BTreeMap::new())
    }

    fn consumer_limits(&self) -> consumer_group::ConsumerLimits {
        consumer_group::ConsumerLimits {
            session_timeout_ms: self.config.consumer_session_timeout_ms,
            max_size: self.config.consumer_max_size,
        }
    }

    /// Converts a consumer group whose last consumer-protocol member `leaving` goes into a
    /// classic group of its classic members (Kafka's `convertToClassicGroup`), and starts a
    /// rebalance. Returns the records: the consumer group's tombstones, then the classic group.
    fn downgrade(&self, g: &mut Group, leaving: &str, now: Instant) -> Vec<CgRecord> {
        let Some(c) = g.consumer.take() else {
            return Vec::new();
        };
        let mut records = c.tombstones(&g.id);
        let members = c.downgraded_members(leaving);
        g.downgrade_from(members, c.group_epoch, now);
        records.push((
            codec::encode_key(&Key::Group {
                group: g.id.clone(),
            }),
            Some(codec::encode_group(&g.to_value())),
        ));
        g.start_rebalance(now, &self.limits);
        tracing::info!(group = %g.id, "downgraded the consumer group to a classic group");
        records
    }

    /// Whether the member `leaving` leaving the group triggers a downgrade (policy and size).
    fn downgrade_allowed(&self, c: &consumer_group::ConsumerGroup, leaving: &str) -> bool {
        self.config.migration_policy.downgrade()
            && c.downgrade_candidate(leaving)
            && c.members.len() - 1 <= self.config.max_size
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResult {
        if let Err(code) = self.check_available(group_id) {
            return SyncResult::error(code);
        }
        let Some(g) = self.get(group_id) else {
            return SyncResult::error(WireError::UnknownMemberId.code());
        };
        let outcome = {
            let mut g = g.lock();
            if let Some(c) = g.consumer.as_mut() {
                return match c.classic_sync(
                    member_id,
                    instance_id,
                    generation,
                    protocol_type,
                    protocol_name,
                    Instant::now(),
                ) {
                    Ok((name, assignment)) => SyncResult {
                        error: 0,
                        protocol_type: Some(consumer_group::CONSUMER_PROTOCOL_TYPE.to_string()),
                        protocol_name: Some(name),
                        assignment,
                    },
                    Err(code) => SyncResult::error(code),
                };
            }
            let before = (g.generation, g.state);
            let o = g.sync(
                member_id,
                instance_id,
                generation,
                protocol_type,
                protocol_name,
                assignments,
            );
            match self.persist_if_settled(&mut g, before) {
                Ok(_) => o,
                // The revert answered every parked request, this one's included.
                Err(code) => SyncOutcome::Now(SyncResult::error(code)),
            }
        };
        let r = match outcome {
            SyncOutcome::Now(r) => r,
            SyncOutcome::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| SyncResult::error(WireError::RebalanceInProgress.code())),
        };
        if r.error != 0 {
            return r;
        }
        // The assignment handed out must survive a restart: answer once the group record
        // holding it is durable (and still the group's).
        match self.group_write_durable(group_id, generation).await {
            Ok(()) => r,
            Err(code) => SyncResult::error(code),
        }
    }

    /// Waits until the group's last membership record is durable, if the group is still at
    /// `generation` (a revert or a new rebalance meanwhile answers an error).
    async fn group_write_durable(&self, group_id: &str, generation: i32) -> Result<(), i16> {
        let at = self.partition_of(group_id)?;
        let end = {
            let g = self.get(group_id).ok_or(WireError::NotCoordinator.code())?;
            let g = g.lock();
            if g.generation != generation {
                return Err(WireError::RebalanceInProgress.code());
            }
            g.written_to
        };
        at.write_at(end)
            .durable()
            .await
            .map_err(|_| WireError::NotCoordinator.code())
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> i16 {
        if let Err(code) = self.check_available(group_id) {
            return code;
        }
        let Some(g) = self.get(group_id) else {
            return WireError::UnknownMemberId.code();
        };
        let mut g = g.lock();
        if let Some(c) = g.consumer.as_mut() {
            return c.classic_heartbeat(member_id, instance_id, generation, Instant::now());
        }
        g.heartbeat(member_id, instance_id, generation, Instant::now())
    }

    /// LeaveGroup for one member: the error code, and the write to wait for before answering.
    pub fn leave(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> (i16, Pending) {
        if let Err(code) = self.check_available(group_id) {
            return (code, None);
        }
        let Some(g) = self.get(group_id) else {
            return (WireError::UnknownMemberId.code(), None);
        };
        let mut g = g.lock();
        if let Some(c) = g.consumer.as_mut() {
            let code = c.classic_leave(member_id, instance_id);
            return match self.persist_consumer(&mut g) {
                Ok(pending) => (code, pending),
                Err(code) => (code, None),
            };
        }
        let before = (g.generation, g.state);
        let code = g.leave(member_id, instance_id, Instant::now(), &self.limits);
        match self.persist_if_settled(&mut g, before) {
            Ok(pending) => (code, pending),
            Err(code) => (code, None),
        }
    }

    /// OffsetCommit: validates membership, applies and appends. Returns the per-offset error
    /// codes (in input order) and the durability point to wait for.
    pub fn commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        offsets: Vec<(String, i32, OffsetValue)>,
    ) -> Result<(Vec<i16>, Pending), i16> {
        self.check_available(group_id)?;
        let gref = if generation < 0 {
            self.get_or_create(group_id)?
        } else {
            self.get(group_id).ok_or(if member_id.is_empty() {
                WireError::IllegalGeneration.code()
            } else {
                WireError::UnknownMemberId.code()
            })?
        };
        let mut g = gref.lock();
        if g.share.is_some() {
            // Kafka: a share group has no committed offsets (ShareGroup.validateOffsetCommit).
            return Err(WireError::GroupIdNotFound.code());
        }
        g.validate_commit(member_id, instance_id, generation)?;
        let mut codes = Vec::with_capacity(offsets.len());
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for (topic, partition, v) in offsets {
            if v.metadata.len() > self.config.offset_metadata_max_bytes {
                codes.push(WireError::OffsetMetadataTooLarge.code());
                continue;
            }
            codes.push(0);
            records.push((
                codec::encode_key(&Key::Offset {
                    group: group_id.to_string(),
                    topic: topic.clone(),
                    partition,
                }),
                Some(codec::encode_offset(&v)),
            ));
            accepted.push((topic, partition, v));
        }
        // The offsets become visible (OffsetFetch) once durable, not when appended.
        let keys: Vec<(String, i32)> = accepted.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
        let group = gref.clone();
        let apply: Apply = Box::new(move || {
            let mut g = group.lock();
            for (topic, partition, v) in accepted {
                let k = (topic, partition);
                g.landed(&k);
                g.offsets.insert(k, v);
            }
        });
        match self.append(group_id, &records, Some(apply)) {
            Ok(pending) => {
                if pending.is_some() {
                    for k in keys {
                        *g.in_flight.entry(k).or_default() += 1;
                    }
                }
                Ok((codes, pending))
            }
            Err(e) => {
                tracing::warn!(group = group_id, error = %e, "offset commit append failed");
                let code = storage_code(&e);
                Ok((
                    codes
                        .iter()
                        .map(|c| if *c == 0 { code } else { *c })
                        .collect(),
                    None,
                ))
            }
        }
    }

    /// Whether a transaction not yet decided, or a commit not yet durable, holds an offset
    /// for this partition of the group (OffsetFetch with require_stable answers
    /// UNSTABLE_OFFSET_COMMIT, and the client asks again).
    pub fn is_unstable(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.get(group_id).is_some_and(|g| {
            let g = g.lock();
            g.in_flight.contains_key(&(topic.to_string(), partition))
                || g.pending_txn
                    .values()
                    .flatten()
                    .any(|(t, p, _)| t == topic && *p == partition)
        })
    }

    /// Committed offsets of a group: all of them (`None`) or the requested partitions.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<&[(String, i32)]>,
    ) -> Result<Vec<(String, i32, Option<OffsetValue>)>, i16> {
        self.check_available(group_id)?;
        let Some(g) = self.get(group_id) else {
            return Ok(wanted
                .unwrap_or(&[])
                .iter()
                .map(|(t, p)| (t.clone(), *p, None))
                .collect());
        };
        let g = g.lock();
        Ok(match wanted {
            Some(list) => list
                .iter()
                .map(|(t, p)| (t.clone(), *p, g.offsets.get(&(t.clone(), *p)).cloned()))
                .collect(),
            None => {
                let mut all: Vec<_> = g
                    .offsets
                    .iter()
                    .map(|((t, p), v)| (t.clone(), *p, Some(v.clone())))
                    .collect();
                all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
                all
            }
        })
    }

    /// ConsumerGroupHeartbeat (KIP-848). The response must wait for the returned durability
    /// point: it carries epochs and assignments the records made durable. `session_timeout_ms`
    /// is the group's (its `consumer.session.timeout.ms`, else the broker's).
    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        req: consumer_group::HeartbeatRequest,
        topics: &consumer_group::TopicsView,
        session_timeout_ms: u64,
    ) -> Result<(consumer_group::HeartbeatResponse, Pending), consumer_group::HeartbeatError> {
        self.check_available(group_id)
            .map_err(|c| (c, "The coordinator is not available.".to_string()))?;
        let (gref, created) = self
            .get_or_create_flagged(group_id)
            .map_err(|c| (c, "too many groups".to_string()))?;
        let mut g = gref.lock();
        if g.state == GroupState::Dead {
            // Removed from the map while we waited for it: look again.
            drop(g);
            return self.consumer_heartbeat(group_id, req, topics, session_timeout_ms);
        }
        if g.streams.is_some() || g.share.is_some() {
            return Err((
                WireError::GroupIdNotFound.code(),
                format!("Group {group_id} is not a consumer group."),
            ));
        }
        // Kafka 4.x: an empty classic group (e.g. only committed offsets) becomes a consumer
        // group; a non-empty one is upgraded online when the migration policy allows it and
        // all its members use the `consumer` embedded protocol, otherwise it is not a
        // consumer group. Only a join (epoch 0) creates or converts, as in Kafka.
        let converting = g.consumer.is_none();
        let mut upgrading = false;
        if converting {
            let absent = created || g.is_vacant();
            if req.member_epoch != 0 && absent {
                self.discard_if_vacant(&gref, &mut g);
                return Err((
                    WireError::GroupIdNotFound.code(),
                    format!("Consumer group {group_id} not found."),
                ));
            }
            let upgradable = self.config.migration_policy.upgrade()
                && g.protocol_type.as_deref() == Some(consumer_group::CONSUMER_PROTOCOL_TYPE)
                && g.members.len() <= self.config.consumer_max_size;
            if req.member_epoch != 0 || (!g.is_empty() && !upgradable) {
                return Err((
                    WireError::GroupIdNotFound.code(),
                    format!("Group {group_id} is not a consumer group"),
                ));
            }
            if g.is_empty() {
                g.consumer = Some(consumer_group::ConsumerGroup::new());
            } else {
                let c = consumer_group::ConsumerGroup::from_classic(&g, topics).map_err(|e| {
                    tracing::warn!(group = group_id, error = %e, "cannot upgrade the classic group");
                    (
                        WireError::GroupIdNotFound.code(),
                        format!("Cannot upgrade the classic group {group_id} to consumer group because the embedded consumer protocol is malformed."),
                    )
                })?;
                g.consumer = Some(c);
                upgrading = true;
            }
        }
        let limits = consumer_group::ConsumerLimits {
            session_timeout_ms,
            ..self.consumer_limits()
        };
        let now = Instant::now();
        if req.member_epoch < 0 {
            let c = g.consumer.as_ref().expect("consumer group");
            if self.downgrade_allowed(c, &req.member_id) {
                let records = self.downgrade(&mut g, &req.member_id, now);
                let resp = consumer_group::HeartbeatResponse {
                    member_id: req.member_id,
                    member_epoch: req.member_epoch,
                    assignment: None,
                };
                return match self.persist_records(&mut g, &records) {
                    Ok(pending) => Ok((resp, pending)),
                    Err(code) => Err((
                        code,
                        "The group coordinator could not persist the heartbeat.".into(),
                    )),
                };
            }
        }
        let c = g.consumer.as_mut().expect("consumer group");
        let resp = match c.heartbeat(req, topics, &limits, now) {
            Ok(r) => r,
            Err(e) => {
                if converting {
                    // Nothing was created: the group stays what it was.
                    g.consumer = None;
                }
                return Err(e);
            }
        };
        let mut records = Vec::new();
        if converting {
            if !created {
                records.push((
                    codec::encode_key(&Key::Group {
                        group: group_id.to_string(),
                    }),
                    None,
                ));
                tracing::info!(
                    group = group_id,
                    upgrading,
                    "converted the classic group to a consumer group"
                );
            }
            // Members parked in a rebalance of the classic group rejoin the consumer group.
            g.fail_pending(WireError::RebalanceInProgress.code());
            g.reset_classic();
        }
        let c = g.consumer.as_mut().expect("consumer group");
        records.extend(c.take_records(group_id));
        match self.persist_records(&mut g, &records) {
            Ok(pending) => Ok((resp, pending)),
            // Kafka answers NOT_COORDINATOR when its write fails, so the client looks the
            // coordinator up again and retries; the group is as it was before.
            Err(code) => Err((
                code,
                "The group coordinator could not persist the heartbeat.".into(),
            )),
        }
    }

    /// StreamsGroupHeartbeat (KIP-1071), already checked by [`streams_group::validate`]. Only a
    /// join creates a streams group; a group that exists as another kind with members is not
    /// one. The response must wait for the returned durability point; the outcome also lists
    /// the internal topics the broker should create.
    pub fn streams_heartbeat(
        &self,
        group_id: &str,
        req: &crate::protocol::streams::HeartbeatRequest,
        client_id: &str,
        client_host: &str,
        topics: &streams_group::group::TopicsView<'_>,
        group_configs: &BTreeMap<String, String>,
    ) -> Result<
        (streams_group::group::HeartbeatOutcome, Pending),
        streams_group::group::HeartbeatError,
    > {
        self.check_available(group_id)
            .map_err(|c| (c, "The coordinator is not available.".to_string()))?;
        let (gref, created) = self
            .get_or_create_flagged(group_id)
            .map_err(|c| (c, "too many groups".to_string()))?;
        let mut g = gref.lock();
        if g.state == GroupState::Dead {
            // Removed from the map (deleted, or discarded below) while we waited for it: the
            // next lookup finds or makes the live one.
            drop(g);
            return self.streams_heartbeat(
                group_id,
                req,
                client_id,
                client_host,
                topics,
                group_configs,
            );
        }
        let creating = g.streams.is_none();
        if creating {
            let absent = created || g.is_vacant();
            let refused = if req.member_epoch != 0 && absent {
                Some(format!("Streams group {group_id} not found."))
            } else if req.member_epoch != 0
                || !g.members.is_empty()
                || g.consumer.is_some()
                || g.share.is_some()
            {
                Some(format!("Group {group_id} is not a streams group."))
            } else {
                None
            };
            if let Some(message) = refused {
                self.discard_if_vacant(&gref, &mut g);
                return Err((WireError::GroupIdNotFound.code(), message));
            }
            g.streams = Some(streams_group::group::StreamsGroup::new());
        }
        let limits = self.streams_limits_for(group_configs);
        let s = g.streams.as_mut().expect("streams group");
        let out = match s.heartbeat(req, client_id, client_host, topics, &limits, Instant::now()) {
            Ok(o) => o,
            Err(e) => {
                if creating {
                    g.streams = None;
                    self.discard_if_vacant(&gref, &mut g);
                }
                return Err(e);
            }
        };
        let records = g
            .streams
            .as_mut()
            .expect("streams group")
            .take_records(group_id, &limits);
        match self.persist_records(&mut g, &records) {
            Ok(pending) => Ok((out, pending)),
            Err(code) => Err((
                code,
                "The group coordinator could not persist the heartbeat.".into(),
            )),
        }
    }

    /// ShareGroupHeartbeat (KIP-932), already validated. Only a join creates a share group; a
    /// group of another type is not one (GROUP_ID_NOT_FOUND, as Kafka). The response must wait
    /// for the returned durability point.
    #[allow(clippy::too_many_arguments)]
    pub fn share_heartbeat(
        &self,
        group_id: &str,
        req: share_group::HeartbeatRequest,
        client_id: &str,
        client_host: &str,
        topics: share_group::TopicsView<'_>,
        limits: &share_group::Limits,
    ) -> Result<(share_group::HeartbeatResponse, Pending), share_group::HeartbeatError> {
        self.check_available(group_id)
            .map_err(|c| (c, "The coordinator is not available.".to_string()))?;
        let (gref, created) = self
            .get_or_create_flagged(group_id)
            .map_err(|c| (c, "too many groups".to_string()))?;
        let mut g = gref.lock();
        if g.state == GroupState::Dead {
            drop(g);
            return self.share_heartbeat(group_id, req, client_id, client_host, topics, limits);
        }
        let creating = g.share.is_none();
        if creating {
            let absent = created || g.is_vacant();
            let refused = if req.member_epoch != 0 && absent {
                Some(format!("Share group {group_id} not found."))
            } else if !absent {
                Some(format!("Group {group_id} is not a share group."))
            } else {
                None
            };
            if let Some(message) = refused {
                self.discard_if_vacant(&gref, &mut g);
                return Err((WireError::GroupIdNotFound.code(), message));
            }
            g.share = Some(share_group::ShareGroup::new());
        }
        let s = g.share.as_mut().expect("share group");
        let out = match s.heartbeat(
            group_id,
            req,
            client_id,
            client_host,
            topics,
            limits,
            Instant::now(),
        ) {
            Ok(o) => o,
            Err(e) => {
                if creating {
                    g.share = None;
                    self.discard_if_vacant(&gref, &mut g);
                }
                return Err(e);
            }
        };
        let records = g
            .share
            .as_mut()
            .expect("share group")
            .take_records(group_id);
        match self.persist_records(&mut g, &records) {
            Ok(pending) => Ok((out, pending)),
            Err(code) => Err((
                code,
                "The group coordinator could not persist the heartbeat.".into(),
            )),
        }
    }

    /// Makes sure `group_id` is a share group without members, creating an empty one when no
    /// group has the id (AlterShareGroupOffsets, as Kafka). A group of another type is
    /// GROUP_ID_NOT_FOUND, a share group with members NON_EMPTY_GROUP.
    pub fn empty_share_group(&self, group_id: &str) -> Result<Pending, (i16, String)> {
        self.check_available(group_id)
            .map_err(|c| (c, "The coordinator is not available.".to_string()))?;
        let (gref, created) = self
            .get_or_create_flagged(group_id)
            .map_err(|c| (c, "too many groups".to_string()))?;
        let mut g = gref.lock();
        if g.state == GroupState::Dead {
            drop(g);
            return self.empty_share_group(group_id);
        }
        match &g.share {
            Some(s) if s.members.is_empty() => return Ok(None),
            Some(_) => {
                return Err((
                    WireError::NonEmptyGroup.code(),
                    "The group is not empty.".to_string(),
                ))
            }
            None if !(created || g.is_vacant()) => {
                return Err((
                    WireError::GroupIdNotFound.code(),
                    format!("Group {group_id} is not a share group."),
                ))
            }
            None => {}
        }
        let mut s = share_group::ShareGroup::created_empty();
        let records = s.take_records(group_id);
        g.share = Some(s);
        self.persist_records(&mut g, &records).map_err(|code| {
            (
                code,
                "The group coordinator could not persist the group.".to_string(),
            )
        })
    }

    /// Runs `f` on a share group, or returns None when the group is not one.
    pub fn with_share_group<R>(
        &self,
        group_id: &str,
        f: impl FnOnce(&share_group::ShareGroup) -> R,
    ) -> Option<R> {
        let g = self.get(group_id)?;
        let g = g.lock();
        g.share.as_ref().map(f)
    }

    /// Whether a group of any type exists under `group_id`.
    pub fn exists(&self, group_id: &str) -> bool {
        self.get(group_id).is_some_and(|g| {
            let g = g.lock();
            g.state != GroupState::Dead && !g.is_vacant()
        })
    }

    /// Runs `f` on a streams group, or returns None when the group is not one.
    pub fn with_streams_group<R>(
        &self,
        group_id: &str,
        f: impl FnOnce(&streams_group::group::StreamsGroup) -> R,
    ) -> Option<R> {
        let g = self.get(group_id)?;
        let g = g.lock();
        g.streams.as_ref().map(f)
    }

    /// Runs `f` on a KIP-848 group, or returns None when the group is not one.
    pub fn with_consumer_group<R>(
        &self,
        group_id: &str,
        f: impl FnOnce(&consumer_group::ConsumerGroup) -> R,
    ) -> Option<R> {
        let g = self.get(group_id)?;
        let g = g.lock();
        g.consumer.as_ref().map(f)
    }

    pub fn list(&self) -> Vec<GroupListing> {
        let groups: Vec<_> = self.groups.lock().values().cloned().collect();
        let mut out: Vec<GroupListing> = groups
            .iter()
            .map(|g| {
                let g = g.lock();
                if let Some(s) = &g.share {
                    return GroupListing {
                        group_id: g.id.clone(),
                        protocol_type: "share".into(),
                        state: s.state(),
                        group_type: "share",
                    };
                }
                if let Some(s) = &g.streams {
                    // Kafka lists streams groups with protocol type "streams".
                    return GroupListing {
                        group_id: g.id.clone(),
                        protocol_type: "streams".into(),
                        state: s.state(),
                        group_type: "streams",
                    };
                }
                match &g.consumer {
                    Some(c) => GroupListing {
                        group_id: g.id.clone(),
                        protocol_type: "consumer".into(),
                        state: c.state(),
                        group_type: "consumer",
                    },
                    None => GroupListing {
                        group_id: g.id.clone(),
                        protocol_type: g.protocol_type.clone().unwrap_or_default(),
                        state: g.state.name(),
                        group_type: "classic",
                    },
                }
            })
            .filter(|l| l.state != "Dead")
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    pub fn describe(&self, group_id: &str) -> GroupDescription {
        let Some(g) = self.get(group_id) else {
            return GroupDescription {
                state: "Dead",
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            };
        };
        let g = g.lock();
        if g.share.is_some() {
            return GroupDescription {
                state: "NotClassic",
                protocol_type: "share".into(),
                protocol: String::new(),
                members: Vec::new(),
            };
        }
        if g.streams.is_some() {
            return GroupDescription {
                state: "NotClassic",
                protocol_type: "streams".into(),
                protocol: String::new(),
                members: Vec::new(),
            };
        }
        if g.consumer.is_some() {
            return GroupDescription {
                state: "NotClassic",
                protocol_type: "consumer".into(),
                protocol: String::new(),
                members: Vec::new(),
            };
        }
        let protocol = g.protocol.clone().unwrap_or_default();
        let stable = g.state == GroupState::Stable;
        GroupDescription {
            state: g.state.name(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: g
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m
                        .protocols
                        .iter()
                        .find(|(n, _)| *n == protocol)
                        .map(|(_, b)| b.clone())
                        .unwrap_or_default(),
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }

    /// DeleteGroups for one group: only when it has no members.
    pub fn delete(&self, group_id: &str) -> Result<Pending, i16> {
        self.check_available(group_id)?;
        let gref = self
            .get(group_id)
            .ok_or(WireError::GroupIdNotFound.code())?;
        let g = gref.lock();
        if !g.is_empty()
            || g.consumer.as_ref().is_some_and(|c| !c.members.is_empty())
            || g.streams.as_ref().is_some_and(|s| !s.members.is_empty())
            || g.share.as_ref().is_some_and(|s| !s.members.is_empty())
        {
            return Err(WireError::NonEmptyGroup.code());
        }
        if g.state == GroupState::Dead {
            return Err(WireError::GroupIdNotFound.code());
        }
        let keys = g.offset_keys();
        let mut records: Vec<(Vec<u8>, Option<Vec<u8>>)> = keys
            .iter()
            .map(|(t, p)| {
                (
                    codec::encode_key(&Key::Offset {
                        group: group_id.to_string(),
                        topic: t.clone(),
                        partition: *p,
                    }),
                    None,
                )
            })
            .collect();
        match (&g.consumer, &g.streams) {
            _ if g.share.is_some() => {
                records.extend(g.share.as_ref().expect("share").tombstones(group_id))
            }
            (_, Some(s)) => records.extend(s.tombstones(group_id)),
            (Some(c), None) => records.extend(c.tombstones(group_id)),
            (None, None) => records.push((
                codec::encode_key(&Key::Group {
                    group: group_id.to_string(),
                }),
                None,
            )),
        }
        // Once durable: the offsets go, and the group with them unless a member joined
        // meanwhile (its records follow the tombstones in the log).
        let groups = self.groups.clone();
        let group = gref.clone();
        let apply: Apply = Box::new(move || {
            let mut g = group.lock();
            for k in &keys {
                g.offsets.remove(k);
            }
            if g.is_empty()
                && g.consumer.as_ref().is_none_or(|c| c.members.is_empty())
                && g.streams.as_ref().is_none_or(|s| s.members.is_empty())
                && g.share.as_ref().is_none_or(|s| s.members.is_empty())
            {
                g.state = GroupState::Dead;
                let id = g.id.clone();
                drop(g);
                let mut map = groups.lock();
                if map.get(&id).is_some_and(|e| Arc::ptr_eq(e, &group)) {
                    map.remove(&id);
                }
            }
        });
        self.append(group_id, &records, Some(apply))
            .map_err(|e| storage_code(&e))
    }

    /// OffsetDelete: removes committed offsets of partitions the group does not consume now.
    /// `subscribed(topic)` tells whether an active member subscribes to a topic.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<(Vec<i16>, Pending), i16> {
        self.check_available(group_id)?;
        let gref = self
            .get(group_id)
            .ok_or(WireError::GroupIdNotFound.code())?;
        let g = gref.lock();
        if g.protocol_type.as_deref().is_some_and(|t| t != "consumer") && !g.is_empty() {
            return Err(WireError::NonEmptyGroup.code());
        }
        let subscribed = subscribed_topics(&g);
        let known = g.offset_keys();
        let mut codes = Vec::new();
        let mut records = Vec::new();
        let mut removed = Vec::new();
        for (t, p) in partitions {
            if !g.is_empty() && subscribed.iter().any(|s| s == t) {
                codes.push(WireError::GroupSubscribedToTopic.code());
                continue;
            }
            codes.push(0);
            let k = (t.clone(), *p);
            if known.contains(&k) {
                records.push((
                    codec::encode_key(&Key::Offset {
                        group: group_id.to_string(),
                        topic: t.clone(),
                        partition: *p,
                    }),
                    None,
                ));
                removed.push(k);
            }
        }
        let group = gref.clone();
        let apply: Apply = Box::new(move || {
            let mut g = group.lock();
            for k in removed {
                g.offsets.remove(&k);
            }
        });
        let pending = self
            .append(group_id, &records, Some(apply))
            .map_err(|e| storage_code(&e))?;
        Ok((codes, pending))
    }

    /// Drives session/rebalance timeouts and offset retention until `shutdown`.
    pub async fn run_timers(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut last_retention = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let now = Instant::now();
            let groups: Vec<_> = self.groups.lock().values().cloned().collect();
            let retention_due = now.duration_since(last_retention) >= Duration::from_secs(60);
            for gref in groups {
                let mut g = gref.lock();
                if self.check_available(&g.id).is_err() {
                    continue;
                }
                self.expire_consumer_members(&mut g, now);
                self.expire_streams_members(&mut g, now);
                self.expire_share_members(&mut g, now);
                let before = (g.generation, g.state);
                if g.tick(now, &self.limits) {
                    // A failure reverts the group (and is logged); nobody waits for the answer.
                    let _ = self.persist_if_settled(&mut g, before);
                }
                if retention_due && g.offsets_may_expire() {
                    self.expire_offsets(&gref, &g);
                }
            }
            if retention_due {
                last_retention = now;
            }
        }
    }

    /// Removes the consumer group's expired members; the expiry of its last consumer-protocol
    /// member may turn it back into a classic group.
    fn expire_consumer_members(&self, g: &mut Group, now: Instant) {
        let Some(c) = g.consumer.as_ref() else {
            return;
        };
        let gone = c.expired(now);
        if gone.is_empty() {
            return;
        }
        let mut records = Vec::new();
        for id in gone {
            let Some(c) = g.consumer.as_mut() else {
                break;
            };
            tracing::info!(group = %g.id, member = %id, "consumer group member expired");
            if self.downgrade_allowed(c, &id) {
                records.extend(c.take_records(&g.id));
                records.extend(self.downgrade(g, &id, now));
                break;
            }
            c.expire(&id);
        }
        if let Some(c) = g.consumer.as_mut() {
            records.extend(c.take_records(&g.id));
        }
        // A failure reverts the group (and is logged); the expiry is tried again next tick.
        let _ = self.persist_records(g, &records);
    }

    /// Removes a streams group's members whose session ended or who did not revoke in time.
    fn expire_streams_members(&self, g: &mut Group, now: Instant) {
        let Some(s) = g.streams.as_mut() else {
            return;
        };
        let limits = s
            .last_limits
            .clone()
            .unwrap_or_else(|| self.streams_limits());
        let gone = s.tick(now);
        if gone.is_empty() {
            return;
        }
        for id in &gone {
            tracing::info!(group = %g.id, member = %id, "streams group member expired");
        }
        let records = s.take_records(&g.id, &limits);
        // A failure reverts the group (and is logged); the expiry is tried again next tick.
        let _ = self.persist_records(g, &records);
    }

    /// Removes a share group's members whose session ended.
    fn expire_share_members(&self, g: &mut Group, now: Instant) {
        let Some(s) = g.share.as_mut() else {
            return;
        };
        let gone = s.expire(now);
        if gone.is_empty() {
            return;
        }
        for id in &gone {
            tracing::info!(group = %g.id, member = %id, "share group member expired");
        }
        let records = s.take_records(&g.id);
        // A failure reverts the group (and is logged); the expiry is tried again next tick.
        let _ = self.persist_records(g, &records);
    }

    /// Offset retention: tombstones for the group's offsets older than
    /// `offsets.retention.minutes` (not those with a newer commit in flight), removed from
    /// memory once durable.
    fn expire_offsets(&self, gref: &Arc<Mutex<Group>>, g: &Group) {
        let cutoff = now_ms() - self.config.offsets_retention_ms;
        let expired: Vec<(String, i32)> = g
            .offsets
            .iter()
            .filter(|(k, v)| v.commit_timestamp < cutoff && !g.in_flight.contains_key(*k))
            .map(|(k, _)| k.clone())
            .collect();
        if expired.is_empty() {
            return;
        }
        let records: Vec<_> = expired
            .iter()
            .map(|(t, p)| {
                (
                    codec::encode_key(&Key::Offset {
                        group: g.id.clone(),
                        topic: t.clone(),
                        partition: *p,
                    }),
                    None,
                )
            })
            .collect();
        let group = gref.clone();
        let apply: Apply = Box::new(move || {
            let mut g = group.lock();
            for k in expired {
                g.offsets.remove(&k);
            }
        });
        match self.append(&g.id, &records, Some(apply)) {
            Ok(Some(w)) => {
                tokio::spawn(async move {
                    if let Err(e) = w.durable().await {
                        tracing::warn!(error = %e, "expired offsets not durable");
                    }
                });
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(group = %g.id, error = %e, "could not expire offsets"),
        }
    }
}

/// Replays one KIP-848 record into the group it belongs to; the group-epoch tombstone deletes
/// the consumer group (and the entry, unless offsets remain).
fn replay_consumer(
    groups: &mut HashMap<String, Group>,
    group: String,
    kind: CgKind,
    value: Option<&[u8]>,
    now: Instant,
) {
    let value = match value.map(|v| codec::decode_cg_value(&kind, v)) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            tracing::warn!(%group, ?kind, error = %e, "skipping consumer group record");
            return;
        }
    };
    if value.is_none() && kind == CgKind::Epoch {
        if let Some(g) = groups.get_mut(&group) {
            g.consumer = None;
            if g.is_vacant() {
                groups.remove(&group);
            }
        }
        return;
    }
    if value.is_none() && groups.get(&group).is_none_or(|g| g.consumer.is_none()) {
        // A tombstone for a group that is not (or no longer) a consumer group.
        return;
    }
    let g = groups
        .entry(group.clone())
        .or_insert_with(|| Group::new(&group));
    g.consumer
        .get_or_insert_with(consumer_group::ConsumerGroup::new)
        .replay(kind, value, now);
}

fn replay_streams(
    groups: &mut HashMap<String, Group>,
    group: String,
    kind: streams_group::records::Kind,
    value: Option<&[u8]>,
) {
    use streams_group::records::Kind;
    let value = match value.map(|v| streams_group::records::decode_value(&kind, v)) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            tracing::warn!(%group, ?kind, error = %e, "skipping streams group record");
            return;
        }
    };
    if value.is_none() && kind == Kind::Metadata {
        // The group's metadata tombstone: the streams group is gone.
        if let Some(g) = groups.get_mut(&group) {
            g.streams = None;
            if g.is_vacant() {
                groups.remove(&group);
            }
        }
        return;
    }
    if value.is_none() && groups.get(&group).is_none_or(|g| g.streams.is_none()) {
        return;
    }
    let g = groups
        .entry(group.clone())
        .or_insert_with(|| Group::new(&group));
    g.streams
        .get_or_insert_with(streams_group::group::StreamsGroup::new)
        .replay(kind, value);
}

fn replay_share(
    groups: &mut HashMap<String, Group>,
    group: String,
    kind: share_group::records::Kind,
    value: Option<&[u8]>,
    now: Instant,
    session: Duration,
) {
    use share_group::records::Kind;
    let value = match value.map(|v| share_group::records::decode_value(&kind, v)) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            tracing::warn!(%group, ?kind, error = %e, "skipping share group record");
            return;
        }
    };
    if value.is_none() && kind == Kind::Metadata {
        // The group's metadata tombstone: the share group is gone.
        if let Some(g) = groups.get_mut(&group) {
            g.share = None;
            if g.is_vacant() {
                groups.remove(&group);
            }
        }
        return;
    }
    if value.is_none() && groups.get(&group).is_none_or(|g| g.share.is_none()) {
        return;
    }
    let g = groups
        .entry(group.clone())
        .or_insert_with(|| Group::new(&group));
    g.share
        .get_or_insert_with(share_group::ShareGroup::new)
        .replay(kind, value, now, session);
}

/// Appending to our own internal topic fails only for storage reasons (poisoned log, I/O).
fn storage_code(e: &LogError) -> i16 {
    tracing::warn!(error = %e, "__consumer_offsets append failed");
    match e {
        // The partition's leadership moved (Kafka maps NOT_LEADER_OR_FOLLOWER so too): the
        // client looks the coordinator up again.
        LogError::NotLeader(_) => WireError::NotCoordinator.code(),
        LogError::NotEnoughReplicas { .. } => WireError::CoordinatorNotAvailable.code(),
        _ => WireError::KafkaStorageError.code(),
    }
}

/// Topics subscribed by the members of a `consumer` group, read from the consumer protocol's
/// subscription (version i16, topics array of strings, ...).
fn subscribed_topics(g: &Group) -> Vec<String> {
    let mut out = Vec::new();
    let protocol = g.protocol.clone().unwrap_or_default();
    for m in g.members.values() {
        let Some((_, meta)) = m.protocols.iter().find(|(n, _)| *n == protocol) else {
            continue;
        };
        let mut b = &meta[..];
        use bytes::Buf;
        if b.remaining() < 6 {
            continue;
        }
        let _version = b.get_i16();
        let n = b.get_i32();
        for _ in 0..n.max(0) {
            if b.remaining() < 2 {
                break;
            }
            let len = b.get_i16();
            if len < 0 || b.remaining() < len as usize {
                break;
            }
            out.push(String::from_utf8_lossy(&b[..len as usize]).to_string());
            b.advance(len as usize);
        }
    }
    out
}

impl runtime::PartitionedCoordinator for GroupCoordinator {
    fn prepare(&self, count: i32) {
        GroupCoordinator::prepare(self, count)
    }
    fn is_partition_loaded(&self, index: i32) -> bool {
        GroupCoordinator::is_partition_loaded(self, index)
    }
    fn load_partition(&self, index: i32, partition: Arc<Partition>) -> Result<(), LogError> {
        GroupCoordinator::load_partition(self, index, partition)
    }
    fn unload_partition(&self, index: i32) {
        GroupCoordinator::unload_partition(self, index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::log::io::FaultyStorage;
    use crate::log::LogConfig;
    use std::sync::atomic::Ordering;

    /// A loaded coordinator over one `__consumer_offsets` partition on a fault-injecting disk.
    fn coordinator(dir: &std::path::Path, storage: &FaultyStorage) -> GroupCoordinator {
        let log = PartitionLog::open_with(
            Arc::new(storage.clone()),
            dir,
            &format!("{OFFSETS_TOPIC}-0"),
            LogConfig::default(),
            0,
        )
        .expect("open log");
        let p = Arc::new(Partition::new(
            Arc::from(OFFSETS_TOPIC),
            uuid::Uuid::nil(),
            0,
            Arc::new(log),
            0,
            1,
        ));
        let c = GroupCoordinator::new(BrokerConfig::default().groups);
        c.load(vec![p]).expect("load");
        c
    }

    fn offset(offset: i64) -> OffsetValue {
        OffsetValue {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: now_ms(),
        }
    }

    fn fetched(c: &GroupCoordinator) -> Result<Option<i64>, i16> {
        let wanted = [("t".to_string(), 0)];
        let rows = c.fetch_offsets("g", Some(&wanted))?;
        Ok(rows[0].2.as_ref().map(|v| v.offset))
    }

    async fn commit(c: &GroupCoordinator, at: i64) -> Result<(), LogError> {
        let (codes, pending) = c
            .commit("g", "", None, -1, vec![("t".into(), 0, offset(at))])
            .expect("commit accepted");
        assert_eq!(codes, vec![0]);
        pending.expect("a write").durable().await
    }

    #[tokio::test]
    async fn a_committed_offset_is_visible_only_once_durable_and_never_after_a_failed_fsync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = FaultyStorage::default();
        let c = coordinator(dir.path(), &storage);
        commit(&c, 5).await.expect("durable");
        assert_eq!(fetched(&c), Ok(Some(5)));

        let (_, pending) = c
            .commit("g", "", None, -1, vec![("t".into(), 0, offset(7))])
            .expect("commit accepted");
        assert_eq!(fetched(&c), Ok(Some(5)), "appended is not yet durable");
        storage.faults.fail_sync.store(true, Ordering::Release);
        assert!(pending.expect("a write").durable().await.is_err());
        // The partition's memory may now differ from its durable log: it is not served.
        assert_eq!(fetched(&c), Err(WireError::NotCoordinator.code()));

        // A restart replays what is durable (here the page cache kept the record; the
        // power-off test covers a lost one).
        storage.faults.fail_sync.store(false, Ordering::Release);
        let c = coordinator(dir.path(), &storage);
        assert!(matches!(fetched(&c), Ok(Some(5 | 7))));
    }

    #[tokio::test]
    async fn a_failed_offset_append_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = FaultyStorage::default();
        let c = coordinator(dir.path(), &storage);
        commit(&c, 5).await.expect("durable");
        storage.faults.enospc.store(true, Ordering::Release);
        let (codes, pending) = c
            .commit("g", "", None, -1, vec![("t".into(), 0, offset(9))])
            .expect("answered");
        assert_eq!(codes, vec![WireError::KafkaStorageError.code()]);
        assert!(pending.is_none());
        assert_eq!(fetched(&c), Ok(Some(5)));
        storage.faults.enospc.store(false, Ordering::Release);
        commit(&c, 11)
            .await
            .expect("durable once the disk has room");
        assert_eq!(fetched(&c), Ok(Some(11)));
    }

    fn join_request(member: &str, epoch: i32) -> consumer_group::HeartbeatRequest {
        consumer_group::HeartbeatRequest {
            member_id: member.to_string(),
            member_epoch: epoch,
            instance_id: None,
            rack_id: None,
            rebalance_timeout_ms: 30_000,
            subscribed_names: Some(vec!["t".to_string()]),
            subscribed_regex: None,
            server_assignor: None,
            owned: Some(Default::default()),
            client_id: "c".to_string(),
            client_host: "/127.0.0.1".to_string(),
            generate_id: false,
        }
    }

    fn topics() -> consumer_group::TopicsView {
        let mut by_name = std::collections::BTreeMap::new();
        by_name.insert("t".to_string(), (uuid::Uuid::new_v4(), 4));
        consumer_group::TopicsView { by_name }
    }

    fn members(c: &GroupCoordinator) -> Option<(i32, usize)> {
        c.with_consumer_group("g", |g| (g.group_epoch, g.members.len()))
    }

    /// A JoinGroup parked in a group (here: waiting out the initial rebalance delay) is
    /// answered NOT_COORDINATOR as soon as this broker stops leading the group's partition,
    /// not left to the client's request timeout.
    #[tokio::test]
    async fn a_parked_join_is_answered_not_coordinator_when_the_partition_is_unloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = FaultyStorage::default();
        let c = Arc::new(coordinator(dir.path(), &storage));
        let req = group::JoinRequest {
            member_id: String::new(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 300_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::new())],
            require_known_member_id: false,
        };
        let joining = {
            let c = c.clone();
            tokio::spawn(async move { c.join("g", req, &topics()).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !joining.is_finished(),
            "the first join waits for the rebalance delay"
        );
        c.unload_partition(0);
        let r = tokio::time::timeout(std::time::Duration::from_secs(2), joining)
            .await
            .expect("answered at once")
            .expect("no panic");
        assert_eq!(r.error, WireError::NotCoordinator.code());
    }

    /// A streams group is written to `__consumer_offsets` and comes back whole when the
    /// partition is loaded again; a heartbeat whose write fails changes nothing.
    #[tokio::test]
    async fn a_streams_group_survives_a_reload_and_a_failed_write_changes_nothing() {
        use crate::protocol::streams::{HeartbeatRequest, Subtopology, Topology};
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = FaultyStorage::default();
        let c = coordinator(dir.path(), &storage);
        let names = vec!["input".to_string()];
        let view = streams_group::group::TopicsView {
            partitions_of: &|t| (t == "input").then_some(3),
            names: &names,
        };
        let join = |member: &str| HeartbeatRequest {
            group_id: "app".into(),
            member_id: member.into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            topology: Some(Topology {
                epoch: 1,
                subtopologies: vec![Subtopology {
                    subtopology_id: "0".into(),
                    source_topics: vec!["input".into()],
                    ..Subtopology::default()
                }],
            }),
            process_id: Some(format!("p-{member}")),
            ..HeartbeatRequest::default()
        };
        let (out, pending) = c
            .streams_heartbeat(
                "app",
                &join("m1"),
                "client",
                "/127.0.0.1",
                &view,
                &BTreeMap::new(),
            )
            .expect("joined");
        pending.expect("a write").durable().await.expect("durable");
        assert_eq!(
            out.response
                .active_tasks
                .as_ref()
                .map(|t| t[0].partitions.len()),
            Some(3)
        );
        let before = c
            .with_streams_group("app", |g| (g.group_epoch, g.members["m1"].assigned.clone()))
            .expect("a streams group");

        // A failed write: m2's join leaves no trace.
        storage.faults.enospc.store(true, Ordering::Release);
        let err = c
            .streams_heartbeat(
                "app",
                &join("m2"),
                "client",
                "/127.0.0.1",
                &view,
                &BTreeMap::new(),
            )
            .err()
            .expect("refused");
        assert_eq!(err.0, WireError::NotCoordinator.code());
        storage.faults.enospc.store(false, Ordering::Release);
        assert_eq!(c.with_streams_group("app", |g| g.members.len()), Some(1));

        // A heartbeat (not a join) for a group that does not exist is refused.
        let other = c.streams_heartbeat(
            "nope",
            &HeartbeatRequest {
                member_epoch: 3,
                ..join("x")
            },
            "c",
            "h",
            &view,
            &BTreeMap::new(),
        );
        assert_eq!(
            other.err().map(|e| e.0),
            Some(WireError::GroupIdNotFound.code())
        );
        // ... and leaves no group behind to be listed.
        assert!(c.list().iter().all(|l| l.group_id != "nope"));

        drop(c);
        let c = coordinator(dir.path(), &storage);
        let after = c
            .with_streams_group("app", |g| (g.group_epoch, g.members["m1"].assigned.clone()))
            .expect("reloaded");
        assert_eq!(after, before);
        let listed: Vec<(String, &str)> = c
            .list()
            .into_iter()
            .map(|l| (l.group_id, l.group_type))
            .collect();
        assert_eq!(listed, [("app".to_string(), "streams")]);
        // Offset commits are checked against the streams member's epoch.
        let epoch = c
            .with_streams_group("app", |g| g.members["m1"].epoch)
            .expect("streams group");
        let commit = |e: i32| {
            c.commit("app", "m1", None, e, vec![("input".into(), 0, offset(1))])
                .map(|(codes, _)| codes)
        };
        assert_eq!(
            commit(epoch + 1).err(),
            Some(WireError::FencedMemberEpoch.code())
        );
        assert_eq!(commit(epoch), Ok(vec![0]));
        // Its offsets do not expire while it has members (the classic state says Empty).
        let g = c.get("app").expect("group");
        assert!(!g.lock().offsets_may_expire());
        g.lock()
            .streams
            .as_mut()
            .expect("streams group")
            .tick(Instant::now() + Duration::from_secs(3600));
        assert!(g.lock().offsets_may_expire());
        drop(g);

        // An empty streams group can be deleted; its records go with it.
        c.delete("app")
            .expect("deleted")
            .expect("a write")
            .durable()
            .await
            .expect("durable");
        assert!(c.list().is_empty());
        drop(c);
        let c = coordinator(dir.path(), &storage);
        assert!(
            c.with_streams_group("app", |_| ()).is_none(),
            "gone after a reload"
        );
        assert!(c.list().is_empty());
    }

    /// offsets.retention.minutes starts only once a KIP-848 group has no members: its
    /// classic state says Empty all along (before, offsets of an active consumer group expired).
    #[tokio::test]
    async fn a_consumer_groups_offsets_do_not_expire_while_it_has_members() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = FaultyStorage::default();
        let c = coordinator(dir.path(), &storage);
        let (_, pending) = c
            .consumer_heartbeat("g", join_request("m1", 0), &topics(), 45_000)
            .expect("joined");
        pending.expect("a write").durable().await.expect("durable");
        let g = c.get("g").expect("group");
        assert_eq!(g.lock().state, GroupState::Empty);
        assert!(!g.lock().offsets_may_expire());
        g.lock()
            .consumer
            .as_mut()
            .expect("consumer group")
            .expire("m1");
        assert!(g.lock().offsets_may_expire());
    }

    #[tokio::test]
    async fn a_heartbeat_whose_append_fails_leaves_the_group_as_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = FaultyStorage::default();
        let c = coordinator(dir.path(), &storage);
        let topics = topics();
        storage.faults.enospc.store(true, Ordering::Release);
        let err = c
            .consumer_heartbeat("g", join_request("m1", 0), &topics, 45_000)
            .err()
            .expect("refused");
        assert_eq!(err.0, WireError::NotCoordinator.code());
        assert_eq!(members(&c), None, "the group was never created");
        assert!(c.list().is_empty());

        storage.faults.enospc.store(false, Ordering::Release);
        let (r, pending) = c
            .consumer_heartbeat("g", join_request("m1", 0), &topics, 45_000)
            .expect("joined");
        pending.expect("a write").durable().await.expect("durable");
        assert_eq!(r.member_epoch, 1);
        assert_eq!(members(&c), Some((1, 1)));

        storage.faults.enospc.store(true, Ordering::Release);
        let err = c
            .consumer_heartbeat("g", join_request("m2", 0), &topics, 45_000)
            .err()
            .expect("refused");
        assert_eq!(err.0, WireError::NotCoordinator.code());
        assert_eq!(
            members(&c),
            Some((1, 1)),
            "m2 is not a member, the epoch unchanged"
        );
    }

    #[test]
    fn partition_matches_java_hash() {
        // Java: "my-group".hashCode() == -1906497762; Utils.abs(..) % 50 == 36.
        assert_eq!(partition_for("my-group", 50), 36);
        assert_eq!(partition_for("", 50), 0);
    }
}
