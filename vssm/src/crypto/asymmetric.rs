//! The asymmetric operations of the API: each checks that the algorithm fits
//! the key and the digest length, then dispatches once to the module of the
//! key's type ([`super::rsa`], [`super::ec`], [`super::ed25519`]).

use super::algorithm::{AsymmetricEncryption, HashAlg, SignatureAlgorithm};
use super::keys::{AsymmetricKey, KeyInner};
use super::rsa::Scheme;
use super::CryptoError;

/// Data to sign or verify.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// The message itself; the server hashes it.
    Input(&'a [u8]),
    /// The digest computed by the caller; its length must match the hash.
    Hashed(&'a [u8]),
}

fn not_rsa(key: &AsymmetricKey, what: &str) -> CryptoError {
    CryptoError::UnsupportedAlgorithm(format!("{what} needs an RSA key, this key is {}", key.spec().as_str()))
}

/// Encrypts with the RSA public key. Too long a plaintext is `InvalidInput`.
pub fn encrypt(alg: &AsymmetricEncryption, key: &AsymmetricKey, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    match key.inner() {
        KeyInner::Rsa(k) => k.encrypt(alg, plaintext),
        _ => Err(not_rsa(key, "RSA encryption")),
    }
}

/// Decrypts with the RSA private key (constant-time in AWS-LC; blinded in
/// the `rsa` crate for legacy keys under 2048 bits). Every failure is
/// `DecryptionFailed`.
pub fn decrypt(alg: &AsymmetricEncryption, key: &AsymmetricKey, ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    match key.inner() {
        KeyInner::Rsa(k) => k.decrypt(alg, ciphertext),
        _ => Err(not_rsa(key, "RSA decryption")),
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

fn mismatch(alg: &SignatureAlgorithm, key: &AsymmetricKey) -> CryptoError {
    CryptoError::UnsupportedAlgorithm(format!("{} does not fit a {} key", alg_name(alg), key.spec().as_str()))
}

/// Checks the length of a caller-supplied digest against the hash.
fn check_digest(alg: &SignatureAlgorithm, h: HashAlg, msg: Message<'_>) -> Result<(), CryptoError> {
    match msg {
        Message::Hashed(d) if d.len() != h.output_len() => Err(CryptoError::InvalidInput(format!(
            "hashed input for {} must be {} bytes, got {}",
            alg_name(alg),
            h.output_len(),
            d.len()
        ))),
        _ => Ok(()),
    }
}

fn no_prehash_ed25519() -> CryptoError {
    CryptoError::InvalidInput("Ed25519 signs the message itself; a pre-computed hash is not supported".into())
}

/// Signs `msg`. RSA signatures are PKCS#1 v1.5 or PSS, ECDSA signatures ASN.1 DER,
/// Ed25519 signatures 64 bytes.
pub fn sign(alg: &SignatureAlgorithm, key: &AsymmetricKey, msg: Message<'_>) -> Result<Vec<u8>, CryptoError> {
    match (alg, key.inner()) {
        (SignatureAlgorithm::RsaPkcs1v15(h), KeyInner::Rsa(k)) => {
            check_digest(alg, *h, msg)?;
            k.sign(Scheme::Pkcs1, *h, msg, key.pkcs8_der())
        }
        (SignatureAlgorithm::RsaPss(h), KeyInner::Rsa(k)) => {
            check_digest(alg, *h, msg)?;
            k.sign(Scheme::Pss, *h, msg, key.pkcs8_der())
        }
        (SignatureAlgorithm::Ecdsa(h), KeyInner::Ec(k)) => {
            check_digest(alg, *h, msg)?;
            k.sign(*h, msg)
        }
        (SignatureAlgorithm::Ed25519, KeyInner::Ed25519(k)) => match msg {
            Message::Input(m) => Ok(k.sign(m)),
            Message::Hashed(_) => Err(no_prehash_ed25519()),
        },
        _ => Err(mismatch(alg, key)),
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
    match (alg, key.inner()) {
        (SignatureAlgorithm::RsaPkcs1v15(h), KeyInner::Rsa(k)) => {
            check_digest(alg, *h, msg)?;
            k.verify(Scheme::Pkcs1, *h, msg, signature)
        }
        (SignatureAlgorithm::RsaPss(h), KeyInner::Rsa(k)) => {
            check_digest(alg, *h, msg)?;
            k.verify(Scheme::Pss, *h, msg, signature)
        }
        (SignatureAlgorithm::Ecdsa(h), KeyInner::Ec(k)) => {
            check_digest(alg, *h, msg)?;
            Ok(k.verify(*h, msg, signature))
        }
        (SignatureAlgorithm::Ed25519, KeyInner::Ed25519(k)) => match msg {
            Message::Input(m) => Ok(k.verify(m, signature)),
            Message::Hashed(_) => Err(no_prehash_ed25519()),
        },
        _ => Err(mismatch(alg, key)),
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

    /// Input and Hashed forms interoperate: whichever path signs (AWS-LC or
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
                    // PKCS#1 v1.5 is deterministic: AWS-LC and RustCrypto must agree bit for bit.
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

    /// ECDSA made by AWS-LC (both paths) verified by an independent library, ring.
    #[test]
    fn cross_check_ecdsa_with_ring() {
        use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1};
        let msg = b"cross";
        for (k, name, ring_alg) in [
            (ec(256), "SHA256withECDSA", &ECDSA_P256_SHA256_ASN1),
            (ec(384), "SHA384withECDSA", &ECDSA_P384_SHA384_ASN1),
        ] {
            let a = sig(name);
            let KeyInner::Ec(e) = k.inner() else { unreachable!() };
            let point = e.public_point();
            let hashed = sign(&a, k, Message::Hashed(&a.hash().unwrap().digest(msg))).unwrap();
            assert!(UnparsedPublicKey::new(ring_alg, &point).verify(msg, &hashed).is_ok(), "{name}");
            let direct = sign(&a, k, Message::Input(msg)).unwrap();
            assert!(UnparsedPublicKey::new(ring_alg, &point).verify(msg, &direct).is_ok(), "{name}");
            // And ring's signature verifies here, on the digest path too.
            let rng = ring::rand::SystemRandom::new();
            let signing_alg = if name.starts_with("SHA256") {
                &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING
            } else {
                &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING
            };
            let rk = ring::signature::EcdsaKeyPair::from_pkcs8(signing_alg, &k.to_pkcs8_der(), &rng).unwrap();
            let theirs = rk.sign(&rng, msg).unwrap();
            assert!(verify(&a, k, Message::Input(msg), theirs.as_ref()).unwrap(), "{name}");
            assert!(verify(&a, k, Message::Hashed(&a.hash().unwrap().digest(msg)), theirs.as_ref()).unwrap(), "{name}");
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
