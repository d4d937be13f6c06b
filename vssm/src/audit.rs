//! The audit log behind `admin/getlogs`: bootstrap, every admin call, TLS and
//! authentication refusals. Bounded in memory and mirrored to the console.
//! Callers pass only names, subjects and outcomes — never key bytes,
//! passwords or plaintext.
//!
//! Two stores, so that no client can erase the history: the *history*
//! holds what only the admin (or the cluster) can cause — successful
//! admin actions, bootstrap, key-name conflicts — and is
//! never rate-limited; the *events* hold everything else, where failures
//! and refusals are limited per window and summarized. `getlogs` shows both,
//! merged in the order they happened.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Event entries kept for getlogs; older ones are dropped first.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// History entries (successful admin actions, bootstrap, conflicts) kept;
/// only the admin password or the cluster's RPC key can add one.
pub const HISTORY_CAPACITY: usize = 10_000;

/// Outcome of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The action succeeded.
    Ok,
    /// Access was denied (rate-limited in the log).
    Refused,
    /// The action failed (rate-limited in the log).
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// Failed entries and refused entries recorded per [`LIMIT_WINDOW`], each
/// kind on its own budget; the rest are counted and summarized in one line
/// per kind and window, so that neither a trusted client nor anyone able to
/// open a TCP connection can flood the console or the log.
pub const MAX_LIMITED_PER_WINDOW: u32 = 30;
/// The window of [`MAX_LIMITED_PER_WINDOW`].
pub const LIMIT_WINDOW: Duration = Duration::from_secs(60);
/// Distinct actions counted by name in a summary; others count as `other`.
const MAX_SUMMARIZED_ACTIONS: usize = 16;

/// The bounded audit log.
pub struct AuditLog {
    stores: Mutex<Stores>,
    to_console: bool,
}

struct Stores {
    /// Entries with their sequence number, oldest first.
    history: VecDeque<(u64, String)>,
    events: VecDeque<(u64, String)>,
    history_capacity: usize,
    event_capacity: usize,
    next_sequence: u64,
    refused: LimitWindow,
    failed: LimitWindow,
}

/// One outcome's budget in the current window and what it suppressed.
#[derive(Default)]
struct LimitWindow {
    started: Option<Instant>,
    recorded: u32,
    suppressed: Vec<(String, u64)>,
}

impl LimitWindow {
    /// Whether an entry of `action` may be recorded at `now` (call
    /// [`LimitWindow::close_if_over`] first).
    fn admit(&mut self, action: &str, now: Instant) -> bool {
        self.started.get_or_insert(now);
        if self.recorded < MAX_LIMITED_PER_WINDOW {
            self.recorded += 1;
            return true;
        }
        let name = if self.suppressed.len() < MAX_SUMMARIZED_ACTIONS || self.suppressed.iter().any(|(a, _)| a == action)
        {
            action
        } else {
            "other"
        };
        match self.suppressed.iter_mut().find(|(a, _)| a == name) {
            Some((_, count)) => *count += 1,
            None => self.suppressed.push((name.to_string(), 1)),
        }
        false
    }

    /// Ends the window if it is over: the summary of what it suppressed, if anything.
    fn close_if_over(&mut self, outcome: Outcome, now: Instant) -> Option<String> {
        let started = self.started?;
        if now.duration_since(started) < LIMIT_WINDOW {
            return None;
        }
        self.started = None;
        self.recorded = 0;
        if self.suppressed.is_empty() {
            return None;
        }
        let total: u64 = self.suppressed.iter().map(|(_, n)| n).sum();
        let by_action: Vec<String> =
            std::mem::take(&mut self.suppressed).into_iter().map(|(a, n)| format!("{a}: {n}")).collect();
        Some(format!(
            "rate limit: {total} {} entries over {MAX_LIMITED_PER_WINDOW} a minute were not recorded ({})",
            outcome.as_str(),
            by_action.join(", ")
        ))
    }
}

impl AuditLog {
    /// A log that keeps `capacity` event entries and [`HISTORY_CAPACITY`]
    /// history entries, and echoes each to stderr when `to_console`.
    pub fn new(capacity: usize, to_console: bool) -> Self {
        AuditLog::with_capacities(HISTORY_CAPACITY, capacity, to_console)
    }

    fn with_capacities(history_capacity: usize, event_capacity: usize, to_console: bool) -> Self {
        AuditLog {
            stores: Mutex::new(Stores {
                history: VecDeque::with_capacity(64),
                events: VecDeque::with_capacity(64),
                history_capacity: history_capacity.max(1),
                event_capacity: event_capacity.max(1),
                next_sequence: 0,
                refused: LimitWindow::default(),
                failed: LimitWindow::default(),
            }),
            to_console,
        }
    }

    /// Records `action` by `subject` with its outcome and a short detail
    /// (a key name, a reason) among the events: failures and refusals are
    /// rate-limited. Control characters are escaped so a client cannot
    /// forge log lines through a certificate subject or key name.
    pub fn record(&self, action: &str, subject: &str, outcome: Outcome, detail: &str) {
        self.record_at(action, subject, outcome, detail, Instant::now());
    }

    fn record_at(&self, action: &str, subject: &str, outcome: Outcome, detail: &str, now: Instant) {
        let mut stores = self.lock();
        self.flush_summaries(&mut stores, now);
        let admitted = match outcome {
            Outcome::Ok => true,
            Outcome::Refused => stores.refused.admit(action, now),
            Outcome::Failed => stores.failed.admit(action, now),
        };
        if admitted {
            self.push(&mut stores, false, line(action, subject, outcome, detail));
        }
    }

    /// Records an entry of the history: a successful admin action (the
    /// caller proved the admin password), the bootstrap, or a
    /// key-name conflict. Never rate-limited, and never pushed out by events.
    pub fn record_history(&self, action: &str, subject: &str, outcome: Outcome, detail: &str) {
        let mut stores = self.lock();
        self.flush_summaries(&mut stores, Instant::now());
        self.push(&mut stores, true, line(action, subject, outcome, detail));
    }

    /// All entries of both stores, oldest first (a finished window's
    /// summary is written first).
    pub fn snapshot(&self) -> Vec<String> {
        let mut stores = self.lock();
        self.flush_summaries(&mut stores, Instant::now());
        let (mut history, mut events) = (stores.history.iter().peekable(), stores.events.iter().peekable());
        let mut out = Vec::with_capacity(stores.history.len() + stores.events.len());
        loop {
            let next = match (history.peek(), events.peek()) {
                (Some(h), Some(e)) if h.0 < e.0 => history.next(),
                (Some(_), Some(_)) | (None, Some(_)) => events.next(),
                (Some(_), None) => history.next(),
                (None, None) => break,
            };
            out.extend(next.map(|(_, line)| line.clone()));
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stores> {
        self.stores.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn flush_summaries(&self, stores: &mut Stores, now: Instant) {
        for outcome in [Outcome::Refused, Outcome::Failed] {
            let window = if outcome == Outcome::Refused { &mut stores.refused } else { &mut stores.failed };
            if let Some(summary) = window.close_if_over(outcome, now) {
                self.push(stores, false, line("audit", "-", Outcome::Ok, &summary));
            }
        }
    }

    fn push(&self, stores: &mut Stores, history: bool, line: String) {
        if self.to_console {
            eprintln!("{line}");
        }
        let sequence = stores.next_sequence;
        stores.next_sequence += 1;
        let (store, capacity) = if history {
            (&mut stores.history, stores.history_capacity)
        } else {
            (&mut stores.events, stores.event_capacity)
        };
        if store.len() >= capacity {
            store.pop_front();
        }
        store.push_back((sequence, line));
    }
}

fn line(action: &str, subject: &str, outcome: Outcome, detail: &str) -> String {
    format!(
        "{} audit action={} subject=\"{}\" outcome={}{}{}",
        humantime::format_rfc3339_millis(SystemTime::now()),
        sanitize(action),
        sanitize(subject),
        outcome.as_str(),
        if detail.is_empty() { "" } else { " detail=" },
        sanitize(detail),
    )
}

fn sanitize(text: &str) -> String {
    const MAX: usize = 256;
    let mut out = String::with_capacity(text.len().min(MAX));
    for c in text.chars().take(MAX) {
        if c.is_control() || c == '"' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_newest_entries() {
        let log = AuditLog::new(3, false);
        for i in 0..5 {
            log.record("listkeys", "CN=a", Outcome::Ok, &format!("n{i}"));
        }
        let entries = log.snapshot();
        assert_eq!(entries.len(), 3);
        assert!(entries[0].contains("detail=n2"));
        assert!(entries[2].contains("detail=n4"));
    }

    #[test]
    fn floods_of_failures_and_refusals_cannot_push_the_history_out() {
        let log = AuditLog::with_capacities(10, 100, false);
        let now = Instant::now();
        log.record_history("generatekey", "CN=admin", Outcome::Ok, "key=k");
        for i in 0..10_400u32 {
            log.record_at("listkeys", "CN=mallory", Outcome::Failed, "400 bad", now);
            log.record_at("tls-handshake", "-", Outcome::Refused, &format!("from {i}"), now);
            log.record_at("listkeys", "CN=mallory", Outcome::Ok, "", now);
        }
        let entries = log.snapshot();
        assert!(entries[0].contains("action=generatekey"), "{}", entries[0]);
        let failed = entries.iter().filter(|l| l.contains("outcome=failed")).count();
        let refused = entries.iter().filter(|l| l.contains("outcome=refused")).count();
        assert!(failed <= MAX_LIMITED_PER_WINDOW as usize && refused <= MAX_LIMITED_PER_WINDOW as usize);
        assert_eq!(entries.len(), 1 + 100, "the events store stays bounded");
    }

    #[test]
    fn a_finished_window_is_summarized_per_action_and_the_budget_renews() {
        let log = AuditLog::new(1000, false);
        let t0 = Instant::now();
        for _ in 0..(MAX_LIMITED_PER_WINDOW + 7) {
            log.record_at("listkeys", "CN=a", Outcome::Failed, "400", t0);
        }
        for _ in 0..3 {
            log.record_at("tls-handshake", "-", Outcome::Refused, "x", t0);
        }
        let later = t0 + LIMIT_WINDOW;
        log.record_at("getlogs", "CN=a", Outcome::Failed, "after", later);
        let entries = log.snapshot();
        let summaries: Vec<&String> = entries.iter().filter(|l| l.contains("rate limit:")).collect();
        assert_eq!(summaries.len(), 1, "{summaries:?}");
        assert!(summaries[0].contains("7 failed entries") && summaries[0].contains("listkeys: 7"), "{}", summaries[0]);
        assert!(entries.last().unwrap().contains("detail=after"), "the new window records again");
    }

    #[test]
    fn summaries_name_a_bounded_number_of_actions() {
        let mut window = LimitWindow::default();
        let now = Instant::now();
        for i in 0..(MAX_LIMITED_PER_WINDOW as usize + 100) {
            window.admit(&format!("action{i}"), now);
        }
        assert_eq!(window.suppressed.len(), MAX_SUMMARIZED_ACTIONS + 1);
        let summary = window.close_if_over(Outcome::Failed, now + LIMIT_WINDOW).unwrap();
        assert!(summary.contains("100 failed entries") && summary.contains("other: "), "{summary}");
    }

    #[test]
    fn snapshot_merges_both_stores_in_order() {
        let log = AuditLog::new(10, false);
        log.record("listkeys", "CN=a", Outcome::Ok, "1");
        log.record_history("generatekey", "CN=a", Outcome::Ok, "2");
        log.record("listkeys", "CN=a", Outcome::Failed, "3");
        log.record_history("injectkey", "CN=a", Outcome::Ok, "4");
        let details: Vec<String> =
            log.snapshot().iter().map(|l| l.rsplit("detail=").next().unwrap().to_string()).collect();
        assert_eq!(details, ["1", "2", "3", "4"]);
    }

    #[test]
    fn escapes_newlines_so_lines_cannot_be_forged() {
        let log = AuditLog::new(10, false);
        log.record("generatekey", "CN=x\n2026 audit action=bootstrap", Outcome::Refused, "k\"ey");
        let entries = log.snapshot();
        assert_eq!(entries.len(), 1);
        assert!(!entries[0].contains('\n'));
        assert!(entries[0].contains("outcome=refused"));
    }
}
