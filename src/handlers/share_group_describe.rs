//! ShareGroupDescribe (key 77), version 1: share groups as `kafka-share-groups --describe`
//! and `Admin.describeShareGroups` show them — state (Empty or Stable), group and assignment
//! epochs, assignor `simple`, and each member's rack, epoch, client id and host, subscribed
//! topics and current assignment (topic ids with their names). An unknown id answers
//! GROUP_ID_NOT_FOUND "Group X not found.", a group of another type "Group X is not a share
//! group.", an empty id INVALID_GROUP_ID (Kafka's answers). `include_authorized_operations`:
//! the principal's GROUP bit set ([`crate::handlers::authz`]).
//!
//! Authorization: DESCRIBE on each group, else GROUP_AUTHORIZATION_FAILED.

use bytes::Bytes;
use kafka_protocol::messages::share_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
use kafka_protocol::messages::{ApiKey, GroupId, ShareGroupDescribeRequest, ShareGroupDescribeResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::ShareGroupDescribe), min: 1, max: 1 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: ShareGroupDescribeRequest = ctx.decode(body)?;
    let coordinator = match ctx.broker.group_coordinator().await {
        Ok(c) if ctx.broker.share_manager().await.is_ok() => Some(c),
        _ => None,
    };
    let authz = ctx.authz();
    let names: std::collections::HashMap<uuid::Uuid, String> =
        ctx.broker.metadata.topics().into_iter().map(|t| (t.id, t.name)).collect();
    let groups = req
        .group_ids
        .iter()
        .map(|gid| {
            let id = gid.0.to_string();
            let error = |code: i16, message: Option<String>| {
                DescribedGroup::default()
                    .with_group_id(gid.clone())
                    .with_error_code(code)
                    .with_error_message(message.map(StrBytes::from_string))
                    .with_authorized_operations(i32::MIN)
            };
            if id.is_empty() {
                return error(WireError::InvalidGroupId.code(), None);
            }
            // DESCRIBE on the group.
            if !authz.group(op::DESCRIBE, &id) {
                return error(WireError::GroupAuthorizationFailed.code(), None);
            }
            let ops = if req.include_authorized_operations { authz.operations(crate::security::acl::resource::GROUP, &id) } else { i32::MIN };
            let Some(c) = coordinator.filter(|c| c.is_loaded()) else {
                return error(WireError::CoordinatorNotAvailable.code(), Some("The coordinator is not available.".into()));
            };
            let described = c.with_share_group(&id, |g| {
                let members = g
                    .members
                    .iter()
                    .map(|(mid, m)| {
                        let topic_partitions = m
                            .assigned
                            .iter()
                            .filter_map(|(t, ps)| {
                                let name = names.get(t)?;
                                Some(
                                    TopicPartitions::default()
                                        .with_topic_id(*t)
                                        .with_topic_name(TopicName(StrBytes::from_string(name.clone())))
                                        .with_partitions(ps.clone()),
                                )
                            })
                            .collect();
                        Member::default()
                            .with_member_id(StrBytes::from_string(mid.clone()))
                            .with_rack_id(m.rack_id.clone().map(StrBytes::from_string))
                            .with_member_epoch(m.epoch)
                            .with_client_id(StrBytes::from_string(m.client_id.clone()))
                            .with_client_host(StrBytes::from_string(m.client_host.clone()))
                            .with_subscribed_topic_names(m.subscribed.iter().map(|s| TopicName(StrBytes::from_string(s.clone()))).collect())
                            .with_assignment(Assignment::default().with_topic_partitions(topic_partitions))
                    })
                    .collect();
                DescribedGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(id.clone())))
                    .with_group_state(StrBytes::from_static_str(g.state()))
                    .with_group_epoch(g.epoch)
                    .with_assignment_epoch(g.assignment_epoch)
                    .with_assignor_name(StrBytes::from_static_str("simple"))
                    .with_members(members)
                    .with_authorized_operations(ops)
            });
            match described {
                Some(d) => d,
                None if c.exists(&id) => error(WireError::GroupIdNotFound.code(), Some(format!("Group {id} is not a share group."))),
                None => error(WireError::GroupIdNotFound.code(), Some(format!("Group {id} not found."))),
            }
        })
        .collect();
    ctx.reply(&ShareGroupDescribeResponse::default().with_groups(groups))
}
