//! `strom`: parse CLI and config, start tracing, run the broker until SIGINT/SIGTERM.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use strom::broker::Broker;
use strom::config::BrokerConfig;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match BrokerConfig::from_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strom: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strom: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            eprintln!("strom: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    let listen = config.listen;
    let broker = tokio::task::spawn_blocking(move || Broker::open(config)).await??;
    let listener = strom::server::bind(listen, broker.config.listen_backlog)
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    info!(addr = %listen, data = %broker.config.log_dir.display(), startup_ms = started.elapsed().as_millis() as u64, "Strom is serving Kafka clients");
    let shutdown = CancellationToken::new();
    let health = strom::admin_http::Health::starting("loading transactions");
    if let Some(admin) = strom::admin_http::bind(&broker)? {
        tokio::spawn(strom::admin_http::serve(
            admin,
            broker.clone(),
            health.clone(),
            shutdown.clone(),
        ));
    }
    spawn_maintenance(broker.clone(), shutdown.clone());
    tokio::spawn(broker.groups.clone().run_timers(shutdown.clone()));
    broker
        .load_transactions()
        .await
        .map_err(|e| anyhow::anyhow!("cannot load transactions: {e}"))?;
    tokio::spawn(broker.txns.clone().run_timers(shutdown.clone()));
    // Logs recovered, coordinators loaded, the client listener bound.
    health.set_ready();
    let signals = shutdown.clone();
    let stopping = health.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutdown requested");
        stopping.set_not_ready("shutting down");
        signals.cancel();
    });
    strom::server::serve(broker.clone(), listener, shutdown).await;
    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.close()).await?;
    info!("stopped cleanly");
    Ok(())
}

fn spawn_maintenance(broker: std::sync::Arc<Broker>, shutdown: CancellationToken) {
    let retention_every = Duration::from_millis(broker.config.retention_check_interval_ms);
    let flush_every = broker.config.flush_interval_ms;
    tokio::spawn(async move {
        let tick = retention_every
            .min(Duration::from_secs(5))
            .max(Duration::from_millis(10));
        let mut last_retention = Instant::now();
        let mut last_flush = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.cancelled() => return,
            }
            if last_retention.elapsed() >= retention_every {
                last_retention = Instant::now();
                let b = broker.clone();
                let _ =
                    tokio::task::spawn_blocking(move || b.run_maintenance(strom::log::now_ms()))
                        .await;
            }
            if (0..i64::MAX).contains(&flush_every)
                && last_flush.elapsed() >= Duration::from_millis(flush_every as u64)
            {
                last_flush = Instant::now();
                for p in broker.replicas.all() {
                    let end = p.log.log_end_offset();
                    let _ = p.log.flush_to(end).await;
                }
            }
        }
    });
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
