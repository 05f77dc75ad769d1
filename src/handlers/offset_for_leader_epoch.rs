//! OffsetForLeaderEpoch (key 23), versions 2-4 (all that Kafka 4.1 serves).
//!
//! For a leader epoch a consumer (KIP-320 truncation detection) or a follower saw: the epoch
//! it resolves to and where that epoch ends, by Kafka's `LeaderEpochFileCache.endOffsetFor`
//! rules (in `replica::leader_epoch`): the current epoch ends at the log end offset; an
//! undefined (-1) or future epoch is (-1, -1); an older epoch resolves to the largest known
//! epoch not above it, ending where the next one starts. On a single node: epoch 0 from offset 0
//! for a partition's whole life. `current_leader_epoch` (other than -1) is checked like
//! Fetch: older FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH. Unknown partitions:
//! UNKNOWN_TOPIC_OR_PARTITION. `replica_id` (v3+) changes nothing.
//! Answered by the partition's leader only (NOT_LEADER_OR_FOLLOWER from a follower, or in a
//! cluster from a broker without the partition).
//!
//! Authorization: CLUSTER_ACTION on the cluster (a follower; denial not audited) or DESCRIBE on
//! each topic, else its partitions TOPIC_AUTHORIZATION_FAILED.

use bytes::Bytes;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::handlers::authz::op;
use crate::handlers::errors::epoch_error_code;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::OffsetForLeaderEpoch),
    min: 2,
    max: 4,
};

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: OffsetForLeaderEpochRequest = ctx.decode(body)?;
    let authz = ctx.authz();
    // Followers pass with CLUSTER_ACTION (not audited when denied), consumers need DESCRIBE.
    let replica = authz.cluster_quietly(op::CLUSTER_ACTION);
    let mut describable = authz.names(op::DESCRIBE, crate::security::acl::resource::TOPIC);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let allowed = replica || describable.allows(t.topic.0.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if !allowed {
                        r.error_code = WireError::TopicAuthorizationFailed.code();
                        return r;
                    }
                    let Some(part) = ctx.broker.partition(t.topic.0.as_str(), p.partition) else {
                        let meta = ctx.broker.metadata.topic(t.topic.0.as_str());
                        r.error_code = ctx.broker.not_hosted_code(
                            meta.as_ref(),
                            p.partition,
                            WireError::UnknownTopicOrPartition.code(),
                        );
                        return r;
                    };
                    // Served by the leader only, as in Kafka (its epochs are the truth).
                    if !part.is_leader() {
                        r.error_code = WireError::NotLeaderOrFollower.code();
                        return r;
                    }
                    if let Err(e) = part.check_current_epoch(p.current_leader_epoch) {
                        r.error_code = epoch_error_code(e);
                        return r;
                    }
                    let (e, off) = part.end_offset_for_epoch(p.leader_epoch);
                    r.leader_epoch = e;
                    r.end_offset = off;
                    r
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    ctx.reply(&OffsetForLeaderEpochResponse::default().with_topics(topics))
}
