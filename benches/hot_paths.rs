//! Criterion micro-benchmarks of Strom's produce/fetch hot paths.
//!
//! `cargo bench --bench hot_paths` (about a minute). Batches are uncompressed magic-2 batches of
//! 1 KiB records, the shape `kafka-producer-perf-test --record-size 1024` sends; 16 KiB is a
//! lightly loaded producer's batch, 128 KiB a full `batch.size=131072` one.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use strom::log::index::OffsetIndex;
use strom::log::{LogConfig, PartitionLog};
use strom::protocol::batch::{patch_base_offset, BatchView};

const RECORD: usize = 1024;

fn zigzag(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// A valid uncompressed magic-2 batch holding `count` records of `value_len` bytes each.
fn make_batch(count: usize, value_len: usize) -> Vec<u8> {
    let value: Vec<u8> = (0..value_len).map(|i| (i * 31 % 251) as u8).collect();
    let mut records = Vec::with_capacity(count * (value_len + 16));
    for i in 0..count {
        let mut rec = Vec::with_capacity(value_len + 12);
        rec.push(0); // attributes
        zigzag(&mut rec, i as i64); // timestamp delta
        zigzag(&mut rec, i as i64); // offset delta
        zigzag(&mut rec, -1); // null key
        zigzag(&mut rec, value_len as i64);
        rec.extend_from_slice(&value);
        zigzag(&mut rec, 0); // no headers
        zigzag(&mut records, rec.len() as i64);
        records.extend_from_slice(&rec);
    }
    let ts: i64 = 1_700_000_000_000;
    let mut b = Vec::with_capacity(61 + records.len());
    b.extend_from_slice(&0i64.to_be_bytes()); // baseOffset
    let length = (61 - 12 + records.len()) as i32;
    b.extend_from_slice(&length.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
    b.push(2); // magic
    b.extend_from_slice(&[0; 4]); // crc, filled below
    b.extend_from_slice(&0i16.to_be_bytes()); // attributes
    b.extend_from_slice(&((count as i32) - 1).to_be_bytes()); // lastOffsetDelta
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&(ts + count as i64 - 1).to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producerId
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producerEpoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // baseSequence
    b.extend_from_slice(&(count as i32).to_be_bytes());
    b.extend_from_slice(&records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Records per batch for a batch of about `bytes` bytes.
fn records_for(bytes: usize) -> usize {
    (bytes / (RECORD + 10)).max(1)
}

fn batch_validation(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch");
    for &size in &[16 * 1024usize, 128 * 1024] {
        let b = make_batch(records_for(size), RECORD);
        g.throughput(Throughput::Bytes(b.len() as u64));
        g.bench_function(format!("parse_crc32c/{}KiB", size / 1024), |bench| {
            bench.iter(|| {
                let v = BatchView::parse(black_box(&b)).expect("valid batch");
                black_box(v.records_count())
            })
        });
        g.bench_function(format!("parse_header_only/{}KiB", size / 1024), |bench| {
            bench.iter(|| {
                let v = BatchView::parse_header(black_box(&b)).expect("valid header");
                black_box(v.records_count())
            })
        });
    }
    let mut b = make_batch(records_for(16 * 1024), RECORD);
    g.throughput(Throughput::Elements(1));
    let mut next = 0i64;
    g.bench_function("patch_base_offset", |bench| {
        bench.iter(|| {
            next += 15;
            patch_base_offset(black_box(&mut b), next);
        })
    });
    g.finish();
}

fn segment_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("log");
    for &size in &[16 * 1024usize, 128 * 1024] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(
            &dir.path().join("bench-0"),
            "bench-0",
            LogConfig::default(),
            strom::log::now_ms(),
        )
        .expect("open log");
        let b = make_batch(records_for(size), RECORD);
        g.throughput(Throughput::Bytes(b.len() as u64));
        // Keep the file small: truncate (untimed) every 64 MiB written, so the page cache,
        // not the disk, is what is measured, and the tempdir stays bounded.
        let per_truncate = (64 << 20) / b.len();
        g.bench_function(format!("append/{}KiB", size / 1024), |bench| {
            bench.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut done = 0u64;
                while done < iters {
                    let n = (iters - done).min(per_truncate as u64);
                    let t = Instant::now();
                    for _ in 0..n {
                        let info = log.append(&b, 0, 0).expect("append");
                        black_box(info.last_offset);
                    }
                    spent += t.elapsed();
                    done += n;
                    log.truncate_to(0).expect("truncate");
                }
                spent
            })
        });
    }
    g.finish();
}

fn index_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("index");
    // A full 1 GiB segment indexed every 4 KiB of 16 KiB batches (15 records each).
    let mut idx = OffsetIndex::default();
    let entries = (1u32 << 30) / (16 * 1024);
    for i in 0..entries {
        idx.push(i * 15, i * 16 * 1024);
    }
    let max = entries * 15;
    g.throughput(Throughput::Elements(1));
    let mut x = 0x9e37_79b9u32;
    g.bench_function(format!("offset_lookup/{entries}_entries"), |bench| {
        bench.iter(|| {
            // xorshift: a random offset per lookup, so branch prediction does not help.
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            black_box(idx.lookup(black_box(x % max)))
        })
    });
    g.finish();
}

fn fetch_read(c: &mut Criterion) {
    let mut g = c.benchmark_group("fetch");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::open(
        &dir.path().join("bench-0"),
        "bench-0",
        LogConfig::default(),
        strom::log::now_ms(),
    )
    .expect("open log");
    // 64 MiB of 16 KiB batches.
    let b = make_batch(records_for(16 * 1024), RECORD);
    let per_batch = records_for(16 * 1024) as i64;
    let batches = (64 << 20) / b.len();
    for _ in 0..batches {
        log.append(&b, 0, 0).expect("append");
    }
    let end = log.log_end_offset();
    let mut x = 0x2545_f491u64;
    let mut rand_offset = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % (end as u64 - 20 * per_batch as u64)) as i64
    };
    for &(label, max_bytes) in &[("1MiB", 1usize << 20), ("64KiB", 64 << 10)] {
        g.throughput(Throughput::Bytes(max_bytes as u64));
        g.bench_function(format!("read/{label}"), |bench| {
            bench.iter_batched(
                &mut rand_offset,
                |off| {
                    let r = log.read(off, max_bytes, end, true).expect("read");
                    black_box(r.data.len())
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .without_plots()
}

criterion_group! {
    name = hot_paths;
    config = config();
    targets = batch_validation, segment_append, index_lookup, fetch_read
}
criterion_main!(hot_paths);
