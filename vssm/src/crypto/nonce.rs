//! Random ivs and nonces, served from a per-thread pool of operating-system
//! random bytes: one `getrandom` system call per 4 KiB instead of one per
//! request (measured: the system call, or AWS-LC's DRBG in its place, cost
//! more than the AES-GCM encryption of a 64-byte batch item).
//!
//! An iv is public once used, so holding the next few hundred in memory
//! reveals nothing a memory reader would not get from the keys themselves.
//! What must never happen is serving one twice: a byte leaves the pool
//! once (and is wiped there), and a forked child, which inherits a copy of
//! the pool, refills it before its first use: the pool remembers the
//! process id it was filled in (`getpid` per nonce costs a fraction of
//! `getrandom`; a fork handler would need `unsafe`, which this crate
//! forbids).

use std::cell::RefCell;

use super::CryptoError;

/// Bytes fetched from the operating system at a time.
const POOL_BYTES: usize = 4096;

/// The longest iv or nonce served (one AES block).
pub const MAX_NONCE_LEN: usize = 16;

struct Pool {
    bytes: Box<[u8; POOL_BYTES]>,
    /// Bytes of `bytes` already served.
    used: usize,
    /// The process that filled `bytes`.
    pid: u32,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool { bytes: Box::new([0; POOL_BYTES]), used: POOL_BYTES, pid: 0 });
}

/// Fills `out` (at most [`MAX_NONCE_LEN`] bytes) with fresh random bytes
/// for an iv or nonce.
pub fn fill_nonce(out: &mut [u8]) -> Result<(), CryptoError> {
    if out.len() > MAX_NONCE_LEN {
        return Err(CryptoError::Internal("nonce longer than the pool serves"));
    }
    POOL.with_borrow_mut(|pool| {
        let pid = std::process::id();
        if pool.pid != pid || pool.used + out.len() > POOL_BYTES {
            use rand_core::{OsRng, RngCore};
            OsRng
                .try_fill_bytes(&mut pool.bytes[..])
                .map_err(|_| CryptoError::Internal("system random generator failed"))?;
            pool.used = 0;
            pool.pid = pid;
        }
        let served = &mut pool.bytes[pool.used..pool.used + out.len()];
        out.copy_from_slice(served);
        served.fill(0);
        pool.used += out.len();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn nonces_are_distinct_across_refills() {
        let mut seen = HashSet::new();
        for _ in 0..3 * POOL_BYTES / 12 {
            let mut nonce = [0u8; 12];
            fill_nonce(&mut nonce).unwrap();
            assert!(seen.insert(nonce), "a nonce was served twice");
        }
    }

    #[test]
    fn a_pool_of_another_process_is_refilled() {
        let mut nonce = [0u8; 12];
        fill_nonce(&mut nonce).unwrap();
        // What a forked child finds: the parent's pool, with the parent's pid.
        POOL.with_borrow_mut(|pool| pool.pid = pool.pid.wrapping_add(1));
        fill_nonce(&mut nonce).unwrap();
        POOL.with_borrow(|pool| {
            assert_eq!(pool.pid, std::process::id());
            assert_eq!(pool.used, 12, "the pool was not refilled");
        });
    }

    #[test]
    fn too_long_is_refused() {
        assert!(fill_nonce(&mut [0u8; MAX_NONCE_LEN + 1]).is_err());
    }
}
