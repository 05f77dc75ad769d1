//! ConsumerGroupDescribe (key 69), versions 0-1.
//!
//! Describes KIP-848 consumer groups: group and assignment epochs, state (Empty, Assigning,
//! Reconciling, Stable), assignor, and each member's subscription, current and target
//! assignment. A classic group or an unknown id answers GROUP_ID_NOT_FOUND, which is how
//! Kafka's admin client knows to fall back to DescribeGroups. v1 tells each member's type:
//! 0 for a classic member left in the group by an online upgrade, 1 for a consumer member.
//! `include_authorized_operations`: the principal's GROUP bit set ([`crate::handlers::authz`]) for
//! each group described without an error, as Kafka.
//!
//! Authorization: DESCRIBE on each group (GROUP_AUTHORIZATION_FAILED), then DESCRIBE on every
//! topic of its members' assignments, else the whole group TOPIC_AUTHORIZATION_FAILED.

use bytes::Bytes;
use kafka_protocol::messages::consumer_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
use kafka_protocol::messages::{ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::assignor;
use crate::handlers::authz::op;
use crate::handlers::consumer_group_heartbeat::topics_view;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::ConsumerGroupDescribe), min: 0, max: 1 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: ConsumerGroupDescribeRequest = ctx.decode(body)?;
    let topics = topics_view(&ctx.broker);
    let to_wire = |a: &assignor::Assignment| -> Assignment {
        Assignment::default().with_topic_partitions(
            a.iter()
                .map(|(id, ps)| {
                    TopicPartitions::default()
                        .with_topic_id(*id)
                        .with_topic_name(TopicName(StrBytes::from_string(topics.name_of(id).unwrap_or("").to_string())))
                        .with_partitions(ps.iter().copied().collect())
                })
                .collect(),
        )
    };
    let authz = ctx.authz();
    let mut describable = authz.names(op::DESCRIBE, crate::security::acl::resource::TOPIC);
    let groups = req
        .group_ids
        .into_iter()
        .map(|gid| {
            if !authz.group(op::DESCRIBE, gid.0.as_str()) {
                return DescribedGroup::default().with_group_id(gid.clone()).with_error_code(WireError::GroupAuthorizationFailed.code());
            }
            let found = if ctx.broker.groups.is_loaded() {
                ctx.broker.groups.with_consumer_group(gid.0.as_str(), |c| {
                    let members = c
                        .members
                        .values()
                        .map(|m| {
                            Member::default()
                                .with_member_id(StrBytes::from_string(m.id.clone()))
                                .with_instance_id(m.instance_id.clone().map(StrBytes::from_string))
                                .with_rack_id(m.rack_id.clone().map(StrBytes::from_string))
                                .with_member_epoch(m.epoch)
                                .with_client_id(StrBytes::from_string(m.client_id.clone()))
                                .with_client_host(StrBytes::from_string(m.client_host.clone()))
                                .with_subscribed_topic_names(m.subscribed_names.iter().map(|n| TopicName(StrBytes::from_string(n.clone()))).collect())
                                .with_subscribed_topic_regex(m.subscribed_regex.clone().map(StrBytes::from_string))
                                .with_assignment(to_wire(&m.assigned))
                                .with_target_assignment(to_wire(c.target.get(&m.id).unwrap_or(&assignor::Assignment::new())))
                                // v1 (KIP-1099): 0 classic member (online migration), 1 consumer.
                                .with_member_type(if m.classic.is_some() { 0 } else { 1 })
                        })
                        .collect();
                    DescribedGroup::default()
                        .with_group_id(gid.clone())
                        .with_group_state(StrBytes::from_static_str(c.state()))
                        .with_group_epoch(c.group_epoch)
                        .with_assignment_epoch(c.assignment_epoch)
                        .with_assignor_name(StrBytes::from_static_str(c.assignor.name()))
                        .with_members(members)
                })
            } else {
                None
            };
            // Every topic of the members' assignments must be describable, else the whole
            // group is TOPIC_AUTHORIZATION_FAILED.
            let hidden = found.as_ref().is_some_and(|g| {
                g.members.iter().any(|m| {
                    m.assignment.topic_partitions.iter().chain(&m.target_assignment.topic_partitions).any(|tp| !describable.allows(tp.topic_name.0.as_str()))
                })
            });
            if hidden {
                return DescribedGroup::default()
                    .with_group_id(gid.clone())
                    .with_error_code(WireError::TopicAuthorizationFailed.code())
                    .with_error_message(Some(StrBytes::from_static_str("The group has described topic(s) that the client is not authorized to describe.")));
            }
            found.unwrap_or_else(|| {
                DescribedGroup::default()
                    .with_group_id(gid.clone())
                    .with_error_code(WireError::GroupIdNotFound.code())
                    .with_error_message(Some(StrBytes::from_string(format!("Group {} not found.", gid.0.as_str()))))
            })
        })
        .map(|mut g| {
            // Kafka fills them for the groups it describes without an error.
            if req.include_authorized_operations && g.error_code == 0 {
                g.authorized_operations = authz.operations(crate::security::acl::resource::GROUP, g.group_id.0.as_str());
            }
            g
        })
        .collect();
    ctx.reply(&ConsumerGroupDescribeResponse::default().with_groups(groups))
}
