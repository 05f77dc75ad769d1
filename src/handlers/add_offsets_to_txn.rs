//! AddOffsetsToTxn (key 25), versions 0-4.
//!
//! Adds the `__consumer_offsets` partition of the group to the producer's transaction, so the
//! offsets it then sends with TxnOffsetCommit commit or abort with the transaction.
//!
//! Authorization: WRITE on the transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), then
//! READ on the group (GROUP_AUTHORIZATION_FAILED).

use bytes::Bytes;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ApiKey};

use crate::coordinator::{partition_for, OFFSETS_TOPIC};
use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::AddOffsetsToTxn), min: 0, max: 4 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: AddOffsetsToTxnRequest = ctx.decode(body)?;
    let broker = ctx.broker.clone();
    let version = ctx.version;
    // WRITE on the transactional id, then READ on the group.
    let authz = ctx.authz();
    let denied = if !authz.transactional_id(op::WRITE, req.transactional_id.0.as_str()) {
        Some(WireError::TransactionalIdAuthorizationFailed)
    } else if !authz.group(op::READ, req.group_id.0.as_str()) {
        Some(WireError::GroupAuthorizationFailed)
    } else {
        None
    };
    if let Some(e) = denied {
        return ctx.reply(&AddOffsetsToTxnResponse::default().with_error_code(e.code()));
    }
    Ok(Reply::Later(Box::pin(async move {
        let code = match broker.txn_coordinator().await {
            Err(_) => WireError::CoordinatorNotAvailable.code(),
            Ok(c) => {
                let partitions = broker.config.groups.offsets_partitions;
                let p = partition_for(req.group_id.0.as_str(), partitions);
                c.add_partitions(req.transactional_id.0.as_str(), req.producer_id.0, req.producer_epoch, &[(OFFSETS_TOPIC.to_string(), p)])
                    .await
                    .err()
                    .unwrap_or(0)
            }
        };
        encode_body(&AddOffsetsToTxnResponse::default().with_error_code(code), version)
    })))
}
