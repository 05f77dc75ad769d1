//! The quorum's voter-to-voter RPC over TCP: a server task answering openraft's
//! AppendEntries, Vote and InstallSnapshot requests, and the clients openraft sends them with;
//! plus proposals forwarded by a voter that is not the leader ([`KIND_PROPOSE`], answered with
//! a [`ProposeResponse`] once the leader applied them), and brokers' heartbeats to the leader
//! ([`KIND_HEARTBEAT`], see [`super::Heartbeats`]), and the leader's view of the quorum for
//! DescribeQuorum asked on another voter ([`KIND_STATUS`], see [`super::LeaderView`]).
//!
//! Wire format, both directions: a frame is a 4-byte big-endian length (of what follows, at
//! most [`FRAME_BYTES_MAX`]), a kind byte ([`KIND_APPEND`], [`KIND_VOTE`], [`KIND_SNAPSHOT`]),
//! then JSON: openraft's request, or in a response (which repeats the request's kind) a
//! `{"Ok": response}` / `{"Err": RaftError}`. One request at a time per connection.
//!
//! Input from the network is untrusted: a length over the limit, an unknown kind, bad JSON,
//! a snapshot chunk beyond [`SNAPSHOT_BYTES_MAX`] or a frame that does not arrive whole within
//! [`FRAME_RECEIVE_TIMEOUT`] closes the connection; a frame's buffer grows only with the bytes
//! that actually arrived. At most [`CONNECTIONS_MAX`] connections are served at once. There is
//! no authentication or TLS (like a PLAINTEXT KRaft controller listener): bind it to a trusted
//! network; a peer that can connect can fill the connection slots.
//!
//! Clients: openraft asks the factory for one client per replication stream (long-lived) and
//! per election round; each client holds one connection, opened lazily within the connect
//! timeout and dropped on any failure (the next call reconnects). A failed connect is
//! `Unreachable` (openraft backs off), a failure on an open connection is `NetworkError`
//! (openraft retries), an expired deadline is `Timeout`. A request that would not fit a frame
//! is `PayloadTooLarge` (openraft sends fewer entries).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, RPCTypes, Raft};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{TypeConfig, Voter};

/// Largest frame (request or response) sent or accepted.
pub(crate) const FRAME_BYTES_MAX: usize = 64 << 20;
/// Snapshot chunks may not reach beyond this offset (the receiver buffers the snapshot).
pub(crate) const SNAPSHOT_BYTES_MAX: u64 = 1 << 30;
/// Connections served at once; more are closed on accept.
pub(crate) const CONNECTIONS_MAX: usize = 64;
/// A frame must arrive whole within this once its first byte did.
pub(crate) const FRAME_RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection with no request for this long is closed (a leader's heartbeats keep its
/// replication connections busy; election clients are dropped after their round), so idle
/// connections cannot hold the [`CONNECTIONS_MAX`] slots for long.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Why a connection closed after [`IDLE_TIMEOUT`].
const IDLE: &str = "idle";
/// Deadline for writing a response.
pub(crate) const RESPONSE_SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) const KIND_APPEND: u8 = 1;
pub(crate) const KIND_VOTE: u8 = 2;
pub(crate) const KIND_SNAPSHOT: u8 = 3;
pub(crate) const KIND_PROPOSE: u8 = 4;
pub(crate) const KIND_HEARTBEAT: u8 = 5;
pub(crate) const KIND_STATUS: u8 = 6;

/// A broker telling the quorum's leader it is alive.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub(crate) struct Heartbeat {
    pub node: i32,
}

/// The answer to a [`Heartbeat`].
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub(crate) enum HeartbeatResponse {
    /// Recorded by the leader.
    Ok,
    /// The receiver is not the leader.
    NotLeader,
}

/// The leader's answer to a forwarded proposal.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub(crate) enum ProposeResponse {
    /// Committed and applied on the leader at this log index.
    Applied(u64),
    /// The receiver is not the leader (any more).
    NotLeader,
    /// Refused or failed (too large, the leader is stopping, ...).
    Failed(String),
}

/// Why reading a frame failed.
#[derive(Debug, thiserror::Error)]
enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("frame of {0} bytes is outside 1..={FRAME_BYTES_MAX}")]
    BadLength(usize),
    #[error("frame truncated")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one frame: (kind, JSON body). The buffer grows only as bytes arrive.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<(u8, Vec<u8>), FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > FRAME_BYTES_MAX {
        return Err(FrameError::BadLength(len));
    }
    let mut buf = Vec::with_capacity(len.min(64 << 10));
    r.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() != len {
        return Err(FrameError::Truncated);
    }
    let body = buf.split_off(1);
    Ok((buf[0], body))
}

/// Encodes a frame, or None when it would be over the limit.
fn encode_frame<T: Serialize>(kind: u8, value: &T) -> Result<Option<Vec<u8>>, serde_json::Error> {
    let mut frame = vec![0u8, 0, 0, 0, kind];
    serde_json::to_writer(&mut frame, value)?;
    let len = frame.len() - 4;
    if len > FRAME_BYTES_MAX {
        return Ok(None);
    }
    frame[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(Some(frame))
}

/// The running RPC server.
pub(crate) struct RpcServer {
    local_addr: SocketAddr,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl RpcServer {
    /// Serves `raft` on `listener` until cancelled.
    pub(crate) fn start(
        listener: TcpListener,
        raft: Raft<TypeConfig>,
        heartbeats: Arc<super::Heartbeats>,
    ) -> std::io::Result<RpcServer> {
        let local_addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(accept_loop(
            listener,
            raft,
            heartbeats,
            cancel.clone(),
            tracker.clone(),
        ));
        Ok(RpcServer {
            local_addr,
            cancel,
            tracker,
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub(crate) fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Stops accepting, closes every connection and waits (bounded) for their tasks.
    pub(crate) async fn shutdown(&self) {
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(addr = %self.local_addr, "quorum RPC tasks did not stop within 10 s");
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    raft: Raft<TypeConfig>,
    heartbeats: Arc<super::Heartbeats>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and the like: pause instead of spinning.
                tracing::warn!(error = %e, "quorum RPC accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "quorum RPC connection refused: {CONNECTIONS_MAX} open");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let raft = raft.clone();
        let heartbeats = heartbeats.clone();
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let mut broker = None;
            tokio::select! {
                _ = cancel.cancelled() => {}
                r = serve_connection(stream, &raft, &heartbeats, &mut broker) => {
                    // A broker's heartbeat connection that ended other than by our idle
                    // timeout: its process is gone (or its link broke; its next heartbeat,
                    // on a new connection, says otherwise).
                    if let Some(node) = broker {
                        if !matches!(&r, Err(why) if why == IDLE) {
                            heartbeats.disconnected(node);
                        }
                    }
                    if let Err(why) = r {
                        tracing::debug!(%peer, why, "quorum RPC connection closed");
                    }
                }
            }
            drop(permit);
        });
    }
}

/// Answers requests on one connection until it closes or misbehaves.
async fn serve_connection(
    mut stream: TcpStream,
    raft: &Raft<TypeConfig>,
    heartbeats: &super::Heartbeats,
    broker: &mut Option<i32>,
) -> Result<(), String> {
    loop {
        // Wait for the first byte without the frame deadline, then the whole frame within it.
        let mut first = [0u8; 1];
        match tokio::time::timeout(IDLE_TIMEOUT, stream.peek(&mut first)).await {
            Err(_) => return Err(IDLE.into()),
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.to_string()),
        }
        let (kind, body) =
            match tokio::time::timeout(FRAME_RECEIVE_TIMEOUT, read_frame(&mut stream)).await {
                Err(_) => return Err("frame not received in time".into()),
                Ok(Err(FrameError::Closed)) => return Ok(()),
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(f)) => f,
            };
        let frame = match kind {
            KIND_APPEND => {
                let req: AppendEntriesRequest<TypeConfig> = decode(&body)?;
                encode_frame(kind, &raft.append_entries(req).await)
            }
            KIND_VOTE => {
                let req: VoteRequest<u64> = decode(&body)?;
                encode_frame(kind, &raft.vote(req).await)
            }
            KIND_SNAPSHOT => {
                let req: InstallSnapshotRequest<TypeConfig> = decode(&body)?;
                let reach = req.offset.checked_add(req.data.len() as u64);
                if reach.is_none_or(|r| r > SNAPSHOT_BYTES_MAX) {
                    return Err(format!(
                        "snapshot chunk at offset {} is too far",
                        req.offset
                    ));
                }
                encode_frame(kind, &raft.install_snapshot(req).await)
            }
            KIND_PROPOSE => {
                let payload: super::Payload = decode(&body)?;
                let answer = if payload.0.len() > super::PAYLOAD_BYTES_MAX_LIMIT {
                    ProposeResponse::Failed("payload too large".into())
                } else {
                    match raft.client_write(payload).await {
                        Ok(resp) => ProposeResponse::Applied(resp.log_id.index),
                        Err(openraft::error::RaftError::APIError(
                            openraft::error::ClientWriteError::ForwardToLeader(_),
                        )) => ProposeResponse::NotLeader,
                        Err(e) => ProposeResponse::Failed(e.to_string()),
                    }
                };
                encode_frame(kind, &answer)
            }
            KIND_HEARTBEAT => {
                let hb: Heartbeat = decode(&body)?;
                *broker = Some(hb.node);
                let leading = {
                    let m = raft.metrics();
                    let m = m.borrow();
                    m.state == openraft::ServerState::Leader
                };
                let answer = if leading {
                    heartbeats.record(hb.node);
                    HeartbeatResponse::Ok
                } else {
                    HeartbeatResponse::NotLeader
                };
                encode_frame(kind, &answer)
            }
            KIND_STATUS => {
                let answer = if raft.metrics().borrow().state == openraft::ServerState::Leader {
                    Some(super::LeaderView::of(&raft.metrics().borrow()))
                } else {
                    None
                };
                encode_frame(kind, &answer)
            }
            other => return Err(format!("unknown request kind {other}")),
        };
        let frame = frame
            .map_err(|e| format!("encoding a response: {e}"))?
            .ok_or("response over the frame limit")?;
        match tokio::time::timeout(RESPONSE_SEND_TIMEOUT, stream.write_all(&frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("response not sent in time".into()),
        }
    }
}

/// Sends a heartbeat of `node` to the leader at `addr` within `ttl`, on `link` (opened when
/// absent and kept open: the leader learns this process ended when the connection closes).
pub(crate) async fn send_heartbeat(
    link: &mut Option<(String, TcpStream)>,
    addr: &str,
    node: i32,
    ttl: Duration,
) -> Result<HeartbeatResponse, String> {
    let frame = encode_frame(KIND_HEARTBEAT, &Heartbeat { node })
        .map_err(|e| e.to_string())?
        .ok_or("heartbeat over the frame limit")?;
    let exchange = async {
        if link.is_none() {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect to {addr}: {e}"))?;
            let _ = stream.set_nodelay(true);
            *link = Some((addr.to_string(), stream));
        }
        let (_, stream) = link.as_mut().ok_or("no heartbeat connection")?;
        stream.write_all(&frame).await.map_err(|e| e.to_string())?;
        let (kind, body) = read_frame(stream).await.map_err(|e| e.to_string())?;
        if kind != KIND_HEARTBEAT {
            return Err(format!("response kind {kind} to a heartbeat"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("bad response: {e}"))
    };
    tokio::time::timeout(ttl, exchange)
        .await
        .map_err(|_| format!("no answer from {addr} within {ttl:?}"))?
}

/// Asks the node at `addr` for its view as leader (None: it does not lead), within `ttl`.
pub(crate) async fn fetch_leader_view(
    addr: &str,
    ttl: Duration,
) -> Result<Option<super::LeaderView>, String> {
    let frame = encode_frame(KIND_STATUS, &())
        .map_err(|e| e.to_string())?
        .ok_or("status request over the frame limit")?;
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        stream.write_all(&frame).await.map_err(|e| e.to_string())?;
        let (kind, body) = read_frame(&mut stream).await.map_err(|e| e.to_string())?;
        if kind != KIND_STATUS {
            return Err(format!("response kind {kind} to a status request"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("bad response: {e}"))
    };
    tokio::time::timeout(ttl, exchange)
        .await
        .map_err(|_| format!("no answer from {addr} within {ttl:?}"))?
}

/// Sends a proposal to the leader at `addr` on a connection of its own, within `ttl`.
pub(crate) async fn forward_propose(
    addr: &str,
    payload: &super::Payload,
    ttl: Duration,
) -> Result<ProposeResponse, String> {
    let frame = encode_frame(KIND_PROPOSE, payload)
        .map_err(|e| e.to_string())?
        .ok_or("proposal over the frame limit")?;
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        stream.write_all(&frame).await.map_err(|e| e.to_string())?;
        let (kind, body) = read_frame(&mut stream).await.map_err(|e| e.to_string())?;
        if kind != KIND_PROPOSE {
            return Err(format!("response kind {kind} to a proposal"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("bad response: {e}"))
    };
    tokio::time::timeout(ttl, exchange)
        .await
        .map_err(|_| format!("no answer from {addr} within {ttl:?}"))?
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("bad request: {e}"))
}

/// Creates the clients openraft uses to reach the other voters.
pub(crate) struct NetworkFactory {
    node_id: u64,
    connect_timeout: Duration,
    heartbeats: Arc<super::Heartbeats>,
}

impl NetworkFactory {
    pub(crate) fn new(
        node_id: u64,
        connect_timeout: Duration,
        heartbeats: Arc<super::Heartbeats>,
    ) -> Self {
        NetworkFactory {
            node_id,
            connect_timeout,
            heartbeats,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &Voter) -> PeerClient {
        PeerClient {
            node_id: self.node_id,
            target,
            node: node.clone(),
            connect_timeout: self.connect_timeout,
            conn: None,
            heartbeats: self.heartbeats.clone(),
        }
    }
}

/// A client of one other voter, over one lazily (re)opened connection.
pub(crate) struct PeerClient {
    node_id: u64,
    target: u64,
    node: Voter,
    connect_timeout: Duration,
    conn: Option<TcpStream>,
    /// A voter whose port refuses connections has no process behind it: its broker is noted
    /// gone (see [`super::Heartbeats::gone`]), as when its heartbeat connection closes.
    heartbeats: Arc<super::Heartbeats>,
}

/// How one call failed, before it is typed for openraft.
enum CallError {
    Unreachable(std::io::Error),
    Network(std::io::Error),
    Timeout(Duration),
    TooLarge,
}

impl PeerClient {
    /// Sends one request and reads its response, within `ttl` (connecting included).
    async fn call<Req, Resp>(
        &mut self,
        kind: u8,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, CallError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let frame = encode_frame(kind, req)
            .map_err(|e| CallError::Network(std::io::Error::other(e)))?
            .ok_or(CallError::TooLarge)?;
        let deadline = tokio::time::Instant::now() + ttl;
        // Taken out for the call: if the call is dropped midway (openraft's own deadline), the
        // connection goes with it rather than being reused with a stale response in flight.
        let mut stream = match self.conn.take() {
            Some(s) => s,
            None => {
                let connect = TcpStream::connect(self.node.addr.as_str());
                let within = self.connect_timeout.min(ttl);
                match tokio::time::timeout(within, connect).await {
                    Ok(Ok(s)) => {
                        let _ = s.set_nodelay(true);
                        s
                    }
                    Ok(Err(e)) => {
                        if e.kind() == std::io::ErrorKind::ConnectionRefused {
                            if let Ok(node) = i32::try_from(self.target) {
                                self.heartbeats.disconnected(node);
                            }
                        }
                        return Err(CallError::Unreachable(e));
                    }
                    Err(_) => {
                        return Err(CallError::Unreachable(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("connect to {} timed out", self.node.addr),
                        )))
                    }
                }
            }
        };
        let exchange = async {
            stream.write_all(&frame).await?;
            match read_frame(&mut stream).await {
                Ok(f) => Ok(f),
                Err(FrameError::Io(e)) => Err(e),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            }
        };
        let (got_kind, body) = match tokio::time::timeout_at(deadline, exchange).await {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => return Err(CallError::Network(e)),
            Err(_) => return Err(CallError::Timeout(ttl)),
        };
        if got_kind != kind {
            return Err(CallError::Network(std::io::Error::other(format!(
                "response kind {got_kind} to a request of kind {kind}"
            ))));
        }
        let resp = serde_json::from_slice(&body)
            .map_err(|e| CallError::Network(std::io::Error::other(format!("bad response: {e}"))))?;
        self.conn = Some(stream);
        Ok(resp)
    }

    /// Types a failed or refused call for openraft.
    #[expect(
        clippy::result_large_err,
        reason = "openraft's RaftNetwork methods return this error type"
    )]
    fn rpc_result<T, E: std::error::Error>(
        &self,
        action: RPCTypes,
        result: Result<Result<T, E>, CallError>,
        entries: usize,
    ) -> Result<T, RPCError<u64, Voter, E>> {
        match result {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(remote)) => Err(RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                remote,
            ))),
            Err(CallError::Unreachable(e)) => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(CallError::Network(e)) => Err(RPCError::Network(NetworkError::new(&e))),
            Err(CallError::Timeout(timeout)) => Err(RPCError::Timeout(Timeout {
                action,
                id: self.node_id,
                target: self.target,
                timeout,
            })),
            Err(CallError::TooLarge) if entries > 1 => Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint((entries / 2) as u64),
            )),
            Err(CallError::TooLarge) => Err(RPCError::Unreachable(Unreachable::new(
                &AnyError::error("a single request is over the RPC frame limit"),
            ))),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, Voter, RaftError<u64>>> {
        let entries = rpc.entries.len();
        let result = self.call(KIND_APPEND, &rpc, option.hard_ttl()).await;
        self.rpc_result(RPCTypes::AppendEntries, result, entries)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, Voter, RaftError<u64, InstallSnapshotError>>,
    > {
        let result = self.call(KIND_SNAPSHOT, &rpc, option.hard_ttl()).await;
        self.rpc_result(RPCTypes::InstallSnapshot, result, 0)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, Voter, RaftError<u64>>> {
        let result = self.call(KIND_VOTE, &rpc, option.hard_ttl()).await;
        self.rpc_result(RPCTypes::Vote, result, 0)
    }
}
