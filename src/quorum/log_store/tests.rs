//! The log store on its own: round trips, recovery from torn tails, refusal of damage,
//! poisoning after a failed fsync.

use std::sync::atomic::Ordering;

use openraft::storage::RaftLogStorageExt;
use openraft::{CommittedLeaderId, EntryPayload};

use super::*;
use crate::log::io::{FaultyStorage, OsStorage};
use crate::quorum::Payload;

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
        payload: if index == 0 {
            EntryPayload::Blank
        } else {
            EntryPayload::Normal(Payload(format!("payload-{term}-{index}").into_bytes()))
        },
    }
}

fn entries(term: u64, indexes: std::ops::Range<u64>) -> Vec<Entry> {
    indexes.map(|i| entry(term, i)).collect()
}

fn os() -> Arc<dyn Storage> {
    Arc::new(OsStorage)
}

fn indexes(store: &LogStore) -> Vec<(u64, u64)> {
    store
        .read_entries(0, u64::MAX, u64::MAX)
        .expect("read")
        .iter()
        .map(|e| (e.log_id.leader_id.term, e.log_id.index))
        .collect()
}

/// (term, index) pairs of `terms`' entries.
fn ids(term: u64, range: std::ops::Range<u64>) -> Vec<(u64, u64)> {
    range.map(|i| (term, i)).collect()
}

#[test]
fn append_read_truncate_purge_round_trip() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = LogStore::open(os(), dir.path()).expect("open");
    assert_eq!(store.log_state(), (None, None));
    store.append_sync(entries(1, 0..10)).expect("append");
    let all = store.read_entries(0, u64::MAX, u64::MAX).expect("read");
    assert_eq!(all, entries(1, 0..10), "entries come back as written");
    assert_eq!(
        store.read_entries(3, 6, u64::MAX).expect("read"),
        entries(1, 3..6)
    );
    assert_eq!(
        store.read_entries(3, 6, 1).expect("read").len(),
        1,
        "a byte limit still returns one entry"
    );
    // Appending out of order is refused: the log has no holes.
    assert!(matches!(
        store.append_sync(vec![entry(1, 12)]),
        Err(LogStoreError::Invariant(_))
    ));

    // A conflicting suffix is replaced.
    store.truncate_sync(7).expect("truncate");
    assert_eq!(store.log_state().1.map(|l| l.index), Some(6));
    store.append_sync(entries(2, 7..9)).expect("append");
    let mut want = ids(1, 0..7);
    want.extend(ids(2, 7..9));
    assert_eq!(indexes(&store), want);

    store
        .purge_sync(LogId::new(CommittedLeaderId::new(1, 1), 3))
        .expect("purge");
    assert_eq!(indexes(&store), want[4..].to_vec());
    drop(store);

    let store = LogStore::open(os(), dir.path()).expect("reopen");
    assert_eq!(
        indexes(&store),
        want[4..].to_vec(),
        "truncation and purge are durable"
    );
    let (purged, last) = store.log_state();
    assert_eq!(purged.map(|l| l.index), Some(3));
    assert_eq!(last, Some(entry(2, 8).log_id));
    store
        .append_sync(entries(2, 9..10))
        .expect("append after reopen");
    assert_eq!(indexes(&store).last(), Some(&(2, 9)));
}

#[test]
fn purge_compacts_the_file_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tmp");
    let opts = LogStoreOptions {
        compact_dead_bytes_min: 0,
    };
    let store = LogStore::open_with(os(), dir.path(), opts.clone()).expect("open");
    store.append_sync(entries(1, 0..100)).expect("append");
    let path = dir.path().join(LOG_FILE);
    let before = std::fs::metadata(&path).expect("stat").len();
    store.purge_sync(entry(1, 89).log_id).expect("purge");
    let after = std::fs::metadata(&path).expect("stat").len();
    assert!(after * 5 < before, "compacted: {before} -> {after} bytes");
    assert_eq!(indexes(&store), ids(1, 90..100));
    store
        .append_sync(entries(1, 100..105))
        .expect("append after compaction");
    drop(store);
    let store = LogStore::open_with(os(), dir.path(), opts).expect("reopen");
    assert_eq!(indexes(&store), ids(1, 90..105));
    assert!(!dir.path().join(COMPACT_FILE).exists());
}

#[test]
fn purge_beyond_the_last_entry_then_append() {
    // What a follower does after installing a snapshot ahead of its log.
    let dir = tempfile::tempdir().expect("tmp");
    let store = LogStore::open(os(), dir.path()).expect("open");
    store.append_sync(entries(1, 0..5)).expect("append");
    let snap = entry(3, 20).log_id;
    store.purge_sync(snap).expect("purge");
    assert_eq!(store.log_state(), (Some(snap), Some(snap)));
    assert!(indexes(&store).is_empty());
    store.append_sync(entries(3, 21..23)).expect("append");
    drop(store);
    let store = LogStore::open(os(), dir.path()).expect("reopen");
    assert_eq!(indexes(&store), ids(3, 21..23));
    assert_eq!(store.log_state().0, Some(snap));
}

/// The byte position where record `n` (0-based) starts.
fn record_pos(path: &Path, n: usize) -> u64 {
    let bytes = std::fs::read(path).expect("read");
    let mut pos = MAGIC.len();
    for _ in 0..n {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes"));
        pos += RECORD_HEADER_LEN as usize + len as usize;
    }
    pos as u64
}

/// Appends to `bytes` what a crash in the middle of appending entry 5 can leave.
fn tear(case: &str, bytes: &mut Vec<u8>) {
    let body = serde_json::to_vec(&entry(1, 5)).expect("json");
    match case {
        "short header" => bytes.extend_from_slice(&[0, 0, 1]),
        "body past the end" => {
            bytes.extend_from_slice(&record_header(&body));
            bytes.extend_from_slice(&body[..body.len() / 2]);
        }
        "zeros" => bytes.extend_from_slice(&[0u8; 4096]),
        "bad checksum on the last record" => {
            bytes.extend_from_slice(&record_header(&body));
            let at = bytes.len() + 3;
            bytes.extend_from_slice(&body);
            bytes[at] ^= 0x20;
        }
        other => panic!("unknown case {other}"),
    }
}

#[test]
fn a_torn_tail_is_truncated_at_reopen() {
    let cases = [
        "short header",
        "body past the end",
        "zeros",
        "bad checksum on the last record",
    ];
    for name in cases {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join(LOG_FILE);
        {
            let store = LogStore::open(os(), dir.path()).expect("open");
            store.append_sync(entries(1, 0..5)).expect("append");
        }
        let good_len = std::fs::metadata(&path).expect("stat").len();
        let mut bytes = std::fs::read(&path).expect("read");
        tear(name, &mut bytes);
        std::fs::write(&path, &bytes).expect("write");

        let store = LogStore::open(os(), dir.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(indexes(&store), ids(1, 0..5), "{name}: whole records kept");
        assert_eq!(
            std::fs::metadata(&path).expect("stat").len(),
            good_len,
            "{name}: the torn part is cut"
        );
        store
            .append_sync(entries(1, 5..6))
            .expect("append after recovery");
        drop(store);
        let store = LogStore::open(os(), dir.path()).expect("reopen");
        assert_eq!(indexes(&store), ids(1, 0..6), "{name}");
    }
}

#[test]
fn a_damaged_record_in_the_middle_is_an_error() {
    // A flipped byte in a body, and one in a length field, of the third of five records.
    for offset_in_record in [RECORD_HEADER_LEN + 5, 1] {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join(LOG_FILE);
        {
            let store = LogStore::open(os(), dir.path()).expect("open");
            store.append_sync(entries(1, 0..5)).expect("append");
        }
        let at = (record_pos(&path, 2) + offset_in_record) as usize;
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[at] ^= 0x01;
        std::fs::write(&path, &bytes).expect("write");
        let opened = LogStore::open(os(), dir.path());
        assert!(
            matches!(opened, Err(LogStoreError::Corrupt { .. })),
            "byte {offset_in_record} of a middle record: {:?}",
            opened.err()
        );
        assert_eq!(
            std::fs::read(&path).expect("read"),
            bytes,
            "nothing is truncated"
        );
    }
}

#[test]
fn a_damaged_vote_file_is_an_error() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join(VOTE_FILE), b"00000000 {\"leader_id\":1}").expect("write");
    assert!(matches!(
        LogStore::open(os(), dir.path()),
        Err(LogStoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn the_openraft_api_appends_durably_and_keeps_the_vote() {
    let dir = tempfile::tempdir().expect("tmp");
    let vote = Vote::new_committed(4, 2);
    {
        let mut store = LogStore::open(os(), dir.path()).expect("open");
        // `blocking_append` waits for the LogFlushed callback.
        store
            .blocking_append(entries(1, 0..3))
            .await
            .expect("append");
        store.save_vote(&vote).await.expect("vote");
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id, Some(entry(1, 2).log_id));
        let mut reader = store.get_log_reader().await;
        let got = reader.try_get_log_entries(1..=2).await.expect("read");
        assert_eq!(got, entries(1, 1..3));
        store.truncate(entry(1, 2).log_id).await.expect("truncate");
        store.purge(entry(1, 0).log_id).await.expect("purge");
    }
    let mut store = LogStore::open(os(), dir.path()).expect("reopen");
    assert_eq!(store.read_vote().await.expect("vote"), Some(vote));
    let state = store.get_log_state().await.expect("state");
    assert_eq!(state.last_purged_log_id, Some(entry(1, 0).log_id));
    assert_eq!(state.last_log_id, Some(entry(1, 1).log_id));
}

#[tokio::test]
async fn a_failed_fsync_poisons_the_log_until_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let storage = FaultyStorage::default();
    let mut store = LogStore::open(Arc::new(storage.clone()), dir.path()).expect("open");
    store
        .blocking_append(entries(1, 0..3))
        .await
        .expect("append");

    storage.faults.fail_sync.store(true, Ordering::Release);
    assert!(store.blocking_append(entries(1, 3..4)).await.is_err());
    assert!(store.is_poisoned());
    // The disk is fine again, but a retried fsync could report success for data the failed
    // one dropped: every write stays refused.
    storage.faults.fail_sync.store(false, Ordering::Release);
    assert!(matches!(
        store.append_sync(entries(1, 4..5)),
        Err(LogStoreError::Poisoned)
    ));
    assert!(store.save_vote(&Vote::new(2, 1)).await.is_err());
    assert!(matches!(
        store.truncate_sync(1),
        Err(LogStoreError::Poisoned)
    ));
    assert!(matches!(
        store.purge_sync(entry(1, 0).log_id),
        Err(LogStoreError::Poisoned)
    ));
    assert_eq!(
        store.read_entries(0, 3, u64::MAX).expect("reads go on"),
        entries(1, 0..3)
    );
    drop(store);

    let mut store = LogStore::open(Arc::new(storage), dir.path()).expect("reopen");
    assert!(!store.is_poisoned());
    let last = store.log_state().1.map(|l| l.index);
    assert!(
        last == Some(2) || last == Some(3),
        "the acknowledged entries are there: {last:?}"
    );
    let next = last.map_or(0, |l| l + 1);
    store
        .blocking_append(entries(1, next..next + 1))
        .await
        .expect("append after restart");
}

#[tokio::test]
async fn a_failed_vote_write_poisons() {
    let dir = tempfile::tempdir().expect("tmp");
    let storage = FaultyStorage::default();
    let mut store = LogStore::open(Arc::new(storage.clone()), dir.path()).expect("open");
    storage.faults.fail_sync.store(true, Ordering::Release);
    assert!(store.save_vote(&Vote::new(1, 1)).await.is_err());
    storage.faults.fail_sync.store(false, Ordering::Release);
    assert!(store.is_poisoned());
    assert!(store.blocking_append(entries(1, 0..1)).await.is_err());
    assert_eq!(store.read_vote().await.expect("vote"), None);
}

/// The bytes on disk are a format (docs/FORMAT.md): an openraft upgrade that changed its JSON
/// would make old logs unreadable, so it must fail here first.
#[test]
fn the_record_format_is_pinned() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = LogStore::open(os(), dir.path()).expect("open");
    store
        .append_sync(vec![entry(2, 0), entry(2, 1)])
        .expect("append");
    let bytes = std::fs::read(dir.path().join(LOG_FILE)).expect("read");
    let mut want = b"SQRAFT01".to_vec();
    for body in [
        r#"{"log_id":{"leader_id":{"term":2,"node_id":1},"index":0},"payload":"Blank"}"#,
        r#"{"log_id":{"leader_id":{"term":2,"node_id":1},"index":1},"payload":{"Normal":"7061796c6f61642d322d31"}}"#,
    ] {
        let len = (body.len() as u32).to_be_bytes();
        want.extend_from_slice(&len);
        want.extend_from_slice(&crc32c::crc32c(&len).to_be_bytes());
        want.extend_from_slice(&crc32c::crc32c(body.as_bytes()).to_be_bytes());
        want.extend_from_slice(body.as_bytes());
    }
    assert_eq!(bytes, want);
}
