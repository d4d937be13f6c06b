//! Request bodies of the API port (8080), as the handlers read them: the
//! JSON of each endpoint, then the names and algorithm strings in it, then
//! the crypto operation on a fixed key of each type (padding, iv, tag and
//! length checks of client-chosen inputs).
//! Input: one selector byte (which endpoint), then the body.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vssm::crypto::algorithm::{AsymmetricEncryption, MacAlgorithm, SignatureAlgorithm, SymmetricAlgorithm};
use vssm::crypto::asymmetric::{self, Message};
use vssm::crypto::keys::{AsymmetricKey, KeySpec, MacKey, SymmetricKey};
use vssm::crypto::{mac, symmetric};
use vssm::keystore::{validate_name, KeyType};
use vssm::server::json::parse_json;
use vssm::wire::*;

struct Keys {
    symmetric: Vec<SymmetricKey>,
    mac: MacKey,
    /// Public-key operations only on RSA (a private one takes a millisecond).
    rsa: AsymmetricKey,
    /// Signing and verifying.
    fast: Vec<AsymmetricKey>,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        symmetric: [8, 16, 24, 32].map(|n| SymmetricKey::from_bytes(&vec![0x5a; n]).unwrap()).into(),
        mac: MacKey::from_bytes(&[0x33; 32]).unwrap(),
        rsa: AsymmetricKey::generate(KeySpec::Rsa, 2048).unwrap(),
        fast: vec![
            AsymmetricKey::generate(KeySpec::Ec, 256).unwrap(),
            AsymmetricKey::generate(KeySpec::Ec, 384).unwrap(),
            AsymmetricKey::generate(KeySpec::Ed25519, 0).unwrap(),
        ],
    })
}

/// `input` or `hashed`, as the sign and verify handlers choose.
fn message<'a>(input: &'a [u8], hashed: &'a [u8]) -> Option<Message<'a>> {
    match (input.is_empty(), hashed.is_empty()) {
        (false, false) => None,
        (true, false) => Some(Message::Hashed(hashed)),
        _ => Some(Message::Input(input)),
    }
}

fn symmetric_op(body: &[u8]) {
    let Ok(r) = parse_json::<SymmetricRequest>(body) else { return };
    let _ = validate_name(&r.key_name);
    let Ok(alg) = SymmetricAlgorithm::parse(&r.algorithm) else { return };
    let key = &keys().symmetric[r.key_name.len() % 4];
    let _ = symmetric::decrypt(&alg, key, &r.input.0, &r.aad.0);
    let _ = symmetric::encrypt(&alg, key, &r.input.0, &r.aad.0);
}

fn asymmetric_op(body: &[u8]) {
    let Ok(r) = parse_json::<KeyedInputRequest>(body) else { return };
    let _ = validate_name(&r.key_name);
    if let Ok(alg) = AsymmetricEncryption::parse(&r.algorithm) {
        let _ = asymmetric::encrypt(&alg, &keys().rsa, &r.input.0);
    }
    if let Ok(alg) = MacAlgorithm::parse(&r.algorithm) {
        let _ = mac::create(&alg, &keys().mac, &r.input.0);
    }
}

fn sign(body: &[u8]) {
    let Ok(r) = parse_json::<SignRequest>(body) else { return };
    let (Ok(alg), Some(msg)) = (SignatureAlgorithm::parse(&r.algorithm), message(&r.input.0, &r.hashed.0)) else {
        return;
    };
    for key in &keys().fast {
        let _ = asymmetric::sign(&alg, key, msg);
    }
}

fn verify(body: &[u8]) {
    let Ok(r) = parse_json::<VerifyRequest>(body) else { return };
    let (Ok(alg), Some(msg)) = (SignatureAlgorithm::parse(&r.algorithm), message(&r.input.0, &r.hashed.0)) else {
        return;
    };
    for key in keys().fast.iter().chain([&keys().rsa]) {
        let _ = asymmetric::verify(&alg, key, msg, &r.signature.0);
    }
}

fn hmac_verify(body: &[u8]) {
    let Ok(r) = parse_json::<HmacVerifyRequest>(body) else { return };
    if let Ok(alg) = MacAlgorithm::parse(&r.algorithm) {
        let _ = mac::verify(&alg, &keys().mac, &r.input.0, &r.hmac.0);
    }
}

fn admin(selector: u8, body: &[u8]) {
    let names = |name: &str, key_type: &str| {
        let _ = validate_name(name);
        let _ = KeyType::parse(key_type);
    };
    match selector {
        0 => {
            if let Ok(r) = parse_json::<GenerateKeyRequest>(body) {
                names(&r.key_name, &r.key_type);
                let _ = KeySpec::parse(&r.key_spec);
                let _ = u64::try_from(r.key_size.0);
            }
        }
        1 => {
            if let Ok(r) = parse_json::<InjectKeyRequest>(body) {
                names(&r.key_name, &r.key_type);
                let _ = SymmetricKey::from_bytes(&r.key.0);
                let _ = MacKey::from_bytes(&r.key.0);
            }
        }
        2 => {
            let _ = parse_json::<PasswordOnlyRequest>(body);
        }
        3 => {
            let _ = parse_json::<RestoreBackupRequest>(body);
        }
        4 => {
            if let Ok(r) = parse_json::<ListKeysRequest>(body) {
                names(&r.key_name, &r.key_type);
            }
        }
        _ => {
            let _ = parse_json::<BootstrapRequest>(body);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    match selector % 12 {
        0 => symmetric_op(body),
        1 => asymmetric_op(body),
        2 => sign(body),
        3 => verify(body),
        4 => hmac_verify(body),
        n => admin(n - 5, body),
    }
});
