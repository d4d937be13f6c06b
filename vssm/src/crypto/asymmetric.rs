//! RSA encryption and RSA / ECDSA / Ed25519 signatures.
//!
//! Hot paths go to key objects precomputed in [`AsymmetricKey`]: *ring* for
//! ECDSA (common curve/hash pairs) and Ed25519; AWS-LC for RSA private-key
//! operations (signing, also of caller-supplied digests, and decryption),
//! constant-time like ring and about twice as fast for RSA here. The rest (RSA encryption, SHA-1 RSA signatures, RSA keys under 2048 bits,
//! P-521, unusual curve/hash pairs) uses the RustCrypto crates.

use ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use rand_core::OsRng;
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, Pkcs1v15Encrypt, Pkcs1v15Sign, Pss};

use super::algorithm::{AsymmetricEncryption, HashAlg, SignatureAlgorithm};
use super::keys::{system_rng, AsymmetricKey, EcKey, KeyInner, RsaKey};
use super::CryptoError;

/// Data to sign or verify.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// The message itself; the server hashes it.
    Input(&'a [u8]),
    /// The digest computed by the caller; its length must match the hash.
    Hashed(&'a [u8]),
}

fn rsa_key<'k>(key: &'k AsymmetricKey, what: &str) -> Result<&'k RsaKey, CryptoError> {
    match key.inner() {
        KeyInner::Rsa(k) => Ok(k),
        _ => Err(CryptoError::UnsupportedAlgorithm(format!(
            "{what} needs an RSA key, this key is {}",
            key.spec().as_str()
        ))),
    }
}

/// Encrypts with the RSA public key. Too long a plaintext is `InvalidInput`.
pub fn encrypt(alg: &AsymmetricEncryption, key: &AsymmetricKey, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let k = rsa_key(key, "RSA encryption")?;
    let size = k.public().size();
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
    let r = match alg {
        AsymmetricEncryption::RsaPkcs1v15 => k.public().encrypt(&mut OsRng, Pkcs1v15Encrypt, plaintext),
        AsymmetricEncryption::RsaOaep(h) => k.public().encrypt(&mut OsRng, oaep(*h), plaintext),
    };
    r.map_err(|_| CryptoError::InvalidInput("plaintext cannot be encrypted with this key and padding".into()))
}

/// Decrypts with the RSA private key: constant-time in AWS-LC (blinded
/// there too), or for keys under 2048 bits blinded in the `rsa` crate.
/// Every failure is `DecryptionFailed`.
pub fn decrypt(alg: &AsymmetricEncryption, key: &AsymmetricKey, ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let k = rsa_key(key, "RSA decryption")?;
    // RFC 8017 7.1.2/7.2.2: the ciphertext is exactly k bytes. The rsa crate
    // would accept a shorter integer encoding; do not.
    if ciphertext.len() != k.public().size() {
        return Err(CryptoError::DecryptionFailed);
    }
    if let Some(decrypting) = &k.decrypting {
        return decrypt_constant_time(alg, decrypting, ciphertext);
    }
    let r = match alg {
        AsymmetricEncryption::RsaPkcs1v15 => k.private.decrypt_blinded(&mut OsRng, Pkcs1v15Encrypt, ciphertext),
        AsymmetricEncryption::RsaOaep(h) => k.private.decrypt_blinded(&mut OsRng, oaep(*h), ciphertext),
    };
    r.map_err(|_| CryptoError::DecryptionFailed)
}

fn decrypt_constant_time(
    alg: &AsymmetricEncryption,
    key: &aws_lc_rs::rsa::PrivateDecryptingKey,
    ciphertext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, Pkcs1PrivateDecryptingKey};
    let mut plaintext = vec![0u8; key.key_size_bytes()];
    // The wrappers share the key (a reference count), they do not copy it.
    let len = match alg {
        AsymmetricEncryption::RsaPkcs1v15 => Pkcs1PrivateDecryptingKey::new(key.clone())
            .and_then(|k| k.decrypt(ciphertext, &mut plaintext).map(|p| p.len())),
        AsymmetricEncryption::RsaOaep(h) => OaepPrivateDecryptingKey::new(key.clone())
            .and_then(|k| k.decrypt(aws_lc_oaep(*h), ciphertext, &mut plaintext, None).map(|p| p.len())),
    }
    .map_err(|_| CryptoError::DecryptionFailed)?;
    plaintext.truncate(len);
    Ok(plaintext)
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

/// Checks that the algorithm fits the key type.
fn check_fit(alg: &SignatureAlgorithm, key: &AsymmetricKey) -> Result<(), CryptoError> {
    let ok = matches!(
        (alg, key.inner()),
        (SignatureAlgorithm::RsaPkcs1v15(_) | SignatureAlgorithm::RsaPss(_), KeyInner::Rsa(_))
            | (SignatureAlgorithm::Ecdsa(_), KeyInner::Ec(_))
            | (SignatureAlgorithm::Ed25519, KeyInner::Ed25519(_))
    );
    if ok {
        Ok(())
    } else {
        Err(CryptoError::UnsupportedAlgorithm(format!("{} does not fit a {} key", alg_name(alg), key.spec().as_str())))
    }
}

fn alg_name(alg: &SignatureAlgorithm) -> String {
    match alg {
        SignatureAlgorithm::RsaPkcs1v15(h) => format!("{}withRSA", h.as_str()),
        SignatureAlgorithm::RsaPss(h) => format!("{}withRSA/PSS", h.as_str()),
        SignatureAlgorithm::Ecdsa(h) => format!("{}withECDSA", h.as_str()),
        SignatureAlgorithm::Ed25519 => "Ed25519".into(),
    }
}

/// Returns the digest to sign/verify: computed for `Input`, length-checked for `Hashed`.
fn digest_of(alg: &SignatureAlgorithm, h: HashAlg, msg: Message<'_>) -> Result<Vec<u8>, CryptoError> {
    match msg {
        Message::Input(m) => Ok(h.digest(m)),
        Message::Hashed(d) if d.len() == h.output_len() => Ok(d.to_vec()),
        Message::Hashed(d) => Err(CryptoError::InvalidInput(format!(
            "hashed input for {} must be {} bytes, got {}",
            alg_name(alg),
            h.output_len(),
            d.len()
        ))),
    }
}

fn no_prehash_ed25519() -> CryptoError {
    CryptoError::InvalidInput("Ed25519 signs the message itself; a pre-computed hash is not supported".into())
}

/// Left-pads a digest shorter than the curve order to the field length, which
/// is how ECDSA reads short digests (bits2int); RustCrypto otherwise refuses
/// digests under half the field size (SHA-1 with P-384/P-521).
fn ec_prehash(digest: Vec<u8>, field_len: usize) -> Vec<u8> {
    if digest.len() >= field_len {
        return digest;
    }
    let mut out = vec![0u8; field_len - digest.len()];
    out.extend_from_slice(&digest);
    out
}

/// Signs `msg`. RSA signatures are PKCS#1 v1.5 or PSS, ECDSA signatures ASN.1 DER,
/// Ed25519 signatures 64 bytes.
pub fn sign(alg: &SignatureAlgorithm, key: &AsymmetricKey, msg: Message<'_>) -> Result<Vec<u8>, CryptoError> {
    check_fit(alg, key)?;
    let failed = || CryptoError::InvalidKey("signing failed".into());
    match (alg, key.inner()) {
        (SignatureAlgorithm::RsaPkcs1v15(h) | SignatureAlgorithm::RsaPss(h), KeyInner::Rsa(k)) => {
            let pss = matches!(alg, SignatureAlgorithm::RsaPss(_));
            // AWS-LC: constant-time, and about twice ring's RSA rate here.
            if let (Some(kp), Some((enc, hash))) = (&k.signing, aws_lc_rsa_signing(*h, pss)) {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                let signed = match msg {
                    Message::Input(m) => kp.sign(enc, &aws_lc_rs::rand::SystemRandom::new(), m, &mut sig),
                    Message::Hashed(_) => {
                        let digest = digest_of(alg, *h, msg)?;
                        let digest =
                            aws_lc_rs::digest::Digest::import_less_safe(&digest, hash).map_err(|_| failed())?;
                        kp.sign_digest(enc, &digest, &mut sig)
                    }
                };
                signed.map_err(|_| failed())?;
                return Ok(sig);
            }
            let digest = digest_of(alg, *h, msg)?;
            // SHA-1 and keys under 2048 bits: the rsa crate, blinded.
            let r = if pss {
                k.private.sign_with_rng(&mut OsRng, pss_scheme(*h, true), &digest)
            } else {
                k.private.sign_with_rng(&mut OsRng, pkcs1_scheme(*h), &digest)
            };
            // The only way this fails for a valid key: padding larger than the
            // modulus (e.g. SHA-512 PSS on a legacy 1024-bit key).
            r.map_err(|_| {
                CryptoError::UnsupportedAlgorithm(format!(
                    "{} does not fit a {}-bit RSA key",
                    alg_name(alg),
                    key.size_bits()
                ))
            })
        }
        (SignatureAlgorithm::Ecdsa(h), KeyInner::Ec(k)) => {
            // Fast path: ring for its native curve/hash pairs.
            if let Message::Input(m) = msg {
                let ring_kp = match (k, h) {
                    (EcKey::P256 { ring, .. }, HashAlg::Sha256) | (EcKey::P384 { ring, .. }, HashAlg::Sha384) => {
                        Some(ring)
                    }
                    _ => None,
                };
                if let Some(kp) = ring_kp {
                    let sig = kp.sign(&system_rng(), m).map_err(|_| failed())?;
                    return Ok(sig.as_ref().to_vec());
                }
            }
            let prehash = ec_prehash(digest_of(alg, *h, msg)?, k.curve().field_len());
            let der = match k {
                EcKey::P256 { signing, .. } => {
                    let s: p256::ecdsa::Signature = signing.sign_prehash(&prehash).map_err(|_| failed())?;
                    s.to_der().as_bytes().to_vec()
                }
                EcKey::P384 { signing, .. } => {
                    let s: p384::ecdsa::Signature = signing.sign_prehash(&prehash).map_err(|_| failed())?;
                    s.to_der().as_bytes().to_vec()
                }
                EcKey::P521 { signing, .. } => {
                    let s: p521::ecdsa::Signature = signing.sign_prehash(&prehash).map_err(|_| failed())?;
                    s.to_der().as_bytes().to_vec()
                }
            };
            Ok(der)
        }
        (SignatureAlgorithm::Ed25519, KeyInner::Ed25519(k)) => match msg {
            Message::Input(m) => Ok(k.ring.sign(m).as_ref().to_vec()),
            Message::Hashed(_) => Err(no_prehash_ed25519()),
        },
        _ => Err(CryptoError::UnsupportedAlgorithm(format!("{} does not fit this key", alg_name(alg)))),
    }
}

/// AWS-LC's encoding and digest for RSA signing with `h` (none for SHA-1,
/// which AWS-LC only verifies). PSS uses a salt as long as the hash, as
/// everywhere else here.
fn aws_lc_rsa_signing(
    h: HashAlg,
    pss: bool,
) -> Option<(&'static dyn aws_lc_rs::signature::RsaEncoding, &'static aws_lc_rs::digest::Algorithm)> {
    use aws_lc_rs::{digest as d, signature as s};
    Some(match (h, pss) {
        (HashAlg::Sha256, false) => (&s::RSA_PKCS1_SHA256, &d::SHA256),
        (HashAlg::Sha384, false) => (&s::RSA_PKCS1_SHA384, &d::SHA384),
        (HashAlg::Sha512, false) => (&s::RSA_PKCS1_SHA512, &d::SHA512),
        (HashAlg::Sha256, true) => (&s::RSA_PSS_SHA256, &d::SHA256),
        (HashAlg::Sha384, true) => (&s::RSA_PSS_SHA384, &d::SHA384),
        (HashAlg::Sha512, true) => (&s::RSA_PSS_SHA512, &d::SHA512),
        (HashAlg::Sha1, _) => return None,
    })
}

fn ring_rsa_verification(h: HashAlg, pss: bool) -> &'static ring::signature::RsaParameters {
    use ring::signature as s;
    match (h, pss) {
        (HashAlg::Sha1, false) => &s::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        (HashAlg::Sha256, false) => &s::RSA_PKCS1_2048_8192_SHA256,
        (HashAlg::Sha384, false) => &s::RSA_PKCS1_2048_8192_SHA384,
        (HashAlg::Sha512, false) => &s::RSA_PKCS1_2048_8192_SHA512,
        // SHA1withRSA/PSS is refused by the parser; keep a total mapping anyway.
        (HashAlg::Sha1 | HashAlg::Sha256, true) => &s::RSA_PSS_2048_8192_SHA256,
        (HashAlg::Sha384, true) => &s::RSA_PSS_2048_8192_SHA384,
        (HashAlg::Sha512, true) => &s::RSA_PSS_2048_8192_SHA512,
    }
}

/// Verifies `signature` over `msg`. A malformed or wrong signature is
/// `Ok(false)`; errors are only for algorithm/key mismatch or a bad digest length.
pub fn verify(
    alg: &SignatureAlgorithm,
    key: &AsymmetricKey,
    msg: Message<'_>,
    signature: &[u8],
) -> Result<bool, CryptoError> {
    use ring::signature::{UnparsedPublicKey, ED25519};
    check_fit(alg, key)?;
    match (alg, key.inner()) {
        (SignatureAlgorithm::RsaPkcs1v15(h) | SignatureAlgorithm::RsaPss(h), KeyInner::Rsa(k)) => {
            let pss = matches!(alg, SignatureAlgorithm::RsaPss(_));
            // ring verifies with 2048..=8192-bit keys: exactly those AWS-LC
            // loaded for signing (both also cap the exponent at 33 bits).
            if let (Message::Input(m), true, false) = (msg, k.signing.is_some(), pss && *h == HashAlg::Sha1) {
                let pk = UnparsedPublicKey::new(ring_rsa_verification(*h, pss), &k.ring_public);
                return Ok(pk.verify(m, signature).is_ok());
            }
            let digest = digest_of(alg, *h, msg)?;
            let r = if pss {
                k.public().verify(pss_scheme(*h, false), &digest, signature)
            } else {
                k.public().verify(pkcs1_scheme(*h), &digest, signature)
            };
            Ok(r.is_ok())
        }
        (SignatureAlgorithm::Ecdsa(h), KeyInner::Ec(k)) => {
            let prehash = ec_prehash(digest_of(alg, *h, msg)?, k.curve().field_len());
            let ok = match k {
                EcKey::P256 { signing, .. } => p256::ecdsa::Signature::from_der(signature)
                    .map(|s| signing.verifying_key().verify_prehash(&prehash, &s).is_ok())
                    .unwrap_or(false),
                EcKey::P384 { signing, .. } => p384::ecdsa::Signature::from_der(signature)
                    .map(|s| signing.verifying_key().verify_prehash(&prehash, &s).is_ok())
                    .unwrap_or(false),
                EcKey::P521 { verifying, .. } => p521::ecdsa::Signature::from_der(signature)
                    .map(|s| verifying.verify_prehash(&prehash, &s).is_ok())
                    .unwrap_or(false),
            };
            Ok(ok)
        }
        (SignatureAlgorithm::Ed25519, KeyInner::Ed25519(k)) => match msg {
            Message::Input(m) => {
                use ring::signature::KeyPair;
                let pk = UnparsedPublicKey::new(&ED25519, k.ring.public_key().as_ref());
                Ok(pk.verify(m, signature).is_ok())
            }
            Message::Hashed(_) => Err(no_prehash_ed25519()),
        },
        _ => Err(CryptoError::UnsupportedAlgorithm(format!("{} does not fit this key", alg_name(alg)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_util::{ec, ed25519, openssl, openssl_rsa, openssl_status, rsa2048, TempDir};
    use proptest::prelude::*;

    fn sig(s: &str) -> SignatureAlgorithm {
        SignatureAlgorithm::parse(s).unwrap()
    }

    const RSA_SIGS: [&str; 7] = [
        "SHA1withRSA",
        "SHA256withRSA",
        "SHA384withRSA",
        "SHA512withRSA",
        "SHA256withRSA/PSS",
        "SHA384withRSA/PSS",
        "SHA512withRSA/PSS",
    ];
    const EC_SIGS: [&str; 4] = ["SHA1withECDSA", "SHA256withECDSA", "SHA384withECDSA", "SHA512withECDSA"];
    const ENCS: [&str; 5] = ["RSA", "RSA-OAEP/SHA1", "RSA-OAEP/SHA256", "RSA-OAEP/SHA384", "RSA-OAEP/SHA512"];

    fn all_keys() -> Vec<(&'static AsymmetricKey, &'static [&'static str])> {
        vec![
            (rsa2048(), &RSA_SIGS[..]),
            (openssl_rsa(3072), &RSA_SIGS[..]),
            (openssl_rsa(4096), &RSA_SIGS[..]),
            (openssl_rsa(1024), &RSA_SIGS[..]),
            (ec(256), &EC_SIGS[..]),
            (ec(384), &EC_SIGS[..]),
            (ec(521), &EC_SIGS[..]),
            (ed25519(), &["Ed25519"][..]),
        ]
    }

    /// Input and Hashed forms interoperate: whichever path signs (ring or
    /// RustCrypto), the other path verifies.
    #[test]
    fn sign_verify_every_algorithm_and_key() {
        let msg = b"the quick brown fox";
        for (k, algs) in all_keys() {
            for name in algs {
                let a = sig(name);
                let what = format!("{name} on {k:?}");
                if k.size_bits() == 1024 && *name == "SHA512withRSA/PSS" {
                    // 64-byte salt + 64-byte hash do not fit in 128 bytes.
                    let e = sign(&a, k, Message::Input(msg)).unwrap_err();
                    assert!(matches!(e, CryptoError::UnsupportedAlgorithm(_)), "{e:?}");
                    continue;
                }
                let s1 = sign(&a, k, Message::Input(msg)).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(verify(&a, k, Message::Input(msg), &s1).unwrap(), "{what}");
                assert!(!verify(&a, k, Message::Input(b"other"), &s1).unwrap(), "{what}");
                let mut bad = s1.clone();
                let mid = bad.len() / 2;
                bad[mid] ^= 1;
                assert!(!verify(&a, k, Message::Input(msg), &bad).unwrap(), "{what}");
                assert!(!verify(&a, k, Message::Input(msg), &[]).unwrap(), "{what}");
                assert!(!verify(&a, k, Message::Input(msg), &s1[..s1.len() - 1]).unwrap(), "{what}");
                let Some(h) = a.hash() else {
                    assert!(matches!(sign(&a, k, Message::Hashed(&[0; 32])), Err(CryptoError::InvalidInput(_))));
                    assert!(matches!(verify(&a, k, Message::Hashed(&[0; 32]), &s1), Err(CryptoError::InvalidInput(_))));
                    continue;
                };
                let d = h.digest(msg);
                assert!(verify(&a, k, Message::Hashed(&d), &s1).unwrap(), "{what}");
                let s2 = sign(&a, k, Message::Hashed(&d)).unwrap();
                assert!(verify(&a, k, Message::Input(msg), &s2).unwrap(), "{what}");
                if let SignatureAlgorithm::RsaPkcs1v15(_) = a {
                    // PKCS#1 v1.5 is deterministic: ring and RustCrypto must agree bit for bit.
                    assert_eq!(s1, s2, "{what}");
                }
                // Wrong digest length.
                for bad_len in [0, d.len() - 1, d.len() + 1] {
                    assert!(matches!(
                        sign(&a, k, Message::Hashed(&vec![1; bad_len])),
                        Err(CryptoError::InvalidInput(_))
                    ));
                    assert!(matches!(
                        verify(&a, k, Message::Hashed(&vec![1; bad_len]), &s1),
                        Err(CryptoError::InvalidInput(_))
                    ));
                }
            }
        }
    }

    #[test]
    fn algorithm_key_mismatch_is_unsupported() {
        let cases: [(&str, &AsymmetricKey); 6] = [
            ("SHA256withRSA", ec(256)),
            ("SHA256withRSA/PSS", ed25519()),
            ("SHA256withECDSA", rsa2048()),
            ("SHA256withECDSA", ed25519()),
            ("Ed25519", rsa2048()),
            ("Ed25519", ec(384)),
        ];
        for (name, k) in cases {
            let a = sig(name);
            assert!(matches!(sign(&a, k, Message::Input(b"x")), Err(CryptoError::UnsupportedAlgorithm(_))), "{name}");
            assert!(
                matches!(verify(&a, k, Message::Input(b"x"), &[0; 64]), Err(CryptoError::UnsupportedAlgorithm(_))),
                "{name}"
            );
        }
        for k in [ec(256), ed25519()] {
            let a = AsymmetricEncryption::RsaPkcs1v15;
            assert!(matches!(encrypt(&a, k, b"x"), Err(CryptoError::UnsupportedAlgorithm(_))));
            assert!(matches!(decrypt(&a, k, &[0; 256]), Err(CryptoError::UnsupportedAlgorithm(_))));
        }
    }

    /// Signatures checked by an independent implementation, the openssl CLI,
    /// in both directions; covers the RustCrypto-only paths (P-521, SHA-1 on
    /// big curves, PSS, hashed input).
    #[test]
    fn cross_check_signatures_with_openssl() {
        let dir = TempDir::new();
        let msg = b"interop message";
        let msg_path = dir.write("msg", msg);
        let cases: [(&AsymmetricKey, &str, &str, bool); 10] = [
            (rsa2048(), "SHA256withRSA", "sha256", false),
            (rsa2048(), "SHA1withRSA", "sha1", false),
            (rsa2048(), "SHA512withRSA/PSS", "sha512", true),
            (openssl_rsa(3072), "SHA384withRSA/PSS", "sha384", true),
            (ec(256), "SHA256withECDSA", "sha256", false),
            (ec(256), "SHA1withECDSA", "sha1", false),
            (ec(384), "SHA1withECDSA", "sha1", false),
            (ec(384), "SHA512withECDSA", "sha512", false),
            (ec(521), "SHA512withECDSA", "sha512", false),
            (ec(521), "SHA1withECDSA", "sha1", false),
        ];
        for (k, name, md, pss) in cases {
            let a = sig(name);
            let key_path = dir.write("key.der", &k.to_pkcs8_der());
            let pub_path = dir.write("pub.der", &k.public_key_der());
            let pss_opts: &[&str] =
                if pss { &["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"] } else { &[] };
            for hashed in [false, true] {
                let d = a.hash().unwrap().digest(msg);
                let m = if hashed { Message::Hashed(&d) } else { Message::Input(msg) };
                let s = sign(&a, k, m).unwrap();
                let sig_path = dir.write("sig", &s);
                let mut args = vec!["dgst", "-binary"];
                let mdflag = format!("-{md}");
                args.push(&mdflag);
                args.extend_from_slice(pss_opts);
                args.extend_from_slice(&["-keyform", "DER", "-verify", &pub_path, "-signature", &sig_path, &msg_path]);
                let out = openssl_status(&args, b"");
                assert!(out.status.success(), "{name} hashed={hashed}: {}", String::from_utf8_lossy(&out.stdout));
            }
            // openssl signs, we verify.
            let mut args = vec!["dgst", "-binary"];
            let mdflag = format!("-{md}");
            args.push(&mdflag);
            args.extend_from_slice(pss_opts);
            args.extend_from_slice(&["-keyform", "DER", "-sign", &key_path, &msg_path]);
            let s = openssl(&args, b"");
            assert!(verify(&a, k, Message::Input(msg), &s).unwrap(), "{name}");
        }
        // Ed25519 (openssl pkeyutl -rawin).
        let k = ed25519();
        let s = sign(&SignatureAlgorithm::Ed25519, k, Message::Input(msg)).unwrap();
        let key_path = dir.write("key.der", &k.to_pkcs8_der());
        let pub_path = dir.write("pub.der", &k.public_key_der());
        let sig_path = dir.write("sig", &s);
        let out = openssl_status(
            &[
                "pkeyutl", "-verify", "-rawin", "-pubin", "-keyform", "DER", "-inkey", &pub_path, "-sigfile",
                &sig_path, "-in", &msg_path,
            ],
            b"",
        );
        assert!(out.status.success(), "Ed25519: {}", String::from_utf8_lossy(&out.stdout));
        let theirs =
            openssl(&["pkeyutl", "-sign", "-rawin", "-keyform", "DER", "-inkey", &key_path, "-in", &msg_path], b"");
        assert_eq!(theirs, s, "Ed25519 is deterministic");
    }

    /// ECDSA made by RustCrypto verified by ring, and ring's by RustCrypto.
    #[test]
    fn cross_check_ecdsa_between_libraries() {
        use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1};
        let msg = b"cross";
        for (k, name, ring_alg) in [
            (ec(256), "SHA256withECDSA", &ECDSA_P256_SHA256_ASN1),
            (ec(384), "SHA384withECDSA", &ECDSA_P384_SHA384_ASN1),
        ] {
            let a = sig(name);
            let KeyInner::Ec(e) = k.inner() else { unreachable!() };
            let point = match e {
                EcKey::P256 { ring, .. } | EcKey::P384 { ring, .. } => {
                    use ring::signature::KeyPair;
                    ring.public_key().as_ref().to_vec()
                }
                EcKey::P521 { .. } => unreachable!(),
            };
            let rc = sign(&a, k, Message::Hashed(&a.hash().unwrap().digest(msg))).unwrap();
            assert!(UnparsedPublicKey::new(ring_alg, &point).verify(msg, &rc).is_ok(), "{name}");
            // Our verify is RustCrypto; ring made this one.
            let rg = sign(&a, k, Message::Input(msg)).unwrap();
            assert!(verify(&a, k, Message::Hashed(&a.hash().unwrap().digest(msg)), &rg).unwrap(), "{name}");
        }
    }

    #[test]
    fn rsa_encryption_round_trip_and_limits() {
        for k in [rsa2048(), openssl_rsa(3072), openssl_rsa(4096), openssl_rsa(1024)] {
            let size = k.size_bits() / 8;
            for name in ENCS {
                let a = AsymmetricEncryption::parse(name).unwrap();
                let overhead = match a {
                    AsymmetricEncryption::RsaPkcs1v15 => 11,
                    AsymmetricEncryption::RsaOaep(h) => 2 * h.output_len() + 2,
                };
                let Some(max) = size.checked_sub(overhead) else {
                    // OAEP-SHA512 cannot work with a 1024-bit key at all.
                    assert!(matches!(encrypt(&a, k, b""), Err(CryptoError::InvalidInput(_))), "{name}");
                    assert_eq!(decrypt(&a, k, &vec![1; size]), Err(CryptoError::DecryptionFailed));
                    continue;
                };
                for len in [0, 1, 32, max].into_iter().filter(|&l| l <= max) {
                    let pt = vec![0x5c; len];
                    let ct = encrypt(&a, k, &pt).unwrap_or_else(|e| panic!("{name} {len}: {e}"));
                    assert_eq!(ct.len(), size);
                    assert_eq!(decrypt(&a, k, &ct).unwrap(), pt, "{name} {len}");
                }
                assert!(matches!(encrypt(&a, k, &vec![0; max + 1]), Err(CryptoError::InvalidInput(_))), "{name}");
                // Tampering, truncation, wrong scheme: all the same error.
                let ct = encrypt(&a, k, b"secret").unwrap();
                let mut t = ct.clone();
                t[10] ^= 1;
                assert_eq!(decrypt(&a, k, &t), Err(CryptoError::DecryptionFailed), "{name}");
                assert_eq!(decrypt(&a, k, &ct[1..]), Err(CryptoError::DecryptionFailed), "{name}");
                let mut longer = vec![0u8];
                longer.extend_from_slice(&ct);
                assert_eq!(decrypt(&a, k, &longer), Err(CryptoError::DecryptionFailed), "{name}");
                assert_eq!(decrypt(&a, k, &[]), Err(CryptoError::DecryptionFailed), "{name}");
                assert_eq!(decrypt(&a, k, &vec![0xff; size]), Err(CryptoError::DecryptionFailed), "{name}");
                // Wrong scheme. Only this direction: an OAEP block starts with 0x00 and
                // passes the weak PKCS#1 v1.5 check about 1 time in 256.
                if name == "RSA" && size >= 66 {
                    let oaep = AsymmetricEncryption::RsaOaep(HashAlg::Sha256);
                    assert_eq!(decrypt(&oaep, k, &ct), Err(CryptoError::DecryptionFailed), "{name}");
                }
            }
        }
    }

    #[test]
    fn rsa_decrypts_openssl_ciphertext() {
        let dir = TempDir::new();
        let k = rsa2048();
        let pub_path = dir.write("pub.der", &k.public_key_der());
        let cases: [(&str, &[&str]); 3] = [
            ("RSA", &["-pkeyopt", "rsa_padding_mode:pkcs1"]),
            (
                "RSA-OAEP/SHA1",
                &["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha1", "-pkeyopt", "rsa_mgf1_md:sha1"],
            ),
            (
                "RSA-OAEP/SHA256",
                &[
                    "-pkeyopt",
                    "rsa_padding_mode:oaep",
                    "-pkeyopt",
                    "rsa_oaep_md:sha256",
                    "-pkeyopt",
                    "rsa_mgf1_md:sha256",
                ],
            ),
        ];
        for (name, opts) in cases {
            let mut args = vec!["pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey", &pub_path];
            args.extend_from_slice(opts);
            let ct = openssl(&args, b"from openssl");
            let a = AsymmetricEncryption::parse(name).unwrap();
            assert_eq!(decrypt(&a, k, &ct).unwrap(), b"from openssl", "{name}");
            // And the reverse direction.
            let key_path = dir.write("key.der", &k.to_pkcs8_der());
            let ours = encrypt(&a, k, b"from vssm").unwrap();
            let mut args = vec!["pkeyutl", "-decrypt", "-keyform", "DER", "-inkey", &key_path];
            args.extend_from_slice(opts);
            assert_eq!(openssl(&args, &ours), b"from vssm", "{name}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn rsa_decrypt_and_verify_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let k = rsa2048();
            for name in ENCS {
                prop_assert_eq!(decrypt(&AsymmetricEncryption::parse(name).unwrap(), k, &data), Err(CryptoError::DecryptionFailed));
            }
            for (k, algs) in [(rsa2048(), &RSA_SIGS[..]), (ec(256), &EC_SIGS[..]), (ec(521), &EC_SIGS[..]), (ed25519(), &["Ed25519"][..])] {
                for name in algs {
                    prop_assert_eq!(verify(&sig(name), k, Message::Input(b"m"), &data), Ok(false));
                }
            }
        }
    }
}
