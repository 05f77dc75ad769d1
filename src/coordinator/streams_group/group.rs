//! One streams group's state machine (in memory; its records in `__consumer_offsets` and the
//! handlers come next): members with epochs, the group's topology, the target assignment of
//! tasks, and each member's reconciliation towards it, as in a KIP-848 consumer group with
//! tasks in place of partitions.
//!
//! - The group epoch moves when membership, the topology, a member's process/rack/tags or the
//!   partition counts of the topology's topics change; the target assignment is recomputed
//!   (by [`super::assignor`]) for each group epoch; while the topology is not ready (sources
//!   missing, internal topics not created yet) it is empty and members are told why (the
//!   status).
//! - An active task another member still holds (assigned or being revoked) is given only once
//!   that member has released it; a member revokes before it gets new tasks and moves to the
//!   target epoch when it has nothing left to revoke.
//! - The endpoint-information epoch moves when a member's user endpoint or its active or
//!   standby tasks change; a member that reports an older one gets the partitions of every
//!   endpoint (interactive queries).
//! - A member asking to shut the application down makes every member see
//!   SHUTDOWN_APPLICATION.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::assignor::{self, MemberSpec, TaskId, Tasks};
use super::records::{Kind, Value};
use super::topology::{self, status, ConfiguredTopology, InternalTopic};
use crate::protocol::streams::{
    Assignment, DescribedGroup, DescribedMember, DescribedSubtopology, DescribedTopology, Endpoint,
    EndpointToPartitions, HeartbeatRequest, HeartbeatResponse, KeyValue, Status, TaskIds,
    TopicInfo, TopicPartitions, Topology,
};
use crate::protocol::WireError;

/// A member leaving the group for good (MemberEpoch -1) or, static, for now (-2).
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// Group settings a heartbeat needs: the broker's `group.streams.*` configs with the group's
/// own `streams.*` configs over them.
#[derive(Debug, Clone)]
pub struct StreamsLimits {
    pub session_timeout_ms: u64,
    pub heartbeat_interval_ms: i32,
    pub num_standby_replicas: usize,
    pub max_size: usize,
    pub acceptable_recovery_lag: i64,
    pub task_offset_interval_ms: i32,
}

impl Default for StreamsLimits {
    /// Kafka 4.4's defaults (`group.streams.*`).
    fn default() -> Self {
        StreamsLimits {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            num_standby_replicas: 0,
            max_size: usize::MAX,
            acceptable_recovery_lag: 10_000,
            task_offset_interval_ms: 60_000,
        }
    }
}

/// What the cluster's topics look like to one heartbeat.
pub struct TopicsView<'a> {
    pub partitions_of: topology::PartitionsOf<'a>,
    pub names: &'a [String],
}

pub struct StreamsMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub topology_epoch: i32,
    pub process_id: String,
    pub user_endpoint: Option<Endpoint>,
    pub client_tags: Vec<KeyValue>,
    pub epoch: i32,
    previous_epoch: i32,
    pub assigned: Tasks,
    /// Active tasks the member must give up before it gets new ones.
    pub pending_revocation: BTreeSet<TaskId>,
    session_deadline: Instant,
    revocation_deadline: Option<Instant>,
    last_sent: Option<Tasks>,
}

pub struct StreamsGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub topology: Option<Topology>,
    pub configured: Option<ConfiguredTopology>,
    /// Partition counts of the topics the topology uses, at the last epoch bump.
    topic_metadata: BTreeMap<String, i32>,
    /// A hash of `topic_metadata` (persisted, so a restart does not look like a change).
    metadata_hash: i64,
    /// The topology epoch last configured without error (-1: none); persisted.
    validated_topology_epoch: i32,
    /// The record values last written (see [`StreamsGroup::take_records`]).
    persisted: BTreeMap<Kind, Value>,
    pub members: BTreeMap<String, StreamsMember>,
    pub target: BTreeMap<String, Tasks>,
    pub endpoint_information_epoch: i32,
    shutdown_requested: bool,
    /// The limits of the last heartbeat (the group's configs then), for expiry between them.
    pub last_limits: Option<StreamsLimits>,
}

/// A heartbeat's answer and the internal topics the broker should create for the group.
pub struct HeartbeatOutcome {
    pub response: HeartbeatResponse,
    pub to_create: Vec<InternalTopic>,
}

pub type HeartbeatError = (i16, String);

impl Default for StreamsGroup {
    fn default() -> Self {
        StreamsGroup {
            group_epoch: 0,
            assignment_epoch: 0,
            topology: None,
            configured: None,
            topic_metadata: BTreeMap::new(),
            metadata_hash: 0,
            validated_topology_epoch: -1,
            persisted: BTreeMap::new(),
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            endpoint_information_epoch: 0,
            shutdown_requested: false,
            last_limits: None,
        }
    }
}

impl StreamsGroup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Kafka's streams-group state names.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if !self
            .configured
            .as_ref()
            .is_some_and(ConfiguredTopology::is_ready)
        {
            "NotReady"
        } else if self.assignment_epoch < self.group_epoch {
            "Assigning"
        } else if self.members.values().any(|m| {
            m.epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH && m.epoch != self.assignment_epoch
                || self.target.get(&m.id).is_some_and(|t| *t != m.assigned)
        }) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    fn bump_epoch(&mut self) {
        if self.assignment_epoch >= self.group_epoch {
            self.group_epoch += 1;
        }
    }

    fn remove_member(&mut self, id: &str) -> bool {
        let known = self.members.remove(id).is_some();
        if known {
            self.target.remove(id);
            self.endpoint_information_epoch += 1;
        }
        known
    }

    fn static_owner(&self, instance: &str) -> Option<&StreamsMember> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance))
    }

    /// Handles one StreamsGroupHeartbeat (already checked by [`super::validate`]).
    pub fn heartbeat(
        &mut self,
        req: &HeartbeatRequest,
        client_id: &str,
        client_host: &str,
        topics: &TopicsView<'_>,
        limits: &StreamsLimits,
        now: Instant,
    ) -> Result<HeartbeatOutcome, HeartbeatError> {
        self.last_limits = Some(limits.clone());
        let session = Duration::from_millis(limits.session_timeout_ms);
        if req.member_epoch < 0 {
            if let Some(instance) = &req.instance_id {
                match self.static_owner(instance) {
                    Some(o) if o.id == req.member_id => {}
                    Some(o) => {
                        return Err((
                            WireError::FencedInstanceId.code(),
                            format!(
                            "Static member {} with instance id {instance} was fenced by member {}.",
                            req.member_id, o.id
                        ),
                        ))
                    }
                    None => {
                        return Err((
                            WireError::UnknownMemberId.code(),
                            format!("Instance id {instance} is unknown."),
                        ))
                    }
                }
                if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                    let m = self.members.get_mut(&req.member_id).expect("static owner");
                    if m.epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                        m.previous_epoch = m.epoch;
                        m.epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
                    }
                    return Ok(self.leave_answer(req, limits));
                }
            }
            if self.remove_member(&req.member_id) {
                self.bump_epoch();
            }
            return Ok(self.leave_answer(req, limits));
        }

        let mut changed = false;
        let mut stale_topology = false;
        if req.member_epoch == 0 {
            if !self.members.contains_key(&req.member_id) && self.members.len() >= limits.max_size {
                return Err((
                    WireError::GroupMaxSizeReached.code(),
                    "The streams group has reached its maximum capacity.".into(),
                ));
            }
            if let Some(instance) = &req.instance_id {
                if let Some(owner) = self
                    .static_owner(instance)
                    .filter(|o| o.id != req.member_id)
                {
                    if owner.epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                        return Err((
                            WireError::UnreleasedInstanceId.code(),
                            format!(
                                "Static member {} with instance id {instance} cannot join the group because the instance id is owned by {} member.",
                                req.member_id, owner.id
                            ),
                        ));
                    }
                    let owner_id = owner.id.clone();
                    let target = self.target.get(&owner_id).cloned();
                    self.remove_member(&owner_id);
                    if let Some(t) = target {
                        self.target.insert(req.member_id.clone(), t);
                    }
                } else {
                    changed = true;
                }
            } else {
                changed = true;
            }
            // The topology: the first member's, or a newer one.
            let topology = req.topology.clone().unwrap_or_default();
            match &self.topology {
                Some(t) if t.epoch > topology.epoch => stale_topology = true,
                Some(t) if *t == topology => {}
                _ => {
                    self.topology = Some(topology.clone());
                    self.configured = None;
                    changed = true;
                }
            }
            // A (re)join starts from nothing.
            self.members.remove(&req.member_id);
            self.members.insert(
                req.member_id.clone(),
                StreamsMember {
                    id: req.member_id.clone(),
                    instance_id: req.instance_id.clone(),
                    rack_id: req.rack_id.clone(),
                    client_id: client_id.to_string(),
                    client_host: client_host.to_string(),
                    rebalance_timeout_ms: req.rebalance_timeout_ms,
                    topology_epoch: topology.epoch,
                    process_id: req.process_id.clone().unwrap_or_default(),
                    user_endpoint: req.user_endpoint.clone(),
                    client_tags: req.client_tags.clone().unwrap_or_default(),
                    epoch: 0,
                    previous_epoch: 0,
                    assigned: Tasks::default(),
                    pending_revocation: BTreeSet::new(),
                    session_deadline: now + session,
                    revocation_deadline: None,
                    last_sent: None,
                },
            );
            self.endpoint_information_epoch += 1;
        } else {
            let Some(m) = self.members.get(&req.member_id) else {
                return Err((
                    WireError::UnknownMemberId.code(),
                    format!("Member {} is not a member of the group.", req.member_id),
                ));
            };
            let owned_ok = req
                .active_tasks
                .as_ref()
                .is_none_or(|a| flatten(a).is_subset(&m.assigned.active));
            if req.member_epoch != m.epoch && !(req.member_epoch == m.previous_epoch && owned_ok) {
                return Err((
                    WireError::FencedMemberEpoch.code(),
                    format!(
                        "The streams group member has a smaller member epoch ({}) than the one known by the group coordinator ({}).",
                        req.member_epoch, m.epoch
                    ),
                ));
            }
            let m = self.members.get_mut(&req.member_id).expect("member");
            if req.rebalance_timeout_ms >= 0 {
                m.rebalance_timeout_ms = req.rebalance_timeout_ms;
            }
            if req.rack_id.is_some() && req.rack_id != m.rack_id {
                m.rack_id = req.rack_id.clone();
                changed = true;
            }
            if let Some(p) = req.process_id.as_ref().filter(|p| **p != m.process_id) {
                m.process_id = p.clone();
                changed = true;
            }
            if let Some(tags) = req.client_tags.as_ref().filter(|t| **t != m.client_tags) {
                m.client_tags = tags.clone();
                changed = true;
            }
            if req.user_endpoint.is_some() && req.user_endpoint != m.user_endpoint {
                m.user_endpoint = req.user_endpoint.clone();
                self.endpoint_information_epoch += 1;
            }
        }
        if req.shutdown_application {
            self.shutdown_requested = true;
        }
        let id = req.member_id.as_str();
        self.members.get_mut(id).expect("member").session_deadline = now + session;
        if changed {
            self.bump_epoch();
        }
        let to_create = self.refresh_topology(topics);
        if self.assignment_epoch < self.group_epoch {
            self.compute_target(limits);
        }
        let owned_active = req.active_tasks.as_ref().map(|a| flatten(a));
        let before = self.members[id].assigned.clone();
        self.reconcile(id, owned_active.as_ref(), now);
        if self.members[id].assigned.active != before.active
            || self.members[id].assigned.standby != before.standby
        {
            self.endpoint_information_epoch += 1;
        }

        let m = self.members.get_mut(id).expect("member");
        let tasks = if m.last_sent.as_ref() != Some(&m.assigned) || req.member_epoch == 0 {
            m.last_sent = Some(m.assigned.clone());
            Some(m.assigned.clone())
        } else {
            None
        };
        let member_epoch = m.epoch;
        let mut statuses: Vec<Status> = Vec::new();
        if stale_topology {
            statuses.push(Status {
                status_code: status::STALE_TOPOLOGY,
                status_detail: "The topology epoch supplied is inconsistent with the topology for this streams group.".into(),
            });
        }
        if let Some((code, detail)) = self
            .configured
            .as_ref()
            .and_then(ConfiguredTopology::status)
        {
            statuses.push(Status {
                status_code: code,
                status_detail: detail,
            });
        }
        if self.shutdown_requested {
            statuses.push(Status {
                status_code: status::SHUTDOWN_APPLICATION,
                status_detail: "A KafkaStreams instance encountered a fatal error and requested a shutdown for the entire application.".into(),
            });
        }
        let endpoints = (req.endpoint_information_epoch < self.endpoint_information_epoch)
            .then(|| self.partitions_by_endpoint());
        let to_task_ids = |set: &BTreeSet<TaskId>| task_ids(set);
        Ok(HeartbeatOutcome {
            response: HeartbeatResponse {
                member_id: req.member_id.clone(),
                member_epoch,
                heartbeat_interval_ms: limits.heartbeat_interval_ms,
                acceptable_recovery_lag: limits.acceptable_recovery_lag,
                task_offset_interval_ms: limits.task_offset_interval_ms,
                status: Some(statuses),
                active_tasks: tasks.as_ref().map(|t| to_task_ids(&t.active)),
                standby_tasks: tasks.as_ref().map(|t| to_task_ids(&t.standby)),
                warmup_tasks: tasks.as_ref().map(|t| to_task_ids(&t.warmup)),
                endpoint_information_epoch: self.endpoint_information_epoch,
                partitions_by_user_endpoint: endpoints,
                ..HeartbeatResponse::default()
            },
            to_create,
        })
    }

    fn leave_answer(&self, req: &HeartbeatRequest, limits: &StreamsLimits) -> HeartbeatOutcome {
        HeartbeatOutcome {
            response: HeartbeatResponse {
                member_id: req.member_id.clone(),
                member_epoch: req.member_epoch,
                heartbeat_interval_ms: limits.heartbeat_interval_ms,
                acceptable_recovery_lag: limits.acceptable_recovery_lag,
                task_offset_interval_ms: limits.task_offset_interval_ms,
                endpoint_information_epoch: self.endpoint_information_epoch,
                ..HeartbeatResponse::default()
            },
            to_create: Vec::new(),
        }
    }

    /// Re-checks the topology against the cluster when it changed or the partition counts of
    /// its topics did (bumping the group epoch then). Returns the internal topics to create.
    fn refresh_topology(&mut self, topics: &TopicsView<'_>) -> Vec<InternalTopic> {
        let Some(t) = &self.topology else {
            return Vec::new();
        };
        let configured = topology::configure(t, topics.partitions_of, topics.names);
        let mut used: BTreeSet<String> = BTreeSet::new();
        for s in &t.subtopologies {
            used.extend(s.source_topics.iter().cloned());
            used.extend(s.repartition_source_topics.iter().map(|x| x.name.clone()));
            used.extend(s.state_changelog_topics.iter().map(|x| x.name.clone()));
        }
        for s in configured.subtopologies.values() {
            used.extend(s.input_topics.iter().cloned());
        }
        let metadata: BTreeMap<String, i32> = used
            .into_iter()
            .filter_map(|n| (topics.partitions_of)(&n).map(|p| (n, p)))
            .collect();
        let hash = metadata_hash(&metadata);
        let reconfigured = self.configured.as_ref().is_some_and(|c| *c != configured);
        if hash != self.metadata_hash || reconfigured {
            self.metadata_hash = hash;
            self.bump_epoch();
        }
        self.topic_metadata = metadata;
        let to_create = configured.to_create.clone();
        if configured.error.is_none() {
            self.validated_topology_epoch = configured.epoch;
        }
        self.configured = Some(configured);
        to_create
    }

    /// The target assignment for the group epoch: nothing for anybody while the topology is
    /// not ready (members are told why in the status), else the assignor's.
    fn compute_target(&mut self, limits: &StreamsLimits) {
        let tasks: BTreeMap<String, i32> = match &self.configured {
            Some(c) if c.is_ready() => c
                .subtopologies
                .iter()
                .map(|(id, s)| (id.clone(), s.tasks))
                .collect(),
            _ => BTreeMap::new(),
        };
        let specs: BTreeMap<String, MemberSpec> = self
            .members
            .values()
            .map(|m| {
                (
                    m.id.clone(),
                    MemberSpec {
                        process_id: m.process_id.clone(),
                        active: m
                            .assigned
                            .active
                            .union(&m.pending_revocation)
                            .cloned()
                            .collect(),
                        standby: m.assigned.standby.clone(),
                    },
                )
            })
            .collect();
        self.target = assignor::assign(&specs, &tasks, limits.num_standby_replicas);
        self.assignment_epoch = self.group_epoch;
    }

    /// Moves one member towards its target: active tasks it must give up are revoked first;
    /// an active task another member still holds waits until it is released.
    fn reconcile(&mut self, id: &str, owned_active: Option<&BTreeSet<TaskId>>, now: Instant) {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let held_by_others: BTreeSet<TaskId> = self
            .members
            .values()
            .filter(|o| o.id != id)
            .flat_map(|o| o.assigned.active.iter().chain(&o.pending_revocation))
            .cloned()
            .collect();
        let assignment_epoch = self.assignment_epoch;
        let m = self.members.get_mut(id).expect("member");
        if let Some(owned) = owned_active {
            if !m.pending_revocation.is_empty() && owned.is_disjoint(&m.pending_revocation) {
                m.pending_revocation.clear();
                m.revocation_deadline = None;
            }
        }
        if !m.pending_revocation.is_empty() {
            return;
        }
        let revoke: BTreeSet<TaskId> = m
            .assigned
            .active
            .difference(&target.active)
            .cloned()
            .collect();
        if !revoke.is_empty() && owned_active.is_none_or(|o| !o.is_disjoint(&revoke)) {
            m.assigned.active = m
                .assigned
                .active
                .intersection(&target.active)
                .cloned()
                .collect();
            m.assigned.standby = m
                .assigned
                .standby
                .intersection(&target.standby)
                .cloned()
                .collect();
            m.pending_revocation = revoke;
            m.revocation_deadline =
                Some(now + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64));
            return;
        }
        if m.epoch != assignment_epoch {
            m.previous_epoch = m.epoch;
            m.epoch = assignment_epoch;
        }
        m.assigned = Tasks {
            active: target.active.difference(&held_by_others).cloned().collect(),
            standby: target.standby.clone(),
            warmup: target.warmup.clone(),
        };
    }

    /// The input-topic partitions of each endpoint's active and standby tasks.
    fn partitions_by_endpoint(&self) -> Vec<EndpointToPartitions> {
        let Some(configured) = &self.configured else {
            return Vec::new();
        };
        let partitions = |tasks: &BTreeSet<TaskId>| -> Vec<TopicPartitions> {
            let mut by_topic: BTreeMap<&str, BTreeSet<i32>> = BTreeMap::new();
            for (sub, p) in tasks {
                if let Some(s) = configured.subtopologies.get(sub) {
                    for t in &s.input_topics {
                        by_topic.entry(t.as_str()).or_default().insert(*p);
                    }
                }
            }
            by_topic
                .into_iter()
                .map(|(t, ps)| TopicPartitions {
                    topic: t.to_string(),
                    partitions: ps.into_iter().collect(),
                })
                .collect()
        };
        self.members
            .values()
            .filter_map(|m| {
                m.user_endpoint.as_ref().map(|e| EndpointToPartitions {
                    user_endpoint: e.clone(),
                    active_partitions: partitions(&m.assigned.active),
                    standby_partitions: partitions(&m.assigned.standby),
                })
            })
            .collect()
    }

    /// The group as StreamsGroupDescribe shows it (`authorized_operations` as asked).
    pub fn describe(&self, group_id: &str, authorized_operations: i32) -> DescribedGroup {
        let sized = |t: &TopicInfo, partitions: Option<i32>| TopicInfo {
            partitions: partitions.unwrap_or(t.partitions),
            ..t.clone()
        };
        let topology = self.topology.as_ref().map(|t| DescribedTopology {
            epoch: t.epoch,
            subtopologies: Some(
                t.subtopologies
                    .iter()
                    .map(|s| {
                        let configured = self
                            .configured
                            .as_ref()
                            .and_then(|c| c.subtopologies.get(&s.subtopology_id));
                        DescribedSubtopology {
                            subtopology_id: s.subtopology_id.clone(),
                            source_topics: s.source_topics.clone(),
                            repartition_sink_topics: s.repartition_sink_topics.clone(),
                            state_changelog_topics: s
                                .state_changelog_topics
                                .iter()
                                .map(|t| {
                                    sized(
                                        t,
                                        configured
                                            .and_then(|c| c.changelog_topics.get(&t.name).copied()),
                                    )
                                })
                                .collect(),
                            repartition_source_topics: s
                                .repartition_source_topics
                                .iter()
                                .map(|t| sized(t, self.topic_metadata.get(&t.name).copied()))
                                .collect(),
                        }
                    })
                    .collect(),
            ),
        });
        let assignment = |t: &Tasks| Assignment {
            active_tasks: task_ids(&t.active),
            standby_tasks: task_ids(&t.standby),
            warmup_tasks: task_ids(&t.warmup),
        };
        DescribedGroup {
            group_id: group_id.to_string(),
            group_state: self.state().to_string(),
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            topology,
            members: self
                .members
                .values()
                .map(|m| DescribedMember {
                    member_id: m.id.clone(),
                    member_epoch: m.epoch,
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    topology_epoch: m.topology_epoch,
                    process_id: m.process_id.clone(),
                    user_endpoint: m.user_endpoint.clone(),
                    client_tags: m.client_tags.clone(),
                    assignment: assignment(&m.assigned),
                    target_assignment: assignment(
                        &self.target.get(&m.id).cloned().unwrap_or_default(),
                    ),
                    ..DescribedMember::default()
                })
                .collect(),
            authorized_operations,
            assignor_name: Some("sticky".into()),
            ..DescribedGroup::default()
        }
    }

    /// OffsetCommit / TxnOffsetCommit by a member (Kafka's `StreamsGroup.validateOffsetCommit`):
    /// an unknown member is UNKNOWN_MEMBER_ID, a newer epoch than the member's
    /// FENCED_MEMBER_EPOCH, an older one STALE_MEMBER_EPOCH.
    pub fn validate_member_epoch(&self, member_id: &str, epoch: i32) -> Result<(), i16> {
        let Some(m) = self.members.get(member_id) else {
            return Err(WireError::UnknownMemberId.code());
        };
        if epoch > m.epoch {
            return Err(WireError::FencedMemberEpoch.code());
        }
        if epoch < m.epoch {
            return Err(WireError::StaleMemberEpoch.code());
        }
        Ok(())
    }

    /// Expires members whose session ended or who did not revoke in time.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline <= now || m.revocation_deadline.is_some_and(|d| d <= now)
            })
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            self.remove_member(id);
        }
        if !gone.is_empty() {
            self.bump_epoch();
        }
        gone
    }
}

/// FNV-1a over the sorted (topic, partitions) pairs: stable across restarts and builds.
fn metadata_hash(metadata: &BTreeMap<String, i32>) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (t, p) in metadata {
        eat(t.as_bytes());
        eat(&[0]);
        eat(&p.to_be_bytes());
    }
    h as i64
}

fn flatten(tasks: &[TaskIds]) -> BTreeSet<TaskId> {
    tasks
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.subtopology_id.clone(), *p)))
        .collect()
}

fn task_ids(set: &BTreeSet<TaskId>) -> Vec<TaskIds> {
    let mut by: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (s, p) in set {
        by.entry(s.as_str()).or_default().push(*p);
    }
    by.into_iter()
        .map(|(s, ps)| TaskIds {
            subtopology_id: s.to_string(),
            partitions: ps,
        })
        .collect()
}

mod persist;

#[cfg(test)]
mod tests;
