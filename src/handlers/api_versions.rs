//! ApiVersions (key 18), versions 0-4.
//!
//! Advertises exactly the APIs in the handler registry with the version ranges they serve.
//! A request at a version above 4 never reaches this handler: the connection layer answers it
//! in the v0 layout with UNSUPPORTED_VERSION and our ranges, so the client retries lower.
//! v3+ requests carry the client software name/version, which we validate like Kafka
//! (INVALID_REQUEST when malformed). v3+ advertises the finalized features we implement:
//! `group.version=1` (KIP-848) and `transaction.version=2` (KIP-890).

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use crate::handlers::{advertised, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::ApiVersions, min: 0, max: 4 };

/// (feature, level): `group.version` 1 = the KIP-848 consumer group protocol is served;
/// `transaction.version` 2 = Transactions V2 (KIP-890: EndTxn v5 epoch bumps, implicit adds).
const FEATURES: &[(&str, i16)] = &[("group.version", 1), ("transaction.version", 2)];

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: ApiVersionsRequest = ctx.decode(body)?;
    let keys: Vec<ApiVersion> = advertised()
        .into_iter()
        .map(|(key, min, max)| ApiVersion::default().with_api_key(key).with_min_version(min).with_max_version(max))
        .collect();
    let mut resp = ApiVersionsResponse::default().with_api_keys(keys);
    if ctx.version >= 3 {
        // Features this broker implements, finalized at their highest level (KIP-584).
        resp.supported_features = FEATURES
            .iter()
            .map(|&(name, level)| SupportedFeatureKey::default().with_name(StrBytes::from_static_str(name)).with_min_version(0).with_max_version(level))
            .collect();
        resp.finalized_features = FEATURES
            .iter()
            .map(|&(name, level)| FinalizedFeatureKey::default().with_name(StrBytes::from_static_str(name)).with_min_version_level(level).with_max_version_level(level))
            .collect();
        resp.finalized_features_epoch = 1;
    }
    if ctx.version >= 3
        && (!valid_software_field(req.client_software_name.as_str()) || !valid_software_field(req.client_software_version.as_str()))
    {
        resp.error_code = WireError::InvalidRequest.code();
    }
    ctx.reply(&resp)
}

/// Kafka's rule: `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let ok_end = |c: u8| c.is_ascii_alphanumeric();
    ok_end(b[0]) && ok_end(b[b.len() - 1]) && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
}

#[cfg(test)]
mod tests {
    #[test]
    fn software_field_rule() {
        assert!(super::valid_software_field("apache-kafka-java"));
        assert!(super::valid_software_field("4.1.0"));
        assert!(!super::valid_software_field(""));
        assert!(!super::valid_software_field("-x"));
        assert!(!super::valid_software_field("a b"));
    }
}
