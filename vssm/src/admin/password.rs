//! The admin password: scrypt hashes in the `$s0$PARAMS$SALT$HASH` form of
//! the first VSSM (lambdaworks scrypt MCF).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Largest accepted cost: log2(N) = 20 with r = 8 is 1 GiB of memory per check;
/// anything above is a config mistake or an attempt to stall the node.
const MAX_LOG_N: u8 = 20;
const MAX_MEMORY_BYTES: u64 = 1 << 30;
/// Default cost for new hashes: N = 32768, r = 8, p = 1 (32 MiB, as the first VSSM).
pub const DEFAULT_LOG_N: u8 = 15;

/// Why a password hash cannot be parsed or made. Never holds the password
/// or the hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Not `$s0$PARAMS$SALT$HASH`.
    #[error("expected the scrypt form $s0$PARAMS$SALT$HASH")]
    Form,
    /// PARAMS is not hexadecimal.
    #[error("PARAMS is not hexadecimal")]
    ParamsNotHex,
    /// Parameters out of the supported range.
    #[error("unsupported scrypt parameters N=2^{log_n}, r={r}, p={p}")]
    Unsupported {
        /// log2(N).
        log_n: u8,
        /// Block size.
        r: u32,
        /// Parallelism.
        p: u32,
    },
    /// Parameters that would cost too much memory or time per check.
    #[error("scrypt parameters need too much memory or time")]
    TooCostly,
    /// SALT is not base64.
    #[error("SALT is not base64")]
    SaltNotBase64,
    /// HASH is not base64.
    #[error("HASH is not base64")]
    HashNotBase64,
    /// Empty SALT or a HASH length out of 16..=64.
    #[error("SALT is empty or HASH has an unusual length")]
    Lengths,
    /// The scrypt library refused the parameters.
    #[error("invalid scrypt parameters")]
    InvalidParams,
    /// A cost for a new hash out of range.
    #[error("log-n must be between 1 and {MAX_LOG_N}")]
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
        let packed = u64::from_str_radix(parts[2], 16).map_err(|_| PasswordError::ParamsNotHex)?;
        let log_n = ((packed >> 16) & 0xffff) as u8;
        let r = ((packed >> 8) & 0xff) as u32;
        let p = (packed & 0xff) as u32;
        if packed >> 32 != 0 || log_n == 0 || log_n > MAX_LOG_N || r == 0 || p == 0 {
            return Err(PasswordError::Unsupported { log_n, r, p });
        }
        if 128 * (r as u64) * (1u64 << log_n) > MAX_MEMORY_BYTES || p > 16 {
            return Err(PasswordError::TooCostly);
        }
        let salt = STANDARD.decode(parts[3]).map_err(|_| PasswordError::SaltNotBase64)?;
        let hash = STANDARD.decode(parts[4]).map_err(|_| PasswordError::HashNotBase64)?;
        if salt.is_empty() || !(16..=64).contains(&hash.len()) {
            return Err(PasswordError::Lengths);
        }
        let params = scrypt::Params::new(log_n, r, p, hash.len()).map_err(|_| PasswordError::InvalidParams)?;
        Ok(PasswordHash { params, log_n, r, p, salt, hash })
    }

    /// Hashes `password` with a fresh random salt into the MCF string.
    pub fn create(password: &[u8], log_n: u8) -> Result<String, PasswordError> {
        if log_n == 0 || log_n > MAX_LOG_N {
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
    fn debug_shows_no_salt_or_hash() {
        let mcf = PasswordHash::create(b"pw", 4).unwrap();
        let shown = format!("{:?}", PasswordHash::parse(&mcf).unwrap());
        assert!(!shown.contains(mcf.split('$').nth(4).unwrap()));
    }
}
