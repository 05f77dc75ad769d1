//! DeleteAcls (key 31), versions 1-3 (as Kafka 4.4, which removed v0).
//!
//! Without an authorizer every filter is answered SECURITY_DISABLED, as Kafka answers.
//!
//! Authorization: ALTER on the cluster, else every filter CLUSTER_AUTHORIZATION_FAILED. Each
//! filter's
//! result lists the bindings it matched (Kafka's `AclBindingFilter`), and all of them are
//! removed in one metadata commit (a binding matched by two filters is listed by both).

use bytes::Bytes;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{ApiKey, DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{blocking, Api, ApiSpec, Reply, RequestContext};
use crate::metadata::MetadataRecord;
use crate::protocol::{ProtocolError, WireError};
use crate::security::acl::{pattern, AclBinding, AclFilter};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::DeleteAcls),
    min: 1,
    max: 3,
};

fn failed(e: WireError, msg: &str) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult::default()
        .with_error_code(e.code())
        .with_error_message(Some(StrBytes::from_string(msg.to_string())))
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DeleteAclsRequest = ctx.decode(body)?;
    let authz = ctx.authz();
    let all = |e: WireError, msg: &str| {
        let results = req.filters.iter().map(|_| failed(e, msg)).collect();
        ctx.reply(&DeleteAclsResponse::default().with_filter_results(results))
    };
    if !authz.enabled() {
        return all(WireError::SecurityDisabled, "No Authorizer is configured.");
    }
    if !authz.cluster(op::ALTER) {
        return all(
            WireError::ClusterAuthorizationFailed,
            "Request DeleteAcls is not authorized.",
        );
    }
    let acls = ctx.broker.metadata.acls();
    let matches: Vec<Option<Vec<AclBinding>>> = req
        .filters
        .iter()
        .map(|f| {
            if !(pattern::ANY..=pattern::PREFIXED).contains(&f.pattern_type_filter) {
                return None;
            }
            let filter = AclFilter {
                resource_type: f.resource_type_filter,
                name: f.resource_name_filter.as_ref().map(|s| s.to_string()),
                pattern: f.pattern_type_filter,
                principal: f.principal_filter.as_ref().map(|s| s.to_string()),
                host: f.host_filter.as_ref().map(|s| s.to_string()),
                operation: f.operation,
                permission: f.permission_type,
            };
            Some(acls.iter().filter(|b| filter.matches(b)).cloned().collect())
        })
        .collect();
    let mut removed: Vec<AclBinding> = matches.iter().flatten().flatten().cloned().collect();
    removed.sort();
    removed.dedup();
    let records: Vec<MetadataRecord> = removed.iter().cloned().map(MetadataRecord::RemoveAcl).collect();
    let broker = ctx.broker.clone();
    let committed = blocking(move || {
        if records.is_empty() {
            return Ok(());
        }
        broker.metadata.commit(&records).map_err(|e| e.to_string())
    })
    .await?;
    if let Err(e) = committed {
        return all(
            WireError::UnknownServerError,
            &format!("ACLs not committed: {e}"),
        );
    }
    for b in &removed {
        tracing::info!(
            target: "strom::audit",
            event = "acl",
            change = "delete",
            acl = ?b,
            principal = %ctx.session.principal,
            client = %ctx.peer,
        );
    }
    let results = matches
        .into_iter()
        .map(|m| match m {
            None => failed(WireError::InvalidRequest, "Invalid pattern type filter"),
            Some(bindings) => DeleteAclsFilterResult::default().with_matching_acls(
                bindings
                    .into_iter()
                    .map(|b| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(b.resource_type)
                            .with_resource_name(StrBytes::from_string(b.name))
                            .with_pattern_type(b.pattern)
                            .with_principal(StrBytes::from_string(b.principal))
                            .with_host(StrBytes::from_string(b.host))
                            .with_operation(b.operation)
                            .with_permission_type(b.permission)
                    })
                    .collect(),
            ),
        })
        .collect();
    ctx.reply(&DeleteAclsResponse::default().with_filter_results(results))
}
