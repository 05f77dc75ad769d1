//! Arbitrary bytes as the request stream of one connection, handled the way
//! `server::connection` does up to the handler: frame size check (before any allocation),
//! header prefix, API key (`protocol::Api`, including keys the crate lacks) + version against
//! the registry (ApiVersions fallback), header decode, then the request body decoded with
//! `kafka-protocol` at that version (or, for the versions and APIs Kafka 4.2-4.4 added that the
//! crate lacks, with `protocol::v44`).
//!
//! The process runs with strom's global allocator (`strom::alloc::GuardedAlloc`, declared with
//! `#[global_allocator]` in strom's lib.rs and so linked into this binary), which is what makes
//! `kafka-protocol`'s `Vec::with_capacity(untrusted)` harmless. `fuzz/run.sh` checks that before
//! fuzzing (seed `seed-huge-array`: a 4-byte body claiming 2^31 elements).
//!
//! Input layout: byte 0 is a mode. Odd: the rest is one frame body and the size prefix is
//! computed (so mutations reach the decoders instead of breaking the prefix). Even: the rest is
//! a raw byte stream of `[i32 size][frame]...`, exactly as read from a socket.
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind};
use libfuzzer_sys::fuzz_target;
use strom::handlers;
use strom::protocol::Api;
use strom::protocol::{self, FrameError, HeaderPrefix};

/// `socket.request.max.bytes` for the fuzz run: small enough that libFuzzer's inputs can
/// exceed it (exercising the refusal), the default 100 MiB would never be reached.
const MAX_FRAME: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 1 {
        let mut stream = Vec::with_capacity(rest.len() + 4);
        stream.extend_from_slice(&(rest.len() as i32).to_be_bytes());
        stream.extend_from_slice(rest);
        run_stream(&stream);
    } else {
        run_stream(rest);
    }
});

fn run_stream(mut buf: &[u8]) {
    loop {
        let len = match protocol::check_frame(buf, MAX_FRAME) {
            Ok(Some(len)) => len,
            Ok(None) => return, // need more bytes
            Err(e) => {
                // The connection is closed; check the refusal is the right one.
                let raw = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                match e {
                    FrameError::Negative(n) => assert!(n < 0 && n == raw),
                    FrameError::TooLarge { len, max } => {
                        assert!(len > max && len == raw as usize)
                    }
                    FrameError::TooSmall(n) => assert!(n < 8 && n == raw as usize),
                }
                return;
            }
        };
        assert!((8..=MAX_FRAME).contains(&len));
        if buf.len() < 4 + len {
            return; // a partial frame: the connection waits for more
        }
        let frame = Bytes::copy_from_slice(&buf[4..4 + len]);
        buf = &buf[4 + len..];
        if !handle_frame(frame) {
            return; // the connection would be closed
        }
    }
}

/// Mirrors `server::connection::handle_frame` up to dispatch. `false`: connection closed.
fn handle_frame(mut frame: Bytes) -> bool {
    let Some(prefix) = HeaderPrefix::peek(&frame) else {
        return false;
    };
    assert_eq!(
        prefix.api_key,
        i16::from_be_bytes([frame[0], frame[1]]),
        "prefix"
    );
    let key = Api(prefix.api_key);
    let Some(spec) = handlers::spec(key) else {
        return false;
    };
    let version = prefix.api_version;
    if version < spec.min || version > spec.max {
        if key == ApiKey::ApiVersions {
            let reply =
                protocol::api_versions_fallback(prefix.correlation_id, &handlers::advertised());
            // v0 layout: size, correlation id, error code 35 (UNSUPPORTED_VERSION), ranges.
            assert_eq!(
                reply.len() - 4,
                i32::from_be_bytes([reply[0], reply[1], reply[2], reply[3]]) as usize
            );
            assert_eq!(&reply[8..10], &35i16.to_be_bytes());
            return true;
        }
        return false;
    }
    // The registry claims a version (or an API) the crate cannot decode only where
    // protocol::v44 has it.
    // ShareFetch / ShareAcknowledge are decoded by protocol::share at every version.
    let crate_key = key
        .kafka()
        .filter(|k| !matches!(k, ApiKey::ShareFetch | ApiKey::ShareAcknowledge))
        .filter(|k| (k.valid_versions().min..=k.valid_versions().max).contains(&version));
    let header = match protocol::decode_header(&mut frame, key, version) {
        Ok(h) => h,
        Err(_) => return false,
    };
    assert_eq!(header.request_api_key, prefix.api_key);
    assert_eq!(header.request_api_version, version);
    assert_eq!(header.correlation_id, prefix.correlation_id);
    let Some(crate_key) = crate_key else {
        return match protocol::v44::decode_request(key, version, &frame) {
            Some(r) => r.is_ok(),
            None => panic!("{key} v{version} is served but no decoder has it"),
        };
    };
    match RequestKind::decode(crate_key, &mut frame, version) {
        Ok(req) => {
            std::hint::black_box(&req);
            true
        }
        Err(_) => false,
    }
}
