//! DescribeGroups (key 15), versions 0-6.
//!
//! State, protocol type and chosen protocol, and every member with client id, client host,
//! metadata and (when Stable) assignment, as `kafka-consumer-groups --describe` shows them.
//! Unknown groups are described as Dead with no members (v6 adds GROUP_ID_NOT_FOUND); KIP-848
//! consumer groups, KIP-1071 streams groups and KIP-932 share groups are not classic groups: Dead, and in v6
//! GROUP_ID_NOT_FOUND "Group X is not a classic group.", as Kafka 4.4.
//! `include_authorized_operations` (v3+): the principal's GROUP bit set ([`crate::handlers::authz`])
//! for each group described without an error, as Kafka.
//!
//! Authorization: DESCRIBE on each group, else that group GROUP_AUTHORIZATION_FAILED with empty
//! state.

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{ApiKey, DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::DescribeGroups), min: 0, max: 6 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DescribeGroupsRequest = ctx.decode(body)?;
    let loaded = ctx.broker.groups.is_loaded();
    let authz = ctx.authz();
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            let mut out = DescribedGroup::default().with_group_id(id.clone());
            if !authz.group(op::DESCRIBE, id.0.as_str()) {
                out.error_code = WireError::GroupAuthorizationFailed.code();
                return out;
            }
            if !loaded {
                out.group_state = StrBytes::from_static_str("Dead");
                if ctx.version >= 6 {
                    out.error_code = WireError::GroupIdNotFound.code();
                }
                return out;
            }
            let d = ctx.broker.groups.describe(id.0.as_str());
            if d.state == "NotClassic" {
                // Kafka: a consumer-protocol group is not described by this API.
                out.group_state = StrBytes::from_static_str("Dead");
                if ctx.version >= 6 {
                    out.error_code = WireError::GroupIdNotFound.code();
                    out.error_message = Some(StrBytes::from_string(format!("Group {} is not a classic group.", id.0.as_str())));
                }
                return out;
            }
            out.group_state = StrBytes::from_static_str(d.state);
            if d.state == "Dead" && ctx.version >= 6 {
                out.error_code = WireError::GroupIdNotFound.code();
                out.error_message = Some(StrBytes::from_string(format!("Group {} not found.", id.0.as_str())));
            }
            out.protocol_type = StrBytes::from_string(d.protocol_type);
            out.protocol_data = StrBytes::from_string(d.protocol);
            out.members = d
                .members
                .into_iter()
                .map(|m| {
                    let mut dm = DescribedGroupMember::default()
                        .with_member_id(StrBytes::from_string(m.member_id))
                        .with_client_id(StrBytes::from_string(m.client_id))
                        .with_client_host(StrBytes::from_string(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment);
                    if ctx.version >= 4 {
                        dm.group_instance_id = m.instance_id.map(StrBytes::from_string);
                    }
                    dm
                })
                .collect();
            out
        })
        .map(|mut out| {
            // Kafka fills them for the groups it describes without an error.
            if req.include_authorized_operations && out.error_code == 0 {
                out.authorized_operations = authz.operations(crate::security::acl::resource::GROUP, out.group_id.0.as_str());
            }
            out
        })
        .collect();
    ctx.reply(&DescribeGroupsResponse::default().with_groups(groups))
}
