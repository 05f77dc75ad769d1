//! Classic-protocol members inside a consumer group: KIP-848's online migration.
//!
//! A classic group whose members all use the `consumer` embedded protocol becomes a consumer
//! group when a consumer-protocol member joins ([`ConsumerGroup::from_classic`]); its members
//! stay, as classic members, with the subscription and assignment decoded from their
//! ConsumerProtocol metadata. They keep speaking JoinGroup/SyncGroup/Heartbeat/LeaveGroup and
//! the coordinator answers them from the consumer group's state, as Kafka's
//! GroupMetadataManager does:
//!
//! - JoinGroup updates the member (subscription from its first protocol's metadata) and
//!   reconciles it like a heartbeat does, with the partitions its subscription says it owns;
//!   the generation it gets is its member epoch; it must SyncGroup within its rebalance
//!   timeout.
//! - SyncGroup answers its current assignment as a ConsumerProtocol Assignment.
//! - Heartbeat answers REBALANCE_IN_PROGRESS when the member must rejoin: the group epoch moved
//!   past its epoch, it has partitions to revoke, or partitions it waits for became free; it
//!   must then rejoin within its rebalance timeout.
//! - Its session timeout is the one of its JoinGroup.
//!
//! When the last consumer-protocol member leaves and only classic members remain, the group is
//! converted back ([`ConsumerGroup::downgraded_members`], used by the coordinator).

use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use uuid::Uuid;

use super::{ConsumerGroup, ConsumerLimits, ConsumerMember, TopicsView};
use crate::coordinator::assignor::Assignment;
use crate::coordinator::codec::ClassicMemberValue;
use crate::coordinator::group::{Group, JoinRequest};
use crate::protocol::WireError;

pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The classic side of a member: what its last JoinGroup said, and its pending deadline.
#[derive(Debug, Clone)]
pub struct ClassicMeta {
    pub session_timeout_ms: i32,
    /// (name, ConsumerProtocol subscription), in the member's preference order; never empty.
    pub protocols: Vec<(String, Bytes)>,
    /// Rejoin (after REBALANCE_IN_PROGRESS) or sync (after a join) deadline.
    pub deadline: Option<Instant>,
}

impl ClassicMeta {
    pub fn to_value(&self) -> ClassicMemberValue {
        ClassicMemberValue {
            session_timeout_ms: self.session_timeout_ms,
            protocols: self
                .protocols
                .iter()
                .map(|(n, m)| (n.clone(), m.to_vec()))
                .collect(),
        }
    }

    pub fn from_value(v: ClassicMemberValue) -> Self {
        ClassicMeta {
            session_timeout_ms: v.session_timeout_ms,
            protocols: v
                .protocols
                .into_iter()
                .map(|(n, m)| (n, Bytes::from(m)))
                .collect(),
            deadline: None,
        }
    }

    fn protocol_name(&self) -> &str {
        self.protocols.first().map_or("", |(n, _)| n.as_str())
    }

    /// The ConsumerProtocol version the member speaks (the first two bytes of its metadata).
    fn version(&self) -> i16 {
        self.protocols
            .first()
            .and_then(|(_, m)| (m.len() >= 2).then(|| i16::from_be_bytes([m[0], m[1]])))
            .unwrap_or(0)
    }
}

/// A ConsumerProtocol subscription (versions 0-3; later versions read as 3).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Subscription {
    pub topics: Vec<String>,
    pub owned: Vec<(String, Vec<i32>)>,
    pub rack: Option<String>,
}

struct Wire<'a>(&'a [u8]);

impl Wire<'_> {
    fn i16(&mut self) -> Result<i16, &'static str> {
        (self.0.remaining() >= 2)
            .then(|| self.0.get_i16())
            .ok_or("truncated")
    }
    fn i32(&mut self) -> Result<i32, &'static str> {
        (self.0.remaining() >= 4)
            .then(|| self.0.get_i32())
            .ok_or("truncated")
    }
    fn opt_str(&mut self) -> Result<Option<String>, &'static str> {
        let n = self.i16()?;
        if n < 0 {
            return Ok(None);
        }
        let n = n as usize;
        if self.0.remaining() < n {
            return Err("truncated");
        }
        let s = std::str::from_utf8(&self.0[..n])
            .map_err(|_| "not UTF-8")?
            .to_string();
        self.0.advance(n);
        Ok(Some(s))
    }
    fn str(&mut self) -> Result<String, &'static str> {
        self.opt_str()?.ok_or("null string")
    }
    /// An array length whose elements take at least `min` bytes each.
    fn len(&mut self, min: usize) -> Result<usize, &'static str> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(0);
        }
        let n = n as usize;
        if n.saturating_mul(min) > self.0.remaining() {
            return Err("array longer than the data");
        }
        Ok(n)
    }
    fn skip_bytes(&mut self) -> Result<(), &'static str> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(());
        }
        if self.0.remaining() < n as usize {
            return Err("truncated");
        }
        self.0.advance(n as usize);
        Ok(())
    }
    fn partitions(&mut self) -> Result<Vec<(String, Vec<i32>)>, &'static str> {
        let n = self.len(6)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let topic = self.str()?;
            let np = self.len(4)?;
            let mut ps = Vec::with_capacity(np);
            for _ in 0..np {
                ps.push(self.i32()?);
            }
            out.push((topic, ps));
        }
        Ok(out)
    }
}

pub fn decode_subscription(b: &[u8]) -> Result<Subscription, &'static str> {
    let mut r = Wire(b);
    let version = r.i16()?;
    if version < 0 {
        return Err("negative version");
    }
    let n = r.len(2)?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        topics.push(r.str()?);
    }
    r.skip_bytes()?;
    let mut s = Subscription {
        topics,
        ..Subscription::default()
    };
    if version >= 1 {
        s.owned = r.partitions()?;
    }
    if version >= 2 {
        let _generation = r.i32()?;
    }
    if version >= 3 {
        s.rack = r.opt_str()?;
    }
    Ok(s)
}

pub fn decode_assignment(b: &[u8]) -> Result<Vec<(String, Vec<i32>)>, &'static str> {
    let mut r = Wire(b);
    if r.i16()? < 0 {
        return Err("negative version");
    }
    r.partitions()
}

/// A ConsumerProtocol Assignment (the layout is the same in versions 0-3), no user data.
pub fn encode_assignment(version: i16, parts: &[(String, Vec<i32>)]) -> Bytes {
    let mut out = Vec::new();
    out.put_i16(version.clamp(0, 3));
    out.put_i32(parts.len() as i32);
    for (topic, ps) in parts {
        out.put_i16(topic.len().min(i16::MAX as usize) as i16);
        out.extend_from_slice(&topic.as_bytes()[..topic.len().min(i16::MAX as usize)]);
        out.put_i32(ps.len() as i32);
        for p in ps {
            out.put_i32(*p);
        }
    }
    out.put_i32(-1);
    Bytes::from(out)
}

fn by_name(parts: &[(String, Vec<i32>)], topics: &TopicsView) -> Assignment {
    let mut a = Assignment::new();
    for (t, ps) in parts {
        if let Some((id, n)) = topics.by_name.get(t) {
            a.entry(*id)
                .or_default()
                .extend(ps.iter().copied().filter(|p| *p >= 0 && p < n));
        }
    }
    a.retain(|_, ps| !ps.is_empty());
    a
}

pub struct ClassicJoinOk {
    pub member_id: String,
    pub generation: i32,
    pub protocol_name: String,
}

/// A classic member of a consumer group being converted back to a classic group.
pub struct DowngradedMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
}

impl ConsumerGroup {
    /// Kafka's `ConsumerGroup.fromClassicGroup`: every member of the classic group becomes a
    /// classic member at the group's generation, its assignment (decoded from the last
    /// SyncGroup) as both current and target assignment. Err when a member's embedded
    /// protocol cannot be read.
    pub fn from_classic(g: &Group, topics: &TopicsView) -> Result<ConsumerGroup, String> {
        let mut c = ConsumerGroup::new();
        let protocol = g.protocol.clone().unwrap_or_default();
        let now = Instant::now();
        for m in g.members.values() {
            let meta = m
                .protocols
                .iter()
                .find(|(n, _)| *n == protocol)
                .map(|(_, b)| b.clone())
                .unwrap_or_default();
            let sub = decode_subscription(&meta).map_err(|e| format!("subscription: {e}"))?;
            let assigned = if m.assignment.is_empty() {
                Assignment::new()
            } else {
                by_name(
                    &decode_assignment(&m.assignment).map_err(|e| format!("assignment: {e}"))?,
                    topics,
                )
            };
            let mut names = sub.topics;
            names.sort();
            names.dedup();
            // The group's protocol first, so SyncGroup/JoinGroup name it.
            let mut protocols = m.protocols.clone();
            if let Some(i) = protocols.iter().position(|(n, _)| *n == protocol) {
                let p = protocols.remove(i);
                protocols.insert(0, p);
            }
            c.target.insert(m.id.clone(), assigned.clone());
            c.members.insert(
                m.id.clone(),
                ConsumerMember {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: sub.rack,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    subscribed_names: names,
                    subscribed_regex: None,
                    server_assignor: None,
                    epoch: g.generation,
                    previous_epoch: g.generation,
                    assigned,
                    pending_revocation: Assignment::new(),
                    session_deadline: now
                        + Duration::from_millis(m.session_timeout_ms.max(0) as u64),
                    revocation_deadline: None,
                    last_sent: None,
                    classic: Some(ClassicMeta {
                        session_timeout_ms: m.session_timeout_ms,
                        protocols,
                        deadline: None,
                    }),
                },
            );
            c.dirty.members.insert(m.id.clone());
            c.dirty.current.insert(m.id.clone());
            c.dirty.targets.insert(m.id.clone());
        }
        c.group_epoch = g.generation;
        c.assignment_epoch = g.generation;
        Ok(c)
    }

    /// The partitions of `a` as (topic name, partitions), names from the subscribed topics.
    fn named(&self, a: &Assignment) -> Vec<(String, Vec<i32>)> {
        a.iter()
            .filter_map(|(id, ps)| {
                let name = self.subscribed_metadata.get(id).map(|(n, _)| n.clone())?;
                Some((name, ps.iter().copied().collect()))
            })
            .collect()
    }

    /// Kafka's `supportsClassicProtocols`: some protocol of the newcomer is supported by
    /// every other classic member.
    fn supports_classic(&self, id: &str, protocol_type: &str, names: &[&str]) -> bool {
        if protocol_type != CONSUMER_PROTOCOL_TYPE || names.is_empty() {
            return false;
        }
        names.iter().any(|n| {
            self.members
                .values()
                .filter(|m| m.id != id)
                .filter_map(|m| m.classic.as_ref())
                .all(|c| c.protocols.iter().any(|(x, _)| x == n))
        })
    }

    /// The classic member `member_id` (or the static member `instance_id`), checked.
    fn classic_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<&str, i16> {
        let m = match instance_id {
            Some(i) => {
                let m = self
                    .members
                    .values()
                    .find(|m| m.instance_id.as_deref() == Some(i))
                    .ok_or(WireError::UnknownMemberId.code())?;
                if m.id != member_id {
                    return Err(WireError::FencedInstanceId.code());
                }
                m
            }
            None => self
                .members
                .get(member_id)
                .ok_or(WireError::UnknownMemberId.code())?,
        };
        if m.classic.is_none() {
            return Err(WireError::UnknownMemberId.code());
        }
        Ok(&m.id)
    }

    /// JoinGroup from a classic member (Kafka's `classicGroupJoinToConsumerGroup`).
    pub fn classic_join(
        &mut self,
        req: JoinRequest,
        topics: &TopicsView,
        limits: &ConsumerLimits,
        now: Instant,
    ) -> Result<ClassicJoinOk, (i16, String)> {
        let unknown = req.member_id.is_empty();
        let id = if unknown {
            Uuid::new_v4().to_string()
        } else {
            req.member_id.clone()
        };
        let err = |code: WireError, id: &str| Err((code.code(), id.to_string()));
        if !self.members.contains_key(&id) && self.members.len() >= limits.max_size {
            return err(WireError::GroupMaxSizeReached, &id);
        }
        let names: Vec<&str> = req.protocols.iter().map(|(n, _)| n.as_str()).collect();
        if !self.supports_classic(&id, &req.protocol_type, &names) {
            return err(WireError::InconsistentGroupProtocol, &req.member_id);
        }
        if unknown && req.require_known_member_id && req.instance_id.is_none() {
            return err(WireError::MemberIdRequired, &id);
        }
        // A static member back under a new id takes its old incarnation's place: epoch,
        // subscription and assignment (Kafka's static member replacement).
        let mut inherited = None;
        if let Some(instance) = &req.instance_id {
            let old = self
                .members
                .values()
                .find(|m| m.instance_id.as_ref() == Some(instance) && m.id != id)
                .map(|m| m.id.clone());
            if let Some(old) = old {
                if !unknown {
                    return err(WireError::FencedInstanceId, &req.member_id);
                }
                let o = &self.members[&old];
                inherited = Some((
                    o.subscribed_names.clone(),
                    o.epoch,
                    o.previous_epoch,
                    o.assigned.clone(),
                    o.pending_revocation.clone(),
                    o.revocation_deadline,
                    self.target.get(&old).cloned(),
                ));
                self.remove_member(&old);
            }
        }
        if self.members.get(&id).is_some_and(|m| m.classic.is_none()) {
            return err(WireError::UnknownMemberId, &id);
        }
        let Ok(sub) = decode_subscription(&req.protocols[0].1) else {
            return err(WireError::InconsistentGroupProtocol, &req.member_id);
        };
        let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        let mut changed = false;
        if !self.members.contains_key(&id) {
            self.dirty.removed.remove(&id);
            let mut m = ConsumerMember {
                id: id.clone(),
                instance_id: req.instance_id.clone(),
                rack_id: None,
                client_id: String::new(),
                client_host: String::new(),
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                subscribed_names: Vec::new(),
                subscribed_regex: None,
                server_assignor: None,
                epoch: 0,
                previous_epoch: 0,
                assigned: Assignment::new(),
                pending_revocation: Assignment::new(),
                session_deadline: now + session,
                revocation_deadline: None,
                last_sent: None,
                classic: None,
            };
            match inherited {
                Some((names, epoch, previous, assigned, pending, deadline, target)) => {
                    m.subscribed_names = names;
                    m.epoch = epoch;
                    m.previous_epoch = previous;
                    m.assigned = assigned;
                    m.pending_revocation = pending;
                    m.revocation_deadline = deadline;
                    if let Some(t) = target {
                        self.target.insert(id.clone(), t);
                        self.dirty.targets.insert(id.clone());
                    }
                }
                None => changed = true,
            }
            self.members.insert(id.clone(), m);
            self.dirty.members.insert(id.clone());
            self.dirty.current.insert(id.clone());
        }
        let before = self.member_records_of(&id);
        let m = self.members.get_mut(&id).expect("member present");
        let mut names = sub.topics;
        names.sort();
        names.dedup();
        if names != m.subscribed_names {
            m.subscribed_names = names;
            changed = true;
        }
        if sub.rack.is_some() {
            m.rack_id = sub.rack;
        }
        m.instance_id = req.instance_id;
        if req.rebalance_timeout_ms >= 0 {
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        m.client_id = req.client_id;
        m.client_host = req.client_host;
        m.session_deadline = now + session;
        let protocol_name = req.protocols[0].0.clone();
        m.classic = Some(ClassicMeta {
            session_timeout_ms: req.session_timeout_ms,
            protocols: req.protocols,
            // The member must sync within its rebalance timeout.
            deadline: Some(now + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64)),
        });
        let owned = by_name(&sub.owned, topics);
        self.settle_member(&id, before, changed, Some(&owned), topics, now);
        let m = &self.members[&id];
        Ok(ClassicJoinOk {
            member_id: id.clone(),
            generation: m.epoch,
            protocol_name,
        })
    }

    /// SyncGroup from a classic member: its current assignment, ConsumerProtocol-encoded.
    /// Ok: (protocol name, assignment).
    pub fn classic_sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        now: Instant,
    ) -> Result<(String, Bytes), i16> {
        let id = self.classic_member(member_id, instance_id)?.to_string();
        let group_epoch = self.group_epoch;
        let m = self.members.get_mut(&id).expect("member present");
        if generation != m.epoch {
            return Err(WireError::IllegalGeneration.code());
        }
        let c = m.classic.as_mut().expect("classic member");
        if protocol_type.is_some_and(|t| t != CONSUMER_PROTOCOL_TYPE)
            || protocol_name.is_some_and(|n| n != c.protocol_name())
        {
            return Err(WireError::InconsistentGroupProtocol.code());
        }
        if group_epoch > m.epoch && m.pending_revocation.is_empty() {
            // A new rebalance started: rejoin first (within the rebalance timeout).
            c.deadline = c.deadline.or(Some(
                now + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64),
            ));
            return Err(WireError::RebalanceInProgress.code());
        }
        c.deadline = None;
        m.session_deadline = now + Duration::from_millis(c.session_timeout_ms.max(0) as u64);
        let name = c.protocol_name().to_string();
        let version = c.version();
        let assigned = m.assigned.clone();
        Ok((name, encode_assignment(version, &self.named(&assigned))))
    }

    /// Heartbeat from a classic member: 0, or REBALANCE_IN_PROGRESS when it must rejoin.
    pub fn classic_heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        let id = match self.classic_member(member_id, instance_id) {
            Ok(id) => id.to_string(),
            Err(code) => return code,
        };
        let m = &self.members[&id];
        if generation != m.epoch {
            return WireError::IllegalGeneration.code();
        }
        let target = self.target.get(&id).cloned().unwrap_or_default();
        let missing = crate::coordinator::assignor::minus(&target, &m.assigned);
        let missing_free = !missing.is_empty()
            && self.members.values().filter(|o| o.id != id).all(|o| {
                crate::coordinator::assignor::intersect(&o.assigned, &missing).is_empty()
                    && crate::coordinator::assignor::intersect(&o.pending_revocation, &missing)
                        .is_empty()
            });
        let rejoin = m.epoch < self.group_epoch
            || !m.pending_revocation.is_empty()
            || (m.epoch == self.assignment_epoch && missing_free);
        let m = self.members.get_mut(&id).expect("member present");
        let c = m.classic.as_mut().expect("classic member");
        m.session_deadline = now + Duration::from_millis(c.session_timeout_ms.max(0) as u64);
        if rejoin {
            c.deadline = c.deadline.or(Some(
                now + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64),
            ));
            return WireError::RebalanceInProgress.code();
        }
        0
    }

    /// LeaveGroup from a classic member (by id, or by instance id for static members).
    pub fn classic_leave(&mut self, member_id: &str, instance_id: Option<&str>) -> i16 {
        let id = match instance_id {
            Some(i) => {
                let Some(m) = self
                    .members
                    .values()
                    .find(|m| m.instance_id.as_deref() == Some(i))
                else {
                    return WireError::UnknownMemberId.code();
                };
                if !member_id.is_empty() && m.id != member_id {
                    return WireError::FencedInstanceId.code();
                }
                m.id.clone()
            }
            None => member_id.to_string(),
        };
        if self.members.get(&id).is_none_or(|m| m.classic.is_none()) {
            return WireError::UnknownMemberId.code();
        }
        self.expire(&id);
        0
    }

    /// Whether `leaving` is the last member using the consumer protocol with classic members
    /// remaining (Kafka's `validateOnlineDowngradeWithFencedMember`, without the policy and
    /// size checks, which are the coordinator's).
    pub fn downgrade_candidate(&self, leaving: &str) -> bool {
        self.members.len() > 1
            && self.members.contains_key(leaving)
            && self
                .members
                .values()
                .all(|m| m.id == leaving || m.classic.is_some())
    }

    /// The members that stay when `leaving` goes and the group becomes classic again, each with
    /// its target assignment encoded in its own ConsumerProtocol version.
    pub fn downgraded_members(&self, leaving: &str) -> Vec<DowngradedMember> {
        self.members
            .values()
            .filter(|m| m.id != leaving)
            .filter_map(|m| {
                let c = m.classic.as_ref()?;
                let target = self.target.get(&m.id).cloned().unwrap_or_default();
                Some(DowngradedMember {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: c.session_timeout_ms,
                    protocols: c.protocols.clone(),
                    assignment: encode_assignment(c.version(), &self.named(&target)),
                })
            })
            .collect()
    }

    /// Whether any member uses the classic protocol.
    pub fn has_classic_members(&self) -> bool {
        self.members.values().any(|m| m.classic.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(version: i16, topics: &[&str], owned: &[(&str, &[i32])]) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i16(version);
        b.put_i32(topics.len() as i32);
        for t in topics {
            b.put_i16(t.len() as i16);
            b.extend_from_slice(t.as_bytes());
        }
        b.put_i32(-1);
        if version >= 1 {
            b.put_i32(owned.len() as i32);
            for (t, ps) in owned {
                b.put_i16(t.len() as i16);
                b.extend_from_slice(t.as_bytes());
                b.put_i32(ps.len() as i32);
                for p in *ps {
                    b.put_i32(*p);
                }
            }
        }
        if version >= 2 {
            b.put_i32(3);
        }
        if version >= 3 {
            b.put_i16(-1);
        }
        b
    }

    #[test]
    fn consumer_protocol_subscription_and_assignment() {
        let s = decode_subscription(&subscription(3, &["a", "b"], &[("a", &[1, 2])])).expect("v3");
        assert_eq!(s.topics, ["a", "b"]);
        assert_eq!(s.owned, [("a".to_string(), vec![1, 2])]);
        let s0 = decode_subscription(&subscription(0, &["x"], &[])).expect("v0");
        assert_eq!((s0.topics.len(), s0.owned.len()), (1, 0));
        let whole = subscription(1, &["a"], &[("a", &[0])]);
        for n in 0..whole.len() {
            assert!(decode_subscription(&whole[..n]).is_err(), "prefix {n}");
        }
        // A count the data cannot hold is refused before allocating.
        let mut bomb = vec![0, 0];
        bomb.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_subscription(&bomb).is_err());
        let parts = vec![("a".to_string(), vec![0, 3]), ("b".to_string(), vec![])];
        let enc = encode_assignment(1, &parts);
        assert_eq!(&enc[..2], &[0, 1]);
        assert_eq!(decode_assignment(&enc).expect("assignment"), parts);
    }

    fn topics() -> TopicsView {
        TopicsView {
            by_name: [("t".to_string(), (Uuid::from_u128(7), 4))]
                .into_iter()
                .collect(),
        }
    }

    fn classic_group() -> Group {
        use crate::coordinator::codec::{GroupValue, MemberValue};
        let mut g = Group::new("grp");
        g.load(
            GroupValue {
                protocol_type: "consumer".into(),
                generation: 5,
                protocol: Some("range".into()),
                leader: Some("a".into()),
                state_timestamp: 0,
                members: vec![MemberValue {
                    member_id: "a".into(),
                    instance_id: None,
                    client_id: "ca".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 10_000,
                    session_timeout_ms: 10_000,
                    subscription: subscription(0, &["t"], &[]),
                    assignment: encode_assignment(0, &[("t".into(), vec![0, 1, 2, 3])]).to_vec(),
                }],
            },
            Instant::now(),
        );
        g
    }

    fn replayed(records: &[crate::coordinator::codec::CgRecord]) -> ConsumerGroup {
        use crate::coordinator::codec::{decode_cg_value, decode_key, Key};
        let now = Instant::now();
        let mut g = ConsumerGroup::new();
        for (k, v) in records {
            let Key::Consumer { kind, .. } = decode_key(k).expect("key") else {
                panic!("not a consumer group key");
            };
            let v = v
                .as_ref()
                .map(|v| decode_cg_value(&kind, v).expect("value"));
            g.replay(kind, v, now);
        }
        g.finish_load(now, 45_000);
        g
    }

    #[test]
    fn upgraded_classic_member_revokes_by_rejoining_and_replays() {
        let limits = ConsumerLimits {
            session_timeout_ms: 45_000,
            max_size: 10,
        };
        let now = Instant::now();
        let mut c = ConsumerGroup::from_classic(&classic_group(), &topics()).expect("upgrade");
        assert_eq!((c.group_epoch, c.members["a"].epoch), (5, 5));
        assert_eq!(
            c.members["a"]
                .assigned
                .values()
                .map(|p| p.len())
                .sum::<usize>(),
            4
        );
        let mut log = c.take_records("grp");
        // A consumer-protocol member joins: it waits for a to give partitions up.
        let mut join = crate::coordinator::consumer_group::tests_support::hb("b", 0);
        join.owned = Some(Assignment::new());
        let b = c.heartbeat(join, &topics(), &limits, now).expect("join b");
        assert!(b.assignment.as_ref().is_none_or(|a| a.is_empty()));
        assert_eq!(
            c.classic_heartbeat("a", None, 5, now),
            WireError::RebalanceInProgress.code()
        );
        assert_eq!(
            c.classic_heartbeat("a", None, 4, now),
            WireError::IllegalGeneration.code()
        );
        assert_eq!(
            c.classic_heartbeat("b", None, b.member_epoch, now),
            WireError::UnknownMemberId.code(),
            "b is not a classic member"
        );
        log.extend(c.take_records("grp"));
        // a rejoins owning nothing (an eager client): new epoch, half the partitions.
        let j = c
            .classic_join(
                JoinRequest {
                    member_id: "a".into(),
                    instance_id: None,
                    client_id: "ca".into(),
                    client_host: "/127.0.0.1".into(),
                    session_timeout_ms: 10_000,
                    rebalance_timeout_ms: 10_000,
                    protocol_type: "consumer".into(),
                    protocols: vec![("range".into(), Bytes::from(subscription(1, &["t"], &[])))],
                    require_known_member_id: true,
                },
                &topics(),
                &limits,
                now,
            )
            .expect("rejoin");
        assert!(j.generation > 5);
        assert_eq!(j.protocol_name, "range");
        let (name, bytes) = c
            .classic_sync(
                "a",
                None,
                j.generation,
                Some("consumer"),
                Some("range"),
                now,
            )
            .expect("sync");
        assert_eq!(name, "range");
        let got = decode_assignment(&bytes).expect("assignment");
        assert_eq!(got.iter().map(|(_, p)| p.len()).sum::<usize>(), 2);
        assert_eq!(c.classic_heartbeat("a", None, j.generation, now), 0);
        log.extend(c.take_records("grp"));
        let b2 = c
            .heartbeat(
                crate::coordinator::consumer_group::tests_support::hb("b", b.member_epoch),
                &topics(),
                &limits,
                now,
            )
            .expect("hb b");
        let b_parts = b2.assignment.expect("b's partitions");
        assert_eq!(b_parts.values().map(|p| p.len()).sum::<usize>(), 2);
        log.extend(c.take_records("grp"));
        assert_eq!(c.state(), "Stable");

        // Replay keeps a classic member, with its protocols and session timeout.
        let r = replayed(&log);
        let ra = &r.members["a"];
        let meta = ra.classic.as_ref().expect("classic member after replay");
        assert_eq!(
            (meta.session_timeout_ms, meta.protocol_name()),
            (10_000, "range")
        );
        assert_eq!(
            (ra.epoch, &ra.assigned),
            (c.members["a"].epoch, &c.members["a"].assigned)
        );
        assert!(r.members["b"].classic.is_none());

        // b is the last consumer-protocol member: its leave downgrades, a keeps its target.
        assert!(c.downgrade_candidate("b"));
        assert!(!c.downgrade_candidate("a"));
        let down = c.downgraded_members("b");
        assert_eq!(down.len(), 1);
        assert_eq!(
            decode_assignment(&down[0].assignment).expect("a's target"),
            got
        );
        // A classic leave just removes the member.
        assert_eq!(c.classic_leave("a", None), 0);
        assert_eq!(
            c.classic_leave("a", None),
            WireError::UnknownMemberId.code()
        );
    }

    fn static_join(id: &str) -> JoinRequest {
        JoinRequest {
            member_id: id.into(),
            instance_id: Some("i1".into()),
            client_id: "cs".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from(subscription(0, &["t"], &[])))],
            require_known_member_id: true,
        }
    }

    #[test]
    fn static_classic_member_back_under_a_new_id_keeps_its_place() {
        let limits = ConsumerLimits {
            session_timeout_ms: 45_000,
            max_size: 10,
        };
        let now = Instant::now();
        let mut c = ConsumerGroup::new();
        let b = c
            .heartbeat(
                crate::coordinator::consumer_group::tests_support::hb("b", 0),
                &topics(),
                &limits,
                now,
            )
            .expect("b");
        let s1 = c
            .classic_join(static_join(""), &topics(), &limits, now)
            .expect("static join");
        let (_, first) = c
            .classic_sync(&s1.member_id, Some("i1"), s1.generation, None, None, now)
            .expect("sync");
        let epoch = c.group_epoch;
        // Someone else claiming the instance with another known id is fenced.
        assert_eq!(
            c.classic_join(static_join("other"), &topics(), &limits, now)
                .err()
                .map(|e| e.0),
            Some(WireError::FencedInstanceId.code())
        );
        let s2 = c
            .classic_join(static_join(""), &topics(), &limits, now)
            .expect("rejoin under a new id");
        assert_ne!(s2.member_id, s1.member_id);
        assert_eq!(s2.generation, s1.generation, "same epoch, no rebalance");
        assert_eq!(c.group_epoch, epoch);
        assert!(!c.members.contains_key(&s1.member_id));
        let (_, again) = c
            .classic_sync(&s2.member_id, Some("i1"), s2.generation, None, None, now)
            .expect("sync");
        assert_eq!(again, first);
        assert_eq!(
            c.classic_heartbeat(&s1.member_id, Some("i1"), s1.generation, now),
            WireError::FencedInstanceId.code()
        );
        let records = c.take_records("grp");
        let r = replayed(&records);
        assert_eq!(r.members.len(), 2, "b and the new incarnation");
        assert!(r.members.contains_key(&s2.member_id) && r.members.contains_key(&b.member_id));
    }
}
