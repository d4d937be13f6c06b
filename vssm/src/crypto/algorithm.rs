//! Parsing of the algorithm strings of the wire API (see API.md, "Crypto
//! endpoints"). Names match case-insensitively; the canonical spelling is the
//! one in API.md.

use super::{quote, CryptoError};
use std::cell::Cell;

/// Hash function used by a signature, OAEP or HMAC algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-1 (legacy signatures and HMAC only).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// Digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Canonical API name ("SHA256" ...).
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "SHA1",
            HashAlg::Sha256 => "SHA256",
            HashAlg::Sha384 => "SHA384",
            HashAlg::Sha512 => "SHA512",
        }
    }

    /// Parses "SHA1", "SHA256", "SHA384", "SHA512" (also "SHA-256" style).
    pub fn parse(s: &str) -> Option<Self> {
        let mut buffer = [0; NAME_BUFFER];
        match ascii_upper(s, &mut buffer)? {
            "SHA1" | "SHA-1" => Some(HashAlg::Sha1),
            "SHA256" | "SHA-256" => Some(HashAlg::Sha256),
            "SHA384" | "SHA-384" => Some(HashAlg::Sha384),
            "SHA512" | "SHA-512" => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// Hashes `data` with this function.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        aws_lc_rs::digest::digest(self.aws_lc(), data).as_ref().to_vec()
    }

    /// The same hash in AWS-LC.
    pub(crate) fn aws_lc(self) -> &'static aws_lc_rs::digest::Algorithm {
        use aws_lc_rs::digest as d;
        match self {
            HashAlg::Sha1 => &d::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlg::Sha256 => &d::SHA256,
            HashAlg::Sha384 => &d::SHA384,
            HashAlg::Sha512 => &d::SHA512,
        }
    }
}

/// Room for the upper-case copy of an algorithm name or one of its parts:
/// longer than every name this module knows.
const NAME_BUFFER: usize = 32;

/// `s` split at its first `/`: a byte scan, which for names this short
/// costs a fraction of `str::split_once`'s searcher.
fn split_at_slash(s: &str) -> Option<(&str, &str)> {
    let at = s.bytes().position(|b| b == b'/')?;
    // '/' is ASCII, so both sides are valid UTF-8.
    Some((&s[..at], &s[at + 1..]))
}

/// The value of the name in `names` that `part` spells, ignoring ASCII
/// case (no copy: the symmetric algorithm is parsed once per item of a batch).
fn pick<T: Copy>(part: &str, names: &[(&str, T)]) -> Option<T> {
    // The spelling as listed first: a length check and a `memcmp` each,
    // where the case-blind comparison costs several instructions a byte.
    let exact = names.iter().find(|(name, _)| *name == part);
    let found = exact.or_else(|| names.iter().find(|(name, _)| name.eq_ignore_ascii_case(part)));
    found.map(|&(_, value)| value)
}

/// A short name, copied (for [`SymmetricAlgorithm::parse`]'s memo).
#[derive(Clone, Copy, PartialEq, Eq)]
struct NameCopy {
    bytes: [u8; NAME_BUFFER],
    len: usize,
}

impl NameCopy {
    /// None when `name` is longer than the copy holds.
    fn of(name: &str) -> Option<NameCopy> {
        let mut bytes = [0; NAME_BUFFER];
        bytes.get_mut(..name.len())?.copy_from_slice(name.as_bytes());
        Some(NameCopy { bytes, len: name.len() })
    }
}

/// `s` in ASCII upper case, written into `buffer` (no allocation: the
/// names are parsed once per request, or per item of a batch); None when
/// `s` is longer than the buffer, which no known name is.
fn ascii_upper<'b>(s: &str, buffer: &'b mut [u8; NAME_BUFFER]) -> Option<&'b str> {
    let upper = buffer.get_mut(..s.len())?;
    upper.copy_from_slice(s.as_bytes());
    upper.make_ascii_uppercase();
    // Upper-casing ASCII letters keeps UTF-8 valid.
    std::str::from_utf8(upper).ok()
}

/// Block cipher of a symmetric algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockCipherKind {
    /// AES with a 16, 24 or 32-byte key (chosen by the key).
    Aes,
    /// Single DES, 8-byte key.
    Des,
    /// Triple DES EDE with three keys (24 bytes).
    TripleDes,
}

impl BlockCipherKind {
    /// Block size in bytes.
    pub fn block_size(self) -> usize {
        match self {
            BlockCipherKind::Aes => 16,
            BlockCipherKind::Des | BlockCipherKind::TripleDes => 8,
        }
    }
}

/// Mode of operation of a symmetric algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherMode {
    /// Electronic codebook (no iv).
    Ecb,
    /// Cipher block chaining, one-block iv.
    Cbc,
    /// Counter mode, the whole block a big-endian counter.
    Ctr,
    /// Galois/counter mode (AES only), 12-byte nonce, 16-byte tag.
    Gcm,
}

impl CipherMode {
    /// True for modes that take input of any length (CTR, GCM). They still
    /// pad when the algorithm names a padding: the first VSSM pads before
    /// every mode.
    pub fn is_stream(self) -> bool {
        matches!(self, CipherMode::Ctr | CipherMode::Gcm)
    }
}

/// Padding of a symmetric algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Input must be block aligned.
    None,
    /// PKCS#7 (the API's `PKCS5Padding` means the same).
    Pkcs7,
}

/// A parsed `CIPHER/MODE/PADDING` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SymmetricAlgorithm {
    cipher: BlockCipherKind,
    mode: CipherMode,
    padding: Padding,
}

impl SymmetricAlgorithm {
    /// Parses e.g. "AES/CBC/PKCS5Padding", "3DES/ECB/NoPadding", "AES/GCM/NoPadding".
    ///
    /// The padding applies in every mode, CTR and GCM included (the first
    /// VSSM pads the plaintext before the mode whatever the mode is).
    pub fn parse(s: &str) -> Result<Self, CryptoError> {
        thread_local! {
            /// The name this thread parsed last, and what it gave: every item
            /// of a batch names its algorithm, most often the same one, and
            /// parsing it again cost 130 instructions (callgrind), a
            /// comparison 20.
            static LAST_PARSED: Cell<Option<(NameCopy, SymmetricAlgorithm)>> = const { Cell::new(None) };
        }
        let copy = NameCopy::of(s);
        if let (Some((last, algorithm)), Some(copy)) = (LAST_PARSED.get(), copy) {
            if last == copy {
                return Ok(algorithm);
            }
        }
        let algorithm = Self::parse_uncached(s)?;
        if let Some(copy) = copy {
            LAST_PARSED.set(Some((copy, algorithm)));
        }
        Ok(algorithm)
    }

    fn parse_uncached(s: &str) -> Result<Self, CryptoError> {
        let unknown = || {
            CryptoError::UnsupportedAlgorithm(format!(
                "unknown symmetric algorithm {}, expected CIPHER/MODE/PADDING with CIPHER in AES, DES, 3DES, \
                 MODE in ECB, CBC, CTR, GCM and PADDING in NoPadding, PKCS5Padding, PKCS7Padding",
                quote(s)
            ))
        };
        let (c, rest) = split_at_slash(s).ok_or_else(unknown)?;
        let (m, p) = split_at_slash(rest).ok_or_else(unknown)?;
        let cipher = pick(
            c,
            &[
                ("AES", BlockCipherKind::Aes),
                ("DES", BlockCipherKind::Des),
                ("3DES", BlockCipherKind::TripleDes),
                ("DESede", BlockCipherKind::TripleDes),
                ("TripleDES", BlockCipherKind::TripleDes),
            ],
        );
        let mode = pick(
            m,
            &[("GCM", CipherMode::Gcm), ("CBC", CipherMode::Cbc), ("CTR", CipherMode::Ctr), ("ECB", CipherMode::Ecb)],
        );
        let padding = pick(
            p,
            &[("NoPadding", Padding::None), ("PKCS5Padding", Padding::Pkcs7), ("PKCS7Padding", Padding::Pkcs7)],
        );
        let (Some(cipher), Some(mode), Some(padding)) = (cipher, mode, padding) else {
            return Err(unknown());
        };
        // `new` refuses only GCM without AES; parse names the input in that error.
        SymmetricAlgorithm::new(cipher, mode, padding)
            .map_err(|_| CryptoError::UnsupportedAlgorithm(format!("{}: GCM is only available with AES", quote(s))))
    }

    /// Builds an algorithm directly (GCM requires AES).
    pub fn new(cipher: BlockCipherKind, mode: CipherMode, padding: Padding) -> Result<Self, CryptoError> {
        if mode == CipherMode::Gcm && cipher != BlockCipherKind::Aes {
            return Err(CryptoError::UnsupportedAlgorithm("GCM is only available with AES".into()));
        }
        Ok(SymmetricAlgorithm { cipher, mode, padding })
    }

    /// The block cipher.
    pub fn cipher(&self) -> BlockCipherKind {
        self.cipher
    }

    /// The mode of operation.
    pub fn mode(&self) -> CipherMode {
        self.mode
    }

    /// The padding, applied before the mode and removed after it.
    pub fn padding(&self) -> Padding {
        self.padding
    }
}

/// RSA encryption scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsymmetricEncryption {
    /// RSAES-PKCS1-v1_5 ("RSA").
    RsaPkcs1v15,
    /// RSAES-OAEP with MGF1 of the same hash and an empty label ("RSA-OAEP/SHA256").
    RsaOaep(HashAlg),
}

impl AsymmetricEncryption {
    /// Parses "RSA" or "RSA-OAEP/SHA1|SHA256|SHA384|SHA512".
    pub fn parse(s: &str) -> Result<Self, CryptoError> {
        if s.eq_ignore_ascii_case("RSA") {
            return Ok(AsymmetricEncryption::RsaPkcs1v15);
        }
        if let Some((scheme, hash)) = s.split_once('/') {
            if scheme.eq_ignore_ascii_case("RSA-OAEP") {
                if let Some(h) = HashAlg::parse(hash) {
                    return Ok(AsymmetricEncryption::RsaOaep(h));
                }
            }
        }
        Err(CryptoError::UnsupportedAlgorithm(format!(
            "unknown asymmetric encryption algorithm {}, expected RSA or RSA-OAEP/SHA1|SHA256|SHA384|SHA512",
            quote(s)
        )))
    }
}

/// Signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 ("SHA256withRSA").
    RsaPkcs1v15(HashAlg),
    /// RSASSA-PSS, MGF1 with the same hash, salt length = hash length
    /// ("SHA256withRSA/PSS"; SHA-256/384/512 only).
    RsaPss(HashAlg),
    /// ECDSA with an ASN.1 DER signature ("SHA256withECDSA").
    Ecdsa(HashAlg),
    /// Pure Ed25519 (RFC 8032); signs the message itself, no hashed mode.
    Ed25519,
}

impl SignatureAlgorithm {
    /// Parses "SHA{1,256,384,512}withRSA", "SHA{256,384,512}withRSA/PSS",
    /// "SHA{1,256,384,512}withECDSA" and "Ed25519".
    pub fn parse(s: &str) -> Result<Self, CryptoError> {
        let unknown = || {
            CryptoError::UnsupportedAlgorithm(format!(
                "unknown signature algorithm {}, expected SHA1withRSA, SHA256withRSA, SHA384withRSA, \
                 SHA512withRSA, SHA256withRSA/PSS, SHA384withRSA/PSS, SHA512withRSA/PSS, SHA1withECDSA, \
                 SHA256withECDSA, SHA384withECDSA, SHA512withECDSA or Ed25519",
                quote(s)
            ))
        };
        let mut buffer = [0; NAME_BUFFER];
        let upper = ascii_upper(s, &mut buffer).ok_or_else(unknown)?;
        if upper == "ED25519" {
            return Ok(SignatureAlgorithm::Ed25519);
        }
        let (hash, rest) = upper.split_once("WITH").ok_or_else(unknown)?;
        let hash = HashAlg::parse(hash).ok_or_else(unknown)?;
        match rest {
            "RSA" => Ok(SignatureAlgorithm::RsaPkcs1v15(hash)),
            "ECDSA" => Ok(SignatureAlgorithm::Ecdsa(hash)),
            "RSA/PSS" | "RSAANDMGF1" if hash != HashAlg::Sha1 => Ok(SignatureAlgorithm::RsaPss(hash)),
            _ => Err(unknown()),
        }
    }

    /// The hash function, `None` for Ed25519.
    pub fn hash(&self) -> Option<HashAlg> {
        match *self {
            SignatureAlgorithm::RsaPkcs1v15(h) | SignatureAlgorithm::RsaPss(h) | SignatureAlgorithm::Ecdsa(h) => {
                Some(h)
            }
            SignatureAlgorithm::Ed25519 => None,
        }
    }
}

/// HMAC algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacAlgorithm {
    /// HMAC-SHA-1.
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-384.
    Sha384,
    /// HMAC-SHA-512.
    Sha512,
}

impl MacAlgorithm {
    /// How many MAC algorithms there are.
    pub const COUNT: usize = 4;

    /// A dense index (0..COUNT), for per-algorithm tables.
    pub fn index(&self) -> usize {
        match self {
            MacAlgorithm::Sha1 => 0,
            MacAlgorithm::Sha256 => 1,
            MacAlgorithm::Sha384 => 2,
            MacAlgorithm::Sha512 => 3,
        }
    }

    /// The AWS-LC HMAC algorithm.
    pub(crate) fn aws_lc(&self) -> aws_lc_rs::hmac::Algorithm {
        match self {
            MacAlgorithm::Sha1 => aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            MacAlgorithm::Sha256 => aws_lc_rs::hmac::HMAC_SHA256,
            MacAlgorithm::Sha384 => aws_lc_rs::hmac::HMAC_SHA384,
            MacAlgorithm::Sha512 => aws_lc_rs::hmac::HMAC_SHA512,
        }
    }
}

impl MacAlgorithm {
    /// Parses "SHA1", "SHA256", "SHA384", "SHA512"; an "Hmac" prefix
    /// ("HmacSHA256") is accepted too.
    pub fn parse(s: &str) -> Result<Self, CryptoError> {
        let bare = match s.get(..4) {
            Some(p) if p.eq_ignore_ascii_case("HMAC") => &s[4..],
            _ => s,
        };
        match HashAlg::parse(bare) {
            Some(HashAlg::Sha1) => Ok(MacAlgorithm::Sha1),
            Some(HashAlg::Sha256) => Ok(MacAlgorithm::Sha256),
            Some(HashAlg::Sha384) => Ok(MacAlgorithm::Sha384),
            Some(HashAlg::Sha512) => Ok(MacAlgorithm::Sha512),
            None => Err(CryptoError::UnsupportedAlgorithm(format!(
                "unknown HMAC algorithm {}, expected SHA1, SHA256, SHA384 or SHA512",
                quote(s)
            ))),
        }
    }

    /// Tag length in bytes.
    pub fn output_len(self) -> usize {
        self.hash().output_len()
    }

    /// The underlying hash function.
    pub fn hash(self) -> HashAlg {
        match self {
            MacAlgorithm::Sha1 => HashAlg::Sha1,
            MacAlgorithm::Sha256 => HashAlg::Sha256,
            MacAlgorithm::Sha384 => HashAlg::Sha384,
            MacAlgorithm::Sha512 => HashAlg::Sha512,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn symmetric_all_api_strings() {
        for c in ["AES", "DES", "3DES", "DESede"] {
            for m in ["ECB", "CBC", "CTR", "GCM"] {
                for p in ["NoPadding", "PKCS5Padding", "PKCS7Padding"] {
                    let s = format!("{c}/{m}/{p}");
                    let r = SymmetricAlgorithm::parse(&s);
                    if m == "GCM" && c != "AES" {
                        assert!(matches!(r, Err(CryptoError::UnsupportedAlgorithm(_))), "{s}");
                        continue;
                    }
                    let a = r.unwrap_or_else(|e| panic!("{s}: {e}"));
                    let want = if p == "NoPadding" { Padding::None } else { Padding::Pkcs7 };
                    assert_eq!(a.padding(), want, "{s}");
                }
            }
        }
        let a = SymmetricAlgorithm::parse("AES/CBC/PKCS5Padding").unwrap();
        assert_eq!((a.cipher(), a.mode(), a.padding()), (BlockCipherKind::Aes, CipherMode::Cbc, Padding::Pkcs7));
        let a = SymmetricAlgorithm::parse("DESede/ECB/NoPadding").unwrap();
        assert_eq!((a.cipher(), a.mode(), a.padding()), (BlockCipherKind::TripleDes, CipherMode::Ecb, Padding::None));
        let a = SymmetricAlgorithm::parse("AES/CTR/PKCS5Padding").unwrap();
        assert_eq!(a.padding(), Padding::Pkcs7);
        assert_eq!(SymmetricAlgorithm::parse("aes/cbc/pkcs5padding").unwrap().mode(), CipherMode::Cbc);
    }

    /// Asserts that `parse` refuses each of `inputs` with `UnsupportedAlgorithm`.
    fn assert_all_unsupported<T>(parse: fn(&str) -> Result<T, CryptoError>, inputs: &[&str]) {
        for s in inputs {
            assert!(matches!(parse(s), Err(CryptoError::UnsupportedAlgorithm(_))), "{s}");
        }
    }

    #[test]
    fn symmetric_rejects() {
        assert_all_unsupported(
            SymmetricAlgorithm::parse,
            &[
                "",
                "AES",
                "AES/CBC",
                "AES/CBC/PKCS5Padding/",
                "AES/OFB/NoPadding",
                "AES/CBC/ISO10126Padding",
                "RC4/ECB/NoPadding",
                "DES/GCM/NoPadding",
                "AES//NoPadding",
            ],
        );
    }

    #[test]
    fn asymmetric_encryption() {
        use AsymmetricEncryption::*;
        use HashAlg::*;
        let cases = [
            ("RSA", RsaPkcs1v15),
            ("RSA-OAEP/SHA1", RsaOaep(Sha1)),
            ("RSA-OAEP/SHA256", RsaOaep(Sha256)),
            ("RSA-OAEP/SHA384", RsaOaep(Sha384)),
            ("RSA-OAEP/SHA512", RsaOaep(Sha512)),
        ];
        for (s, want) in cases {
            assert_eq!(AsymmetricEncryption::parse(s).unwrap(), want, "{s}");
        }
        for s in ["", "RSA-OAEP", "RSA-OAEP/MD5", "RSA/OAEP", "EC"] {
            assert!(AsymmetricEncryption::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn signature() {
        use HashAlg::*;
        use SignatureAlgorithm::*;
        let cases = [
            ("SHA1withRSA", RsaPkcs1v15(Sha1)),
            ("SHA256withRSA", RsaPkcs1v15(Sha256)),
            ("SHA384withRSA", RsaPkcs1v15(Sha384)),
            ("SHA512withRSA", RsaPkcs1v15(Sha512)),
            ("SHA256withRSA/PSS", RsaPss(Sha256)),
            ("SHA384withRSA/PSS", RsaPss(Sha384)),
            ("SHA512withRSA/PSS", RsaPss(Sha512)),
            ("SHA1withECDSA", Ecdsa(Sha1)),
            ("SHA256withECDSA", Ecdsa(Sha256)),
            ("SHA384withECDSA", Ecdsa(Sha384)),
            ("SHA512withECDSA", Ecdsa(Sha512)),
            ("Ed25519", Ed25519),
        ];
        for (s, want) in cases {
            assert_eq!(SignatureAlgorithm::parse(s).unwrap(), want, "{s}");
        }
        assert_all_unsupported(
            SignatureAlgorithm::parse,
            &[
                "",
                "SHA1withRSA/PSS",
                "MD5withRSA",
                "SHA256with",
                "withRSA",
                "SHA256withDSA",
                "Ed448",
                "SHA256withECDSA/PSS",
            ],
        );
    }

    #[test]
    fn mac() {
        assert_eq!(MacAlgorithm::parse("SHA1").unwrap(), MacAlgorithm::Sha1);
        assert_eq!(MacAlgorithm::parse("SHA256").unwrap(), MacAlgorithm::Sha256);
        assert_eq!(MacAlgorithm::parse("SHA384").unwrap(), MacAlgorithm::Sha384);
        assert_eq!(MacAlgorithm::parse("SHA512").unwrap(), MacAlgorithm::Sha512);
        assert_eq!(MacAlgorithm::parse("HmacSHA256").unwrap(), MacAlgorithm::Sha256);
        assert_eq!(MacAlgorithm::Sha384.output_len(), 48);
        for s in ["", "MD5", "Hmac", "SHA3-256", "é"] {
            assert!(MacAlgorithm::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn hash_digest_known_answer() {
        // FIPS 180 "abc".
        assert_eq!(
            HashAlg::Sha256.digest(b"abc"),
            hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        for h in [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
            assert_eq!(h.digest(b"").len(), h.output_len());
        }
    }

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Runs every parser on `s`, for the no-panic properties.
    fn parse_with_all(s: &str) {
        let _ = SymmetricAlgorithm::parse(s);
        let _ = AsymmetricEncryption::parse(s);
        let _ = SignatureAlgorithm::parse(s);
        let _ = MacAlgorithm::parse(s);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".*") {
            parse_with_all(&s);
        }

        #[test]
        fn parsers_never_panic_on_near_misses(s in "(AES|DES|3DES|SHA256|Hmac|RSA)[/a-zA-Z0-9-]{0,20}") {
            parse_with_all(&s);
        }
    }
}
