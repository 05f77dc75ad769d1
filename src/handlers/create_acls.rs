//! CreateAcls (key 30), versions 1-3 (as Kafka 4.4, which removed v0).
//!
//! Without an authorizer every creation is answered SECURITY_DISABLED "No Authorizer is
//! configured.", as Kafka answers — admin tools and MirrorMaker 2 rely on that answer rather
//! than on the API being absent.
//!
//! Authorization: ALTER on the cluster, else every creation CLUSTER_AUTHORIZATION_FAILED.
//! Then each binding is checked as Kafka's `AclControlManager`
//! checks a new ACL (a concrete resource type, LITERAL or PREFIXED, an operation and a
//! permission that are not ANY, a non-empty name, `kafka-cluster` as the CLUSTER's name, a
//! `Type:name` principal), a bad one INVALID_REQUEST; the valid ones are one metadata commit
//! (replicated in a cluster). Creating a binding that exists succeeds and changes nothing.

use bytes::Bytes;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{blocking, Api, ApiSpec, Reply, RequestContext};
use crate::metadata::MetadataRecord;
use crate::protocol::{ProtocolError, WireError};
use crate::security::acl::AclBinding;

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::CreateAcls),
    min: 1,
    max: 3,
};

fn failed(e: WireError, msg: String) -> AclCreationResult {
    AclCreationResult::default()
        .with_error_code(e.code())
        .with_error_message(Some(StrBytes::from_string(msg)))
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: CreateAclsRequest = ctx.decode(body)?;
    let authz = ctx.authz();
    let all = |e: WireError, msg: &str| {
        let results = req
            .creations
            .iter()
            .map(|_| failed(e, msg.to_string()))
            .collect();
        ctx.reply(&CreateAclsResponse::default().with_results(results))
    };
    if !authz.enabled() {
        return all(WireError::SecurityDisabled, "No Authorizer is configured.");
    }
    if !authz.cluster(op::ALTER) {
        return all(
            WireError::ClusterAuthorizationFailed,
            "Request CreateAcls is not authorized.",
        );
    }
    let bindings: Vec<Result<AclBinding, String>> = req
        .creations
        .iter()
        .map(|c| {
            let b = AclBinding {
                resource_type: c.resource_type,
                name: c.resource_name.to_string(),
                pattern: c.resource_pattern_type,
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: c.operation,
                permission: c.permission_type,
            };
            match b.invalid() {
                Some(why) => Err(why),
                None => Ok(b),
            }
        })
        .collect();
    let records: Vec<MetadataRecord> = bindings
        .iter()
        .filter_map(|b| b.as_ref().ok().cloned().map(MetadataRecord::Acl))
        .collect();
    let broker = ctx.broker.clone();
    let committed = blocking(move || {
        if records.is_empty() {
            return Ok(());
        }
        broker.metadata.commit(&records).map_err(|e| e.to_string())
    })
    .await?;
    let results = bindings
        .into_iter()
        .map(|b| match (b, &committed) {
            (Err(why), _) => failed(WireError::InvalidRequest, why),
            (Ok(_), Err(e)) => failed(
                WireError::UnknownServerError,
                format!("ACLs not committed: {e}"),
            ),
            (Ok(b), Ok(())) => {
                tracing::info!(
                    target: "strom::audit",
                    event = "acl",
                    change = "create",
                    acl = ?b,
                    principal = %ctx.session.principal,
                    client = %ctx.peer,
                );
                AclCreationResult::default()
            }
        })
        .collect();
    ctx.reply(&CreateAclsResponse::default().with_results(results))
}
