//! RSA keys: import, generation, PKCS#1 v1.5 / OAEP encryption and
//! decryption, PKCS#1 v1.5 / PSS signatures.
//!
//! Keys of 2048 to 8192 bits live in AWS-LC (constant-time, blinded),
//! which does every operation on them except SHA-1 signing: aws-lc-rs has
//! no SHA-1 signing encoding, so that one legacy algorithm goes to the
//! RustCrypto `rsa` crate, with a copy of the key made on first use.
//! Keys of 1024 to 2047 bits, which only come from backups of the first
//! VSSM, are refused by AWS-LC (aws-lc-rs `rsa/key.rs`, 2048..=8192 bits)
//! and live in the `rsa` crate (blinded; its decryption is not
//! constant-time, RUSTSEC-2023-0071, which is why no bigger key uses it).

use std::sync::OnceLock;

use ::rsa::traits::PublicKeyParts;
use ::rsa::{Oaep, Pkcs1v15Encrypt, Pkcs1v15Sign, Pss};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{
    KeySize, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey,
    PrivateDecryptingKey,
};
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, UnparsedPublicKey};
use pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rand_core::OsRng;
use zeroize::Zeroizing;

use super::algorithm::{AsymmetricEncryption, HashAlg};
use super::asymmetric::Message;
use super::CryptoError;

/// RSA sizes accepted by generation.
pub const GENERATE_BITS: [u64; 3] = [2048, 3072, 4096];
/// Smallest RSA modulus accepted on import. Lower than the generation floor
/// because the first VSSM generated any size and its backups must restore.
pub const IMPORT_MIN_BITS: usize = 1024;
/// Largest RSA modulus accepted on import (bounds the cost of every operation).
pub const IMPORT_MAX_BITS: usize = 8192;

/// Signature padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// RSASSA-PKCS1-v1_5.
    Pkcs1,
    /// RSASSA-PSS, MGF1 with the same hash, salt as long as the hash.
    Pss,
}

/// An RSA private key, held by exactly one library (see the module doc).
pub(crate) enum RsaKey {
    /// 2048 to 8192 bits.
    AwsLc(Box<AwsLcRsa>),
    /// 1024 to 2047 bits (legacy backups).
    Legacy(Box<::rsa::RsaPrivateKey>),
}

/// The AWS-LC objects of one key. aws-lc-rs makes signing and decryption two
/// types; each holds its own parsed `EVP_PKEY`, both wiped when freed.
pub(crate) struct AwsLcRsa {
    signing: RsaKeyPair,
    decrypting: PrivateDecryptingKey,
    /// The `rsa` crate's copy, made the first time the key signs with SHA-1.
    sha1_signer: OnceLock<::rsa::RsaPrivateKey>,
}

/// An RSA key with its canonical PKCS#8 (secret) and SubjectPublicKeyInfo.
pub(crate) struct Loaded {
    pub(crate) key: RsaKey,
    pub(crate) pkcs8: Zeroizing<Vec<u8>>,
    pub(crate) spki: Vec<u8>,
    pub(crate) bits: usize,
}

fn bad_key(what: &str) -> CryptoError {
    CryptoError::InvalidKey(what.to_string())
}

impl RsaKey {
    /// Imports a PKCS#8 rsaEncryption key of 1024 to 8192 bits.
    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<Loaded, CryptoError> {
        if let Ok(signing) = RsaKeyPair::from_pkcs8(der) {
            return Self::aws_lc(signing);
        }
        // Too small for AWS-LC, or a form it refuses (e.g. an exponent over
        // 33 bits): the `rsa` crate, as for every legacy key.
        let private = ::rsa::RsaPrivateKey::from_pkcs8_der(der)
            .map_err(|_| bad_key("malformed or inconsistent RSA private key"))?;
        let bits = private.n().bits();
        if !(IMPORT_MIN_BITS..=IMPORT_MAX_BITS).contains(&bits) {
            return Err(CryptoError::InvalidKey(format!(
                "RSA key size must be {IMPORT_MIN_BITS} to {IMPORT_MAX_BITS} bits, got {bits}"
            )));
        }
        let pkcs8 = private.to_pkcs8_der().map_err(|_| bad_key("RSA key cannot be encoded"))?;
        let pkcs8 = Zeroizing::new(pkcs8.as_bytes().to_vec());
        let public: &::rsa::RsaPublicKey = private.as_ref();
        let spki = public.to_public_key_der().map_err(|_| bad_key("RSA public key cannot be encoded"))?.into_vec();
        Ok(Loaded { key: RsaKey::Legacy(Box::new(private)), pkcs8, spki, bits })
    }

    /// Generates a key of 2048, 3072 or 4096 bits in AWS-LC.
    pub(crate) fn generate(bits: u64) -> Result<Loaded, CryptoError> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => {
                return Err(CryptoError::InvalidKey(format!(
                    "RSA key size must be 2048, 3072 or 4096 bits, got {bits}"
                )))
            }
        };
        let generated =
            PrivateDecryptingKey::generate(size).map_err(|_| CryptoError::Internal("RSA key generation failed"))?;
        // Pkcs8V1Der wipes its buffer when dropped.
        let der: Pkcs8V1Der<'static> =
            generated.as_der().map_err(|_| CryptoError::Internal("RSA key cannot be encoded"))?;
        let signing = RsaKeyPair::from_pkcs8(der.as_ref())
            .map_err(|_| CryptoError::Internal("generated RSA key rejected by AWS-LC"))?;
        Self::aws_lc(signing).map_err(|_| CryptoError::Internal("generated RSA key rejected by AWS-LC"))
    }

    fn aws_lc(signing: RsaKeyPair) -> Result<Loaded, CryptoError> {
        let encode_err = |_| bad_key("RSA key cannot be encoded");
        let der: Pkcs8V1Der<'static> = signing.as_der().map_err(encode_err)?;
        let pkcs8 = Zeroizing::new(der.as_ref().to_vec());
        let decrypting = PrivateDecryptingKey::from_pkcs8(&pkcs8).map_err(|_| bad_key("RSA key rejected by AWS-LC"))?;
        let spki: PublicKeyX509Der<'static> = signing.public_key().as_der().map_err(encode_err)?;
        let bits = decrypting.key_size_bits();
        let key = RsaKey::AwsLc(Box::new(AwsLcRsa { signing, decrypting, sha1_signer: OnceLock::new() }));
        Ok(Loaded { key, pkcs8, spki: spki.as_ref().to_vec(), bits })
    }

    /// Modulus length in bytes.
    fn size_bytes(&self) -> usize {
        match self {
            RsaKey::AwsLc(k) => k.decrypting.key_size_bytes(),
            RsaKey::Legacy(k) => k.size(),
        }
    }

    /// Encrypts with the public key. Too long a plaintext is `InvalidInput`.
    pub(crate) fn encrypt(&self, alg: &AsymmetricEncryption, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let size = self.size_bytes();
        let overhead = match alg {
            AsymmetricEncryption::RsaPkcs1v15 => 11,
            AsymmetricEncryption::RsaOaep(h) => 2 * h.output_len() + 2,
        };
        let max = size.saturating_sub(overhead);
        if plaintext.len() > max {
            return Err(CryptoError::InvalidInput(format!(
                "plaintext too long for this key and padding: at most {max} bytes, got {}",
                plaintext.len()
            )));
        }
        match self {
            RsaKey::AwsLc(k) => {
                let public = k.decrypting.public_key();
                let mut out = vec![0u8; size];
                let failed = |_| CryptoError::Internal("RSA encryption failed");
                let len = match alg {
                    AsymmetricEncryption::RsaPkcs1v15 => Pkcs1PublicEncryptingKey::new(public)
                        .and_then(|p| p.encrypt(plaintext, &mut out).map(|c| c.len()))
                        .map_err(failed)?,
                    AsymmetricEncryption::RsaOaep(h) => OaepPublicEncryptingKey::new(public)
                        .and_then(|p| p.encrypt(aws_lc_oaep(*h), plaintext, &mut out, None).map(|c| c.len()))
                        .map_err(failed)?,
                };
                out.truncate(len);
                Ok(out)
            }
            RsaKey::Legacy(k) => {
                let public: &::rsa::RsaPublicKey = (**k).as_ref();
                let r = match alg {
                    AsymmetricEncryption::RsaPkcs1v15 => public.encrypt(&mut OsRng, Pkcs1v15Encrypt, plaintext),
                    AsymmetricEncryption::RsaOaep(h) => public.encrypt(&mut OsRng, oaep(*h), plaintext),
                };
                r.map_err(|_| {
                    CryptoError::InvalidInput("plaintext cannot be encrypted with this key and padding".into())
                })
            }
        }
    }

    /// Decrypts with the private key; every failure is `DecryptionFailed`.
    pub(crate) fn decrypt(&self, alg: &AsymmetricEncryption, ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        // RFC 8017 7.1.2/7.2.2: the ciphertext is exactly k bytes. The rsa
        // crate would accept a shorter integer encoding; do not.
        if ciphertext.len() != self.size_bytes() {
            return Err(CryptoError::DecryptionFailed);
        }
        match self {
            RsaKey::AwsLc(k) => {
                let mut plaintext = Zeroizing::new(vec![0u8; ciphertext.len()]);
                // The wrappers share the key (a reference count), they do not copy it.
                let len = match alg {
                    AsymmetricEncryption::RsaPkcs1v15 => Pkcs1PrivateDecryptingKey::new(k.decrypting.clone())
                        .and_then(|d| d.decrypt(ciphertext, &mut plaintext).map(|p| p.len())),
                    AsymmetricEncryption::RsaOaep(h) => OaepPrivateDecryptingKey::new(k.decrypting.clone())
                        .and_then(|d| d.decrypt(aws_lc_oaep(*h), ciphertext, &mut plaintext, None).map(|p| p.len())),
                }
                .map_err(|_| CryptoError::DecryptionFailed)?;
                Ok(plaintext[..len].to_vec())
            }
            RsaKey::Legacy(k) => {
                let r = match alg {
                    AsymmetricEncryption::RsaPkcs1v15 => k.decrypt_blinded(&mut OsRng, Pkcs1v15Encrypt, ciphertext),
                    AsymmetricEncryption::RsaOaep(h) => k.decrypt_blinded(&mut OsRng, oaep(*h), ciphertext),
                };
                r.map_err(|_| CryptoError::DecryptionFailed)
            }
        }
    }

    /// Signs `msg` (whose digest length the caller checked for `Hashed`).
    /// `pkcs8` is this key's PKCS#8, parsed by the `rsa` crate the first
    /// time the key signs with SHA-1.
    pub(crate) fn sign(
        &self,
        scheme: Scheme,
        h: HashAlg,
        msg: Message<'_>,
        pkcs8: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match self {
            RsaKey::AwsLc(k) => match aws_lc_signing(h, scheme) {
                Some(encoding) => {
                    let digest_alg = h.aws_lc();
                    let failed = |_| CryptoError::Internal("RSA signing failed");
                    let mut sig = vec![0u8; k.signing.public_modulus_len()];
                    match msg {
                        Message::Input(m) => k
                            .signing
                            .sign(encoding, &aws_lc_rs::rand::SystemRandom::new(), m, &mut sig)
                            .map_err(failed)?,
                        Message::Hashed(d) => {
                            let digest = aws_lc_rs::digest::Digest::import_less_safe(d, digest_alg).map_err(failed)?;
                            k.signing.sign_digest(encoding, &digest, &mut sig).map_err(failed)?
                        }
                    }
                    Ok(sig)
                }
                None => {
                    let signer = match k.sha1_signer.get() {
                        Some(s) => s,
                        None => {
                            let parsed = ::rsa::RsaPrivateKey::from_pkcs8_der(pkcs8)
                                .map_err(|_| CryptoError::Internal("RSA key rejected by the rsa crate"))?;
                            // A concurrent first use may have set it meanwhile; either copy is the same key.
                            let _ = k.sha1_signer.set(parsed);
                            k.sha1_signer.get().ok_or(CryptoError::Internal("RSA key cache failed"))?
                        }
                    };
                    rust_crypto_sign(signer, scheme, h, msg)
                }
            },
            RsaKey::Legacy(k) => rust_crypto_sign(k, scheme, h, msg),
        }
    }

    /// Verifies `signature`; a malformed or wrong one is `Ok(false)`.
    pub(crate) fn verify(
        &self,
        scheme: Scheme,
        h: HashAlg,
        msg: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        match self {
            RsaKey::AwsLc(k) => {
                let Some(params) = aws_lc_verification(h, scheme) else {
                    return Err(CryptoError::UnsupportedAlgorithm("PSS with SHA-1 is not supported".into()));
                };
                let digest_alg = h.aws_lc();
                let public = UnparsedPublicKey::new(params, k.signing.public_key().as_ref());
                Ok(match msg {
                    Message::Input(m) => public.verify(m, signature).is_ok(),
                    Message::Hashed(d) => aws_lc_rs::digest::Digest::import_less_safe(d, digest_alg)
                        .map(|digest| public.verify_digest(&digest, signature).is_ok())
                        .unwrap_or(false),
                })
            }
            RsaKey::Legacy(k) => {
                let digest = digest_or_hash(h, msg);
                let public: &::rsa::RsaPublicKey = (**k).as_ref();
                let r = match scheme {
                    Scheme::Pss => public.verify(pss_scheme(h, false), &digest, signature),
                    Scheme::Pkcs1 => public.verify(pkcs1_scheme(h), &digest, signature),
                };
                Ok(r.is_ok())
            }
        }
    }
}

/// The digest of `msg` (already checked in length when `Hashed`).
fn digest_or_hash(h: HashAlg, msg: Message<'_>) -> Vec<u8> {
    match msg {
        Message::Input(m) => h.digest(m),
        Message::Hashed(d) => d.to_vec(),
    }
}

/// Signing in the `rsa` crate (blinded): legacy keys and SHA-1.
fn rust_crypto_sign(
    key: &::rsa::RsaPrivateKey,
    scheme: Scheme,
    h: HashAlg,
    msg: Message<'_>,
) -> Result<Vec<u8>, CryptoError> {
    let digest = digest_or_hash(h, msg);
    let r = match scheme {
        Scheme::Pss => key.sign_with_rng(&mut OsRng, pss_scheme(h, true), &digest),
        Scheme::Pkcs1 => key.sign_with_rng(&mut OsRng, pkcs1_scheme(h), &digest),
    };
    // The only way this fails for a valid key: padding larger than the
    // modulus (e.g. SHA-512 PSS on a legacy 1024-bit key).
    r.map_err(|_| {
        let name = match scheme {
            Scheme::Pss => format!("{}withRSA/PSS", h.as_str()),
            Scheme::Pkcs1 => format!("{}withRSA", h.as_str()),
        };
        CryptoError::UnsupportedAlgorithm(format!("{name} does not fit a {}-bit RSA key", key.n().bits()))
    })
}

fn aws_lc_oaep(h: HashAlg) -> &'static aws_lc_rs::rsa::OaepAlgorithm {
    use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512};
    match h {
        HashAlg::Sha1 => &OAEP_SHA1_MGF1SHA1,
        HashAlg::Sha256 => &OAEP_SHA256_MGF1SHA256,
        HashAlg::Sha384 => &OAEP_SHA384_MGF1SHA384,
        HashAlg::Sha512 => &OAEP_SHA512_MGF1SHA512,
    }
}

/// AWS-LC's encoding for signing with `h` (none for SHA-1,
/// which aws-lc-rs only verifies).
fn aws_lc_signing(h: HashAlg, scheme: Scheme) -> Option<&'static dyn aws_lc_rs::signature::RsaEncoding> {
    use aws_lc_rs::signature as s;
    Some(match (h, scheme) {
        (HashAlg::Sha256, Scheme::Pkcs1) => &s::RSA_PKCS1_SHA256,
        (HashAlg::Sha384, Scheme::Pkcs1) => &s::RSA_PKCS1_SHA384,
        (HashAlg::Sha512, Scheme::Pkcs1) => &s::RSA_PKCS1_SHA512,
        (HashAlg::Sha256, Scheme::Pss) => &s::RSA_PSS_SHA256,
        (HashAlg::Sha384, Scheme::Pss) => &s::RSA_PSS_SHA384,
        (HashAlg::Sha512, Scheme::Pss) => &s::RSA_PSS_SHA512,
        (HashAlg::Sha1, _) => return None,
    })
}

/// AWS-LC's verification parameters (2048..=8192-bit keys, PSS salt as
/// long as the hash); none for SHA-1 PSS, which the API does not have.
fn aws_lc_verification(h: HashAlg, scheme: Scheme) -> Option<&'static aws_lc_rs::signature::RsaParameters> {
    use aws_lc_rs::signature as s;
    Some(match (h, scheme) {
        (HashAlg::Sha1, Scheme::Pkcs1) => &s::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        (HashAlg::Sha256, Scheme::Pkcs1) => &s::RSA_PKCS1_2048_8192_SHA256,
        (HashAlg::Sha384, Scheme::Pkcs1) => &s::RSA_PKCS1_2048_8192_SHA384,
        (HashAlg::Sha512, Scheme::Pkcs1) => &s::RSA_PKCS1_2048_8192_SHA512,
        (HashAlg::Sha256, Scheme::Pss) => &s::RSA_PSS_2048_8192_SHA256,
        (HashAlg::Sha384, Scheme::Pss) => &s::RSA_PSS_2048_8192_SHA384,
        (HashAlg::Sha512, Scheme::Pss) => &s::RSA_PSS_2048_8192_SHA512,
        (HashAlg::Sha1, Scheme::Pss) => return None,
    })
}

fn oaep(h: HashAlg) -> Oaep {
    match h {
        HashAlg::Sha1 => Oaep::new::<sha1::Sha1>(),
        HashAlg::Sha256 => Oaep::new::<sha2::Sha256>(),
        HashAlg::Sha384 => Oaep::new::<sha2::Sha384>(),
        HashAlg::Sha512 => Oaep::new::<sha2::Sha512>(),
    }
}

fn pkcs1_scheme(h: HashAlg) -> Pkcs1v15Sign {
    match h {
        HashAlg::Sha1 => Pkcs1v15Sign::new::<sha1::Sha1>(),
        HashAlg::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
        HashAlg::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
        HashAlg::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
    }
}

/// PSS with salt length = hash length; blinded when signing.
fn pss_scheme(h: HashAlg, blinded: bool) -> Pss {
    match (h, blinded) {
        (HashAlg::Sha1, true) => Pss::new_blinded::<sha1::Sha1>(),
        (HashAlg::Sha1, false) => Pss::new::<sha1::Sha1>(),
        (HashAlg::Sha256, true) => Pss::new_blinded::<sha2::Sha256>(),
        (HashAlg::Sha256, false) => Pss::new::<sha2::Sha256>(),
        (HashAlg::Sha384, true) => Pss::new_blinded::<sha2::Sha384>(),
        (HashAlg::Sha384, false) => Pss::new::<sha2::Sha384>(),
        (HashAlg::Sha512, true) => Pss::new_blinded::<sha2::Sha512>(),
        (HashAlg::Sha512, false) => Pss::new::<sha2::Sha512>(),
    }
}
