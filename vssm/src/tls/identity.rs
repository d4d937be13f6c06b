//! Runtime-generated identities: the pre-bootstrap certificate and the throwaway
//! development PKI.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use x509_parser::time::ASN1Time;
use zeroize::Zeroizing;

use super::TlsError;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Certificate parameters with CN `cn`, optional DNS SAN, valid from one day ago
/// for `days` days.
fn params(cn: &str, dns_san: Option<&str>, days: u64) -> Result<CertificateParams, rcgen::Error> {
    let sans = dns_san.map(|s| vec![s.to_string()]).unwrap_or_default();
    let mut p = CertificateParams::new(sans)?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    let now = ASN1Time::now().to_datetime();
    p.not_before = now - DAY;
    p.not_after = now + DAY * days as u32;
    Ok(p)
}

fn new_key(ctx: &str) -> Result<KeyPair, TlsError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| TlsError::generate(ctx, e))
}

/// Runtime-generated self-signed identity for the pre-bootstrap port 8080: ECDSA
/// P-256 key, CN=`VSSM bootstrap`, SAN DNS:`VSSM`, valid for one year (from one
/// day ago). Returns the certificate chain (one certificate) and the PKCS#8 key.
pub fn bootstrap_identity() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    const CTX: &str = "bootstrap certificate";
    let key = new_key(CTX)?;
    let mut p = params("VSSM bootstrap", Some("VSSM"), 365).map_err(|e| TlsError::generate(CTX, e))?;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = p.self_signed(&key).map_err(|e| TlsError::generate(CTX, e))?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((vec![cert.der().clone()], key_der))
}

/// `sha256//` and the base64 SHA-256 of the certificate's SubjectPublicKeyInfo:
/// the pin format of curl's `--pinnedpubkey`.
pub fn public_key_pin(cert: &CertificateDer<'_>) -> Result<String, TlsError> {
    use base64::Engine;
    let spki = crate::config::spki_of(cert).map_err(|e| TlsError::certificate("certificate", e))?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &spki);
    Ok(format!("sha256//{}", base64::engine::general_purpose::STANDARD.encode(digest)))
}

/// Throwaway PKI for `vssm dev` and tests (all ECDSA P-256, valid ten years from
/// one day ago; the CA private key is discarded).
pub struct DevPki {
    /// RPC certificate (self-signed, CN=VSSM, SAN DNS:VSSM, EKU serverAuth+clientAuth), DER.
    pub rpc_cert_der: CertificateDer<'static>,
    /// RPC certificate, PEM.
    pub rpc_cert_pem: String,
    /// RPC private key, PKCS#8 DER.
    pub rpc_key_pkcs8_der: Zeroizing<Vec<u8>>,
    /// RPC private key, PKCS#8 PEM.
    pub rpc_key_pem: Zeroizing<String>,
    /// Client CA certificate (self-signed, CA:TRUE, CN=vssm-dev client CA), DER.
    pub client_ca_cert_der: CertificateDer<'static>,
    /// Client CA certificate, PEM.
    pub client_ca_cert_pem: String,
    /// Client certificate signed by the client CA (CN=vssm-dev-client, EKU clientAuth), DER.
    pub client_cert_der: CertificateDer<'static>,
    /// Client certificate, PEM.
    pub client_cert_pem: String,
    /// Client private key, PKCS#8 DER.
    pub client_key_pkcs8_der: Zeroizing<Vec<u8>>,
    /// Client private key, PKCS#8 PEM.
    pub client_key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for DevPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevPki").finish_non_exhaustive()
    }
}

impl DevPki {
    /// The RPC private key as a rustls key.
    pub fn rpc_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.rpc_key_pkcs8_der.to_vec()))
    }

    /// The client private key as a rustls key.
    pub fn client_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.client_key_pkcs8_der.to_vec()))
    }
}

/// Generates a fresh [`DevPki`] around the given RPC key (PKCS#8 DER). The
/// caller makes that key: backups need an RSA RPC key, which rcgen does not
/// generate.
pub fn generate_dev_pki(rpc_key_pkcs8: &[u8]) -> Result<DevPki, TlsError> {
    const CTX: &str = "development PKI";
    let err = |e: rcgen::Error| TlsError::generate(CTX, e);

    let rpc_key = KeyPair::try_from(rpc_key_pkcs8).map_err(err)?;
    let mut p = params("VSSM", Some("VSSM"), 3650).map_err(err)?;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let rpc_cert = p.self_signed(&rpc_key).map_err(err)?;

    let ca_key = new_key(CTX)?;
    let mut p = params("vssm-dev client CA", None, 3650).map_err(err)?;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = p.self_signed(&ca_key).map_err(err)?;

    let client_key = new_key(CTX)?;
    let mut p = params("vssm-dev-client", None, 3650).map_err(err)?;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = p.signed_by(&client_key, &ca_cert, &ca_key).map_err(err)?;

    Ok(DevPki {
        rpc_cert_der: rpc_cert.der().clone(),
        rpc_cert_pem: rpc_cert.pem(),
        rpc_key_pkcs8_der: Zeroizing::new(rpc_key.serialize_der()),
        rpc_key_pem: Zeroizing::new(rpc_key.serialize_pem()),
        client_ca_cert_der: ca_cert.der().clone(),
        client_ca_cert_pem: ca_cert.pem(),
        client_cert_der: client_cert.der().clone(),
        client_cert_pem: client_cert.pem(),
        client_key_pkcs8_der: Zeroizing::new(client_key.serialize_der()),
        client_key_pem: Zeroizing::new(client_key.serialize_pem()),
    })
}
