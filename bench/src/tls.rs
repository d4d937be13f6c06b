//! Mutual-TLS client configuration built from a `vssm dev` data folder.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::Error;

/// Name the server certificate is verified against (CN / DNS SAN of rpc.crt).
pub const SERVER_NAME: &str = "VSSM";

/// Builds a connector that trusts only `DIR/rpc.crt`, presents
/// `DIR/client.crt` + `DIR/client.key`, and offers `h2` or `http/1.1` by ALPN.
pub fn connector(dir: &Path, h2: bool) -> Result<TlsConnector, Error> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(&dir.join("rpc.crt"))? {
        roots.add(cert)?;
    }
    let chain = read_certs(&dir.join("client.crt"))?;
    let key_path = dir.join("client.key");
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![if h2 { b"h2".to_vec() } else { b"http/1.1".to_vec() }];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The TLS server name for [`SERVER_NAME`].
pub fn server_name() -> ServerName<'static> {
    ServerName::try_from(SERVER_NAME).expect("valid DNS name")
}

/// Reads every certificate of a PEM file; an empty file is an error.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", path.display()).into());
    }
    Ok(certs)
}
