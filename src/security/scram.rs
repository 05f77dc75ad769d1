//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802 / RFC 7677) as Kafka serves them
//! (`ScramSaslServer`, `ScramMessages`, `ScramFormatter`): only the `n` GS2 header (no channel
//! binding), extensions ignored, an authorization id must equal the user name.
//!
//! A credential is what Kafka's `UserScramCredentialRecord` holds — salt, StoredKey,
//! ServerKey, iterations — derived from the salted password the admin client sends
//! (AlterUserScramCredentials); the password itself is never stored.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};

/// A SCRAM mechanism, numbered as Kafka's `ScramMechanism` type (1 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    Sha256,
    Sha512,
}

impl Mechanism {
    pub fn from_name(n: &str) -> Option<Self> {
        match n {
            "SCRAM-SHA-256" => Some(Mechanism::Sha256),
            "SCRAM-SHA-512" => Some(Mechanism::Sha512),
            _ => None,
        }
    }

    pub fn from_type(t: i8) -> Option<Self> {
        match t {
            1 => Some(Mechanism::Sha256),
            2 => Some(Mechanism::Sha512),
            _ => None,
        }
    }

    pub fn type_id(self) -> i8 {
        match self {
            Mechanism::Sha256 => 1,
            Mechanism::Sha512 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// Kafka's bounds on the iteration count (`ScramMechanism.minIterations`, and the 16384
    /// AlterUserScramCredentials accepts at most).
    pub const MIN_ITERATIONS: i32 = 4096;
    pub const MAX_ITERATIONS: i32 = 16384;

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Mechanism::Sha256 => hmac::HMAC_SHA256,
            Mechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Mechanism::Sha256 => &digest::SHA256,
            Mechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            Mechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Mechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn len(self) -> usize {
        self.digest().output_len()
    }
}

/// What the server keeps of a SCRAM password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

fn mac(m: Mechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(m.hmac(), key), data)
        .as_ref()
        .to_vec()
}

/// Hi(password, salt, i) of RFC 5802: PBKDF2 with the mechanism's HMAC.
pub fn salted_password(m: Mechanism, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = vec![0u8; m.len()];
    let n = std::num::NonZeroU32::new(iterations.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
    pbkdf2::derive(m.pbkdf2(), n, salt, password, &mut out);
    out
}

/// The stored credential for a salted password (as AlterUserScramCredentials sends it).
pub fn credential(m: Mechanism, salted: &[u8], salt: &[u8], iterations: i32) -> Credential {
    let client_key = mac(m, salted, b"Client Key");
    Credential {
        salt: salt.to_vec(),
        stored_key: digest::digest(m.digest(), &client_key).as_ref().to_vec(),
        server_key: mac(m, salted, b"Server Key"),
        iterations,
    }
}

/// Why an exchange failed, as Kafka tells the client: `Failed` (Kafka's `SaslException`) is
/// answered with a generic message that does not say whether the user exists; `Denied`
/// (`SaslAuthenticationException`) with its own message; `Illegal` is a message out of
/// sequence (the connection closes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Failed(String),
    Denied(String),
    Illegal(String),
    /// Refused for `reason` (audited), the client told `shown` (OAUTHBEARER's
    /// `{"status":"invalid_token"}`).
    Refused {
        reason: String,
        shown: String,
    },
}

enum State {
    First,
    Final {
        user: String,
        cred: Credential,
        gs2: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Done,
}

/// One SCRAM exchange on the server side.
pub struct Server {
    mechanism: Mechanism,
    state: State,
}

/// The result of a step: a challenge to send, or success with the final message.
pub enum Step {
    Challenge(Vec<u8>),
    Done { response: Vec<u8>, user: String },
}

impl Server {
    pub fn new(mechanism: Mechanism) -> Self {
        Server {
            mechanism,
            state: State::First,
        }
    }

    /// Feeds the client's next message. `lookup` gives the stored credential of a user.
    pub fn step(
        &mut self,
        msg: &[u8],
        lookup: &dyn Fn(&str, Mechanism) -> Option<Credential>,
    ) -> Result<Step, Failure> {
        let text = std::str::from_utf8(msg)
            .map_err(|_| Failure::Failed("Invalid SCRAM message: not UTF-8".into()))?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::First => {
                let first = parse_client_first(text)?;
                let user = first.user;
                let cred = lookup(&user, self.mechanism).ok_or_else(|| {
                    Failure::Failed("Authentication failed: Invalid user credentials".into())
                })?;
                if !first.authzid.is_empty() && first.authzid != user {
                    return Err(Failure::Denied(
                        "Authentication failed: Client requested an authorization id that is \
                         different from username"
                            .into(),
                    ));
                }
                if cred.iterations < Mechanism::MIN_ITERATIONS {
                    return Err(Failure::Failed(format!(
                        "Iterations {} is less than the minimum {} for {}",
                        cred.iterations,
                        Mechanism::MIN_ITERATIONS,
                        self.mechanism.name()
                    )));
                }
                let nonce = format!("{}{}", first.nonce, server_nonce());
                let server_first = format!(
                    "r={nonce},s={},i={}",
                    B64.encode(&cred.salt),
                    cred.iterations
                );
                self.state = State::Final {
                    user,
                    cred,
                    gs2: first.gs2,
                    client_first_bare: first.bare,
                    server_first: server_first.clone(),
                    nonce,
                };
                Ok(Step::Challenge(server_first.into_bytes()))
            }
            State::Final {
                user,
                cred,
                gs2,
                client_first_bare,
                server_first,
                nonce,
            } => {
                let (without_proof, proof_b64) = text.rsplit_once(",p=").ok_or_else(|| {
                    Failure::Failed("Invalid SCRAM client final message format".into())
                })?;
                let mut channel = None;
                let mut got_nonce = None;
                for (i, attr) in without_proof.split(',').enumerate() {
                    match (i, attr.split_once('=')) {
                        (0, Some(("c", v))) => channel = Some(v),
                        (1, Some(("r", v))) => got_nonce = Some(v),
                        (0 | 1, _) => {
                            return Err(Failure::Failed(
                                "Invalid SCRAM client final message format".into(),
                            ))
                        }
                        _ => {} // extensions
                    }
                }
                if got_nonce != Some(nonce.as_str()) {
                    return Err(Failure::Failed(
                        "Invalid client nonce in the final client message.".into(),
                    ));
                }
                if channel.and_then(|c| B64.decode(c).ok()).as_deref() != Some(gs2.as_bytes()) {
                    return Err(Failure::Failed(
                        "Invalid channel binding in the final client message".into(),
                    ));
                }
                let proof = B64
                    .decode(proof_b64)
                    .ok()
                    .filter(|p| p.len() == self.mechanism.len())
                    .ok_or_else(|| Failure::Failed("Invalid client credentials".into()))?;
                let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
                let signature = mac(self.mechanism, &cred.stored_key, auth_message.as_bytes());
                let client_key: Vec<u8> =
                    proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
                let computed = digest::digest(self.mechanism.digest(), &client_key);
                if !super::constant_time_eq(computed.as_ref(), &cred.stored_key) {
                    return Err(Failure::Failed("Invalid client credentials".into()));
                }
                let server_signature =
                    mac(self.mechanism, &cred.server_key, auth_message.as_bytes());
                Ok(Step::Done {
                    response: format!("v={}", B64.encode(server_signature)).into_bytes(),
                    user,
                })
            }
            State::Done => Err(Failure::Illegal(
                "Unexpected challenge in Sasl server state COMPLETE".into(),
            )),
        }
    }
}

struct ClientFirst {
    gs2: String,
    authzid: String,
    user: String,
    nonce: String,
    bare: String,
}

/// `n,[a=authzid],[m=...,]n=user,r=nonce[,ext=value...]`.
fn parse_client_first(text: &str) -> Result<ClientFirst, Failure> {
    let bad = || Failure::Failed(format!("Invalid SCRAM client first message format: {text}"));
    let rest = text.strip_prefix("n,").ok_or_else(bad)?;
    let (authz, bare) = rest.split_once(',').ok_or_else(bad)?;
    let authzid = match authz {
        "" => String::new(),
        a => sasl_name(a.strip_prefix("a=").ok_or_else(bad)?).ok_or_else(bad)?,
    };
    let gs2 = format!("n,{authz},");
    let mut attrs = bare.split(',');
    let mut first = attrs.next().ok_or_else(bad)?;
    if first.starts_with("m=") {
        first = attrs.next().ok_or_else(bad)?;
    }
    let user = sasl_name(first.strip_prefix("n=").ok_or_else(bad)?).ok_or_else(bad)?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        .ok_or_else(bad)?
        .to_string();
    for ext in attrs {
        // ALPHA "=" value, ignored (Kafka's tokenauth is for delegation tokens, not served).
        let (k, _) = ext.split_once('=').ok_or_else(bad)?;
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(bad());
        }
        if k == "tokenauth" {
            return Err(Failure::Failed(
                "Authentication failed: delegation tokens are not served".into(),
            ));
        }
    }
    Ok(ClientFirst {
        gs2,
        authzid,
        user,
        nonce,
        bare: bare.to_string(),
    })
}

/// A saslname with `=2C` and `=3D` decoded; None for any other `=` escape or an empty name.
fn sasl_name(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    (!out.is_empty()).then_some(out)
}

fn server_nonce() -> String {
    let mut b = [0u8; 24];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Random salt for a credential made by Strom itself (bootstrap users).
pub fn random_salt() -> Vec<u8> {
    let mut b = vec![0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system random source works");
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example, end to end through the server.
    #[test]
    fn rfc7677_exchange_verifies() {
        let m = Mechanism::Sha256;
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let salted = salted_password(m, b"pencil", &salt, 4096);
        let cred = credential(m, &salted, &salt, 4096);
        let client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let final_wo = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        // The client proof RFC 7677 lists for these messages.
        let auth = format!("{client_first_bare},{server_first},{final_wo}");
        let sig = mac(m, &cred.stored_key, auth.as_bytes());
        let client_key = mac(m, &salted, b"Client Key");
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        assert_eq!(
            B64.encode(&proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let server_sig = mac(m, &cred.server_key, auth.as_bytes());
        assert_eq!(
            B64.encode(server_sig),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    fn client_exchange(
        m: Mechanism,
        user: &str,
        password: &str,
        stored: &Credential,
    ) -> Result<String, Failure> {
        let lookup = |u: &str, mm: Mechanism| (u == "alice" && mm == m).then(|| stored.clone());
        let mut server = Server::new(m);
        let cnonce = "fyko+d2lbbFgONRv9qkxdawL";
        let first_bare = format!("n={user},r={cnonce}");
        let Step::Challenge(sf) = server.step(format!("n,,{first_bare}").as_bytes(), &lookup)?
        else {
            panic!("a challenge first")
        };
        let sf = String::from_utf8(sf).expect("utf8");
        let mut parts = sf.split(',');
        let nonce = parts
            .next()
            .and_then(|p| p.strip_prefix("r="))
            .expect("nonce");
        let salt = B64
            .decode(
                parts
                    .next()
                    .and_then(|p| p.strip_prefix("s="))
                    .expect("salt"),
            )
            .expect("b64");
        let iters: u32 = parts
            .next()
            .and_then(|p| p.strip_prefix("i="))
            .expect("i")
            .parse()
            .expect("n");
        assert!(nonce.starts_with(cnonce));
        let salted = salted_password(m, password.as_bytes(), &salt, iters);
        let wo = format!("c=biws,r={nonce}");
        let auth = format!("{first_bare},{sf},{wo}");
        let stored_key = digest::digest(m.digest(), &mac(m, &salted, b"Client Key"));
        let sig = mac(m, stored_key.as_ref(), auth.as_bytes());
        let proof: Vec<u8> = mac(m, &salted, b"Client Key")
            .iter()
            .zip(&sig)
            .map(|(a, b)| a ^ b)
            .collect();
        match server.step(format!("{wo},p={}", B64.encode(proof)).as_bytes(), &lookup)? {
            Step::Done { response, user } => {
                let expect = mac(m, &mac(m, &salted, b"Server Key"), auth.as_bytes());
                assert_eq!(
                    String::from_utf8(response).expect("utf8"),
                    format!("v={}", B64.encode(expect))
                );
                Ok(user)
            }
            Step::Challenge(_) => panic!("done after the final message"),
        }
    }

    #[test]
    fn both_mechanisms_accept_the_password_and_refuse_others() {
        for m in [Mechanism::Sha256, Mechanism::Sha512] {
            let salt = random_salt();
            let cred = credential(m, &salted_password(m, b"secret", &salt, 4096), &salt, 4096);
            assert_eq!(
                client_exchange(m, "alice", "secret", &cred),
                Ok("alice".into())
            );
            assert!(matches!(
                client_exchange(m, "alice", "wrong", &cred),
                Err(Failure::Failed(_))
            ));
            assert!(matches!(
                client_exchange(m, "bob", "secret", &cred),
                Err(Failure::Failed(_))
            ));
        }
    }

    #[test]
    fn client_first_messages_parse_as_kafka_reads_them() {
        let f = parse_client_first("n,,n=a=2Cb=3Dc,r=abc,ext=1").expect("parses");
        assert_eq!((f.user.as_str(), f.nonce.as_str()), ("a,b=c", "abc"));
        assert_eq!(f.gs2, "n,,");
        let f = parse_client_first("n,a=alice,n=alice,r=x").expect("authzid");
        assert_eq!(
            (f.authzid.as_str(), f.gs2.as_str()),
            ("alice", "n,a=alice,")
        );
        for bad in [
            "y,,n=a,r=b",
            "p=tls-unique,,n=a,r=b",
            "n,,r=b",
            "n,,n=,r=b",
            "n,,n=a=2Xb,r=x",
            "n,,n=a,r=",
            "",
            "n,,n=a,r=x,1=2",
        ] {
            assert!(parse_client_first(bad).is_err(), "{bad}");
        }
    }
}
