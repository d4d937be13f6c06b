//! Random ivs and nonces, served from a per-thread pool of operating-system
//! random bytes: one `getrandom` system call per 4 KiB instead of one per
//! request (measured: the system call, or AWS-LC's DRBG in its place, cost
//! more than the AES-GCM encryption of a 64-byte batch item).
//!
//! An iv is public once used, so holding the next few hundred in memory
//! reveals nothing a memory reader would not get from the keys themselves.
//! What must never happen is serving one twice: a byte leaves the pool
//! once (and is wiped there), and a forked child, which inherits a copy of
//! the pool, refills it before its first use. A fork is noticed by a
//! counter that a `pthread_atfork` child handler increments (`forkguard`,
//! one memory load per nonce). The process id was compared before, but
//! `getpid` is a system call: one per nonce took a quarter of the server
//! CPU of a batch of 64-byte encryptions (`strace -c`: one per item). It
//! remains the fallback when the handler cannot be registered.
//! `tests/fork_nonce.rs` forks for real.

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
    /// Whether the process forked since `bytes` was filled.
    fork: ForkCheck,
}

/// Tells whether this process is a fork made since the last check.
enum ForkCheck {
    /// A counter a `pthread_atfork` handler increments in the child.
    Counter(forkguard::atfork::Guard),
    /// The process id (a system call), when the handler could not be registered.
    ProcessId(forkguard::pid::Guard),
}

impl ForkCheck {
    fn new() -> ForkCheck {
        match forkguard::atfork::Guard::try_new() {
            Ok(counter) => ForkCheck::Counter(counter),
            Err(_) => ForkCheck::ProcessId(forkguard::pid::Guard::try_new().unwrap_or_else(|never| match never {})),
        }
    }

    fn forked(&mut self) -> bool {
        match self {
            ForkCheck::Counter(counter) => counter.detected_fork(),
            ForkCheck::ProcessId(pid) => pid.detected_fork(),
        }
    }
}

thread_local! {
    static POOL: RefCell<Pool> =
        RefCell::new(Pool { bytes: Box::new([0; POOL_BYTES]), used: POOL_BYTES, fork: ForkCheck::new() });
}

/// Fills `out` (at most [`MAX_NONCE_LEN`] bytes) with fresh random bytes
/// for an iv or nonce.
pub fn fill_nonce(out: &mut [u8]) -> Result<(), CryptoError> {
    if out.len() > MAX_NONCE_LEN {
        return Err(CryptoError::Internal("nonce longer than the pool serves"));
    }
    POOL.with_borrow_mut(|pool| {
        if pool.fork.forked() {
            // A copy of the parent's pool, whose bytes the parent serves too.
            pool.used = POOL_BYTES;
        }
        if pool.used + out.len() > POOL_BYTES {
            use rand_core::{OsRng, RngCore};
            OsRng
                .try_fill_bytes(&mut pool.bytes[..])
                .map_err(|_| CryptoError::Internal("system random generator failed"))?;
            pool.used = 0;
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
    fn too_long_is_refused() {
        assert!(fill_nonce(&mut [0u8; MAX_NONCE_LEN + 1]).is_err());
    }
}
