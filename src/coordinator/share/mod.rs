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
//! coordinator would use (`abs(javaHash("group:topicId:partition")) % partitions`), kept by the
//! [`coordinator::ShareCoordinator`] of the broker leading that partition; the share-partition
//! reaches it through a [`store::StateStore`] (local on a single node; in a cluster, the
//! Read/Write/Initialize/DeleteShareGroupState requests between brokers for the keys whose
//! state partition another broker leads). Every write carries the topic partition's leader
//! epoch and the state epoch it read, so a replaced leader or a reset state fences the writes
//! of the share-partition that held it, which then forgets its memory and reads again.

pub mod codec;
pub mod coordinator;
pub mod partition;
pub mod session;
pub mod store;

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

use crate::log::{now_ms, LogError};
use crate::protocol::batch::BatchIter;
use crate::protocol::share::{AckBatch, AcquiredRange};
use crate::protocol::WireError;
use crate::replica::Partition;
use codec::StateKey;
use partition::{AckError, Change, DeadLetter, LogBatch, Outcome, SharePartition};
use session::Sessions;
use store::{Pending, StateStore, StateWrite};

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

struct SlotInner {
    sp: SharePartition,
    /// The state epoch read (an offset reset raises it: writes of older state are fenced).
    state_epoch: i32,
    /// The start offset the store has.
    persisted_start: i64,
    /// The settings of the last operation (lock expiry applies them).
    settings: GroupSettings,
}

/// One share-partition in memory.
pub struct Slot {
    pub key: StateKey,
    pub partition: Arc<Partition>,
    /// The topic partition's leader epoch this share-partition was loaded in: its writes
    /// carry it, and a change of leadership starts it again from the store.
    leader_epoch: i32,
    /// A write of its memory failed: memory is ahead of the store, so the next use starts
    /// it again from what is durable.
    failed: AtomicBool,
    inner: Mutex<SlotInner>,
}

impl Slot {
    /// Whether this is still the share-partition of `t`'s topic partition at `epoch`.
    fn current(&self, t: &Target, epoch: i32) -> bool {
        self.leader_epoch == epoch
            && Arc::ptr_eq(&self.partition, &t.partition)
            && !self.failed.load(Ordering::Acquire)
    }
}

pub struct ShareManager {
    /// Where share state is kept (None until share groups are first used).
    store: RwLock<Option<Arc<dyn StateStore>>>,
    /// `__share_group_state` exists and the store serves it.
    ready: AtomicBool,
    slots: Mutex<HashMap<StateKey, Arc<Slot>>>,
    /// One creation at a time per key (two fetches racing to start the same share-partition
    /// must not both read, or one miss, its state).
    creating: Mutex<HashMap<StateKey, Arc<tokio::sync::Mutex<()>>>>,
    pub sessions: Mutex<Sessions>,
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

/// What a client is answered for a share-partition whose state could not be read or written,
/// as Kafka's `SharePartition` maps its persister's errors: the coordinator moving or loading
/// is COORDINATOR_NOT_AVAILABLE, a fenced leader or state epoch NOT_LEADER_OR_FOLLOWER, a
/// storage error stays one, anything else is UNKNOWN_SERVER_ERROR. The records were not given
/// out in any case.
fn store_code(code: i16) -> i16 {
    let not_available = [
        WireError::NotCoordinator.code(),
        WireError::CoordinatorLoadInProgress.code(),
        WireError::CoordinatorNotAvailable.code(),
    ];
    let fenced = [
        WireError::FencedLeaderEpoch.code(),
        WireError::FencedStateEpoch.code(),
        WireError::NotLeaderOrFollower.code(),
    ];
    if not_available.contains(&code) {
        WireError::CoordinatorNotAvailable.code()
    } else if fenced.contains(&code) {
        WireError::NotLeaderOrFollower.code()
    } else if code == WireError::KafkaStorageError.code() {
        code
    } else {
        WireError::UnknownServerError.code()
    }
}

/// A ShareFetch partition's error for a share-partition whose state is unavailable: none while
/// its share coordinator is loading or moving (the Java client fails the consumer on any
/// code it does not expect in a share fetch; Kafka's group coordinator initializes the state
/// before it assigns the partition, so Kafka's clients do not meet this): the fetch just
/// brings nothing from it and the next one tries again.
fn fetch_error(code: i16) -> i16 {
    let code = store_code(code);
    if code == WireError::CoordinatorNotAvailable.code() {
        0
    } else {
        code
    }
}

impl Default for ShareManager {
    fn default() -> Self {
        Self::new()
    }
}

impl ShareManager {
    pub fn new() -> Self {
        ShareManager {
            store: RwLock::new(None),
            ready: AtomicBool::new(false),
            slots: Mutex::new(HashMap::new()),
            creating: Mutex::new(HashMap::new()),
            sessions: Mutex::new(Sessions::default()),
            released: Notify::new(),
            dead_letters: Mutex::new(None),
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Keeps share state in `store` from now on.
    pub fn set_store(&self, store: Arc<dyn StateStore>) {
        *self.store.write() = Some(store);
    }

    /// Whether a store is set (a cluster sets it when the broker joins).
    pub fn has_store(&self) -> bool {
        self.store.read().is_some()
    }

    /// Serves share groups from now on (`__share_group_state` exists).
    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    fn store(&self) -> Result<Arc<dyn StateStore>, i16> {
        self.store
            .read()
            .clone()
            .ok_or(WireError::CoordinatorNotAvailable.code())
    }

    /// Sends dead letters to `tx` from now on.
    pub fn set_dead_letter_sink(&self, tx: tokio::sync::mpsc::Sender<DeadLetters>) {
        *self.dead_letters.lock() = Some(tx);
    }

    /// Hands one change of `slot` to the store (under its lock, so changes reach the store in
    /// the order they were made). None: nothing to write.
    fn persist(&self, slot: &Slot, inner: &mut SlotInner, change: Change) -> Option<Pending> {
        if slot.failed.load(Ordering::Acquire) {
            // Retired (see [`ShareManager::retire`]): a newer share-partition may have read
            // the state already; nothing of this one may reach the store any more.
            return Some(Pending::Failed(WireError::NotLeaderOrFollower.code()));
        }
        if change.is_empty() && change.start_offset == inner.persisted_start {
            return None;
        }
        let store = match self.store() {
            Ok(s) => s,
            Err(code) => return Some(Pending::Failed(code)),
        };
        let w = StateWrite {
            leader_epoch: slot.leader_epoch,
            state_epoch: inner.state_epoch,
            start_offset: change.start_offset,
            batches: change.batches,
        };
        inner.persisted_start = change.start_offset;
        Some(store.write(&slot.key, w))
    }

    /// Waits for `pending`; on failure memory is ahead of the store, so the share-partition
    /// is forgotten (the next use starts it again from what is durable).
    async fn settle(&self, slot: &Arc<Slot>, pending: Vec<Pending>, what: &str) -> Result<(), i16> {
        let mut result = Ok(());
        for p in pending {
            if let Err(code) = p.wait().await {
                result = Err(code);
            }
        }
        if let Err(code) = result {
            tracing::warn!(group = %slot.key.group, partition = slot.key.partition, code, "{what} not written");
            self.unload(slot);
        }
        result
    }

    /// The share-partition of `t`: in memory, else read from the store, else started where
    /// `share.auto.offset.reset` says (that start is durable before this returns, so a
    /// restart does not move it). A share-partition loaded under another leader epoch of its
    /// topic partition is started again.
    async fn slot(&self, t: &Target, settings: &GroupSettings) -> Result<Arc<Slot>, i16> {
        let epoch = t.partition.leader_epoch();
        if let Some(s) = self.slots.lock().get(&t.key) {
            if s.current(t, epoch) {
                return Ok(s.clone());
            }
        }
        let gate = self
            .creating
            .lock()
            .entry(t.key.clone())
            .or_default()
            .clone();
        let one = gate.lock().await;
        let result = self.create_slot(t, settings, epoch).await;
        drop(one);
        let mut creating = self.creating.lock();
        // The gate goes when no one else waits at it (the map's reference and this one).
        if creating
            .get(&t.key)
            .is_some_and(|g| Arc::ptr_eq(g, &gate) && Arc::strong_count(g) == 2)
        {
            creating.remove(&t.key);
        }
        result
    }

    async fn create_slot(
        &self,
        t: &Target,
        settings: &GroupSettings,
        epoch: i32,
    ) -> Result<Arc<Slot>, i16> {
        let old = self.slots.lock().get(&t.key).cloned();
        if let Some(s) = old {
            if s.current(t, epoch) {
                return Ok(s);
            }
            Self::retire(&s);
        }
        let store = self.store()?;
        let (sp, state_epoch, fresh) =
            match store.read(&t.key, epoch.max(0)).await.map_err(store_code)? {
                Some(st) => (
                    SharePartition::from_state(st.start_offset, &st.batches),
                    st.state_epoch,
                    false,
                ),
                None => {
                    let start = start_offset(&t.partition, settings.auto_offset_reset)
                        .map_err(|e| log_code(&e))?;
                    store
                        .initialize(&t.key, 0, start)
                        .await
                        .map_err(store_code)?;
                    (SharePartition::new(start), 0, true)
                }
            };
        let start = sp.start_offset();
        let slot = Arc::new(Slot {
            key: t.key.clone(),
            partition: t.partition.clone(),
            leader_epoch: epoch,
            failed: AtomicBool::new(false),
            inner: Mutex::new(SlotInner {
                sp,
                state_epoch,
                persisted_start: start,
                settings: settings.clone(),
            }),
        });
        if let Some(replaced) = self.slots.lock().insert(t.key.clone(), slot.clone()) {
            Self::retire(&replaced);
        }
        if !fresh {
            // Copies to the dead-letter topic a restart (or a new leader) interrupted: sent
            // again.
            let pending = slot
                .inner
                .lock()
                .sp
                .archiving(settings.partition.delivery_limit);
            self.send_dead_letters(t, pending, settings);
        }
        Ok(slot)
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
            let mut slots = Vec::with_capacity(targets.len());
            for t in targets {
                slots.push(self.slot(t, settings).await);
            }
            let (out, writes) = self.try_fetch(
                member,
                targets,
                &slots,
                settings,
                max_records,
                record_limit,
                max_bytes,
            );
            let got = out.iter().any(|f| !f.acquired.is_empty() || f.error != 0);
            if got || Instant::now() >= deadline || targets.is_empty() {
                let mut out = out;
                for (i, pending) in writes {
                    let Ok(slot) = &slots[i] else { continue };
                    if let Err(code) = self.settle(slot, pending, "share acquisition").await {
                        out[i] = Fetched {
                            error: fetch_error(code),
                            ..Default::default()
                        };
                    }
                }
                return out;
            }
            // Nothing acquired yet: wait for an append, a release or the end. (A write made
            // meanwhile — a log start that moved — gave out no records.)
            for (i, pending) in writes {
                if let Ok(slot) = &slots[i] {
                    let _ = self.settle(slot, pending, "share state").await;
                }
            }
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
        slots: &[Result<Arc<Slot>, i16>],
        settings: &GroupSettings,
        max_records: i64,
        record_limit: bool,
        max_bytes: usize,
    ) -> (Vec<Fetched>, Vec<(usize, Vec<Pending>)>) {
        let mut out = Vec::with_capacity(targets.len());
        let mut writes = Vec::new();
        let mut budget = max_records.max(1);
        let mut bytes_left = max_bytes.max(1);
        let per_partition = (max_bytes / targets.len().max(1)).max(1);
        for (i, (t, slot)) in targets.iter().zip(slots).enumerate() {
            let slot = match slot {
                Ok(s) => s,
                Err(code) => {
                    out.push(Fetched {
                        error: fetch_error(*code),
                        ..Default::default()
                    });
                    continue;
                }
            };
            if budget <= 0 || bytes_left == 0 {
                out.push(Fetched::default());
                continue;
            }
            match self.acquire_one(
                member,
                t,
                slot,
                settings,
                budget,
                record_limit,
                per_partition.min(bytes_left),
            ) {
                Ok((f, ws)) => {
                    let n: i64 = f.acquired.iter().map(AcquiredRange::len).sum();
                    budget -= n;
                    bytes_left = bytes_left.saturating_sub(f.records.len());
                    if !ws.is_empty() {
                        writes.push((i, ws));
                    }
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

    #[allow(clippy::too_many_arguments)]
    fn acquire_one(
        &self,
        member: &Arc<str>,
        t: &Target,
        slot: &Slot,
        settings: &GroupSettings,
        budget: i64,
        record_limit: bool,
        max_bytes: usize,
    ) -> Result<(Fetched, Vec<Pending>), i16> {
        let mut writes: Vec<Pending> = Vec::new();
        let log = &t.partition.log;
        let mut inner = slot.inner.lock();
        if slot.failed.load(Ordering::Acquire) {
            // Retired meanwhile: the fetch's next round uses the share-partition that
            // replaced it.
            return Ok((Fetched::default(), writes));
        }
        inner.settings = settings.clone();
        if let Some(c) = inner.sp.log_start_moved(log.log_start_offset()) {
            writes.extend(self.persist(slot, &mut inner, c));
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
                        writes.extend(self.persist(slot, &mut inner, c));
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
            writes.extend(self.persist(slot, &mut inner, change));
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
        // A share-partition retired meanwhile (see [`ShareManager::retire`]) is looked up
        // again; its persist would refuse the change.
        let mut tries = 0;
        let slot = loop {
            let slot = self
                .slot(t, settings)
                .await
                .map_err(|code| (code, "share-partition state unavailable".to_string()))?;
            if !slot.failed.load(Ordering::Acquire) || tries == 2 {
                break slot;
            }
            tries += 1;
        };
        let (pending, out) = {
            let mut inner = slot.inner.lock();
            inner.settings = settings.clone();
            let renew_allowed = renew && settings.renew_enabled;
            if renew && !settings.renew_enabled {
                // Well-formed (INVALID_REQUEST otherwise), but the group does not renew locks:
                // Kafka's SharePartition answers INVALID_RECORD_STATE.
                partition::validate_ranges(batches, true).map_err(|e| ack_code(&e))?;
                let renews = batches
                    .iter()
                    .any(|b| b.types.contains(&crate::protocol::share::ACK_RENEW));
                if renews {
                    return Err((
                        WireError::InvalidRecordState.code(),
                        "Renewing acquisition locks is not enabled for the group.".to_string(),
                    ));
                }
            }
            let mut out = inner
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
            (
                self.persist(&slot, &mut inner, std::mem::take(&mut out.change)),
                out,
            )
        };
        self.settle(
            &slot,
            pending.into_iter().collect(),
            "share acknowledgement",
        )
        .await
        .map_err(|code| {
            (
                store_code(code),
                "share acknowledgement not written".to_string(),
            )
        })?;
        // Once `Archiving` is durable, the copies may be written (Kafka's order).
        self.dead_letter(t, &out, settings);
        self.released.notify_waiters();
        Ok(())
    }

    /// Retires a share-partition's memory before another takes its place: under its lock, so
    /// every change it made before is already handed to the store (and a newer one's read,
    /// made after this, sees them: the store keeps each destination's requests in order) and
    /// none after it is (see [`ShareManager::persist`]). Two memories of one share-partition
    /// never hand out records at once.
    fn retire(slot: &Slot) {
        let _order = slot.inner.lock();
        slot.failed.store(true, Ordering::Release);
    }

    /// Forgets a share-partition's memory (it is rebuilt from `__share_group_state` on next
    /// use; a failed write leaves memory ahead of the log).
    fn unload(&self, slot: &Arc<Slot>) {
        Self::retire(slot);
        let mut slots = self.slots.lock();
        if slots.get(&slot.key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(&slot.key);
            tracing::warn!(group = %slot.key.group, partition = slot.key.partition, "share-partition unloaded");
        }
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
        slot: &Arc<Slot>,
        inner: &mut SlotInner,
        change: Change,
        what: &'static str,
    ) {
        if let Some(p) = self.persist(slot, inner, change) {
            let slot = slot.clone();
            tokio::spawn(async move {
                if let Err(code) = p.wait().await {
                    tracing::warn!(group = %slot.key.group, partition = slot.key.partition, code, "{what} not written");
                    slot.failed.store(true, Ordering::Release);
                }
            });
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
        self.persist_in_background(&slot, &mut inner, change, "share archive");
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
            let mut out = inner.sp.release_member(member, &settings.partition);
            if let Some(p) = self.persist(&slot, &mut inner, std::mem::take(&mut out.change)) {
                writes.push((slot.clone(), p));
            }
            drop(inner);
            let t = Target {
                key: key.clone(),
                partition: slot.partition.clone(),
            };
            self.dead_letter(&t, &out, &settings);
        }
        for (slot, p) in writes {
            let _ = self.settle(&slot, vec![p], "share release").await;
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

    /// The share-partitions of `group` that have state (wherever it is kept): each key with
    /// its start offset and the number of finished records at or above it (Kafka's
    /// delivery-complete count).
    pub async fn start_offsets(&self, group: &str) -> Result<Vec<(StateKey, i64, i64)>, i16> {
        let states = self.store()?.group_states(group).await?;
        let mut out: Vec<(StateKey, i64, i64)> = states
            .into_iter()
            .map(|(k, st)| {
                let sp = SharePartition::from_state(st.start_offset, &st.batches);
                (k, sp.start_offset(), sp.finished_count())
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Sets a share-partition's start offset (AlterShareGroupOffsets, the group being empty):
    /// a new state epoch with nothing in flight, durable before this returns. A leader still
    /// holding the old state is fenced on its next write and reads the new one.
    pub async fn reset(&self, key: &StateKey, start_offset: i64) -> Result<(), i16> {
        if let Some(slot) = self.slots.lock().remove(key) {
            drop(slot);
        }
        let store = self.store()?;
        let epoch = store.read(key, -1).await?.map_or(-1, |s| s.state_epoch);
        store.initialize(key, epoch + 1, start_offset).await?;
        self.slots.lock().remove(key);
        self.released.notify_waiters();
        Ok(())
    }

    /// Deletes the state of share-partitions of `group` (DeleteShareGroupOffsets,
    /// DeleteGroups): their tombstones are durable before this returns.
    pub async fn delete(&self, group: &str, keys: &[StateKey]) -> Result<(), i16> {
        for key in keys {
            self.slots.lock().remove(key);
        }
        if keys.is_empty() {
            return Ok(());
        }
        self.store()?.delete(group, keys.to_vec()).await?;
        for key in keys {
            self.slots.lock().remove(key);
        }
        Ok(())
    }

    /// Every share-partition key of `group` that has state.
    pub async fn keys_of(&self, group: &str) -> Result<Vec<StateKey>, i16> {
        Ok(self
            .start_offsets(group)
            .await?
            .into_iter()
            .map(|(k, _, _)| k)
            .collect())
    }

    /// A new share session opened on `partitions` of `group`: those with nothing acquired are
    /// read again from the store on their next use, so a state reset or deleted by the admin
    /// APIs on another broker (the group was empty) is what the new session sees.
    pub fn refresh_idle(&self, group: &str, partitions: &[(Uuid, i32)]) {
        let mut slots = self.slots.lock();
        for (topic_id, partition) in partitions {
            let key = StateKey {
                group: group.to_string(),
                topic_id: *topic_id,
                partition: *partition,
            };
            let idle = slots.get(&key).is_some_and(|s| {
                let inner = s.inner.lock();
                let idle = inner.sp.acquired_count() == 0;
                if idle {
                    s.failed.store(true, Ordering::Release);
                }
                idle
            });
            if idle {
                slots.remove(&key);
            }
        }
    }

    /// Forgets the share-partitions of topic partitions this broker no longer leads (their
    /// sessions stay: the client learns of the move from the fetch's errors).
    pub fn forget_unled(&self, leads: impl Fn(&Partition) -> bool) {
        self.slots.lock().retain(|_, s| {
            let keep = leads(&s.partition);
            if !keep {
                Self::retire(s);
            }
            keep
        });
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
                let mut out = inner.sp.expire_locks(now, &settings.partition);
                if out.change.is_empty() {
                    continue;
                }
                any = true;
                self.persist_in_background(
                    &slot,
                    &mut inner,
                    std::mem::take(&mut out.change),
                    "share lock expiry",
                );
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
