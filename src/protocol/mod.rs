//! Glue to the `kafka-protocol` crate: frame limits, request headers, version checks, the
//! ApiVersions fallback, and our zero-copy record-batch view ([`batch`]).

pub mod api;
pub mod batch;
pub mod fetch_response;
pub mod records;
pub mod share;
pub mod streams;
pub mod v44;
pub mod wire;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};

pub use api::Api;
use kafka_protocol::protocol::{Decodable, Encodable};
use thiserror::Error;

/// Wire error codes (Kafka's `Errors`: names can change, codes cannot).
pub use kafka_protocol::ResponseError as WireError;

#[derive(Debug, Error)]
pub enum ProtocolError {
    #[error("malformed {what}: {source}")]
    Decode {
        what: &'static str,
        source: anyhow::Error,
    },
    #[error("encode failed: {0}")]
    Encode(anyhow::Error),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("unsupported version {version} of {key:?}")]
    UnsupportedVersion { key: Api, version: i16 },
}

/// The first 8 bytes of every request header: enough to answer or refuse without decoding more.
#[derive(Debug, Clone, Copy)]
pub struct HeaderPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

impl HeaderPrefix {
    pub fn peek(frame: &[u8]) -> Option<Self> {
        if frame.len() < 8 {
            return None;
        }
        Some(HeaderPrefix {
            api_key: i16::from_be_bytes([frame[0], frame[1]]),
            api_version: i16::from_be_bytes([frame[2], frame[3]]),
            correlation_id: i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
        })
    }
}

/// Decodes the request header of `frame` (advancing it to the body).
pub fn decode_header(
    frame: &mut Bytes,
    key: Api,
    version: i16,
) -> Result<RequestHeader, ProtocolError> {
    let header_version = key.request_header_version(version);
    RequestHeader::decode(frame, header_version).map_err(|source| ProtocolError::Decode {
        what: "request header",
        source,
    })
}

/// Decodes a request body at `version`.
pub fn decode_body<T: Decodable>(
    body: &mut Bytes,
    version: i16,
    what: &'static str,
) -> Result<T, ProtocolError> {
    let msg = T::decode(body, version).map_err(|source| ProtocolError::Decode { what, source })?;
    Ok(msg)
}

/// Bytes reserved in front of every encoded response body for the frame's size prefix and
/// response header (4 + correlation id 4 + an empty tagged-field section 1), so framing never
/// copies the body (a fetch response is mostly record bytes).
pub(crate) const HEADER_ROOM: usize = 9;

/// Encodes a response body at `version`, sized exactly (no growth copies) and with room for the
/// frame header in front.
pub fn encode_body<T: Encodable>(msg: &T, version: i16) -> Result<BytesMut, ProtocolError> {
    let size = msg.compute_size(version).map_err(ProtocolError::Encode)?;
    let mut buf = BytesMut::with_capacity(HEADER_ROOM + size);
    buf.put_bytes(0, HEADER_ROOM);
    msg.encode(&mut buf, version)
        .map_err(ProtocolError::Encode)?;
    Ok(buf)
}

/// Turns a body from [`encode_body`] into a complete response frame (size prefix + response
/// header + body) in place.
pub fn frame_response(
    key: Api,
    version: i16,
    correlation_id: i32,
    body: BytesMut,
) -> Result<BytesMut, ProtocolError> {
    frame_response_with_tail(key, version, correlation_id, body, 0)
}

/// Like [`frame_response`] for a response whose body goes on for `tail_len` bytes after `body`
/// (written separately, e.g. records sent from a file).
pub fn frame_response_with_tail(
    key: Api,
    version: i16,
    correlation_id: i32,
    mut body: BytesMut,
    tail_len: usize,
) -> Result<BytesMut, ProtocolError> {
    let header_version = key.response_header_version(version);
    let mut header = BytesMut::with_capacity(HEADER_ROOM);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut header, header_version)
        .map_err(ProtocolError::Encode)?;
    let start = HEADER_ROOM
        .checked_sub(4 + header.len())
        .ok_or_else(|| ProtocolError::Encode(anyhow::anyhow!("response header too large")))?;
    let frame_len = i32::try_from(body.len() - HEADER_ROOM + header.len() + tail_len)
        .map_err(|_| ProtocolError::Encode(anyhow::anyhow!("response too large")))?;
    body[start..start + 4].copy_from_slice(&frame_len.to_be_bytes());
    body[start + 4..HEADER_ROOM].copy_from_slice(&header);
    body.advance(start);
    Ok(body)
}

/// The ApiVersions answer for a version we do not know: v0 layout, UNSUPPORTED_VERSION, and
/// our supported ranges, so the client can retry with a version we serve.
pub fn api_versions_fallback(correlation_id: i32, ranges: &[(i16, i16, i16)]) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_i16(WireError::UnsupportedVersion.code());
    body.put_i32(ranges.len() as i32);
    for &(key, min, max) in ranges {
        body.put_i16(key);
        body.put_i16(min);
        body.put_i16(max);
    }
    let mut out = BytesMut::with_capacity(8 + body.len());
    out.put_i32((4 + body.len()) as i32);
    out.put_i32(correlation_id);
    out.extend_from_slice(&body);
    out
}

/// Reads the 4-byte size prefix of a frame. `Ok(None)`: not enough bytes yet.
pub fn check_frame(buf: &[u8], max_frame: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = (&buf[..4]).get_i32();
    if len < 0 {
        return Err(FrameError::Negative(len));
    }
    if len as usize > max_frame {
        return Err(FrameError::TooLarge {
            len: len as usize,
            max: max_frame,
        });
    }
    if len < 8 {
        return Err(FrameError::TooSmall(len as usize));
    }
    Ok(Some(len as usize))
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("negative frame size {0}")]
    Negative(i32),
    #[error("frame of {len} bytes exceeds socket.request.max.bytes {max}")]
    TooLarge { len: usize, max: usize },
    #[error("frame of {0} bytes is too small for a request header")]
    TooSmall(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_checks() {
        assert_eq!(check_frame(&[0, 0], 100), Ok(None));
        assert_eq!(
            check_frame(&(-5i32).to_be_bytes(), 100),
            Err(FrameError::Negative(-5))
        );
        assert_eq!(
            check_frame(&1000i32.to_be_bytes(), 100),
            Err(FrameError::TooLarge {
                len: 1000,
                max: 100
            })
        );
        assert_eq!(check_frame(&20i32.to_be_bytes(), 100), Ok(Some(20)));
    }

    #[test]
    fn framing_in_place() {
        use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
        let body = encode_body(&ApiVersionsResponse::default(), 3).expect("encode");
        let n = body.len() - HEADER_ROOM;
        let f = frame_response(Api::of(ApiKey::ApiVersions), 3, 42, body).expect("frame");
        assert_eq!(f.len(), 4 + 4 + n, "header v0: correlation id only");
        assert_eq!(&f[..8], &[0, 0, 0, (4 + n) as u8, 0, 0, 0, 42]);
        let body = encode_body(&kafka_protocol::messages::MetadataResponse::default(), 12)
            .expect("encode");
        let n = body.len() - HEADER_ROOM;
        let f = frame_response(Api::of(ApiKey::Metadata), 12, 7, body).expect("frame");
        assert_eq!(
            f.len(),
            4 + 5 + n,
            "header v1: correlation id + tagged fields"
        );
        assert_eq!(f[8], 0, "empty tagged fields");
    }

    #[test]
    fn fallback_layout() {
        let f = api_versions_fallback(7, &[(18, 0, 4)]);
        assert_eq!(
            &f[..],
            &[0, 0, 0, 16, 0, 0, 0, 7, 0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 4]
        );
    }
}
