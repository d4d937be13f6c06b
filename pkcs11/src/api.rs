//! Typed VSSM requests and answers (docs/API.md is the contract).

use crate::client::Client;
use crate::error::{Error, Result};
use crate::objects::{KeyEntry, VssmType};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Map, Value};

/// Standard base64 (what the node writes); URL-safe accepted too.
pub fn b64decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok().or_else(|| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok())
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(STANDARD.encode(bytes))
}

fn bytes_field(answer: &Value, field: &str) -> Result<Vec<u8>> {
    answer
        .get(field)
        .and_then(|v| v.as_str())
        .and_then(b64decode)
        .ok_or_else(|| Error::BadAnswer(format!("no {field}")))
}

fn bool_field(answer: &Value, field: &str) -> Result<bool> {
    answer.get(field).and_then(|v| v.as_bool()).ok_or_else(|| Error::BadAnswer(format!("no {field}")))
}

/// keys/list: every key the caller may use.
pub fn list_keys(client: &Client) -> Result<Vec<KeyEntry>> {
    let answer = client.post("keys/list", &json!({}), true)?;
    let keys = answer.get("keys").and_then(|k| k.as_array()).ok_or_else(|| Error::BadAnswer("no keys".into()))?;
    Ok(keys.iter().filter_map(|k| KeyEntry::from_json(k, None)).collect())
}

/// keys/publickey of an asymmetric key.
pub fn public_key(client: &Client, name: &str) -> Result<KeyEntry> {
    let answer = client.post("keys/publickey", &json!({"keyName": name}), true)?;
    KeyEntry::from_json(&answer, Some(VssmType::Asymmetric)).ok_or_else(|| Error::BadAnswer("bad public key".into()))
}

/// What a sign request carries.
pub enum SignInput<'a> {
    /// The data (the node hashes).
    Input(&'a [u8]),
    /// The digest.
    Hashed(&'a [u8]),
}

fn sign_body(name: &str, algorithm: &str, data: SignInput<'_>) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("keyName".into(), json!(name));
    body.insert("algorithm".into(), json!(algorithm));
    match data {
        SignInput::Input(d) => body.insert("input".into(), b64(d)),
        SignInput::Hashed(d) => body.insert("hashed".into(), b64(d)),
    };
    body
}

/// asymmetric/sign → the signature.
pub fn sign(client: &Client, name: &str, algorithm: &str, data: SignInput<'_>) -> Result<Vec<u8>> {
    let answer = client.post("asymmetric/sign", &Value::Object(sign_body(name, algorithm, data)), true)?;
    bytes_field(&answer, "output")
}

/// asymmetric/verify → valid.
pub fn verify(client: &Client, name: &str, algorithm: &str, data: SignInput<'_>, signature: &[u8]) -> Result<bool> {
    let mut body = sign_body(name, algorithm, data);
    body.insert("signature".into(), b64(signature));
    bool_field(&client.post("asymmetric/verify", &Value::Object(body), true)?, "valid")
}

/// hmac/create → the MAC.
pub fn hmac(client: &Client, name: &str, algorithm: &str, input: &[u8]) -> Result<Vec<u8>> {
    let body = json!({"keyName": name, "algorithm": algorithm, "input": b64(input)});
    bytes_field(&client.post("hmac/create", &body, true)?, "output")
}

/// hmac/verify → valid.
pub fn hmac_verify(client: &Client, name: &str, algorithm: &str, input: &[u8], mac: &[u8]) -> Result<bool> {
    let body = json!({"keyName": name, "algorithm": algorithm, "input": b64(input), "hmac": b64(mac)});
    bool_field(&client.post("hmac/verify", &body, true)?, "valid")
}

/// symmetric|asymmetric encrypt|decrypt → output. `endpoint` is e.g. `symmetric/encrypt`.
pub fn cipher(
    client: &Client,
    endpoint: &str,
    name: &str,
    algorithm: &str,
    input: &[u8],
    iv: Option<&[u8]>,
    aad: &[u8],
) -> Result<Vec<u8>> {
    let mut body = Map::new();
    body.insert("keyName".into(), json!(name));
    body.insert("algorithm".into(), json!(algorithm));
    body.insert("input".into(), b64(input));
    if let Some(iv) = iv {
        body.insert("iv".into(), b64(iv));
    }
    if !aad.is_empty() {
        body.insert("aad".into(), b64(aad));
    }
    bytes_field(&client.post(endpoint, &Value::Object(body), true)?, "output")
}

/// admin/generatekey (never sent twice: the request is not idempotent).
pub fn generate_key(
    client: &Client,
    admin_password: Option<&str>,
    name: &str,
    key_type: VssmType,
    spec: Option<&str>,
    size: u64,
    object_id: Option<&[u8]>,
) -> Result<()> {
    let mut body = Map::new();
    if let Some(pw) = admin_password {
        body.insert("adminPassword".into(), json!(pw));
    }
    body.insert("keyName".into(), json!(name));
    body.insert("keyType".into(), json!(key_type.api()));
    if let Some(spec) = spec {
        body.insert("keySpec".into(), json!(spec));
    }
    body.insert("keySize".into(), json!(size.to_string()));
    if let Some(id) = object_id {
        body.insert("objectId".into(), b64(id));
    }
    client.post("admin/generatekey", &Value::Object(body), false).map(|_| ())
}

/// admin/scheduledeletion with the node's minimum waiting period.
pub fn schedule_deletion(client: &Client, admin_password: Option<&str>, name: &str, key_type: VssmType) -> Result<()> {
    let mut body = Map::new();
    if let Some(pw) = admin_password {
        body.insert("adminPassword".into(), json!(pw));
    }
    body.insert("keyName".into(), json!(name));
    body.insert("keyType".into(), json!(key_type.api()));
    body.insert("minimumWindow".into(), json!(true));
    client.post("admin/scheduledeletion", &Value::Object(body), false).map(|_| ())
}
