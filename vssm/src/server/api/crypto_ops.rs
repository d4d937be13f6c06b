//! The crypto endpoints: look the key up in the lock-free snapshot, parse
//! the algorithm, run the operation on this I/O thread (each takes at most a
//! few milliseconds), answer.

use super::{json_response, parse_json, ApiError, ApiResult};
use crate::crypto::algorithm::{AsymmetricEncryption, MacAlgorithm, SignatureAlgorithm, SymmetricAlgorithm};
use crate::crypto::asymmetric::{self, Message};
use crate::crypto::{mac, symmetric};
use crate::keystore::{KeyRecord, KeyType};
use crate::node::Node;
use crate::wire::{
    Bytes, HmacVerifyRequest, KeyedInputRequest, OutputResponse, SignRequest, SymmetricRequest, ValidResponse,
    VerifyRequest,
};
use std::sync::Arc;

/// Runs the crypto endpoint `endpoint`, or None when it is not one.
pub fn dispatch(node: &Node, endpoint: &str, body: &[u8]) -> Option<ApiResult> {
    Some(match endpoint {
        "symmetric/encrypt" => symmetric_op(node, body, symmetric::encrypt),
        "symmetric/decrypt" => symmetric_op(node, body, symmetric::decrypt),
        "asymmetric/encrypt" => asymmetric_op(node, body, asymmetric::encrypt),
        "asymmetric/decrypt" => asymmetric_op(node, body, asymmetric::decrypt),
        "asymmetric/sign" => sign(node, body),
        "asymmetric/verify" => verify(node, body),
        "hmac/create" => hmac_create(node, body),
        "hmac/verify" => hmac_verify(node, body),
        _ => return None,
    })
}

/// The key `name` of `key_type`: 400 without a name, 404 when unknown.
fn lookup(node: &Node, key_type: KeyType, name: &str) -> Result<Arc<KeyRecord>, ApiError> {
    if name.is_empty() {
        return Err(ApiError::KeyNameRequired);
    }
    node.keystore.get(key_type, name).ok_or_else(|| ApiError::NoSuchKey { key_type, name: super::printable(name) })
}

fn output(bytes: Vec<u8>) -> ApiResult {
    json_response(&OutputResponse { output: Bytes(bytes) })
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

fn symmetric_op(node: &Node, body: &[u8], operation: SymmetricFn) -> ApiResult {
    let request: SymmetricRequest = parse_json(body)?;
    let record = lookup(node, KeyType::Symmetric, &request.key_name)?;
    let key = record.material.symmetric().ok_or_else(missing_material)?;
    let algorithm = SymmetricAlgorithm::parse(&request.algorithm)?;
    output(operation(&algorithm, key, &request.input.0, &request.aad.0)?)
}

type AsymmetricFn = fn(
    &AsymmetricEncryption,
    &crate::crypto::keys::AsymmetricKey,
    &[u8],
) -> Result<Vec<u8>, crate::crypto::CryptoError>;

fn asymmetric_op(node: &Node, body: &[u8], operation: AsymmetricFn) -> ApiResult {
    let request: KeyedInputRequest = parse_json(body)?;
    let record = lookup(node, KeyType::Asymmetric, &request.key_name)?;
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

fn sign(node: &Node, body: &[u8]) -> ApiResult {
    let request: SignRequest = parse_json(body)?;
    let record = lookup(node, KeyType::Asymmetric, &request.key_name)?;
    let key = record.material.asymmetric().ok_or_else(missing_material)?;
    let algorithm = SignatureAlgorithm::parse(&request.algorithm)?;
    let msg = message(&request.input.0, &request.hashed.0)?;
    output(asymmetric::sign(&algorithm, key, msg)?)
}

fn verify(node: &Node, body: &[u8]) -> ApiResult {
    let request: VerifyRequest = parse_json(body)?;
    let record = lookup(node, KeyType::Asymmetric, &request.key_name)?;
    let key = record.material.asymmetric().ok_or_else(missing_material)?;
    let algorithm = SignatureAlgorithm::parse(&request.algorithm)?;
    let msg = message(&request.input.0, &request.hashed.0)?;
    let valid = asymmetric::verify(&algorithm, key, msg, &request.signature.0)?;
    json_response(&ValidResponse { valid })
}

fn hmac_create(node: &Node, body: &[u8]) -> ApiResult {
    let request: KeyedInputRequest = parse_json(body)?;
    let record = lookup(node, KeyType::Mac, &request.key_name)?;
    let key = record.material.mac().ok_or_else(missing_material)?;
    let algorithm = MacAlgorithm::parse(&request.algorithm)?;
    output(mac::create(&algorithm, key, &request.input.0))
}

fn hmac_verify(node: &Node, body: &[u8]) -> ApiResult {
    let request: HmacVerifyRequest = parse_json(body)?;
    let record = lookup(node, KeyType::Mac, &request.key_name)?;
    let key = record.material.mac().ok_or_else(missing_material)?;
    let algorithm = MacAlgorithm::parse(&request.algorithm)?;
    let valid = mac::verify(&algorithm, key, &request.input.0, &request.hmac.0);
    json_response(&ValidResponse { valid })
}
