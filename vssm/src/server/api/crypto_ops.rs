//! The crypto endpoints: look the key up in the lock-free snapshot, parse
//! the algorithm, run the operation on this I/O thread (each takes at most a
//! few milliseconds), answer. Each endpoint turns one request body into a
//! typed [`CryptoAnswer`]; [`run`] is the one way in, for a single request
//! (whose answer is serialized as the whole response) and for every item of
//! a batch (see [`super::batch`]).

use super::access::check_use;
use super::{json_response, parse_json, ApiError, ApiResult, ClientInfo};
use crate::authz::Operation;
use crate::crypto::algorithm::{AsymmetricEncryption, MacAlgorithm, SignatureAlgorithm, SymmetricAlgorithm};
use crate::crypto::asymmetric::{self, Message};
use crate::crypto::{mac, symmetric};
use crate::keystore::{KeyRecord, KeyType};
use crate::node::Node;
use crate::wire::{
    Bytes, GenerateDataKeyRequest, GenerateDataKeyResponse, HmacVerifyRequest, KeyedInputRequest, OutputResponse,
    SecretBytes, SignRequest, SymmetricRequest, ValidResponse, VerifyRequest,
};
use std::sync::Arc;

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
        Endpoint::SymmetricEncrypt => symmetric_op(caller, body, Operation::Encrypt, symmetric::encrypt),
        Endpoint::SymmetricDecrypt => symmetric_op(caller, body, Operation::Decrypt, symmetric::decrypt),
        Endpoint::AsymmetricEncrypt => asymmetric_op(caller, body, Operation::Encrypt, asymmetric::encrypt),
        Endpoint::AsymmetricDecrypt => asymmetric_op(caller, body, Operation::Decrypt, asymmetric::decrypt),
        Endpoint::Sign => sign(caller, body),
        Endpoint::Verify => verify(caller, body),
        Endpoint::HmacCreate => hmac_create(caller, body),
        Endpoint::HmacVerify => hmac_verify(caller, body),
        Endpoint::GenerateDataKey => generate_data_key(caller, body),
    }
}

/// The node and the client of one request.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    node: &'a Node,
    client: &'a ClientInfo,
}

/// The key `name` of `key_type` for `op`: 400 without a name, 403 when no
/// grant allows it (decided before the lookup, so whether the key exists
/// stays hidden), 404 when unknown.
fn lookup(caller: Caller, op: Operation, key_type: KeyType, name: &str) -> Result<Arc<KeyRecord>, ApiError> {
    if name.is_empty() {
        return Err(ApiError::KeyNameRequired);
    }
    check_use(caller.node, caller.client, op, name)?;
    caller
        .node
        .keystore
        .get(key_type, name)
        .ok_or_else(|| ApiError::NoSuchKey { key_type, name: super::printable(name) })
}

fn output(bytes: Vec<u8>) -> Answer {
    Ok(CryptoAnswer::Output(OutputResponse { output: Bytes(bytes) }))
}

fn missing_material() -> ApiError {
    ApiError::WrongMaterial
}

type SymmetricFn = fn(
    &SymmetricAlgorithm,
    &crate::crypto::keys::SymmetricKey,
    &[u8],
    &[u8],
) -> Result<Vec<u8>, crate::crypto::CryptoError>;

fn symmetric_op(caller: Caller, body: &[u8], op: Operation, operation: SymmetricFn) -> Answer {
    let request: SymmetricRequest = parse_json(body)?;
    let record = lookup(caller, op, KeyType::Symmetric, &request.key_name)?;
    let key = record.material.symmetric().ok_or_else(missing_material)?;
    let algorithm = SymmetricAlgorithm::parse(&request.algorithm)?;
    output(operation(&algorithm, key, &request.input.0, &request.aad.0)?)
}

type AsymmetricFn = fn(
    &AsymmetricEncryption,
    &crate::crypto::keys::AsymmetricKey,
    &[u8],
) -> Result<Vec<u8>, crate::crypto::CryptoError>;

fn asymmetric_op(caller: Caller, body: &[u8], op: Operation, operation: AsymmetricFn) -> Answer {
    let request: KeyedInputRequest = parse_json(body)?;
    let record = lookup(caller, op, KeyType::Asymmetric, &request.key_name)?;
    let key = record.material.asymmetric().ok_or_else(missing_material)?;
    let algorithm = AsymmetricEncryption::parse(&request.algorithm)?;
    output(operation(&algorithm, key, &request.input.0)?)
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
    let record = lookup(caller, Operation::Sign, KeyType::Asymmetric, &request.key_name)?;
    let key = record.material.asymmetric().ok_or_else(missing_material)?;
    let algorithm = SignatureAlgorithm::parse(&request.algorithm)?;
    let msg = message(&request.input.0, &request.hashed.0)?;
    output(asymmetric::sign(&algorithm, key, msg)?)
}

fn verify(caller: Caller, body: &[u8]) -> Answer {
    let request: VerifyRequest = parse_json(body)?;
    let record = lookup(caller, Operation::Verify, KeyType::Asymmetric, &request.key_name)?;
    let key = record.material.asymmetric().ok_or_else(missing_material)?;
    let algorithm = SignatureAlgorithm::parse(&request.algorithm)?;
    let msg = message(&request.input.0, &request.hashed.0)?;
    let valid = asymmetric::verify(&algorithm, key, msg, &request.signature.0)?;
    Ok(CryptoAnswer::Valid(ValidResponse { valid }))
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
    let record = lookup(caller, Operation::GenerateDataKey, KeyType::Symmetric, &request.key_name)?;
    let key = record.material.symmetric().ok_or_else(missing_material)?;
    let data_key = zeroize::Zeroizing::new(crate::crypto::random_bytes(length)?);
    let algorithm = SymmetricAlgorithm::parse("AES/GCM/NoPadding")?;
    let ciphertext = symmetric::encrypt(&algorithm, key, &data_key, &request.aad.0)?;
    let plaintext = (!request.without_plaintext).then(|| SecretBytes(data_key.clone()));
    Ok(CryptoAnswer::DataKey(GenerateDataKeyResponse { ciphertext: Bytes(ciphertext), plaintext, key_spec }))
}

fn hmac_create(caller: Caller, body: &[u8]) -> Answer {
    let request: KeyedInputRequest = parse_json(body)?;
    let record = lookup(caller, Operation::MacCreate, KeyType::Mac, &request.key_name)?;
    let key = record.material.mac().ok_or_else(missing_material)?;
    let algorithm = MacAlgorithm::parse(&request.algorithm)?;
    output(mac::create(&algorithm, key, &request.input.0))
}

fn hmac_verify(caller: Caller, body: &[u8]) -> Answer {
    let request: HmacVerifyRequest = parse_json(body)?;
    let record = lookup(caller, Operation::MacVerify, KeyType::Mac, &request.key_name)?;
    let key = record.material.mac().ok_or_else(missing_material)?;
    let algorithm = MacAlgorithm::parse(&request.algorithm)?;
    let valid = mac::verify(&algorithm, key, &request.input.0, &request.hmac.0);
    Ok(CryptoAnswer::Valid(ValidResponse { valid }))
}
