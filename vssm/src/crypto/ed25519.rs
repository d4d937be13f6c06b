//! Ed25519 keys (RFC 8032, pure; RFC 8410 encodings): import, generation,
//! signing and verification in AWS-LC.

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, ParsedPublicKey, ED25519};
use zeroize::Zeroizing;

use super::{random_bytes, CryptoError};

/// DER prefix of the PKCS#8 v1 encoding (RFC 8410), followed by the 32-byte seed.
const PKCS8_V1_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
/// DER prefix of the SubjectPublicKeyInfo, followed by the 32-byte public key.
const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
/// Seed (private key) length.
pub(crate) const SEED_LEN: usize = 32;

/// An Ed25519 key pair with its parsed public key.
pub(crate) struct Ed25519Key {
    pair: Ed25519KeyPair,
    public: ParsedPublicKey,
}

/// An Ed25519 key with its PKCS#8 v1 (secret) and SubjectPublicKeyInfo.
pub(crate) struct Loaded {
    pub(crate) key: Ed25519Key,
    pub(crate) pkcs8: Zeroizing<Vec<u8>>,
    pub(crate) spki: Vec<u8>,
}

impl Ed25519Key {
    /// Builds the key from its 32-byte seed; `public`, when the PKCS#8 v2
    /// carried one, must match the seed.
    pub(crate) fn from_seed(seed: &[u8], public: Option<&[u8]>) -> Result<Loaded, CryptoError> {
        if seed.len() != SEED_LEN {
            return Err(CryptoError::InvalidKey("Ed25519 seed must be 32 bytes".into()));
        }
        let pair = match public {
            Some(pk) => Ed25519KeyPair::from_seed_and_public_key(seed, pk),
            None => Ed25519KeyPair::from_seed_unchecked(seed),
        }
        .map_err(|_| CryptoError::InvalidKey("Ed25519 public key does not match the private key".into()))?;
        let parsed = ParsedPublicKey::new(&ED25519, pair.public_key().as_ref())
            .map_err(|_| CryptoError::InvalidKey("Ed25519 public key rejected".into()))?;
        let mut pkcs8 = Zeroizing::new(Vec::with_capacity(PKCS8_V1_PREFIX.len() + SEED_LEN));
        pkcs8.extend_from_slice(&PKCS8_V1_PREFIX);
        pkcs8.extend_from_slice(seed);
        let mut spki = SPKI_PREFIX.to_vec();
        spki.extend_from_slice(pair.public_key().as_ref());
        Ok(Loaded { key: Ed25519Key { pair, public: parsed }, pkcs8, spki })
    }

    /// Generates a key from 32 bytes of the system random generator.
    pub(crate) fn generate() -> Result<Loaded, CryptoError> {
        let seed = Zeroizing::new(random_bytes(SEED_LEN)?);
        Self::from_seed(&seed, None).map_err(|_| CryptoError::Internal("Ed25519 key generation failed"))
    }

    /// Signs the message itself (64-byte signature, deterministic).
    pub(crate) fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.pair.sign(msg).as_ref().to_vec()
    }

    /// Verifies a 64-byte signature; anything else is `false`.
    pub(crate) fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        self.public.verify_sig(msg, signature).is_ok()
    }
}
