//! `listeners`, `advertised.listeners` and `listener.security.protocol.map`, as Kafka reads
//! them: a comma-separated list of `NAME://host:port` (an empty host: every interface), each
//! name mapped to a security protocol (the map, or the name itself when it is one of
//! PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL). Listeners named in `controller.listener.names`
//! are the controller quorum's, not for clients.
//!
//! Every client listener is served, each with its protocol (TLS and SASL settings from
//! [`super::security`]). The controller listener's address is kept for the metadata quorum.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::security::{Protocol, SaslSettings, TlsSettings};
use super::{invalid, BrokerConfig, ConfigError};

const PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// One `NAME://host:port` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    /// As written; empty means every interface.
    pub host: String,
    pub port: u16,
}

impl Listener {
    /// The address to bind: an empty host is every interface, `localhost` the loopback.
    pub fn bind_addr(&self) -> Result<SocketAddr, String> {
        let host = match self.host.as_str() {
            "" => "0.0.0.0",
            "localhost" => "127.0.0.1",
            h => h.trim_matches(|c| c == '[' || c == ']'),
        };
        format!("{host}:{}", self.port)
            .parse()
            .or_else(|_| format!("[{host}]:{}", self.port).parse())
            .map_err(|e| format!("{host}:{}: {e}", self.port))
    }
}

/// Parses a `listeners`-style list; names must be unique and upper case.
pub fn parse(key: &str, v: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut out: Vec<Listener> = Vec::new();
    for entry in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, addr) = entry
            .split_once("://")
            .ok_or_else(|| invalid(key, v, format!("'{entry}' is not NAME://HOST:PORT")))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| invalid(key, v, format!("'{entry}' has no port")))?;
        let port = port
            .parse::<u16>()
            .map_err(|_| invalid(key, v, format!("'{entry}' has a bad port")))?;
        if name.is_empty()
            || name
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(invalid(key, v, format!("'{name}' is not a listener name")));
        }
        if out.iter().any(|l| l.name == name) {
            return Err(invalid(key, v, format!("listener {name} is listed twice")));
        }
        out.push(Listener {
            name: name.to_string(),
            host: host.to_string(),
            port,
        });
    }
    if out.is_empty() {
        return Err(invalid(key, v, "no listener"));
    }
    Ok(out)
}

/// Parses `listener.security.protocol.map` (`NAME:PROTOCOL,...`).
pub fn parse_protocol_map(key: &str, v: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut map = BTreeMap::new();
    for entry in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, proto) = entry
            .split_once(':')
            .ok_or_else(|| invalid(key, v, format!("'{entry}' is not NAME:PROTOCOL")))?;
        let proto = proto.trim().to_ascii_uppercase();
        if !PROTOCOLS.contains(&proto.as_str()) {
            return Err(invalid(
                key,
                v,
                format!("unknown security protocol '{proto}'"),
            ));
        }
        map.insert(name.trim().to_string(), proto);
    }
    Ok(map)
}

/// One listener clients connect to: its protocol, where it binds, what it advertises, and
/// its TLS and SASL settings.
#[derive(Debug, Clone)]
pub struct ClientListener {
    pub name: String,
    pub protocol: Protocol,
    pub bind: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: u16,
    pub tls: Option<TlsSettings>,
    pub sasl: Option<SaslSettings>,
}

/// Resolves the client listeners (and the controller listener) once every key is read. The
/// broker's own listener — what it registers for other brokers and answers FindCoordinator
/// with on a single listener — is `inter.broker.listener.name`, else the listener named by
/// `security.inter.broker.protocol` (PLAINTEXT by default), else on a single node the first.
pub fn resolve(c: &mut BrokerConfig) -> Result<(), ConfigError> {
    let key = "listeners";
    let raw = c.listeners.clone();
    let all = parse(key, &raw)?;
    let controller_names = &c.cluster.controller_listener_names;
    let protocol_of = |name: &str| -> Result<Protocol, ConfigError> {
        let p = match c.listener_protocols.get(name) {
            Some(p) => p.as_str(),
            None if PROTOCOLS.contains(&name) => name,
            None => {
                return Err(invalid(
                    key,
                    &raw,
                    format!(
                        "no security protocol for listener {name}: add it to \
                         listener.security.protocol.map (e.g. {name}:PLAINTEXT)"
                    ),
                ))
            }
        };
        Protocol::parse(p).ok_or_else(|| invalid(key, &raw, format!("unknown protocol {p}")))
    };
    let (controllers, clients): (Vec<&Listener>, Vec<&Listener>) =
        all.iter().partition(|l| controller_names.contains(&l.name));
    if clients.is_empty() {
        return Err(invalid(key, &raw, "no listener for clients"));
    }
    // As Kafka's effectiveListenerSecurityProtocolMap: a controller listener the map does not
    // name is PLAINTEXT; one it names must be PLAINTEXT (the quorum speaks no TLS yet).
    for l in &controllers {
        if c.listener_protocols.contains_key(&l.name)
            && protocol_of(&l.name)? != Protocol::Plaintext
        {
            return Err(ConfigError::Unsupported(format!(
                "controller listener {} is not PLAINTEXT: Strom's metadata quorum speaks \
                 PLAINTEXT only so far",
                l.name
            )));
        }
    }
    let advertised = match &c.advertised_listeners {
        Some(adv) => Some((adv.clone(), parse("advertised.listeners", adv)?)),
        None => None,
    };
    let mut out = Vec::new();
    for l in &clients {
        let protocol = protocol_of(&l.name)?;
        let bind = l.bind_addr().map_err(|e| invalid(key, &raw, e))?;
        let (advertised_host, advertised_port) = match &advertised {
            Some((adv, entries)) => {
                let key = "advertised.listeners";
                let mine = entries.iter().find(|a| a.name == l.name).ok_or_else(|| {
                    invalid(key, adv, format!("no entry for listener {}", l.name))
                })?;
                if mine.host.is_empty() || mine.port == 0 {
                    return Err(invalid(
                        key,
                        adv,
                        "an advertised listener needs a host and a port",
                    ));
                }
                (
                    mine.host.trim_matches(|c| c == '[' || c == ']').to_string(),
                    mine.port,
                )
            }
            None => (bind.ip().to_string(), bind.port()),
        };
        let tls = if protocol.tls() {
            Some(c.security.tls(&l.name)?)
        } else {
            None
        };
        let sasl = if protocol.sasl() {
            Some(c.security.sasl(&l.name)?)
        } else {
            None
        };
        out.push(ClientListener {
            name: l.name.clone(),
            protocol,
            bind,
            advertised_host,
            advertised_port,
            tls,
            sasl,
        });
    }
    let multi_node = c.cluster.is_multi_node(c.node_id);
    let inter = match (&c.inter_broker_listener, &c.inter_broker_protocol) {
        (Some(name), _) => out.iter().find(|l| &l.name == name).ok_or_else(|| {
            invalid(
                "inter.broker.listener.name",
                name,
                "not one of the client listeners in listeners",
            )
        })?,
        (None, proto) => match out.iter().find(|l| l.name == *proto) {
            Some(l) => l,
            None if !multi_node => &out[0],
            None => {
                return Err(invalid(
                    "security.inter.broker.protocol",
                    proto,
                    "no listener of that name: set inter.broker.listener.name",
                ))
            }
        },
    };
    if multi_node && inter.protocol != Protocol::Plaintext {
        return Err(ConfigError::Unsupported(format!(
            "inter-broker listener {} uses {}: brokers of a Strom cluster talk to each other \
             over PLAINTEXT only so far (give them a PLAINTEXT listener and name it in \
             inter.broker.listener.name)",
            inter.name,
            inter.protocol.name()
        )));
    }
    c.listen = inter.bind;
    c.client_listener_name = inter.name.clone();
    c.advertised_host = inter.advertised_host.clone();
    c.advertised_port = inter.advertised_port;
    c.cluster.controller_listen = match controllers.first() {
        Some(l) => Some(l.bind_addr().map_err(|e| invalid(key, &raw, e))?),
        None => None,
    };
    c.client_listeners = out;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kv: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        let props: Vec<(String, String)> = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BrokerConfig::from_properties(&props)
    }

    #[test]
    fn kafkas_kraft_listener_lines_are_understood() {
        // The combined-mode quickstart, in either order.
        for listeners in [
            "PLAINTEXT://:19092,CONTROLLER://:19093",
            "CONTROLLER://localhost:19093,PLAINTEXT://localhost:19092",
        ] {
            let c = config(&[
                ("listeners", listeners),
                ("controller.listener.names", "CONTROLLER"),
                (
                    "listener.security.protocol.map",
                    "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                ),
            ])
            .expect(listeners);
            assert_eq!(c.listen.port(), 19092, "{listeners}");
            assert_eq!(c.cluster.controller_listen.map(|a| a.port()), Some(19093));
        }
        // A named client listener mapped to PLAINTEXT, advertised by name.
        let c = config(&[
            ("listeners", "INTERNAL://127.0.0.1:19094"),
            ("listener.security.protocol.map", "INTERNAL:PLAINTEXT"),
            ("advertised.listeners", "INTERNAL://broker-1.example:19094"),
        ])
        .expect("named");
        assert_eq!(
            (c.advertised_host.as_str(), c.advertised_port),
            ("broker-1.example", 19094)
        );
    }

    #[test]
    fn several_listeners_each_with_their_protocol() {
        let c = config(&[
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:19092,SSL://127.0.0.1:19093,MTLS://127.0.0.1:19094,SASL_PLAINTEXT://127.0.0.1:19095,CONTROLLER://127.0.0.1:19096",
            ),
            ("controller.listener.names", "CONTROLLER"),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            ),
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", "/keys/broker.pem"),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", "/keys/ca.pem"),
            ("listener.name.mtls.ssl.client.auth", "required"),
            ("sasl.enabled.mechanisms", "SCRAM-SHA-512"),
        ])
        .expect("four client listeners");
        let names: Vec<(&str, Protocol)> = c
            .client_listeners
            .iter()
            .map(|l| (l.name.as_str(), l.protocol))
            .collect();
        assert_eq!(
            names,
            vec![
                ("PLAINTEXT", Protocol::Plaintext),
                ("SSL", Protocol::Ssl),
                ("MTLS", Protocol::Ssl),
                ("SASL_PLAINTEXT", Protocol::SaslPlaintext)
            ]
        );
        assert_eq!(
            c.client_listeners[2].tls.as_ref().map(|t| t.client_auth),
            Some(crate::config::security::ClientAuth::Required)
        );
        assert_eq!(
            c.client_listeners[1].tls.as_ref().map(|t| t.client_auth),
            Some(crate::config::security::ClientAuth::None)
        );
        // The broker's own listener: PLAINTEXT (security.inter.broker.protocol's default).
        assert_eq!(
            (c.client_listener_name.as_str(), c.listen.port()),
            ("PLAINTEXT", 19092)
        );
    }

    #[test]
    fn what_strom_cannot_serve_is_refused_by_name() {
        let e = config(&[("listeners", "SSL://:9093")]).expect_err("ssl without keystore");
        assert!(e.to_string().contains("ssl.keystore.location"), "{e}");
        let e = config(&[("listeners", "SASL_PLAINTEXT://:9093")]).expect_err("GSSAPI");
        assert!(e.to_string().contains("GSSAPI"), "{e}");
        let e = config(&[("listeners", "BROKER://:9092")]).expect_err("unmapped");
        assert!(
            e.to_string().contains("listener.security.protocol.map"),
            "{e}"
        );
        let e = config(&[("listeners", "PLAINTEXT://:9092,PLAINTEXT://:9093")]).expect_err("dup");
        assert!(e.to_string().contains("twice"), "{e}");
        let e = config(&[
            ("listeners", "PLAINTEXT://:9092"),
            ("advertised.listeners", "OTHER://h:1"),
        ])
        .expect_err("advertised name");
        assert!(e.to_string().contains("advertised.listeners"), "{e}");
        let e = config(&[
            ("listeners", "PLAINTEXT://:9092"),
            ("inter.broker.listener.name", "INTERNAL"),
        ])
        .expect_err("unknown inter-broker listener");
        assert!(e.to_string().contains("inter.broker.listener.name"), "{e}");
        let c = config(&[
            (
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            ),
            ("super.users", " User:admin ; ;User:CN=broker,O=strom"),
            ("allow.everyone.if.no.acl.found", "TRUE"),
        ])
        .expect("the StandardAuthorizer");
        assert!(c.security.authorizer.is_some());
        assert_eq!(
            c.security.super_users,
            ["User:admin", "User:CN=broker,O=strom"]
        );
        assert!(c.security.allow_if_no_acls);
        let e = config(&[("authorizer.class.name", "com.example.MyAuthorizer")])
            .expect_err("a custom class");
        assert!(e.to_string().contains("authorizer"), "{e}");
        let e = config(&[("super.users", "admin")]).expect_err("no type");
        assert!(e.to_string().contains("super.users"), "{e}");
    }
}
