//! The controller's decisions over the committed metadata, the part of Kafka's
//! `ReplicationControlManager` that reacts to brokers coming and going:
//!
//! - a broker the controller stops hearing from (`live` says no) is fenced;
//! - a fenced broker leaves every ISR it shares with a usable broker (registered, unfenced,
//!   live), and the partitions it led elect the first replica (in assignment order) that is in
//!   the ISR and usable; when no ISR member is usable the ISR stays as it is and the partition
//!   has no leader (-1) until one of them returns — never an unclean election;
//! - a fenced broker that is live again is unfenced once it is in no ISR with a usable broker
//!   (a restarted broker registers fenced, KIP-841: it first leaves the ISRs, as it may have
//!   lost records it had not flushed, then rejoins them by catching up).
//!
//! Every partition change carries the partition epoch it was decided on, so a change racing
//! with a leader's ISR update is dropped by [`super::state`] instead of undoing it; the next
//! round decides again on the new state.

use std::collections::BTreeSet;

use super::state::State;
use super::MetadataRecord;

/// The records that bring the metadata in line with which brokers are `live` (empty: nothing
/// to do).
pub(super) fn decide(state: &State, live: &dyn Fn(i32) -> bool) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for b in state.brokers.values() {
        if !b.fenced && !live(b.node) {
            out.push(MetadataRecord::BrokerFencing {
                node: b.node,
                fenced: true,
            });
        }
    }
    // Unfenced before the partitions are looked at, so brokers registering together (a
    // cluster starting, or restarting whole) keep their leaderships.
    let usable_before: BTreeSet<i32> = state
        .brokers
        .values()
        .filter(|b| !b.fenced && live(b.node))
        .map(|b| b.node)
        .collect();
    let mut blocked: BTreeSet<i32> = BTreeSet::new();
    for parts in state.partitions.values() {
        for p in parts {
            if p.isr.iter().any(|r| usable_before.contains(r)) {
                blocked.extend(p.isr.iter().filter(|r| !usable_before.contains(r)));
            }
        }
    }
    let mut usable = usable_before;
    for b in state.brokers.values() {
        if b.fenced && live(b.node) && !blocked.contains(&b.node) {
            out.push(MetadataRecord::BrokerFencing {
                node: b.node,
                fenced: false,
            });
            usable.insert(b.node);
        }
    }
    let mut ids: Vec<_> = state.partitions.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        for (i, p) in state.partitions[&id].iter().enumerate() {
            let mut isr: Vec<i32> = p
                .isr
                .iter()
                .copied()
                .filter(|r| usable.contains(r))
                .collect();
            if isr.is_empty() {
                // The last members stay: one of them must lead when it comes back.
                isr = p.isr.clone();
            }
            let leader = if usable.contains(&p.leader) && isr.contains(&p.leader) {
                p.leader
            } else {
                p.replicas
                    .iter()
                    .copied()
                    .find(|r| isr.contains(r) && usable.contains(r))
                    .unwrap_or(-1)
            };
            if isr != p.isr || leader != p.leader {
                out.push(MetadataRecord::PartitionChange {
                    id,
                    partition: i as i32,
                    leader: (leader != p.leader).then_some(leader),
                    isr: (isr != p.isr).then_some(isr),
                    replicas: None,
                    adding: None,
                    removing: None,
                    partition_epoch: Some(p.partition_epoch),
                });
            }
        }
    }
    // Reassignments whose target replicas are all in the ISR complete: the leaving replicas
    // go (a leaving leader hands over to the first target replica in the ISR).
    let changed: BTreeSet<(uuid::Uuid, i32)> = out
        .iter()
        .filter_map(|r| match r {
            MetadataRecord::PartitionChange { id, partition, .. } => Some((*id, *partition)),
            _ => None,
        })
        .collect();
    let mut ids: Vec<_> = state.partitions.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        for (i, p) in state.partitions[&id].iter().enumerate() {
            if (p.adding.is_empty() && p.removing.is_empty()) || changed.contains(&(id, i as i32)) {
                continue;
            }
            if let Some(rec) = complete_reassignment(&id, i as i32, p, &usable) {
                out.push(rec);
            }
        }
    }
    out
}

/// The change that ends `p`'s reassignment once every target replica is in its ISR.
fn complete_reassignment(
    id: &uuid::Uuid,
    partition: i32,
    p: &super::state::PartitionState,
    usable: &BTreeSet<i32>,
) -> Option<MetadataRecord> {
    let target: Vec<i32> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !p.removing.contains(r))
        .collect();
    if !target.iter().all(|r| p.isr.contains(r)) {
        return None;
    }
    let isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|r| target.contains(r))
        .collect();
    let leader = if target.contains(&p.leader) {
        p.leader
    } else {
        target
            .iter()
            .copied()
            .find(|r| isr.contains(r) && usable.contains(r))
            .unwrap_or(-1)
    };
    Some(MetadataRecord::PartitionChange {
        id: *id,
        partition,
        leader: (leader != p.leader).then_some(leader),
        isr: (isr != p.isr).then_some(isr),
        replicas: Some(target),
        adding: Some(Vec::new()),
        removing: Some(Vec::new()),
        partition_epoch: Some(p.partition_epoch),
    })
}

/// Why a reassignment request for one partition was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReassignError {
    UnknownPartition,
    /// A cancellation with none in progress.
    NoneInProgress,
}

/// AlterPartitionReassignments for one partition: move it to `target` (already validated:
/// registered brokers, none twice), or with None cancel the reassignment in progress. The
/// replicas become the target followed by the original ones leaving; the joining ones follow
/// the leader until the ISR has them all, and then [`decide`] completes the move. A target
/// the ISR already covers completes at once; the same replicas as now change nothing (None).
pub(super) fn reassign(
    state: &State,
    id: &uuid::Uuid,
    partition: i32,
    target: Option<&[i32]>,
    usable: &dyn Fn(i32) -> bool,
) -> Result<Option<MetadataRecord>, ReassignError> {
    let p = state
        .partitions
        .get(id)
        .and_then(|ps| ps.get(usize::try_from(partition).ok()?))
        .ok_or(ReassignError::UnknownPartition)?;
    let ongoing = !p.adding.is_empty() || !p.removing.is_empty();
    // The assignment before any reassignment in progress.
    let base: Vec<i32> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !p.adding.contains(r))
        .collect();
    let (replicas, adding, removing) = match target {
        None if !ongoing => return Err(ReassignError::NoneInProgress),
        None => (base.clone(), Vec::new(), Vec::new()),
        Some(t) => {
            if !ongoing && t == p.replicas.as_slice() {
                return Ok(None);
            }
            // Sorted, as Kafka keeps them.
            let mut removing: Vec<i32> = base.iter().copied().filter(|r| !t.contains(r)).collect();
            let mut adding: Vec<i32> = t.iter().copied().filter(|r| !base.contains(r)).collect();
            removing.sort_unstable();
            adding.sort_unstable();
            let mut replicas = t.to_vec();
            replicas.extend(&removing);
            (replicas, adding, removing)
        }
    };
    let mut isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|r| replicas.contains(r))
        .collect();
    if isr.is_empty() {
        isr = p.isr.clone();
    }
    let leader = if replicas.contains(&p.leader) {
        p.leader
    } else {
        replicas
            .iter()
            .copied()
            .find(|r| isr.contains(r) && usable(*r))
            .unwrap_or(-1)
    };
    let mut next = p.clone();
    next.replicas = replicas.clone();
    next.isr = isr.clone();
    next.adding = adding.clone();
    next.removing = removing.clone();
    next.leader = leader;
    // Nothing to wait for (no replica joins, or the ISR has them all): done now.
    let usable_set: BTreeSet<i32> = replicas.iter().copied().filter(|r| usable(*r)).collect();
    if !adding.is_empty() || !removing.is_empty() {
        if let Some(MetadataRecord::PartitionChange {
            leader: l,
            isr: i,
            replicas: r,
            ..
        }) = complete_reassignment(id, partition, &next, &usable_set)
        {
            return Ok(Some(MetadataRecord::PartitionChange {
                id: *id,
                partition,
                leader: l.or(Some(leader)).filter(|l| *l != p.leader),
                isr: i.or(Some(isr)).filter(|i| *i != p.isr),
                replicas: r,
                adding: Some(Vec::new()),
                removing: Some(Vec::new()),
                partition_epoch: Some(p.partition_epoch),
            }));
        }
    }
    Ok(Some(MetadataRecord::PartitionChange {
        id: *id,
        partition,
        leader: (leader != p.leader).then_some(leader),
        isr: (isr != p.isr).then_some(isr),
        replicas: Some(replicas),
        adding: Some(adding),
        removing: Some(removing),
        partition_epoch: Some(p.partition_epoch),
    }))
}

/// The kind of leader election ElectLeaders asks for (Kafka's `ElectionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// Make the first assigned replica the leader, if it is in the ISR and usable.
    Preferred,
    /// Only for a partition without a leader: an ISR member if one is usable, else any usable
    /// replica, which becomes the whole ISR (records only the old ISR had are lost).
    Unclean,
}

/// What an election came to for one partition.
#[derive(Debug, Clone, PartialEq)]
pub enum Elected {
    Change(MetadataRecord),
    /// ELECTION_NOT_NEEDED: the preferred replica leads already / the partition has a leader.
    NotNeeded,
    /// PREFERRED_LEADER_NOT_AVAILABLE / ELIGIBLE_LEADERS_NOT_AVAILABLE.
    NotAvailable,
}

/// The election of partition `partition` of topic `id` (None: no such partition), among the
/// brokers `usable` says may lead; the change is conditional on the partition epoch.
pub(super) fn elect(
    state: &State,
    id: &uuid::Uuid,
    partition: i32,
    election: Election,
    usable: &dyn Fn(i32) -> bool,
) -> Option<Elected> {
    let p = state
        .partitions
        .get(id)?
        .get(usize::try_from(partition).ok()?)?;
    let change = |leader: i32, isr: Option<Vec<i32>>| {
        Elected::Change(MetadataRecord::PartitionChange {
            id: *id,
            partition,
            leader: Some(leader),
            isr,
            replicas: None,
            adding: None,
            removing: None,
            partition_epoch: Some(p.partition_epoch),
        })
    };
    Some(match election {
        Election::Preferred => {
            let Some(&preferred) = p.replicas.first() else {
                return Some(Elected::NotAvailable);
            };
            if p.leader == preferred {
                Elected::NotNeeded
            } else if p.isr.contains(&preferred) && usable(preferred) {
                change(preferred, None)
            } else {
                Elected::NotAvailable
            }
        }
        Election::Unclean => {
            if p.leader >= 0 {
                Elected::NotNeeded
            } else if let Some(&r) = p.replicas.iter().find(|r| p.isr.contains(r) && usable(**r)) {
                change(r, None)
            } else if let Some(&r) = p.replicas.iter().find(|r| usable(**r)) {
                change(r, Some(vec![r]))
            } else {
                Elected::NotAvailable
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn register(s: &mut State, node: i32) {
        s.apply(&MetadataRecord::RegisterBroker {
            node,
            host: "h".into(),
            port: 9000 + node as u16,
            rack: None,
            listeners: Vec::new(),
        });
    }

    fn settle(s: &mut State, live: &dyn Fn(i32) -> bool) -> usize {
        let mut rounds = 0;
        loop {
            let recs = decide(s, live);
            if recs.is_empty() {
                return rounds;
            }
            for r in &recs {
                s.apply(r);
            }
            rounds += 1;
            assert!(rounds < 10, "decisions do not settle: {recs:?}");
        }
    }

    fn three_brokers_one_topic() -> (State, Uuid) {
        let mut s = State::default();
        for n in 1..=3 {
            register(&mut s, n);
        }
        let id = Uuid::new_v4();
        s.apply(&MetadataRecord::CreateTopic {
            name: "t".into(),
            id,
            partitions: 2,
            configs: Default::default(),
            replicas: vec![vec![1, 2, 3], vec![2, 3, 1]],
        });
        (s, id)
    }

    #[test]
    fn registered_brokers_are_unfenced_once_live() {
        let (mut s, _) = three_brokers_one_topic();
        assert!(s.brokers.values().all(|b| b.fenced), "registered fenced");
        settle(&mut s, &|_| true);
        assert!(s.brokers.values().all(|b| !b.fenced));
    }

    #[test]
    fn a_dead_leader_is_fenced_and_an_in_sync_follower_takes_over() {
        let (mut s, id) = three_brokers_one_topic();
        settle(&mut s, &|_| true);
        settle(&mut s, &|n| n != 1);
        assert!(s.brokers[&1].fenced);
        let p0 = &s.partitions[&id][0];
        assert_eq!((p0.leader, p0.leader_epoch), (2, 1));
        assert_eq!(p0.isr, vec![2, 3]);
        let p1 = &s.partitions[&id][1];
        assert_eq!((p1.leader, p1.leader_epoch), (2, 0), "not led by 1: kept");
        assert_eq!(p1.isr, vec![2, 3]);
        // Broker 1 comes back: unfenced, but not back in the ISR (its leader adds it).
        settle(&mut s, &|_| true);
        assert!(!s.brokers[&1].fenced);
        assert_eq!(s.partitions[&id][0].isr, vec![2, 3]);
    }

    #[test]
    fn with_no_live_isr_member_there_is_no_leader_and_the_last_one_leads_again() {
        let (mut s, id) = three_brokers_one_topic();
        settle(&mut s, &|_| true);
        settle(&mut s, &|n| n == 3);
        assert_eq!(s.partitions[&id][0].leader, 3);
        settle(&mut s, &|_| false);
        let p = &s.partitions[&id][0];
        assert_eq!((p.leader, p.isr.clone()), (-1, vec![3]));
        // 1 returns first: not in the ISR, so no unclean election.
        settle(&mut s, &|n| n == 1);
        assert_eq!(s.partitions[&id][0].leader, -1);
        settle(&mut s, &|n| n == 1 || n == 3);
        assert_eq!(s.partitions[&id][0].leader, 3);
    }

    #[test]
    fn a_restarted_broker_leaves_the_isrs_before_it_is_unfenced() {
        let (mut s, id) = three_brokers_one_topic();
        settle(&mut s, &|_| true);
        register(&mut s, 1); // a new incarnation of 1
        let recs = decide(&s, &|_| true);
        assert!(
            !recs.contains(&MetadataRecord::BrokerFencing {
                node: 1,
                fenced: false
            }),
            "not unfenced while in ISRs with others: {recs:?}"
        );
        settle(&mut s, &|_| true);
        assert!(!s.brokers[&1].fenced);
        assert_eq!(s.partitions[&id][0].leader, 2);
        assert_eq!(s.partitions[&id][0].isr, vec![2, 3]);
    }

    #[test]
    fn a_whole_cluster_restart_keeps_the_leaders() {
        let (mut s, id) = three_brokers_one_topic();
        settle(&mut s, &|_| true);
        for n in 1..=3 {
            register(&mut s, n);
        }
        settle(&mut s, &|_| true);
        let p = &s.partitions[&id][0];
        assert_eq!(
            (p.leader, p.leader_epoch, p.isr.clone()),
            (1, 0, vec![1, 2, 3])
        );
    }

    #[test]
    fn a_stale_change_is_dropped() {
        let (mut s, id) = three_brokers_one_topic();
        settle(&mut s, &|_| true);
        let recs = decide(&s, &|n| n != 1);
        // A leader's ISR change lands first.
        s.apply(&MetadataRecord::PartitionChange {
            id,
            partition: 0,
            leader: None,
            isr: Some(vec![1, 2]),
            replicas: None,
            adding: None,
            removing: None,
            partition_epoch: Some(0),
        });
        for r in &recs {
            s.apply(r);
        }
        assert_eq!(
            s.partitions[&id][0].leader, 1,
            "the controller's change was stale"
        );
        settle(&mut s, &|n| n != 1);
        assert_eq!(s.partitions[&id][0].leader, 2);
        assert_eq!(s.partitions[&id][0].isr, vec![2]);
    }

    #[test]
    fn preferred_and_unclean_elections() {
        let mut s = State::default();
        for n in 1..=3 {
            register(&mut s, n);
        }
        let id = Uuid::new_v4();
        s.apply(&MetadataRecord::CreateTopic {
            name: "t".into(),
            id,
            partitions: 1,
            configs: Default::default(),
            replicas: vec![vec![1, 2, 3]],
        });
        let all = |_: i32| true;
        assert_eq!(
            elect(&s, &id, 0, Election::Preferred, &all),
            Some(Elected::NotNeeded)
        );
        assert_eq!(elect(&s, &id, 1, Election::Preferred, &all), None);
        // Leadership moved to 2 (1 dropped out, came back into the ISR).
        s.apply(&MetadataRecord::PartitionChange {
            id,
            partition: 0,
            leader: Some(2),
            isr: Some(vec![2, 3]),
            replicas: None,
            adding: None,
            removing: None,
            partition_epoch: None,
        });
        assert_eq!(
            elect(&s, &id, 0, Election::Preferred, &all),
            Some(Elected::NotAvailable),
            "the preferred replica is not in the ISR"
        );
        s.apply(&MetadataRecord::PartitionChange {
            id,
            partition: 0,
            leader: None,
            isr: Some(vec![2, 3, 1]),
            replicas: None,
            adding: None,
            removing: None,
            partition_epoch: None,
        });
        assert_eq!(
            elect(&s, &id, 0, Election::Preferred, &|n| n != 1),
            Some(Elected::NotAvailable),
            "the preferred replica is not usable"
        );
        let Some(Elected::Change(rec)) = elect(&s, &id, 0, Election::Preferred, &all) else {
            panic!("preferred election");
        };
        let epoch = s.partitions[&id][0].partition_epoch;
        s.apply(&rec);
        assert_eq!(s.partitions[&id][0].leader, 1);
        // Conditional: a second application of the same decision changes nothing.
        s.apply(&rec);
        assert_eq!(s.partitions[&id][0].partition_epoch, epoch + 1);
        assert_eq!(
            elect(&s, &id, 0, Election::Unclean, &all),
            Some(Elected::NotNeeded)
        );
        // No leader, the ISR (1) gone: unclean picks a usable replica, alone in the ISR.
        s.apply(&MetadataRecord::PartitionChange {
            id,
            partition: 0,
            leader: Some(-1),
            isr: Some(vec![1]),
            replicas: None,
            adding: None,
            removing: None,
            partition_epoch: None,
        });
        let Some(Elected::Change(rec)) = elect(&s, &id, 0, Election::Unclean, &|n| n != 1) else {
            panic!("unclean election");
        };
        s.apply(&rec);
        assert_eq!(s.partitions[&id][0].leader, 2);
        assert_eq!(s.partitions[&id][0].isr, vec![2]);
        assert_eq!(
            elect(&s, &id, 0, Election::Unclean, &|_| false),
            Some(Elected::NotNeeded)
        );
    }

    #[test]
    fn reassignment_starts_completes_when_the_isr_has_the_target_and_cancels_back() {
        let mut s = State::default();
        for n in 1..=4 {
            register(&mut s, n);
        }
        let id = Uuid::new_v4();
        s.apply(&MetadataRecord::CreateTopic {
            name: "t".into(),
            id,
            partitions: 1,
            configs: Default::default(),
            replicas: vec![vec![1, 2, 3]],
        });
        let all = |_: i32| true;
        let usable = |s: &State| -> Vec<MetadataRecord> { decide(s, &|_| true) };
        for r in usable(&s) {
            s.apply(&r); // the registered brokers are unfenced
        }
        assert_eq!(
            reassign(&s, &id, 0, None, &all),
            Err(ReassignError::NoneInProgress)
        );
        assert_eq!(
            reassign(&s, &id, 1, Some(&[1]), &all),
            Err(ReassignError::UnknownPartition)
        );
        assert_eq!(reassign(&s, &id, 0, Some(&[1, 2, 3]), &all), Ok(None));
        // [1, 2, 3] -> [4, 2, 3]: 4 joins, 1 (the leader) leaves once 4 is in the ISR.
        let rec = reassign(&s, &id, 0, Some(&[4, 2, 3]), &all)
            .expect("accepted")
            .expect("a change");
        s.apply(&rec);
        let p = &s.partitions[&id][0];
        assert_eq!(p.replicas, [4, 2, 3, 1]);
        assert_eq!((p.adding.clone(), p.removing.clone()), (vec![4], vec![1]));
        assert_eq!(p.leader, 1, "the leader stays until the move completes");
        assert!(usable(&s).is_empty(), "4 is not in the ISR yet");
        s.apply(&MetadataRecord::PartitionChange {
            id,
            partition: 0,
            leader: None,
            isr: Some(vec![1, 2, 3, 4]),
            replicas: None,
            adding: None,
            removing: None,
            partition_epoch: None,
        });
        for r in usable(&s) {
            s.apply(&r);
        }
        let p = &s.partitions[&id][0];
        assert_eq!(p.replicas, [4, 2, 3]);
        assert_eq!(p.isr, [2, 3, 4]);
        assert!(p.adding.is_empty() && p.removing.is_empty());
        assert_eq!(
            p.leader, 4,
            "the first target replica in the ISR takes over"
        );
        // Start another move and cancel it: back to the same brokers (in Kafka's revert order:
        // the replicas without the joining ones).
        let rec = reassign(&s, &id, 0, Some(&[1, 2, 3]), &all)
            .expect("accepted")
            .expect("a change");
        s.apply(&rec);
        assert_eq!(s.partitions[&id][0].replicas, [1, 2, 3, 4]);
        let rec = reassign(&s, &id, 0, None, &all)
            .expect("cancelled")
            .expect("a change");
        s.apply(&rec);
        let p = &s.partitions[&id][0];
        assert_eq!(p.replicas, [2, 3, 4]);
        assert!(p.adding.is_empty() && p.removing.is_empty());
        // A target the ISR already covers (a shrink) completes at once.
        let rec = reassign(&s, &id, 0, Some(&[2, 3]), &all)
            .expect("accepted")
            .expect("a change");
        s.apply(&rec);
        let p = &s.partitions[&id][0];
        assert_eq!(
            (p.replicas.clone(), p.isr.clone()),
            (vec![2, 3], vec![2, 3])
        );
        assert_eq!(p.leader, 2);
        assert!(p.adding.is_empty() && p.removing.is_empty());
    }
}
