//! Error type of the TLS module.

use std::fmt;

/// Errors raised while loading TLS material or building TLS configurations.
///
/// Every variant carries a `context` naming the offending input (a configuration
/// field such as `clientTrustStore[1]`, or a generic word like `certificate`), so
/// that the `Display` form tells an operator exactly what is wrong, e.g.
/// `clientTrustStore[1]: not a valid X.509 certificate`.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate could not be parsed or is not acceptable for its role.
    Certificate {
        /// What the certificate is (e.g. `clientTrustStore[0]`, `rpcCertificate`).
        context: String,
        /// Why it was refused.
        reason: String,
    },
    /// A private key could not be parsed or is not supported.
    PrivateKey {
        /// What the key is (e.g. `rpcPrivateKey`).
        context: String,
        /// Why it was refused.
        reason: String,
    },
    /// rustls refused to build a configuration (e.g. key does not match certificate).
    Config {
        /// Which configuration was being built.
        context: String,
        /// The underlying rustls error.
        source: rustls::Error,
    },
    /// Generating a key pair or certificate failed.
    Generate {
        /// What was being generated.
        context: String,
        /// The underlying error message.
        reason: String,
    },
}

impl TlsError {
    pub(crate) fn certificate(context: impl Into<String>, reason: impl fmt::Display) -> Self {
        TlsError::Certificate { context: context.into(), reason: reason.to_string() }
    }

    pub(crate) fn private_key(context: impl Into<String>, reason: impl Into<String>) -> Self {
        TlsError::PrivateKey { context: context.into(), reason: reason.into() }
    }

    pub(crate) fn config(context: impl Into<String>, source: rustls::Error) -> Self {
        TlsError::Config { context: context.into(), source }
    }

    pub(crate) fn generate(context: impl Into<String>, reason: impl ToString) -> Self {
        TlsError::Generate { context: context.into(), reason: reason.to_string() }
    }

    /// Replaces the context (the name of the offending input) of this error, e.g.
    /// `load_certificate(bytes).map_err(|e| e.with_context("rpcCertificate"))`.
    pub fn with_context(self, new_context: impl Into<String>) -> Self {
        let new_context = new_context.into();
        match self {
            TlsError::Certificate { reason, .. } => TlsError::Certificate { context: new_context, reason },
            TlsError::PrivateKey { reason, .. } => TlsError::PrivateKey { context: new_context, reason },
            TlsError::Config { source, .. } => TlsError::Config { context: new_context, source },
            TlsError::Generate { reason, .. } => TlsError::Generate { context: new_context, reason },
        }
    }

    /// The name of the offending input.
    pub fn context(&self) -> &str {
        match self {
            TlsError::Certificate { context, .. }
            | TlsError::PrivateKey { context, .. }
            | TlsError::Config { context, .. }
            | TlsError::Generate { context, .. } => context,
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Certificate { context, reason } | TlsError::PrivateKey { context, reason } => {
                write!(f, "{context}: {reason}")
            }
            TlsError::Config { context, source } => write!(f, "{context}: {source}"),
            TlsError::Generate { context, reason } => {
                write!(f, "{context}: generation failed: {reason}")
            }
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Config { source, .. } => Some(source),
            _ => None,
        }
    }
}
