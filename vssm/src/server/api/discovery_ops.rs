//! Client-facing discovery, without the admin password: who am I and what
//! may I do (`authz/whoami`), which keys may I use (`keys/list`), and the
//! public key of one of them (`keys/publickey`). Only keys the caller may
//! use are shown; a refusal reads the same for a missing key.

use super::access::{grants_of, refuse};
use super::key_use::KeyUseError;
use super::{json_response, parse_json, ApiError, ApiResult, ClientInfo};
use crate::authz::{Operation, OperationSet};
use crate::crypto::keys::{AsymmetricKey, KeySpec};
use crate::keystore::{KeyMaterial, KeyRecord, KeyType};
use crate::lifecycle::EffectiveState;
use crate::node::Node;
use crate::wire::authz::{
    ClientKeyInfo, ClientListKeysRequest, ClientListKeysResponse, IdentityWire, PublicKeyRequest, PublicKeyResponse,
    WhoAmIResponse,
};
use crate::wire::key_admin::{DescribeKeyResponse, KeyRequest, KeyVersionInfo};
use crate::wire::{Bytes, Int64};

/// Runs a discovery endpoint, or None when `endpoint` is not one.
pub fn dispatch(node: &Node, client: &ClientInfo, endpoint: &str, body: &[u8]) -> Option<ApiResult> {
    Some(match endpoint {
        "authz/whoami" => whoami(node, client, body),
        "keys/list" => list(node, client, body),
        "keys/publickey" => public_key(node, client, body),
        _ => return None,
    })
}

fn whoami(node: &Node, client: &ClientInfo, body: &[u8]) -> ApiResult {
    parse_json::<crate::cluster::protocol::Empty>(body)?;
    let authz = client.authz.as_ref().ok_or(ApiError::Reconnect)?;
    let id = &authz.identity;
    let policy = node.authz.policy();
    json_response(&WhoAmIResponse {
        identity: IdentityWire {
            subject: id.subject.clone(),
            common_names: id.common_names.clone(),
            dns_names: id.dns_names.clone(),
            emails: id.emails.clone(),
            uris: id.uris.clone(),
            ip_addresses: id.ip_addresses.iter().map(ToString::to_string).collect(),
            spki_sha256: id.spki_hex(),
        },
        policy_enforced: policy.enforced(),
        password_admin: node.authz.password_admin,
        grants: policy.grants_for(id).iter().map(|g| g.to_wire()).collect(),
    })
}

/// The uses a key of this kind supports at all.
fn supported_uses(material: &KeyMaterial) -> OperationSet {
    use Operation::*;
    let ops: &[Operation] = match material {
        KeyMaterial::Symmetric(_) => &[Encrypt, Decrypt, GenerateDataKey],
        KeyMaterial::Mac(_) => &[MacCreate, MacVerify],
        KeyMaterial::Asymmetric(k) if k.spec() == KeySpec::Rsa => &[Encrypt, Decrypt, Sign, Verify],
        KeyMaterial::Asymmetric(_) => &[Sign, Verify],
    };
    ops.iter().copied().collect()
}

/// Curve name of an EC or Ed25519 key.
fn curve(key: &AsymmetricKey) -> Option<&'static str> {
    match (key.spec(), key.size_bits()) {
        (KeySpec::Rsa, _) => None,
        (KeySpec::Ed25519, _) => Some("Ed25519"),
        (KeySpec::Ec, 256) => Some("P-256"),
        (KeySpec::Ec, 384) => Some("P-384"),
        (KeySpec::Ec, _) => Some("P-521"),
    }
}

fn list(node: &Node, client: &ClientInfo, body: &[u8]) -> ApiResult {
    let request: ClientListKeysRequest =
        if body.is_empty() { ClientListKeysRequest::default() } else { parse_json(body)? };
    let only = match request.key_type.as_str() {
        "" => None,
        text => Some(KeyType::parse(text).ok_or_else(|| ApiError::InvalidKeyType(super::printable(text)))?),
    };
    let enforced = node.authz.enforced();
    let grants = grants_of(node, client);
    let snapshot = node.keystore.snapshot();
    let mut keys = Vec::new();
    for key_type in KeyType::ALL.into_iter().filter(|t| only.is_none_or(|o| o == *t)) {
        for (name, record) in snapshot.sorted(key_type) {
            let supported = supported_uses(&record.material);
            let allowed = if enforced {
                grants.as_ref().map_or(OperationSet::empty(), |g| g.uses_of(&name)).intersection(supported)
            } else {
                supported
            };
            if !allowed.is_empty() {
                keys.push(key_info(name, record, allowed));
            }
        }
    }
    json_response(&ClientListKeysResponse { keys })
}

fn key_info(name: String, record: &KeyRecord, allowed: OperationSet) -> ClientKeyInfo {
    let mut info = ClientKeyInfo {
        name,
        key_type: record.material.key_type().as_str(),
        created_at: Int64(record.created_at_ms),
        key_length: None,
        key_spec: None,
        key_bits: None,
        curve: None,
        public_key: None,
        operations: allowed.iter().map(Operation::as_str).collect(),
        object_id: Bytes(record.object_id.clone()),
    };
    match &record.material {
        KeyMaterial::Symmetric(k) => info.key_length = Some(Int64(k.len() as i64)),
        KeyMaterial::Mac(k) => info.key_length = Some(Int64(k.len() as i64)),
        KeyMaterial::Asymmetric(k) => {
            info.key_spec = Some(k.spec().as_str());
            info.key_bits = Some(Int64(k.size_bits() as i64));
            info.curve = curve(k);
            info.public_key = Some(Bytes(k.public_key_der()));
        }
    }
    info
}

/// Refuses unless the caller may make some use of `name`; the refusal
/// names `verify`, the use a public key serves.
fn check_any_use(node: &Node, client: &ClientInfo, name: &str) -> Result<(), ApiError> {
    if !node.authz.enforced() || grants_of(node, client).is_some_and(|g| !g.uses_of(name).is_empty()) {
        return Ok(());
    }
    Err(refuse(node, client, Operation::Verify, name))
}

fn public_key(node: &Node, client: &ClientInfo, body: &[u8]) -> ApiResult {
    let request: PublicKeyRequest = parse_json(body)?;
    if request.key_name.is_empty() {
        return Err(ApiError::KeyNameRequired);
    }
    check_any_use(node, client, &request.key_name)?;
    let no_such_key =
        || ApiError::NoSuchKey { key_type: KeyType::Asymmetric, name: super::printable(&request.key_name) };
    let snapshot = node.keystore.snapshot();
    let record = match (request.key_version, snapshot.entry(KeyType::Asymmetric, &request.key_name)) {
        (0, _) => snapshot.get(KeyType::Asymmetric, &request.key_name).ok_or_else(no_such_key)?,
        (version, Some(entry)) => entry
            .version(version)
            .ok_or_else(|| KeyUseError::NoSuchVersion { name: super::printable(&request.key_name), version })?,
        (_, None) => return Err(no_such_key()),
    };
    let key = record.material.asymmetric().ok_or(ApiError::WrongMaterial)?;
    let der = key.public_key_der();
    json_response(&PublicKeyResponse {
        name: request.key_name,
        key_spec: key.spec().as_str(),
        key_bits: Int64(key.size_bits() as i64),
        curve: curve(key),
        public_key_pem: pem("PUBLIC KEY", &der),
        public_key: Bytes(der),
        object_id: Bytes(record.object_id.clone()),
        key_version: (request.key_version != 0 || record.version != 1).then_some(record.version),
    })
}

/// keys/describe: a key's state, versions and schedules, and when each
/// version was last used anywhere in the cluster (this node and every peer
/// that answers within two seconds), for any caller who may list or use it.
pub async fn describe(node: &Node, client: &ClientInfo, body: &[u8]) -> ApiResult {
    let request: KeyRequest = parse_json(body)?;
    if request.key_name.is_empty() {
        return Err(ApiError::KeyNameRequired);
    }
    let name = &request.key_name;
    let grants = grants_of(node, client);
    let allowed =
        grants.as_ref().is_some_and(|g| g.granted(Operation::List, Some(name)) || !g.uses_of(name).is_empty());
    if node.authz.enforced() && !allowed {
        return Err(refuse(node, client, Operation::List, name));
    }
    let key_type = KeyType::parse(&request.key_type)
        .ok_or_else(|| ApiError::InvalidKeyType(super::printable(&request.key_type)))?;
    let snapshot = node.keystore.snapshot();
    let no_such_key = || ApiError::NoSuchKey { key_type, name: super::printable(name) };
    let entry = snapshot.entry(key_type, name).ok_or_else(no_such_key)?;
    let lifecycle = entry.lifecycle();
    let now = super::now_ms();
    let state = lifecycle.effective(now);
    if entry.newest_version() == 0 && !matches!(state, EffectiveState::Destroyed { .. }) {
        return Err(no_such_key());
    }
    let (deletion_date, destroyed_at) = match state {
        EffectiveState::PendingDeletion { delete_at_ms } | EffectiveState::DeletionDue { delete_at_ms } => {
            (Some(Int64(delete_at_ms)), None)
        }
        EffectiveState::Destroyed { at_ms } => (None, Some(Int64(at_ms))),
        _ => (None, None),
    };
    let period_ms = lifecycle.rotation_period_ms();
    let next_rotation = entry
        .active()
        .filter(|_| period_ms > 0 && state == EffectiveState::Enabled)
        .map(|newest| Int64(newest.created_at_ms.saturating_add(period_ms as i64)));
    let mut versions: Vec<KeyVersionInfo> = entry
        .version_numbers()
        .into_iter()
        .filter_map(|number| entry.version(number))
        .map(|record| KeyVersionInfo {
            version: record.version,
            created_at: Int64(record.created_at_ms),
            key_id: crate::wire::codec::encode_hex(&record.key_id()),
            last_used: None,
        })
        .collect();
    let (last_used, nodes) = crate::cluster::lifecycle_sync::cluster_last_used(node, key_type, name).await;
    for version in &mut versions {
        let seconds = last_used.get(&(version.version, version.key_id.clone())).copied();
        version.last_used = seconds.map(|s| Int64(s * 1000));
    }
    json_response(&DescribeKeyResponse {
        last_used_nodes: nodes as u32,
        key_type: key_type.as_str(),
        name: name.clone(),
        state: super::lifecycle_ops::state_name(state),
        deletion_date,
        destroyed_at,
        newest_version: entry.newest_version(),
        min_decryption_version: lifecycle.min_decryption_version(),
        min_available_version: lifecycle.min_available_version(),
        rotation_period_seconds: Int64((period_ms / 1000) as i64),
        next_rotation,
        versions,
        object_id: Bytes(entry.active().map(|newest| newest.object_id.clone()).unwrap_or_default()),
    })
}

/// RFC 7468 text encoding: base64 in lines of 64 characters.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn pem_lines_are_64_characters() {
        let text = super::pem("PUBLIC KEY", &[7u8; 100]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PUBLIC KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END PUBLIC KEY-----"));
    }
}
