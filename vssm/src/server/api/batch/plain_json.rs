//! A serde deserializer for *plain* JSON: the subset of JSON whose strings
//! hold no escape, whose numbers are unsigned integers of at most 19
//! digits, and whose structure is at most [`MAX_DEPTH`] deep. A batch is
//! read with it first ([`super::Typed`]); any text outside the subset, or
//! any value its type refuses, fails with [`NotPlain`] (no message is
//! built), and the batch is read again with `serde_json`, whose errors are
//! the ones clients see.
//!
//! The rule that keeps this safe: whatever this deserializer accepts,
//! `serde_json` accepts too and gives the same value. Each method calls the
//! visitor exactly as `serde_json` 1.x does for the same text (a string is
//! `visit_borrowed_str`, `null` is `visit_unit` or `visit_none`, an integer
//! is `visit_u64`, a struct may be an object or an array, a newtype struct
//! is visited as its content), and refuses the rest. The property tests
//! below check the rule on generated batches, escapes, floats, negative
//! numbers, duplicate and unknown fields and broken syntax included.
//!
//! Why our own: a batch item of 64 bytes costs `serde_json` about 2,900
//! instructions to read (callgrind), most of them in its general string
//! scanner and its per-token bookkeeping; here a string is scanned eight
//! bytes at a time ([`find_special`]) and a member costs a few comparisons.
//! Rejected crates: `simd-json` needs a mutable copy of the body and builds
//! a tape of the whole document before serde sees the first item;
//! `sonic-rs` selects its SIMD code at compile time (`target-cpu`), which
//! the portable release build does not set, and brings a large unsafe
//! surface to a path that already has a correct, slower reader behind it.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Deepest nesting of arrays and objects read (a batch needs 3).
pub const MAX_DEPTH: usize = 16;

/// The text is not plain JSON, or its type refused a value: read it with
/// `serde_json` instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotPlain;

impl fmt::Display for NotPlain {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("not plain JSON")
    }
}

impl std::error::Error for NotPlain {}

impl de::Error for NotPlain {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotPlain
    }
}

type Result<T> = std::result::Result<T, NotPlain>;

/// Reads `text` as a `T`, requiring nothing but whitespace after it.
pub fn from_str<'de, T: de::Deserialize<'de>>(text: &'de str) -> Result<T> {
    let mut reader = PlainReader { text, at: 0, depth: 0 };
    let value = T::deserialize(&mut reader)?;
    reader.end()?;
    Ok(value)
}

/// The reader: the text and the position in it.
struct PlainReader<'de> {
    text: &'de str,
    at: usize,
    depth: usize,
}

/// The index of the first `"`, `\\` or control character in `bytes`.
///
/// Eight bytes at a time (as serde_json's own scanner): a byte below 0x20,
/// a quote or a backslash sets the high bit of its lane in the mask (the
/// lowest set lane is always a real match; lanes above it may not be).
/// Measured, 108 instructions per string of a batch item against 175 for
/// a vectorized any-test of 16-byte blocks followed by a byte search.
fn find_special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::MAX / 255;
    let lanes_equal_to = |word: u64, byte: u8| {
        let diff = word ^ (ONES * u64::from(byte));
        diff.wrapping_sub(ONES) & !diff
    };
    let (words, _) = bytes.as_chunks::<8>();
    for (index, word) in words.iter().enumerate() {
        let word = u64::from_le_bytes(*word);
        let control = word.wrapping_sub(ONES * 0x20) & !word;
        let mask = (control | lanes_equal_to(word, b'"') | lanes_equal_to(word, b'\\')) & (ONES << 7);
        if mask != 0 {
            return Some(index * 8 + mask.trailing_zeros() as usize / 8);
        }
    }
    let offset = words.len() * 8;
    let is_special = |byte: u8| byte == b'"' || byte == b'\\' || byte < 0x20;
    bytes[offset..].iter().position(|&byte| is_special(byte)).map(|at| offset + at)
}

impl<'de> PlainReader<'de> {
    fn bytes(&self) -> &'de [u8] {
        self.text.as_bytes()
    }

    /// Requires nothing but whitespace up to the end.
    fn end(&mut self) -> Result<()> {
        self.skip_whitespace();
        match self.at == self.text.len() {
            true => Ok(()),
            false => Err(NotPlain),
        }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte that is not whitespace, not consumed.
    fn peek(&mut self) -> Result<u8> {
        self.skip_whitespace();
        self.bytes().get(self.at).copied().ok_or(NotPlain)
    }

    /// Consumes `byte`, after whitespace.
    fn expect(&mut self, byte: u8) -> Result<()> {
        match self.peek()? == byte {
            true => {
                self.at += 1;
                Ok(())
            }
            false => Err(NotPlain),
        }
    }

    /// Consumes `word` (`true`, `false`, `null`), after whitespace.
    fn expect_word(&mut self, word: &[u8]) -> Result<()> {
        self.skip_whitespace();
        match self.bytes()[self.at..].starts_with(word) {
            true => {
                self.at += word.len();
                Ok(())
            }
            false => Err(NotPlain),
        }
    }

    /// A string without escapes or control characters, borrowed from the
    /// text; the reader is on its opening quote.
    fn string(&mut self) -> Result<&'de str> {
        self.expect(b'"')?;
        let start = self.at;
        let end = start + find_special(&self.bytes()[start..]).ok_or(NotPlain)?;
        if self.bytes()[end] != b'"' {
            return Err(NotPlain);
        }
        self.at = end + 1;
        // Both ends are at ASCII quotes, so on character boundaries.
        self.text.get(start..end).ok_or(NotPlain)
    }

    /// An unsigned integer of at most 19 digits (no sign, fraction,
    /// exponent or leading zero: those go to `serde_json`).
    fn integer(&mut self) -> Result<u64> {
        self.skip_whitespace();
        let digits = self.bytes()[self.at..].iter().take_while(|byte| byte.is_ascii_digit()).count();
        let after = self.bytes().get(self.at + digits).copied();
        let leading_zero = digits > 1 && self.bytes()[self.at] == b'0';
        if digits == 0 || digits > 19 || leading_zero || matches!(after, Some(b'.' | b'e' | b'E')) {
            return Err(NotPlain);
        }
        let value = self.bytes()[self.at..self.at + digits].iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        self.at += digits;
        Ok(value)
    }

    /// Enters an array or object, within [`MAX_DEPTH`].
    fn enter(&mut self, open: u8) -> Result<()> {
        self.expect(open)?;
        self.depth += 1;
        match self.depth <= MAX_DEPTH {
            true => Ok(()),
            false => Err(NotPlain),
        }
    }

    fn leave(&mut self, close: u8) -> Result<()> {
        self.expect(close)?;
        self.depth -= 1;
        Ok(())
    }

    fn visit_seq<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        self.enter(b'[')?;
        let value = visitor.visit_seq(Elements { reader: self, first: true })?;
        self.leave(b']')?;
        Ok(value)
    }

    fn visit_map<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        self.enter(b'{')?;
        let value = visitor.visit_map(Members { reader: self, first: true })?;
        self.leave(b'}')?;
        Ok(value)
    }
}

/// Deserializer methods that read the value as an unsigned integer.
macro_rules! to_u64 {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_u64(visitor)
        }
    )*};
}

/// Deserializer methods that leave the value to serde_json.
macro_rules! not_plain {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
            Err(NotPlain)
        }
    )*};
}

impl<'de> Deserializer<'de> for &mut PlainReader<'de> {
    type Error = NotPlain;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek()? {
            b'"' => visitor.visit_borrowed_str(self.string()?),
            b'0'..=b'9' => visitor.visit_u64(self.integer()?),
            b't' => self.expect_word(b"true").and_then(|()| visitor.visit_bool(true)),
            b'f' => self.expect_word(b"false").and_then(|()| visitor.visit_bool(false)),
            b'n' => self.expect_word(b"null").and_then(|()| visitor.visit_unit()),
            b'[' => self.visit_seq(visitor),
            b'{' => self.visit_map(visitor),
            _ => Err(NotPlain),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek()? {
            b't' | b'f' => self.deserialize_any(visitor),
            _ => Err(NotPlain),
        }
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u64(self.integer()?)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_borrowed_str(self.string()?)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek()? {
            b'n' => self.expect_word(b"null").and_then(|()| visitor.visit_none()),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.expect_word(b"null")?;
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value> {
        // serde_json's raw values (this name) are not read here.
        match name.starts_with("$serde_json") {
            true => Err(NotPlain),
            false => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.visit_seq(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.visit_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.visit_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.visit_map(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.peek()? {
            b'[' => self.visit_seq(visitor),
            _ => self.visit_map(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_any(visitor)
    }

    // serde_json reads every integer type as a number and visits a
    // non-negative one with visit_u64, as here.
    to_u64!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_u8 deserialize_u16 deserialize_u32);
    // Floats, 128-bit numbers, chars and bytes: serde_json reads them in
    // ways this reader does not repeat, so they go to serde_json.
    not_plain!(deserialize_f32 deserialize_f64 deserialize_i128 deserialize_u128 deserialize_char deserialize_bytes deserialize_byte_buf);
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value> {
        Err(NotPlain)
    }
}

/// The elements of an array.
struct Elements<'r, 'de> {
    reader: &'r mut PlainReader<'de>,
    first: bool,
}

impl<'de> SeqAccess<'de> for Elements<'_, 'de> {
    type Error = NotPlain;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        match (self.reader.peek()?, self.first) {
            (b']', _) => return Ok(None),
            (b',', false) => self.reader.at += 1,
            (_, true) => {}
            (_, false) => return Err(NotPlain),
        }
        self.first = false;
        seed.deserialize(&mut *self.reader).map(Some)
    }
}

/// The members of an object.
struct Members<'r, 'de> {
    reader: &'r mut PlainReader<'de>,
    first: bool,
}

impl<'de> MapAccess<'de> for Members<'_, 'de> {
    type Error = NotPlain;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match (self.reader.peek()?, self.first) {
            (b'}', _) => return Ok(None),
            (b',', false) => self.reader.at += 1,
            (_, true) => {}
            (_, false) => return Err(NotPlain),
        }
        self.first = false;
        // A key is always a string, whatever the seed asks for.
        let key = self.reader.string()?;
        seed.deserialize(de::value::BorrowedStrDeserializer::<NotPlain>::new(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        self.reader.expect(b':')?;
        seed.deserialize(&mut *self.reader)
    }
}

#[cfg(test)]
mod tests;
