//! Where a new partition's replicas go: spread over the registered brokers so that leaders
//! (first replicas) and replicas are balanced, and, when brokers have racks (`broker.rack`),
//! each partition's replicas are on as many different racks as possible — Kafka's rack-aware
//! assignment: brokers are ordered alternating between racks, the first replica of partition
//! `p` is the `(start + p)`-th of them, and the others follow with a shift that grows every
//! round of `n` partitions, skipping a broker whose rack (or which itself) the partition
//! already has until every rack is used. `start` and the initial shift are the caller's (Kafka
//! draws them at random so that topics do not all start on the same broker).

/// A broker as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub node: i32,
    pub rack: Option<String>,
}

/// Kafka's InvalidReplicationFactorException message for `rf` over `available` brokers.
pub fn too_few_brokers(rf: i16, available: usize) -> String {
    format!(
        "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} \
         cannot be reached because only {available} broker(s) are registered or some brokers \
         have all their log directories cordoned."
    )
}

/// The replicas of `partitions` new partitions with `rf` replicas each, the first of each list
/// its leader. `start` picks the first partition's leader, `shift` the initial distance to its
/// second replica.
pub fn place(
    brokers: &[Candidate],
    partitions: i32,
    rf: i16,
    start: usize,
    shift: usize,
) -> Result<Vec<Vec<i32>>, String> {
    if rf <= 0 {
        return Err(format!(
            "Invalid replication factor {rf}: the replication factor must be positive."
        ));
    }
    let rf = rf as usize;
    if rf > brokers.len() {
        return Err(too_few_brokers(rf as i16, brokers.len()));
    }
    let ordered = rack_alternating(brokers);
    let n = ordered.len();
    let racks = {
        let mut r: Vec<&Option<String>> = ordered.iter().map(|b| &b.rack).collect();
        r.sort();
        r.dedup();
        r.len()
    };
    let mut out = Vec::with_capacity(partitions.max(0) as usize);
    let mut shift = shift % n.max(1);
    for p in 0..partitions.max(0) as usize {
        if p > 0 && p % n == 0 {
            shift += 1;
        }
        let first = (start + p) % n;
        let mut replicas = vec![ordered[first].node];
        let mut racks_used = vec![&ordered[first].rack];
        let mut k = 0usize;
        // Walk the ring from the shifted position; a broker is taken when new, and when its
        // rack is new or every rack already has a replica of this partition.
        while replicas.len() < rf {
            let idx = (first + 1 + (shift + k) % (n - 1).max(1)) % n;
            k += 1;
            let b = &ordered[idx];
            let rack_ok = racks_used.len() >= racks || !racks_used.contains(&&b.rack);
            if !replicas.contains(&b.node) && rack_ok {
                replicas.push(b.node);
                racks_used.push(&b.rack);
            } else if k > 4 * n {
                // Every candidate tried under the rack rule: take the next new broker.
                if let Some(b) = ordered.iter().find(|b| !replicas.contains(&b.node)) {
                    replicas.push(b.node);
                    racks_used.push(&b.rack);
                }
            }
        }
        out.push(replicas);
    }
    Ok(out)
}

/// Brokers ordered by node id within each rack, then interleaved rack by rack
/// (`a1, b1, c1, a2, b2, ...`), so consecutive brokers are on different racks.
fn rack_alternating(brokers: &[Candidate]) -> Vec<Candidate> {
    let mut by_rack: std::collections::BTreeMap<Option<String>, Vec<Candidate>> =
        std::collections::BTreeMap::new();
    for b in brokers {
        by_rack.entry(b.rack.clone()).or_default().push(b.clone());
    }
    for list in by_rack.values_mut() {
        list.sort_by_key(|b| b.node);
    }
    let mut out = Vec::with_capacity(brokers.len());
    let mut round = 0;
    while out.len() < brokers.len() {
        for list in by_rack.values() {
            if let Some(b) = list.get(round) {
                out.push(b.clone());
            }
        }
        round += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    fn brokers(racks: &[(i32, Option<&str>)]) -> Vec<Candidate> {
        racks
            .iter()
            .map(|(n, r)| Candidate {
                node: *n,
                rack: r.map(String::from),
            })
            .collect()
    }

    #[test]
    fn one_node_holds_every_partition() {
        let one = brokers(&[(1, None)]);
        assert_eq!(place(&one, 3, 1, 0, 0), Ok(vec![vec![1], vec![1], vec![1]]));
        assert_eq!(
            place(&one, 1, 3, 0, 0),
            Err("Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 1 broker(s) are registered or some brokers have all their log directories cordoned.".into())
        );
        assert!(place(&one, 1, 0, 0, 0).is_err());
    }

    #[test]
    fn leaders_and_replicas_are_balanced_and_distinct() {
        let six = brokers(&[
            (1, None),
            (2, None),
            (3, None),
            (4, None),
            (5, None),
            (6, None),
        ]);
        for start in 0..6 {
            for shift in 0..6 {
                let a = place(&six, 12, 3, start, shift).expect("place");
                let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
                let mut replicas: BTreeMap<i32, usize> = BTreeMap::new();
                for r in &a {
                    assert_eq!(
                        r.iter().collect::<BTreeSet<_>>().len(),
                        3,
                        "distinct: {r:?}"
                    );
                    *leaders.entry(r[0]).or_default() += 1;
                    for n in r {
                        *replicas.entry(*n).or_default() += 1;
                    }
                }
                assert!(leaders.values().all(|c| *c == 2), "{leaders:?}");
                assert!(replicas.values().all(|c| *c == 6), "{replicas:?}");
            }
        }
    }

    #[test]
    fn replicas_span_racks() {
        let racked = brokers(&[
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("b")),
            (4, Some("b")),
            (5, Some("c")),
            (6, Some("c")),
        ]);
        for start in 0..6 {
            let a = place(&racked, 9, 3, start, start).expect("place");
            for r in &a {
                let racks: BTreeSet<_> = r
                    .iter()
                    .map(|n| {
                        racked
                            .iter()
                            .find(|b| b.node == *n)
                            .and_then(|b| b.rack.clone())
                    })
                    .collect();
                assert_eq!(racks.len(), 3, "one replica per rack: {r:?}");
            }
        }
        // More replicas than racks: every rack used, no broker twice.
        let two_racks = brokers(&[
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("b")),
            (4, Some("b")),
        ]);
        let a = place(&two_racks, 4, 3, 1, 2).expect("place");
        for r in &a {
            assert_eq!(r.iter().collect::<BTreeSet<_>>().len(), 3, "{r:?}");
        }
    }
}
