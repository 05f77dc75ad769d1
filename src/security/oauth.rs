//! SASL/OAUTHBEARER on the server side (RFC 7628 as Kafka speaks it, KIP-255/KIP-768): the
//! client's first message carries `auth=Bearer <JWT>`; the JWT is validated as Kafka's
//! `OAuthBearerValidatorCallbackHandler` validates it — a JWS signed (RS256/384/512,
//! PS256/384/512, ES256/384) by a key of the listener's JWKS
//! (`sasl.oauthbearer.jwks.endpoint.url`, a `file:` URL, re-read when the file changes), `exp`
//! required and not past (with `sasl.oauthbearer.clock.skew.seconds`), `nbf` not ahead, the
//! issuer and audience checked when `sasl.oauthbearer.expected.issuer` / `.audience` are set —
//! and the principal is `User:<sub>` (`sasl.oauthbearer.sub.claim.name`). An unsigned token
//! (`alg: none`) is accepted only with the unsecured validator named explicitly
//! (`listener.name.<l>.oauthbearer.sasl.server.callback.handler.class=...OAuthBearerUnsecuredValidatorCallbackHandler`),
//! never by default. A refused token is answered, as Kafka does, with the challenge
//! `{"status":"invalid_token"}`; the client acknowledges with `%x01` and the exchange fails
//! with that message.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;
use parking_lot::Mutex;
use ring::signature;

/// How a listener validates OAUTHBEARER tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validator {
    /// Signed JWTs checked against the JWKS in this file.
    Jwks(PathBuf),
    /// Signed JWTs checked against the JWKS served at this http(s) URL, fetched in the
    /// background every `refresh_ms` (and soon after a token names a key it does not hold).
    JwksUrl { url: String, refresh_ms: u64 },
    /// Kafka's unsecured validator: `alg: none` tokens, no signature (tests and development
    /// only; must be named explicitly).
    Unsecured,
}

/// A listener's OAUTHBEARER settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    pub validator: Validator,
    /// `sasl.oauthbearer.expected.audience` (empty: not checked).
    pub audience: Vec<String>,
    /// `sasl.oauthbearer.expected.issuer`.
    pub issuer: Option<String>,
    /// `sasl.oauthbearer.sub.claim.name`.
    pub sub_claim: String,
    /// `sasl.oauthbearer.clock.skew.seconds`.
    pub clock_skew_s: i64,
}

/// A validated token: the principal's name and when the token expires (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub principal: String,
    pub expires_ms: i64,
}

/// The JSON error Kafka's `OAuthBearerSaslServer` sends back for a refused token.
pub const INVALID_TOKEN: &str = r#"{"status":"invalid_token"}"#;

/// The token of a client's first OAUTHBEARER message: `n,[a=authzid],` then `%x01`-separated
/// `key=value` pairs, one of them `auth=Bearer <token>`, ended by `%x01%x01`. Returns the token
/// and the authorization id (None when empty).
pub fn parse_client_first(msg: &[u8]) -> Result<(String, Option<String>), String> {
    let text = std::str::from_utf8(msg).map_err(|_| "not UTF-8".to_string())?;
    let (gs2, rest) = text
        .split_once('\u{1}')
        .ok_or("no key-value separator after the GS2 header")?;
    let mut g = gs2.splitn(3, ',');
    let (flag, authz, tail) = (g.next(), g.next(), g.next());
    if flag != Some("n") || tail != Some("") {
        return Err(format!("invalid GS2 header `{gs2}`"));
    }
    let authz = match authz {
        Some("") => None,
        Some(a) => Some(
            a.strip_prefix("a=")
                .ok_or_else(|| format!("invalid authorization id `{a}`"))?
                .to_string(),
        ),
        None => return Err("invalid GS2 header".into()),
    };
    let body = rest
        .strip_suffix("\u{1}\u{1}")
        .or_else(|| rest.strip_suffix('\u{1}'))
        .ok_or("the message does not end with %x01%x01")?;
    let mut token = None;
    for kv in body.split('\u{1}') {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| "a key-value pair without `=`".to_string())?;
        if k == "auth" {
            let t = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .ok_or("the auth value is not `Bearer <token>`")?;
            token = Some(t.trim().to_string());
        }
    }
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or("no auth=Bearer token")?;
    Ok((token, authz))
}

fn b64(part: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| format!("bad base64url: {e}"))
}

/// Validates `jwt` at `now_ms`.
pub fn validate(jwt: &str, s: &OAuthSettings, now_ms: i64) -> Result<Token, String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, p, sig] = parts.as_slice() else {
        return Err(format!("a JWT has 3 parts, this one {}", parts.len()));
    };
    let header: serde_json::Value =
        serde_json::from_slice(&b64(h)?).map_err(|e| format!("bad JWT header: {e}"))?;
    let alg = header["alg"].as_str().unwrap_or("");
    match (&s.validator, alg) {
        (Validator::Unsecured, "none") => {}
        (Validator::Unsecured, a) => {
            return Err(format!("the unsecured validator takes alg none, not {a}"))
        }
        (Validator::Jwks(_) | Validator::JwksUrl { .. }, "none") => {
            return Err("unsigned token (alg none)".into())
        }
        (v @ (Validator::Jwks(_) | Validator::JwksUrl { .. }), a) => {
            let keys = match v {
                Validator::Jwks(path) => jwks(path)?,
                Validator::JwksUrl { url, .. } => remote_jwks(url)?,
                Validator::Unsecured => unreachable!("matched above"),
            };
            let kid = header["kid"].as_str();
            let signed = format!("{h}.{p}");
            let sig = b64(sig)?;
            let verified = keys
                .iter()
                .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
                .any(|k| k.verify(a, signed.as_bytes(), &sig));
            if !verified {
                if let Validator::JwksUrl { url, .. } = v {
                    // Perhaps a rotated key: fetch the set again soon.
                    request_refresh(url);
                }
                return Err(format!(
                    "no key of the JWKS (kid {}) verifies the {a} signature",
                    kid.unwrap_or("-")
                ));
            }
        }
    }
    let claims: serde_json::Value =
        serde_json::from_slice(&b64(p)?).map_err(|e| format!("bad JWT claims: {e}"))?;
    let skew_ms = s.clock_skew_s.saturating_mul(1000);
    let exp = claims["exp"]
        .as_f64()
        .ok_or("the token has no exp (expiration) claim")?;
    let expires_ms = (exp * 1000.0) as i64;
    if expires_ms + skew_ms <= now_ms {
        return Err("the token has expired".into());
    }
    if let Some(nbf) = claims["nbf"].as_f64() {
        if (nbf * 1000.0) as i64 - skew_ms > now_ms {
            return Err("the token is not valid yet (nbf)".into());
        }
    }
    if let Some(want) = &s.issuer {
        if claims["iss"].as_str() != Some(want.as_str()) {
            return Err(format!(
                "issuer {} is not the expected {want}",
                claims["iss"]
            ));
        }
    }
    if !s.audience.is_empty() {
        let aud: Vec<&str> = match &claims["aud"] {
            serde_json::Value::String(a) => vec![a.as_str()],
            serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
            _ => Vec::new(),
        };
        if !aud.iter().any(|a| s.audience.iter().any(|w| w == a)) {
            return Err(format!(
                "audience {aud:?} is not among the expected {:?}",
                s.audience
            ));
        }
    }
    let principal = claims[s.sub_claim.as_str()]
        .as_str()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("the token has no {} claim", s.sub_claim))?
        .to_string();
    Ok(Token {
        principal,
        expires_ms,
    })
}

/// One public key of a JWKS.
#[derive(Debug, Clone)]
struct Jwk {
    kid: Option<String>,
    key: PublicKey,
}

#[derive(Debug, Clone)]
enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed point 0x04 || x || y, and the curve's name (P-256, P-384).
    Ec {
        curve: String,
        point: Vec<u8>,
    },
}

impl Jwk {
    fn verify(&self, alg: &str, msg: &[u8], sig: &[u8]) -> bool {
        match (&self.key, alg) {
            (PublicKey::Rsa { n, e }, _) => {
                let params: &signature::RsaParameters = match alg {
                    "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                    "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                    "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                    "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                    "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                    "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                signature::RsaPublicKeyComponents { n, e }
                    .verify(params, msg, sig)
                    .is_ok()
            }
            (PublicKey::Ec { curve, point }, _) => {
                let alg: &dyn signature::VerificationAlgorithm = match (alg, curve.as_str()) {
                    ("ES256", "P-256") => &signature::ECDSA_P256_SHA256_FIXED,
                    ("ES384", "P-384") => &signature::ECDSA_P384_SHA384_FIXED,
                    _ => return false,
                };
                signature::UnparsedPublicKey::new(alg, point)
                    .verify(msg, sig)
                    .is_ok()
            }
        }
    }
}

/// The keys of a JWKS document (keys of other types or uses are skipped).
fn parse_jwks(text: &str) -> Result<Vec<Jwk>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let keys = doc["keys"].as_array().ok_or("no \"keys\" array")?;
    let mut out = Vec::new();
    for k in keys {
        if k["use"].as_str().is_some_and(|u| u != "sig") {
            continue;
        }
        let field = |name: &str| -> Result<Vec<u8>, String> {
            b64(k[name]
                .as_str()
                .ok_or_else(|| format!("a key without {name}"))?)
        };
        let key = match k["kty"].as_str() {
            Some("RSA") => PublicKey::Rsa {
                n: field("n")?,
                e: field("e")?,
            },
            Some("EC") => {
                let curve = k["crv"].as_str().unwrap_or("").to_string();
                let mut point = vec![4u8];
                point.extend(field("x")?);
                point.extend(field("y")?);
                PublicKey::Ec { curve, point }
            }
            _ => continue,
        };
        out.push(Jwk {
            kid: k["kid"].as_str().map(str::to_string),
            key,
        });
    }
    if out.is_empty() {
        return Err("no RSA or EC signing key".into());
    }
    Ok(out)
}

type JwksCache = HashMap<PathBuf, (Option<SystemTime>, Arc<Vec<Jwk>>)>;

/// The keys of the JWKS file at `path`, re-read when its modification time changes.
fn jwks(path: &Path) -> Result<Arc<Vec<Jwk>>, String> {
    static CACHE: Mutex<Option<JwksCache>> = Mutex::new(None);
    let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut cache = CACHE.lock();
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some((t, keys)) = cache.get(path) {
        if *t == mtime && mtime.is_some() {
            return Ok(keys.clone());
        }
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("JWKS {}: {e}", path.display()))?;
    let keys = Arc::new(parse_jwks(&text).map_err(|e| format!("JWKS {}: {e}", path.display()))?);
    cache.insert(path.to_path_buf(), (mtime, keys.clone()));
    Ok(keys)
}

/// A JWKS served over http(s): the keys last fetched, or why there are none.
#[derive(Default)]
struct Remote {
    keys: Option<Arc<Vec<Jwk>>>,
    error: Option<String>,
    /// A token named a key the set does not hold: fetch again (at most every 10 s).
    wanted: bool,
}

static REMOTE: Mutex<Option<HashMap<String, Remote>>> = Mutex::new(None);

fn remote_jwks(url: &str) -> Result<Arc<Vec<Jwk>>, String> {
    let remote = REMOTE.lock();
    match remote.as_ref().and_then(|m| m.get(url)) {
        Some(Remote { keys: Some(k), .. }) => Ok(k.clone()),
        Some(Remote { error, .. }) => Err(format!(
            "the JWKS at {url} is not fetched yet{}",
            error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
        )),
        None => Err(format!("the JWKS at {url} is not being fetched")),
    }
}

fn request_refresh(url: &str) {
    if let Some(r) = REMOTE.lock().as_mut().and_then(|m| m.get_mut(url)) {
        r.wanted = true;
    }
}

fn fetch(url: &str) -> Result<Vec<Jwk>, String> {
    let body = ureq::get(url)
        .timeout(std::time::Duration::from_secs(10))
        .call()
        .map_err(|e| e.to_string())?
        .into_string()
        .map_err(|e| e.to_string())?;
    parse_jwks(&body)
}

/// Starts fetching the JWKS at `url` (once per URL, on a thread of its own): now, then every
/// `refresh_ms`, sooner (10 s apart at most) when a token names a key the set lacks, and every
/// 10 s while fetching fails. Waits up to 10 s for the first fetch; an unreachable endpoint
/// is reported and fetched again later (tokens are refused meanwhile).
pub fn start_jwks_refresh(url: &str, refresh_ms: u64) {
    {
        let mut remote = REMOTE.lock();
        let map = remote.get_or_insert_with(HashMap::new);
        if map.contains_key(url) {
            return;
        }
        map.insert(url.to_string(), Remote::default());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = url.to_string();
    let spawned = std::thread::Builder::new()
        .name("strom-jwks".into())
        .spawn(move || {
            let url = owned;
            let mut first = Some(tx);
            loop {
                let result = fetch(&url);
                let ok = result.is_ok();
                {
                    let mut remote = REMOTE.lock();
                    if let Some(r) = remote.as_mut().and_then(|m| m.get_mut(&url)) {
                        match result {
                            Ok(keys) => {
                                r.keys = Some(Arc::new(keys));
                                r.error = None;
                            }
                            Err(e) => {
                                tracing::warn!(%url, error = %e, "JWKS fetch failed");
                                r.error = Some(e);
                            }
                        }
                        r.wanted = false;
                    }
                }
                if let Some(tx) = first.take() {
                    let _ = tx.send(ok);
                }
                let wait = if ok { refresh_ms.max(10_000) } else { 10_000 };
                let started = std::time::Instant::now();
                // Wake every second for an early refresh, at least 10 s after the last fetch.
                while started.elapsed() < std::time::Duration::from_millis(wait) {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    let wanted = REMOTE
                        .lock()
                        .as_ref()
                        .and_then(|m| m.get(&url))
                        .is_some_and(|r| r.wanted);
                    if wanted && started.elapsed() >= std::time::Duration::from_secs(10) {
                        break;
                    }
                }
            }
        });
    if spawned.is_ok()
        && !matches!(
            rx.recv_timeout(std::time::Duration::from_secs(10)),
            Ok(true)
        )
    {
        tracing::warn!(%url, "the JWKS is not fetched yet: OAUTHBEARER tokens are refused until it is");
    }
}

/// Checks that a JWKS file can be read and holds a key (at start-up).
pub fn check_jwks(path: &Path) -> Result<(), String> {
    jwks(path).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    fn enc(b: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    struct Issuer {
        key: EcdsaKeyPair,
        kid: String,
    }

    impl Issuer {
        fn new(kid: &str) -> Self {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
            let key =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .expect("key");
            Issuer {
                key,
                kid: kid.into(),
            }
        }

        fn jwk(&self) -> serde_json::Value {
            let p = self.key.public_key().as_ref();
            serde_json::json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig",
                "x": enc(&p[1..33]), "y": enc(&p[33..65])})
        }

        fn token(&self, claims: serde_json::Value) -> String {
            let h = enc(
                serde_json::json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"})
                    .to_string()
                    .as_bytes(),
            );
            let c = enc(claims.to_string().as_bytes());
            let signed = format!("{h}.{c}");
            let sig = self
                .key
                .sign(&SystemRandom::new(), signed.as_bytes())
                .expect("sign");
            format!("{signed}.{}", enc(sig.as_ref()))
        }
    }

    #[test]
    fn tokens_are_validated_as_kafka_validates_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let issuer = Issuer::new("k1");
        let other = Issuer::new("k2");
        let path = dir.path().join("jwks.json");
        std::fs::write(
            &path,
            serde_json::json!({"keys": [issuer.jwk()]}).to_string(),
        )
        .expect("jwks");
        let s = OAuthSettings {
            validator: Validator::Jwks(path.clone()),
            audience: vec!["strom".into()],
            issuer: Some("https://issuer".into()),
            sub_claim: "sub".into(),
            clock_skew_s: 30,
        };
        let now = 1_800_000_000_000i64;
        let claims = |exp: i64, aud: &str, iss: &str| serde_json::json!({"sub": "alice", "exp": exp, "iat": now / 1000, "aud": aud, "iss": iss});
        let good = issuer.token(claims(now / 1000 + 3600, "strom", "https://issuer"));
        assert_eq!(
            validate(&good, &s, now),
            Ok(Token {
                principal: "alice".into(),
                expires_ms: now + 3_600_000
            })
        );
        let refused = |t: &str| validate(t, &s, now).expect_err("refused");
        assert!(
            refused(&issuer.token(claims(now / 1000 - 60, "strom", "https://issuer")))
                .contains("expired")
        );
        // Within the clock skew: still good.
        assert!(validate(
            &issuer.token(claims(now / 1000 - 10, "strom", "https://issuer")),
            &s,
            now
        )
        .is_ok());
        assert!(
            refused(&issuer.token(claims(now / 1000 + 60, "other", "https://issuer")))
                .contains("audience")
        );
        assert!(
            refused(&issuer.token(claims(now / 1000 + 60, "strom", "https://evil")))
                .contains("issuer")
        );
        assert!(
            refused(&other.token(claims(now / 1000 + 60, "strom", "https://issuer")))
                .contains("signature")
        );
        let no_exp = issuer
            .token(serde_json::json!({"sub": "alice", "aud": "strom", "iss": "https://issuer"}));
        assert!(refused(&no_exp).contains("exp"));
        let no_sub = issuer.token(
            serde_json::json!({"exp": now / 1000 + 60, "aud": "strom", "iss": "https://issuer"}),
        );
        assert!(refused(&no_sub).contains("sub"));
        // A tampered payload.
        let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
        parts[1] = enc(claims(now / 1000 + 3600, "strom", "https://issuer")
            .to_string()
            .replace("alice", "admin")
            .as_bytes());
        assert!(refused(&parts.join(".")).contains("signature"));
        // Unsigned tokens: only the unsecured validator, named explicitly, takes them.
        let none = format!(
            "{}.{}.",
            enc(br#"{"alg":"none"}"#),
            enc(claims(now / 1000 + 60, "strom", "https://issuer")
                .to_string()
                .as_bytes())
        );
        assert!(refused(&none).contains("unsigned"));
        let unsecured = OAuthSettings {
            validator: Validator::Unsecured,
            ..s.clone()
        };
        assert_eq!(
            validate(&none, &unsecured, now).map(|t| t.principal),
            Ok("alice".into())
        );
        assert!(validate(&good, &unsecured, now).is_err());
        // A rotated key set is picked up when the file changes.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(
            &path,
            serde_json::json!({"keys": [issuer.jwk(), other.jwk()]}).to_string(),
        )
        .expect("jwks");
        let f = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        f.set_modified(SystemTime::now() + std::time::Duration::from_secs(5))
            .expect("mtime");
        assert!(validate(
            &other.token(claims(now / 1000 + 60, "strom", "https://issuer")),
            &s,
            now
        )
        .is_ok());
        for bad in ["", "a.b", "a.b.c.d", "!!.??.--"] {
            assert!(validate(bad, &s, now).is_err(), "{bad}");
        }
    }

    /// A JWKS served over HTTP: fetched at start, used for validation, and fetched again
    /// when a token names a key it lacks (a rotation).
    #[test]
    fn a_jwks_url_is_fetched_and_refetched_for_an_unknown_key() {
        use std::io::{Read, Write};
        let first = Issuer::new("a");
        let second = Issuer::new("b");
        let served = Arc::new(Mutex::new(
            serde_json::json!({"keys": [first.jwk()]}).to_string(),
        ));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let body = served.clone();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { continue };
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf);
                let b = body.lock().clone();
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
                    b.len()
                );
            }
        });
        let url = format!("http://127.0.0.1:{port}/jwks.json");
        start_jwks_refresh(&url, 3_600_000);
        let s = OAuthSettings {
            validator: Validator::JwksUrl {
                url: url.clone(),
                refresh_ms: 3_600_000,
            },
            audience: vec![],
            issuer: None,
            sub_claim: "sub".into(),
            clock_skew_s: 30,
        };
        let now = 1_800_000_000_000i64;
        let claims = serde_json::json!({"sub": "alice", "exp": now / 1000 + 60});
        assert!(validate(&first.token(claims.clone()), &s, now).is_ok());
        // The issuer rotates to key b: the first token naming it is refused and asks for a
        // fetch; within ~10 s the new set is in.
        *served.lock() = serde_json::json!({"keys": [first.jwk(), second.jwk()]}).to_string();
        assert!(validate(&second.token(claims.clone()), &s, now).is_err());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while validate(&second.token(claims.clone()), &s, now).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the rotated set was fetched"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    #[test]
    fn client_first_messages_are_parsed_as_rfc_7628() {
        let t = |s: &str| parse_client_first(s.as_bytes());
        assert_eq!(
            t("n,,\u{1}auth=Bearer abc.def.ghi\u{1}\u{1}"),
            Ok(("abc.def.ghi".into(), None))
        );
        assert_eq!(
            t("n,a=alice,\u{1}host=h\u{1}auth=Bearer x.y.z\u{1}traceId=1\u{1}\u{1}"),
            Ok(("x.y.z".into(), Some("alice".into())))
        );
        for bad in [
            "",
            "n,,",
            "y,,\u{1}auth=Bearer t\u{1}\u{1}",
            "n,,\u{1}auth=Basic t\u{1}\u{1}",
            "n,,\u{1}host=h\u{1}\u{1}",
            "n,,\u{1}auth=Bearer \u{1}\u{1}",
            "n,b=x,\u{1}auth=Bearer t\u{1}\u{1}",
            "n,,\u{1}noequals\u{1}\u{1}",
        ] {
            assert!(t(bad).is_err(), "{bad:?}");
        }
        assert!(parse_client_first(b"\xff\xfe").is_err());
    }
}
