//! X.509 parsing helpers shared by the verifiers: public-key extraction, the
//! certificate signature-algorithm allow-list and certificate signature checks.
//!
//! Everything here is deliberately independent of webpki, which refuses X.509 v1
//! certificates (the old VSSM README produces v1 client certificates).

use std::sync::Arc;

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use rustls::{CertificateError, OtherError};
use x509_parser::certificate::X509Certificate;
use x509_parser::objects::{oid2sn, oid_registry};
use x509_parser::oid_registry::{
    Oid, OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_HASH_SHA256, OID_NIST_HASH_SHA384,
    OID_NIST_HASH_SHA512, OID_PKCS1_RSAENCRYPTION, OID_PKCS1_RSASSAPSS, OID_PKCS1_SHA256WITHRSA,
    OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA, OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384,
    OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::signature_algorithm::RsaSsaPssParams;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

/// ASN.1 universal tag numbers used below.
const TAG_NULL: u32 = 5;
const TAG_OID: u32 = 6;

/// DER content of the id-mgf1 OID (1.2.840.113549.1.1.8).
const OID_MGF1_BYTES: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];

/// Minimum and maximum RSA modulus sizes accepted (the limits of AWS-LC's verification algorithms, as ring's).
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// Why a certificate (or its key or signature algorithm) is refused. OID
/// names come from the certificate: they are dotted numbers or registry
/// short names, never free text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertProblem {
    /// Valid DER followed by more bytes.
    #[error("not a valid X.509 certificate (trailing data after the certificate)")]
    TrailingData,
    /// Not DER X.509 at all.
    #[error("not a valid X.509 certificate")]
    NotX509,
    /// The public key bit string has unused bits.
    #[error("malformed public key (bit string with unused bits)")]
    UnusedBits,
    /// rsaEncryption with parameters other than NULL.
    #[error("malformed RSA public key (unexpected algorithm parameters)")]
    RsaParameters,
    /// The RSA key does not parse.
    #[error("malformed RSA public key")]
    MalformedRsa,
    /// An RSA modulus outside the verifiable range.
    #[error("RSA key size {0} bits is not supported (must be {RSA_MIN_BITS}..{RSA_MAX_BITS})")]
    RsaSize(usize),
    /// An EC key without a named curve.
    #[error("EC public key without a named curve")]
    NoNamedCurve,
    /// A curve other than P-256 and P-384.
    #[error("unsupported elliptic curve (only P-256 and P-384 are supported)")]
    Curve,
    /// An EC point that is not uncompressed on the curve's size.
    #[error("malformed EC public key (expected an uncompressed point)")]
    MalformedEc,
    /// An Ed25519 key with parameters or of the wrong length.
    #[error("malformed Ed25519 public key")]
    MalformedEd25519,
    /// A public key algorithm that is not supported.
    #[error("unsupported public key algorithm {0}")]
    KeyAlgorithm(String),
    /// PKCS#1 signature algorithm with parameters other than NULL.
    #[error("malformed RSA signature algorithm parameters")]
    RsaSignatureParameters,
    /// ECDSA or Ed25519 signature algorithm with parameters.
    #[error("unexpected parameters for signature algorithm {0}")]
    SignatureParameters(String),
    /// A signature algorithm off the allow-list.
    #[error("signature algorithm {0} is not allowed")]
    SignatureAlgorithm(String),
    /// RSASSA-PSS parameters AWS-LC's verification API cannot express (which part).
    #[error("RSASSA-PSS signature with unsupported parameters ({0})")]
    PssParameters(String),
    /// An X.509 v1 certificate carrying extensions.
    #[error("X.509 v1 certificate with extensions")]
    V1WithExtensions,
    /// Neither v1 nor v3.
    #[error("unsupported X.509 version {0}")]
    Version(u32),
    /// The same extension twice.
    #[error("duplicate extensions")]
    DuplicateExtensions,
    /// A critical extension the verifier does not handle.
    #[error("unsupported critical extension {0}")]
    CriticalExtension(String),
    /// A trust anchor without basicConstraints CA:TRUE.
    #[error("not a CA certificate (basicConstraints CA:TRUE missing)")]
    NotCa,
    /// basicConstraints does not parse.
    #[error("malformed basicConstraints")]
    MalformedBasicConstraints,
    /// A CA whose keyUsage excludes keyCertSign.
    #[error("keyUsage does not allow keyCertSign")]
    NoKeyCertSign,
    /// keyUsage does not parse.
    #[error("malformed keyUsage")]
    MalformedKeyUsage,
    /// A CA whose extendedKeyUsage excludes clientAuth.
    #[error("extendedKeyUsage does not allow clientAuth")]
    NoClientAuth,
    /// extendedKeyUsage does not parse.
    #[error("malformed extendedKeyUsage")]
    MalformedExtendedKeyUsage,
    /// nameConstraints, which the verifier does not enforce.
    #[error("nameConstraints are not supported")]
    NameConstraints,
}

/// Parses a DER certificate, refusing trailing data.
pub(crate) fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, CertProblem> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(CertProblem::TrailingData),
        Err(_) => Err(CertProblem::NotX509),
    }
}

/// The kinds of public keys we can verify signatures with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

/// A public key extracted from a SubjectPublicKeyInfo, in the form the verifier expects
/// (RSAPublicKey DER, uncompressed EC point, or raw Ed25519 key).
#[derive(Clone, Debug)]
pub(crate) struct PublicKeyInfo {
    pub kind: KeyKind,
    pub key: Vec<u8>,
}

fn params_absent_or_null(alg: &AlgorithmIdentifier<'_>) -> bool {
    match &alg.parameters {
        None => true,
        Some(any) => any.tag().0 == TAG_NULL && any.data.is_empty(),
    }
}

/// Human-readable name of an OID ("sha1WithRSAEncryption (1.2.840.113549.1.1.5)").
pub(crate) fn oid_name(oid: &Oid<'_>) -> String {
    match oid2sn(oid, oid_registry()) {
        Ok(sn) => format!("{sn} ({oid})"),
        Err(_) => oid.to_string(),
    }
}

/// Extracts a supported public key (RSA 2048..8192 bits, ECDSA P-256/P-384, Ed25519).
pub(crate) fn public_key_info(spki: &SubjectPublicKeyInfo<'_>) -> Result<PublicKeyInfo, CertProblem> {
    if spki.subject_public_key.unused_bits != 0 {
        return Err(CertProblem::UnusedBits);
    }
    let key = spki.subject_public_key.data.to_vec();
    let alg = &spki.algorithm;
    if alg.algorithm == OID_PKCS1_RSAENCRYPTION {
        if !params_absent_or_null(alg) {
            return Err(CertProblem::RsaParameters);
        }
        let bits = match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => rsa.key_size(),
            _ => return Err(CertProblem::MalformedRsa),
        };
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(CertProblem::RsaSize(bits));
        }
        Ok(PublicKeyInfo { kind: KeyKind::Rsa, key })
    } else if alg.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = match &alg.parameters {
            Some(any) if any.tag().0 == TAG_OID => any.data,
            _ => return Err(CertProblem::NoNamedCurve),
        };
        let (kind, len) = if curve == OID_EC_P256.as_bytes() {
            (KeyKind::EcP256, 65)
        } else if curve == OID_NIST_EC_P384.as_bytes() {
            (KeyKind::EcP384, 97)
        } else {
            return Err(CertProblem::Curve);
        };
        if key.len() != len || key[0] != 0x04 {
            return Err(CertProblem::MalformedEc);
        }
        Ok(PublicKeyInfo { kind, key })
    } else if alg.algorithm == OID_SIG_ED25519 {
        if alg.parameters.is_some() || key.len() != 32 {
            return Err(CertProblem::MalformedEd25519);
        }
        Ok(PublicKeyInfo { kind: KeyKind::Ed25519, key })
    } else {
        Err(CertProblem::KeyAlgorithm(oid_name(&alg.algorithm)))
    }
}

/// Hash functions allowed in certificate signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_oid(oid: &Oid<'_>) -> Option<Hash> {
        if *oid == OID_NIST_HASH_SHA256 {
            Some(Hash::Sha256)
        } else if *oid == OID_NIST_HASH_SHA384 {
            Some(Hash::Sha384)
        } else if *oid == OID_NIST_HASH_SHA512 {
            Some(Hash::Sha512)
        } else {
            None
        }
    }

    fn output_len(self) -> u32 {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }
}

/// The certificate signature algorithms on the allow-list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CertSigAlg {
    RsaPkcs1(Hash),
    RsaPss(Hash),
    /// ECDSA with SHA-256 or SHA-384 only.
    Ecdsa(Hash),
    Ed25519,
}

/// Maps a certificate's signatureAlgorithm to the allow-list, refusing anything
/// else (SHA-1, MD5, DSA, unusual PSS parameters, ...).
pub(crate) fn cert_signature_algorithm(alg: &AlgorithmIdentifier<'_>) -> Result<CertSigAlg, CertProblem> {
    let oid = &alg.algorithm;
    let refused = || CertProblem::SignatureAlgorithm(oid_name(oid));
    let pkcs1 = |h| {
        if params_absent_or_null(alg) {
            Ok(CertSigAlg::RsaPkcs1(h))
        } else {
            Err(CertProblem::RsaSignatureParameters)
        }
    };
    let no_params = |a| {
        if alg.parameters.is_none() {
            Ok(a)
        } else {
            Err(CertProblem::SignatureParameters(oid_name(oid)))
        }
    };
    if *oid == OID_PKCS1_SHA256WITHRSA {
        pkcs1(Hash::Sha256)
    } else if *oid == OID_PKCS1_SHA384WITHRSA {
        pkcs1(Hash::Sha384)
    } else if *oid == OID_PKCS1_SHA512WITHRSA {
        pkcs1(Hash::Sha512)
    } else if *oid == OID_SIG_ECDSA_WITH_SHA256 {
        no_params(CertSigAlg::Ecdsa(Hash::Sha256))
    } else if *oid == OID_SIG_ECDSA_WITH_SHA384 {
        no_params(CertSigAlg::Ecdsa(Hash::Sha384))
    } else if *oid == OID_SIG_ED25519 {
        no_params(CertSigAlg::Ed25519)
    } else if *oid == OID_PKCS1_RSASSAPSS {
        pss_params(alg).map(CertSigAlg::RsaPss)
    } else {
        Err(refused())
    }
}

/// Accepts RSASSA-PSS parameters only in the form the verification API can express: SHA-256/384/512,
/// MGF1 with the same hash, salt length equal to the hash length, trailer field 1.
fn pss_params(alg: &AlgorithmIdentifier<'_>) -> Result<Hash, CertProblem> {
    let bad = |what: &str| CertProblem::PssParameters(what.to_string());
    let any = alg.parameters.as_ref().ok_or_else(|| bad("missing"))?;
    let params = RsaSsaPssParams::try_from(any).map_err(|_| bad("malformed"))?;
    let hash_oid = params.hash_algorithm_oid();
    let hash = Hash::from_oid(hash_oid).ok_or_else(|| bad(&format!("hash {}", oid_name(hash_oid))))?;
    if let Some(h) = params.hash_algorithm() {
        if !params_absent_or_null(h) {
            return Err(bad("hash parameters"));
        }
    }
    let mgf = params.mask_gen_algorithm().map_err(|_| bad("mask generation function"))?;
    if mgf.mgf.as_bytes() != OID_MGF1_BYTES || mgf.hash != *hash_oid {
        return Err(bad("mask generation function"));
    }
    if params.salt_length() != hash.output_len() {
        return Err(bad("salt length"));
    }
    if params.trailer_field() != 1 {
        return Err(bad("trailer field"));
    }
    Ok(hash)
}

/// The AWS-LC algorithm verifying a certificate signature `alg` made with a key of kind `key`.
fn cert_verification_algorithm(alg: CertSigAlg, key: KeyKind) -> Option<&'static dyn VerificationAlgorithm> {
    use CertSigAlg as A;
    use Hash as H;
    use KeyKind as K;
    Some(match (alg, key) {
        (A::RsaPkcs1(H::Sha256), K::Rsa) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (A::RsaPkcs1(H::Sha384), K::Rsa) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (A::RsaPkcs1(H::Sha512), K::Rsa) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (A::RsaPss(H::Sha256), K::Rsa) => &signature::RSA_PSS_2048_8192_SHA256,
        (A::RsaPss(H::Sha384), K::Rsa) => &signature::RSA_PSS_2048_8192_SHA384,
        (A::RsaPss(H::Sha512), K::Rsa) => &signature::RSA_PSS_2048_8192_SHA512,
        (A::Ecdsa(H::Sha256), K::EcP256) => &signature::ECDSA_P256_SHA256_ASN1,
        (A::Ecdsa(H::Sha384), K::EcP256) => &signature::ECDSA_P256_SHA384_ASN1,
        (A::Ecdsa(H::Sha256), K::EcP384) => &signature::ECDSA_P384_SHA256_ASN1,
        (A::Ecdsa(H::Sha384), K::EcP384) => &signature::ECDSA_P384_SHA384_ASN1,
        (A::Ed25519, K::Ed25519) => &signature::ED25519,
        _ => return None,
    })
}

/// Builds a rustls certificate error carrying a descriptive message.
pub(crate) fn other_cert_error(msg: impl std::fmt::Display) -> rustls::Error {
    #[derive(Debug)]
    struct Msg(String);
    impl std::fmt::Display for Msg {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for Msg {}
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Msg(msg.to_string())))))
}

/// Checks that `cert` was signed by the holder of `issuer` using an allowed algorithm.
pub(crate) fn verify_cert_signature(cert: &X509Certificate<'_>, issuer: &PublicKeyInfo) -> Result<(), rustls::Error> {
    let outer = &cert.signature_algorithm;
    let inner = &cert.tbs_certificate.signature;
    let same_params = match (&outer.parameters, &inner.parameters) {
        (None, None) => true,
        (Some(a), Some(b)) => a.tag() == b.tag() && a.data == b.data,
        _ => false,
    };
    if outer.algorithm != inner.algorithm || !same_params {
        return Err(other_cert_error("certificate signature algorithm fields disagree"));
    }
    let alg = cert_signature_algorithm(outer).map_err(other_cert_error)?;
    let verification_alg = cert_verification_algorithm(alg, issuer.kind).ok_or_else(|| {
        other_cert_error(format!(
            "signature algorithm {} does not match the issuer's key type",
            oid_name(&outer.algorithm)
        ))
    })?;
    if cert.signature_value.unused_bits != 0 {
        return Err(rustls::Error::InvalidCertificate(CertificateError::BadSignature));
    }
    UnparsedPublicKey::new(verification_alg, &issuer.key)
        .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))
}
