//! The algorithm, key-type and key-spec names of API requests, and key names.
//! Input: the string as it stands in the request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vssm::crypto::algorithm::{AsymmetricEncryption, HashAlg, MacAlgorithm, SignatureAlgorithm, SymmetricAlgorithm};
use vssm::crypto::keys::KeySpec;
use vssm::keystore::{validate_name, KeyType};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(alg) = SymmetricAlgorithm::parse(text) {
        let _ = SymmetricAlgorithm::new(alg.cipher(), alg.mode(), alg.padding());
    }
    let _ = AsymmetricEncryption::parse(text);
    if let Ok(alg) = SignatureAlgorithm::parse(text) {
        let _ = alg.hash();
    }
    if let Ok(alg) = MacAlgorithm::parse(text) {
        let _ = (alg.output_len(), alg.hash(), alg.index());
    }
    let _ = HashAlg::parse(text);
    let _ = KeySpec::parse(text);
    let _ = KeyType::parse(text);
    let _ = validate_name(text);
});
