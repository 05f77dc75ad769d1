//! Network front end: the accept loop, connection limits and graceful shutdown.
//! Each connection runs in its own task ([`connection`]).

pub mod connection;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::broker::Broker;

/// Limits shared by all connections.
pub struct ServerLimits {
    /// `queued.max.request.bytes`, in KiB permits.
    pub request_bytes: Arc<Semaphore>,
    pub request_kib_total: u32,
}

/// Binds the client listener with `backlog` pending connections (the standard library and
/// tokio use 128, which a burst of reconnecting clients overflows: the kernel then drops their
/// handshakes or, with SYN cookies, resets them).
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Serves Kafka clients on `listener` until `shutdown` is cancelled, then waits (bounded) for
/// in-flight requests to finish.
pub async fn serve(broker: Arc<Broker>, listener: TcpListener, shutdown: CancellationToken) {
    let connections = Arc::new(Semaphore::new(broker.config.max_connections));
    let kib =
        (broker.config.queued_max_request_bytes / 1024).clamp(1, u32::MAX as usize >> 4) as u32;
    let limits = Arc::new(ServerLimits {
        request_bytes: Arc::new(Semaphore::new(kib as usize)),
        request_kib_total: kib,
    });
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            warn!(%peer, max = broker.config.max_connections, "max.connections reached; refusing connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let broker = broker.clone();
        let shutdown = shutdown.clone();
        let limits = limits.clone();
        let open = crate::metrics::global().connections.get_or_create_owned(
            &crate::metrics::ListenerLabels {
                listener: "PLAINTEXT".to_string(),
            },
        );
        open.inc();
        tracker.spawn(async move {
            connection::run(stream, peer, broker, limits, shutdown).await;
            open.dec();
            drop(permit);
        });
    }
    tracker.close();
    info!(
        connections = tracker.len(),
        "stopped accepting; waiting for in-flight requests"
    );
    if tokio::time::timeout(Duration::from_secs(15), tracker.wait())
        .await
        .is_err()
    {
        warn!("some connections did not finish within 15 s");
    }
}
