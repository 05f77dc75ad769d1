//! DeleteTopics (key 20), versions 1-6 (all that Kafka 4.1 serves).
//!
//! Deletes topics by name (v1-5 `topic_names`; v6 `topics` with a name) or by topic id (v6).
//! The metadata record is fsynced, the partitions leave the broker at once (delayed fetches on
//! them are woken) and their directories are removed. As Kafka's controller answers: unknown
//! name UNKNOWN_TOPIC_OR_PARTITION, unknown id UNKNOWN_TOPIC_ID, a name or id given twice (or a
//! name and the id it maps to) INVALID_REQUEST, both or neither of name and id INVALID_REQUEST.
//! With `delete.topic.enable=false` every topic gets TOPIC_DELETION_DISABLED (INVALID_REQUEST
//! before v3, which lacks that code). v6 results carry the topic id (zero when unknown).
//!
//! Divergence: the coordinators' internal topics (`__consumer_offsets`,
//! `__transaction_state`) cannot be deleted (INVALID_REQUEST): their state lives in them and
//! Strom does not rebuild it mid-run. Kafka's own tools refuse this client-side anyway.
//!
//! Authorization: DELETE on the cluster (denial not audited) allows every topic; else DESCRIBE
//! and DELETE on each: a name it may not describe is TOPIC_AUTHORIZATION_FAILED whether it
//! exists or not, an id it may not delete answers TOPIC_AUTHORIZATION_FAILED with the name only
//! if it may describe it.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::coordinator::txn::TXN_TOPIC;
use crate::coordinator::OFFSETS_TOPIC;
use crate::handlers::authz::op;
use crate::handlers::errors::admin_error_code;
use crate::security::acl::resource;
use crate::handlers::{blocking, Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::DeleteTopics),
    min: 1,
    max: 6,
};

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DeleteTopicsRequest = ctx.decode(body)?;
    // A metadata fsync and every partition directory removed: on the blocking pool, so this connection's worker thread serves others meanwhile.
    blocking(move || respond(ctx, req)).await?
}

fn respond(ctx: RequestContext, req: DeleteTopicsRequest) -> Result<Reply, ProtocolError> {
    let broker = &ctx.broker;
    // (name, id) as given; v1-5 only have names.
    let given: Vec<(Option<String>, Uuid)> = if ctx.version >= 6 {
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let mut out = Results {
        v6: ctx.version >= 6,
        v5: ctx.version >= 5,
        list: Vec::new(),
    };

    if !broker.config.delete_topic_enable {
        let code = if ctx.version >= 3 {
            WireError::TopicDeletionDisabled.code()
        } else {
            WireError::InvalidRequest.code()
        };
        for (name, id) in given {
            out.push(name, id, code, None);
        }
        return ctx.reply(&DeleteTopicsResponse::default().with_responses(out.list));
    }

    // Sort the input into valid names and ids; duplicates and malformed entries answer at once.
    let mut names: Vec<String> = Vec::new();
    let mut ids: Vec<Uuid> = Vec::new();
    for (name, id) in given {
        match (name, id.is_nil()) {
            (None, true) => out.push(
                None,
                id,
                WireError::InvalidRequest.code(),
                Some("Neither topic name nor id were specified.".into()),
            ),
            (Some(name), false) => out.push(
                Some(name),
                id,
                WireError::InvalidRequest.code(),
                Some("You may not specify both topic name and topic id.".into()),
            ),
            (Some(name), true) => names.push(name),
            (None, false) => ids.push(id),
        }
    }
    let (names, dup_names) = split_duplicates(names);
    let (ids, dup_ids) = split_duplicates(ids);
    for name in &dup_names {
        out.push(
            Some(name.clone()),
            Uuid::nil(),
            WireError::InvalidRequest.code(),
            Some("Duplicate topic name.".into()),
        );
    }
    for id in &dup_ids {
        out.push(
            None,
            *id,
            WireError::InvalidRequest.code(),
            Some("Duplicate topic id.".into()),
        );
    }

    // DELETE on the cluster (denial not audited) allows every topic; else DESCRIBE and DELETE
    // on each: a name the principal may not describe is TOPIC_AUTHORIZATION_FAILED whether it
    // exists or not, and an id it may not describe answers without the name.
    let authz = ctx.authz();
    let all = authz.cluster_quietly(op::DELETE);
    let mut describable = authz.names(op::DESCRIBE, resource::TOPIC);
    let mut deletable = authz.names(op::DELETE, resource::TOPIC);
    let denied = WireError::TopicAuthorizationFailed.code();

    // Resolve everything to (id -> name) before deleting anything.
    let dup_id_set: HashSet<Uuid> = dup_ids.iter().copied().collect();
    let mut targets: HashMap<Uuid, String> = HashMap::new();
    let mut order: Vec<Uuid> = Vec::new();
    for id in ids {
        match broker.metadata.topic_by_id(&id) {
            Some(meta) if !all && !deletable.allows(&meta.name) => {
                let name = describable.allows(&meta.name).then_some(meta.name);
                out.push(name, id, denied, None);
            }
            Some(meta) => {
                targets.insert(id, meta.name);
                order.push(id);
            }
            None => out.push(
                None,
                id,
                WireError::UnknownTopicId.code(),
                Some("This server does not host this topic ID.".into()),
            ),
        }
    }
    let mut by_name_clash = HashSet::new();
    for name in names {
        if !all && !describable.allows(&name) {
            out.push(Some(name), Uuid::nil(), denied, None);
            continue;
        }
        let Some(meta) = broker.metadata.topic(&name) else {
            out.push(
                Some(name),
                Uuid::nil(),
                WireError::UnknownTopicOrPartition.code(),
                Some("This server does not host this topic-partition.".into()),
            );
            continue;
        };
        if dup_id_set.contains(&meta.id) || targets.contains_key(&meta.id) {
            // The name maps to an id also given: neither is deleted.
            targets.remove(&meta.id);
            by_name_clash.insert(meta.id);
            out.push(
                Some(name),
                meta.id,
                WireError::InvalidRequest.code(),
                Some("The provided topic name maps to an ID that was already supplied.".into()),
            );
            continue;
        }
        if !all && !deletable.allows(&name) {
            out.push(Some(name), meta.id, denied, None);
            continue;
        }
        targets.insert(meta.id, name);
        order.push(meta.id);
    }

    for id in order {
        if by_name_clash.contains(&id) {
            continue;
        }
        let Some(name) = targets.get(&id).cloned() else {
            continue;
        };
        if name == OFFSETS_TOPIC || name == TXN_TOPIC {
            out.push(
                Some(name.clone()),
                id,
                WireError::InvalidRequest.code(),
                Some(format!(
                    "Topic {name} is internal and cannot be deleted: Strom keeps coordinator state in it."
                )),
            );
            continue;
        }
        match broker.delete_topic(&name) {
            Ok(_) => out.push(Some(name), id, 0, None),
            Err(e) => out.push(Some(name), id, admin_error_code(&e), Some(e.to_string())),
        }
    }
    ctx.reply(&DeleteTopicsResponse::default().with_responses(out.list))
}

/// Splits `items` into those given once and those given more than once (each reported once),
/// keeping first-seen order. Hash-based: a request may carry many thousands of names.
fn split_duplicates<T: Eq + std::hash::Hash + Clone>(items: Vec<T>) -> (Vec<T>, Vec<T>) {
    let mut counts: HashMap<T, usize> = HashMap::with_capacity(items.len());
    for x in &items {
        *counts.entry(x.clone()).or_default() += 1;
    }
    let mut reported = HashSet::new();
    let (mut once, mut dups) = (Vec::new(), Vec::new());
    for x in items {
        if counts.get(&x).copied().unwrap_or(0) > 1 {
            if reported.insert(x.clone()) {
                dups.push(x);
            }
        } else {
            once.push(x);
        }
    }
    (once, dups)
}

struct Results {
    v5: bool,
    v6: bool,
    list: Vec<DeletableTopicResult>,
}

impl Results {
    fn push(&mut self, name: Option<String>, id: Uuid, code: i16, message: Option<String>) {
        let mut r = DeletableTopicResult::default()
            .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
            .with_error_code(code);
        if self.v6 {
            r.topic_id = id;
        }
        if self.v5 {
            r.error_message = message.map(StrBytes::from_string);
        }
        self.list.push(r);
    }
}
