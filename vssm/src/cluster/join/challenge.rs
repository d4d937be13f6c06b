//! One-time join challenges: fresh, single use, bound to the address they
//! were issued to.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a challenge stays valid.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(60);
/// Outstanding challenges kept at most (oldest dropped first).
const MAX_CHALLENGES: usize = 1024;
/// Outstanding challenges per requesting address.
const MAX_PER_ADDRESS: usize = 4;

/// Why a challenge was not issued or not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// The system random generator failed (a fault of this node).
    #[error("no randomness")]
    NoRandomness,
    /// The challenge is not 32 bytes.
    #[error("challenge has the wrong length")]
    WrongLength,
    /// Never issued, already used, or pushed out.
    #[error("unknown or already used challenge")]
    Unknown,
    /// Older than [`CHALLENGE_TTL`].
    #[error("expired challenge")]
    Expired,
    /// Issued to another address than the one presenting it.
    #[error("challenge was issued to {issued_to}, not {presented_by}")]
    WrongAddress {
        /// The address it was issued to.
        issued_to: IpAddr,
        /// The address that presented it.
        presented_by: IpAddr,
    },
}

/// Challenges handed out and not yet used.
#[derive(Default)]
pub struct ChallengeStore {
    issued: Mutex<HashMap<[u8; 32], (Instant, IpAddr)>>,
}

impl ChallengeStore {
    /// A new random challenge for a requester at `ip`.
    pub fn issue(&self, ip: IpAddr, now: Instant) -> Result<[u8; 32], ChallengeError> {
        let mut challenge = [0u8; 32];
        SystemRandom::new().fill(&mut challenge).map_err(|_| ChallengeError::NoRandomness)?;
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        issued.retain(|_, (at, _)| now.duration_since(*at) < CHALLENGE_TTL);
        // One address cannot push others' challenges out: beyond its own
        // small quota it replaces its own oldest.
        let own = issued.iter().filter(|(_, (_, to))| *to == ip).count();
        let evict = if own >= MAX_PER_ADDRESS {
            issued.iter().filter(|(_, (_, to))| *to == ip).min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k)
        } else if issued.len() >= MAX_CHALLENGES {
            issued.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k)
        } else {
            None
        };
        if let Some(oldest) = evict {
            issued.remove(&oldest);
        }
        issued.insert(challenge, (now, ip));
        Ok(challenge)
    }

    /// Consumes a challenge: it must exist, be fresh and have been issued to `ip`.
    pub fn take(&self, challenge: &[u8], ip: IpAddr, now: Instant) -> Result<(), ChallengeError> {
        let key: [u8; 32] = challenge.try_into().map_err(|_| ChallengeError::WrongLength)?;
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        match issued.remove(&key) {
            None => Err(ChallengeError::Unknown),
            Some((at, _)) if now.duration_since(at) >= CHALLENGE_TTL => Err(ChallengeError::Expired),
            Some((_, issued_to)) if issued_to != ip => {
                Err(ChallengeError::WrongAddress { issued_to, presented_by: ip })
            }
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_single_use_fresh_and_bound_to_the_address() {
        let store = ChallengeStore::default();
        let now = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c = store.issue(a, now).unwrap();
        assert_eq!(store.take(&c, b, now), Err(ChallengeError::WrongAddress { issued_to: a, presented_by: b }));
        let c = store.issue(a, now).unwrap();
        assert_eq!(store.take(&c, a, now + CHALLENGE_TTL), Err(ChallengeError::Expired));
        let c = store.issue(a, now).unwrap();
        assert!(store.take(&c, a, now).is_ok());
        assert_eq!(store.take(&c, a, now), Err(ChallengeError::Unknown), "replayed");
        assert_eq!(store.take(&[0u8; 5], a, now), Err(ChallengeError::WrongLength));
    }

    #[test]
    fn one_address_cannot_flush_the_challenges_of_others() {
        let store = ChallengeStore::default();
        let now = Instant::now();
        let victim: IpAddr = "10.0.0.9".parse().unwrap();
        let attacker: IpAddr = "10.0.0.66".parse().unwrap();
        let kept = store.issue(victim, now).unwrap();
        for _ in 0..(2 * MAX_CHALLENGES) {
            store.issue(attacker, now).unwrap();
        }
        assert!(store.take(&kept, victim, now).is_ok());
    }
}
