//! InitializeShareGroupState (key 83), version 0: another broker of the cluster starts a
//! share-partition's state afresh on this broker's share coordinator — a share-partition
//! leader starting one with no state (where `share.auto.offset.reset` says), or the group
//! coordinator resetting offsets (AlterShareGroupOffsets, with a state epoch above the
//! current one). Answered once durable; per partition NOT_COORDINATOR when this broker does
//! not lead the key's `__share_group_state` partition, FENCED_STATE_EPOCH when the state epoch
//! is not above the current one.
//!
//! Authorization: broker-to-broker: CLUSTER_ACTION on the cluster, else every partition
//! CLUSTER_AUTHORIZATION_FAILED.

use bytes::Bytes;
use kafka_protocol::messages::initialize_share_group_state_response::{InitializeStateResult, PartitionResult};
use kafka_protocol::messages::{ApiKey, InitializeShareGroupStateRequest, InitializeShareGroupStateResponse};

use crate::coordinator::share::codec::StateKey;
use crate::coordinator::share::store::settled;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::InitializeShareGroupState), min: 0, max: 0 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: InitializeShareGroupStateRequest = ctx.decode(body)?;
    // Broker-to-broker (a share-partition leader to the share coordinator): CLUSTER_ACTION on
    // the cluster, else every partition CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authz().cluster(crate::handlers::authz::op::CLUSTER_ACTION) {
        let code = crate::protocol::WireError::ClusterAuthorizationFailed.code();
        let results = req
            .topics
            .iter()
            .map(|t| {
                InitializeStateResult::default()
                    .with_topic_id(t.topic_id)
                    .with_partitions(t.partitions.iter().map(|p| PartitionResult::default().with_partition(p.partition).with_error_code(code)).collect())
            })
            .collect();
        return ctx.reply(&InitializeShareGroupStateResponse::default().with_results(results));
    }
    let broker = ctx.broker.clone();
    let version = ctx.version;
    let group = req.group_id.to_string();
    let mut outcomes = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let parts: Vec<_> = t
            .partitions
            .iter()
            .map(|p| {
                let key = StateKey { group: group.clone(), topic_id: t.topic_id, partition: p.partition };
                (p.partition, broker.share_states.initialize(&key, p.state_epoch, p.start_offset))
            })
            .collect();
        outcomes.push((t.topic_id, parts));
    }
    Ok(Reply::Later(Box::pin(async move {
        let mut results = Vec::with_capacity(outcomes.len());
        for (topic_id, parts) in outcomes {
            let mut partitions = Vec::with_capacity(parts.len());
            for (partition, outcome) in parts {
                let code = settled(outcome).await;
                partitions.push(PartitionResult::default().with_partition(partition).with_error_code(code));
            }
            results.push(InitializeStateResult::default().with_topic_id(topic_id).with_partitions(partitions));
        }
        encode_body(&InitializeShareGroupStateResponse::default().with_results(results), version)
    })))
}
