//! The quorum's Raft state machine (openraft's `RaftStateMachine`): hands committed payloads
//! to the application's [`Applier`] in log order, and keeps the latest snapshot on disk.
//!
//! The applied state itself lives in the applier, in memory; what is durable is the snapshot,
//! `<dir>/snapshot.bin` (docs/FORMAT.md): the 8-byte magic `SQSNAP01`, the length of the meta
//! (u32 BE), a CRC-32C (u32 BE) of everything after it, the meta as JSON (openraft's
//! `SnapshotMeta`: last included log id, membership, snapshot id), then the applier's bytes.
//! It is replaced whole with `write_file_synced`, so it is durable before openraft purges the
//! log it covers, and a crash leaves the old snapshot or the new one.
//!
//! At open the snapshot (if any) is installed into the applier and becomes the last applied
//! log id; openraft then re-applies the committed entries after it from the log.
//! A snapshot is built from [`Applier::snapshot`], taken on the state machine task between two
//! applies (so it matches the last applied log id exactly) and written out on the blocking
//! pool. A snapshot never replaces a newer one on disk (a build can overlap an install).

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use parking_lot::Mutex;

use super::log_store::LogStoreError;
use super::{Applier, Entry, TypeConfig, Voter};
use crate::log::io::Storage;

pub(crate) const SNAPSHOT_FILE: &str = "snapshot.bin";
const MAGIC: &[u8; 8] = b"SQSNAP01";
const HEADER_LEN: usize = MAGIC.len() + 8;
/// The largest snapshot meta accepted when reading one back.
const META_BYTES_MAX: usize = 1 << 20;

type Meta = SnapshotMeta<u64, Voter>;

struct SmState {
    last_applied: Option<LogId<u64>>,
    last_membership: StoredMembership<u64, Voter>,
    /// The meta of the snapshot in `snapshot.bin`.
    snapshot: Option<Meta>,
}

struct Shared {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    applier: Arc<dyn Applier>,
    state: Mutex<SmState>,
    /// Serializes writes of `snapshot.bin` (a build and an install may overlap).
    snapshot_io: Mutex<()>,
}

pub(crate) struct StateMachine {
    shared: Arc<Shared>,
}

pub(crate) struct SnapshotBuilder {
    shared: Arc<Shared>,
    meta: Meta,
    data: Vec<u8>,
}

impl StateMachine {
    /// Loads the snapshot in `dir`, if any, into `applier`.
    pub(crate) fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        applier: Arc<dyn Applier>,
    ) -> Result<StateMachine, LogStoreError> {
        let mut state = SmState {
            last_applied: None,
            last_membership: StoredMembership::default(),
            snapshot: None,
        };
        if let Some((meta, data)) = read_snapshot(storage.as_ref(), &dir.join(SNAPSHOT_FILE))? {
            applier.install(&data).map_err(|e| LogStoreError::Corrupt {
                path: dir.join(SNAPSHOT_FILE).display().to_string(),
                pos: 0,
                reason: format!("the applier refused the snapshot: {e}"),
            })?;
            tracing::info!(last = ?meta.last_log_id, bytes = data.len(), "quorum snapshot loaded");
            state.last_applied = meta.last_log_id;
            state.last_membership = meta.last_membership.clone();
            state.snapshot = Some(meta);
        }
        Ok(StateMachine {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                storage,
                applier,
                state: Mutex::new(state),
                snapshot_io: Mutex::new(()),
            }),
        })
    }
}

fn encode_snapshot(meta: &Meta, data: &[u8]) -> Result<Vec<u8>, LogStoreError> {
    let meta_json =
        serde_json::to_vec(meta).map_err(|e| LogStoreError::Invariant(e.to_string()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + meta_json.len() + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(meta_json.len() as u32).to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&meta_json), data);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&meta_json);
    out.extend_from_slice(data);
    Ok(out)
}

fn read_snapshot(
    storage: &dyn Storage,
    path: &Path,
) -> Result<Option<(Meta, Vec<u8>)>, LogStoreError> {
    let mut bytes = match storage.read_file(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let corrupt = |reason: String| LogStoreError::Corrupt {
        path: path.display().to_string(),
        pos: 0,
        reason,
    };
    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt("not a quorum snapshot (bad magic)".into()));
    }
    let word = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let meta_len = word(8) as usize;
    let crc = word(12);
    if meta_len > META_BYTES_MAX || HEADER_LEN + meta_len > bytes.len() {
        return Err(corrupt(format!("bad meta length {meta_len}")));
    }
    if crc32c::crc32c(&bytes[HEADER_LEN..]) != crc {
        return Err(corrupt("checksum mismatch".into()));
    }
    let meta: Meta = serde_json::from_slice(&bytes[HEADER_LEN..HEADER_LEN + meta_len])
        .map_err(|e| corrupt(format!("undecodable meta: {e}")))?;
    let data = bytes.split_off(HEADER_LEN + meta_len);
    Ok(Some((meta, data)))
}

impl Shared {
    /// Writes a snapshot durably unless the one on disk is newer; returns whether it did.
    fn persist(&self, meta: &Meta, data: &[u8]) -> Result<bool, LogStoreError> {
        let _io = self.snapshot_io.lock();
        let current = self.state.lock().snapshot.as_ref().map(|m| m.last_log_id);
        if current.is_some_and(|c| c > meta.last_log_id) {
            return Ok(false);
        }
        self.storage
            .write_file_synced(&self.dir.join(SNAPSHOT_FILE), &encode_snapshot(meta, data)?)?;
        let mut state = self.state.lock();
        if state
            .snapshot
            .as_ref()
            .is_none_or(|c| c.last_log_id <= meta.last_log_id)
        {
            state.snapshot = Some(meta.clone());
        }
        Ok(true)
    }

    async fn persist_blocking(
        self: &Arc<Self>,
        meta: Meta,
        data: Vec<u8>,
    ) -> Result<(Meta, Vec<u8>), StorageError<u64>> {
        let shared = self.clone();
        let signature = meta.signature();
        tokio::task::spawn_blocking(move || {
            shared.persist(&meta, &data)?;
            Ok((meta, data))
        })
        .await
        .map_err(|e| LogStoreError::Io(io::Error::other(format!("snapshot task failed: {e}"))))
        .and_then(|r| r)
        .map_err(|e: LogStoreError| snapshot_err(Some(signature), ErrorVerb::Write, e))
    }
}

fn snapshot_err(
    signature: Option<openraft::storage::SnapshotSignature<u64>>,
    verb: ErrorVerb,
    e: LogStoreError,
) -> StorageError<u64> {
    StorageError::IO {
        source: StorageIOError::new(ErrorSubject::Snapshot(signature), verb, AnyError::new(&e)),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        let data = std::mem::take(&mut self.data);
        let (meta, data) = self
            .shared
            .persist_blocking(self.meta.clone(), data)
            .await?;
        tracing::info!(last = ?meta.last_log_id, bytes = data.len(), "quorum snapshot built");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, Voter>), StorageError<u64>> {
        let state = self.shared.state.lock();
        Ok((state.last_applied, state.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<u64>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut state = self.shared.state.lock();
        let mut responses = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            if state.last_applied.is_some_and(|l| log_id.index <= l.index) {
                // openraft never re-applies; refusing keeps "exactly once" for the applier.
                return Err(StorageError::IO {
                    source: StorageIOError::apply(
                        log_id,
                        AnyError::error(format!("index {} applied twice", log_id.index)),
                    ),
                });
            }
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(payload) => {
                    self.shared.applier.apply(log_id.index, &payload.0)
                }
                EntryPayload::Membership(m) => {
                    state.last_membership = StoredMembership::new(Some(log_id), m);
                }
            }
            state.last_applied = Some(log_id);
            responses.push(log_id.index);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        // Runs on the state machine task, between applies: the applier's state is exactly
        // that of `last_applied`.
        let state = self.shared.state.lock();
        let data = self.shared.applier.snapshot();
        let last = state.last_applied;
        let snapshot_id = format!(
            "{}-{}-{}",
            last.map_or(0, |l| l.leader_id.term),
            last.map_or(0, |l| l.index),
            uuid::Uuid::new_v4().simple()
        );
        SnapshotBuilder {
            shared: self.shared.clone(),
            meta: SnapshotMeta {
                last_log_id: last,
                last_membership: state.last_membership.clone(),
                snapshot_id,
            },
            data,
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let data = snapshot.into_inner();
        // The applier first: if it refuses the snapshot, nothing on disk changed.
        self.shared.applier.install(&data).map_err(|e| {
            snapshot_err(
                Some(meta.signature()),
                ErrorVerb::Write,
                LogStoreError::Invariant(format!("the applier refused the snapshot: {e}")),
            )
        })?;
        {
            let mut state = self.shared.state.lock();
            state.last_applied = meta.last_log_id;
            state.last_membership = meta.last_membership.clone();
        }
        self.shared.persist_blocking(meta.clone(), data).await?;
        tracing::info!(last = ?meta.last_log_id, "quorum snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        let Some(want) = self.shared.state.lock().snapshot.clone() else {
            return Ok(None);
        };
        let shared = self.shared.clone();
        let signature = want.signature();
        let read = tokio::task::spawn_blocking(move || {
            let _io = shared.snapshot_io.lock();
            read_snapshot(shared.storage.as_ref(), &shared.dir.join(SNAPSHOT_FILE))
        })
        .await
        .map_err(|e| LogStoreError::Io(io::Error::other(format!("snapshot task failed: {e}"))))
        .and_then(|r| r)
        .map_err(|e| snapshot_err(Some(signature.clone()), ErrorVerb::Read, e))?;
        match read {
            // A newer snapshot may have replaced `want` meanwhile: serve what is on disk.
            Some((meta, data)) => Ok(Some(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data)),
            })),
            None => Err(snapshot_err(
                Some(signature),
                ErrorVerb::Read,
                LogStoreError::Invariant("snapshot.bin is gone".into()),
            )),
        }
    }
}
