//! SaslAuthenticate (key 36), versions 0-2 (as Kafka 4.4).
//!
//! The exchange runs on the connection before any handler (`server::authenticate`). One that
//! reaches this handler is out of place — no SASL on the listener, or already authenticated —
//! and is answered ILLEGAL_SASL_STATE, as Kafka's KafkaApis does.
//!
//! Authorization: none (it is authentication).

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::SaslAuthenticate),
    min: 0,
    max: 2,
};

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let _: SaslAuthenticateRequest = ctx.decode(body)?;
    let resp = SaslAuthenticateResponse::default()
        .with_error_code(WireError::IllegalSaslState.code())
        .with_error_message(Some(StrBytes::from_static_str(
            "SaslAuthenticate request received after successful authentication",
        )));
    ctx.reply(&resp)
}
