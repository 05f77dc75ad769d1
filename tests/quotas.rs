//! Client quotas end to end: AlterClientQuotas / DescribeClientQuotas store and list them
//! (surviving a restart), Produce over a `producer_byte_rate` answers a throttle time and the
//! connection reads nothing more until it has passed, and a Fetch over a
//! `consumer_byte_rate` is answered without records. Raw requests under client id
//! `raw-test` (the `client-id` entity these quotas name).

mod common;

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes};
use common::{RawClient, TestBroker};
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, ApiKey, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

fn uvarint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// A magic-2 batch of one record with a `size`-byte value, correct CRC32C.
fn batch(size: usize) -> Vec<u8> {
    let value = vec![b'q'; size];
    let body = [
        vec![0u8, 0, 0, 1],
        uvarint((size as u64) << 1),
        value,
        vec![0],
    ]
    .concat();
    let mut records = uvarint((body.len() as u64) << 1);
    records.extend(body);
    let mut b = Vec::new();
    b.put_i64(0);
    b.put_i32((49 + records.len()) as i32);
    b.put_i32(-1);
    b.push(2);
    b.put_u32(0);
    b.put_i16(0);
    b.put_i32(0);
    b.put_i64(1_000);
    b.put_i64(1_000);
    b.put_i64(-1);
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(1);
    b.extend_from_slice(&records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn set_quota(raw: &mut RawClient, key: &str, value: Option<f64>) -> AlterClientQuotasResponse {
    raw.call(
        ApiKey::AlterClientQuotas,
        1,
        &AlterClientQuotasRequest::default().with_entries(vec![EntryData::default()
            .with_entity(vec![EntityData::default()
                .with_entity_type(StrBytes::from_static_str("client-id"))
                .with_entity_name(Some(StrBytes::from_static_str("raw-test")))])
            .with_ops(vec![OpData::default()
                .with_key(StrBytes::from_string(key.to_string()))
                .with_value(value.unwrap_or(0.0))
                .with_remove(value.is_none())])]),
    )
}

fn described(raw: &mut RawClient) -> Vec<(String, f64)> {
    let r: DescribeClientQuotasResponse = raw.call(
        ApiKey::DescribeClientQuotas,
        1,
        &DescribeClientQuotasRequest::default().with_components(vec![ComponentData::default()
            .with_entity_type(StrBytes::from_static_str("client-id"))
            .with_match_type(0)
            .with_match(Some(StrBytes::from_static_str("raw-test")))]),
    );
    assert_eq!(r.error_code, 0);
    r.entries
        .unwrap_or_default()
        .iter()
        .flat_map(|e| e.values.iter().map(|v| (v.key.to_string(), v.value)))
        .collect()
}

fn produce(raw: &mut RawClient, size: usize) -> (i16, i32) {
    let r: ProduceResponse = raw.call(
        ApiKey::Produce,
        9,
        &ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("quota-topic")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(batch(size))))])]),
    );
    (
        r.responses[0].partition_responses[0].error_code,
        r.throttle_time_ms,
    )
}

#[test]
fn byte_rate_quotas_throttle_produce_and_fetch() {
    let admin = common::free_port();
    let mut b = TestBroker::start(&[&format!("strom.admin.listener=127.0.0.1:{admin}")]);
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(b.create_topic("quota-topic", 1, &[]));
    let mut raw = RawClient::connect(b.port);
    assert!(described(&mut raw).is_empty());

    // What Strom does not enforce is refused, not stored.
    let r = set_quota(&mut raw, "request_percentage", Some(50.0));
    assert_eq!(r.entries[0].error_code, 42, "INVALID_REQUEST: {r:?}");
    let r = set_quota(&mut raw, "producer_byte_rate", Some(1.5));
    assert_eq!(r.entries[0].error_code, 42, "not a whole number: {r:?}");
    let r = set_quota(&mut raw, "producer_byte_rate", Some(10_000.0));
    assert_eq!(r.entries[0].error_code, 0, "{r:?}");
    assert_eq!(
        described(&mut raw),
        [("producer_byte_rate".to_string(), 10_000.0)]
    );

    // Stored in the metadata log: still there after a kill -9 and restart.
    b.kill9();
    b.restart();
    let mut raw = RawClient::connect(b.port);
    assert_eq!(
        described(&mut raw),
        [("producer_byte_rate".to_string(), 10_000.0)]
    );

    // 10,000 B/s measured over at least 10 s: 60 kB passes, the next 60 kB is over.
    let (code, first) = produce(&mut raw, 60_000);
    assert_eq!((code, first), (0, 0));
    let (code, throttle) = produce(&mut raw, 60_000);
    assert_eq!(code, 0, "a throttled produce is still appended");
    assert!(throttle > 0, "over the quota: told to back off");
    // The connection reads nothing until the throttle has passed.
    let sent = Instant::now();
    let _: MetadataResponse = raw.call(ApiKey::Metadata, 12, &MetadataRequest::default());
    let waited = sent.elapsed();
    assert!(
        waited + Duration::from_millis(250) >= Duration::from_millis(throttle as u64),
        "answered after {waited:?}, throttle {throttle} ms"
    );

    // consumer_byte_rate 10,000 B/s: one answer carries at most what the 10 s window allows
    // (100 kB: one of the two 60 kB batches), so it is not throttled; the next one is over the
    // rate and answered without records.
    assert_eq!(
        set_quota(&mut raw, "consumer_byte_rate", Some(10_000.0)).entries[0].error_code,
        0
    );
    let mut fetch = |offset: i64| -> FetchResponse {
        raw.call(
            ApiKey::Fetch,
            12,
            &FetchRequest::default()
                .with_max_wait_ms(0)
                .with_max_bytes(1 << 20)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("quota-topic")))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20)])]),
        )
    };
    let r = fetch(0);
    assert_eq!(r.throttle_time_ms, 0);
    let got = r.responses[0].partitions[0]
        .records
        .as_ref()
        .map_or(0, |r| r.len());
    assert!(
        (60_000..100_000).contains(&got),
        "one batch, capped by the quota window: {got}"
    );
    let r = fetch(1);
    assert!(r.throttle_time_ms > 0);
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert!(
        p.records.as_ref().is_none_or(|r| r.is_empty()),
        "no records while throttled"
    );

    // Removed: produce is no longer throttled (after the mute of the fetch).
    std::thread::sleep(Duration::from_millis(r.throttle_time_ms as u64));
    assert_eq!(
        set_quota(&mut raw, "producer_byte_rate", None).entries[0].error_code,
        0
    );
    assert_eq!(
        set_quota(&mut raw, "consumer_byte_rate", None).entries[0].error_code,
        0
    );
    assert!(described(&mut raw).is_empty());
    assert_eq!(produce(&mut raw, 60_000), (0, 0));

    // Each throttled response is counted on /metrics.
    let metrics = scrape(admin);
    for kind in ["produce", "fetch"] {
        let line = format!("strom_quota_throttles_total{{kind=\"{kind}\"}} 1");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
}

fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect admin");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}
