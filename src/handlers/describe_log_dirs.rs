//! DescribeLogDirs (key 35), versions 1-5 (all that Kafka 4.4 serves) — `kafka-log-dirs`.
//!
//! One log directory (`log.dirs`, as an absolute path like Kafka's `File.getAbsolutePath`)
//! with the size in bytes of each requested partition that exists (all partitions when the
//! topic list is null; unknown ones are left out, as in Kafka), `offset_lag` 0 and
//! `is_future_key` false (no replica moves between directories). v4 adds the filesystem's
//! total and usable bytes (statvfs; -1 if that fails). v5 (codec in [`crate::protocol::v44`];
//! the request is v4's bytes) adds IsCordoned: always false, Strom has no log-dir cordoning.
//!
//! Gaps: a single log directory (Strom refuses several in `log.dirs`).
//!
//! Authorization: DESCRIBE on the cluster, else no results and (v3+)
//! CLUSTER_AUTHORIZATION_FAILED.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::authz::op;
use crate::handlers::{Api, ApiSpec, Reply, RequestContext};
use crate::protocol::{v44, ProtocolError, WireError};

pub const SPEC: ApiSpec = ApiSpec {
    key: Api::of(ApiKey::DescribeLogDirs),
    min: 1,
    max: 5,
};

pub async fn handle(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
    let req: DescribeLogDirsRequest = ctx.decode_as(body, ctx.version.min(4))?;
    // DESCRIBE on the cluster, else no results (and, v3+, the top-level error).
    if !ctx.authz().cluster(op::DESCRIBE) {
        let mut resp = DescribeLogDirsResponse::default();
        if ctx.version >= 3 {
            resp.error_code = WireError::ClusterAuthorizationFailed.code();
        }
        if ctx.version >= 5 {
            return Ok(Reply::Now(v44::encode_describe_log_dirs_v5(&resp, false)));
        }
        return ctx.reply(&resp);
    }
    let broker = &ctx.broker;
    // Merged and de-duplicated like Kafka's set of partitions.
    let mut wanted: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    match req.topics {
        Some(ts) => {
            for t in ts {
                wanted
                    .entry(t.topic.0.to_string())
                    .or_default()
                    .extend(t.partitions);
            }
        }
        None => {
            for t in broker.metadata.topics() {
                wanted.insert(t.name, (0..t.partitions).collect());
            }
        }
    }
    let topics = wanted
        .into_iter()
        .filter_map(|(name, parts)| {
            let partitions: Vec<DescribeLogDirsPartition> = parts
                .into_iter()
                .filter_map(|p| broker.partition(&name, p))
                .map(|p| {
                    DescribeLogDirsPartition::default()
                        .with_partition_index(p.index)
                        .with_partition_size(p.log.size_bytes() as i64)
                })
                .collect();
            (!partitions.is_empty()).then(|| {
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions)
            })
        })
        .collect();
    let dir = std::path::absolute(&broker.config.log_dir)
        .unwrap_or_else(|_| broker.config.log_dir.clone());
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(topics);
    if ctx.version >= 4 {
        let (total, usable) = crate::log::manager::disk_space(&dir).unwrap_or((-1, -1));
        result.total_bytes = total;
        result.usable_bytes = usable;
    }
    let resp = DescribeLogDirsResponse::default().with_results(vec![result]);
    if ctx.version >= 5 {
        return Ok(Reply::Now(v44::encode_describe_log_dirs_v5(&resp, false)));
    }
    ctx.reply(&resp)
}
