//! The wire form of the key lifecycle state (backups version 2 and
//! node-to-node sync), read and written by the keystore's lifecycle module.
//!
//! Unlike the request messages, these structs tolerate unknown fields: a
//! backup or a peer of a newer version may carry fields this version does not
//! know, and its lifecycle state must still restore and merge. An absent field
//! is the default (the register was never written, nothing was destroyed or
//! trimmed).

use super::codec::Int64;
use serde::{Deserialize, Serialize};

/// The lifecycle of one key, e.g.
/// `{"keyType":"SYMMETRIC","name":"k","status":{"at":"1700000000000","by":"10.0.0.1","value":"DISABLED"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyLifecycleWire {
    /// SYMMETRIC, ASYMMETRIC or MAC.
    #[serde(default)]
    pub key_type: String,
    /// The key's name.
    #[serde(default)]
    pub name: String,
    /// The status register, when ever written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusRegisterWire>,
    /// Milliseconds since the Unix epoch at which the key was destroyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroyed_at: Option<Int64>,
    /// The minimum decryption version register, when ever written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_decryption_version: Option<VersionRegisterWire>,
    /// Versions below this one are destroyed (0 or 1: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_available_version: u64,
    /// The rotation period register, when ever written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_period: Option<PeriodRegisterWire>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// The status register: `{"at","by","value","deleteAt"?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusRegisterWire {
    /// Milliseconds since the Unix epoch of the write.
    #[serde(default)]
    pub at: Int64,
    /// The node that wrote it.
    #[serde(default)]
    pub by: String,
    /// ENABLED, DISABLED or PENDING_DELETION.
    #[serde(default)]
    pub value: String,
    /// With PENDING_DELETION: milliseconds since the Unix epoch at which the
    /// key is destroyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_at: Option<Int64>,
}

/// The minimum decryption version register: `{"at","by","value"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionRegisterWire {
    /// Milliseconds since the Unix epoch of the write.
    #[serde(default)]
    pub at: Int64,
    /// The node that wrote it.
    #[serde(default)]
    pub by: String,
    /// The version.
    #[serde(default)]
    pub value: u64,
}

/// The rotation period register: `{"at","by","valueMs"}` (0: no automatic
/// rotation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeriodRegisterWire {
    /// Milliseconds since the Unix epoch of the write.
    #[serde(default)]
    pub at: Int64,
    /// The node that wrote it.
    #[serde(default)]
    pub by: String,
    /// The period in milliseconds.
    #[serde(default)]
    pub value_ms: Int64,
}
