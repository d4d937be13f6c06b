//! Rendering of certificate subjects for the audit log.

use rustls::pki_types::CertificateDer;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

use super::cert::parse_certificate;

/// `"CN=alice, O=Example"` style subject of the leaf certificate a client
/// presented, for the audit log: RDNs most-specific first (RFC 4514 order, like
/// Go's `pkix.Name.String`), joined with `", "`, multi-valued RDNs joined with `+`,
/// special and control characters backslash-escaped so a subject cannot forge log
/// structure. Returns `"-"` when no certificate was presented (or the subject is
/// empty) and `"<unparsable certificate>"` if the leaf cannot be parsed.
pub fn peer_subject(certs: Option<&[CertificateDer<'_>]>) -> String {
    let Some(leaf) = certs.and_then(|c| c.first()) else {
        return "-".to_string();
    };
    match parse_certificate(leaf.as_ref()) {
        Ok(cert) => {
            let s = format_name(&cert.tbs_certificate.subject);
            if s.is_empty() {
                "-".to_string()
            } else {
                s
            }
        }
        Err(_) => "<unparsable certificate>".to_string(),
    }
}

/// The RFC 4514 rendering of `name` that [`peer_subject`] gives.
pub(crate) fn format_name(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> =
        name.iter_rdn().map(|rdn| rdn.iter().map(format_attribute).collect::<Vec<_>>().join("+")).collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(", ")
}

fn attribute_name(attr: &AttributeTypeAndValue<'_>) -> String {
    let oid = attr.attr_type().to_id_string();
    let short = match oid.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.17" => "POSTALCODE",
        "2.5.4.42" => "GN",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return oid,
    };
    short.to_string()
}

fn format_attribute(attr: &AttributeTypeAndValue<'_>) -> String {
    let value = attr.attr_value();
    let data = value.data;
    let text: Option<String> = match value.tag().0 {
        // UTF8String, NumericString, PrintableString, IA5String, VisibleString
        12 | 18 | 19 | 22 | 26 => std::str::from_utf8(data).ok().map(str::to_string),
        // TeletexString: treated as Latin-1
        20 => Some(data.iter().map(|&b| b as char).collect()),
        // BMPString: UTF-16BE
        30 if data.len() % 2 == 0 => {
            let units: Vec<u16> = data.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    };
    let value = match text {
        Some(t) => escape(&t),
        None => {
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            format!("#{hex}")
        }
    };
    format!("{}={}", attribute_name(attr), value)
}

/// RFC 4514 escaping, plus hex escapes for control characters.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let n = s.chars().count();
    for (i, c) in s.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i + 1 == n => out.push_str("\\ "),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}
