//! Cryptographic core of VSSM: algorithm parsing, key material and the
//! symmetric, asymmetric and MAC operations behind the crypto endpoints.
//!
//! Everything here is synchronous and free of I/O so that the HTTP layer can
//! call it from any thread; all key types are `Send + Sync`.
//!
//! One module per key type owns parsing, generation and the operations of
//! that type: [`rsa`], [`ec`], [`ed25519`], [`symmetric`], [`mac`].
//! [`keys::AsymmetricKey`] holds the key of one type and [`asymmetric`]
//! dispatches to it once. [`selftest`] runs the start-up known-answer tests
//! and the pairwise test of every generated key.
//!
//! Which library does what, and why:
//!
//! | Algorithms | Library | Why |
//! |---|---|---|
//! | RSA 2048-8192 bits: generation, PKCS#1 v1.5 / OAEP encryption and decryption, PKCS#1 v1.5 / PSS signing (SHA-2, message or digest) and verification (SHA-1 too) | AWS-LC (`aws-lc-rs`) | constant-time and blinded; twice *ring*'s signing rate here |
//! | RSA 1024-2047 bits (legacy backups of the first VSSM), all operations; SHA1withRSA signing with any key | RustCrypto `rsa` (blinded) | aws-lc-rs refuses private keys under 2048 bits and has no SHA-1 signing encoding |
//! | ECDSA P-256, P-384, P-521: generation, signing (any SHA hash, message or digest), verification | AWS-LC | nonces from AWS-LC's seeded DRBG instead of a `getrandom` system call per signature (*ring*); key objects wiped when freed; the server's P-256 signing rate rose 5-8% over *ring*'s |
//! | Ed25519 | AWS-LC | one library for all asymmetric keys; key objects wiped when freed |
//! | HMAC-SHA-1/256/384/512, SHA digests | AWS-LC | key state wiped when freed (*ring*'s HMAC key is not) |
//! | AES-GCM | AWS-LC | about 4 times RustCrypto's rate bare; the expanded key is kept with the key ([`keys::SymmetricKey`]), so a request or batch item does not expand it again; nonces from AWS-LC's DRBG |
//! | AES ECB/CBC/CTR, DES, 3DES | RustCrypto `aes`, `des`, `ecb`, `cbc`, `ctr` (`zeroize` features) | aws-lc-rs has no DES/3DES and no raw CBC/ECB without its own padding rules; one library for the block modes keeps the exact wire behaviour |
//!
//! Zeroization: every copy of a secret is wiped when dropped. Rust-side
//! buffers are `Zeroizing` (PKCS#8 DER, seeds, plaintexts); aws-lc-rs
//! wipes its own DER buffers (`Buffer`, `Document`: `zeroize` on drop); the
//! RustCrypto key types wipe themselves (`rsa::RsaPrivateKey`, and `aes`,
//! `des`, `aes-gcm` with their `zeroize` features). AWS-LC's key objects
//! (`EVP_PKEY` holding `RSA`, `EC_KEY` or the Ed25519 key) are freed with
//! `RSA_free`/`BN_free`, `EC_KEY_free`/`ec_wrapped_scalar_free` and
//! `ed25519_free`, all of which release memory through `OPENSSL_free`,
//! which wipes every allocation with `OPENSSL_cleanse` before `free`
//! (aws-lc `crypto/mem.c`, `OPENSSL_free`; VSSM installs no custom
//! allocator hooks, which would bypass it).

pub mod algorithm;
pub mod asymmetric;
pub mod ec;
pub mod ed25519;
pub mod keys;
pub mod mac;
pub mod rsa;
pub mod selftest;
pub mod symmetric;
pub mod versioned;

#[cfg(test)]
pub(crate) mod test_util;

use std::fmt;

/// Error of any crypto operation.
///
/// Every message is safe to return to the client: none contains key
/// material or decrypted data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// The algorithm string is unknown, or the algorithm does not fit the key.
    UnsupportedAlgorithm(String),
    /// The request data does not fit the algorithm (alignment, digest length, size...).
    InvalidInput(String),
    /// Decryption, authentication or unpadding failed. Deliberately carries no
    /// detail: distinguishing causes would create a padding/format oracle.
    DecryptionFailed,
    /// Key bytes could not be used (malformed, unsupported type or size).
    InvalidKey(String),
    /// A fault of this node, not of the request (random generator failure,
    /// a library refusing a key it accepted before). The text is for the
    /// log; clients get a generic message.
    Internal(&'static str),
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::UnsupportedAlgorithm(m) => write!(f, "unsupported algorithm: {m}"),
            CryptoError::InvalidInput(m) => write!(f, "invalid input: {m}"),
            CryptoError::DecryptionFailed => f.write_str("decryption failed"),
            CryptoError::InvalidKey(m) => write!(f, "invalid key: {m}"),
            CryptoError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for CryptoError {}

/// Quotes a client-supplied string for an error message: bounded length and
/// escaped, so a hostile value cannot flood or forge log lines.
pub(crate) fn quote(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() > MAX {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}...")
    } else {
        format!("{s:?}")
    }
}

/// Fills `buf` from AWS-LC's DRBG (seeded from the operating system,
/// reseeded after a fork): for ivs and nonces, one per request, where a
/// `getrandom` system call each cost more than the AES-GCM encryption of
/// a short input.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    aws_lc_rs::rand::fill(buf).map_err(|_| CryptoError::Internal("random generator failed"))
}

/// Fills a fresh buffer with `len` bytes from the operating system CSPRNG.
pub(crate) fn random_bytes(len: usize) -> Result<Vec<u8>, CryptoError> {
    use rand_core::{OsRng, RngCore};
    let mut buf = vec![0u8; len];
    OsRng.try_fill_bytes(&mut buf).map_err(|_| CryptoError::Internal("system random generator failed"))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_messages() {
        assert_eq!(CryptoError::DecryptionFailed.to_string(), "decryption failed");
        assert_eq!(CryptoError::InvalidInput("x".into()).to_string(), "invalid input: x");
    }

    #[test]
    fn quote_bounds_and_escapes() {
        let long = "a".repeat(1000);
        assert!(quote(&long).len() < 80);
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
    }

    #[test]
    fn random_bytes_differ() {
        let a = random_bytes(32).unwrap();
        let b = random_bytes(32).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
