//! DeleteTopics (key 20), versions 1-6.
//!
//! Deletes topics by name (v1-5 `topic_names`) or, v6, by name or topic id. The metadata
//! record is fsynced, the partitions leave the broker at once (delayed fetches on them are
//! woken) and their directories are removed. Unknown names get UNKNOWN_TOPIC_OR_PARTITION,
//! unknown ids UNKNOWN_TOPIC_ID; `delete.topic.enable=false` gives TOPIC_DELETION_DISABLED.
//! The coordinators' internal topics cannot be deleted (INVALID_REQUEST): their state lives in
//! them.

use bytes::Bytes;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::txn::TXN_TOPIC;
use crate::coordinator::OFFSETS_TOPIC;
use crate::handlers::errors::admin_error_code;
use crate::handlers::{ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::DeleteTopics, min: 1, max: 6 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DeleteTopicsRequest = ctx.decode(body)?;
    let broker = &ctx.broker;
    // (name if given, id if given)
    let wanted: Vec<(Option<String>, uuid::Uuid)> = if ctx.version >= 6 {
        req.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)).collect()
    } else {
        req.topic_names.iter().map(|n| (Some(n.0.to_string()), uuid::Uuid::nil())).collect()
    };
    let responses = wanted
        .into_iter()
        .map(|(name, id)| {
            let mut r = DeletableTopicResult::default();
            let meta = match &name {
                Some(n) => broker.metadata.topic(n),
                None => broker.metadata.topic_by_id(&id),
            };
            r.name = name.clone().map(|n| TopicName(StrBytes::from_string(n)));
            let Some(meta) = meta else {
                r.error_code = if name.is_some() { WireError::UnknownTopicOrPartition.code() } else { WireError::UnknownTopicId.code() };
                r.topic_id = id;
                return r;
            };
            r.name = Some(TopicName(StrBytes::from_string(meta.name.clone())));
            if ctx.version >= 6 {
                r.topic_id = meta.id;
            }
            if meta.name == OFFSETS_TOPIC || meta.name == TXN_TOPIC {
                r.error_code = WireError::InvalidRequest.code();
                if ctx.version >= 5 {
                    r.error_message = Some(StrBytes::from_string(format!("Topic {} is internal and cannot be deleted.", meta.name)));
                }
                return r;
            }
            if let Err(e) = broker.delete_topic(&meta.name) {
                r.error_code = admin_error_code(&e);
                if ctx.version >= 5 {
                    r.error_message = Some(StrBytes::from_string(e.to_string()));
                }
            }
            r
        })
        .collect();
    ctx.reply(&DeleteTopicsResponse::default().with_responses(responses))
}
