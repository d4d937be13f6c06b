//! The admin password: scrypt hashes in the `$s0$PARAMS$SALT$HASH` form of
//! the first VSSM (lambdaworks scrypt MCF).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Bounds on the scrypt parameters of `rootPassword` (and of new hashes).
/// Memory is locked (mlockall) and one check runs at a time, so these bound
/// what a config can make one admin call cost: 128·r·N ≤ 128 MiB of memory
/// (N ≤ 2^17 at r = 8; the first VSSM's default is 32 MiB), p ≤ 4, and
/// p·128·r·N ≤ 256 MiB of work (about twice the default's 4× at most).
/// Anything above is a config mistake or an attempt to stall the node.
pub const MAX_LOG_N: u8 = 20;
/// Most memory one check may take (128·r·N bytes).
pub const MAX_MEMORY_BYTES: u64 = 128 << 20;
/// Largest parallelism p.
pub const MAX_P: u32 = 4;
/// Most work one check may take (p·128·r·N bytes of memory passes).
pub const MAX_WORK_BYTES: u64 = 256 << 20;
/// Longest salt, in bytes (the first VSSM writes 16).
const MAX_SALT_BYTES: usize = 64;
/// Most hex digits of PARAMS: log2(N), r and p are one byte each.
const MAX_PARAMS_DIGITS: usize = 6;
/// Default cost for new hashes: N = 32768, r = 8, p = 1 (32 MiB, as the first VSSM).
pub const DEFAULT_LOG_N: u8 = 15;

/// Why a password hash cannot be parsed or made. Never holds the password
/// or the hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Not `$s0$PARAMS$SALT$HASH`.
    #[error("expected the scrypt form $s0$PARAMS$SALT$HASH")]
    Form,
    /// PARAMS is not 1 to 6 hexadecimal digits.
    #[error("PARAMS is not 1 to 6 hexadecimal digits")]
    ParamsNotHex,
    /// Parameters out of the supported range.
    #[error("unsupported scrypt parameters N=2^{log_n}, r={r}, p={p}")]
    Unsupported {
        /// log2(N).
        log_n: u32,
        /// Block size.
        r: u32,
        /// Parallelism.
        p: u32,
    },
    /// Parameters that would cost too much memory or time per check.
    #[error("scrypt parameters need too much memory or time (at most 128·r·N = 128 MiB, p = 4, p·128·r·N = 256 MiB)")]
    TooCostly,
    /// SALT is not base64.
    #[error("SALT is not base64")]
    SaltNotBase64,
    /// HASH is not base64.
    #[error("HASH is not base64")]
    HashNotBase64,
    /// A SALT length out of 1..=64 or a HASH length out of 16..=64.
    #[error("SALT is empty or longer than 64 bytes, or HASH has an unusual length")]
    Lengths,
    /// The scrypt library refused the parameters.
    #[error("invalid scrypt parameters")]
    InvalidParams,
    /// A cost for a new hash out of range.
    #[error("log-n must be between 1 and 17 (128·8·2^17 bytes = 128 MiB)")]
    LogN,
    /// The system random generator failed.
    #[error("no randomness available")]
    NoRandomness,
    /// scrypt failed while hashing.
    #[error("scrypt failed")]
    Scrypt,
}

/// A parsed scrypt password hash.
#[derive(Clone)]
pub struct PasswordHash {
    params: scrypt::Params,
    log_n: u8,
    r: u32,
    p: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "PasswordHash(scrypt N=2^{}, r={}, p={})", self.log_n, self.r, self.p)
    }
}

impl PasswordHash {
    /// Parses `$s0$PARAMS$SALT$HASH`; the error says which part is wrong.
    pub fn parse(mcf: &str) -> Result<Self, PasswordError> {
        let parts: Vec<&str> = mcf.split('$').collect();
        if parts.len() != 5 || !parts[0].is_empty() || parts[1] != "s0" {
            return Err(PasswordError::Form);
        }
        let (log_n, r, p) = parse_params(parts[2])?;
        let salt = STANDARD.decode(parts[3]).map_err(|_| PasswordError::SaltNotBase64)?;
        let hash = STANDARD.decode(parts[4]).map_err(|_| PasswordError::HashNotBase64)?;
        if salt.is_empty() || salt.len() > MAX_SALT_BYTES || !(16..=64).contains(&hash.len()) {
            return Err(PasswordError::Lengths);
        }
        let params = scrypt::Params::new(log_n, r, p, hash.len()).map_err(|_| PasswordError::InvalidParams)?;
        Ok(PasswordHash { params, log_n, r, p, salt, hash })
    }

    /// Hashes `password` with a fresh random salt into the MCF string.
    pub fn create(password: &[u8], log_n: u8) -> Result<String, PasswordError> {
        if log_n == 0 || log_n > MAX_LOG_N || check_cost(log_n, 8, 1).is_err() {
            return Err(PasswordError::LogN);
        }
        let mut salt = [0u8; 16];
        aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut salt)
            .map_err(|_| PasswordError::NoRandomness)?;
        let params = scrypt::Params::new(log_n, 8, 1, 32).map_err(|_| PasswordError::InvalidParams)?;
        let mut out = Zeroizing::new([0u8; 32]);
        scrypt::scrypt(password, &salt, &params, out.as_mut()).map_err(|_| PasswordError::Scrypt)?;
        let packed = ((log_n as u32) << 16) | (8 << 8) | 1;
        Ok(format!("$s0${packed:X}${}${}", STANDARD.encode(salt), STANDARD.encode(out.as_ref())))
    }

    /// A canonical form of the hash (parameters, salt, hash) for the config
    /// digest: the same however the MCF string spelled its hex parameters.
    pub fn canonical_encoding(&self) -> Vec<u8> {
        let mut out = vec![self.log_n];
        out.extend_from_slice(&self.r.to_be_bytes());
        out.extend_from_slice(&self.p.to_be_bytes());
        out.extend_from_slice(&(self.salt.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.hash);
        out
    }

    /// Checks a password (CPU- and memory-heavy: call off the I/O threads).
    /// The comparison of the derived keys is constant-time.
    pub fn verify(&self, password: &[u8]) -> bool {
        let mut derived = Zeroizing::new(vec![0u8; self.hash.len()]);
        if scrypt::scrypt(password, &self.salt, &self.params, &mut derived).is_err() {
            return false;
        }
        derived.ct_eq(&self.hash).into()
    }
}

/// PARAMS, strictly: 1 to 6 hex digits (no sign, no prefix) of
/// `(log2(N) << 16) | (r << 8) | p`, each part in its bounds.
fn parse_params(text: &str) -> Result<(u8, u32, u32), PasswordError> {
    if text.is_empty() || text.len() > MAX_PARAMS_DIGITS || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PasswordError::ParamsNotHex);
    }
    let packed = u32::from_str_radix(text, 16).map_err(|_| PasswordError::ParamsNotHex)?;
    let (log_n, r, p) = (packed >> 16, (packed >> 8) & 0xff, packed & 0xff);
    let log_n = match u8::try_from(log_n) {
        Ok(n) if (1..=MAX_LOG_N).contains(&n) && r > 0 && p > 0 => n,
        _ => return Err(PasswordError::Unsupported { log_n, r, p }),
    };
    check_cost(log_n, r, p)?;
    Ok((log_n, r, p))
}

/// Memory and work of one check within [`MAX_MEMORY_BYTES`], [`MAX_P`] and [`MAX_WORK_BYTES`].
fn check_cost(log_n: u8, r: u32, p: u32) -> Result<(), PasswordError> {
    let memory = (128 * u64::from(r)) << log_n;
    if memory > MAX_MEMORY_BYTES || p > MAX_P || u64::from(p) * memory > MAX_WORK_BYTES {
        return Err(PasswordError::TooCostly);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_verify() {
        let mcf = PasswordHash::create(b"correct horse", 10).unwrap();
        assert!(mcf.starts_with("$s0$A0801$"), "{mcf}");
        let hash = PasswordHash::parse(&mcf).unwrap();
        assert!(hash.verify(b"correct horse"));
        assert!(!hash.verify(b"correct horsf"));
        assert!(!hash.verify(b""));
    }

    #[test]
    fn accepts_lowercase_hex_params_as_lambdaworks_writes_them() {
        let mcf = PasswordHash::create(b"pw", 10).unwrap();
        let lower = mcf.replacen("$A0801$", "$a0801$", 1);
        assert_ne!(mcf, lower);
        assert!(PasswordHash::parse(&lower).unwrap().verify(b"pw"));
    }

    #[test]
    fn refuses_malformed_and_abusive_parameters() {
        for bad in [
            "",
            "$s1$F0801$c2FsdA==$aGFzaA==",
            "$s0$ZZ$c2FsdA==$aGFzaA==",
            "$s0$FF0801$c2FsdA==$MDEyMzQ1Njc4OWFiY2RlZg==",
            "$s0$F0801$!!$MDEyMzQ1Njc4OWFiY2RlZg==",
            "$s0$F0801$c2FsdA==$aGFzaA==",
        ] {
            assert!(PasswordHash::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(PasswordHash::parse("$s0$ZZ$c2FsdA==$aGFzaA==").err(), Some(PasswordError::ParamsNotHex));
        assert_eq!(
            PasswordHash::parse("$s0$FF0801$c2FsdA==$MDEyMzQ1Njc4OWFiY2RlZg==").err(),
            Some(PasswordError::Unsupported { log_n: 255, r: 8, p: 1 })
        );
    }

    #[test]
    fn params_are_parsed_strictly_and_never_truncated() {
        let tail = "$c2FsdA==$MDEyMzQ1Njc4OWFiY2RlZg==";
        let parse = |params: &str| PasswordHash::parse(&format!("$s0${params}{tail}")).err();
        // 0x10F0801 would be N=2^15 if log2(N) were cut to a byte.
        assert_eq!(parse("10F0801"), Some(PasswordError::ParamsNotHex));
        assert_eq!(parse("+F0801"), Some(PasswordError::ParamsNotHex));
        assert_eq!(parse("0xF0801"), Some(PasswordError::ParamsNotHex));
        assert_eq!(parse(""), Some(PasswordError::ParamsNotHex));
        assert_eq!(parse("F0800"), Some(PasswordError::Unsupported { log_n: 15, r: 8, p: 0 }));
        assert_eq!(parse("150801"), Some(PasswordError::Unsupported { log_n: 21, r: 8, p: 1 }));
        // 1 GiB (2^20, r=8) and the largest r are refused; so are p=5 and 256 MiB of work.
        for costly in ["140801", "10FF01", "F0805", "110803"] {
            assert_eq!(parse(costly), Some(PasswordError::TooCostly), "{costly}");
        }
        for fine in ["F0801", "f0801", "110801", "110802", "100201", "E0804"] {
            assert_eq!(parse(fine), None, "{fine}");
        }
        let long_salt = format!("$s0$F0801${}$MDEyMzQ1Njc4OWFiY2RlZg==", STANDARD.encode([1u8; 65]));
        assert_eq!(PasswordHash::parse(&long_salt).err(), Some(PasswordError::Lengths));
    }

    #[test]
    fn new_hashes_stay_within_the_bounds() {
        assert_eq!(PasswordHash::create(b"pw", 18).err(), Some(PasswordError::LogN));
        assert_eq!(PasswordHash::create(b"pw", 0).err(), Some(PasswordError::LogN));
    }

    #[test]
    fn debug_shows_no_salt_or_hash() {
        let mcf = PasswordHash::create(b"pw", 4).unwrap();
        let shown = format!("{:?}", PasswordHash::parse(&mcf).unwrap());
        assert!(!shown.contains(mcf.split('$').nth(4).unwrap()));
    }
}
