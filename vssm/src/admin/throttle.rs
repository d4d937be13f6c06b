//! Throttling of failed admin-password attempts, per client certificate
//! subject, so that a client cannot guess the password online.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed inside one window before the subject is locked out.
pub const MAX_FAILURES: u32 = 5;
/// The window in which failures are counted.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// How long a locked-out subject gets 429.
pub const LOCKOUT: Duration = Duration::from_secs(60);
/// Bound on remembered subjects; only clients with a trusted certificate get here.
const MAX_TRACKED: usize = 4096;

#[derive(Clone, Copy)]
struct Record {
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

/// Counts failures per subject and locks a subject out after too many.
#[derive(Default)]
pub struct FailureThrottle {
    records: Mutex<HashMap<String, Record>>,
}

impl FailureThrottle {
    /// Err(remaining lockout) when `subject` must wait before trying again.
    pub fn check(&self, subject: &str, now: Instant) -> Result<(), Duration> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        match records.get(subject).and_then(|r| r.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a wrong password; returns true when this failure locked the subject out.
    pub fn record_failure(&self, subject: &str, now: Instant) -> bool {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() >= MAX_TRACKED && !records.contains_key(subject) {
            records.retain(|_, r| {
                now.duration_since(r.window_start) < FAILURE_WINDOW || r.locked_until.is_some_and(|u| u > now)
            });
        }
        let record =
            records.entry(subject.to_string()).or_insert(Record { failures: 0, window_start: now, locked_until: None });
        if now.duration_since(record.window_start) >= FAILURE_WINDOW {
            *record = Record { failures: 0, window_start: now, locked_until: None };
        }
        record.failures += 1;
        if record.failures >= MAX_FAILURES {
            record.locked_until = Some(now + LOCKOUT);
            record.failures = 0;
            record.window_start = now;
            return true;
        }
        false
    }

    /// A correct password clears the subject's failure count.
    pub fn record_success(&self, subject: &str) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.remove(subject);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_out_after_max_failures_and_unlocks_later() {
        let t = FailureThrottle::default();
        let now = Instant::now();
        for i in 1..MAX_FAILURES {
            assert!(!t.record_failure("CN=a", now), "failure {i}");
            assert!(t.check("CN=a", now).is_ok());
        }
        assert!(t.record_failure("CN=a", now));
        assert!(t.check("CN=a", now).is_err());
        assert!(t.check("CN=b", now).is_ok(), "other subjects are not affected");
        assert!(t.check("CN=a", now + LOCKOUT + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let t = FailureThrottle::default();
        let now = Instant::now();
        for i in 0..(MAX_FAILURES * 2) {
            let at = now + FAILURE_WINDOW * i;
            assert!(!t.record_failure("CN=a", at));
        }
    }

    #[test]
    fn success_resets_the_count() {
        let t = FailureThrottle::default();
        let now = Instant::now();
        for _ in 1..MAX_FAILURES {
            t.record_failure("CN=a", now);
        }
        t.record_success("CN=a");
        assert!(!t.record_failure("CN=a", now));
    }
}
