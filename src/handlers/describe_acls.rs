//! DescribeAcls (key 29), versions 1-3 (as Kafka 4.4, which removed v0).
//!
//! Without an authorizer: SECURITY_DISABLED "No Authorizer is configured on the broker", as
//! Kafka answers (`kafka-acls --list` prints that error).
//!
//! Authorization: DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED. Then the bindings the filter matches (Kafka's
//! `AclBindingFilter`: MATCH also finds the LITERAL `*` and the PREFIXED patterns covering the
//! name), grouped by resource pattern.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{ApiKey, DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};
use crate::security::acl::{pattern, AclFilter};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::DescribeAcls),
    min: 1,
    max: 3,
};

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DescribeAclsRequest = ctx.decode(body)?;
    let authz = ctx.authz();
    let error = |e: WireError, msg: &str| {
        ctx.reply(
            &DescribeAclsResponse::default()
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(msg.to_string()))),
        )
    };
    if !authz.enabled() {
        return error(
            WireError::SecurityDisabled,
            "No Authorizer is configured on the broker",
        );
    }
    if !authz.cluster(op::DESCRIBE) {
        return error(
            WireError::ClusterAuthorizationFailed,
            "Request DescribeAcls is not authorized.",
        );
    }
    if !(pattern::ANY..=pattern::PREFIXED).contains(&req.pattern_type_filter) {
        return error(WireError::InvalidRequest, "Invalid pattern type filter");
    }
    let filter = AclFilter {
        resource_type: req.resource_type_filter,
        name: req.resource_name_filter.as_ref().map(|s| s.to_string()),
        pattern: req.pattern_type_filter,
        principal: req.principal_filter.as_ref().map(|s| s.to_string()),
        host: req.host_filter.as_ref().map(|s| s.to_string()),
        operation: req.operation,
        permission: req.permission_type,
    };
    let mut by_resource: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for b in ctx.broker.metadata.acls().iter().filter(|b| filter.matches(b)) {
        by_resource
            .entry((b.resource_type, b.name.clone(), b.pattern))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(StrBytes::from_string(b.principal.clone()))
                    .with_host(StrBytes::from_string(b.host.clone()))
                    .with_operation(b.operation)
                    .with_permission_type(b.permission),
            );
    }
    let resources = by_resource
        .into_iter()
        .map(|((rt, name, pat), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(rt)
                .with_resource_name(StrBytes::from_string(name))
                .with_pattern_type(pat)
                .with_acls(acls)
        })
        .collect();
    ctx.reply(&DescribeAclsResponse::default().with_resources(resources))
}
