//! `strom`: parse CLI and config, start tracing, run the broker until SIGINT/SIGTERM.

use std::process::ExitCode;
use std::time::Instant;

use strom::broker::Broker;
use strom::config::BrokerConfig;
use strom::tasks::{self, Supervision};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// How long a stopping cluster node waits for its leaderships to move.
const CONTROLLED_SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a cluster node waits at start for a quorum (a majority of the voters up).
const CLUSTER_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

fn main() -> ExitCode {
    let config = match BrokerConfig::from_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strom: {e}");
            return ExitCode::from(2);
        }
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_json {
        logs.json().flatten_event(true).init();
    } else {
        logs.init();
    }
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
    let broker = if config.cluster.is_multi_node(config.node_id) {
        // Waits for a majority of the voters to be up (they may start in any order).
        Broker::open_cluster(config, CLUSTER_START_TIMEOUT).await?
    } else {
        tokio::task::spawn_blocking(move || Broker::open(config)).await??
    };
    // Every client listener, bound before anything is served (a bad keystore or a taken port
    // stops start-up with its name). Configs built without `listeners` serve `listen`.
    let mut listeners = Vec::new();
    let specs = broker.config.client_listeners.clone();
    if specs.is_empty() {
        let l = strom::server::bind(listen, broker.config.listen_backlog)
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        listeners.push((
            strom::security::Endpoint::plaintext(&broker.config.client_listener_name),
            l,
        ));
    }
    for spec in &specs {
        let endpoint = strom::security::Endpoint::build(spec).map_err(|e| anyhow::anyhow!(e))?;
        let l = strom::server::bind(spec.bind, broker.config.listen_backlog).map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} (listener {}): {e}",
                spec.bind,
                spec.name
            )
        })?;
        listeners.push((endpoint, l));
    }
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
    broker
        .load_transactions()
        .await
        .map_err(|e| anyhow::anyhow!("cannot load transactions: {e}"))?;
    let tasks = tasks::spawn_background(broker.clone(), shutdown.clone(), Supervision::default());
    if broker.is_cluster() {
        // Clients connecting meanwhile wait in the listen backlog.
        broker.wait_unfenced(CLUSTER_START_TIMEOUT).await?;
    }
    let served: Vec<String> = if specs.is_empty() {
        vec![format!("PLAINTEXT://{listen}")]
    } else {
        specs
            .iter()
            .map(|l| format!("{}://{} ({})", l.name, l.bind, l.protocol.name()))
            .collect()
    };
    info!(listeners = %served.join(", "), data = %broker.config.log_dir.display(), startup_ms = started.elapsed().as_millis() as u64, "Strom is serving Kafka clients");
    // Logs recovered, coordinators loaded, the client listener bound.
    health.set_ready();
    let signals = shutdown.clone();
    let stopping = health.clone();
    let leaving = broker.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutdown requested");
        stopping.set_not_ready("shutting down");
        if leaving.is_cluster() {
            // Hand the leaderships over before the listener closes.
            match leaving
                .controlled_shutdown(CONTROLLED_SHUTDOWN_TIMEOUT)
                .await
            {
                Ok(()) => info!("controlled shutdown: leaderships moved"),
                Err(e) => warn!(error = %e, "controlled shutdown incomplete"),
            }
        }
        signals.cancel();
    });
    strom::server::serve_all(broker.clone(), listeners, shutdown).await;
    // Supervisors end with the shutdown token; one that cancelled it reports why.
    let failed = match tokio::time::timeout(tasks::JOIN_TIMEOUT, tasks.join()).await {
        Ok(r) => r.err(),
        Err(_) => {
            warn!(
                "background tasks did not stop within {:?}",
                tasks::JOIN_TIMEOUT
            );
            None
        }
    };
    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.close()).await?;
    if let Some(e) = failed {
        return Err(anyhow::anyhow!("stopped because {e}"));
    }
    info!("stopped cleanly");
    Ok(())
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
