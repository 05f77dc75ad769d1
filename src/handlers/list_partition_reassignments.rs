//! ListPartitionReassignments (key 46), version 0 (`kafka-reassign-partitions --verify`,
//! `kafka-topics --describe --under-replicated-partitions` and friends): the partitions being
//! reassigned — all of them, or those asked for that are — with their replicas (the target
//! followed by the leaving ones), the joining and the leaving ones. Partitions not being
//! reassigned, or unknown, are left out, as in Kafka.
//!
//! Authorization: DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::ListPartitionReassignments),
    min: 0,
    max: 0,
};

fn ids(v: Vec<i32>) -> Vec<BrokerId> {
    v.into_iter().map(BrokerId).collect()
}

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: ListPartitionReassignmentsRequest = ctx.decode(body)?;
    if !ctx.authz().cluster(op::DESCRIBE) {
        return ctx.reply(&ListPartitionReassignmentsResponse::default().with_error_code(WireError::ClusterAuthorizationFailed.code()));
    }
    let only: Option<Vec<(String, i32)>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|t| {
                t.partition_indexes
                    .iter()
                    .map(move |p| (t.name.0.to_string(), *p))
            })
            .collect()
    });
    let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    for (topic, partition, replicas, adding, removing) in
        ctx.broker.metadata.reassignments(only.as_deref())
    {
        by_topic.entry(topic).or_default().push(
            OngoingPartitionReassignment::default()
                .with_partition_index(partition)
                .with_replicas(ids(replicas))
                .with_adding_replicas(ids(adding))
                .with_removing_replicas(ids(removing)),
        );
    }
    let resp = ListPartitionReassignmentsResponse::default().with_topics(
        by_topic
            .into_iter()
            .map(|(name, partitions)| {
                OngoingTopicReassignment::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions)
            })
            .collect(),
    );
    ctx.reply(&resp)
}
