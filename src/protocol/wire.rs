//! Kafka's primitive wire types, for the message versions we encode and decode by hand
//! ([`super::v44`]): big-endian integers, unsigned varints, UUIDs, compact (flexible-version)
//! strings and arrays, and tagged-field sections.
//!
//! [`Reader`] never panics on hostile input: every read checks what is left, and a declared
//! length larger than the bytes that remain is an error before anything is allocated.

use anyhow::{bail, Result};
use bytes::{BufMut, BytesMut};
use uuid::Uuid;

/// A cursor over a request body.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            bail!("{n} bytes wanted, {} left", self.buf.len());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next `n` bytes, raw.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        self.take(n)
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn i8(&mut self) -> Result<i8> {
        Ok(self.take(1)?[0] as i8)
    }

    pub fn bool(&mut self) -> Result<bool> {
        Ok(self.i8()? != 0)
    }

    pub fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into()?))
    }

    pub fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into()?))
    }

    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into()?))
    }

    pub fn uuid(&mut self) -> Result<Uuid> {
        Ok(Uuid::from_bytes(self.take(16)?.try_into()?))
    }

    pub fn uvarint(&mut self) -> Result<u32> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.take(1)?[0];
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == 4 && b > 0x0f {
                    bail!("unsigned varint overflows 32 bits");
                }
                return Ok(value);
            }
        }
        bail!("unsigned varint longer than 5 bytes")
    }

    /// A compact length: the varint holds length + 1, 0 meaning null.
    fn compact_len(&mut self) -> Result<Option<usize>> {
        match self.uvarint()? {
            0 => Ok(None),
            n => Ok(Some(n as usize - 1)),
        }
    }

    pub fn compact_nullable_string(&mut self) -> Result<Option<String>> {
        match self.compact_len()? {
            None => Ok(None),
            Some(n) => Ok(Some(std::str::from_utf8(self.take(n)?)?.to_string())),
        }
    }

    /// A classic (non-flexible) string: int16 length, -1 null.
    pub fn nullable_string(&mut self) -> Result<Option<String>> {
        let n = self.i16()?;
        if n < 0 {
            return Ok(None);
        }
        Ok(Some(
            std::str::from_utf8(self.take(n as usize)?)?.to_string(),
        ))
    }

    pub fn string(&mut self) -> Result<String> {
        match self.nullable_string()? {
            Some(s) => Ok(s),
            None => bail!("null where a string is required"),
        }
    }

    pub fn compact_string(&mut self) -> Result<String> {
        match self.compact_nullable_string()? {
            Some(s) => Ok(s),
            None => bail!("null where a string is required"),
        }
    }

    /// The element count of a compact array (None: null). Each element takes at least
    /// `min_element` bytes, so a count the remaining bytes cannot hold is refused up front.
    pub fn compact_array_len(&mut self, min_element: usize) -> Result<Option<usize>> {
        let n = self.compact_len()?;
        if let Some(n) = n {
            if n.saturating_mul(min_element.max(1)) > self.buf.len() {
                bail!("array of {n} elements in {} bytes", self.buf.len());
            }
        }
        Ok(n)
    }

    /// Skips a tagged-field section (we know none of the tags these versions define as
    /// meaningful to us; unknown tags are skipped, as Kafka does).
    pub fn skip_tagged_fields(&mut self) -> Result<()> {
        let count = self.uvarint()?;
        for _ in 0..count {
            let _tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<()> {
        if !self.buf.is_empty() {
            bail!("{} bytes after the end of the message", self.buf.len());
        }
        Ok(())
    }
}

/// Appends to a response body.
pub struct Writer<'a> {
    pub buf: &'a mut BytesMut,
}

impl Writer<'_> {
    pub fn i8(&mut self, v: i8) {
        self.buf.put_i8(v);
    }

    pub fn bool(&mut self, v: bool) {
        self.buf.put_u8(u8::from(v));
    }

    pub fn i16(&mut self, v: i16) {
        self.buf.put_i16(v);
    }

    pub fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    pub fn i64(&mut self, v: i64) {
        self.buf.put_i64(v);
    }

    pub fn uuid(&mut self, v: &Uuid) {
        self.buf.put_slice(v.as_bytes());
    }

    pub fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    pub fn compact_nullable_string(&mut self, v: Option<&str>) {
        match v {
            None => self.uvarint(0),
            Some(s) => {
                self.uvarint(s.len() as u32 + 1);
                self.buf.put_slice(s.as_bytes());
            }
        }
    }

    pub fn compact_string(&mut self, v: &str) {
        self.compact_nullable_string(Some(v));
    }

    /// A classic (non-flexible) string: int16 length.
    pub fn string(&mut self, v: &str) {
        self.buf.put_i16(v.len() as i16);
        self.buf.put_slice(v.as_bytes());
    }

    pub fn compact_array_len(&mut self, n: usize) {
        self.uvarint(n as u32 + 1);
    }

    /// An empty tagged-field section.
    pub fn no_tagged_fields(&mut self) {
        self.uvarint(0);
    }
}

/// The Kafka-written bodies in tests/fixtures/wire (see its README), for codec tests.
#[cfg(test)]
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/wire/{name}.hex",
        env!("CARGO_MANIFEST_DIR")
    );
    let hex = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let hex = hex.trim();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_overlong_ones_are_refused() {
        for v in [0u32, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut buf = BytesMut::new();
            Writer { buf: &mut buf }.uvarint(v);
            let mut r = Reader::new(&buf);
            assert_eq!(r.uvarint().unwrap(), v);
            r.finish().unwrap();
        }
        assert!(Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01])
            .uvarint()
            .is_err());
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x1f])
            .uvarint()
            .is_err());
        assert!(Reader::new(&[0x80]).uvarint().is_err());
    }

    #[test]
    fn hostile_lengths_are_errors_not_allocations() {
        // A string claiming 2^31 bytes, an array claiming 2^31 elements, in 6 bytes.
        assert!(Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x08, b'x'])
            .compact_string()
            .is_err());
        assert!(Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x08, 0])
            .compact_array_len(1)
            .is_err());
        assert!(Reader::new(&[0x00]).compact_string().is_err());
        assert_eq!(
            Reader::new(&[0x00]).compact_nullable_string().unwrap(),
            None
        );
    }
}
