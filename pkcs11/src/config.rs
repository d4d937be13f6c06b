//! The module's configuration: a JSON file named by `VSSM_PKCS11_CONFIG` or
//! by the `pReserved` string of `C_Initialize` (a path, or the JSON itself).

use crate::error::{Error, Result};
use serde::Deserialize;
use std::time::Duration;

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "VSSM_PKCS11_CONFIG";

/// The configuration file, as written (unknown fields are refused).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Nodes (`host:port`, port 8080 when absent), tried in order.
    pub nodes: Vec<String>,
    /// PEM file of the node's RPC certificate (pinned).
    pub server_certificate: String,
    /// PEM file of the client certificate (chain).
    pub client_certificate: String,
    /// PEM file of the client key; an encrypted PKCS#8 key takes the user PIN as passphrase.
    pub client_key: String,
    /// The token label (at most 32 bytes are shown).
    #[serde(default = "default_label")]
    pub token_label: String,
    /// Optional file holding the admin password, used by user sessions to create keys.
    #[serde(default)]
    pub admin_password_file: Option<String>,
    /// Key types or specs not shown on the token: `RSA`, `EC`, `ED25519`, `SYMMETRIC`, `MAC`.
    #[serde(default)]
    pub hide_key_types: Vec<String>,
    /// Per-request timeout in seconds (connect, and each read or write), default 10.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

fn default_label() -> String {
    "VSSM".to_string()
}

impl Config {
    /// Loads the configuration from the init-args string (a path or JSON), else the environment.
    pub fn load(reserved: Option<&str>) -> Result<Config> {
        let text = match reserved.map(str::trim).filter(|s| !s.is_empty()) {
            Some(json) if json.starts_with('{') => json.to_string(),
            Some(path) => read_text(path)?,
            None => match std::env::var(CONFIG_ENV) {
                Ok(value) if value.trim_start().starts_with('{') => value,
                Ok(path) => read_text(&path)?,
                Err(_) => return Err(Error::Config(format!("{CONFIG_ENV} is not set"))),
            },
        };
        Config::parse(&text)
    }

    /// Parses and checks the JSON text.
    pub fn parse(text: &str) -> Result<Config> {
        let config: Config = serde_json::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        if config.nodes.is_empty() {
            return Err(Error::Config("nodes must name at least one node".into()));
        }
        for hidden in &config.hide_key_types {
            if !["RSA", "EC", "ED25519", "SYMMETRIC", "MAC"].contains(&hidden.to_ascii_uppercase().as_str()) {
                return Err(Error::Config(format!(
                    "hideKeyTypes: unknown key type {hidden:?} (RSA, EC, ED25519, SYMMETRIC or MAC)"
                )));
            }
        }
        if config.timeout_seconds == Some(0) {
            return Err(Error::Config("timeoutSeconds must be at least 1".into()));
        }
        Ok(config)
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.unwrap_or(10))
    }

    /// Whether keys of this type or spec are hidden.
    pub fn hidden(&self, kind: &str) -> bool {
        self.hide_key_types.iter().any(|h| h.eq_ignore_ascii_case(kind))
    }
}

fn read_text(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read {path}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_empty_nodes_are_refused() {
        let base = r#""serverCertificate":"s","clientCertificate":"c","clientKey":"k""#;
        assert!(Config::parse(&format!(r#"{{"nodes":["a"],{base}}}"#)).is_ok());
        assert!(Config::parse(&format!(r#"{{"nodes":[],{base}}}"#)).is_err());
        assert!(Config::parse(&format!(r#"{{"nodes":["a"],{base},"tokenLable":"x"}}"#)).is_err());
        assert!(Config::parse(&format!(r#"{{"nodes":["a"],{base},"hideKeyTypes":["DSA"]}}"#)).is_err());
        let c = Config::parse(&format!(r#"{{"nodes":["a"],{base},"hideKeyTypes":["ed25519"]}}"#)).unwrap();
        assert!(c.hidden("ED25519") && !c.hidden("RSA"));
        assert_eq!(c.token_label, "VSSM");
        assert_eq!(c.timeout(), Duration::from_secs(10));
    }
}
