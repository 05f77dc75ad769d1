//! AlterPartitionReassignments (key 45), versions 0-1 (`kafka-reassign-partitions --execute`
//! and `--cancel`).
//!
//! Each partition named gets a target replica list (registered brokers, none twice:
//! INVALID_REPLICA_ASSIGNMENT otherwise) or null, which cancels the reassignment in progress
//! (NO_REASSIGNMENT_IN_PROGRESS when there is none). v1's `allow_replication_factor_change`
//! false refuses a target of another length (INVALID_REPLICATION_FACTOR, KIP-860). A move
//! makes the replicas the target followed by the leaving ones: the joining brokers start
//! following the leader, its ISR takes them once caught up, and the controller then drops the
//! leaving replicas (a leaving leader hands over to the first target replica in the ISR);
//! ListPartitionReassignments shows the move meanwhile. A cancellation goes back to the
//! replicas from before. Unknown topics or partitions get UNKNOWN_TOPIC_OR_PARTITION. The
//! changes are committed to the metadata before the answer.
//!
//! Authorization: ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED (top level and every
//! listed partition).

use bytes::Bytes;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::AdminError;
use crate::handlers::authz::op;
use crate::handlers::errors::admin_error_code;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::metadata::ReassignError;
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::AlterPartitionReassignments),
    min: 0,
    max: 1,
};

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: AlterPartitionReassignmentsRequest = ctx.decode(body)?;
    // ALTER on the cluster, else the top-level error and every listed partition's.
    if !ctx.authz().cluster(op::ALTER) {
        let code = WireError::ClusterAuthorizationFailed.code();
        let responses = req
            .topics
            .iter()
            .map(|t| ReassignableTopicResponse::default().with_name(t.name.clone()).with_partitions(t.partitions.iter().map(|p| ReassignablePartitionResponse::default().with_partition_index(p.partition_index).with_error_code(code)).collect()))
            .collect();
        return ctx.reply(&AlterPartitionReassignmentsResponse::default().with_error_code(code).with_responses(responses));
    }
    let broker = ctx.broker.clone();
    // v0 has no such field: replication factor changes are allowed there.
    let allow_rf_change = ctx.version == 0 || req.allow_replication_factor_change;
    // (topic index, partition index) -> refused before the metadata is asked.
    let mut early: Vec<Vec<Option<(i16, String)>>> = Vec::new();
    let mut requests = Vec::new();
    for t in &req.topics {
        let topic = t.name.0.to_string();
        let meta = broker.metadata.topic(&topic);
        let mut row = Vec::new();
        for p in &t.partitions {
            let target: Option<Vec<i32>> =
                p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
            let refused = match (&target, &meta) {
                (Some(target), Some(meta)) => {
                    let current = broker
                        .metadata
                        .partition_state(&meta.id, p.partition_index)
                        .map(|s| s.replicas.len() - s.removing.len());
                    match broker.validate_assignment(target) {
                        Err(e) => Some((admin_error_code(&e), e.to_string())),
                        Ok(()) => match current {
                            Some(n) if !allow_rf_change && n != target.len() => Some((
                                WireError::InvalidReplicationFactor.code(),
                                format!(
                                    "The replication factor is changed from {n} to {} but allowReplicationFactorChange is false.",
                                    target.len()
                                ),
                            )),
                            _ => None,
                        },
                    }
                }
                _ => None,
            };
            if refused.is_none() {
                requests.push((topic.clone(), p.partition_index, target));
            }
            row.push(refused);
        }
        early.push(row);
    }
    let decided = tokio::task::spawn_blocking(move || {
        let usable = |n: i32| broker.may_lead(n);
        broker.metadata.reassign_partitions(requests, &usable)
    })
    .await;
    let mut resp = AlterPartitionReassignmentsResponse::default();
    if ctx.version >= 1 {
        resp.allow_replication_factor_change = req.allow_replication_factor_change;
    }
    let mut outcomes = match decided {
        Ok(Ok(r)) => r.into_iter(),
        Ok(Err(e)) => {
            let e = AdminError::from(e);
            resp.error_code = admin_error_code(&e);
            resp.error_message = Some(StrBytes::from_string(e.to_string()));
            return ctx.reply(&resp);
        }
        Err(e) => {
            resp.error_code = WireError::UnknownServerError.code();
            resp.error_message = Some(StrBytes::from_string(format!("reassignment task failed: {e}")));
            return ctx.reply(&resp);
        }
    };
    for (t, row) in req.topics.iter().zip(early) {
        let partitions = t
            .partitions
            .iter()
            .zip(row)
            .map(|(p, refused)| {
                let r = ReassignablePartitionResponse::default().with_partition_index(p.partition_index);
                let (code, message) = match refused {
                    Some((code, message)) => (code, Some(message)),
                    None => match outcomes.next().map(|(_, _, r)| r) {
                        Some(Ok(())) => (0, None),
                        Some(Err(ReassignError::UnknownPartition)) | None => (
                            WireError::UnknownTopicOrPartition.code(),
                            Some(format!("No such partition as {}-{}", t.name.as_str(), p.partition_index)),
                        ),
                        Some(Err(ReassignError::NoneInProgress)) => (
                            WireError::NoReassignmentInProgress.code(),
                            Some(format!(
                                "Unable to find an ongoing reassignment for partition {}-{}",
                                t.name.as_str(),
                                p.partition_index
                            )),
                        ),
                    },
                };
                r.with_error_code(code).with_error_message(message.map(StrBytes::from_string))
            })
            .collect();
        resp.responses.push(
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions),
        );
    }
    ctx.reply(&resp)
}
