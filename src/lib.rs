//! Strom: a Kafka-wire-compatible streaming broker.
//!
//! # Layout
//!
//! A request travels: [`server`] (accept loop, one task per connection, bounded framing and
//! per-connection memory, responses in request order; fetched record bytes go from segment
//! files to the socket with sendfile(2)) -> [`protocol`] (header decode, version checks, ApiVersions
//! fallback, and in `protocol::v44` the codecs of the versions Kafka 4.2-4.4 added that the
//! `kafka-protocol` crate lacks; `protocol::Api` keys APIs the crate has no `ApiKey` for) -> [`handlers`] (one file per API; the registry there is the only list of APIs)
//! -> [`broker`] (composition root and multi-part admin operations) -> [`coordinator`] (consumer
//! groups, classic and KIP-848, KIP-1071 streams groups and KIP-932 share groups, with offsets
//! on `__consumer_offsets`; transactions on `__transaction_state`; share-partitions — what
//! share-group members fetch, acknowledge and dead-letter — on `__share_group_state`; one
//! runtime that replays them and applies a change once durable), [`replica`] (partition state: leader epoch cache, leader or
//! follower role, ISR and high watermark, delayed-fetch wake-ups, the follower fetch loop, replication throttles) and
//! [`metadata`] (topics, ids, replica assignments, configs and producer-id blocks in an
//! append-only metadata log, or on the [`quorum`]) -> [`log`] (segmented partition logs on disk: append, read, roll,
//! retention, recovery, group-committed fsync (one flusher thread for produce across
//! partitions), idempotent-producer and transaction state,
//! behind a filesystem seam in `log::io` that every durable write of the broker, the metadata
//! log included, goes through; `log::io::PowerOffStorage` lets tests cut the power).
//!
//! Dependencies point one way: handlers -> broker -> coordinator/replica/metadata -> log. `log` never sees a
//! protocol message type; it knows record batches only through [`protocol::batch`], the
//! zero-copy header view shared by the wire and the disk format (and [`protocol::records`] to
//! read keys on compacted topics).
//!
//! [`quorum`] replicates an opaque log of payloads across voters with Raft (openraft): the
//! cluster metadata quorum (KRaft's role) that `metadata::replicated` runs on when more than one
//! voter is configured. [`cluster`] is what a broker of such a
//! cluster does beside serving clients: heartbeats to the quorum leader, the active
//! controller's decisions (fencing, leader election from the ISR) on the quorum leader, and
//! acting on committed metadata (host, lead or follow partitions; propose ISR changes). It sits
//! above [`broker`] and below [`tasks`], which starts it.
//!
//! [`tasks`] runs the background work (retention and other log maintenance, the coordinators'
//! timers) under supervisors that log a panic and restart the task, or shut the broker down when
//! it keeps failing.
//!
//! [`config`] holds every setting under Kafka's property names, including the plain group and
//! transaction coordinator settings that `coordinator` reads (config imports no layer above
//! `log`); [`alloc`] makes untrusted capacity claims in requests harmless (see there).
//! [`peer`] sends requests to other brokers of a cluster (WriteTxnMarkers, AddPartitionsToTxn
//! verification, the share-state requests of `cluster::share_state`, dead letters produced to
//! another broker's partition) over their Kafka listeners; the broker owns it, [`cluster`] and the broker's
//! transaction paths use it, and the replica fetcher frames its requests with it.
//! [`security`] is who a connection is: TLS (rustls), the principal of a client certificate,
//! SASL PLAIN and SCRAM; the server runs it on a connection before any handler, and handlers
//! see the resulting session (listener and principal) in their context. It is also what that
//! principal may do: the StandardAuthorizer's decisions over the metadata's ACLs, which every
//! handler asks through `handlers::authz`.
//! [`quota`] is client quotas (byte rates per user / client id with Kafka's precedence and
//! rate windows); the quotas are metadata, the rates the broker's, produce and fetch record.
//! [`metrics`] is the process-wide set of Prometheus metrics (a leaf: any layer may update
//! it); [`admin_http`] serves them with the health endpoints on the admin listener.

#![deny(unsafe_code)]

pub mod admin_http;
pub mod alloc;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod coordinator;
pub mod handlers;
pub mod log;
pub mod metadata;
pub mod metrics;
pub mod peer;
pub mod protocol;
pub mod quorum;
pub mod quota;
pub mod replica;
pub mod security;
pub mod server;
pub mod tasks;

#[global_allocator]
static GLOBAL: alloc::GuardedAlloc = alloc::GuardedAlloc;
