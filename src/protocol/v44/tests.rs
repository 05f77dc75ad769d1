//! Each codec against the bytes Kafka 4.4.0's Java client writes for the same message
//! (tests/fixtures/wire, field values in its README; `bash compat-tests/wire/gen.sh`).

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::*;
use crate::protocol::encode_body;
use crate::protocol::wire::fixture;

/// The topic id every fixture uses: Java's `new Uuid(0x0123456789abcdefL, 0x0fedcba987654321L)`.
const U: Uuid = Uuid::from_u64_pair(0x0123_4567_89ab_cdef, 0x0fed_cba9_8765_4321);

fn body(buf: BytesMut) -> Vec<u8> {
    buf[HEADER_ROOM..].to_vec()
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn names(id: &Uuid) -> Option<String> {
    (*id == U).then(|| "t".to_string())
}

fn ids(name: &str) -> Option<Uuid> {
    (name == "t").then_some(U)
}

fn no_names(_: &Uuid) -> Option<String> {
    None
}

/// Every strict prefix of a request body is an error, never a panic.
fn truncations_fail<T>(bytes: &[u8], decode: impl Fn(&[u8]) -> Result<T, ProtocolError>) {
    for n in 0..bytes.len() {
        assert!(decode(&bytes[..n]).is_err(), "prefix of {n} bytes decoded");
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(decode(&longer).is_err(), "a trailing byte was accepted");
}

#[test]
fn api_versions_v5_request() {
    let bytes = fixture("api_versions_v5_request");
    let (req, v5) = decode_api_versions_v5(&bytes).unwrap();
    assert_eq!(req.client_software_name.as_str(), "apache-kafka-java");
    assert_eq!(req.client_software_version.as_str(), "4.4.0");
    assert_eq!(v5.cluster_id.as_deref(), Some("AbCdEfGhIjKlMnOpQrStUw"));
    assert_eq!(v5.node_id, 1);
    let (_, v5) = decode_api_versions_v5(&fixture("api_versions_v5_request_defaults")).unwrap();
    assert_eq!(v5.cluster_id, None);
    assert_eq!(v5.node_id, -1);
    truncations_fail(&bytes, decode_api_versions_v5);
}

/// v5's response is v4's bytes: the crate's v4 encoder writes exactly what Java writes at v5.
#[test]
fn api_versions_v5_response_is_v4_bytes() {
    let resp = ApiVersionsResponse::default()
        .with_api_keys(vec![
            ApiVersion::default()
                .with_api_key(18)
                .with_min_version(0)
                .with_max_version(5),
            ApiVersion::default()
                .with_api_key(3)
                .with_min_version(0)
                .with_max_version(13),
        ])
        .with_finalized_features_epoch(7)
        .with_supported_features(vec![SupportedFeatureKey::default()
            .with_name(s("group.version"))
            .with_min_version(0)
            .with_max_version(1)])
        .with_finalized_features(vec![FinalizedFeatureKey::default()
            .with_name(s("group.version"))
            .with_max_version_level(1)
            .with_min_version_level(1)]);
    assert_eq!(
        body(encode_body(&resp, 4).unwrap()),
        fixture("api_versions_v5_response")
    );
}

/// ListOffsets v11 is v10's bytes both ways.
#[test]
fn list_offsets_v11_is_v10_bytes() {
    let bytes = fixture("list_offsets_v11_request");
    let req = ListOffsetsRequest::decode(&mut Bytes::from(bytes.clone()), 10).unwrap();
    assert_eq!(req.replica_id.0, -1);
    assert_eq!(req.isolation_level, 1);
    assert_eq!(req.timeout_ms, 30_000);
    let p = &req.topics[0].partitions[0];
    assert_eq!(
        (
            req.topics[0].name.0.as_str(),
            p.partition_index,
            p.current_leader_epoch,
            p.timestamp
        ),
        ("t", 0, 5, -6)
    );
    let mut again = BytesMut::new();
    req.encode(&mut again, 10).unwrap();
    assert_eq!(again.to_vec(), bytes);
    let resp =
        ListOffsetsResponse::default().with_topics(vec![ListOffsetsTopicResponse::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![ListOffsetsPartitionResponse::default()
                .with_partition_index(0)
                .with_timestamp(-1)
                .with_offset(42)
                .with_leader_epoch(0)])]);
    assert_eq!(
        body(encode_body(&resp, 10).unwrap()),
        fixture("list_offsets_v11_response")
    );
}

#[test]
fn describe_log_dirs_v5() {
    let req = DescribeLogDirsRequest::decode(
        &mut Bytes::from(fixture("describe_log_dirs_v5_request")),
        4,
    )
    .unwrap();
    assert!(req.topics.is_none());
    let resp =
        DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default()
            .with_log_dir(s("/data"))
            .with_topics(vec![DescribeLogDirsTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![DescribeLogDirsPartition::default()
                    .with_partition_index(0)
                    .with_partition_size(1234)])])
            .with_total_bytes(1_000_000)
            .with_usable_bytes(500_000)]);
    assert_eq!(
        body(encode_describe_log_dirs_v5(&resp, true)),
        fixture("describe_log_dirs_v5_response")
    );
}

#[test]
fn delete_groups_v3() {
    let req = DeleteGroupsRequest::decode(&mut Bytes::from(fixture("delete_groups_v3_request")), 2)
        .unwrap();
    let groups: Vec<&str> = req.groups_names.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(groups, ["g1", "g2"]);
    let resp = DeleteGroupsResponse::default().with_results(vec![
        DeletableGroupResult::default().with_group_id(GroupId(s("g1"))),
        DeletableGroupResult::default()
            .with_group_id(GroupId(s("g2")))
            .with_error_code(69),
    ]);
    let messages = [None, Some("The group id does not exist.".to_string())];
    assert_eq!(
        body(encode_delete_groups_v3(&resp, &messages)),
        fixture("delete_groups_v3_response")
    );
}

#[test]
fn offset_commit_v10() {
    let bytes = fixture("offset_commit_v10_request");
    let req = decode_offset_commit_v10(&bytes, &names).unwrap();
    assert_eq!(req.group_id.0.as_str(), "g");
    assert_eq!(req.generation_id_or_member_epoch, 3);
    assert_eq!(req.member_id.as_str(), "m");
    assert_eq!(req.group_instance_id, None);
    let t = &req.topics[0];
    assert_eq!(t.name.0.as_str(), "t");
    let got: Vec<_> = t
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.committed_offset,
                p.committed_leader_epoch,
                p.committed_metadata.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(0, 100, 2, Some("meta".to_string())), (1, 200, -1, None)]
    );
    // An id the broker does not know keeps its id through the handler.
    let unknown = decode_offset_commit_v10(&bytes, &no_names).unwrap();
    assert_eq!(unknown.topics[0].name.0.as_str(), unknown_id_name(U));
    truncations_fail(&bytes, |b| decode_offset_commit_v10(b, &names));

    let resp =
        OffsetCommitResponse::default().with_topics(vec![OffsetCommitResponseTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![
                OffsetCommitResponsePartition::default().with_partition_index(0),
                OffsetCommitResponsePartition::default().with_partition_index(1),
            ])]);
    assert_eq!(
        body(encode_offset_commit_v10(&resp, &ids)),
        fixture("offset_commit_v10_response")
    );
}

/// A partition of an unknown topic id answers UNKNOWN_TOPIC_ID under the id it was asked by.
#[test]
fn an_unknown_topic_id_is_echoed_with_unknown_topic_id() {
    let resp =
        OffsetCommitResponse::default().with_topics(vec![OffsetCommitResponseTopic::default()
            .with_name(TopicName(s(&unknown_id_name(U))))
            .with_partitions(vec![OffsetCommitResponsePartition::default()
                .with_partition_index(0)
                .with_error_code(WireError::UnknownTopicOrPartition.code())])]);
    let bytes = body(encode_offset_commit_v10(&resp, &|_| None));
    let mut r = Reader::new(&bytes);
    assert_eq!(r.i32().unwrap(), 0);
    assert_eq!(r.compact_array_len(1).unwrap(), Some(1));
    assert_eq!(r.uuid().unwrap(), U);
    assert_eq!(r.compact_array_len(1).unwrap(), Some(1));
    assert_eq!(r.i32().unwrap(), 0);
    assert_eq!(r.i16().unwrap(), WireError::UnknownTopicId.code());
}

#[test]
fn offset_fetch_v10() {
    let bytes = fixture("offset_fetch_v10_request");
    let req = decode_offset_fetch_v10(&bytes, &names).unwrap();
    assert!(req.require_stable);
    let g = &req.groups[0];
    assert_eq!(g.group_id.0.as_str(), "g");
    assert_eq!(g.member_id.as_ref().map(|m| m.as_str()), Some("m"));
    assert_eq!(g.member_epoch, 3);
    let topics = g.topics.as_ref().unwrap();
    assert_eq!(topics[0].name.0.as_str(), "t");
    assert_eq!(topics[0].partition_indexes, [0, 1]);
    let h = &req.groups[1];
    assert_eq!(
        (
            h.group_id.0.as_str(),
            h.member_id.is_none(),
            h.member_epoch,
            h.topics.is_none()
        ),
        ("h", true, -1, true)
    );
    truncations_fail(&bytes, |b| decode_offset_fetch_v10(b, &names));

    let resp = OffsetFetchResponse::default().with_groups(vec![
        OffsetFetchResponseGroup::default()
            .with_group_id(GroupId(s("g")))
            .with_topics(vec![OffsetFetchResponseTopics::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(0)
                        .with_committed_offset(100)
                        .with_committed_leader_epoch(2)
                        .with_metadata(Some(s("meta"))),
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(1)
                        .with_committed_offset(-1)
                        .with_committed_leader_epoch(-1)
                        .with_metadata(Some(s(""))),
                ])]),
        OffsetFetchResponseGroup::default().with_group_id(GroupId(s("h"))),
    ]);
    assert_eq!(
        body(encode_offset_fetch_v10(&resp, &ids)),
        fixture("offset_fetch_v10_response")
    );
}

#[test]
fn txn_offset_commit_v6() {
    let bytes = fixture("txn_offset_commit_v6_request");
    let req = decode_txn_offset_commit_v6(&bytes, &names).unwrap();
    assert_eq!(req.transactional_id.0.as_str(), "tx");
    assert_eq!(req.group_id.0.as_str(), "g");
    assert_eq!((req.producer_id.0, req.producer_epoch), (7, 1));
    assert_eq!(req.generation_id, 3);
    assert_eq!(req.member_id.as_str(), "m");
    assert_eq!(req.group_instance_id, None);
    let p = &req.topics[0].partitions[0];
    assert_eq!(req.topics[0].name.0.as_str(), "t");
    assert_eq!(
        (
            p.partition_index,
            p.committed_offset,
            p.committed_leader_epoch
        ),
        (0, 100, 2)
    );
    assert_eq!(
        p.committed_metadata.as_ref().map(|m| m.as_str()),
        Some("meta")
    );
    truncations_fail(&bytes, |b| decode_txn_offset_commit_v6(b, &names));

    let resp = TxnOffsetCommitResponse::default().with_topics(vec![
        TxnOffsetCommitResponseTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![
                TxnOffsetCommitResponsePartition::default().with_partition_index(0)
            ]),
    ]);
    assert_eq!(
        body(encode_txn_offset_commit_v6(&resp, &ids)),
        fixture("txn_offset_commit_v6_response")
    );
}
