//! EndTxn (key 26), versions 0-4 (Transactions V1; v5 belongs to V2, not advertised).
//!
//! Commits or aborts the producer's open transaction: markers are written to every partition
//! of it and fsynced before the answer. A retry of a completed EndTxn succeeds; the wrong
//! outcome or no open transaction is INVALID_TXN_STATE; a stale epoch is PRODUCER_FENCED.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, EndTxnRequest, EndTxnResponse};

use crate::handlers::{ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::EndTxn, min: 0, max: 4 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: EndTxnRequest = ctx.decode(body)?;
    let broker = ctx.broker.clone();
    let version = ctx.version;
    Ok(Reply::Later(Box::pin(async move {
        let code = match broker.txn_coordinator().await {
            Err(_) => WireError::CoordinatorNotAvailable.code(),
            Ok(c) => c.end_txn(req.transactional_id.0.as_str(), req.producer_id.0, req.producer_epoch, req.committed).await.err().unwrap_or(0),
        };
        // Older clients know INVALID_PRODUCER_EPOCH where newer ones know PRODUCER_FENCED.
        let code = if code == WireError::ProducerFenced.code() && version < 2 { WireError::InvalidProducerEpoch.code() } else { code };
        encode_body(&EndTxnResponse::default().with_error_code(code), version)
    })))
}
