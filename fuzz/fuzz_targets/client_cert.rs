//! The client-certificate verifier of the API port (tls/client_ca.rs): a
//! client's certificate DER against a fixed RSA client CA (as in the
//! README's openssl recipe), and the same bytes as a trust-store CA.
//! Input: the certificate DER.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};
use vssm::tls::ClientCaVerifier;

/// `fixtures/client-ca.der`: the CA of the seeds (valid 2026-11-30 to 2126).
const CA_DER: &[u8] = include_bytes!("../fixtures/client-ca.der");
/// 2027-01-01, inside the validity of the CA and of the seeds.
const NOW_SECS: u64 = 1_798_761_600;

fn verifier() -> &'static Arc<ClientCaVerifier> {
    static VERIFIER: OnceLock<Arc<ClientCaVerifier>> = OnceLock::new();
    VERIFIER.get_or_init(|| ClientCaVerifier::new(&[CertificateDer::from(CA_DER.to_vec())]).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let now = UnixTime::since_unix_epoch(Duration::from_secs(NOW_SECS));
    let _ = verifier().verify_client_cert(&CertificateDer::from(data), &[], now);
    let _ = ClientCaVerifier::new(&[CertificateDer::from(data.to_vec())]);
});
