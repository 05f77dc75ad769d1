//! A streams group's topology checked against the cluster's topics (Kafka 4.4's
//! `InternalTopicManager.configureTopics`): how many tasks each subtopology has, how many
//! partitions each repartition and changelog topic needs, which internal topics the broker
//! must create, and, when the topology cannot run, the heartbeat status that says why.
//!
//! - Every source topic must exist and every source regex must match a topic, else
//!   MISSING_SOURCE_TOPICS.
//! - A repartition topic without a partition count gets the largest task count of the
//!   subtopologies that write to it (resolved until nothing changes; a topic never written to,
//!   or a loop, is INCORRECTLY_PARTITIONED_TOPICS).
//! - Copartition groups: their source topics must have one partition count
//!   (INCORRECTLY_PARTITIONED_TOPICS otherwise); a repartition topic in the group without a
//!   count takes it, one with another count is refused.
//! - A subtopology has as many tasks as its largest input; each changelog topic has one
//!   partition per task.
//! - An internal topic that exists with another partition count is
//!   INCORRECTLY_PARTITIONED_TOPICS; missing ones are listed for creation with
//!   MISSING_INTERNAL_TOPICS until they exist.

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::streams::{Subtopology, TopicInfo, Topology};

/// `StreamsGroupHeartbeatResponse.Status` codes (Kafka's `Status` enum).
pub mod status {
    pub const STALE_TOPOLOGY: i8 = 0;
    pub const MISSING_SOURCE_TOPICS: i8 = 1;
    pub const INCORRECTLY_PARTITIONED_TOPICS: i8 = 2;
    pub const MISSING_INTERNAL_TOPICS: i8 = 3;
    pub const SHUTDOWN_APPLICATION: i8 = 4;
    pub const ASSIGNMENT_DELAYED: i8 = 5;
}

/// An internal topic the broker creates for the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTopic {
    pub name: String,
    pub partitions: i32,
    /// None: the broker's default replication factor.
    pub replication_factor: Option<i16>,
    pub configs: BTreeMap<String, String>,
}

/// One subtopology ready to be assigned: tasks are partitions `0..tasks` of its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredSubtopology {
    pub tasks: i32,
    /// Source topics (regexes resolved) and repartition source topics, sorted.
    pub input_topics: BTreeSet<String>,
    pub changelog_topics: BTreeMap<String, i32>,
}

/// The outcome of [`configure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredTopology {
    pub epoch: i32,
    /// By subtopology id; empty when `error` is set.
    pub subtopologies: BTreeMap<String, ConfiguredSubtopology>,
    /// Internal topics that do not exist yet.
    pub to_create: Vec<InternalTopic>,
    /// (status code, detail) when the topology cannot be assigned.
    pub error: Option<(i8, String)>,
}

impl ConfiguredTopology {
    /// Ready to assign: configured without error and no internal topic missing.
    pub fn is_ready(&self) -> bool {
        self.error.is_none() && self.to_create.is_empty()
    }

    /// The status a heartbeat reports for this topology (none when ready).
    pub fn status(&self) -> Option<(i8, String)> {
        if let Some(e) = &self.error {
            return Some(e.clone());
        }
        if self.to_create.is_empty() {
            return None;
        }
        let names: BTreeSet<&str> = self.to_create.iter().map(|t| t.name.as_str()).collect();
        Some((
            status::MISSING_INTERNAL_TOPICS,
            format!("Internal topics are missing: {}", summarize(names)),
        ))
    }

    fn failed(epoch: i32, code: i8, detail: String) -> Self {
        ConfiguredTopology {
            epoch,
            subtopologies: BTreeMap::new(),
            to_create: Vec::new(),
            error: Some((code, detail)),
        }
    }
}

/// A topic's partition count in the cluster (None: no such topic).
pub type PartitionsOf<'a> = &'a dyn Fn(&str) -> Option<i32>;

/// Checks `topology` against the cluster (`partitions_of`, `all_topics` for regexes).
pub fn configure(
    topology: &Topology,
    partitions_of: PartitionsOf,
    all_topics: &[String],
) -> ConfiguredTopology {
    let epoch = topology.epoch;
    // Source topics, regexes resolved.
    let mut sources: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut missing: BTreeSet<String> = BTreeSet::new();
    for s in &topology.subtopologies {
        let mut set = BTreeSet::new();
        for t in &s.source_topics {
            if partitions_of(t).is_none() {
                missing.insert(t.clone());
            }
            set.insert(t.clone());
        }
        for re in &s.source_topic_regex {
            let matched: Vec<&String> = match regex::Regex::new(&format!("^(?:{re})$")) {
                Ok(r) => all_topics.iter().filter(|t| r.is_match(t)).collect(),
                Err(_) => Vec::new(),
            };
            if matched.is_empty() {
                missing.insert(re.clone());
            }
            set.extend(matched.into_iter().cloned());
        }
        sources.insert(s.subtopology_id.as_str(), set);
    }
    if !missing.is_empty() {
        return ConfiguredTopology::failed(
            epoch,
            status::MISSING_SOURCE_TOPICS,
            format!(
                "Source topics {} are missing.",
                summarize(missing.iter().map(String::as_str))
            ),
        );
    }

    // Repartition topics: declared counts, then the copartition groups, then the writers.
    let mut repartition: BTreeMap<String, Option<i32>> = BTreeMap::new();
    let mut repartition_info: BTreeMap<String, &TopicInfo> = BTreeMap::new();
    let mut declared: BTreeSet<String> = BTreeSet::new();
    for s in &topology.subtopologies {
        for t in &s.repartition_source_topics {
            if t.partitions > 0 {
                declared.insert(t.name.clone());
            }
            repartition.insert(t.name.clone(), (t.partitions > 0).then_some(t.partitions));
            repartition_info.insert(t.name.clone(), t);
        }
    }
    if let Err(detail) =
        resolve_repartition_counts(topology, &sources, partitions_of, &mut repartition)
    {
        return ConfiguredTopology::failed(epoch, status::INCORRECTLY_PARTITIONED_TOPICS, detail);
    }
    for s in &topology.subtopologies {
        if let Err(detail) = enforce_copartitioning(s, &declared, partitions_of, &mut repartition) {
            return ConfiguredTopology::failed(
                epoch,
                status::INCORRECTLY_PARTITIONED_TOPICS,
                detail,
            );
        }
    }

    let mut subtopologies = BTreeMap::new();
    let mut internal: Vec<InternalTopic> = Vec::new();
    for (name, count) in &repartition {
        let info = repartition_info[name];
        internal.push(internal_topic(info, count.unwrap_or(1), true));
    }
    for s in &topology.subtopologies {
        let mut inputs: BTreeSet<String> = sources[s.subtopology_id.as_str()].clone();
        let mut tasks = 0;
        for t in &inputs {
            tasks = tasks.max(partitions_of(t).unwrap_or(0));
        }
        for t in &s.repartition_source_topics {
            tasks = tasks.max(repartition[&t.name].unwrap_or(0));
            inputs.insert(t.name.clone());
        }
        if tasks <= 0 {
            return ConfiguredTopology::failed(
                epoch,
                status::INCORRECTLY_PARTITIONED_TOPICS,
                format!(
                    "Subtopology {} has no input topic with partitions.",
                    s.subtopology_id
                ),
            );
        }
        let changelogs: BTreeMap<String, i32> = s
            .state_changelog_topics
            .iter()
            .map(|t| (t.name.clone(), tasks))
            .collect();
        for t in &s.state_changelog_topics {
            internal.push(internal_topic(t, tasks, false));
        }
        subtopologies.insert(
            s.subtopology_id.clone(),
            ConfiguredSubtopology {
                tasks,
                input_topics: inputs,
                changelog_topics: changelogs,
            },
        );
    }

    let mut to_create = Vec::new();
    for t in internal {
        match partitions_of(&t.name) {
            None => to_create.push(t),
            Some(p) if p != t.partitions => {
                return ConfiguredTopology::failed(
                    epoch,
                    status::INCORRECTLY_PARTITIONED_TOPICS,
                    format!(
                        "Existing internal topic {} has invalid number of partitions: expected: {}; actual: {}.",
                        t.name, t.partitions, p
                    ),
                );
            }
            Some(_) => {}
        }
    }
    ConfiguredTopology {
        epoch,
        subtopologies,
        to_create,
        error: None,
    }
}

/// Kafka's `summarizeTopics`: the first three names, then how many more.
fn summarize<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    if names.is_empty() {
        return "<none>".into();
    }
    let head = names[..names.len().min(3)].join(", ");
    if names.len() > 3 {
        format!("{head} and {} additional topics", names.len() - 3)
    } else {
        head
    }
}

fn internal_topic(info: &TopicInfo, partitions: i32, repartition: bool) -> InternalTopic {
    let mut configs: BTreeMap<String, String> = BTreeMap::new();
    // Kafka Streams' defaults for the kind of topic; the client's own configs win.
    if repartition {
        configs.insert("cleanup.policy".into(), "delete".into());
        configs.insert("retention.ms".into(), "-1".into());
    } else {
        configs.insert("cleanup.policy".into(), "compact".into());
    }
    for kv in &info.topic_configs {
        configs.insert(kv.key.clone(), kv.value.clone());
    }
    InternalTopic {
        name: info.name.clone(),
        partitions,
        replication_factor: (info.replication_factor > 0).then_some(info.replication_factor),
        configs,
    }
}

/// Gives each repartition topic without a count the largest task count of the subtopologies
/// writing to it, repeating until nothing changes.
fn resolve_repartition_counts(
    topology: &Topology,
    sources: &BTreeMap<&str, BTreeSet<String>>,
    partitions_of: PartitionsOf,
    repartition: &mut BTreeMap<String, Option<i32>>,
) -> Result<(), String> {
    loop {
        let mut changed = false;
        for (name, count) in repartition.clone() {
            if count.is_some() {
                continue;
            }
            let writers: Vec<&Subtopology> = topology
                .subtopologies
                .iter()
                .filter(|s| s.repartition_sink_topics.contains(&name))
                .collect();
            if writers.is_empty() {
                return Err("Failed to compute number of partitions for all repartition topics, because a repartition source topic is never used as a sink topic.".into());
            }
            let mut best: Option<i32> = None;
            for w in writers {
                let mut max = 0;
                let mut known = true;
                for t in &sources[w.subtopology_id.as_str()] {
                    max = max.max(partitions_of(t).unwrap_or(0));
                }
                for t in &w.repartition_source_topics {
                    match repartition.get(&t.name).copied().flatten() {
                        Some(n) => max = max.max(n),
                        None => known = false,
                    }
                }
                if known && max > 0 {
                    best = Some(best.map_or(max, |b: i32| b.max(max)));
                }
            }
            if let Some(n) = best {
                repartition.insert(name, Some(n));
                changed = true;
            }
        }
        if repartition.values().all(Option::is_some) {
            return Ok(());
        }
        if !changed {
            return Err("Failed to compute number of partitions for all repartition topics. There may be loops in the topology that cannot be resolved.".into());
        }
    }
}

/// Kafka's `CopartitionedTopicsEnforcer` for one subtopology's copartition groups: runs after
/// the writers sized the repartition topics, and overrides those whose count the topology did
/// not declare (`declared`).
fn enforce_copartitioning(
    s: &Subtopology,
    declared: &BTreeSet<String>,
    partitions_of: PartitionsOf,
    repartition: &mut BTreeMap<String, Option<i32>>,
) -> Result<(), String> {
    for g in &s.copartition_groups {
        let source_names: Vec<&String> = g
            .source_topics
            .iter()
            .filter_map(|&i| s.source_topics.get(i as usize))
            .collect();
        let repartition_names: Vec<&String> = g
            .repartition_source_topics
            .iter()
            .filter_map(|&i| s.repartition_source_topics.get(i as usize).map(|t| &t.name))
            .collect();
        let counts: BTreeSet<i32> = source_names
            .iter()
            .filter_map(|t| partitions_of(t))
            .collect();
        if counts.len() > 1 {
            let names: Vec<&str> = source_names.iter().map(|t| t.as_str()).collect();
            return Err(format!(
                "Following topics do not have the same number of partitions: [{}]",
                names.join(", ")
            ));
        }
        // Without source topics in the group: the largest declared count, else the largest
        // computed one.
        let target = match counts.iter().next() {
            Some(&n) => n,
            None => {
                let of = |only_declared: bool| {
                    repartition_names
                        .iter()
                        .filter(|t| !only_declared || declared.contains(**t))
                        .filter_map(|t| repartition.get(*t).copied().flatten())
                        .max()
                };
                of(true).or_else(|| of(false)).unwrap_or(0)
            }
        };
        for t in repartition_names {
            match repartition.get(t).copied().flatten() {
                Some(n) if declared.contains(t) && n != target => {
                    return Err(format!(
                        "Number of partitions [{n}] of repartition topic [{t}] doesn't match number of partitions [{target}] of the source topic."
                    ));
                }
                _ if target > 0 => {
                    repartition.insert(t.clone(), Some(target));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::streams::{CopartitionGroup, KeyValue};

    fn info(name: &str, partitions: i32) -> TopicInfo {
        TopicInfo {
            name: name.into(),
            partitions,
            replication_factor: 0,
            topic_configs: vec![],
        }
    }

    /// A word count: subtopology 0 reads `input` and writes `app-rep-repartition`;
    /// subtopology 1 reads it and keeps `app-store-changelog`.
    fn word_count() -> Topology {
        Topology {
            epoch: 1,
            subtopologies: vec![
                Subtopology {
                    subtopology_id: "0".into(),
                    source_topics: vec!["input".into()],
                    repartition_sink_topics: vec!["app-rep-repartition".into()],
                    ..Subtopology::default()
                },
                Subtopology {
                    subtopology_id: "1".into(),
                    repartition_source_topics: vec![info("app-rep-repartition", 0)],
                    state_changelog_topics: vec![TopicInfo {
                        topic_configs: vec![KeyValue {
                            key: "min.compaction.lag.ms".into(),
                            value: "5".into(),
                        }],
                        ..info("app-store-changelog", 0)
                    }],
                    ..Subtopology::default()
                },
            ],
        }
    }

    fn cluster(topics: &[(&str, i32)]) -> (BTreeMap<String, i32>, Vec<String>) {
        let map: BTreeMap<String, i32> = topics.iter().map(|(t, p)| (t.to_string(), *p)).collect();
        let names = map.keys().cloned().collect();
        (map, names)
    }

    #[test]
    fn a_word_count_gets_its_internal_topics_sized_from_the_input() {
        let (map, names) = cluster(&[("input", 3)]);
        let c = configure(&word_count(), &|t| map.get(t).copied(), &names);
        assert_eq!(c.error, None);
        assert_eq!(c.subtopologies["0"].tasks, 3);
        assert_eq!(c.subtopologies["1"].tasks, 3);
        let created: Vec<(&str, i32)> = c
            .to_create
            .iter()
            .map(|t| (t.name.as_str(), t.partitions))
            .collect();
        assert_eq!(
            created,
            [("app-rep-repartition", 3), ("app-store-changelog", 3)]
        );
        let changelog = &c.to_create[1];
        assert_eq!(changelog.configs["cleanup.policy"], "compact");
        assert_eq!(changelog.configs["min.compaction.lag.ms"], "5");
        assert_eq!(changelog.replication_factor, None);
        assert!(!c.is_ready());
        assert_eq!(
            c.status(),
            Some((
                status::MISSING_INTERNAL_TOPICS,
                "Internal topics are missing: app-rep-repartition, app-store-changelog".into()
            ))
        );
        // Once they exist, the topology is ready.
        let (map, names) = cluster(&[
            ("input", 3),
            ("app-rep-repartition", 3),
            ("app-store-changelog", 3),
        ]);
        let c = configure(&word_count(), &|t| map.get(t).copied(), &names);
        assert!(c.is_ready(), "{c:?}");
        assert_eq!(c.status(), None);
    }

    #[test]
    fn missing_sources_and_misparitioned_internal_topics_are_statuses() {
        let (map, names) = cluster(&[]);
        let c = configure(&word_count(), &|t| map.get(t).copied(), &names);
        assert_eq!(
            c.error,
            Some((
                status::MISSING_SOURCE_TOPICS,
                "Source topics input are missing.".into()
            ))
        );
        let (map, names) = cluster(&[("input", 3), ("app-store-changelog", 5)]);
        let c = configure(&word_count(), &|t| map.get(t).copied(), &names);
        assert_eq!(
            c.error.as_ref().map(|e| e.0),
            Some(status::INCORRECTLY_PARTITIONED_TOPICS)
        );
    }

    #[test]
    fn copartitioned_sources_must_agree_and_size_their_repartition_topics() {
        let topology = |explicit: i32| Topology {
            epoch: 1,
            subtopologies: vec![
                Subtopology {
                    subtopology_id: "0".into(),
                    source_topics: vec!["other".into()],
                    repartition_sink_topics: vec!["rep".into()],
                    ..Subtopology::default()
                },
                Subtopology {
                    subtopology_id: "1".into(),
                    source_topics: vec!["left".into(), "right".into()],
                    repartition_source_topics: vec![info("rep", explicit)],
                    copartition_groups: vec![CopartitionGroup {
                        source_topics: vec![0, 1],
                        source_topic_regex: vec![],
                        repartition_source_topics: vec![0],
                    }],
                    ..Subtopology::default()
                },
            ],
        };
        let (map, names) = cluster(&[("other", 8), ("left", 4), ("right", 4)]);
        let c = configure(&topology(0), &|t| map.get(t).copied(), &names);
        assert_eq!(c.error, None);
        // The copartition group, not the writer's 8, sizes the repartition topic.
        assert_eq!(c.to_create[0].partitions, 4);
        assert_eq!(c.subtopologies["1"].tasks, 4);
        let c = configure(&topology(6), &|t| map.get(t).copied(), &names);
        assert_eq!(
            c.error,
            Some((
                status::INCORRECTLY_PARTITIONED_TOPICS,
                "Number of partitions [6] of repartition topic [rep] doesn't match number of partitions [4] of the source topic.".into()
            ))
        );
        let (map, names) = cluster(&[("other", 8), ("left", 4), ("right", 2)]);
        let c = configure(&topology(0), &|t| map.get(t).copied(), &names);
        assert_eq!(
            c.error,
            Some((
                status::INCORRECTLY_PARTITIONED_TOPICS,
                "Following topics do not have the same number of partitions: [left, right]".into()
            ))
        );
    }

    #[test]
    fn a_repartition_topic_nobody_writes_or_a_loop_cannot_be_sized() {
        let orphan = Topology {
            epoch: 1,
            subtopologies: vec![Subtopology {
                subtopology_id: "0".into(),
                repartition_source_topics: vec![info("rep", 0)],
                ..Subtopology::default()
            }],
        };
        let c = configure(&orphan, &|_| None, &[]);
        assert_eq!(
            c.error.as_ref().map(|e| e.0),
            Some(status::INCORRECTLY_PARTITIONED_TOPICS)
        );
        let looped = Topology {
            epoch: 1,
            subtopologies: vec![
                Subtopology {
                    subtopology_id: "0".into(),
                    repartition_source_topics: vec![info("a", 0)],
                    repartition_sink_topics: vec!["b".into()],
                    ..Subtopology::default()
                },
                Subtopology {
                    subtopology_id: "1".into(),
                    repartition_source_topics: vec![info("b", 0)],
                    repartition_sink_topics: vec!["a".into()],
                    ..Subtopology::default()
                },
            ],
        };
        let c = configure(&looped, &|_| None, &[]);
        assert!(c
            .error
            .as_ref()
            .is_some_and(|e| e.1.contains("loops in the topology")));
    }

    #[test]
    fn source_regexes_match_whole_topic_names() {
        let topology = Topology {
            epoch: 2,
            subtopologies: vec![Subtopology {
                subtopology_id: "0".into(),
                source_topic_regex: vec!["events-.*".into()],
                ..Subtopology::default()
            }],
        };
        let (map, names) = cluster(&[("events-a", 2), ("events-b", 5), ("x-events-c", 9)]);
        let c = configure(&topology, &|t| map.get(t).copied(), &names);
        assert!(c.is_ready(), "{c:?}");
        assert_eq!(c.subtopologies["0"].tasks, 5);
        assert_eq!(
            c.subtopologies["0"].input_topics,
            BTreeSet::from(["events-a".to_string(), "events-b".to_string()])
        );
        let c = configure(&topology, &|_| None, &[]);
        assert_eq!(
            c.error.as_ref().map(|e| e.0),
            Some(status::MISSING_SOURCE_TOPICS)
        );
    }

    #[test]
    fn topic_lists_are_summarized_as_kafka_does() {
        assert_eq!(summarize([]), "<none>");
        assert_eq!(summarize(["a", "b", "c"]), "a, b, c");
        assert_eq!(
            summarize(["a", "b", "c", "d", "e"]),
            "a, b, c and 2 additional topics"
        );
    }
}
