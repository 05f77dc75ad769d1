//! Client quotas with Kafka's semantics (`ClientQuotaManager`): byte-rate quotas for produce
//! (`producer_byte_rate`) and fetch (`consumer_byte_rate`) per user, client id, or (user,
//! client id), with defaults, configured by AlterClientQuotas and kept in the metadata log.
//!
//! Which quota applies to a request is Kafka's precedence, most specific first:
//! `/users/<u>/clients/<c>`, `/users/<u>/clients/<default>`, `/users/<u>`,
//! `/users/<default>/clients/<c>`, `/users/<default>/clients/<default>`, `/users/<default>`,
//! `/clients/<c>`, `/clients/<default>`. Connections share the rate of the entity that matched
//! (a quota on `/users/alice` is shared by all of alice's clients; one on
//! `/users/<default>/clients/<default>` is per user and client id), as Kafka's metric tags do.
//!
//! The rate is Kafka's `Rate` over `SampledStat`: 11 samples of 1 s (Kafka's defaults of
//! `quota.window.num` / `quota.window.size.seconds`); a request whose recorded bytes put the
//! rate above the quota is answered with `throttle_time_ms = (rate - quota) / quota * window`
//! and the connection is muted for that long (KIP-219: the response goes out at once, the
//! client backs off, the broker reads nothing more from it meanwhile). A throttled fetch is
//! answered without records and its bytes are taken back out of the rate, as Kafka's.

use std::collections::{BTreeMap, HashMap, VecDeque};

use parking_lot::Mutex;

/// Entity types.
pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

/// Quota keys Strom enforces.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// Quota keys Kafka has that Strom does not enforce yet (refused by AlterClientQuotas).
pub const NOT_ENFORCED: &[&str] = &[
    "request_percentage",
    "controller_mutation_rate",
    "connection_creation_rate",
];

/// A quota entity: (entity type, name or None for the default), sorted by type.
pub type Entity = Vec<(String, Option<String>)>;
/// Every configured quota: entity -> key -> value.
pub type Quotas = BTreeMap<Entity, BTreeMap<String, f64>>;

const SAMPLES: usize = 11;
const WINDOW_MS: i64 = 1000;
/// Longest a connection is muted for one request.
const MAX_THROTTLE_MS: i64 = 30_000;

/// The quota for `key` that applies to (`user`, `client`), and the (user, client id) tags of
/// the rate it is counted in.
pub fn resolve(q: &Quotas, user: &str, client: &str, key: &str) -> Option<(f64, (String, String))> {
    if q.is_empty() {
        return None;
    }
    let u = |n: Option<&str>| (USER.to_string(), n.map(str::to_string));
    let c = |n: Option<&str>| (CLIENT_ID.to_string(), n.map(str::to_string));
    let both = |un: Option<&str>, cn: Option<&str>| vec![c(cn), u(un)];
    // (entity, user tag, client tag), most specific first.
    let order: [(Entity, bool, bool); 8] = [
        (both(Some(user), Some(client)), true, true),
        (both(Some(user), None), true, true),
        (vec![u(Some(user))], true, false),
        (both(None, Some(client)), true, true),
        (both(None, None), true, true),
        (vec![u(None)], true, false),
        (vec![c(Some(client))], false, true),
        (vec![c(None)], false, true),
    ];
    order.into_iter().find_map(|(e, ut, ct)| {
        let v = *q.get(&e)?.get(key)?;
        let tag = |on: bool, s: &str| if on { s.to_string() } else { String::new() };
        Some((v, (tag(ut, user), tag(ct, client))))
    })
}

/// The most bytes one request may take under quota `bound` (Kafka's
/// `getMaxValueInQuotaWindow`: the quota over the minimum measuring window). A fetch bigger than
/// this would be throttled, answered empty and unrecorded, again and again.
pub fn max_in_window(bound: f64) -> usize {
    (bound * ((SAMPLES as i64 - 1) * WINDOW_MS) as f64 / 1000.0).clamp(1.0, usize::MAX as f64)
        as usize
}

/// Kafka's `Rate` over a `SampledStat` of [`SAMPLES`] windows of [`WINDOW_MS`].
#[derive(Debug, Default)]
struct Rate {
    /// (window start, sum recorded in it), oldest first.
    samples: VecDeque<(i64, f64)>,
}

impl Rate {
    fn purge(&mut self, now: i64) {
        let horizon = now - SAMPLES as i64 * WINDOW_MS;
        while self
            .samples
            .front()
            .is_some_and(|(start, _)| *start < horizon)
        {
            self.samples.pop_front();
        }
    }

    fn record(&mut self, value: f64, now: i64) {
        self.purge(now);
        match self.samples.back_mut() {
            Some((start, sum)) if now < *start + WINDOW_MS => *sum += value,
            _ => {
                if self.samples.len() == SAMPLES {
                    self.samples.pop_front();
                }
                self.samples.push_back((now, value));
            }
        }
    }

    /// Kafka's `Rate.windowSize`: the time since the oldest sample, at least `SAMPLES - 1`
    /// whole windows (so a first burst is not measured over a few milliseconds).
    fn window_ms(&self, now: i64) -> i64 {
        let oldest = self.samples.front().map_or(now, |(s, _)| *s);
        let mut elapsed = now - oldest;
        let full = elapsed / WINDOW_MS;
        let min_full = SAMPLES as i64 - 1;
        if full < min_full {
            elapsed += (min_full - full) * WINDOW_MS;
        }
        elapsed.max(1)
    }

    /// Bytes per second.
    fn measure(&mut self, now: i64) -> f64 {
        self.purge(now);
        let sum: f64 = self.samples.iter().map(|(_, v)| v).sum();
        sum / (self.window_ms(now) as f64 / 1000.0)
    }
}

/// What a rate counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Produce,
    Fetch,
}

impl Kind {
    /// The quota key that bounds it.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Produce => PRODUCER_BYTE_RATE,
            Kind::Fetch => CONSUMER_BYTE_RATE,
        }
    }
}

/// A rate's key: what it counts and its (user, client id) tags.
type RateKey = (Kind, String, String);

/// The rates of the quota entities seen, broker-wide, with when each was last recorded.
#[derive(Default)]
pub struct QuotaManager {
    rates: Mutex<HashMap<RateKey, (Rate, i64)>>,
}

/// Entries kept before idle rates are dropped.
const MAX_RATES: usize = 10_000;

impl QuotaManager {
    /// Records `bytes` for (`user`, `client`) and returns how long to throttle (0: within its
    /// quota, or no quota applies).
    pub fn record(
        &self,
        kind: Kind,
        quotas: &Quotas,
        user: &str,
        client: &str,
        bytes: f64,
        now: i64,
    ) -> i32 {
        let Some((bound, (ut, ct))) = resolve(quotas, user, client, kind.key()) else {
            return 0;
        };
        let mut rates = self.rates.lock();
        if rates.len() >= MAX_RATES {
            let idle = now - SAMPLES as i64 * WINDOW_MS;
            rates.retain(|_, (_, last)| *last >= idle);
        }
        let (rate, last) = rates.entry((kind, ut, ct)).or_default();
        *last = now;
        rate.record(bytes, now);
        let observed = rate.measure(now);
        if bound <= 0.0 {
            // A zero quota: nothing may pass.
            return if observed > 0.0 {
                MAX_THROTTLE_MS as i32
            } else {
                0
            };
        }
        if observed <= bound {
            return 0;
        }
        let throttle = (observed - bound) / bound * rate.window_ms(now) as f64;
        throttle.round().clamp(0.0, MAX_THROTTLE_MS as f64) as i32
    }

    /// Takes `bytes` back out of the rate (a throttled fetch sends no records).
    pub fn unrecord(
        &self,
        kind: Kind,
        quotas: &Quotas,
        user: &str,
        client: &str,
        bytes: f64,
        now: i64,
    ) {
        let Some((_, (ut, ct))) = resolve(quotas, user, client, kind.key()) else {
            return;
        };
        if let Some((rate, _)) = self.rates.lock().get_mut(&(kind, ut, ct)) {
            rate.record(-bytes, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(parts: &[(&str, Option<&str>)]) -> Entity {
        let mut e: Entity = parts
            .iter()
            .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
            .collect();
        e.sort();
        e
    }

    #[test]
    fn precedence_is_kafkas() {
        let mut q = Quotas::new();
        let mut set = |parts: &[(&str, Option<&str>)], v: f64| {
            q.entry(entity(parts))
                .or_default()
                .insert(PRODUCER_BYTE_RATE.into(), v);
        };
        set(&[(CLIENT_ID, None)], 8.0);
        set(&[(CLIENT_ID, Some("c"))], 7.0);
        set(&[(USER, None)], 6.0);
        set(&[(USER, None), (CLIENT_ID, None)], 5.0);
        set(&[(USER, None), (CLIENT_ID, Some("c"))], 4.0);
        set(&[(USER, Some("u"))], 3.0);
        set(&[(USER, Some("u")), (CLIENT_ID, None)], 2.0);
        set(&[(USER, Some("u")), (CLIENT_ID, Some("c"))], 1.0);
        let r = |q: &Quotas, u: &str, c: &str| resolve(q, u, c, PRODUCER_BYTE_RATE);
        assert_eq!(r(&q, "u", "c"), Some((1.0, ("u".into(), "c".into()))));
        assert_eq!(r(&q, "u", "x"), Some((2.0, ("u".into(), "x".into()))));
        assert_eq!(r(&q, "v", "c"), Some((4.0, ("v".into(), "c".into()))));
        assert_eq!(r(&q, "v", "x"), Some((5.0, ("v".into(), "x".into()))));
        q.remove(&entity(&[(USER, Some("u")), (CLIENT_ID, None)]));
        q.remove(&entity(&[(USER, Some("u")), (CLIENT_ID, Some("c"))]));
        assert_eq!(
            r(&q, "u", "c"),
            Some((3.0, ("u".into(), String::new()))),
            "a user's quota is shared by its clients"
        );
        let only_clients: Quotas = q
            .into_iter()
            .filter(|(e, _)| e.iter().all(|(t, _)| t == CLIENT_ID))
            .collect();
        assert_eq!(
            r(&only_clients, "u", "c"),
            Some((7.0, (String::new(), "c".into())))
        );
        assert_eq!(
            r(&only_clients, "u", "x"),
            Some((8.0, (String::new(), "x".into())))
        );
        assert_eq!(resolve(&only_clients, "u", "c", CONSUMER_BYTE_RATE), None);
    }

    #[test]
    fn throttle_time_is_the_time_to_get_back_under_the_quota() {
        let mut q = Quotas::new();
        q.entry(entity(&[(USER, Some("u"))]))
            .or_default()
            .insert(PRODUCER_BYTE_RATE.into(), 1000.0);
        let m = QuotaManager::default();
        // 10,000 bytes in the first window: measured over 10 s (the minimum window), the rate
        // is 1,000 B/s — at the quota, not over it.
        assert_eq!(m.record(Kind::Produce, &q, "u", "c", 10_000.0, 0), 0);
        // 1,000 more: 11,000 B over 10 s = 1,100 B/s, 10% over: throttled 10% of 10 s.
        assert_eq!(m.record(Kind::Produce, &q, "u", "c", 1_000.0, 0), 1000);
        // Unrecorded (a throttled fetch), the rate is back at the quota.
        m.unrecord(Kind::Produce, &q, "u", "c", 1_000.0, 0);
        assert_eq!(m.record(Kind::Produce, &q, "u", "c", 0.0, 0), 0);
        // Another user has no quota.
        assert_eq!(m.record(Kind::Produce, &q, "v", "c", 1e9, 0), 0);
        // Samples older than 11 windows are forgotten.
        assert_eq!(m.record(Kind::Produce, &q, "u", "c", 0.0, 12_000), 0);
    }
}
