//! Produce and consume with a real client (librdkafka through `rdkafka`): every codec with
//! acks=all and acks=1, acks=0, keys/values/headers/timestamps round-tripping exactly (null
//! keys and values, duplicate header keys, null header values), per-partition order,
//! consuming from earliest/latest/an offset/the tail, offsets by timestamp, watermarks,
//! LogAppendTime topics, RECORD_TOO_LARGE, unknown topics with auto-creation off, and what
//! Metadata says about the broker and the cluster.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{
    assert_same, consume_recs, gen_records, produce_recs, rec_of, sorted, RawClient, Rec,
    TestBroker,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset, Timestamp, TopicPartitionList};

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// Within each partition, acknowledged offsets increase in send order.
fn assert_send_order(acked: &[Rec]) {
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for r in acked {
        if let Some(prev) = last.insert(r.partition, r.offset) {
            assert!(
                r.offset > prev,
                "partition {}: offset {} acknowledged after {prev}",
                r.partition,
                r.offset
            );
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .expect("clock after 1970")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_round_trips_with_acks_all_and_acks_1() {
    let mut b = TestBroker::start(&[]);
    let mut topics = Vec::new();
    for codec in CODECS {
        for acks in ["all", "1"] {
            let topic = format!("codec-{codec}-acks-{acks}");
            b.create_topic(&topic, 3, &[]).await;
            let p = b.producer(&[
                ("compression.type", codec),
                ("acks", acks),
                ("linger.ms", "5"),
            ]);
            let acked = produce_recs(&p, &topic, &gen_records(600, 3, &topic)).await;
            assert_send_order(&acked);
            let want = sorted(acked);
            let got = consume_recs(&b, &topic, 3, Offset::Beginning, want.len());
            assert_same(&got, &want, &topic);
            topics.push((topic, want));
        }
    }
    // Compressed batches are served as stored, also after a restart.
    b.stop();
    b.restart();
    let wanted: Vec<(&str, i32, usize)> = topics
        .iter()
        .map(|(t, w)| (t.as_str(), 3, w.len()))
        .collect();
    let mut got = common::consume_topics(&b, &wanted, Offset::Beginning);
    for (topic, want) in &topics {
        let got = got.remove(topic).expect("topic read");
        assert_same(&got, want, &format!("{topic} after restart"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_0_records_are_delivered() {
    let b = TestBroker::start(&[]);
    b.create_topic("fire-and-forget", 2, &[]).await;
    let p = b.producer(&[("acks", "0"), ("linger.ms", "5")]);
    let sent = produce_recs(&p, "fire-and-forget", &gen_records(500, 2, "a0")).await;
    assert!(
        sent.iter().all(|r| r.offset < 0),
        "acks=0 has no offsets to report"
    );
    // librdkafka reports acks=0 deliveries when sent, not when stored: wait for them to land.
    common::wait_for(Duration::from_secs(20), "500 records stored", || {
        let c = b.consumer(&[]);
        let n: i64 = (0..2)
            .map(|p| {
                c.fetch_watermarks("fire-and-forget", p, Duration::from_secs(5))
                    .expect("watermarks")
                    .1
            })
            .sum();
        (n >= 500).then_some(())
    });
    let got = consume_recs(&b, "fire-and-forget", 2, Offset::Beginning, sent.len());
    // Offsets are 0..n per partition, in send order.
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let want: Vec<Rec> = sent
        .into_iter()
        .map(|mut r| {
            let n = next.entry(r.partition).or_insert(0);
            r.offset = *n;
            *n += 1;
            r
        })
        .collect();
    assert_same(&got, &sorted(want), "acks=0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_values_round_trip() {
    let b = TestBroker::start(&[]);
    b.create_topic("large", 1, &[]).await;
    for codec in ["none", "gzip"] {
        let p = b.producer(&[("compression.type", codec), ("acks", "all")]);
        let recs: Vec<Rec> = (0..4)
            .map(|i| Rec {
                partition: 0,
                offset: -1,
                key: Some(vec![i as u8; 100]),
                // Not compressible to nothing: a simple generator, 400 KB.
                value: Some(
                    (0..400_000u32)
                        .map(|j| (j.wrapping_mul(2_654_435_761).wrapping_add(i) >> 13) as u8)
                        .collect(),
                ),
                timestamp_ms: 1_600_000_000_000 + i64::from(i),
                headers: vec![("codec".into(), Some(codec.as_bytes().to_vec()))],
            })
            .collect();
        produce_recs(&p, "large", &recs).await;
    }
    let got = consume_recs(&b, "large", 1, Offset::Beginning, 8);
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );
    assert!(got
        .iter()
        .all(|r| r.value.as_ref().map(Vec::len) == Some(400_000)));
}

/// Assigns `start` on partition 0 of `topic` and reads until `n` records arrived.
fn read_from(b: &TestBroker, topic: &str, start: Offset, n: usize) -> Vec<Rec> {
    let c = b.consumer(&[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, start).expect("tpl");
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < n {
        assert!(Instant::now() < deadline, "read {} of {n}", out.len());
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            out.push(rec_of(&m.expect("consume")));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_from_earliest_an_offset_the_tail_and_latest() {
    let b = TestBroker::start(&[]);
    b.create_topic("positions", 1, &[]).await;
    let p = b.producer(&[("acks", "all")]);
    let acked = produce_recs(&p, "positions", &gen_records(50, 1, "pos")).await;

    let all = read_from(&b, "positions", Offset::Beginning, 50);
    assert_same(&all, &acked, "from earliest");
    let mid = read_from(&b, "positions", Offset::Offset(37), 13);
    assert_same(&mid, &acked[37..], "from offset 37");
    let tail = read_from(&b, "positions", Offset::OffsetTail(5), 5);
    assert_same(&tail, &acked[45..], "the last 5");

    // From latest: whatever the consumer reads first was produced after it was assigned, and
    // from there on nothing is skipped. Produce one record per round until it sees one.
    let c = b.consumer(&[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("positions", 0, Offset::End)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let mut later = Vec::new();
    let mut seen = Vec::new();
    for round in 0..100 {
        let rec = gen_records(1, 1, &format!("late{round}")).remove(0);
        later.extend(produce_recs(&p, "positions", &[rec]).await);
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            seen.push(rec_of(&m.expect("consume")));
            break;
        }
    }
    assert!(!seen.is_empty(), "nothing consumed from latest");
    let first = seen[0].offset;
    assert!(first >= 50, "from latest returned old record at {first}");
    let expect_n = later.iter().filter(|r| r.offset >= first).count();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < expect_n {
        assert!(
            Instant::now() < deadline,
            "read {} of {expect_n}",
            seen.len()
        );
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            seen.push(rec_of(&m.expect("consume")));
        }
    }
    let want: Vec<Rec> = later.into_iter().filter(|r| r.offset >= first).collect();
    assert_same(&seen, &want, "from latest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_for_times_find_the_first_offset_at_or_after_the_timestamp() {
    let b = TestBroker::start(&[]);
    b.create_topic("times", 1, &[]).await;
    // Timestamps out of order (a permutation of base + 10*k), in four batches.
    let base = 1_650_000_000_000i64;
    let mut recs = gen_records(200, 1, "ts");
    for (i, r) in recs.iter_mut().enumerate() {
        r.timestamp_ms = base + ((i as i64 * 37) % 200) * 10;
    }
    let p = b.producer(&[("acks", "all"), ("linger.ms", "20")]);
    let mut acked = Vec::new();
    for chunk in recs.chunks(50) {
        acked.extend(produce_recs(&p, "times", chunk).await);
    }
    let c = b.consumer(&[]);
    let lookup = |target: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("times", 0, Offset::Offset(target))
            .expect("tpl");
        let r = c
            .offsets_for_times(tpl, Duration::from_secs(10))
            .expect("offsets_for_times");
        let e = &r.elements()[0];
        assert!(e.error().is_ok(), "{target}: {:?}", e.error());
        e.offset()
    };
    for target in [
        0,
        base - 1,
        base,
        base + 1,
        base + 555,
        base + 1000,
        base + 1234,
        base + 1990,
    ] {
        let expected = acked
            .iter()
            .find(|r| r.timestamp_ms >= target)
            .map(|r| r.offset)
            .expect("a record at or after");
        assert_eq!(
            lookup(target),
            Offset::Offset(expected),
            "first offset with timestamp >= {target}"
        );
    }
    assert_eq!(lookup(base + 1991), Offset::End, "no record that new");
    let (low, high) = c
        .fetch_watermarks("times", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!((low, high), (0, 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_append_time_topics_stamp_broker_time() {
    let b = TestBroker::start(&[]);
    b.create_topic("lat", 1, &[("message.timestamp.type", "LogAppendTime")])
        .await;
    let before = now_ms();
    let p = b.producer(&[("acks", "all"), ("linger.ms", "20")]);
    let mut deliveries = Vec::new();
    for i in 0..5 {
        // A client timestamp far in the past: the broker must replace it.
        let value = format!("v{i}");
        let d = p
            .send(
                FutureRecord::<str, str>::to("lat")
                    .payload(&value)
                    .partition(0)
                    .timestamp(1_000_000 + i),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("delivered");
        deliveries.push(d);
    }
    let after = now_ms();
    let c = b.consumer(&[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("lat", 0, Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while got.len() < 5 {
        assert!(Instant::now() < deadline, "read {} of 5", got.len());
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            got.push(m.expect("consume").detach());
        }
    }
    for (m, d) in got.iter().zip(&deliveries) {
        let Timestamp::LogAppendTime(ts) = m.timestamp() else {
            panic!("expected LogAppendTime, got {:?}", m.timestamp());
        };
        assert!(
            (before..=after).contains(&ts),
            "broker time {ts} outside [{before}, {after}]"
        );
        assert_eq!(
            d.timestamp,
            Timestamp::LogAppendTime(ts),
            "the produce response carries the log append time"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_max_message_bytes_is_record_too_large() {
    let b = TestBroker::start(&[]);
    b.create_topic("small", 1, &[("max.message.bytes", "2048")])
        .await;
    let p = b.producer(&[("message.send.max.retries", "0"), ("linger.ms", "0")]);
    let big = "x".repeat(10_000);
    let r = p
        .send(
            FutureRecord::<str, str>::to("small")
                .payload(&big)
                .partition(0),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        matches!(
            r,
            Err((
                KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                _
            ))
        ),
        "{r:?}"
    );
    let ok = p
        .send(
            FutureRecord::<str, str>::to("small")
                .payload("fits")
                .partition(0),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        matches!(ok, Ok(ref d) if d.offset == 0),
        "a small record still goes through, at offset 0: {ok:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topic_with_auto_create_off_is_unknown_topic_or_partition() {
    let b = TestBroker::start(&["auto.create.topics.enable=false"]);
    let p = b.producer(&[
        ("message.timeout.ms", "5000"),
        ("topic.metadata.propagation.max.ms", "1000"),
    ]);
    let r = p
        .send(
            FutureRecord::<str, str>::to("no-such-topic").payload("x"),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        matches!(
            r,
            Err((
                KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition),
                _
            ))
        ),
        "produce to a missing topic: {r:?}"
    );
    let c: BaseConsumer = b.client().create().expect("client");
    let md = c
        .fetch_metadata(Some("no-such-topic"), Duration::from_secs(10))
        .expect("metadata");
    assert_eq!(
        md.topics()[0].error(),
        Some(rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    );
    // The exact wire answer, and proof nothing was created on the way.
    let mut raw = RawClient::connect(b.port);
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("no-such-topic")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(bytes::Bytes::new()))])]);
    let r: ProduceResponse = raw.call(ApiKey::Produce, 9, &req);
    assert_eq!(
        r.responses[0].partition_responses[0].error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    let md: MetadataResponse = raw.call(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert!(
        md.topics.is_empty(),
        "no topic was created: {:?}",
        md.topics
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lists_the_broker_at_its_port_and_a_stable_cluster_id() {
    let mut b = TestBroker::start(&[]);
    b.create_topic("m", 2, &[]).await;
    let c: BaseConsumer = b.client().create().expect("client");
    let md = c
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    assert_eq!(md.brokers().len(), 1);
    assert_eq!(md.brokers()[0].host(), "127.0.0.1");
    assert_eq!(md.brokers()[0].port(), i32::from(b.port), "advertised port");
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == "m")
        .expect("topic m");
    assert_eq!(t.partitions().len(), 2);
    for p in t.partitions() {
        assert_eq!(p.leader(), md.brokers()[0].id(), "the broker leads");
        assert_eq!(p.replicas(), &[md.brokers()[0].id()]);
        assert_eq!(p.isr(), &[md.brokers()[0].id()]);
    }
    let cluster = c
        .client()
        .fetch_cluster_id(Duration::from_secs(10))
        .expect("cluster id");
    assert!(!cluster.is_empty());
    let mut raw = RawClient::connect(b.port);
    let dc: DescribeClusterResponse = raw.call(
        ApiKey::DescribeCluster,
        0,
        &DescribeClusterRequest::default(),
    );
    assert_eq!(dc.cluster_id.as_str(), cluster, "DescribeCluster agrees");
    drop((c, raw));
    b.stop();
    b.restart();
    let c: BaseConsumer = b.client().create().expect("client");
    let again = c
        .client()
        .fetch_cluster_id(Duration::from_secs(10))
        .expect("cluster id");
    assert_eq!(again, cluster, "the cluster id survives a restart");
}

/// Kafka's LogValidator: a compacted topic refuses records without a key, with one error per
/// record and nothing appended; the same records go to a delete-policy topic.
#[tokio::test]
async fn a_compacted_topic_refuses_records_without_a_key() {
    let b = TestBroker::start(&[]);
    b.create_topic("compacted", 1, &[("cleanup.policy", "compact")])
        .await;
    b.create_topic("kept", 1, &[]).await;
    let batch = |records: &[strom::protocol::records::KeyValue<'_>]| {
        bytes::Bytes::from(strom::protocol::records::build_batch(
            records,
            strom::log::now_ms(),
        ))
    };
    let produce = |raw: &mut RawClient, topic: &'static str, records: bytes::Bytes| {
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str(topic)))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records))])]);
        let r: ProduceResponse = raw.call(ApiKey::Produce, 9, &req);
        r.responses[0].partition_responses[0].clone()
    };
    let mut raw = RawClient::connect(b.port);
    let mixed = batch(&[
        (Some(b"k1"), Some(b"v1")),
        (None, Some(b"v2")),
        (Some(b"k3"), Some(b"v3")),
        (None, None),
    ]);
    let r = produce(&mut raw, "compacted", mixed.clone());
    assert_eq!(r.error_code, 87, "INVALID_RECORD");
    let errors: Vec<(i32, String)> = r
        .record_errors
        .iter()
        .map(|e| {
            (
                e.batch_index,
                e.batch_index_error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let why = "Compacted topic cannot accept message without key in topic partition compacted-0";
    assert_eq!(errors, vec![(1, why.to_string()), (3, why.to_string())]);
    let message = r.error_message.map(|m| m.to_string()).unwrap_or_default();
    assert!(
        message.starts_with("One or more records have been rejected due to 2 record errors"),
        "{message}"
    );
    // Nothing of the refused batch was appended; keyed records are.
    let ok = produce(&mut raw, "compacted", batch(&[(Some(b"k"), Some(b"v"))]));
    assert_eq!((ok.error_code, ok.base_offset), (0, 0));
    // A delete-policy topic takes keyless records.
    let kept = produce(&mut raw, "kept", mixed);
    assert_eq!((kept.error_code, kept.base_offset), (0, 0));
    // A real client sees the error.
    let p = b.producer(&[("acks", "all"), ("compression.type", "lz4")]);
    let r = p
        .send(
            FutureRecord::<str, str>::to("compacted").payload("no key"),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        matches!(
            r,
            Err((
                KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord),
                _
            ))
        ),
        "keyless record to a compacted topic: {r:?}"
    );
}
