//! ListGroups (key 16), versions 0-5.
//!
//! Every group this coordinator knows, with its protocol type; v4+ its state (filterable by
//! `states_filter`), v5+ its type ("classic", "consumer", "streams" or "share"; filterable by `types_filter`).
//!
//! Authorization: DESCRIBE on the cluster lists every group; otherwise only those the principal
//! may DESCRIBE (never an error; denials audited at TRACE).

use bytes::Bytes;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{ApiKey, GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::ProtocolError;

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::ListGroups), min: 0, max: 5 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: ListGroupsRequest = ctx.decode(body)?;
    let listed = if ctx.broker.groups.is_loaded() { ctx.broker.groups.list() } else { Vec::new() };
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_ascii_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_ascii_lowercase()).collect();
    // DESCRIBE on the cluster lists every group; else only those the principal may describe
    // (never an error; denials audited at TRACE).
    let authz = ctx.authz();
    let all = authz.cluster_quietly(op::DESCRIBE);
    let mut describable = authz.names_quietly(op::DESCRIBE, crate::security::acl::resource::GROUP);
    let groups = listed
        .into_iter()
        .filter(|g| states.is_empty() || states.contains(&g.state.to_ascii_lowercase()))
        .filter(|g| types.is_empty() || types.iter().any(|t| t == g.group_type))
        .filter(|g| all || describable.allows(&g.group_id))
        .map(|g| {
            let mut l = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                .with_protocol_type(StrBytes::from_string(g.protocol_type));
            if ctx.version >= 4 {
                l.group_state = StrBytes::from_static_str(g.state);
            }
            if ctx.version >= 5 {
                l.group_type = StrBytes::from_static_str(g.group_type);
            }
            l
        })
        .collect();
    ctx.reply(&ListGroupsResponse::default().with_groups(groups))
}
