//! StreamsGroupDescribe (key 89), versions 0-1: KIP-1071 streams groups as
//! `kafka-streams-groups --describe` and `Admin.describeStreamsGroups` show them.
//!
//! Per group: state (Empty, NotReady, Assigning, Reconciling, Stable, Dead as Kafka names
//! them), group and assignment epochs, the topology (subtopologies with their source,
//! repartition and changelog topics, partition counts as configured), and each member's
//! process, endpoint, client tags, current and target tasks. An unknown id answers
//! GROUP_ID_NOT_FOUND "Group X not found.", a group of another type "Group X is not a streams
//! group." (Kafka's messages). `include_authorized_operations`: the GROUP bit set of
//! the principal's authorized operations ([`crate::handlers::authz`]) for each group described without an error. v1's topology
//! description (nodes and stores, which clients upload with
//! StreamsGroupTopologyDescriptionUpdate, an API Strom does not serve) is always null.
//!
//! Authorization: DESCRIBE on each group, else GROUP_AUTHORIZATION_FAILED.

use bytes::Bytes;

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::streams::{decode_describe, encode_describe, DescribeResponse, DescribedGroup};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::STREAMS_GROUP_DESCRIBE,
    min: 0,
    max: 1,
};

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req = decode_describe(&body, ctx.version)?;
    let coordinator = ctx.broker.group_coordinator().await.ok();
    let authz = ctx.authz();
    let groups = req
        .group_ids
        .iter()
        .map(|id| {
            let not_found = |code: i16, message: String| DescribedGroup {
                error_code: code,
                error_message: Some(message),
                group_id: id.clone(),
                authorized_operations: i32::MIN,
                ..DescribedGroup::default()
            };
            // DESCRIBE on the group.
            if !authz.group(op::DESCRIBE, id) {
                return not_found(WireError::GroupAuthorizationFailed.code(), "The client is not authorized to describe the group.".into());
            }
            let ops = if req.include_authorized_operations {
                authz.operations(crate::security::acl::resource::GROUP, id)
            } else {
                // Kafka's "not requested" value.
                i32::MIN
            };
            let Some(c) = coordinator.as_ref().filter(|c| c.is_loaded()) else {
                return not_found(
                    WireError::CoordinatorNotAvailable.code(),
                    "The coordinator is not available.".into(),
                );
            };
            if let Some(g) = c.with_streams_group(id, |g| g.describe(id, ops)) {
                return g;
            }
            if c.exists(id) {
                not_found(
                    WireError::GroupIdNotFound.code(),
                    format!("Group {id} is not a streams group."),
                )
            } else {
                not_found(
                    WireError::GroupIdNotFound.code(),
                    format!("Group {id} not found."),
                )
            }
        })
        .collect();
    let resp = DescribeResponse {
        throttle_time_ms: 0,
        groups,
    };
    Ok(Reply::Now(encode_describe(&resp, ctx.version)))
}
