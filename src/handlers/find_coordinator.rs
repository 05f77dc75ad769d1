//! FindCoordinator (key 10), versions 0-6.
//!
//! On a single node this broker coordinates every group and transactional id: key type 0
//! (group) and 1 (transaction) answer with itself, creating `__consumer_offsets` /
//! `__transaction_state` on first use. In a cluster a group's coordinator is the leader of its
//! `__consumer_offsets` partition, a transactional id's the leader of its `__transaction_state`
//! partition (COORDINATOR_NOT_AVAILABLE while it has none). v4+ batches keys (`coordinator_keys`); each key gets its own entry. Key type 2
//! (share group) and unknown types get INVALID_REQUEST.
//!
//! Authorization: DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED) or transactional id
//! (TRANSACTIONAL_ID_AUTHORIZATION_FAILED) of each key, before anything is looked up or
//! created.

use bytes::Bytes;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::FindCoordinator), min: 0, max: 6 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: FindCoordinatorRequest = ctx.decode(body)?;
    let broker = &ctx.broker;
    // DESCRIBE on the group / transactional id, decided before anything is looked up (or the
    // internal topic created).
    let authz = ctx.authz();
    let keys: Vec<&str> = if ctx.version >= 4 { req.coordinator_keys.iter().map(|k| k.as_str()).collect() } else { vec![req.key.as_str()] };
    let denied: std::collections::HashSet<&str> = keys
        .iter()
        .copied()
        .filter(|k| match req.key_type {
            0 => !authz.group(op::DESCRIBE, k),
            1 => !authz.transactional_id(op::DESCRIBE, k),
            _ => false,
        })
        .collect();
    let needed = keys.iter().any(|k| !denied.contains(k));
    let txn_ready = if req.key_type == 1 && needed { broker.txn_coordinator().await.map(|_| ()).map_err(|e| e.to_string()) } else { Ok(()) };
    let group_ready = if req.key_type == 0 && needed { broker.group_coordinator().await.map(|_| ()).map_err(|e| e.to_string()) } else { Ok(()) };
    // (error, message, node, host, port) for one key.
    let answer = |key_type: i8, key: &str| -> (i16, Option<String>, i32, String, i32) {
        if denied.contains(key) {
            let e = if key_type == 0 { WireError::GroupAuthorizationFailed } else { WireError::TransactionalIdAuthorizationFailed };
            return (e.code(), None, -1, String::new(), -1);
        }
        let ready = match key_type {
            0 => group_ready.clone().and_then(|()| broker.group_coordinator_node(key)),
            1 => txn_ready.clone().and_then(|()| broker.txn_coordinator_node(key)),
            _ => return (WireError::InvalidRequest.code(), Some(format!("unsupported coordinator key type {key_type}")), -1, String::new(), -1),
        };
        // The coordinator's address on the listener this request came through.
        let ready = ready.and_then(|(node, _, _)| {
            broker.registration(node).and_then(|r| r.endpoint(ctx.session.listener())).map(|(h, p)| (node, h, p)).ok_or_else(|| format!("broker {node} has no listener {}", ctx.session.listener()))
        });
        match ready {
            Ok((node, host, port)) => (0, None, node, host, i32::from(port)),
            Err(e) => (WireError::CoordinatorNotAvailable.code(), Some(e), -1, String::new(), -1),
        }
    };
    let mut resp = FindCoordinatorResponse::default();
    if ctx.version >= 4 {
        resp.coordinators = req
            .coordinator_keys
            .iter()
            .map(|k| {
                let (code, msg, node, host, port) = answer(req.key_type, k.as_str());
                Coordinator::default()
                    .with_key(k.clone())
                    .with_error_code(code)
                    .with_error_message(msg.map(StrBytes::from_string))
                    .with_node_id(BrokerId(node))
                    .with_host(StrBytes::from_string(host))
                    .with_port(port)
            })
            .collect();
    } else {
        let (code, msg, node, host, port) = answer(req.key_type, req.key.as_str());
        resp.error_code = code;
        if ctx.version >= 1 {
            resp.error_message = msg.map(StrBytes::from_string);
        }
        resp.node_id = BrokerId(node);
        resp.host = StrBytes::from_string(host);
        resp.port = port;
    }
    ctx.reply(&resp)
}
