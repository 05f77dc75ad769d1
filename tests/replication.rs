//! The replication data path, two brokers in one process: broker 1 leads a partition whose
//! replicas are 1 and 2 (min.insync.replicas 2), broker 2 follows it with a replica fetcher.
//! A real client's acks=all produce is answered only once the follower has the batch (the
//! leader's high watermark moved by the follower's fetches), the follower's log is the
//! leader's, and with the follower stopped acks=all times out while acks=1 still succeeds; an
//! ISR that shrinks below min.insync.replicas while a batch waits answers
//! NOT_ENOUGH_REPLICAS_AFTER_APPEND. The metadata is committed to each broker directly
//! (tests/cluster.rs runs the controller that does it in a real cluster).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use strom::broker::Broker;
use strom::config::BrokerConfig;
use strom::metadata::MetadataRecord;
use strom::replica::fetcher::{self, FetcherConfig};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Node {
    _dir: tempfile::TempDir,
    broker: Arc<Broker>,
    addr: String,
    stop: CancellationToken,
}

async fn node(id: i32) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = BrokerConfig {
        node_id: id,
        log_dir: dir.path().to_path_buf(),
        listen: addr,
        advertised_host: "127.0.0.1".into(),
        advertised_port: addr.port(),
        ..BrokerConfig::default()
    };
    let broker = Broker::open(config).expect("open");
    let stop = CancellationToken::new();
    tokio::spawn(strom::server::serve(broker.clone(), listener, stop.clone()));
    Node {
        _dir: dir,
        broker,
        addr: addr.to_string(),
        stop,
    }
}

fn producer(addr: &str, acks: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("acks", acks)
        .set("enable.idempotence", "false")
        .set("request.timeout.ms", "2000")
        .set("message.timeout.ms", "4000")
        .set("retries", "0")
        .create()
        .expect("producer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acks_all_waits_for_the_follower_and_the_follower_has_the_leaders_log() {
    let leader = node(1).await;
    let follower = node(2).await;
    let id = Uuid::new_v4();
    let mut configs = BTreeMap::new();
    configs.insert("min.insync.replicas".to_string(), "2".to_string());
    let record = MetadataRecord::CreateTopic {
        name: "rep".into(),
        id,
        partitions: 1,
        configs,
        replicas: vec![vec![1, 2]],
    };
    for n in [&leader, &follower] {
        let (b, r) = (n.broker.clone(), record.clone());
        tokio::task::spawn_blocking(move || {
            b.metadata.commit(&[r]).expect("commit");
            b.host_topic("rep").expect("host")
        })
        .await
        .expect("join");
    }
    let lp = leader.broker.partition("rep", 0).expect("leader partition");
    let fp = follower
        .broker
        .partition("rep", 0)
        .expect("follower partition");
    assert!(lp.is_leader() && !fp.is_leader());
    assert_eq!(lp.isr_size(), 2);

    let stop_fetcher = CancellationToken::new();
    let task = fetcher::spawn(
        fp.clone(),
        FetcherConfig::new(2, leader.addr.clone()),
        stop_fetcher.clone(),
    );

    // acks=all: each answer comes after the follower fetched the batch.
    let p = producer(&leader.addr, "all");
    for i in 0..20 {
        let value = format!("v{i}");
        let delivered = p
            .send(
                FutureRecord::<str, str>::to("rep").key("k").payload(&value),
                Duration::from_secs(5),
            )
            .await
            .expect("acks=all delivered");
        assert_eq!(delivered.offset, i64::from(i), "offset");
        assert!(
            fp.log.log_end_offset() > i64::from(i),
            "the follower had offset {i} when the produce was answered"
        );
        assert!(lp.high_watermark() > i64::from(i));
    }
    // The follower's log is the leader's, and it learns the high watermark.
    let end = lp.log.log_end_offset();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while fp.high_watermark() < end {
        assert!(
            tokio::time::Instant::now() < deadline,
            "follower high watermark"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leader_bytes = lp.log.read(0, 1 << 20, end, true).expect("read").data;
    let follower_bytes = fp.log.read(0, 1 << 20, end, true).expect("read").data;
    assert_eq!(follower_bytes, leader_bytes, "byte for byte");

    // The follower stops: acks=all cannot complete (it is still in the ISR), acks=1 can.
    stop_fetcher.cancel();
    task.await.expect("fetcher stopped");
    let r = p
        .send(
            FutureRecord::<str, str>::to("rep").key("k").payload("late"),
            Duration::from_secs(5),
        )
        .await;
    assert!(r.is_err(), "acks=all without the follower: {r:?}");
    let one = producer(&leader.addr, "1");
    one.send(
        FutureRecord::<str, str>::to("rep").key("k").payload("one"),
        Duration::from_secs(5),
    )
    .await
    .expect("acks=1 needs only the leader");

    // The ISR shrinks to the leader alone while an acks=all batch waits: the high watermark
    // covers it at once, but fewer replicas than min.insync.replicas have it.
    let waiting = {
        let p = p.clone();
        tokio::spawn(async move {
            p.send(
                FutureRecord::<str, str>::to("rep")
                    .key("k")
                    .payload("shrunk"),
                Duration::from_secs(5),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    lp.set_isr(vec![1], lp.leader_epoch());
    let r = waiting.await.expect("join");
    let (err, _) = r.expect_err("answered with an error");
    assert_eq!(
        err.rdkafka_error_code(),
        Some(rdkafka::types::RDKafkaErrorCode::NotEnoughReplicasAfterAppend),
        "{err:?}"
    );

    leader.stop.cancel();
    follower.stop.cancel();
}

/// A follower holding records of an old leader epoch that the new leader never had (it was
/// cut off before they were replicated) is told where its log diverged, truncates there and
/// replicates the new leader's records: afterwards both logs are byte for byte the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_diverged_follower_truncates_to_the_leaders_log() {
    use strom::protocol::batch::{patch_base_offset, patch_leader_epoch};
    use strom::protocol::records::build_batch;
    let leader = node(1).await;
    let follower = node(2).await;
    let record = MetadataRecord::CreateTopic {
        name: "div".into(),
        id: Uuid::new_v4(),
        partitions: 1,
        configs: BTreeMap::new(),
        replicas: vec![vec![1, 2]],
    };
    for n in [&leader, &follower] {
        let (b, r) = (n.broker.clone(), record.clone());
        tokio::task::spawn_blocking(move || {
            b.metadata.commit(&[r]).expect("commit");
            b.host_topic("div").expect("host")
        })
        .await
        .expect("join");
    }
    let lp = leader.broker.partition("div", 0).expect("leader partition");
    let fp = follower
        .broker
        .partition("div", 0)
        .expect("follower partition");
    let append = |v: &str| {
        let b = build_batch(&[(Some(b"k".as_slice()), Some(v.as_bytes()))], 1000);
        lp.log.append(&b, lp.leader_epoch(), 1000).expect("append");
        lp.appended();
    };
    let caught_up = |want: i64| {
        let fp = fp.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while fp.log.log_end_offset() != want {
                assert!(tokio::time::Instant::now() < deadline, "follower at {want}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    let stop = CancellationToken::new();
    let task = fetcher::spawn(
        fp.clone(),
        FetcherConfig::new(2, leader.addr.clone()),
        stop.clone(),
    );
    for i in 0..10 {
        append(&format!("a{i}"));
    }
    caught_up(10).await;
    stop.cancel();
    task.await.expect("stopped");

    // Offsets 10..14 of epoch 0 reach only the follower (the old leader died right after).
    let mut stale = build_batch(
        &[
            (Some(b"k".as_slice()), Some(b"x0".as_slice())),
            (Some(b"k".as_slice()), Some(b"x1".as_slice())),
            (Some(b"k".as_slice()), Some(b"x2".as_slice())),
            (Some(b"k".as_slice()), Some(b"x3".as_slice())),
            (Some(b"k".as_slice()), Some(b"x4".as_slice())),
        ],
        1000,
    );
    patch_base_offset(&mut stale, 10);
    patch_leader_epoch(&mut stale, 0);
    fp.append_as_follower(&stale, 1000).expect("stale suffix");
    assert_eq!(fp.log.log_end_offset(), 15);

    // The leader starts epoch 1 at offset 10 and writes other records there.
    lp.become_leader(1, vec![1, 2], vec![1, 2], 1)
        .expect("become leader");
    fp.become_follower(1, 1);
    for i in 0..3 {
        append(&format!("b{i}"));
    }
    let stop = CancellationToken::new();
    let task = fetcher::spawn(
        fp.clone(),
        FetcherConfig::new(2, leader.addr.clone()),
        stop.clone(),
    );
    caught_up(13).await;
    let end = lp.log.log_end_offset();
    assert_eq!(end, 13);
    let leader_bytes = lp.log.read(0, 1 << 20, end, true).expect("read").data;
    let mut follower_bytes = Vec::new();
    let mut at = 0;
    while at < end {
        let r = fp.log.read(at, 1 << 20, end, true).expect("read");
        let mut last = at;
        for v in strom::protocol::batch::BatchIter::new(&r.data, true) {
            last = v.expect("batch").last_offset() + 1;
        }
        follower_bytes.extend_from_slice(&r.data);
        at = last;
    }
    assert_eq!(
        follower_bytes,
        leader_bytes.to_vec(),
        "byte for byte after truncation"
    );
    assert_eq!(fp.latest_log_epoch(), 1);
    stop.cancel();
    task.await.expect("stopped");
    leader.stop.cancel();
    follower.stop.cancel();
}

/// A cluster replica keeps its leader epochs across a restart (the leader-epoch checkpoint).
/// Without it a returning replica would name the wrong last epoch in its fetches, the leader
/// would see no divergence, and a tail of records the new leader never had (a killed leader's
/// unreplicated appends) would stay in its log under offsets the leader fills differently.
#[test]
fn leader_epochs_survive_a_restart() {
    use strom::log::{LogConfig, LogManager};
    use strom::protocol::batch::{patch_base_offset, patch_leader_epoch};
    use strom::protocol::records::build_batch;
    use strom::replica::Partition;
    let dir = tempfile::tempdir().expect("tempdir");
    let id = Uuid::new_v4();
    let open = || {
        let logs = LogManager::new(dir.path()).expect("log manager");
        let log = logs.open("t", 0, LogConfig::default()).expect("open");
        let p = Partition::new(Arc::from("t"), id, 0, log, 0, 2);
        p.load_epoch_checkpoint().expect("checkpoint");
        p.become_follower(-1, -1);
        (logs, p)
    };
    let batch = |offset: i64, epoch: i32| {
        let mut b = build_batch(&[(Some(b"k".as_slice()), Some(b"v".as_slice()))], 1000);
        patch_base_offset(&mut b, offset);
        patch_leader_epoch(&mut b, epoch);
        b
    };

    let (logs, p) = open();
    assert_eq!(p.latest_log_epoch(), -1, "an empty log holds no epoch");
    for o in 0..5 {
        p.append_as_follower(&batch(o, 0), 1000).expect("append");
    }
    for o in 5..8 {
        p.append_as_follower(&batch(o, 2), 1000).expect("append");
    }
    // Leading at epoch 3 from offset 8, then killed before appending anything.
    p.become_leader(2, vec![2, 1], vec![2, 1], 3)
        .expect("become leader");
    assert_eq!(p.latest_log_epoch(), 3);
    drop(p);
    logs.close_all();
    drop(logs);

    let (_logs, p) = open();
    assert_eq!(p.log.log_end_offset(), 8);
    assert_eq!(
        p.latest_log_epoch(),
        2,
        "the epoch of the last record (epoch 3 wrote none)"
    );
    assert_eq!(p.end_offset_for_epoch(0), (0, 5));
    assert_eq!(p.end_offset_for_epoch(1), (0, 5));
    assert_eq!(p.end_offset_for_epoch(2), (2, 8));
    // A new leader whose epoch 2 ended at 6 makes this replica cut its log there.
    assert_eq!(p.truncate_diverged(2, 6).expect("truncate"), 6);
    assert_eq!(p.log.log_end_offset(), 6);
}

/// A replica that stops leading takes no more leader appends, and none lands in between: an
/// append decided while leading is done before the role changes (the produce handler awaits
/// between its leadership check and its append). Before this, a produce in flight across a
/// role change was appended to the follower's log stamped with the *new* leader's epoch —
/// records the new leader never had, under an epoch the replica's epoch cache did not know;
/// elected again, that replica served them and its followers cut them off and fetched them
/// again forever (tests/cluster_faults.rs caught the loop).
#[test]
fn a_replica_that_stopped_leading_takes_no_leader_appends() {
    use strom::log::{LogConfig, LogError, LogManager};
    use strom::protocol::batch::BatchIter;
    use strom::protocol::records::build_batch;
    use strom::replica::Partition;
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = LogManager::new(dir.path()).expect("log manager");
    let log = logs.open("t", 0, LogConfig::default()).expect("open");
    let p = Arc::new(Partition::new(Arc::from("t"), Uuid::new_v4(), 0, log, 0, 1));
    p.load_epoch_checkpoint().expect("checkpoint");
    p.become_leader(1, vec![1, 2], vec![1, 2], 3)
        .expect("become leader");
    let batch = build_batch(&[(Some(b"k".as_slice()), Some(b"v".as_slice()))], 1000);

    // Appends race a role change on another thread.
    let appender = {
        let p = p.clone();
        let batch = batch.clone();
        std::thread::spawn(move || {
            let mut refused = 0;
            for _ in 0..2000 {
                match p.append_as_leader(&batch, 1000, false) {
                    Ok(_) => {}
                    Err(LogError::NotLeader(_)) => refused += 1,
                    Err(e) => panic!("append: {e}"),
                }
            }
            refused
        })
    };
    // Mid-stream: after some appends landed, before all did (or the appender finished).
    while p.log.log_end_offset() < 100 && !appender.is_finished() {
        std::thread::yield_now();
    }
    p.become_follower(2, 4);
    let refused = appender.join().expect("appender");
    assert!(
        matches!(
            p.append_as_leader(&batch, 1000, false),
            Err(LogError::NotLeader(_))
        ),
        "a follower refuses leader appends"
    );
    let end = p.log.log_end_offset();
    assert_eq!(
        end + refused,
        2000,
        "each append either landed or was refused"
    );
    assert!(end >= 100, "the role changed mid-stream ({end} appended)");
    // Every record in the log was written while leading at epoch 3.
    let read = p.log.read_range(0, 64 << 20, end, true).expect("read");
    let bytes = read
        .range
        .map(|r| r.read_to_bytes().expect("bytes"))
        .unwrap_or_default();
    let mut batches = 0;
    for view in BatchIter::new(&bytes, false) {
        let view = view.expect("batch");
        assert_eq!(
            view.partition_leader_epoch(),
            3,
            "batch at {}",
            view.base_offset()
        );
        batches += 1;
    }
    assert_eq!(batches, end);
}

/// The broker's own writes (transaction markers, coordinator records) are acks=-1, as in
/// Kafka: a cluster replica leading with fewer in-sync replicas than `min.insync.replicas`
/// refuses them (NOT_ENOUGH_REPLICAS; the coordinator retries), so a commit marker is never
/// held by one broker alone and lost with it. A client's produce is checked by the produce
/// handler against its acks instead.
#[test]
fn internal_writes_need_min_insync_replicas() {
    use strom::log::{LogConfig, LogError, LogManager};
    use strom::protocol::records::build_batch;
    use strom::replica::Partition;
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = LogManager::new(dir.path()).expect("log manager");
    let config = LogConfig {
        min_insync_replicas: 2,
        ..LogConfig::default()
    };
    let log = logs.open("t", 0, config).expect("open");
    let p = Partition::new(Arc::from("t"), Uuid::new_v4(), 0, log, 0, 1);
    p.load_epoch_checkpoint().expect("checkpoint");
    let batch = build_batch(&[(Some(b"k".as_slice()), Some(b"v".as_slice()))], 1000);

    p.become_leader(1, vec![1, 2], vec![1], 1)
        .expect("become leader");
    assert!(
        matches!(
            p.append_as_leader(&batch, 1000, true),
            Err(LogError::NotEnoughReplicas { isr: 1, min: 2, .. })
        ),
        "an ISR of one refuses an internal write"
    );
    p.append_as_leader(&batch, 1000, false)
        .expect("a client's write is the produce handler's to judge");
    p.set_isr(vec![1, 2], 1);
    p.append_as_leader(&batch, 1000, true)
        .expect("an ISR of two takes it");
    assert_eq!(p.log.log_end_offset(), 2);
    // Kafka's effective minimum ISR is capped at the replica count: a partition with one
    // replica takes internal writes with min.insync.replicas 2.
    p.become_leader(1, vec![1], vec![1], 2)
        .expect("become leader");
    p.append_as_leader(&batch, 1000, true)
        .expect("one replica of one is enough");
    assert_eq!(p.effective_min_isr(2), 1);
}
