//! Share groups (KIP-932): the share-partitions — (group, topic, partition) — that members of
//! share groups fetch from and acknowledge, their share sessions, and their durable state on
//! `__share_group_state`.
//!
//! A share-partition lives on the broker leading its topic partition, as Kafka's
//! `SharePartitionManager` keeps it: [`partition::SharePartition`] is its state machine,
//! [`ShareManager`] runs it against the partition's log. Every change of durable state is one
//! record on `__share_group_state` ([`codec`]: a ShareUpdate with the offsets that changed, a
//! ShareSnapshot of the whole state every `share.coordinator.snapshot.update.records.per.snapshot`
//! updates, and when a share-partition starts), appended in the order the changes were made
//! and fsynced before the response that depends on it goes out: acquired records (with their
//! delivery count), acknowledgements, releases and lock expiries. Kafka does not persist an
//! acquisition, so its delivery counts can fall back after a failover; Strom's cannot, so
//! `share.delivery.count.limit` holds across crashes. A restart replays the records: what was
//! acquired becomes available again with its count kept, what was acknowledged is never
//! delivered again.
//!
//! The share state of a key lives on the `__share_group_state` partition Kafka's share
//! coordinator would use (`abs(javaHash("group:topicId:partition")) % partitions`). On a single
//! node every partition of that topic is local; a cluster does not serve share groups yet
//! (the state partition can be led by another broker, and WriteShareGroupState between
//! brokers is not built), so the share APIs are advertised only by a single node.

pub mod codec;
pub mod partition;
pub mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::coordinator::runtime::{replay, CoordinatorPartition, Replayed, Write};
use crate::log::{now_ms, LogError};
use crate::protocol::batch::BatchIter;
use crate::protocol::records::build_batch;
use crate::protocol::share::{AckBatch, AcquiredRange};
use crate::protocol::WireError;
use crate::replica::Partition;
use codec::{StateKey, StateValue, SNAPSHOT, UPDATE};
use partition::{AckError, Change, DeadLetter, LogBatch, Outcome, SharePartition};
use session::Sessions;

pub const STATE_TOPIC: &str = "__share_group_state";

/// The first log read of an acquisition is sized at this many bytes per record wanted (at
/// least [`MIN_CHUNK`]); later reads double it, at most [`MAX_READS`] reads per partition.
const CHUNK_BYTES_PER_RECORD: usize = 256;
const MIN_CHUNK: usize = 64 << 10;
const MAX_READS: usize = 8;

/// `share.auto.offset.reset`: where a share-partition with no state starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOffsetReset {
    Earliest,
    Latest,
    /// The first record at most this many milliseconds old.
    ByDuration(i64),
}

/// A group's dead-letter topic (KIP-1191).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterTopic {
    pub topic: String,
    pub copy_record: bool,
}

/// A share group's settings: its group configs over the broker's defaults.
#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub partition: partition::Settings,
    pub auto_offset_reset: AutoOffsetReset,
    pub read_committed: bool,
    pub renew_enabled: bool,
    pub dead_letter: Option<DeadLetterTopic>,
}

/// Records to copy to a dead-letter topic: `offsets` of `key`'s partition, for `reason`.
#[derive(Clone)]
pub struct DeadLetters {
    pub key: StateKey,
    pub topic: DeadLetterTopic,
    pub partition: Arc<Partition>,
    pub records: Vec<(i64, DeadLetter, i16)>,
}

/// A partition to fetch from.
#[derive(Clone)]
pub struct Target {
    pub key: StateKey,
    pub partition: Arc<Partition>,
}

/// What one partition of a ShareFetch got.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub records: Bytes,
    pub acquired: Vec<AcquiredRange>,
    pub error: i16,
}

struct Loaded {
    sp: SharePartition,
    snapshot_epoch: i32,
    state_epoch: i32,
}

struct SlotInner {
    sp: SharePartition,
    /// Updates written since the last snapshot.
    updates: i32,
    snapshot_epoch: i32,
    state_epoch: i32,
    /// The start offset the log has (what replay would rebuild).
    persisted_start: i64,
    /// The settings of the last operation (lock expiry applies them).
    settings: GroupSettings,
}

/// One share-partition in memory.
pub struct Slot {
    pub key: StateKey,
    pub partition: Arc<Partition>,
    inner: Mutex<SlotInner>,
}

pub struct ShareManager {
    /// `__share_group_state` partitions by index (empty until loaded).
    state_parts: RwLock<Vec<Arc<CoordinatorPartition>>>,
    loaded: AtomicBool,
    /// State replayed at load, taken by a share-partition when it is first used.
    persisted: Mutex<HashMap<StateKey, Loaded>>,
    slots: Mutex<HashMap<StateKey, Arc<Slot>>>,
    pub sessions: Mutex<Sessions>,
    updates_per_snapshot: i32,
    /// Woken whenever records may have become available to fetch without an append (a
    /// release, an expired lock, a reset).
    released: Notify,
    /// Where dead letters go (the broker's dead-letter writer); None: they are only archived.
    dead_letters: Mutex<Option<tokio::sync::mpsc::Sender<DeadLetters>>>,
}

fn ack_code(e: &AckError) -> (i16, String) {
    match e {
        AckError::InvalidRequest(m) => (WireError::InvalidRequest.code(), m.clone()),
        AckError::InvalidRecordState(m) => (WireError::InvalidRecordState.code(), m.clone()),
    }
}

fn log_code(e: &LogError) -> i16 {
    match e {
        LogError::NotLeader(_) => WireError::NotLeaderOrFollower.code(),
        LogError::NotEnoughReplicas { .. } => WireError::NotEnoughReplicas.code(),
        _ => WireError::KafkaStorageError.code(),
    }
}

impl ShareManager {
    pub fn new(updates_per_snapshot: i32) -> Self {
        ShareManager {
            state_parts: RwLock::new(Vec::new()),
            loaded: AtomicBool::new(false),
            persisted: Mutex::new(HashMap::new()),
            slots: Mutex::new(HashMap::new()),
            sessions: Mutex::new(Sessions::default()),
            updates_per_snapshot,
            released: Notify::new(),
            dead_letters: Mutex::new(None),
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Sends dead letters to `tx` from now on.
    pub fn set_dead_letter_sink(&self, tx: tokio::sync::mpsc::Sender<DeadLetters>) {
        *self.dead_letters.lock() = Some(tx);
    }

    /// Replays every `__share_group_state` partition and serves them.
    pub fn load(&self, partitions: Vec<Arc<Partition>>) -> Result<(), LogError> {
        let mut persisted: HashMap<StateKey, Loaded> = HashMap::new();
        for p in &partitions {
            replay(&p.log, |r| {
                let Replayed::Record { key, value, .. } = r else {
                    return;
                };
                let (kind, key) = match codec::decode_key(key) {
                    Ok(k) => k,
                    Err(e) => {
                        tracing::warn!(error = %e, "skipping a share state record");
                        return;
                    }
                };
                let Some(value) = value else {
                    if kind == SNAPSHOT {
                        persisted.remove(&key);
                    }
                    return;
                };
                let v = match codec::decode_value(kind, value) {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, "skipping a share state record");
                        return;
                    }
                };
                if kind == SNAPSHOT {
                    persisted.insert(
                        key,
                        Loaded {
                            sp: SharePartition::from_state(v.start_offset, &v.batches),
                            snapshot_epoch: v.snapshot_epoch,
                            state_epoch: v.state_epoch,
                        },
                    );
                } else if let Some(l) = persisted.get_mut(&key) {
                    l.sp.apply_durable(v.start_offset, &v.batches);
                }
            })?;
        }
        tracing::info!(share_partitions = persisted.len(), "share state loaded");
        *self.persisted.lock() = persisted;
        *self.state_parts.write() = partitions
            .into_iter()
            .map(CoordinatorPartition::new)
            .collect();
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    fn state_partition(&self, key: &StateKey) -> Option<Arc<CoordinatorPartition>> {
        let parts = self.state_parts.read();
        if parts.is_empty() {
            return None;
        }
        let i = crate::coordinator::partition_for(&key.coordinator_key(), parts.len() as i32);
        parts.get(i as usize).cloned()
    }

    /// Appends one state record for `key` (under its slot's lock, so records are in the order
    /// the changes were made): a snapshot when due, else an update.
    fn persist(
        &self,
        key: &StateKey,
        inner: &mut SlotInner,
        change: &Change,
        force_snapshot: bool,
    ) -> Result<Option<Write>, LogError> {
        if !force_snapshot && change.is_empty() && change.start_offset == inner.persisted_start {
            return Ok(None);
        }
        let cp = self
            .state_partition(key)
            .ok_or_else(|| LogError::NotLeader(STATE_TOPIC.to_string()))?;
        let snapshot = force_snapshot || inner.updates >= self.updates_per_snapshot;
        let now = now_ms();
        let value = if snapshot {
            let full = inner.sp.durable_state();
            inner.snapshot_epoch += 1;
            StateValue {
                kind: SNAPSHOT,
                snapshot_epoch: inner.snapshot_epoch,
                state_epoch: inner.state_epoch,
                leader_epoch: 0,
                start_offset: full.start_offset,
                create_timestamp: now,
                write_timestamp: now,
                batches: full.batches,
            }
        } else {
            StateValue {
                kind: UPDATE,
                snapshot_epoch: inner.snapshot_epoch,
                state_epoch: 0,
                leader_epoch: 0,
                start_offset: change.start_offset,
                create_timestamp: 0,
                write_timestamp: 0,
                batches: change.batches.clone(),
            }
        };
        let k = codec::encode_key(value.kind, key);
        let v = codec::encode_value(&value);
        let data = build_batch(&[(Some(&k[..]), Some(&v[..]))], now);
        let w = cp.append(&data, None)?;
        if snapshot {
            inner.updates = 0;
        } else {
            inner.updates += 1;
        }
        inner.persisted_start = value.start_offset;
        Ok(Some(w))
    }

    /// The share-partition of `t`, loaded from its state or started where
    /// `share.auto.offset.reset` says (that start is written at once, so a restart does not
    /// move it). The returned write must be awaited before records it covers are answered.
    fn slot(
        &self,
        t: &Target,
        settings: &GroupSettings,
    ) -> Result<(Arc<Slot>, Option<Write>), LogError> {
        // One creation at a time, under the map's lock: two fetches racing to create the same
        // share-partition must not both take (or one miss) its replayed state.
        let mut slots = self.slots.lock();
        if let Some(s) = slots.get(&t.key) {
            return Ok((s.clone(), None));
        }
        let loaded = self.persisted.lock().remove(&t.key);
        let fresh = loaded.is_none();
        let l = match loaded {
            Some(l) => l,
            None => Loaded {
                sp: SharePartition::new(start_offset(&t.partition, settings.auto_offset_reset)?),
                snapshot_epoch: -1,
                state_epoch: 0,
            },
        };
        let start = l.sp.start_offset();
        let slot = Arc::new(Slot {
            key: t.key.clone(),
            partition: t.partition.clone(),
            inner: Mutex::new(SlotInner {
                sp: l.sp,
                updates: 0,
                snapshot_epoch: l.snapshot_epoch,
                state_epoch: l.state_epoch,
                persisted_start: start,
                settings: settings.clone(),
            }),
        });
        let write = if fresh {
            let mut inner = slot.inner.lock();
            let change = Change {
                start_offset: start,
                batches: Vec::new(),
            };
            self.persist(&t.key, &mut inner, &change, true)?
        } else {
            None
        };
        slots.insert(t.key.clone(), slot.clone());
        drop(slots);
        if !fresh {
            // Copies to the dead-letter topic a restart interrupted: sent again.
            let pending = slot
                .inner
                .lock()
                .sp
                .archiving(settings.partition.delivery_limit);
            self.send_dead_letters(t, pending, settings);
        }
        Ok((slot, write))
    }

    /// ShareFetch's acquisition: records for `member` from `targets`, at most `max_records`
    /// in all (a request-wide budget, as Kafka's) and `max_bytes` in all, waiting until
    /// `deadline` while none is available. Each partition's result is returned in order;
    /// every acquisition is durable before this returns.
    #[allow(clippy::too_many_arguments)]
    pub async fn fetch(
        &self,
        member: &Arc<str>,
        targets: &[Target],
        settings: &GroupSettings,
        max_records: i64,
        record_limit: bool,
        max_bytes: usize,
        deadline: Instant,
    ) -> Vec<Fetched> {
        loop {
            let notify = Arc::new(Notify::new());
            for t in targets {
                t.partition.add_waiter(&notify);
            }
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let (out, writes) = self.try_fetch(
                member,
                targets,
                settings,
                max_records,
                record_limit,
                max_bytes,
            );
            let got = out.iter().any(|f| !f.acquired.is_empty() || f.error != 0);
            if got || Instant::now() >= deadline || targets.is_empty() {
                let mut out = out;
                for (i, w) in writes {
                    if let Err(e) = w.durable().await {
                        tracing::warn!(error = %e, "share state not durable");
                        out[i] = Fetched {
                            error: WireError::KafkaStorageError.code(),
                            ..Default::default()
                        };
                    }
                }
                return out;
            }
            // Nothing acquired yet: wait for an append, a release or the end. (A write made
            // meanwhile — a share-partition's first snapshot — gave out no records; a later
            // fsync of the same log covers it.)
            tokio::select! {
                _ = notify.notified() => {}
                _ = &mut released => {}
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn try_fetch(
        &self,
        member: &Arc<str>,
        targets: &[Target],
        settings: &GroupSettings,
        max_records: i64,
        record_limit: bool,
        max_bytes: usize,
    ) -> (Vec<Fetched>, Vec<(usize, Write)>) {
        let mut out = Vec::with_capacity(targets.len());
        let mut writes = Vec::new();
        let mut budget = max_records.max(1);
        let mut bytes_left = max_bytes.max(1);
        let per_partition = (max_bytes / targets.len().max(1)).max(1);
        for (i, t) in targets.iter().enumerate() {
            if budget <= 0 || bytes_left == 0 {
                out.push(Fetched::default());
                continue;
            }
            match self.acquire_one(
                member,
                t,
                settings,
                budget,
                record_limit,
                per_partition.min(bytes_left),
            ) {
                Ok((f, ws)) => {
                    let n: i64 = f.acquired.iter().map(AcquiredRange::len).sum();
                    budget -= n;
                    bytes_left = bytes_left.saturating_sub(f.records.len());
                    writes.extend(ws.into_iter().map(|w| (i, w)));
                    out.push(f);
                }
                Err(code) => out.push(Fetched {
                    error: code,
                    ..Default::default()
                }),
            }
        }
        (out, writes)
    }

    fn acquire_one(
        &self,
        member: &Arc<str>,
        t: &Target,
        settings: &GroupSettings,
        budget: i64,
        record_limit: bool,
        max_bytes: usize,
    ) -> Result<(Fetched, Vec<Write>), i16> {
        let (slot, first) = self.slot(t, settings).map_err(|e| log_code(&e))?;
        let mut writes: Vec<Write> = first.into_iter().collect();
        let log = &t.partition.log;
        let mut inner = slot.inner.lock();
        inner.settings = settings.clone();
        if let Some(c) = inner.sp.log_start_moved(log.log_start_offset()) {
            if let Some(w) = self
                .persist(&t.key, &mut inner, &c, false)
                .map_err(|e| log_code(&e))?
            {
                writes.push(w);
            }
        }
        let hw = t.partition.high_watermark();
        let upper = if settings.read_committed {
            hw.min(log.last_stable_offset())
        } else {
            hw
        };
        // Read what the budget needs, not `max_bytes` at once (a client's fetch.max.bytes is
        // 50 MiB: reading all of it to hand out 500 records made a deep backlog slow): a first
        // chunk sized by the record budget, doubled while more records are wanted.
        let mut chunk = (budget.max(1) as usize)
            .saturating_mul(CHUNK_BYTES_PER_RECORD)
            .clamp(MIN_CHUNK, max_bytes.max(1));
        let mut bytes_left = max_bytes.max(1);
        let mut acquired: Vec<AcquiredRange> = Vec::new();
        let mut pieces: Vec<Bytes> = Vec::new();
        for _ in 0..MAX_READS {
            let taken: i64 = acquired.iter().map(AcquiredRange::len).sum();
            if taken >= budget || bytes_left == 0 {
                break;
            }
            let Some(from) = inner.sp.next_fetch_offset(&settings.partition) else {
                break;
            };
            if from >= upper {
                break;
            }
            let read = match log.read(from, chunk.min(bytes_left), upper, true) {
                Ok(r) => r,
                Err(LogError::OffsetOutOfRange { log_start, .. }) => {
                    if let Some(c) = inner.sp.log_start_moved(log_start) {
                        if let Some(w) = self
                            .persist(&t.key, &mut inner, &c, false)
                            .map_err(|e| log_code(&e))?
                        {
                            writes.push(w);
                        }
                    }
                    break;
                }
                Err(e) => return Err(log_code(&e)),
            };
            if read.data.is_empty() {
                break;
            }
            let aborted = if settings.read_committed {
                log.aborted_transactions(from, upper)
            } else {
                Vec::new()
            };
            // Batch boundaries (and byte positions) of what was read.
            let mut batches: Vec<(LogBatch, usize, usize)> = Vec::new();
            let mut pos = 0usize;
            for b in BatchIter::new(&read.data, false) {
                let Ok(b) = b else { break };
                let size = b.size();
                let skip = b.is_control()
                    || (b.is_transactional()
                        && aborted.iter().any(|a| {
                            a.producer_id == b.producer_id()
                                && a.first_offset <= b.base_offset()
                                && b.base_offset() <= a.last_offset
                        }));
                batches.push((
                    LogBatch {
                        base_offset: b.base_offset(),
                        last_offset: b.last_offset(),
                        skip,
                    },
                    pos,
                    pos + size,
                ));
                pos += size;
            }
            let log_batches: Vec<LogBatch> = batches.iter().map(|(b, _, _)| *b).collect();
            let end_before = inner.sp.end_offset();
            let (got, change) = inner.sp.acquire(
                member,
                &log_batches,
                budget - taken,
                record_limit,
                &settings.partition,
                now_ms(),
            );
            if let Some(w) = self
                .persist(&t.key, &mut inner, &change, false)
                .map_err(|e| log_code(&e))?
            {
                writes.push(w);
            }
            if let (Some(first), Some(last)) = (got.first(), got.last()) {
                let keep: Vec<&(LogBatch, usize, usize)> = batches
                    .iter()
                    .filter(|(b, _, _)| {
                        b.last_offset >= first.first_offset && b.base_offset <= last.last_offset
                    })
                    .collect();
                if let (Some(a), Some(z)) = (keep.first(), keep.last()) {
                    let piece = read.data.slice(a.1..z.2);
                    bytes_left = bytes_left.saturating_sub(piece.len());
                    pieces.push(piece);
                }
            } else if inner.sp.end_offset() == end_before {
                // Nothing acquired and the window did not move: nothing more to read now.
                break;
            }
            acquired.extend(got);
            chunk = chunk.saturating_mul(2).min(max_bytes.max(1));
        }
        drop(inner);
        let n: i64 = acquired.iter().map(AcquiredRange::len).sum();
        crate::metrics::global()
            .share_acquired
            .inc_by(n.max(0) as u64);
        let records = match pieces.len() {
            0 => Bytes::new(),
            1 => pieces.pop().expect("one piece"),
            _ => {
                let mut all = bytes::BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
                for p in &pieces {
                    all.extend_from_slice(p);
                }
                all.freeze()
            }
        };
        Ok((
            Fetched {
                records,
                acquired,
                error: 0,
            },
            writes,
        ))
    }

    /// Acknowledgements of `member` for one partition: applied all or nothing, durable before
    /// this returns. Errors are Kafka's per-partition codes.
    pub async fn acknowledge(
        &self,
        member: &str,
        t: &Target,
        batches: &[AckBatch],
        settings: &GroupSettings,
        renew: bool,
    ) -> Result<(), (i16, String)> {
        if batches.is_empty() {
            return Ok(());
        }
        let (slot, first) = self
            .slot(t, settings)
            .map_err(|e| (log_code(&e), e.to_string()))?;
        let write = {
            let mut inner = slot.inner.lock();
            inner.settings = settings.clone();
            let renew_allowed = renew && settings.renew_enabled;
            let out = inner
                .sp
                .acknowledge(
                    member,
                    batches,
                    renew_allowed,
                    &settings.partition,
                    now_ms(),
                )
                .map_err(|e| ack_code(&e))?;
            for b in batches {
                let span = (b.last_offset - b.first_offset + 1).max(0) as u64;
                if b.types.len() == 1 {
                    crate::metrics::global().share_ack(b.types[0], span);
                } else {
                    for t in &b.types {
                        crate::metrics::global().share_ack(*t, 1);
                    }
                }
            }
            let w = self
                .persist(&t.key, &mut inner, &out.change, false)
                .map_err(|e| {
                    // Memory went ahead of the log: rebuild from what is durable.
                    tracing::warn!(error = %e, "share acknowledgement not written");
                    (log_code(&e), e.to_string())
                });
            if w.is_err() {
                drop(inner);
                self.unload(&t.key);
            }
            (w?, out)
        };
        let (write, out) = write;
        for w in first.into_iter().chain(write) {
            w.durable()
                .await
                .map_err(|e| (WireError::KafkaStorageError.code(), e.to_string()))?;
        }
        // Once `Archiving` is durable, the copies may be written (Kafka's order).
        self.dead_letter(t, &out, settings);
        self.released.notify_waiters();
        Ok(())
    }

    /// Forgets a share-partition's memory (it is rebuilt from `__share_group_state` on next
    /// use; a failed write leaves memory ahead of the log).
    fn unload(&self, key: &StateKey) {
        self.slots.lock().remove(key);
        tracing::warn!(group = %key.group, partition = key.partition, "share-partition unloaded");
    }

    /// Sends records that went to `Archiving` to the dead-letter writer. Bounded and never
    /// blocking (KIP-1191 is best effort): without a writer, a dead-letter topic or room in
    /// the queue, the records are archived without a copy.
    fn dead_letter(&self, t: &Target, out: &Outcome, settings: &GroupSettings) {
        self.send_dead_letters(t, out.dead_letters.clone(), settings);
    }

    fn send_dead_letters(
        &self,
        t: &Target,
        records: Vec<(i64, DeadLetter, i16)>,
        settings: &GroupSettings,
    ) {
        if records.is_empty() {
            return;
        }
        let sink = self.dead_letters.lock().clone();
        if let (Some(topic), Some(tx)) = (settings.dead_letter.clone(), sink) {
            let d = DeadLetters {
                key: t.key.clone(),
                topic,
                partition: t.partition.clone(),
                records,
            };
            match tx.try_send(d) {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(group = %t.key.group, "dead-letter queue full: records archived without a copy");
                    let d = e.into_inner();
                    let offsets: Vec<i64> = d.records.iter().map(|r| r.0).collect();
                    self.archive_now(&t.key, &offsets);
                    return;
                }
            }
        }
        let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
        self.archive_now(&t.key, &offsets);
    }

    /// Writes `change` (see [`ShareManager::persist`]) and makes it durable in the background:
    /// for changes no response waits on (archives, lock expiries).
    fn persist_in_background(
        &self,
        key: &StateKey,
        inner: &mut SlotInner,
        change: &Change,
        what: &'static str,
    ) {
        match self.persist(key, inner, change, false) {
            Ok(Some(w)) => {
                tokio::spawn(async move {
                    if let Err(e) = w.durable().await {
                        tracing::warn!(error = %e, "{what} not durable");
                    }
                });
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "{what} not written"),
        }
    }

    /// Archives records whose dead-letter copy is done (written, or failed for good); the
    /// change is written at once and made durable in the background.
    pub fn archive_now(&self, key: &StateKey, offsets: &[i64]) {
        let Some(slot) = self.slots.lock().get(key).cloned() else {
            return;
        };
        let mut inner = slot.inner.lock();
        let change = inner.sp.archive(offsets);
        self.persist_in_background(key, &mut inner, &change, "share archive");
        drop(inner);
        self.released.notify_waiters();
    }

    /// Releases every record `member` holds in `partitions` (its session ended).
    pub async fn release_member(&self, group: &str, member: &str, partitions: &[(Uuid, i32)]) {
        let mut writes = Vec::new();
        for (topic_id, partition) in partitions {
            let key = StateKey {
                group: group.to_string(),
                topic_id: *topic_id,
                partition: *partition,
            };
            let Some(slot) = self.slots.lock().get(&key).cloned() else {
                continue;
            };
            let mut inner = slot.inner.lock();
            let settings = inner.settings.clone();
            let out = inner.sp.release_member(member, &settings.partition);
            match self.persist(&key, &mut inner, &out.change, false) {
                Ok(w) => writes.extend(w),
                Err(e) => tracing::warn!(error = %e, "share release not written"),
            }
            drop(inner);
            let t = Target {
                key: key.clone(),
                partition: slot.partition.clone(),
            };
            self.dead_letter(&t, &out, &settings);
        }
        for w in writes {
            if let Err(e) = w.durable().await {
                tracing::warn!(error = %e, "share release not durable");
            }
        }
        self.released.notify_waiters();
    }

    /// Ends `member`'s share session (a request at epoch -1): its records are released after
    /// the response, as Kafka does.
    pub fn end_session(self: &Arc<Self>, group: &str, member: &str) {
        if let Some(s) = self.sessions.lock().remove(group, member) {
            let me = self.clone();
            let (group, member) = (group.to_string(), member.to_string());
            tokio::spawn(async move { me.release_member(&group, &member, &s.partitions).await });
        }
    }

    /// A client connection closed: its sessions end and their records are released.
    pub async fn connection_closed(&self, connection: SocketAddr) {
        let gone = self.sessions.lock().remove_connection(connection);
        for (group, member, partitions) in gone {
            self.release_member(&group, &member, &partitions).await;
        }
    }

    /// The start offset of each share-partition of `group` (in memory or only on disk), and
    /// the number of finished records at or above it (Kafka's delivery-complete count).
    pub fn start_offsets(&self, group: &str) -> Vec<(StateKey, i64, i64)> {
        let mut out: Vec<(StateKey, i64, i64)> = self
            .slots
            .lock()
            .iter()
            .filter(|(k, _)| k.group == group)
            .map(|(k, s)| {
                let i = s.inner.lock();
                (k.clone(), i.sp.start_offset(), i.sp.finished_count())
            })
            .collect();
        out.extend(
            self.persisted
                .lock()
                .iter()
                .filter(|(k, _)| k.group == group)
                .map(|(k, l)| (k.clone(), l.sp.start_offset(), l.sp.finished_count())),
        );
        out.sort();
        out
    }

    /// Sets a share-partition's start offset (AlterShareGroupOffsets, the group being empty):
    /// a new state with nothing in flight, durable before this returns.
    pub async fn reset(&self, key: &StateKey, start_offset: i64) -> Result<(), LogError> {
        let write = {
            let slot = self.slots.lock().remove(key);
            let old = slot.as_ref().map(|s| {
                let i = s.inner.lock();
                (i.snapshot_epoch, i.state_epoch)
            });
            let old = old.or_else(|| {
                self.persisted
                    .lock()
                    .remove(key)
                    .map(|l| (l.snapshot_epoch, l.state_epoch))
            });
            let (snapshot_epoch, state_epoch) = old.unwrap_or((-1, 0));
            let mut inner = SlotInner {
                sp: SharePartition::new(start_offset),
                updates: 0,
                snapshot_epoch,
                state_epoch: state_epoch + 1,
                persisted_start: start_offset,
                // Not used: this state only goes to the replayed map; the next fetch makes the
                // share-partition with the group's settings.
                settings: GroupSettings {
                    partition: partition::Settings {
                        lock_ms: 30_000,
                        delivery_limit: 5,
                        max_in_flight: 2000,
                        dead_letter: false,
                    },
                    auto_offset_reset: AutoOffsetReset::Latest,
                    read_committed: false,
                    renew_enabled: true,
                    dead_letter: None,
                },
            };
            let change = Change {
                start_offset,
                batches: Vec::new(),
            };
            let w = self.persist(key, &mut inner, &change, true)?;
            self.persisted.lock().insert(
                key.clone(),
                Loaded {
                    sp: inner.sp,
                    snapshot_epoch: inner.snapshot_epoch,
                    state_epoch: inner.state_epoch,
                },
            );
            w
        };
        if let Some(w) = write {
            w.durable().await?;
        }
        self.released.notify_waiters();
        Ok(())
    }

    /// Deletes the state of share-partitions (DeleteShareGroupOffsets, DeleteGroups): their
    /// tombstones are durable before this returns.
    pub async fn delete(&self, keys: &[StateKey]) -> Result<(), LogError> {
        let mut writes = Vec::new();
        for key in keys {
            self.slots.lock().remove(key);
            self.persisted.lock().remove(key);
            let Some(cp) = self.state_partition(key) else {
                continue;
            };
            let k1 = codec::encode_key(SNAPSHOT, key);
            let k2 = codec::encode_key(UPDATE, key);
            let data = build_batch(&[(Some(&k1[..]), None), (Some(&k2[..]), None)], now_ms());
            writes.push(cp.append(&data, None)?);
        }
        for w in writes {
            w.durable().await?;
        }
        Ok(())
    }

    /// Every share-partition key of `group`.
    pub fn keys_of(&self, group: &str) -> Vec<StateKey> {
        self.start_offsets(group)
            .into_iter()
            .map(|(k, _, _)| k)
            .collect()
    }

    /// Expires acquisition locks until `shutdown`: expired records become available again
    /// (or are archived at the delivery limit), durably, and waiting fetches are woken.
    pub async fn run_timers(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let now = now_ms();
            let slots: Vec<Arc<Slot>> = self.slots.lock().values().cloned().collect();
            let mut any = false;
            for slot in slots {
                let mut inner = slot.inner.lock();
                if inner.sp.next_deadline_ms() > now {
                    continue;
                }
                let settings = inner.settings.clone();
                let out = inner.sp.expire_locks(now, &settings.partition);
                if out.change.is_empty() {
                    continue;
                }
                any = true;
                self.persist_in_background(&slot.key, &mut inner, &out.change, "share lock expiry");
                drop(inner);
                let t = Target {
                    key: slot.key.clone(),
                    partition: slot.partition.clone(),
                };
                self.dead_letter(&t, &out, &settings);
            }
            if any {
                self.released.notify_waiters();
            }
            let in_flight: usize = self
                .slots
                .lock()
                .values()
                .map(|s| s.inner.lock().sp.acquired_count())
                .sum();
            let m = crate::metrics::global();
            m.share_in_flight.set(in_flight as i64);
            m.share_sessions.set(self.sessions.lock().len() as i64);
        }
    }
}

/// Where a share-partition with no state starts (`share.auto.offset.reset`).
fn start_offset(p: &Partition, reset: AutoOffsetReset) -> Result<i64, LogError> {
    Ok(match reset {
        AutoOffsetReset::Earliest => p.log.log_start_offset(),
        AutoOffsetReset::Latest => p.high_watermark(),
        AutoOffsetReset::ByDuration(ms) => {
            match p.log.find_batch_by_timestamp(now_ms().saturating_sub(ms))? {
                Some(b) => crate::protocol::batch::BatchView::parse_header(&b)
                    .map(|v| v.base_offset())
                    .unwrap_or_else(|_| p.high_watermark()),
                None => p.high_watermark(),
            }
            .min(p.high_watermark())
        }
    })
}
