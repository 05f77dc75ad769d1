//! Transactions with a real client (librdkafka): commit/abort visibility for read_committed
//! and read_uncommitted consumers, a transaction abandoned past its timeout is aborted by the
//! broker, and a consume-transform-produce loop that dies mid-transaction and restarts produces
//! every input exactly once. `transactional.id.expiration.ms`: an idle id disappears (durably,
//! across a restart), its old producer gets INVALID_PRODUCER_ID_MAPPING and InitProducerId
//! starts it afresh; an id with an open transaction stays.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{wait_for, RawClient, TestBroker};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, DescribeTransactionsRequest,
    DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId,
    TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

fn create_topic(b: &TestBroker, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = b.client().create().expect("admin");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let r = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        ))
        .expect("create");
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
}

fn txn_producer(b: &TestBroker, id: &str, timeout_ms: &str) -> BaseProducer {
    let p: BaseProducer = b
        .client()
        .set("transactional.id", id)
        .set("transaction.timeout.ms", timeout_ms)
        .create()
        .expect("producer");
    p.init_transactions(Duration::from_secs(30))
        .expect("init transactions");
    p
}

fn send(p: &BaseProducer, topic: &str, partition: i32, value: &str) {
    let mut rec = BaseRecord::<str, str>::to(topic)
        .payload(value)
        .partition(partition);
    loop {
        match p.send(rec) {
            Ok(()) => return,
            Err((_, r)) => {
                rec = r;
                p.poll(Duration::from_millis(10));
            }
        }
    }
}

/// Every value in the topic from the beginning, per partition, read with `isolation`, up to
/// the (stable) end.
fn read(b: &TestBroker, topic: &str, partitions: i32, isolation: &str) -> Vec<String> {
    let c: BaseConsumer = b
        .client()
        .set("group.id", "reader")
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut out = Vec::new();
    for p in 0..partitions {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
        c.assign(&tpl).expect("assign");
        let mut idle = 0;
        while idle < 8 {
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
                    idle = 0;
                }
                _ => idle += 1,
            }
        }
    }
    out.sort();
    out
}

#[test]
fn commit_and_abort_are_visible_per_isolation_level() {
    let b = TestBroker::start(&[]);
    create_topic(&b, "tx", 2);
    let p = txn_producer(&b, "t-vis", "60000");
    p.begin_transaction().expect("begin");
    for i in 0..10 {
        send(&p, "tx", i % 2, &format!("committed-{i}"));
    }
    p.commit_transaction(Duration::from_secs(30))
        .expect("commit");
    p.begin_transaction().expect("begin");
    for i in 0..10 {
        send(&p, "tx", i % 2, &format!("aborted-{i}"));
    }
    p.flush(Duration::from_secs(30))
        .expect("flush: the aborted records reach the log");
    p.abort_transaction(Duration::from_secs(30)).expect("abort");
    let committed = read(&b, "tx", 2, "read_committed");
    assert_eq!(committed.len(), 10, "{committed:?}");
    assert!(committed.iter().all(|v| v.starts_with("committed-")));
    let all = read(&b, "tx", 2, "read_uncommitted");
    assert_eq!(all.len(), 20, "read_uncommitted sees aborted records too");
}

#[test]
fn open_transaction_past_its_timeout_is_aborted() {
    let b = TestBroker::start(&[]);
    create_topic(&b, "abandoned", 1);
    let p = txn_producer(&b, "t-abandon", "2000");
    p.begin_transaction().expect("begin");
    send(&p, "abandoned", 0, "never-visible");
    p.flush(Duration::from_secs(30)).expect("flush");
    // The producer goes silent with its transaction open.
    std::mem::forget(p);
    let c: BaseConsumer = b
        .client()
        .set("group.id", "x")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    // Until the broker aborts it, the last stable offset holds read_committed readers back.
    wait_for(
        Duration::from_secs(20),
        "the abort marker (high watermark 2)",
        || {
            let (_, high) = c
                .fetch_watermarks("abandoned", 0, Duration::from_secs(5))
                .ok()?;
            (high == 2).then_some(())
        },
    );
    // A new producer can write and commit past it.
    let p2 = txn_producer(&b, "t-after", "60000");
    p2.begin_transaction().expect("begin");
    send(&p2, "abandoned", 0, "visible");
    p2.commit_transaction(Duration::from_secs(30))
        .expect("commit");
    assert_eq!(
        read(&b, "abandoned", 1, "read_committed"),
        vec!["visible".to_string()]
    );
}

#[test]
fn consume_transform_produce_is_exactly_once_across_a_crash() {
    let b = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    create_topic(&b, "input", 1);
    create_topic(&b, "output", 1);
    let input: BaseProducer = b.client().set("acks", "all").create().expect("producer");
    for i in 0..30 {
        send(&input, "input", 0, &format!("{i}"));
    }
    input.flush(Duration::from_secs(30)).expect("flush");

    // One pass: consume up to `batch` inputs from the committed offset, produce them
    // transformed and commit offsets in the same transaction (or abandon it: a crash).
    let pass = |batch: usize, crash: bool| {
        let consumer: BaseConsumer = b
            .client()
            .set("group.id", "ctp")
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        consumer.subscribe(&["input"]).expect("subscribe");
        let producer = txn_producer(&b, "ctp-app", "60000");
        producer.begin_transaction().expect("begin");
        let mut next = None;
        let mut n = 0;
        wait_for(Duration::from_secs(30), "input records", || {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                send(&producer, "output", 0, &format!("out-{v}"));
                next = Some(m.offset() + 1);
                n += 1;
            }
            (n == batch).then_some(())
        });
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset("input", 0, Offset::Offset(next.expect("consumed")))
            .expect("tpl");
        let meta = consumer.group_metadata().expect("group metadata");
        producer
            .send_offsets_to_transaction(&offsets, &meta, Duration::from_secs(30))
            .expect("send offsets");
        if crash {
            producer.flush(Duration::from_secs(30)).expect("flush");
            std::mem::forget(producer); // dies with the transaction open
        } else {
            producer
                .commit_transaction(Duration::from_secs(30))
                .expect("commit");
        }
    };
    pass(10, false);
    pass(10, true); // outputs 10..19 written, never committed
    pass(20, false); // the restarted app fences the zombie, resumes at 10
    let out = read(&b, "output", 1, "read_committed");
    let mut expected: Vec<String> = (0..30).map(|i| format!("out-{i}")).collect();
    expected.sort();
    assert_eq!(
        out, expected,
        "every input exactly once in the committed output"
    );
    let counts: BTreeMap<&String, usize> = out.iter().fold(BTreeMap::new(), |mut m, v| {
        *m.entry(v).or_default() += 1;
        m
    });
    assert!(counts.values().all(|c| *c == 1));
}

/// Expiry settings for the tests below: ids idle for 2 s go, checked twice a second.
const FAST_EXPIRY: &[&str] = &[
    "transactional.id.expiration.ms=2000",
    "transaction.remove.expired.transaction.cleanup.interval.ms=500",
];
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_string()))
}

/// (producer id, state) of every transactional id ListTransactions reports.
fn list_transactions(b: &TestBroker) -> BTreeMap<String, (i64, String)> {
    let r: ListTransactionsResponse = RawClient::connect(b.port).call(
        ApiKey::ListTransactions,
        0,
        &ListTransactionsRequest::default(),
    );
    assert_eq!(r.error_code, 0);
    r.transaction_states
        .into_iter()
        .map(|t| {
            (
                t.transactional_id.0.to_string(),
                (t.producer_id.0, t.transaction_state.to_string()),
            )
        })
        .collect()
}

/// DescribeTransactions of one id: (error code, producer id, epoch, state).
fn describe_transaction(b: &TestBroker, id: &str) -> (i16, i64, i16, String) {
    let r: DescribeTransactionsResponse = RawClient::connect(b.port).call(
        ApiKey::DescribeTransactions,
        0,
        &DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id(id)]),
    );
    assert_eq!(r.transaction_states.len(), 1);
    let t = &r.transaction_states[0];
    (
        t.error_code,
        t.producer_id.0,
        t.producer_epoch,
        t.transaction_state.to_string(),
    )
}

fn init_producer_id(b: &TestBroker, id: &str) -> (i64, i16) {
    let r: InitProducerIdResponse = RawClient::connect(b.port).call(
        ApiKey::InitProducerId,
        1,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(txn_id(id)))
            .with_transaction_timeout_ms(60_000),
    );
    assert_eq!(r.error_code, 0, "InitProducerId {id}");
    (r.producer_id.0, r.producer_epoch)
}

fn add_partition(b: &TestBroker, id: &str, pid: i64, epoch: i16, topic: &str) -> i16 {
    let r: AddPartitionsToTxnResponse = RawClient::connect(b.port).call(
        ApiKey::AddPartitionsToTxn,
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(txn_id(id))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![0])]),
    );
    let codes: Vec<i16> = r
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect();
    assert_eq!(codes.len(), 1, "{r:?}");
    codes[0]
}

fn end_txn(b: &TestBroker, id: &str, pid: i64, epoch: i16) -> i16 {
    let r: EndTxnResponse = RawClient::connect(b.port).call(
        ApiKey::EndTxn,
        3,
        &EndTxnRequest::default()
            .with_transactional_id(txn_id(id))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(true),
    );
    r.error_code
}

#[test]
fn idle_transactional_id_expires_and_stays_gone_across_a_restart() {
    let mut b = TestBroker::start(FAST_EXPIRY);
    create_topic(&b, "exp", 1);
    let p = txn_producer(&b, "t-exp", "60000");
    p.begin_transaction().expect("begin");
    send(&p, "exp", 0, "committed");
    p.commit_transaction(Duration::from_secs(30))
        .expect("commit");
    drop(p);
    let (code, pid, epoch, state) = describe_transaction(&b, "t-exp");
    assert_eq!((code, state.as_str()), (0, "CompleteCommit"));
    assert_eq!(list_transactions(&b).get("t-exp").map(|t| t.0), Some(pid));

    wait_for(
        Duration::from_secs(20),
        "t-exp to leave ListTransactions",
        || (!list_transactions(&b).contains_key("t-exp")).then_some(()),
    );
    assert_eq!(
        describe_transaction(&b, "t-exp").0,
        TRANSACTIONAL_ID_NOT_FOUND
    );
    // The old producer is unknown to the coordinator now.
    assert_eq!(
        add_partition(&b, "t-exp", pid, epoch, "exp"),
        INVALID_PRODUCER_ID_MAPPING
    );
    assert_eq!(
        end_txn(&b, "t-exp", pid, epoch),
        INVALID_PRODUCER_ID_MAPPING
    );

    // Replay applies the tombstone (durable before the id left memory: kill -9, no clean
    // shutdown): still gone after a restart, and InitProducerId starts the id afresh (a bump
    // of the old producer would keep its id with epoch + 1).
    b.kill9();
    b.restart();
    assert!(!list_transactions(&b).contains_key("t-exp"));
    assert_eq!(
        describe_transaction(&b, "t-exp").0,
        TRANSACTIONAL_ID_NOT_FOUND
    );
    let (pid2, epoch2) = init_producer_id(&b, "t-exp");
    assert_ne!(pid2, pid, "a new producer id after expiry");
    assert_eq!(epoch2, 0);
    assert_eq!(
        list_transactions(&b).get("t-exp"),
        Some(&(pid2, "Empty".to_string()))
    );
    assert!(b.log().contains("transactional id expired"));
}

#[test]
fn transactional_id_with_an_open_transaction_does_not_expire() {
    let b = TestBroker::start(FAST_EXPIRY);
    create_topic(&b, "open", 1);
    let p = txn_producer(&b, "t-open", "60000");
    p.begin_transaction().expect("begin");
    send(&p, "open", 0, "pending");
    p.flush(Duration::from_secs(30)).expect("flush");
    assert_eq!(describe_transaction(&b, "t-open").3, "Ongoing");
    // An idle id registered now expires after 2 s: once it is gone, expiry has run past the
    // open transaction's last update too. A run skips ids busy with a request, so a second
    // idle id, registered only after the first is gone, proves one more whole run past the
    // cutoff (instead of sleeping and hoping runs happened).
    let (idle_pid, idle_epoch) = init_producer_id(&b, "t-idle");
    wait_for(Duration::from_secs(20), "t-idle to expire", || {
        (!list_transactions(&b).contains_key("t-idle")).then_some(())
    });
    init_producer_id(&b, "t-idle2");
    wait_for(Duration::from_secs(20), "t-idle2 to expire", || {
        (!list_transactions(&b).contains_key("t-idle2")).then_some(())
    });
    let (code, _, _, state) = describe_transaction(&b, "t-open");
    assert_eq!(
        (code, state.as_str()),
        (0, "Ongoing"),
        "open transaction kept"
    );
    assert!(list_transactions(&b).contains_key("t-open"));
    // The producer still owns its transaction and commits it.
    p.commit_transaction(Duration::from_secs(30))
        .expect("commit after the expiry window");
    assert_eq!(
        read(&b, "open", 1, "read_committed"),
        vec!["pending".to_string()]
    );
    // Complete now, it goes the way of idle ids.
    wait_for(
        Duration::from_secs(20),
        "t-open to expire once complete",
        || (!list_transactions(&b).contains_key("t-open")).then_some(()),
    );
    assert_eq!(
        add_partition(&b, "t-idle", idle_pid, idle_epoch, "open"),
        INVALID_PRODUCER_ID_MAPPING
    );
}
