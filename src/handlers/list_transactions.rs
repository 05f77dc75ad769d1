//! ListTransactions (key 66), versions 0-2.
//!
//! Every transactional id this coordinator knows, filtered by state names (unknown names are
//! echoed in `unknown_state_filters`), producer ids, (v1) a minimum running duration and (v2)
//! a regular expression on the transactional id. Expired ids (`transactional.id.expiration.ms`)
//! are gone from the coordinator and so from the list.
//!
//! Authorization: only the transactional ids the principal may DESCRIBE are listed (each denial
//! audited, as Kafka).

use bytes::Bytes;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ApiKey, ListTransactionsRequest, ListTransactionsResponse, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::txn_codec::TxnState;
use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::log::now_ms;
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::ListTransactions), min: 0, max: 2 };

const STATES: &[TxnState] = &[
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
    TxnState::Dead,
    TxnState::PrepareEpochFence,
];

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: ListTransactionsRequest = ctx.decode(body)?;
    let mut resp = ListTransactionsResponse::default();
    let pattern = match req.transactional_id_pattern.as_ref().filter(|p| !p.is_empty()) {
        Some(p) => match regex::Regex::new(&format!("^(?:{})$", p.as_str())) {
            Ok(r) => Some(r),
            Err(_) => {
                resp.error_code = WireError::InvalidRegularExpression.code();
                return ctx.reply(&resp);
            }
        },
        None => None,
    };
    let wanted_states: Vec<String> = req.state_filters.iter().map(|s| s.to_string()).collect();
    resp.unknown_state_filters = req.state_filters.iter().filter(|s| !STATES.iter().any(|k| k.name() == s.as_str())).cloned().collect();
    let broker = ctx.broker.clone();
    let version = ctx.version;
    // Only the transactional ids the principal may describe (each denial audited, as Kafka).
    let mut describable = ctx.authz().names(op::DESCRIBE, crate::security::acl::resource::TRANSACTIONAL_ID);
    Ok(Reply::Later(Box::pin(async move {
        if broker.txns.is_loaded() {
            let now = now_ms();
            resp.transaction_states = broker
                .txns
                .list()
                .await
                .into_iter()
                .filter(|(_, _, st, _)| wanted_states.is_empty() || wanted_states.iter().any(|w| w == st.name()))
                .filter(|(_, pid, _, _)| req.producer_id_filters.is_empty() || req.producer_id_filters.iter().any(|f| f.0 == *pid))
                .filter(|(_, _, st, start)| req.duration_filter < 0 || (*st == TxnState::Ongoing && now - start >= req.duration_filter))
                .filter(|(id, _, _, _)| pattern.as_ref().is_none_or(|p| p.is_match(id)))
                .filter(|(id, _, _, _)| describable.allows(id))
                .map(|(id, pid, st, _)| {
                    TransactionState::default()
                        .with_transactional_id(TransactionalId(StrBytes::from_string(id)))
                        .with_producer_id(kafka_protocol::messages::ProducerId(pid))
                        .with_transaction_state(StrBytes::from_static_str(st.name()))
                })
                .collect();
        }
        encode_body(&resp, version)
    })))
}
