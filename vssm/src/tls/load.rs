//! Loading certificates and private keys from PEM or DER bytes.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::cert::parse_certificate;
use super::TlsError;

fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Parses one or more certificates: PEM (`CERTIFICATE` blocks, other blocks
/// ignored) or a single DER certificate. Each must be a valid X.509 certificate.
/// Errors use the context `certificate` (see [`TlsError::with_context`]).
pub fn load_certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    const CTX: &str = "certificate";
    let certs = if is_pem(bytes) {
        CertificateDer::pem_slice_iter(bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::certificate(CTX, format!("invalid PEM: {e}")))?
    } else {
        vec![CertificateDer::from(bytes.to_vec())]
    };
    if certs.is_empty() {
        return Err(TlsError::certificate(CTX, "no CERTIFICATE block found in PEM"));
    }
    for cert in &certs {
        parse_certificate(cert.as_ref()).map_err(|r| TlsError::certificate(CTX, r))?;
    }
    Ok(certs)
}

/// Parses exactly one certificate (PEM or DER); see [`load_certificates`].
pub fn load_certificate(bytes: &[u8]) -> Result<CertificateDer<'static>, TlsError> {
    let mut certs = load_certificates(bytes)?;
    if certs.len() != 1 {
        return Err(TlsError::certificate(
            "certificate",
            format!("expected exactly one certificate, found {}", certs.len()),
        ));
    }
    Ok(certs.remove(0))
}

/// Parses a private key: PEM (`PRIVATE KEY` = PKCS#8, also `RSA PRIVATE KEY` and
/// `EC PRIVATE KEY`) or DER (PKCS#8, PKCS#1 or SEC1), and checks that rustls' AWS-LC
/// provider can sign with it (the trial AWS-LC key object is wiped when dropped). Encrypted keys are refused. Errors use the context
/// `private key` (see [`TlsError::with_context`]).
pub fn load_private_key(bytes: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    const CTX: &str = "private key";
    let key = if is_pem(bytes) {
        if bytes.windows(21).any(|w| w == b"ENCRYPTED PRIVATE KEY") {
            return Err(TlsError::private_key(CTX, "encrypted private keys are not supported"));
        }
        PrivateKeyDer::from_pem_slice(bytes)
            .map_err(|e| TlsError::private_key(CTX, format!("no usable private key in PEM: {e}")))?
    } else {
        PrivateKeyDer::try_from(bytes)
            .map_err(|e| TlsError::private_key(CTX, format!("not a valid DER private key: {e}")))?
            .clone_key()
    };
    rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|_| TlsError::private_key(CTX, "unsupported or malformed private key"))?;
    Ok(key)
}
