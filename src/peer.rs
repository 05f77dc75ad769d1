//! Requests from this broker to another broker of its cluster, over the other broker's Kafka
//! listener, as a Kafka broker sends them: WriteTxnMarkers from a transaction coordinator to
//! partition leaders, AddPartitionsToTxn from a partition leader (or group coordinator) to a
//! transaction coordinator (KIP-890 verification). Replication has its own connections
//! (`replica::fetcher`).
//!
//! One connection per peer address, opened on first use and kept; one request at a time on
//! it (these requests are few: one per transaction end or per verified transactional batch).
//! A connection that failed in any way is dropped, and the next request opens a new one.
//! Every request is bounded in time ([`REQUEST_TIMEOUT`]) and its response in size.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one request may take, connecting included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response accepted from a peer.
const RESPONSE_BYTES_MAX: usize = 16 << 20;

type Conn = Arc<tokio::sync::Mutex<Option<(TcpStream, i32)>>>;

/// Connections to the other brokers.
pub struct Peers {
    node: i32,
    conns: Mutex<HashMap<String, Conn>>,
}

impl Peers {
    /// Requests go out with client id `strom-broker-<node>`.
    pub fn new(node: i32) -> Self {
        Peers {
            node,
            conns: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `req` as `api` at `version` to the broker listening at `addr` and returns its
    /// decoded response, or why there is none.
    pub async fn request<Req: Encodable, Resp: Decodable>(
        &self,
        addr: &str,
        api: ApiKey,
        version: i16,
        req: &Req,
    ) -> Result<Resp, String> {
        let conn = self
            .conns
            .lock()
            .entry(addr.to_string())
            .or_default()
            .clone();
        let mut slot = conn.lock().await;
        let result = tokio::time::timeout(REQUEST_TIMEOUT, async {
            if slot.is_none() {
                let s = TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("connect to {addr}: {e}"))?;
                let _ = s.set_nodelay(true);
                *slot = Some((s, 0));
            }
            let (stream, correlation) = slot.as_mut().ok_or("no connection")?;
            *correlation = correlation.wrapping_add(1);
            let client_id = format!("strom-broker-{}", self.node);
            let frame = encode_request(api, version, *correlation, &client_id, req)?;
            stream
                .write_all(&frame)
                .await
                .map_err(|e| format!("send to {addr}: {e}"))?;
            read_response(stream, api, version, *correlation, RESPONSE_BYTES_MAX).await
        })
        .await
        .unwrap_or_else(|_| Err(format!("{addr} did not answer in {REQUEST_TIMEOUT:?}")));
        if result.is_err() {
            *slot = None;
        }
        result
    }
}

/// One request frame (size prefix, header, body), as this broker sends to another (the
/// replica fetcher's too).
pub fn encode_request<Req: Encodable>(
    api: ApiKey,
    version: i16,
    correlation: i32,
    client_id: &str,
    req: &Req,
) -> Result<BytesMut, String> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, api.request_header_version(version))
        .map_err(|e| e.to_string())?;
    req.encode(&mut buf, version).map_err(|e| e.to_string())?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

/// Reads and decodes the response to request `correlation` (at most `max_bytes`).
pub async fn read_response<Resp: Decodable>(
    stream: &mut TcpStream,
    api: ApiKey,
    version: i16,
    correlation: i32,
    max_bytes: usize,
) -> Result<Resp, String> {
    let len = stream
        .read_i32()
        .await
        .map_err(|e| format!("receive: {e}"))?;
    let len = usize::try_from(len).map_err(|_| "negative response size".to_string())?;
    if len > max_bytes {
        return Err(format!("response of {len} bytes is too large"));
    }
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| format!("receive: {e}"))?;
    let mut body = Bytes::from(body);
    let header = ResponseHeader::decode(&mut body, api.response_header_version(version))
        .map_err(|e| e.to_string())?;
    if header.correlation_id != correlation {
        return Err("response out of order".into());
    }
    let resp = Resp::decode(&mut body, version).map_err(|e| e.to_string())?;
    if body.has_remaining() {
        return Err("trailing bytes after the response".into());
    }
    Ok(resp)
}
