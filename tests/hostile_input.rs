//! Hostile input over raw TCP: every case must end in an error response or a closed
//! connection, and the broker must keep serving a normal client afterwards.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use common::{RawClient, TestBroker};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

fn connect(b: &TestBroker) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", b.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// Reads until EOF or an error; true when the broker closed the connection.
fn closed(mut s: TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
    false
}

fn assert_still_serving(b: &TestBroker) {
    let mut raw = RawClient::connect(b.port);
    let r: ApiVersionsResponse = raw.call(
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("probe"))
            .with_client_software_version(StrBytes::from_static_str("1")),
    );
    assert_eq!(r.error_code, 0);
    assert!(r
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Produce as i16));
}

fn header(key: i16, version: i16, flexible: bool) -> Vec<u8> {
    let mut h = Vec::new();
    h.put_i16(key);
    h.put_i16(version);
    h.put_i32(7);
    h.put_i16(1);
    h.push(b'x');
    if flexible {
        h.push(0); // no tagged fields
    }
    h
}

fn send_frame(s: &mut TcpStream, body: &[u8]) {
    let mut f = BytesMut::new();
    f.put_i32(body.len() as i32);
    f.extend_from_slice(body);
    s.write_all(&f).expect("write");
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

#[test]
fn oversized_negative_and_tiny_frames_close_the_connection() {
    let b = TestBroker::start(&["socket.request.max.bytes=1048576"]);
    for len in [10 * 1024 * 1024i32, -1, i32::MIN, 0, 3] {
        let mut s = connect(&b);
        s.write_all(&len.to_be_bytes()).expect("write");
        assert!(closed(s), "frame length {len} must close the connection");
    }
    assert_still_serving(&b);
}

#[test]
fn garbage_and_unknown_api_keys_close_the_connection() {
    let b = TestBroker::start(&[]);
    let mut s = connect(&b);
    let garbage: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    send_frame(&mut s, &garbage);
    assert!(closed(s));
    let mut s = connect(&b);
    send_frame(&mut s, &header(9999, 0, false));
    assert!(closed(s), "unknown API key");
    let mut s = connect(&b);
    send_frame(&mut s, &header(0, 99, false));
    assert!(closed(s), "unsupported Produce version");
    assert_still_serving(&b);
}

#[test]
fn api_versions_above_v4_gets_the_v0_fallback() {
    let b = TestBroker::start(&[]);
    let mut s = connect(&b);
    send_frame(&mut s, &header(18, 99, true));
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("length");
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("body");
    assert_eq!(
        i32::from_be_bytes([body[0], body[1], body[2], body[3]]),
        7,
        "correlation id"
    );
    assert_eq!(
        i16::from_be_bytes([body[4], body[5]]),
        35,
        "UNSUPPORTED_VERSION"
    );
    let n = i32::from_be_bytes([body[6], body[7], body[8], body[9]]) as usize;
    assert!(n > 10, "the supported ranges are listed");
    let keys: Vec<(i16, i16, i16)> = (0..n)
        .map(|i| {
            let at = 10 + i * 6;
            let g = |o: usize| i16::from_be_bytes([body[at + o], body[at + o + 1]]);
            (g(0), g(2), g(4))
        })
        .collect();
    assert!(
        keys.contains(&(18, 0, 4)),
        "ApiVersions 0-4 listed: {keys:?}"
    );
    assert_eq!(
        body.len(),
        10 + n * 6,
        "v0 layout: no throttle time or tagged fields"
    );
}

#[test]
fn array_length_bombs_do_not_abort_the_broker() {
    let b = TestBroker::start(&[]);
    let pid = b.pid();
    let cases: Vec<Vec<u8>> = vec![
        // Metadata v4: topics array claiming 2^31-1 elements.
        [header(3, 4, false), 0x7fff_ffffi32.to_be_bytes().to_vec()].concat(),
        // Metadata v12 (flexible): compact array claiming u32::MAX - 1 elements.
        [header(3, 12, true), uvarint(u64::from(u32::MAX))].concat(),
        // Produce v9: topic_data claiming 2^31 elements.
        [
            header(0, 9, true),
            vec![0],
            1i16.to_be_bytes().to_vec(),
            1000i32.to_be_bytes().to_vec(),
            uvarint(0x8000_0000),
        ]
        .concat(),
        // Produce v8 (non-flexible): one topic whose partition array claims 2^31-1 elements.
        [
            header(0, 8, false),
            (-1i16).to_be_bytes().to_vec(),
            1i16.to_be_bytes().to_vec(),
            1000i32.to_be_bytes().to_vec(),
            1i32.to_be_bytes().to_vec(),
            1i16.to_be_bytes().to_vec(),
            b"t".to_vec(),
            0x7fff_ffffi32.to_be_bytes().to_vec(),
        ]
        .concat(),
        // CreateTopics v4: one topic whose configs array (nested two levels) claims 2^31-1.
        [
            header(19, 4, false),
            1i32.to_be_bytes().to_vec(),
            1i16.to_be_bytes().to_vec(),
            b"t".to_vec(),
            1i32.to_be_bytes().to_vec(),
            1i16.to_be_bytes().to_vec(),
            0i32.to_be_bytes().to_vec(),
            0x7fff_ffffi32.to_be_bytes().to_vec(),
        ]
        .concat(),
        // A string claiming more bytes than the frame holds.
        [
            header(3, 4, false),
            1i32.to_be_bytes().to_vec(),
            30_000i16.to_be_bytes().to_vec(),
            b"abc".to_vec(),
        ]
        .concat(),
    ];
    for (i, c) in cases.iter().enumerate() {
        let mut s = connect(&b);
        send_frame(&mut s, c);
        assert!(
            closed(s),
            "case {i}: malformed request must close the connection"
        );
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "case {i}: broker process died"
        );
    }
    assert_still_serving(&b);
}

fn record_batch(count: i32, corrupt_crc: bool) -> Vec<u8> {
    let mut records = Vec::new();
    for i in 0..count.max(1) {
        let mut r = vec![0u8, 0, (i as u8) << 1, 1, 2, b'v', 0]; // attrs, ts delta 0, offset delta i, key null, value "v", 0 headers
        r[1] = 0;
        let mut rec = vec![(r.len() as u8) << 1];
        rec.append(&mut r);
        records.extend(rec);
    }
    let mut b = Vec::new();
    b.put_i64(0);
    b.put_i32((49 + records.len()) as i32);
    b.put_i32(-1);
    b.push(2);
    b.put_u32(0);
    b.put_i16(0);
    b.put_i32(count - 1);
    b.put_i64(1000);
    b.put_i64(1000);
    b.put_i64(-1);
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(count);
    b.extend_from_slice(&records);
    let mut crc = crc32c::crc32c(&b[21..]);
    if corrupt_crc {
        crc ^= 1;
    }
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn produce_code(raw: &mut RawClient, batch: Vec<u8>) -> i16 {
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("bad")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch.into()))])]);
    let r: ProduceResponse = raw.call(ApiKey::Produce, 9, &req);
    r.responses[0].partition_responses[0].error_code
}

#[test]
fn corrupt_batches_get_error_codes() {
    let b = TestBroker::start(&[]);
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
    assert_eq!(
        produce_code(&mut raw, record_batch(2, false)),
        0,
        "a valid batch is accepted"
    );
    assert_eq!(
        produce_code(&mut raw, record_batch(2, true)),
        2,
        "CRC mismatch: CORRUPT_MESSAGE"
    );
    let mut wrong_count = record_batch(2, false);
    wrong_count[57..61].copy_from_slice(&3i32.to_be_bytes()); // count no longer lastOffsetDelta+1
    let crc = crc32c::crc32c(&wrong_count[21..]);
    wrong_count[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(produce_code(&mut raw, wrong_count), 87, "INVALID_RECORD");
    let mut control = record_batch(1, false);
    control[22] |= 0x20; // control batches are the broker's, not a client's
    let crc = crc32c::crc32c(&control[21..]);
    control[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(
        produce_code(&mut raw, control),
        87,
        "INVALID_RECORD for a client control batch"
    );
    assert_still_serving(&b);
}

#[test]
fn half_a_frame_then_silence_is_closed_after_the_idle_timeout() {
    let b = TestBroker::start(&["connections.max.idle.ms=1000"]);
    let mut s = connect(&b);
    s.write_all(&100i32.to_be_bytes()).expect("write");
    s.write_all(&[0, 18, 0]).expect("write");
    let started = Instant::now();
    assert!(closed(s), "a stalled half frame is closed");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_still_serving(&b);
}

#[test]
fn connections_beyond_max_connections_are_refused() {
    let b = TestBroker::start(&["max.connections=5"]);
    let mut held: Vec<RawClient> = (0..5).map(|_| RawClient::connect(b.port)).collect();
    for c in &mut held {
        let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
        assert_eq!(r.error_code, 0);
    }
    let extra = connect(&b);
    assert!(closed(extra), "the sixth connection is refused");
    for c in &mut held {
        let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
        assert_eq!(r.error_code, 0, "the first five keep working");
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let b = TestBroker::start(&[]);
    let mut s = connect(&b);
    let mut all = Vec::new();
    for corr in 0..50i32 {
        let mut h = Vec::new();
        h.put_i16(18);
        h.put_i16(0);
        h.put_i32(corr * 3);
        h.put_i16(-1);
        all.put_i32(h.len() as i32);
        all.extend_from_slice(&h);
    }
    s.write_all(&all).expect("write");
    for corr in 0..50i32 {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).expect("len");
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).expect("body");
        assert_eq!(
            i32::from_be_bytes([body[0], body[1], body[2], body[3]]),
            corr * 3
        );
    }
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[test]
fn a_client_that_never_reads_cannot_grow_the_broker() {
    let b = TestBroker::start(&[]);
    let before = rss_kb(b.pid());
    let mut s = connect(&b);
    s.set_write_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    // 20,000 pipelined Metadata requests, never reading a response: the broker stops reading
    // when its per-connection queue is full and the socket buffers fill.
    let mut one = Vec::new();
    let h = header(3, 4, false);
    one.put_i32((h.len() + 5) as i32);
    one.extend_from_slice(&h);
    one.put_i32(-1); // all topics
    one.push(0);
    let mut written = 0;
    for _ in 0..20_000 {
        if s.write_all(&one).is_err() {
            break; // the broker stopped reading: back-pressure works
        }
        written += 1;
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_kb(b.pid());
    assert!(
        after < before + 200 * 1024,
        "RSS grew from {before} kB to {after} kB after {written} unread requests"
    );
    assert_still_serving(&b);
    drop(s);
}
