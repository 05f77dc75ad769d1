//! InitProducerId (key 22), versions 0-5.
//!
//! Idempotent producers (no transactional id) get a fresh producer id with epoch 0; ids come
//! from durably reserved blocks, so none is ever handed out twice, even across restarts (a
//! producer that asks again, v3+ with its old id/epoch, also gets a fresh id, as in Kafka).
//! Requests with a transactional id need the transaction coordinator, which this broker does
//! not run yet: they get NOT_COORDINATOR (FindCoordinator is not advertised either).

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::handlers::{ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::InitProducerId, min: 0, max: 5 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: InitProducerIdRequest = ctx.decode(body)?;
    let mut resp = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        resp.error_code = WireError::NotCoordinator.code();
        return ctx.reply(&resp);
    }
    match ctx.broker.metadata.allocate_producer_id() {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot reserve producer ids");
            resp.error_code = WireError::KafkaStorageError.code();
        }
    }
    ctx.reply(&resp)
}
