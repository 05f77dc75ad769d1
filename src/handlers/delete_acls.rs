//! DeleteAcls (key 31), versions 1-3 (as Kafka 4.4, which removed v0).
//!
//! No authorizer is configured (`authorizer.class.name` is not served yet): every filter is
//! answered SECURITY_DISABLED "No Authorizer is configured.", as Kafka answers without one.

use bytes::Bytes;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::{ApiKey, DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::DeleteAcls),
    min: 1,
    max: 3,
};

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DeleteAclsRequest = ctx.decode(body)?;
    let results = req
        .filters
        .iter()
        .map(|_| {
            DeleteAclsFilterResult::default()
                .with_error_code(WireError::SecurityDisabled.code())
                .with_error_message(Some(StrBytes::from_static_str(
                    "No Authorizer is configured.",
                )))
        })
        .collect();
    ctx.reply(&DeleteAclsResponse::default().with_filter_results(results))
}
