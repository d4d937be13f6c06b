//! The RPC key in transit: X25519 between the requester's fresh key and a
//! fresh key of the peer, HKDF-SHA256 bound to the challenge and both public
//! keys, AES-256-GCM with the document's hash as associated data. Only the
//! holder of the requester's private key can open it — not a replayer, not
//! whoever terminates TLS.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

const KDF_INFO: &[u8] = b"vssm join v1";

/// Why the RPC key could not be sealed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The system random generator failed.
    #[error("no randomness")]
    NoRandomness,
    /// X25519 or HKDF failed on valid input.
    #[error("key agreement failed")]
    KeyAgreement,
    /// The requester's ephemeral public key is not a usable X25519 key.
    #[error("invalid ephemeral public key")]
    InvalidRequesterKey,
    /// AES-GCM sealing failed.
    #[error("encryption failed")]
    Encryption,
    /// The peer's ephemeral public key is not a usable X25519 key.
    #[error("invalid peer ephemeral key")]
    InvalidPeerKey,
    /// The sealed key is shorter than nonce and tag.
    #[error("encrypted RPC key is too short")]
    TooShort,
    /// The sealed key does not open with this binding and key.
    #[error("encrypted RPC key does not decrypt")]
    DoesNotDecrypt,
}

/// The associated data of the sealed RPC key: SHA-256 of the identity
/// document and the requester's config digest, so a grant opens only for
/// the instance and the configuration the peer checked.
pub fn binding_aad(document: &[u8], config_digest: &[u8]) -> Vec<u8> {
    let mut aad = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, document).as_ref().to_vec();
    aad.extend_from_slice(config_digest);
    aad
}

/// A fresh X25519 key pair for one join attempt.
pub fn ephemeral_key() -> Result<(EphemeralPrivateKey, Vec<u8>), SealError> {
    let private = EphemeralPrivateKey::generate(&X25519, &SystemRandom::new()).map_err(|_| SealError::NoRandomness)?;
    let public = private.compute_public_key().map_err(|_| SealError::KeyAgreement)?.as_ref().to_vec();
    Ok((private, public))
}

/// The AES-256-GCM key both sides derive from the X25519 secret, bound to
/// the challenge and both public keys.
fn derive_key(
    shared: &[u8],
    challenge: &[u8],
    requester_public: &[u8],
    server_public: &[u8],
) -> Result<LessSafeKey, SealError> {
    let salt = aws_lc_rs::hkdf::Salt::new(aws_lc_rs::hkdf::HKDF_SHA256, challenge);
    let info = [KDF_INFO, requester_public, server_public];
    let prk = salt.extract(shared);
    let okm = prk.expand(&info, &aead::AES_256_GCM).map_err(|_| SealError::KeyAgreement)?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

/// Encrypts `secret` to `requester_public`: returns (server public key, nonce||ct||tag).
pub fn seal_to(
    requester_public: &[u8],
    challenge: &[u8],
    aad: &[u8],
    secret: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), SealError> {
    let rng = SystemRandom::new();
    let (private, public) = ephemeral_key()?;
    let peer = UnparsedPublicKey::new(&X25519, requester_public);
    let key = agreement::agree_ephemeral(private, peer, SealError::InvalidRequesterKey, |shared| {
        derive_key(shared, challenge, requester_public, &public)
    })?;
    let mut nonce = [0u8; 12];
    rng.fill(&mut nonce).map_err(|_| SealError::NoRandomness)?;
    let mut sealed = secret.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut sealed)
        .map_err(|_| SealError::Encryption)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok((public, out))
}

/// Decrypts what [`seal_to`] made, with the requester's private key.
pub fn open_from(
    private: EphemeralPrivateKey,
    requester_public: &[u8],
    server_public: &[u8],
    challenge: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if sealed.len() < 12 + 16 {
        return Err(SealError::TooShort);
    }
    let peer = UnparsedPublicKey::new(&X25519, server_public);
    let key = agreement::agree_ephemeral(private, peer, SealError::InvalidPeerKey, |shared| {
        derive_key(shared, challenge, requester_public, server_public)
    })?;
    let nonce = Nonce::try_assume_unique_for_key(&sealed[..12]).map_err(|_| SealError::TooShort)?;
    let mut buffer = Zeroizing::new(sealed[12..].to_vec());
    let plain_len = key.open_in_place(nonce, Aad::from(aad), &mut buffer).map_err(|_| SealError::DoesNotDecrypt)?.len();
    buffer.truncate(plain_len);
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_key_opens_only_with_the_requesters_private_key_and_same_binding() {
        let rng = SystemRandom::new();
        let private = EphemeralPrivateKey::generate(&X25519, &rng).unwrap();
        let public = private.compute_public_key().unwrap().as_ref().to_vec();
        let (server_public, sealed) = seal_to(&public, b"challenge", b"doc", b"rpc key").unwrap();
        let opened = open_from(private, &public, &server_public, b"challenge", b"doc", &sealed).unwrap();
        assert_eq!(opened.as_slice(), b"rpc key");

        // Another private key (an eavesdropper replaying the request) cannot open it.
        let other = EphemeralPrivateKey::generate(&X25519, &rng).unwrap();
        let wrong = open_from(other, &public, &server_public, b"challenge", b"doc", &sealed);
        assert_eq!(wrong.err(), Some(SealError::DoesNotDecrypt));
        // A different challenge or document binding does not open it either.
        let private = EphemeralPrivateKey::generate(&X25519, &rng).unwrap();
        let public = private.compute_public_key().unwrap().as_ref().to_vec();
        let (server_public, sealed) = seal_to(&public, b"challenge", b"doc", b"rpc key").unwrap();
        let rebound = open_from(private, &public, &server_public, b"other", b"doc", &sealed);
        assert_eq!(rebound.err(), Some(SealError::DoesNotDecrypt));
    }
}
