//! Writes the committed seed corpora: `cargo run --example gen_seeds` (from fuzz/).
//!
//! Real requests encoded with `kafka-protocol` and record batches built with
//! `strom::protocol::records`, in each target's input layout (see the targets' headers).
//! Deterministic: re-running rewrites the same bytes.

use std::io::Write;
use std::path::Path;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, MetadataRequest, ProduceRequest, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use strom::protocol::batch::HEADER_LEN;
use strom::protocol::records::{
    build_batch, build_batch_as, build_marker, BatchProducer, KeyValue,
};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    frame_seeds(&root.join("frame_and_header"));
    batch_seeds(&root.join("record_batch"));
    log_seeds(&root.join("log_append"));
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    std::fs::create_dir_all(dir).expect("corpus dir");
    let path = dir.join(format!("seed-{name}"));
    std::fs::write(&path, data).expect("write seed");
    println!("{} ({} bytes)", path.display(), data.len());
}

/// Header + body of one request (no size prefix).
fn request<T: Encodable>(key: ApiKey, version: i16, body: &T) -> Vec<u8> {
    let mut buf = BytesMut::new();
    body.encode(&mut buf, version).expect("body");
    request_bytes(key, version, &buf)
}

/// Header + an already encoded body.
fn request_bytes(key: ApiKey, version: i16, body: &[u8]) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("seed")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .expect("header");
    buf.extend_from_slice(body);
    buf.to_vec()
}

/// A body written by Kafka 4.4's Java client (tests/fixtures/wire).
fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/wire")
        .join(format!("{name}.hex"));
    let hex = std::fs::read_to_string(&path).expect("fixture");
    let hex = hex.trim();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn framed(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0u8]; // stream mode
    for f in frames {
        out.put_i32(f.len() as i32);
        out.extend_from_slice(f);
    }
    out
}

fn single(frame: &[u8]) -> Vec<u8> {
    [&[1u8][..], frame].concat() // single-frame mode: the prefix is computed
}

fn produce(records: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("seed-topic")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records.into()))])])
}

fn frame_seeds(dir: &Path) {
    let api_versions_v3 = request(
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("seed"))
            .with_client_software_version(StrBytes::from_static_str("1.0")),
    );
    let api_versions_v0 = request(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
    let metadata = |v: i16| {
        request(
            ApiKey::Metadata,
            v,
            &MetadataRequest::default()
                .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
                    TopicName(StrBytes::from_static_str("seed-topic")),
                ))]))
                .with_allow_auto_topic_creation(true),
        )
    };
    let recs: [KeyValue<'_>; 2] = [(Some(b"k"), Some(b"value-1")), (None, Some(b"value-2"))];
    let batch = build_batch(&recs, 1_700_000_000_000);
    let produce_v9 = request(ApiKey::Produce, 9, &produce(batch.clone()));
    let produce_v3 = request(ApiKey::Produce, 3, &produce(batch));

    write(dir, "api-versions-v3", &single(&api_versions_v3));
    write(dir, "metadata-v12", &single(&metadata(12)));
    write(dir, "produce-v9", &single(&produce_v9));
    write(
        dir,
        "stream",
        &framed(&[api_versions_v0, metadata(1), produce_v3]),
    );
    // ShareFetch / ShareAcknowledge v2 (protocol::share): the Java 4.4 client's bodies.
    for (name, key) in [
        ("share_fetch_v2_request", ApiKey::ShareFetch),
        ("share_acknowledge_v2_request", ApiKey::ShareAcknowledge),
    ] {
        let body = fixture(name);
        write(dir, &name.replace('_', "-"), &single(&request_bytes(key, 2, &body)));
    }
    // ApiVersions at a version we do not serve: the v0-layout fallback.
    let mut unsupported = api_versions_v3.clone();
    unsupported[2..4].copy_from_slice(&99i16.to_be_bytes());
    write(dir, "api-versions-v99", &framed(&[unsupported]));
    // Metadata v4 whose topics array claims 2^31-1 elements in a 4-byte body: kafka-protocol
    // asks for tens of GiB up front; strom's allocator must make that harmless.
    let mut header = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(4)
        .with_correlation_id(7)
        .encode(&mut header, ApiKey::Metadata.request_header_version(4))
        .expect("header");
    let mut bomb = header.to_vec();
    bomb.put_i32(i32::MAX);
    write(dir, "huge-array", &single(&bomb));
}

/// A batch whose records section is compressed with `codec` (CRC recomputed).
fn compressed(batch: &[u8], codec: i16) -> Vec<u8> {
    let records = &batch[HEADER_LEN..];
    let body = match codec {
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(records).expect("gzip");
            e.finish().expect("gzip")
        }
        2 => snap::raw::Encoder::new()
            .compress_vec(records)
            .expect("snappy"),
        3 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(records).expect("lz4");
            e.finish().expect("lz4")
        }
        4 => zstd::encode_all(records, 3).expect("zstd"),
        _ => records.to_vec(),
    };
    let mut out = batch[..HEADER_LEN].to_vec();
    out.extend_from_slice(&body);
    let len = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&len.to_be_bytes());
    let attrs = i16::from_be_bytes([out[21], out[22]]) | codec;
    out[21..23].copy_from_slice(&attrs.to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

fn sample_batch(n: usize, ts: i64) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("value-{i}-{}", "x".repeat(i % 7)).into_bytes())
        .collect();
    let recs: Vec<KeyValue<'_>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                if i % 2 == 0 { Some(&b"key"[..]) } else { None },
                Some(&v[..]),
            )
        })
        .collect();
    build_batch(&recs, ts)
}

fn batch_seeds(dir: &Path) {
    let a = sample_batch(3, 1000);
    let b = sample_batch(1, 2000);
    write(dir, "two-batches", &[&[0u8][..], &a, &b].concat());
    for (codec, name) in [(1, "gzip"), (2, "snappy"), (3, "lz4"), (4, "zstd")] {
        // flags: bit 0 fixes CRCs after mutation, bit 1 + codec bits also run the raw
        // decompressor on the data.
        let flags = 1u8;
        write(dir, name, &[&[flags][..], &compressed(&a, codec)].concat());
    }
    write(
        dir,
        "marker",
        &[&[1u8][..], &build_marker(42, 1, true, 0, 3000)].concat(),
    );
    let raw_gzip = compressed(&a, 1);
    write(
        dir,
        "raw-gzip",
        &[&[2u8 | (1 << 2)][..], &raw_gzip[HEADER_LEN..]].concat(),
    );
}

fn appends(flags: u8, chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![flags];
    for c in chunks {
        out.put_u16(c.len() as u16);
        out.extend_from_slice(c);
    }
    out
}

fn log_seeds(dir: &Path) {
    let a = sample_batch(3, 1000);
    let b = sample_batch(2, 2000);
    write(
        dir,
        "plain",
        &appends(0, &[a.clone(), b.clone(), a.clone()]),
    );
    write(
        dir,
        "small-segments-log-append-time",
        &appends(
            1 | 2,
            &[a.clone(), b.clone(), [a.clone(), b.clone()].concat()],
        ),
    );
    write(
        dir,
        "gzip",
        &appends(4, &[compressed(&a, 1), compressed(&b, 4)]),
    );
    let recs: [KeyValue<'_>; 2] = [(Some(b"k"), Some(b"v")), (None, None)];
    let idem = |seq: i32| {
        build_batch_as(
            &recs,
            1000,
            BatchProducer {
                producer_id: 5,
                producer_epoch: 0,
                base_sequence: seq,
                transactional: false,
                control: false,
            },
        )
    };
    // Sequences 0, 0 (a retry: duplicate), 2, 5 (a gap: refused).
    write(
        dir,
        "idempotent",
        &appends(4, &[idem(0), idem(0), idem(2), idem(5)]),
    );
    let txn = build_batch_as(
        &recs,
        1000,
        BatchProducer {
            producer_id: 9,
            producer_epoch: 2,
            base_sequence: 0,
            transactional: true,
            control: false,
        },
    );
    write(
        dir,
        "transaction",
        &appends(4 | 8, &[txn, build_marker(9, 2, false, 0, 1001), a]),
    );
}
