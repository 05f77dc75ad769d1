//! Server-side partition assignors of the KIP-848 consumer protocol.
//!
//! - `uniform` (default): spreads all subscribed partitions as evenly as the subscriptions
//!   allow, keeping a partition with its current owner while that owner is under its share.
//! - `range`: per topic, contiguous ranges of partitions to the subscribed members in member-id
//!   order (co-partitioned topics line up), like the classic RangeAssignor.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Partitions per topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

pub struct MemberSpec<'a> {
    pub member_id: &'a str,
    /// Topic ids this member subscribes to (that exist).
    pub topics: BTreeSet<Uuid>,
    pub current: &'a Assignment,
}

pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// Computes the target assignment. `partitions` holds each existing topic's partition count.
pub fn assign(
    name: &str,
    members: &[MemberSpec<'_>],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    match name {
        "range" => range(members, partitions),
        _ => uniform(members, partitions),
    }
}

fn range(
    members: &[MemberSpec<'_>],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.to_string(), Assignment::new()))
        .collect();
    for (&topic, &count) in partitions {
        let mut subs: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(&topic))
            .map(|m| m.member_id)
            .collect();
        subs.sort_unstable();
        if subs.is_empty() {
            continue;
        }
        let n = subs.len() as i32;
        let (per, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, m) in subs.iter().enumerate() {
            let take = per + if (i as i32) < extra { 1 } else { 0 };
            if take > 0 {
                let set: BTreeSet<i32> = (next..next + take).collect();
                out.entry(m.to_string()).or_default().insert(topic, set);
            }
            next += take;
        }
    }
    out
}

fn uniform(
    members: &[MemberSpec<'_>],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.to_string(), Assignment::new()))
        .collect();
    let mut counts: BTreeMap<&str, usize> = members.iter().map(|m| (m.member_id, 0usize)).collect();
    // Each member's fair share of what it can consume.
    let total_for = |m: &MemberSpec<'_>| -> usize {
        m.topics
            .iter()
            .map(|t| partitions.get(t).copied().unwrap_or(0).max(0) as usize)
            .sum()
    };
    let all: Vec<(Uuid, i32)> = partitions
        .iter()
        .flat_map(|(&t, &n)| (0..n).map(move |p| (t, p)))
        .collect();
    let quota = |m: &MemberSpec<'_>| -> usize {
        let eligible = members
            .iter()
            .filter(|o| o.topics.iter().any(|t| m.topics.contains(t)))
            .count()
            .max(1);
        total_for(m).div_ceil(eligible)
    };
    let quotas: BTreeMap<&str, usize> = members.iter().map(|m| (m.member_id, quota(m))).collect();
    let mut unassigned = Vec::new();
    // Stickiness first: keep partitions with owners that still subscribe and are under quota.
    for &(t, p) in &all {
        let owner = members
            .iter()
            .find(|m| m.topics.contains(&t) && m.current.get(&t).is_some_and(|s| s.contains(&p)));
        match owner {
            Some(m) if counts[m.member_id] < quotas[m.member_id] => {
                *counts.get_mut(m.member_id).expect("member") += 1;
                out.get_mut(m.member_id)
                    .expect("member")
                    .entry(t)
                    .or_default()
                    .insert(p);
            }
            _ => unassigned.push((t, p)),
        }
    }
    for (t, p) in unassigned {
        let best = members
            .iter()
            .filter(|m| m.topics.contains(&t))
            .min_by(|a, b| {
                counts[a.member_id]
                    .cmp(&counts[b.member_id])
                    .then(a.member_id.cmp(b.member_id))
            });
        if let Some(m) = best {
            *counts.get_mut(m.member_id).expect("member") += 1;
            out.get_mut(m.member_id)
                .expect("member")
                .entry(t)
                .or_default()
                .insert(p);
        }
    }
    out
}

/// Number of partitions in an assignment.
pub fn size(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

/// `a` minus `b`.
pub fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        let rest: BTreeSet<i32> = match b.get(t) {
            Some(bs) => ps.difference(bs).copied().collect(),
            None => ps.clone(),
        };
        if !rest.is_empty() {
            out.insert(*t, rest);
        }
    }
    out
}

/// `a` intersected with `b`.
pub fn intersect(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        if let Some(bs) = b.get(t) {
            let both: BTreeSet<i32> = ps.intersection(bs).copied().collect();
            if !both.is_empty() {
                out.insert(*t, both);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_balances_and_sticks() {
        let t = Uuid::from_u128(1);
        let parts: BTreeMap<Uuid, i32> = [(t, 6)].into_iter().collect();
        let empty = Assignment::new();
        let subs: BTreeSet<Uuid> = [t].into_iter().collect();
        let ms = vec![
            MemberSpec {
                member_id: "a",
                topics: subs.clone(),
                current: &empty,
            },
            MemberSpec {
                member_id: "b",
                topics: subs.clone(),
                current: &empty,
            },
            MemberSpec {
                member_id: "c",
                topics: subs.clone(),
                current: &empty,
            },
        ];
        let out = assign("uniform", &ms, &parts);
        assert!(out.values().all(|a| size(a) == 2));
        // c leaves: a and b keep theirs and share c's.
        let (a_cur, b_cur) = (out["a"].clone(), out["b"].clone());
        let ms2 = vec![
            MemberSpec {
                member_id: "a",
                topics: subs.clone(),
                current: &a_cur,
            },
            MemberSpec {
                member_id: "b",
                topics: subs,
                current: &b_cur,
            },
        ];
        let out2 = assign("uniform", &ms2, &parts);
        assert_eq!(size(&out2["a"]), 3);
        assert_eq!(size(&out2["b"]), 3);
        assert!(
            minus(&a_cur, &out2["a"]).is_empty(),
            "a kept its partitions"
        );
    }

    #[test]
    fn range_contiguous() {
        let t = Uuid::from_u128(1);
        let parts: BTreeMap<Uuid, i32> = [(t, 5)].into_iter().collect();
        let empty = Assignment::new();
        let subs: BTreeSet<Uuid> = [t].into_iter().collect();
        let ms = vec![
            MemberSpec {
                member_id: "b",
                topics: subs.clone(),
                current: &empty,
            },
            MemberSpec {
                member_id: "a",
                topics: subs,
                current: &empty,
            },
        ];
        let out = assign("range", &ms, &parts);
        assert_eq!(out["a"][&t], [0, 1, 2].into_iter().collect());
        assert_eq!(out["b"][&t], [3, 4].into_iter().collect());
    }
}
