//! WriteShareGroupState (key 85), version 0: a share-partition leader on another broker of the
//! cluster writes a change of its state to this broker's share coordinator (see
//! `crate::cluster::share_state`). Entries are applied in request order (a share-partition's
//! changes arrive in the order they were made, several of one key in one request) and
//! answered once durable and on every in-sync replica of the `__share_group_state`
//! partition. Per entry: NOT_COORDINATOR when this broker does not lead the key's state
//! partition, FENCED_LEADER_EPOCH for a writer older than the last leader, FENCED_STATE_EPOCH
//! when the state was reset or deleted since the writer read it. The response has one topic
//! entry per request topic entry, in order.
//!
//! Authorization: broker-to-broker: CLUSTER_ACTION on the cluster, else every partition
//! CLUSTER_AUTHORIZATION_FAILED.

use bytes::Bytes;
use kafka_protocol::messages::write_share_group_state_response::{PartitionResult, WriteStateResult};
use kafka_protocol::messages::{ApiKey, WriteShareGroupStateRequest, WriteShareGroupStateResponse};

use crate::coordinator::share::codec::StateKey;
use crate::coordinator::share::partition::StateBatch;
use crate::coordinator::share::store::{settled, StateWrite};
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::WriteShareGroupState), min: 0, max: 0 };

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: WriteShareGroupStateRequest = ctx.decode(body)?;
    // Broker-to-broker (a share-partition leader to the share coordinator): CLUSTER_ACTION on
    // the cluster, else every partition CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authz().cluster(crate::handlers::authz::op::CLUSTER_ACTION) {
        let code = crate::protocol::WireError::ClusterAuthorizationFailed.code();
        let results = req
            .topics
            .iter()
            .map(|t| {
                WriteStateResult::default()
                    .with_topic_id(t.topic_id)
                    .with_partitions(t.partitions.iter().map(|p| PartitionResult::default().with_partition(p.partition).with_error_code(code)).collect())
            })
            .collect();
        return ctx.reply(&WriteShareGroupStateResponse::default().with_results(results));
    }
    let broker = ctx.broker.clone();
    let version = ctx.version;
    let group = req.group_id.to_string();
    // Appended now, in order; answered once durable.
    let mut outcomes = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let key = StateKey { group: group.clone(), topic_id: t.topic_id, partition: p.partition };
            let w = StateWrite {
                leader_epoch: p.leader_epoch,
                state_epoch: p.state_epoch,
                start_offset: p.start_offset,
                batches: p
                    .state_batches
                    .iter()
                    .map(|b| StateBatch { first_offset: b.first_offset, last_offset: b.last_offset, state: b.delivery_state, delivery_count: b.delivery_count })
                    .collect(),
            };
            parts.push((p.partition, broker.share_states.write(&key, w)));
        }
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
            results.push(WriteStateResult::default().with_topic_id(topic_id).with_partitions(partitions));
        }
        encode_body(&WriteShareGroupStateResponse::default().with_results(results), version)
    })))
}
