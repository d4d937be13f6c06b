//! The crypto endpoints: look the key up in the lock-free snapshot, parse
//! the algorithm, run the operation on this I/O thread (each takes at most a
//! few milliseconds), answer. Each endpoint turns one request body into a
//! typed [`CryptoAnswer`]; [`run`] is the one way in, for a single request
//! (whose answer is serialized as the whole response) and for every item of
//! a batch (see [`super::batch`]).

use super::key_use::{self, KeyUse};
use super::{json_response, parse_json, ApiError, ApiResult, Caller, ClientInfo};
use crate::authz::Operation;
use crate::crypto::algorithm::{AsymmetricEncryption, MacAlgorithm, SignatureAlgorithm, SymmetricAlgorithm};
use crate::crypto::asymmetric::{self, Message};
use crate::crypto::{mac, symmetric};
use crate::keystore::KeyType;
use crate::node::Node;
use crate::wire::{
    Bytes, GenerateDataKeyRequest, GenerateDataKeyResponse, HmacVerifyRequest, KeyedInputRequest, OutputResponse,
    SecretBytes, SignRequest, SymmetricRequest, ValidResponse, VerifyRequest, VersionChoice,
};

/// Runs the crypto endpoint `endpoint`, or None when it is not one. A body
/// with an `items` key is a batch; any other body is a single request.
pub async fn dispatch(node: &Node, client: &ClientInfo, endpoint: &str, body: &[u8]) -> Option<ApiResult> {
    let endpoint = Endpoint::parse(endpoint)?;
    let caller = Caller { node, client };
    Some(if super::batch::is_batch(body) {
        super::batch::run(caller, endpoint, body).await
    } else {
        run(caller, endpoint, body).and_then(|answer| json_response(&answer))
    })
}

/// One crypto endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// symmetric/encrypt
    SymmetricEncrypt,
    /// symmetric/decrypt
    SymmetricDecrypt,
    /// asymmetric/encrypt
    AsymmetricEncrypt,
    /// asymmetric/decrypt
    AsymmetricDecrypt,
    /// asymmetric/sign
    Sign,
    /// asymmetric/verify
    Verify,
    /// hmac/create
    HmacCreate,
    /// hmac/verify
    HmacVerify,
    /// symmetric/generatedatakey
    GenerateDataKey,
    /// symmetric/rewrap
    Rewrap,
}

impl Endpoint {
    /// The endpoint at `path` (below /REST/v1/), or None when it is not a crypto endpoint.
    pub fn parse(path: &str) -> Option<Endpoint> {
        Some(match path {
            "symmetric/encrypt" => Endpoint::SymmetricEncrypt,
            "symmetric/decrypt" => Endpoint::SymmetricDecrypt,
            "asymmetric/encrypt" => Endpoint::AsymmetricEncrypt,
            "asymmetric/decrypt" => Endpoint::AsymmetricDecrypt,
            "asymmetric/sign" => Endpoint::Sign,
            "asymmetric/verify" => Endpoint::Verify,
            "hmac/create" => Endpoint::HmacCreate,
            "hmac/verify" => Endpoint::HmacVerify,
            "symmetric/generatedatakey" => Endpoint::GenerateDataKey,
            "symmetric/rewrap" => Endpoint::Rewrap,
            _ => return None,
        })
    }
}

/// The answer of one crypto request: exactly the fields of the single
/// response (untagged, so it serializes as the inner struct).
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum CryptoAnswer {
    /// encrypt, decrypt, sign, hmac/create.
    Output(OutputResponse),
    /// verify, hmac/verify.
    Valid(ValidResponse),
    /// symmetric/generatedatakey.
    DataKey(GenerateDataKeyResponse),
}

/// What every endpoint function returns.
type Answer = Result<CryptoAnswer, ApiError>;

/// Runs one request of `endpoint` (a single request's body, or one item of
/// a batch without its `reference`).
pub fn run(caller: Caller, endpoint: Endpoint, body: &[u8]) -> Answer {
    match endpoint {
        Endpoint::SymmetricEncrypt => symmetric_encrypt(caller, body),
        Endpoint::SymmetricDecrypt => symmetric_decrypt(caller, body),
        Endpoint::Rewrap => symmetric_rewrap(caller, body),
        Endpoint::AsymmetricEncrypt => asymmetric_encrypt(caller, body),
        Endpoint::AsymmetricDecrypt => asymmetric_decrypt(caller, body),
        Endpoint::Sign => sign(caller, body),
        Endpoint::Verify => verify(caller, body),
        Endpoint::HmacCreate => hmac_create(caller, body),
        Endpoint::HmacVerify => hmac_verify(caller, body),
        Endpoint::GenerateDataKey => generate_data_key(caller, body),
    }
}

fn output(key: &KeyUse, bytes: Vec<u8>) -> Answer {
    Ok(CryptoAnswer::Output(OutputResponse { output: Bytes(bytes), key_version: key.reported_version() }))
}

fn missing_material() -> ApiError {
    ApiError::WrongMaterial
}

fn symmetric_encrypt(caller: Caller, body: &[u8]) -> Answer {
    let request: SymmetricRequest = parse_json(body)?;
    let choice = request.version_choice();
    let key = key_use::for_output(caller, Operation::Encrypt, KeyType::Symmetric, &request.key_name, choice)?;
    let material = key.record.material.symmetric().ok_or_else(missing_material)?;
    let algorithm = SymmetricAlgorithm::parse(&request.algorithm)?;
    let ciphertext = symmetric::encrypt(&algorithm, material, &request.input.0, &request.aad.0)?;
    output(&key, key.wrap_output(ciphertext))
}

fn symmetric_decrypt(caller: Caller, body: &[u8]) -> Answer {
    let request: SymmetricRequest = parse_json(body)?;
    let choice = request.version_choice();
    let input = Some(request.input.0.as_slice());
    let (key, input) =
        key_use::for_input(caller, Operation::Decrypt, KeyType::Symmetric, &request.key_name, choice, input)?;
    let material = key.record.material.symmetric().ok_or_else(missing_material)?;
    let algorithm = SymmetricAlgorithm::parse(&request.algorithm)?;
    output(&key, symmetric::decrypt(&algorithm, material, input.unwrap_or_default(), &request.aad.0)?)
}

/// Decrypts as symmetric/decrypt would and encrypts the plaintext again
/// with the newest version, versioned; the plaintext never leaves the node.
fn symmetric_rewrap(caller: Caller, body: &[u8]) -> Answer {
    let request: SymmetricRequest = parse_json(body)?;
    let choice = request.version_choice();
    let input = Some(request.input.0.as_slice());
    let (old, input) =
        key_use::for_input(caller, Operation::Decrypt, KeyType::Symmetric, &request.key_name, choice, input)?;
    let algorithm = SymmetricAlgorithm::parse(&request.algorithm)?;
    let material = old.record.material.symmetric().ok_or_else(missing_material)?;
    let plaintext =
        zeroize::Zeroizing::new(symmetric::decrypt(&algorithm, material, input.unwrap_or_default(), &request.aad.0)?);
    let newest = VersionChoice { key_version: 0, versioned: true };
    let new = key_use::for_output(caller, Operation::Encrypt, KeyType::Symmetric, &request.key_name, newest)?;
    let material = new.record.material.symmetric().ok_or_else(missing_material)?;
    let ciphertext = symmetric::encrypt(&algorithm, material, &plaintext, &request.aad.0)?;
    output(&new, new.wrap_output(ciphertext))
}

fn asymmetric_encrypt(caller: Caller, body: &[u8]) -> Answer {
    let request: KeyedInputRequest = parse_json(body)?;
    let choice = request.version_choice();
    let key = key_use::for_output(caller, Operation::Encrypt, KeyType::Asymmetric, &request.key_name, choice)?;
    let material = key.record.material.asymmetric().ok_or_else(missing_material)?;
    let algorithm = AsymmetricEncryption::parse(&request.algorithm)?;
    let ciphertext = asymmetric::encrypt(&algorithm, material, &request.input.0)?;
    output(&key, key.wrap_output(ciphertext))
}

fn asymmetric_decrypt(caller: Caller, body: &[u8]) -> Answer {
    let request: KeyedInputRequest = parse_json(body)?;
    let choice = request.version_choice();
    let input = Some(request.input.0.as_slice());
    let (key, input) =
        key_use::for_input(caller, Operation::Decrypt, KeyType::Asymmetric, &request.key_name, choice, input)?;
    let material = key.record.material.asymmetric().ok_or_else(missing_material)?;
    let algorithm = AsymmetricEncryption::parse(&request.algorithm)?;
    output(&key, asymmetric::decrypt(&algorithm, material, input.unwrap_or_default())?)
}

/// `input` (the server hashes) or `hashed` (the caller's digest), not both.
fn message<'a>(input: &'a [u8], hashed: &'a [u8]) -> Result<Message<'a>, ApiError> {
    match (input.is_empty(), hashed.is_empty()) {
        (false, false) => Err(ApiError::InputAndHashed),
        (true, false) => Ok(Message::Hashed(hashed)),
        _ => Ok(Message::Input(input)),
    }
}

fn sign(caller: Caller, body: &[u8]) -> Answer {
    let request: SignRequest = parse_json(body)?;
    let choice = request.version_choice();
    let key = key_use::for_output(caller, Operation::Sign, KeyType::Asymmetric, &request.key_name, choice)?;
    let material = key.record.material.asymmetric().ok_or_else(missing_material)?;
    let algorithm = SignatureAlgorithm::parse(&request.algorithm)?;
    let msg = message(&request.input.0, &request.hashed.0)?;
    output(&key, asymmetric::sign(&algorithm, material, msg)?)
}

fn verify(caller: Caller, body: &[u8]) -> Answer {
    let request: VerifyRequest = parse_json(body)?;
    let choice = request.version_choice();
    let (key, _) = key_use::for_input(caller, Operation::Verify, KeyType::Asymmetric, &request.key_name, choice, None)?;
    let material = key.record.material.asymmetric().ok_or_else(missing_material)?;
    let algorithm = SignatureAlgorithm::parse(&request.algorithm)?;
    let msg = message(&request.input.0, &request.hashed.0)?;
    let valid = asymmetric::verify(&algorithm, material, msg, &request.signature.0)?;
    Ok(CryptoAnswer::Valid(ValidResponse { valid, key_version: key.reported_version() }))
}

/// A fresh AES data key, wrapped under the named key with AES-GCM exactly
/// as symmetric/encrypt would, so that symmetric/decrypt unwraps it.
fn generate_data_key(caller: Caller, body: &[u8]) -> Answer {
    let request: GenerateDataKeyRequest = parse_json(body)?;
    let (key_spec, length) = match request.key_spec.as_str() {
        "" | "AES_256" => ("AES_256", 32),
        "AES_128" => ("AES_128", 16),
        other => return Err(ApiError::InvalidDataKeySpec(super::printable(other))),
    };
    let choice = request.version_choice();
    let key = key_use::for_output(caller, Operation::GenerateDataKey, KeyType::Symmetric, &request.key_name, choice)?;
    let material = key.record.material.symmetric().ok_or_else(missing_material)?;
    let data_key = zeroize::Zeroizing::new(crate::crypto::random_bytes(length)?);
    let algorithm = SymmetricAlgorithm::parse("AES/GCM/NoPadding")?;
    let ciphertext = key.wrap_output(symmetric::encrypt(&algorithm, material, &data_key, &request.aad.0)?);
    let plaintext = (!request.without_plaintext).then(|| SecretBytes(data_key.clone()));
    let key_version = key.reported_version();
    Ok(CryptoAnswer::DataKey(GenerateDataKeyResponse {
        ciphertext: Bytes(ciphertext),
        plaintext,
        key_spec,
        key_version,
    }))
}

fn hmac_create(caller: Caller, body: &[u8]) -> Answer {
    let request: KeyedInputRequest = parse_json(body)?;
    let choice = request.version_choice();
    let key = key_use::for_output(caller, Operation::MacCreate, KeyType::Mac, &request.key_name, choice)?;
    let material = key.record.material.mac().ok_or_else(missing_material)?;
    let algorithm = MacAlgorithm::parse(&request.algorithm)?;
    output(&key, mac::create(&algorithm, material, &request.input.0))
}

fn hmac_verify(caller: Caller, body: &[u8]) -> Answer {
    let request: HmacVerifyRequest = parse_json(body)?;
    let choice = request.version_choice();
    let (key, _) = key_use::for_input(caller, Operation::MacVerify, KeyType::Mac, &request.key_name, choice, None)?;
    let material = key.record.material.mac().ok_or_else(missing_material)?;
    let algorithm = MacAlgorithm::parse(&request.algorithm)?;
    let valid = mac::verify(&algorithm, material, &request.input.0, &request.hmac.0);
    Ok(CryptoAnswer::Valid(ValidResponse { valid, key_version: key.reported_version() }))
}
