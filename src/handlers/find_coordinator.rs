//! FindCoordinator (key 10), versions 0-6.
//!
//! This broker coordinates every group and transactional id: key type 0 (group) and 1
//! (transaction) answer with itself, creating `__consumer_offsets` / `__transaction_state` on
//! first use. v4+ batches keys (`coordinator_keys`); each key gets its own entry. Key type 2
//! (share group) and unknown types get INVALID_REQUEST.

use bytes::Bytes;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::FindCoordinator), min: 0, max: 6 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: FindCoordinatorRequest = ctx.decode(body)?;
    let broker = &ctx.broker;
    let txn_ready = if req.key_type == 1 { broker.txn_coordinator().await.map(|_| ()).map_err(|e| e.to_string()) } else { Ok(()) };
    let group_ready = if req.key_type == 0 { broker.group_coordinator().await.map(|_| ()).map_err(|e| e.to_string()) } else { Ok(()) };
    let answer = |key_type: i8| -> (i16, Option<String>) {
        match key_type {
            0 => match &group_ready {
                Ok(()) => (0, None),
                Err(e) => (WireError::CoordinatorNotAvailable.code(), Some(e.clone())),
            },
            1 => match &txn_ready {
                Ok(()) => (0, None),
                Err(e) => (WireError::CoordinatorNotAvailable.code(), Some(e.clone())),
            },
            _ => (WireError::InvalidRequest.code(), Some(format!("unsupported coordinator key type {key_type}"))),
        }
    };
    let host = StrBytes::from_string(broker.config.advertised_host.clone());
    let port = i32::from(broker.config.advertised_port);
    let node = BrokerId(broker.config.node_id);
    let mut resp = FindCoordinatorResponse::default();
    if ctx.version >= 4 {
        resp.coordinators = req
            .coordinator_keys
            .iter()
            .map(|k| {
                let (code, msg) = answer(req.key_type);
                let c = Coordinator::default().with_key(k.clone()).with_error_code(code).with_error_message(msg.map(StrBytes::from_string));
                if code == 0 {
                    c.with_node_id(node).with_host(host.clone()).with_port(port)
                } else {
                    c.with_node_id(BrokerId(-1)).with_port(-1)
                }
            })
            .collect();
    } else {
        let (code, msg) = answer(req.key_type);
        resp.error_code = code;
        if ctx.version >= 1 {
            resp.error_message = msg.map(StrBytes::from_string);
        }
        if code == 0 {
            resp.node_id = node;
            resp.host = host;
            resp.port = port;
        } else {
            resp.node_id = BrokerId(-1);
            resp.port = -1;
        }
    }
    ctx.reply(&resp)
}
