//! Share-partition state in a cluster (Kafka's `DefaultStatePersister`): a share-partition
//! lives on the broker leading its topic partition, its state on the broker leading the
//! `__share_group_state` partition of its key. [`ClusterStore`] sends each read, write,
//! initialization and deletion to the leader of the key's state partition — this broker's own
//! share coordinator when it leads it, else ReadShareGroupState / WriteShareGroupState /
//! InitializeShareGroupState / DeleteShareGroupState v0 to that broker over `peer.rs` (the
//! handlers of those APIs serve the other side). Leaders are looked up in the committed
//! metadata at each request; a request to a broker that no longer leads the partition is
//! answered NOT_COORDINATOR, and the share-partition that sent it starts again from what is
//! durable.
//!
//! Writes of one share-partition must apply in the order they were made: each goes into the
//! queue of its destination broker (under the share-partition's lock), and one task per
//! destination sends the queue in order, what has gathered in one request (one entry per
//! write, in order; the receiving handler applies them in order). Reads of share-partition
//! leaders go through the same queue, so a share-partition read again after its memory was
//! retired sees every write the retired memory made.
//!
//! Between Strom brokers only, ReadShareGroupState with no topics asks for every share-partition
//! of the group whose state the receiving broker leads (the admin APIs' "all partitions of the
//! group"), and a leader epoch of -1 reads without fencing; an unknown key answers state epoch
//! -1.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};

use futures::future::BoxFuture;
use kafka_protocol::messages::{
    delete_share_group_state_request, initialize_share_group_state_request,
    read_share_group_state_request, write_share_group_state_request, ApiKey,
    DeleteShareGroupStateRequest, DeleteShareGroupStateResponse, InitializeShareGroupStateRequest,
    InitializeShareGroupStateResponse, ReadShareGroupStateRequest, ReadShareGroupStateResponse,
    WriteShareGroupStateRequest, WriteShareGroupStateResponse,
};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::broker::Broker;
use crate::coordinator::share::codec::StateKey;
use crate::coordinator::share::coordinator::LocalStore;
use crate::coordinator::share::partition::StateBatch;
use crate::coordinator::share::store::{Pending, StateStore, StateWrite, StoredState};
use crate::coordinator::share::STATE_TOPIC;
use crate::protocol::WireError;

/// Writes sent in one WriteShareGroupState request at most.
const WRITES_PER_REQUEST: usize = 256;

/// Where a key's state is.
enum Route {
    Local,
    Remote(String),
}

/// A request to one destination broker, sent in queue order.
enum Queued {
    Write {
        key: StateKey,
        write: StateWrite,
        done: oneshot::Sender<i16>,
    },
    /// Behind the writes queued before it, so it sees them.
    Read {
        key: StateKey,
        leader_epoch: i32,
        done: oneshot::Sender<Result<Option<StoredState>, i16>>,
    },
}

/// A write taken from the queue.
struct QueuedWrite {
    key: StateKey,
    write: StateWrite,
    done: oneshot::Sender<i16>,
}

pub struct ClusterStore {
    broker: Weak<Broker>,
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Queued>>>,
}

/// Has `broker`'s share-partitions keep their state through the cluster.
pub fn install(broker: &Arc<Broker>) {
    broker.shares.set_store(Arc::new(ClusterStore {
        broker: Arc::downgrade(broker),
        queues: Mutex::new(HashMap::new()),
    }));
}

fn not_coordinator() -> i16 {
    WireError::NotCoordinator.code()
}

fn group_id(group: &str) -> StrBytes {
    StrBytes::from_string(group.to_string())
}

/// The state partition's leader, by address (or this broker).
fn route(broker: &Broker, key: &StateKey) -> Result<Route, i16> {
    if broker.share_states.serves(key) {
        return Ok(Route::Local);
    }
    let meta = broker
        .metadata
        .topic(STATE_TOPIC)
        .ok_or(WireError::CoordinatorNotAvailable.code())?;
    let index = crate::coordinator::partition_for(&key.coordinator_key(), meta.partitions);
    let leader = broker
        .metadata
        .partition_state(&meta.id, index)
        .map_or(-1, |s| s.leader);
    if leader == broker.config.node_id {
        // Led here, not loaded yet (the reconciliation is on its way).
        return Err(WireError::CoordinatorLoadInProgress.code());
    }
    match broker.metadata.broker(leader) {
        Some(b) if !b.fenced => Ok(Route::Remote(format!("{}:{}", b.host, b.port))),
        _ => Err(WireError::CoordinatorNotAvailable.code()),
    }
}

fn to_wire_batches(batches: &[StateBatch]) -> Vec<write_share_group_state_request::StateBatch> {
    batches
        .iter()
        .map(|b| {
            write_share_group_state_request::StateBatch::default()
                .with_first_offset(b.first_offset)
                .with_last_offset(b.last_offset)
                .with_delivery_state(b.state)
                .with_delivery_count(b.delivery_count)
        })
        .collect()
}

impl ClusterStore {
    fn local(&self) -> Result<(Arc<Broker>, LocalStore), i16> {
        let b = self.broker.upgrade().ok_or(not_coordinator())?;
        let local = LocalStore(b.share_states.clone());
        Ok((b, local))
    }

    fn queue(&self, addr: &str) -> mpsc::UnboundedSender<Queued> {
        let mut queues = self.queues.lock();
        if let Some(tx) = queues.get(addr).filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(send_writes(self.broker.clone(), addr.to_string(), rx));
        queues.insert(addr.to_string(), tx.clone());
        tx
    }
}

/// Sends the requests queued for the broker at `addr`, in order: consecutive writes of one
/// group in one WriteShareGroupState, each read alone.
async fn send_writes(broker: Weak<Broker>, addr: String, mut rx: mpsc::UnboundedReceiver<Queued>) {
    let mut next: Option<Queued> = None;
    loop {
        let first = match next.take() {
            Some(q) => q,
            None => match rx.recv().await {
                Some(q) => q,
                None => return,
            },
        };
        let Some(b) = broker.upgrade() else {
            fail(first);
            while let Ok(q) = rx.try_recv() {
                fail(q);
            }
            return;
        };
        let (key, write, done) = match first {
            Queued::Read {
                key,
                leader_epoch,
                done,
            } => {
                let got = read_remote(
                    &b,
                    &addr,
                    &key.group,
                    std::slice::from_ref(&key),
                    leader_epoch,
                )
                .await;
                let _ = done.send(match got {
                    Ok(got) => match got.into_iter().find(|(k, _, _)| *k == key) {
                        Some((_, 0, state)) => Ok(state),
                        Some((_, code, _)) => Err(code),
                        None => Err(not_coordinator()),
                    },
                    Err(code) => Err(code),
                });
                continue;
            }
            Queued::Write { key, write, done } => (key, write, done),
        };
        // The writes of the same group queued behind it (up to a read or another group).
        let mut run = vec![QueuedWrite { key, write, done }];
        while run.len() < WRITES_PER_REQUEST {
            match rx.try_recv() {
                Ok(Queued::Write { key, write, done }) if key.group == run[0].key.group => {
                    run.push(QueuedWrite { key, write, done })
                }
                Ok(other) => {
                    next = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        send_run(&b, &addr, run).await;
    }
}

fn fail(q: Queued) {
    match q {
        Queued::Write { done, .. } => {
            let _ = done.send(not_coordinator());
        }
        Queued::Read { done, .. } => {
            let _ = done.send(Err(not_coordinator()));
        }
    }
}

/// One WriteShareGroupState with `run` (one group), each answered with its entry's code.
async fn send_run(b: &Broker, addr: &str, run: Vec<QueuedWrite>) {
    let req = WriteShareGroupStateRequest::default()
        .with_group_id(group_id(&run[0].key.group))
        .with_topics(
            run.iter()
                .map(|q| {
                    write_share_group_state_request::WriteStateData::default()
                        .with_topic_id(q.key.topic_id)
                        .with_partitions(vec![
                            write_share_group_state_request::PartitionData::default()
                                .with_partition(q.key.partition)
                                .with_state_epoch(q.write.state_epoch)
                                .with_leader_epoch(q.write.leader_epoch)
                                .with_start_offset(q.write.start_offset)
                                .with_state_batches(to_wire_batches(&q.write.batches)),
                        ])
                })
                .collect(),
        );
    let resp: Result<WriteShareGroupStateResponse, String> = b
        .peers
        .request(addr, ApiKey::WriteShareGroupState, 0, &req)
        .await;
    match resp {
        Ok(r) => {
            let answers: Vec<(uuid::Uuid, i32, i16)> = r
                .results
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(move |p| (t.topic_id, p.partition, p.error_code))
                })
                .collect();
            for (i, q) in run.into_iter().enumerate() {
                let code = match answers.get(i) {
                    Some((t, p, code)) if *t == q.key.topic_id && *p == q.key.partition => *code,
                    _ => WireError::UnknownServerError.code(),
                };
                let _ = q.done.send(code);
            }
        }
        Err(e) => {
            tracing::debug!(%addr, error = %e, "WriteShareGroupState failed");
            for q in run {
                let _ = q.done.send(not_coordinator());
            }
        }
    }
}

/// Reads `keys` of `group` from the broker at `addr` (no keys: every key of the group there).
async fn read_remote(
    b: &Broker,
    addr: &str,
    group: &str,
    keys: &[StateKey],
    leader_epoch: i32,
) -> Result<Vec<(StateKey, i16, Option<StoredState>)>, i16> {
    let mut topics: BTreeMap<uuid::Uuid, Vec<i32>> = BTreeMap::new();
    for k in keys {
        topics.entry(k.topic_id).or_default().push(k.partition);
    }
    let req = ReadShareGroupStateRequest::default()
        .with_group_id(group_id(group))
        .with_topics(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    read_share_group_state_request::ReadStateData::default()
                        .with_topic_id(t)
                        .with_partitions(
                            ps.into_iter()
                                .map(|p| {
                                    read_share_group_state_request::PartitionData::default()
                                        .with_partition(p)
                                        .with_leader_epoch(leader_epoch)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let resp: ReadShareGroupStateResponse = b
        .peers
        .request(addr, ApiKey::ReadShareGroupState, 0, &req)
        .await
        .map_err(|e| {
            tracing::debug!(%addr, error = %e, "ReadShareGroupState failed");
            not_coordinator()
        })?;
    let mut out = Vec::new();
    for t in &resp.results {
        for p in &t.partitions {
            let key = StateKey {
                group: group.to_string(),
                topic_id: t.topic_id,
                partition: p.partition,
            };
            let state = (p.error_code == 0 && p.state_epoch >= 0).then(|| StoredState {
                state_epoch: p.state_epoch,
                leader_epoch,
                start_offset: p.start_offset,
                batches: p
                    .state_batches
                    .iter()
                    .map(|b| StateBatch {
                        first_offset: b.first_offset,
                        last_offset: b.last_offset,
                        state: b.delivery_state,
                        delivery_count: b.delivery_count,
                    })
                    .collect(),
            });
            out.push((key, p.error_code, state));
        }
    }
    Ok(out)
}

impl StateStore for ClusterStore {
    fn read(
        &self,
        key: &StateKey,
        leader_epoch: i32,
    ) -> BoxFuture<'static, Result<Option<StoredState>, i16>> {
        let key = key.clone();
        // Routed and queued now, in the caller's order with its writes.
        let (b, local) = match self.local() {
            Ok(x) => x,
            Err(code) => return Box::pin(async move { Err(code) }),
        };
        match route(&b, &key) {
            Err(code) => Box::pin(async move { Err(code) }),
            Ok(Route::Local) => local.read(&key, leader_epoch),
            Ok(Route::Remote(addr)) => {
                let (done, rx) = oneshot::channel();
                let sent = self.queue(&addr).send(Queued::Read {
                    key,
                    leader_epoch,
                    done,
                });
                Box::pin(async move {
                    sent.map_err(|_| not_coordinator())?;
                    rx.await.map_err(|_| not_coordinator())?
                })
            }
        }
    }

    fn write(&self, key: &StateKey, w: StateWrite) -> Pending {
        let (b, local) = match self.local() {
            Ok(x) => x,
            Err(code) => return Pending::Failed(code),
        };
        match route(&b, key) {
            Err(code) => Pending::Failed(code),
            Ok(Route::Local) => local.write(key, w),
            Ok(Route::Remote(addr)) => {
                let (done, rx) = oneshot::channel();
                match self.queue(&addr).send(Queued::Write {
                    key: key.clone(),
                    write: w,
                    done,
                }) {
                    Ok(()) => Pending::Remote(rx),
                    Err(_) => Pending::Failed(not_coordinator()),
                }
            }
        }
    }

    fn initialize(
        &self,
        key: &StateKey,
        state_epoch: i32,
        start_offset: i64,
    ) -> BoxFuture<'static, Result<(), i16>> {
        let key = key.clone();
        let this = self.local();
        Box::pin(async move {
            let (b, local) = this?;
            match route(&b, &key)? {
                Route::Local => local.initialize(&key, state_epoch, start_offset).await,
                Route::Remote(addr) => {
                    let req = InitializeShareGroupStateRequest::default()
                        .with_group_id(group_id(&key.group))
                        .with_topics(vec![
                            initialize_share_group_state_request::InitializeStateData::default()
                                .with_topic_id(key.topic_id)
                                .with_partitions(vec![
                                    initialize_share_group_state_request::PartitionData::default()
                                        .with_partition(key.partition)
                                        .with_state_epoch(state_epoch)
                                        .with_start_offset(start_offset),
                                ]),
                        ]);
                    let resp: InitializeShareGroupStateResponse = b
                        .peers
                        .request(&addr, ApiKey::InitializeShareGroupState, 0, &req)
                        .await
                        .map_err(|_| not_coordinator())?;
                    let code = resp
                        .results
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .map(|p| p.error_code)
                        .next()
                        .unwrap_or(not_coordinator());
                    if code == 0 {
                        Ok(())
                    } else {
                        Err(code)
                    }
                }
            }
        })
    }

    fn delete(&self, group: &str, keys: Vec<StateKey>) -> BoxFuture<'static, Result<(), i16>> {
        let group = group.to_string();
        let this = self.local();
        Box::pin(async move {
            let (b, local) = this?;
            let mut mine = Vec::new();
            let mut remote: BTreeMap<String, Vec<StateKey>> = BTreeMap::new();
            for k in keys {
                match route(&b, &k)? {
                    Route::Local => mine.push(k),
                    Route::Remote(addr) => remote.entry(addr).or_default().push(k),
                }
            }
            local.delete(&group, mine).await?;
            for (addr, keys) in remote {
                let mut topics: BTreeMap<uuid::Uuid, Vec<i32>> = BTreeMap::new();
                for k in &keys {
                    topics.entry(k.topic_id).or_default().push(k.partition);
                }
                let req = DeleteShareGroupStateRequest::default().with_group_id(group_id(&group)).with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            delete_share_group_state_request::DeleteStateData::default().with_topic_id(t).with_partitions(
                                ps.into_iter()
                                    .map(|p| delete_share_group_state_request::PartitionData::default().with_partition(p))
                                    .collect(),
                            )
                        })
                        .collect(),
                );
                let resp: DeleteShareGroupStateResponse = b
                    .peers
                    .request(&addr, ApiKey::DeleteShareGroupState, 0, &req)
                    .await
                    .map_err(|_| not_coordinator())?;
                if let Some(code) = resp
                    .results
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code)
                    .find(|c| *c != 0)
                {
                    return Err(code);
                }
            }
            Ok(())
        })
    }

    fn group_states(
        &self,
        group: &str,
    ) -> BoxFuture<'static, Result<Vec<(StateKey, StoredState)>, i16>> {
        let group = group.to_string();
        let this = self.local();
        Box::pin(async move {
            let (b, local) = this?;
            let mut out: BTreeMap<StateKey, StoredState> =
                local.group_states(&group).await?.into_iter().collect();
            let me = b.config.node_id;
            let others: Vec<String> = b
                .live_brokers()
                .into_iter()
                .filter(|r| r.node != me)
                .map(|r| format!("{}:{}", r.host, r.port))
                .collect();
            let asks = others
                .iter()
                .map(|addr| read_remote(&b, addr, &group, &[], -1));
            for got in futures::future::join_all(asks).await {
                for (k, code, state) in got? {
                    if let (0, Some(state)) = (code, state) {
                        out.entry(k).or_insert(state);
                    }
                }
            }
            Ok(out.into_iter().collect())
        })
    }
}
