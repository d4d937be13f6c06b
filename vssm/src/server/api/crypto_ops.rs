//! The crypto endpoints: look the key up in the lock-free snapshot, parse
//! the algorithm, run the operation on this I/O thread (each takes at most a
//! few milliseconds), answer. Each endpoint turns one request body into a
//! typed [`CryptoAnswer`]; [`run`] is the one way in, for a single request
//! (whose answer is serialized as the whole response) and for every item of
//! a batch (see [`super::batch`]).

use super::key_use::{self, KeyUse};
use super::{parse_json, ApiError, ApiResult, Caller, ClientInfo};
use crate::authz::Operation;
use crate::crypto::algorithm::{AsymmetricEncryption, MacAlgorithm, SignatureAlgorithm, SymmetricAlgorithm};
use crate::crypto::asymmetric::{self, Message};
use crate::crypto::{mac, symmetric};
use crate::keystore::KeyType;
use crate::node::Node;
use crate::server::json::{json_bytes_response, JsonError};
use crate::wire::codec::append_base64;
use crate::wire::{
    Bytes, GenerateDataKeyRequest, GenerateDataKeyResponse, HmacVerifyRequest, KeyedInputRequest, OutputResponse,
    SecretBytes, SignRequest, SymmetricRequest, ValidResponse, VerifyRequest, VersionChoice,
};
use serde::Deserialize;

/// Runs the crypto endpoint `endpoint`, or None when it is not one. A body
/// with an `items` key is a batch; any other body is a single request.
pub async fn dispatch(node: &Node, client: &ClientInfo, endpoint: &str, body: &[u8]) -> Option<ApiResult> {
    let endpoint = Endpoint::parse(endpoint)?;
    let caller = Caller { node, client, lookups: None };
    Some(if super::batch::is_batch(body) {
        super::batch::run(caller, endpoint, body).await
    } else {
        run(caller, endpoint, body).and_then(|answer| {
            let mut json = Vec::new();
            answer.write_json(&mut json, None)?;
            Ok(json_bytes_response(json))
        })
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

impl CryptoAnswer {
    /// Appends the answer as a JSON object to `out`, with `reference` as
    /// its first member when given (an item of a batch): exactly what
    /// serde would write.
    pub fn write_json(&self, out: &mut Vec<u8>, reference: Option<&str>) -> Result<(), JsonError> {
        let CryptoAnswer::Output(OutputResponse { output, key_version }) = self else {
            return serde_json::to_writer(out, &WithReference { reference, answer: self })
                .map_err(|_| JsonError::Encode);
        };
        // By hand: serde_json escapes the base64 text byte by byte, which
        // cost more than the AES-GCM encryption of a short batch item.
        out.push(b'{');
        if let Some(reference) = reference {
            out.extend_from_slice(b"\"reference\":");
            // As serde_json writes it: only these bytes are escaped.
            if reference.bytes().any(|byte| byte < 0x20 || byte == b'"' || byte == b'\\') {
                serde_json::to_writer(&mut *out, reference).map_err(|_| JsonError::Encode)?;
            } else {
                out.push(b'"');
                out.extend_from_slice(reference.as_bytes());
                out.push(b'"');
            }
            out.push(b',');
        }
        out.extend_from_slice(b"\"output\":\"");
        append_base64(out, &output.0);
        out.push(b'"');
        if let Some(version) = key_version {
            out.extend_from_slice(format!(",\"keyVersion\":{version}").as_bytes());
        }
        out.push(b'}');
        Ok(())
    }
}

/// An answer with its item's reference first.
#[derive(serde::Serialize)]
struct WithReference<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<&'a str>,
    #[serde(flatten)]
    answer: &'a CryptoAnswer,
}

/// What every endpoint function returns.
pub type Answer = Result<CryptoAnswer, ApiError>;

/// Runs one request of `endpoint` (a single request's body, or one item of
/// a batch without its `reference`).
pub fn run(caller: Caller, endpoint: Endpoint, body: &[u8]) -> Answer {
    /// Parses the body as the endpoint's request and calls the endpoint.
    struct Single<'a> {
        caller: Caller<'a>,
        body: &'a [u8],
    }
    impl<'a> EndpointVisitor<'a> for Single<'a> {
        type Output = Answer;
        fn visit<R: Deserialize<'a> + Send + 'a>(self, call: fn(Caller, R) -> Answer) -> Answer {
            call(self.caller, parse_json(self.body)?)
        }
    }
    visit_endpoint(endpoint, Single { caller, body })
}

/// Something to do with an endpoint's request type and function (see
/// [`visit_endpoint`]): parse one request, or a whole batch of them.
/// Requests borrow their strings from a body that lives for `'body`.
pub trait EndpointVisitor<'body> {
    /// What the visit gives.
    type Output;
    /// Called with the endpoint's function, whose argument is its request.
    fn visit<R: Deserialize<'body> + Send + 'body>(self, call: fn(Caller, R) -> Answer) -> Self::Output;
}

/// Calls `visitor` with the function of `endpoint`: the one place that
/// ties an endpoint to its request type.
pub fn visit_endpoint<'body, V: EndpointVisitor<'body>>(endpoint: Endpoint, visitor: V) -> V::Output {
    match endpoint {
        Endpoint::SymmetricEncrypt => visitor.visit(symmetric_encrypt),
        Endpoint::SymmetricDecrypt => visitor.visit(symmetric_decrypt),
        Endpoint::Rewrap => visitor.visit(symmetric_rewrap),
        Endpoint::AsymmetricEncrypt => visitor.visit(asymmetric_encrypt),
        Endpoint::AsymmetricDecrypt => visitor.visit(asymmetric_decrypt),
        Endpoint::Sign => visitor.visit(sign),
        Endpoint::Verify => visitor.visit(verify),
        Endpoint::HmacCreate => visitor.visit(hmac_create),
        Endpoint::HmacVerify => visitor.visit(hmac_verify),
        Endpoint::GenerateDataKey => visitor.visit(generate_data_key),
    }
}

fn output(key: &KeyUse, bytes: Vec<u8>) -> Answer {
    Ok(CryptoAnswer::Output(OutputResponse { output: Bytes(bytes), key_version: key.reported_version() }))
}

fn missing_material() -> ApiError {
    ApiError::WrongMaterial
}

fn symmetric_encrypt(caller: Caller, request: SymmetricRequest) -> Answer {
    let choice = request.version_choice();
    let key = key_use::for_output(caller, Operation::Encrypt, KeyType::Symmetric, &request.key_name, choice)?;
    let material = key.record.material.symmetric().ok_or_else(missing_material)?;
    let algorithm = SymmetricAlgorithm::parse(&request.algorithm)?;
    let ciphertext = if request.iv.0.is_empty() {
        symmetric::encrypt(&algorithm, material, &request.input.0, &request.aad.0)?
    } else {
        symmetric::encrypt_with_iv(&algorithm, material, &request.iv.0, &request.input.0, &request.aad.0)?
    };
    output(&key, key.wrap_output(ciphertext))
}

/// Refuses `iv` on a request that does not encrypt with it.
fn no_iv(request: &SymmetricRequest) -> Result<(), ApiError> {
    match request.iv.0.is_empty() {
        true => Ok(()),
        false => Err(ApiError::IvNotAccepted),
    }
}

fn symmetric_decrypt(caller: Caller, request: SymmetricRequest) -> Answer {
    no_iv(&request)?;
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
fn symmetric_rewrap(caller: Caller, request: SymmetricRequest) -> Answer {
    no_iv(&request)?;
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

fn asymmetric_encrypt(caller: Caller, request: KeyedInputRequest) -> Answer {
    let choice = request.version_choice();
    let key = key_use::for_output(caller, Operation::Encrypt, KeyType::Asymmetric, &request.key_name, choice)?;
    let material = key.record.material.asymmetric().ok_or_else(missing_material)?;
    let algorithm = AsymmetricEncryption::parse(&request.algorithm)?;
    let ciphertext = asymmetric::encrypt(&algorithm, material, &request.input.0)?;
    output(&key, key.wrap_output(ciphertext))
}

fn asymmetric_decrypt(caller: Caller, request: KeyedInputRequest) -> Answer {
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

fn sign(caller: Caller, request: SignRequest) -> Answer {
    let choice = request.version_choice();
    let key = key_use::for_output(caller, Operation::Sign, KeyType::Asymmetric, &request.key_name, choice)?;
    let material = key.record.material.asymmetric().ok_or_else(missing_material)?;
    let algorithm = SignatureAlgorithm::parse(&request.algorithm)?;
    let msg = message(&request.input.0, &request.hashed.0)?;
    output(&key, asymmetric::sign(&algorithm, material, msg)?)
}

fn verify(caller: Caller, request: VerifyRequest) -> Answer {
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
fn generate_data_key(caller: Caller, request: GenerateDataKeyRequest) -> Answer {
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

fn hmac_create(caller: Caller, request: KeyedInputRequest) -> Answer {
    let choice = request.version_choice();
    let key = key_use::for_output(caller, Operation::MacCreate, KeyType::Mac, &request.key_name, choice)?;
    let material = key.record.material.mac().ok_or_else(missing_material)?;
    let algorithm = MacAlgorithm::parse(&request.algorithm)?;
    output(&key, mac::create(&algorithm, material, &request.input.0))
}

fn hmac_verify(caller: Caller, request: HmacVerifyRequest) -> Answer {
    let choice = request.version_choice();
    let (key, _) = key_use::for_input(caller, Operation::MacVerify, KeyType::Mac, &request.key_name, choice, None)?;
    let material = key.record.material.mac().ok_or_else(missing_material)?;
    let algorithm = MacAlgorithm::parse(&request.algorithm)?;
    let valid = mac::verify(&algorithm, material, &request.input.0, &request.hmac.0);
    Ok(CryptoAnswer::Valid(ValidResponse { valid, key_version: key.reported_version() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written JSON of an output answer is serde's, byte for byte.
    #[test]
    fn output_json_is_serdes() {
        for (bytes, key_version) in [(vec![], None), (vec![0xfb, 0xff, 1], Some(7)), ((0..=255).collect(), None)] {
            for reference in [None, Some("r-1"), Some("quote \" and \\ and \u{1} and é"), Some("/ \u{7f} é")] {
                let answer = CryptoAnswer::Output(OutputResponse { output: Bytes(bytes.clone()), key_version });
                let mut written = Vec::new();
                answer.write_json(&mut written, reference).unwrap();
                let serde = serde_json::to_vec(&WithReference { reference, answer: &answer }).unwrap();
                assert_eq!(String::from_utf8(written).unwrap(), String::from_utf8(serde).unwrap());
            }
        }
    }
}
