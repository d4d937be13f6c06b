//! Who a client is: what its verified certificate says, parsed once per
//! connection (with x509-parser, like the rest of the TLS code).

use rustls::pki_types::CertificateDer;
use std::net::IpAddr;
use x509_parser::extensions::GeneralName;

/// The identity of a client that completed the mutual-TLS handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The subject as the audit log renders it (RFC 4514, most specific
    /// RDN first), `-` when empty.
    pub subject: String,
    /// Every CN attribute of the subject.
    pub common_names: Vec<String>,
    /// DNS names of the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// rfc822Name entries of the subjectAltName extension.
    pub emails: Vec<String>,
    /// URI entries of the subjectAltName extension.
    pub uris: Vec<String>,
    /// IP address entries of the subjectAltName extension.
    pub ip_addresses: Vec<IpAddr>,
    /// SHA-256 of the DER SubjectPublicKeyInfo.
    pub spki_sha256: [u8; 32],
}

impl ClientIdentity {
    /// The identity of the leaf of a verified chain; None when there is no
    /// certificate or it cannot be parsed (the TLS verifier has parsed it
    /// already, so that does not happen for a connection that got this far).
    pub fn of_peer(certificates: Option<&[CertificateDer<'_>]>) -> Option<ClientIdentity> {
        let leaf = certificates?.first()?;
        let cert = crate::tls::parse_certificate(leaf.as_ref()).ok()?;
        let subject = crate::tls::format_name(&cert.tbs_certificate.subject);
        let mut identity = ClientIdentity {
            subject: if subject.is_empty() { "-".to_string() } else { subject },
            common_names: cert
                .subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok().map(str::to_string))
                .collect(),
            ..ClientIdentity::default()
        };
        let spki = cert.tbs_certificate.subject_pki.raw;
        identity.spki_sha256.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki).as_ref());
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(n) => identity.dns_names.push(n.to_string()),
                    GeneralName::RFC822Name(n) => identity.emails.push(n.to_string()),
                    GeneralName::URI(n) => identity.uris.push(n.to_string()),
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_octets(bytes) {
                            identity.ip_addresses.push(ip);
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(identity)
    }

    /// Lowercase hex of [`ClientIdentity::spki_sha256`].
    pub fn spki_hex(&self) -> String {
        crate::wire::codec::encode_hex(&self.spki_sha256)
    }
}

fn ip_from_octets(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}
