//! Start-up self-tests (FIPS 140-3 style) and the pairwise consistency test
//! of every generated key.
//!
//! [`run`] computes known answers of every algorithm family through the
//! same functions the API calls: SHA-1/256/384/512, HMAC with each, AES
//! ECB/CBC/CTR/GCM, DES, 3DES, RSA PKCS#1 v1.5 and PSS signatures and OAEP
//! decryption with a fixed key, ECDSA P-256/384/521 verification of fixed
//! signatures and a sign/verify round trip, Ed25519 (RFC 8032). The answers
//! come from the standards or from the openssl CLI ([`vectors`]). The result
//! is computed once per process; while it is a failure the node refuses
//! every API request with 503 and its health check says why ([`check`]).
//!
//! Fault injection, to test that path: a debug build honours the
//! environment variable `VSSM_SELFTEST_FAIL=<test name>` (or `pct` for the
//! pairwise test), which corrupts that test's expected answer. Release
//! builds ignore it, so no deployment can be put in the error state, or be
//! made to skip a test, from the environment.

mod vectors;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::algorithm::{AsymmetricEncryption, HashAlg, MacAlgorithm, SignatureAlgorithm, SymmetricAlgorithm};
use super::asymmetric::{self, Message};
use super::keys::{AsymmetricKey, KeySpec, MacKey, SymmetricKey};
use super::{mac, symmetric, CryptoError};

/// Environment variable naming a self-test to fail (debug builds only).
pub const FAIL_ENV: &str = "VSSM_SELFTEST_FAIL";

/// Outcome of the self-tests: their duration, or what failed.
static STATUS: OnceLock<Result<Duration, String>> = OnceLock::new();

/// Runs the self-tests the first time it is called (later calls return the
/// same result): their total duration, or "crypto self-test failed: " and
/// the name of the first failure.
pub fn run() -> Result<Duration, String> {
    STATUS.get_or_init(run_all).clone()
}

/// [`run`], and says the outcome on the console (stderr), once per process:
/// the time taken, or that the node refuses crypto and why.
pub fn run_and_report() {
    static REPORTED: std::sync::Once = std::sync::Once::new();
    let result = run();
    REPORTED.call_once(|| match result {
        Ok(took) => eprintln!("vssm: crypto self-tests passed in {:.1} ms", took.as_secs_f64() * 1000.0),
        Err(why) => eprintln!("vssm: {why}; the node refuses every crypto request"),
    });
}

/// Set when a generated key failed its pairwise test: from then on the
/// node is in the error state, as after a failed start-up test.
static PAIRWISE_FAILURE: OnceLock<&'static str> = OnceLock::new();

/// `Err(message)` ("crypto self-test failed: …") when the self-tests
/// failed, at start-up or in a pairwise test since; runs them if nobody
/// has yet.
pub fn check() -> Result<(), &'static str> {
    if let Some(why) = PAIRWISE_FAILURE.get() {
        return Err(why);
    }
    match STATUS.get_or_init(run_all) {
        Ok(_) => Ok(()),
        Err(why) => Err(why.as_str()),
    }
}

/// One known-answer test: its name and a function that returns whether the
/// answer was right; with `corrupt` the expected answer is altered first.
type Kat = (&'static str, fn(bool) -> bool);

const KATS: [Kat; 17] = [
    ("sha", kat_sha),
    ("hmac", kat_hmac),
    ("aes-ecb", kat_aes_ecb),
    ("aes-cbc", kat_aes_cbc),
    ("aes-ctr", kat_aes_ctr),
    ("aes-gcm", kat_aes_gcm),
    ("des", kat_des),
    ("3des", kat_3des),
    ("rsa", kat_rsa),
    ("ecdsa-p256", kat_p256),
    ("ecdsa-p384", kat_p384),
    ("ecdsa-p521", kat_p521),
    ("ed25519", kat_ed25519),
    ("pct", kat_pairwise),
    // The cluster join seals the RPC key with these (AWS-LC, not the
    // RustCrypto AES-GCM of the API): cluster/join/seal.rs.
    ("x25519", kat_x25519),
    ("hkdf-sha256", kat_hkdf),
    ("aes-256-gcm-seal", kat_seal_aead),
];

fn run_all() -> Result<Duration, String> {
    run_with(injected_failure().as_deref())
}

/// Runs every test, corrupting the one named `corrupt`.
fn run_with(corrupt: Option<&str>) -> Result<Duration, String> {
    let start = Instant::now();
    for (name, test) in KATS {
        if !test(corrupt == Some(name)) {
            return Err(format!("crypto self-test failed: {name} known-answer test"));
        }
    }
    Ok(start.elapsed())
}

/// The test named by [`FAIL_ENV`], in debug builds.
fn injected_failure() -> Option<String> {
    if cfg!(debug_assertions) {
        std::env::var(FAIL_ENV).ok()
    } else {
        None
    }
}

/// Checks a freshly generated key before it is accepted: a signature made
/// with it verifies (and for RSA, a ciphertext decrypts back). Any failure
/// is [`CryptoError::Internal`]: a key that fails is never used.
pub(crate) fn pairwise_consistency(key: &AsymmetricKey) -> Result<(), CryptoError> {
    let corrupt = injected_failure().as_deref() == Some("pct");
    if pairwise(key, corrupt) {
        Ok(())
    } else {
        // FIPS 140-3: a pairwise failure is a self-test failure; the node
        // stops serving crypto (503) until it is replaced.
        const WHY: &str = "crypto self-test failed: pairwise consistency test of a new key";
        if PAIRWISE_FAILURE.set(WHY).is_ok() {
            eprintln!("vssm: {WHY}; the node refuses every crypto request");
        }
        Err(CryptoError::Internal("pairwise consistency test of the new key failed"))
    }
}

fn pairwise(key: &AsymmetricKey, corrupt: bool) -> bool {
    const MSG: &[u8] = b"VSSM pairwise consistency test";
    let alg = match key.spec() {
        KeySpec::Rsa => SignatureAlgorithm::RsaPkcs1v15(HashAlg::Sha256),
        KeySpec::Ec => SignatureAlgorithm::Ecdsa(HashAlg::Sha256),
        KeySpec::Ed25519 => SignatureAlgorithm::Ed25519,
    };
    let Ok(mut signature) = asymmetric::sign(&alg, key, Message::Input(MSG)) else { return false };
    if corrupt {
        flip(&mut signature);
    }
    if asymmetric::verify(&alg, key, Message::Input(MSG), &signature) != Ok(true) {
        return false;
    }
    if key.spec() == KeySpec::Rsa {
        let oaep = AsymmetricEncryption::RsaOaep(HashAlg::Sha256);
        let Ok(ciphertext) = asymmetric::encrypt(&oaep, key, MSG) else { return false };
        return asymmetric::decrypt(&oaep, key, &ciphertext).is_ok_and(|p| p == MSG);
    }
    true
}

/// The pairwise test on a fixed Ed25519 key (generation is not a start-up step).
fn kat_pairwise(corrupt: bool) -> bool {
    let Ok(key) = AsymmetricKey::from_pkcs8_der(&ed25519_pkcs8()) else { return false };
    pairwise(&key, corrupt)
}

/// Flips one bit (a corrupted expected answer or signature).
fn flip(bytes: &mut [u8]) {
    if let Some(b) = bytes.first_mut() {
        *b ^= 1;
    }
}

/// Decodes hex from the vectors (whitespace between bytes allowed); the
/// vectors are constants, so a bad digit is a bug, reported as a mismatch.
fn hex(parts: &[&str]) -> Zeroizing<Vec<u8>> {
    let digits: Vec<u8> = parts.iter().flat_map(|p| p.bytes()).filter(|b| !b.is_ascii_whitespace()).collect();
    let value = |d: u8| (d as char).to_digit(16).unwrap_or(0) as u8;
    Zeroizing::new(digits.chunks(2).map(|pair| (value(pair[0]) << 4) | value(*pair.get(1).unwrap_or(&b'0'))).collect())
}

/// `actual == expected`, with `expected` corrupted first when asked.
fn same(actual: &[u8], expected: &[&str], corrupt: bool) -> bool {
    let mut want = hex(expected);
    if corrupt {
        flip(&mut want);
    }
    actual == want.as_slice()
}

fn kat_sha(corrupt: bool) -> bool {
    // FIPS 180-2 appendix examples, "abc".
    let cases: [(HashAlg, &str); 4] = [
        (HashAlg::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (HashAlg::Sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            HashAlg::Sha384,
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
        ),
        (
            HashAlg::Sha512,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd\
             454d4423643ce80e2a9ac94fa54ca49f",
        ),
    ];
    cases.iter().enumerate().all(|(i, (h, want))| same(&h.digest(b"abc"), &[*want], corrupt && i == 0))
}

fn kat_hmac(corrupt: bool) -> bool {
    // RFC 2202 test 2 (SHA-1) and RFC 4231 test 2 (SHA-2): key "Jefe".
    let cases: [(MacAlgorithm, &str); 4] = [
        (MacAlgorithm::Sha1, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
        (MacAlgorithm::Sha256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (
            MacAlgorithm::Sha384,
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
        ),
        (
            MacAlgorithm::Sha512,
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fd\
             caeab1a34d4a6b4b636e070a38bce737",
        ),
    ];
    let Ok(key) = MacKey::from_bytes(b"Jefe") else { return false };
    let data = b"what do ya want for nothing?";
    cases.iter().enumerate().all(|(i, (alg, want))| {
        let tag = mac::create(alg, &key, data);
        same(&tag, &[*want], corrupt && i == 0) && mac::verify(alg, &key, data, &tag)
    })
}

/// Encrypts `pt` with a fixed iv and compares with `want` (the wire form
/// `iv || ct`), then decrypts the expected wire form back to `pt`.
fn symmetric_kat(
    alg: &str,
    key: &[&str],
    iv: &[&str],
    pt: &[&str],
    aad: &[&str],
    want: &[&str],
    corrupt: bool,
) -> bool {
    let Ok(alg) = SymmetricAlgorithm::parse(alg) else { return false };
    let Ok(key) = SymmetricKey::from_bytes(&hex(key)) else { return false };
    let (iv, pt, aad) = (hex(iv), hex(pt), hex(aad));
    let Ok(wire) = symmetric::encrypt_with_iv(&alg, &key, &iv, &pt, &aad) else { return false };
    same(&wire, want, corrupt)
        && symmetric::decrypt(&alg, &key, &hex(want), &aad).is_ok_and(|p| p.as_slice() == pt.as_slice())
}

// NIST SP 800-38A, AES-128, first two blocks of F.1.1, F.2.1, F.5.1.
const SP800_38A_KEY: &[&str] = &["2b7e151628aed2a6abf7158809cf4f3c"];
const SP800_38A_PT: &[&str] = &["6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51"];

fn kat_aes_ecb(corrupt: bool) -> bool {
    let want = ["3ad77bb40d7a3660a89ecaf32466ef97 f5d3d58503b9699de785895a96fdbaaf"];
    symmetric_kat("AES/ECB/NoPadding", SP800_38A_KEY, &[], SP800_38A_PT, &[], &want, corrupt)
}

fn kat_aes_cbc(corrupt: bool) -> bool {
    let iv = "000102030405060708090a0b0c0d0e0f";
    let want = [iv, "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2"];
    symmetric_kat("AES/CBC/NoPadding", SP800_38A_KEY, &[iv], SP800_38A_PT, &[], &want, corrupt)
}

fn kat_aes_ctr(corrupt: bool) -> bool {
    let iv = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
    let want = [iv, "874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff"];
    symmetric_kat("AES/CTR/NoPadding", SP800_38A_KEY, &[iv], SP800_38A_PT, &[], &want, corrupt)
}

fn kat_aes_gcm(corrupt: bool) -> bool {
    // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 4 (AAD).
    let iv = "cafebabefacedbaddecaf888";
    let pt = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525\
              b16aedf5aa0de657ba637b39";
    let want = [
        iv,
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa05\
         1ba30b396a0aac973d58e091",
        "5bc94fbc3221a5db94fae95ae7121a47",
    ];
    let aad = ["feedfacedeadbeeffeedfacedeadbeefabaddad2"];
    symmetric_kat("AES/GCM/NoPadding", &["feffe9928665731c6d6a8f9467308308"], &[iv], &[pt], &aad, &want, corrupt)
}

fn kat_x25519(corrupt: bool) -> bool {
    use aws_lc_rs::agreement::{agree, PrivateKey, UnparsedPublicKey, X25519};
    // RFC 7748 section 5.2, first X25519 vector.
    let scalar = hex(&["a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"]);
    let u = hex(&["e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"]);
    let Ok(private) = PrivateKey::from_private_key(&X25519, &scalar) else { return false };
    agree(&private, UnparsedPublicKey::new(&X25519, &u[..]), (), |shared| {
        Ok(same(shared, &["c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"], corrupt))
    })
    .unwrap_or(false)
}

fn kat_hkdf(corrupt: bool) -> bool {
    use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};
    // RFC 5869 appendix A.1.
    struct Len(usize);
    impl aws_lc_rs::hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let ikm = hex(&["0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"]);
    let salt = hex(&["000102030405060708090a0b0c"]);
    let info = hex(&["f0f1f2f3f4f5f6f7f8f9"]);
    let mut okm = Zeroizing::new([0u8; 42]);
    let prk = Salt::new(HKDF_SHA256, &salt).extract(&ikm);
    let filled = prk.expand(&[&info[..]], Len(42)).and_then(|o| o.fill(&mut okm[..]));
    filled.is_ok()
        && same(
            &okm[..],
            &["3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"],
            corrupt,
        )
}

fn kat_seal_aead(corrupt: bool) -> bool {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    // Key 00..1f, nonce 00..0b; the expected value is from Python
    // `cryptography` (OpenSSL), an independent implementation.
    let key = hex(&["000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"]);
    let Ok(unbound) = UnboundKey::new(&AES_256_GCM, &key) else { return false };
    let sealer = LessSafeKey::new(unbound);
    let mut nonce = [0u8; 12];
    nonce.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    let mut data = b"VSSM join seal self-test".to_vec();
    let sealed = sealer.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(b"aad"), &mut data);
    sealed.is_ok()
        && same(&data, &["11518556e58fad72e361e4eed085581ee6bae119841e2c08aef945d4b5d8d7d37db239821399bb92"], corrupt)
}

fn kat_des(corrupt: bool) -> bool {
    // FIPS 81 appendix B: "Now is the time for all " under 0123456789abcdef.
    let pt = ["4e6f772069732074 68652074696d6520 666f7220616c6c20"];
    let want = ["3fa40e8a984d4815 6a271787ab8883f9 893d51ec4b563b53"];
    symmetric_kat("DES/ECB/NoPadding", &["0123456789abcdef"], &[], &pt, &[], &want, corrupt)
}

fn kat_3des(corrupt: bool) -> bool {
    // NIST SP 800-67 rev. 1 appendix B: "The qufck brown fox jump".
    let key = ["0123456789abcdef 23456789abcdef01 456789abcdef0123"];
    let pt = ["5468652071756663 6b2062726f776e20 666f78206a756d70"];
    let want = ["a826fd8ce53b855f cce21c8112256fe6 68d5c05dd9b6b900"];
    symmetric_kat("3DES/ECB/NoPadding", &key, &[], &pt, &[], &want, corrupt)
}

/// The message of the openssl-made signatures and ciphertexts.
const ABC: &[u8] = b"abc";

fn kat_rsa(corrupt: bool) -> bool {
    let Ok(key) = AsymmetricKey::from_pkcs8_der(&hex(vectors::RSA_2048_PKCS8)) else { return false };
    let pkcs1 = SignatureAlgorithm::RsaPkcs1v15(HashAlg::Sha256);
    let pss = SignatureAlgorithm::RsaPss(HashAlg::Sha256);
    // PKCS#1 v1.5 is deterministic: the exact signature openssl made.
    let signed = asymmetric::sign(&pkcs1, &key, Message::Input(ABC));
    if !signed.is_ok_and(|s| same(&s, vectors::RSA_PKCS1_SHA256_SIG, corrupt)) {
        return false;
    }
    // PSS is randomized: verify openssl's, and a round trip of ours.
    let theirs = hex(vectors::RSA_PSS_SHA256_SIG);
    if asymmetric::verify(&pss, &key, Message::Input(ABC), &theirs) != Ok(true) {
        return false;
    }
    let ours = asymmetric::sign(&pss, &key, Message::Input(ABC));
    if !ours.is_ok_and(|s| asymmetric::verify(&pss, &key, Message::Input(ABC), &s) == Ok(true)) {
        return false;
    }
    let oaep = AsymmetricEncryption::RsaOaep(HashAlg::Sha256);
    asymmetric::decrypt(&oaep, &key, &hex(vectors::RSA_OAEP_SHA256_CT)).is_ok_and(|p| p == ABC)
}

/// Verifies openssl's signature of "abc" with the key's own hash, then a
/// round trip of ours.
fn ecdsa_kat(pkcs8: &[&str], signature: &[&str], h: HashAlg, corrupt: bool) -> bool {
    let Ok(key) = AsymmetricKey::from_pkcs8_der(&hex(pkcs8)) else { return false };
    let alg = SignatureAlgorithm::Ecdsa(h);
    let mut theirs = hex(signature);
    if corrupt {
        // The last byte is inside s: the encoding stays valid, the value not.
        if let Some(b) = theirs.last_mut() {
            *b ^= 1;
        }
    }
    if asymmetric::verify(&alg, &key, Message::Input(ABC), &theirs) != Ok(true) {
        return false;
    }
    let ours = asymmetric::sign(&alg, &key, Message::Input(ABC));
    ours.is_ok_and(|s| asymmetric::verify(&alg, &key, Message::Input(ABC), &s) == Ok(true))
}

fn kat_p256(corrupt: bool) -> bool {
    ecdsa_kat(vectors::P256_PKCS8, vectors::P256_SIG, HashAlg::Sha256, corrupt)
}

fn kat_p384(corrupt: bool) -> bool {
    ecdsa_kat(vectors::P384_PKCS8, vectors::P384_SIG, HashAlg::Sha384, corrupt)
}

fn kat_p521(corrupt: bool) -> bool {
    ecdsa_kat(vectors::P521_PKCS8, vectors::P521_SIG, HashAlg::Sha512, corrupt)
}

/// RFC 8032 section 7.1 TEST 1 as PKCS#8 v1 (RFC 8410 prefix, then the seed).
fn ed25519_pkcs8() -> Zeroizing<Vec<u8>> {
    hex(&["302e020100300506032b657004220420", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"])
}

fn kat_ed25519(corrupt: bool) -> bool {
    let Ok(key) = AsymmetricKey::from_pkcs8_der(&ed25519_pkcs8()) else { return false };
    let public = hex(&["302a300506032b6570032100", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"]);
    if key.public_key_der() != public.as_slice() {
        return false;
    }
    let want = ["e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b\
         d25bf5f0595bbe24655141438e7a100b"];
    let signed = asymmetric::sign(&SignatureAlgorithm::Ed25519, &key, Message::Input(b""));
    signed.is_ok_and(|s| {
        same(&s, &want, corrupt)
            && asymmetric::verify(&SignatureAlgorithm::Ed25519, &key, Message::Input(b""), &s) == Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_pass_and_each_can_fail() {
        run_with(None).unwrap_or_else(|e| panic!("{e}"));
        for (name, _) in KATS {
            let e = run_with(Some(name)).unwrap_err();
            assert_eq!(e, format!("crypto self-test failed: {name} known-answer test"));
        }
    }

    #[test]
    fn cached_result_is_a_pass() {
        assert!(run().is_ok());
        assert_eq!(check(), Ok(()));
    }

    #[test]
    fn pairwise_consistency_catches_a_bad_signature() {
        for (spec, size) in [(KeySpec::Ec, 256), (KeySpec::Ed25519, 0)] {
            let key = AsymmetricKey::generate(spec, size).unwrap();
            assert!(pairwise(&key, false));
            assert!(!pairwise(&key, true), "{spec:?}");
        }
        assert!(!pairwise(crate::crypto::test_util::rsa2048(), true));
        assert_eq!(pairwise_consistency(crate::crypto::test_util::rsa2048()), Ok(()));
    }

    #[test]
    fn hex_decodes_with_spaces() {
        assert_eq!(hex(&["0a ff", "10"]).as_slice(), &[0x0a, 0xff, 0x10]);
    }
}
