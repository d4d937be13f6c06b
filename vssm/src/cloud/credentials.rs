//! AWS credentials (static or instance-role) with redacted `Debug` and zeroized secrets.

use std::fmt;
use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

/// An access key pair, with the session token of temporary credentials.
#[derive(Clone)]
pub struct AwsCredentials {
    /// The access key id (not secret).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Zeroizing<String>,
    /// The session token of temporary credentials.
    pub session_token: Option<Zeroizing<String>>,
    /// When temporary credentials expire (`None` for long-term keys).
    pub expiration: Option<SystemTime>,
}

impl AwsCredentials {
    /// Long-term (or, with a token, temporary) credentials without an expiry.
    pub fn new(access_key_id: &str, secret_access_key: &str, session_token: Option<&str>) -> AwsCredentials {
        AwsCredentials {
            access_key_id: access_key_id.to_string(),
            secret_access_key: Zeroizing::new(secret_access_key.to_string()),
            session_token: session_token.map(|t| Zeroizing::new(t.to_string())),
            expiration: None,
        }
    }

    /// True if the credentials expire within `margin` of `now` (never for long-term keys).
    pub fn expires_within(&self, now: SystemTime, margin: Duration) -> bool {
        match self.expiration {
            Some(exp) => exp <= now + margin,
            None => false,
        }
    }
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .field("expiration", &self.expiration.map(|t| humantime::format_rfc3339_seconds(t).to_string()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let mut c = AwsCredentials::new("AKIDEXAMPLE", "supersecret", Some("tokentoken"));
        c.expiration = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160));
        let d = format!("{c:?}");
        assert!(d.contains("AKIDEXAMPLE") && d.contains("2015-08-30T12:36:00Z"), "{d}");
        assert!(!d.contains("supersecret") && !d.contains("tokentoken"), "{d}");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160 - 100);
        assert!(c.expires_within(now, Duration::from_secs(300)));
        assert!(!c.expires_within(now, Duration::from_secs(10)));
    }
}
