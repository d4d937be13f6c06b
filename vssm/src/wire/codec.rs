//! Field codecs of the proto3 JSON mapping: `bytes` as base64 and 64-bit
//! integers as strings, each accepting every spelling the mapping allows.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use zeroize::Zeroizing;

/// Decodes base64 in the standard or URL-safe alphabet, padded or not.
/// Trailing bits must be zero (one text per byte string).
pub fn decode_base64(text: &str) -> Result<Vec<u8>, base64_simd::Error> {
    // Byte-wise: '=', '-' and '_' are ASCII (char patterns cost more per request).
    let padding = text.bytes().rev().take_while(|&b| b == b'=').count();
    let trimmed = &text.as_bytes()[..text.len() - padding];
    // The standard alphabet first: looking for URL-safe characters in every
    // text cost half as much as decoding it.
    let standard = base64_simd::STANDARD_NO_PAD.decode_to_vec(trimmed);
    if standard.is_ok() || !trimmed.iter().any(|&b| b == b'-' || b == b'_') {
        return standard;
    }
    let normalized: Vec<u8> = trimmed
        .iter()
        .map(|&b| match b {
            b'-' => b'+',
            b'_' => b'/',
            other => other,
        })
        .collect();
    base64_simd::STANDARD_NO_PAD.decode_to_vec(normalized)
}

/// Encodes in the standard alphabet with padding (what the first VSSM wrote).
pub fn encode_base64(bytes: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(bytes)
}

/// Appends `bytes` in base64 (standard alphabet, padded) to `out`: the
/// answer's buffer, without a String in between.
pub fn append_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    use base64_simd::AppendBase64Encode;
    Vec::append_base64_encode(&base64_simd::STANDARD, bytes, out);
}

/// Lower-case hex of `bytes`.
pub fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Exactly `2 × N` hex digits (either case) as N bytes; None otherwise.
pub fn decode_hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *byte = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

/// The kind of a JSON error, without the parts of the message that can
/// quote the input (which may hold secrets).
pub fn json_error_kind(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected field types",
        serde_json::error::Category::Eof => "truncated",
    }
}

struct Base64Visitor;

impl<'de> Visitor<'de> for Base64Visitor {
    type Value = Vec<u8>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a base64 string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        // The message must not echo the input: it may be a secret.
        decode_base64(v).map_err(|_| E::custom("invalid base64"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<u8>, E> {
        Ok(Vec::new())
    }
}

/// A proto3 `bytes` field that is not secret (plaintext inputs are treated as
/// secret only in the sense that they are never logged).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// No bytes (for `skip_serializing_if`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Base64Visitor).map(Bytes)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode_base64(&self.0))
    }
}

/// A proto3 `bytes` field that carries key material or a password: wiped
/// from memory when dropped.
#[derive(Clone, Default)]
pub struct SecretBytes(pub Zeroizing<Vec<u8>>);

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("SecretBytes(redacted)")
    }
}

impl<'de> Deserialize<'de> for SecretBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Base64Visitor).map(|v| SecretBytes(Zeroizing::new(v)))
    }
}

impl Serialize for SecretBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(encode_base64(&self.0));
        s.serialize_str(&text)
    }
}

/// A string that is a secret (the admin password): wiped on drop, redacted in Debug.
#[derive(Clone, Default)]
pub struct SecretString(pub Zeroizing<String>);

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("SecretString(redacted)")
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<String>::deserialize(d).map(|s| SecretString(Zeroizing::new(s.unwrap_or_default())))
    }
}

/// A proto3 `int64`/`uint64`: written as a JSON string, read from a string or a number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Int64(pub i64);

struct Int64Visitor;

impl<'de> Visitor<'de> for Int64Visitor {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a 64-bit integer as a number or a string")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.fract() == 0.0 && v >= i64::MIN as f64 && v <= i64::MAX as f64 {
            Ok(v as i64)
        } else {
            Err(E::custom("expected an integer"))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.trim().parse::<i64>().map_err(|_| E::custom("expected an integer in the string"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<i64, E> {
        Ok(0)
    }
}

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Int64Visitor).map(Int64)
    }
}

impl Serialize for Int64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The SIMD decoder accepts and refuses exactly what the `base64`
        /// crate (the decoder before it) does.
        #[test]
        fn base64_decodes_as_the_base64_crate(text in "[A-Za-z0-9+/_\\-]{0,40}={0,3}[.= ]?") {
            use base64::engine::general_purpose::STANDARD_NO_PAD;
            use base64::Engine;
            let trimmed = text.trim_end_matches('=').replace('-', "+").replace('_', "/");
            let reference = STANDARD_NO_PAD.decode(trimmed).ok();
            proptest::prop_assert_eq!(decode_base64(&text).ok(), reference);
        }
    }

    #[test]
    fn base64_accepts_every_alphabet_and_padding() {
        let data = vec![0xfb, 0xff, 0xfe, 0x01];
        for text in ["+//+AQ==", "+//+AQ", "-__-AQ==", "-__-AQ"] {
            assert_eq!(decode_base64(text).unwrap(), data, "{text}");
        }
        assert!(decode_base64("!!!").is_err());
        // Non-zero trailing bits, a lone sixth of a byte, a character outside both alphabets.
        for text in ["AB==", "AB", "AAB=", "A", "AAAAA", "AA.A", "AA A", "A=A="] {
            assert!(decode_base64(text).is_err(), "{text}");
        }
        assert_eq!(decode_base64("").unwrap(), Vec::<u8>::new());
        assert_eq!(decode_base64("AA==").unwrap(), vec![0]);
        assert_eq!(encode_base64(&data), "+//+AQ==");
    }

    #[test]
    fn int64_reads_string_or_number_and_writes_string() {
        let a: Int64 = serde_json::from_str("\"1700000000000\"").unwrap();
        let b: Int64 = serde_json::from_str("1700000000000").unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"1700000000000\"");
        assert!(serde_json::from_str::<Int64>("\"12x\"").is_err());
        assert!(serde_json::from_str::<Int64>("1.5").is_err());
    }

    #[test]
    fn bad_base64_error_does_not_echo_input() {
        let err = serde_json::from_str::<SecretBytes>("\"c2VjcmV0!!\"").unwrap_err();
        assert!(!err.to_string().contains("c2VjcmV0"));
    }
}
