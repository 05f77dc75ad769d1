//! Who a connection is, and how that is established: TLS ([`tls`], rustls), the principal of a
//! client certificate ([`principal`], Kafka's `ssl.principal.mapping.rules`), and SASL
//! ([`sasl`]: PLAIN, SCRAM-SHA-256/512 ([`scram`]) and OAUTHBEARER ([`oauth`])); and what a
//! principal may do: [`acl`],
//! the StandardAuthorizer's decision procedure, and [`authorizer`], that procedure configured
//! (`super.users`, `allow.everyone.if.no.acl.found`) with its audit lines. Handlers consult it
//! through [`crate::handlers::authz`].
//!
//! This layer knows no broker: the SCRAM credentials it checks come from the metadata log
//! through [`sasl::Credentials`], which the server implements over the broker's metadata store.
//! The connection ([`crate::server`]) runs the exchange before any other request is served,
//! as Kafka's `SaslServerAuthenticator` does, and hands the handlers the resulting
//! [`Principal`].

pub mod acl;
pub mod authorizer;
pub mod oauth;
pub mod principal;
pub mod sasl;
pub mod scram;
pub mod tls;

use std::fmt;
use std::sync::Arc;

use crate::config::listeners::ClientListener;
use crate::config::security::{Protocol, SaslSettings};

/// Kafka's `KafkaPrincipal`: a type (always `User` for the principals Kafka's default builder
/// makes) and a name. Printed `User:alice`, as ACLs and `super.users` name principals.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    pub kind: String,
    pub name: String,
}

impl Principal {
    pub fn user(name: impl Into<String>) -> Self {
        Principal {
            kind: "User".into(),
            name: name.into(),
        }
    }

    /// `User:ANONYMOUS`: a PLAINTEXT connection, or TLS without a client certificate.
    pub fn anonymous() -> Self {
        Principal::user("ANONYMOUS")
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// The audit line of a successful authentication (target `strom::audit`).
pub fn audit_success(
    listener: &str,
    client: std::net::SocketAddr,
    mechanism: &str,
    principal: &Principal,
) {
    crate::metrics::global().authentication(listener, mechanism, true);
    tracing::info!(
        target: "strom::audit",
        event = "authentication",
        result = "success",
        principal = %principal,
        mechanism = mechanism,
        listener = listener,
        client = %client,
    );
}

/// The audit line of a failed authentication (target `strom::audit`).
pub fn audit_failure(listener: &str, client: std::net::SocketAddr, mechanism: &str, reason: &str) {
    crate::metrics::global().authentication(listener, mechanism, false);
    tracing::info!(
        target: "strom::audit",
        event = "authentication",
        result = "failure",
        mechanism = mechanism,
        listener = listener,
        client = %client,
        reason = reason,
    );
}

/// Compares secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who is on a connection and through which listener: what handlers are told (and what the
/// authorizer will check). Replaced whole when a SASL session re-authenticates.
pub struct Session {
    pub endpoint: Arc<Endpoint>,
    pub principal: Principal,
}

impl Session {
    pub fn anonymous(endpoint: Arc<Endpoint>) -> Arc<Self> {
        Arc::new(Session {
            endpoint,
            principal: Principal::anonymous(),
        })
    }

    /// The listener's name, as Metadata and FindCoordinator pick the brokers' addresses by it.
    pub fn listener(&self) -> &str {
        &self.endpoint.name
    }
}

/// A client listener ready to serve: its settings with the TLS acceptor and principal rules
/// built from them.
pub struct Endpoint {
    pub name: String,
    pub protocol: Protocol,
    pub tls: Option<tls::Tls>,
    pub sasl: Option<SaslSettings>,
}

impl Endpoint {
    /// A PLAINTEXT listener named `name`.
    pub fn plaintext(name: &str) -> Arc<Self> {
        Arc::new(Endpoint {
            name: name.to_string(),
            protocol: Protocol::Plaintext,
            tls: None,
            sasl: None,
        })
    }

    /// Builds a listener's TLS material (reading its keystore and truststore files).
    pub fn build(l: &ClientListener) -> Result<Arc<Self>, String> {
        if let Some(oauth::Validator::JwksUrl { url, refresh_ms }) = l
            .sasl
            .as_ref()
            .and_then(|s| s.oauth.as_ref())
            .map(|o| &o.validator)
        {
            oauth::start_jwks_refresh(url, *refresh_ms);
        }
        let tls = match &l.tls {
            Some(s) => Some(tls::Tls::new(s).map_err(|e| format!("listener {}: {e}", l.name))?),
            None => None,
        };
        Ok(Arc::new(Endpoint {
            name: l.name.clone(),
            protocol: l.protocol,
            tls,
            sasl: l.sasl.clone(),
        }))
    }
}
