//! The audit log behind `admin/getlogs`: bootstrap, every admin call, TLS and
//! authentication refusals. Bounded in memory and mirrored to the console.
//! Callers pass only names, subjects and outcomes — never key bytes,
//! passwords or plaintext.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

/// Entries kept for getlogs; older ones are dropped first.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Outcome of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The action succeeded.
    Ok,
    /// Access was denied (rate-limited in the log).
    Refused,
    /// The action failed.
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

/// Refused entries recorded per second at most; the rest are counted and
/// summarized, so that anyone able to open a TCP connection cannot flood
/// the console or push the admin history out of the log.
pub const MAX_REFUSALS_PER_SECOND: u32 = 20;

/// The bounded audit log.
pub struct AuditLog {
    entries: Mutex<VecDeque<String>>,
    capacity: usize,
    to_console: bool,
    refusals: Mutex<RefusalWindow>,
}

#[derive(Default)]
struct RefusalWindow {
    second: u64,
    recorded: u32,
    suppressed: u64,
}

impl AuditLog {
    /// A log that keeps `capacity` entries and echoes each to stderr when `to_console`.
    pub fn new(capacity: usize, to_console: bool) -> Self {
        AuditLog {
            entries: Mutex::new(VecDeque::with_capacity(64)),
            capacity: capacity.max(1),
            to_console,
            refusals: Mutex::new(RefusalWindow::default()),
        }
    }

    /// Whether a refusal may be recorded now; returns how many were
    /// suppressed before it (to report), or None to suppress this one.
    fn admit_refusal(&self) -> Option<u64> {
        let second = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let mut window = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        if window.second != second {
            window.second = second;
            window.recorded = 0;
        }
        if window.recorded >= MAX_REFUSALS_PER_SECOND {
            window.suppressed += 1;
            return None;
        }
        window.recorded += 1;
        Some(std::mem::take(&mut window.suppressed))
    }

    /// Records `action` by `subject` with its outcome and a short detail
    /// (a key name, a reason). Control characters are escaped so a client
    /// cannot forge log lines through a certificate subject or key name.
    pub fn record(&self, action: &str, subject: &str, outcome: Outcome, detail: &str) {
        if outcome == Outcome::Refused {
            match self.admit_refusal() {
                None => return,
                Some(0) => {}
                Some(suppressed) => self.push(format!(
                    "{} audit action=audit subject=\"-\" outcome=ok detail={suppressed} refused entries were not recorded (rate limit)",
                    humantime::format_rfc3339_millis(SystemTime::now())
                )),
            }
        }
        let line = format!(
            "{} audit action={} subject=\"{}\" outcome={}{}{}",
            humantime::format_rfc3339_millis(SystemTime::now()),
            sanitize(action),
            sanitize(subject),
            outcome.as_str(),
            if detail.is_empty() { "" } else { " detail=" },
            sanitize(detail),
        );
        self.push(line);
    }

    fn push(&self, line: String) {
        if self.to_console {
            eprintln!("{line}");
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() == self.capacity {
            entries.pop_front();
        }
        entries.push_back(line);
    }

    /// All entries, oldest first.
    pub fn snapshot(&self) -> Vec<String> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().cloned().collect()
    }
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
    fn refusal_floods_are_summarized_not_recorded() {
        let log = AuditLog::new(1000, false);
        log.record("generatekey", "CN=admin", Outcome::Ok, "key=k");
        for _ in 0..500 {
            log.record("tls-handshake", "-", Outcome::Refused, "bad");
        }
        let entries = log.snapshot();
        assert!(entries.len() <= 2 + 2 * MAX_REFUSALS_PER_SECOND as usize, "{}", entries.len());
        assert!(entries[0].contains("generatekey"), "admin history stays");
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
