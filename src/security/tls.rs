//! TLS listeners with rustls (ring provider): the keystore (PEM file, inline PEM, or PKCS12),
//! the truststore client certificates are checked against, `ssl.client.auth`,
//! `ssl.enabled.protocols` and `ssl.cipher.suites`.
//!
//! Certificates are reloaded without a restart: [`Tls::reload_if_changed`], called
//! periodically by the server, re-reads a keystore file whose modification time or size
//! changed and serves new handshakes with it (connections already open keep theirs). A
//! keystore that no longer parses is logged and the previous one kept.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

use super::principal::Mapper;
use crate::config::security::{ClientAuth, KeyStore, TlsSettings, TrustStore};

/// A listener's TLS: the acceptor for new connections and the principal rules.
pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub mapper: Mapper,
    settings: TlsSettings,
    cert: Arc<Reloading>,
    provider: Arc<CryptoProvider>,
    /// Modification time and length of the keystore file when last read.
    stamp: Mutex<Option<(SystemTime, u64)>>,
}

impl Tls {
    pub fn new(s: &TlsSettings) -> Result<Tls, String> {
        let provider = Arc::new(provider(s)?);
        let key = certified_key(&s.keystore, s.key_password.as_deref(), &provider)?;
        let cert = Arc::new(Reloading {
            current: RwLock::new(Arc::new(key)),
        });
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = s
            .protocols
            .iter()
            .map(|p| match p.as_str() {
                "TLSv1.2" => &rustls::version::TLS12,
                _ => &rustls::version::TLS13,
            })
            .collect();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("ssl.enabled.protocols / ssl.cipher.suites: {e}"))?;
        let builder = match (s.client_auth, &s.truststore) {
            (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
            (auth, Some(trust)) => {
                let mut roots = RootCertStore::empty();
                for c in trusted(trust)? {
                    roots
                        .add(c)
                        .map_err(|e| format!("truststore certificate: {e}"))?;
                }
                let v =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let v = if auth == ClientAuth::Requested {
                    v.allow_unauthenticated()
                } else {
                    v
                };
                builder.with_client_cert_verifier(
                    v.build()
                        .map_err(|e| format!("client certificate verifier: {e}"))?,
                )
            }
        };
        let mut config = builder.with_cert_resolver(cert.clone());
        // Kafka clients do not resume TLS sessions across connections to a broker; a
        // stateless server keeps no per-client cache.
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            mapper: Mapper::parse(&s.principal_rules)
                .map_err(|e| format!("ssl.principal.mapping.rules: {e}"))?,
            stamp: Mutex::new(keystore_path(&s.keystore).and_then(stamp)),
            settings: s.clone(),
            cert,
            provider,
        })
    }

    /// Reads the keystore again if its file changed since it was last read; true when a new
    /// certificate is now served.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let Some(path) = keystore_path(&self.settings.keystore) else {
            return Ok(false);
        };
        let now = stamp(path);
        {
            let mut last = self.stamp.lock();
            if now.is_none() || *last == now {
                return Ok(false);
            }
            *last = now;
        }
        let key = certified_key(
            &self.settings.keystore,
            self.settings.key_password.as_deref(),
            &self.provider,
        )?;
        *self.cert.current.write() = Arc::new(key);
        Ok(true)
    }
}

fn keystore_path(k: &KeyStore) -> Option<&Path> {
    match k {
        KeyStore::PemFile { path } | KeyStore::Pkcs12 { path, .. } => Some(Path::new(path)),
        KeyStore::PemInline { .. } => None,
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The certificate served to new handshakes, swapped on reload.
#[derive(Debug)]
struct Reloading {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

/// The ring provider with `ssl.cipher.suites` applied (Java's names are IANA's; rustls calls
/// the TLS 1.3 ones `TLS13_*`).
fn provider(s: &TlsSettings) -> Result<CryptoProvider, String> {
    // ring: no C toolchain at build time. Its deprecation is for the post-quantum key
    // exchange it lacks, which Kafka's Java clients (JDK TLS) do not offer either.
    #[allow(deprecated)]
    let mut p = rustls::crypto::ring::default_provider();
    if !s.cipher_suites.is_empty() {
        let known: Vec<String> = p.cipher_suites.iter().map(|c| iana(c.suite())).collect();
        for want in &s.cipher_suites {
            if !known.contains(want) {
                return Err(format!(
                    "ssl.cipher.suites: {want} is not served (served: {})",
                    known.join(", ")
                ));
            }
        }
        p.cipher_suites
            .retain(|c| s.cipher_suites.contains(&iana(c.suite())));
    }
    Ok(p)
}

fn iana(s: rustls::CipherSuite) -> String {
    let name = s.as_str().map(str::to_string).unwrap_or_default();
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
}

fn certified_key(
    k: &KeyStore,
    key_password: Option<&str>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let (key, chain): (PrivateKeyDer<'static>, Vec<CertificateDer<'static>>) = match k {
        KeyStore::PemFile { path } => {
            let pem = read(path)?;
            pem_key_and_chain(&pem, &pem, key_password).map_err(|e| format!("{path}: {e}"))?
        }
        KeyStore::PemInline { key, chain } => {
            pem_key_and_chain(key.as_bytes(), chain.as_bytes(), key_password)
                .map_err(|e| format!("ssl.keystore.key / certificate.chain: {e}"))?
        }
        KeyStore::Pkcs12 { path, password } => {
            let data = read(path)?;
            if data.starts_with(&[0xFE, 0xED, 0xFE, 0xED]) {
                return Err(format!(
                    "{path} is a JKS keystore: convert it with `keytool -importkeystore \
                     -srckeystore {path} -destkeystore keystore.p12 -deststoretype PKCS12` and \
                     set ssl.keystore.type=PKCS12"
                ));
            }
            let store = p12_keystore::KeyStore::from_pkcs12(
                &data,
                password.as_deref().unwrap_or(""),
                p12_keystore::Pkcs12ImportPolicy::Relaxed,
            )
            .map_err(|e| format!("{path}: not a readable PKCS12 keystore: {e}"))?;
            let (_, chain) = store
                .private_key_chain()
                .ok_or_else(|| format!("{path}: no private key entry"))?;
            (
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec())),
                chain
                    .certs()
                    .iter()
                    .map(|c| CertificateDer::from(c.as_der().to_vec()))
                    .collect(),
            )
        }
    };
    if chain.is_empty() {
        return Err("the keystore holds no certificate".into());
    }
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("private key: {e}"))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match()
        .map_err(|e| format!("key and certificate: {e}"))?;
    Ok(ck)
}

fn pem_key_and_chain(
    key_pem: &[u8],
    chain_pem: &[u8],
    key_password: Option<&str>,
) -> Result<(PrivateKeyDer<'static>, Vec<CertificateDer<'static>>), String> {
    if String::from_utf8_lossy(key_pem).contains("ENCRYPTED PRIVATE KEY") {
        return Err(
            "the private key is encrypted: Strom reads unencrypted PKCS#8 keys (decrypt it with \
             `openssl pkcs8 -topk8 -nocrypt`)"
                .into(),
        );
    }
    if key_password.is_some_and(|p| !p.is_empty()) {
        tracing::warn!("ssl.key.password is set but the PEM key is not encrypted; ignoring it");
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("no private key: {e}"))?;
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate chain: {e}"))?;
    Ok((key, chain))
}

fn trusted(t: &TrustStore) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = match t {
        TrustStore::PemFile { path } => CertificateDer::pem_slice_iter(&read(path)?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{path}: {e}"))?,
        TrustStore::PemInline { certs } => CertificateDer::pem_slice_iter(certs.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("ssl.truststore.certificates: {e}"))?,
        TrustStore::Pkcs12 { path, password } => {
            let data = read(path)?;
            let store = p12_keystore::KeyStore::from_pkcs12(
                &data,
                password.as_deref().unwrap_or(""),
                p12_keystore::Pkcs12ImportPolicy::Raw,
            )
            .map_err(|e| format!("{path}: not a readable PKCS12 truststore: {e}"))?;
            store
                .entries()
                .filter_map(|(_, e)| match e {
                    p12_keystore::KeyStoreEntry::Certificate(c) => {
                        Some(CertificateDer::from(c.as_der().to_vec()))
                    }
                    _ => None,
                })
                .collect()
        }
    };
    if certs.is_empty() {
        return Err("the truststore holds no certificate".into());
    }
    Ok(certs)
}
