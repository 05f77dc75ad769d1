//! The replication data path, two brokers in one process: broker 1 leads a partition whose
//! replicas are 1 and 2 (min.insync.replicas 2), broker 2 follows it with a replica fetcher.
//! A real client's acks=all produce is answered only once the follower has the batch (the
//! leader's high watermark moved by the follower's fetches), the follower's log is the
//! leader's, and with the follower stopped acks=all times out while acks=1 still succeeds.
//! The metadata is committed to each broker directly (the controller that would do it is the
//! cluster work still to come).

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

    leader.stop.cancel();
    follower.stop.cancel();
}
