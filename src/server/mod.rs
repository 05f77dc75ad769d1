//! Network front end: an accept loop per client listener, TLS handshakes on TLS listeners,
//! connection limits and graceful shutdown. Each connection runs in its own task
//! ([`connection`]); SASL listeners authenticate first ([`authenticate`]).

pub mod authenticate;
pub mod connection;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::broker::Broker;
use crate::security::{Endpoint, Principal, Session};

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

/// Serves Kafka clients on one PLAINTEXT `listener` (named as the broker's own listener)
/// until `shutdown` is cancelled. See [`serve_all`].
pub async fn serve(broker: Arc<Broker>, listener: TcpListener, shutdown: CancellationToken) {
    let endpoint = Endpoint::plaintext(&broker.config.client_listener_name);
    serve_all(broker, vec![(endpoint, listener)], shutdown).await
}

/// How often TLS keystore files are checked for a new certificate.
const TLS_RELOAD_CHECK: Duration = Duration::from_secs(10);

/// Serves Kafka clients on every listener until `shutdown` is cancelled, then waits (bounded)
/// for in-flight requests to finish. `max.connections` and `queued.max.request.bytes` are
/// shared by all listeners.
pub async fn serve_all(
    broker: Arc<Broker>,
    listeners: Vec<(Arc<Endpoint>, TcpListener)>,
    shutdown: CancellationToken,
) {
    let connections = Arc::new(Semaphore::new(broker.config.max_connections));
    let kib =
        (broker.config.queued_max_request_bytes / 1024).clamp(1, u32::MAX as usize >> 4) as u32;
    let limits = Arc::new(ServerLimits {
        request_bytes: Arc::new(Semaphore::new(kib as usize)),
        request_kib_total: kib,
    });
    let tracker = TaskTracker::new();
    let mut accepting = Vec::new();
    for (endpoint, listener) in listeners {
        if endpoint.tls.is_some() {
            tokio::spawn(reload_certificates(endpoint.clone(), shutdown.clone()));
        }
        accepting.push(tokio::spawn(accept_loop(
            broker.clone(),
            endpoint,
            listener,
            connections.clone(),
            limits.clone(),
            tracker.clone(),
            shutdown.clone(),
        )));
    }
    for a in accepting {
        let _ = a.await;
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

async fn accept_loop(
    broker: Arc<Broker>,
    endpoint: Arc<Endpoint>,
    listener: TcpListener,
    connections: Arc<Semaphore>,
    limits: Arc<ServerLimits>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
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
        let endpoint = endpoint.clone();
        let open = crate::metrics::global().connections.get_or_create_owned(
            &crate::metrics::ListenerLabels {
                listener: endpoint.name.clone(),
            },
        );
        open.inc();
        tracker.spawn(async move {
            match &endpoint.tls {
                None => {
                    let session = Session::anonymous(endpoint.clone());
                    connection::run(stream, peer, broker, limits, shutdown, session).await;
                }
                Some(tls) => {
                    serve_tls(stream, peer, tls, &endpoint, broker, limits, shutdown).await
                }
            }
            open.dec();
            drop(permit);
        });
    }
}

/// A connection on a TLS listener: the handshake (bounded by
/// `strom.request.receive.timeout.ms`), the principal of the client certificate, then the
/// connection itself over TLS. Every refusal is an audit line.
async fn serve_tls(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: &crate::security::tls::Tls,
    endpoint: &Arc<Endpoint>,
    broker: Arc<Broker>,
    limits: Arc<ServerLimits>,
    shutdown: CancellationToken,
) {
    let refused = |reason: &str| {
        crate::security::audit_failure(&endpoint.name, peer, "SSL", reason);
    };
    let wait = Duration::from_millis(broker.config.request_receive_timeout_ms);
    // A TLS connection opens with a handshake record (content type 22): a plaintext Kafka
    // request or other garbage is turned away at its first byte, not after waiting for a
    // record length it made up.
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(wait, stream.peek(&mut first)).await;
    if !matches!(peeked, Ok(Ok(1))) || first[0] != 0x16 {
        return refused("not a TLS handshake");
    }
    let tls_stream = match tokio::time::timeout(wait, tls.acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return refused(&format!("TLS handshake failed: {e}")),
        Err(_) => return debug!(%peer, "TLS handshake timed out"),
    };
    let principal = match tls_principal(endpoint, &tls_stream) {
        Ok(p) => p,
        Err(why) => return refused(&why),
    };
    if principal != Principal::anonymous() {
        crate::security::audit_success(&endpoint.name, peer, "SSL", &principal);
    }
    let session = Arc::new(Session {
        endpoint: endpoint.clone(),
        principal,
    });
    connection::run(tls_stream, peer, broker, limits, shutdown, session).await;
}

/// The principal of a TLS connection: its client certificate's DN mapped by
/// `ssl.principal.mapping.rules` on an SSL listener; ANONYMOUS without a certificate (and on
/// SASL_SSL, where SASL names the principal).
fn tls_principal(
    endpoint: &Endpoint,
    stream: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
) -> Result<Principal, String> {
    let (_, conn) = stream.get_ref();
    let Some(tls) = &endpoint.tls else {
        return Ok(Principal::anonymous());
    };
    if endpoint.protocol.sasl() {
        return Ok(Principal::anonymous());
    }
    let Some(cert) = conn.peer_certificates().and_then(|c| c.first()) else {
        return Ok(Principal::anonymous());
    };
    let dn = crate::security::principal::subject_dn(cert)?;
    let name = tls
        .mapper
        .name(&dn)
        .ok_or_else(|| format!("no ssl.principal.mapping.rules rule applies to {dn}"))?;
    Ok(Principal::user(name))
}

/// Re-reads a TLS listener's keystore when its file changes (see [`crate::security::tls`]).
async fn reload_certificates(endpoint: Arc<Endpoint>, shutdown: CancellationToken) {
    let Some(tls) = &endpoint.tls else { return };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TLS_RELOAD_CHECK) => {}
            _ = shutdown.cancelled() => return,
        }
        match tls.reload_if_changed() {
            Ok(true) => {
                info!(listener = %endpoint.name, "TLS keystore changed: new connections get the new certificate")
            }
            Ok(false) => {}
            Err(e) => {
                warn!(listener = %endpoint.name, error = %e, "TLS keystore changed but cannot be read; the previous certificate stays")
            }
        }
    }
}
