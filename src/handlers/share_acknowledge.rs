//! ShareAcknowledge (key 79), versions 1-2 (codec in [`crate::protocol::share`]; v2 adds
//! Renew acknowledgements, KIP-1222, and the lock duration in the response): a share-group
//! member accepts, releases, rejects (or, v2, renews the lock of) records it holds, without
//! fetching.
//!
//! As Kafka 4.4: a null group id or a member id that is not 1-36 characters is
//! INVALID_REQUEST; the share session shares its epochs with ShareFetch — epoch 0 is
//! INVALID_SHARE_SESSION_EPOCH, -1 acknowledges and then ends the session (releasing what the
//! member still holds), any other epoch must be the session's next. Errors per partition:
//! UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER, INVALID_REQUEST
//! (malformed batches), INVALID_RECORD_STATE (records this member does not hold: never
//! acquired, acquired by another member, or its lock expired). A partition's
//! acknowledgements apply all or nothing and are fsynced to `__share_group_state` before the
//! response.
//!
//! Authorization: READ on the share group (top-level GROUP_AUTHORIZATION_FAILED), then READ on
//! each topic (its partitions TOPIC_AUTHORIZATION_FAILED).

use std::sync::Arc;

use bytes::Bytes;
use uuid::Uuid;

use crate::coordinator::share::session::{member_id_valid, Opened};
use crate::handlers::authz::{op, readable_share_target};
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::share::{decode_share_acknowledge, encode_share_acknowledge_response, AckPartitionResponse, ShareAcknowledgeResponse};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(kafka_protocol::messages::ApiKey::ShareAcknowledge), min: 1, max: 2 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let version = ctx.version;
    let req = decode_share_acknowledge(&body, version)?;
    let top = |code: i16| -> Result<Reply, ProtocolError> {
        Ok(Reply::Now(encode_share_acknowledge_response(&ShareAcknowledgeResponse { error_code: code, ..Default::default() }, version)?))
    };
    let (Some(group), true) = (req.group_id.clone(), member_id_valid(req.member_id.as_deref())) else {
        return top(WireError::InvalidRequest.code());
    };
    let member: Arc<str> = Arc::from(req.member_id.clone().unwrap_or_default());
    // READ on the share group, then READ on each topic acknowledged.
    let authz = ctx.authz();
    if !authz.group(op::READ, &group) {
        return top(WireError::GroupAuthorizationFailed.code());
    }
    let mut readable = authz.names(op::READ, crate::security::acl::resource::TOPIC);
    let broker = ctx.broker.clone();
    let Ok(shares) = broker.share_manager().await else {
        return top(WireError::CoordinatorNotAvailable.code());
    };
    let opened = match shares.sessions.lock().on_acknowledge(&group, &member, req.share_session_epoch) {
        Ok(o) => o,
        Err(code) => return top(code),
    };
    let settings = broker.share_settings(&group);
    let lock_ms = settings.partition.lock_ms.clamp(0, i64::from(i32::MAX)) as i32;
    Ok(Reply::Later(Box::pin(async move {
        let mut responses: Vec<(Uuid, Vec<AckPartitionResponse>)> = Vec::new();
        for t in &req.topics {
            let mut parts = Vec::new();
            for p in &t.partitions {
                let (code, message) = match readable_share_target(&broker, &mut readable, &group, t.topic_id, p.partition) {
                    Err(code) => (code, None),
                    Ok(target) => match broker.shares.acknowledge(&member, &target, &p.batches, &settings, req.is_renew_ack).await {
                        Ok(()) => (0, None),
                        Err((code, m)) => (code, Some(m)),
                    },
                };
                parts.push(AckPartitionResponse { partition: p.partition, error_code: code, error_message: message, ..Default::default() });
            }
            responses.push((t.topic_id, parts));
        }
        if opened == Opened::Final {
            broker.shares.end_session(&group, &member);
        }
        encode_share_acknowledge_response(
            &ShareAcknowledgeResponse { acquisition_lock_timeout_ms: lock_ms, responses, ..Default::default() },
            version,
        )
    })))
}
