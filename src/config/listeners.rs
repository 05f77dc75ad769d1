//! `listeners`, `advertised.listeners` and `listener.security.protocol.map`, as Kafka reads
//! them: a comma-separated list of `NAME://host:port` (an empty host: every interface), each
//! name mapped to a security protocol (the map, or the name itself when it is one of
//! PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL). Listeners named in `controller.listener.names`
//! are the controller quorum's, not for clients.
//!
//! Strom serves clients on one listener so far, with PLAINTEXT: a configuration with more
//! client listeners or another protocol is refused with an error naming it (TLS and SASL are
//! the security work), rather than silently serving something else. The controller listener's
//! address is kept for the metadata quorum.

use std::collections::BTreeMap;
use std::net::SocketAddr;

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

/// Resolves the client listener (and the controller listener) once every key is read.
pub fn resolve(c: &mut BrokerConfig) -> Result<(), ConfigError> {
    let key = "listeners";
    let raw = c.listeners.clone();
    let all = parse(key, &raw)?;
    let controller_names = &c.cluster.controller_listener_names;
    let protocol_of = |name: &str| -> Result<String, ConfigError> {
        match c.listener_protocols.get(name) {
            Some(p) => Ok(p.clone()),
            None if PROTOCOLS.contains(&name) => Ok(name.to_string()),
            None => Err(invalid(
                key,
                &raw,
                format!(
                    "no security protocol for listener {name}: add it to \
                     listener.security.protocol.map (e.g. {name}:PLAINTEXT)"
                ),
            )),
        }
    };
    let (controllers, clients): (Vec<&Listener>, Vec<&Listener>) =
        all.iter().partition(|l| controller_names.contains(&l.name));
    let client = match clients.as_slice() {
        [one] => *one,
        [] => return Err(invalid(key, &raw, "no listener for clients")),
        many => {
            let names: Vec<&str> = many.iter().map(|l| l.name.as_str()).collect();
            return Err(ConfigError::Unsupported(format!(
                "listeners names {} client listeners ({}): Strom serves one so far",
                many.len(),
                names.join(", ")
            )));
        }
    };
    let protocol = protocol_of(&client.name)?;
    if protocol != "PLAINTEXT" {
        return Err(ConfigError::Unsupported(format!(
            "listener {} uses {protocol}: Strom serves PLAINTEXT only so far (TLS and SASL are \
             being built)",
            client.name
        )));
    }
    // As Kafka's effectiveListenerSecurityProtocolMap: a controller listener the map does not
    // name is PLAINTEXT.
    for l in &controllers {
        if c.listener_protocols.contains_key(&l.name) {
            protocol_of(&l.name)?;
        }
    }
    c.listen = client.bind_addr().map_err(|e| invalid(key, &raw, e))?;
    c.client_listener_name = client.name.clone();
    c.cluster.controller_listen = match controllers.first() {
        Some(l) => Some(l.bind_addr().map_err(|e| invalid(key, &raw, e))?),
        None => None,
    };
    match &c.advertised_listeners {
        Some(adv) => {
            let key = "advertised.listeners";
            let entries = parse(key, adv)?;
            let mine = entries
                .iter()
                .find(|l| l.name == client.name)
                .ok_or_else(|| {
                    invalid(key, adv, format!("no entry for listener {}", client.name))
                })?;
            if mine.host.is_empty() || mine.port == 0 {
                return Err(invalid(
                    key,
                    adv,
                    "an advertised listener needs a host and a port",
                ));
            }
            c.advertised_host = mine.host.trim_matches(|c| c == '[' || c == ']').to_string();
            c.advertised_port = mine.port;
        }
        None => {
            c.advertised_host = c.listen.ip().to_string();
            c.advertised_port = c.listen.port();
        }
    }
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
    fn what_strom_cannot_serve_is_refused_by_name() {
        let e = config(&[("listeners", "SSL://:9093")]).expect_err("ssl");
        assert!(e.to_string().contains("SSL"), "{e}");
        let e =
            config(&[("listeners", "PLAINTEXT://:9092,SASL_PLAINTEXT://:9094")]).expect_err("two");
        assert!(e.to_string().contains("client listeners"), "{e}");
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
    }
}
