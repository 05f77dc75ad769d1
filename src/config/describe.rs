//! What DescribeConfigs reports: every topic key of a topic and every broker key Strom
//! understands, each with its value, its source and its synonyms in precedence order — by
//! Kafka's rules (`ConfigHelper`), quirks included, so `kafka-configs --describe --all` reads
//! the same as against Apache Kafka:
//!
//! - A topic key's synonyms are its topic override (source TOPIC_CONFIG), then the synonyms of
//!   the broker key that sets its default (e.g. `retention.ms` <- `log.retention.ms`).
//! - A broker key's synonyms are, over its synonym group (`log.retention.ms`, `.minutes`,
//!   `.hours`), the statically set keys (STATIC_BROKER_CONFIG) then the keys with a default
//!   (DEFAULT_CONFIG); everything before the first entry named like the key itself is dropped.
//!   So `retention.ms` has no synonyms at all unless `log.retention.ms` is set: its default
//!   comes from `log.retention.hours`, which Kafka drops.
//! - The source of a value is its first synonym's, DEFAULT_CONFIG when there is none.
//!
//! - Dynamic broker configs (`config::dynamic`) come first: this broker's
//!   (DYNAMIC_BROKER_CONFIG), then the cluster-wide ones (DYNAMIC_DEFAULT_BROKER_CONFIG), then
//!   static and default, each over the synonym group, as Kafka orders them. Keys that cannot
//!   change at run time are read-only.

use std::collections::BTreeMap;

use crate::config::broker;
use crate::config::dynamic::{self, DynamicConfigs};
use crate::config::group_configs;
use crate::config::topic::{self, Source};
use crate::config::BrokerConfig;

/// One synonym of a config entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synonym {
    pub name: String,
    pub value: Option<String>,
    pub source: Source,
}

/// One config entry of a DescribeConfigs answer.
#[derive(Debug, Clone)]
pub struct ConfigEntry {
    pub name: &'static str,
    pub value: Option<String>,
    pub source: Source,
    /// Precedence order, the entry's own source first.
    pub synonyms: Vec<Synonym>,
    /// Kafka's config type name (`INT`, `LONG`, `STRING`, `LIST`, ...).
    pub type_name: &'static str,
    pub doc: Option<&'static str>,
    pub read_only: bool,
}

/// Kafka's ConfigType code (DescribeConfigs v3+) for a type name; 0 = UNKNOWN.
pub fn type_code(type_name: &str) -> i8 {
    match type_name {
        "BOOLEAN" => 1,
        "STRING" => 2,
        "INT" => 3,
        "SHORT" => 4,
        "LONG" => 5,
        "DOUBLE" => 6,
        "LIST" => 7,
        "CLASS" => 8,
        "PASSWORD" => 9,
        _ => 0,
    }
}

/// The broker key that sets a topic key's default, as Kafka names it
/// (`ServerTopicConfigSynonyms`).
pub fn topic_synonym(name: &str) -> Option<&'static str> {
    match name {
        "retention.ms" => Some("log.retention.ms"),
        "segment.ms" => Some("log.roll.ms"),
        "flush.messages" => Some("log.flush.interval.messages"),
        "flush.ms" => Some("log.flush.interval.ms"),
        other => topic::spec(other).and_then(|s| s.broker_key),
    }
}

/// Kafka's broker synonym groups (`DynamicBrokerConfig.brokerConfigSynonyms`), most specific
/// first.
fn synonym_group(name: &'static str) -> Vec<&'static str> {
    match name {
        "log.roll.ms" | "log.roll.hours" => vec!["log.roll.ms", "log.roll.hours"],
        "log.retention.ms" | "log.retention.minutes" | "log.retention.hours" => vec![
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
        _ => vec![name],
    }
}

/// Computes entries for one broker configuration.
pub struct Describer<'a> {
    /// The configuration in force (static with dynamic values applied).
    config: &'a BrokerConfig,
    /// The keys set statically (file, --set, flags).
    statics: &'a BTreeMap<String, String>,
    /// The dynamic broker configs (empty: none).
    dynamic: DynamicConfigs,
    /// What each broker key is when nobody sets it (Strom's defaults).
    defaults: BTreeMap<&'static str, Option<String>>,
}

impl<'a> Describer<'a> {
    pub fn new(config: &'a BrokerConfig) -> Self {
        let defaults = broker_values(&BrokerConfig::default())
            .into_iter()
            // Derived from `listeners` when not set: no default of its own, as in Kafka.
            .filter(|b| b.name != "advertised.listeners")
            .map(|b| (b.name, b.value))
            .collect();
        Describer {
            config,
            statics: &config.explicit,
            dynamic: DynamicConfigs::default(),
            defaults,
        }
    }

    /// A describer for `effective` (= `statics` with `dynamic` applied).
    pub fn with_dynamic(
        effective: &'a BrokerConfig,
        statics: &'a BrokerConfig,
        dynamic: DynamicConfigs,
    ) -> Self {
        Describer {
            statics: &statics.explicit,
            dynamic,
            ..Describer::new(effective)
        }
    }

    /// The value a key was explicitly set to (file, --set, flag).
    fn explicit(&self, key: &str) -> Option<&String> {
        let e = self.statics;
        match key {
            "log.dirs" => e.get("log.dirs").or_else(|| e.get("log.dir")),
            _ => e.get(key),
        }
    }

    /// Synonyms of broker key `name`, by Kafka's rule (see the module doc).
    pub fn broker_synonyms(&self, name: &'static str) -> Vec<Synonym> {
        let group = synonym_group(name);
        let layer = |map: &BTreeMap<String, String>, source: Source| -> Vec<Synonym> {
            group
                .iter()
                .filter_map(|k| {
                    map.get(*k).map(|v| Synonym {
                        name: k.to_string(),
                        value: Some(v.clone()),
                        source,
                    })
                })
                .collect()
        };
        let dynamic = layer(&self.dynamic.broker, Source::DynamicBroker)
            .into_iter()
            .chain(layer(&self.dynamic.cluster, Source::DynamicDefaultBroker));
        let statics = group.iter().filter_map(|k| {
            self.explicit(k).map(|v| Synonym {
                name: k.to_string(),
                value: Some(v.clone()),
                source: Source::StaticBroker,
            })
        });
        let defaults = group.iter().filter_map(|k| {
            self.defaults.get(k).cloned().flatten().map(|v| Synonym {
                name: k.to_string(),
                value: Some(v),
                source: Source::Default,
            })
        });
        dynamic
            .chain(statics)
            .chain(defaults)
            .skip_while(|s| s.name != name)
            .collect()
    }

    /// The cluster-wide dynamic broker configs (the BROKER resource named ""): only the keys
    /// set, as Kafka answers, each with the cluster-wide, static and default synonyms.
    pub fn cluster_default_entries(&self) -> Vec<ConfigEntry> {
        let mut out: Vec<ConfigEntry> = broker_values(self.config)
            .into_iter()
            .filter(|b| self.dynamic.cluster.contains_key(b.name))
            .map(|b| {
                let synonyms: Vec<Synonym> = self
                    .broker_synonyms(b.name)
                    .into_iter()
                    .filter(|s| s.source != Source::DynamicBroker)
                    .collect();
                ConfigEntry {
                    name: b.name,
                    value: self.dynamic.cluster.get(b.name).cloned(),
                    source: Source::DynamicDefaultBroker,
                    synonyms,
                    type_name: b.type_name,
                    doc: b.doc,
                    read_only: false,
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(b.name));
        out
    }

    /// Every topic key with its effective value for a topic with `overrides`.
    pub fn topic_entries(&self, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
        topic::TOPIC_CONFIGS
            .iter()
            .map(|spec| {
                let value = topic::effective(self.config, overrides, spec.name)
                    .map(|(v, _)| v)
                    .unwrap_or_else(|| spec.default.to_string());
                let mut synonyms = Vec::new();
                if overrides.contains_key(spec.name) {
                    synonyms.push(Synonym {
                        name: spec.name.to_string(),
                        value: Some(value.clone()),
                        source: Source::TopicOverride,
                    });
                }
                if let Some(key) = topic_synonym(spec.name) {
                    synonyms.extend(self.broker_synonyms(key));
                }
                ConfigEntry {
                    name: spec.name,
                    value: Some(value),
                    source: synonyms.first().map_or(Source::Default, |s| s.source),
                    synonyms,
                    type_name: spec.type_name,
                    doc: Some(spec.doc),
                    read_only: false,
                }
            })
            .collect()
    }

    /// Every key of the GROUP resource for a group with `overrides`, as Kafka's
    /// `createGroupConfigEntry`: the group's own setting (source GROUP_CONFIG), then the
    /// synonyms of the broker key it overrides; the value is the effective one.
    pub fn group_entries(&self, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
        let mut out: Vec<ConfigEntry> = group_configs::GROUP_CONFIGS
            .iter()
            .map(|spec| {
                let value =
                    group_configs::effective(spec, overrides, &self.config.groups).to_string();
                let mut synonyms = Vec::new();
                if let Some(own) = overrides.get(spec.name) {
                    synonyms.push(Synonym {
                        name: spec.name.to_string(),
                        value: Some(own.clone()),
                        source: Source::GroupConfig,
                    });
                }
                synonyms.extend(self.broker_synonyms(spec.broker_key));
                ConfigEntry {
                    name: spec.name,
                    value: Some(value),
                    source: synonyms.first().map_or(Source::Default, |s| s.source),
                    synonyms,
                    type_name: spec.type_name,
                    doc: Some(spec.doc),
                    read_only: false,
                }
            })
            .chain(group_configs::TEXT_GROUP_CONFIGS.iter().map(|spec| {
                let own = overrides.get(spec.name);
                ConfigEntry {
                    name: spec.name,
                    value: Some(group_configs::text_value(spec.name, overrides).to_string()),
                    source: if own.is_some() {
                        Source::GroupConfig
                    } else {
                        Source::Default
                    },
                    // Kafka lists the group's value, then the default (no broker synonym).
                    synonyms: own
                        .map(|v| Synonym {
                            name: spec.name.to_string(),
                            value: Some(v.clone()),
                            source: Source::GroupConfig,
                        })
                        .into_iter()
                        .chain(std::iter::once(Synonym {
                            name: spec.name.to_string(),
                            value: Some(spec.default.to_string()),
                            source: Source::Default,
                        }))
                        .collect(),
                    type_name: spec.type_name,
                    doc: Some(spec.doc),
                    read_only: false,
                }
            }))
            .collect();
        out.sort_by(|a, b| a.name.cmp(b.name));
        out
    }

    /// Every broker key Strom understands, sorted by name.
    pub fn broker_entries(&self) -> Vec<ConfigEntry> {
        let mut out: Vec<ConfigEntry> = broker_values(self.config)
            .into_iter()
            .map(|b| {
                let synonyms = self.broker_synonyms(b.name);
                ConfigEntry {
                    name: b.name,
                    value: b.value,
                    source: synonyms.first().map_or(Source::Default, |s| s.source),
                    synonyms,
                    type_name: b.type_name,
                    doc: b.doc,
                    read_only: !dynamic::is_dynamic(b.name),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(b.name));
        out
    }
}

/// Every broker key Strom understands with its value, type and doc, from
/// [`broker::BROKER_KEYS`] and the broker keys of topic configs. A key Kafka leaves unset by
/// default (`log.retention.ms`, `log.roll.ms`, ...) has no value unless set.
fn broker_values(c: &BrokerConfig) -> Vec<BrokerValue> {
    let mut out: Vec<BrokerValue> = broker::BROKER_KEYS
        .iter()
        .map(|k| BrokerValue {
            name: k.name,
            value: (k.get)(c),
            type_name: k.type_name,
            doc: Some(k.doc),
        })
        .collect();
    for spec in topic::TOPIC_CONFIGS {
        if let Some(key) = spec.broker_key {
            out.push(BrokerValue {
                name: key,
                value: c.topic_default(spec.name),
                type_name: spec.type_name,
                doc: Some(spec.doc),
            });
        }
    }
    out
}

struct BrokerValue {
    name: &'static str,
    value: Option<String>,
    type_name: &'static str,
    doc: Option<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(props: &[(&str, &str)]) -> BrokerConfig {
        let props: Vec<(String, String)> = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BrokerConfig::from_properties(&props).expect("valid config")
    }

    fn entry<'e>(entries: &'e [ConfigEntry], name: &str) -> &'e ConfigEntry {
        entries
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name} listed"))
    }

    fn syn(name: &str, value: &str, source: Source) -> Synonym {
        Synonym {
            name: name.into(),
            value: Some(value.into()),
            source,
        }
    }

    #[test]
    fn topic_defaults_overrides_and_static_broker_keys() {
        let c = config(&[("log.segment.bytes", "2048"), ("log.retention.hours", "2")]);
        let d = Describer::new(&c);
        let mut o = BTreeMap::new();
        o.insert("cleanup.policy".to_string(), "compact".to_string());
        let all = d.topic_entries(&o);
        assert_eq!(all.len(), topic::TOPIC_CONFIGS.len());

        let e = entry(&all, "cleanup.policy");
        assert_eq!(e.value.as_deref(), Some("compact"));
        assert_eq!(e.source, Source::TopicOverride);
        assert_eq!(
            e.synonyms,
            vec![
                syn("cleanup.policy", "compact", Source::TopicOverride),
                syn("log.cleanup.policy", "delete", Source::Default)
            ]
        );

        let e = entry(&all, "segment.bytes");
        assert_eq!(e.value.as_deref(), Some("2048"));
        assert_eq!(e.source, Source::StaticBroker);
        assert_eq!(
            e.synonyms,
            vec![
                syn("log.segment.bytes", "2048", Source::StaticBroker),
                syn("log.segment.bytes", "1073741824", Source::Default)
            ]
        );

        // Kafka's quirk: log.retention.hours is not named like retention.ms's synonym
        // (log.retention.ms), so it is dropped and the source reads DEFAULT_CONFIG.
        let e = entry(&all, "retention.ms");
        assert_eq!(e.value.as_deref(), Some("7200000"));
        assert!(e.synonyms.is_empty());
        assert_eq!(e.source, Source::Default);
        assert_eq!(entry(&all, "segment.ms").synonyms, vec![]);
        assert_eq!(entry(&all, "flush.ms").synonyms, vec![]);
    }

    #[test]
    fn retention_ms_synonyms_when_set_in_ms() {
        let c = config(&[("log.retention.ms", "1000"), ("log.retention.hours", "2")]);
        let d = Describer::new(&c);
        let e = d.topic_entries(&BTreeMap::new());
        let e = entry(&e, "retention.ms");
        assert_eq!(e.value.as_deref(), Some("1000"));
        assert_eq!(e.source, Source::StaticBroker);
        assert_eq!(
            e.synonyms,
            vec![
                syn("log.retention.ms", "1000", Source::StaticBroker),
                syn("log.retention.hours", "2", Source::StaticBroker),
                syn("log.retention.hours", "168", Source::Default)
            ]
        );
    }

    #[test]
    fn broker_entries_sources_and_unset_keys() {
        let c = config(&[("num.partitions", "3"), ("log.retention.ms", "5000")]);
        let d = Describer::new(&c);
        let all = d.broker_entries();
        let e = entry(&all, "num.partitions");
        assert_eq!(e.value.as_deref(), Some("3"));
        assert_eq!(e.source, Source::StaticBroker);
        assert_eq!(
            e.synonyms,
            vec![
                syn("num.partitions", "3", Source::StaticBroker),
                syn("num.partitions", "1", Source::Default)
            ]
        );
        assert!(e.read_only);
        let e = entry(&all, "log.retention.ms");
        assert_eq!(e.value.as_deref(), Some("5000"));
        assert_eq!(
            e.synonyms[0],
            syn("log.retention.ms", "5000", Source::StaticBroker)
        );
        // The hours key keeps its own value; its synonyms start at itself.
        let e = entry(&all, "log.retention.hours");
        assert_eq!(e.value.as_deref(), Some("168"));
        assert_eq!(
            e.synonyms,
            vec![syn("log.retention.hours", "168", Source::Default)]
        );
        // Unset and without a default: no value, no synonyms, DEFAULT_CONFIG.
        let e = entry(&all, "log.roll.ms");
        assert_eq!(e.value, None);
        assert!(e.synonyms.is_empty());
        assert_eq!(e.source, Source::Default);
        // Sorted, and every topic key's broker synonym is listed.
        assert!(all.windows(2).all(|w| w[0].name < w[1].name));
        for spec in topic::TOPIC_CONFIGS {
            if let Some(k) = topic_synonym(spec.name) {
                assert!(all.iter().any(|e| e.name == k), "{k} missing");
            }
        }
    }

    #[test]
    fn type_codes() {
        assert_eq!(type_code("LIST"), 7);
        assert_eq!(type_code("PASSWORD"), 9);
        assert_eq!(type_code("nope"), 0);
    }
}
