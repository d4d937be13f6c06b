//! Throttling of failed admin-password attempts, so that the password
//! cannot be guessed online: per client certificate subject, per source
//! address (one machine with many certificates) and for the whole node
//! (many certificates on many machines). Subjects that proved the password
//! recently are exempt from the address and node limits, so that strangers
//! cannot lock the admin out.

use crate::server::admission::source_key;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per subject inside one window.
pub const MAX_FAILURES: u32 = 5;
/// Failures allowed per source address inside one window, whatever the subjects.
pub const MAX_FAILURES_PER_SOURCE: u32 = 10;
/// Failures allowed on the node inside one window, whatever the subjects and addresses.
pub const MAX_FAILURES_PER_NODE: u32 = 30;
/// The window in which failures are counted; once a limit is reached,
/// attempts get 429 until the window that started with the first failure ends.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// How long a subject that gave the right password stays exempt from the
/// address and node limits.
pub const PROVEN_FOR: Duration = Duration::from_secs(24 * 3600);
/// Bound on remembered subjects and addresses; failures are bounded by the
/// node limit, so only active ones fill it.
const MAX_TRACKED: usize = 4096;
/// Bound on remembered proven subjects (the oldest is forgotten first).
const MAX_PROVEN: usize = 256;

/// Failures inside the current window.
#[derive(Clone, Copy)]
struct Counter {
    failures: u32,
    window_start: Instant,
}

impl Counter {
    fn new(now: Instant) -> Self {
        Counter { failures: 0, window_start: now }
    }

    fn current(&mut self, now: Instant) -> &mut Self {
        if now.duration_since(self.window_start) >= FAILURE_WINDOW {
            *self = Counter::new(now);
        }
        self
    }

    /// The wait left when `max` failures are reached in this window.
    fn locked(&self, max: u32, now: Instant) -> Option<Duration> {
        let end = self.window_start + FAILURE_WINDOW;
        (self.failures >= max && end > now).then(|| end - now)
    }
}

/// Counters by key, bounded.
struct Counters<K>(HashMap<K, Counter>);

impl<K: Hash + Eq + Clone> Counters<K> {
    fn locked(&self, key: &K, max: u32, now: Instant) -> Option<Duration> {
        self.0.get(key).and_then(|c| c.locked(max, now))
    }

    fn fail(&mut self, key: &K, now: Instant) {
        if self.0.len() >= MAX_TRACKED && !self.0.contains_key(key) {
            self.0.retain(|_, c| now.duration_since(c.window_start) < FAILURE_WINDOW);
        }
        self.0.entry(key.clone()).or_insert_with(|| Counter::new(now)).current(now).failures += 1;
    }

    fn undo(&mut self, key: &K) {
        if let Some(counter) = self.0.get_mut(key) {
            counter.failures = counter.failures.saturating_sub(1);
        }
    }
}

struct State {
    subjects: Counters<String>,
    sources: Counters<IpAddr>,
    node: Counter,
    proven: HashMap<String, Instant>,
}

/// Counts failures per subject, per source address and per node.
pub struct FailureThrottle {
    state: Mutex<State>,
}

impl Default for FailureThrottle {
    fn default() -> Self {
        FailureThrottle {
            state: Mutex::new(State {
                subjects: Counters(HashMap::new()),
                sources: Counters(HashMap::new()),
                node: Counter::new(Instant::now()),
                proven: HashMap::new(),
            }),
        }
    }
}

impl FailureThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Err(remaining wait) when `subject` from `source` must wait before trying again.
    pub fn check(&self, subject: &str, source: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut state = self.lock();
        if let Some(wait) = state.subjects.locked(&subject.to_string(), MAX_FAILURES, now) {
            return Err(wait);
        }
        if state.proven.get(subject).is_some_and(|at| now.duration_since(*at) < PROVEN_FOR) {
            return Ok(());
        }
        let node = state.node.current(now).locked(MAX_FAILURES_PER_NODE, now);
        match state.sources.locked(&source_key(source), MAX_FAILURES_PER_SOURCE, now).or(node) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Records an attempt as a failure (before the password is checked, so
    /// that dropping the request does not escape the count).
    pub fn record_failure(&self, subject: &str, source: IpAddr, now: Instant) {
        let mut state = self.lock();
        state.subjects.fail(&subject.to_string(), now);
        state.sources.fail(&source_key(source), now);
        state.node.current(now).failures += 1;
    }

    /// A correct password: clears the subject's count, takes the attempt
    /// back from the address and node counts, and exempts the subject from
    /// those two limits for [`PROVEN_FOR`].
    pub fn record_success(&self, subject: &str, source: IpAddr, now: Instant) {
        let mut state = self.lock();
        state.subjects.0.remove(subject);
        state.sources.undo(&source_key(source));
        state.node.failures = state.node.failures.saturating_sub(1);
        if state.proven.len() >= MAX_PROVEN && !state.proven.contains_key(subject) {
            let oldest = state.proven.iter().min_by_key(|(_, at)| **at).map(|(s, _)| s.clone());
            if let Some(oldest) = oldest {
                state.proven.remove(&oldest);
            }
        }
        state.proven.insert(subject.to_string(), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn locks_out_after_max_failures_and_unlocks_later() {
        let t = FailureThrottle::default();
        let now = Instant::now();
        for i in 1..=MAX_FAILURES {
            assert!(t.check("CN=a", ip(1), now).is_ok(), "failure {i}");
            t.record_failure("CN=a", ip(1), now);
        }
        assert!(t.check("CN=a", ip(1), now).is_err());
        assert!(t.check("CN=a", ip(2), now).is_err(), "a subject is locked from every address");
        assert!(t.check("CN=b", ip(1), now).is_ok(), "other subjects are not affected");
        assert!(t.check("CN=a", ip(1), now + FAILURE_WINDOW + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let t = FailureThrottle::default();
        let now = Instant::now();
        for i in 0..(MAX_FAILURES * 2) {
            let at = now + FAILURE_WINDOW * i;
            assert!(t.check("CN=a", ip(1), at).is_ok());
            t.record_failure("CN=a", ip(1), at);
        }
    }

    #[test]
    fn success_resets_the_count() {
        let t = FailureThrottle::default();
        let now = Instant::now();
        for _ in 1..MAX_FAILURES {
            t.record_failure("CN=a", ip(1), now);
        }
        t.record_success("CN=a", ip(1), now);
        t.record_failure("CN=a", ip(1), now);
        assert!(t.check("CN=a", ip(1), now).is_ok());
    }

    #[test]
    fn many_subjects_from_one_address_are_limited_by_the_address() {
        let t = FailureThrottle::default();
        let now = Instant::now();
        for i in 0..MAX_FAILURES_PER_SOURCE {
            let subject = format!("CN=s{i}");
            assert!(t.check(&subject, ip(1), now).is_ok(), "subject {i}");
            t.record_failure(&subject, ip(1), now);
        }
        assert!(t.check("CN=fresh", ip(1), now).is_err(), "a fresh subject on the same address waits");
        assert!(t.check("CN=fresh", ip(2), now).is_ok(), "other addresses are not affected");
    }

    #[test]
    fn many_subjects_on_many_addresses_are_limited_by_the_node_but_the_admin_is_not() {
        let t = FailureThrottle::default();
        let now = Instant::now();
        t.record_failure("CN=admin", ip(200), now);
        t.record_success("CN=admin", ip(200), now);
        for i in 0..MAX_FAILURES_PER_NODE {
            let (subject, source) = (format!("CN=s{i}"), ip((i % 250) as u8));
            assert!(t.check(&subject, source, now).is_ok(), "attempt {i}");
            t.record_failure(&subject, source, now);
        }
        assert!(t.check("CN=fresh", ip(251), now).is_err(), "the node limit holds for strangers");
        assert!(t.check("CN=admin", ip(1), now).is_ok(), "a proven subject is exempt");
        assert!(t.check("CN=fresh", ip(251), now + FAILURE_WINDOW).is_ok(), "the next window is open again");
        let a_day_later = now + PROVEN_FOR;
        for i in 0..MAX_FAILURES_PER_NODE {
            t.record_failure(&format!("CN=s{i}"), ip((i % 250) as u8), a_day_later);
        }
        assert!(t.check("CN=admin", ip(1), a_day_later).is_err(), "the exemption lasts a day");
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_64_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(source_key(a), source_key(b));
        assert_ne!(source_key(a), source_key("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(source_key(mapped), ip(1));
    }

    #[test]
    fn a_success_takes_its_attempt_back_from_the_shared_counts() {
        let t = FailureThrottle::default();
        let now = Instant::now();
        for i in 0..(MAX_FAILURES_PER_SOURCE * 2) {
            let subject = format!("CN=good{i}");
            t.record_failure(&subject, ip(1), now);
            t.record_success(&subject, ip(1), now);
        }
        assert!(t.check("CN=new", ip(1), now).is_ok());
    }
}
