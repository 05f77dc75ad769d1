//! DescribeAcls (key 29), versions 1-3 (as Kafka 4.4, which removed v0).
//!
//! No authorizer is configured (`authorizer.class.name` is not served yet): answered
//! SECURITY_DISABLED "No Authorizer is configured on the broker", as Kafka answers without an
//! authorizer (`kafka-acls --list` prints that error).

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::DescribeAcls),
    min: 1,
    max: 3,
};

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let _: DescribeAclsRequest = ctx.decode(body)?;
    ctx.reply(
        &DescribeAclsResponse::default()
            .with_error_code(WireError::SecurityDisabled.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "No Authorizer is configured on the broker",
            ))),
    )
}
