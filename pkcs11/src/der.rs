//! The small DER pieces PKCS#11 needs: ECDSA signatures DER ↔ raw r‖s,
//! DigestInfo recognition, EC parameters and points, RSA public values.

use der::asn1::{ObjectIdentifier, OctetString, UintRef};
use der::{Decode, Encode, Sequence};
use spki::SubjectPublicKeyInfoRef;

/// OID of id-ecPublicKey.
pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// OID of P-256.
pub const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// OID of P-384.
pub const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// OID of P-521.
pub const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
/// OID of Ed25519.
pub const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// OID of rsaEncryption.
pub const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// DER encoding of an OID (for `CKA_EC_PARAMS`).
pub fn oid_der(oid: &ObjectIdentifier) -> Vec<u8> {
    oid.to_der().unwrap_or_default()
}

/// The curve size in bits named by `CKA_EC_PARAMS` (an OID; Ed25519 also as
/// the printable string "edwards25519").
pub fn curve_of_params(params: &[u8]) -> Option<(ObjectIdentifier, u32)> {
    if let Ok(s) = der::asn1::PrintableStringRef::from_der(params) {
        return (s.as_str() == "edwards25519" || s.as_str() == "ed25519").then_some((ED25519, 256));
    }
    let oid = ObjectIdentifier::from_der(params).ok()?;
    match oid {
        o if o == P256 => Some((o, 256)),
        o if o == P384 => Some((o, 384)),
        o if o == P521 => Some((o, 521)),
        o if o == ED25519 => Some((o, 256)),
        _ => None,
    }
}

/// DER OCTET STRING around `bytes` (for `CKA_EC_POINT`).
pub fn octet_string(bytes: &[u8]) -> Vec<u8> {
    OctetString::new(bytes).and_then(|o| o.to_der()).unwrap_or_default()
}

/// Public values of a DER SubjectPublicKeyInfo.
#[derive(Debug, Clone, Default)]
pub struct PublicValues {
    /// RSA modulus (big-endian, no leading zero).
    pub modulus: Vec<u8>,
    /// RSA public exponent.
    pub exponent: Vec<u8>,
    /// EC curve OID DER (`CKA_EC_PARAMS`).
    pub ec_params: Vec<u8>,
    /// The raw point (EC uncompressed point, Ed25519 32 bytes).
    pub point: Vec<u8>,
}

/// Parses the public values out of an SPKI.
pub fn public_values(spki_der: &[u8]) -> Option<PublicValues> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der).ok()?;
    let bits = spki.subject_public_key.as_bytes()?;
    let oid = spki.algorithm.oid;
    let mut values = PublicValues::default();
    if oid == RSA {
        let key = pkcs1::RsaPublicKey::from_der(bits).ok()?;
        values.modulus = key.modulus.as_bytes().to_vec();
        values.exponent = key.public_exponent.as_bytes().to_vec();
    } else if oid == EC_PUBLIC_KEY {
        let curve: ObjectIdentifier = spki.algorithm.parameters?.decode_as().ok()?;
        values.ec_params = oid_der(&curve);
        values.point = bits.to_vec();
    } else if oid == ED25519 {
        values.ec_params = oid_der(&ED25519);
        values.point = bits.to_vec();
    } else {
        return None;
    }
    Some(values)
}

#[derive(Sequence)]
struct EcdsaSig<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// DER ECDSA signature → raw r‖s, each padded to `field_bytes`.
pub fn ecdsa_der_to_raw(sig: &[u8], field_bytes: usize) -> Option<Vec<u8>> {
    let sig = EcdsaSig::from_der(sig).ok()?;
    let (r, s) = (sig.r.as_bytes(), sig.s.as_bytes());
    if r.len() > field_bytes || s.len() > field_bytes {
        return None;
    }
    let mut out = vec![0u8; 2 * field_bytes];
    out[field_bytes - r.len()..field_bytes].copy_from_slice(r);
    out[2 * field_bytes - s.len()..].copy_from_slice(s);
    Some(out)
}

/// Raw r‖s → DER ECDSA signature; `None` when the length is odd or a half is zero.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let r = UintRef::new(r).ok()?;
    let s = UintRef::new(s).ok()?;
    EcdsaSig { r, s }.to_der().ok()
}

/// The field size in bytes of an EC curve of `bits`.
pub fn field_bytes(bits: u32) -> usize {
    (bits as usize).div_ceil(8)
}

/// Hash names recognized in a DigestInfo, with their DER prefix.
const DIGEST_INFO_PREFIXES: [(&str, &[u8]); 4] = [
    ("SHA1", &[0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14]),
    (
        "SHA256",
        &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
            0x20,
        ],
    ),
    (
        "SHA384",
        &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04,
            0x30,
        ],
    ),
    (
        "SHA512",
        &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04,
            0x40,
        ],
    ),
];

/// A DigestInfo (SHA-1/256/384/512, with the NULL parameters) → (hash name, digest).
pub fn parse_digest_info(data: &[u8]) -> Option<(&'static str, &[u8])> {
    DIGEST_INFO_PREFIXES.iter().find_map(|(name, prefix)| {
        let digest = data.strip_prefix(*prefix)?;
        (digest.len() == usize::from(prefix[prefix.len() - 1])).then_some((*name, digest))
    })
}

/// The hash name for a digest of `len` bytes (CKM_ECDSA input).
pub fn hash_for_digest_len(len: usize) -> Option<&'static str> {
    match len {
        20 => Some("SHA1"),
        32 => Some("SHA256"),
        48 => Some("SHA384"),
        64 => Some("SHA512"),
        _ => None,
    }
}

/// The SubjectPublicKeyInfo DER of an X.509 certificate of any version.
/// X.509 v1 certificates (what `openssl x509 -req` makes, and VSSM's README
/// recipe for client certificates) have no `[0]` version field; webpki, and
/// so rustls' own key/certificate match check, refuses them.
pub fn certificate_spki(cert: &[u8]) -> Option<Vec<u8>> {
    use der::asn1::AnyRef;
    use der::{Reader, SliceReader, Tag, TagNumber, Tagged};
    let certificate = AnyRef::from_der(cert).ok()?;
    let mut fields = SliceReader::new(certificate.value()).ok()?;
    let tbs: AnyRef<'_> = fields.decode().ok()?;
    let mut tbs = SliceReader::new(tbs.value()).ok()?;
    let mut field: AnyRef<'_> = tbs.decode().ok()?;
    if field.tag() == (Tag::ContextSpecific { constructed: true, number: TagNumber::N0 }) {
        field = tbs.decode().ok()?; // the serial number after a version
    }
    // signature algorithm, issuer, validity, subject, then the SPKI
    for _ in 0..4 {
        let _: AnyRef<'_> = tbs.decode().ok()?;
    }
    let spki: AnyRef<'_> = tbs.decode().ok()?;
    (field.tag() == Tag::Integer && spki.tag() == Tag::Sequence).then(|| spki.to_der().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_round_trip_pads_and_strips() {
        let raw: Vec<u8> = (0..64).map(|i| if i < 33 { 0 } else { i as u8 }).collect();
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(ecdsa_der_to_raw(&der, 32).unwrap(), raw);
        let high = [0x80u8; 64];
        let der = ecdsa_raw_to_der(&high).unwrap();
        assert_eq!(ecdsa_der_to_raw(&der, 32).unwrap(), high.to_vec());
        assert!(ecdsa_der_to_raw(&der, 16).is_none());
        assert!(ecdsa_der_to_raw(b"\x30\x00", 32).is_none());
        assert!(ecdsa_raw_to_der(&[1, 2, 3]).is_none());
    }

    #[test]
    fn digest_info_and_params() {
        let mut di = DIGEST_INFO_PREFIXES[1].1.to_vec();
        di.extend_from_slice(&[7u8; 32]);
        assert_eq!(parse_digest_info(&di), Some(("SHA256", &[7u8; 32][..])));
        di.push(0);
        assert_eq!(parse_digest_info(&di), None);
        assert_eq!(curve_of_params(&oid_der(&P384)).map(|c| c.1), Some(384));
        assert_eq!(
            curve_of_params(&[0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9'])
                .map(|c| c.0),
            Some(ED25519)
        );
        assert_eq!(octet_string(&[1, 2]), vec![4, 2, 1, 2]);
    }

    #[test]
    fn spki_of_an_x509_v1_certificate() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).unwrap();
        // `openssl x509 -req -signkey`: X.509 v1, no version field.
        let cert = b64("MIIBFTCBuwIULOIFrgiySZEJusC+egCdsgeTRP0wCgYIKoZIzj0EAwIwDTELMAkGA1UEAwwCdjEwHhcNMjYxMjAxMDUzOTI1WhcNMzYxMTI4MDUzOTI1WjANMQswCQYDVQQDDAJ2MTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABAJoNHYOjk+fmG1pwylaV46nuazWqyEc4VXOkQPhWqgiyVNRWCgs7CykTPR4NjZE6s5Bg2A5zIjSfT3nvV1O2t0wCgYIKoZIzj0EAwIDSQAwRgIhALYdETyw3hr43qxQXNUZ4GhO3XtnEmR7q2DHP4DqodpzAiEA4ubyU/XY1Ig5bcO3kFSipjLuNbntbL2fO8gtvf/SltA=");
        let spki = b64("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAmg0dg6OT5+YbWnDKVpXjqe5rNarIRzhVc6RA+FaqCLJU1FYKCzsLKRM9Hg2NkTqzkGDYDnMiNJ9Pee9XU7a3Q==");
        assert_eq!(certificate_spki(&cert).unwrap(), spki);
        assert!(certificate_spki(&spki).is_none());
        assert!(certificate_spki(&cert[..40]).is_none());
    }
}
