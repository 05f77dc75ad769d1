//! Records of the `__transaction_state` internal topic, in Apache Kafka's layout
//! (TransactionLogKey v0, TransactionLogValue v0; docs/FORMAT.md):
//! key `{i16 0, string transactional_id}`; value `{i16 0, i64 producer_id, i16 producer_epoch,
//! i32 timeout_ms, i8 state, [string topic, [i32 partition]] partitions, i64 last_update_ms,
//! i64 start_ms}`; a null value is a tombstone.

use bytes::{Buf, BufMut};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

impl TxnState {
    pub fn from_i8(v: i8) -> Option<Self> {
        Some(match v {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's names, as `kafka-transactions --describe` prints them.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: Vec<(String, Vec<i32>)>,
    pub last_update_ms: i64,
    pub start_ms: i64,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    out.put_i16(b.len() as i16);
    out.extend_from_slice(b);
}

pub fn encode_key(txn_id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_i16(0);
    put_str(&mut out, txn_id);
    out
}

pub fn encode_value(v: &TxnValue) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_i16(0);
    out.put_i64(v.producer_id);
    out.put_i16(v.producer_epoch);
    out.put_i32(v.timeout_ms);
    out.put_i8(v.state as i8);
    out.put_i32(v.partitions.len() as i32);
    for (t, ps) in &v.partitions {
        put_str(&mut out, t);
        out.put_i32(ps.len() as i32);
        for p in ps {
            out.put_i32(*p);
        }
    }
    out.put_i64(v.last_update_ms);
    out.put_i64(v.start_ms);
    out
}

#[derive(Debug, thiserror::Error)]
#[error("malformed __transaction_state record: {0}")]
pub struct TxnCodecError(&'static str);

fn need(b: &[u8], n: usize) -> Result<(), TxnCodecError> {
    if b.len() < n {
        Err(TxnCodecError("truncated"))
    } else {
        Ok(())
    }
}

fn get_str(b: &mut &[u8]) -> Result<String, TxnCodecError> {
    need(b, 2)?;
    let n = b.get_i16();
    if n < 0 {
        return Err(TxnCodecError("null string"));
    }
    need(b, n as usize)?;
    let s = std::str::from_utf8(&b[..n as usize])
        .map_err(|_| TxnCodecError("not UTF-8"))?
        .to_string();
    b.advance(n as usize);
    Ok(s)
}

pub fn decode_key(mut b: &[u8]) -> Result<String, TxnCodecError> {
    need(b, 2)?;
    let _version = b.get_i16();
    get_str(&mut b)
}

pub fn decode_value(mut b: &[u8]) -> Result<TxnValue, TxnCodecError> {
    let total = b.len();
    need(b, 2 + 8 + 2 + 4 + 1 + 4)?;
    let version = b.get_i16();
    if version != 0 {
        return Err(TxnCodecError("unsupported value version"));
    }
    let producer_id = b.get_i64();
    let producer_epoch = b.get_i16();
    let timeout_ms = b.get_i32();
    let state = TxnState::from_i8(b.get_i8()).ok_or(TxnCodecError("bad state"))?;
    let n = b.get_i32();
    if n as usize > total {
        return Err(TxnCodecError("bad partition count"));
    }
    let mut partitions = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n.max(0) {
        let t = get_str(&mut b)?;
        need(b, 4)?;
        let k = b.get_i32();
        if k < 0 || k as usize * 4 > b.len() {
            return Err(TxnCodecError("bad partition list"));
        }
        let ps = (0..k).map(|_| b.get_i32()).collect();
        partitions.push((t, ps));
    }
    need(b, 16)?;
    let last_update_ms = b.get_i64();
    let start_ms = b.get_i64();
    Ok(TxnValue {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        start_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let v = TxnValue {
            producer_id: 9,
            producer_epoch: 2,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: vec![("t".into(), vec![0, 3])],
            last_update_ms: 5,
            start_ms: 4,
        };
        assert_eq!(decode_value(&encode_value(&v)).expect("value"), v);
        assert_eq!(decode_key(&encode_key("tx-1")).expect("key"), "tx-1");
        assert!(decode_value(&[0, 0, 1]).is_err());
    }
}
