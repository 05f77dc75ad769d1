//! Produce and consume with a real client (librdkafka): every codec, keys/headers/timestamps
//! round-trip, per-partition order, offsets by time, LogAppendTime, size limits, unknown
//! topics, and a restart in the middle with every acknowledged record still there.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, Timestamp, TopicPartitionList};
use common::TestBroker;

async fn create_topic(b: &TestBroker, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = b.client().create().expect("admin");
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let r = admin
        .create_topics(&[t], &AdminOptions::new())
        .await
        .expect("create");
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
}

#[derive(Debug, Clone, PartialEq)]
struct Rec {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    ts: i64,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

async fn produce(
    b: &TestBroker,
    topic: &str,
    codec: &str,
    acks: &str,
    n: usize,
    partitions: i32,
) -> Vec<Rec> {
    let p: FutureProducer = b
        .client()
        .set("compression.type", codec)
        .set("acks", acks)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut futs = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("key-{i}");
        let value = format!("{codec}-value-{i}-{}", "x".repeat(i % 50));
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "h",
                value: Some("1"),
            })
            .insert(Header {
                key: "h",
                value: Some("2"),
            }) // duplicate keys must survive
            .insert(Header::<&str> {
                key: "null",
                value: None,
            });
        let ts = 1_700_000_000_000 + i as i64;
        let partition = (i % partitions as usize) as i32;
        let (p, topic, k, v) = (p.clone(), topic.to_string(), key.clone(), value.clone());
        let f = tokio::spawn(async move {
            let rec = FutureRecord::to(&topic)
                .key(&k)
                .payload(&v)
                .headers(headers)
                .timestamp(ts)
                .partition(partition);
            p.send(rec, Duration::from_secs(30))
                .await
                .map_err(|(e, _)| e)
        });
        futs.push((f, key, value, ts, partition));
    }
    let mut out = Vec::with_capacity(n);
    for (f, key, value, ts, partition) in futs {
        let d = f.await.expect("join").expect("delivered");
        assert_eq!(d.partition, partition);
        out.push(Rec {
            partition,
            offset: if acks == "0" { -1 } else { d.offset },
            key: Some(key.into_bytes()),
            value: Some(value.into_bytes()),
            ts,
            headers: vec![
                ("h".into(), Some(b"1".to_vec())),
                ("h".into(), Some(b"2".to_vec())),
                ("null".into(), None),
            ],
        });
    }
    out
}

fn consume_all(b: &TestBroker, topic: &str, partitions: i32, expected: usize) -> Vec<Rec> {
    let c: BaseConsumer = b
        .client()
        .set("group.id", "pc")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while out.len() < expected {
        assert!(
            std::time::Instant::now() < deadline,
            "read {} of {expected}",
            out.len()
        );
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("message");
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| (x.key.to_string(), x.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Rec {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                ts: m.timestamp().to_millis().unwrap_or(-1),
                headers,
            });
        }
    }
    out
}

fn by_partition(mut v: Vec<Rec>) -> BTreeMap<i32, Vec<Rec>> {
    v.sort_by_key(|r| (r.partition, r.offset));
    let mut m: BTreeMap<i32, Vec<Rec>> = BTreeMap::new();
    for r in v {
        m.entry(r.partition).or_default().push(r);
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_round_trips_keys_headers_timestamps_and_survives_restart() {
    let mut b = TestBroker::start(&[]);
    let mut produced = Vec::new();
    for (i, codec) in ["none", "gzip", "snappy", "lz4", "zstd"].iter().enumerate() {
        let topic = format!("codec-{codec}");
        create_topic(&b, &topic, 3, &[]).await;
        let acks = if i % 2 == 0 { "all" } else { "1" };
        let sent = produce(&b, &topic, codec, acks, 2000, 3).await;
        let got = consume_all(&b, &topic, 3, sent.len());
        assert_eq!(
            by_partition(got),
            by_partition(sent.clone()),
            "{codec}: records differ"
        );
        produced.push((topic, sent));
    }
    b.stop();
    b.restart();
    for (topic, sent) in produced {
        let got = consume_all(&b, &topic, 3, sent.len());
        assert_eq!(
            by_partition(got),
            by_partition(sent),
            "{topic}: after a restart"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_for_times_find_the_first_record_at_or_after() {
    let b = TestBroker::start(&[]);
    create_topic(&b, "times", 1, &[]).await;
    let sent = produce(&b, "times", "lz4", "all", 100, 1).await;
    let c: BaseConsumer = b.client().set("group.id", "t").create().expect("consumer");
    for target in [sent[0].ts - 10, sent[37].ts, sent[99].ts] {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("times", 0, Offset::Offset(target))
            .expect("tpl");
        let r = c
            .offsets_for_times(tpl, Duration::from_secs(10))
            .expect("offsets for times");
        let expected = sent
            .iter()
            .find(|s| s.ts >= target)
            .map(|s| s.offset)
            .expect("some");
        assert_eq!(
            r.elements()[0].offset(),
            Offset::Offset(expected),
            "timestamp {target}"
        );
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("times", 0, Offset::Offset(sent[99].ts + 1000))
        .expect("tpl");
    let r = c
        .offsets_for_times(tpl, Duration::from_secs(10))
        .expect("offsets for times");
    assert_eq!(r.elements()[0].offset(), Offset::End, "no record that new");
    let (low, high) = c
        .fetch_watermarks("times", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!((low, high), (0, 100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_append_time_topics_stamp_broker_time() {
    let b = TestBroker::start(&[]);
    create_topic(&b, "lat", 1, &[("message.timestamp.type", "LogAppendTime")]).await;
    let before = chrono_ms();
    produce(&b, "lat", "none", "all", 5, 1).await;
    let c: BaseConsumer = b.client().set("group.id", "l").create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("lat", 0, Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let m = loop {
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            break m.expect("message").detach();
        }
    };
    match m.timestamp() {
        Timestamp::LogAppendTime(ts) => {
            assert!(ts >= before - 1000, "broker time {ts} vs {before}")
        }
        other => panic!("expected LogAppendTime, got {other:?}"),
    }
}

fn chrono_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_batches_and_unknown_topics_are_refused() {
    let b = TestBroker::start(&["auto.create.topics.enable=false"]);
    create_topic(&b, "small", 1, &[("max.message.bytes", "2048")]).await;
    let p: FutureProducer = b
        .client()
        .set("message.send.max.retries", "0")
        .set("linger.ms", "0")
        .create()
        .expect("producer");
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
    assert!(ok.is_ok(), "a small record still goes through: {ok:?}");
    let p2: FutureProducer = b
        .client()
        .set("message.timeout.ms", "3000")
        .create()
        .expect("producer");
    let r = p2
        .send(
            FutureRecord::<str, str>::to("no-such-topic").payload("x"),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        r.is_err(),
        "produce to a missing topic with auto-creation off must fail: {r:?}"
    );
    let c: BaseConsumer = b.client().create().expect("client");
    let md = c
        .fetch_metadata(Some("no-such-topic"), Duration::from_secs(10))
        .expect("metadata");
    assert_eq!(
        md.topics()[0].error(),
        Some(rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    );
    let md = c
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    assert_eq!(md.brokers().len(), 1);
    assert_eq!(md.brokers()[0].port() as u16, b.port, "advertised port");
}
