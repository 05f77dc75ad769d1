//! DescribeCluster (key 60), versions 0-2 (all that Kafka 4.1 serves).
//!
//! The brokers clients may use (on a single node itself; in a cluster every registered broker
//! the controller has not fenced, with its rack), the cluster id and the controller id (a
//! single node is its own controller; in a cluster the metadata quorum's leader, -1 during an
//! election). Kafka brokers likewise answer with broker ids here, since clients cannot reach
//! the controller quorum directly.
//! `endpoint_type` (v1+) must be BROKER (1): CONTROLLER (2) is MISMATCHED_ENDPOINT_TYPE, any
//! other UNSUPPORTED_ENDPOINT_TYPE (INVALID_REQUEST at v0), like a Kafka broker listener.
//! `include_fenced_brokers` (v2) changes nothing: fenced brokers are never listed.
//! `include_cluster_authorized_operations`: the cluster operations the principal may perform
//! (every operation without an authorizer, as Kafka).
//!
//! Authorization: none to ask; the authorized-operation set needs DESCRIBE on the cluster,
//! else it is 0.

use bytes::Bytes;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::DescribeCluster),
    min: 0,
    max: 2,
};

const ENDPOINT_BROKER: i8 = 1;
const ENDPOINT_CONTROLLER: i8 = 2;

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DescribeClusterRequest = ctx.decode(body)?;
    let mut resp = DescribeClusterResponse::default();
    if ctx.version >= 1 {
        resp.endpoint_type = ENDPOINT_BROKER;
    }
    // v0 requests carry no endpoint type; the decoded default is BROKER.
    if req.endpoint_type != ENDPOINT_BROKER {
        let (code, message) = if req.endpoint_type == ENDPOINT_CONTROLLER {
            (
                WireError::MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER".to_string(),
            )
        } else {
            (
                WireError::UnsupportedEndpointType,
                format!("Unsupported endpoint type {}", req.endpoint_type),
            )
        };
        resp.error_code = if ctx.version == 0 {
            WireError::InvalidRequest.code()
        } else {
            code.code()
        };
        resp.error_message = Some(StrBytes::from_string(message));
        return ctx.reply(&resp);
    }
    resp.brokers = ctx
        .broker
        .listed_brokers()
        .into_iter()
        .filter_map(|b| {
            // At their address on this request's listener.
            let (host, port) = b.endpoint(ctx.session.listener())?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.node))
                    .with_host(StrBytes::from_string(host))
                    .with_port(i32::from(port))
                    .with_rack(b.rack.map(StrBytes::from_string))
                    .with_is_fenced(b.fenced),
            )
        })
        .collect();
    resp.cluster_id = StrBytes::from_string(ctx.broker.metadata.cluster_id.clone());
    resp.controller_id = BrokerId(ctx.broker.controller_id());
    if req.include_cluster_authorized_operations {
        // DESCRIBE on the cluster (audited), else 0; no ACL is needed for the rest.
        let authz = ctx.authz();
        resp.cluster_authorized_operations = if authz.cluster(crate::handlers::authz::op::DESCRIBE) {
            authz.operations(crate::security::acl::resource::CLUSTER, crate::security::acl::CLUSTER_NAME)
        } else {
            0
        };
    }
    ctx.reply(&resp)
}
