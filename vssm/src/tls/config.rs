//! rustls client and server configurations.

use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig, SignatureScheme};

use zeroize::Zeroizing;

use super::cert::parse_certificate;
use super::pinned::PinnedServerCert;
use super::TlsError;

/// TLS versions offered: 1.3 and 1.2.
const VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The AWS-LC provider (`aws-lc-rs`), used explicitly so configs never depend on
/// the process default. Its signing keys and session secrets are AWS-LC objects,
/// wiped when freed.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Pairs a certificate chain with its private key.
///
/// rustls' `with_single_cert` / `with_client_auth_cert` check that key and
/// certificate match by parsing the certificate with webpki, which refuses X.509
/// v1 certificates; so the check is done here with x509-parser instead.
///
/// The key is loaded from a borrow into an AWS-LC key object (which parses the DER
/// in place, without a copy) and the DER handed over is wiped on every path: the
/// provider's `load_private_key` would take it by value and drop it unwiped.
fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: Zeroizing<PrivateKeyDer<'static>>,
    ctx: &str,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let leaf = chain.first().ok_or_else(|| TlsError::certificate(ctx, "empty certificate chain"))?;
    let parsed = parse_certificate(leaf.as_ref()).map_err(|r| TlsError::certificate(ctx, r))?;
    let signing_key = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|_| TlsError::private_key(ctx, "unsupported or malformed private key"))?;
    let spki = signing_key
        .public_key()
        .ok_or_else(|| TlsError::private_key(ctx, "cannot derive the public key of the private key"))?;
    if spki.as_ref() != parsed.tbs_certificate.subject_pki.raw {
        return Err(TlsError::private_key(ctx, "private key does not match the certificate"));
    }
    Ok(Arc::new(CertifiedKey::new(chain, signing_key)))
}

/// Always presents the same certificate chain (server or client side).
#[derive(Debug)]
pub(super) struct FixedIdentity(pub(super) Arc<CertifiedKey>);

impl ResolvesServerCert for FixedIdentity {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl ResolvesClientCert for FixedIdentity {
    fn resolve(&self, _root_hint_subjects: &[&[u8]], _sigschemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Server config with ALPN `["h2", "http/1.1"]`, TLS 1.2 + 1.3 (AWS-LC provider).
///
/// `chain` is the server certificate followed by any intermediates; `key` must match
/// the first certificate. With `client_auth = None` no client certificate is requested.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_auth: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    const CTX: &str = "TLS server configuration";
    let identity = FixedIdentity(certified_key(chain, Zeroizing::new(key), CTX)?);
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(|e| TlsError::config(CTX, e))?;
    let builder = match client_auth {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(identity));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Client config (TLS 1.2 + 1.3, AWS-LC provider) that trusts only the pinned server
/// certificate (see [`PinnedServerCert`]), optionally presenting a client
/// certificate chain and key. No ALPN is set; callers set `alpn_protocols` if needed
/// (e.g. via `Arc::make_mut`).
pub fn pinned_client_config(
    server_cert: CertificateDer<'static>,
    client_identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    pinned_client_config_with_versions(server_cert, client_identity, VERSIONS)
}

/// [`pinned_client_config`] restricted to the given protocol versions (tests).
pub(crate) fn pinned_client_config_with_versions(
    server_cert: CertificateDer<'static>,
    client_identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Arc<ClientConfig>, TlsError> {
    const CTX: &str = "TLS client configuration";
    // Wiped even if the server certificate is refused before the key is loaded.
    let client_identity = client_identity.map(|(chain, key)| (chain, Zeroizing::new(key)));
    parse_certificate(server_cert.as_ref()).map_err(|r| TlsError::certificate("pinned server certificate", r))?;
    let identity = match client_identity {
        Some((chain, key)) => Some(FixedIdentity(certified_key(chain, key, CTX)?)),
        None => None,
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::config(CTX, e))?
        .dangerous()
        .with_custom_certificate_verifier(PinnedServerCert::new(server_cert));
    let config = match identity {
        Some(identity) => builder.with_client_cert_resolver(Arc::new(identity)),
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
