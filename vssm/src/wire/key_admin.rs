//! Requests and answers of the key lifecycle endpoints (rotation, states,
//! deletion, versions) and of keys/describe.

use super::codec::{Bytes, Int64, SecretString};
use serde::{Deserialize, Serialize};

/// Defines a request of the key lifecycle endpoints: the key, the admin
/// password, and the endpoint's own fields.
macro_rules! key_request {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty = $json:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            /// The admin password (never logged; not needed with a grant).
            #[serde(default, alias = "admin_password")]
            pub admin_password: SecretString,
            /// SYMMETRIC, ASYMMETRIC or MAC.
            #[serde(default, alias = "key_type")]
            pub key_type: String,
            /// The key.
            #[serde(default, alias = "key_name")]
            pub key_name: String,
            $($(#[$fdoc])* #[serde(default, alias = $json)] pub $field: $ty,)*
        }
    };
}

key_request!(
    /// admin/rotatekey, admin/enablekey, admin/disablekey,
    /// admin/canceldeletion and keys/describe.
    KeyRequest {}
);

key_request!(
    /// admin/setrotation.
    SetRotationRequest {
        /// Seconds between automatic rotations; 0 turns them off.
        rotation_period_seconds: Int64 = "rotation_period_seconds",
    }
);

key_request!(
    /// admin/setmindecryptionversion.
    SetMinDecryptionVersionRequest {
        /// The oldest version that may still decrypt and verify.
        #[serde(deserialize_with = "crate::wire::u32_number_or_string")]
        min_decryption_version: u32 = "min_decryption_version",
    }
);

key_request!(
    /// admin/trimversions.
    TrimVersionsRequest {
        /// Versions below it are destroyed on every node.
        #[serde(deserialize_with = "crate::wire::u32_number_or_string")]
        min_available_version: u32 = "min_available_version",
    }
);

key_request!(
    /// admin/scheduledeletion.
    ScheduleDeletionRequest {
        /// The waiting period (0 or absent: the default, 30 days).
        pending_window_seconds: Int64 = "pending_window_seconds",
        /// True: the node's minimum waiting period (config
        /// `lifecycle.minimumDeletionWindowSeconds`), whatever it is.
        minimum_window: bool = "minimum_window",
    }
);

/// admin/rotatekey answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotateKeyResponse {
    /// The new version.
    pub key_version: u32,
}

/// admin/scheduledeletion answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleDeletionResponse {
    /// When the key is destroyed, in ms since the Unix epoch.
    pub deletion_date: Int64,
}

/// One version in keys/describe.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyVersionInfo {
    /// The version number.
    pub version: u32,
    /// Creation time, ms since the Unix epoch.
    pub created_at: Int64,
    /// The key id in versioned ciphertexts (8 hex digits).
    pub key_id: String,
    /// Last use on any node that answered, ms since the Unix epoch (absent: never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used: Option<Int64>,
}

/// keys/describe answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeKeyResponse {
    /// SYMMETRIC, ASYMMETRIC or MAC.
    pub key_type: &'static str,
    /// The key.
    pub name: String,
    /// ENABLED, DISABLED, PENDING_DELETION or DESTROYED.
    pub state: &'static str,
    /// When a pending deletion takes effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<Int64>,
    /// When the key was destroyed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destroyed_at: Option<Int64>,
    /// The version new output uses.
    pub newest_version: u32,
    /// The oldest version that decrypts and verifies.
    pub min_decryption_version: u32,
    /// Versions below this were destroyed (trimmed).
    pub min_available_version: u32,
    /// Seconds between automatic rotations (0: none).
    pub rotation_period_seconds: Int64,
    /// When the next automatic rotation is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_rotation: Option<Int64>,
    /// Every version held, oldest first.
    pub versions: Vec<KeyVersionInfo>,
    /// How many nodes' uses `lastUsed` covers (this node and the peers that answered).
    pub last_used_nodes: u32,
    /// The application's identifier, when the key was created with one.
    #[serde(skip_serializing_if = "Bytes::is_empty")]
    pub object_id: Bytes,
}
