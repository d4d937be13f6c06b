//! The RPC key in transit: X25519 between the requester's fresh key and a
//! fresh key of the peer, HKDF-SHA256 bound to the challenge and both public
//! keys, AES-256-GCM with the document's hash as associated data. Only the
//! holder of the requester's private key can open it — not a replayer, not
//! whoever terminates TLS.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

const KDF_INFO: &[u8] = b"vssm join v1";

/// A fresh X25519 key pair for one join attempt.
pub fn ephemeral_key() -> Result<(EphemeralPrivateKey, Vec<u8>), String> {
    let private =
        EphemeralPrivateKey::generate(&X25519, &SystemRandom::new()).map_err(|_| "no randomness".to_string())?;
    let public = private.compute_public_key().map_err(|_| "X25519 failed".to_string())?.as_ref().to_vec();
    Ok((private, public))
}

/// The AES-256-GCM key both sides derive from the X25519 secret, bound to
/// the challenge and both public keys.
fn derive_key(
    shared: &[u8],
    challenge: &[u8],
    requester_public: &[u8],
    server_public: &[u8],
) -> Result<LessSafeKey, String> {
    let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, challenge);
    let info = [KDF_INFO, requester_public, server_public];
    let prk = salt.extract(shared);
    let okm = prk.expand(&info, &aead::AES_256_GCM).map_err(|_| "key derivation failed".to_string())?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

/// Encrypts `secret` to `requester_public`: returns (server public key, nonce||ct||tag).
pub fn seal_to(
    requester_public: &[u8],
    challenge: &[u8],
    aad: &[u8],
    secret: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let rng = SystemRandom::new();
    let (private, public) = ephemeral_key()?;
    let peer = UnparsedPublicKey::new(&X25519, requester_public);
    let key =
        agreement::agree_ephemeral(private, &peer, |shared| derive_key(shared, challenge, requester_public, &public))
            .map_err(|_| "invalid ephemeral public key".to_string())??;
    let mut nonce = [0u8; 12];
    rng.fill(&mut nonce).map_err(|_| "no randomness".to_string())?;
    let mut sealed = secret.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut sealed)
        .map_err(|_| "encryption failed".to_string())?;
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
) -> Result<Zeroizing<Vec<u8>>, String> {
    if sealed.len() < 12 + 16 {
        return Err("encrypted RPC key is too short".into());
    }
    let peer = UnparsedPublicKey::new(&X25519, server_public);
    let key = agreement::agree_ephemeral(private, &peer, |shared| {
        derive_key(shared, challenge, requester_public, server_public)
    })
    .map_err(|_| "invalid peer ephemeral key".to_string())??;
    let nonce = Nonce::try_assume_unique_for_key(&sealed[..12]).map_err(|_| "bad nonce".to_string())?;
    let mut buffer = Zeroizing::new(sealed[12..].to_vec());
    let plain_len = key
        .open_in_place(nonce, Aad::from(aad), &mut buffer)
        .map_err(|_| "encrypted RPC key does not decrypt".to_string())?
        .len();
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
        assert!(open_from(other, &public, &server_public, b"challenge", b"doc", &sealed).is_err());
        // A different challenge or document binding does not open it either.
        let private = EphemeralPrivateKey::generate(&X25519, &rng).unwrap();
        let public = private.compute_public_key().unwrap().as_ref().to_vec();
        let (server_public, sealed) = seal_to(&public, b"challenge", b"doc", b"rpc key").unwrap();
        assert!(open_from(private, &public, &server_public, b"other", b"doc", &sealed).is_err());
    }
}
