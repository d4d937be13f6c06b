//! Why an instance identity was refused.

use std::fmt;

/// The reason [`verify_identity`](super::verify_identity) or
/// [`TrustedSigners::add`](super::TrustedSigners::add) refused its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityError {
    /// The PKCS#7 blob is not well-formed BER or not the expected structure.
    MalformedPkcs7(String),
    /// The outer ContentInfo is not `signedData`.
    NotSignedData,
    /// The identity document is not valid JSON with the required fields.
    MalformedDocument(String),
    /// The signer used a digest other than SHA-256 (SHA-1 and others are refused).
    UnsupportedDigest(String),
    /// The signature algorithm is not RSA PKCS#1 v1.5 with SHA-256.
    UnsupportedSignatureAlgorithm(String),
    /// The blob has no signer, or more than one.
    SignerCount(usize),
    /// The signer is identified by subject key identifier, not issuer and serial.
    UnsupportedSignerIdentifier,
    /// No trusted certificate is pinned for the document's region.
    NoCertificatePinned {
        /// The document's region.
        region: String,
    },
    /// The signer's issuer and serial match no certificate pinned for the region.
    SignerNotPinned {
        /// The document's region.
        region: String,
    },
    /// The attached content differs from the document given to verify.
    ContentMismatch,
    /// The encapsulated content type is not id-data.
    UnexpectedContentType,
    /// The signer has no signed attributes (they are required).
    MissingSignedAttributes,
    /// The contentType signed attribute is missing, repeated or not id-data.
    BadContentTypeAttribute,
    /// The messageDigest signed attribute is missing or repeated.
    MissingMessageDigest,
    /// The messageDigest signed attribute is not SHA-256 of the document.
    MessageDigestMismatch,
    /// The CMSAlgorithmProtection attribute contradicts the algorithms used.
    AlgorithmProtectionMismatch,
    /// The RSA signature does not verify with the pinned certificate's key.
    SignatureInvalid,
    /// A certificate given to [`TrustedSigners`](super::TrustedSigners) is unusable.
    InvalidCertificate(String),
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedPkcs7(why) => write!(f, "malformed PKCS#7: {why}"),
            Self::NotSignedData => f.write_str("malformed PKCS#7: content type is not signedData"),
            Self::MalformedDocument(why) => write!(f, "malformed identity document: {why}"),
            Self::UnsupportedDigest(oid) => write!(f, "unsupported digest algorithm {oid} (only SHA-256 is accepted)"),
            Self::UnsupportedSignatureAlgorithm(oid) => {
                write!(f, "unsupported signature algorithm {oid} (only RSA PKCS#1 v1.5 with SHA-256 is accepted)")
            }
            Self::SignerCount(n) => write!(f, "expected exactly one signer, found {n}"),
            Self::UnsupportedSignerIdentifier => f.write_str("signer is not identified by issuer and serial number"),
            Self::NoCertificatePinned { region } => write!(f, "no certificate pinned for region {region}"),
            Self::SignerNotPinned { region } => {
                write!(f, "signer (issuer and serial) does not match the certificate pinned for region {region}")
            }
            Self::ContentMismatch => f.write_str("document is not the signed content"),
            Self::UnexpectedContentType => f.write_str("encapsulated content type is not id-data"),
            Self::MissingSignedAttributes => f.write_str("signed attributes are missing"),
            Self::BadContentTypeAttribute => {
                f.write_str("contentType signed attribute is missing, repeated or not id-data")
            }
            Self::MissingMessageDigest => f.write_str("messageDigest signed attribute is missing or repeated"),
            Self::MessageDigestMismatch => f.write_str("messageDigest does not match the document"),
            Self::AlgorithmProtectionMismatch => {
                f.write_str("CMSAlgorithmProtection attribute does not match the algorithms used")
            }
            Self::SignatureInvalid => f.write_str("signature does not verify"),
            Self::InvalidCertificate(why) => write!(f, "invalid trusted certificate: {why}"),
        }
    }
}

impl std::error::Error for IdentityError {}

impl From<super::ber::BerError> for IdentityError {
    fn from(e: super::ber::BerError) -> Self {
        Self::MalformedPkcs7(e.0.to_string())
    }
}
