//! The streams group's task assignor, after Kafka 4.4's `StickyTaskAssignor` (name `sticky`):
//!
//! - Active tasks: a task stays with the member that had it (active, else standby) while that
//!   member is under its quota (`ceil(tasks / members)`); the rest go to the least-loaded
//!   process (tasks per member of the process, then process id) and there to its least-loaded
//!   member. So load is balanced per process first, as Streams threads of one client share it.
//! - Standby tasks (`num_standby_replicas` per active task): never on a process that has the
//!   task already (active or another standby); a previous standby owner under its total quota
//!   keeps it, else the least-loaded eligible process gets it. A replica no eligible process
//!   can take is left out, as in Kafka.
//! - No warm-up tasks (Kafka's sticky assignor assigns none either).
//!
//! Deterministic: members and tasks are visited in sorted order.

use std::collections::{BTreeMap, BTreeSet};

/// (subtopology id, partition).
pub type TaskId = (String, i32);

/// What a member has and where it runs.
#[derive(Debug, Clone, Default)]
pub struct MemberSpec {
    pub process_id: String,
    pub active: BTreeSet<TaskId>,
    pub standby: BTreeSet<TaskId>,
}

/// One member's tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tasks {
    pub active: BTreeSet<TaskId>,
    pub standby: BTreeSet<TaskId>,
    pub warmup: BTreeSet<TaskId>,
}

struct State<'a> {
    members: &'a BTreeMap<String, MemberSpec>,
    /// Members per process.
    processes: BTreeMap<&'a str, Vec<&'a str>>,
    out: BTreeMap<&'a str, Tasks>,
    /// Tasks (any kind) each process holds.
    process_tasks: BTreeMap<&'a str, BTreeSet<TaskId>>,
}

impl<'a> State<'a> {
    fn count(&self, member: &str) -> usize {
        self.out
            .get(member)
            .map_or(0, |t| t.active.len() + t.standby.len())
    }

    /// A process's load as (tasks, members): compared as tasks/members by cross-multiplying.
    fn process_load(&self, process: &str) -> (usize, usize) {
        let members = self.processes[process].len().max(1);
        let tasks = self.process_tasks.get(process).map_or(0, BTreeSet::len);
        (tasks, members)
    }

    fn add(&mut self, member: &'a str, task: &TaskId, active: bool) {
        let t = self.out.entry(member).or_default();
        if active {
            t.active.insert(task.clone());
        } else {
            t.standby.insert(task.clone());
        }
        let process = self.members[member].process_id.as_str();
        self.process_tasks
            .entry(process)
            .or_default()
            .insert(task.clone());
    }

    /// The process with the least load among `eligible`, then its least-loaded member.
    fn least_loaded(&self, eligible: impl Iterator<Item = &'a str>) -> Option<&'a str> {
        let process = eligible.min_by(|a, b| {
            let (ta, ma) = self.process_load(a);
            let (tb, mb) = self.process_load(b);
            (ta * mb).cmp(&(tb * ma)).then_with(|| a.cmp(b))
        })?;
        self.processes[process]
            .iter()
            .copied()
            .min_by(|a, b| self.count(a).cmp(&self.count(b)).then_with(|| a.cmp(b)))
    }
}

/// Assigns `tasks` (each subtopology's task count) to `members`.
pub fn assign(
    members: &BTreeMap<String, MemberSpec>,
    tasks: &BTreeMap<String, i32>,
    num_standby_replicas: usize,
) -> BTreeMap<String, Tasks> {
    let mut state = State {
        members,
        processes: BTreeMap::new(),
        out: BTreeMap::new(),
        process_tasks: BTreeMap::new(),
    };
    for (id, m) in members {
        state
            .processes
            .entry(m.process_id.as_str())
            .or_default()
            .push(id.as_str());
        state.out.insert(id.as_str(), Tasks::default());
    }
    let all: Vec<TaskId> = tasks
        .iter()
        .flat_map(|(s, &n)| (0..n.max(0)).map(move |p| (s.clone(), p)))
        .collect();
    if members.is_empty() {
        return BTreeMap::new();
    }
    let active_quota = all.len().div_ceil(members.len());

    // Active: previous active owner, then previous standby owner, under quota.
    let mut left: Vec<TaskId> = Vec::new();
    for task in &all {
        let owner = |standby: bool| {
            members
                .iter()
                .filter(|(_, m)| {
                    if standby {
                        m.standby.contains(task)
                    } else {
                        m.active.contains(task)
                    }
                })
                .map(|(id, _)| id.as_str())
                .filter(|id| state.out[id].active.len() < active_quota)
                .min_by(|a, b| {
                    state.out[a]
                        .active
                        .len()
                        .cmp(&state.out[b].active.len())
                        .then_with(|| a.cmp(b))
                })
        };
        match owner(false).or_else(|| owner(true)) {
            Some(m) => state.add(m, task, true),
            None => left.push(task.clone()),
        }
    }
    for task in &left {
        let processes: Vec<&str> = state.processes.keys().copied().collect();
        if let Some(m) = state.least_loaded(processes.into_iter()) {
            state.add(m, task, true);
        }
    }

    // Standby replicas.
    let total_quota = (all.len() * (1 + num_standby_replicas)).div_ceil(members.len());
    for task in &all {
        for _ in 0..num_standby_replicas {
            let has = |state: &State<'_>, p: &str| {
                state.process_tasks.get(p).is_some_and(|t| t.contains(task))
            };
            let previous = members
                .iter()
                .filter(|(_, m)| m.standby.contains(task))
                .map(|(id, _)| id.as_str())
                .filter(|id| !has(&state, &members[*id].process_id))
                .filter(|id| state.count(id) < total_quota)
                .min_by(|a, b| state.count(a).cmp(&state.count(b)).then_with(|| a.cmp(b)));
            let chosen = previous.or_else(|| {
                let eligible: Vec<&str> = state
                    .processes
                    .keys()
                    .copied()
                    .filter(|p| !has(&state, p))
                    .collect();
                state.least_loaded(eligible.into_iter())
            });
            match chosen {
                Some(m) => state.add(m, task, false),
                None => break,
            }
        }
    }
    state
        .out
        .into_iter()
        .map(|(id, t)| (id.to_string(), t))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(s: &str, p: i32) -> TaskId {
        (s.to_string(), p)
    }

    fn members(spec: &[(&str, &str)]) -> BTreeMap<String, MemberSpec> {
        spec.iter()
            .map(|(id, process)| {
                (
                    id.to_string(),
                    MemberSpec {
                        process_id: process.to_string(),
                        ..MemberSpec::default()
                    },
                )
            })
            .collect()
    }

    fn counts(out: &BTreeMap<String, Tasks>) -> Vec<(usize, usize)> {
        out.values()
            .map(|t| (t.active.len(), t.standby.len()))
            .collect()
    }

    fn every_task_once(out: &BTreeMap<String, Tasks>, tasks: &BTreeMap<String, i32>) {
        let mut seen = BTreeSet::new();
        for t in out.values() {
            for a in &t.active {
                assert!(seen.insert(a.clone()), "{a:?} active twice");
            }
        }
        let want: usize = tasks.values().map(|&n| n as usize).sum();
        assert_eq!(seen.len(), want);
    }

    #[test]
    fn tasks_are_balanced_over_members_and_processes() {
        let tasks = BTreeMap::from([("0".to_string(), 6), ("1".to_string(), 6)]);
        let m = members(&[("a", "p1"), ("b", "p2"), ("c", "p3")]);
        let out = assign(&m, &tasks, 0);
        every_task_once(&out, &tasks);
        assert_eq!(counts(&out), [(4, 0), (4, 0), (4, 0)]);
        // Two members on one process and one alone: the process with two members gets two
        // thirds of the tasks, each member a third.
        let m = members(&[("a", "p1"), ("b", "p1"), ("c", "p2")]);
        let out = assign(&m, &tasks, 0);
        every_task_once(&out, &tasks);
        assert_eq!(counts(&out), [(4, 0), (4, 0), (4, 0)]);
    }

    #[test]
    fn a_new_member_takes_tasks_only_from_the_overloaded_ones() {
        let tasks = BTreeMap::from([("0".to_string(), 8)]);
        let two = members(&[("a", "p1"), ("b", "p2")]);
        let first = assign(&two, &tasks, 0);
        assert_eq!(counts(&first), [(4, 0), (4, 0)]);
        let mut three = members(&[("a", "p1"), ("b", "p2"), ("c", "p3")]);
        for (id, t) in &first {
            three.get_mut(id).unwrap().active = t.active.clone();
        }
        let second = assign(&three, &tasks, 0);
        every_task_once(&second, &tasks);
        assert_eq!(counts(&second), [(3, 0), (3, 0), (2, 0)]);
        // a and b kept three of their four tasks each: nothing moved between them.
        for id in ["a", "b"] {
            assert!(second[id].active.is_subset(&first[id].active), "{id}");
        }
        // And when c leaves again, its tasks go back without moving the others'.
        let mut back = members(&[("a", "p1"), ("b", "p2")]);
        for id in ["a", "b"] {
            back.get_mut(id).unwrap().active = second[id].active.clone();
        }
        let third = assign(&back, &tasks, 0);
        every_task_once(&third, &tasks);
        for id in ["a", "b"] {
            assert!(second[id].active.is_subset(&third[id].active), "{id}");
        }
    }

    #[test]
    fn standbys_never_share_a_process_with_their_active_task() {
        let tasks = BTreeMap::from([("0".to_string(), 4)]);
        let m = members(&[("a", "p1"), ("b", "p1"), ("c", "p2"), ("d", "p3")]);
        let out = assign(&m, &tasks, 1);
        every_task_once(&out, &tasks);
        let process = |id: &str| m[id].process_id.clone();
        for t in 0..4 {
            let task = task("0", t);
            let active: Vec<&String> = out
                .iter()
                .filter(|(_, x)| x.active.contains(&task))
                .map(|(id, _)| id)
                .collect();
            let standby: Vec<&String> = out
                .iter()
                .filter(|(_, x)| x.standby.contains(&task))
                .map(|(id, _)| id)
                .collect();
            assert_eq!((active.len(), standby.len()), (1, 1), "{task:?}");
            assert_ne!(process(active[0]), process(standby[0]), "{task:?}");
        }
        // One process only: no standby can be placed.
        let alone = members(&[("a", "p1"), ("b", "p1")]);
        let out = assign(&alone, &tasks, 1);
        assert!(out.values().all(|t| t.standby.is_empty()));
        every_task_once(&out, &tasks);
    }

    #[test]
    fn a_previous_standby_owner_is_preferred_for_the_active_task_and_keeps_its_standby() {
        let tasks = BTreeMap::from([("0".to_string(), 2)]);
        let mut m = members(&[("a", "p1"), ("b", "p2"), ("c", "p3")]);
        // b had task 0_0 as standby; its active owner is gone.
        m.get_mut("b").unwrap().standby.insert(task("0", 0));
        // c had 0_1 as standby while a has it active.
        m.get_mut("a").unwrap().active.insert(task("0", 1));
        m.get_mut("c").unwrap().standby.insert(task("0", 1));
        let out = assign(&m, &tasks, 1);
        assert!(out["b"].active.contains(&task("0", 0)));
        assert!(out["a"].active.contains(&task("0", 1)));
        assert!(out["c"].standby.contains(&task("0", 1)));
    }
}
