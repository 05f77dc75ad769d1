//! Topic administration with a real client (librdkafka's AdminClient): create with configs,
//! describe configs with sources, incremental alter, invalid values, create partitions,
//! delete records, delete and re-create a topic, and configs that survive a restart.

mod common;

use std::time::Duration;

use common::{RawClient, TestBroker};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
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
