//! Arbitrary SASL tokens through the server side of PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER
//! (unsecured validator: no key needed, so the JWT parsing and claim checks are reached), as a client
//! on a SASL listener sends them in SaslAuthenticate requests before it is authenticated
//! (`server::authenticate` drives `security::sasl::Exchange` the same way).
//!
//! Input layout: byte 0 picks the mechanism (mod 4: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512,
//! OAUTHBEARER); the
//! rest is split at 0xFF bytes into the successive tokens of one exchange (at most 4). The
//! credential source knows user `user` for both SCRAM mechanisms, so mutations of a valid
//! client-first message reach the final-message parsing and proof check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strom::config::security::SaslSettings;
use strom::security::sasl::{Credentials, Exchange};
use strom::security::scram::{self, Credential, Mechanism};

struct One;

impl Credentials for One {
    fn scram(&self, user: &str, m: Mechanism) -> Option<Credential> {
        (user == "user").then(|| {
            let salt = b"salt-salt-salt".to_vec();
            let salted = scram::salted_password(m, b"pencil", &salt, 4096);
            scram::credential(m, &salted, &salt, 4096)
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mechanism = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"][usize::from(mode % 4)];
    let settings = SaslSettings {
        mechanisms: vec![mechanism.to_string()],
        plain_users: [("user".to_string(), "pencil".to_string())].into(),
        reauth_ms: 0,
        max_receive_size: 524_288,
        oauth: Some(strom::security::oauth::OAuthSettings {
            validator: strom::security::oauth::Validator::Unsecured,
            audience: vec!["strom".into()],
            issuer: None,
            sub_claim: "sub".into(),
            clock_skew_s: 30,
        }),
    };
    let Some(mut exchange) = Exchange::start(mechanism) else {
        return;
    };
    for token in rest.split(|b| *b == 0xFF).take(4) {
        if exchange.step(token, &settings, &One).is_err() {
            return;
        }
    }
});
