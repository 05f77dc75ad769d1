//! AlterUserScramCredentials (key 51), version 0 (all Kafka 4.4 serves).
//!
//! Upserts and deletes SCRAM credentials in the metadata log (replicated with the rest of the
//! metadata in a cluster), with the checks of Kafka's `ScramControlManager`: a user named
//! twice in one request (deletion or upsertion): DUPLICATE_RESOURCE; an empty name:
//! UNACCEPTABLE_CREDENTIAL; a mechanism other than SCRAM-SHA-256 (1) / SCRAM-SHA-512 (2):
//! UNSUPPORTED_SASL_MECHANISM; iterations below 4096 or above 16384:
//! UNACCEPTABLE_CREDENTIAL; deleting a credential that does not exist: RESOURCE_NOT_FOUND.
//! The client sends the salted password (`kafka-configs --add-config
//! 'SCRAM-SHA-512=[password=...]'` salts it); the broker keeps StoredKey and ServerKey only.
//! The accepted changes are one metadata commit; a failed commit answers every user of the
//! request with the error (nothing was applied).
//!
//! Authorization: ALTER on the cluster, else every user CLUSTER_AUTHORIZATION_FAILED.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{blocking, Api, ApiSpec, Reply, RequestContext};
use crate::metadata::MetadataRecord;
use crate::protocol::{ProtocolError, WireError};
use crate::security::scram::{self, Mechanism};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::AlterUserScramCredentials),
    min: 0,
    max: 0,
};

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: AlterUserScramCredentialsRequest = ctx.decode(body)?;
    // ALTER on the cluster, else one result per distinct user, sorted.
    if !ctx.authz().cluster(op::ALTER) {
        let users: std::collections::BTreeSet<String> = req.deletions.iter().map(|d| d.name.to_string()).chain(req.upsertions.iter().map(|u| u.name.to_string())).collect();
        let results = users
            .into_iter()
            .map(|u| AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(u)).with_error_code(WireError::ClusterAuthorizationFailed.code()))
            .collect();
        return ctx.reply(&AlterUserScramCredentialsResponse::default().with_results(results));
    }
    let broker = ctx.broker.clone();
    let (mut errors, records, ok_users) = blocking(move || {
        let mut errors: BTreeMap<String, (WireError, String)> = BTreeMap::new();
        let mut accepted: BTreeMap<String, MetadataRecord> = BTreeMap::new();
        let dup = |errors: &mut BTreeMap<String, (WireError, String)>, user: &str| {
            errors.insert(
                user.to_string(),
                (
                    WireError::DuplicateResource,
                    "A user credential cannot be altered twice in the same request".into(),
                ),
            );
        };
        for d in &req.deletions {
            let user = d.name.as_str();
            if errors.contains_key(user) {
                continue;
            }
            if accepted.remove(user).is_some() {
                dup(&mut errors, user);
                continue;
            }
            match validate(user, d.mechanism) {
                Err(e) => {
                    errors.insert(user.to_string(), e);
                }
                Ok(m) if broker.metadata.scram_credential(user, m).is_none() => {
                    errors.insert(
                        user.to_string(),
                        (
                            WireError::ResourceNotFound,
                            "Attempt to delete a user credential that does not exist".into(),
                        ),
                    );
                }
                Ok(m) => {
                    accepted.insert(
                        user.to_string(),
                        MetadataRecord::RemoveScramCredential {
                            user: user.to_string(),
                            mechanism: m.type_id(),
                        },
                    );
                }
            }
        }
        for u in &req.upsertions {
            let user = u.name.as_str();
            if errors.contains_key(user) {
                continue;
            }
            if accepted.remove(user).is_some() {
                dup(&mut errors, user);
                continue;
            }
            let m = match validate(user, u.mechanism) {
                Ok(m) => m,
                Err(e) => {
                    errors.insert(user.to_string(), e);
                    continue;
                }
            };
            if u.iterations < Mechanism::MIN_ITERATIONS {
                errors.insert(
                    user.to_string(),
                    (WireError::UnacceptableCredential, "Too few iterations".into()),
                );
                continue;
            }
            if u.iterations > Mechanism::MAX_ITERATIONS {
                errors.insert(
                    user.to_string(),
                    (WireError::UnacceptableCredential, "Too many iterations".into()),
                );
                continue;
            }
            let c = scram::credential(m, &u.salted_password, &u.salt, u.iterations);
            accepted.insert(
                user.to_string(),
                MetadataRecord::scram_credential(user, m, &c),
            );
        }
        let users: Vec<String> = accepted.keys().cloned().collect();
        let records: Vec<MetadataRecord> = accepted.into_values().collect();
        if !records.is_empty() {
            if let Err(e) = broker.metadata.commit(&records) {
                tracing::warn!(error = %e, "SCRAM credential change not committed");
                for u in &users {
                    errors.insert(
                        u.clone(),
                        (WireError::UnknownServerError, format!("metadata not committed: {e}")),
                    );
                }
                return (errors, Vec::new(), Vec::new());
            }
        }
        (errors, records, users)
    })
    .await?;
    for r in &records {
        if let MetadataRecord::ScramCredential { user, mechanism, .. }
        | MetadataRecord::RemoveScramCredential { user, mechanism } = r
        {
            tracing::info!(
                target: "strom::audit",
                event = "scram_credential",
                change = if matches!(r, MetadataRecord::ScramCredential { .. }) { "upsert" } else { "delete" },
                user = %user,
                mechanism = *mechanism,
                principal = %ctx.session.principal,
                client = %ctx.peer,
            );
        }
    }
    let mut results: Vec<AlterUserScramCredentialsResult> = ok_users
        .into_iter()
        .map(|u| AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(u)))
        .collect();
    results.extend(std::mem::take(&mut errors).into_iter().map(|(u, (code, msg))| {
        AlterUserScramCredentialsResult::default()
            .with_user(StrBytes::from_string(u))
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(msg)))
    }));
    ctx.reply(&AlterUserScramCredentialsResponse::default().with_results(results))
}

fn validate(user: &str, mechanism: i8) -> Result<Mechanism, (WireError, String)> {
    if user.is_empty() {
        return Err((
            WireError::UnacceptableCredential,
            "Username must not be empty".into(),
        ));
    }
    Mechanism::from_type(mechanism).ok_or((
        WireError::UnsupportedSaslMechanism,
        "Unknown SCRAM mechanism".into(),
    ))
}
