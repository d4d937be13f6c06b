//! Key material. Every secret byte lives in zeroize-on-drop storage, `Debug`
//! shows only type and size, and nothing implements `Display`.
//!
//! An asymmetric key is parsed once, at import or generation, into the key
//! object of the module owning its type ([`super::rsa`], [`super::ec`],
//! [`super::ed25519`]), because building it (RSA CRT checks, EC point
//! validation) costs far more than one signature.

use std::fmt;
use std::sync::OnceLock;

use pkcs8::der::asn1::OctetStringRef;
use pkcs8::der::Decode;
use pkcs8::{ObjectIdentifier, PrivateKeyInfo};
use zeroize::Zeroizing;

use super::algorithm::MacAlgorithm;
use super::ec::EcKey;
use super::ed25519::Ed25519Key;
use super::rsa::RsaKey;
use super::{random_bytes, CryptoError};

/// `as_bytes`, `len`, `is_empty` and the size-only `Debug` of the two
/// byte-string key types (`$ty` with a `bytes: Zeroizing<Vec<u8>>` field). A
/// macro because they are inherent methods of two public types.
macro_rules! key_bytes_accessors {
    ($ty:ident) => {
        impl $ty {
            /// The raw key bytes.
            pub fn as_bytes(&self) -> &[u8] {
                &self.bytes
            }

            /// Key length in bytes.
            pub fn len(&self) -> usize {
                self.bytes.len()
            }

            /// Always false (an empty key cannot be constructed); for clippy's `len_without_is_empty`.
            pub fn is_empty(&self) -> bool {
                self.bytes.is_empty()
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty)).field("len", &self.len()).finish_non_exhaustive()
            }
        }
    };
}

/// AES, DES or 3DES key (8, 16, 24 or 32 bytes; the algorithm picks the cipher).
pub struct SymmetricKey {
    bytes: Zeroizing<Vec<u8>>,
    /// AWS-LC's expanded AES-GCM key (AES key schedule and GHASH table),
    /// made on first GCM use: expanding it per request cost about a quarter
    /// of an AES-GCM item in a batch. None for a DES key. AWS-LC frees it
    /// with `OPENSSL_free`, which wipes the allocation.
    gcm: OnceLock<Option<Box<aws_lc_rs::aead::LessSafeKey>>>,
}

impl SymmetricKey {
    /// Accepted key lengths in bytes: DES, AES-128, AES-192 or 3DES, AES-256.
    pub const VALID_LENGTHS: [usize; 4] = [8, 16, 24, 32];

    /// Wraps raw key bytes (copied).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if !Self::VALID_LENGTHS.contains(&bytes.len()) {
            return Err(CryptoError::InvalidKey(format!(
                "symmetric key must be 8, 16, 24 or 32 bytes, got {}",
                bytes.len()
            )));
        }
        Ok(SymmetricKey { bytes: Zeroizing::new(bytes.to_vec()), gcm: OnceLock::new() })
    }

    /// Generates a random key of `len` bytes (8, 16, 24 or 32).
    pub fn generate(len: u64) -> Result<Self, CryptoError> {
        match usize::try_from(len) {
            Ok(n) if Self::VALID_LENGTHS.contains(&n) => {
                Ok(SymmetricKey { bytes: Zeroizing::new(random_bytes(n)?), gcm: OnceLock::new() })
            }
            _ => Err(CryptoError::InvalidKey(format!("symmetric key size must be 8, 16, 24 or 32 bytes, got {len}"))),
        }
    }

    /// The AES-GCM key (16, 24 or 32 bytes), made once per key; None for
    /// a key of another length.
    pub(crate) fn gcm_key(&self) -> Option<&aws_lc_rs::aead::LessSafeKey> {
        use aws_lc_rs::aead::{LessSafeKey, UnboundKey, AES_128_GCM, AES_192_GCM, AES_256_GCM};
        let prepared = self.gcm.get_or_init(|| {
            let algorithm = match self.bytes.len() {
                16 => &AES_128_GCM,
                24 => &AES_192_GCM,
                32 => &AES_256_GCM,
                _ => return None,
            };
            UnboundKey::new(algorithm, &self.bytes).ok().map(|key| Box::new(LessSafeKey::new(key)))
        });
        prepared.as_deref()
    }
}

key_bytes_accessors!(SymmetricKey);

/// HMAC key (any length from 1 to 1024 bytes; HMAC accepts all).
pub struct MacKey {
    bytes: Zeroizing<Vec<u8>>,
    /// AWS-LC's keyed HMAC state per algorithm (indexed by
    /// [`MacAlgorithm::index`]), made on first use: hashing the padded key
    /// per request cost about 6% of an HMAC request. AWS-LC wipes it when
    /// it is dropped (`HMAC_CTX_cleanup` is `OPENSSL_cleanse`). Boxed: a
    /// state is about a kilobyte and most keys use one algorithm.
    prepared: [OnceLock<Box<aws_lc_rs::hmac::Key>>; MacAlgorithm::COUNT],
}

impl MacKey {
    /// Largest key accepted by [`from_bytes`](Self::from_bytes).
    pub const MAX_IMPORT_LEN: usize = 1024;
    /// Range of sizes accepted by [`generate`](Self::generate), in bytes.
    pub const GENERATE_LENS: std::ops::RangeInclusive<u64> = 16..=128;

    /// Wraps raw key bytes (copied), 1 to 1024 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.is_empty() || bytes.len() > Self::MAX_IMPORT_LEN {
            return Err(CryptoError::InvalidKey(format!(
                "MAC key must be 1 to {} bytes, got {}",
                Self::MAX_IMPORT_LEN,
                bytes.len()
            )));
        }
        Ok(MacKey { bytes: Zeroizing::new(bytes.to_vec()), prepared: Default::default() })
    }

    /// Generates a random key of `len` bytes (16 to 128).
    pub fn generate(len: u64) -> Result<Self, CryptoError> {
        if !Self::GENERATE_LENS.contains(&len) {
            return Err(CryptoError::InvalidKey(format!("MAC key size must be 16 to 128 bytes, got {len}")));
        }
        Ok(MacKey { bytes: Zeroizing::new(random_bytes(len as usize)?), prepared: Default::default() })
    }

    /// The keyed HMAC state for `alg`, made once per key and algorithm.
    pub(crate) fn hmac_key(&self, alg: &MacAlgorithm) -> &aws_lc_rs::hmac::Key {
        self.prepared[alg.index()].get_or_init(|| Box::new(aws_lc_rs::hmac::Key::new(alg.aws_lc(), &self.bytes)))
    }
}

key_bytes_accessors!(MacKey);

/// Type of an asymmetric key, as named in the API (`keySpec`, backup `keyType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySpec {
    /// RSA, 1024 to 8192 bits (generated: 2048, 3072, 4096).
    Rsa,
    /// ECDSA on P-256, P-384 or P-521.
    Ec,
    /// Ed25519 (RFC 8032).
    Ed25519,
}

impl KeySpec {
    /// "RSA", "EC" or "ED25519".
    pub fn as_str(self) -> &'static str {
        match self {
            KeySpec::Rsa => "RSA",
            KeySpec::Ec => "EC",
            KeySpec::Ed25519 => "ED25519",
        }
    }

    /// Parses "RSA", "EC", "ED25519" (case-insensitive).
    pub fn parse(s: &str) -> Result<Self, CryptoError> {
        if s.eq_ignore_ascii_case("RSA") {
            Ok(KeySpec::Rsa)
        } else if s.eq_ignore_ascii_case("EC") {
            Ok(KeySpec::Ec)
        } else if s.eq_ignore_ascii_case("ED25519") {
            Ok(KeySpec::Ed25519)
        } else {
            Err(CryptoError::UnsupportedAlgorithm(format!(
                "unknown key spec {}, expected RSA, EC or ED25519",
                super::quote(s)
            )))
        }
    }
}

/// NIST curve of an EC key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
}

impl Curve {
    /// Length of a scalar / field element in bytes.
    pub fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
}

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// RSA sizes accepted by [`AsymmetricKey::generate`].
pub const RSA_GENERATE_BITS: [u64; 3] = super::rsa::GENERATE_BITS;
/// Smallest RSA modulus accepted on import. Lower than the generation floor
/// because the first VSSM generated any size and its backups must restore.
pub const RSA_IMPORT_MIN_BITS: usize = super::rsa::IMPORT_MIN_BITS;
/// Largest RSA modulus accepted on import (bounds the cost of every operation).
pub const RSA_IMPORT_MAX_BITS: usize = super::rsa::IMPORT_MAX_BITS;

/// The key of one type, in the module that owns the type.
pub(crate) enum KeyInner {
    Rsa(RsaKey),
    Ec(EcKey),
    Ed25519(Ed25519Key),
}

/// Asymmetric private key (RSA, EC P-256/P-384/P-521 or Ed25519).
pub struct AsymmetricKey {
    inner: KeyInner,
    /// Canonical PKCS#8 DER, kept so export/backup never re-derives secrets.
    pkcs8: Zeroizing<Vec<u8>>,
    /// DER SubjectPublicKeyInfo.
    spki: Vec<u8>,
    size_bits: usize,
}

fn bad_key(what: &str) -> CryptoError {
    CryptoError::InvalidKey(what.to_string())
}

impl AsymmetricKey {
    /// Imports a PKCS#8 DER private key: RSA (rsaEncryption, 1024..=8192 bits),
    /// EC (id-ecPublicKey with named curve P-256, P-384 or P-521) or Ed25519
    /// (PKCS#8 v1 or v2).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        // Parsed here only to pick the type; it borrows `der`, copying nothing.
        let info = PrivateKeyInfo::try_from(der).map_err(|_| bad_key("not a PKCS#8 DER private key"))?;
        let oid = info.algorithm.oid;
        if oid == OID_RSA {
            Ok(Self::from_rsa(RsaKey::from_pkcs8(der)?))
        } else if oid == OID_EC {
            let curve = info.algorithm.parameters_oid().map_err(|_| bad_key("EC key without a named curve"))?;
            let curve = if curve == OID_P256 {
                Curve::P256
            } else if curve == OID_P384 {
                Curve::P384
            } else if curve == OID_P521 {
                Curve::P521
            } else {
                return Err(bad_key("unsupported EC curve (P-256, P-384 and P-521 are supported)"));
            };
            Ok(Self::from_ec(curve, EcKey::from_pkcs8(curve, der)?))
        } else if oid == OID_ED25519 {
            if info.algorithm.parameters.is_some() {
                return Err(bad_key("Ed25519 algorithm identifier must not have parameters"));
            }
            // privateKey is an OCTET STRING wrapping the 32-byte seed (RFC 8410).
            let seed =
                OctetStringRef::from_der(info.private_key).map_err(|_| bad_key("malformed Ed25519 private key"))?;
            Ok(Self::from_ed25519(Ed25519Key::from_seed(seed.as_bytes(), info.public_key)?))
        } else {
            Err(bad_key("unsupported key algorithm (RSA, EC and Ed25519 are supported)"))
        }
    }

    /// Generates a key: RSA 2048/3072/4096 bits, EC 256/384/521 (curve size),
    /// Ed25519 with size 0 or 256. Other sizes are refused before any work.
    /// Every new key passes a pairwise consistency test (sign and verify,
    /// and for RSA encrypt and decrypt) before it is returned; a failure is
    /// [`CryptoError::Internal`].
    pub fn generate(spec: KeySpec, size: u64) -> Result<Self, CryptoError> {
        let key = match spec {
            KeySpec::Rsa => {
                if !RSA_GENERATE_BITS.contains(&size) {
                    return Err(CryptoError::InvalidKey(format!(
                        "RSA key size must be 2048, 3072 or 4096 bits, got {size}"
                    )));
                }
                Self::from_rsa(RsaKey::generate(size)?)
            }
            KeySpec::Ec => {
                let curve = match size {
                    256 => Curve::P256,
                    384 => Curve::P384,
                    521 => Curve::P521,
                    _ => {
                        return Err(CryptoError::InvalidKey(format!(
                            "EC key size must be 256, 384 or 521 (P-224 is not supported), got {size}"
                        )))
                    }
                };
                Self::from_ec(curve, EcKey::generate(curve)?)
            }
            KeySpec::Ed25519 => {
                if size != 0 && size != 256 {
                    return Err(CryptoError::InvalidKey(format!("Ed25519 key size must be 0 or 256, got {size}")));
                }
                Self::from_ed25519(Ed25519Key::generate()?)
            }
        };
        super::selftest::pairwise_consistency(&key)?;
        Ok(key)
    }

    fn from_rsa(l: super::rsa::Loaded) -> Self {
        AsymmetricKey { inner: KeyInner::Rsa(l.key), pkcs8: l.pkcs8, spki: l.spki, size_bits: l.bits }
    }

    fn from_ec(curve: Curve, l: super::ec::Loaded) -> Self {
        let size_bits = match curve {
            Curve::P256 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
        };
        AsymmetricKey { inner: KeyInner::Ec(l.key), pkcs8: l.pkcs8, spki: l.spki, size_bits }
    }

    fn from_ed25519(l: super::ed25519::Loaded) -> Self {
        AsymmetricKey { inner: KeyInner::Ed25519(l.key), pkcs8: l.pkcs8, spki: l.spki, size_bits: 256 }
    }

    /// PKCS#8 DER of the private key (v1; for Ed25519 the RFC 8410 form
    /// without public key, as OpenSSL and Go write it).
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        self.pkcs8.clone()
    }

    /// The PKCS#8 DER private key, borrowed (no copy to wipe).
    pub(crate) fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The key as rustls takes it, for serving TLS with the RPC certificate;
    /// wiped when dropped (rustls-pki-types does not wipe on drop itself), so
    /// callers hand rustls `clone_key()`s and let this copy go on every path.
    pub(crate) fn to_rustls_key(&self) -> Zeroizing<rustls_pki_types::PrivateKeyDer<'static>> {
        Zeroizing::new(rustls_pki_types::PrivatePkcs8KeyDer::from(self.pkcs8.to_vec()).into())
    }

    /// DER SubjectPublicKeyInfo of the public key (EC points uncompressed).
    pub fn public_key_der(&self) -> Vec<u8> {
        self.spki.clone()
    }

    /// Key type.
    pub fn spec(&self) -> KeySpec {
        match self.inner {
            KeyInner::Rsa(_) => KeySpec::Rsa,
            KeyInner::Ec(_) => KeySpec::Ec,
            KeyInner::Ed25519(_) => KeySpec::Ed25519,
        }
    }

    /// Modulus size for RSA, curve size for EC (256/384/521), 256 for Ed25519.
    pub fn size_bits(&self) -> usize {
        self.size_bits
    }

    pub(crate) fn inner(&self) -> &KeyInner {
        &self.inner
    }
}

impl fmt::Debug for AsymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsymmetricKey")
            .field("spec", &self.spec())
            .field("size_bits", &self.size_bits)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_util::{ec, ed25519, openssl, openssl_genpkey, openssl_rsa, rsa2048, to_hex, TempDir};

    #[test]
    fn key_types_are_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<SymmetricKey>();
        check::<MacKey>();
        check::<AsymmetricKey>();
    }

    #[test]
    fn symmetric_key_sizes() {
        for n in [8u64, 16, 24, 32] {
            let k = SymmetricKey::generate(n).unwrap();
            assert_eq!(k.len() as u64, n);
            assert_eq!(SymmetricKey::from_bytes(k.as_bytes()).unwrap().as_bytes(), k.as_bytes());
        }
        for n in [0u64, 1, 7, 9, 15, 17, 23, 25, 31, 33, 64, u64::MAX] {
            assert!(matches!(SymmetricKey::generate(n), Err(CryptoError::InvalidKey(_))), "{n}");
        }
        for n in [0usize, 7, 33] {
            assert!(matches!(SymmetricKey::from_bytes(&vec![1; n]), Err(CryptoError::InvalidKey(_))), "{n}");
        }
        assert_ne!(SymmetricKey::generate(32).unwrap().as_bytes(), SymmetricKey::generate(32).unwrap().as_bytes());
    }

    #[test]
    fn mac_key_sizes() {
        for n in [16u64, 17, 64, 128] {
            assert_eq!(MacKey::generate(n).unwrap().len() as u64, n);
        }
        for n in [0u64, 15, 129, 1024, u64::MAX] {
            assert!(matches!(MacKey::generate(n), Err(CryptoError::InvalidKey(_))), "{n}");
        }
        assert_eq!(MacKey::from_bytes(&[1]).unwrap().len(), 1);
        assert_eq!(MacKey::from_bytes(&[1; 1024]).unwrap().len(), 1024);
        assert!(matches!(MacKey::from_bytes(&[]), Err(CryptoError::InvalidKey(_))));
        assert!(matches!(MacKey::from_bytes(&[1; 1025]), Err(CryptoError::InvalidKey(_))));
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let secret = [0xa7u8; 32];
        let hexed = to_hex(&secret);
        let decimal = format!("{:?}", &secret[..4]).trim_end_matches(']').to_string();
        let s = format!("{:?}", SymmetricKey::from_bytes(&secret).unwrap());
        let m = format!("{:?}", MacKey::from_bytes(&secret).unwrap());
        for d in [&s, &m] {
            assert!(!d.contains(&hexed) && !d.contains("a7") && !d.contains("167") && !d.contains(&decimal), "{d}");
            assert!(d.contains("32"), "{d}");
        }
        for k in [rsa2048(), ec(256), ed25519()] {
            let d = format!("{k:?}");
            let der = k.to_pkcs8_der();
            // Any 8-byte window of the private encoding, hex or decimal, must not show.
            assert!(!d.contains(&to_hex(&der[der.len() - 8..])), "{d}");
            assert!(d.len() < 100, "{d}");
        }
    }

    #[test]
    fn key_spec_names() {
        for s in [KeySpec::Rsa, KeySpec::Ec, KeySpec::Ed25519] {
            assert_eq!(KeySpec::parse(s.as_str()).unwrap(), s);
        }
        assert_eq!(KeySpec::parse("ec").unwrap(), KeySpec::Ec);
        assert_eq!(KeySpec::parse("Ed25519").unwrap(), KeySpec::Ed25519);
        assert!(KeySpec::parse("DSA").is_err());
    }

    #[test]
    fn asymmetric_generate_refuses_bad_sizes_quickly() {
        let t = std::time::Instant::now();
        for n in [0u64, 512, 1024, 2047, 2049, 8192, 16384, 1 << 20, u64::MAX] {
            assert!(matches!(AsymmetricKey::generate(KeySpec::Rsa, n), Err(CryptoError::InvalidKey(_))), "{n}");
        }
        for n in [0u64, 192, 224, 255, 257, 512, u64::MAX] {
            assert!(matches!(AsymmetricKey::generate(KeySpec::Ec, n), Err(CryptoError::InvalidKey(_))), "{n}");
        }
        for n in [1u64, 255, 448, 512] {
            assert!(matches!(AsymmetricKey::generate(KeySpec::Ed25519, n), Err(CryptoError::InvalidKey(_))), "{n}");
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn generated_keys_round_trip_pkcs8() {
        let keys: [(&AsymmetricKey, KeySpec, usize); 5] = [
            (rsa2048(), KeySpec::Rsa, 2048),
            (ec(256), KeySpec::Ec, 256),
            (ec(384), KeySpec::Ec, 384),
            (ec(521), KeySpec::Ec, 521),
            (ed25519(), KeySpec::Ed25519, 256),
        ];
        for (k, spec, bits) in keys {
            assert_eq!((k.spec(), k.size_bits()), (spec, bits));
            let again = AsymmetricKey::from_pkcs8_der(&k.to_pkcs8_der()).unwrap();
            assert_eq!(again.public_key_der(), k.public_key_der(), "{spec:?}");
            assert_eq!(*again.to_pkcs8_der(), *k.to_pkcs8_der(), "{spec:?}");
            assert_eq!((again.spec(), again.size_bits()), (spec, bits));
        }
        assert!(AsymmetricKey::generate(KeySpec::Ed25519, 256).is_ok());
        // Generated and imported keys from 2048 bits live in AWS-LC (constant-time).
        for k in [rsa2048(), openssl_rsa(3072), openssl_rsa(4096)] {
            assert!(matches!(k.inner(), KeyInner::Rsa(RsaKey::AwsLc(_))), "{k:?}");
        }
    }

    /// Our encodings are what OpenSSL derives from the same private key.
    #[test]
    fn exported_der_matches_openssl() {
        let dir = TempDir::new();
        for k in [rsa2048(), ec(256), ec(384), ec(521), ed25519()] {
            let p = dir.write("k.der", &k.to_pkcs8_der());
            let spki = openssl(&["pkey", "-inform", "DER", "-in", &p, "-pubout", "-outform", "DER"], b"");
            assert_eq!(spki, k.public_key_der(), "{k:?}");
        }
    }

    #[test]
    fn imports_openssl_genpkey_keys() {
        let dir = TempDir::new();
        let cases: [(&[&str], KeySpec, usize); 6] = [
            (&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], KeySpec::Rsa, 2048),
            (&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], KeySpec::Ec, 256),
            (&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], KeySpec::Ec, 384),
            (&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"], KeySpec::Ec, 521),
            (&["-algorithm", "ED25519"], KeySpec::Ed25519, 256),
            (
                &[
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-pkeyopt",
                    "ec_param_enc:named_curve",
                ],
                KeySpec::Ec,
                256,
            ),
        ];
        for (args, spec, bits) in cases {
            let der = openssl_genpkey(args);
            let k = AsymmetricKey::from_pkcs8_der(&der).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!((k.spec(), k.size_bits()), (spec, bits), "{args:?}");
            let p = dir.write("k.der", &der);
            let spki = openssl(&["pkey", "-inform", "DER", "-in", &p, "-pubout", "-outform", "DER"], b"");
            assert_eq!(spki, k.public_key_der(), "{args:?}");
            if spec != KeySpec::Rsa {
                // Same key material; OpenSSL's own PKCS#8 encoding is canonical for these.
                let back = AsymmetricKey::from_pkcs8_der(&k.to_pkcs8_der()).unwrap();
                assert_eq!(back.public_key_der(), spki);
            }
        }
        assert_eq!(openssl_rsa(3072).size_bits(), 3072);
        assert_eq!(openssl_rsa(4096).size_bits(), 4096);
    }

    #[test]
    fn legacy_small_rsa_imports_into_the_rsa_crate() {
        let k = openssl_rsa(1024);
        assert_eq!(k.size_bits(), 1024);
        assert!(matches!(k.inner(), KeyInner::Rsa(RsaKey::Legacy(_))));
    }

    #[test]
    fn ed25519_pkcs8_v2_checked() {
        let rng = ring::rand::SystemRandom::new();
        let v2 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let k = AsymmetricKey::from_pkcs8_der(v2.as_ref()).unwrap();
        assert_eq!(k.spec(), KeySpec::Ed25519);
        // Export is v1 (48 bytes) with the same seed.
        assert_eq!(k.to_pkcs8_der().len(), 48);
        assert_eq!(AsymmetricKey::from_pkcs8_der(&k.to_pkcs8_der()).unwrap().public_key_der(), k.public_key_der());
        // v2 whose public key does not match the seed.
        let mut bad = v2.as_ref().to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(AsymmetricKey::from_pkcs8_der(&bad), Err(CryptoError::InvalidKey(_))));
    }

    #[test]
    fn rejects_unusable_keys() {
        let bad: Vec<Vec<u8>> = vec![
            vec![],
            b"not der".to_vec(),
            openssl_genpkey(&["-algorithm", "X25519"]),
            openssl_genpkey(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-224"]),
            openssl_genpkey(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"]),
            openssl_genpkey(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512"]),
        ];
        for der in &bad {
            let e = AsymmetricKey::from_pkcs8_der(der).unwrap_err();
            assert!(matches!(e, CryptoError::InvalidKey(_)), "{e:?}");
        }
        // Truncated and trailing-garbage versions of a good key.
        let good = ec(256).to_pkcs8_der();
        assert!(AsymmetricKey::from_pkcs8_der(&good[..good.len() - 1]).is_err());
        let mut longer = good.to_vec();
        longer.push(0);
        assert!(AsymmetricKey::from_pkcs8_der(&longer).is_err());
        // Messages never echo the key.
        let e = AsymmetricKey::from_pkcs8_der(&bad[3]).unwrap_err().to_string();
        assert!(!e.contains(&to_hex(&bad[3][bad[3].len() - 8..])), "{e}");
    }
}
