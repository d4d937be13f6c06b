//! The client identity from the configuration's PEM files: the pinned
//! server certificate, the client certificate chain and the client key,
//! which may be an encrypted PKCS#8 key whose passphrase is the user PIN.

use crate::config::Config;
use crate::error::{Error, Result};
use cryptoki_sys::CKR_PIN_INCORRECT;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

/// The files of the configuration, read once at `C_Initialize`.
pub struct Identity {
    server_cert: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key_pem: Zeroizing<Vec<u8>>,
    /// The client key is an encrypted PKCS#8 key (the PIN is its passphrase).
    pub encrypted: bool,
}

const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";

impl Identity {
    /// Reads the certificate and key files named by `config`.
    pub fn load(config: &Config) -> Result<Identity> {
        let read = |path: &str| std::fs::read(path).map_err(|e| Error::Config(format!("cannot read {path}: {e}")));
        let server_cert = CertificateDer::from_pem_slice(&read(&config.server_certificate)?)
            .map_err(|e| Error::Config(format!("{}: {e}", config.server_certificate)))?;
        let chain = CertificateDer::pem_slice_iter(&read(&config.client_certificate)?)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Config(format!("{}: {e}", config.client_certificate)))?;
        if chain.is_empty() {
            return Err(Error::Config(format!("{}: no certificate", config.client_certificate)));
        }
        let key_pem = Zeroizing::new(read(&config.client_key)?);
        let encrypted = String::from_utf8_lossy(&key_pem).contains(&format!("-----BEGIN {ENCRYPTED_LABEL}-----"));
        let identity = Identity { server_cert, chain, key_pem, encrypted };
        if !encrypted {
            // Refuse an unusable key or certificate at C_Initialize (with its
            // message on stderr) rather than as a bare error at first use.
            identity.tls(b"")?;
        }
        Ok(identity)
    }

    /// The client key: decrypted with `pin` when encrypted (a wrong PIN is
    /// `CKR_PIN_INCORRECT`, decided here without any network call).
    fn key(&self, pin: &[u8]) -> Result<PrivateKeyDer<'static>> {
        if !self.encrypted {
            return PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| Error::Config(format!("client key: {e}")));
        }
        let text = std::str::from_utf8(&self.key_pem).map_err(|_| Error::Config("client key is not PEM".into()))?;
        let (label, der) =
            der::pem::decode_vec(text.as_bytes()).map_err(|e| Error::Config(format!("client key: {e}")))?;
        let der = Zeroizing::new(der);
        if label != ENCRYPTED_LABEL {
            return Err(Error::Config(format!("client key: unexpected PEM label {label}")));
        }
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
            .map_err(|e| Error::Config(format!("client key: {e}")))?;
        let plain = info.decrypt(pin).map_err(|_| Error::Rv(CKR_PIN_INCORRECT))?;
        Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(plain.as_bytes().to_vec())))
    }

    /// The TLS configuration for a login with `pin`.
    pub fn tls(&self, pin: &[u8]) -> Result<std::sync::Arc<rustls::ClientConfig>> {
        let key = self.key(pin)?;
        crate::client::tls_config(self.server_cert.clone(), self.chain.clone(), key)
    }
}
