//! Each supervised task gets a panic injected; afterwards its work still happens, or the broker
//! shuts down with the task's error when it keeps failing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::*;
use crate::config::BrokerConfig;
use crate::coordinator::consumer_group::tests_support::hb;
use crate::coordinator::consumer_group::TopicsView;
use crate::protocol::batch::tests::build_batch;

/// Restarts at once, so the tests wait on work, not on backoff.
const FAST: Supervision = Supervision {
    max_restarts: 3,
    window: Duration::from_secs(600),
    backoff_initial: Duration::from_millis(1),
    backoff_max: Duration::from_millis(5),
};

fn broker(dir: &std::path::Path, sets: &[(&str, &str)]) -> Arc<Broker> {
    let mut config = BrokerConfig {
        log_dir: dir.to_path_buf(),
        ..BrokerConfig::default()
    };
    for (k, v) in sets {
        config.set(k, v).expect("config");
    }
    Broker::open(config).expect("open")
}

/// Waits for `cond` with a deadline far above the time the work needs.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_still_runs_after_the_maintenance_task_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), &[("log.retention.check.interval.ms", "10")]);
    let configs: BTreeMap<String, String> = [("segment.bytes", "200"), ("retention.bytes", "1")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    b.create_topic("r", Some(1), None, configs, false).unwrap();
    let shutdown = CancellationToken::new();
    let tasks = spawn_background(b.clone(), shutdown.clone(), FAST);
    tasks.inject_panics("maintenance", 1);
    let log = b.partition("r", 0).unwrap().log.clone();
    for _ in 0..4 {
        log.append(
            &build_batch(crate::log::now_ms(), 3, b"value"),
            0,
            crate::log::now_ms(),
        )
        .unwrap();
    }
    wait_for("retention to delete old segments", || {
        log.log_start_offset() > 0
    })
    .await;
    shutdown.cancel();
    assert!(tasks.join().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_still_expire_after_the_group_timers_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), &[("group.consumer.session.timeout.ms", "200")]);
    b.create_topic("t", Some(4), None, BTreeMap::new(), false)
        .unwrap();
    let groups = b.group_coordinator().await.unwrap();
    let topics = TopicsView {
        by_name: [("t".to_string(), (b.metadata.topic("t").unwrap().id, 4))]
            .into_iter()
            .collect(),
    };
    let shutdown = CancellationToken::new();
    let tasks = spawn_background(b.clone(), shutdown.clone(), FAST);
    tasks.inject_panics("group-timers", 1);
    let joined = groups.consumer_heartbeat("g", hb("m1", 0), &topics, 200);
    assert!(joined.is_ok());
    let members = || b.groups.with_consumer_group("g", |c| c.members.len());
    assert_eq!(members(), Some(1));
    // Nobody heartbeats again: only the timer task can expire the member.
    wait_for("the member's session to expire", || members() == Some(0)).await;
    shutdown.cancel();
    assert!(tasks.join().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_keeps_panicking_shuts_the_broker_down_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), &[]);
    let shutdown = CancellationToken::new();
    let tasks = spawn_background(b.clone(), shutdown.clone(), FAST);
    // One more than the restarts allowed.
    tasks.inject_panics("txn-timers", FAST.max_restarts + 1);
    tokio::time::timeout(Duration::from_secs(20), shutdown.cancelled())
        .await
        .expect("the supervisor cancels the shutdown token");
    let failed = tasks.join().await.expect_err("the failure is reported");
    assert_eq!(failed.task, "txn-timers");
    assert!(
        failed.reason.contains("injected fault in txn-timers"),
        "{failed}"
    );
}

/// An acks=all Produce through the handler, as a client sees it: the partition's error code.
async fn produce_acks_all(b: &Arc<Broker>, topic: &str) -> i16 {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{
        ApiKey, ProduceRequest, ProduceResponse, RequestHeader, TopicName,
    };
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let version = 9;
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(bytes::Bytes::from(build_batch(
                    crate::log::now_ms(),
                    3,
                    b"value",
                ))))])]);
    let mut body = bytes::BytesMut::new();
    req.encode(&mut body, version).unwrap();
    let ctx = crate::handlers::RequestContext {
        broker: b.clone(),
        api_key: ApiKey::Produce.into(),
        version,
        header: RequestHeader::default(),
        mute: Default::default(),
        peer: "127.0.0.1:1".parse().unwrap(),
        session: crate::security::Session::anonymous(crate::security::Endpoint::plaintext(
            "PLAINTEXT",
        )),
    };
    let reply = crate::handlers::dispatch(ctx, body.freeze()).await.unwrap();
    let crate::handlers::Reply::Later(pending) = reply else {
        panic!("an acks=all produce waits for its fsync");
    };
    let mut encoded = pending.await.unwrap().freeze();
    let mut encoded = encoded.split_off(crate::protocol::HEADER_ROOM);
    let resp: ProduceResponse =
        crate::protocol::decode_body(&mut encoded, version, "response").unwrap();
    resp.responses[0].partition_responses[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_produce_completes_after_a_flusher_panic() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), &[]);
    b.create_topic("p", Some(1), None, BTreeMap::new(), false)
        .unwrap();
    assert_eq!(produce_acks_all(&b, "p").await, 0);
    b.logs
        .flusher()
        .panic_next_pass
        .store(true, std::sync::atomic::Ordering::Release);
    let storage_error = crate::protocol::WireError::KafkaStorageError.code();
    assert_eq!(produce_acks_all(&b, "p").await, storage_error);
    assert_eq!(produce_acks_all(&b, "p").await, 0);
    let log = &b.partition("p", 0).unwrap().log;
    assert_eq!(log.flushed_offset(), log.log_end_offset());
}
