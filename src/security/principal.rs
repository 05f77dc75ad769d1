//! The principal of a TLS client: its certificate's subject as an RFC 2253 distinguished name
//! (what Java's `X500Principal.getName()` prints, which Kafka uses), mapped by
//! `ssl.principal.mapping.rules` (Kafka's `SslPrincipalMapper`): a comma-separated list of
//! `DEFAULT` (the DN itself) and `RULE:<regex>/<replacement>/[L|U]`; the first rule whose
//! pattern matches the whole DN gives the name (lower- or upper-cased with `L`/`U`).

use regex::Regex;
use x509_parser::prelude::{FromDer, X509Certificate};

#[derive(Debug)]
enum Rule {
    Default,
    Replace {
        full: Regex,
        pattern: Regex,
        replacement: String,
        case: Option<char>,
    },
}

/// Parsed `ssl.principal.mapping.rules`.
#[derive(Debug)]
pub struct Mapper {
    rules: Vec<Rule>,
}

impl Mapper {
    pub fn parse(rules: &str) -> Result<Mapper, String> {
        let mut out = Vec::new();
        let s: Vec<char> = rules.trim().chars().collect();
        let mut i = 0;
        let skip_ws = |i: &mut usize| {
            while *i < s.len() && s[*i].is_whitespace() {
                *i += 1;
            }
        };
        loop {
            skip_ws(&mut i);
            if i >= s.len() {
                break;
            }
            let rest: String = s[i..].iter().collect();
            if rest.starts_with("DEFAULT") {
                out.push(Rule::Default);
                i += "DEFAULT".len();
            } else if rest.starts_with("RULE:") {
                i += "RULE:".len();
                let part = |i: &mut usize| -> Result<String, String> {
                    let mut p = String::new();
                    while *i < s.len() && s[*i] != '/' {
                        if s[*i] == '\\' && *i + 1 < s.len() {
                            p.push(s[*i]);
                            *i += 1;
                        }
                        p.push(s[*i]);
                        *i += 1;
                    }
                    if *i >= s.len() {
                        return Err(format!("invalid rule: {rest}"));
                    }
                    *i += 1;
                    Ok(p)
                };
                let pattern = part(&mut i)?;
                let replacement = part(&mut i)?;
                let case = match s.get(i) {
                    Some(c @ ('L' | 'U')) => {
                        i += 1;
                        Some(*c)
                    }
                    _ => None,
                };
                let full = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("rule pattern {pattern}: {e}"))?;
                let pattern =
                    Regex::new(&pattern).map_err(|e| format!("rule pattern {pattern}: {e}"))?;
                out.push(Rule::Replace {
                    full,
                    pattern,
                    replacement: java_replacement(&replacement),
                    case,
                });
                // As Kafka's splitter: anything up to the next comma is ignored.
                while i < s.len() && s[i] != ',' {
                    i += 1;
                }
            } else {
                let end = s[i..].iter().position(|c| *c == ',').map(|p| i + p);
                let word: String = s[i..end.unwrap_or(s.len())].iter().collect();
                return Err(format!("invalid rule: {}", word.trim()));
            }
            skip_ws(&mut i);
            if i < s.len() {
                if s[i] != ',' {
                    return Err(format!(
                        "invalid rule: unmatched `{}`",
                        s[i..].iter().collect::<String>()
                    ));
                }
                i += 1;
            }
        }
        if out.is_empty() {
            out.push(Rule::Default);
        }
        Ok(Mapper { rules: out })
    }

    /// The principal name for `dn`, or None when no rule applies (Kafka then fails the
    /// connection's authentication).
    pub fn name(&self, dn: &str) -> Option<String> {
        for r in &self.rules {
            match r {
                Rule::Default => return Some(dn.to_string()),
                Rule::Replace {
                    full,
                    pattern,
                    replacement,
                    case,
                } => {
                    if !full.is_match(dn) {
                        continue;
                    }
                    let out = pattern.replace_all(dn, replacement.as_str()).into_owned();
                    return Some(match case {
                        Some('L') => out.to_lowercase(),
                        Some('U') => out.to_uppercase(),
                        _ => out,
                    });
                }
            }
        }
        None
    }
}

/// Java's replacement syntax (`$1`, `\$` for a dollar) in the regex crate's (`${1}`, `$$`).
fn java_replacement(java: &str) -> String {
    let mut out = String::new();
    let c: Vec<char> = java.chars().collect();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '\\' if i + 1 < c.len() => {
                if c[i + 1] == '$' {
                    out.push_str("$$");
                } else {
                    out.push(c[i + 1]);
                }
                i += 2;
            }
            '$' => {
                let digits: String = c[i + 1..]
                    .iter()
                    .take_while(|d| d.is_ascii_digit())
                    .collect();
                if digits.is_empty() {
                    out.push_str("$$");
                    i += 1;
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                    i += 1 + digits.len();
                }
            }
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}

/// The subject of a DER certificate as an RFC 2253 string: the RDNs most specific first,
/// `,` between them, `+` inside a multi-valued one, Java's keywords (CN, C, L, ST, O, OU,
/// STREET, DC, UID) and dotted OIDs with `#`-hex values for other attributes.
pub fn subject_dn(der: &[u8]) -> Result<String, String> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("bad client certificate: {e}"))?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        let mut parts = Vec::new();
        for attr in rdn.iter() {
            let oid = attr.attr_type().to_id_string();
            let keyword = match oid.as_str() {
                "2.5.4.3" => Some("CN"),
                "2.5.4.6" => Some("C"),
                "2.5.4.7" => Some("L"),
                "2.5.4.8" => Some("ST"),
                "2.5.4.10" => Some("O"),
                "2.5.4.11" => Some("OU"),
                "2.5.4.9" => Some("STREET"),
                "0.9.2342.19200300.100.1.25" => Some("DC"),
                "0.9.2342.19200300.100.1.1" => Some("UID"),
                _ => None,
            };
            let value = match (keyword, attr.as_str()) {
                (Some(k), Ok(v)) => format!("{k}={}", escape(v)),
                _ => {
                    let raw = attr.attr_value();
                    let hex: String = der_tlv(raw.header.tag().0 as u8, raw.data)
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    format!("{}=#{hex}", keyword.map(str::to_string).unwrap_or(oid))
                }
            };
            parts.push(value);
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

/// A DER tag-length-value of a universal primitive (the `#hex` form of RFC 2253).
fn der_tlv(tag: u8, data: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = data.len();
    if n < 128 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(data);
    out
}

/// RFC 2253 escaping of an attribute value.
fn escape(v: &str) -> String {
    let mut out = String::new();
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == n && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_map_as_kafkas_mapper_does() {
        // Examples from Kafka's documentation and SslPrincipalMapperTest.
        let m = Mapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
        )
        .expect("parses");
        assert_eq!(
            m.name("CN=kafka-server1,OU=ServiceUsers,O=Org,C=US")
                .as_deref(),
            Some("kafka-server1")
        );
        assert_eq!(
            m.name("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Palo Alto,ST=CA,C=US")
                .as_deref(),
            Some("duke@javasoft")
        );
        assert_eq!(
            m.name("OU=JavaSoft,O=Sun Microsystems,C=US").as_deref(),
            Some("OU=JavaSoft,O=Sun Microsystems,C=US"),
            "DEFAULT"
        );
        let u = Mapper::parse("RULE:^CN=(.*),O=x$/$1/U").expect("parses");
        assert_eq!(u.name("CN=abc,O=x").as_deref(), Some("ABC"));
        assert_eq!(u.name("CN=abc,O=y"), None, "no rule applies");
        assert_eq!(
            Mapper::parse("DEFAULT")
                .expect("default")
                .name("CN=a")
                .as_deref(),
            Some("CN=a")
        );
        assert!(Mapper::parse("RULE:abc").is_err());
        assert!(Mapper::parse("NOTARULE").is_err());
        assert!(Mapper::parse("DEFAULT junk").is_err());
    }

    #[test]
    fn java_replacements_translate() {
        assert_eq!(java_replacement("$1@$2"), "${1}@${2}");
        assert_eq!(java_replacement("a\\$b"), "a$$b");
        assert_eq!(java_replacement("$"), "$$");
    }

    #[test]
    fn values_are_escaped() {
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape(" x "), "\\ x\\ ");
        assert_eq!(escape("#1"), "\\#1");
    }
}
