//! One classic consumer group: members, generations, the rebalance state machine, and its
//! committed offsets. Pure state: no I/O. The coordinator (mod.rs) serializes access, persists
//! what these operations return, and drives timeouts by calling [`Group::tick`].
//!
//! States (Kafka's): Empty -> PreparingRebalance -> CompletingRebalance -> Stable, any ->
//! PreparingRebalance on membership change, Dead once deleted.
//! A JoinGroup in PreparingRebalance parks a oneshot sender; the join completes when every
//! member has rejoined (after `group.initial.rebalance.delay.ms` for a new group) or at the
//! rebalance timeout (members that did not rejoin are removed). SyncGroup parks until the
//! leader sends the assignment. The broker never looks inside protocol metadata, so any
//! assignor (eager or cooperative) works.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use indexmap::IndexMap;
use tokio::sync::oneshot;

use crate::coordinator::codec::{GroupValue, MemberValue, OffsetValue};
use crate::coordinator::consumer_group::ConsumerGroup;
use crate::coordinator::streams_group::group::StreamsGroup;
use crate::protocol::WireError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

#[derive(Debug, Clone)]
pub struct JoinMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Debug, Clone)]
pub struct JoinResult {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    pub members: Vec<JoinMember>,
}

impl JoinResult {
    pub fn error(code: i16, member_id: &str) -> Self {
        JoinResult {
            error: code,
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(code: i16) -> Self {
        SyncResult {
            error: code,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// A JoinGroup as the coordinator sees it.
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a new dynamic member first gets MEMBER_ID_REQUIRED with its id.
    pub require_known_member_id: bool,
}

pub enum JoinOutcome {
    Now(JoinResult),
    Wait(oneshot::Receiver<JoinResult>),
}

pub enum SyncOutcome {
    Now(SyncResult),
    Wait(oneshot::Receiver<SyncResult>),
}

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    join_tx: Option<oneshot::Sender<JoinResult>>,
    sync_tx: Option<oneshot::Sender<SyncResult>>,
    heartbeat_deadline: Instant,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: IndexMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, awaiting the member's second JoinGroup.
    pending: HashMap<String, Instant>,
    static_members: HashMap<String, String>,
    rebalance_deadline: Option<Instant>,
    join_not_before: Option<Instant>,
    sync_deadline: Option<Instant>,
    pub offsets: HashMap<(String, i32), OffsetValue>,
    pub state_timestamp: i64,
    /// Set when the group uses the KIP-848 consumer protocol instead of the classic one.
    pub consumer: Option<ConsumerGroup>,
    /// Set when the group is a KIP-1071 streams group.
    pub streams: Option<StreamsGroup>,
    /// Set when the group is a KIP-932 share group.
    pub share: Option<crate::coordinator::share_group::ShareGroup>,
    /// Offsets committed inside transactions not yet decided, by producer id.
    pub pending_txn: HashMap<i64, Vec<(String, i32, OffsetValue)>>,
    /// Offset commits appended but not yet durable (so not yet in `offsets`), by partition.
    pub in_flight: HashMap<(String, i32), usize>,
    /// The log end offset after the group's last membership record (SyncGroup answers wait
    /// for it to be durable).
    pub written_to: i64,
}

pub struct Limits {
    pub session_timeout_min_ms: i32,
    pub session_timeout_max_ms: i32,
    pub max_size: usize,
    pub initial_rebalance_delay_ms: u64,
}

impl Group {
    pub fn new(id: &str) -> Self {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: IndexMap::new(),
            pending: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            join_not_before: None,
            sync_deadline: None,
            offsets: HashMap::new(),
            state_timestamp: crate::log::now_ms(),
            consumer: None,
            streams: None,
            share: None,
            pending_txn: HashMap::new(),
            in_flight: HashMap::new(),
            written_to: 0,
        }
    }

    fn set_state(&mut self, s: GroupState) {
        self.state = s;
        self.state_timestamp = crate::log::now_ms();
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Forgets the classic protocol state (its metadata was deleted, or the empty group changed
    /// type); offsets and pending transactional offsets stay.
    pub fn reset_classic(&mut self) {
        self.members.clear();
        self.set_state(GroupState::Empty);
        self.protocol_type = None;
        self.protocol = None;
        self.generation = 0;
        self.leader = None;
        self.pending.clear();
        self.static_members.clear();
        self.rebalance_deadline = None;
        self.join_not_before = None;
        self.sync_deadline = None;
    }

    /// Whether `offsets.retention.minutes` applies: only once the group has no members of any
    /// protocol (Kafka's rule). A KIP-848 or streams group's members do not show in the classic
    /// state, which stays Empty.
    pub fn offsets_may_expire(&self) -> bool {
        self.state == GroupState::Empty
            && self.consumer.as_ref().is_none_or(|c| c.members.is_empty())
            && self.streams.as_ref().is_none_or(|s| s.members.is_empty())
    }

    /// Nothing left worth keeping: no members, metadata, offsets or consumer group.
    pub fn is_vacant(&self) -> bool {
        self.members.is_empty()
            && self.generation == 0
            && self.protocol_type.is_none()
            && self.offsets.is_empty()
            && self.pending_txn.is_empty()
            && self.consumer.is_none()
            && self.streams.is_none()
            && self.share.is_none()
    }

    /// Partitions with a committed offset, or a commit on its way to the log.
    pub fn offset_keys(&self) -> Vec<(String, i32)> {
        let mut keys: Vec<(String, i32)> = self.offsets.keys().cloned().collect();
        keys.extend(
            self.in_flight
                .keys()
                .filter(|k| !self.offsets.contains_key(*k))
                .cloned(),
        );
        keys
    }

    /// An in-flight commit of partition `k` became durable.
    pub fn landed(&mut self, k: &(String, i32)) {
        if let Some(n) = self.in_flight.get_mut(k) {
            *n -= 1;
            if *n == 0 {
                self.in_flight.remove(k);
            }
        }
    }

    /// Applies (commit) or drops (abort) a producer's transactional offsets.
    pub fn settle_txn(&mut self, producer_id: i64, commit: bool) {
        if let Some(offsets) = self.pending_txn.remove(&producer_id) {
            if commit {
                for (t, p, v) in offsets {
                    self.offsets.insert((t, p), v);
                }
            }
        }
    }

    fn new_member_id(client_id: &str) -> String {
        format!("{client_id}-{}", uuid::Uuid::new_v4())
    }

    fn supports(&self, req: &JoinRequest) -> bool {
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(req.protocol_type.as_str()) {
            return false;
        }
        // Some protocol must be supported by every member including the newcomer.
        req.protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    pub fn join(&mut self, req: JoinRequest, limits: &Limits, now: Instant) -> JoinOutcome {
        if req.session_timeout_ms < limits.session_timeout_min_ms
            || req.session_timeout_ms > limits.session_timeout_max_ms
        {
            return JoinOutcome::Now(JoinResult::error(
                WireError::InvalidSessionTimeout.code(),
                &req.member_id,
            ));
        }
        if self.state == GroupState::Dead {
            return JoinOutcome::Now(JoinResult::error(
                WireError::CoordinatorNotAvailable.code(),
                &req.member_id,
            ));
        }
        if self
            .consumer
            .as_ref()
            .is_some_and(|c| !c.members.is_empty())
        {
            // Online migration between protocols is not supported.
            return JoinOutcome::Now(JoinResult::error(
                WireError::InconsistentGroupProtocol.code(),
                &req.member_id,
            ));
        }
        self.consumer = None;
        if !self.supports(&req) {
            return JoinOutcome::Now(JoinResult::error(
                WireError::InconsistentGroupProtocol.code(),
                &req.member_id,
            ));
        }
        let known = !req.member_id.is_empty() && self.members.contains_key(&req.member_id);
        if !known && self.members.len() + self.pending.len() >= limits.max_size {
            return JoinOutcome::Now(JoinResult::error(
                WireError::GroupMaxSizeReached.code(),
                &req.member_id,
            ));
        }
        if req.member_id.is_empty() {
            if let Some(instance) = req.instance_id.clone() {
                return self.join_static_new_id(req, &instance, now, limits);
            }
            let id = Self::new_member_id(&req.client_id);
            if req.require_known_member_id {
                self.pending
                    .insert(id.clone(), deadline_after(now, req.session_timeout_ms));
                return JoinOutcome::Now(JoinResult::error(
                    WireError::MemberIdRequired.code(),
                    &id,
                ));
            }
            return self.add_member_and_rebalance(id, req, now, limits);
        }
        if self.pending.remove(&req.member_id).is_some() {
            let id = req.member_id.clone();
            return self.add_member_and_rebalance(id, req, now, limits);
        }
        if let Some(instance) = &req.instance_id {
            if let Some(owner) = self.static_members.get(instance) {
                if owner != &req.member_id {
                    return JoinOutcome::Now(JoinResult::error(
                        WireError::FencedInstanceId.code(),
                        &req.member_id,
                    ));
                }
            }
        }
        if !known {
            return JoinOutcome::Now(JoinResult::error(
                WireError::UnknownMemberId.code(),
                &req.member_id,
            ));
        }
        let id = req.member_id.clone();
        let changed = {
            let m = &self.members[&id];
            m.protocols != req.protocols
        };
        let (tx, rx) = oneshot::channel();
        {
            let m = self.members.get_mut(&id).expect("known member");
            m.protocols = req.protocols;
            m.session_timeout_ms = req.session_timeout_ms;
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
            m.heartbeat_deadline = deadline_after(now, req.session_timeout_ms);
        }
        match self.state {
            GroupState::PreparingRebalance => {
                self.members[&id].join_tx = Some(tx);
                self.maybe_complete_join(now);
                JoinOutcome::Wait(rx)
            }
            GroupState::CompletingRebalance | GroupState::Stable
                if !changed && self.leader.as_deref() != Some(id.as_str()) =>
            {
                JoinOutcome::Now(self.join_result_for(&id))
            }
            GroupState::CompletingRebalance if !changed => {
                JoinOutcome::Now(self.join_result_for(&id))
            }
            _ => {
                self.members[&id].join_tx = Some(tx);
                self.prepare_rebalance(now, limits);
                self.maybe_complete_join(now);
                JoinOutcome::Wait(rx)
            }
        }
    }

    fn join_static_new_id(
        &mut self,
        req: JoinRequest,
        instance: &str,
        now: Instant,
        limits: &Limits,
    ) -> JoinOutcome {
        let new_id = Self::new_member_id(&req.client_id);
        let Some(old_id) = self.static_members.get(instance).cloned() else {
            return self.add_member_and_rebalance(new_id, req, now, limits);
        };
        // A static member came back with a new id: fence the old one, keep its place.
        let Some(mut m) = self.members.shift_remove(&old_id) else {
            self.static_members.remove(instance);
            return self.add_member_and_rebalance(new_id, req, now, limits);
        };
        if let Some(tx) = m.join_tx.take() {
            let _ = tx.send(JoinResult::error(
                WireError::FencedInstanceId.code(),
                &old_id,
            ));
        }
        if let Some(tx) = m.sync_tx.take() {
            let _ = tx.send(SyncResult::error(WireError::FencedInstanceId.code()));
        }
        let changed = m.protocols != req.protocols;
        m.id = new_id.clone();
        m.client_id = req.client_id;
        m.client_host = req.client_host;
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.protocols = req.protocols;
        m.heartbeat_deadline = deadline_after(now, req.session_timeout_ms);
        self.members.insert(new_id.clone(), m);
        self.static_members
            .insert(instance.to_string(), new_id.clone());
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance if !changed => {
                JoinOutcome::Now(self.join_result_for(&new_id))
            }
            _ => {
                let (tx, rx) = oneshot::channel();
                self.members[&new_id].join_tx = Some(tx);
                self.prepare_rebalance(now, limits);
                self.maybe_complete_join(now);
                JoinOutcome::Wait(rx)
            }
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        id: String,
        req: JoinRequest,
        now: Instant,
        limits: &Limits,
    ) -> JoinOutcome {
        let (tx, rx) = oneshot::channel();
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(instance) = &req.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        self.members.insert(
            id.clone(),
            Member {
                id: id.clone(),
                instance_id: req.instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout_ms: req.session_timeout_ms,
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                protocols: req.protocols,
                assignment: Bytes::new(),
                join_tx: Some(tx),
                sync_tx: None,
                heartbeat_deadline: deadline_after(now, req.session_timeout_ms),
            },
        );
        self.prepare_rebalance(now, limits);
        self.maybe_complete_join(now);
        JoinOutcome::Wait(rx)
    }

    fn prepare_rebalance(&mut self, now: Instant, limits: &Limits) {
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        // Members waiting in SyncGroup must rejoin.
        for m in self.members.values_mut() {
            if let Some(tx) = m.sync_tx.take() {
                let _ = tx.send(SyncResult::error(WireError::RebalanceInProgress.code()));
            }
        }
        let was_empty = self.state == GroupState::Empty;
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms.max(0))
            .max()
            .unwrap_or(0) as u64;
        self.rebalance_deadline = Some(now + Duration::from_millis(timeout));
        self.join_not_before = if was_empty && limits.initial_rebalance_delay_ms > 0 {
            Some(now + Duration::from_millis(limits.initial_rebalance_delay_ms.min(timeout)))
        } else {
            None
        };
        self.sync_deadline = None;
        self.set_state(GroupState::PreparingRebalance);
    }

    /// Completes the join phase when every member has rejoined (and a new group's initial
    /// delay has passed). Returns true when it completed.
    fn maybe_complete_join(&mut self, now: Instant) -> bool {
        if self.state != GroupState::PreparingRebalance {
            return false;
        }
        let all_joined =
            self.members.values().all(|m| m.join_tx.is_some()) && self.pending.is_empty();
        let delay_over = self.join_not_before.is_none_or(|t| now >= t);
        if all_joined && delay_over {
            self.complete_join(now);
            return true;
        }
        false
    }

    fn complete_join(&mut self, now: Instant) {
        // Members that did not rejoin in time are gone.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_tx.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.generation += 1;
        self.rebalance_deadline = None;
        self.join_not_before = None;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.set_state(GroupState::Empty);
            return;
        }
        self.protocol = self.select_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.set_state(GroupState::CompletingRebalance);
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms.max(0))
            .max()
            .unwrap_or(0) as u64;
        self.sync_deadline = Some(now + Duration::from_millis(timeout));
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.join_result_for(&id);
            let m = &mut self.members[&id];
            m.heartbeat_deadline = deadline_after(now, m.session_timeout_ms);
            if let Some(tx) = m.join_tx.take() {
                let _ = tx.send(result);
            }
        }
    }

    /// The protocol every member supports, chosen by each member's first preference (votes).
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(x, _)| x == *n))
            })
            .collect();
        let mut votes: IndexMap<&String, usize> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in self.members.values() {
            if let Some((n, _)) = m.protocols.iter().find(|(n, _)| votes.contains_key(n)) {
                if let Some(v) = votes.get_mut(n) {
                    *v += 1;
                }
            }
        }
        votes
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(std::cmp::Ordering::Greater))
            .map(|(n, _)| n.clone())
    }

    fn join_result_for(&self, id: &str) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == id {
            self.members
                .values()
                .map(|m| JoinMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader,
            member_id: id.to_string(),
            members,
        }
    }

    fn check_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), i16> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                Some(owner) if owner != member_id => return Err(WireError::FencedInstanceId.code()),
                _ => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(WireError::UnknownMemberId.code());
        }
        Ok(())
    }

    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncOutcome {
        if let Err(code) = self.check_member(member_id, instance_id) {
            return SyncOutcome::Now(SyncResult::error(code));
        }
        if generation != self.generation {
            return SyncOutcome::Now(SyncResult::error(WireError::IllegalGeneration.code()));
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol.as_deref())
        {
            return SyncOutcome::Now(SyncResult::error(
                WireError::InconsistentGroupProtocol.code(),
            ));
        }
        match self.state {
            GroupState::PreparingRebalance => {
                SyncOutcome::Now(SyncResult::error(WireError::RebalanceInProgress.code()))
            }
            GroupState::Stable => SyncOutcome::Now(self.sync_result_for(member_id)),
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                self.members[member_id].sync_tx = Some(tx);
                if self.leader.as_deref() == Some(member_id) {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                    }
                    self.sync_deadline = None;
                    self.set_state(GroupState::Stable);
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        let r = self.sync_result_for(&id);
                        if let Some(tx) = self.members[&id].sync_tx.take() {
                            let _ = tx.send(r);
                        }
                    }
                }
                SyncOutcome::Wait(rx)
            }
            GroupState::Empty | GroupState::Dead => {
                SyncOutcome::Now(SyncResult::error(WireError::UnknownMemberId.code()))
            }
        }
    }

    fn sync_result_for(&self, id: &str) -> SyncResult {
        SyncResult {
            error: 0,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self
                .members
                .get(id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        if let Err(code) = self.check_member(member_id, instance_id) {
            return code;
        }
        if generation != self.generation {
            return WireError::IllegalGeneration.code();
        }
        let m = &mut self.members[member_id];
        m.heartbeat_deadline = deadline_after(now, m.session_timeout_ms);
        match self.state {
            GroupState::PreparingRebalance => WireError::RebalanceInProgress.code(),
            GroupState::CompletingRebalance | GroupState::Stable => 0,
            _ => WireError::UnknownMemberId.code(),
        }
    }

    /// LeaveGroup for one member (by id, or by instance id for static members).
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
        limits: &Limits,
    ) -> i16 {
        let id = match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                Some(owner) if member_id.is_empty() || owner == member_id => owner.clone(),
                Some(_) => return WireError::FencedInstanceId.code(),
                None => return WireError::UnknownMemberId.code(),
            },
            None => member_id.to_string(),
        };
        if self.pending.remove(&id).is_some() {
            return 0;
        }
        if !self.members.contains_key(&id) {
            return WireError::UnknownMemberId.code();
        }
        self.remove_member(&id);
        self.on_membership_loss(now, limits);
        0
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(mut m) = self.members.shift_remove(id) {
            if let Some(instance) = &m.instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(id) {
                    self.static_members.remove(instance);
                }
            }
            if let Some(tx) = m.join_tx.take() {
                let _ = tx.send(JoinResult::error(WireError::UnknownMemberId.code(), id));
            }
            if let Some(tx) = m.sync_tx.take() {
                let _ = tx.send(SyncResult::error(WireError::UnknownMemberId.code()));
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    fn on_membership_loss(&mut self, now: Instant, limits: &Limits) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, limits);
                self.maybe_complete_join(now);
            }
            GroupState::PreparingRebalance => {
                self.maybe_complete_join(now);
            }
            _ => {}
        }
    }

    /// Timeouts: expired sessions, rebalance and sync deadlines, pending member ids.
    /// Returns true when the group changed generation or membership.
    pub fn tick(&mut self, now: Instant, limits: &Limits) -> bool {
        let mut changed = false;
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_tx.is_none() && m.sync_tx.is_none() && m.heartbeat_deadline <= now)
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member(&id);
            self.on_membership_loss(now, limits);
            changed = true;
        }
        if self.state == GroupState::PreparingRebalance {
            if self.rebalance_deadline.is_some_and(|d| now >= d) {
                self.complete_join(now);
                changed = true;
            } else if self.maybe_complete_join(now) {
                changed = true;
            }
        }
        if self.state == GroupState::CompletingRebalance
            && self.sync_deadline.is_some_and(|d| now >= d)
        {
            // The leader never sent the assignment: drop members that did not sync, start over.
            let lagging: Vec<String> = self
                .members
                .values()
                .filter(|m| m.sync_tx.is_none())
                .map(|m| m.id.clone())
                .collect();
            for id in &lagging {
                self.remove_member(id);
            }
            self.prepare_rebalance(now, limits);
            self.maybe_complete_join(now);
            changed = true;
        }
        changed
    }

    /// The record persisted for this group's membership (after a generation completes).
    pub fn to_value(&self) -> GroupValue {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp: self.state_timestamp,
            members: self
                .members
                .values()
                .map(|m| MemberValue {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol).to_vec(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
        }
    }

    /// Restores membership from the log at start. Members must heartbeat within their session
    /// timeout or they expire, as after a coordinator failover in Kafka.
    pub fn load(&mut self, v: GroupValue, now: Instant) {
        self.members.clear();
        self.static_members.clear();
        self.generation = v.generation;
        self.protocol_type = if v.protocol_type.is_empty() {
            None
        } else {
            Some(v.protocol_type)
        };
        self.protocol = v.protocol;
        self.leader = v.leader;
        self.state_timestamp = v.state_timestamp;
        let protocol = self.protocol.clone().unwrap_or_default();
        for m in v.members {
            if let Some(i) = &m.instance_id {
                self.static_members.insert(i.clone(), m.member_id.clone());
            }
            self.members.insert(
                m.member_id.clone(),
                Member {
                    id: m.member_id,
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: vec![(protocol.clone(), Bytes::from(m.subscription))],
                    assignment: Bytes::from(m.assignment),
                    join_tx: None,
                    sync_tx: None,
                    heartbeat_deadline: deadline_after(now, m.session_timeout_ms),
                },
            );
        }
        self.state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
    }

    /// Answers every parked JoinGroup and SyncGroup with `code` (the group changes type).
    pub fn fail_pending(&mut self, code: i16) {
        for m in self.members.values_mut() {
            if let Some(tx) = m.join_tx.take() {
                let _ = tx.send(JoinResult::error(code, &m.id));
            }
            if let Some(tx) = m.sync_tx.take() {
                let _ = tx.send(SyncResult::error(code));
            }
        }
    }

    /// Kafka's `ClassicGroup.fromConsumerGroup`: the classic members left in a consumer group
    /// form a Stable classic group at the consumer group's epoch, each with its target
    /// assignment. The caller persists it, then starts a rebalance ([`Self::start_rebalance`]).
    pub fn downgrade_from(
        &mut self,
        members: Vec<crate::coordinator::consumer_group::DowngradedMember>,
        generation: i32,
        now: Instant,
    ) {
        self.reset_classic();
        self.protocol_type = Some("consumer".to_string());
        self.generation = generation;
        for m in members {
            if let Some(i) = &m.instance_id {
                self.static_members.insert(i.clone(), m.id.clone());
            }
            self.members.insert(
                m.id.clone(),
                Member {
                    id: m.id,
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: m.protocols,
                    assignment: m.assignment,
                    join_tx: None,
                    sync_tx: None,
                    heartbeat_deadline: deadline_after(now, m.session_timeout_ms),
                },
            );
        }
        self.protocol = self.select_protocol();
        self.leader = self.members.keys().next().cloned();
        self.set_state(GroupState::Stable);
    }

    /// Starts a rebalance of a Stable group (after a downgrade).
    pub fn start_rebalance(&mut self, now: Instant, limits: &Limits) {
        self.prepare_rebalance(now, limits);
        self.maybe_complete_join(now);
    }

    /// Checks an OffsetCommit against the membership (Kafka's rules). Ok(()) means accept.
    pub fn validate_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), i16> {
        if let Some(s) = &self.streams {
            if generation >= 0 || !member_id.is_empty() {
                return s.validate_member_epoch(member_id, generation);
            }
            return if s.members.is_empty() {
                Ok(())
            } else {
                Err(WireError::UnknownMemberId.code())
            };
        }
        if let Some(c) = &self.consumer {
            if generation >= 0 || !member_id.is_empty() {
                return c.validate_member_epoch(member_id, generation);
            }
            return if c.members.is_empty() {
                Ok(())
            } else {
                Err(WireError::UnknownMemberId.code())
            };
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.check_member(member_id, instance_id)?;
            if generation != self.generation {
                return Err(WireError::IllegalGeneration.code());
            }
            if self.state == GroupState::CompletingRebalance {
                return Err(WireError::RebalanceInProgress.code());
            }
            Ok(())
        } else if !self.members.is_empty() {
            // When the group has members, only members may commit.
            Err(WireError::UnknownMemberId.code())
        } else {
            Ok(())
        }
    }
}

/// `now` plus a client-supplied timeout in milliseconds; a negative timeout counts as 0, so no
/// caller depends on earlier validation to keep `as u64` from wrapping into a panicking add.
fn deadline_after(now: Instant, timeout_ms: i32) -> Instant {
    now + Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            session_timeout_min_ms: 10,
            session_timeout_max_ms: 100_000,
            max_size: 10,
            initial_rebalance_delay_ms: 0,
        }
    }

    fn req(id: &str) -> JoinRequest {
        JoinRequest {
            member_id: id.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 1000,
            rebalance_timeout_ms: 1000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
            require_known_member_id: true,
        }
    }

    fn now_result(o: JoinOutcome) -> JoinResult {
        match o {
            JoinOutcome::Now(r) => r,
            JoinOutcome::Wait(mut rx) => rx.try_recv().expect("join completed"),
        }
    }

    #[test]
    fn two_members_join_sync_and_one_leaves() {
        let mut g = Group::new("g");
        let t = Instant::now();
        let r = now_result(g.join(req(""), &limits(), t));
        assert_eq!(r.error, WireError::MemberIdRequired.code());
        let a = r.member_id;
        let ra = now_result(g.join(req(&a), &limits(), t));
        assert_eq!(
            (ra.error, ra.generation, ra.leader.as_str()),
            (0, 1, a.as_str())
        );
        assert_eq!(ra.members.len(), 1);
        assert!(matches!(
            g.sync(
                &a,
                None,
                1,
                None,
                None,
                vec![(a.clone(), Bytes::from_static(b"A"))]
            ),
            SyncOutcome::Wait(_)
        ));
        assert_eq!(g.state, GroupState::Stable);

        // Second member: rebalance; the first must rejoin.
        let b = now_result(g.join(req(""), &limits(), t)).member_id;
        let JoinOutcome::Wait(mut rb) = g.join(req(&b), &limits(), t) else {
            panic!("should wait")
        };
        assert_eq!(g.state, GroupState::PreparingRebalance);
        assert_eq!(
            g.heartbeat(&a, None, 1, t),
            WireError::RebalanceInProgress.code()
        );
        let ra = now_result(g.join(req(&a), &limits(), t));
        let rb = rb.try_recv().expect("b joined");
        assert_eq!(ra.generation, 2);
        assert_eq!(rb.generation, 2);
        assert_eq!(
            ra.members.len() + rb.members.len(),
            2,
            "only the leader gets the member list"
        );
        let SyncOutcome::Wait(mut sb) = g.sync(&b, None, 2, None, None, vec![]) else {
            panic!("b waits for leader")
        };
        let leader = ra.leader.clone();
        let _ = g.sync(
            &leader,
            None,
            2,
            Some("consumer"),
            Some("range"),
            vec![
                (a.clone(), Bytes::from_static(b"A2")),
                (b.clone(), Bytes::from_static(b"B2")),
            ],
        );
        let sb = sb.try_recv().expect("b synced");
        assert_eq!(&sb.assignment[..], b"B2");
        assert_eq!(
            g.heartbeat(&b, None, 1, t),
            WireError::IllegalGeneration.code()
        );

        // b leaves: a alone after rejoin.
        assert_eq!(g.leave(&b, None, t, &limits()), 0);
        assert_eq!(g.state, GroupState::PreparingRebalance);
        let ra = now_result(g.join(req(&a), &limits(), t));
        assert_eq!(ra.generation, 3);
    }

    #[test]
    fn session_expiry_triggers_rebalance_and_empty() {
        let mut g = Group::new("g");
        let t = Instant::now();
        let a = now_result(g.join(req(""), &limits(), t)).member_id;
        now_result(g.join(req(&a), &limits(), t));
        let _ = g.sync(&a, None, 1, None, None, vec![]);
        assert!(!g.tick(t + Duration::from_millis(500), &limits()));
        assert!(g.tick(t + Duration::from_millis(1500), &limits()));
        assert_eq!(g.state, GroupState::Empty);
        assert_eq!(g.generation, 2);
    }

    #[test]
    fn static_member_rejoin_keeps_assignment_without_rebalance() {
        let mut g = Group::new("g");
        let t = Instant::now();
        let mut r = req("");
        r.instance_id = Some("i1".into());
        let first = now_result(g.join(r, &limits(), t));
        assert_eq!(first.error, 0, "static members skip MEMBER_ID_REQUIRED");
        let _ = g.sync(
            &first.member_id,
            Some("i1"),
            1,
            None,
            None,
            vec![(first.member_id.clone(), Bytes::from_static(b"X"))],
        );
        let mut r = req("");
        r.instance_id = Some("i1".into());
        let again = now_result(g.join(r, &limits(), t));
        assert_eq!(again.generation, 1, "no rebalance");
        assert_ne!(again.member_id, first.member_id);
        assert_eq!(
            g.heartbeat(&first.member_id, Some("i1"), 1, t),
            WireError::FencedInstanceId.code()
        );
        let SyncOutcome::Now(s) = g.sync(&again.member_id, Some("i1"), 1, None, None, vec![])
        else {
            panic!("stable")
        };
        assert_eq!(&s.assignment[..], b"X");
    }

    #[test]
    fn commit_validation() {
        let mut g = Group::new("g");
        assert_eq!(
            g.validate_commit("", None, -1),
            Ok(()),
            "simple consumer on an empty group"
        );
        let t = Instant::now();
        let a = now_result(g.join(req(""), &limits(), t)).member_id;
        now_result(g.join(req(&a), &limits(), t));
        assert_eq!(
            g.validate_commit("", None, -1),
            Err(WireError::UnknownMemberId.code())
        );
        assert_eq!(
            g.validate_commit(&a, None, 1),
            Err(WireError::RebalanceInProgress.code())
        );
        let _ = g.sync(&a, None, 1, None, None, vec![]);
        assert_eq!(g.validate_commit(&a, None, 1), Ok(()));
        assert_eq!(
            g.validate_commit(&a, None, 0),
            Err(WireError::IllegalGeneration.code())
        );
    }

    /// Any i32 a client or a record can carry gives a sane deadline: the casts this helper
    /// replaced (`timeout as u64`) turned -1 into 2^64-1 ms, a deadline some 585 million years
    /// away, so a member with a negative session timeout never expired.
    #[test]
    fn deadline_after_takes_any_i32() {
        let now = Instant::now();
        assert_eq!(deadline_after(now, -1), now);
        assert_eq!(deadline_after(now, i32::MIN), now);
        assert_eq!(deadline_after(now, 0), now);
        assert_eq!(deadline_after(now, 45_000), now + Duration::from_secs(45));
        assert_eq!(
            deadline_after(now, i32::MAX),
            now + Duration::from_millis(2_147_483_647)
        );
    }
}
