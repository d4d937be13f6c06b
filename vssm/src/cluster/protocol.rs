//! Messages between nodes: anti-entropy on the sync port and the join
//! exchange on the join port. Key records travel in the backup inventory
//! form ([`crate::wire::BackupInventory`]), so there is one record codec.
//! The authorization state has its own paths, in [`super::authz_sync`].

use crate::wire::{BackupInventory, Bytes, Int64};
use serde::{Deserialize, Serialize};

/// Sync port: the digest of all records.
pub const DIGEST_PATH: &str = "/cluster/v1/digest";
/// Sync port: one digest of all records and the authorization state
/// (nodes of this version; an older node answers 404).
pub const STATE_DIGEST_PATH: &str = "/cluster/v1/statedigest";
/// Sync port: the identities of all records.
pub const MANIFEST_PATH: &str = "/cluster/v1/manifest";
/// Sync port: records by identity.
pub const FETCH_PATH: &str = "/cluster/v1/fetch";
/// Sync port: records sent to the peer.
pub const PUSH_PATH: &str = "/cluster/v1/push";
/// Join port: a fresh challenge.
pub const CHALLENGE_PATH: &str = "/cluster/v1/join/challenge";
/// Join port: the attested request for the RPC key.
pub const JOIN_PATH: &str = "/cluster/v1/join";

/// An empty request body.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// The digest of a node's whole record set: 32 bytes whatever the number of keys.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DigestResponse {
    /// Order-independent digest of every record fingerprint.
    pub digest: Bytes,
    /// Number of records.
    pub count: Int64,
}

/// The digest [`STATE_DIGEST_PATH`] answers: of the key digest and the
/// authorization digest together, so that a steady-state round is one small
/// call whatever the state.
/// Lifecycle state adds its digest only when there is some, so that a
/// cluster without it agrees with nodes of the previous version.
pub fn state_digest(keys: &crate::keystore::Inventory, authorization: &[u8; 32]) -> [u8; 32] {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(b"vssm state digest v1\0");
    context.update(&keys.digest());
    context.update(authorization);
    if keys.has_lifecycle() {
        context.update(&keys.lifecycle_map().digest());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// One record's identity without its material.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestEntry {
    /// SYMMETRIC, ASYMMETRIC or MAC.
    pub key_type: String,
    /// Key name.
    pub name: String,
    /// Fingerprint of the material (see `keystore::Fingerprint`).
    pub fingerprint: Bytes,
    /// The key version (absent for 1, so that a node of an older version
    /// reads the manifest of keys that were never rotated).
    #[serde(default = "crate::wire::first_version", skip_serializing_if = "crate::wire::is_first_version")]
    pub version: u32,
    /// The record was restored from a backup (`keystore::Origin`); sent
    /// only to peers that sent [`ORIGIN_HEADER`], absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restored: bool,
}

/// Header of a manifest or fetch request from a node that understands
/// record origins (the `restored` fields): a peer answers with them only
/// then, so a node of an older version, which refuses unknown fields, never
/// sees them.
pub const ORIGIN_HEADER: &str = "x-vssm-record-origin";

/// Every record a node holds, by identity.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestResponse {
    /// One entry per record.
    pub entries: Vec<ManifestEntry>,
}

/// Ask a peer for the material of these records.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchRequest {
    /// The records wanted.
    pub entries: Vec<ManifestEntry>,
}

/// Records with material (sync port only: mutual TLS with the RPC certificate).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordsMessage {
    /// The records, in backup inventory form.
    pub inventory: BackupInventory,
    /// Which of them were restored from a backup (origins; see
    /// [`ORIGIN_HEADER`]): indexes into the records in the order
    /// symmetricKey, macKey, asymmetricKey. Absent when none, so that the
    /// message is the older version's whenever no restored record travels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restored: Vec<u32>,
}

/// What a push did on the receiving node.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PushResponse {
    /// Records the receiver did not have.
    pub added: Int64,
    /// Names held with other material on the receiver (both kept).
    #[serde(default)]
    pub conflicts: Vec<String>,
}

/// A one-time challenge for a joining node.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChallengeResponse {
    /// 32 random bytes, single use, bound to the requester address.
    pub challenge: Bytes,
    /// Validity of the challenge.
    pub expires_in_seconds: Int64,
}

/// A join request: attestation plus a fresh X25519 public key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinRequest {
    /// The identity document, exact bytes as IMDS served them.
    pub document: Bytes,
    /// Its PKCS#7 `rsa2048` signature (decoded from base64).
    pub signature: Bytes,
    /// The challenge received from this peer.
    pub challenge: Bytes,
    /// The requester's fresh X25519 public key.
    pub ephemeral_public_key: Bytes,
    /// SHA-256 of the requester's security-relevant configuration
    /// ([`super::config_digest`]); also bound into the sealed key's
    /// associated data and, in strong mode, into the signed STS request.
    /// Optional on the wire only so that a request without it gets a clear
    /// refusal rather than a JSON error.
    #[serde(default)]
    pub config_digest: Option<Bytes>,
    /// Strong mode: an `sts:GetCallerIdentity` request signed with the
    /// instance-role credentials, whose signed headers bind the challenge and
    /// the ephemeral key.
    #[serde(default)]
    pub sts_request: Option<crate::cloud::sigv4::SignedRequest>,
}

/// The RPC key, encrypted to the requester's ephemeral key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinResponse {
    /// The peer's fresh X25519 public key.
    pub ephemeral_public_key: Bytes,
    /// nonce(12) || AES-256-GCM(PKCS#8 RPC key) || tag(16).
    pub encrypted_rpc_key: Bytes,
}

/// Header carrying the challenge (base64) that the strong-mode STS request must sign.
pub const STS_CHALLENGE_HEADER: &str = "x-vssm-challenge";
/// Header carrying SHA-256 (hex) of the ephemeral key that the STS request must sign.
pub const STS_EPHEMERAL_KEY_HEADER: &str = "x-vssm-ephemeral-key-sha256";
/// Header carrying the requester's config digest (hex) that the STS request must sign.
pub const STS_CONFIG_DIGEST_HEADER: &str = "x-vssm-config-digest";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_absent_unless_a_record_is_restored() {
        let entry = ManifestEntry {
            key_type: "MAC".into(),
            name: "k".into(),
            fingerprint: Bytes(vec![1]),
            version: 1,
            restored: false,
        };
        let plain = serde_json::to_string(&RecordsMessage::default()).unwrap();
        assert_eq!(
            plain,
            r#"{"inventory":{}}"#.replace("{}", &serde_json::to_string(&BackupInventory::default()).unwrap())
        );
        assert!(!serde_json::to_string(&entry).unwrap().contains("restored"), "an older peer refuses unknown fields");
        let restored = ManifestEntry { restored: true, ..entry };
        let text = serde_json::to_string(&restored).unwrap();
        assert!(text.contains(r#""restored":true"#), "{text}");
        assert_eq!(serde_json::from_str::<ManifestEntry>(&text).unwrap(), restored);
    }
}
