//! A broker of a multi-node cluster (other voters in `controller.quorum.voters`): what it does beside serving
//! clients, as three supervised tasks (started by [`crate::tasks::spawn_background`]):
//!
//! - [`Node::heartbeats`]: tells the metadata quorum's leader, every
//!   `broker.heartbeat.interval.ms`, that this broker is alive (Kafka's BrokerHeartbeat).
//! - [`Node::controller`]: on the node that leads the metadata quorum only, the active
//!   controller: every [`CONTROLLER_TICK`] it commits what [`crate::metadata`]'s controller
//!   decides from who heartbeated within `broker.session.timeout.ms` — fencing silent brokers
//!   (and, within [`DISCONNECT_GRACE`], brokers whose heartbeat connection closed: a process
//!   killed with SIGKILL has its sockets closed by the kernel, so a crash fails over in about
//!   a second rather than a session timeout; a broker cut off by the network is still found
//!   by the timeout),
//!   electing new partition leaders from the ISR, unfencing brokers that came back. A new
//!   controller gives every unfenced broker one session timeout of grace (it has heard nobody
//!   yet), as Kafka's does.
//! - [`Node::replicas`]: acts on the committed metadata whenever it changes (and every
//!   [`REPLICA_TICK`]): hosts the partitions assigned to this broker, leads the ones it is leader
//!   of, follows the others with a fetcher ([`crate::replica::fetcher`]) toward the leader's
//!   registered address, applies ISR changes, and stops hosting partitions of deleted topics.
//!   A broker the controller fenced (or not yet unfenced) leads nothing. The group
//!   coordinator's share of `__consumer_offsets` follows: a partition this broker starts
//!   leading is loaded into it, one it stops leading is unloaded. As a leader it proposes
//!   ISR changes — followers lagging past `replica.lag.time.max.ms` out, caught-up unfenced
//!   ones in — as partition changes conditional on the partition epoch (Kafka's
//!   AlterPartition); a proposed member counts for the high watermark until the change is
//!   applied (Kafka's maximal ISR), so the controller never elects a replica that lacks an
//!   acknowledged record.
//!
//! Dependencies: above [`crate::broker`] (it opens and closes partitions through it) and
//! below [`crate::tasks`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub mod markers;
pub mod share_state;

use crate::broker::Broker;
use crate::coordinator::runtime::PartitionedCoordinator;
use crate::coordinator::txn::TXN_TOPIC;
use crate::coordinator::OFFSETS_TOPIC;
use crate::metadata::MetadataRecord;
use crate::quorum::Quorum;
use crate::replica::fetcher::{self, FetcherConfig};
use crate::replica::Role;

/// How often the active controller looks at the brokers' liveness.
pub const CONTROLLER_TICK: Duration = Duration::from_millis(250);
/// How long a broker whose heartbeat connection closed may take to heartbeat again on a new
/// one before the controller takes it for dead.
pub const DISCONNECT_GRACE: Duration = Duration::from_millis(300);
/// How often a broker re-checks its partitions (and proposes ISR changes) without a metadata
/// change.
pub const REPLICA_TICK: Duration = Duration::from_millis(500);

type Key = (Arc<str>, i32);

/// A running follower fetcher.
struct Fetcher {
    /// The topic id of the replica it fetches for (a topic re-created under the same name is
    /// another replica, even at the same leader and epoch).
    topic_id: uuid::Uuid,
    leader: i32,
    leader_epoch: i32,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

/// This broker's cluster work. Shared by its tasks; a restarted task finds the fetchers its
/// previous run started.
pub struct Node {
    broker: Arc<Broker>,
    fetchers: Mutex<HashMap<Key, Fetcher>>,
    /// Stray partition directories are set aside once, at the first reconciliation.
    strays_checked: Mutex<bool>,
    /// `__consumer_offsets` partitions whose groups are loaded, with the leader epoch loaded in.
    coordinator_epochs: Mutex<HashMap<i32, i32>>,
    /// Leader epochs `__share_group_state` partitions were loaded in (share coordinator).
    share_epochs: Mutex<HashMap<i32, i32>>,
    /// `__transaction_state` partitions whose transactional ids are loaded, likewise.
    txn_epochs: Mutex<HashMap<i32, i32>>,
}

impl Node {
    pub fn new(broker: Arc<Broker>) -> Arc<Node> {
        markers::install(&broker);
        share_state::install(&broker);
        Arc::new(Node {
            broker,
            fetchers: Mutex::new(HashMap::new()),
            strays_checked: Mutex::new(false),
            coordinator_epochs: Mutex::new(HashMap::new()),
            share_epochs: Mutex::new(HashMap::new()),
            txn_epochs: Mutex::new(HashMap::new()),
        })
    }

    fn quorum(&self) -> Option<&Quorum> {
        self.broker.metadata.quorum()
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Heartbeats to the quorum leader until `shutdown`.
    pub async fn heartbeats(self: Arc<Self>, shutdown: CancellationToken) {
        let Some(quorum) = self.quorum() else { return };
        let c = &self.broker.config.cluster;
        let interval = Self::ms(c.broker_heartbeat_interval_ms.max(10));
        let node = self.broker.config.node_id;
        let mut failed_before = false;
        loop {
            if self.broker.is_stopping() {
                // Controlled shutdown: silence keeps the broker fenced.
                return;
            }
            let mut pause = interval;
            if let Err(e) = quorum.heartbeat(node, interval.max(Self::ms(500))).await {
                debug!(error = %e, "heartbeat to the controller failed");
                // The first failure is retried at once on a new connection: the leader takes
                // a heartbeat connection that closed for a crash unless a heartbeat follows
                // within DISCONNECT_GRACE.
                if !failed_before {
                    pause = Self::ms(50);
                }
                failed_before = true;
            } else {
                failed_before = false;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// The active controller's loop (acts only while this node leads the quorum).
    pub async fn controller(self: Arc<Self>, shutdown: CancellationToken) {
        let Some(quorum) = self.quorum() else { return };
        let session = Self::ms(self.broker.config.cluster.broker_session_timeout_ms);
        let mut led_term: Option<u64> = None;
        let mut since = Instant::now();
        // When this controller first saw each fenced broker fenced: it is unfenced only by a
        // heartbeat heard after that (a broker fenced by its own controlled shutdown has
        // stopped heartbeating and stays fenced).
        let mut fenced_since: HashMap<i32, Instant> = HashMap::new();
        let c = &self.broker.config.cluster;
        let rebalance = c
            .auto_leader_rebalance
            .then(|| Duration::from_secs(c.leader_imbalance_check_interval_s));
        let mut last_rebalance = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(CONTROLLER_TICK) => {}
            }
            if !quorum.is_leader() {
                led_term = None;
                continue;
            }
            let term = quorum.term();
            if led_term != Some(term) {
                led_term = Some(term);
                since = Instant::now();
                info!(term, "this node is the active controller");
            }
            let heard = quorum.heard_from();
            let gone = quorum.gone();
            let now = Instant::now();
            let in_grace = now.saturating_duration_since(since) < session;
            let brokers = self.broker.metadata.brokers();
            let unfenced: HashSet<i32> = brokers
                .iter()
                .filter(|b| !b.fenced)
                .map(|b| b.node)
                .collect();
            fenced_since.retain(|n, _| !unfenced.contains(n));
            for b in brokers.iter().filter(|b| b.fenced) {
                fenced_since.entry(b.node).or_insert(now);
            }
            let live = |n: i32| {
                // Its heartbeat connection closed while this node led and no heartbeat came
                // back on a new one: the broker's process is gone, fenced at once instead of
                // after the session timeout (a crash fails over in about a second).
                if gone.get(&n).is_some_and(|t| {
                    *t > since && now.saturating_duration_since(*t) >= DISCONNECT_GRACE
                }) {
                    return false;
                }
                let recent = heard
                    .get(&n)
                    .is_some_and(|t| now.saturating_duration_since(*t) < session);
                match fenced_since.get(&n) {
                    Some(fenced) => recent && heard.get(&n).is_some_and(|t| t > fenced),
                    None => recent || (in_grace && unfenced.contains(&n)),
                }
            };
            let records = self.broker.metadata.controller_decisions(&live);
            if records.is_empty() {
                if rebalance.is_some_and(|every| !in_grace && last_rebalance.elapsed() >= every) {
                    last_rebalance = Instant::now();
                    let usable: HashSet<i32> =
                        unfenced.iter().copied().filter(|n| live(*n)).collect();
                    self.rebalance_leaders(usable).await;
                }
                continue;
            }
            for r in &records {
                match r {
                    MetadataRecord::BrokerFencing { node, fenced } => {
                        info!(node, fenced, "controller: broker fencing changes")
                    }
                    MetadataRecord::PartitionChange {
                        id,
                        partition,
                        leader,
                        isr,
                        ..
                    } => {
                        let topic = self.broker.metadata.topic_by_id(id).map(|t| t.name);
                        info!(
                            ?topic,
                            partition,
                            ?leader,
                            ?isr,
                            "controller: partition changes"
                        )
                    }
                    _ => {}
                }
            }
            let b = self.broker.clone();
            match tokio::task::spawn_blocking(move || {
                b.metadata.commit_as_controller(&records, term)
            })
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(error = %e, "controller: committing decisions failed"),
                Err(e) => warn!(error = %e, "controller: the commit task failed"),
            }
        }
    }

    /// `auto.leader.rebalance.enable`: every partition whose preferred (first) replica is in
    /// its ISR and `usable` but does not lead gets it back as leader (a preferred election,
    /// as ElectLeaders does), so leaderships spread again after brokers came back.
    async fn rebalance_leaders(&self, usable: HashSet<i32>) {
        let b = self.broker.clone();
        let elected = tokio::task::spawn_blocking(move || {
            b.metadata
                .elect_leaders(None, crate::metadata::Election::Preferred, &|n| {
                    usable.contains(&n)
                })
        })
        .await;
        match elected {
            Ok(Ok(results)) => {
                let moved = results
                    .iter()
                    .filter(|(_, _, e)| matches!(e, Some(crate::metadata::Elected::Change(_))))
                    .count();
                if moved > 0 {
                    info!(
                        partitions = moved,
                        "controller: leaderships back to preferred replicas"
                    );
                }
            }
            Ok(Err(e)) => warn!(error = %e, "controller: preferred elections failed"),
            Err(e) => warn!(error = %e, "controller: the preferred-election task failed"),
        }
    }

    /// Keeps this broker's partitions in the roles the committed metadata gives them.
    pub async fn replicas(self: Arc<Self>, shutdown: CancellationToken) {
        let mut changes = self.broker.metadata.subscribe();
        loop {
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.reconcile()).await {
                Ok(()) => {}
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => warn!(error = %e, "reconciling partitions was cancelled"),
            }
            self.propose_isr_changes().await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = changes.changed() => {}
                _ = tokio::time::sleep(REPLICA_TICK) => {}
            }
        }
        for (_, f) in self.fetchers.lock().drain() {
            f.stop.cancel();
        }
    }

    /// One pass over the metadata: host, lead, follow, or drop each partition (blocking: it
    /// opens and removes logs).
    fn reconcile(&self) {
        let b = &self.broker;
        b.note_unfenced_brokers();
        let me = b.config.node_id;
        let unfenced = b.metadata.broker(me).is_some_and(|r| !r.fenced);
        let addrs: HashMap<i32, String> = b
            .metadata
            .brokers()
            .into_iter()
            .map(|r| (r.node, format!("{}:{}", r.host, r.port)))
            .collect();
        let topics = b.metadata.topics();
        let mut wanted: HashSet<Key> = HashSet::new();
        {
            let mut checked = self.strays_checked.lock();
            if !*checked {
                // Directories of partitions no longer assigned here (topics deleted while this
                // broker was away) are set aside before anything is opened.
                let mut known = HashSet::new();
                for t in &topics {
                    for i in 0..t.partitions {
                        if b.metadata
                            .partition_state(&t.id, i)
                            .is_some_and(|s| s.replicas.contains(&me))
                        {
                            known.insert(crate::log::LogManager::dir_name(&t.name, i));
                        }
                    }
                }
                if let Err(e) = b.logs.quarantine_strays(&known) {
                    warn!(error = %e, "could not set stray partition directories aside");
                }
                *checked = true;
            }
        }
        // Configs another broker committed (dynamic broker configs here, topic configs and
        // throttles per hosted partition below).
        b.sync_dynamic_configs();
        for t in &topics {
            let lc = b.log_config(&t.configs);
            for i in 0..t.partitions {
                let Some(st) = b.metadata.partition_state(&t.id, i) else {
                    continue;
                };
                if !st.replicas.contains(&me) {
                    continue;
                }
                // A topic deleted and re-created under the same name, both committed before
                // this broker acted on the deletion: the old topic's replica (its log, its
                // fetcher) goes first, or the new partition would be served from the old log.
                if let Some(old) = b.replicas.get(&t.name, i).filter(|p| p.topic_id != t.id) {
                    let key: Key = (old.topic.clone(), i);
                    self.stop_fetcher(&key);
                    info!(topic = t.name, partition = i, old = %old.topic_id, new = %t.id, "removing the replica of a deleted topic re-created under its name");
                    if let Err(e) = b.unhost_replica(&t.name, i) {
                        warn!(topic = t.name, partition = i, error = %e, "could not remove the old replica");
                        continue;
                    }
                }
                let p = match b.host_replica(t, i) {
                    Ok(p) => p,
                    Err(e) => {
                        warn!(topic = t.name, partition = i, error = %e, "cannot open a replica");
                        continue;
                    }
                };
                b.sync_partition_configs(t, &lc, &p, &st.isr);
                let key: Key = (p.topic.clone(), i);
                wanted.insert(key.clone());
                if st.leader == me && unfenced {
                    self.stop_fetcher(&key);
                    match p.role() {
                        Role::Leader(l) if l.leader_epoch == st.leader_epoch => {
                            if l.replicas != st.replicas {
                                p.set_replicas(st.replicas.clone(), st.leader_epoch);
                            }
                            if l.isr != st.isr {
                                p.set_isr(st.isr.clone(), st.leader_epoch);
                            }
                        }
                        _ => {
                            info!(
                                topic = t.name,
                                partition = i,
                                epoch = st.leader_epoch,
                                isr = ?st.isr,
                                "leading"
                            );
                            if let Err(e) = p.become_leader(
                                me,
                                st.replicas.clone(),
                                st.isr.clone(),
                                st.leader_epoch,
                            ) {
                                // Retried at the next reconciliation.
                                warn!(topic = t.name, partition = i, error = %e, "cannot lead");
                            }
                        }
                    }
                    continue;
                }
                // Following (a fenced broker follows even what the metadata says it leads:
                // the controller is moving that leadership away).
                let target = if st.leader == me { -1 } else { st.leader };
                let same = matches!(
                    p.role(),
                    Role::Follower { leader, leader_epoch }
                        if leader == target && leader_epoch == st.leader_epoch
                );
                if !same {
                    debug!(
                        topic = t.name,
                        partition = i,
                        leader = target,
                        epoch = st.leader_epoch,
                        "following"
                    );
                    p.become_follower(target, st.leader_epoch);
                }
                match addrs.get(&target) {
                    Some(addr) if target >= 0 => {
                        self.ensure_fetcher(&key, &p, target, st.leader_epoch, addr)
                    }
                    _ => self.stop_fetcher(&key),
                }
            }
        }
        // Partitions hosted here that the metadata no longer assigns here.
        let ids: HashSet<uuid::Uuid> = topics.iter().map(|t| t.id).collect();
        for p in b.replicas.all() {
            let key: Key = (p.topic.clone(), p.index);
            if wanted.contains(&key) {
                continue;
            }
            // Only what the metadata positively moved away or deleted: a log is not removed
            // because of a moment's doubt (a replica that failed to open this pass).
            let why = if !ids.contains(&p.topic_id) {
                "topic deleted"
            } else if b
                .metadata
                .partition_state(&p.topic_id, p.index)
                .is_none_or(|s| s.replicas.contains(&me))
            {
                continue;
            } else {
                "no longer assigned here"
            };
            self.stop_fetcher(&key);
            info!(topic = %p.topic, partition = p.index, why, "removing replica");
            if let Err(e) = b.unhost_replica(&p.topic, p.index) {
                warn!(topic = %p.topic, partition = p.index, error = %e, "could not remove a replica");
            }
        }
        self.follow_coordinator(
            &topics,
            OFFSETS_TOPIC,
            self.broker.groups.as_ref(),
            &self.coordinator_epochs,
        );
        self.follow_coordinator(
            &topics,
            TXN_TOPIC,
            self.broker.txns.as_ref(),
            &self.txn_epochs,
        );
        self.follow_coordinator(
            &topics,
            crate::coordinator::share::STATE_TOPIC,
            self.broker.share_states.as_ref(),
            &self.share_epochs,
        );
        // Share-partitions of topic partitions led elsewhere now are forgotten (a new leader
        // reads their state again, fencing this one's writes).
        self.broker.shares.forget_unled(|p| p.is_leader());
    }

    /// Loads the state of each partition of internal topic `topic` (`__consumer_offsets` for
    /// the group coordinator, `__transaction_state` for the transaction coordinator) this
    /// broker now leads and forgets it for those it stopped leading, as a Kafka broker
    /// (un)loads a coordinator with the leadership of its partition. A partition led again in
    /// a later epoch is loaded again (the leader in between wrote to it); `loaded` keeps the
    /// epoch each was loaded in. Blocking: loading replays the partition's log.
    fn follow_coordinator(
        &self,
        topics: &[crate::metadata::TopicMeta],
        topic: &str,
        coordinator: &dyn PartitionedCoordinator,
        loaded: &Mutex<HashMap<i32, i32>>,
    ) {
        let b = &self.broker;
        let Some(t) = topics.iter().find(|t| t.name == topic) else {
            return;
        };
        coordinator.prepare(t.partitions);
        let mut loaded = loaded.lock();
        for i in 0..t.partitions {
            match b.replicas.get(topic, i).filter(|p| p.is_leader()) {
                Some(p) => {
                    let epoch = p.leader_epoch();
                    if loaded.get(&i) == Some(&epoch) && coordinator.is_partition_loaded(i) {
                        continue;
                    }
                    coordinator.unload_partition(i);
                    loaded.remove(&i);
                    match coordinator.load_partition(i, p) {
                        Ok(()) => {
                            loaded.insert(i, epoch);
                        }
                        Err(e) => {
                            warn!(topic, partition = i, error = %e, "cannot load a coordinator partition")
                        }
                    }
                }
                None => {
                    if loaded.remove(&i).is_some() || coordinator.is_partition_loaded(i) {
                        coordinator.unload_partition(i);
                    }
                }
            }
        }
    }

    fn ensure_fetcher(
        &self,
        key: &Key,
        p: &Arc<crate::replica::Partition>,
        leader: i32,
        leader_epoch: i32,
        addr: &str,
    ) {
        let mut fetchers = self.fetchers.lock();
        if let Some(f) = fetchers.get(key) {
            if f.topic_id == p.topic_id
                && f.leader == leader
                && f.leader_epoch == leader_epoch
                && !f.handle.is_finished()
            {
                return;
            }
            f.stop.cancel();
        }
        let stop = CancellationToken::new();
        let mut config = FetcherConfig::new(self.broker.config.node_id, addr.to_string());
        config.fsync = self.broker.config.acks_all_fsync;
        config.quota = Some(self.broker.follower_quota.clone());
        let handle = fetcher::spawn(p.clone(), config, stop.clone());
        fetchers.insert(
            key.clone(),
            Fetcher {
                topic_id: p.topic_id,
                leader,
                leader_epoch,
                stop,
                handle,
            },
        );
    }

    fn stop_fetcher(&self, key: &Key) {
        if let Some(f) = self.fetchers.lock().remove(key) {
            f.stop.cancel();
        }
    }

    /// As leader: commits the ISR changes the partitions propose, then applies what was
    /// committed.
    async fn propose_isr_changes(&self) {
        let b = &self.broker;
        let me = b.config.node_id;
        let max_lag = Self::ms(b.config.cluster.replica_lag_time_max_ms);
        let unfenced: HashSet<i32> = b
            .metadata
            .brokers()
            .into_iter()
            .filter(|r| !r.fenced)
            .map(|r| r.node)
            .collect();
        let mut proposed = Vec::new();
        let mut records = Vec::new();
        for p in b.replicas.all() {
            let Some((change, epoch)) = p.isr_proposal(max_lag, &|r| unfenced.contains(&r)) else {
                continue;
            };
            let Some(st) = b.metadata.partition_state(&p.topic_id, p.index) else {
                continue;
            };
            if st.leader != me || st.leader_epoch != epoch {
                continue;
            }
            if st.isr != change.isr {
                info!(topic = %p.topic, partition = p.index, from = ?st.isr, to = ?change.isr, "proposing an ISR change");
                records.push(MetadataRecord::PartitionChange {
                    id: p.topic_id,
                    partition: p.index,
                    leader: None,
                    isr: Some(change.isr),
                    replicas: None,
                    adding: None,
                    removing: None,
                    partition_epoch: Some(st.partition_epoch),
                });
            }
            proposed.push((p, epoch));
        }
        if !records.is_empty() {
            let bb = b.clone();
            match tokio::task::spawn_blocking(move || bb.metadata.commit(&records)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(error = %e, "committing ISR changes failed"),
                Err(e) => warn!(error = %e, "the ISR commit task failed"),
            }
        }
        // What is in force now (the change, or what beat it): proposals pending end.
        for (p, epoch) in proposed {
            if let Some(st) = b.metadata.partition_state(&p.topic_id, p.index) {
                if st.leader == me && st.leader_epoch == epoch {
                    p.set_isr(st.isr, epoch);
                }
            }
        }
    }
}
