//! AlterClientQuotas (key 49), versions 0-1.
//!
//! Sets and removes client quotas (`kafka-configs --entity-type users/clients --add-config
//! producer_byte_rate=...`, `kafka-client-quotas`), kept in the metadata log (replicated in a
//! cluster) and enforced by Produce and Fetch ([`crate::quota`]). Each entry is checked as
//! Kafka's `ClientQuotaControlManager` checks it — entity types `user` and `client-id`
//! (alone or together) or `ip` alone, each at most once; keys known for the entity; values not
//! negative, whole numbers for the byte rates — and a bad entry is INVALID_REQUEST with the
//! reason while the others go on. Kafka's `request_percentage`, `controller_mutation_rate` and
//! `connection_creation_rate` are refused (INVALID_REQUEST saying so): Strom does not enforce
//! them yet and will not store a quota it ignores. `validate_only` checks without storing.
//!
//! Authorization: ALTER_CONFIGS on the cluster, else every entry CLUSTER_AUTHORIZATION_FAILED.

use bytes::Bytes;
use kafka_protocol::messages::alter_client_quotas_request::EntryData as RequestEntry;
use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse, ApiKey};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{blocking, Api, ApiSpec, Reply, RequestContext};
use crate::metadata::MetadataRecord;
use crate::protocol::{ProtocolError, WireError};
use crate::quota::{Entity, CLIENT_ID, CONSUMER_BYTE_RATE, IP, NOT_ENFORCED, PRODUCER_BYTE_RATE, USER};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::AlterClientQuotas),
    min: 0,
    max: 1,
};

fn entity_of(e: &RequestEntry) -> Vec<EntityData> {
    e.entity
        .iter()
        .map(|p| {
            EntityData::default()
                .with_entity_type(p.entity_type.clone())
                .with_entity_name(p.entity_name.clone())
        })
        .collect()
}

/// The entry's records, or why it is refused.
fn records(e: &RequestEntry) -> Result<Vec<MetadataRecord>, String> {
    let mut entity: Entity = Vec::new();
    for p in &e.entity {
        let t = p.entity_type.as_str();
        if ![USER, CLIENT_ID, IP].contains(&t) {
            return Err(format!("Unhandled client quota entity type: {t}"));
        }
        if entity.iter().any(|(x, _)| x == t) {
            return Err(format!("Invalid empty or duplicate entity type {t}"));
        }
        entity.push((t.to_string(), p.entity_name.as_ref().map(|n| n.to_string())));
    }
    entity.sort();
    if entity.is_empty() {
        return Err("Invalid empty client quota entity".into());
    }
    let has_ip = entity.iter().any(|(t, _)| t == IP);
    if has_ip && entity.len() > 1 {
        return Err("Invalid quota entity combination, IP entity should not be combined with User or ClientId".into());
    }
    let mut out = Vec::new();
    for o in &e.ops {
        let key = o.key.as_str();
        if NOT_ENFORCED.contains(&key) {
            return Err(format!("{key} is not enforced by Strom yet, so it is not stored"));
        }
        if has_ip || ![PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE].contains(&key) {
            return Err(format!("Invalid configuration key {key}"));
        }
        let value = if o.remove {
            None
        } else {
            if !o.value.is_finite() || o.value < 0.0 {
                return Err(format!("Invalid value {} for configuration key {key}", o.value));
            }
            if o.value.fract() != 0.0 {
                return Err(format!("Configuration {key} must be a Long value"));
            }
            Some(o.value)
        };
        out.push(MetadataRecord::ClientQuota {
            entity: entity.clone(),
            key: key.to_string(),
            value,
        });
    }
    Ok(out)
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: AlterClientQuotasRequest = ctx.decode(body)?;
    if !ctx.authz().cluster(op::ALTER_CONFIGS) {
        let entries = req
            .entries
            .iter()
            .map(|e| {
                EntryData::default()
                    .with_error_code(WireError::ClusterAuthorizationFailed.code())
                    .with_error_message(Some(StrBytes::from_static_str("Cluster authorization failed.")))
                    .with_entity(entity_of(e))
            })
            .collect();
        return ctx.reply(&AlterClientQuotasResponse::default().with_entries(entries));
    }
    let checked: Vec<Result<Vec<MetadataRecord>, String>> = req.entries.iter().map(records).collect();
    let all: Vec<MetadataRecord> = checked.iter().flatten().flatten().cloned().collect();
    let broker = ctx.broker.clone();
    let validate_only = req.validate_only;
    let committed = blocking(move || {
        if validate_only || all.is_empty() {
            return Ok(());
        }
        broker.metadata.commit(&all).map_err(|e| e.to_string())
    })
    .await?;
    let entries = req
        .entries
        .iter()
        .zip(checked)
        .map(|(e, r)| {
            let out = EntryData::default().with_entity(entity_of(e));
            match (r, &committed) {
                (Err(why), _) => out
                    .with_error_code(WireError::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_string(why))),
                (Ok(_), Err(why)) => out
                    .with_error_code(WireError::UnknownServerError.code())
                    .with_error_message(Some(StrBytes::from_string(format!("quotas not committed: {why}")))),
                (Ok(_), Ok(())) => out,
            }
        })
        .collect();
    ctx.reply(&AlterClientQuotasResponse::default().with_entries(entries))
}
