//! Arbitrary bytes as the records of a produce request or a log read: `BatchIter` with CRC
//! verification, then for each valid batch the record walkers (`for_each_record`,
//! `record_timestamps`, the marker reader) with a 1 MiB decompression cap, and the in-place
//! patches (`baseOffset`, `partitionLeaderEpoch`, LogAppendTime) on a copy, whose CRC must
//! still verify.
//!
//! Input layout: byte 0 holds flags. Bit 0: fix up the CRC of every batch-sized chunk before
//! parsing, so mutations get past the checksum into the header and record checks (without it
//! almost every mutation dies at the CRC). The rest is the batch data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strom::protocol::batch::{self, BatchIter, BatchView, HEADER_LEN};
use strom::protocol::records;

const CAP: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut buf = rest.to_vec();
    if flags & 1 == 1 {
        fix_crcs(&mut buf);
    }

    let mut verified = Vec::new();
    let mut consumed = 0usize;
    for item in BatchIter::new(&buf, true) {
        let Ok(view) = item else {
            break;
        };
        // Header invariants `parse` promises to every accessor.
        assert!(view.size() >= HEADER_LEN && view.size() == view.declared_size());
        assert_eq!(view.bytes(), &buf[consumed..consumed + view.size()]);
        assert_eq!(view.stored_crc(), view.computed_crc());
        assert!(view.records_count() >= 1);
        assert_eq!(view.last_offset_delta(), view.records_count() - 1);
        consumed += view.size();
        verified.push((view.base_offset(), view.size()));
        check_records(&view);
        check_patches(&view, flags);
    }
    // Without CRC verification the same batches come out (CRC is the only difference).
    let unverified: Vec<(i64, usize)> = BatchIter::new(&buf, false)
        .map_while(Result::ok)
        .map(|v| (v.base_offset(), v.size()))
        .take(verified.len())
        .collect();
    assert_eq!(unverified, verified);

    // The decompressors alone, on the raw input, for every codec: never more than the cap.
    if flags & 2 == 2 {
        let codec = i16::from((flags >> 2) & 7);
        if let Ok(out) = records::decompress(codec, rest, 4096) {
            assert!(out.len() <= 4096);
        }
    }
});

fn check_records(view: &BatchView<'_>) {
    let mut walked = Vec::new();
    let walk = records::for_each_record(view, CAP, |r| {
        if let Some(k) = r.key {
            assert!(k.len() <= CAP);
        }
        if let Some(v) = r.value {
            assert!(v.len() <= CAP);
        }
        walked.push(r.offset);
    });
    let stamps = records::record_timestamps(view, CAP);
    if let (Ok(()), Ok(stamps)) = (&walk, &stamps) {
        // Both walkers see the same records at the same offsets.
        let offsets: Vec<i64> = stamps.iter().map(|&(o, _)| o).collect();
        assert_eq!(offsets, walked);
        assert_eq!(walked.len(), view.records_count() as usize);
    }
    if view.is_control() {
        let _ = records::marker_is_commit(view);
    }
}

fn check_patches(view: &BatchView<'_>, flags: u8) {
    let mut copy = view.bytes().to_vec();
    let new_base = view
        .base_offset()
        .rotate_left(u32::from(flags))
        .wrapping_add(1);
    batch::patch_base_offset(&mut copy, new_base);
    batch::patch_leader_epoch(&mut copy, i32::from(flags) - 1);
    let patched = BatchView::parse(&copy).expect("offset/epoch patch must keep the CRC valid");
    assert_eq!(patched.base_offset(), new_base);
    assert_eq!(patched.partition_leader_epoch(), i32::from(flags) - 1);
    assert_eq!(patched.records_count(), view.records_count());
    assert_eq!(&copy[HEADER_LEN..], &view.bytes()[HEADER_LEN..]);

    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&copy[..HEADER_LEN]);
    batch::patch_log_append_time(&mut header, &copy[HEADER_LEN..], 1_700_000_000_000);
    copy[..HEADER_LEN].copy_from_slice(&header);
    let lat = BatchView::parse(&copy).expect("LogAppendTime patch recomputes the CRC");
    assert!(lat.is_log_append_time());
    assert_eq!(lat.max_timestamp(), 1_700_000_000_000);
    assert_eq!(lat.compression(), view.compression());
}

/// Recomputes the CRC of every chunk that `peek_size` delimits (as far as the data goes).
fn fix_crcs(buf: &mut [u8]) {
    let mut pos = 0usize;
    while let Ok(Some(size)) = BatchView::peek_size(&buf[pos..]) {
        let Some(end) = pos.checked_add(size).filter(|&e| e <= buf.len()) else {
            return;
        };
        let crc = crc32c::crc32c(&buf[pos + 21..end]);
        buf[pos + 17..pos + 21].copy_from_slice(&crc.to_be_bytes());
        pos = end;
    }
}
