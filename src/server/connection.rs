//! One client connection: bounded framing, pipelined requests, responses in request order.
//!
//! The reader decodes each frame and runs its handler to the point where order matters (a
//! produce is appended before the next request is read). What remains — waiting for an fsync,
//! a long-poll fetch — is a deferred reply queued to the writer, which writes replies strictly
//! in request order. The queue is bounded (`strom.max.inflight.requests.per.connection`).
//!
//! Memory is charged at two levels, both as soon as a frame's size is read (before its body is
//! buffered):
//! - the broker-wide `queued.max.request.bytes` pool, shared by every connection, only while
//!   the request is being received and handled (as Kafka's memory pool): it is released when
//!   the handler returns, never held while a reply waits for its turn, for a long-poll, or for
//!   a client to read. A frame must arrive whole within `strom.request.receive.timeout.ms` of
//!   its size being read, so a client that starts a frame and stalls cannot keep its share of
//!   the pool for longer than that;
//! - the connection's own `strom.connection.max.queued.bytes`, for the request and for its
//!   response encoded ahead of its turn, until the response is written. A client that
//!   pipelines without reading stalls only itself, holding at most this budget.
//!
//! Fetch responses are written in parts: record bytes go from segment files to the socket with
//! sendfile(2) — on plain TCP; over TLS they are read into memory and encrypted.
//!
//! On a SASL listener, frames go to the [`Gate`] until the client has authenticated
//! ([`super::authenticate`]); handlers see the connection's [`Session`] (listener and
//! principal).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use kafka_protocol::messages::ApiKey;

use crate::protocol::Api;
use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter, Interest, ReadHalf, WriteHalf,
};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::broker::Broker;
use crate::handlers::{self, Part, PartsBody, Reply, RequestContext};
use crate::metrics;
use crate::protocol::{self, HeaderPrefix, ProtocolError};
use crate::security::Session;
use crate::server::authenticate::{Gate, Outcome};
use crate::server::ServerLimits;

/// Memory a queued request/response holds until its response is written: its share of this
/// connection's `strom.connection.max.queued.bytes`.
type Held = Vec<OwnedSemaphorePermit>;

/// The frame being received: its share of the broker-wide pool (held until its handler
/// returns), of the connection budget (held until its response is written), and when its size
/// was read (the receive deadline starts then).
struct Receiving {
    pool: Option<OwnedSemaphorePermit>,
    conn: OwnedSemaphorePermit,
    since: Instant,
}

enum Outgoing {
    Ready(BytesMut, Held),
    Deferred(BoxFuture<'static, Result<BytesMut, ProtocolError>>, Held),
    DeferredParts(BoxFuture<'static, Result<PartsBody, ProtocolError>>, Held),
    /// Close the connection after everything before it was written (acks=0 produce errors).
    Close,
}

/// A connection's byte stream: plain TCP, or TLS over it.
pub trait Transport: Send + 'static {
    type Read: AsyncRead + Unpin + Send + 'static;
    type Write: AsyncWrite + ZeroCopy + Unpin + Send + 'static;
    fn split(self) -> (Self::Read, Self::Write);
}

/// The socket under a writer, when record bytes may go to it straight from a file
/// (sendfile(2)); None for TLS, which must encrypt them in user space.
pub trait ZeroCopy {
    fn socket(&self) -> Option<&TcpStream>;
}

impl Transport for TcpStream {
    type Read = OwnedReadHalf;
    type Write = OwnedWriteHalf;
    fn split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.into_split()
    }
}

impl ZeroCopy for OwnedWriteHalf {
    fn socket(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }
}

type Tls = tokio_rustls::server::TlsStream<TcpStream>;

impl Transport for Tls {
    type Read = ReadHalf<Tls>;
    type Write = WriteHalf<Tls>;
    fn split(self) -> (ReadHalf<Tls>, WriteHalf<Tls>) {
        tokio::io::split(self)
    }
}

impl ZeroCopy for WriteHalf<Tls> {
    fn socket(&self) -> Option<&TcpStream> {
        None
    }
}

pub async fn run<S: Transport>(
    stream: S,
    peer: SocketAddr,
    broker: Arc<Broker>,
    limits: Arc<ServerLimits>,
    shutdown: CancellationToken,
    mut session: Arc<Session>,
) {
    debug!(%peer, listener = %session.listener(), "connection opened");
    // SASL listeners: nothing but the SASL exchange until it succeeds.
    let mut gate = session.endpoint.sasl.clone().map(Gate::new);
    let (mut rd, wr) = stream.split();
    let (tx, rx) = mpsc::channel::<Outgoing>(broker.config.max_inflight_requests_per_connection);
    let writer = tokio::spawn(write_loop(wr, rx, peer));
    let max_frame = broker.config.socket_request_max_bytes;
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms);
    let receive_timeout = Duration::from_millis(broker.config.request_receive_timeout_ms);
    // Each request, and each response encoded before its turn to be written, may take at most
    // half of the connection's budget, so one of each always fits.
    let budget_kib =
        (broker.config.connection_max_queued_bytes / 1024).clamp(2, u32::MAX as usize >> 4) as u32;
    let budget = Arc::new(Semaphore::new(budget_kib as usize));
    let half = budget_kib / 2;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut receiving: Option<Receiving> = None;
    // Client quotas: a throttled connection reads no request until its throttle has passed.
    let mute = Arc::new(handlers::Mute::default());
    'conn: loop {
        // Handle every complete frame already buffered.
        loop {
            let muted = mute.remaining();
            if !muted.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(muted) => {}
                    _ = shutdown.cancelled() => break 'conn,
                }
            }
            let max = gate.as_ref().map_or(max_frame, |g| g.max_frame(max_frame));
            let len = match protocol::check_frame(&buf, max) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    warn!(%peer, error = %e, "closing connection: bad frame");
                    break 'conn;
                }
            };
            // The frame's bytes are charged as soon as its size is known, before its body is
            // buffered (as Kafka's memory pool does): receive buffers count against the bounds.
            if receiving.is_none() {
                let Ok(conn) = budget.clone().acquire_many_owned(kib(len, half)).await else {
                    break 'conn;
                };
                receiving = Some(Receiving {
                    pool: acquire_request_bytes(&limits, len).await,
                    conn,
                    since: Instant::now(),
                });
            }
            if buf.len() < 4 + len {
                buf.reserve(4 + len - buf.len());
                break;
            }
            let Some(Receiving {
                pool,
                conn: conn_req,
                ..
            }) = receiving.take()
            else {
                break 'conn;
            };
            let mut frame = buf.split_to(4 + len).freeze();
            let _ = frame.split_to(4);
            let mut closing: Option<Duration> = None;
            let handled = match gate
                .as_mut()
                .map(|g| g.on_frame(&frame, &broker, &session, peer))
            {
                None | Some(Outcome::Pass) => {
                    handle_frame(&broker, peer, &session, &mute, frame).await
                }
                Some(Outcome::Reply(b)) => Ok(Some(Reply::Now(b))),
                Some(Outcome::Authenticated(b, principal)) => {
                    session = Arc::new(Session {
                        endpoint: session.endpoint.clone(),
                        principal,
                    });
                    Ok(Some(Reply::Now(b)))
                }
                Some(Outcome::FailThenClose(b, delay)) => {
                    closing = Some(delay);
                    Ok(Some(Reply::Now(b)))
                }
                Some(Outcome::Close(why)) => {
                    warn!(%peer, listener = %session.listener(), "closing connection: {why}");
                    break 'conn;
                }
            };
            // Handled: the request's share of the broker-wide pool goes back now, whatever the
            // reply still waits for. What a deferred reply keeps of the request stays charged
            // to this connection's budget.
            drop(pool);
            match handled {
                Ok(Some(Reply::Now(resp))) => {
                    let Ok(conn_resp) = budget
                        .clone()
                        .acquire_many_owned(kib(resp.len(), half))
                        .await
                    else {
                        break 'conn;
                    };
                    if tx
                        .send(Outgoing::Ready(resp, vec![conn_req, conn_resp]))
                        .await
                        .is_err()
                    {
                        break 'conn;
                    }
                    if let Some(delay) = closing {
                        // The answer goes out now; the close follows after the delay.
                        tokio::time::sleep(delay).await;
                        let _ = tx.send(Outgoing::Close).await;
                        break 'conn;
                    }
                }
                Ok(Some(Reply::Later(fut))) => {
                    if tx
                        .send(Outgoing::Deferred(fut, vec![conn_req]))
                        .await
                        .is_err()
                    {
                        break 'conn;
                    }
                }
                Ok(Some(Reply::LaterParts(fut))) => {
                    if tx
                        .send(Outgoing::DeferredParts(fut, vec![conn_req]))
                        .await
                        .is_err()
                    {
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
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(READ_CHUNK);
        }
        // Between frames the idle timeout applies; inside one, also the receive deadline.
        let (wait, partial) = match &receiving {
            Some(r) => {
                let left = receive_timeout.saturating_sub(r.since.elapsed());
                (left.min(idle), left < idle)
            }
            None => (idle, false),
        };
        let read = tokio::select! {
            r = tokio::time::timeout(wait, rd.read_buf(&mut buf)) => r,
            _ = shutdown.cancelled() => break,
        };
        match read {
            Ok(Ok(0)) => break,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "read error");
                break;
            }
            Err(_) if partial => {
                warn!(%peer, "closing connection: request not received whole within strom.request.receive.timeout.ms");
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
    // Share sessions opened on this connection end with it; their records are released
    // (Kafka's disconnect listener).
    if broker.shares.is_loaded() {
        broker.shares.connection_closed(peer).await;
    }
    debug!(%peer, "connection closed");
}

/// `bytes` in KiB permits, at least 1 and at most `cap`.
fn kib(bytes: usize, cap: u32) -> u32 {
    (bytes.div_ceil(1024).min(u32::MAX as usize) as u32).clamp(1, cap.max(1))
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
    session: &Arc<Session>,
    mute: &Arc<handlers::Mute>,
    mut frame: Bytes,
) -> Result<Option<Reply>, ProtocolError> {
    let prefix = HeaderPrefix::peek(&frame).ok_or(ProtocolError::UnknownApiKey(-1))?;
    let key = Api(prefix.api_key);
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
        mute: mute.clone(),
        broker: broker.clone(),
        api_key: key,
        version: prefix.api_version,
        header,
        peer,
        session: session.clone(),
    };
    let corr = prefix.correlation_id;
    let version = prefix.api_version;
    let started = Instant::now();
    let done = move || {
        metrics::global().request(key.0, key.name(), started.elapsed());
    };
    let reply = handlers::dispatch(ctx, frame).await?;
    Ok(Some(match reply {
        Reply::Now(body) => {
            done();
            Reply::Now(protocol::frame_response(key, version, corr, body)?)
        }
        Reply::Later(fut) => Reply::Later(Box::pin(async move {
            let body = fut.await?;
            done();
            protocol::frame_response(key, version, corr, body)
        })),
        Reply::LaterParts(fut) => Reply::LaterParts(Box::pin(async move {
            let PartsBody { head, rest } = fut.await?;
            done();
            let tail = rest.iter().map(Part::len).sum();
            let head = protocol::frame_response_with_tail(key, version, corr, head, tail)?;
            Ok(PartsBody { head, rest })
        })),
        other => other,
    }))
}

async fn write_loop<W: AsyncWrite + ZeroCopy + Unpin>(
    wr: W,
    mut rx: mpsc::Receiver<Outgoing>,
    peer: SocketAddr,
) {
    // Small: large responses bypass the buffer, and every idle connection holds one.
    let mut wr = BufWriter::with_capacity(WRITE_BUFFER, wr);
    while let Some(out) = rx.recv().await {
        let written = match out {
            Outgoing::Ready(b, permit) => {
                let r = wr.write_all(&b).await;
                drop(permit);
                r
            }
            Outgoing::Deferred(fut, permit) => match fut.await {
                Ok(b) => {
                    let r = wr.write_all(&b).await;
                    drop(permit);
                    r
                }
                Err(e) => {
                    warn!(%peer, error = %e, "closing connection: deferred reply failed");
                    break;
                }
            },
            Outgoing::DeferredParts(fut, permit) => match fut.await {
                Ok(body) => {
                    let r = write_parts(&mut wr, body).await;
                    drop(permit);
                    r
                }
                Err(e) => {
                    warn!(%peer, error = %e, "closing connection: deferred reply failed");
                    break;
                }
            },
            Outgoing::Close => break,
        };
        if let Err(e) = written {
            debug!(%peer, error = %e, "write failed");
            break;
        }
        if rx.is_empty() && wr.flush().await.is_err() {
            break;
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}

/// Writes a response in parts; file ranges go from the page cache to the socket with
/// `sendfile(2)` (after flushing what is buffered), so record bytes are never copied through
/// user space. A range that can no longer be read whole (its file shrank) fails the
/// connection: the frame length was already promised.
async fn write_parts<W: AsyncWrite + ZeroCopy + Unpin>(
    wr: &mut BufWriter<W>,
    body: PartsBody,
) -> io::Result<()> {
    wr.write_all(&body.head).await?;
    for part in body.rest {
        match part {
            Part::Bytes(b) => wr.write_all(&b).await?,
            Part::File(range) => {
                let (Some(file), Some(_)) = (range.file.as_file(), wr.get_ref().socket()) else {
                    // In memory, or TLS: the bytes go through user space.
                    wr.write_all(&range.read_to_bytes()?).await?;
                    continue;
                };
                wr.flush().await?;
                let Some(sock) = wr.get_ref().socket() else {
                    continue;
                };
                let mut offset = range.position;
                let end = range.position + range.len as u64;
                while offset < end {
                    let want = (end - offset).min(MAX_SENDFILE_CHUNK) as usize;
                    let sent = loop {
                        sock.writable().await?;
                        match sock.try_io(Interest::WRITABLE, || {
                            rustix::fs::sendfile(sock, file, Some(&mut offset), want)
                                .map_err(io::Error::from)
                        }) {
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                            other => break other?,
                        }
                    };
                    if sent == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "segment file shorter than the range being sent",
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Read buffer growth step; frames larger than this get a buffer of their size once charged.
const READ_CHUNK: usize = 16 * 1024;
/// Response coalescing buffer of the writer.
const WRITE_BUFFER: usize = 16 * 1024;

/// Largest single sendfile call, so one big fetch does not monopolise a worker thread.
const MAX_SENDFILE_CHUNK: u64 = 1 << 20;
