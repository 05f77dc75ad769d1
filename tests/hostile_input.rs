//! Hostile input over raw TCP (no client library). Every case must end in an error response or
//! a closed connection, and every test ends by proving the broker process is still running
//! and answers a normal ApiVersions request on a fresh connection.
//!
//! The array-count bombs guard a real crash: `kafka-protocol` 0.18 decodes an array with
//! `Vec::with_capacity(n)` for an `n` read from the wire, and a failed allocation aborts the
//! process. `src/alloc.rs` makes such claims harmless; these tests are what proves it (they
//! abort the broker when the guarded allocator is removed).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::{wait_for, RawClient, TestBroker};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    FetchRequest, FetchResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

// ---------------------------------------------------------------------------------------------
// Raw wire helpers

fn connect(b: &TestBroker) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", b.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

#[derive(Debug, PartialEq)]
enum Outcome {
    /// EOF or reset: the broker closed the connection.
    Closed,
    /// The broker sent this many bytes and kept the connection open until the read timeout.
    Open(usize),
}

/// Reads until the broker closes (EOF/reset) or the read timeout passes.
fn outcome(mut s: TcpStream) -> Outcome {
    let mut buf = [0u8; 4096];
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return Outcome::Closed,
            Ok(n) => seen += n,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return Outcome::Open(seen)
            }
            Err(_) => return Outcome::Closed,
        }
    }
    Outcome::Open(seen)
}

fn assert_closed(s: TcpStream, what: &str) {
    assert_eq!(outcome(s), Outcome::Closed, "{what}: connection not closed");
}

/// The end of every test: the process is alive and serves a normal ApiVersions request on a
/// fresh connection. Retried for a bounded time only because connection slots (max.connections)
/// are released asynchronously after a close.
fn assert_still_serving(b: &mut TestBroker) {
    assert!(b.is_running(), "broker process died; log:\n{}", b.log());
    let s = wait_for(
        Duration::from_secs(10),
        "ApiVersions on a fresh connection",
        || served(b),
    );
    drop(s);
    assert!(b.is_running(), "broker process died; log:\n{}", b.log());
}

/// A request header by hand: key, version, correlation id 7, client id "x", and the empty
/// tagged-field section of header v2 when `flexible`.
fn header(key: i16, version: i16, flexible: bool) -> Vec<u8> {
    let mut h = Vec::new();
    h.put_i16(key);
    h.put_i16(version);
    h.put_i32(7);
    h.put_i16(1);
    h.push(b'x');
    if flexible {
        h.push(0);
    }
    h
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(4 + body.len());
    f.put_i32(i32::try_from(body.len()).expect("size"));
    f.extend_from_slice(body);
    f
}

fn send_frame(s: &mut TcpStream, body: &[u8]) {
    s.write_all(&frame(body)).expect("write");
}

/// A whole request frame encoded with `kafka-protocol`.
fn encoded<T: Encodable>(key: ApiKey, version: i16, correlation: i32, req: &T) -> Vec<u8> {
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str("hostile")))
        .encode(&mut body, key.request_header_version(version))
        .expect("header");
    req.encode(&mut body, version).expect("body");
    frame(&body)
}

fn uvarint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// Deterministic pseudo-random bytes (xorshift).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Sends one malformed request on a fresh connection and expects it closed with the broker alive.
fn bomb(b: &mut TestBroker, body: &[u8], what: &str) {
    let mut s = connect(b);
    send_frame(&mut s, body);
    assert_closed(s, what);
    assert!(b.is_running(), "{what}: broker died; log:\n{}", b.log());
}

// ---------------------------------------------------------------------------------------------
// Framing

#[test]
fn frame_over_socket_request_max_bytes_is_closed() {
    let mut b = TestBroker::start(&["socket.request.max.bytes=1048576"]);
    let mut s = connect(&b);
    // Only the length is sent: the broker must refuse on the prefix, without waiting for 10 MB.
    s.write_all(&(10 * 1024 * 1024i32).to_be_bytes())
        .expect("write");
    let started = Instant::now();
    assert_closed(s, "10 MB frame");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Just over the limit, with the bytes actually following, is refused too.
    let mut s = connect(&b);
    let mut f = (1_048_577i32).to_be_bytes().to_vec();
    f.extend(header(18, 0, false));
    let _ = s.write_all(&f);
    assert_closed(s, "1 MiB + 1 frame");
    assert_still_serving(&mut b);
}

#[test]
fn negative_frame_length_is_closed() {
    let mut b = TestBroker::start(&[]);
    for len in [-1i32, i32::MIN] {
        let mut s = connect(&b);
        s.write_all(&len.to_be_bytes()).expect("write");
        assert_closed(s, &format!("frame length {len}"));
    }
    assert_still_serving(&mut b);
}

#[test]
fn zero_and_tiny_frame_lengths_are_closed() {
    let mut b = TestBroker::start(&[]);
    for len in [0usize, 1, 3, 7] {
        let mut s = connect(&b);
        let mut f = (len as i32).to_be_bytes().to_vec();
        f.extend(&header(18, 0, false)[..len]);
        s.write_all(&f).expect("write");
        assert_closed(s, &format!("frame length {len}"));
    }
    assert_still_serving(&mut b);
}

#[test]
fn random_garbage_is_closed() {
    let mut b = TestBroker::start(&[]);
    for seed in 1..=8u64 {
        // Framed garbage (a plausible length, then noise) ...
        let mut s = connect(&b);
        send_frame(&mut s, &noise(seed, 200 + seed as usize * 13));
        assert_closed(s, &format!("framed noise #{seed}"));
        // ... and unframed noise, whose first 4 bytes are whatever they are.
        let mut s = connect(&b);
        let _ = s.write_all(&noise(seed * 7919, 4096));
        let o = outcome(s);
        assert_eq!(o, Outcome::Closed, "unframed noise #{seed}");
    }
    assert_still_serving(&mut b);
}

// ---------------------------------------------------------------------------------------------
// Versions and keys

#[test]
fn unknown_api_keys_are_closed() {
    let mut b = TestBroker::start(&[]);
    for key in [9999i16, -1, 1000, i16::MAX] {
        let mut s = connect(&b);
        send_frame(&mut s, &header(key, 0, false));
        assert_closed(s, &format!("API key {key}"));
    }
    assert_still_serving(&mut b);
}

#[test]
fn unsupported_version_of_a_known_api_is_closed() {
    let mut b = TestBroker::start(&[]);
    for (key, version) in [(0i16, 99i16), (0, 2), (3, -1), (1, 3)] {
        let mut s = connect(&b);
        send_frame(&mut s, &header(key, version, false));
        assert_closed(s, &format!("key {key} v{version}"));
    }
    assert_still_serving(&mut b);
}

#[test]
fn api_versions_v99_gets_the_v0_layout_with_unsupported_version() {
    let mut b = TestBroker::start(&[]);
    let mut s = connect(&b);
    // A flexible-looking v99 body (client software name/version and tags).
    let mut body = header(18, 99, true);
    body.extend([6, b'p', b'r', b'o', b'b', b'e', 2, b'1', 0]);
    send_frame(&mut s, &body);
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("length");
    let len = usize::try_from(i32::from_be_bytes(len)).expect("positive");
    assert!(len < 64 * 1024, "response of {len} bytes");
    let mut r = vec![0u8; len];
    s.read_exact(&mut r).expect("body");
    let i16_at = |o: usize| i16::from_be_bytes([r[o], r[o + 1]]);
    let i32_at = |o: usize| i32::from_be_bytes([r[o], r[o + 1], r[o + 2], r[o + 3]]);
    assert_eq!(i32_at(0), 7, "correlation id (response header v0)");
    assert_eq!(i16_at(4), 35, "UNSUPPORTED_VERSION");
    let n = usize::try_from(i32_at(6)).expect("non-negative count");
    assert_eq!(
        r.len(),
        10 + n * 6,
        "v0 layout: int32 count, (key, min, max) int16 triples, no throttle time, no tags"
    );
    let ranges: Vec<(i16, i16, i16)> = (0..n)
        .map(|i| (i16_at(10 + i * 6), i16_at(12 + i * 6), i16_at(14 + i * 6)))
        .collect();
    assert!(!ranges.is_empty());
    let api_versions = ranges
        .iter()
        .find(|r| r.0 == 18)
        .expect("ApiVersions listed");
    assert_eq!(api_versions.1, 0, "ApiVersions from v0");
    assert!(
        (3..99).contains(&api_versions.2),
        "ApiVersions max {api_versions:?}"
    );
    assert!(ranges.iter().all(|r| r.1 <= r.2), "min <= max: {ranges:?}");
    // The same ranges as a normal ApiVersions answer.
    let mut raw = RawClient::connect(b.port);
    let normal: ApiVersionsResponse =
        raw.call(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
    let mut listed: Vec<(i16, i16, i16)> = normal
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    listed.sort_unstable();
    let mut fallback = ranges.clone();
    fallback.sort_unstable();
    assert_eq!(fallback, listed, "fallback lists what ApiVersions v0 lists");
    // The client can retry on the same connection at a version it now knows.
    let retry = encoded(
        ApiKey::ApiVersions,
        3,
        8,
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("probe"))
            .with_client_software_version(StrBytes::from_static_str("1")),
    );
    s.write_all(&retry).expect("write");
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("length");
    let mut r = vec![0u8; usize::try_from(i32::from_be_bytes(len)).expect("len")];
    s.read_exact(&mut r).expect("body");
    assert_eq!(&r[..4], &8i32.to_be_bytes(), "correlation id of the retry");
    assert_eq!(&r[4..6], &[0, 0], "retry succeeds");
    assert_still_serving(&mut b);
}

// ---------------------------------------------------------------------------------------------
// Array-count and length bombs

#[test]
fn metadata_v4_topic_array_claiming_2_pow_31_minus_1() {
    let mut b = TestBroker::start(&[]);
    let body = [header(3, 4, false), 0x7fff_ffffi32.to_be_bytes().to_vec()].concat();
    bomb(&mut b, &body, "Metadata v4, 2^31-1 topics");
    assert_still_serving(&mut b);
}

#[test]
fn metadata_v12_compact_array_claiming_u32_max() {
    let mut b = TestBroker::start(&[]);
    let body = [header(3, 12, true), uvarint(u64::from(u32::MAX))].concat();
    bomb(&mut b, &body, "Metadata v12, compact length u32::MAX");
    // The largest varint the decoder might accept, too.
    let body = [header(3, 12, true), uvarint(u64::from(u32::MAX) << 3)].concat();
    bomb(&mut b, &body, "Metadata v12, 35-bit varint length");
    assert_still_serving(&mut b);
}

#[test]
fn produce_v9_topic_data_claiming_2_pow_31() {
    let mut b = TestBroker::start(&[]);
    let body = [
        header(0, 9, true),
        vec![0],                        // transactional id: null compact string
        1i16.to_be_bytes().to_vec(),    // acks
        1000i32.to_be_bytes().to_vec(), // timeout
        uvarint(0x8000_0000),           // topic_data: compact length 2^31 - 1 + 1
    ]
    .concat();
    bomb(&mut b, &body, "Produce v9, 2^31 topics");
    assert_still_serving(&mut b);
}

#[test]
fn produce_v8_nested_partition_array_claiming_2_pow_31_minus_1() {
    let mut b = TestBroker::start(&[]);
    let body = [
        header(0, 8, false),
        (-1i16).to_be_bytes().to_vec(),
        1i16.to_be_bytes().to_vec(),
        1000i32.to_be_bytes().to_vec(),
        1i32.to_be_bytes().to_vec(), // one topic
        1i16.to_be_bytes().to_vec(),
        b"t".to_vec(),
        0x7fff_ffffi32.to_be_bytes().to_vec(), // its partitions
    ]
    .concat();
    bomb(&mut b, &body, "Produce v8, 2^31-1 partitions");
    // A records field claiming 2^31-1 bytes.
    let body = [
        header(0, 8, false),
        (-1i16).to_be_bytes().to_vec(),
        1i16.to_be_bytes().to_vec(),
        1000i32.to_be_bytes().to_vec(),
        1i32.to_be_bytes().to_vec(),
        1i16.to_be_bytes().to_vec(),
        b"t".to_vec(),
        1i32.to_be_bytes().to_vec(),
        0i32.to_be_bytes().to_vec(),
        0x7fff_ffffi32.to_be_bytes().to_vec(),
        vec![0; 16],
    ]
    .concat();
    bomb(&mut b, &body, "Produce v8, records of 2^31-1 bytes");
    assert_still_serving(&mut b);
}

#[test]
fn create_topics_nested_configs_array_claiming_huge_counts() {
    let mut b = TestBroker::start(&[]);
    // v4 (non-flexible): one topic, no assignments, configs claiming 2^31-1.
    let body = [
        header(19, 4, false),
        1i32.to_be_bytes().to_vec(),
        1i16.to_be_bytes().to_vec(),
        b"t".to_vec(),
        1i32.to_be_bytes().to_vec(),
        1i16.to_be_bytes().to_vec(),
        0i32.to_be_bytes().to_vec(),
        0x7fff_ffffi32.to_be_bytes().to_vec(),
    ]
    .concat();
    bomb(&mut b, &body, "CreateTopics v4, 2^31-1 configs");
    // v5 (flexible): same shape with compact arrays, configs claiming u32::MAX - 1.
    let body = [
        header(19, 5, true),
        uvarint(2),
        uvarint(2),
        b"t".to_vec(),
        1i32.to_be_bytes().to_vec(),
        1i16.to_be_bytes().to_vec(),
        uvarint(1),
        uvarint(u64::from(u32::MAX)),
    ]
    .concat();
    bomb(&mut b, &body, "CreateTopics v5, u32::MAX-1 configs");
    // The assignments' broker-id array, one level deeper.
    let body = [
        header(19, 4, false),
        1i32.to_be_bytes().to_vec(),
        1i16.to_be_bytes().to_vec(),
        b"t".to_vec(),
        (-1i32).to_be_bytes().to_vec(),
        (-1i16).to_be_bytes().to_vec(),
        1i32.to_be_bytes().to_vec(), // one assignment
        0i32.to_be_bytes().to_vec(), // partition 0
        0x7fff_ffffi32.to_be_bytes().to_vec(),
    ]
    .concat();
    bomb(&mut b, &body, "CreateTopics v4, 2^31-1 broker ids");
    assert_still_serving(&mut b);
}

#[test]
fn string_lengths_beyond_the_frame() {
    let mut b = TestBroker::start(&[]);
    let body = [
        header(3, 4, false),
        1i32.to_be_bytes().to_vec(),
        30_000i16.to_be_bytes().to_vec(),
        b"abc".to_vec(),
    ]
    .concat();
    bomb(
        &mut b,
        &body,
        "Metadata v4, topic name of 30,000 bytes in a 3-byte frame tail",
    );
    let body = [
        header(3, 12, true),
        uvarint(2),
        vec![0; 16], // topic id
        uvarint(u64::from(u32::MAX)),
        b"abc".to_vec(),
    ]
    .concat();
    bomb(
        &mut b,
        &body,
        "Metadata v12, compact string of u32::MAX-1 bytes",
    );
    // The client id in the request header itself.
    let mut body = Vec::new();
    body.put_i16(18);
    body.put_i16(0);
    body.put_i32(7);
    body.put_i16(i16::MAX);
    body.extend(b"x");
    bomb(&mut b, &body, "client id of 32,767 bytes");
    assert_still_serving(&mut b);
}

// ---------------------------------------------------------------------------------------------
// Record batches built by hand

/// A magic-2 record batch of `count` tiny uncompressed records (61-byte header + records),
/// with a correct CRC32C.
fn record_batch(count: i32) -> Vec<u8> {
    let values: Vec<&[u8]> = (0..count).map(|_| &b"v"[..]).collect();
    batch_of(&values)
}

/// A magic-2 record batch with one record per value (null keys, no headers), correct CRC32C.
fn batch_of(values: &[&[u8]]) -> Vec<u8> {
    let count = i32::try_from(values.len()).expect("count");
    let mut records = Vec::new();
    for (i, v) in values.iter().enumerate() {
        // attributes, timestamp delta 0, offset delta i, key null (-1), value, 0 headers; the
        // signed varints are zigzag-encoded (n >= 0 becomes 2n, -1 becomes 1).
        let body = [
            vec![0u8, 0],
            uvarint((i as u64) << 1),
            vec![1],
            uvarint((v.len() as u64) << 1),
            v.to_vec(),
            vec![0],
        ]
        .concat();
        records.extend(uvarint((body.len() as u64) << 1));
        records.extend(body);
    }
    let mut b = Vec::new();
    b.put_i64(0); // base offset
    b.put_i32((49 + records.len()) as i32); // batch length: from partition leader epoch on
    b.put_i32(-1); // partition leader epoch
    b.push(2); // magic
    b.put_u32(0); // crc, below
    b.put_i16(0); // attributes
    b.put_i32(count - 1); // last offset delta
    b.put_i64(1_000); // base timestamp
    b.put_i64(1_000); // max timestamp
    b.put_i64(-1); // producer id
    b.put_i16(-1); // producer epoch
    b.put_i32(-1); // base sequence
    b.put_i32(count);
    assert_eq!(b.len(), 61);
    b.extend_from_slice(&records);
    fix_crc(&mut b);
    b
}

fn fix_crc(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn produce_to(topic: &'static str, records: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(records)))])])
}

fn produce_code(raw: &mut RawClient, records: Vec<u8>) -> (i16, i64) {
    let r: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce_to("bad", records));
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn broker_with_topic() -> (TestBroker, RawClient) {
    broker_with_topic_set(&[])
}

fn broker_with_topic_set(sets: &[&str]) -> (TestBroker, RawClient) {
    let b = TestBroker::start(sets);
    let mut raw = RawClient::connect(b.port);
    let ct: CreateTopicsResponse = raw.call(
        ApiKey::CreateTopics,
        5,
        &CreateTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("bad")))
                .with_num_partitions(1)
                .with_replication_factor(1)]),
    );
    assert_eq!(ct.topics[0].error_code, 0);
    (b, raw)
}

#[test]
fn batch_with_wrong_crc_is_corrupt_message() {
    let (mut b, mut raw) = broker_with_topic();
    assert_eq!(produce_code(&mut raw, record_batch(2)), (0, 0), "valid");
    let mut bad = record_batch(2);
    bad[17] ^= 0x01;
    assert_eq!(produce_code(&mut raw, bad).0, 2, "CORRUPT_MESSAGE");
    let mut flipped = record_batch(2);
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40; // payload bit flip, CRC left as it was
    assert_eq!(produce_code(&mut raw, flipped).0, 2, "CORRUPT_MESSAGE");
    // Nothing of the refused batches was appended.
    assert_eq!(produce_code(&mut raw, record_batch(1)), (0, 2));
    assert_still_serving(&mut b);
}

#[test]
fn batch_whose_count_does_not_match_last_offset_delta_is_invalid_record() {
    let (mut b, mut raw) = broker_with_topic();
    let mut wrong = record_batch(2);
    wrong[57..61].copy_from_slice(&3i32.to_be_bytes()); // count 3, lastOffsetDelta 1
    fix_crc(&mut wrong);
    assert_eq!(produce_code(&mut raw, wrong).0, 87, "INVALID_RECORD");
    let mut wrong = record_batch(3);
    wrong[23..27].copy_from_slice(&5i32.to_be_bytes()); // lastOffsetDelta 5, count 3
    fix_crc(&mut wrong);
    assert_eq!(produce_code(&mut raw, wrong).0, 87, "INVALID_RECORD");
    let mut control = record_batch(1);
    control[22] |= 0x20; // control flag: only the broker writes control batches
    fix_crc(&mut control);
    assert_eq!(
        produce_code(&mut raw, control).0,
        87,
        "client control batch"
    );
    assert_eq!(
        produce_code(&mut raw, record_batch(1)),
        (0, 0),
        "log untouched"
    );
    assert_still_serving(&mut b);
}

#[test]
fn batch_length_below_the_minimum_is_corrupt_message() {
    let (mut b, mut raw) = broker_with_topic();
    // Kafka's batch stream throws CorruptRecordException for a size below 14 bytes.
    let mut short = record_batch(2);
    short[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert_eq!(produce_code(&mut raw, short).0, 2, "CORRUPT_MESSAGE");
    let mut negative = record_batch(2);
    negative[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert_eq!(produce_code(&mut raw, negative).0, 2, "CORRUPT_MESSAGE");
    assert_eq!(
        produce_code(&mut raw, record_batch(1)),
        (0, 0),
        "log untouched"
    );
    assert_still_serving(&mut b);
}

// Kafka's `ProduceRequest.validateRecords` (produce v3+), run before anything is appended:
// the records of a partition must hold exactly one whole batch, of magic 2, and not zstd below
// produce v7. Refusals are INVALID_RECORD (87) (`InvalidRecordException`), or
// UNSUPPORTED_COMPRESSION_TYPE (76) for zstd.
//
// These five failed before a75db86 (Strom answered CORRUPT_MESSAGE for empty records, an
// overrunning batch and magic != 2, and accepted two batches and zstd over produce v3-v6).

#[test]
fn empty_records_are_invalid_record() {
    let (mut b, mut raw) = broker_with_topic();
    assert_eq!(produce_code(&mut raw, Vec::new()).0, 87, "INVALID_RECORD");
    assert_still_serving(&mut b);
}

#[test]
fn batch_overrunning_the_records_is_invalid_record() {
    let (mut b, mut raw) = broker_with_topic();
    let mut long = record_batch(2);
    let claimed = i32::from_be_bytes([long[8], long[9], long[10], long[11]]) + 100;
    long[8..12].copy_from_slice(&claimed.to_be_bytes());
    assert_eq!(
        produce_code(&mut raw, long).0,
        87,
        "no whole batch: INVALID_RECORD"
    );
    let mut huge = record_batch(2);
    huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    assert_eq!(produce_code(&mut raw, huge).0, 87, "batch length i32::MAX");
    assert_eq!(
        produce_code(&mut raw, record_batch(1)),
        (0, 0),
        "log untouched"
    );
    assert_still_serving(&mut b);
}

#[test]
fn batch_with_magic_1_is_invalid_record() {
    let (mut b, mut raw) = broker_with_topic();
    let mut old = record_batch(1);
    old[16] = 1;
    assert_eq!(produce_code(&mut raw, old).0, 87, "INVALID_RECORD");
    assert_eq!(
        produce_code(&mut raw, record_batch(1)),
        (0, 0),
        "log untouched"
    );
    assert_still_serving(&mut b);
}

#[test]
fn two_batches_in_one_partition_are_invalid_record() {
    let (mut b, mut raw) = broker_with_topic();
    let two = [record_batch(1), record_batch(1)].concat();
    assert_eq!(produce_code(&mut raw, two).0, 87, "INVALID_RECORD");
    assert_eq!(
        produce_code(&mut raw, record_batch(1)),
        (0, 0),
        "log untouched"
    );
    assert_still_serving(&mut b);
}

#[test]
fn zstd_below_produce_v7_is_unsupported_compression_type() {
    let (mut b, mut raw) = broker_with_topic();
    let mut zstd = record_batch(1);
    zstd[21..23].copy_from_slice(&4i16.to_be_bytes()); // attributes: compression 4 (zstd)
    fix_crc(&mut zstd);
    let r: ProduceResponse = raw.call(ApiKey::Produce, 6, &produce_to("bad", zstd));
    let code = r.responses[0].partition_responses[0].error_code;
    assert_eq!(code, 76, "UNSUPPORTED_COMPRESSION_TYPE");
    assert_eq!(
        produce_code(&mut raw, record_batch(1)),
        (0, 0),
        "log untouched"
    );
    assert_still_serving(&mut b);
}

// ---------------------------------------------------------------------------------------------
// Connections

#[test]
fn half_a_frame_then_silence_is_closed_after_the_idle_timeout() {
    let mut b = TestBroker::start(&["connections.max.idle.ms=1000"]);
    let mut s = connect(&b);
    s.write_all(&100i32.to_be_bytes()).expect("write");
    s.write_all(&[0, 18, 0]).expect("write");
    let started = Instant::now();
    assert_closed(s, "stalled half frame");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "closed after {took:?}, expected about 1 s"
    );
    assert_still_serving(&mut b);
}

#[test]
fn idle_connection_is_closed_after_the_idle_timeout() {
    let mut b = TestBroker::start(&["connections.max.idle.ms=1000"]);
    let mut raw = RawClient::connect(b.port);
    let _: ApiVersionsResponse = raw.call(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
    let s = connect(&b);
    let started = Instant::now();
    assert_closed(s, "idle connection");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_still_serving(&mut b);
}

#[test]
fn connections_beyond_max_connections_are_refused() {
    let mut b = TestBroker::start(&["max.connections=5"]);
    // The harness's readiness probe held a slot a moment ago; the broker frees it
    // asynchronously, so each of the five is established with a bounded retry.
    let held: Vec<TcpStream> = (0..5)
        .map(|i| {
            wait_for(Duration::from_secs(10), &format!("connection {i}"), || {
                served(&b)
            })
        })
        .collect();
    let mut sixth = connect(&b);
    // Whether or not the kernel completed the handshake, the broker must not serve it.
    let _ = sixth.write_all(&encoded(
        ApiKey::ApiVersions,
        0,
        1,
        &ApiVersionsRequest::default(),
    ));
    assert_closed(sixth, "sixth connection");
    let mut held = held;
    for (i, c) in held.iter_mut().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        assert!(
            api_versions_on(c, 100 + i as i32),
            "connection {i} keeps working"
        );
    }
    // A freed slot is usable again (the broker notices the close asynchronously).
    drop(held.pop());
    let again = wait_for(Duration::from_secs(10), "a freed connection slot", || {
        served(&b)
    });
    drop(again);
    drop(held);
    assert_still_serving(&mut b);
}

/// One ApiVersions v3 round trip on `s`: false if the connection fails or times out; panics
/// if the answer is wrong (an error, or no Produce in the list).
fn api_versions_on(s: &mut TcpStream, correlation: i32) -> bool {
    let req = encoded(
        ApiKey::ApiVersions,
        3,
        correlation,
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("probe"))
            .with_client_software_version(StrBytes::from_static_str("1")),
    );
    if s.write_all(&req).is_err() {
        return false;
    }
    let mut len = [0u8; 4];
    if s.read_exact(&mut len).is_err() {
        return false;
    }
    let len = usize::try_from(i32::from_be_bytes(len)).expect("non-negative length");
    assert!(len < 64 * 1024, "ApiVersions response of {len} bytes");
    let mut body = vec![0u8; len];
    if s.read_exact(&mut body).is_err() {
        return false;
    }
    let mut body = Bytes::from(body);
    let h = ResponseHeader::decode(&mut body, 0).expect("response header");
    assert_eq!(h.correlation_id, correlation);
    let r = ApiVersionsResponse::decode(&mut body, 3).expect("ApiVersions v3 response");
    assert_eq!(r.error_code, 0, "ApiVersions error");
    assert!(r
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Produce as i16));
    true
}

/// A new connection that has been served one ApiVersions request, or None.
fn served(b: &TestBroker) -> Option<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", b.port)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    api_versions_on(&mut s, 1).then_some(s)
}

/// Bytes `client` wrote that the application at the other end of its loopback connection has
/// not read yet: the client's send queue plus the peer socket's receive queue, from
/// /proc/net/tcp (None if either socket is not listed).
fn unread_bytes(client: &TcpStream) -> Option<u64> {
    let (local, peer) = (client.local_addr().ok()?, client.peer_addr().ok()?);
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next()?, 16).ok();
    let (mut tx, mut rx) = (None, None);
    for line in std::fs::read_to_string("/proc/net/tcp")
        .ok()?
        .lines()
        .skip(1)
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some((t, r)) = f.get(4).and_then(|q| q.split_once(':')) else {
            continue;
        };
        let ends = (
            f.get(1).and_then(|a| port(a)),
            f.get(2).and_then(|a| port(a)),
        );
        if ends == (Some(local.port()), Some(peer.port())) {
            tx = u64::from_str_radix(t, 16).ok();
        } else if ends == (Some(peer.port()), Some(local.port())) {
            rx = u64::from_str_radix(r, 16).ok();
        }
    }
    Some(tx? + rx?)
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// Bytes waiting in the receive queue of our socket bound to `local_port` (/proc/net/tcp).
fn rx_queue(local_port: u16) -> Option<u64> {
    let tcp = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!("0100007F:{local_port:04X}");
    tcp.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() > 4 && f[1] == local {
            let rx = f[4].split(':').nth(1)?;
            u64::from_str_radix(rx, 16).ok()
        } else {
            None
        }
    })
}

#[test]
fn a_client_that_pipelines_without_reading_cannot_grow_the_broker() {
    let mut b = TestBroker::start(&[]);
    let pid = b.pid();
    let rss_before = status_kb(pid, "VmRSS:");
    let mut s = connect(&b);
    s.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut all = Vec::new();
    for i in 0..2_000 {
        all.extend(encoded(
            ApiKey::ApiVersions,
            3,
            i,
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("never-reads"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        ));
    }
    // If the broker stops reading (back-pressure), the write times out: fine either way.
    let _ = s.write_all(&all);
    let peak = peak_rss_once_settled(pid, &s);
    assert!(
        peak < rss_before + 200 * 1024,
        "peak RSS {peak} kB vs {rss_before} kB before 2,000 unread requests"
    );
    // Others are served while the non-reader is still connected.
    assert_still_serving(&mut b);
    drop(s);
    assert_still_serving(&mut b);
}

#[test]
fn a_client_that_pipelines_big_responses_without_reading_holds_at_most_its_budget() {
    // 2,000 unread Metadata responses of ~30 KB each would queue ~60 MB; the connection's
    // budget (1 MiB here) stops the broker reading from it long before.
    let mut b = TestBroker::start(&["strom.connection.max.queued.bytes=1048576"]);
    let mut raw = RawClient::connect(b.port);
    let topics: Vec<CreatableTopic> = (0..100)
        .map(|i| {
            CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(format!(
                    "{i:03}-{}",
                    "t".repeat(240)
                ))))
                .with_num_partitions(1)
                .with_replication_factor(1)
        })
        .collect();
    let ct: CreateTopicsResponse = raw.call(
        ApiKey::CreateTopics,
        5,
        &CreateTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(topics),
    );
    assert!(ct.topics.iter().all(|t| t.error_code == 0));
    let all_topics = MetadataRequest::default().with_topics(None);
    let one: MetadataResponse = raw.call(ApiKey::Metadata, 12, &all_topics);
    let size = encoded(ApiKey::Metadata, 12, 0, &one).len();
    assert!(size > 25_000, "one metadata response is {size} bytes");
    let pid = b.pid();
    let rss_before = status_kb(pid, "VmRSS:");
    let mut s = connect(&b);
    s.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut all = Vec::new();
    for i in 0..2_000 {
        all.extend(encoded(ApiKey::Metadata, 12, i, &all_topics));
    }
    let _ = s.write_all(&all);
    let peak = peak_rss_once_settled(pid, &s);
    assert!(
        peak < rss_before + 16 * 1024,
        "peak RSS {peak} kB vs {rss_before} kB before 2,000 unread {size}-byte responses"
    );
    assert_still_serving(&mut b);
    drop(s);
    assert_still_serving(&mut b);
}

#[test]
fn five_hundred_concurrent_producers_stay_within_queued_max_request_bytes() {
    // 500 connections each send half of a 256 KiB produce request and pause: unbounded, the
    // broker would buffer ~125 MB of partial frames. A frame is charged against
    // queued.max.request.bytes (16 MiB here) as soon as its size is read, so the others wait in
    // their sockets' kernel buffers, not in broker memory. Then all complete and are answered.
    const PRODUCERS: usize = 500;
    let (mut b, _raw) = broker_with_topic_set(&["queued.max.request.bytes=16777216"]);
    let pid = b.pid();
    let rss_before = status_kb(pid, "VmRSS:");
    let value = vec![0x42_u8; 256 * 1024];
    let frame = encoded(
        ApiKey::Produce,
        9,
        1,
        &produce_to("bad", batch_of(&[&value])).with_acks(1),
    );
    let frame = std::sync::Arc::new(frame);
    let half_sent = std::sync::Arc::new(std::sync::Barrier::new(PRODUCERS + 1));
    let release = std::sync::Arc::new(std::sync::Barrier::new(PRODUCERS + 1));
    let port = b.port;
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let (frame, half_sent, release) = (frame.clone(), half_sent.clone(), release.clone());
            std::thread::spawn(move || -> i16 {
                let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(60)))
                    .expect("timeout");
                let mid = frame.len() / 2;
                s.write_all(&frame[..mid]).expect("first half");
                half_sent.wait();
                release.wait();
                s.write_all(&frame[mid..]).expect("second half");
                let mut len = [0u8; 4];
                s.read_exact(&mut len).expect("response size");
                let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
                s.read_exact(&mut body).expect("response");
                let mut body = Bytes::from(body);
                ResponseHeader::decode(&mut body, 1).expect("header");
                let r = ProduceResponse::decode(&mut body, 9).expect("produce response");
                r.responses[0].partition_responses[0].error_code
            })
        })
        .collect();
    half_sent.wait();
    // Let the broker take in what it will.
    let mut peak = 0;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(status_kb(pid, "VmRSS:"));
    }
    eprintln!("{PRODUCERS} half-sent produces: RSS {rss_before} kB before, peak {peak} kB");
    release.wait();
    let codes: Vec<i16> = producers
        .into_iter()
        .map(|t| t.join().expect("producer"))
        .collect();
    assert!(
        codes.iter().all(|&c| c == 0),
        "every produce acknowledged: {codes:?}"
    );
    assert!(
        peak < rss_before + 40 * 1024,
        "peak RSS {peak} kB vs {rss_before} kB before {PRODUCERS} half-sent 256 KiB produces"
    );
    let hwm = status_kb(pid, "VmHWM:");
    assert!(
        hwm < rss_before + 96 * 1024,
        "high-water RSS {hwm} kB vs {rss_before} kB before, with all {PRODUCERS} produces"
    );
    assert_still_serving(&mut b);
}

fn fetch_request(max_wait_ms: i32, min_bytes: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("bad")))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])])
}

/// Waits until the responses queued for our socket stop growing (the broker has done what it
/// will for a client that does not read), then returns the broker's peak RSS in kB.
fn peak_rss_once_settled(pid: u32, s: &TcpStream) -> u64 {
    let local = s.local_addr().expect("addr").port();
    let mut last = None;
    let mut stable_since = Instant::now();
    wait_for(
        Duration::from_secs(20),
        "responses to stop arriving",
        || {
            let now = rx_queue(local);
            if now != last {
                last = now;
                stable_since = Instant::now();
            }
            (stable_since.elapsed() > Duration::from_millis(500)).then_some(())
        },
    );
    status_kb(pid, "VmHWM:")
}

/// Each fetch answers 1 MiB: a broker that queued every unread answer would need 2 GB. (Kafka
/// reads nothing more from a connection until its previous response is sent.)
#[test]
fn a_client_that_pipelines_fetches_without_reading_cannot_grow_the_broker() {
    let (mut b, mut raw) = broker_with_topic();
    let value = vec![0x5a_u8; 250 * 1024]; // four batches fit in one 1 MiB fetch
    for _ in 0..4 {
        assert_eq!(produce_code(&mut raw, batch_of(&[&value])).0, 0);
    }
    let one: FetchResponse = raw.call(ApiKey::Fetch, 12, &fetch_request(0, 1));
    let p = &one.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let size = p.records.as_ref().map_or(0, |r| r.len());
    assert!(size > 1_000_000, "one fetch answers {size} bytes");
    let pid = b.pid();
    let rss_before = status_kb(pid, "VmRSS:");
    let mut s = connect(&b);
    s.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut all = Vec::new();
    for i in 0..2_000 {
        all.extend(encoded(ApiKey::Fetch, 12, i, &fetch_request(0, 1)));
    }
    let _ = s.write_all(&all);
    let peak = peak_rss_once_settled(pid, &s);
    assert!(
        peak < rss_before + 200 * 1024,
        "peak RSS {peak} kB vs {rss_before} kB before 2,000 unread 1 MiB fetches"
    );
    assert_still_serving(&mut b);
    drop(s);
    assert_still_serving(&mut b);
}

#[test]
fn pipelined_requests_are_answered_in_request_order() {
    let (mut b, mut raw) = broker_with_topic();
    let _ = produce_code(&mut raw, record_batch(1));
    // 50 requests in one write: acks=all produces (answered after an fsync), long-polling
    // fetches (answered after max_wait), metadata and ApiVersions in between.
    let mut all = Vec::new();
    let mut expect = Vec::new();
    for i in 0..50i32 {
        let corr = 1000 + i * 7;
        let req = match i % 5 {
            0 => encoded(
                ApiKey::Produce,
                9,
                corr,
                &produce_to("bad", record_batch(3)),
            ),
            // min_bytes never satisfied: waits the full max_wait.
            1 => encoded(ApiKey::Fetch, 12, corr, &fetch_request(200, 1 << 20)),
            2 => encoded(ApiKey::Metadata, 12, corr, &MetadataRequest::default()),
            _ => encoded(ApiKey::ApiVersions, 3, corr, &ApiVersionsRequest::default()),
        };
        all.extend(req);
        expect.push(corr);
    }
    let mut s = connect(&b);
    s.write_all(&all).expect("write");
    for corr in expect {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).expect("length");
        let mut body = vec![0u8; usize::try_from(i32::from_be_bytes(len)).expect("len")];
        s.read_exact(&mut body).expect("body");
        assert_eq!(
            i32::from_be_bytes([body[0], body[1], body[2], body[3]]),
            corr,
            "responses in request order"
        );
    }
    assert_still_serving(&mut b);
}

/// Issue 12 finding 1: the broker-wide pool (1 MiB here) was held until a response was
/// written, so a long-polling Fetch followed by a 1 MiB request on one connection stalled an
/// ApiVersions on every other connection for the whole poll (29 s measured). Request bytes are
/// now released once their handler returns.
#[test]
fn a_long_poll_fetch_does_not_hold_the_shared_request_pool() {
    let (mut b, _raw) = broker_with_topic_set(&["queued.max.request.bytes=1048576"]);
    let mut a = connect(&b);
    // min_bytes never satisfied: the fetch waits its whole max_wait (20 s).
    a.write_all(&encoded(
        ApiKey::Fetch,
        12,
        1,
        &fetch_request(20_000, 1 << 20),
    ))
    .expect("fetch");
    let big = encoded(
        ApiKey::ApiVersions,
        3,
        2,
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_string("a".repeat(1 << 20)))
            .with_client_software_version(StrBytes::from_static_str("1")),
    );
    assert!(big.len() > 1 << 20);
    a.write_all(&big).expect("1 MiB request");
    // The broker has taken both in (read by the application, not just buffered by the
    // kernel) before the other connection asks: otherwise a quick answer proves nothing.
    wait_for(
        Duration::from_secs(10),
        "the broker to read the 1 MiB request",
        || (unread_bytes(&a) == Some(0)).then_some(()),
    );
    let mut other = connect(&b);
    let started = Instant::now();
    assert!(
        api_versions_on(&mut other, 3),
        "ApiVersions on another connection not answered within 10 s"
    );
    let took = started.elapsed();
    eprintln!("ApiVersions on another connection answered in {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "ApiVersions on another connection took {took:?} behind a 20 s long poll"
    );
    drop(a);
    assert_still_serving(&mut b);
}

/// Issue 12 finding 1, many slow readers: eight connections pipeline 2,000 fetches of 1 MiB
/// each and never read. Each may hold its own connection budget, but none keeps a share of the
/// broker-wide pool (4 MiB here) while its responses wait: a new client is served at once.
#[test]
fn clients_that_never_read_cannot_exhaust_the_shared_request_pool() {
    let (mut b, mut raw) = broker_with_topic_set(&[
        "queued.max.request.bytes=4194304",
        "strom.connection.max.queued.bytes=1048576",
    ]);
    let value = vec![0x5a_u8; 250 * 1024];
    for _ in 0..4 {
        assert_eq!(produce_code(&mut raw, batch_of(&[&value])).0, 0);
    }
    let mut all = Vec::new();
    for i in 0..2_000 {
        all.extend(encoded(ApiKey::Fetch, 12, i, &fetch_request(0, 1)));
    }
    let readers: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = connect(&b);
            s.set_write_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            // If the broker stops reading (its own budget), the write times out: fine.
            let _ = s.write_all(&all);
            s
        })
        .collect();
    for s in &readers {
        let _ = peak_rss_once_settled(b.pid(), s);
    }
    let mut other = connect(&b);
    let started = Instant::now();
    assert!(
        api_versions_on(&mut other, 1),
        "ApiVersions on a new connection not answered within 10 s while 8 clients never read"
    );
    eprintln!(
        "ApiVersions beside 8 non-reading clients answered in {:?}",
        started.elapsed()
    );
    drop(readers);
    assert_still_serving(&mut b);
}

/// A frame whose size was read must arrive whole within strom.request.receive.timeout.ms,
/// even when the client keeps trickling bytes (which resets the idle timeout).
#[test]
fn a_frame_trickled_byte_by_byte_is_closed_after_the_receive_timeout() {
    let mut b = TestBroker::start(&["strom.request.receive.timeout.ms=1500"]);
    let mut s = connect(&b);
    s.write_all(&100_000i32.to_be_bytes()).expect("size");
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(10) {
        if s.write_all(&[0]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = started.elapsed();
    assert!(closed, "a trickled frame kept the connection for {took:?}");
    assert!(
        took >= Duration::from_millis(1000),
        "closed after {took:?}, before the 1.5 s receive timeout"
    );
    assert_still_serving(&mut b);
}
