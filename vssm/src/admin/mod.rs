//! Admin operations' guard (password + throttling) and the backup format.

pub mod backup;
pub mod password;
pub mod throttle;

use crate::error::{Classify, ErrorKind};
use password::PasswordHash;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use throttle::FailureThrottle;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// Why an admin request was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminRefusal {
    /// Too many recent failures from this subject, its address or on the
    /// node; retry after the duration.
    #[error("too many failed admin attempts; retry in {} s", .0.as_secs() + 1)]
    Throttled(Duration),
    /// The password is wrong (this failure may have started a lockout).
    #[error("wrong admin password")]
    WrongPassword,
}

impl Classify for AdminRefusal {
    fn kind(&self) -> ErrorKind {
        match self {
            AdminRefusal::Throttled(_) => ErrorKind::TooManyRequests,
            AdminRefusal::WrongPassword => ErrorKind::Unauthorized,
        }
    }
}

/// Checks admin passwords. scrypt runs on the blocking pool, one check at a
/// time, so it never stalls crypto requests on the I/O threads and its
/// memory (32 MiB at the default cost) is bounded and freed right after.
pub struct AdminGuard {
    hash: Arc<PasswordHash>,
    throttle: FailureThrottle,
    scrypt_slots: Arc<Semaphore>,
}

impl AdminGuard {
    /// A guard for the configured `rootPassword`.
    pub fn new(hash: PasswordHash) -> Self {
        AdminGuard {
            hash: Arc::new(hash),
            throttle: FailureThrottle::default(),
            scrypt_slots: Arc::new(Semaphore::new(1)),
        }
    }

    /// Verifies `password` for the client `subject` connected from `source`.
    pub async fn authorize(&self, subject: &str, source: IpAddr, password: &str) -> Result<(), AdminRefusal> {
        self.throttle.check(subject, source, Instant::now()).map_err(AdminRefusal::Throttled)?;
        let slot = Arc::clone(&self.scrypt_slots).acquire_owned().await.map_err(|_| AdminRefusal::WrongPassword)?;
        // Re-check: the subject may have been locked out while waiting for the slot.
        self.throttle.check(subject, source, Instant::now()).map_err(AdminRefusal::Throttled)?;
        // Counted as a failure up front: a client that drops the request
        // while scrypt runs must not escape the throttle.
        self.throttle.record_failure(subject, source, Instant::now());
        let hash = Arc::clone(&self.hash);
        let candidate = Zeroizing::new(password.as_bytes().to_vec());
        // The slot travels with the work, so a cancelled request cannot
        // start another scrypt while this one still runs.
        let ok = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            hash.verify(&candidate)
        })
        .await
        .unwrap_or(false);
        if ok {
            self.throttle.record_success(subject, source, Instant::now());
            Ok(())
        } else {
            Err(AdminRefusal::WrongPassword)
        }
    }
}
