//! EndTxn (key 26), versions 0-5.
//!
//! Commits or aborts the producer's open transaction: markers are written to every partition
//! of it and fsynced before the answer. A retry of a completed EndTxn succeeds; the wrong
//! outcome or no open transaction is INVALID_TXN_STATE; a stale epoch is PRODUCER_FENCED.
//! v5 is Transactions V2 (KIP-890): the epoch is bumped with the markers and the new producer
//! id/epoch are returned; an empty transaction may be aborted.
//!
//! Authorization: WRITE on the transactional id, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, EndTxnRequest, EndTxnResponse, ProducerId};

use crate::handlers::authz::op;
use crate::handlers::{blocking, Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::EndTxn), min: 0, max: 5 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: EndTxnRequest = ctx.decode(body)?;
    if !ctx.authz().transactional_id(op::WRITE, req.transactional_id.0.as_str()) {
        let resp = EndTxnResponse::default().with_error_code(WireError::TransactionalIdAuthorizationFailed.code()).with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
        return ctx.reply(&resp);
    }
    let broker = ctx.broker.clone();
    let version = ctx.version;
    Ok(Reply::Later(Box::pin(async move {
        let bump = version >= 5;
        if bump && !broker.metadata.producer_id_ready() {
            // A new block of ids costs a metadata fsync: off the async workers (a failure
            // shows again in `alloc`, if an id is needed).
            let b = broker.clone();
            let _ = blocking(move || b.metadata.reserve_producer_ids()).await?;
        }
        let alloc = || broker.metadata.allocate_producer_id().map_err(|_| WireError::KafkaStorageError.code());
        let mut resp = EndTxnResponse::default();
        let result = match broker.txn_coordinator().await {
            Err(_) => Err(WireError::CoordinatorNotAvailable.code()),
            Ok(c) => c.end_txn(req.transactional_id.0.as_str(), req.producer_id.0, req.producer_epoch, req.committed, bump, alloc).await,
        };
        let code = match result {
            Ok((pid, epoch)) => {
                if bump {
                    resp.producer_id = ProducerId(pid);
                    resp.producer_epoch = epoch;
                }
                0
            }
            Err(code) => {
                if bump {
                    resp.producer_id = ProducerId(-1);
                    resp.producer_epoch = -1;
                }
                code
            }
        };
        // Older clients know INVALID_PRODUCER_EPOCH where newer ones know PRODUCER_FENCED.
        let code = if code == WireError::ProducerFenced.code() && version < 2 { WireError::InvalidProducerEpoch.code() } else { code };
        resp.error_code = code;
        encode_body(&resp, version)
    })))
}
