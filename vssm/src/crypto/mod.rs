//! Cryptographic core of VSSM: algorithm parsing, key material and the
//! symmetric, asymmetric and MAC operations behind the crypto endpoints.
//!
//! Everything here is synchronous and free of I/O so that the HTTP layer can
//! call it from any thread; all key types are `Send + Sync`.

pub mod algorithm;
pub mod asymmetric;
pub mod keys;
pub mod mac;
pub mod symmetric;

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
