//! InitProducerId (key 22), versions 0-5.
//!
//! Idempotent producers (no transactional id) get a fresh producer id with epoch 0; ids come
//! from durably reserved blocks, so none is ever handed out twice, even across restarts (a
//! producer that asks again, v3+ with its old id/epoch, also gets a fresh id, as in Kafka).
//! Transactional producers go to the transaction coordinator: a new transactional id gets a
//! new producer id; a known one gets its epoch bumped, aborting and fencing any transaction
//! the previous incarnation left open. Transaction timeouts above
//! `transaction.max.timeout.ms` get INVALID_TRANSACTION_TIMEOUT.
//!
//! Authorization: a transactional id needs WRITE on it (TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
//! an idempotent producer IDEMPOTENT_WRITE on the cluster or WRITE on some topic (Kafka's
//! authorizeByResourceType), else CLUSTER_AUTHORIZATION_FAILED.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::handlers::authz::op;
use crate::handlers::{blocking, Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::InitProducerId), min: 0, max: 5 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: InitProducerIdRequest = ctx.decode(body)?;
    let mut resp = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    let broker = ctx.broker.clone();
    // WRITE on the transactional id; an idempotent producer needs IDEMPOTENT_WRITE on the
    // cluster (denial not audited) or, failing that, WRITE on some topic.
    let authz = ctx.authz();
    let txn = req.transactional_id.as_ref().map(|t| t.0.as_str()).filter(|t| !t.is_empty());
    let denied = match txn {
        Some(t) => (!authz.transactional_id(op::WRITE, t)).then_some(WireError::TransactionalIdAuthorizationFailed),
        None => (!authz.cluster_quietly(op::IDEMPOTENT_WRITE) && !authz.any_of_type(op::WRITE, crate::security::acl::resource::TOPIC)).then_some(WireError::ClusterAuthorizationFailed),
    };
    if let Some(e) = denied {
        resp.error_code = e.code();
        return ctx.reply(&resp);
    }
    if !broker.metadata.producer_id_ready() {
        // A new block of ids costs a metadata fsync: off the async workers.
        let b = broker.clone();
        if let Err(e) = blocking(move || b.metadata.reserve_producer_ids()).await? {
            tracing::error!(error = %e, "cannot reserve producer ids");
            resp.error_code = WireError::KafkaStorageError.code();
            return ctx.reply(&resp);
        }
    }
    let alloc = move || {
        broker.metadata.allocate_producer_id().map_err(|e| {
            tracing::error!(error = %e, "cannot reserve producer ids");
            WireError::KafkaStorageError.code()
        })
    };
    let Some(txn_id) = req.transactional_id.as_ref().map(|t| t.0.to_string()).filter(|t| !t.is_empty()) else {
        match alloc() {
            Ok(id) => {
                resp.producer_id = ProducerId(id);
                resp.producer_epoch = 0;
            }
            Err(code) => resp.error_code = code,
        }
        return ctx.reply(&resp);
    };
    let broker = ctx.broker.clone();
    let version = ctx.version;
    let timeout = req.transaction_timeout_ms;
    Ok(Reply::Later(Box::pin(async move {
        let result = match broker.txn_coordinator().await {
            Err(_) => Err(WireError::CoordinatorNotAvailable.code()),
            Ok(c) => c.init_producer_id(&txn_id, timeout, alloc).await,
        };
        match result {
            Ok((id, epoch)) => {
                resp.producer_id = ProducerId(id);
                resp.producer_epoch = epoch;
            }
            Err(code) => resp.error_code = code,
        }
        encode_body(&resp, version)
    })))
}
