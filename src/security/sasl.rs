//! SASL exchanges on the server side: PLAIN (Kafka's `PlainSaslServer`, users from the
//! listener's JAAS line), SCRAM ([`super::scram`], credentials from the metadata log) and
//! OAUTHBEARER ([`super::oauth`], JWTs checked against the listener's JWKS).
//! The connection ([`crate::server`]) drives them from SaslHandshake and SaslAuthenticate.

use super::scram::{self, Credential, Failure, Mechanism};
use crate::config::security::SaslSettings;

/// Where SCRAM credentials come from (the broker's metadata).
pub trait Credentials: Send + Sync {
    fn scram(&self, user: &str, mechanism: Mechanism) -> Option<Credential>;
}

/// One exchange in progress.
pub enum Exchange {
    Plain {
        done: bool,
    },
    Scram(Box<scram::Server>),
    /// `refused`: the token was refused for this reason and the error challenge sent; the
    /// client's `%x01` ends the exchange.
    OAuth {
        refused: Option<String>,
        done: bool,
    },
}

/// A step's outcome: a challenge, or the authenticated user with the last server message.
pub enum Step {
    Challenge(Vec<u8>),
    Done {
        response: Vec<u8>,
        user: String,
        /// When the credential expires (ms since the epoch): an OAUTHBEARER token's `exp`.
        expires_ms: Option<i64>,
    },
}

impl Exchange {
    /// The exchange for an enabled mechanism the client chose (None: not one Strom serves).
    pub fn start(mechanism: &str) -> Option<Exchange> {
        match mechanism {
            "PLAIN" => Some(Exchange::Plain { done: false }),
            "OAUTHBEARER" => Some(Exchange::OAuth {
                refused: None,
                done: false,
            }),
            m => Mechanism::from_name(m).map(|m| Exchange::Scram(Box::new(scram::Server::new(m)))),
        }
    }

    pub fn step(
        &mut self,
        token: &[u8],
        settings: &SaslSettings,
        creds: &dyn Credentials,
    ) -> Result<Step, Failure> {
        match self {
            Exchange::Plain { done } => {
                if *done {
                    return Err(Failure::Illegal(
                        "Unexpected challenge in Sasl server state COMPLETE".into(),
                    ));
                }
                *done = true;
                let user = plain(token, settings)?;
                Ok(Step::Done {
                    response: Vec::new(),
                    user,
                    expires_ms: None,
                })
            }
            Exchange::Scram(s) => match s.step(token, &|u, m| creds.scram(u, m))? {
                scram::Step::Challenge(c) => Ok(Step::Challenge(c)),
                scram::Step::Done { response, user } => Ok(Step::Done {
                    response,
                    user,
                    expires_ms: None,
                }),
            },
            Exchange::OAuth { refused, done } => {
                if let Some(reason) = refused.take() {
                    // Kafka's OAuthBearerSaslServer: the client acknowledges the error with
                    // %x01 and the exchange fails with the error as its message.
                    // Anything else: Kafka's SaslException, answered with the generic
                    // message (sarama sends an empty response here).
                    return Err(if token == [1u8] {
                        Failure::Refused {
                            reason,
                            shown: super::oauth::INVALID_TOKEN.into(),
                        }
                    } else {
                        Failure::Failed(format!("{reason} (and no %x01 after the error)"))
                    });
                }
                if *done {
                    return Err(Failure::Illegal(
                        "Unexpected challenge in Sasl server state COMPLETE".into(),
                    ));
                }
                *done = true;
                let Some(oauth) = settings.oauth.as_ref() else {
                    return Err(Failure::Illegal("OAUTHBEARER is not configured".into()));
                };
                let (jwt, authz) = super::oauth::parse_client_first(token).map_err(|e| {
                    Failure::Denied(format!("Invalid OAUTHBEARER client first message: {e}"))
                })?;
                match super::oauth::validate(&jwt, oauth, crate::log::now_ms()) {
                    Ok(t) if authz.as_ref().is_some_and(|a| *a != t.principal) => {
                        Err(Failure::Denied(
                            "Authentication failed: Client requested an authorization id that \
                             is different from the token's principal name"
                                .into(),
                        ))
                    }
                    Ok(t) => Ok(Step::Done {
                        response: Vec::new(),
                        user: t.principal,
                        expires_ms: Some(t.expires_ms),
                    }),
                    Err(why) => {
                        *refused = Some(format!("invalid token: {why}"));
                        Ok(Step::Challenge(
                            super::oauth::INVALID_TOKEN.as_bytes().to_vec(),
                        ))
                    }
                }
            }
        }
    }
}

/// `[authzid] NUL authcid NUL passwd` (RFC 4616), checked as Kafka's PlainSaslServer does
/// (every failure's message is the client's to see, as there).
fn plain(token: &[u8], settings: &SaslSettings) -> Result<String, Failure> {
    let text = std::str::from_utf8(token)
        .map_err(|_| Failure::Denied("Invalid SASL/PLAIN response: not UTF-8".into()))?;
    let parts: Vec<&str> = text.split('\u{0}').collect();
    let [authzid, user, password] = parts.as_slice() else {
        return Err(Failure::Denied(format!(
            "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
            parts.len()
        )));
    };
    if user.is_empty() {
        return Err(Failure::Denied(
            "Authentication failed: username not specified".into(),
        ));
    }
    if password.is_empty() {
        return Err(Failure::Denied(
            "Authentication failed: password not specified".into(),
        ));
    }
    let known = settings.plain_users.get(*user);
    let ok = known.is_some_and(|pw| super::constant_time_eq(pw.as_bytes(), password.as_bytes()));
    if !ok {
        return Err(Failure::Denied(
            "Authentication failed: Invalid username or password".into(),
        ));
    }
    if !authzid.is_empty() && authzid != user {
        return Err(Failure::Denied(
            "Authentication failed: Client requested an authorization id that is different \
             from username"
                .into(),
        ));
    }
    Ok(user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoCreds;
    impl Credentials for NoCreds {
        fn scram(&self, _: &str, _: Mechanism) -> Option<Credential> {
            None
        }
    }

    #[test]
    fn plain_checks_the_jaas_users() {
        let s = SaslSettings {
            mechanisms: vec!["PLAIN".into()],
            plain_users: [("alice".to_string(), "pw".to_string())].into(),
            reauth_ms: 0,
            max_receive_size: 1024,
            oauth: None,
        };
        let run = |t: &[u8]| {
            Exchange::start("PLAIN")
                .expect("served")
                .step(t, &s, &NoCreds)
        };
        assert!(matches!(run(b"\0alice\0pw"), Ok(Step::Done { user, .. }) if user == "alice"));
        assert!(matches!(run(b"alice\0alice\0pw"), Ok(Step::Done { .. })));
        for bad in [
            &b"\0alice\0nope"[..],
            b"\0bob\0pw",
            b"bob\0alice\0pw",
            b"\0alice",
            b"\0\0pw",
            b"\0alice\0",
            b"\0alice\0pw\0x",
            b"\xff\0alice\0pw",
        ] {
            assert!(matches!(run(bad), Err(Failure::Denied(_))), "{bad:?}");
        }
        let mut e = Exchange::start("PLAIN").expect("served");
        assert!(e.step(b"\0alice\0pw", &s, &NoCreds).is_ok());
        assert!(matches!(
            e.step(b"\0alice\0pw", &s, &NoCreds),
            Err(Failure::Illegal(_))
        ));
        assert!(Exchange::start("GSSAPI").is_none());
    }
}
