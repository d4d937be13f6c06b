//! Verifiers that trust exactly one pinned certificate (the cluster's RPC certificate).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::cert::{other_cert_error, parse_certificate};
use super::handshake::{verify_handshake_signature, SUPPORTED_SCHEMES};

/// Server-certificate verifier for node-to-node connections and our own clients
/// (bench, tests): the server's end-entity certificate must be byte-equal to the
/// pinned certificate (the cluster's RPC certificate: CN=VSSM, possibly without
/// SAN, possibly X.509 v1).
///
/// The server name, intermediates, OCSP data and the validity period are not
/// checked: the pin is the trust decision. Handshake signatures are verified with
/// ring against the pinned certificate's public key.
#[derive(Debug)]
pub struct PinnedServerCert {
    cert: CertificateDer<'static>,
}

impl PinnedServerCert {
    /// Pins `cert` (DER).
    pub fn new(cert: CertificateDer<'static>) -> Arc<Self> {
        Arc::new(PinnedServerCert { cert })
    }
}

impl ServerCertVerifier for PinnedServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(other_cert_error(
                "server certificate is not the pinned RPC certificate",
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_handshake_signature(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_handshake_signature(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SUPPORTED_SCHEMES.to_vec()
    }
}

/// Client-certificate verifier for the sync port (8082): the client must present
/// exactly the pinned RPC certificate (byte-equal end-entity certificate; client
/// authentication is mandatory). Validity period is not checked, as for
/// [`PinnedServerCert`]. The CA hint sent to clients is the pinned certificate's
/// issuer name.
#[derive(Debug)]
pub struct PinnedClientCert {
    cert: CertificateDer<'static>,
    hints: Vec<DistinguishedName>,
}

impl PinnedClientCert {
    /// Pins `cert` (DER).
    pub fn new(cert: CertificateDer<'static>) -> Arc<Self> {
        let hints = parse_certificate(cert.as_ref())
            .map(|c| {
                vec![DistinguishedName::from(
                    c.tbs_certificate.issuer.as_raw().to_vec(),
                )]
            })
            .unwrap_or_default();
        Arc::new(PinnedClientCert { cert, hints })
    }
}

impl ClientCertVerifier for PinnedClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(other_cert_error(
                "client certificate is not the pinned RPC certificate",
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_handshake_signature(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_handshake_signature(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SUPPORTED_SCHEMES.to_vec()
    }
}
