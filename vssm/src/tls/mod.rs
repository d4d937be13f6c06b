//! TLS for VSSM: rustls configurations and our own strict certificate verifiers.
//!
//! Certificates made with the first VSSM's README recipe must keep working: client
//! certificates are X.509 **v1** without extensions (refused by webpki, rustls'
//! default verifier) and the RPC certificate is self-signed with CN=VSSM and no SAN.
//! Hence:
//! * [`ClientCaVerifier`] (port 8080): the client certificate must be signed
//!   directly by a configured CA, with an algorithm allow-list and validity checks;
//! * [`PinnedServerCert`] / [`PinnedClientCert`] (node-to-node, port 8082, our own
//!   clients): the peer must present exactly the cluster's RPC certificate;
//! * handshake signatures are verified with AWS-LC against the certificate's public
//!   key, without webpki.
//!
//! All configurations use rustls' AWS-LC provider (`aws-lc-rs`), TLS 1.2 and 1.3:
//! the private key and the session secrets live in AWS-LC objects, wiped when
//! freed, and the key DER handed to a configuration is wiped once loaded.

mod cert;
mod client_ca;
mod config;
mod error;
mod handshake;
mod identity;
mod load;
mod pinned;
mod subject;
#[cfg(test)]
mod tests;

pub(crate) use cert::parse_certificate;
pub use client_ca::ClientCaVerifier;
pub use config::{pinned_client_config, server_config};
pub use error::TlsError;
pub use identity::{bootstrap_identity, generate_dev_pki, public_key_pin, DevPki};
pub use load::{load_certificate, load_certificates, load_private_key};
pub use pinned::{PinnedClientCert, PinnedServerCert};
pub(crate) use subject::format_name;
pub use subject::peer_subject;

/// Installs AWS-LC as the process-wide rustls `CryptoProvider` (idempotent: does
/// nothing if a provider is already installed). The configurations built by this
/// module name the AWS-LC provider explicitly and do not depend on this.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
