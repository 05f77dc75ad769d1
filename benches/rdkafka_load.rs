//! A small librdkafka load generator: the harness's second opinion next to Kafka's Java tools.
//!
//! Built as a bench target without a harness so it shares the crate's dev-dependencies
//! (`rdkafka`, built from source); `benches/run.sh` builds it with `cargo bench --no-run` and
//! runs the binary directly. Every mode prints one JSON object on stdout.
//!
//! ```text
//! rdkafka_load create    --brokers B --topic T --partitions N
//! rdkafka_load produce   --brokers B --topic T --records N [--size 1024] [--acks 1|all]
//!                        [--rate RECORDS_PER_S] [--linger-ms 5] [--batch-size 131072]
//! rdkafka_load consume   --brokers B --topic T --records N
//! rdkafka_load e2e       --brokers B --topic T --records N [--size 1024] [--acks 1|all]
//! rdkafka_load ready     --brokers B --topic T [--expect N] [--timeout-ms 120000]
//! ```
//! `produce` reports throughput and, per record, the time from `send` to its delivery report
//! (acknowledgement) in microseconds. `e2e` sends one record at a time and waits until a
//! consumer assigned to the partition receives it. `ready` polls until the topic's high
//! watermarks sum to at least `--expect` (a broker restarted after a crash is serving its log).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext as RdProducerContext,
};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::json;

struct Args(HashMap<String, String>);

impl Args {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut map = HashMap::new();
        let mut it = args.iter();
        while let Some(k) = it.next() {
            let Some(key) = k.strip_prefix("--") else {
                return Err(format!("unexpected argument {k}"));
            };
            let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            map.insert(key.to_string(), v.clone());
        }
        Ok(Args(map))
    }
    fn str(&self, k: &str) -> Result<String, String> {
        self.0
            .get(k)
            .cloned()
            .ok_or_else(|| format!("--{k} is required"))
    }
    fn num(&self, k: &str, default: Option<u64>) -> Result<u64, String> {
        match self.0.get(k) {
            Some(v) => v.parse().map_err(|_| format!("--{k}: not a number: {v}")),
            None => default.ok_or_else(|| format!("--{k} is required")),
        }
    }
}

/// Records send-to-acknowledgement latencies (µs) from librdkafka's delivery reports.
struct Ctx {
    start: Instant,
    latencies: Mutex<Vec<u32>>,
    acked: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Ctx {}

impl RdProducerContext for Ctx {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, sent_us: usize) {
        match result {
            Ok(_) => {
                let now = self.start.elapsed().as_micros() as usize;
                let lat = now.saturating_sub(sent_us).min(u32::MAX as usize) as u32;
                self.latencies.lock().expect("latency lock").push(lat);
                self.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

fn latency_json(mut lat: Vec<u32>) -> serde_json::Value {
    lat.sort_unstable();
    let avg = if lat.is_empty() {
        f64::NAN
    } else {
        lat.iter().map(|&x| x as f64).sum::<f64>() / lat.len() as f64
    };
    json!({
        "avg_us": avg,
        "p50_us": percentile(&lat, 50.0),
        "p99_us": percentile(&lat, 99.0),
        "p999_us": percentile(&lat, 99.9),
        "max_us": lat.last().copied().unwrap_or(0),
    })
}

fn producer_config(a: &Args) -> Result<ClientConfig, String> {
    let acks = a.0.get("acks").cloned().unwrap_or_else(|| "1".into());
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", a.str("brokers")?)
        .set("acks", &acks)
        .set("linger.ms", a.num("linger-ms", Some(5))?.to_string())
        .set(
            "batch.size",
            a.num("batch-size", Some(131_072))?.to_string(),
        )
        .set("queue.buffering.max.kbytes", "262144")
        .set("queue.buffering.max.messages", "1000000")
        .set("compression.type", "none")
        .set("enable.idempotence", "false");
    Ok(c)
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

fn produce(a: &Args) -> Result<serde_json::Value, String> {
    let topic = a.str("topic")?;
    let records = a.num("records", None)?;
    let size = a.num("size", Some(1024))? as usize;
    let rate = a.num("rate", Some(0))?;
    let ctx = Ctx {
        start: Instant::now(),
        latencies: Mutex::new(Vec::with_capacity(records as usize)),
        acked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    };
    let producer: BaseProducer<Ctx> = producer_config(a)?
        .create_with_context(ctx)
        .map_err(|e| format!("producer: {e}"))?;
    let body = payload(size);
    let start = producer.context().start;
    let mut sent = 0u64;
    while sent < records {
        if rate > 0 {
            let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
            let now = Instant::now();
            if due > now {
                producer.poll(Duration::ZERO);
                std::thread::sleep((due - now).min(Duration::from_millis(1)));
                continue;
            }
        }
        let now_us = start.elapsed().as_micros() as usize;
        let rec = BaseRecord::<(), [u8], usize>::with_opaque_to(&topic, now_us).payload(&body);
        match producer.send(rec) {
            Ok(()) => sent += 1,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(5));
                continue;
            }
            Err((e, _)) => return Err(format!("send: {e}")),
        }
        if sent.is_multiple_of(1024) {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(|e| format!("flush: {e}"))?;
    let elapsed = start.elapsed().as_secs_f64();
    let ctx = producer.context();
    let acked = ctx.acked.load(Ordering::Relaxed);
    let failed = ctx.failed.load(Ordering::Relaxed);
    let lat = std::mem::take(&mut *ctx.latencies.lock().expect("latency lock"));
    let bytes = acked as f64 * size as f64;
    Ok(json!({
        "mode": "produce",
        "records": acked,
        "failed": failed,
        "seconds": elapsed,
        "records_per_s": acked as f64 / elapsed,
        "mb_per_s": bytes / elapsed / 1e6,
        "latency": latency_json(lat),
    }))
}

fn partitions_of(
    client: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>, String> {
    let md = client
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("metadata: {e}"))?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or("topic missing from metadata")?;
    if let Some(e) = t.error() {
        return Err(format!("topic error {e:?}"));
    }
    Ok(t.partitions().iter().map(|p| p.id()).collect())
}

fn consumer(a: &Args) -> Result<BaseConsumer, String> {
    ClientConfig::new()
        .set("bootstrap.servers", a.str("brokers")?)
        .set("group.id", "rdkafka-load")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "1048576")
        .set("fetch.wait.max.ms", "100")
        .create()
        .map_err(|e| format!("consumer: {e}"))
}

fn consume(a: &Args) -> Result<serde_json::Value, String> {
    let topic = a.str("topic")?;
    let records = a.num("records", None)?;
    let c = consumer(a)?;
    let parts = partitions_of(&c, &topic, Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for p in parts {
        tpl.add_partition_offset(&topic, p, Offset::Beginning)
            .map_err(|e| format!("assign: {e}"))?;
    }
    c.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
    let start = Instant::now();
    let (mut got, mut bytes) = (0u64, 0u64);
    let mut last = Instant::now();
    while got < records {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                got += 1;
                bytes += m.payload_len() as u64;
                last = Instant::now();
            }
            Some(Err(e)) => return Err(format!("consume: {e}")),
            None if last.elapsed() > Duration::from_secs(15) => break,
            None => {}
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(json!({
        "mode": "consume",
        "records": got,
        "seconds": elapsed,
        "records_per_s": got as f64 / elapsed,
        "mb_per_s": bytes as f64 / elapsed / 1e6,
    }))
}

fn e2e(a: &Args) -> Result<serde_json::Value, String> {
    let topic = a.str("topic")?;
    let records = a.num("records", None)?;
    let size = a.num("size", Some(1024))? as usize;
    let mut pc = producer_config(a)?;
    pc.set("linger.ms", "0");
    let producer: BaseProducer = pc.create().map_err(|e| format!("producer: {e}"))?;
    let c = consumer(a)?;
    c.fetch_metadata(Some(&topic), Duration::from_secs(10))
        .map_err(|e| format!("metadata: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::End)
        .map_err(|e| format!("assign: {e}"))?;
    c.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
    // Let the consumer resolve its position before timing starts.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(500) {
        let _ = c.poll(Duration::from_millis(50));
    }
    let body = payload(size);
    let mut lat = Vec::with_capacity(records as usize);
    for i in 0..records {
        let t = Instant::now();
        let rec = BaseRecord::<(), [u8]>::to(&topic)
            .payload(&body)
            .partition(0);
        producer.send(rec).map_err(|(e, _)| format!("send: {e}"))?;
        producer.poll(Duration::ZERO);
        loop {
            match c.poll(Duration::from_millis(1)) {
                Some(Ok(_)) => break,
                Some(Err(e)) => return Err(format!("consume: {e}")),
                None if t.elapsed() > Duration::from_secs(10) => {
                    return Err(format!("record {i} not received within 10 s"))
                }
                None => producer.poll(Duration::ZERO),
            }
        }
        lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
    producer
        .flush(Duration::from_secs(10))
        .map_err(|e| format!("flush: {e}"))?;
    Ok(json!({ "mode": "e2e", "records": records, "latency": latency_json(lat) }))
}

fn create(a: &Args) -> Result<serde_json::Value, String> {
    let topic = a.str("topic")?;
    let partitions = a.num("partitions", None)? as i32;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", a.str("brokers")?)
        .create()
        .map_err(|e| format!("admin: {e}"))?;
    let start = Instant::now();
    let new = NewTopic::new(&topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
    let res = futures::executor::block_on(admin.create_topics([&new], &opts))
        .map_err(|e| format!("create_topics: {e}"))?;
    for r in res {
        if let Err((t, code)) = r {
            if code != RDKafkaErrorCode::TopicAlreadyExists {
                return Err(format!("create {t}: {code}"));
            }
        }
    }
    // Wait until metadata shows every partition with a leader.
    let c = consumer(a)?;
    loop {
        if let Ok(md) = c.fetch_metadata(Some(&topic), Duration::from_secs(5)) {
            let ok = md.topics().iter().any(|t| {
                t.name() == topic
                    && t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && t.partitions().iter().all(|p| p.leader() >= 0)
            });
            if ok {
                break;
            }
        }
        if start.elapsed() > Duration::from_secs(120) {
            return Err("topic not ready within 120 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(json!({ "mode": "create", "seconds": start.elapsed().as_secs_f64() }))
}

fn ready(a: &Args) -> Result<serde_json::Value, String> {
    let topic = a.str("topic")?;
    let expect = a.num("expect", Some(0))? as i64;
    let timeout = Duration::from_millis(a.num("timeout-ms", Some(120_000))?);
    let start = Instant::now();
    let c = consumer(a)?;
    loop {
        let attempt = (|| -> Result<i64, String> {
            let parts = partitions_of(&c, &topic, Duration::from_secs(2))?;
            let mut sum = 0;
            for p in parts {
                let (_, high) = c
                    .fetch_watermarks(&topic, p, Duration::from_secs(2))
                    .map_err(|e| e.to_string())?;
                sum += high;
            }
            Ok(sum)
        })();
        match attempt {
            Ok(sum) if sum >= expect => {
                return Ok(json!({
                    "mode": "ready",
                    "seconds": start.elapsed().as_secs_f64(),
                    "high_watermark_sum": sum,
                }))
            }
            _ if start.elapsed() > timeout => {
                return Err(format!("not ready within {timeout:?}: {attempt:?}"))
            }
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` runs every bench target with `--bench`: nothing to do without a mode.
    let Some(mode) = argv.first().filter(|m| !m.starts_with("--")) else {
        eprintln!(
            "rdkafka_load: driven by benches/run.sh (modes: create produce consume e2e ready)"
        );
        return ExitCode::SUCCESS;
    };
    let args: Vec<String> = argv[1..]
        .iter()
        .filter(|a| *a != "--bench")
        .cloned()
        .collect();
    let result = Args::parse(&args).and_then(|a| match mode.as_str() {
        "create" => create(&a),
        "produce" => produce(&a),
        "consume" => consume(&a),
        "e2e" => e2e(&a),
        "ready" => ready(&a),
        other => Err(format!("unknown mode {other}")),
    });
    match result {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rdkafka_load {mode}: {e}");
            ExitCode::FAILURE
        }
    }
}
