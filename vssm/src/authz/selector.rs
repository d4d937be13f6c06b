//! Grant selectors: which identities (`kind:value`) and which key names
//! (`name`, `prefix*`, `*`) a grant covers. Parsed by hand: the grammar is
//! a prefix and at most one `*`, smaller than any pattern crate (`glob`,
//! `wildmatch`) and without their character classes, which an operator
//! would have to escape.

use super::identity::ClientIdentity;
use crate::keystore::validate_name;
use crate::wire::codec::{decode_hex_array, encode_hex};
use std::fmt;
use std::net::IpAddr;

/// Longest identity selector, in bytes.
pub const MAX_IDENTITY_SELECTOR_BYTES: usize = 1024;

/// Why a selector is not acceptable (the caller names the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// Empty selector.
    #[error("is required")]
    Empty,
    /// Longer than its limit.
    #[error("is longer than {0} bytes")]
    TooLong(usize),
    /// Not `kind:value` with a known kind.
    #[error("unknown selector kind {0} (expected spki:, subject:, cn:, dns:, email:, uri: or ip:)")]
    UnknownKind(String),
    /// `spki:` without 64 hex digits.
    #[error("spki: takes the 64 hex digits of a SHA-256")]
    BadSpki,
    /// `ip:` without an address.
    #[error("ip: takes an IPv4 or IPv6 address")]
    BadIp,
    /// More than one `*` in a pattern, or `*` not at the end of a key selector.
    #[error("{0}")]
    BadWildcard(&'static str),
    /// A control character.
    #[error("contains control characters")]
    Control,
    /// `subject:-`: how an empty subject is shown; it would match every
    /// certificate without a subject.
    #[error("an empty subject (shown as \"-\") identifies nobody; use spki:, dns:, uri:, email: or ip:")]
    EmptySubject,
    /// The literal part of a key selector is no valid key name.
    #[error("{0}")]
    KeyName(crate::keystore::NameError),
}

/// Text with at most one `*`, which matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    prefix: String,
    /// Some when there is a `*`: the text after it.
    suffix: Option<String>,
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, SelectorError> {
        match text.split_once('*') {
            None => Ok(Pattern { prefix: text.to_string(), suffix: None }),
            Some((_, after)) if after.contains('*') => {
                Err(SelectorError::BadWildcard("a pattern may hold one '*' at most"))
            }
            Some((before, after)) => Ok(Pattern { prefix: before.to_string(), suffix: Some(after.to_string()) }),
        }
    }

    /// True when `text` matches; `fold` compares ASCII case-insensitively.
    fn matches(&self, text: &str, fold: bool) -> bool {
        let eq = |a: &str, b: &str| if fold { a.eq_ignore_ascii_case(b) } else { a == b };
        match &self.suffix {
            None => eq(&self.prefix, text),
            Some(suffix) => {
                text.len() >= self.prefix.len() + suffix.len()
                    && text.is_char_boundary(self.prefix.len())
                    && text.is_char_boundary(text.len() - suffix.len())
                    && eq(&text[..self.prefix.len()], &self.prefix)
                    && eq(&text[text.len() - suffix.len()..], suffix)
            }
        }
    }

    /// The exact text when the pattern has no `*`.
    pub fn exact(&self) -> Option<&str> {
        self.suffix.is_none().then_some(self.prefix.as_str())
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.suffix {
            None => f.write_str(&self.prefix),
            Some(s) => write!(f, "{}*{s}", self.prefix),
        }
    }
}

/// Which clients a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdentitySelector {
    /// `spki:HEX`: exactly this public key.
    Spki([u8; 32]),
    /// `subject:DN`: the subject exactly as rendered in the audit log.
    Subject(String),
    /// `cn:PATTERN`: any common name of the subject.
    CommonName(Pattern),
    /// `dns:PATTERN`: any DNS SAN, ASCII case-insensitive.
    Dns(Pattern),
    /// `email:PATTERN`: any email SAN.
    Email(Pattern),
    /// `uri:PATTERN`: any URI SAN.
    Uri(Pattern),
    /// `ip:ADDRESS`: an IP SAN equal to the address.
    Ip(IpAddr),
}

impl IdentitySelector {
    /// Parses `kind:value`.
    pub fn parse(text: &str) -> Result<IdentitySelector, SelectorError> {
        if text.is_empty() {
            return Err(SelectorError::Empty);
        }
        if text.len() > MAX_IDENTITY_SELECTOR_BYTES {
            return Err(SelectorError::TooLong(MAX_IDENTITY_SELECTOR_BYTES));
        }
        if text.chars().any(char::is_control) {
            return Err(SelectorError::Control);
        }
        let Some((kind, value)) = text.split_once(':') else {
            return Err(SelectorError::UnknownKind(crate::crypto::quote(text)));
        };
        let nonempty = |v: &str| if v.is_empty() { Err(SelectorError::Empty) } else { Ok(()) };
        nonempty(value)?;
        Ok(match kind {
            "spki" => IdentitySelector::Spki(decode_hex_array(value).ok_or(SelectorError::BadSpki)?),
            "subject" if value == "-" => return Err(SelectorError::EmptySubject),
            "subject" => IdentitySelector::Subject(value.to_string()),
            "cn" => IdentitySelector::CommonName(Pattern::parse(value)?),
            "dns" => IdentitySelector::Dns(Pattern::parse(value)?),
            "email" => IdentitySelector::Email(Pattern::parse(value)?),
            "uri" => IdentitySelector::Uri(Pattern::parse(value)?),
            "ip" => IdentitySelector::Ip(value.parse().map_err(|_| SelectorError::BadIp)?),
            other => return Err(SelectorError::UnknownKind(crate::crypto::quote(other))),
        })
    }

    /// True when the selector covers `identity`.
    pub fn matches(&self, identity: &ClientIdentity) -> bool {
        let any = |values: &[String], p: &Pattern, fold: bool| values.iter().any(|v| p.matches(v, fold));
        match self {
            IdentitySelector::Spki(hash) => *hash == identity.spki_sha256,
            IdentitySelector::Subject(dn) => *dn == identity.subject,
            IdentitySelector::CommonName(p) => any(&identity.common_names, p, false),
            IdentitySelector::Dns(p) => any(&identity.dns_names, p, true),
            IdentitySelector::Email(p) => any(&identity.emails, p, false),
            IdentitySelector::Uri(p) => any(&identity.uris, p, false),
            IdentitySelector::Ip(ip) => identity.ip_addresses.contains(ip),
        }
    }
}

impl fmt::Display for IdentitySelector {
    /// The canonical spelling (what listings show).
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            IdentitySelector::Spki(h) => write!(f, "spki:{}", encode_hex(h)),
            IdentitySelector::Subject(s) => write!(f, "subject:{s}"),
            IdentitySelector::CommonName(p) => write!(f, "cn:{p}"),
            IdentitySelector::Dns(p) => write!(f, "dns:{p}"),
            IdentitySelector::Email(p) => write!(f, "email:{p}"),
            IdentitySelector::Uri(p) => write!(f, "uri:{p}"),
            IdentitySelector::Ip(ip) => write!(f, "ip:{ip}"),
        }
    }
}

/// Which key names a grant covers (of every key type).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeySelector {
    /// `*`: every key.
    All,
    /// `prefix*`: every name that starts with the prefix.
    Prefix(String),
    /// A name.
    Exact(String),
}

impl KeySelector {
    /// Parses `name`, `prefix*` or `*`.
    pub fn parse(text: &str) -> Result<KeySelector, SelectorError> {
        if text.is_empty() {
            return Err(SelectorError::Empty);
        }
        if text == "*" {
            return Ok(KeySelector::All);
        }
        let (literal, prefix) = match text.strip_suffix('*') {
            Some(literal) => (literal, true),
            None => (text, false),
        };
        if literal.contains('*') {
            return Err(SelectorError::BadWildcard("'*' may only end a key selector"));
        }
        validate_name(literal).map_err(SelectorError::KeyName)?;
        Ok(if prefix { KeySelector::Prefix(literal.to_string()) } else { KeySelector::Exact(literal.to_string()) })
    }

    /// True when the selector covers the key `name`; a conflict alias
    /// `name~fingerprint` counts as its base name.
    pub fn matches(&self, name: &str) -> bool {
        let base = name.split_once('~').map_or(name, |(base, _)| base);
        match self {
            KeySelector::All => true,
            KeySelector::Prefix(p) => base.starts_with(p.as_str()),
            KeySelector::Exact(n) => n == base,
        }
    }
}

impl fmt::Display for KeySelector {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            KeySelector::All => f.write_str("*"),
            KeySelector::Prefix(p) => write!(f, "{p}*"),
            KeySelector::Exact(n) => f.write_str(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> ClientIdentity {
        ClientIdentity {
            subject: "CN=svc-a, O=Example".into(),
            common_names: vec!["svc-a".into()],
            dns_names: vec!["Svc-A.payments.example.com".into()],
            emails: vec!["ops@example.com".into()],
            uris: vec!["spiffe://example.com/svc-a".into()],
            ip_addresses: vec!["10.0.0.1".parse().unwrap()],
            spki_sha256: [0xab; 32],
        }
    }

    #[test]
    fn each_identity_selector_kind_matches_its_field() {
        let id = identity();
        for (selector, expected) in [
            (format!("spki:{}", "AB".repeat(32)), true),
            (format!("spki:{}", "ab".repeat(31) + "ac"), false),
            ("subject:CN=svc-a, O=Example".into(), true),
            ("subject:CN=svc-a".into(), false),
            ("cn:svc-a".into(), true),
            ("cn:svc-*".into(), true),
            ("cn:*-a".into(), true),
            ("cn:svc-b".into(), false),
            ("cn:SVC-A".into(), false),
            ("dns:*.payments.example.com".into(), true),
            ("dns:svc-a.PAYMENTS.example.com".into(), true),
            ("dns:*.example.org".into(), false),
            ("email:ops@example.com".into(), true),
            ("uri:spiffe://example.com/*".into(), true),
            ("ip:10.0.0.1".into(), true),
            ("ip:::ffff:10.0.0.2".into(), false),
        ] {
            let parsed = IdentitySelector::parse(&selector).unwrap();
            assert_eq!(parsed.matches(&id), expected, "{selector}");
        }
    }

    #[test]
    fn a_wildcard_never_matches_overlapping_prefix_and_suffix() {
        let p = Pattern::parse("ab*ba").unwrap();
        assert!(!p.matches("aba", false));
        assert!(p.matches("abba", false));
        assert!(Pattern::parse("é*").unwrap().matches("é", false));
        assert!(!Pattern::parse("*é").unwrap().matches("e\u{301}", false));
    }

    #[test]
    fn malformed_selectors_are_refused() {
        for (text, expected) in [
            ("", SelectorError::Empty),
            ("cn:", SelectorError::Empty),
            ("svc-a", SelectorError::UnknownKind("\"svc-a\"".into())),
            ("role:x", SelectorError::UnknownKind("\"role\"".into())),
            ("spki:abc", SelectorError::BadSpki),
            ("ip:10.0.0", SelectorError::BadIp),
            ("cn:*a*", SelectorError::BadWildcard("a pattern may hold one '*' at most")),
            ("cn:a\nb", SelectorError::Control),
            ("subject:-", SelectorError::EmptySubject),
        ] {
            assert_eq!(IdentitySelector::parse(text), Err(expected), "{text:?}");
        }
        assert_eq!(IdentitySelector::parse(&"cn:".repeat(400)), Err(SelectorError::TooLong(1024)));
    }

    #[test]
    fn key_selectors_cover_names_and_conflict_aliases() {
        let prefix = KeySelector::parse("team-a/*").unwrap();
        assert!(prefix.matches("team-a/k1"));
        assert!(prefix.matches("team-a/k1~0123456789ab"));
        assert!(!prefix.matches("team-b/k1"));
        let exact = KeySelector::parse("k").unwrap();
        assert!(exact.matches("k") && exact.matches("k~0123456789ab") && !exact.matches("k2"));
        assert!(KeySelector::parse("*").unwrap().matches("anything"));
        assert!(matches!(KeySelector::parse("a*b"), Err(SelectorError::BadWildcard(_))));
        assert!(matches!(KeySelector::parse("a~b"), Err(SelectorError::KeyName(_))));
        assert_eq!(KeySelector::parse("team-a/*").unwrap().to_string(), "team-a/*");
    }
}
