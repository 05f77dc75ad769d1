//! [`Api`]: a Kafka API key, whether or not `kafka-protocol` 0.18's `ApiKey` knows it.
//!
//! Kafka 4.4 serves APIs the crate has no key for (the Streams rebalance protocol, 88 and 89).
//! Everything keyed by API — the handler registry, header versions, response framing, request
//! metrics, the fuzz target — is keyed by `Api`, so such an API is served like any other once
//! its codec exists in this module's siblings.

use kafka_protocol::messages::ApiKey;

/// A wire API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Api(pub i16);

/// APIs Kafka 4.4 serves that `ApiKey` lacks: (key, name, first flexible version).
const EXTRA: &[(i16, &str, i16)] = &[
    (88, "StreamsGroupHeartbeat", 0),
    (89, "StreamsGroupDescribe", 0),
];

impl Api {
    pub const STREAMS_GROUP_HEARTBEAT: Api = Api(88);
    pub const STREAMS_GROUP_DESCRIBE: Api = Api(89);

    /// The crate's key as an `Api` (usable in consts: `Api::of(ApiKey::Produce)`).
    pub const fn of(key: ApiKey) -> Api {
        Api(key as i16)
    }

    /// The crate's key, when the crate has one (and so message types for some versions).
    pub fn kafka(self) -> Option<ApiKey> {
        ApiKey::try_from(self.0).ok()
    }

    fn extra(self) -> Option<&'static (i16, &'static str, i16)> {
        EXTRA.iter().find(|e| e.0 == self.0)
    }

    /// A key the broker can frame: one the crate knows or one listed here. Anything else is
    /// an unknown API (the connection is closed, as Kafka does).
    pub fn known(self) -> bool {
        self.kafka().is_some() || self.extra().is_some()
    }

    /// Kafka's name of the API (`Produce`, `StreamsGroupHeartbeat`): the `api` label of
    /// request metrics and the name in logs.
    pub fn name(self) -> &'static str {
        if let Some(e) = self.extra() {
            return e.1;
        }
        match self.kafka() {
            Some(k) => kafka_name(k),
            None => "Unknown",
        }
    }

    /// Request header version for a request at `version` (2 when flexible, else 1).
    pub fn request_header_version(self, version: i16) -> i16 {
        match (self.kafka(), self.extra()) {
            (Some(k), _) => k.request_header_version(version),
            (None, Some(e)) if version >= e.2 => 2,
            _ => 1,
        }
    }

    /// Response header version for a response at `version` (1 when flexible, else 0;
    /// ApiVersions is always 0 so clients can read it before negotiating).
    pub fn response_header_version(self, version: i16) -> i16 {
        match (self.kafka(), self.extra()) {
            (Some(ApiKey::ApiVersions), _) => 0,
            (Some(k), _) => k.response_header_version(version),
            (None, Some(e)) if version >= e.2 => 1,
            _ => 0,
        }
    }

    /// Versions the crate's message types decode (none for an API it lacks).
    pub fn crate_versions(self) -> Option<(i16, i16)> {
        self.kafka().map(|k| {
            let v = k.valid_versions();
            (v.min, v.max)
        })
    }
}

impl From<ApiKey> for Api {
    fn from(key: ApiKey) -> Api {
        Api::of(key)
    }
}

impl PartialEq<ApiKey> for Api {
    fn eq(&self, other: &ApiKey) -> bool {
        self.0 == *other as i16
    }
}

impl std::fmt::Display for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name())
    }
}

/// The crate's `Debug` name of a key, leaked once per key (a fixed set of under 100).
fn kafka_name(key: ApiKey) -> &'static str {
    static NAMES: std::sync::OnceLock<dashmap::DashMap<i16, &'static str>> =
        std::sync::OnceLock::new();
    let names = NAMES.get_or_init(dashmap::DashMap::new);
    if let Some(n) = names.get(&(key as i16)) {
        return *n;
    }
    let name: &'static str = Box::leak(format!("{key:?}").into_boxed_str());
    names.insert(key as i16, name);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_header_versions() {
        assert_eq!(Api::of(ApiKey::Produce).name(), "Produce");
        assert_eq!(Api::STREAMS_GROUP_HEARTBEAT.name(), "StreamsGroupHeartbeat");
        assert_eq!(Api(30000).name(), "Unknown");
        assert!(!Api(30000).known());
        assert!(Api(89).known());
        assert!(
            ApiKey::try_from(88).is_err(),
            "the crate learnt key 88: drop it from EXTRA"
        );
        assert_eq!(Api::STREAMS_GROUP_DESCRIBE.request_header_version(0), 2);
        assert_eq!(Api::STREAMS_GROUP_DESCRIBE.response_header_version(1), 1);
        assert_eq!(Api::of(ApiKey::ApiVersions).response_header_version(4), 0);
        assert_eq!(Api::of(ApiKey::Metadata).request_header_version(12), 2);
        assert_eq!(Api::of(ApiKey::Metadata).request_header_version(8), 1);
        assert_eq!(Api::of(ApiKey::Metadata).response_header_version(12), 1);
    }
}
