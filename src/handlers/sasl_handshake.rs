//! SaslHandshake (key 17), versions 0-1 (as Kafka 4.4).
//!
//! Authentication itself happens on the connection before any handler runs
//! (`server::authenticate`): a SASL listener answers SaslHandshake there. A SaslHandshake that
//! reaches this handler came on a listener without SASL, or after authentication with
//! re-authentication off; Kafka's KafkaApis answers both ILLEGAL_SASL_STATE, and so does this.
//!
//! Authorization: none (it is authentication).

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, SaslHandshakeRequest, SaslHandshakeResponse};

use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::SaslHandshake),
    min: 0,
    max: 1,
};

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let _: SaslHandshakeRequest = ctx.decode(body)?;
    let resp = SaslHandshakeResponse::default().with_error_code(WireError::IllegalSaslState.code());
    ctx.reply(&resp)
}
