//! Verification of TLS 1.2 / 1.3 handshake signatures (CertificateVerify,
//! ServerKeyExchange) with AWS-LC, against the SubjectPublicKeyInfo of the peer's
//! end-entity certificate.
//!
//! `rustls::crypto::verify_tls1{2,3}_signature` cannot be used: they parse the
//! certificate with webpki, which refuses X.509 v1 certificates.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, DigitallySignedStruct, PeerMisbehaved, SignatureScheme};

use super::cert::{other_cert_error, parse_certificate, public_key_info, KeyKind};

/// Handshake signature schemes we accept, most preferred first.
pub(crate) const SUPPORTED_SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ED25519,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PKCS1_SHA512,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA256,
];

/// Maps a TLS signature scheme and the peer's key type to an AWS-LC verification algorithm.
///
/// In TLS 1.3 the ECDSA schemes are bound to their curve and RSA-PKCS#1 is not
/// allowed; in TLS 1.2 the ECDSA schemes only name the hash.
fn verification_algorithm(
    scheme: SignatureScheme,
    key: KeyKind,
    tls13: bool,
) -> Option<&'static dyn VerificationAlgorithm> {
    use KeyKind as K;
    use SignatureScheme as S;
    Some(match (scheme, key) {
        (S::RSA_PKCS1_SHA256, K::Rsa) if !tls13 => &signature::RSA_PKCS1_2048_8192_SHA256,
        (S::RSA_PKCS1_SHA384, K::Rsa) if !tls13 => &signature::RSA_PKCS1_2048_8192_SHA384,
        (S::RSA_PKCS1_SHA512, K::Rsa) if !tls13 => &signature::RSA_PKCS1_2048_8192_SHA512,
        (S::RSA_PSS_SHA256, K::Rsa) => &signature::RSA_PSS_2048_8192_SHA256,
        (S::RSA_PSS_SHA384, K::Rsa) => &signature::RSA_PSS_2048_8192_SHA384,
        (S::RSA_PSS_SHA512, K::Rsa) => &signature::RSA_PSS_2048_8192_SHA512,
        (S::ECDSA_NISTP256_SHA256, K::EcP256) => &signature::ECDSA_P256_SHA256_ASN1,
        (S::ECDSA_NISTP384_SHA384, K::EcP384) => &signature::ECDSA_P384_SHA384_ASN1,
        (S::ECDSA_NISTP256_SHA256, K::EcP384) if !tls13 => &signature::ECDSA_P384_SHA256_ASN1,
        (S::ECDSA_NISTP384_SHA384, K::EcP256) if !tls13 => &signature::ECDSA_P256_SHA384_ASN1,
        (S::ED25519, K::Ed25519) => &signature::ED25519,
        _ => return None,
    })
}

/// Verifies a handshake signature `dss` over `message` with the public key of
/// the end-entity certificate `cert` (which may be X.509 v1).
pub(crate) fn verify_handshake_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    tls13: bool,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if !SUPPORTED_SCHEMES.contains(&dss.scheme) {
        return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
    }
    let parsed = parse_certificate(cert.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let key = public_key_info(&parsed.tbs_certificate.subject_pki).map_err(other_cert_error)?;
    let alg = verification_algorithm(dss.scheme, key.kind, tls13).ok_or_else(|| {
        other_cert_error(format!(
            "handshake signature scheme {:?} does not match the certificate's {:?} key",
            dss.scheme, key.kind
        ))
    })?;
    UnparsedPublicKey::new(alg, &key.key)
        .verify(message, dss.signature())
        .map(|_| HandshakeSignatureValid::assertion())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))
}

/// The handshake-signature methods of our verifiers: `ServerCertVerifier` and
/// `ClientCertVerifier` declare them separately and give no default, so a macro
/// (expanded inside each `impl`) is the only way to write them once.
macro_rules! handshake_signature_methods {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            $crate::tls::handshake::verify_handshake_signature(message, cert, dss, false)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            $crate::tls::handshake::verify_handshake_signature(message, cert, dss, true)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            $crate::tls::handshake::SUPPORTED_SCHEMES.to_vec()
        }
    };
}
pub(crate) use handshake_signature_methods;
