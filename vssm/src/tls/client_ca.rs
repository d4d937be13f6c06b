//! Client-certificate verifier for the client API port (8080, mutual TLS).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DistinguishedName};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{
    Oid, OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE,
    OID_X509_EXT_NAME_CONSTRAINTS, OID_X509_EXT_SUBJECT_ALT_NAME,
};
use x509_parser::x509::X509Version;

use super::cert::{
    oid_name, other_cert_error, parse_certificate, public_key_info, verify_cert_signature, CertProblem, PublicKeyInfo,
};
use super::handshake::handshake_signature_methods;
use super::TlsError;

/// Extensions we understand and therefore may appear marked critical.
const HANDLED_CRITICAL: &[&Oid<'static>] = &[
    &OID_X509_EXT_KEY_USAGE,
    &OID_X509_EXT_EXTENDED_KEY_USAGE,
    &OID_X509_EXT_BASIC_CONSTRAINTS,
    &OID_X509_EXT_SUBJECT_ALT_NAME,
];

/// A trusted client CA, pre-parsed.
#[derive(Debug)]
struct TrustedCa {
    subject: Vec<u8>,
    key: PublicKeyInfo,
    not_before: i64,
    not_after: i64,
}

/// Client-certificate verifier for port 8080 (mutual TLS, client auth mandatory).
///
/// Policy (deliberately simple: no chain building):
/// * the leaf must be signed **directly** by one of the configured CA certificates:
///   its issuer name equals the CA subject (byte-wise, as Go does) **and** the
///   signature verifies with the CA's public key; intermediates sent by the client
///   are ignored;
/// * the current time must be within the validity of the leaf and of that CA;
/// * the leaf's signature algorithm must be on the allow-list: RSA PKCS#1 v1.5 and
///   RSA-PSS with SHA-256/384/512, ECDSA P-256/P-384 with SHA-256/384, Ed25519
///   (SHA-1, MD5 and anything else refused); RSA keys must be 2048..8192 bits;
/// * X.509 v1 leaves (no extensions) are accepted; a v3 leaf must not be a CA
///   (basicConstraints CA=true), its KeyUsage (if present) must allow
///   digitalSignature, its ExtendedKeyUsage (if present) must allow clientAuth
///   (or anyExtendedKeyUsage), and it must not carry unknown critical extensions;
/// * a v3 CA must have basicConstraints CA=true, keyCertSign in its KeyUsage (if
///   present), clientAuth in its ExtendedKeyUsage (if present) and no
///   nameConstraints; a v1 CA without extensions is accepted;
/// * handshake signatures are verified with AWS-LC against the leaf's public key.
#[derive(Debug)]
pub struct ClientCaVerifier {
    cas: Vec<TrustedCa>,
    hints: Vec<DistinguishedName>,
}

impl ClientCaVerifier {
    /// Builds the verifier from the configured CA certificates (`clientTrustStore`).
    ///
    /// Errors name the offending entry, e.g. `clientTrustStore[1]: not a valid X.509 certificate`.
    /// An expired CA is accepted here (handshakes will fail while it is expired).
    pub fn new(trust_store: &[CertificateDer<'static>]) -> Result<Arc<Self>, TlsError> {
        if trust_store.is_empty() {
            return Err(TlsError::certificate("clientTrustStore", "no CA certificate configured"));
        }
        let mut cas = Vec::with_capacity(trust_store.len());
        let mut hints: Vec<DistinguishedName> = Vec::new();
        for (i, der) in trust_store.iter().enumerate() {
            let ctx = format!("clientTrustStore[{i}]");
            let ca = parse_certificate(der.as_ref()).map_err(|r| TlsError::certificate(&ctx, r))?;
            check_ca(&ca).map_err(|r| TlsError::certificate(&ctx, r))?;
            let key = public_key_info(&ca.tbs_certificate.subject_pki).map_err(|r| TlsError::certificate(&ctx, r))?;
            let subject = ca.tbs_certificate.subject.as_raw().to_vec();
            if !hints.iter().any(|h| h.as_ref() == subject.as_slice()) {
                hints.push(DistinguishedName::from(subject.clone()));
            }
            cas.push(TrustedCa {
                subject,
                key,
                not_before: ca.validity().not_before.timestamp(),
                not_after: ca.validity().not_after.timestamp(),
            });
        }
        Ok(Arc::new(ClientCaVerifier { cas, hints }))
    }
}

/// CA certificate policy (see [`ClientCaVerifier`]).
fn check_ca(ca: &X509Certificate<'_>) -> Result<(), CertProblem> {
    let tbs = &ca.tbs_certificate;
    match tbs.version {
        X509Version::V1 if tbs.extensions().is_empty() => return Ok(()),
        X509Version::V1 => return Err(CertProblem::V1WithExtensions),
        X509Version::V3 => {}
        v => return Err(CertProblem::Version(v.0 + 1)),
    }
    tbs.extensions_map().map_err(|_| CertProblem::DuplicateExtensions)?;
    check_critical(ca)?;
    match tbs.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => {}
        Ok(_) => return Err(CertProblem::NotCa),
        Err(_) => return Err(CertProblem::MalformedBasicConstraints),
    }
    match tbs.key_usage() {
        Ok(Some(ku)) if !ku.value.key_cert_sign() => return Err(CertProblem::NoKeyCertSign),
        Ok(_) => {}
        Err(_) => return Err(CertProblem::MalformedKeyUsage),
    }
    match tbs.extended_key_usage() {
        Ok(Some(eku)) if !(eku.value.client_auth || eku.value.any) => return Err(CertProblem::NoClientAuth),
        Ok(_) => {}
        Err(_) => return Err(CertProblem::MalformedExtendedKeyUsage),
    }
    if tbs.iter_extensions().any(|e| e.oid == OID_X509_EXT_NAME_CONSTRAINTS) {
        return Err(CertProblem::NameConstraints);
    }
    Ok(())
}

fn check_critical(cert: &X509Certificate<'_>) -> Result<(), CertProblem> {
    for ext in cert.tbs_certificate.iter_extensions() {
        if ext.critical && !HANDLED_CRITICAL.iter().any(|o| **o == ext.oid) {
            return Err(CertProblem::CriticalExtension(oid_name(&ext.oid)));
        }
    }
    Ok(())
}

/// Leaf (client certificate) policy, excluding issuer and time (see [`ClientCaVerifier`]).
fn check_leaf(leaf: &X509Certificate<'_>) -> Result<(), rustls::Error> {
    let tbs = &leaf.tbs_certificate;
    match tbs.version {
        X509Version::V1 if tbs.extensions().is_empty() => return Ok(()),
        X509Version::V1 => return Err(other_cert_error("X.509 v1 client certificate with extensions")),
        X509Version::V3 => {}
        v => return Err(other_cert_error(CertProblem::Version(v.0 + 1))),
    }
    let bad = || rustls::Error::InvalidCertificate(CertificateError::BadEncoding);
    tbs.extensions_map().map_err(|_| bad())?;
    if check_critical(leaf).is_err() {
        return Err(rustls::Error::InvalidCertificate(CertificateError::UnhandledCriticalExtension));
    }
    if tbs.basic_constraints().map_err(|_| bad())?.is_some_and(|bc| bc.value.ca) {
        return Err(other_cert_error("a CA certificate cannot be used as a client certificate"));
    }
    if let Some(ku) = tbs.key_usage().map_err(|_| bad())? {
        if !ku.value.digital_signature() {
            return Err(rustls::Error::InvalidCertificate(CertificateError::InvalidPurpose));
        }
    }
    if let Some(eku) = tbs.extended_key_usage().map_err(|_| bad())? {
        if !(eku.value.client_auth || eku.value.any) {
            return Err(rustls::Error::InvalidCertificate(CertificateError::InvalidPurpose));
        }
    }
    Ok(())
}

/// Clock skew tolerated on `notBefore`: a certificate made seconds ago on a
/// machine whose clock is slightly ahead (a fresh VM reads a whole-second
/// RTC) must not be refused as not yet valid. Expiry gets no tolerance.
const NOT_BEFORE_SKEW_SECONDS: i64 = 300;

/// Checks `not_before - skew <= now <= not_after`.
fn check_time(not_before: i64, not_after: i64, now: i64) -> Result<(), rustls::Error> {
    if now + NOT_BEFORE_SKEW_SECONDS < not_before {
        Err(rustls::Error::InvalidCertificate(CertificateError::NotValidYet))
    } else if now > not_after {
        Err(rustls::Error::InvalidCertificate(CertificateError::Expired))
    } else {
        Ok(())
    }
}

impl ClientCertVerifier for ClientCaVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let leaf = parse_certificate(end_entity.as_ref())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        check_leaf(&leaf)?;
        // The leaf's own key must be usable for the handshake signature.
        public_key_info(&leaf.tbs_certificate.subject_pki).map_err(other_cert_error)?;

        let issuer = leaf.tbs_certificate.issuer.as_raw();
        let mut error = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        for ca in self.cas.iter().filter(|ca| ca.subject.as_slice() == issuer) {
            let validity = leaf.validity();
            let result = verify_cert_signature(&leaf, &ca.key)
                .and_then(|()| check_time(validity.not_before.timestamp(), validity.not_after.timestamp(), now))
                .and_then(|()| check_time(ca.not_before, ca.not_after, now));
            match result {
                Ok(()) => return Ok(ClientCertVerified::assertion()),
                Err(e) => error = e,
            }
        }
        Err(error)
    }

    handshake_signature_methods!();
}

#[cfg(test)]
mod time_tests {
    use super::*;

    #[test]
    fn not_before_tolerates_small_skew_but_expiry_does_not() {
        let (nb, na) = (1_000_000, 2_000_000);
        assert!(check_time(nb, na, nb - 10).is_ok(), "10 s early is clock skew");
        assert!(check_time(nb, na, nb - NOT_BEFORE_SKEW_SECONDS - 1).is_err());
        assert!(check_time(nb, na, na).is_ok());
        assert!(check_time(nb, na, na + 1).is_err());
    }
}
