//! Verifiers that trust exactly one pinned certificate (the cluster's RPC certificate).

use std::sync::Arc;

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::DistinguishedName;

use super::cert::{other_cert_error, parse_certificate};
use super::handshake::handshake_signature_methods;

/// Server-certificate verifier for node-to-node connections and our own clients
/// (bench, tests): the server's end-entity certificate must be byte-equal to the
/// pinned certificate (the cluster's RPC certificate: CN=VSSM, possibly without
/// SAN, possibly X.509 v1).
///
/// The server name, intermediates, OCSP data and the validity period are not
/// checked: the pin is the trust decision. Handshake signatures are verified with
/// AWS-LC against the pinned certificate's public key.
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
        check_pinned(&self.cert, end_entity, "server").map(|()| ServerCertVerified::assertion())
    }

    handshake_signature_methods!();
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
            .map(|c| vec![DistinguishedName::from(c.tbs_certificate.issuer.as_raw().to_vec())])
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
        check_pinned(&self.cert, end_entity, "client").map(|()| ClientCertVerified::assertion())
    }

    handshake_signature_methods!();
}

/// The pin itself, shared by both verifiers: `end_entity` must be byte-equal to
/// `pinned`; `peer` ("server" or "client") names the side in the error.
fn check_pinned(pinned: &CertificateDer<'_>, end_entity: &CertificateDer<'_>, peer: &str) -> Result<(), rustls::Error> {
    if end_entity.as_ref() == pinned.as_ref() {
        Ok(())
    } else {
        Err(other_cert_error(format!("{peer} certificate is not the pinned RPC certificate")))
    }
}
