//! A share consumer over the wire for integration tests: one connection per consumer (its
//! share session), ShareGroupHeartbeat / ShareFetch / ShareAcknowledge v1 through the
//! `kafka-protocol` crate, and a connection that may fail (the broker can be killed under it).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use kafka_protocol::messages::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AckBatch,
};
use kafka_protocol::messages::share_fetch_request::{
    AcknowledgementBatch, FetchPartition, FetchTopic,
};
use kafka_protocol::messages::{
    ApiKey, GroupId, ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest,
    ShareFetchResponse, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

pub const ACCEPT: i8 = 1;
pub const RELEASE: i8 = 2;
pub const REJECT: i8 = 3;

/// One connection that can fail (the broker may be killed under it).
pub struct Conn {
    pub s: TcpStream,
    pub corr: i32,
}

impl Conn {
    pub fn open(port: u16) -> Option<Conn> {
        let s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))
            .ok()?;
        s.set_read_timeout(Some(Duration::from_secs(15))).ok()?;
        Some(Conn { s, corr: 0 })
    }

    pub fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> Option<Resp> {
        use bytes::{BufMut, BytesMut};
        use kafka_protocol::messages::{RequestHeader, ResponseHeader};
        self.corr += 1;
        let mut body = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.corr)
            .with_client_id(Some(StrBytes::from_static_str("share-test")))
            .encode(&mut body, key.request_header_version(version))
            .ok()?;
        req.encode(&mut body, version).ok()?;
        let mut frame = BytesMut::new();
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        self.s.write_all(&frame).ok()?;
        let mut len = [0u8; 4];
        self.s.read_exact(&mut len).ok()?;
        let len = i32::from_be_bytes(len) as usize;
        let mut buf = vec![0u8; len];
        self.s.read_exact(&mut buf).ok()?;
        let mut b = bytes::Bytes::from(buf);
        let h = ResponseHeader::decode(&mut b, key.response_header_version(version)).ok()?;
        (h.correlation_id == self.corr).then_some(())?;
        Resp::decode(&mut b, version).ok()
    }
}

/// A share consumer over one connection (its share session).
pub struct Member {
    pub conn: Conn,
    pub group: String,
    pub id: String,
    pub epoch: i32,
    pub topic: Uuid,
    pub partitions: Vec<i32>,
    pub max_records: i32,
}

/// (partition, first, last, delivery count) of each acquired range.
pub type Acquired = Vec<(i32, i64, i64, i16)>;

impl Member {
    pub fn join(
        port: u16,
        group: &str,
        id: &str,
        topic_name: &str,
        topic: Uuid,
        partitions: Vec<i32>,
    ) -> Option<Member> {
        let mut conn = Conn::open(port)?;
        let hb: ShareGroupHeartbeatResponse = conn.call(
            ApiKey::ShareGroupHeartbeat,
            1,
            &ShareGroupHeartbeatRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.into())))
                .with_member_id(StrBytes::from_string(id.into()))
                .with_member_epoch(0)
                .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_string(
                    topic_name.into(),
                ))])),
        )?;
        (hb.error_code == 0).then_some(())?;
        Some(Member {
            conn,
            group: group.into(),
            id: id.into(),
            epoch: 0,
            topic,
            partitions,
            max_records: 200,
        })
    }

    /// A ShareFetch carrying `acks` (partition -> (first, last, type)); returns the response.
    pub fn fetch(
        &mut self,
        acks: &BTreeMap<i32, Vec<(i64, i64, i8)>>,
        max_wait_ms: i32,
    ) -> Option<ShareFetchResponse> {
        let partitions = self
            .partitions
            .iter()
            .map(|p| {
                FetchPartition::default()
                    .with_partition_index(*p)
                    .with_acknowledgement_batches(
                        acks.get(p)
                            .map(|v| {
                                v.iter()
                                    .map(|(f, l, t)| {
                                        AcknowledgementBatch::default()
                                            .with_first_offset(*f)
                                            .with_last_offset(*l)
                                            .with_acknowledge_types(vec![*t])
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                    )
            })
            .collect();
        let req = ShareFetchRequest::default()
            .with_group_id(Some(GroupId(StrBytes::from_string(self.group.clone()))))
            .with_member_id(Some(StrBytes::from_string(self.id.clone())))
            .with_share_session_epoch(self.epoch)
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_max_records(self.max_records)
            .with_batch_size(self.max_records)
            .with_topics(vec![FetchTopic::default()
                .with_topic_id(self.topic)
                .with_partitions(partitions)]);
        let r: ShareFetchResponse = self.conn.call(ApiKey::ShareFetch, 1, &req)?;
        if r.error_code == 0 {
            self.epoch = if self.epoch == i32::MAX {
                1
            } else {
                self.epoch + 1
            };
        }
        Some(r)
    }

    pub fn acknowledge(
        &mut self,
        partition: i32,
        batches: &[(i64, i64, i8)],
    ) -> Option<ShareAcknowledgeResponse> {
        let req = ShareAcknowledgeRequest::default()
            .with_group_id(Some(GroupId(StrBytes::from_string(self.group.clone()))))
            .with_member_id(Some(StrBytes::from_string(self.id.clone())))
            .with_share_session_epoch(self.epoch)
            .with_topics(vec![AcknowledgeTopic::default()
                .with_topic_id(self.topic)
                .with_partitions(vec![AcknowledgePartition::default()
                    .with_partition_index(partition)
                    .with_acknowledgement_batches(
                        batches
                            .iter()
                            .map(|(f, l, t)| {
                                AckBatch::default()
                                    .with_first_offset(*f)
                                    .with_last_offset(*l)
                                    .with_acknowledge_types(vec![*t])
                            })
                            .collect(),
                    )])]);
        let r: ShareAcknowledgeResponse = self.conn.call(ApiKey::ShareAcknowledge, 1, &req)?;
        if r.error_code == 0 {
            self.epoch += 1;
        }
        Some(r)
    }
}

pub fn acquired(r: &ShareFetchResponse) -> Acquired {
    let mut out = Vec::new();
    for t in &r.responses {
        for p in &t.partitions {
            for a in &p.acquired_records {
                out.push((
                    p.partition_index,
                    a.first_offset,
                    a.last_offset,
                    a.delivery_count,
                ));
            }
        }
    }
    out
}

pub fn ack_codes(r: &ShareFetchResponse) -> BTreeMap<i32, i16> {
    r.responses
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.partition_index, p.acknowledge_error_code))
        })
        .collect()
}

/// Produces `n` records (`v0`, `v1`, ...) with acks=all, record i to partition i mod
/// `partitions`, in small batches (a share fetch acquires whole batches).
pub fn produce_round_robin(client: rdkafka::ClientConfig, topic: &str, partitions: i32, n: usize) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let p: BaseProducer = client
        .clone()
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10")
        .create()
        .expect("producer");
    for i in 0..n {
        let v = format!("v{i}");
        let mut rec = BaseRecord::<(), String>::to(topic)
            .payload(&v)
            .partition((i % partitions as usize) as i32);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    p.poll(Duration::from_millis(10));
                }
            }
        }
    }
    p.flush(Duration::from_secs(60)).expect("flush");
}

/// Sets group configs of `group` (IncrementalAlterConfigs, resource type GROUP) on the broker
/// at `port`.
pub fn group_configs(port: u16, group: &str, configs: &[(&str, &str)]) {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::{
        IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    };
    let mut raw = super::RawClient::connect(port);
    let r: IncrementalAlterConfigsResponse = raw.call(
        ApiKey::IncrementalAlterConfigs,
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(32)
                .with_resource_name(StrBytes::from_string(group.to_string()))
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            AlterableConfig::default()
                                .with_name(StrBytes::from_string(k.to_string()))
                                .with_config_operation(0)
                                .with_value(Some(StrBytes::from_string(v.to_string())))
                        })
                        .collect(),
                ),
        ]),
    );
    assert_eq!(
        r.responses[0].error_code, 0,
        "{:?}",
        r.responses[0].error_message
    );
}
