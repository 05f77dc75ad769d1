//! The bytes of the quorum log files (docs/FORMAT.md) and the recovery scan of `raft.log`;
//! the promises are in the parent module's doc.

use std::collections::VecDeque;
use std::io;
use std::path::Path;

use openraft::LogId;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    Entry, Log, LogStoreError, Slot, COPY_CHUNK_BYTES, MAGIC, MAGIC_LEN, RECORD_BODY_BYTES_MAX,
    RECORD_HEADER_LEN,
};
use crate::log::io::{SegmentFile, SharedFile, Storage};

/// Scans `raft.log`, truncating a torn tail; returns the index of the live entries.
pub(super) fn recover(
    path: &Path,
    file: SharedFile,
    purged: Option<LogId<u64>>,
) -> Result<Log, LogStoreError> {
    let corrupt = |pos: u64, reason: String| LogStoreError::Corrupt {
        path: path.display().to_string(),
        pos,
        reason,
    };
    let mut size = file.size()?;
    if size < MAGIC_LEN {
        // New, or torn while being created: nothing was ever appended.
        let mut head = vec![0u8; size as usize];
        file.read_exact_at(&mut head, 0)?;
        if !MAGIC.starts_with(&head) {
            return Err(corrupt(0, "not a quorum log (bad magic)".into()));
        }
        file.write_all_at(MAGIC, 0)?;
        file.set_len(MAGIC_LEN)?;
        file.sync_data()?;
        size = MAGIC_LEN;
    } else {
        let mut head = [0u8; MAGIC.len()];
        file.read_exact_at(&mut head, 0)?;
        if &head != MAGIC {
            return Err(corrupt(0, "not a quorum log (bad magic)".into()));
        }
    }
    let mut log = Log {
        file,
        end: MAGIC_LEN,
        purged,
        slots: VecDeque::new(),
    };
    let mut prev_index: Option<u64> = None;
    let mut body = Vec::new();
    let mut pos = MAGIC_LEN;
    let torn = loop {
        if pos == size {
            break false;
        }
        if size - pos < RECORD_HEADER_LEN {
            break true;
        }
        let mut header = [0u8; RECORD_HEADER_LEN as usize];
        log.file.read_exact_at(&mut header, pos)?;
        let (body_len, len_ok, crc) = parse_header(&header);
        if !len_ok {
            if is_zero_from(&*log.file, pos, size)? {
                // Blocks allocated by a write that never landed read as zeros.
                break true;
            }
            return Err(corrupt(pos, "record length checksum mismatch".into()));
        }
        if body_len as usize > RECORD_BODY_BYTES_MAX || body_len == 0 {
            return Err(corrupt(pos, format!("bad record length {body_len}")));
        }
        let record_end = pos + RECORD_HEADER_LEN + body_len as u64;
        if record_end > size {
            break true;
        }
        body.resize(body_len as usize, 0);
        log.file.read_exact_at(&mut body, pos + RECORD_HEADER_LEN)?;
        if crc32c::crc32c(&body) != crc {
            if record_end == size {
                break true;
            }
            return Err(corrupt(pos, "checksum mismatch".into()));
        }
        let entry: Entry = serde_json::from_slice(&body)
            .map_err(|e| corrupt(pos, format!("undecodable entry: {e}")))?;
        let log_id = entry.log_id;
        if prev_index.is_some_and(|p| log_id.index <= p) {
            return Err(corrupt(
                pos,
                format!("index {} does not increase", log_id.index),
            ));
        }
        prev_index = Some(log_id.index);
        if log.purged.is_none_or(|p| log_id.index > p.index) {
            let want = log.next_index();
            if log_id.index != want {
                return Err(corrupt(
                    pos,
                    format!("hole: expected index {want}, found {}", log_id.index),
                ));
            }
            log.slots.push_back(Slot {
                pos,
                body_len,
                log_id,
            });
        }
        pos = record_end;
        log.end = pos;
    };
    if torn {
        tracing::warn!(
            path = %path.display(),
            pos,
            size,
            "truncating a torn last record of the quorum log"
        );
        log.file.set_len(log.end)?;
        log.file.sync_data()?;
    }
    Ok(log)
}

fn is_zero_from(file: &dyn SegmentFile, pos: u64, size: u64) -> io::Result<bool> {
    let mut buf = vec![0u8; COPY_CHUNK_BYTES.min((size - pos) as usize)];
    let mut at = pos;
    while at < size {
        let n = buf.len().min((size - at) as usize);
        file.read_exact_at(&mut buf[..n], at)?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// The record header for a body of `body`.
pub(super) fn record_header(body: &[u8]) -> [u8; RECORD_HEADER_LEN as usize] {
    let len_bytes = (body.len() as u32).to_be_bytes();
    let mut header = [0u8; RECORD_HEADER_LEN as usize];
    header[..4].copy_from_slice(&len_bytes);
    header[4..8].copy_from_slice(&crc32c::crc32c(&len_bytes).to_be_bytes());
    header[8..].copy_from_slice(&crc32c::crc32c(body).to_be_bytes());
    header
}

/// (body length, whether the length's checksum holds, body checksum).
pub(super) fn parse_header(header: &[u8; RECORD_HEADER_LEN as usize]) -> (u32, bool, u32) {
    let word =
        |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let len_ok = crc32c::crc32c(&header[..4]) == word(4);
    (word(0), len_ok, word(8))
}

/// `<crc32c hex> <json>`: the content of the small whole-file records.
pub(super) fn encode_checked<T: Serialize>(value: &T) -> Result<Vec<u8>, LogStoreError> {
    let json = serde_json::to_string(value).map_err(|e| LogStoreError::Invariant(e.to_string()))?;
    Ok(format!("{:08x} {json}", crc32c::crc32c(json.as_bytes())).into_bytes())
}

pub(super) fn read_checked<T: DeserializeOwned>(
    storage: &dyn Storage,
    path: &Path,
) -> Result<Option<T>, LogStoreError> {
    let bytes = match storage.read_file(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let corrupt = |reason: &str| LogStoreError::Corrupt {
        path: path.display().to_string(),
        pos: 0,
        reason: reason.to_string(),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| corrupt("not UTF-8"))?;
    let (crc, json) = text.split_once(' ').ok_or_else(|| corrupt("no checksum"))?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| corrupt("bad checksum field"))?;
    if crc32c::crc32c(json.as_bytes()) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    serde_json::from_str(json)
        .map(Some)
        .map_err(|e| corrupt(&format!("undecodable: {e}")))
}
