//! One file per Kafka API. Each opens with a header (key, versions served, behaviour, gaps),
//! declares its [`ApiSpec`], and exposes `handle(ctx, body)`. The [`registry!`] below is the only
//! list of APIs: dispatch and the ApiVersions answer are both derived from it, so what we
//! advertise is exactly what is registered.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use kafka_protocol::messages::RequestHeader;

use crate::broker::Broker;
use crate::log::io::FileRange;
pub use crate::protocol::Api;
use crate::protocol::ProtocolError;

pub mod authz;
pub mod errors;

/// Everything a handler knows about the request it serves.
pub struct RequestContext {
    pub broker: Arc<Broker>,
    pub api_key: Api,
    pub version: i16,
    pub header: RequestHeader,
    pub peer: SocketAddr,
    /// The listener the request came through and the authenticated principal.
    pub session: Arc<crate::security::Session>,
    /// The connection's quota throttle: while it lasts, the connection reads no request.
    pub mute: Arc<Mute>,
}

/// A connection's quota throttle (KIP-219): a throttled response goes out at once with its
/// `throttle_time_ms`, and the connection reads nothing more until that time has passed.
#[derive(Debug, Default)]
pub struct Mute(std::sync::atomic::AtomicI64);

impl Mute {
    /// Mutes the connection for `throttle_ms` from now (a longer mute already set stays).
    pub fn extend(&self, throttle_ms: i32) {
        if throttle_ms > 0 {
            let until = crate::log::now_ms() + i64::from(throttle_ms);
            self.0.fetch_max(until, std::sync::atomic::Ordering::AcqRel);
        }
    }

    /// How long the connection stays muted.
    pub fn remaining(&self) -> std::time::Duration {
        let until = self.0.load(std::sync::atomic::Ordering::Acquire);
        std::time::Duration::from_millis((until - crate::log::now_ms()).max(0) as u64)
    }
}

/// What records a request's bytes against the client quotas (see [`crate::quota`]): the
/// principal's user name and the client id, and the connection to mute.
/// Cheap to make (reference-counted clones only): produce and fetch make one per request.
#[derive(Clone)]
pub struct Throttler {
    broker: Arc<Broker>,
    session: Arc<crate::security::Session>,
    client: Option<kafka_protocol::protocol::StrBytes>,
    mute: Arc<Mute>,
}

impl Throttler {
    /// Records `bytes`; the throttle time (0: none), the connection muted for it.
    pub fn record(&self, kind: crate::quota::Kind, bytes: usize) -> i32 {
        let quotas = self.broker.metadata.client_quotas();
        if quotas.is_empty() {
            return 0;
        }
        let now = crate::log::now_ms();
        let t = self.broker.quotas.record(
            kind,
            &quotas,
            &self.session.principal.name,
            self.client.as_deref().unwrap_or(""),
            bytes as f64,
            now,
        );
        if t > 0 {
            self.mute.extend(t);
            let kind = match kind {
                crate::quota::Kind::Produce => "produce",
                crate::quota::Kind::Fetch => "fetch",
            };
            crate::metrics::global()
                .quota_throttles
                .get_or_create(&crate::metrics::KindLabels {
                    kind: kind.to_string(),
                })
                .inc();
        }
        t
    }

    /// The most bytes one answer of `kind` may carry under the quota that applies (None: no
    /// quota), see [`crate::quota::max_in_window`].
    pub fn window_cap(&self, kind: crate::quota::Kind) -> Option<usize> {
        let quotas = self.broker.metadata.client_quotas();
        let (bound, _) = crate::quota::resolve(
            &quotas,
            &self.session.principal.name,
            self.client.as_deref().unwrap_or(""),
            kind.key(),
        )?;
        Some(crate::quota::max_in_window(bound))
    }

    /// Takes `bytes` back (a throttled fetch answers without records).
    pub fn unrecord(&self, kind: crate::quota::Kind, bytes: usize) {
        let quotas = self.broker.metadata.client_quotas();
        if !quotas.is_empty() {
            let now = crate::log::now_ms();
            self.broker.quotas.unrecord(
                kind,
                &quotas,
                &self.session.principal.name,
                self.client.as_deref().unwrap_or(""),
                bytes as f64,
                now,
            );
        }
    }
}

impl RequestContext {
    pub fn decode<T: kafka_protocol::protocol::Decodable>(
        &self,
        mut body: Bytes,
    ) -> Result<T, ProtocolError> {
        crate::protocol::decode_body(&mut body, self.version, "request body")
    }

    /// Decodes at `version` instead of the request's: for a newer version whose bytes are
    /// those of an older one the crate knows (see [`crate::protocol::v44`]).
    pub fn decode_as<T: kafka_protocol::protocol::Decodable>(
        &self,
        mut body: Bytes,
        version: i16,
    ) -> Result<T, ProtocolError> {
        crate::protocol::decode_body(&mut body, version, "request body")
    }

    /// Encodes at `version` instead of the request's (as [`RequestContext::decode_as`]).
    pub fn reply_as<T: kafka_protocol::protocol::Encodable>(
        &self,
        msg: &T,
        version: i16,
    ) -> Result<Reply, ProtocolError> {
        Ok(Reply::Now(crate::protocol::encode_body(msg, version)?))
    }

    pub fn reply<T: kafka_protocol::protocol::Encodable>(
        &self,
        msg: &T,
    ) -> Result<Reply, ProtocolError> {
        Ok(Reply::Now(crate::protocol::encode_body(msg, self.version)?))
    }

    /// The client-quota throttler of this request.
    pub fn throttler(&self) -> Throttler {
        Throttler {
            broker: self.broker.clone(),
            session: self.session.clone(),
            client: self.header.client_id.clone(),
            mute: self.mute.clone(),
        }
    }

    pub fn client_id(&self) -> &str {
        self.header
            .client_id
            .as_ref()
            .map(|s| s.as_str())
            .unwrap_or("")
    }
}

/// A response body written as `head` (an encoded body, with the frame header room in front)
/// followed by `rest` in order.
pub struct PartsBody {
    pub head: BytesMut,
    pub rest: Vec<Part>,
}

pub enum Part {
    Bytes(Bytes),
    /// Sent from the file by the kernel (`sendfile(2)`), never copied through user space.
    File(FileRange),
}

impl Part {
    pub fn len(&self) -> usize {
        match self {
            Part::Bytes(b) => b.len(),
            Part::File(f) => f.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs `f` on the blocking pool and waits for it: for a handler's work that fsyncs or touches
/// many files (topic creation and deletion, config changes, ListOffsets decompression). The
/// connection still waits for it before reading its next request (requests stay in order), but
/// the async worker thread is free to serve other connections meanwhile. A panic in `f` is the
/// handler's panic, as if it had run inline.
pub async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, ProtocolError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only when the runtime shuts down before the task started.
        Err(e) => Err(ProtocolError::Encode(anyhow::anyhow!(
            "blocking task cancelled: {e}"
        ))),
    }
}

/// What a handler answers.
pub enum Reply {
    /// An encoded response body, to be written in order.
    Now(BytesMut),
    /// A response body that needs waiting for (fsync, long-poll); written in order when ready.
    Later(BoxFuture<'static, Result<BytesMut, ProtocolError>>),
    /// A response body in parts, with record bytes sent from segment files (Fetch).
    LaterParts(BoxFuture<'static, Result<PartsBody, ProtocolError>>),
    /// No response (acks=0 produce).
    None,
    /// No response, and close the connection once earlier responses are written (an acks=0
    /// produce that failed: the only way to tell such a client).
    NoneThenClose,
}

/// An API and the versions we serve, always within what `kafka-protocol` or
/// [`crate::protocol::v44`] can decode.
#[derive(Debug, Clone, Copy)]
pub struct ApiSpec {
    pub key: Api,
    pub min: i16,
    pub max: i16,
}

macro_rules! registry {
    ($($m:ident),* $(,)?) => {
        $(pub mod $m;)*

        /// Every API served, in one place.
        pub const REGISTRY: &[ApiSpec] = &[$($m::SPEC),*];

        /// The handler modules of [`REGISTRY`], by name.
        #[cfg(test)]
        const MODULES: &[&str] = &[$(stringify!($m)),*];

        /// Runs the handler registered for `ctx.api_key`.
        pub async fn dispatch(ctx: RequestContext, body: Bytes) -> Result<Reply, ProtocolError> {
            $(
                if ctx.api_key == $m::SPEC.key {
                    return $m::handle(ctx, body).await;
                }
            )*
            Err(ProtocolError::UnknownApiKey(ctx.api_key.0))
        }
    };
}

registry!(
    api_versions,
    metadata,
    produce,
    fetch,
    list_offsets,
    create_topics,
    init_producer_id,
    find_coordinator,
    join_group,
    sync_group,
    heartbeat,
    leave_group,
    offset_commit,
    offset_fetch,
    list_groups,
    describe_groups,
    delete_groups,
    offset_delete,
    consumer_group_heartbeat,
    consumer_group_describe,
    streams_group_heartbeat,
    streams_group_describe,
    share_group_heartbeat,
    share_group_describe,
    share_fetch,
    share_acknowledge,
    describe_share_group_offsets,
    alter_share_group_offsets,
    delete_share_group_offsets,
    initialize_share_group_state,
    read_share_group_state,
    write_share_group_state,
    delete_share_group_state,
    add_partitions_to_txn,
    add_offsets_to_txn,
    end_txn,
    write_txn_markers,
    txn_offset_commit,
    list_transactions,
    describe_transactions,
    describe_producers,
    delete_topics,
    create_partitions,
    describe_configs,
    list_config_resources,
    alter_configs,
    incremental_alter_configs,
    delete_records,
    offset_for_leader_epoch,
    describe_cluster,
    describe_quorum,
    elect_leaders,
    alter_partition_reassignments,
    list_partition_reassignments,
    describe_log_dirs,
    describe_topic_partitions,
    sasl_handshake,
    sasl_authenticate,
    describe_user_scram_credentials,
    alter_user_scram_credentials,
    describe_acls,
    create_acls,
    delete_acls,
    describe_client_quotas,
    alter_client_quotas,
);

pub fn spec(key: Api) -> Option<ApiSpec> {
    REGISTRY.iter().copied().find(|s| s.key == key)
}

/// (key, min, max) of every registered API, sorted by key.
pub fn advertised() -> Vec<(i16, i16, i16)> {
    let mut v: Vec<_> = REGISTRY.iter().map(|s| (s.key.0, s.min, s.max)).collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Handlers that make no authorization decision, and why (Kafka's `KafkaApis` makes none
    /// for them either).
    const OPEN: &[(&str, &str)] = &[
        (
            "api_versions",
            "served to everyone, before authentication too",
        ),
        (
            "sasl_handshake",
            "authentication itself (answered ILLEGAL_SASL_STATE afterwards)",
        ),
        (
            "sasl_authenticate",
            "authentication itself (answered ILLEGAL_SASL_STATE afterwards)",
        ),
    ];

    /// `docs/AUTHORIZATION.md`: one row per API, its rule as the handler's header states it
    /// (the paragraph starting `Authorization`).
    fn authorization_table() -> String {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/handlers");
        let mut rows: Vec<(i16, String)> = Vec::new();
        for (m, spec) in MODULES.iter().zip(REGISTRY) {
            let src = std::fs::read_to_string(dir.join(format!("{m}.rs"))).expect("handler source");
            let header: Vec<&str> = src
                .lines()
                .take_while(|l| l.starts_with("//!"))
                .map(|l| l.trim_start_matches("//!").trim())
                .collect();
            let start = header
                .iter()
                .position(|l| l.starts_with("Authorization"))
                .unwrap_or_else(|| panic!("{m}.rs: no Authorization paragraph in its header"));
            let para: Vec<&str> = header[start..]
                .iter()
                .take_while(|l| !l.is_empty())
                .copied()
                .collect();
            let text = para.join(" ");
            let rule = text
                .split_once(':')
                .map_or(text.as_str(), |(_, r)| r)
                .trim();
            rows.push((
                spec.key.0,
                format!(
                    "| {} | {} | {}-{} | {} |",
                    spec.key.name(),
                    spec.key.0,
                    spec.min,
                    spec.max,
                    rule.replace('|', "\\|")
                ),
            ));
        }
        rows.sort();
        let mut out = String::from(
            "# What each API checks (the authorizer)\n\n\
             Generated from the `Authorization` paragraph of each handler's header \
             (`src/handlers/<api>.rs`) by the unit test \
             `handlers::tests::docs_authorization_md_is_the_handlers_rules`; \
             `STROM_UPDATE_DOCS=1 cargo test --lib docs_authorization` rewrites it. The rules are \
             Kafka 4.4's (`KafkaApis` / `ControllerApis`; research notes in \
             docs/research/kafka-authorization-checks.md). Without an authorizer every check \
             passes.\n\n\
             | API | key | versions | checks (in order) and what a denial answers |\n\
             |---|---|---|---|\n",
        );
        for (_, r) in rows {
            out.push_str(&r);
            out.push('\n');
        }
        out
    }

    #[test]
    fn docs_authorization_md_is_the_handlers_rules() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/AUTHORIZATION.md");
        let want = authorization_table();
        if std::env::var_os("STROM_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &want).expect("write docs/AUTHORIZATION.md");
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/AUTHORIZATION.md is not the handlers' rules: \
             STROM_UPDATE_DOCS=1 cargo test --lib docs_authorization"
        );
    }

    /// Every handler asks [`RequestContext::authz`] (see [`authz`]) or is listed in [`OPEN`]
    /// with the reason: a new API cannot be served without deciding what it checks.
    #[test]
    fn every_handler_consults_the_authorizer_or_says_why_not() {
        assert_eq!(MODULES.len(), REGISTRY.len());
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/handlers");
        for m in MODULES {
            let src = std::fs::read_to_string(dir.join(format!("{m}.rs"))).expect("handler source");
            let open = OPEN.iter().any(|(o, _)| o == m);
            assert!(
                src.contains("authz()") != open,
                "{m}: {}",
                if open {
                    "listed as open but consults the authorizer"
                } else {
                    "makes no authorization decision (ctx.authz()) and is not listed in OPEN"
                }
            );
        }
    }

    /// Every served version is one the crate decodes or one `protocol::v44` has a decoder
    /// for (checked with an empty body: the answer is a decode error, not "no decoder").
    #[test]
    fn registry_is_within_what_the_crate_or_v44_decodes_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in REGISTRY {
            assert!(s.key.known(), "{:?}", s.key);
            let (cmin, cmax) = s.key.crate_versions().unwrap_or((i16::MAX, -1));
            for v in s.min..=s.max {
                if (cmin..=cmax).contains(&v) {
                    continue;
                }
                match crate::protocol::v44::decode_request(s.key, v, &[]) {
                    Some(Err(ProtocolError::Decode { .. })) => {}
                    other => panic!("{} v{v} is served without a decoder: {other:?}", s.key),
                }
            }
            assert!(s.min <= s.max);
            assert!(seen.insert(s.key), "{} registered twice", s.key);
        }
    }
}
