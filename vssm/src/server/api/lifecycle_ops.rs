//! The key lifecycle endpoints: rotation (on demand and on a schedule),
//! the minimum decryption version, trimming, enable and disable, deletion
//! with a waiting period, and keys/describe. Each management endpoint is
//! authorized like admin/generatekey (password or a grant of its
//! operation on the key) and audited by admin_ops.

use super::admin_ops::authorize;
use super::{json_response, parse_json, ApiError, ApiResult, ClientInfo};
use crate::authz::Operation;
use crate::keystore::{KeyRecord, KeyType, RotateError};
use crate::node::Node;
use crate::wire::key_admin::{KeyRequest, RotateKeyResponse};

/// Runs a lifecycle management endpoint; None when `endpoint` is not one.
pub async fn dispatch(
    node: &Node,
    client: &ClientInfo,
    endpoint: &str,
    body: &[u8],
    detail: &mut String,
) -> Option<ApiResult> {
    Some(match endpoint {
        "admin/rotatekey" => rotate_key(node, client, body, detail).await,
        _ => return None,
    })
}

fn key_type(text: &str) -> Result<KeyType, ApiError> {
    KeyType::parse(text).ok_or_else(|| ApiError::InvalidKeyType(super::printable(text)))
}

fn describe_target(detail: &mut String, key_type: &str, name: &str) {
    *detail = format!("key={} type={}", super::printable(name), super::printable(key_type));
}

/// admin/rotatekey: a new version with fresh material of the same kind.
async fn rotate_key(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: KeyRequest = parse_json(body)?;
    describe_target(detail, &request.key_type, &request.key_name);
    authorize(node, client, &request.admin_password.0, Operation::Rotate, Some(&request.key_name), detail).await?;
    let key_type = key_type(&request.key_type)?;
    let record = rotate(node, key_type, &request.key_name).await?;
    detail.push_str(&format!(" version={}", record.version));
    json_response(&RotateKeyResponse { key_version: record.version })
}

/// Adds the next version of `name` (also the scheduled rotation's path).
pub async fn rotate(node: &Node, key_type: KeyType, name: &str) -> Result<std::sync::Arc<KeyRecord>, ApiError> {
    let no_such_key = || ApiError::NoSuchKey { key_type, name: super::printable(name) };
    let newest = node.keystore.snapshot().entry(key_type, name).and_then(|e| e.active().cloned());
    let newest = newest.ok_or_else(no_such_key)?;
    // RSA generation takes up to seconds: never on an I/O thread.
    let material = tokio::task::spawn_blocking(move || newest.material.generate_like())
        .await
        .map_err(|_| ApiError::GenerationInterrupted)??;
    let record = KeyRecord::new(name.to_string(), super::admin_ops::now_ms(), material);
    match node.keystore.add_version(record) {
        Ok(record) => {
            node.cluster_changed(vec![std::sync::Arc::clone(&record)]);
            Ok(record)
        }
        Err(RotateError::NoSuchKey) => Err(no_such_key()),
        Err(RotateError::TooManyVersions) => Err(ApiError::TooManyVersions),
    }
}
