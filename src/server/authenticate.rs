//! SASL on a connection, before any other request is served (Kafka's
//! `SaslServerAuthenticator`): ApiVersions (once), then SaslHandshake naming an enabled
//! mechanism, then SaslAuthenticate requests carrying the mechanism's tokens until it
//! completes (after SaslHandshake v0, the tokens as bare size-prefixed frames instead). Any other request before that closes the connection, as Kafka does
//! (IllegalSaslStateException); a failed authentication is answered SASL_AUTHENTICATION_FAILED
//! after `connection.failed.authentication.delay.ms` and the connection closed.
//!
//! KIP-368: with `connections.max.reauth.ms` set, SaslAuthenticate v1+ tells the client its
//! session lifetime; a SaslHandshake on the authenticated connection starts re-authentication
//! (same mechanism, same principal), and any other request after the session expired closes
//! the connection.
//!
//! Every outcome is one line on the `strom::audit` target.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::config::security::SaslSettings;
use crate::protocol::{self, Api, HeaderPrefix, WireError};
use crate::security::sasl::{Credentials, Exchange, Step};
use crate::security::scram::{Credential, Failure, Mechanism};
use crate::security::{Principal, Session};

/// The SCRAM credentials of the broker's metadata.
pub struct MetadataCredentials(pub Arc<Broker>);

impl Credentials for MetadataCredentials {
    fn scram(&self, user: &str, mechanism: Mechanism) -> Option<Credential> {
        self.0.metadata.scram_credential(user, mechanism)
    }
}

enum Stage {
    /// Nothing yet, or ApiVersions answered (`versions_seen`).
    Start { versions_seen: bool },
    /// SaslHandshake accepted; SaslAuthenticate requests drive the exchange.
    Exchanging {
        mechanism: String,
        exchange: Exchange,
        /// After SaslHandshake v0: tokens come as bare size-prefixed frames, not in
        /// SaslAuthenticate requests, and go back the same way.
        raw: bool,
    },
    /// Authenticated (until `expires`, with re-authentication on).
    Done {
        mechanism: String,
        expires: Option<Instant>,
    },
}

/// A SASL listener's connection state.
pub struct Gate {
    settings: SaslSettings,
    stage: Stage,
    /// The principal of the first authentication (re-authentication must keep it).
    principal: Option<Principal>,
}

/// What the connection does with a frame.
pub enum Outcome {
    /// Not the gate's: dispatch it as usual (ApiVersions before authentication, anything
    /// after).
    Pass,
    /// Send this response and go on.
    Reply(BytesMut),
    /// Send this response; the connection is now `principal`'s.
    Authenticated(BytesMut, Principal),
    /// Send this response, wait, then close (failed authentication: Kafka delays the close
    /// by `connection.failed.authentication.delay.ms`, so a client reads the answer before
    /// it sees the connection end).
    FailThenClose(BytesMut, Duration),
    /// Close without a response.
    Close(String),
}

impl Gate {
    pub fn new(settings: SaslSettings) -> Self {
        Gate {
            settings,
            stage: Stage::Start {
                versions_seen: false,
            },
            principal: None,
        }
    }

    /// Whether requests other than the SASL ones may be served now.
    pub fn authenticated(&self) -> bool {
        matches!(self.stage, Stage::Done { .. })
    }

    /// The largest frame accepted now: `sasl.server.max.receive.size` until authenticated.
    pub fn max_frame(&self, otherwise: usize) -> usize {
        if self.authenticated() {
            otherwise
        } else {
            otherwise.min(self.settings.max_receive_size)
        }
    }

    /// Looks at one frame (its 4-byte size already removed).
    pub fn on_frame(
        &mut self,
        frame: &Bytes,
        broker: &Arc<Broker>,
        session: &Session,
        peer: SocketAddr,
    ) -> Outcome {
        if let Stage::Exchanging {
            mechanism,
            exchange,
            raw: true,
        } = &mut self.stage
        {
            let mechanism = mechanism.clone();
            let creds = MetadataCredentials(broker.clone());
            let framed = |token: Vec<u8>| {
                let mut b = BytesMut::with_capacity(4 + token.len());
                b.extend_from_slice(&(token.len() as u32).to_be_bytes());
                b.extend_from_slice(&token);
                b
            };
            return match exchange.step(frame, &self.settings, &creds) {
                Ok(Step::Challenge(c)) => Outcome::Reply(framed(c)),
                Ok(Step::Done { response, user, .. }) => {
                    let principal = Principal::user(user);
                    audit_ok(session, peer, &mechanism, &principal);
                    self.principal = Some(principal.clone());
                    self.stage = Stage::Done {
                        mechanism,
                        expires: None,
                    };
                    Outcome::Authenticated(framed(response), principal)
                }
                Err(
                    Failure::Failed(why)
                    | Failure::Denied(why)
                    | Failure::Illegal(why)
                    | Failure::Refused { reason: why, .. },
                ) => {
                    // SaslHandshake v0 has no way to say why: the connection closes.
                    audit_fail(session, peer, Some(&mechanism), &why);
                    Outcome::Close(format!("SASL authentication failed: {why}"))
                }
            };
        }
        let Some(prefix) = HeaderPrefix::peek(frame) else {
            return Outcome::Close("request header too short during SASL authentication".into());
        };
        let key = Api(prefix.api_key);
        let delay = Duration::from_millis(broker.config.security.failed_auth_delay_ms);
        match &mut self.stage {
            Stage::Done { mechanism, expires } => {
                if key == ApiKey::SaslHandshake && self.settings.reauth_ms > 0 {
                    // KIP-368 re-authentication: the same mechanism again.
                    let mechanism = mechanism.clone();
                    self.stage = Stage::Start {
                        versions_seen: true,
                    };
                    return self.handshake(frame, prefix, Some(&mechanism), broker, session, peer);
                }
                if expires.is_some_and(|e| Instant::now() >= e) {
                    audit_fail(
                        session,
                        peer,
                        None,
                        "session expired (connections.max.reauth.ms)",
                    );
                    return Outcome::Close("SASL session expired without re-authentication".into());
                }
                Outcome::Pass
            }
            Stage::Start { versions_seen } => {
                if key == ApiKey::ApiVersions && !*versions_seen {
                    // A version above ours is answered UNSUPPORTED_VERSION by the dispatcher and
                    // the client asks again with one we serve: only an answered one counts (as
                    // Kafka's authenticator keeps its state on that error).
                    let served = crate::handlers::spec(key)
                        .is_some_and(|s| (s.min..=s.max).contains(&prefix.api_version));
                    *versions_seen = served;
                    return Outcome::Pass;
                }
                if key == ApiKey::SaslHandshake {
                    return self.handshake(frame, prefix, None, broker, session, peer);
                }
                Outcome::Close(format!(
                    "unexpected {} request during SASL handshake",
                    key.name()
                ))
            }
            Stage::Exchanging {
                mechanism,
                exchange,
                ..
            } => {
                if key != ApiKey::SaslAuthenticate {
                    let why = format!(
                        "Unexpected Kafka request of type {} during SASL authentication.",
                        key.name()
                    );
                    audit_fail(session, peer, Some(mechanism), &why);
                    // Kafka answers such a request with its error response (ILLEGAL_SASL_STATE)
                    // before closing: clients that took an OAUTHBEARER error challenge for
                    // success (aiokafka, KafkaJS) then see a Metadata answer with no broker.
                    if key == ApiKey::Metadata {
                        if let Some(b) = metadata_refusal(frame, prefix) {
                            return Outcome::FailThenClose(b, delay);
                        }
                    }
                    return Outcome::Close(why);
                }
                if !(0..=2).contains(&prefix.api_version) {
                    return Outcome::Close(format!(
                        "SaslAuthenticate v{} is not served",
                        prefix.api_version
                    ));
                }
                let mechanism = mechanism.clone();
                let mut body = frame.clone();
                let req: SaslAuthenticateRequest =
                    match protocol::decode_header(&mut body, key, prefix.api_version).and_then(
                        |_| {
                            protocol::decode_body(&mut body, prefix.api_version, "SaslAuthenticate")
                        },
                    ) {
                        Ok(r) => r,
                        Err(e) => return Outcome::Close(format!("bad SaslAuthenticate: {e}")),
                    };
                let creds = MetadataCredentials(broker.clone());
                let answer = |code: i16, msg: Option<String>, bytes: Vec<u8>, life: i64| {
                    let resp = SaslAuthenticateResponse::default()
                        .with_error_code(code)
                        .with_error_message(msg.map(StrBytes::from_string))
                        .with_auth_bytes(Bytes::from(bytes))
                        .with_session_lifetime_ms(life);
                    protocol::encode_body(&resp, prefix.api_version).and_then(|b| {
                        protocol::frame_response(key, prefix.api_version, prefix.correlation_id, b)
                    })
                };
                match exchange.step(&req.auth_bytes, &self.settings, &creds) {
                    Ok(Step::Challenge(c)) => match answer(0, None, c, 0) {
                        Ok(b) => Outcome::Reply(b),
                        Err(e) => Outcome::Close(e.to_string()),
                    },
                    Ok(Step::Done {
                        response,
                        user,
                        expires_ms,
                    }) => {
                        let principal = Principal::user(user);
                        if self.principal.as_ref().is_some_and(|p| *p != principal) {
                            audit_fail(
                                session,
                                peer,
                                Some(&mechanism),
                                "re-authenticated as another principal",
                            );
                            return match answer(
                                WireError::SaslAuthenticationFailed.code(),
                                Some(format!(
                                    "Cannot change principals during re-authentication from \
                                     {}: {principal}",
                                    self.principal
                                        .as_ref()
                                        .map(|p| p.to_string())
                                        .unwrap_or_default()
                                )),
                                Vec::new(),
                                0,
                            ) {
                                Ok(b) => Outcome::FailThenClose(b, delay),
                                Err(e) => Outcome::Close(e.to_string()),
                            };
                        }
                        let reauth = self.settings.reauth_ms;
                        let (life, expires) = if reauth > 0 && prefix.api_version >= 1 {
                            // A credential that expires (an OAUTHBEARER token) ends the
                            // session no later than itself, as Kafka's authenticator does.
                            let left = expires_ms
                                .map_or(reauth, |e| (e - crate::log::now_ms()).clamp(0, reauth));
                            (
                                left,
                                Some(Instant::now() + Duration::from_millis(left as u64)),
                            )
                        } else {
                            (0, None)
                        };
                        audit_ok(session, peer, &mechanism, &principal);
                        self.principal = Some(principal.clone());
                        self.stage = Stage::Done { mechanism, expires };
                        match answer(0, None, response, life) {
                            Ok(b) => Outcome::Authenticated(b, principal),
                            Err(e) => Outcome::Close(e.to_string()),
                        }
                    }
                    Err(
                        f @ (Failure::Failed(_) | Failure::Denied(_) | Failure::Refused { .. }),
                    ) => {
                        let (why, shown) = match f {
                            Failure::Denied(why) => (why.clone(), why),
                            Failure::Refused { reason, shown } => (reason, shown),
                            // Kafka does not tell the client why (the user may not exist).
                            Failure::Failed(why) | Failure::Illegal(why) => (
                                why,
                                format!(
                                    "Authentication failed during authentication due to \
                                     invalid credentials with SASL mechanism {mechanism}"
                                ),
                            ),
                        };
                        audit_fail(session, peer, Some(&mechanism), &why);
                        let msg = shown;
                        match answer(
                            WireError::SaslAuthenticationFailed.code(),
                            Some(msg),
                            Vec::new(),
                            0,
                        ) {
                            Ok(b) => Outcome::FailThenClose(b, delay),
                            Err(e) => Outcome::Close(e.to_string()),
                        }
                    }
                    Err(Failure::Illegal(why)) => Outcome::Close(why),
                }
            }
        }
    }

    fn handshake(
        &mut self,
        frame: &Bytes,
        prefix: HeaderPrefix,
        same_as: Option<&str>,
        broker: &Arc<Broker>,
        session: &Session,
        peer: SocketAddr,
    ) -> Outcome {
        let key = Api(prefix.api_key);
        let version = prefix.api_version;
        if !(0..=1).contains(&version) || (version == 0 && same_as.is_some()) {
            return Outcome::Close(format!("SaslHandshake v{version} is not served here"));
        }
        let mut body = frame.clone();
        let req: SaslHandshakeRequest = match protocol::decode_header(&mut body, key, version)
            .and_then(|_| protocol::decode_body(&mut body, version, "SaslHandshake"))
        {
            Ok(r) => r,
            Err(e) => return Outcome::Close(format!("bad SaslHandshake: {e}")),
        };
        let wanted = req.mechanism.as_str().to_string();
        let enabled =
            self.settings.mechanisms.contains(&wanted) && same_as.is_none_or(|m| m == wanted);
        let exchange = if enabled {
            Exchange::start(&wanted)
        } else {
            None
        };
        let code = if exchange.is_some() {
            0
        } else {
            WireError::UnsupportedSaslMechanism.code()
        };
        let resp = SaslHandshakeResponse::default()
            .with_error_code(code)
            .with_mechanisms(
                self.settings
                    .mechanisms
                    .iter()
                    .map(|m| StrBytes::from_string(m.clone()))
                    .collect(),
            );
        let bytes = match protocol::encode_body(&resp, version)
            .and_then(|b| protocol::frame_response(key, version, prefix.correlation_id, b))
        {
            Ok(b) => b,
            Err(e) => return Outcome::Close(e.to_string()),
        };
        match exchange {
            Some(exchange) => {
                self.stage = Stage::Exchanging {
                    mechanism: wanted,
                    exchange,
                    raw: version == 0,
                };
                Outcome::Reply(bytes)
            }
            None => {
                audit_fail(session, peer, Some(&wanted), "mechanism not enabled");
                Outcome::FailThenClose(
                    bytes,
                    Duration::from_millis(broker.config.security.failed_auth_delay_ms),
                )
            }
        }
    }
}

/// Kafka's Metadata error response to `frame`: every requested topic ILLEGAL_SASL_STATE, no
/// brokers (None when the request cannot be read at its version).
fn metadata_refusal(frame: &Bytes, prefix: HeaderPrefix) -> Option<BytesMut> {
    use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
    let key = Api(prefix.api_key);
    let version = prefix.api_version;
    let spec = crate::handlers::spec(key)?;
    if !(spec.min..=spec.max).contains(&version) {
        return None;
    }
    let mut body = frame.clone();
    protocol::decode_header(&mut body, key, version).ok()?;
    let req: MetadataRequest = protocol::decode_body(&mut body, version, "Metadata").ok()?;
    let topics = req
        .topics
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            MetadataResponseTopic::default()
                .with_error_code(WireError::IllegalSaslState.code())
                .with_name(t.name)
                .with_topic_id(t.topic_id)
        })
        .collect();
    let resp = MetadataResponse::default().with_topics(topics);
    protocol::encode_body(&resp, version)
        .and_then(|b| protocol::frame_response(key, version, prefix.correlation_id, b))
        .ok()
}

fn audit_ok(session: &Session, peer: SocketAddr, mechanism: &str, principal: &Principal) {
    crate::security::audit_success(session.listener(), peer, mechanism, principal);
}

fn audit_fail(session: &Session, peer: SocketAddr, mechanism: Option<&str>, why: &str) {
    crate::security::audit_failure(session.listener(), peer, mechanism.unwrap_or(""), why);
}
