//! Topic administration with a real client (librdkafka's AdminClient) and, where it exposes
//! too little, raw requests: create with configs, DescribeConfigs sources (topic and broker),
//! AlterConfigs and IncrementalAlterConfigs (SET/DELETE/APPEND, invalid values), create
//! partitions, delete records, DescribeCluster, delete and re-create a topic (new id, no old
//! data or configs), and configs that survive a restart.

mod common;

use std::time::Duration;

use common::{RawClient, TestBroker};
use kafka_protocol::messages::alter_configs_request as legacy;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, DeleteRecordsRequest, DeleteRecordsResponse,
    DescribeClusterRequest, DescribeClusterResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::TopicPartitionList;

fn src(s: ConfigSource) -> String {
    format!("{s:?}")
}

fn admin(b: &TestBroker) -> AdminClient<DefaultClientContext> {
    b.client().create().expect("admin")
}

async fn describe(
    a: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Vec<(String, Option<String>, String)> {
    let r = a
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .expect("describe");
    let res = r.into_iter().next().expect("one").expect("ok");
    res.entries
        .into_iter()
        .map(|e| (e.name, e.value, format!("{:?}", e.source)))
        .collect()
}

fn entry(v: &[(String, Option<String>, String)], name: &str) -> (Option<String>, String) {
    v.iter()
        .find(|e| e.0 == name)
        .map(|e| (e.1.clone(), e.2.clone()))
        .unwrap_or_else(|| panic!("no {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_configs_create_describe_alter_and_survive_restart() {
    let mut b = TestBroker::start(&[]);
    let a = admin(&b);
    let t = NewTopic::new("cfg", 2, TopicReplication::Fixed(1)).set("retention.ms", "3600000");
    let r = a
        .create_topics(&[t], &AdminOptions::new())
        .await
        .expect("create");
    assert!(r[0].is_ok());
    let d = describe(&a, "cfg").await;
    assert_eq!(
        entry(&d, "retention.ms"),
        (Some("3600000".into()), src(ConfigSource::DynamicTopic))
    );
    assert_eq!(
        entry(&d, "segment.bytes"),
        (Some("1073741824".into()), src(ConfigSource::Default))
    );

    let alter = AlterConfig::new(ResourceSpecifier::Topic("cfg")).set("max.message.bytes", "4096");
    let r = a
        .alter_configs(&[alter], &AdminOptions::new())
        .await
        .expect("alter");
    assert!(r[0].is_ok(), "{r:?}");
    let d = describe(&a, "cfg").await;
    assert_eq!(entry(&d, "max.message.bytes").0.as_deref(), Some("4096"));
    assert_eq!(
        entry(&d, "retention.ms").1,
        src(ConfigSource::Default),
        "legacy AlterConfigs replaces all overrides"
    );

    // kafka-configs --alter uses IncrementalAlterConfigs: check its error codes exactly.
    let mut raw = RawClient::connect(b.port);
    let inc = |key: &str, value: &str, op: i8| {
        IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("cfg"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_string(key.to_string()))
                    .with_config_operation(op)
                    .with_value(Some(StrBytes::from_string(value.to_string())))]),
        ])
    };
    let r: IncrementalAlterConfigsResponse = raw.call(
        ApiKey::IncrementalAlterConfigs,
        1,
        &inc("retention.ms", "not-a-number", 0),
    );
    assert_eq!(r.responses[0].error_code, 40, "INVALID_CONFIG");
    let r: IncrementalAlterConfigsResponse = raw.call(
        ApiKey::IncrementalAlterConfigs,
        1,
        &inc("no.such.key", "1", 0),
    );
    assert_eq!(r.responses[0].error_code, 40, "unknown key: INVALID_CONFIG");
    let r: IncrementalAlterConfigsResponse = raw.call(
        ApiKey::IncrementalAlterConfigs,
        1,
        &inc("cleanup.policy", "compact", 2),
    );
    assert_eq!(r.responses[0].error_code, 0, "APPEND to a list");
    let d = describe(&a, "cfg").await;
    assert_eq!(
        entry(&d, "cleanup.policy").0.as_deref(),
        Some("delete,compact")
    );
    let r: IncrementalAlterConfigsResponse = raw.call(
        ApiKey::IncrementalAlterConfigs,
        1,
        &inc("retention.ms", "5", 2),
    );
    assert_eq!(
        r.responses[0].error_code, 40,
        "APPEND to a non-list is INVALID_CONFIG"
    );

    let bad =
        NewTopic::new("bad-cfg", 1, TopicReplication::Fixed(1)).set("cleanup.policy", "sometimes");
    let r = a
        .create_topics(&[bad], &AdminOptions::new())
        .await
        .expect("create");
    assert!(
        matches!(&r[0], Err((_, RDKafkaErrorCode::InvalidConfig))),
        "{r:?}"
    );

    b.stop();
    b.restart();
    let a = admin(&b);
    let d = describe(&a, "cfg").await;
    assert_eq!(
        entry(&d, "max.message.bytes"),
        (Some("4096".into()), src(ConfigSource::DynamicTopic)),
        "configs survive a restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_records_and_topic_deletion() {
    let b = TestBroker::start(&[]);
    let a = admin(&b);
    let r = a
        .create_topics(
            &[NewTopic::new("life", 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create");
    assert!(r[0].is_ok());
    let dup = a
        .create_topics(
            &[NewTopic::new("life", 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create");
    assert!(matches!(
        &dup[0],
        Err((_, RDKafkaErrorCode::TopicAlreadyExists))
    ));

    let r = a
        .create_partitions(&[NewPartitions::new("life", 3)], &AdminOptions::new())
        .await
        .expect("partitions");
    assert!(r[0].is_ok(), "{r:?}");
    let r = a
        .create_partitions(&[NewPartitions::new("life", 2)], &AdminOptions::new())
        .await
        .expect("partitions");
    assert!(
        matches!(&r[0], Err((_, RDKafkaErrorCode::InvalidPartitions))),
        "cannot shrink: {r:?}"
    );
    let c: BaseConsumer = b.client().create().expect("client");
    let md = c
        .fetch_metadata(Some("life"), Duration::from_secs(10))
        .expect("metadata");
    assert_eq!(md.topics()[0].partitions().len(), 3);

    let p: FutureProducer = b.client().create().expect("producer");
    for i in 0..10 {
        p.send(
            FutureRecord::<str, str>::to("life")
                .payload(&format!("v{i}"))
                .partition(0),
            Duration::from_secs(10),
        )
        .await
        .expect("produce");
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("life", 0, rdkafka::Offset::Offset(6))
        .expect("tpl");
    let r = a
        .delete_records(&tpl, &AdminOptions::new())
        .await
        .expect("delete records");
    assert!(r.elements()[0].error().is_ok());
    let (low, high) = c
        .fetch_watermarks("life", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!((low, high), (6, 10));
    let mut beyond = TopicPartitionList::new();
    beyond
        .add_partition_offset("life", 0, rdkafka::Offset::Offset(99))
        .expect("tpl");
    let r = a
        .delete_records(&beyond, &AdminOptions::new())
        .await
        .expect("delete records");
    assert!(
        r.elements()[0].error().is_err(),
        "beyond the high watermark is OFFSET_OUT_OF_RANGE"
    );

    let r = a
        .delete_topics(&["life"], &AdminOptions::new())
        .await
        .expect("delete");
    assert!(r[0].is_ok());
    let md = c
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    assert!(
        md.topics().iter().all(|t| t.name() != "life"),
        "deleted topic is gone"
    );
    let r = a
        .create_topics(
            &[NewTopic::new("life", 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create");
    assert!(r[0].is_ok(), "re-creating works");
    let (low, high) = c
        .fetch_watermarks("life", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!((low, high), (0, 0), "a re-created topic starts empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_set_and_delete_show_in_describe_configs() {
    let b = TestBroker::start(&[]);
    b.create_topic("inc", 1, &[("retention.ms", "3600000")])
        .await;
    let a = admin(&b);
    let mut raw = RawClient::connect(b.port);
    let op = |raw: &mut RawClient, key: &str, value: Option<&str>, op: i8| {
        let r: IncrementalAlterConfigsResponse = raw.call(
            ApiKey::IncrementalAlterConfigs,
            1,
            &IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("inc"))
                    .with_configs(vec![AlterableConfig::default()
                        .with_name(StrBytes::from_string(key.to_string()))
                        .with_config_operation(op)
                        .with_value(value.map(|v| StrBytes::from_string(v.to_string())))]),
            ]),
        );
        r.responses[0].error_code
    };
    assert_eq!(op(&mut raw, "segment.ms", Some("600000"), 0), 0, "SET");
    let d = describe(&a, "inc").await;
    assert_eq!(
        entry(&d, "segment.ms"),
        (Some("600000".into()), src(ConfigSource::DynamicTopic))
    );
    assert_eq!(
        entry(&d, "retention.ms"),
        (Some("3600000".into()), src(ConfigSource::DynamicTopic)),
        "an incremental SET keeps the other overrides"
    );
    assert_eq!(op(&mut raw, "retention.ms", None, 1), 0, "DELETE");
    let d = describe(&a, "inc").await;
    assert_eq!(
        entry(&d, "retention.ms"),
        (Some("604800000".into()), src(ConfigSource::Default)),
        "DELETE falls back to the default"
    );
    assert_eq!(
        op(&mut raw, "min.insync.replicas", Some("-3"), 0),
        40,
        "out of range: INVALID_CONFIG"
    );
    assert_eq!(
        op(&mut raw, "cleanup.policy", Some("sometimes"), 0),
        40,
        "not a valid policy: INVALID_CONFIG"
    );
    let d = describe(&a, "inc").await;
    assert_eq!(
        entry(&d, "cleanup.policy"),
        (Some("delete".into()), src(ConfigSource::Default)),
        "a refused alter changes nothing"
    );
}

/// Legacy AlterConfigs over the wire: rdkafka 0.39 reports every AlterConfigs resource as Ok
/// whatever its error code (it never reads the per-resource error), so the codes are checked
/// with raw requests and the effect through DescribeConfigs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_alter_configs_with_an_invalid_value_is_invalid_config() {
    let b = TestBroker::start(&[]);
    b.create_topic("legacy", 1, &[("retention.ms", "3600000")])
        .await;
    let a = admin(&b);
    let mut raw = RawClient::connect(b.port);
    let mut alter = |topic: &'static str, key: &'static str, value: &'static str| {
        let r: AlterConfigsResponse = raw.call(
            ApiKey::AlterConfigs,
            2,
            &AlterConfigsRequest::default().with_resources(vec![
                legacy::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str(topic))
                    .with_configs(vec![legacy::AlterableConfig::default()
                        .with_name(StrBytes::from_static_str(key))
                        .with_value(Some(StrBytes::from_static_str(value)))]),
            ]),
        );
        r.responses[0].error_code
    };
    assert_eq!(
        alter("legacy", "retention.ms", "forever"),
        40,
        "INVALID_CONFIG"
    );
    assert_eq!(alter("legacy", "retention.ms", "-5"), 40, "below -1");
    assert_eq!(alter("legacy", "no.such.key", "1"), 40, "unknown key");
    assert_eq!(
        alter("nope", "retention.ms", "1"),
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    let d = describe(&a, "legacy").await;
    assert_eq!(
        entry(&d, "retention.ms"),
        (Some("3600000".into()), src(ConfigSource::DynamicTopic)),
        "refused alters change nothing"
    );
    assert_eq!(alter("legacy", "segment.ms", "600000"), 0);
    let d = describe(&a, "legacy").await;
    assert_eq!(
        entry(&d, "segment.ms"),
        (Some("600000".into()), src(ConfigSource::DynamicTopic))
    );
    assert_eq!(
        entry(&d, "retention.ms").1,
        src(ConfigSource::Default),
        "AlterConfigs replaces the whole set of overrides"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_configs_show_static_settings() {
    let b = TestBroker::start(&["num.partitions=3"]);
    let a = admin(&b);
    let c: BaseConsumer = b.client().create().expect("client");
    let md = c
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    let id = md.brokers()[0].id();
    let r = a
        .describe_configs(&[ResourceSpecifier::Broker(id)], &AdminOptions::new())
        .await
        .expect("describe");
    let res = r.into_iter().next().expect("one").expect("ok");
    let e = res
        .entries
        .iter()
        .find(|e| e.name == "num.partitions")
        .expect("num.partitions");
    assert_eq!(e.value.as_deref(), Some("3"));
    assert!(
        matches!(e.source, ConfigSource::StaticBroker),
        "{:?}",
        e.source
    );
    // Topics created without a count take it.
    let r = a
        .create_topics(
            &[NewTopic::new("dflt", -1, TopicReplication::Fixed(-1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create");
    assert!(r[0].is_ok(), "{r:?}");
    let md = c
        .fetch_metadata(Some("dflt"), Duration::from_secs(10))
        .expect("metadata");
    assert_eq!(md.topics()[0].partitions().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_partitions_take_writes_and_delete_records_moves_the_start() {
    let b = TestBroker::start(&[]);
    b.create_topic("grow", 1, &[]).await;
    let a = admin(&b);
    let r = a
        .create_partitions(&[NewPartitions::new("grow", 4)], &AdminOptions::new())
        .await
        .expect("partitions");
    assert!(r[0].is_ok(), "{r:?}");
    let p: FutureProducer = b.client().create().expect("producer");
    for part in 0..4 {
        for i in 0..5 {
            let d = p
                .send(
                    FutureRecord::<str, str>::to("grow")
                        .payload(&format!("p{part}-{i}"))
                        .partition(part),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("produce to a new partition");
            assert_eq!((d.partition, d.offset), (part, i64::from(i)));
        }
    }
    // Offset -1 (End) means "up to the high watermark".
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("grow", 3, rdkafka::Offset::End)
        .expect("tpl");
    tpl.add_partition_offset("grow", 2, rdkafka::Offset::Offset(2))
        .expect("tpl");
    let r = a
        .delete_records(&tpl, &AdminOptions::new())
        .await
        .expect("delete records");
    for e in r.elements() {
        assert!(e.error().is_ok(), "{e:?}");
    }
    let c: BaseConsumer = b.client().create().expect("client");
    let marks = |p| {
        c.fetch_watermarks("grow", p, Duration::from_secs(10))
            .expect("watermarks")
    };
    assert_eq!(marks(3), (5, 5));
    assert_eq!(marks(2), (2, 5));
    assert_eq!(marks(1), (0, 5), "other partitions untouched");
    // A consumer from the beginning starts at the new log start offset.
    let got = common::consume_recs(&b, "grow", 4, rdkafka::Offset::Beginning, 5 + 5 + 3);
    let p2: Vec<i64> = got
        .iter()
        .filter(|r| r.partition == 2)
        .map(|r| r.offset)
        .collect();
    assert_eq!(p2, vec![2, 3, 4]);
    assert!(got.iter().all(|r| r.partition != 3));
}

/// A partition the topic does not have, answered as Apache Kafka 4.1.1 answers it (both
/// checked side by side): Metadata (the Java admin's lookup: v13, no auto-creation) lists only
/// the partitions that exist, with no entry and no error for the missing one; DeleteRecords
/// gives it UNKNOWN_TOPIC_OR_PARTITION with low watermark -1 while the existing partition in
/// the same request succeeds; an unknown topic is UNKNOWN_TOPIC_OR_PARTITION and is not
/// created. (kafka-clients 4.1.1's `Admin.deleteRecords` of such a partition retries its
/// metadata lookup without backoff until `default.api.timeout.ms` against Kafka too: a client
/// behaviour, not something the broker's answer can change without diverging from Kafka.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_the_topic_lacks_is_answered_like_kafka() {
    let b = TestBroker::start(&[]);
    b.create_topic("one", 1, &[]).await;
    let mut raw = RawClient::connect(b.port);
    let name = |n: &'static str| TopicName(StrBytes::from_static_str(n));
    let metadata = |raw: &mut RawClient, topic: &'static str| -> MetadataResponse {
        raw.call(
            ApiKey::Metadata,
            13,
            &MetadataRequest::default()
                .with_allow_auto_topic_creation(false)
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(name(topic)))
                ])),
        )
    };
    let md = metadata(&mut raw, "one");
    assert_eq!(md.topics.len(), 1);
    assert_eq!(md.topics[0].error_code, 0);
    let parts: Vec<(i32, i16, i32)> = md.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code, p.leader_id.0))
        .collect();
    assert_eq!(parts, vec![(0, 0, md.brokers[0].node_id.0)]);

    for version in 0..=2 {
        let dr: DeleteRecordsResponse = raw.call(
            ApiKey::DeleteRecords,
            version,
            &DeleteRecordsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![DeleteRecordsTopic::default()
                    .with_name(name("one"))
                    .with_partitions(vec![
                        DeleteRecordsPartition::default()
                            .with_partition_index(99)
                            .with_offset(0),
                        DeleteRecordsPartition::default()
                            .with_partition_index(0)
                            .with_offset(0),
                    ])]),
        );
        assert_eq!(dr.topics.len(), 1, "v{version}");
        let mut got: Vec<(i32, i64, i16)> = dr.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.low_watermark, p.error_code))
            .collect();
        got.sort_unstable();
        assert_eq!(got, vec![(0, 0, 0), (99, -1, 3)], "v{version}");
    }

    let md = metadata(&mut raw, "never-created");
    assert_eq!(md.topics.len(), 1);
    assert_eq!(md.topics[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert!(md.topics[0].partitions.is_empty());
    assert_eq!(metadata(&mut raw, "never-created").topics[0].error_code, 3);
}

#[test]
fn describe_cluster_names_this_broker_and_the_cluster() {
    let b = TestBroker::start(&[]);
    let mut raw = RawClient::connect(b.port);
    let md: MetadataResponse = raw.call(ApiKey::Metadata, 12, &MetadataRequest::default());
    for version in 0..=2 {
        let dc: DescribeClusterResponse = raw.call(
            ApiKey::DescribeCluster,
            version,
            &DescribeClusterRequest::default().with_endpoint_type(1),
        );
        assert_eq!(dc.error_code, 0, "v{version}");
        assert_eq!(
            Some(&dc.cluster_id),
            md.cluster_id.as_ref(),
            "v{version}: same cluster id as Metadata"
        );
        assert!(!dc.cluster_id.is_empty());
        assert_eq!(dc.controller_id, md.controller_id, "v{version}");
        assert_eq!(dc.brokers.len(), 1, "v{version}");
        let me = &dc.brokers[0];
        assert_eq!(me.broker_id, md.brokers[0].node_id, "v{version}");
        assert_eq!(me.host.as_str(), "127.0.0.1", "v{version}");
        assert_eq!(me.port, i32::from(b.port), "v{version}: advertised port");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_topic_gets_a_new_id_and_no_old_data() {
    let b = TestBroker::start(&[]);
    b.create_topic("again", 2, &[("retention.ms", "1000000")])
        .await;
    let p: FutureProducer = b.client().create().expect("producer");
    p.send(
        FutureRecord::<str, str>::to("again")
            .payload("old")
            .partition(1),
        Duration::from_secs(10),
    )
    .await
    .map_err(|(e, _)| e)
    .expect("produce");
    let id_of = |raw: &mut RawClient| {
        let md: MetadataResponse = raw.call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default()
                .with_allow_auto_topic_creation(false)
                .with_topics(Some(vec![MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("again"))))])),
        );
        (md.topics[0].error_code, md.topics[0].topic_id)
    };
    let mut raw = RawClient::connect(b.port);
    let (code, old_id) = id_of(&mut raw);
    assert_eq!(code, 0);
    let a = admin(&b);
    let r = a
        .delete_topics(&["again"], &AdminOptions::new())
        .await
        .expect("delete");
    assert!(r[0].is_ok(), "{r:?}");
    assert_eq!(id_of(&mut raw).0, 3, "gone: UNKNOWN_TOPIC_OR_PARTITION");
    let r = a
        .delete_topics(&["again"], &AdminOptions::new())
        .await
        .expect("delete");
    assert!(
        matches!(&r[0], Err((_, RDKafkaErrorCode::UnknownTopicOrPartition))),
        "deleting twice: {r:?}"
    );
    b.create_topic("again", 1, &[]).await;
    let (code, new_id) = id_of(&mut raw);
    assert_eq!(code, 0);
    assert_ne!(new_id, old_id, "a re-created topic has a new id");
    let d = describe(&a, "again").await;
    assert_eq!(
        entry(&d, "retention.ms").1,
        src(ConfigSource::Default),
        "old overrides are gone"
    );
    let c: BaseConsumer = b.client().create().expect("client");
    assert_eq!(
        c.fetch_watermarks("again", 0, Duration::from_secs(10))
            .expect("watermarks"),
        (0, 0)
    );
}

/// KIP-430: asked for, authorized operations are Kafka's bit sets for "everything" (no
/// authorizer); not asked for, they keep i32::MIN.
#[tokio::test]
async fn authorized_operations_are_answered_when_asked() {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{
        ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
        ConsumerGroupHeartbeatResponse, DescribeGroupsRequest, DescribeGroupsResponse, GroupId,
        OffsetCommitRequest, OffsetCommitResponse,
    };
    const TOPIC_ALL: i32 = 3576;
    const GROUP_ALL: i32 = 3400;
    const CLUSTER_ALL: i32 = 8096;
    let b = TestBroker::start(&[]);
    b.create_topic("ops", 1, &[]).await;
    let mut raw = RawClient::connect(b.port);
    let topic = |name: &'static str| {
        MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str(name))))
    };
    for (version, ask) in [(8, true), (10, true), (12, true), (12, false)] {
        let req = MetadataRequest::default()
            .with_topics(Some(vec![topic("ops")]))
            .with_include_topic_authorized_operations(ask)
            .with_include_cluster_authorized_operations(ask && version <= 10);
        let r: MetadataResponse = raw.call(ApiKey::Metadata, version, &req);
        let want = if ask { TOPIC_ALL } else { i32::MIN };
        assert_eq!(r.topics[0].topic_authorized_operations, want, "v{version}");
        if version <= 10 {
            assert_eq!(r.cluster_authorized_operations, CLUSTER_ALL, "v{version}");
        }
    }
    let r: DescribeClusterResponse = raw.call(
        ApiKey::DescribeCluster,
        1,
        &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
    );
    assert_eq!(r.cluster_authorized_operations, CLUSTER_ALL);

    // A classic group (created by a commit) and a consumer group.
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("classic")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("ops")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)])]);
    let r: OffsetCommitResponse = raw.call(ApiKey::OffsetCommit, 8, &commit);
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    for ask in [true, false] {
        let r: DescribeGroupsResponse = raw.call(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(StrBytes::from_static_str("classic"))])
                .with_include_authorized_operations(ask),
        );
        let want = if ask { GROUP_ALL } else { i32::MIN };
        assert_eq!(r.groups[0].authorized_operations, want);
    }
    let join = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("kip848")))
        .with_member_id(StrBytes::from_static_str("m-1"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str("ops"))]))
        .with_topic_partitions(Some(Vec::new()));
    let r: ConsumerGroupHeartbeatResponse = raw.call(ApiKey::ConsumerGroupHeartbeat, 1, &join);
    assert_eq!(r.error_code, 0);
    let describe = |raw: &mut RawClient, ask: bool| -> ConsumerGroupDescribeResponse {
        raw.call(
            ApiKey::ConsumerGroupDescribe,
            1,
            &ConsumerGroupDescribeRequest::default()
                .with_group_ids(vec![
                    GroupId(StrBytes::from_static_str("kip848")),
                    GroupId(StrBytes::from_static_str("missing")),
                ])
                .with_include_authorized_operations(ask),
        )
    };
    let r = describe(&mut raw, true);
    assert_eq!(r.groups[0].authorized_operations, GROUP_ALL);
    assert_ne!(r.groups[1].error_code, 0);
    assert_eq!(
        r.groups[1].authorized_operations,
        i32::MIN,
        "not for a group not described"
    );
    assert_eq!(
        describe(&mut raw, false).groups[0].authorized_operations,
        i32::MIN
    );
}

/// The GROUP config resource (`kafka-configs --entity-type groups`): describe, alter within
/// the broker's bounds with Kafka's messages, applied to a KIP-848 group's heartbeat interval,
/// kept across a restart.
#[tokio::test]
async fn group_configs_describe_alter_apply_and_survive_restart() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::{
        ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, DescribeConfigsRequest,
        DescribeConfigsResponse, GroupId,
    };
    const GROUP: i8 = 32;
    let mut b = TestBroker::start(&[]);
    b.create_topic("gc", 1, &[]).await;
    // (name, value, source, synonyms as (name, source))
    type Described = Vec<(String, Option<String>, i8, Vec<(String, i8)>)>;
    let describe = |port: u16| -> Described {
        let mut raw = RawClient::connect(port);
        let r: DescribeConfigsResponse = raw.call(
            ApiKey::DescribeConfigs,
            4,
            &DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_resources(vec![DescribeConfigsResource::default()
                    .with_resource_type(GROUP)
                    .with_resource_name(StrBytes::from_static_str("g1"))
                    .with_configuration_keys(None)]),
        );
        assert_eq!(
            r.results[0].error_code, 0,
            "{:?}",
            r.results[0].error_message
        );
        r.results[0]
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.value.as_ref().map(|v| v.to_string()),
                    c.config_source,
                    c.synonyms
                        .iter()
                        .map(|s| (s.name.to_string(), s.source))
                        .collect(),
                )
            })
            .collect()
    };
    let alter = |port: u16, key: &str, value: Option<&str>, op: i8| -> (i16, String) {
        let mut raw = RawClient::connect(port);
        let r: IncrementalAlterConfigsResponse = raw.call(
            ApiKey::IncrementalAlterConfigs,
            1,
            &IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(GROUP)
                    .with_resource_name(StrBytes::from_static_str("g1"))
                    .with_configs(vec![AlterableConfig::default()
                        .with_name(StrBytes::from_string(key.to_string()))
                        .with_config_operation(op)
                        .with_value(value.map(|v| StrBytes::from_string(v.to_string())))]),
            ]),
        );
        let res = &r.responses[0];
        (
            res.error_code,
            res.error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
        )
    };
    let defaults = describe(b.port);
    let names: Vec<&str> = defaults.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "consumer.heartbeat.interval.ms",
            "consumer.session.timeout.ms",
            "errors.deadletterqueue.copy.record.enable",
            "errors.deadletterqueue.topic.name",
            "share.auto.offset.reset",
            "share.delivery.count.limit",
            "share.heartbeat.interval.ms",
            "share.isolation.level",
            "share.partition.max.record.locks",
            "share.record.lock.duration.ms",
            "share.renew.acknowledge.enable",
            "share.session.timeout.ms",
            "streams.heartbeat.interval.ms",
            "streams.num.standby.replicas",
            "streams.session.timeout.ms"
        ]
    );
    assert_eq!(defaults[1].1.as_deref(), Some("45000"));
    assert_eq!(defaults[1].2, 5, "DEFAULT_CONFIG");

    assert_eq!(
        alter(b.port, "consumer.session.timeout.ms", Some("50000"), 0).0,
        0
    );
    assert_eq!(
        alter(b.port, "consumer.heartbeat.interval.ms", Some("6000"), 0).0,
        0
    );
    assert_eq!(
        alter(b.port, "consumer.session.timeout.ms", Some("1000"), 0),
        (
            40,
            "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive.".into()
        )
    );
    assert_eq!(
        alter(b.port, "nope", Some("1"), 0),
        (40, "Unknown group config name: nope".into())
    );
    assert_eq!(
        alter(b.port, "consumer.session.timeout.ms", Some("1"), 2).0,
        40,
        "APPEND"
    );
    let set = describe(b.port);
    assert_eq!(
        set[1],
        (
            "consumer.session.timeout.ms".into(),
            Some("50000".into()),
            8,
            vec![
                ("consumer.session.timeout.ms".into(), 8),
                ("group.consumer.session.timeout.ms".into(), 5)
            ]
        ),
        "GROUP_CONFIG, then the broker key"
    );

    // A KIP-848 member is told the group's heartbeat interval.
    let join = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g1")))
        .with_member_id(StrBytes::from_static_str("m-1"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str("gc"))]))
        .with_topic_partitions(Some(Vec::new()));
    let mut raw = RawClient::connect(b.port);
    let r: ConsumerGroupHeartbeatResponse = raw.call(ApiKey::ConsumerGroupHeartbeat, 1, &join);
    assert_eq!((r.error_code, r.heartbeat_interval_ms), (0, 6000));

    // ListConfigResources (what 4.1's kafka-configs --entity-type groups --describe asks):
    // groups with configs, this broker, every topic; v0 lists client metrics only.
    let list = |port: u16, version: i16, types: Vec<i8>| -> (i16, Vec<(String, i8)>) {
        use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
        let mut raw = RawClient::connect(port);
        let r: ListConfigResourcesResponse = raw.call(
            ApiKey::ListConfigResources,
            version,
            &ListConfigResourcesRequest::default().with_resource_types(types),
        );
        let listed = r
            .config_resources
            .iter()
            .map(|c| (c.resource_name.to_string(), c.resource_type))
            .collect();
        (r.error_code, listed)
    };
    assert_eq!(
        list(b.port, 1, vec![GROUP]),
        (0, vec![("g1".to_string(), GROUP)])
    );
    let (code, all) = list(b.port, 1, vec![]);
    assert_eq!(code, 0);
    assert!(
        all.contains(&("gc".to_string(), 2)) && all.contains(&("1".to_string(), 4)),
        "{all:?}"
    );
    assert_eq!(
        list(b.port, 0, vec![]),
        (0, vec![]),
        "no client-metrics resources"
    );
    assert_eq!(
        list(b.port, 1, vec![GROUP, 3]).0,
        35,
        "UNSUPPORTED_VERSION: no type 3"
    );

    b.stop();
    b.restart();
    assert_eq!(describe(b.port), set, "kept in the metadata log");
    assert_eq!(
        alter(b.port, "consumer.session.timeout.ms", None, 1).0,
        0,
        "DELETE"
    );
    assert_eq!(describe(b.port)[1].2, 5, "back to the broker's value");
}

/// Dynamic broker configs (`kafka-configs --entity-type brokers --alter`): per broker with a
/// real client's AlterConfigs, cluster-wide with IncrementalAlterConfigs; DescribeConfigs
/// shows the dynamic sources; topics without an override follow at once; static keys are
/// refused with Kafka's message; everything survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_broker_configs_apply_at_once_and_survive_restart() {
    let mut b = TestBroker::start(&[]);
    b.create_topic("dyn", 1, &[]).await;
    let a = admin(&b);
    let c: BaseConsumer = b.client().create().expect("client");
    let id = c
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata")
        .brokers()[0]
        .id();
    async fn broker_entry_of(
        a: &AdminClient<DefaultClientContext>,
        id: i32,
        name: &str,
    ) -> (Option<String>, String, bool) {
        let r = a
            .describe_configs(&[ResourceSpecifier::Broker(id)], &AdminOptions::new())
            .await
            .expect("describe");
        let res = r.into_iter().next().expect("one").expect("ok");
        let e = res
            .entries
            .into_iter()
            .find(|e| e.name == name)
            .expect("entry");
        (e.value, src(e.source), e.is_read_only)
    }
    // Records of 10 kB go through, until message.max.bytes is lowered for this broker.
    let p: FutureProducer = b.producer(&[("acks", "all")]);
    let big = vec![b'x'; 10_000];
    let send = |p: &FutureProducer, payload: Vec<u8>| {
        let p = p.clone();
        async move {
            p.send(
                FutureRecord::<(), [u8]>::to("dyn").payload(&payload[..]),
                Duration::from_secs(10),
            )
            .await
            .map(|_| ())
            .map_err(|(e, _)| e.rdkafka_error_code())
        }
    };
    assert_eq!(send(&p, big.clone()).await, Ok(()));
    let r = a
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Broker(id)).set("message.max.bytes", "2048")],
            &AdminOptions::new(),
        )
        .await
        .expect("alter");
    assert!(r[0].is_ok(), "{r:?}");
    assert_eq!(
        broker_entry_of(&a, id, "message.max.bytes").await,
        (Some("2048".into()), src(ConfigSource::DynamicBroker), false)
    );
    let d = describe(&a, "dyn").await;
    assert_eq!(
        entry(&d, "max.message.bytes"),
        (Some("2048".into()), src(ConfigSource::DynamicBroker))
    );
    assert_eq!(
        send(&p, big.clone()).await,
        Err(Some(RDKafkaErrorCode::MessageSizeTooLarge)),
        "the topic follows the broker's new default at once"
    );
    // A key that cannot change at run time (legacy AlterConfigs, raw: the exact code and
    // message).
    let mut raw = RawClient::connect(b.port);
    let r: AlterConfigsResponse = raw.call(
        ApiKey::AlterConfigs,
        2,
        &AlterConfigsRequest::default().with_resources(vec![
            legacy::AlterConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(StrBytes::from_string(id.to_string()))
                .with_configs(vec![legacy::AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("num.partitions"))
                    .with_value(Some(StrBytes::from_static_str("4")))]),
        ]),
    );
    assert_eq!(
        (
            r.responses[0].error_code,
            r.responses[0].error_message.as_ref().map(|m| m.to_string())
        ),
        (
            42,
            Some("Cannot update these configs dynamically: Set(num.partitions)".into())
        )
    );
    assert_eq!(
        broker_entry_of(&a, id, "message.max.bytes")
            .await
            .0
            .as_deref(),
        Some("2048"),
        "a refused alter changes nothing"
    );
    assert!(
        broker_entry_of(&a, id, "num.partitions").await.2,
        "static keys are read-only"
    );
    // Cluster-wide, through IncrementalAlterConfigs (kafka-configs --entity-default).
    let inc = |raw: &mut RawClient, name: &'static str, key: &'static str, value: &'static str| {
        let r: IncrementalAlterConfigsResponse = raw.call(
            ApiKey::IncrementalAlterConfigs,
            1,
            &IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(StrBytes::from_static_str(name))
                    .with_configs(vec![AlterableConfig::default()
                        .with_name(StrBytes::from_static_str(key))
                        .with_config_operation(0)
                        .with_value(Some(StrBytes::from_static_str(value)))]),
            ]),
        );
        let res = &r.responses[0];
        (
            res.error_code,
            res.error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
        )
    };
    assert_eq!(inc(&mut raw, "", "log.retention.ms", "3600000").0, 0);
    let (code, message) = inc(&mut raw, "", "log.segment.bytes", "lots");
    assert_eq!(code, 40, "INVALID_CONFIG: {message}");
    assert!(
        message.starts_with("Invalid value lots for configuration log.segment.bytes"),
        "{message}"
    );
    let (code, message) = inc(&mut raw, "", "broker.id", "7");
    assert_eq!(code, 42, "INVALID_REQUEST");
    assert!(
        message.starts_with("Cannot update these configs dynamically: Set(broker.id"),
        "{message}"
    );
    let d = describe(&a, "dyn").await;
    assert_eq!(
        entry(&d, "retention.ms"),
        (
            Some("3600000".into()),
            src(ConfigSource::DynamicDefaultBroker)
        )
    );
    // librdkafka cannot name the default resource (""); the raw request can.
    let defaults: DescribeConfigsResponse = raw.call(
        ApiKey::DescribeConfigs,
        4,
        &DescribeConfigsRequest::default().with_resources(vec![
            kafka_protocol::messages::describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(StrBytes::from_static_str(""))
                .with_configuration_keys(None),
        ]),
    );
    let listed: Vec<(String, i8)> = defaults.results[0]
        .configs
        .iter()
        .map(|c| (c.name.to_string(), c.config_source))
        .collect();
    assert_eq!(listed, vec![("log.retention.ms".to_string(), 3)]);

    // Both layers survive a restart, and are enforced again.
    drop(p);
    drop(a);
    b.stop();
    b.restart();
    let a = admin(&b);
    assert_eq!(
        broker_entry_of(&a, id, "message.max.bytes")
            .await
            .0
            .as_deref(),
        Some("2048")
    );
    let p: FutureProducer = b.producer(&[("acks", "all")]);
    assert_eq!(
        send(&p, big).await,
        Err(Some(RDKafkaErrorCode::MessageSizeTooLarge))
    );
    let d = describe(&a, "dyn").await;
    assert_eq!(entry(&d, "retention.ms").0.as_deref(), Some("3600000"));
}

/// The versions Kafka 4.2-4.4 added, over the wire (their codecs are checked byte for byte
/// against the Java client in `protocol::v44`; this checks what the broker does with them):
/// ApiVersions v5 answers REBOOTSTRAP_REQUIRED to a client that believes it talks to another
/// cluster or node and INVALID_REQUEST to a cluster id without node id; OffsetCommit and
/// OffsetFetch v10 name topics by id, and an unknown id gets UNKNOWN_TOPIC_ID.
#[test]
fn kafka_4_4_versions_serve_topic_ids_and_rebootstrap() {
    use bytes::BytesMut;
    use kafka_protocol::messages::ApiVersionsResponse;
    use kafka_protocol::protocol::Decodable;
    use strom::protocol::wire::{Reader, Writer};

    let b = TestBroker::start(&[]);
    let mut raw = RawClient::connect(b.port);
    let md: MetadataResponse = raw.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("ids"))))]))
            .with_allow_auto_topic_creation(true),
    );
    let cluster = md.cluster_id.clone().expect("cluster id").to_string();
    let node = md.brokers[0].node_id.0;
    let id = common::wait_for(Duration::from_secs(10), "auto-created topic", || {
        let md: MetadataResponse = raw.call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("ids"))))])),
        );
        (md.topics[0].error_code == 0).then_some(md.topics[0].topic_id)
    });
    let unknown = uuid::Uuid::from_u64_pair(1, 2);

    // ApiVersions v5.
    let mut api_versions = |cluster_id: Option<&str>, node_id: i32| -> ApiVersionsResponse {
        let mut body = BytesMut::new();
        let mut w = Writer { buf: &mut body };
        w.compact_string("strom-test");
        w.compact_string("1.0");
        w.compact_nullable_string(cluster_id);
        w.i32(node_id);
        w.no_tagged_fields();
        let mut resp = raw.call_bytes(ApiKey::ApiVersions, 5, &body);
        ApiVersionsResponse::decode(&mut resp, 4).expect("v5 response is v4's bytes")
    };
    let ok = api_versions(Some(&cluster), node);
    assert_eq!(ok.error_code, 0);
    let max = |key: ApiKey| {
        ok.api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| k.max_version)
    };
    assert_eq!(max(ApiKey::ApiVersions), Some(5));
    assert_eq!(max(ApiKey::OffsetCommit), Some(10));
    assert_eq!(max(ApiKey::OffsetFetch), Some(10));
    assert_eq!(max(ApiKey::TxnOffsetCommit), Some(6));
    assert_eq!(max(ApiKey::ListOffsets), Some(11));
    assert_eq!(max(ApiKey::DescribeLogDirs), Some(5));
    assert_eq!(max(ApiKey::DeleteGroups), Some(3));
    assert_eq!(api_versions(None, -1).error_code, 0);
    let other_cluster = api_versions(Some("AbCdEfGhIjKlMnOpQrStUw"), node);
    assert_eq!(other_cluster.error_code, 129, "REBOOTSTRAP_REQUIRED");
    assert!(other_cluster.api_keys.is_empty());
    assert_eq!(api_versions(Some(&cluster), node + 1).error_code, 129);
    assert_eq!(api_versions(Some(&cluster), -1).error_code, 42);
    assert_eq!(api_versions(None, node).error_code, 42);

    // OffsetCommit v10: the known id and an unknown one.
    let mut body = BytesMut::new();
    let mut w = Writer { buf: &mut body };
    w.compact_string("ids-group");
    w.i32(-1);
    w.compact_string("");
    w.compact_nullable_string(None);
    w.compact_array_len(2);
    for topic in [id, unknown] {
        w.uuid(&topic);
        w.compact_array_len(1);
        w.i32(0);
        w.i64(5);
        w.i32(-1);
        w.compact_nullable_string(Some("m1"));
        w.no_tagged_fields();
        w.no_tagged_fields();
    }
    w.no_tagged_fields();
    let resp = raw.call_bytes(ApiKey::OffsetCommit, 10, &body);
    let mut r = Reader::new(&resp);
    r.i32().unwrap();
    assert_eq!(r.compact_array_len(1).unwrap(), Some(2));
    for (topic, code) in [(id, 0), (unknown, 100)] {
        assert_eq!(r.uuid().unwrap(), topic);
        assert_eq!(r.compact_array_len(1).unwrap(), Some(1));
        assert_eq!((r.i32().unwrap(), r.i16().unwrap()), (0, code));
        r.skip_tagged_fields().unwrap();
        r.skip_tagged_fields().unwrap();
    }

    // OffsetFetch v10: by id (the unknown one too), then all offsets of the group.
    for listed in [true, false] {
        let mut body = BytesMut::new();
        let mut w = Writer { buf: &mut body };
        w.compact_array_len(1);
        w.compact_string("ids-group");
        w.compact_nullable_string(None);
        w.i32(-1);
        if listed {
            w.compact_array_len(2);
            for topic in [id, unknown] {
                w.uuid(&topic);
                w.compact_array_len(1);
                w.i32(0);
                w.no_tagged_fields();
            }
        } else {
            w.uvarint(0); // null: every committed offset
        }
        w.no_tagged_fields();
        w.bool(false);
        w.no_tagged_fields();
        let resp = raw.call_bytes(ApiKey::OffsetFetch, 10, &body);
        let mut r = Reader::new(&resp);
        r.i32().unwrap();
        assert_eq!(r.compact_array_len(1).unwrap(), Some(1));
        assert_eq!(r.compact_string().unwrap(), "ids-group");
        let expected: &[(uuid::Uuid, i64, Option<&str>, i16)] = if listed {
            &[(id, 5, Some("m1"), 0), (unknown, -1, Some(""), 100)]
        } else {
            &[(id, 5, Some("m1"), 0)]
        };
        assert_eq!(
            r.compact_array_len(1).unwrap(),
            Some(expected.len()),
            "listed: {listed}"
        );
        for &(topic, offset, metadata, code) in expected {
            assert_eq!(r.uuid().unwrap(), topic);
            assert_eq!(r.compact_array_len(1).unwrap(), Some(1));
            assert_eq!(r.i32().unwrap(), 0);
            assert_eq!(r.i64().unwrap(), offset, "listed: {listed}");
            assert_eq!(r.i32().unwrap(), -1);
            assert_eq!(r.compact_nullable_string().unwrap().as_deref(), metadata);
            assert_eq!(r.i16().unwrap(), code, "listed: {listed}");
            r.skip_tagged_fields().unwrap();
            r.skip_tagged_fields().unwrap();
        }
        assert_eq!(r.i16().unwrap(), 0, "group error");
    }
}

/// DescribeQuorum on a single node: a quorum of one, itself leading, its high watermark and
/// log end the records in its metadata log (one more after a topic is created); another
/// topic is UNKNOWN_TOPIC_OR_PARTITION.
#[tokio::test]
async fn describe_quorum_on_a_single_node() {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    use kafka_protocol::messages::{ApiKey, DescribeQuorumRequest, DescribeQuorumResponse};
    let b = TestBroker::start(&[]);
    let ask = |raw: &mut RawClient, topic: &str| -> DescribeQuorumResponse {
        let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(kafka_protocol::messages::TopicName(StrBytes::from_string(
                topic.to_string(),
            )))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
        raw.call(ApiKey::DescribeQuorum, 2, &req)
    };
    let mut raw = RawClient::connect(b.port);
    let before = ask(&mut raw, "__cluster_metadata");
    assert_eq!(before.error_code, 0);
    let p = &before.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(p.leader_id.0, 1, "node 1 leads its own quorum");
    assert_eq!(p.current_voters.len(), 1);
    assert_eq!(p.current_voters[0].log_end_offset, p.high_watermark);
    assert_eq!(before.nodes.len(), 1);
    b.create_topic("quorum-count", 1, &[]).await;
    let after = ask(&mut raw, "__cluster_metadata");
    assert_eq!(
        after.topics[0].partitions[0].high_watermark,
        p.high_watermark + 1,
        "one metadata record for the topic"
    );
    let other = ask(&mut raw, "other");
    assert_eq!(
        other.topics[0].partitions[0].error_code,
        RDKafkaErrorCode::UnknownTopicOrPartition as i16
    );
}
