//! Three `strom` processes as one cluster, each a
//! broker and a metadata-quorum voter, configured with Kafka's property names. A topic with
//! replication factor 3 and `min.insync.replicas=2` takes an idempotent acks=all producer
//! (librdkafka) while the leader of one partition is killed with SIGKILL: the producer carries
//! on against the new leader, and every acknowledged record is read back exactly once. The
//! killed broker restarts, catches up and re-enters every ISR; then another broker is killed so
//! that the restarted one leads a partition, and everything acknowledged is read back from the
//! survivors — the returning replica held the data it was counted in the ISR for. Last, with
//! all three back, every partition's three copies are byte for byte the same log.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::cluster::{
    create_topic, message_or_transient, produce, producer, read_all, wait_identical_replicas,
    Cluster, PARTITIONS, TOPIC,
};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{ApiKey, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

/// Reads everything back (see [`read_all`]) until the acknowledged records are all there, for
/// up to 15 s: a leader elected a moment ago may not have moved its high watermark up to the
/// old leader's yet (its followers' next fetches do), and reads stop at the high watermark.
/// Returns the last read; what is still missing after that is lost.
fn read_covering(cluster: &Cluster, acked: &BTreeSet<u64>) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let read = read_all(cluster);
        let seen: BTreeSet<u64> = read.iter().copied().collect();
        if acked.is_subset(&seen) || Instant::now() >= deadline {
            return read;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn check_no_loss(acked: &BTreeSet<u64>, read: &[u64]) {
    let seen: BTreeSet<u64> = read.iter().copied().collect();
    assert_eq!(seen.len(), read.len(), "duplicates in the log");
    let lost: Vec<&u64> = acked.difference(&seen).take(10).collect();
    assert!(
        lost.is_empty(),
        "acknowledged records lost (first 10): {lost:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_then_rejoins_without_losing_acknowledged_records() {
    let mut cluster = Cluster::start();
    create_topic(&cluster).await;
    let before = cluster.wait_isr(&[1, 2, 3], "every replica in sync after create");
    for (p, (_, replicas, _)) in &before {
        let mut r = replicas.clone();
        r.sort_unstable();
        assert_eq!(r, [1, 2, 3], "partition {p} replicas");
    }

    // Phase 1: all three up.
    let p = producer(&cluster);
    let (acked1, _, errors) = produce(&p, 0..3_000, Duration::from_millis(2)).await;
    assert!(errors.is_empty(), "errors with every broker up: {errors:?}");
    let mut acked: BTreeSet<u64> = acked1.into_iter().collect();

    // Phase 2: kill -9 the leader of partition 0 while producing.
    let victim = before[&0].0;
    let sending = {
        let p = p.clone();
        tokio::spawn(async move { produce(&p, 3_000..9_000, Duration::from_millis(25)).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.node(victim).kill9();
    let killed_at = Instant::now();
    let (acked2, slowest, errors) = sending.await.expect("producer task");
    assert!(
        errors.is_empty(),
        "an idempotent acks=all producer must ride through the failover: {errors:?}"
    );
    eprintln!(
        "failover: leader {victim} killed; slowest acknowledgement {slowest:?}; \
         {} records acknowledged, all sends done {:?} after the kill",
        acked2.len(),
        killed_at.elapsed()
    );
    acked.extend(acked2);
    let survivors: Vec<i32> = (1..=3).filter(|n| *n != victim).collect();
    let after = cluster.wait_isr(&survivors, "the ISR without the killed broker");
    assert!(
        after.values().all(|(leader, _, _)| *leader != victim),
        "a killed broker still leads: {after:?}"
    );
    check_no_loss(&acked, &read_covering(&cluster, &acked));

    // Phase 3: the killed broker restarts, catches up and re-enters every ISR.
    cluster.node(victim).spawn();
    cluster.wait_ready(victim);
    let rejoined = cluster.wait_isr(&[1, 2, 3], "the restarted broker back in every ISR");

    // Phase 4: kill a leader whose successor, in replica order, is the restarted broker, so
    // it must lead with the data it was counted in the ISR for.
    let (&part, (second_victim, _, _)) = rejoined
        .iter()
        .find(|(_, (leader, replicas, _))| {
            let third = 6 - victim - leader;
            *leader != victim
                && replicas.iter().position(|r| *r == victim)
                    < replicas.iter().position(|r| *r == third)
        })
        .expect("a partition the restarted broker would take over");
    let second_victim = *second_victim;
    cluster.node(second_victim).kill9();
    let survivors: Vec<i32> = (1..=3).filter(|n| *n != second_victim).collect();
    let last = cluster.wait_isr(&survivors, "the ISR without the second victim");
    assert_eq!(
        last[&part].0, victim,
        "the restarted broker leads partition {part}: {last:?}"
    );
    let p = producer(&cluster);
    let (acked3, _, errors) = produce(&p, 9_000..10_000, Duration::from_millis(2)).await;
    assert!(
        errors.is_empty(),
        "errors after the second kill: {errors:?}"
    );
    acked.extend(acked3);
    let read = read_covering(&cluster, &acked);
    check_no_loss(&acked, &read);
    assert_eq!(acked.len(), 10_000, "every send acknowledged");

    // Phase 5: the second victim returns too. Once every ISR is whole, the three copies of each
    // partition hold the same bytes: a returning replica that kept records the new leader
    // never had (the tail a killed leader appended but nobody fetched) must have cut them.
    cluster.node(second_victim).spawn();
    cluster.wait_ready(second_victim);
    cluster.wait_isr(&[1, 2, 3], "the second victim back in every ISR");
    wait_identical_replicas(&cluster, "after both victims returned");
}

/// Consumes with a consumer group until `want` records arrived; returns their values.
fn consume_group(cluster: &Cluster, group: &str, want: usize) -> Vec<u64> {
    let consumer: BaseConsumer = cluster
        .client()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < want {
        assert!(
            Instant::now() < deadline,
            "group {group} read {} of {want} records",
            out.len()
        );
        let Some(m) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let Some(m) = message_or_transient(m) else {
            continue;
        };
        let v: u64 = std::str::from_utf8(m.payload().expect("payload"))
            .expect("utf8")
            .parse()
            .expect("number");
        out.push(v);
    }
    // Anything beyond `want` would be a record read twice: give it a moment to show up.
    let settle = Instant::now() + Duration::from_secs(1);
    while Instant::now() < settle {
        if let Some(m) = consumer
            .poll(Duration::from_millis(200))
            .and_then(message_or_transient)
        {
            let v = std::str::from_utf8(m.payload().expect("payload")).expect("utf8");
            out.push(v.parse().expect("number"));
        }
    }
    consumer
        .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        .expect("commit");
    out
}

/// A consumer group's coordinator lives on the leader of its `__consumer_offsets` partition.
/// Offsets committed there are replicated before the commit is answered: after the
/// coordinator's broker is killed with SIGKILL, the group carries on from them on the new
/// leader, reading exactly the records produced since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_offsets_survive_the_coordinator_being_killed() {
    let mut cluster = Cluster::start();
    create_topic(&cluster).await;
    cluster.wait_isr(&[1, 2, 3], "every replica in sync after create");
    let p = producer(&cluster);
    let (acked, _, errors) = produce(&p, 0..3_000, Duration::from_millis(1)).await;
    assert!(errors.is_empty(), "{errors:?}");
    drop(p);
    let group = "cluster-group";
    let mut first = consume_group(&cluster, group, acked.len());
    first.sort_unstable();
    assert_eq!(first, acked, "the group's first pass reads everything once");

    let offsets = cluster.partitions_of("__consumer_offsets");
    let index = strom::coordinator::partition_for(group, offsets.len() as i32);
    let coordinator = offsets[&index].0;
    assert!(coordinator > 0, "a coordinator: {offsets:?}");
    cluster.node(coordinator).kill9();
    let killed_at = Instant::now();

    let p = producer(&cluster);
    let (acked, _, errors) = produce(&p, 3_000..4_000, Duration::from_millis(1)).await;
    assert!(errors.is_empty(), "after the kill: {errors:?}");
    let mut second = consume_group(&cluster, group, acked.len());
    second.sort_unstable();
    assert_eq!(
        second, acked,
        "the group resumes from its committed offsets on the new coordinator"
    );
    eprintln!(
        "coordinator {coordinator} (partition {index}) killed; the group read the next {} records {:?} later",
        second.len(),
        killed_at.elapsed()
    );
}

/// Manual replica assignments are placed as asked; every voter answers DescribeQuorum alike;
/// then a broker stopped with SIGTERM hands its leaderships over before it exits (Kafka's
/// controlled shutdown): the moment it is gone, the others already lead its partitions and a
/// producer carries on without waiting for its session to expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_moves_leaderships_before_exit() {
    let mut cluster = Cluster::start();
    create_topic(&cluster).await;
    let before = cluster.wait_isr(&[1, 2, 3], "every replica in sync after create");
    // Manual replica assignments: placed as asked, the first replica leading.
    {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<rdkafka::client::DefaultClientContext> =
            cluster.client().create().expect("admin");
        let assigned: &[&[i32]] = &[&[3, 1], &[1, 2]];
        let r = admin
            .create_topics(
                &[NewTopic::new(
                    "manual",
                    2,
                    TopicReplication::Variable(assigned),
                )],
                &AdminOptions::new(),
            )
            .await
            .expect("create_topics");
        assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
        let bad: &[&[i32]] = &[&[3, 3]];
        let r = admin
            .create_topics(
                &[NewTopic::new("twice", 1, TopicReplication::Variable(bad))],
                &AdminOptions::new(),
            )
            .await
            .expect("create_topics");
        assert!(
            matches!(
                &r[0],
                Err((
                    _,
                    rdkafka::types::RDKafkaErrorCode::InvalidReplicaAssignment
                ))
            ),
            "{r:?}"
        );
        let placed = common::wait_for(Duration::from_secs(10), "the manual topic", || {
            let p = cluster.partitions_of("manual");
            (p.len() == 2).then_some(p)
        });
        assert_eq!(placed[&0].1, [3, 1]);
        assert_eq!(placed[&1].1, [1, 2]);
        assert_eq!((placed[&0].0, placed[&1].0), (3, 1), "first replicas lead");
    }

    // Offsets come from leaders only: a follower, and a broker without the partition, answer
    // NOT_LEADER_OR_FOLLOWER (6) so the client looks the leader up again.
    {
        use kafka_protocol::messages::list_offsets_request::{
            ListOffsetsPartition, ListOffsetsTopic,
        };
        use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
        let ask = |port: u16, topic: &'static str| -> i16 {
            let req = ListOffsetsRequest::default()
                .with_replica_id(kafka_protocol::messages::BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str(topic)))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1)])]);
            let mut raw = common::RawClient::connect(port);
            let resp: ListOffsetsResponse = raw.call(ApiKey::ListOffsets, 7, &req);
            resp.topics[0].partitions[0].error_code
        };
        let (leader, replicas, _) = before[&0].clone();
        let follower = replicas
            .iter()
            .copied()
            .find(|r| *r != leader)
            .expect("a follower");
        assert_eq!(ask(cluster.node(leader).port, TOPIC), 0);
        assert_eq!(
            ask(cluster.node(follower).port, TOPIC),
            6,
            "from a follower"
        );
        // "manual" partition 0 lives on brokers 3 and 1 only.
        assert_eq!(
            ask(cluster.node(2).port, "manual"),
            6,
            "from a broker without it"
        );
    }

    // Every voter answers DescribeQuorum with the leader's view (asked of it when needed).
    let mut leaders = Vec::new();
    for id in 1..=3 {
        let mut raw = common::RawClient::connect(cluster.node(id).port);
        let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
        let resp: DescribeQuorumResponse = raw.call(ApiKey::DescribeQuorum, 2, &req);
        assert_eq!(resp.error_code, 0, "node {id}: {resp:?}");
        let p = &resp.topics[0].partitions[0];
        assert_eq!(p.current_voters.len(), 3, "node {id}: {p:?}");
        assert!(p.high_watermark > 0, "node {id}: {p:?}");
        assert_eq!(resp.nodes.len(), 3);
        leaders.push((p.leader_id.0, p.leader_epoch));
    }
    assert!(
        leaders.windows(2).all(|w| w[0] == w[1]) && leaders[0].0 > 0,
        "one leader: {leaders:?}"
    );

    let victim = before[&0].0;
    let started = Instant::now();
    assert!(
        cluster.node(victim).stop(Duration::from_secs(30)),
        "node {victim} exits on SIGTERM"
    );
    let took = started.elapsed();
    let log = std::fs::read_to_string(cluster.node(victim).dir.path().join("broker.log"))
        .unwrap_or_default();
    assert!(
        log.contains("controlled shutdown: leaderships moved"),
        "node {victim} log:\n{log}"
    );
    // Well inside broker.session.timeout.ms (2 s) of the exit: no session had to expire.
    let after = cluster.partitions();
    assert!(
        after
            .values()
            .all(|(leader, _, _)| *leader != victim && *leader > 0),
        "leaders right after node {victim} stopped: {after:?}"
    );
    eprintln!("controlled shutdown of node {victim} took {took:?}");
    // A producer carries on at once.
    let p = producer(&cluster);
    let (acked, _, errors) = produce(&p, 0..300, Duration::from_millis(1)).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(acked.len(), 300);
}

/// After a killed leader returns, its partition is led elsewhere; ElectLeaders (PREFERRED,
/// what `kafka-leader-election` sends) gives it back to its first replica, and answers
/// ELECTION_NOT_NEEDED for partitions led by theirs already and UNKNOWN_TOPIC_OR_PARTITION
/// for one that does not exist. With `leader.imbalance.check.interval.seconds` short, the
/// controller does the same by itself (`auto.leader.rebalance.enable`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_leaders_come_back_by_request_and_by_the_controller() {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
    for automatic in [false, true] {
        let mut cluster = if automatic {
            Cluster::start_with(&["leader.imbalance.check.interval.seconds=1"])
        } else {
            Cluster::start()
        };
        create_topic(&cluster).await;
        let before = cluster.wait_isr(&[1, 2, 3], "every replica in sync after create");
        let (victim, replicas, _) = before[&0].clone();
        assert_eq!(replicas[0], victim, "the preferred replica leads at first");
        cluster.node(victim).kill9();
        let survivors: Vec<i32> = (1..=3).filter(|n| *n != victim).collect();
        cluster.wait_isr(&survivors, "the ISR without the killed leader");
        cluster.node(victim).spawn();
        cluster.wait_ready(victim);
        let back = cluster.wait_isr(&[1, 2, 3], "the killed leader back in the ISR");
        if automatic {
            common::wait_for(
                Duration::from_secs(20),
                "the controller's preferred election",
                || {
                    let now = cluster.partitions();
                    (now[&0].0 == victim).then_some(())
                },
            );
            continue;
        }
        assert_ne!(back[&0].0, victim, "nothing moved the leadership back yet");
        let other = (0..PARTITIONS)
            .find(|p| back[p].0 == back[p].1[0])
            .expect("a partition led by its preferred replica");
        let mut raw = common::RawClient::connect(cluster.node(back[&0].0).port);
        let req = ElectLeadersRequest::default()
            .with_election_type(0)
            .with_timeout_ms(10_000)
            .with_topic_partitions(Some(vec![TopicPartitions::default()
                .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partitions(vec![0, other, 99])]));
        let resp: ElectLeadersResponse = raw.call(ApiKey::ElectLeaders, 2, &req);
        assert_eq!(resp.error_code, 0, "{resp:?}");
        let codes: Vec<(i32, i16)> = resp.replica_election_results[0]
            .partition_result
            .iter()
            .map(|p| (p.partition_id, p.error_code))
            .collect();
        assert_eq!(
            codes,
            [(0, 0), (other, 84), (99, 3)],
            "elected / ELECTION_NOT_NEEDED / UNKNOWN_TOPIC_OR_PARTITION"
        );
        common::wait_for(
            Duration::from_secs(10),
            "partition 0 led by its preferred replica",
            || (cluster.partitions()[&0].0 == victim).then_some(()),
        );
        // A producer finds the new leader.
        let p = producer(&cluster);
        let (acked, _, errors) = produce(&p, 0..300, Duration::from_millis(1)).await;
        assert!(errors.is_empty() && acked.len() == 300, "{errors:?}");
    }
}

/// AlterPartitionReassignments moves a partition (what `kafka-reassign-partitions --execute`
/// sends): from brokers [1, 2] to [3, 2], its leader 1 leaving. Broker 3 catches up, joins
/// the ISR, the controller completes the move (3 or 2 leading, 1 dropped, its copy deleted),
/// and every acknowledged record is read back. Cancelling with nothing in progress is
/// NO_REASSIGNMENT_IN_PROGRESS; an unregistered broker is INVALID_REPLICA_ASSIGNMENT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reassignment_moves_a_partition_to_other_brokers() {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::{
        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    };
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let cluster = Cluster::start();
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        cluster.client().create().expect("admin");
    let assigned: &[&[i32]] = &[&[1, 2], &[2, 3], &[3, 1]];
    let r = admin
        .create_topics(
            &[NewTopic::new(
                TOPIC,
                PARTITIONS,
                TopicReplication::Variable(assigned),
            )],
            &AdminOptions::new(),
        )
        .await
        .expect("create_topics");
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    common::wait_for(Duration::from_secs(20), "two replicas in sync", || {
        let p = cluster.partitions();
        (p.len() == 3 && p.values().all(|(_, _, isr)| isr.len() == 2)).then_some(())
    });
    let p = producer(&cluster);
    let (mut acked, _, errors) = produce(&p, 0..3_000, Duration::from_millis(1)).await;
    assert!(errors.is_empty(), "{errors:?}");

    let reassign = |partition: i32, replicas: Option<Vec<i32>>| {
        let req = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(10_000)
            .with_allow_replication_factor_change(true)
            .with_topics(vec![ReassignableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partitions(vec![ReassignablePartition::default()
                    .with_partition_index(partition)
                    .with_replicas(
                        replicas.map(|r| r.into_iter().map(BrokerId).collect()),
                    )])]);
        let mut raw = common::RawClient::connect(cluster.nodes[1].port);
        let resp: AlterPartitionReassignmentsResponse =
            raw.call(ApiKey::AlterPartitionReassignments, 1, &req);
        assert_eq!(resp.error_code, 0, "{resp:?}");
        resp.responses[0].partitions[0].error_code
    };
    assert_eq!(reassign(1, None), 85, "NO_REASSIGNMENT_IN_PROGRESS");
    assert_eq!(
        reassign(1, Some(vec![2, 7])),
        39,
        "INVALID_REPLICA_ASSIGNMENT"
    );
    assert_eq!(reassign(0, Some(vec![3, 2])), 0, "the move is accepted");
    // Produce during the move too.
    let (more, _, errors) = produce(&p, 3_000..4_000, Duration::from_millis(1)).await;
    assert!(errors.is_empty(), "{errors:?}");
    acked.extend(more);
    let done = common::wait_for(Duration::from_secs(30), "the move completed", || {
        let p = cluster.partitions();
        (p[&0].1 == [3, 2] && p[&0].2 == [2, 3]).then_some(p)
    });
    assert!(done[&0].0 == 3 || done[&0].0 == 2, "{done:?}");
    let gone = cluster.nodes[0]
        .dir
        .path()
        .join("data")
        .join(format!("{TOPIC}-0"));
    common::wait_for(Duration::from_secs(10), "broker 1's copy removed", || {
        (!gone.exists()).then_some(())
    });
    let acked: BTreeSet<u64> = acked.into_iter().collect();
    let read: BTreeSet<u64> = read_covering(&cluster, &acked).into_iter().collect();
    let lost: Vec<_> = acked.difference(&read).take(10).collect();
    assert!(lost.is_empty(), "lost across the move: {lost:?}");
    // Broker 1 no longer has partition 0; broker `follower` follows it.
    let leader = done[&0].0;
    let follower = if leader == 3 { 2 } else { 3 };
    check_leader_hints(&cluster, 0, leader, &[1, follower]);
}

/// KIP-951: produce and fetch answers of NOT_LEADER_OR_FOLLOWER (produce: from `not_leaders`;
/// fetch: from `not_leaders[0]`, a broker that is no replica) and FENCED_LEADER_EPOCH (fetch:
/// from the other replicas, asked with an older epoch) name partition `partition`'s leader
/// and epoch, and the response carries the leader's endpoint.
fn check_leader_hints(cluster: &Cluster, partition: i32, leader: i32, not_leaders: &[i32]) {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{
        BrokerId, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse, ProduceRequest,
        ProduceResponse,
    };
    let port = |id: i32| cluster.nodes[id as usize - 1].port;
    let md: MetadataResponse = common::RawClient::connect(port(leader)).call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(TOPIC))))])),
    );
    let topic = &md.topics[0];
    let topic_id = topic.topic_id;
    let epoch = topic
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
        .expect("partition in metadata")
        .leader_epoch;
    let endpoint_ok = |id: BrokerId, host: &str, p: i32| {
        id.0 == leader && host == "127.0.0.1" && p == i32::from(port(leader))
    };
    for &asked in not_leaders {
        let produce = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(bytes::Bytes::new()))])]);
        let r: ProduceResponse =
            common::RawClient::connect(port(asked)).call(ApiKey::Produce, 11, &produce);
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(
            p.error_code, 6,
            "produce to broker {asked}: NOT_LEADER_OR_FOLLOWER"
        );
        assert_eq!(
            (p.current_leader.leader_id.0, p.current_leader.leader_epoch),
            (leader, epoch),
            "produce to broker {asked}: the hint"
        );
        assert!(
            r.node_endpoints.len() == 1
                && endpoint_ok(
                    r.node_endpoints[0].node_id,
                    &r.node_endpoints[0].host,
                    r.node_endpoints[0].port
                ),
            "produce to broker {asked}: endpoints {:?}",
            r.node_endpoints
        );
    }
    let fetch = |asked: i32, current_epoch: i32| -> FetchResponse {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_current_leader_epoch(current_epoch)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 16)])]);
        common::RawClient::connect(port(asked)).call(ApiKey::Fetch, 16, &req)
    };
    // A broker that is no replica: NOT_LEADER_OR_FOLLOWER (a follower serves v11+ consumer
    // fetches, KIP-392). The other replicas, asked with an epoch older than the one they
    // know: FENCED_LEADER_EPOCH.
    let mut asks: Vec<(i32, i32, i16)> = vec![(not_leaders[0], epoch, 6)];
    asks.extend(not_leaders[1..].iter().map(|&b| (b, epoch - 1, 74)));
    asks.push((leader, epoch - 1, 74));
    for (asked, current_epoch, code) in asks {
        let r = fetch(asked, current_epoch);
        let p = &r.responses[0].partitions[0];
        assert_eq!(
            p.error_code, code,
            "fetch from broker {asked} (epoch {current_epoch})"
        );
        assert_eq!(
            (p.current_leader.leader_id.0, p.current_leader.leader_epoch),
            (leader, epoch),
            "fetch from broker {asked}: the hint"
        );
        assert!(
            r.node_endpoints.len() == 1
                && endpoint_ok(
                    r.node_endpoints[0].node_id,
                    &r.node_endpoints[0].host,
                    r.node_endpoints[0].port
                ),
            "fetch from broker {asked}: endpoints {:?}",
            r.node_endpoints
        );
    }
}

/// Reads [`TOPIC`] from the start with `isolation` until `want` values arrived (then a moment
/// more, so that an extra record would show), sorted.
fn read_isolated(cluster: &Cluster, isolation: &str, want: usize) -> Vec<u64> {
    let consumer: BaseConsumer = cluster
        .client()
        .set("group.id", "cluster-test-isolated")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p, rdkafka::Offset::Beginning)
            .expect("add");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut settle: Option<Instant> = None;
    loop {
        if out.len() >= want && settle.is_none() {
            settle = Some(Instant::now() + Duration::from_secs(1));
        }
        if settle.is_some_and(|s| Instant::now() >= s) || Instant::now() >= deadline {
            break;
        }
        if let Some(m) = consumer
            .poll(Duration::from_millis(200))
            .and_then(message_or_transient)
        {
            let v = std::str::from_utf8(m.payload().expect("payload")).expect("utf8");
            out.push(v.parse().expect("number"));
        }
    }
    out.sort_unstable();
    out
}

/// librdkafka's log lines (its warnings, and with `STROM_TEST_RDKAFKA_DEBUG=eos,...` its debug
/// contexts) on stderr, with the time: shown when a test fails.
struct PrintLogs;

impl rdkafka::ClientContext for PrintLogs {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        eprintln!("{t} rdkafka {level:?} {fac}: {log_message}");
    }
}

/// Transactions across brokers: the transaction coordinator is the leader of the id's
/// `__transaction_state` partition, the topic's partitions are led by all three brokers, so
/// commit and abort markers reach most of them through WriteTxnMarkers, and each
/// transactional write is verified with the coordinator (KIP-890) by the partition's leader.
/// Offsets sent to the transaction land in the group coordinator's partition, possibly on a
/// third broker. Midway the coordinator's broker is killed with SIGKILL: the producer finds
/// the new coordinator (which loaded the replicated state) and carries on. read_committed
/// sees exactly the committed transactions; read_uncommitted sees the aborted ones too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_span_brokers_and_survive_the_coordinator_being_killed() {
    use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
    let mut cluster = Cluster::start();
    create_topic(&cluster).await;
    cluster.wait_isr(&[1, 2, 3], "every replica in sync after create");
    let txn_id = "cluster-txn";
    let group = "cluster-txn-group";
    let mut config = cluster.client();
    if let Ok(debug) = std::env::var("STROM_TEST_RDKAFKA_DEBUG") {
        config
            .set("debug", debug)
            .set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
    }
    let producer: FutureProducer<PrintLogs> = config
        .set("transactional.id", txn_id)
        .set("transaction.timeout.ms", "60000")
        .set("message.timeout.ms", "60000")
        // librdkafka 2.12 keeps a coordinator cached for `metadata.max.age.ms` after its last
        // use (15 min by default); used again after its broker left the Metadata broker list
        // (a fenced broker leaves it after `broker.session.timeout.ms`, with Kafka too), the
        // request waits on the broker's terminating handle forever and the transactional
        // API call never returns. A short age makes it look the coordinator up again.
        .set("metadata.max.age.ms", "1000")
        .create_with_context(PrintLogs)
        .expect("producer");
    tokio::task::block_in_place(|| producer.init_transactions(Duration::from_secs(60)))
        .expect("init_transactions");
    // A consumer of the group, for the group metadata the offsets go with.
    let consumer: BaseConsumer = cluster
        .client()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");

    // Markers must cross brokers: some partition is led by a broker other than the coordinator.
    let states = cluster.partitions_of("__transaction_state");
    let coordinator = states[&strom::coordinator::partition_for(txn_id, states.len() as i32)].0;
    let leaders: Vec<i32> = cluster.partitions().values().map(|(l, _, _)| *l).collect();
    assert!(
        leaders.iter().any(|l| *l != coordinator),
        "coordinator {coordinator}, leaders {leaders:?}"
    );
    let mut committed: Vec<u64> = Vec::new();
    let mut everything: Vec<u64> = Vec::new();
    let mut coordinator_killed = None;
    for round in 0..6u64 {
        if round == 3 {
            let states = cluster.partitions_of("__transaction_state");
            let index = strom::coordinator::partition_for(txn_id, states.len() as i32);
            let coordinator = states[&index].0;
            assert!(coordinator > 0, "a coordinator: {states:?}");
            cluster.node(coordinator).kill9();
            coordinator_killed = Some(coordinator);
        }
        tokio::task::block_in_place(|| producer.begin_transaction()).expect("begin");
        let values: Vec<u64> = (round * 100..round * 100 + 100).collect();
        for v in &values {
            let payload = v.to_string();
            producer
                .send(
                    FutureRecord::<(), _>::to(TOPIC)
                        .payload(&payload)
                        .partition((*v % PARTITIONS as u64) as i32),
                    Duration::from_secs(60),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("round {round}: send {v}: {e}"));
        }
        everything.extend(&values);
        let commit = round % 2 == 0;
        if commit {
            let mut offsets = rdkafka::TopicPartitionList::new();
            offsets
                .add_partition_offset(TOPIC, 0, rdkafka::Offset::Offset(round as i64 + 1))
                .expect("offset");
            let meta = consumer.group_metadata().expect("group metadata");
            tokio::task::block_in_place(|| {
                producer.send_offsets_to_transaction(&offsets, &meta, Duration::from_secs(60))
            })
            .unwrap_or_else(|e| panic!("round {round}: send offsets: {e}"));
            tokio::task::block_in_place(|| producer.commit_transaction(Duration::from_secs(60)))
                .unwrap_or_else(|e| panic!("round {round}: commit: {e}"));
            committed.extend(values);
        } else {
            tokio::task::block_in_place(|| producer.abort_transaction(Duration::from_secs(60)))
                .unwrap_or_else(|e| panic!("round {round}: abort: {e}"));
        }
    }
    drop(producer);

    let read =
        tokio::task::block_in_place(|| read_isolated(&cluster, "read_committed", committed.len()));
    committed.sort_unstable();
    assert_eq!(
        read, committed,
        "read_committed: the committed transactions, once each"
    );
    let read = tokio::task::block_in_place(|| {
        read_isolated(&cluster, "read_uncommitted", everything.len())
    });
    everything.sort_unstable();
    assert_eq!(
        read, everything,
        "read_uncommitted: every record, aborted ones too"
    );
    // The offsets of the last committed transaction (round 4) are the group's.
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition(TOPIC, 0);
    let got =
        tokio::task::block_in_place(|| consumer.committed_offsets(tpl, Duration::from_secs(30)))
            .expect("committed offsets");
    assert_eq!(
        got.find_partition(TOPIC, 0).map(|p| p.offset()),
        Some(rdkafka::Offset::Offset(5)),
        "the group's offset is the one sent with the last committed transaction"
    );
    eprintln!(
        "transaction coordinator {coordinator_killed:?} killed after round 2; 6 transactions done"
    );
}

/// A throttled reassignment (what `kafka-reassign-partitions --execute --throttle R` sets up):
/// `leader/follower.replication.throttled.rate` on each broker, the topic's
/// `leader.replication.throttled.replicas` naming the current replica and
/// `follower.replication.throttled.replicas` the new ones. A partition of 1 MB on broker 1
/// alone is moved to [1, 2, 3] at 80 kB/s: the leader serves both new followers out of one
/// 80 kB/s budget (after the first window's allowance of ~800 kB), so they cannot be in sync
/// in under 5 s (unthrottled, the same move takes about a second here: see the end of the
/// test). The copies are then identical, and once the throttles are removed another move
/// is fast again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_reassignment_holds_replication_to_the_rate() {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::{
        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
        IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    };
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::producer::FutureRecord;
    const RATE: &str = "80000";
    let cluster = Cluster::start();
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        cluster.client().create().expect("admin");
    let on_one: &[&[i32]] = &[&[1]];
    let topics = ["throttled", "unthrottled"];
    for t in topics {
        let r = admin
            .create_topics(
                &[NewTopic::new(t, 1, TopicReplication::Variable(on_one))],
                &AdminOptions::new(),
            )
            .await
            .expect("create_topics");
        assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    }
    // acks=1: one replica is below the cluster's min.insync.replicas of 2.
    let p: rdkafka::producer::FutureProducer = cluster
        .client()
        .set("acks", "1")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let value = vec![b'x'; 1000];
    for t in topics {
        let keys: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        let mut sent = Vec::new();
        for key in &keys {
            sent.push(p.send(
                FutureRecord::to(t).key(key).payload(&value),
                Duration::from_secs(30),
            ));
        }
        for s in sent {
            s.await.expect("produce");
        }
    }
    // (resource type, name, [(key, value)]) through IncrementalAlterConfigs SET, sent to `port`.
    let alter = |port: u16, resource_type: i8, name: &str, configs: &[(&str, Option<&str>)]| {
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            AlterableConfig::default()
                                .with_name(StrBytes::from_string(k.to_string()))
                                // SET, or DELETE without a value.
                                .with_config_operation(if v.is_some() { 0 } else { 1 })
                                .with_value(v.map(|v| StrBytes::from_string(v.to_string())))
                        })
                        .collect(),
                ),
        ]);
        let resp: IncrementalAlterConfigsResponse =
            common::RawClient::connect(port).call(ApiKey::IncrementalAlterConfigs, 1, &req);
        assert_eq!(resp.responses[0].error_code, 0, "{resp:?}");
    };
    let rates = |v: Option<&str>| {
        for n in &cluster.nodes {
            alter(
                n.port,
                4,
                &n.id.to_string(),
                &[
                    ("leader.replication.throttled.rate", v),
                    ("follower.replication.throttled.rate", v),
                ],
            );
        }
    };
    rates(Some(RATE));
    alter(
        cluster.nodes[0].port,
        2,
        "throttled",
        &[
            ("leader.replication.throttled.replicas", Some("0:1")),
            ("follower.replication.throttled.replicas", Some("0:2,0:3")),
        ],
    );
    let reassign = |topic: &str| {
        let req = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![ReassignableTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![ReassignablePartition::default()
                    .with_partition_index(0)
                    .with_replicas(Some(vec![
                        BrokerId(1),
                        BrokerId(2),
                        BrokerId(3),
                    ]))])]);
        let resp: AlterPartitionReassignmentsResponse = common::RawClient::connect(
            cluster.nodes[0].port,
        )
        .call(ApiKey::AlterPartitionReassignments, 0, &req);
        assert_eq!(resp.error_code, 0, "{resp:?}");
        assert_eq!(resp.responses[0].partitions[0].error_code, 0, "{resp:?}");
    };
    let in_sync = |topic: &str, within: Duration| {
        let started = Instant::now();
        common::wait_for(within, "the new replicas in sync", || {
            let p = cluster.partitions_of(topic);
            (p.get(&0).is_some_and(|(_, _, isr)| isr == &[1, 2, 3])).then_some(())
        });
        started.elapsed()
    };
    reassign("throttled");
    let throttled = in_sync("throttled", Duration::from_secs(120));
    assert!(
        throttled >= Duration::from_secs(5),
        "2 MB replicated at 80 kB/s (after ~800 kB of allowance) took only {throttled:?}"
    );
    // What `--verify` does once the move is done: the throttles go.
    rates(None);
    alter(
        cluster.nodes[0].port,
        2,
        "throttled",
        &[
            ("leader.replication.throttled.replicas", None),
            ("follower.replication.throttled.replicas", None),
        ],
    );
    reassign("unthrottled");
    let free = in_sync("unthrottled", Duration::from_secs(60));
    eprintln!("throttled move: {throttled:?}; unthrottled: {free:?}");
    common::cluster::wait_identical_replicas(&cluster, "after the throttled move");
}

/// KIP-392: with Kafka's rack-aware replica selector a leader sends a consumer that names its
/// rack to the in-sync follower in that rack (preferred read replica, no records), that
/// follower serves the consumer up to its high watermark, a fetch without client metadata
/// (before v11) still gets NOT_LEADER_OR_FOLLOWER from a follower, and librdkafka with
/// `client.rack` reads everything acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_read_from_the_in_sync_follower_in_their_rack() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::{Offset, TopicPartitionList};
    let cluster = Cluster::start_each(
        &["replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector"],
        [
            &["broker.rack=r1"],
            &["broker.rack=r2"],
            &["broker.rack=r3"],
        ],
    );
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        cluster.client().create().expect("admin");
    let assigned: &[&[i32]] = &[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2]];
    let r = admin
        .create_topics(
            &[NewTopic::new(
                TOPIC,
                PARTITIONS,
                TopicReplication::Variable(assigned),
            )],
            &AdminOptions::new(),
        )
        .await
        .expect("create_topics");
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    cluster.wait_isr(&[1, 2, 3], "every replica in sync");
    let p = producer(&cluster);
    let (acked, _, errors) = produce(&p, 0..600, Duration::from_millis(1)).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        cluster.partitions()[&0].0,
        1,
        "partition 0 led by its first replica"
    );

    let port = |id: i32| cluster.nodes[id as usize - 1].port;
    let fetch = |node: i32, version: i16, rack: &'static str| -> FetchResponse {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_rack_id(StrBytes::from_static_str(rack))
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)])]);
        common::RawClient::connect(port(node)).call(ApiKey::Fetch, version, &req)
    };
    let records = |r: &FetchResponse| {
        r.responses[0].partitions[0]
            .records
            .as_ref()
            .map_or(0, |b| b.len())
    };
    // The leader (rack r1) sends a client in r2 to broker 2, without records.
    let r = fetch(1, 12, "r2");
    let p0 = &r.responses[0].partitions[0];
    assert_eq!(
        (p0.error_code, p0.preferred_read_replica.0),
        (0, 2),
        "{p0:?}"
    );
    assert_eq!(records(&r), 0, "no records with a preferred read replica");
    let hw = p0.high_watermark;
    assert!(hw >= 200, "high watermark {hw}");
    // A client in the leader's rack, or in no rack of the replicas, reads from the leader.
    for rack in ["r1", "elsewhere", ""] {
        let r = fetch(1, 12, rack);
        let p0 = &r.responses[0].partitions[0];
        assert_eq!(
            (p0.error_code, p0.preferred_read_replica.0),
            (0, -1),
            "rack {rack:?}"
        );
        assert!(records(&r) > 0, "rack {rack:?}: records from the leader");
    }
    // The follower serves a v11+ consumer fetch up to its own high watermark (which reaches
    // the leader's with its next fetch).
    common::wait_for(
        Duration::from_secs(10),
        "the follower serves up to the leader's high watermark",
        || {
            let r = fetch(2, 12, "r2");
            let p0 = &r.responses[0].partitions[0];
            (p0.error_code == 0 && p0.high_watermark == hw && records(&r) > 0).then_some(())
        },
    );
    // Without client metadata (v10), a follower is no place to fetch from.
    let r = fetch(2, 10, "");
    assert_eq!(
        r.responses[0].partitions[0].error_code, 6,
        "NOT_LEADER_OR_FOLLOWER"
    );

    // librdkafka in rack r3 reads everything acknowledged (from the followers in r3).
    let consumer: BaseConsumer = cluster
        .client()
        .set("group.id", "rack-reader")
        .set("client.rack", "r3")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .expect("add");
    }
    consumer.assign(&tpl).expect("assign");
    let want: BTreeSet<u64> = acked.into_iter().collect();
    let mut got = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < want.len() {
        assert!(
            Instant::now() < deadline,
            "read {} of {}",
            got.len(),
            want.len()
        );
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            if let Some(m) = message_or_transient(m) {
                let v: u64 = std::str::from_utf8(m.payload().expect("payload"))
                    .expect("utf8")
                    .parse()
                    .expect("number");
                assert!(got.insert(v), "{v} read twice");
            }
        }
    }
    assert_eq!(got, want);
}

/// A topic deleted and re-created under the same name, with the same replicas, while one of
/// them is down: when it returns, its directory of the old topic (which records the old
/// topic id) is set aside and it replicates the new partition from empty — nothing of the old
/// topic shows, and every copy ends the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_broker_sets_aside_the_log_of_a_re_created_topic() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let mut cluster = Cluster::start();
    create_topic(&cluster).await;
    cluster.wait_isr(&[1, 2, 3], "every replica in sync");
    let p = producer(&cluster);
    let (_, _, errors) = produce(&p, 0..300, Duration::from_millis(1)).await;
    assert!(errors.is_empty(), "{errors:?}");
    drop(p);
    cluster.node(3).kill9();
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        cluster.client().create().expect("admin");
    let r = admin
        .delete_topics(&[TOPIC], &AdminOptions::new())
        .await
        .expect("delete_topics");
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    // Re-created with broker 3 among the replicas while it is down (a manual assignment may
    // name a registered broker that is fenced, as in Kafka); the deletion may take a moment.
    let assigned: &[&[i32]] = &[&[1, 2, 3], &[2, 3, 1], &[1, 3, 2]];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = admin
            .create_topics(
                &[NewTopic::new(
                    TOPIC,
                    PARTITIONS,
                    TopicReplication::Variable(assigned),
                )],
                &AdminOptions::new(),
            )
            .await
            .expect("create_topics");
        if r.iter().all(|x| x.is_ok()) {
            break;
        }
        assert!(Instant::now() < deadline, "re-create: {r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    common::wait_for(Duration::from_secs(20), "two replicas in sync", || {
        let p = cluster.partitions();
        (p.len() == 3 && p.values().all(|(_, _, isr)| isr.len() == 2)).then_some(())
    });
    let p = producer(&cluster);
    let (acked, _, errors) = produce(&p, 1_000..1_200, Duration::from_millis(1)).await;
    assert!(errors.is_empty(), "{errors:?}");
    // Broker 3 returns with its directories of the old topic, a replica of the new one.
    cluster.node(3).spawn();
    cluster.wait_ready(3);
    cluster.wait_isr(&[1, 2, 3], "broker 3 in every ISR of the new topic");
    wait_identical_replicas(&cluster, "after broker 3 joined the re-created topic");
    let read: BTreeSet<u64> = read_all(&cluster).into_iter().collect();
    let want: BTreeSet<u64> = acked.into_iter().collect();
    assert_eq!(read, want, "the new topic holds exactly its own records");
    let strays = std::fs::read_dir(cluster.nodes[2].dir.path().join("data"))
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with(&format!("{TOPIC}-")) && n.ends_with("-stray")
        })
        .count();
    assert_eq!(
        strays, PARTITIONS as usize,
        "broker 3 set its old directories aside"
    );
}

/// ACLs are metadata: one created through broker 1 is enforced by broker 3 (the authorizer on
/// every node decides over the replicated ACLs). No super users here and
/// `allow.everyone.if.no.acl.found=true`, so the brokers' own PLAINTEXT requests
/// (User:ANONYMOUS) pass as long as the cluster resource has no ACL; the DENY names one topic.
#[test]
fn an_acl_made_on_one_broker_is_enforced_by_the_others() {
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{
        CreateAclsRequest, CreateAclsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
        ProduceResponse,
    };
    let cluster = Cluster::start_with(&[
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=true",
    ]);
    let mut one = common::RawClient::connect(cluster.nodes[0].port);
    let made: CreateAclsResponse = one.call(
        ApiKey::CreateAcls,
        3,
        &CreateAclsRequest::default().with_creations(vec![AclCreation::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("no-writes"))
            .with_resource_pattern_type(3)
            .with_principal(StrBytes::from_static_str("User:ANONYMOUS"))
            .with_host(StrBytes::from_static_str("*"))
            .with_operation(4)
            .with_permission_type(2)]),
    );
    assert_eq!(made.results[0].error_code, 0, "{made:?}");
    let mut three = common::RawClient::connect(cluster.nodes[2].port);
    let produce = |raw: &mut common::RawClient, topic: &'static str| -> i16 {
        let r: ProduceResponse = raw.call(
            ApiKey::Produce,
            9,
            &ProduceRequest::default()
                .with_acks(1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_static_str(topic)))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(bytes::Bytes::new()))])]),
        );
        r.responses[0].partition_responses[0].error_code
    };
    // Committed by the quorum, applied on broker 3 within moments.
    common::wait_for(Duration::from_secs(10), "broker 3 denies the write", || {
        (produce(&mut three, "no-writes") == 29).then_some(())
    });
    // The topic now has an ACL, none allowing DESCRIBE: the StandardAuthorizer's default is
    // deny for it (allow.everyone.if.no.acl.found covers only resources without any ACL),
    // while a topic without ACLs stays open.
    let m: MetadataResponse = three.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("no-writes")))),
        ])),
    );
    assert_eq!(m.topics[0].error_code, 29, "{m:?}");
    assert_ne!(produce(&mut three, "other-topic"), 29);
}
