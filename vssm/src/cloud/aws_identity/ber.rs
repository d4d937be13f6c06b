//! A small, bounds-checked BER reader (X.690) for the PKCS#7 blobs IMDS emits.
//!
//! DER-only parsers reject AWS's blobs because they use indefinite lengths. This
//! reader accepts definite and indefinite lengths, high tag numbers and
//! constructed OCTET STRINGs; it never panics on hostile input, limits nesting
//! depth, and can re-encode any element as DER-style definite lengths (used for
//! the signed attributes and the signer's issuer name).
//!
//! Crates considered instead, and why this reader stays:
//! - `der` 0.7 and `cms` (RustCrypto, built on it): DER only, they refuse the
//!   indefinite lengths of every AWS blob; `der` 0.8 has only preliminary BER
//!   length support (no constructed strings, no BER reader).
//! - `der-parser` 9 / `asn1-rs` (already in the tree through `x509-parser`): a
//!   BER object parser with indefinite lengths and a recursion limit, but no
//!   re-encoding of a BER element as definite-length DER, which the signature
//!   check needs for the signed attributes; the reader would stay for that.
//! - `bcder`, `rasn`: full BER codecs, but a second ASN.1 framework (and for
//!   `rasn` a large one) in a static binary for one 300-line read-only use.
//!
//! This reader is small, allocation-bounded by its input, and covered by unit
//! and property tests (arbitrary bytes and structured noise never panic).

use std::borrow::Cow;

/// Maximum nesting depth accepted (PKCS#7 from IMDS needs about 12).
pub(crate) const MAX_DEPTH: usize = 48;

/// Universal tag numbers used by the PKCS#7 reader.
pub(crate) const TAG_INTEGER: u32 = 2;
pub(crate) const TAG_OCTET_STRING: u32 = 4;
pub(crate) const TAG_NULL: u32 = 5;
pub(crate) const TAG_OID: u32 = 6;
pub(crate) const TAG_SEQUENCE: u32 = 16;
pub(crate) const TAG_SET: u32 = 17;

/// Why BER input was rejected (kept short: surfaced as "malformed PKCS#7: ...").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BerError(pub(crate) &'static str);

pub(crate) type BerResult<T> = Result<T, BerError>;

/// Tag class (bits 8-7 of the identifier octet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Universal,
    Application,
    Context,
    Private,
}

/// One parsed element. `content` is the bytes between the header and the end
/// (for an indefinite length, up to but excluding the end-of-contents octets).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub(crate) class: Class,
    pub(crate) constructed: bool,
    pub(crate) number: u32,
    /// The identifier octets exactly as received.
    pub(crate) tag_bytes: &'a [u8],
    pub(crate) content: &'a [u8],
    depth: usize,
}

/// Parses exactly one element filling all of `input` (no trailing bytes).
pub(crate) fn parse_complete(input: &[u8]) -> BerResult<Tlv<'_>> {
    let (tlv, rest) = parse_at_depth(input, 0)?;
    if !rest.is_empty() {
        return Err(BerError("trailing bytes after the outer element"));
    }
    Ok(tlv)
}

fn parse_at_depth(input: &[u8], depth: usize) -> BerResult<(Tlv<'_>, &[u8])> {
    if depth > MAX_DEPTH {
        return Err(BerError("nesting too deep"));
    }
    let (&first, mut rest) = input.split_first().ok_or(BerError("unexpected end of input"))?;
    let class = match first >> 6 {
        0 => Class::Universal,
        1 => Class::Application,
        2 => Class::Context,
        _ => Class::Private,
    };
    let constructed = first & 0x20 != 0;
    let mut number = u32::from(first & 0x1f);
    if number == 0x1f {
        // High tag number form: base-128, at most 4 octets, no leading 0x80.
        number = 0;
        let mut count = 0usize;
        loop {
            let (&b, r) = rest.split_first().ok_or(BerError("truncated tag"))?;
            rest = r;
            if count == 0 && b == 0x80 {
                return Err(BerError("non-minimal tag number"));
            }
            count += 1;
            if count > 4 {
                return Err(BerError("tag number too large"));
            }
            number = (number << 7) | u32::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let tag_len = input.len() - rest.len();
    let tag_bytes = &input[..tag_len];

    let (&len_first, after_len) = rest.split_first().ok_or(BerError("truncated length"))?;
    rest = after_len;
    if len_first == 0x80 {
        if !constructed {
            return Err(BerError("indefinite length on a primitive element"));
        }
        // Walk the children until the end-of-contents octets.
        let start = rest;
        let mut cursor = rest;
        loop {
            if cursor.len() >= 2 && cursor[0] == 0 && cursor[1] == 0 {
                let content_len = start.len() - cursor.len();
                let tlv = Tlv { class, constructed, number, tag_bytes, content: &start[..content_len], depth };
                return Ok((tlv, &cursor[2..]));
            }
            if cursor.is_empty() {
                return Err(BerError("missing end-of-contents"));
            }
            let (_, next) = parse_at_depth(cursor, depth + 1)?;
            cursor = next;
        }
    }
    let len = if len_first < 0x80 {
        usize::from(len_first)
    } else {
        let n = usize::from(len_first & 0x7f);
        if n == 0x7f {
            return Err(BerError("reserved length octet"));
        }
        if n > 4 {
            return Err(BerError("length too large"));
        }
        if rest.len() < n {
            return Err(BerError("truncated length"));
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(BerError("length exceeds input"));
    }
    let (content, rest) = rest.split_at(len);
    let tlv = Tlv { class, constructed, number, tag_bytes, content, depth };
    Ok((tlv, rest))
}

impl<'a> Tlv<'a> {
    /// True for a universal tag with this number (either form).
    pub(crate) fn is_universal(&self, number: u32) -> bool {
        self.class == Class::Universal && self.number == number
    }

    /// True for a context-specific tag `[number]`.
    pub(crate) fn is_context(&self, number: u32) -> bool {
        self.class == Class::Context && self.number == number
    }

    /// Parses the children of a constructed element.
    pub(crate) fn children(&self) -> BerResult<Vec<Tlv<'a>>> {
        if !self.constructed {
            return Err(BerError("expected a constructed element"));
        }
        let mut out = Vec::new();
        let mut cursor = self.content;
        while !cursor.is_empty() {
            let (child, rest) = parse_at_depth(cursor, self.depth + 1)?;
            out.push(child);
            cursor = rest;
        }
        Ok(out)
    }

    /// Children of a constructed universal element with the given tag.
    pub(crate) fn universal_children(&self, number: u32, what: &'static str) -> BerResult<Vec<Tlv<'a>>> {
        if !self.is_universal(number) || !self.constructed {
            return Err(BerError(what));
        }
        self.children()
    }

    /// Content of a primitive universal element with the given tag.
    pub(crate) fn primitive(&self, number: u32, what: &'static str) -> BerResult<&'a [u8]> {
        if !self.is_universal(number) || self.constructed {
            return Err(BerError(what));
        }
        Ok(self.content)
    }

    /// The value of an OCTET STRING, joining the segments of a constructed one.
    pub(crate) fn octet_string(&self) -> BerResult<Cow<'a, [u8]>> {
        if !self.is_universal(TAG_OCTET_STRING) {
            return Err(BerError("expected an OCTET STRING"));
        }
        if !self.constructed {
            return Ok(Cow::Borrowed(self.content));
        }
        let mut out = Vec::new();
        for child in self.children()? {
            out.extend_from_slice(&child.octet_string()?);
        }
        Ok(Cow::Owned(out))
    }

    /// Re-encodes this element with definite, minimal lengths throughout,
    /// keeping tags and primitive contents as received. Input that is already
    /// DER comes back byte for byte.
    pub(crate) fn to_definite(self) -> BerResult<Vec<u8>> {
        self.to_definite_with_tag(self.tag_bytes)
    }

    /// As [`Tlv::to_definite`] but with the outer identifier octets replaced
    /// (e.g. `[0] IMPLICIT SET OF` re-tagged as `SET OF`, 0x31).
    pub(crate) fn to_definite_with_tag(self, tag_bytes: &[u8]) -> BerResult<Vec<u8>> {
        let body = if self.constructed {
            let mut body = Vec::with_capacity(self.content.len());
            for child in self.children()? {
                body.extend_from_slice(&child.to_definite()?);
            }
            Cow::Owned(body)
        } else {
            Cow::Borrowed(self.content)
        };
        let mut out = Vec::with_capacity(body.len() + tag_bytes.len() + 5);
        out.extend_from_slice(tag_bytes);
        push_length(&mut out, body.len());
        out.extend_from_slice(&body);
        Ok(out)
    }
}

/// Appends a minimal definite length.
pub(crate) fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn definite_and_indefinite_agree() {
        // SEQUENCE { INTEGER 1, OCTET STRING (constructed, indefinite) "ab" "c" }
        let ber = [
            0x30, 0x80, 0x02, 0x01, 0x01, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0x00, 0x00, 0x00, 0x00,
        ];
        let tlv = parse_complete(&ber).unwrap();
        assert!(tlv.is_universal(TAG_SEQUENCE));
        let kids = tlv.children().unwrap();
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[0].primitive(TAG_INTEGER, "int").unwrap(), &[1]);
        assert_eq!(&*kids[1].octet_string().unwrap(), b"abc");
        let der = tlv.to_definite().unwrap();
        assert_eq!(der, [0x30, 0x0c, 0x02, 0x01, 0x01, 0x24, 0x07, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c']);
        // Re-encoding DER is the identity.
        assert_eq!(parse_complete(&der).unwrap().to_definite().unwrap(), der);
    }

    #[test]
    fn long_form_length_and_high_tags() {
        let mut v = vec![0x04, 0x81, 200];
        v.extend(std::iter::repeat_n(7u8, 200));
        let tlv = parse_complete(&v).unwrap();
        assert_eq!(tlv.content.len(), 200);
        // [APPLICATION 300] primitive, 2-octet tag number.
        let t = parse_complete(&[0x5f, 0x82, 0x2c, 0x01, 0xaa]).unwrap();
        assert_eq!((t.class, t.number), (Class::Application, 300));
        assert_eq!(t.to_definite().unwrap(), [0x5f, 0x82, 0x2c, 0x01, 0xaa]);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x02, 0x01],
            &[0x04, 0x80, 0x00, 0x00],       // indefinite primitive
            &[0x30, 0x80, 0x02, 0x01, 0x01], // no end-of-contents
            &[0x30, 0x85, 1, 0, 0, 0, 0],    // length too large
            &[0x30, 0xff],                   // reserved
            &[0x1f, 0x80, 0x01, 0x00],       // non-minimal tag
            &[0x02, 0x01, 0x01, 0x00],       // trailing byte
        ] {
            assert!(parse_complete(bad).is_err(), "accepted {bad:02x?}");
        }
    }

    #[test]
    fn depth_is_limited() {
        let mut deep = Vec::new();
        for _ in 0..(MAX_DEPTH + 5) {
            deep.extend_from_slice(&[0x30, 0x80]);
        }
        for _ in 0..(MAX_DEPTH + 5) {
            deep.extend_from_slice(&[0x00, 0x00]);
        }
        assert_eq!(parse_complete(&deep).unwrap_err(), BerError("nesting too deep"));
    }

    fn walk(t: &Tlv<'_>) {
        if t.constructed {
            if let Ok(kids) = t.children() {
                for k in &kids {
                    walk(k);
                }
            }
        }
        let _ = t.octet_string();
        let _ = t.to_definite();
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(t) = parse_complete(&bytes) {
                walk(&t);
            }
        }

        #[test]
        fn structured_noise_never_panics(
            parts in proptest::collection::vec(
                prop_oneof![Just(vec![0x30u8, 0x80]), Just(vec![0u8, 0]), Just(vec![0x24u8, 0x80]),
                            Just(vec![0x04u8, 0x01, 0x41]), Just(vec![0xa0u8, 0x80]), any::<u8>().prop_map(|b| vec![b])],
                0..64)
        ) {
            let bytes: Vec<u8> = parts.concat();
            if let Ok(t) = parse_complete(&bytes) {
                walk(&t);
            }
        }
    }
}
