//! CreateAcls (key 30), versions 1-3 (as Kafka 4.4, which removed v0).
//!
//! No authorizer is configured (`authorizer.class.name` is not served yet): every creation
//! is answered SECURITY_DISABLED "No Authorizer is configured.", as Kafka answers without an
//! authorizer — admin tools and MirrorMaker 2 rely on that answer rather than on the API
//! being absent.

use bytes::Bytes;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::CreateAcls),
    min: 1,
    max: 3,
};

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: CreateAclsRequest = ctx.decode(body)?;
    let results = req
        .creations
        .iter()
        .map(|_| {
            AclCreationResult::default()
                .with_error_code(WireError::SecurityDisabled.code())
                .with_error_message(Some(StrBytes::from_static_str(
                    "No Authorizer is configured.",
                )))
        })
        .collect();
    ctx.reply(&CreateAclsResponse::default().with_results(results))
}
