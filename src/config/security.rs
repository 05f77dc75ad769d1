//! Security settings under Kafka's names: what each client listener speaks (TLS, SASL), with
//! the broker-wide `ssl.*` / `sasl.*` keys and their per-listener overrides
//! `listener.name.<listener>.<key>` (the listener name in lower case, as Kafka writes it), and
//! the JAAS lines `listener.name.<listener>.<mechanism>.sasl.jaas.config`.
//!
//! This module only parses and checks; certificate files are read when the listener starts
//! (`security::tls`), so a bad keystore stops start-up with the file's name.

use std::collections::BTreeMap;

use super::{invalid, ConfigError};

/// The security protocol of a listener (`listener.security.protocol.map`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "PLAINTEXT" => Protocol::Plaintext,
            "SSL" => Protocol::Ssl,
            "SASL_PLAINTEXT" => Protocol::SaslPlaintext,
            "SASL_SSL" => Protocol::SaslSsl,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Plaintext => "PLAINTEXT",
            Protocol::Ssl => "SSL",
            Protocol::SaslPlaintext => "SASL_PLAINTEXT",
            Protocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn tls(self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }

    pub fn sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }
}

/// The SASL mechanisms Strom serves.
pub const MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

/// `listener.name.<l>.oauthbearer.sasl.server.callback.handler.class` values: Kafka's JWKS
/// validator, and the unsecured one (unsigned tokens; only when named).
pub const OAUTH_VALIDATOR: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler";
pub const OAUTH_UNSECURED_VALIDATOR: &str =
    "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";

/// Keys a listener may override with `listener.name.<listener>.<key>`, and that also exist
/// broker-wide. Values are kept as strings here and checked in [`resolve`].
pub const LISTENER_KEYS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.protocol",
    "ssl.cipher.suites",
    "ssl.principal.mapping.rules",
    "sasl.enabled.mechanisms",
    "connections.max.reauth.ms",
    "sasl.server.max.receive.size",
    "sasl.oauthbearer.jwks.endpoint.url",
    "sasl.oauthbearer.jwks.endpoint.refresh.ms",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.sub.claim.name",
    "sasl.oauthbearer.scope.claim.name",
    "sasl.oauthbearer.clock.skew.seconds",
];

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// Where a listener's key and certificate chain come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStore {
    /// `ssl.keystore.type=PEM` with a file holding the PKCS#8 key and the chain.
    PemFile { path: String },
    /// `ssl.keystore.type=PEM` with `ssl.keystore.key` and `ssl.keystore.certificate.chain`.
    PemInline { key: String, chain: String },
    /// `ssl.keystore.type=PKCS12` (or JKS naming a PKCS12 file, as Java 9+'s keytool writes).
    Pkcs12 {
        path: String,
        password: Option<String>,
    },
}

/// Which client certificates a listener trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustStore {
    PemFile {
        path: String,
    },
    PemInline {
        certs: String,
    },
    Pkcs12 {
        path: String,
        password: Option<String>,
    },
}

/// A TLS listener's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub keystore: KeyStore,
    /// `ssl.key.password`: Strom reads unencrypted keys only; set means an encrypted key.
    pub key_password: Option<String>,
    pub truststore: Option<TrustStore>,
    pub client_auth: ClientAuth,
    /// `ssl.enabled.protocols`: TLSv1.2 and/or TLSv1.3.
    pub protocols: Vec<String>,
    /// `ssl.cipher.suites` (IANA names; empty: rustls' defaults).
    pub cipher_suites: Vec<String>,
    /// `ssl.principal.mapping.rules`, as written.
    pub principal_rules: String,
}

/// A SASL listener's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslSettings {
    /// `sasl.enabled.mechanisms`, in the order given (the SaslHandshake answer lists them).
    pub mechanisms: Vec<String>,
    /// PLAIN's users: the `user_<name>="<password>"` options of the PLAIN JAAS line.
    pub plain_users: BTreeMap<String, String>,
    /// `connections.max.reauth.ms` (0: sessions never expire).
    pub reauth_ms: i64,
    /// `sasl.server.max.receive.size`: the largest SASL token accepted.
    pub max_receive_size: usize,
    /// OAUTHBEARER's validation, when that mechanism is enabled.
    pub oauth: Option<crate::security::oauth::OAuthSettings>,
}

/// Broker-wide security keys and the per-listener overrides, as set.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// Broker-wide values of [`LISTENER_KEYS`].
    pub global: BTreeMap<String, String>,
    /// `listener.name.<listener>.<key>` by (listener in upper case, key), JAAS lines included
    /// (key `<mechanism>.sasl.jaas.config`, the mechanism in lower case).
    pub per_listener: BTreeMap<(String, String), String>,
    /// `connection.failed.authentication.delay.ms`.
    pub failed_auth_delay_ms: u64,
    /// `authorizer.class.name`, when it names the StandardAuthorizer (None: no authorizer).
    pub authorizer: Option<String>,
    /// `super.users`: principals as `Type:name`, each trimmed.
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acls: bool,
    /// `--add-scram` credentials: made at start for each user without one for the mechanism.
    pub bootstrap_scram: Vec<BootstrapScram>,
}

/// A SCRAM credential given on the command line as `kafka-storage format --add-scram` takes
/// it: `SCRAM-SHA-256=[name=alice,password=alice-secret,iterations=8192]` (values may be
/// double-quoted; iterations default to 4096).
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapScram {
    pub mechanism: String,
    pub user: String,
    pub password: String,
    pub iterations: i32,
}

impl std::fmt::Debug for BootstrapScram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(f, "{}[name={}]", self.mechanism, self.user)
    }
}

/// Parses one `--add-scram` value.
pub fn parse_add_scram(v: &str) -> Result<BootstrapScram, String> {
    let (mechanism, rest) = v
        .split_once('=')
        .ok_or("expected MECHANISM=[name=...,password=...]")?;
    let mechanism = mechanism.trim().to_ascii_uppercase();
    if !matches!(mechanism.as_str(), "SCRAM-SHA-256" | "SCRAM-SHA-512") {
        return Err(format!("{mechanism} is not SCRAM-SHA-256 or SCRAM-SHA-512"));
    }
    let body = rest
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or("expected the settings in [...]")?;
    // key=value pairs separated by commas outside double quotes.
    let (mut user, mut password, mut iterations) = (None, None, 4096);
    let mut pairs = Vec::new();
    let (mut cur, mut quoted) = (String::new(), false);
    for ch in body.chars() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => pairs.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err("unbalanced double quote".into());
    }
    pairs.push(cur);
    for p in pairs.iter().filter(|p| !p.trim().is_empty()) {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("`{p}` is not key=value"))?;
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => user = Some(v.to_string()),
            "password" => password = Some(v.to_string()),
            "iterations" => {
                iterations = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|i| (4096..=16384).contains(i))
                    .ok_or("iterations must be 4096..16384")?
            }
            other => {
                return Err(format!(
                    "`{other}` is not supported here (give name, password and iterations)"
                ))
            }
        }
    }
    let user = user.filter(|u| !u.is_empty()).ok_or("name is missing")?;
    let password = password
        .filter(|p| !p.is_empty())
        .ok_or("password is missing")?;
    Ok(BootstrapScram {
        mechanism,
        user,
        password,
        iterations,
    })
}

/// The `authorizer.class.name` values Strom's authorizer answers to: Kafka's KRaft
/// StandardAuthorizer and the ZooKeeper-era AclAuthorizer, which had the same ACL semantics.
pub const AUTHORIZER_CLASSES: &[&str] = &[
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
];

/// `super.users` as Kafka's StandardAuthorizer reads it: split on `;` (DNs contain commas),
/// each part trimmed, empty parts skipped, each `Type:name`.
pub fn parse_super_users(v: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for part in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {
                out.push(part.to_string())
            }
            _ => {
                return Err(format!(
                    "`{part}` is not a principal (Type:name, e.g. User:admin)"
                ))
            }
        }
    }
    Ok(out)
}

impl SecurityConfig {
    /// Records `listener.name.<l>.<key>`; false when `key` is not one Strom reads (the caller
    /// logs that it has no effect).
    pub fn set_listener_key(&mut self, full: &str, value: &str) -> bool {
        let Some(rest) = full.strip_prefix("listener.name.") else {
            return false;
        };
        let Some((listener, key)) = rest.split_once('.') else {
            return false;
        };
        let jaas = key
            .strip_suffix(".sasl.jaas.config")
            .or_else(|| key.strip_suffix(".sasl.server.callback.handler.class"))
            .is_some_and(|m| MECHANISMS.iter().any(|x| x.eq_ignore_ascii_case(m)));
        // Kafka also scopes a SASL setting to a mechanism:
        // `listener.name.<l>.oauthbearer.sasl.oauthbearer.jwks.endpoint.url`. Only that
        // mechanism reads these keys, so the listener's value is the mechanism's.
        let key = match key.split_once('.') {
            Some((m, k))
                if !jaas
                    && MECHANISMS.iter().any(|x| x.eq_ignore_ascii_case(m))
                    && k.starts_with("sasl.")
                    && LISTENER_KEYS.contains(&k) =>
            {
                k
            }
            _ => key,
        };
        if !(LISTENER_KEYS.contains(&key) || jaas) {
            return false;
        }
        self.per_listener.insert(
            (listener.to_ascii_uppercase(), key.to_ascii_lowercase()),
            value.to_string(),
        );
        true
    }

    /// A key's value for `listener`: its override, else the broker-wide value.
    pub fn value(&self, listener: &str, key: &str) -> Option<&str> {
        self.per_listener
            .get(&(listener.to_string(), key.to_string()))
            .or_else(|| self.global.get(key))
            .map(String::as_str)
    }

    fn key_name(&self, listener: &str, key: &str) -> String {
        if self
            .per_listener
            .contains_key(&(listener.to_string(), key.to_string()))
        {
            format!("listener.name.{}.{key}", listener.to_ascii_lowercase())
        } else {
            key.to_string()
        }
    }

    /// The TLS settings of listener `name`.
    pub fn tls(&self, name: &str) -> Result<TlsSettings, ConfigError> {
        let get = |k: &str| self.value(name, k).filter(|v| !v.is_empty());
        let err = |k: &str, reason: String| {
            let key = self.key_name(name, k);
            invalid(&key, self.value(name, k).unwrap_or(""), reason)
        };
        let kind = get("ssl.keystore.type")
            .unwrap_or("JKS")
            .to_ascii_uppercase();
        let keystore = match (
            kind.as_str(),
            get("ssl.keystore.location"),
            get("ssl.keystore.key"),
        ) {
            ("PEM", Some(path), None) => KeyStore::PemFile {
                path: path.to_string(),
            },
            ("PEM", None, Some(key)) => KeyStore::PemInline {
                key: key.to_string(),
                chain: get("ssl.keystore.certificate.chain")
                    .ok_or_else(|| {
                        err(
                            "ssl.keystore.certificate.chain",
                            "ssl.keystore.key needs its certificate chain".into(),
                        )
                    })?
                    .to_string(),
            },
            ("PEM", Some(_), Some(_)) => {
                return Err(err(
                    "ssl.keystore.key",
                    "give either ssl.keystore.location or ssl.keystore.key, not both".into(),
                ))
            }
            ("PKCS12" | "JKS", Some(path), None) => KeyStore::Pkcs12 {
                path: path.to_string(),
                password: get("ssl.keystore.password").map(str::to_string),
            },
            (_, None, None) => {
                return Err(err(
                    "ssl.keystore.location",
                    format!(
                        "listener {name} uses TLS and has no keystore: set ssl.keystore.location \
                         (or listener.name.{}.ssl.keystore.location)",
                        name.to_ascii_lowercase()
                    ),
                ))
            }
            (other, _, _) => {
                return Err(err(
                    "ssl.keystore.type",
                    format!("keystore type {other}: Strom reads PEM and PKCS12"),
                ))
            }
        };
        let truststore = match (
            get("ssl.truststore.type")
                .unwrap_or("JKS")
                .to_ascii_uppercase()
                .as_str(),
            get("ssl.truststore.location"),
            get("ssl.truststore.certificates"),
        ) {
            (_, None, None) => None,
            ("PEM", Some(path), None) => Some(TrustStore::PemFile {
                path: path.to_string(),
            }),
            ("PEM", None, Some(certs)) => Some(TrustStore::PemInline {
                certs: certs.to_string(),
            }),
            ("PKCS12" | "JKS", Some(path), None) => Some(TrustStore::Pkcs12 {
                path: path.to_string(),
                password: get("ssl.truststore.password").map(str::to_string),
            }),
            (other, _, _) => {
                return Err(err(
                    "ssl.truststore.type",
                    format!(
                        "truststore type {other} with these keys: Strom reads PEM (file or \
                         ssl.truststore.certificates) and PKCS12 files"
                    ),
                ))
            }
        };
        let client_auth = match get("ssl.client.auth")
            .unwrap_or("none")
            .to_ascii_lowercase()
            .as_str()
        {
            "none" => ClientAuth::None,
            "requested" => ClientAuth::Requested,
            "required" => ClientAuth::Required,
            other => {
                return Err(err(
                    "ssl.client.auth",
                    format!("'{other}' is not one of none, requested, required"),
                ))
            }
        };
        if client_auth != ClientAuth::None && truststore.is_none() {
            return Err(err(
                "ssl.client.auth",
                "client authentication needs a truststore (ssl.truststore.location)".into(),
            ));
        }
        let protocols = list(get("ssl.enabled.protocols").unwrap_or("TLSv1.2,TLSv1.3"));
        if let Some(p) = protocols
            .iter()
            .find(|p| !matches!(p.as_str(), "TLSv1.2" | "TLSv1.3"))
        {
            return Err(err(
                "ssl.enabled.protocols",
                format!("{p}: Strom serves TLSv1.2 and TLSv1.3"),
            ));
        }
        if protocols.is_empty() {
            return Err(err("ssl.enabled.protocols", "no protocol enabled".into()));
        }
        Ok(TlsSettings {
            keystore,
            key_password: get("ssl.key.password").map(str::to_string),
            truststore,
            client_auth,
            protocols,
            cipher_suites: list(get("ssl.cipher.suites").unwrap_or("")),
            principal_rules: get("ssl.principal.mapping.rules")
                .unwrap_or("DEFAULT")
                .to_string(),
        })
    }

    /// The SASL settings of listener `name`.
    pub fn sasl(&self, name: &str) -> Result<SaslSettings, ConfigError> {
        let key = self.key_name(name, "sasl.enabled.mechanisms");
        let raw = self
            .value(name, "sasl.enabled.mechanisms")
            .unwrap_or("GSSAPI");
        let mechanisms = list(raw);
        if mechanisms.is_empty() {
            return Err(invalid(
                &key,
                raw,
                format!("listener {name} uses SASL and enables no mechanism"),
            ));
        }
        for m in &mechanisms {
            if !MECHANISMS.contains(&m.as_str()) {
                return Err(invalid(
                    &key,
                    raw,
                    format!(
                        "mechanism {m} is not served by Strom (it serves {}){}",
                        MECHANISMS.join(", "),
                        if m == "GSSAPI" {
                            "; GSSAPI (Kerberos) is Kafka's default: set sasl.enabled.mechanisms"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
        let mut plain_users = BTreeMap::new();
        if mechanisms.iter().any(|m| m == "PLAIN") {
            let jaas_key = "plain.sasl.jaas.config";
            let full = format!("listener.name.{}.{jaas_key}", name.to_ascii_lowercase());
            let line = self
                .per_listener
                .get(&(name.to_string(), jaas_key.to_string()))
                .ok_or_else(|| {
                    invalid(
                        &full,
                        "",
                        "PLAIN needs its users: set this key to \
                         org.apache.kafka.common.security.plain.PlainLoginModule required \
                         user_<name>=\"<password>\" ...;",
                    )
                })?;
            let (module, options) = parse_jaas(line).map_err(|e| invalid(&full, line, e))?;
            if module != "org.apache.kafka.common.security.plain.PlainLoginModule" {
                return Err(invalid(
                    &full,
                    line,
                    format!("PLAIN takes PlainLoginModule, not {module}"),
                ));
            }
            for (k, v) in options {
                if let Some(user) = k.strip_prefix("user_") {
                    plain_users.insert(user.to_string(), v);
                }
            }
        }
        for m in &mechanisms {
            let jaas_key = format!("{}.sasl.jaas.config", m.to_ascii_lowercase());
            if let Some(line) = self.per_listener.get(&(name.to_string(), jaas_key.clone())) {
                let full = format!("listener.name.{}.{jaas_key}", name.to_ascii_lowercase());
                parse_jaas(line).map_err(|e| invalid(&full, line, e))?;
            }
        }
        let reauth_key = self.key_name(name, "connections.max.reauth.ms");
        let reauth = self.value(name, "connections.max.reauth.ms").unwrap_or("0");
        let reauth_ms = reauth
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .ok_or_else(|| invalid(&reauth_key, reauth, "not a non-negative number"))?;
        let size_key = self.key_name(name, "sasl.server.max.receive.size");
        let size = self
            .value(name, "sasl.server.max.receive.size")
            .unwrap_or("524288");
        let max_receive_size = size
            .parse::<usize>()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| invalid(&size_key, size, "not a positive number"))?;
        let oauth = if mechanisms.iter().any(|m| m == "OAUTHBEARER") {
            Some(self.oauth(name)?)
        } else {
            None
        };
        Ok(SaslSettings {
            mechanisms,
            plain_users,
            reauth_ms,
            max_receive_size,
            oauth,
        })
    }

    /// A listener's OAUTHBEARER validation: the JWKS validator (a `file:` JWKS URL) unless the
    /// unsecured validator is named; Kafka's default (unsecured when no handler is named) is
    /// not followed — an unsigned token is never accepted by accident.
    fn oauth(&self, name: &str) -> Result<crate::security::oauth::OAuthSettings, ConfigError> {
        use crate::security::oauth::{OAuthSettings, Validator};
        let handler_key = "oauthbearer.sasl.server.callback.handler.class";
        let handler_full = format!("listener.name.{}.{handler_key}", name.to_ascii_lowercase());
        let handler = self
            .per_listener
            .get(&(name.to_string(), handler_key.to_string()))
            .map(|s| s.trim().to_string());
        let url_key = self.key_name(name, "sasl.oauthbearer.jwks.endpoint.url");
        let url = self
            .value(name, "sasl.oauthbearer.jwks.endpoint.url")
            .filter(|v| !v.trim().is_empty());
        let validator = match (handler.as_deref(), url) {
            (Some(OAUTH_UNSECURED_VALIDATOR), _) => Validator::Unsecured,
            (Some(OAUTH_VALIDATOR) | None, Some(url))
                if url.trim().starts_with("https://") || url.trim().starts_with("http://") =>
            {
                let refresh_key = self.key_name(name, "sasl.oauthbearer.jwks.endpoint.refresh.ms");
                let refresh = self
                    .value(name, "sasl.oauthbearer.jwks.endpoint.refresh.ms")
                    .unwrap_or("3600000");
                let refresh_ms = refresh
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| invalid(&refresh_key, refresh, "not a positive number"))?;
                Validator::JwksUrl {
                    url: url.trim().to_string(),
                    refresh_ms,
                }
            }
            (Some(OAUTH_VALIDATOR) | None, Some(url)) => {
                let path = url.trim().strip_prefix("file:").ok_or_else(|| {
                    invalid(
                        &url_key,
                        url,
                        "the JWKS URL is a file:, http: or https: URL",
                    )
                })?;
                let path = path.strip_prefix("//").unwrap_or(path);
                let path = std::path::PathBuf::from(path);
                crate::security::oauth::check_jwks(&path).map_err(|e| invalid(&url_key, url, e))?;
                Validator::Jwks(path)
            }
            (Some(OAUTH_VALIDATOR) | None, None) => {
                return Err(invalid(
                    &url_key,
                    "",
                    format!(
                        "OAUTHBEARER on listener {name} needs the JWKS its tokens are signed \
                         with (a file: URL), or {handler_full}={OAUTH_UNSECURED_VALIDATOR} to \
                         accept unsigned tokens (development only)"
                    ),
                ))
            }
            (Some(other), _) => {
                return Err(invalid(
                    &handler_full,
                    other,
                    format!(
                        "Strom's OAUTHBEARER validators are {OAUTH_VALIDATOR} and \
                         {OAUTH_UNSECURED_VALIDATOR}; a custom class cannot be loaded"
                    ),
                ))
            }
        };
        let skew_key = self.key_name(name, "sasl.oauthbearer.clock.skew.seconds");
        let skew = self
            .value(name, "sasl.oauthbearer.clock.skew.seconds")
            .unwrap_or("30");
        let clock_skew_s = skew
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .ok_or_else(|| invalid(&skew_key, skew, "not a non-negative number"))?;
        Ok(OAuthSettings {
            validator,
            audience: self
                .value(name, "sasl.oauthbearer.expected.audience")
                .map(list)
                .unwrap_or_default(),
            issuer: self
                .value(name, "sasl.oauthbearer.expected.issuer")
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            sub_claim: self
                .value(name, "sasl.oauthbearer.sub.claim.name")
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .unwrap_or("sub")
                .to_string(),
            clock_skew_s,
        })
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses one JAAS login module line: `<class> <flag> key="value" ... ;` into the class and
/// its options (values quoted with `"`, `\` escaping inside quotes, or bare words).
pub fn parse_jaas(line: &str) -> Result<(String, Vec<(String, String)>), String> {
    let s = line.trim();
    let s = s
        .strip_suffix(';')
        .ok_or("a JAAS line ends with ';'")?
        .trim_end();
    let mut chars = s.chars().peekable();
    let mut word = || -> String {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            w.push(c);
            chars.next();
        }
        w
    };
    let module = word();
    let flag = word();
    if module.is_empty() {
        return Err("no login module".into());
    }
    if !matches!(
        flag.as_str(),
        "required" | "requisite" | "sufficient" | "optional"
    ) {
        return Err(format!(
            "'{flag}' is not a JAAS control flag (required, requisite, sufficient, optional)"
        ));
    }
    let rest: String = chars.collect();
    let mut options = Vec::new();
    let mut it = rest.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        if it.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = it.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            it.next();
        }
        if it.next() != Some('=') || key.is_empty() {
            return Err(format!("option '{key}' has no '=value'"));
        }
        let mut value = String::new();
        if it.peek() == Some(&'"') {
            it.next();
            loop {
                match it.next() {
                    Some('"') => break,
                    Some('\\') => value.push(it.next().ok_or("unterminated quote")?),
                    Some(c) => value.push(c),
                    None => return Err(format!("option {key}: unterminated quote")),
                }
            }
        } else {
            while let Some(&c) = it.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                it.next();
            }
        }
        options.push((key, value));
    }
    Ok((module, options))
}

#[cfg(test)]
mod tests {
    #[test]
    fn oauthbearer_needs_a_jwks_or_the_unsecured_validator_by_name() {
        use crate::security::oauth::Validator;
        let mut s = SecurityConfig::default();
        s.global
            .insert("sasl.enabled.mechanisms".into(), "OAUTHBEARER".into());
        let e = s.sasl("OAUTH").expect_err("no validation configured");
        assert!(
            e.to_string().contains("sasl.oauthbearer.jwks.endpoint.url"),
            "{e}"
        );
        s.global.insert(
            "sasl.oauthbearer.jwks.endpoint.url".into(),
            "https://idp.example/jwks".into(),
        );
        assert_eq!(
            s.sasl("OAUTH")
                .expect("https")
                .oauth
                .expect("oauth")
                .validator,
            Validator::JwksUrl {
                url: "https://idp.example/jwks".into(),
                refresh_ms: 3_600_000
            }
        );
        s.global.insert(
            "sasl.oauthbearer.jwks.endpoint.url".into(),
            "ftp://idp.example/jwks".into(),
        );
        assert!(s
            .sasl("OAUTH")
            .expect_err("ftp")
            .to_string()
            .contains("file:"));
        s.global.insert(
            "sasl.oauthbearer.jwks.endpoint.url".into(),
            "file:///nonexistent/jwks.json".into(),
        );
        assert!(
            s.sasl("OAUTH").is_err(),
            "an unreadable JWKS stops start-up"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwks.json");
        std::fs::write(
            &path,
            r#"{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}"#,
        )
        .expect("jwks");
        s.global.insert(
            "sasl.oauthbearer.jwks.endpoint.url".into(),
            format!("file://{}", path.display()),
        );
        s.global
            .insert("sasl.oauthbearer.expected.audience".into(), "a, b".into());
        let o = s.sasl("OAUTH").expect("jwks").oauth.expect("oauth");
        assert_eq!(o.validator, Validator::Jwks(path.clone()));
        assert_eq!(o.audience, ["a", "b"]);
        assert_eq!((o.sub_claim.as_str(), o.clock_skew_s), ("sub", 30));
        // Kafka's mechanism-scoped form of a listener key.
        let mut scoped = SecurityConfig::default();
        assert!(
            scoped.set_listener_key("listener.name.oauth.sasl.enabled.mechanisms", "OAUTHBEARER")
        );
        assert!(scoped.set_listener_key(
            "listener.name.oauth.oauthbearer.sasl.oauthbearer.jwks.endpoint.url",
            &format!("file://{}", path.display())
        ));
        assert!(scoped.set_listener_key(
            "listener.name.oauth.oauthbearer.sasl.server.callback.handler.class",
            OAUTH_VALIDATOR
        ));
        assert_eq!(
            scoped
                .sasl("OAUTH")
                .expect("scoped")
                .oauth
                .expect("oauth")
                .validator,
            Validator::Jwks(path.clone())
        );
        assert!(s.set_listener_key(
            "listener.name.oauth.oauthbearer.sasl.server.callback.handler.class",
            OAUTH_UNSECURED_VALIDATOR
        ));
        assert_eq!(
            s.sasl("OAUTH")
                .expect("unsecured")
                .oauth
                .expect("oauth")
                .validator,
            Validator::Unsecured
        );
        assert!(s.set_listener_key(
            "listener.name.oauth.oauthbearer.sasl.server.callback.handler.class",
            "com.example.Custom"
        ));
        assert!(s.sasl("OAUTH").is_err(), "a custom validator class");
    }

    #[test]
    fn add_scram_takes_kafka_storage_syntax() {
        let b =
            super::parse_add_scram("SCRAM-SHA-256=[name=alice,password=\"a,b]c\",iterations=8192]")
                .expect("parsed");
        assert_eq!(
            (
                b.mechanism.as_str(),
                b.user.as_str(),
                b.password.as_str(),
                b.iterations
            ),
            ("SCRAM-SHA-256", "alice", "a,b]c", 8192)
        );
        assert_eq!(format!("{b:?}"), "SCRAM-SHA-256[name=alice]", "no password");
        let d = super::parse_add_scram("scram-sha-512=[name=bob,password=x]").expect("parsed");
        assert_eq!(
            (d.mechanism.as_str(), d.iterations),
            ("SCRAM-SHA-512", 4096)
        );
        for bad in [
            "PLAIN=[name=a,password=b]",
            "SCRAM-SHA-256=name=a,password=b",
            "SCRAM-SHA-256=[name=a]",
            "SCRAM-SHA-256=[password=b]",
            "SCRAM-SHA-256=[name=a,password=b,iterations=10]",
            "SCRAM-SHA-256=[name=a,salt=c2FsdA==,saltedpassword=eA==]",
            "SCRAM-SHA-256=[name=a,password=\"b]",
        ] {
            assert!(super::parse_add_scram(bad).is_err(), "{bad}");
        }
    }

    use super::*;

    #[test]
    fn jaas_lines_parse_as_kafka_writes_them() {
        let (m, o) = parse_jaas(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="al\"ice";"#,
        )
        .expect("parses");
        assert_eq!(m, "org.apache.kafka.common.security.plain.PlainLoginModule");
        assert_eq!(o[2], ("user_admin".into(), "admin-secret".into()));
        assert_eq!(o[3], ("user_alice".into(), "al\"ice".into()));
        let (m, o) =
            parse_jaas("org.apache.kafka.common.security.scram.ScramLoginModule required;")
                .expect("no options");
        assert!(m.ends_with("ScramLoginModule") && o.is_empty());
        assert!(parse_jaas("Module required a=\"b\"").is_err(), "no ';'");
        assert!(parse_jaas("Module always;").is_err(), "bad flag");
        assert!(parse_jaas("Module required a=\"b;").is_err(), "open quote");
    }

    #[test]
    fn listener_overrides_win_over_broker_wide_values() {
        let mut s = SecurityConfig::default();
        s.global.insert("ssl.keystore.type".into(), "PEM".into());
        s.global
            .insert("ssl.keystore.location".into(), "/k.pem".into());
        assert!(s.set_listener_key("listener.name.mtls.ssl.client.auth", "required"));
        assert!(!s.set_listener_key("listener.name.mtls.max.connections", "5"));
        s.global.insert("ssl.truststore.type".into(), "PEM".into());
        s.global
            .insert("ssl.truststore.location".into(), "/ca.pem".into());
        assert_eq!(
            s.tls("MTLS").expect("tls").client_auth,
            ClientAuth::Required
        );
        assert_eq!(s.tls("SSL").expect("tls").client_auth, ClientAuth::None);
        s.global.remove("ssl.keystore.location");
        let e = s.tls("SSL").expect_err("no keystore");
        assert!(e.to_string().contains("ssl.keystore.location"), "{e}");
    }

    #[test]
    fn sasl_needs_served_mechanisms_and_plain_its_users() {
        let mut s = SecurityConfig::default();
        let e = s.sasl("SASL_PLAINTEXT").expect_err("GSSAPI default");
        assert!(e.to_string().contains("GSSAPI"), "{e}");
        s.global.insert(
            "sasl.enabled.mechanisms".into(),
            "PLAIN,SCRAM-SHA-512".into(),
        );
        let e = s.sasl("SASL_PLAINTEXT").expect_err("PLAIN without users");
        assert!(e.to_string().contains("plain.sasl.jaas.config"), "{e}");
        assert!(s.set_listener_key(
            "listener.name.sasl_plaintext.plain.sasl.jaas.config",
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="a-pw";"#
        ));
        let sasl = s.sasl("SASL_PLAINTEXT").expect("sasl");
        assert_eq!(sasl.plain_users["alice"], "a-pw");
        assert_eq!(sasl.mechanisms, vec!["PLAIN", "SCRAM-SHA-512"]);
    }
}
