//! AWS EC2 instance identity verification (the IMDS `rsa2048` signature).
//!
//! A joining node presents its identity document
//! (`/latest/dynamic/instance-identity/document`) and the base64-decoded
//! `/latest/dynamic/instance-identity/rsa2048` PKCS#7 blob. [`verify_identity`]
//! accepts it only if the blob's one signer is a certificate pinned in
//! [`TrustedSigners`] for the document's region and the RSA/SHA-256 signature
//! over the signed attributes (which bind the SHA-256 of the document) verifies.
//! Certificates inside the blob are ignored.
//!
//! Files: `ber` (BER reader), `signed_data` (PKCS#7 structure), `attributes`
//! (signed attribute checks), `signers` (trust store), `published` (compiled-in
//! AWS certificates), `document` (JSON fields), `verify` (the decision).

mod attributes;
mod ber;
mod document;
mod error;
mod oids;
mod published;
mod signed_data;
mod signers;
mod verify;

#[cfg(test)]
mod tests;

pub use document::IdentityDocument;
pub use error::IdentityError;
pub use signers::TrustedSigners;
pub use verify::verify_identity;
