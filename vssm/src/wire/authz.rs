//! Messages of the authorization endpoints, and the wire form of the
//! authorization state (API responses, backups version 2, node-to-node sync).

use super::codec::{Bytes, Int64, SecretString};
use serde::{Deserialize, Serialize};

/// One grant as the API, backups and sync carry it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantWire {
    /// 32 hex digits; empty in a creategrants request (the node picks it).
    #[serde(default)]
    pub id: String,
    /// Identity selector (`spki:…`, `subject:…`, `cn:…`, `dns:…`, `email:…`, `uri:…`, `ip:…`).
    #[serde(default)]
    pub identity: String,
    /// Key selector (`name`, `prefix*`, `*`).
    #[serde(default)]
    pub keys: String,
    /// Operation names.
    #[serde(default)]
    pub operations: Vec<String>,
    /// Free text for operators.
    #[serde(default)]
    pub comment: String,
    /// Milliseconds since the Unix epoch (set by the node).
    #[serde(default)]
    pub created_at: Int64,
    /// Subject of the client that created it (set by the node).
    #[serde(default)]
    pub created_by: String,
}

/// A revocation record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevocationWire {
    /// The revoked grant's id.
    pub id: String,
    /// Milliseconds since the Unix epoch.
    #[serde(default)]
    pub revoked_at: Int64,
    /// Subject of the client that revoked it.
    #[serde(default)]
    pub revoked_by: String,
}

/// The policy mode register.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyModeWire {
    /// True when everything not granted is denied.
    pub enforce: bool,
    /// Milliseconds since the Unix epoch of the change.
    #[serde(default)]
    pub changed_at: Int64,
    /// Subject of the client that changed it.
    #[serde(default)]
    pub changed_by: String,
}

/// The whole authorization state, or part of it (a push).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizationStateWire {
    /// Grants, revoked ones included.
    #[serde(default)]
    pub grants: Vec<GrantWire>,
    /// Revocations.
    #[serde(default)]
    pub revocations: Vec<RevocationWire>,
    /// The mode, when ever set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyModeWire>,
}

/// admin/creategrants.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateGrantsRequest {
    /// The admin password (never logged); empty for certificate administration.
    #[serde(default, alias = "admin_password")]
    pub admin_password: SecretString,
    /// The grants to add (ids and creation fields are set by the node).
    #[serde(default)]
    pub grants: Vec<GrantWire>,
}

/// admin/creategrants answer and part of admin/listgrants.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantsResponse {
    /// The grants.
    pub grants: Vec<GrantWire>,
}

/// admin/revokegrants.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevokeGrantsRequest {
    /// The admin password (never logged); empty for certificate administration.
    #[serde(default, alias = "admin_password")]
    pub admin_password: SecretString,
    /// Ids of the grants to revoke.
    #[serde(default)]
    pub ids: Vec<String>,
}

/// admin/revokegrants answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokeGrantsResponse {
    /// Ids that were active here and are revoked now.
    pub revoked: Vec<String>,
    /// Ids this node has no grant for (revoked anyway, should it arrive).
    pub unknown: Vec<String>,
}

/// admin/listgrants answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListGrantsResponse {
    /// True when everything not granted is denied.
    pub policy_enforced: bool,
    /// The active grants.
    pub grants: Vec<GrantWire>,
    /// Number of revocation records.
    pub revoked_count: Int64,
}

/// admin/setpolicy.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetPolicyRequest {
    /// The admin password (never logged); empty for certificate administration.
    #[serde(default, alias = "admin_password")]
    pub admin_password: SecretString,
    /// Turn enforcement on (true) or off (false). Required.
    pub enforce: Option<bool>,
}

/// admin/setpolicy answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetPolicyResponse {
    /// The mode now in force on this node.
    pub policy_enforced: bool,
}

/// The caller's identity in authz/whoami.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityWire {
    /// RFC 4514 subject.
    pub subject: String,
    /// CN values.
    pub common_names: Vec<String>,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// Email SANs.
    pub emails: Vec<String>,
    /// URI SANs.
    pub uris: Vec<String>,
    /// IP SANs.
    pub ip_addresses: Vec<String>,
    /// Hex SHA-256 of the SubjectPublicKeyInfo.
    pub spki_sha256: String,
}

/// authz/whoami answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmIResponse {
    /// Who the node takes the caller for.
    pub identity: IdentityWire,
    /// True when everything not granted is denied.
    pub policy_enforced: bool,
    /// True when the admin password is accepted for management.
    pub password_admin: bool,
    /// The active grants that cover the caller.
    pub grants: Vec<GrantWire>,
}

/// keys/list.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientListKeysRequest {
    /// Only keys of this type (SYMMETRIC, ASYMMETRIC, MAC); empty for all.
    #[serde(default, alias = "key_type")]
    pub key_type: String,
}

/// One key in keys/list.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientKeyInfo {
    /// Key name.
    pub name: String,
    /// SYMMETRIC, ASYMMETRIC or MAC.
    pub key_type: &'static str,
    /// Milliseconds since the Unix epoch.
    pub created_at: Int64,
    /// Bytes (symmetric and MAC keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_length: Option<Int64>,
    /// RSA, EC or ED25519 (asymmetric keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_spec: Option<&'static str>,
    /// Modulus or curve size (asymmetric keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_bits: Option<Int64>,
    /// P-256, P-384, P-521 or Ed25519 (EC and Ed25519 keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<&'static str>,
    /// DER SubjectPublicKeyInfo (asymmetric keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<Bytes>,
    /// What the caller may do with it.
    pub operations: Vec<&'static str>,
    /// The application's identifier, when the key was created with one.
    #[serde(skip_serializing_if = "Bytes::is_empty")]
    pub object_id: Bytes,
}

/// keys/list answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientListKeysResponse {
    /// The keys the caller may use.
    pub keys: Vec<ClientKeyInfo>,
}

/// keys/publickey.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublicKeyRequest {
    /// Name of an asymmetric key.
    #[serde(default, alias = "key_name")]
    pub key_name: String,
    /// The version whose public key is wanted (0 or absent: the newest).
    #[serde(default, alias = "key_version", deserialize_with = "crate::wire::u32_number_or_string")]
    pub key_version: u32,
}

/// keys/publickey answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyResponse {
    /// Key name.
    pub name: String,
    /// RSA, EC or ED25519.
    pub key_spec: &'static str,
    /// Modulus or curve size.
    pub key_bits: Int64,
    /// P-256, P-384, P-521 or Ed25519; absent for RSA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<&'static str>,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Bytes,
    /// The same in PEM (`PUBLIC KEY`).
    pub public_key_pem: String,
    /// The application's identifier, when the key was created with one.
    #[serde(skip_serializing_if = "Bytes::is_empty")]
    pub object_id: Bytes,
    /// The version of the key, when it was rotated or the request named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_version: Option<u32>,
}
