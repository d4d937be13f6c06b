//! EC keys (NIST P-256, P-384, P-521): import, generation, ECDSA with an
//! ASN.1 DER signature, all in AWS-LC.
//!
//! AWS-LC draws ECDSA nonces from its seeded, per-thread DRBG (mixed with
//! the key and digest), not from a `getrandom` call per signature as *ring*
//! does: about twice the signing rate on this workload.
//!
//! A key signs with its curve's own hash (P-256/SHA-256, P-384/SHA-384,
//! P-521/SHA-512) directly; any other hash, and caller-supplied digests, go
//! through the digest path: the digest is first brought to the length of the
//! curve's own hash the way ECDSA reads it anyway (bits2int, SEC 1 4.1.3
//! step 5: truncated to the leftmost bits of the order, or the same integer
//! when shorter), so SHA-1 and SHA-512 work on every curve.

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair, ParsedPublicKey};
use zeroize::Zeroizing;

use super::algorithm::HashAlg;
use super::asymmetric::Message;
use super::keys::Curve;
use super::CryptoError;

/// An EC key pair with its parsed public key (parsing costs a point check).
pub(crate) struct EcKey {
    curve: Curve,
    pair: EcdsaKeyPair,
    public: ParsedPublicKey,
}

/// An EC key with its canonical PKCS#8 (secret) and SubjectPublicKeyInfo.
pub(crate) struct Loaded {
    pub(crate) key: EcKey,
    pub(crate) pkcs8: Zeroizing<Vec<u8>>,
    pub(crate) spki: Vec<u8>,
}

/// Signing algorithm, verification algorithm and hash of each curve.
fn algorithms(
    curve: Curve,
) -> (&'static sig::EcdsaSigningAlgorithm, &'static sig::EcdsaVerificationAlgorithm, &'static digest::Algorithm) {
    match curve {
        Curve::P256 => (&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &sig::ECDSA_P256_SHA256_ASN1, &digest::SHA256),
        Curve::P384 => (&sig::ECDSA_P384_SHA384_ASN1_SIGNING, &sig::ECDSA_P384_SHA384_ASN1, &digest::SHA384),
        Curve::P521 => (&sig::ECDSA_P521_SHA512_ASN1_SIGNING, &sig::ECDSA_P521_SHA512_ASN1, &digest::SHA512),
    }
}

/// The API hash that is the curve's own.
fn own_hash(curve: Curve) -> HashAlg {
    match curve {
        Curve::P256 => HashAlg::Sha256,
        Curve::P384 => HashAlg::Sha384,
        Curve::P521 => HashAlg::Sha512,
    }
}

impl EcKey {
    /// Imports a PKCS#8 key of `curve` (the caller read the curve from the
    /// algorithm parameters). AWS-LC checks that the point is on the curve and
    /// matches the private key (`EC_KEY_check_key`).
    pub(crate) fn from_pkcs8(curve: Curve, der: &[u8]) -> Result<Loaded, CryptoError> {
        let (signing, _, _) = algorithms(curve);
        let pair = EcdsaKeyPair::from_pkcs8(signing, der)
            .map_err(|_| CryptoError::InvalidKey("malformed EC private key".into()))?;
        Self::load(curve, pair).map_err(|_| CryptoError::InvalidKey("malformed EC private key".into()))
    }

    /// Generates a key on `curve`.
    pub(crate) fn generate(curve: Curve) -> Result<Loaded, CryptoError> {
        let (signing, _, _) = algorithms(curve);
        let pair = EcdsaKeyPair::generate(signing).map_err(|_| CryptoError::Internal("EC key generation failed"))?;
        Self::load(curve, pair).map_err(|_| CryptoError::Internal("generated EC key cannot be encoded"))
    }

    fn load(curve: Curve, pair: EcdsaKeyPair) -> Result<Loaded, ()> {
        let (_, verification, _) = algorithms(curve);
        // Document wipes its buffer when dropped.
        let pkcs8 = Zeroizing::new(pair.to_pkcs8v1().map_err(|_| ())?.as_ref().to_vec());
        let spki: PublicKeyX509Der<'static> = pair.public_key().as_der().map_err(|_| ())?;
        let public = ParsedPublicKey::new(verification, pair.public_key().as_ref()).map_err(|_| ())?;
        Ok(Loaded { key: EcKey { curve, pair, public }, pkcs8, spki: spki.as_ref().to_vec() })
    }

    /// The digest to sign or verify in the digest path: `msg` hashed with `h`
    /// (or the caller's digest), then fitted to the curve's own hash length.
    fn fitted_digest(&self, h: HashAlg, msg: Message<'_>) -> Option<Digest> {
        let (_, _, own) = algorithms(self.curve);
        let computed;
        let d: &[u8] = match msg {
            Message::Input(m) => {
                computed = h.digest(m);
                &computed
            }
            Message::Hashed(d) => d,
        };
        let n = own.output_len();
        let fitted: Vec<u8> = if d.len() >= n {
            d[..n].to_vec()
        } else {
            let mut v = vec![0u8; n - d.len()];
            v.extend_from_slice(d);
            v
        };
        Digest::import_less_safe(&fitted, own).ok()
    }

    /// Signs `msg` (whose digest length the caller checked for `Hashed`).
    pub(crate) fn sign(&self, h: HashAlg, msg: Message<'_>) -> Result<Vec<u8>, CryptoError> {
        let failed = CryptoError::Internal("ECDSA signing failed");
        let signature = match msg {
            Message::Input(m) if h == own_hash(self.curve) => {
                self.pair.sign(&aws_lc_rs::rand::SystemRandom::new(), m).map_err(|_| failed.clone())?
            }
            _ => {
                let digest = self.fitted_digest(h, msg).ok_or(failed.clone())?;
                self.pair.sign_digest(&digest).map_err(|_| failed)?
            }
        };
        Ok(signature.as_ref().to_vec())
    }

    /// Verifies an ASN.1 DER signature; a malformed or wrong one is `false`.
    pub(crate) fn verify(&self, h: HashAlg, msg: Message<'_>, signature: &[u8]) -> bool {
        match msg {
            Message::Input(m) if h == own_hash(self.curve) => self.public.verify_sig(m, signature).is_ok(),
            _ => self.fitted_digest(h, msg).is_some_and(|d| self.public.verify_digest_sig(&d, signature).is_ok()),
        }
    }

    /// The uncompressed public point (for the tests' cross-checks).
    #[cfg(test)]
    pub(crate) fn public_point(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }
}
