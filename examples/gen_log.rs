//! Writes a large clean log for start-up measurements (issue 12 #8):
//! `cargo run --release --example gen_log -- <data dir> <partitions> <GiB>`.
//! Creates topic `big` with `<partitions>` partitions and appends 32 KiB batches (32 records of
//! 1 KiB) round-robin until `<GiB>` are written, then closes the broker cleanly (flush, indexes).

use std::collections::BTreeMap;

use strom::broker::Broker;
use strom::config::BrokerConfig;
use strom::protocol::records::{build_batch, KeyValue};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, partitions, gib] = args.as_slice() else {
        anyhow::bail!("usage: gen_log <data dir> <partitions> <GiB>");
    };
    let partitions: i32 = partitions.parse()?;
    let total: u64 = gib.parse::<u64>()? << 30;
    let config = BrokerConfig {
        log_dir: dir.into(),
        ..BrokerConfig::default()
    };
    let broker = Broker::open(config)?;
    if broker.metadata.topic("big").is_none() {
        broker
            .create_topic("big", Some(partitions), None, BTreeMap::new(), false)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let value = vec![b'v'; 1000];
    let keys: Vec<String> = (0..32).map(|i| format!("key-{i:04}")).collect();
    let records: Vec<KeyValue<'_>> = keys
        .iter()
        .map(|k| (Some(k.as_bytes()), Some(value.as_slice())))
        .collect();
    let batch = build_batch(&records, strom::log::now_ms());
    let logs: Vec<_> = (0..partitions)
        .map(|p| broker.partition("big", p).expect("partition").log.clone())
        .collect();
    let mut written = 0u64;
    let mut i = 0usize;
    while written < total {
        logs[i % logs.len()].append(&batch, 0, strom::log::now_ms())?;
        written += batch.len() as u64;
        i += 1;
    }
    broker.close();
    println!(
        "wrote {written} bytes in {i} batches of {} bytes",
        batch.len()
    );
    Ok(())
}
