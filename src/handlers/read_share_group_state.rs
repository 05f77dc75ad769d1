//! ReadShareGroupState (key 84), version 0: a share-partition leader on another broker of the
//! cluster reads the state this broker's share coordinator keeps (see
//! `crate::cluster::share_state`, which sends it). Answered once the state read is durable.
//! Per partition: NOT_COORDINATOR when this broker does not lead the key's `__share_group_state`
//! partition, FENCED_LEADER_EPOCH for a reader older than the last leader; a key with no
//! state answers state epoch -1 and start offset -1. Between Strom brokers, no topics means
//! every share-partition of the group kept here, and leader epoch -1 reads without fencing.
//!
//! Authorization: broker-to-broker: CLUSTER_ACTION on the cluster, else every partition
//! CLUSTER_AUTHORIZATION_FAILED.

use bytes::Bytes;
use kafka_protocol::messages::read_share_group_state_response::{PartitionResult, ReadStateResult, StateBatch};
use kafka_protocol::messages::{ApiKey, ReadShareGroupStateRequest, ReadShareGroupStateResponse};

use crate::coordinator::share::codec::StateKey;
use crate::coordinator::share::store::{log_code, StoredState};
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{encode_body, ProtocolError};

pub const SPEC: ApiSpec = ApiSpec { key: Api::of(ApiKey::ReadShareGroupState), min: 0, max: 0 };

fn result(partition: i32, code: i16, state: Option<&StoredState>) -> PartitionResult {
    let r = PartitionResult::default().with_partition(partition).with_error_code(code);
    match state {
        Some(s) => r.with_state_epoch(s.state_epoch).with_start_offset(s.start_offset).with_state_batches(
            s.batches
                .iter()
                .map(|b| {
                    StateBatch::default()
                        .with_first_offset(b.first_offset)
                        .with_last_offset(b.last_offset)
                        .with_delivery_state(b.state)
                        .with_delivery_count(b.delivery_count)
                })
                .collect(),
        ),
        None => r.with_state_epoch(-1).with_start_offset(-1),
    }
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: ReadShareGroupStateRequest = ctx.decode(body)?;
    // Broker-to-broker (a share-partition leader to the share coordinator): CLUSTER_ACTION on
    // the cluster, else every partition CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authz().cluster(crate::handlers::authz::op::CLUSTER_ACTION) {
        let code = crate::protocol::WireError::ClusterAuthorizationFailed.code();
        let results = req
            .topics
            .iter()
            .map(|t| {
                ReadStateResult::default()
                    .with_topic_id(t.topic_id)
                    .with_partitions(t.partitions.iter().map(|p| PartitionResult::default().with_partition(p.partition).with_error_code(code)).collect())
            })
            .collect();
        return ctx.reply(&ReadShareGroupStateResponse::default().with_results(results));
    }
    let broker = ctx.broker.clone();
    let version = ctx.version;
    Ok(Reply::Later(Box::pin(async move {
        let group = req.group_id.to_string();
        let coordinator = &broker.share_states;
        let mut results: Vec<ReadStateResult> = Vec::new();
        if req.topics.is_empty() {
            let (states, writes) = coordinator.group_states(&group);
            let mut code = 0;
            for w in writes {
                if let Err(e) = w.durable().await {
                    code = log_code(&e);
                }
            }
            for (k, s) in &states {
                let p = result(k.partition, code, (code == 0).then_some(s));
                match results.last_mut() {
                    Some(t) if t.topic_id == k.topic_id => t.partitions.push(p),
                    _ => results.push(ReadStateResult::default().with_topic_id(k.topic_id).with_partitions(vec![p])),
                }
            }
            return encode_body(&ReadShareGroupStateResponse::default().with_results(results), version);
        }
        for t in &req.topics {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in &t.partitions {
                let key = StateKey { group: group.clone(), topic_id: t.topic_id, partition: p.partition };
                let r = match coordinator.read(&key, p.leader_epoch) {
                    Err(code) => result(p.partition, code, None),
                    Ok((state, w)) => match w.durable().await {
                        Ok(()) => result(p.partition, 0, state.as_ref()),
                        Err(e) => result(p.partition, log_code(&e), None),
                    },
                };
                partitions.push(r);
            }
            results.push(ReadStateResult::default().with_topic_id(t.topic_id).with_partitions(partitions));
        }
        encode_body(&ReadShareGroupStateResponse::default().with_results(results), version)
    })))
}
