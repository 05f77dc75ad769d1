//! One client connection: bounded framing, pipelined requests, responses in request order.
//!
//! The reader decodes each frame and runs its handler to the point where order matters (a
//! produce is appended before the next request is read). What remains — waiting for an fsync,
//! a long-poll fetch — is a deferred reply queued to the writer, which writes replies strictly
//! in request order. The queue is bounded (`strom.max.inflight.requests.per.connection`) and
//! request bytes are charged against the broker-wide `queued.max.request.bytes` until their
//! response is written, so a client that pipelines without reading stalls only itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::broker::Broker;
use crate::handlers::{self, Reply, RequestContext};
use crate::protocol::{self, HeaderPrefix, ProtocolError};
use crate::server::ServerLimits;

enum Outgoing {
    Ready(BytesMut, Option<OwnedSemaphorePermit>),
    Deferred(
        BoxFuture<'static, Result<BytesMut, ProtocolError>>,
        Option<OwnedSemaphorePermit>,
    ),
    /// Close the connection after everything before it was written (acks=0 produce errors).
    Close,
}

pub async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    limits: Arc<ServerLimits>,
    shutdown: CancellationToken,
) {
    debug!(%peer, "connection opened");
    let (mut rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Outgoing>(broker.config.max_inflight_requests_per_connection);
    let writer = tokio::spawn(write_loop(wr, rx, peer));
    let max_frame = broker.config.socket_request_max_bytes;
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    'conn: loop {
        // Handle every complete frame already buffered.
        loop {
            let len = match protocol::check_frame(&buf, max_frame) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    warn!(%peer, error = %e, "closing connection: bad frame");
                    break 'conn;
                }
            };
            if buf.len() < 4 + len {
                buf.reserve(4 + len - buf.len());
                break;
            }
            let permit = acquire_request_bytes(&limits, len).await;
            let mut frame = buf.split_to(4 + len).freeze();
            let _ = frame.split_to(4);
            match handle_frame(&broker, peer, frame).await {
                Ok(Some(Reply::Now(resp))) => {
                    if tx.send(Outgoing::Ready(resp, permit)).await.is_err() {
                        break 'conn;
                    }
                }
                Ok(Some(Reply::Later(fut))) => {
                    if tx.send(Outgoing::Deferred(fut, permit)).await.is_err() {
                        break 'conn;
                    }
                }
                Ok(Some(Reply::None)) | Ok(None) => {}
                Ok(Some(Reply::NoneThenClose)) => {
                    let _ = tx.send(Outgoing::Close).await;
                    break 'conn;
                }
                Err(e) => {
                    warn!(%peer, error = %e, "closing connection");
                    break 'conn;
                }
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        let read = tokio::select! {
            r = tokio::time::timeout(idle, rd.read_buf(&mut buf)) => r,
            _ = shutdown.cancelled() => break,
        };
        match read {
            Ok(Ok(0)) => break,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "read error");
                break;
            }
            Err(_) => {
                debug!(%peer, "closing idle connection (connections.max.idle.ms)");
                break;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
    debug!(%peer, "connection closed");
}

async fn acquire_request_bytes(limits: &ServerLimits, len: usize) -> Option<OwnedSemaphorePermit> {
    let kib = (len.div_ceil(1024) as u32).clamp(1, limits.request_kib_total);
    limits
        .request_bytes
        .clone()
        .acquire_many_owned(kib)
        .await
        .ok()
}

/// Decodes the header and dispatches. `Ok(None)` means nothing to send.
async fn handle_frame(
    broker: &Arc<Broker>,
    peer: SocketAddr,
    mut frame: Bytes,
) -> Result<Option<Reply>, ProtocolError> {
    let prefix = HeaderPrefix::peek(&frame).ok_or(ProtocolError::UnknownApiKey(-1))?;
    let key = ApiKey::try_from(prefix.api_key)
        .map_err(|_| ProtocolError::UnknownApiKey(prefix.api_key))?;
    let Some(spec) = handlers::spec(key) else {
        return Err(ProtocolError::UnknownApiKey(prefix.api_key));
    };
    if prefix.api_version < spec.min || prefix.api_version > spec.max {
        if key == ApiKey::ApiVersions {
            return Ok(Some(Reply::Now(protocol::api_versions_fallback(
                prefix.correlation_id,
                &handlers::advertised(),
            ))));
        }
        return Err(ProtocolError::UnsupportedVersion {
            key,
            version: prefix.api_version,
        });
    }
    let header = protocol::decode_header(&mut frame, key, prefix.api_version)?;
    let ctx = RequestContext {
        broker: broker.clone(),
        api_key: key,
        version: prefix.api_version,
        header,
        peer,
    };
    let corr = prefix.correlation_id;
    let version = prefix.api_version;
    let reply = handlers::dispatch(ctx, frame).await?;
    Ok(Some(match reply {
        Reply::Now(body) => Reply::Now(protocol::frame_response(key, version, corr, body)?),
        Reply::Later(fut) => Reply::Later(Box::pin(async move {
            let body = fut.await?;
            protocol::frame_response(key, version, corr, body)
        })),
        other => other,
    }))
}

async fn write_loop(wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Outgoing>, peer: SocketAddr) {
    let mut wr = BufWriter::with_capacity(64 * 1024, wr);
    while let Some(out) = rx.recv().await {
        let (bytes, permit) = match out {
            Outgoing::Ready(b, p) => (b, p),
            Outgoing::Deferred(fut, p) => match fut.await {
                Ok(b) => (b, p),
                Err(e) => {
                    warn!(%peer, error = %e, "closing connection: deferred reply failed");
                    break;
                }
            },
            Outgoing::Close => break,
        };
        if wr.write_all(&bytes).await.is_err() {
            break;
        }
        drop(permit);
        if rx.is_empty() && wr.flush().await.is_err() {
            break;
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}
