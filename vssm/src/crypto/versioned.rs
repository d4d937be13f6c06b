//! The header that makes a ciphertext name the key version that made it
//! (requests with `versioned: true`): `56 4B 01` ("VK", format 1), the
//! version as a big-endian u32, and the 4-byte key id of that version's
//! material (see `KeyRecord::key_id`), then the ciphertext exactly as the
//! unversioned endpoint writes it. The key id tells apart two materials
//! that concurrent rotations on two nodes both numbered N, so a ciphertext
//! never meets the wrong key. Plain bytes, not JSON: a versioned
//! ciphertext is still one opaque `output`.

/// The first three bytes of every versioned ciphertext.
pub const MAGIC: [u8; 3] = [0x56, 0x4B, 0x01];
/// Header length: magic, version, key id.
pub const HEADER_LEN: usize = MAGIC.len() + 4 + 4;

/// `body` behind the header naming `version` and `key_id`.
pub fn prepend(version: u32, key_id: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&key_id);
    out.extend_from_slice(body);
    out
}

/// The version, the key id and the ciphertext behind them; None when
/// `input` does not start with a header (or names version 0).
pub fn split(input: &[u8]) -> Option<(u32, [u8; 4], &[u8])> {
    let (header, body) = input.split_at_checked(HEADER_LEN)?;
    if header[..3] != MAGIC {
        return None;
    }
    let version = u32::from_be_bytes(header[3..7].try_into().ok()?);
    let key_id: [u8; 4] = header[7..11].try_into().ok()?;
    (version != 0).then_some((version, key_id, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_anything_else_is_refused() {
        let out = prepend(1000, [1, 2, 3, 4], b"ciphertext");
        assert_eq!(&out[..HEADER_LEN], &[0x56, 0x4B, 0x01, 0, 0, 0x03, 0xE8, 1, 2, 3, 4]);
        assert_eq!(split(&out), Some((1000, [1, 2, 3, 4], &b"ciphertext"[..])));
        assert_eq!(split(&out[..HEADER_LEN - 1]), None, "too short");
        assert_eq!(split(&prepend(0, [0; 4], b"x")), None, "version 0 does not exist");
        let mut other = out.clone();
        other[2] = 2;
        assert_eq!(split(&other), None, "another format");
        assert_eq!(split(&prepend(7, [9; 4], b"")), Some((7, [9; 4], &b""[..])));
    }
}
