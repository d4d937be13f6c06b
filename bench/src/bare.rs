//! In-process, single-thread rate of the bare primitives the server uses
//! (AWS-LC for each of them): the ceiling a
//! server on one core could reach without TLS, HTTP, JSON and base64.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair};

use crate::ops::input;

/// Calls `f` repeatedly for about `duration` (after a short warm-up) and
/// returns the rate in calls per second of CPU time (this process's, which
/// does nothing else meanwhile): on a core shared with other work the
/// single-core rate, not the share of it this thread happened to get.
pub fn measure(duration: Duration, mut f: impl FnMut()) -> f64 {
    let warm_up = Instant::now();
    while warm_up.elapsed() < duration / 10 {
        f();
    }
    let start = Instant::now();
    let cpu_start = crate::procfs::cpu_time(std::process::id());
    let mut calls = 0u64;
    // Check the clock once per batch so the timer is not part of the cost.
    loop {
        for _ in 0..16 {
            f();
        }
        calls += 16;
        let elapsed = start.elapsed();
        if elapsed >= duration {
            let cpu = cpu_start.and_then(|s| crate::procfs::cpu_time(std::process::id())?.checked_sub(s));
            // The CPU clock ticks in 10 ms: trust it only over a full second.
            let seconds = match cpu {
                Some(cpu) if cpu >= Duration::from_secs(1) => cpu.min(elapsed),
                _ => elapsed,
            };
            return calls as f64 / seconds.as_secs_f64();
        }
    }
}

/// AES-256-GCM seal of `len` bytes, fresh (counter) nonce, no AAD, with
/// the key expanded once (AWS-LC, as in the server).
pub fn aes_256_gcm_seal(len: usize) -> Box<dyn FnMut()> {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x42; 32]).unwrap());
    let plaintext = input(len);
    let mut counter = 0u64;
    Box::new(move || {
        counter += 1;
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&counter.to_be_bytes());
        let mut sealed = plaintext.clone();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut sealed).unwrap();
        black_box(sealed);
    })
}

/// HMAC-SHA256 over `len` bytes with a 32-byte key (AWS-LC, as in the server).
pub fn hmac_sha256(len: usize) -> Box<dyn FnMut()> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &[0x42; 32]);
    let msg = input(len);
    Box::new(move || {
        black_box(hmac::sign(&key, black_box(&msg)));
    })
}

/// ECDSA P-256 / SHA-256 signature (ASN.1 DER) of `len` bytes (AWS-LC, as
/// in the server).
pub fn ecdsa_p256_sign(len: usize) -> Box<dyn FnMut()> {
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    let msg = input(len);
    Box::new(move || {
        black_box(key.sign(&rng, &msg).unwrap());
    })
}

/// RSA-2048 PKCS#1 v1.5 / SHA-256 signature of `len` bytes (AWS-LC, as in
/// the server).
pub fn rsa_2048_sign(len: usize) -> Box<dyn FnMut()> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
    let generated = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let key =
        RsaKeyPair::from_pkcs8(AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&generated).unwrap().as_ref()).unwrap();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let msg = input(len);
    let mut sig = vec![0u8; key.public_modulus_len()];
    Box::new(move || {
        key.sign(&RSA_PKCS1_SHA256, &rng, &msg, &mut sig).unwrap();
        black_box(&sig);
    })
}

/// RSA-2048 OAEP-SHA256 decryption (AWS-LC, as in the server) of a
/// ciphertext of `len` plaintext bytes.
pub fn rsa_2048_oaep_decrypt(len: usize) -> Box<dyn FnMut()> {
    use aws_lc_rs::rsa::{
        KeySize, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey, OAEP_SHA256_MGF1SHA256,
    };
    let private = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
    let public = OaepPublicEncryptingKey::new(private.public_key()).unwrap();
    let mut ciphertext = vec![0u8; public.ciphertext_size()];
    let ciphertext = public.encrypt(&OAEP_SHA256_MGF1SHA256, &input(len), &mut ciphertext, None).unwrap().to_vec();
    let key = OaepPrivateDecryptingKey::new(private).unwrap();
    let mut plaintext = vec![0u8; key.min_output_size()];
    Box::new(move || {
        black_box(key.decrypt(&OAEP_SHA256_MGF1SHA256, &ciphertext, &mut plaintext, None).unwrap());
    })
}
