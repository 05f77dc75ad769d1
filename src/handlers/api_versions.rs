//! ApiVersions (key 18), versions 0-5.
//!
//! Advertises exactly the APIs in the handler registry with the version ranges they serve.
//! A request at a version above 5 never reaches this handler: the connection layer answers it
//! in the v0 layout with UNSUPPORTED_VERSION and our ranges, so the client retries lower.
//! v3+ requests carry the client software name/version, which we validate like Kafka
//! (INVALID_REQUEST when malformed). v3+ advertises the finalized features we implement:
//! `group.version=1` (KIP-848), `streams.version=1` (KIP-1071), `transaction.version=2`
//! (KIP-890) and `share.version=2` (KIP-932 share groups with KIP-1191 dead-letter topics).
//!
//! v5 (KIP-1242; codec in [`crate::protocol::v44`], the response is v4's bytes) carries the
//! cluster id and node id the client believes it is talking to: a cluster id without a node
//! id or the reverse is INVALID_REQUEST; a different cluster or node is REBOOTSTRAP_REQUIRED,
//! so a client whose address now reaches another broker re-bootstraps. As in Kafka, an error
//! answer (at any version) carries only the error code.
//!
//! Authorization: none — served to everyone, before authentication too (as Kafka).

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use crate::handlers::{advertised, Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, v44, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::ApiVersions), min: 0, max: 5 };

/// (feature, level): `group.version` 1 = the KIP-848 consumer group protocol is served;
/// `transaction.version` 2 = Transactions V2 (KIP-890: EndTxn v5 epoch bumps, implicit adds).
const FEATURES: &[(&str, i16)] = &[("group.version", 1), ("streams.version", 1), ("transaction.version", 2)];

/// `share.version` 2: share groups (1) with dead-letter topics (2, KIP-1191), Kafka 4.4's default.
const SHARE_FEATURE: (&str, i16) = ("share.version", 2);

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let (req, v5) = if ctx.version >= 5 {
        let (req, v5) = v44::decode_api_versions_v5(&body)?;
        (req, Some(v5))
    } else {
        (ctx.decode::<ApiVersionsRequest>(body)?, None)
    };
    let invalid = ctx.version >= 3
        && (!valid_software_field(req.client_software_name.as_str()) || !valid_software_field(req.client_software_version.as_str()));
    let code = match &v5 {
        _ if invalid => WireError::InvalidRequest.code(),
        Some(v5) if v5.cluster_id.is_none() != (v5.node_id == -1) => WireError::InvalidRequest.code(),
        Some(v5) if v5.cluster_id.as_ref().is_some_and(|c| *c != ctx.broker.metadata.cluster_id || v5.node_id != ctx.broker.config.node_id) => {
            WireError::RebootstrapRequired.code()
        }
        _ => 0,
    };
    if code != 0 {
        return Ok(Reply::Now(encode_body(&ApiVersionsResponse::default().with_error_code(code), ctx.version.min(4))?));
    }
    let keys: Vec<ApiVersion> = advertised()
        .into_iter()
        .map(|(key, min, max)| ApiVersion::default().with_api_key(key).with_min_version(min).with_max_version(max))
        .collect();
    let mut resp = ApiVersionsResponse::default().with_api_keys(keys);
    if ctx.version >= 3 {
        // Features this broker implements, finalized at their highest level (KIP-584).
        let features: Vec<(&str, i16)> = FEATURES.iter().copied().chain(std::iter::once(SHARE_FEATURE)).collect();
        resp.supported_features = features
            .iter()
            .map(|&(name, level)| SupportedFeatureKey::default().with_name(StrBytes::from_static_str(name)).with_min_version(0).with_max_version(level))
            .collect();
        resp.finalized_features = features
            .iter()
            .map(|&(name, level)| FinalizedFeatureKey::default().with_name(StrBytes::from_static_str(name)).with_min_version_level(level).with_max_version_level(level))
            .collect();
        resp.finalized_features_epoch = 1;
    }
    // v5's response is v4's bytes.
    Ok(Reply::Now(encode_body(&resp, ctx.version.min(4))?))
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
