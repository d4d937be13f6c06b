//! Private keys from the network: the PKCS#8 DER of admin/bootstrap (anyone,
//! before bootstrap) and of admin/injectkey, with the size limit the
//! handlers apply first; and the PEM/DER private-key loader.
//! Input: the key bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vssm::crypto::keys::AsymmetricKey;

fuzz_target!(|data: &[u8]| {
    if data.len() <= vssm::node::MAX_KEY_DER_BYTES {
        if let Ok(key) = AsymmetricKey::from_pkcs8_der(data) {
            let _ = key.public_key_der();
        }
    }
    let _ = vssm::tls::load_private_key(data);
});
