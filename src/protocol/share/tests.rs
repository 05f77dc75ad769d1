use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    share_acknowledge_response, share_fetch_request, share_fetch_response,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::*;
use crate::protocol::wire::fixture;

const U: Uuid = Uuid::from_u64_pair(0x0123_4567_89ab_cdef, 0x0fed_cba9_8765_4321);

fn joined(pieces: &FetchPieces, records: &[&[u8]]) -> Vec<u8> {
    let mut out = pieces.pieces[0][HEADER_ROOM..].to_vec();
    for (i, piece) in pieces.pieces[1..].iter().enumerate() {
        out.extend_from_slice(records[i]);
        out.extend_from_slice(piece);
    }
    out
}

#[test]
fn share_fetch_v2_request_matches_the_java_client() {
    let q = decode_share_fetch(&fixture("share_fetch_v2_request"), 2).unwrap();
    assert_eq!(q.group_id.as_deref(), Some("sg"));
    assert_eq!(q.member_id.as_deref(), Some("AAAAAAAAAAAAAAAAAAAAAA"));
    assert_eq!(
        (
            q.share_session_epoch,
            q.max_wait_ms,
            q.min_bytes,
            q.max_bytes,
            q.max_records,
            q.batch_size
        ),
        (4, 500, 1, 52_428_800, 500, 500)
    );
    assert_eq!(
        (q.acquire_mode, q.is_renew_ack),
        (ACQUIRE_RECORD_LIMIT, true)
    );
    assert_eq!(
        q.topics,
        vec![TopicAcks {
            topic_id: U,
            partitions: vec![
                PartitionAcks {
                    partition: 0,
                    batches: vec![
                        AckBatch {
                            first_offset: 10,
                            last_offset: 12,
                            types: vec![ACK_ACCEPT]
                        },
                        AckBatch {
                            first_offset: 13,
                            last_offset: 15,
                            types: vec![ACK_RELEASE, ACK_GAP, ACK_REJECT]
                        },
                    ],
                },
                PartitionAcks {
                    partition: 3,
                    batches: vec![]
                },
            ],
        }]
    );
    assert_eq!(
        q.forgotten,
        vec![ForgottenTopic {
            topic_id: U,
            partitions: vec![1, 2]
        }]
    );
}

#[test]
fn share_fetch_v2_response_matches_the_java_client() {
    let resp = ShareFetchResponse {
        acquisition_lock_timeout_ms: 30_000,
        responses: vec![(
            U,
            vec![
                FetchPartitionResponse {
                    partition: 0,
                    ack_error_code: 121,
                    ack_error_message: Some("bad state".into()),
                    current_leader: LeaderIdAndEpoch {
                        leader_id: 1,
                        leader_epoch: 7,
                    },
                    records_len: 5,
                    acquired: vec![
                        AcquiredRange {
                            first_offset: 20,
                            last_offset: 24,
                            delivery_count: 1,
                        },
                        AcquiredRange {
                            first_offset: 26,
                            last_offset: 26,
                            delivery_count: 3,
                        },
                    ],
                    ..Default::default()
                },
                FetchPartitionResponse {
                    partition: 3,
                    error_code: 6,
                    error_message: Some("not leader".into()),
                    current_leader: LeaderIdAndEpoch {
                        leader_id: 2,
                        leader_epoch: 9,
                    },
                    ..Default::default()
                },
            ],
        )],
        node_endpoints: vec![NodeEndpoint {
            node_id: 2,
            host: "h2".into(),
            port: 9093,
            rack: Some("r2".into()),
        }],
        ..Default::default()
    };
    let pieces = encode_share_fetch_response(&resp, 2).unwrap();
    assert_eq!(pieces.pieces.len(), 3);
    assert_eq!(
        joined(&pieces, &[&[1, 2, 3, 4, 5], &[]]),
        fixture("share_fetch_v2_response")
    );
}

#[test]
fn share_acknowledge_v2_matches_the_java_client() {
    let q = decode_share_acknowledge(&fixture("share_acknowledge_v2_request"), 2).unwrap();
    assert_eq!(
        q,
        ShareAcknowledgeRequest {
            group_id: Some("sg".into()),
            member_id: Some("AAAAAAAAAAAAAAAAAAAAAA".into()),
            share_session_epoch: 5,
            is_renew_ack: true,
            topics: vec![TopicAcks {
                topic_id: U,
                partitions: vec![PartitionAcks {
                    partition: 2,
                    batches: vec![AckBatch {
                        first_offset: 0,
                        last_offset: 1,
                        types: vec![ACK_RENEW, ACK_ACCEPT]
                    }],
                }],
            }],
        }
    );
    let resp = ShareAcknowledgeResponse {
        acquisition_lock_timeout_ms: 15_000,
        responses: vec![(
            U,
            vec![AckPartitionResponse {
                partition: 2,
                error_code: 121,
                error_message: Some("bad".into()),
                current_leader: LeaderIdAndEpoch {
                    leader_id: 1,
                    leader_epoch: 3,
                },
            }],
        )],
        ..Default::default()
    };
    let body = encode_share_acknowledge_response(&resp, 2).unwrap();
    assert_eq!(
        &body[HEADER_ROOM..],
        &fixture("share_acknowledge_v2_response")[..]
    );
}

/// v1 is the crate's: its encoder's request bytes decode to the same fields, and our
/// responses decode with its decoder.
#[test]
fn v1_agrees_with_the_crate() {
    let mut part = share_fetch_request::FetchPartition::default();
    part.partition_index = 4;
    let mut batch = share_fetch_request::AcknowledgementBatch::default();
    batch.first_offset = 7;
    batch.last_offset = 9;
    batch.acknowledge_types = vec![1, 2, 3];
    part.acknowledgement_batches = vec![batch];
    let mut topic = share_fetch_request::FetchTopic::default();
    topic.topic_id = U;
    topic.partitions = vec![part];
    let mut req = kafka_protocol::messages::ShareFetchRequest::default();
    req.group_id = Some(StrBytes::from_static_str("g").into());
    req.member_id = Some(StrBytes::from_static_str("m"));
    req.share_session_epoch = 2;
    req.max_wait_ms = 100;
    req.min_bytes = 1;
    req.max_bytes = 1000;
    req.max_records = 10;
    req.batch_size = 5;
    req.topics = vec![topic];
    let mut buf = BytesMut::new();
    req.encode(&mut buf, 1).unwrap();
    let q = decode_share_fetch(&buf, 1).unwrap();
    assert_eq!(q.group_id.as_deref(), Some("g"));
    assert_eq!((q.max_records, q.batch_size, q.acquire_mode), (10, 5, 0));
    assert_eq!(q.topics[0].partitions[0].batches[0].types, vec![1, 2, 3]);

    let resp = ShareFetchResponse {
        acquisition_lock_timeout_ms: 1000,
        responses: vec![(
            U,
            vec![FetchPartitionResponse {
                partition: 4,
                records_len: 0,
                acquired: vec![AcquiredRange {
                    first_offset: 1,
                    last_offset: 2,
                    delivery_count: 1,
                }],
                ..Default::default()
            }],
        )],
        ..Default::default()
    };
    let bytes = joined(&encode_share_fetch_response(&resp, 1).unwrap(), &[&[]]);
    let back =
        share_fetch_response::ShareFetchResponse::decode(&mut Bytes::from(bytes), 1).unwrap();
    assert_eq!(back.acquisition_lock_timeout_ms, 1000);
    let p = &back.responses[0].partitions[0];
    assert_eq!(p.acquired_records[0].last_offset, 2);
    assert!(matches!(&p.records, Some(r) if r.is_empty()) || p.records.is_none());

    let ack = ShareAcknowledgeResponse {
        responses: vec![(
            U,
            vec![AckPartitionResponse {
                partition: 4,
                error_code: 0,
                ..Default::default()
            }],
        )],
        ..Default::default()
    };
    let body = encode_share_acknowledge_response(&ack, 1).unwrap();
    let back = share_acknowledge_response::ShareAcknowledgeResponse::decode(
        &mut Bytes::copy_from_slice(&body[HEADER_ROOM..]),
        1,
    )
    .unwrap();
    assert_eq!(back.responses[0].partitions[0].partition_index, 4);
}

/// Hostile bodies are errors, never panics or big allocations.
#[test]
fn truncated_and_hostile_bodies_are_errors() {
    let full = fixture("share_fetch_v2_request");
    for n in 0..full.len() {
        assert!(decode_share_fetch(&full[..n], 2).is_err(), "prefix {n}");
    }
    // A topic count of 2^28 in a short body.
    let mut hostile = full[..2 + 3 + 23 + 4 * 6 + 2].to_vec();
    hostile.extend_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
    assert!(decode_share_fetch(&hostile, 2).is_err());
    let ack = fixture("share_acknowledge_v2_request");
    for n in 0..ack.len() {
        assert!(
            decode_share_acknowledge(&ack[..n], 2).is_err(),
            "prefix {n}"
        );
    }
    assert!(decode_share_fetch(&full, 3).is_err());
    assert!(decode_share_fetch(&full, 0).is_err());
}

/// v0 agrees with the crate's decoder; v1 adds Lag after LeaderEpoch.
#[test]
fn describe_offsets_v0_agrees_with_the_crate() {
    use kafka_protocol::messages::DescribeShareGroupOffsetsResponse;
    let groups = vec![OffsetsGroup {
        group_id: "g".into(),
        topics: vec![OffsetsTopic {
            name: "t".into(),
            topic_id: U,
            partitions: vec![OffsetsPartition {
                partition: 1,
                start_offset: 42,
                leader_epoch: 3,
                lag: 7,
                error_code: 0,
                error_message: None,
            }],
        }],
        error_code: 0,
        error_message: None,
    }];
    let v0 = encode_describe_offsets_response(&groups, 0).unwrap();
    let back = DescribeShareGroupOffsetsResponse::decode(
        &mut Bytes::copy_from_slice(&v0[HEADER_ROOM..]),
        0,
    )
    .unwrap();
    let p = &back.groups[0].topics[0].partitions[0];
    assert_eq!(
        (p.partition_index, p.start_offset, p.leader_epoch),
        (1, 42, 3)
    );
    let v1 = encode_describe_offsets_response(&groups, 1).unwrap();
    assert_eq!(v1.len(), v0.len() + 8);
}
