//! The HTTP admin listener (`strom.admin.listener`, default 127.0.0.1:9644): `/metrics` in the
//! Prometheus/OpenMetrics text format ([`crate::metrics`]), `/health/live` and `/health/ready`
//! with JSON bodies. A deliberately small HTTP/1.1 server: GET only, one request per
//! connection (`Connection: close`), the request head bounded to 8 KiB and 5 s, at most 64
//! connections at once; anything else is answered 400/404/405 or the connection closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::metrics;

const MAX_HEAD: usize = 8 << 10;
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: usize = 64;

/// Why the broker is not ready yet (None once it is).
pub struct Health {
    not_ready: Mutex<Option<String>>,
}

impl Health {
    pub fn starting(reason: &str) -> Arc<Self> {
        Arc::new(Health {
            not_ready: Mutex::new(Some(reason.to_string())),
        })
    }

    pub fn set_not_ready(&self, reason: &str) {
        *self.not_ready.lock() = Some(reason.to_string());
    }

    pub fn set_ready(&self) {
        *self.not_ready.lock() = None;
    }
}

/// Binds the admin listener as configured: `Ok(None)` when disabled, or when the *default*
/// address is taken (logged: several brokers on one machine started from Kafka's property
/// names alone); an explicitly configured address that cannot be bound is an error.
pub fn bind(broker: &Broker) -> anyhow::Result<Option<std::net::TcpListener>> {
    let addr = broker.config.admin_listener.trim();
    if addr.is_empty() {
        return Ok(None);
    }
    let explicit = broker.config.explicit.contains_key("strom.admin.listener");
    let addr: SocketAddr = addr.parse()?;
    match std::net::TcpListener::bind(addr) {
        Ok(l) => {
            l.set_nonblocking(true)?;
            Ok(Some(l))
        }
        Err(e) if !explicit => {
            tracing::warn!(%addr, error = %e, "the default admin listener address is taken: serving Kafka clients without /metrics and /health (set strom.admin.listener)");
            Ok(None)
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot listen on strom.admin.listener {addr}: {e}"
        )),
    }
}

/// Serves the admin endpoints until `shutdown`.
pub async fn serve(
    listener: std::net::TcpListener,
    broker: Arc<Broker>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        tracing::warn!("admin listener could not be registered");
        return;
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin listener serving /metrics, /health/live, /health/ready");
    }
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue; // dropped: too many admin connections at once
        };
        let broker = broker.clone();
        let health = health.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(HEAD_TIMEOUT * 2, answer(stream, &broker, &health)).await;
            drop(permit);
        });
    }
}

async fn answer(mut stream: TcpStream, broker: &Broker, health: &Health) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(HEAD_TIMEOUT, async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            head.extend_from_slice(&buf[..n]);
            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                return Ok(true);
            }
            if head.len() > MAX_HEAD {
                return Ok(false);
            }
        }
    })
    .await;
    if !matches!(read, Ok(Ok(true))) {
        return Ok(()); // incomplete, oversized or slow: closed without an answer
    }
    let line = head
        .split(|b| *b == b'\r')
        .next()
        .map(|l| String::from_utf8_lossy(l).to_string())
        .unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = if method != "GET" {
        (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_string(),
        )
    } else {
        route(path, broker, health)
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn route(path: &str, broker: &Broker, health: &Health) -> (&'static str, &'static str, String) {
    const JSON: &str = "application/json";
    match path {
        "/metrics" => {
            refresh(broker);
            (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                metrics::global().encode(),
            )
        }
        "/health/live" => ("200 OK", JSON, "{\"status\":\"live\"}\n".to_string()),
        "/health/ready" => match health.not_ready.lock().clone() {
            None => ("200 OK", JSON, "{\"status\":\"ready\"}\n".to_string()),
            Some(reason) => (
                "503 Service Unavailable",
                JSON,
                format!(
                    "{{\"status\":\"not ready\",\"reason\":{}}}\n",
                    serde_json::Value::String(reason)
                ),
            ),
        },
        _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
    }
}

/// The metrics computed at scrape time: partition count and consumer-group lag.
fn refresh(broker: &Broker) {
    let m = metrics::global();
    let partitions = broker.replicas.all();
    m.partitions.set(partitions.len() as i64);
    m.group_lag.clear();
    if !broker.groups.is_loaded() {
        return;
    }
    let mut series = 0;
    'groups: for g in broker.groups.list() {
        let Ok(offsets) = broker.groups.fetch_offsets(&g.group_id, None) else {
            continue;
        };
        for (topic, partition, value) in offsets {
            let (Some(v), Some(p)) = (value, broker.partition(&topic, partition)) else {
                continue;
            };
            if series >= metrics::MAX_LAG_SERIES {
                break 'groups;
            }
            series += 1;
            let lag = (p.high_watermark() - v.offset).max(0);
            m.group_lag
                .get_or_create(&metrics::LagLabels {
                    group: g.group_id.clone(),
                    topic,
                    partition: partition.to_string(),
                })
                .set(lag);
        }
    }
}
