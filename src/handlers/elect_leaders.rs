//! ElectLeaders (key 43), versions 0-2 (`kafka-leader-election`).
//!
//! PREFERRED (0, the only type at v0) makes each partition's first assigned replica its leader
//! when it is in the ISR and unfenced (PREFERRED_LEADER_NOT_AVAILABLE otherwise,
//! ELECTION_NOT_NEEDED when it leads already); UNCLEAN (1) gives a partition without a leader
//! one — an ISR member if one is unfenced, else any unfenced replica, which becomes the whole
//! ISR and may lack acknowledged records (ELIGIBLE_LEADERS_NOT_AVAILABLE when none is,
//! ELECTION_NOT_NEEDED when it has a leader). Any other type is INVALID_REQUEST. Null
//! `topic_partitions` means every partition, and then the ones that needed no election are
//! left out of the answer, as Kafka does. Unknown topics or partitions get
//! UNKNOWN_TOPIC_OR_PARTITION. The decided changes are committed to the metadata (each
//! conditional on its partition epoch) before the answer; the brokers act on them as on any
//! leader change. On a single node every partition's only replica leads already.
//!
//! Authorization: ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED (top level and every
//! listed partition).

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ApiKey, ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::metadata::{Elected, Election};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::ElectLeaders),
    min: 0,
    max: 2,
};

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: ElectLeadersRequest = ctx.decode(body)?;
    let mut resp = ElectLeadersResponse::default();
    // ALTER on the cluster, else the top-level error and every listed partition's.
    if !ctx.authz().cluster(op::ALTER) {
        let code = WireError::ClusterAuthorizationFailed.code();
        resp.error_code = code;
        resp.replica_election_results = req
            .topic_partitions
            .iter()
            .flatten()
            .map(|t| {
                ReplicaElectionResult::default().with_topic(t.topic.clone()).with_partition_result(
                    t.partitions.iter().map(|p| PartitionResult::default().with_partition_id(*p).with_error_code(code)).collect(),
                )
            })
            .collect();
        return ctx.reply(&resp);
    }
    let election = match req.election_type {
        0 => Election::Preferred,
        1 => Election::Unclean,
        _ => {
            resp.error_code = WireError::InvalidRequest.code();
            return ctx.reply(&resp);
        }
    };
    let targets: Option<Vec<(String, i32)>> = req.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.topic.0.to_string(), *p))
            })
            .collect()
    });
    if targets.as_ref().is_some_and(|t| t.is_empty()) {
        return ctx.reply(&resp);
    }
    let broker = ctx.broker.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let usable = |n: i32| broker.may_lead(n);
        broker.metadata.elect_leaders(targets, election, &usable)
    })
    .await;
    let (results, commit_error) = match outcome {
        Ok(Ok(r)) => (r, None),
        Ok(Err(e)) => {
            // Nothing was committed: report every decided change as failed.
            let message = e.to_string();
            (Vec::new(), Some(message))
        }
        Err(e) => (Vec::new(), Some(format!("election task failed: {e}"))),
    };
    if let Some(message) = commit_error {
        resp.error_code = WireError::UnknownServerError.code();
        tracing::warn!(error = %message, "ElectLeaders: committing the elections failed");
        return ctx.reply(&resp);
    }
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    if let Some(topics) = &req.topic_partitions {
        // Topics in the order asked, even those with no partition listed.
        for t in topics {
            by_topic.entry(t.topic.0.to_string()).or_default();
        }
    }
    for (topic, partition, elected) in results {
        let (code, message) = match elected {
            None => (
                WireError::UnknownTopicOrPartition,
                Some(format!("No such partition as {topic}-{partition}")),
            ),
            Some(Elected::Change(_)) => {
                by_topic
                    .entry(topic)
                    .or_default()
                    .push(PartitionResult::default().with_partition_id(partition));
                continue;
            }
            Some(Elected::NotNeeded) => (WireError::ElectionNotNeeded, None),
            Some(Elected::NotAvailable) => match election {
                Election::Preferred => (WireError::PreferredLeaderNotAvailable, None),
                Election::Unclean => (WireError::EligibleLeadersNotAvailable, None),
            },
        };
        by_topic.entry(topic).or_default().push(
            PartitionResult::default()
                .with_partition_id(partition)
                .with_error_code(code.code())
                .with_error_message(message.map(StrBytes::from_string)),
        );
    }
    resp.replica_election_results = by_topic
        .into_iter()
        .map(|(topic, partition_result)| {
            ReplicaElectionResult::default()
                .with_topic(TopicName(StrBytes::from_string(topic)))
                .with_partition_result(partition_result)
        })
        .collect();
    ctx.reply(&resp)
}
