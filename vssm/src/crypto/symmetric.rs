//! Symmetric encryption (AES, DES, 3DES in ECB, CBC, CTR; AES-GCM).
//!
//! Wire layout (API.md): ECB `ct`; CBC and CTR `iv || ct` with a random
//! one-block iv; GCM `nonce(12) || ct || tag(16)` with a random nonce.
//! Every decryption failure is the single [`CryptoError::DecryptionFailed`].

use aws_lc_rs::aead::{Aad, Nonce};
use cipher::block_padding::{NoPadding, Pkcs7};
use cipher::{BlockCipher, BlockDecryptMut, BlockEncryptMut, KeyInit, KeyIvInit, StreamCipher};
use subtle::{ConstantTimeEq, ConstantTimeGreater, ConstantTimeLess};
use zeroize::Zeroizing;

use super::algorithm::{BlockCipherKind, CipherMode, Padding, SymmetricAlgorithm};
use super::keys::SymmetricKey;
use super::{fill_random, CryptoError};

/// GCM nonce length (the only length the wire format uses).
pub const GCM_NONCE_LEN: usize = 12;
/// GCM tag length.
pub const GCM_TAG_LEN: usize = 16;

/// Cipher instance chosen from the algorithm and the key length.
#[derive(Clone, Copy)]
enum Concrete {
    Aes128,
    Aes192,
    Aes256,
    Des,
    Tdes,
}

fn resolve(alg: &SymmetricAlgorithm, key: &SymmetricKey) -> Result<Concrete, CryptoError> {
    let n = key.len();
    match (alg.cipher(), n) {
        (BlockCipherKind::Aes, 16) => Ok(Concrete::Aes128),
        (BlockCipherKind::Aes, 24) => Ok(Concrete::Aes192),
        (BlockCipherKind::Aes, 32) => Ok(Concrete::Aes256),
        (BlockCipherKind::Des, 8) => Ok(Concrete::Des),
        (BlockCipherKind::TripleDes, 24) => Ok(Concrete::Tdes),
        (BlockCipherKind::Aes, _) => {
            Err(CryptoError::UnsupportedAlgorithm(format!("AES needs a 16, 24 or 32-byte key, this key has {n} bytes")))
        }
        (BlockCipherKind::Des, _) => {
            Err(CryptoError::UnsupportedAlgorithm(format!("DES needs an 8-byte key, this key has {n} bytes")))
        }
        (BlockCipherKind::TripleDes, _) => {
            Err(CryptoError::UnsupportedAlgorithm(format!("3DES needs a 24-byte key, this key has {n} bytes")))
        }
    }
}

/// Runs a generic block-mode function with the concrete block cipher type.
macro_rules! with_block_cipher {
    ($c:expr, $f:ident ( $($a:expr),* )) => {
        match $c {
            Concrete::Aes128 => $f::<aes::Aes128>($($a),*),
            Concrete::Aes192 => $f::<aes::Aes192>($($a),*),
            Concrete::Aes256 => $f::<aes::Aes256>($($a),*),
            Concrete::Des => $f::<des::Des>($($a),*),
            Concrete::Tdes => $f::<des::TdesEde3>($($a),*),
        }
    };
}

/// Encrypts `plaintext` and returns the wire layout with a fresh random iv/nonce.
///
/// `aad` must be empty except for GCM.
pub fn encrypt(
    alg: &SymmetricAlgorithm,
    key: &SymmetricKey,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut iv = [0u8; MAX_IV_LEN];
    let iv = &mut iv[..iv_len(alg)];
    fill_random(iv)?;
    encrypt_with_iv(alg, key, iv, plaintext, aad)
}

/// The longest iv: one AES block.
const MAX_IV_LEN: usize = 16;

/// Length of the iv/nonce that leads the wire layout (0 for ECB).
fn iv_len(alg: &SymmetricAlgorithm) -> usize {
    match alg.mode() {
        CipherMode::Ecb => 0,
        CipherMode::Cbc | CipherMode::Ctr => alg.cipher().block_size(),
        CipherMode::Gcm => GCM_NONCE_LEN,
    }
}

/// [`encrypt`] with a caller-chosen iv/nonce (empty for ECB): for
/// known-answer tests and for clients that choose their own (PKCS#11's
/// `CKM_AES_GCM` and `CKM_AES_CBC` take the iv from the application).
/// Reusing an iv/nonce with one key breaks CTR and GCM: that is the
/// caller's responsibility.
pub fn encrypt_with_iv(
    alg: &SymmetricAlgorithm,
    key: &SymmetricKey,
    iv: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let c = resolve(alg, key)?;
    check_aad(alg, aad)?;
    let bs = alg.cipher().block_size();
    let want_iv = iv_len(alg);
    if iv.len() != want_iv {
        return Err(CryptoError::InvalidInput(match alg.mode() {
            CipherMode::Ecb => "ECB takes no iv".into(),
            _ => format!("iv must be {want_iv} bytes for this algorithm, got {}", iv.len()),
        }));
    }
    if matches!(alg.mode(), CipherMode::Ecb | CipherMode::Cbc)
        && alg.padding() == Padding::None
        && !plaintext.len().is_multiple_of(bs)
    {
        return Err(CryptoError::InvalidInput(format!(
            "with NoPadding the input length must be a multiple of {bs} bytes, got {}",
            plaintext.len()
        )));
    }
    let k = key.as_bytes();
    let body = match alg.mode() {
        CipherMode::Ecb => with_block_cipher!(c, ecb_encrypt(k, plaintext, alg.padding()))?,
        CipherMode::Cbc => with_block_cipher!(c, cbc_encrypt(k, iv, plaintext, alg.padding()))?,
        // The first VSSM pads before every mode, stream and AEAD included.
        CipherMode::Ctr => {
            let mut buf = padded(plaintext, bs, alg.padding());
            ctr_apply(c, k, iv, &mut buf).map_err(|_| internal_key_error())?;
            std::mem::take(&mut *buf)
        }
        CipherMode::Gcm => return gcm_seal(key, iv, plaintext, bs, alg.padding(), aad),
    };
    let mut out = Vec::with_capacity(iv.len() + body.len());
    out.extend_from_slice(iv);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decrypts the wire layout. Every failure after the algorithm/key checks
/// (length, tag, padding) is [`CryptoError::DecryptionFailed`].
pub fn decrypt(
    alg: &SymmetricAlgorithm,
    key: &SymmetricKey,
    ciphertext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let c = resolve(alg, key)?;
    check_aad(alg, aad)?;
    let bs = alg.cipher().block_size();
    let k = key.as_bytes();
    match alg.mode() {
        CipherMode::Ecb => block_decrypt(c, k, &[], ciphertext, bs, alg.padding()),
        CipherMode::Cbc => {
            if ciphertext.len() < bs {
                return Err(CryptoError::DecryptionFailed);
            }
            let (iv, ct) = ciphertext.split_at(bs);
            block_decrypt(c, k, iv, ct, bs, alg.padding())
        }
        CipherMode::Ctr => {
            if ciphertext.len() < bs {
                return Err(CryptoError::DecryptionFailed);
            }
            let (iv, ct) = ciphertext.split_at(bs);
            let mut buf = ct.to_vec();
            ctr_apply(c, k, iv, &mut buf).map_err(|_| CryptoError::DecryptionFailed)?;
            unpad(buf, bs, alg.padding())
        }
        CipherMode::Gcm => unpad(gcm_open(key, ciphertext, aad)?, bs, alg.padding()),
    }
}

/// `data` with PKCS#7 padding to a multiple of `bs` appended (a copy that
/// is wiped when dropped), or a plain copy with [`Padding::None`].
fn padded(data: &[u8], bs: usize, padding: Padding) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(padded_len(data.len(), bs, padding)));
    append_padded(&mut out, data, bs, padding);
    out
}

/// Length of `len` bytes after padding.
fn padded_len(len: usize, bs: usize, padding: Padding) -> usize {
    match padding {
        Padding::None => len,
        Padding::Pkcs7 => len + bs - len % bs,
    }
}

/// Appends `data` and its padding to `out`.
fn append_padded(out: &mut Vec<u8>, data: &[u8], bs: usize, padding: Padding) {
    let pad = padded_len(data.len(), bs, padding) - data.len();
    out.extend_from_slice(data);
    // bs <= 16, so the pad length fits a byte.
    out.resize(out.len() + pad, pad as u8);
}

/// Removes the PKCS#7 padding of a decrypted stream or AEAD plaintext. Any
/// failure is the one generic [`CryptoError::DecryptionFailed`]; a rejected
/// plaintext is wiped.
fn unpad(buf: Vec<u8>, bs: usize, padding: Padding) -> Result<Vec<u8>, CryptoError> {
    let mut buf = Zeroizing::new(buf);
    if padding == Padding::None {
        return Ok(std::mem::take(&mut *buf));
    }
    if buf.is_empty() || !buf.len().is_multiple_of(bs) {
        return Err(CryptoError::DecryptionFailed);
    }
    let len = pkcs7_unpadded_len(&buf, bs).ok_or(CryptoError::DecryptionFailed)?;
    buf.truncate(len);
    Ok(std::mem::take(&mut *buf))
}

fn check_aad(alg: &SymmetricAlgorithm, aad: &[u8]) -> Result<(), CryptoError> {
    if !aad.is_empty() && alg.mode() != CipherMode::Gcm {
        return Err(CryptoError::InvalidInput("additional authenticated data is only allowed with GCM".into()));
    }
    Ok(())
}

/// Key length was validated by `resolve`, so cipher construction cannot fail;
/// map the impossible case to an error rather than panic.
fn internal_key_error() -> CryptoError {
    CryptoError::Internal("a validated key or iv did not fit the cipher")
}

fn ecb_encrypt<C>(key: &[u8], data: &[u8], padding: Padding) -> Result<Vec<u8>, CryptoError>
where
    C: BlockCipher + BlockEncryptMut + KeyInit,
{
    let enc = ecb::Encryptor::<C>::new_from_slice(key).map_err(|_| internal_key_error())?;
    Ok(match padding {
        Padding::None => enc.encrypt_padded_vec_mut::<NoPadding>(data),
        Padding::Pkcs7 => enc.encrypt_padded_vec_mut::<Pkcs7>(data),
    })
}

fn cbc_encrypt<C>(key: &[u8], iv: &[u8], data: &[u8], padding: Padding) -> Result<Vec<u8>, CryptoError>
where
    C: BlockCipher + BlockEncryptMut + KeyInit,
{
    let enc = cbc::Encryptor::<C>::new_from_slices(key, iv).map_err(|_| internal_key_error())?;
    Ok(match padding {
        Padding::None => enc.encrypt_padded_vec_mut::<NoPadding>(data),
        Padding::Pkcs7 => enc.encrypt_padded_vec_mut::<Pkcs7>(data),
    })
}

/// Raw (unpadded) ECB or CBC decryption; `ct` must be block aligned.
fn raw_decrypt<C>(key: &[u8], iv: &[u8], ct: &[u8]) -> Option<Vec<u8>>
where
    C: BlockCipher + BlockDecryptMut + KeyInit,
{
    if iv.is_empty() {
        let dec = ecb::Decryptor::<C>::new_from_slice(key).ok()?;
        dec.decrypt_padded_vec_mut::<NoPadding>(ct).ok()
    } else {
        let dec = cbc::Decryptor::<C>::new_from_slices(key, iv).ok()?;
        dec.decrypt_padded_vec_mut::<NoPadding>(ct).ok()
    }
}

/// ECB (empty `iv`) or CBC decryption followed by constant-time unpadding.
fn block_decrypt(
    c: Concrete,
    key: &[u8],
    iv: &[u8],
    ct: &[u8],
    bs: usize,
    padding: Padding,
) -> Result<Vec<u8>, CryptoError> {
    if !ct.len().is_multiple_of(bs) || (padding == Padding::Pkcs7 && ct.is_empty()) {
        return Err(CryptoError::DecryptionFailed);
    }
    let raw = Zeroizing::new(with_block_cipher!(c, raw_decrypt(key, iv, ct)).ok_or(CryptoError::DecryptionFailed)?);
    let len = match padding {
        Padding::None => raw.len(),
        Padding::Pkcs7 => pkcs7_unpadded_len(&raw, bs).ok_or(CryptoError::DecryptionFailed)?,
    };
    Ok(raw[..len].to_vec())
}

/// Length of `buf` without its PKCS#7 padding, or `None` if the padding is
/// invalid. Examines the whole last block whatever the pad byte says, so
/// timing does not reveal where the padding went wrong.
/// `buf` must be a non-empty multiple of `bs` (bs <= 255).
fn pkcs7_unpadded_len(buf: &[u8], bs: usize) -> Option<usize> {
    let last = &buf[buf.len() - bs..];
    let n = last[bs - 1];
    let mut ok = !n.ct_eq(&0) & !n.ct_gt(&(bs as u8));
    for (i, b) in last.iter().rev().enumerate() {
        let in_pad = (i as u8).ct_lt(&n);
        ok &= !in_pad | b.ct_eq(&n);
    }
    if bool::from(ok) {
        Some(buf.len() - n as usize)
    } else {
        None
    }
}

fn ctr_apply(c: Concrete, key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), ()> {
    // Counter spans the whole block, big endian (Go's cipher.NewCTR, Java's AES/CTR).
    fn run<S: KeyIvInit + StreamCipher>(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), ()> {
        let mut s = S::new_from_slices(key, iv).map_err(|_| ())?;
        s.try_apply_keystream(buf).map_err(|_| ())
    }
    match c {
        Concrete::Aes128 => run::<ctr::Ctr128BE<aes::Aes128>>(key, iv, buf),
        Concrete::Aes192 => run::<ctr::Ctr128BE<aes::Aes192>>(key, iv, buf),
        Concrete::Aes256 => run::<ctr::Ctr128BE<aes::Aes256>>(key, iv, buf),
        Concrete::Des => run::<ctr::Ctr64BE<des::Des>>(key, iv, buf),
        Concrete::Tdes => run::<ctr::Ctr64BE<des::TdesEde3>>(key, iv, buf),
    }
}

/// `nonce || ct || tag` of the padded `plaintext`, sealed in place in the
/// answer's buffer with the key's prepared AWS-LC context.
fn gcm_seal(
    key: &SymmetricKey,
    nonce: &[u8],
    plaintext: &[u8],
    bs: usize,
    padding: Padding,
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let gcm = key.gcm_key().ok_or_else(internal_key_error)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| internal_key_error())?;
    let mut out = Vec::with_capacity(GCM_NONCE_LEN + padded_len(plaintext.len(), bs, padding) + GCM_TAG_LEN);
    out.extend_from_slice(nonce.as_ref());
    append_padded(&mut out, plaintext, bs, padding);
    match gcm.seal_in_place_separate_tag(nonce, Aad::from(aad), &mut out[GCM_NONCE_LEN..]) {
        Ok(tag) => {
            out.extend_from_slice(tag.as_ref());
            Ok(out)
        }
        Err(_) => {
            // The buffer still holds the plaintext.
            drop(Zeroizing::new(out));
            Err(CryptoError::InvalidInput("input too long for GCM".into()))
        }
    }
}

/// Opens `nonce || ct || tag`.
fn gcm_open(key: &SymmetricKey, data: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if data.len() < GCM_NONCE_LEN + GCM_TAG_LEN {
        return Err(CryptoError::DecryptionFailed);
    }
    let gcm = key.gcm_key().ok_or_else(internal_key_error)?;
    let (nonce, sealed) = data.split_at(GCM_NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::DecryptionFailed)?;
    // A failed open leaves unauthenticated plaintext in the buffer: wiped.
    let mut buf = Zeroizing::new(sealed.to_vec());
    let len = gcm.open_in_place(nonce, Aad::from(aad), &mut buf).map_err(|_| CryptoError::DecryptionFailed)?.len();
    buf.truncate(len);
    Ok(std::mem::take(&mut *buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_util::{hex, openssl, openssl_status, to_hex, TempDir};
    use proptest::prelude::*;

    fn alg(s: &str) -> SymmetricAlgorithm {
        SymmetricAlgorithm::parse(s).unwrap()
    }

    fn key(h: &str) -> SymmetricKey {
        SymmetricKey::from_bytes(&hex(h)).unwrap()
    }

    /// (cipher name, key lengths that fit it)
    const CIPHERS: [(&str, &[u64]); 3] = [("AES", &[16, 24, 32]), ("DES", &[8]), ("3DES", &[24])];
    const PADDINGS: [&str; 3] = ["NoPadding", "PKCS5Padding", "PKCS7Padding"];

    fn all_algs() -> Vec<(String, SymmetricAlgorithm, u64)> {
        let mut v = Vec::new();
        for (c, lens) in CIPHERS {
            for m in ["ECB", "CBC", "CTR", "GCM"] {
                if m == "GCM" && c != "AES" {
                    continue;
                }
                for p in PADDINGS {
                    let s = format!("{c}/{m}/{p}");
                    for &l in lens {
                        v.push((s.clone(), alg(&s), l));
                    }
                }
            }
        }
        v
    }

    #[test]
    fn round_trip_every_algorithm_and_key_size() {
        for (name, a, klen) in all_algs() {
            let k = SymmetricKey::generate(klen).unwrap();
            let bs = a.cipher().block_size();
            for len in [0usize, 1, 7, 8, 15, 16, 17, 32, 33, 100] {
                let pt: Vec<u8> = (0..len as u8).collect();
                let aligned = len % bs == 0;
                let r = encrypt(&a, &k, &pt, &[]);
                if a.padding() == Padding::None && !a.mode().is_stream() && !aligned {
                    assert!(matches!(r, Err(CryptoError::InvalidInput(_))), "{name} len {len}");
                    continue;
                }
                let ct = r.unwrap_or_else(|e| panic!("{name}/{klen} len {len}: {e}"));
                let padded_len = if a.padding() == Padding::Pkcs7 { (len / bs + 1) * bs } else { len };
                let want_len = match a.mode() {
                    CipherMode::Ecb | CipherMode::Cbc => {
                        let iv = if a.mode() == CipherMode::Cbc { bs } else { 0 };
                        iv + padded_len
                    }
                    CipherMode::Ctr => bs + padded_len,
                    CipherMode::Gcm => 12 + padded_len + 16,
                };
                assert_eq!(ct.len(), want_len, "{name}/{klen} len {len}");
                assert_eq!(decrypt(&a, &k, &ct, &[]).unwrap(), pt, "{name}/{klen} len {len}");
                if a.mode() != CipherMode::Ecb && len > 0 {
                    // Fresh random iv/nonce each time.
                    assert_ne!(encrypt(&a, &k, &pt, &[]).unwrap(), ct, "{name}");
                }
            }
        }
    }

    #[test]
    fn gcm_aad_round_trip_and_binding() {
        for klen in [16, 24, 32] {
            let k = SymmetricKey::generate(klen).unwrap();
            let a = alg("AES/GCM/NoPadding");
            let ct = encrypt(&a, &k, b"secret", b"context").unwrap();
            assert_eq!(decrypt(&a, &k, &ct, b"context").unwrap(), b"secret");
            assert_eq!(decrypt(&a, &k, &ct, b"other"), Err(CryptoError::DecryptionFailed));
            assert_eq!(decrypt(&a, &k, &ct, b""), Err(CryptoError::DecryptionFailed));
        }
    }

    #[test]
    fn aad_refused_outside_gcm() {
        let k = SymmetricKey::generate(16).unwrap();
        for m in ["ECB", "CBC", "CTR"] {
            let a = alg(&format!("AES/{m}/PKCS5Padding"));
            assert!(matches!(encrypt(&a, &k, b"x", b"aad"), Err(CryptoError::InvalidInput(_))));
            assert!(matches!(decrypt(&a, &k, &[0; 32], b"aad"), Err(CryptoError::InvalidInput(_))));
        }
    }

    #[test]
    fn key_must_fit_cipher() {
        let cases = [("AES", 8), ("DES", 16), ("DES", 24), ("3DES", 8), ("3DES", 16), ("3DES", 32), ("DES", 32)];
        for (c, l) in cases {
            let k = SymmetricKey::generate(l).unwrap();
            let a = alg(&format!("{c}/CBC/PKCS5Padding"));
            let e = encrypt(&a, &k, b"x", &[]).unwrap_err();
            assert!(
                matches!(e, CryptoError::UnsupportedAlgorithm(ref m) if m.contains(&l.to_string())),
                "{c} {l}: {e}"
            );
            assert!(matches!(decrypt(&a, &k, &[0; 32], &[]), Err(CryptoError::UnsupportedAlgorithm(_))));
        }
    }

    // NIST SP 800-38A, AES-128 vectors F.1.1, F.2.1, F.5.1.
    const SP_KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";
    const SP_PT: &str = "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51";

    #[test]
    fn kat_aes_ecb() {
        let ct = hex("3ad77bb40d7a3660a89ecaf32466ef97 f5d3d58503b9699de785895a96fdbaaf");
        let a = alg("AES/ECB/NoPadding");
        assert_eq!(encrypt(&a, &key(SP_KEY), &hex(SP_PT), &[]).unwrap(), ct);
        assert_eq!(decrypt(&a, &key(SP_KEY), &ct, &[]).unwrap(), hex(SP_PT));
    }

    /// SP 800-38A vector for a mode with an iv: our wire form is `iv || ct`.
    fn check_sp_kat_with_iv(name: &str, iv: &str, ct: &str) {
        let iv = hex(iv);
        let a = alg(name);
        let mut wire = iv.clone();
        wire.extend_from_slice(&hex(ct));
        assert_eq!(encrypt_with_iv(&a, &key(SP_KEY), &iv, &hex(SP_PT), &[]).unwrap(), wire);
        assert_eq!(decrypt(&a, &key(SP_KEY), &wire, &[]).unwrap(), hex(SP_PT));
    }

    #[test]
    fn kat_aes_cbc() {
        check_sp_kat_with_iv(
            "AES/CBC/NoPadding",
            "000102030405060708090a0b0c0d0e0f",
            "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2",
        );
    }

    #[test]
    fn kat_aes_ctr() {
        check_sp_kat_with_iv(
            "AES/CTR/NoPadding",
            "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
            "874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff",
        );
    }

    #[test]
    fn kat_aes_gcm() {
        // McGrew & Viega GCM spec, test case 2 (no AAD) and 4 (with AAD).
        let a = alg("AES/GCM/NoPadding");
        let k = key("00000000000000000000000000000000");
        let wire = hex("000000000000000000000000 0388dace60b6a392f328c2b971b2fe78 ab6e47d42cec13bdf53a67b21257bddf");
        assert_eq!(decrypt(&a, &k, &wire, &[]).unwrap(), vec![0u8; 16]);
        assert_eq!(encrypt_with_iv(&a, &k, &[0; 12], &[0; 16], &[]).unwrap(), wire);

        let k = key("feffe9928665731c6d6a8f9467308308");
        let iv = "cafebabefacedbaddecaf888";
        let pt = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let wire = hex(&format!(
            "{iv} 42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091 5bc94fbc3221a5db94fae95ae7121a47"
        ));
        assert_eq!(decrypt(&a, &k, &wire, &aad).unwrap(), pt);
        assert_eq!(encrypt_with_iv(&a, &k, &hex(iv), &pt, &aad).unwrap(), wire);
    }

    #[test]
    fn kat_des() {
        // Classic FIPS 81 example: "Now is the time for all " under 0123456789abcdef.
        let k = key("0123456789abcdef");
        let pt = b"Now is the time for all ";
        let ct = hex("3fa40e8a984d4815 6a271787ab8883f9 893d51ec4b563b53");
        assert_eq!(encrypt(&alg("DES/ECB/NoPadding"), &k, pt, &[]).unwrap(), ct);
        assert_eq!(decrypt(&alg("DES/ECB/NoPadding"), &k, &ct, &[]).unwrap(), pt);
    }

    /// Our layout vs `openssl enc`, both directions, for each cipher family.
    #[test]
    fn cross_check_openssl_enc() {
        let cases = [
            ("AES/CBC/PKCS5Padding", "aes-128-cbc", 16usize),
            ("AES/CBC/PKCS5Padding", "aes-192-cbc", 24),
            ("AES/CBC/PKCS7Padding", "aes-256-cbc", 32),
            ("AES/ECB/PKCS5Padding", "aes-256-ecb", 32),
            ("AES/CTR/NoPadding", "aes-128-ctr", 16),
            ("AES/CTR/NoPadding", "aes-256-ctr", 32),
            ("3DES/CBC/PKCS5Padding", "des-ede3-cbc", 24),
            ("3DES/ECB/PKCS5Padding", "des-ede3-ecb", 24),
            ("DES/CBC/PKCS5Padding", "des-cbc", 8),
        ];
        let pt: Vec<u8> = (0..77u8).collect();
        for (name, ossl, klen) in cases {
            let a = alg(name);
            let k = SymmetricKey::generate(klen as u64).unwrap();
            let bs = a.cipher().block_size();
            let legacy = ossl.starts_with("des-cbc");
            let mut args = vec!["enc".to_string(), format!("-{ossl}"), "-K".into(), to_hex(k.as_bytes())];
            if legacy {
                args.extend(["-provider".into(), "legacy".into(), "-provider".into(), "default".into()]);
            }
            let iv = if a.mode() == CipherMode::Ecb { vec![] } else { crate::crypto::random_bytes(bs).unwrap() };
            if !iv.is_empty() {
                args.extend(["-iv".into(), to_hex(&iv)]);
            }
            let args_ref: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
            // openssl -> us
            let mut wire = iv.clone();
            wire.extend_from_slice(&openssl(&args_ref, &pt));
            assert_eq!(decrypt(&a, &k, &wire, &[]).unwrap(), pt, "{name} {ossl}");
            // us -> openssl (same iv, so same bytes)
            assert_eq!(encrypt_with_iv(&a, &k, &iv, &pt, &[]).unwrap(), wire, "{name} {ossl}");
            let mut dec_args = args_ref.clone();
            dec_args.push("-d");
            assert_eq!(openssl(&dec_args, &wire[iv.len()..]), pt, "{name} {ossl}");
        }
    }

    /// `openssl enc` has no AEAD mode, so GCM is cross-checked against ring.
    #[test]
    fn cross_check_gcm_with_ring() {
        use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};
        for (klen, ring_alg) in [(16, &AES_128_GCM), (32, &AES_256_GCM)] {
            let k = SymmetricKey::generate(klen).unwrap();
            let wire = encrypt(&alg("AES/GCM/NoPadding"), &k, b"hello gcm", b"ad").unwrap();
            let rk = LessSafeKey::new(UnboundKey::new(ring_alg, k.as_bytes()).unwrap());
            let nonce = Nonce::try_assume_unique_for_key(&wire[..12]).unwrap();
            let mut buf = wire[12..].to_vec();
            let pt = rk.open_in_place(nonce, Aad::from(b"ad"), &mut buf).unwrap();
            assert_eq!(pt, b"hello gcm");
        }
    }

    #[test]
    fn tampering_gives_exactly_decryption_failed() {
        for (name, a, klen) in all_algs() {
            let k = SymmetricKey::generate(klen).unwrap();
            let bs = a.cipher().block_size();
            let ct = encrypt(&a, &k, &[7u8; 32], &[]).unwrap();
            // Length errors.
            if a.mode() == CipherMode::Gcm {
                for cut in [0, 1, 12, 27, ct.len() - 1] {
                    assert_eq!(
                        decrypt(&a, &k, &ct[..cut], &[]),
                        Err(CryptoError::DecryptionFailed),
                        "{name} cut {cut}"
                    );
                }
                // Any flipped bit anywhere fails authentication.
                for i in 0..ct.len() {
                    let mut t = ct.clone();
                    t[i] ^= 0x01;
                    assert_eq!(decrypt(&a, &k, &t, &[]), Err(CryptoError::DecryptionFailed), "{name} byte {i}");
                }
            }
            if matches!(a.mode(), CipherMode::Ecb | CipherMode::Cbc) {
                let mut odd = ct.clone();
                odd.push(0);
                assert_eq!(decrypt(&a, &k, &odd, &[]), Err(CryptoError::DecryptionFailed), "{name}");
            }
            if a.mode() != CipherMode::Ecb && a.mode() != CipherMode::Gcm {
                assert_eq!(decrypt(&a, &k, &ct[..bs - 1], &[]), Err(CryptoError::DecryptionFailed), "{name}");
            }
            if a.padding() == Padding::Pkcs7 {
                let min = if a.mode() == CipherMode::Cbc { bs } else { 0 };
                assert_eq!(decrypt(&a, &k, &ct[..min], &[]), Err(CryptoError::DecryptionFailed), "{name} empty");
            }
        }
    }

    #[test]
    fn wrong_padding_gives_decryption_failed() {
        // Encrypt hand-made final blocks with NoPadding, decrypt with PKCS#7.
        let k = SymmetricKey::generate(16).unwrap();
        let raw = alg("AES/CBC/NoPadding");
        let padded = alg("AES/CBC/PKCS5Padding");
        let bad_blocks: [[u8; 16]; 4] = [
            [0; 16],                                          // pad byte 0
            [17; 16],                                         // pad byte > block
            [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 2], // inconsistent
            [9, 9, 9, 9, 9, 9, 9, 8, 4, 4, 4, 4, 4, 4, 4, 4], // valid: 4 bytes of padding
        ];
        for (i, b) in bad_blocks.iter().enumerate().take(3) {
            let ct = encrypt(&raw, &k, b, &[]).unwrap();
            assert_eq!(decrypt(&padded, &k, &ct, &[]), Err(CryptoError::DecryptionFailed), "block {i}");
        }
        let ct = encrypt(&raw, &k, &bad_blocks[3], &[]).unwrap();
        assert_eq!(decrypt(&padded, &k, &ct, &[]).unwrap(), &bad_blocks[3][..12]);
        // A full block of padding is valid.
        let ct = encrypt(&raw, &k, &[16; 16], &[]).unwrap();
        assert_eq!(decrypt(&padded, &k, &ct, &[]).unwrap(), b"");
    }

    /// The constant-time unpadding agrees with the obvious implementation on every
    /// 2-byte suffix of an 8-byte block (all other bytes equal to the last).
    #[test]
    fn pkcs7_unpad_matches_reference() {
        fn reference(b: &[u8]) -> Option<usize> {
            let n = *b.last()? as usize;
            if n == 0 || n > b.len() || b[b.len() - n..].iter().any(|&x| x as usize != n) {
                None
            } else {
                Some(b.len() - n)
            }
        }
        for fill in 0..=9u8 {
            for x in 0..=255u8 {
                for last in 0..=255u8 {
                    let mut blk = [fill; 8];
                    blk[6] = x;
                    blk[7] = last;
                    assert_eq!(pkcs7_unpadded_len(&blk, 8), reference(&blk), "{blk:?}");
                }
            }
        }
    }

    #[test]
    fn nopadding_requires_alignment() {
        let k = SymmetricKey::generate(24).unwrap();
        for s in ["3DES/ECB/NoPadding", "3DES/CBC/NoPadding", "AES/CBC/NoPadding"] {
            let e = encrypt(&alg(s), &k, &[0; 9], &[]).unwrap_err();
            assert!(matches!(e, CryptoError::InvalidInput(_)), "{s}");
        }
        // Stream modes take any length whatever the padding token says.
        assert!(encrypt(&alg("AES/CTR/PKCS5Padding"), &k, &[0; 9], &[]).is_ok());
    }

    #[test]
    fn iv_length_checked() {
        let k = SymmetricKey::generate(16).unwrap();
        assert!(matches!(
            encrypt_with_iv(&alg("AES/CBC/NoPadding"), &k, &[0; 8], &[0; 16], &[]),
            Err(CryptoError::InvalidInput(_))
        ));
        assert!(matches!(
            encrypt_with_iv(&alg("AES/GCM/NoPadding"), &k, &[0; 16], b"x", &[]),
            Err(CryptoError::InvalidInput(_))
        ));
    }

    #[test]
    fn openssl_is_present() {
        // Guard: the cross-check tests above must not silently skip.
        assert!(openssl_status(&["version"], b"").status.success());
        let _ = TempDir::new().path().to_path_buf();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn decrypt_never_panics(data in proptest::collection::vec(any::<u8>(), 0..80), aad in proptest::collection::vec(any::<u8>(), 0..3)) {
            for (_, a, klen) in all_algs() {
                let k = SymmetricKey::from_bytes(&vec![0x42; klen as usize]).unwrap();
                match decrypt(&a, &k, &data, &aad) {
                    Ok(_) | Err(CryptoError::DecryptionFailed) | Err(CryptoError::InvalidInput(_)) => {}
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
        }
    }
}
