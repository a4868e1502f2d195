//! Who a connection acts as: Kafka's `KafkaPrincipal` (`User:<name>`), the name a client
//! certificate gives (its subject DN in RFC 2253 form, as Java's `X500Principal` prints it,
//! mapped by `ssl.principal.mapping.rules`), and the anonymous principal of unauthenticated
//! connections.

use std::fmt;
use std::sync::Arc;

use regex::Regex;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A principal as Kafka writes it: `User:alice`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KafkaPrincipal {
    name: Arc<str>,
}

impl KafkaPrincipal {
    /// Kafka's principal type for users (the only type the built-in authenticators produce).
    pub const USER_TYPE: &'static str = "User";

    pub fn user(name: &str) -> KafkaPrincipal {
        KafkaPrincipal { name: name.into() }
    }

    /// The name without the `User:` type (what user quotas are set on).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `User:ANONYMOUS`: PLAINTEXT connections and TLS connections without a client certificate.
    pub fn anonymous() -> KafkaPrincipal {
        KafkaPrincipal::user("ANONYMOUS")
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", Self::USER_TYPE, self.name)
    }
}

/// One rule of `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
enum Rule {
    /// The whole DN.
    Default,
    /// `RULE:pattern/replacement/[LU]`: a DN the pattern matches whole becomes the replacement.
    Pattern {
        pattern: Regex,
        replacement: String,
        case: Option<Case>,
    },
}

#[derive(Debug, Clone, Copy)]
enum Case {
    Lower,
    Upper,
}

/// `ssl.principal.mapping.rules`: the first rule that matches a certificate's DN names the
/// principal; a DN no rule matches is refused (Kafka's NoMatchingRule).
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

impl PrincipalMapper {
    /// Parses rules such as `RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT`.
    pub fn parse(text: &str) -> Result<PrincipalMapper, String> {
        let mut rules = Vec::new();
        let mut rest = text;
        loop {
            rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
            if rest.is_empty() {
                break;
            }
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after)
                    .ok_or_else(|| format!("rule {rest:?} has no '/' after its pattern"))?;
                let (replacement, after) = until_slash(after)
                    .ok_or_else(|| format!("rule {rest:?} has no '/' after its replacement"))?;
                let (case, after) = match after.chars().next() {
                    Some('L') => (Some(Case::Lower), &after[1..]),
                    Some('U') => (Some(Case::Upper), &after[1..]),
                    _ => (None, after),
                };
                let pattern = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("rule pattern {pattern:?}: {e}"))?;
                rules.push(Rule::Pattern {
                    pattern,
                    replacement: java_replacement(&replacement),
                    case,
                });
                rest = after;
            } else {
                return Err(format!(
                    "expected DEFAULT or RULE:pattern/replacement/[LU] at {rest:?}"
                ));
            }
        }
        if rules.is_empty() {
            return Err("no rules (use DEFAULT for the whole distinguished name)".to_string());
        }
        Ok(PrincipalMapper { rules })
    }

    /// The principal name for a distinguished name, or `None` when no rule applies.
    pub fn map(&self, dn: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Default => Some(dn.to_string()),
            Rule::Pattern {
                pattern,
                replacement,
                case,
            } => {
                let captures = pattern.captures(dn)?;
                let mut name = String::new();
                captures.expand(replacement, &mut name);
                Some(match case {
                    Some(Case::Lower) => name.to_lowercase(),
                    Some(Case::Upper) => name.to_uppercase(),
                    None => name,
                })
            }
        })
    }
}

/// Text up to the next unescaped '/', with `\/` kept as an escaped '/', and what follows it.
fn until_slash(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '/' => return Some((out, &text[i + 1..])),
            '\\' => {
                out.push('\\');
                if let Some((_, next)) = chars.next() {
                    out.push(next);
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// Java's `$1` group references as the regex crate's unambiguous `${1}`.
fn java_replacement(replacement: &str) -> String {
    let mut out = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push_str("${");
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                out.push(d);
            }
            out.push('}');
        } else if c == '$' {
            out.push_str("$$");
        } else {
            out.push(c);
        }
    }
    out
}

/// Attribute keywords Java's RFC 2253 form uses; any other attribute is written as its OID.
const KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// The subject of a DER certificate as RFC 2253 text (`CN=alice,OU=team-a,O=Example`): the
/// most specific RDN first, as `X500Principal.getName()` writes it.
pub fn subject_dn(certificate: &[u8]) -> Result<String, String> {
    let (_, cert) = X509Certificate::from_der(certificate)
        .map_err(|e| format!("unreadable client certificate: {e}"))?;
    let rdns: Vec<String> = cert
        .subject()
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attribute| {
                    let oid = attribute.attr_type().to_id_string();
                    let keyword = KEYWORDS.iter().find(|(o, _)| *o == oid).map(|(_, k)| *k);
                    match (keyword, attribute.as_str()) {
                        (Some(keyword), Ok(value)) => format!("{keyword}={}", escape(value)),
                        _ => format!("{oid}=#{}", der_hex(attribute.attr_value())),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// RFC 2253 escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A value's DER encoding (tag, length, content) in hex, for attributes without a keyword.
fn der_hex(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> String {
    let data = value.data;
    let mut der = vec![value.tag().0 as u8];
    match data.len() {
        n if n < 0x80 => der.push(n as u8),
        n if n <= 0xff => der.extend([0x81, n as u8]),
        n => der.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    der.extend_from_slice(data);
    der.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rule_keeps_the_whole_dn() {
        let mapper = PrincipalMapper::parse("DEFAULT").unwrap();
        assert_eq!(
            mapper.map("CN=alice,OU=team-a").as_deref(),
            Some("CN=alice,OU=team-a")
        );
    }

    #[test]
    fn first_matching_rule_wins_with_groups_and_case() {
        let mapper = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, RULE:^CN=([a-z]+)-(\\d+),.*$/$2-$1/U,DEFAULT",
        )
        .unwrap();
        assert_eq!(
            mapper
                .map("CN=Kafka-Client,OU=ServiceUsers,O=Example")
                .as_deref(),
            Some("kafka-client")
        );
        assert_eq!(mapper.map("CN=app-7,O=Example").as_deref(), Some("7-APP"));
        assert_eq!(mapper.map("O=Other").as_deref(), Some("O=Other"));
    }

    #[test]
    fn a_dn_no_rule_matches_has_no_principal() {
        let mapper = PrincipalMapper::parse("RULE:^CN=(.*),O=Example$/$1/").unwrap();
        assert_eq!(mapper.map("CN=x,O=Elsewhere"), None);
        assert!(PrincipalMapper::parse("").is_err());
        assert!(PrincipalMapper::parse("RULE:^CN=(.*)$").is_err());
        assert!(PrincipalMapper::parse("SOMETHING").is_err());
    }

    #[test]
    fn subject_is_written_most_specific_first_and_escaped() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "NL");
        dn.push(rcgen::DnType::OrganizationName, "Example, Inc");
        dn.push(rcgen::DnType::OrganizationalUnitName, "team-a");
        dn.push(rcgen::DnType::CommonName, "alice");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_dn(cert.der()).unwrap(),
            "CN=alice,OU=team-a,O=Example\\, Inc,C=NL"
        );
        assert!(subject_dn(b"not a certificate").is_err());
    }

    #[test]
    fn principals_print_as_kafka_does() {
        assert_eq!(KafkaPrincipal::user("alice").to_string(), "User:alice");
        assert_eq!(KafkaPrincipal::anonymous().to_string(), "User:ANONYMOUS");
    }
}
