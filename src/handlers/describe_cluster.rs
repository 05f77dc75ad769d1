//! DescribeCluster (key 60), versions 0-2.
//!
//! This broker (id, advertised host and port, no rack, never fenced), the cluster id and the
//! controller (ourselves: a single node is its own controller). Endpoint type 2 (controllers,
//! KIP-919) gets the same single node.

use bytes::Bytes;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::{ApiSpec, Reply, RequestContext};
use crate::protocol::ProtocolError;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::DescribeCluster, min: 0, max: 2 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DescribeClusterRequest = ctx.decode(body)?;
    let c = &ctx.broker.config;
    let me = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(c.node_id))
        .with_host(StrBytes::from_string(c.advertised_host.clone()))
        .with_port(i32::from(c.advertised_port));
    let mut resp = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(ctx.broker.metadata.cluster_id.clone()))
        .with_controller_id(BrokerId(c.node_id))
        .with_brokers(vec![me]);
    if ctx.version >= 1 {
        resp.endpoint_type = req.endpoint_type;
    }
    ctx.reply(&resp)
}
