//! ApiVersions (key 18), versions 0-4.
//!
//! Advertises exactly the APIs in the handler registry with the version ranges they serve.
//! A request at a version above 4 never reaches this handler: the connection layer answers it
//! in the v0 layout with UNSUPPORTED_VERSION and our ranges, so the client retries lower.
//! v3+ requests carry the client software name/version, which we validate like Kafka
//! (INVALID_REQUEST when malformed). No features are finalized yet (transaction.version,
//! group.version come with the capabilities that need them).

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use crate::handlers::{advertised, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::ApiVersions, min: 0, max: 4 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: ApiVersionsRequest = ctx.decode(body)?;
    let keys: Vec<ApiVersion> = advertised()
        .into_iter()
        .map(|(key, min, max)| ApiVersion::default().with_api_key(key).with_min_version(min).with_max_version(max))
        .collect();
    let mut resp = ApiVersionsResponse::default().with_api_keys(keys);
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
