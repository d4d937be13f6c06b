//! Loading certificates and private keys from PEM or DER bytes.

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
use zeroize::Zeroizing;

use super::cert::parse_certificate;
use super::TlsError;

fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// The first `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block of a PEM
/// text (other blocks are skipped), decoded without an unwiped copy: rustls-pki-types'
/// own PEM reader leaves the base64 text in buffers it does not wipe. The base64
/// body and the DER live in preallocated [`Zeroizing`] buffers (never grown, so
/// never reallocated); the DER buffer is moved, not copied, into the result.
fn private_key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, &'static str> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const END: &[u8] = b"-----END ";
    const DASHES: &[u8] = b"-----";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let mut rest = pem;
    while let Some(start) = find(rest, BEGIN) {
        rest = &rest[start + BEGIN.len()..];
        let label_end = find(rest, DASHES).ok_or("unterminated BEGIN line")?;
        let label = &rest[..label_end];
        rest = &rest[label_end + DASHES.len()..];
        let mut end_line = END.to_vec();
        end_line.extend_from_slice(label);
        end_line.extend_from_slice(DASHES);
        let body_end = find(rest, &end_line).ok_or("missing END line")?;
        let body = &rest[..body_end];
        rest = &rest[body_end + end_line.len()..];
        if !matches!(label, b"PRIVATE KEY" | b"RSA PRIVATE KEY" | b"EC PRIVATE KEY") {
            continue;
        }
        let mut text = Zeroizing::new(Vec::with_capacity(body.len()));
        text.extend(body.iter().copied().filter(|b| !b.is_ascii_whitespace()));
        let mut der = Zeroizing::new(Vec::with_capacity(text.len() / 4 * 3 + 3));
        base64::engine::general_purpose::STANDARD.decode_vec(&*text, &mut der).map_err(|_| "invalid base64")?;
        let der = std::mem::take(&mut *der);
        return Ok(match label {
            b"PRIVATE KEY" => PrivatePkcs8KeyDer::from(der).into(),
            b"RSA PRIVATE KEY" => PrivatePkcs1KeyDer::from(der).into(),
            _ => PrivateSec1KeyDer::from(der).into(),
        });
    }
    Err("no private key block found")
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
///
/// The key comes back in a [`Zeroizing`] wrapper: rustls-pki-types implements
/// `Zeroize` for it but does not wipe it when dropped.
pub fn load_private_key(bytes: &[u8]) -> Result<Zeroizing<PrivateKeyDer<'static>>, TlsError> {
    const CTX: &str = "private key";
    // Wrapped at once, so a key refused below is wiped too.
    let key = Zeroizing::new(if is_pem(bytes) {
        if bytes.windows(21).any(|w| w == b"ENCRYPTED PRIVATE KEY") {
            return Err(TlsError::private_key(CTX, "encrypted private keys are not supported"));
        }
        private_key_from_pem(bytes)
            .map_err(|e| TlsError::private_key(CTX, format!("no usable private key in PEM: {e}")))?
    } else {
        PrivateKeyDer::try_from(bytes)
            .map_err(|e| TlsError::private_key(CTX, format!("not a valid DER private key: {e}")))?
            .clone_key()
    });
    rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|_| TlsError::private_key(CTX, "unsupported or malformed private key"))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our PEM reader agrees with rustls-pki-types' on every key label, skips
    /// other blocks, and refuses what has no key block or broken base64.
    #[test]
    fn private_key_pem_matches_pki_types() {
        let pki = super::super::generate_dev_pki(
            &crate::crypto::keys::AsymmetricKey::generate(crate::crypto::keys::KeySpec::Ec, 256)
                .expect("P-256 key")
                .to_pkcs8_der(),
        )
        .expect("dev PKI");
        let body = pki.rpc_key_pem.replace("-----BEGIN PRIVATE KEY-----", "").replace("-----END PRIVATE KEY-----", "");
        for label in ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"] {
            let pem = format!("{}-----BEGIN {label}-----{body}-----END {label}-----\n", pki.rpc_cert_pem);
            let ours = private_key_from_pem(pem.as_bytes()).unwrap();
            assert_eq!(ours, PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap(), "{label}");
        }
        assert_eq!(private_key_from_pem(pki.rpc_cert_pem.as_bytes()).unwrap_err(), "no private key block found");
        let broken = "-----BEGIN PRIVATE KEY-----\nAB!C\n-----END PRIVATE KEY-----\n";
        assert_eq!(private_key_from_pem(broken.as_bytes()).unwrap_err(), "invalid base64");
        assert!(private_key_from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n").is_err());
    }
}
