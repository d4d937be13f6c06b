//! Hostname: DHCP option 12, else the configured one, else `vssm`.

use std::io;

/// The fallback hostname.
pub const DEFAULT: &str = "vssm";

/// Keeps what a hostname may hold (letters, digits, `-`, `.`), at most 64
/// bytes, no leading/trailing `-` or `.`; `None` when nothing is left.
pub fn sanitize(name: &str) -> Option<String> {
    let s: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.').take(64).collect();
    let s = s.trim_matches(|c| c == '-' || c == '.').to_string();
    (!s.is_empty()).then_some(s)
}

/// Picks the hostname: DHCP's (option 12) if valid, else `configured`, else
/// [`DEFAULT`].
pub fn choose(from_dhcp: Option<&str>, configured: Option<&str>) -> String {
    from_dhcp.and_then(sanitize).or_else(|| configured.and_then(sanitize)).unwrap_or_else(|| DEFAULT.to_string())
}

/// Sets the kernel hostname (`sethostname(2)`).
pub fn set(name: &str) -> io::Result<()> {
    nix::unistd::sethostname(name).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice() {
        assert_eq!(choose(Some("ip-10-0-1-5"), Some("x")), "ip-10-0-1-5");
        assert_eq!(choose(Some("\u{0}!!"), Some("node1")), "node1");
        assert_eq!(choose(None, None), "vssm");
        assert_eq!(sanitize("a b_c.example.").as_deref(), Some("abc.example"));
        assert_eq!(sanitize(&"x".repeat(100)).unwrap().len(), 64);
    }
}
