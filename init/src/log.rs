//! Logging to stderr (the serial console once [`crate::console`] attached it).
//! Write errors are ignored: PID 1 must never panic because a log line failed.

macro_rules! log {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "vssm-init: {}", format_args!($($arg)*));
    }};
}
