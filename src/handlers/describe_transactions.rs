//! DescribeTransactions (key 65), version 0.
//!
//! State, timeout, start time, producer id/epoch and partitions of each transactional id;
//! unknown ids, including expired ones, get TRANSACTIONAL_ID_NOT_FOUND.
//!
//! Authorization: DESCRIBE on each transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
//! topics of a described transaction the principal may not DESCRIBE are left out.

use bytes::Bytes;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{ApiKey, DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::DescribeTransactions), min: 0, max: 0 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DescribeTransactionsRequest = ctx.decode(body)?;
    let broker = ctx.broker.clone();
    let version = ctx.version;
    // DESCRIBE on each transactional id; the topics of a described transaction that the
    // principal may not describe are left out silently.
    let authz = ctx.authz();
    let mut describable = authz.names(op::DESCRIBE, crate::security::acl::resource::TOPIC);
    Ok(Reply::Later(Box::pin(async move {
        let mut states = Vec::with_capacity(req.transactional_ids.len());
        for id in req.transactional_ids {
            if !authz.transactional_id(op::DESCRIBE, id.0.as_str()) {
                states.push(TransactionState::default().with_transactional_id(id).with_error_code(WireError::TransactionalIdAuthorizationFailed.code()));
                continue;
            }
            let meta = if broker.txns.is_loaded() { broker.txns.describe(id.0.as_str()).await } else { None };
            let mut st = TransactionState::default().with_transactional_id(id);
            match meta {
                None => st.error_code = WireError::TransactionalIdNotFound.code(),
                Some(m) => {
                    let mut topics: Vec<TopicData> = Vec::new();
                    for (t, p) in m.partitions.iter().filter(|(t, _)| describable.allows(t)) {
                        match topics.last_mut() {
                            Some(td) if td.topic.0.as_str() == t => td.partitions.push(*p),
                            _ => topics.push(TopicData::default().with_topic(TopicName(StrBytes::from_string(t.clone()))).with_partitions(vec![*p])),
                        }
                    }
                    st = st
                        .with_transaction_state(StrBytes::from_static_str(m.state.name()))
                        .with_transaction_timeout_ms(m.timeout_ms)
                        .with_transaction_start_time_ms(m.start_ms)
                        .with_producer_id(ProducerId(m.producer_id))
                        .with_producer_epoch(m.producer_epoch)
                        .with_topics(topics);
                }
            }
            states.push(st);
        }
        encode_body(&DescribeTransactionsResponse::default().with_transaction_states(states), version)
    })))
}
