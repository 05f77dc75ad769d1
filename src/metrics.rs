//! Prometheus metrics (the `prometheus-client` crate encodes the text format): one process-wide
//! set, updated where the work happens and read by the admin listener's `/metrics`
//! ([`crate::admin_http`]).
//!
//! - `strom_topic_bytes_in_total{topic}`, `strom_topic_records_in_total{topic}`: appended by
//!   clients (Produce); `strom_topic_bytes_out_total{topic}`: record bytes returned by Fetch.
//! - `strom_request_duration_seconds{api}`: from a request's header being read to its response
//!   being ready (long-poll waits included), by Kafka's API name (`Produce`, `Fetch`, ...).
//! - `strom_log_fsync_duration_seconds`: each group-committed fsync of a partition log.
//! - `strom_connections{listener}`: open client connections.
//! - `strom_partitions` and `strom_consumer_group_lag{group,topic,partition}` (high watermark
//!   minus committed offset): computed at scrape time by the admin listener.
//!
//! - Share groups: `strom_share_records_acquired_total` (deliveries),
//!   `strom_share_acknowledgements_total{type}` (accept, release, reject, gap, renew; per
//!   record), `strom_share_records_dead_lettered_total` (copies written to dead-letter topics),
//!   `strom_share_dead_letter_failures_total` (records archived without their copy),
//!   `strom_share_records_in_flight` (acquired now) and `strom_share_sessions`.
//!
//! Label cardinality is bounded: at most [`MAX_TOPICS`] topics get series of their own (later
//! ones are counted under `topic="__other"`), and at most `MAX_LAG_SERIES` lag series are
//! exported per scrape.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Topics with series of their own; the rest share `topic="__other"`.
pub const MAX_TOPICS: usize = 1000;
/// The most `strom_consumer_group_lag` series one scrape exports.
pub const MAX_LAG_SERIES: usize = 10_000;
/// The label of topics past [`MAX_TOPICS`].
pub const OTHER_TOPIC: &str = "__other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub api: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    pub listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthLabels {
    pub listener: String,
    pub mechanism: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AckLabels {
    pub r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LagLabels {
    pub group: String,
    pub topic: String,
    pub partition: String,
}

/// One topic's counters.
#[derive(Clone)]
pub struct TopicCounters {
    pub bytes_in: Counter,
    pub records_in: Counter,
    pub bytes_out: Counter,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    bytes_in: Family<TopicLabels, Counter>,
    records_in: Family<TopicLabels, Counter>,
    bytes_out: Family<TopicLabels, Counter>,
    /// Handles by topic name, so the hot paths neither allocate labels nor lock the family.
    topics: DashMap<Arc<str>, TopicCounters>,
    request_duration: Family<ApiLabels, Histogram>,
    requests: DashMap<i16, Histogram>,
    pub fsync_duration: Histogram,
    pub connections: Family<ListenerLabels, Gauge>,
    pub partitions: Gauge,
    pub group_lag: Family<LagLabels, Gauge>,
    pub share_acquired: Counter,
    pub share_acks: Family<AckLabels, Counter>,
    pub share_dead_lettered: Counter,
    pub share_dead_letter_failures: Counter,
    pub share_in_flight: Gauge,
    pub share_sessions: Gauge,
    /// Authentications by listener, mechanism (`SSL` for a client certificate) and result.
    pub authentications: Family<AuthLabels, Counter>,
    /// Authorization decisions that refused a request, by Kafka API.
    pub authorization_denials: Family<ApiLabels, Counter>,
    /// Responses throttled by a client quota, by kind (`produce`, `fetch`).
    pub quota_throttles: Family<KindLabels, Counter>,
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let bytes_in = Family::<TopicLabels, Counter>::default();
        let records_in = Family::<TopicLabels, Counter>::default();
        let bytes_out = Family::<TopicLabels, Counter>::default();
        // 100 µs .. ~52 s.
        let request_duration = Family::<ApiLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0001, 2.0, 20))) as fn() -> Histogram,
        );
        let fsync_duration = Histogram::new(exponential_buckets(0.00005, 2.0, 20));
        let connections = Family::<ListenerLabels, Gauge>::default();
        let partitions = Gauge::default();
        let group_lag = Family::<LagLabels, Gauge>::default();
        registry.register(
            "strom_topic_bytes_in",
            "Record bytes appended by clients, by topic",
            bytes_in.clone(),
        );
        registry.register(
            "strom_topic_records_in",
            "Records appended by clients, by topic",
            records_in.clone(),
        );
        registry.register(
            "strom_topic_bytes_out",
            "Record bytes returned to Fetch requests, by topic",
            bytes_out.clone(),
        );
        registry.register(
            "strom_request_duration_seconds",
            "Time from a request's header to its response being ready, by Kafka API",
            request_duration.clone(),
        );
        registry.register(
            "strom_log_fsync_duration_seconds",
            "Duration of each group-committed fsync of a partition log",
            fsync_duration.clone(),
        );
        registry.register(
            "strom_connections",
            "Open client connections, by listener",
            connections.clone(),
        );
        registry.register(
            "strom_partitions",
            "Partitions hosted by this broker",
            partitions.clone(),
        );
        registry.register(
            "strom_consumer_group_lag",
            "High watermark minus the committed offset, by group and partition",
            group_lag.clone(),
        );
        let share_acquired = Counter::default();
        let share_acks = Family::<AckLabels, Counter>::default();
        let share_dead_lettered = Counter::default();
        let share_dead_letter_failures = Counter::default();
        let share_in_flight = Gauge::default();
        let share_sessions = Gauge::default();
        registry.register(
            "strom_share_records_acquired",
            "Records delivered to share-group consumers (each delivery counts)",
            share_acquired.clone(),
        );
        registry.register(
            "strom_share_acknowledgements",
            "Records acknowledged by share-group consumers, by acknowledge type",
            share_acks.clone(),
        );
        registry.register(
            "strom_share_records_dead_lettered",
            "Records copied to a share group's dead-letter topic",
            share_dead_lettered.clone(),
        );
        registry.register(
            "strom_share_dead_letter_failures",
            "Records archived without their dead-letter copy (the copy could not be written)",
            share_dead_letter_failures.clone(),
        );
        registry.register(
            "strom_share_records_in_flight",
            "Records acquired by share-group consumers and not yet acknowledged",
            share_in_flight.clone(),
        );
        registry.register(
            "strom_share_sessions",
            "Open share sessions",
            share_sessions.clone(),
        );
        let authentications = Family::<AuthLabels, Counter>::default();
        let authorization_denials = Family::<ApiLabels, Counter>::default();
        let quota_throttles = Family::<KindLabels, Counter>::default();
        registry.register(
            "strom_authentications",
            "Client authentications, by listener, mechanism and result (success, failure)",
            authentications.clone(),
        );
        registry.register(
            "strom_authorization_denials",
            "Requests (or parts of them) refused by the authorizer, by Kafka API",
            authorization_denials.clone(),
        );
        registry.register(
            "strom_quota_throttles",
            "Responses throttled by a client quota, by kind",
            quota_throttles.clone(),
        );
        Metrics {
            authentications,
            authorization_denials,
            quota_throttles,
            registry: Mutex::new(registry),
            bytes_in,
            records_in,
            bytes_out,
            topics: DashMap::new(),
            request_duration,
            requests: DashMap::new(),
            fsync_duration,
            connections,
            partitions,
            group_lag,
            share_acquired,
            share_acks,
            share_dead_lettered,
            share_dead_letter_failures,
            share_in_flight,
            share_sessions,
        }
    }

    /// The counters of `topic` (or of `__other` past [`MAX_TOPICS`]).
    pub fn topic(&self, topic: &Arc<str>) -> TopicCounters {
        if let Some(c) = self.topics.get(topic) {
            return c.clone();
        }
        let label = if self.topics.len() < MAX_TOPICS {
            topic.to_string()
        } else {
            OTHER_TOPIC.to_string()
        };
        let labels = TopicLabels { topic: label };
        let c = TopicCounters {
            bytes_in: self.bytes_in.get_or_create_owned(&labels),
            records_in: self.records_in.get_or_create_owned(&labels),
            bytes_out: self.bytes_out.get_or_create_owned(&labels),
        };
        if labels.topic != OTHER_TOPIC {
            self.topics.insert(topic.clone(), c.clone());
        }
        c
    }

    /// Records one request of API `key` (Kafka's name `api`) that took `took`.
    pub fn request(&self, key: i16, api: &str, took: Duration) {
        let h = match self.requests.get(&key) {
            Some(h) => h.clone(),
            None => {
                let h = self.request_duration.get_or_create_owned(&ApiLabels {
                    api: api.to_string(),
                });
                self.requests.insert(key, h.clone());
                h
            }
        };
        h.observe(took.as_secs_f64());
    }

    /// Counts `n` records acknowledged with Kafka's acknowledge type `t` (0 gap .. 4 renew).
    pub fn share_ack(&self, t: i8, n: u64) {
        let name = match t {
            0 => "gap",
            1 => "accept",
            2 => "release",
            3 => "reject",
            4 => "renew",
            _ => return,
        };
        self.share_acks
            .get_or_create(&AckLabels {
                r#type: name.to_string(),
            })
            .inc_by(n);
    }

    /// Counts one authentication.
    pub fn authentication(&self, listener: &str, mechanism: &str, success: bool) {
        self.authentications
            .get_or_create(&AuthLabels {
                listener: listener.to_string(),
                mechanism: mechanism.to_string(),
                result: if success { "success" } else { "failure" }.to_string(),
            })
            .inc();
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry.lock());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_past_the_cap_share_one_series() {
        let m = Metrics::new();
        for i in 0..MAX_TOPICS + 5 {
            let t: Arc<str> = Arc::from(format!("t{i}").as_str());
            m.topic(&t).bytes_in.inc_by(1);
        }
        let text = m.encode();
        assert!(text.contains("strom_topic_bytes_in_total{topic=\"t0\"} 1"));
        assert!(text.contains("strom_topic_bytes_in_total{topic=\"__other\"} 5"));
        let series = text
            .lines()
            .filter(|l| l.starts_with("strom_topic_bytes_in_total{"))
            .count();
        assert_eq!(series, MAX_TOPICS + 1);
    }
}
