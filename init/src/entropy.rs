//! Kernel RNG readiness. `getrandom(2)` without `GRND_NONBLOCK` blocks until
//! the kernel pool is initialised (fed by virtio-rng, RDRAND or jitter), so a
//! helper thread makes that call while the rest of the boot goes on.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::InitError;

/// How often [`join`] logs that it is still waiting.
pub const WARN_EVERY: Duration = Duration::from_secs(5);

/// `getrandom(2)` as a raw system call. Not through libc's wrapper: Rust's
/// std refers to `getrandom` as a weak symbol, and in a static musl link a
/// symbol referred to only weakly resolves to address 0 (seen as PID 1: a
/// jump to 0 in the first thread that called it).
fn getrandom(buf: &mut [u8], flags: libc::c_uint) -> isize {
    // SAFETY: getrandom(2) writes at most `buf.len()` bytes at `buf`, which is
    // a live, exclusively borrowed buffer of that length; it keeps no pointer.
    unsafe { libc::syscall(libc::SYS_getrandom, buf.as_mut_ptr(), buf.len(), flags) as isize }
}

/// True when the kernel RNG is already initialised (non-blocking probe).
pub fn is_ready() -> bool {
    let mut b = [0u8; 1];
    let r = getrandom(&mut b[..1], libc::GRND_NONBLOCK);
    r == 1
}

/// Starts a thread that blocks in `getrandom(2)` until the kernel RNG is
/// ready; the receiver yields once it is.
pub fn wait_in_background() -> Receiver<()> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name("entropy-wait".into()).spawn(move || {
        let mut b = [0u8; 1];
        loop {
            let r = getrandom(&mut b[..1], 0);
            if r == 1 {
                break;
            }
            if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                // ENOSYS etc.: nothing more can be learned by waiting.
                break;
            }
        }
        let _ = tx.send(());
    });
    if let Err(e) = spawned {
        log!("entropy: cannot spawn wait thread: {e}");
    }
    rx
}

/// Waits for the thread of [`wait_in_background`], logging a warning every
/// [`WARN_EVERY`]; fails after `limit`.
pub fn join(rx: Receiver<()>, limit: Duration) -> Result<(), InitError> {
    let start = Instant::now();
    loop {
        match rx.recv_timeout(WARN_EVERY) {
            Ok(()) => return Ok(()),
            Err(RecvTimeoutError::Disconnected) => {
                return if is_ready() { Ok(()) } else { Err(InitError::Entropy(start.elapsed())) };
            }
            Err(RecvTimeoutError::Timeout) => {
                let waited = start.elapsed();
                if waited >= limit {
                    return Err(InitError::Entropy(waited));
                }
                log!(
                    "entropy: warning: kernel RNG not ready after {}s (is virtio-rng loaded / RDRAND available?)",
                    waited.as_secs()
                );
            }
        }
    }
}

/// Four bytes for a DHCP transaction id. Uses `GRND_INSECURE` (no need to
/// wait for the pool), falling back to time and pid on old kernels.
pub fn xid() -> u32 {
    let mut b = [0u8; 4];
    let r = getrandom(&mut b[..4], libc::GRND_INSECURE);
    if r == 4 {
        return u32::from_ne_bytes(b);
    }
    let r = getrandom(&mut b[..4], libc::GRND_NONBLOCK);
    if r == 4 {
        return u32::from_ne_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ d.as_secs() as u32)
        .unwrap_or(0);
    t ^ std::process::id().rotate_left(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_on_host() {
        assert!(is_ready());
        join(wait_in_background(), Duration::from_secs(10)).unwrap();
        assert_ne!(xid(), xid());
    }
}
