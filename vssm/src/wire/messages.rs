//! Request and response messages of every endpoint in API.md.

use super::codec::{Bytes, Int64, SecretBytes, SecretString};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// symmetric/encrypt and symmetric/decrypt. `aad` is an optional addition (GCM only).
/// The strings are borrowed from the body where they hold no escapes (a
/// batch parses up to a thousand of these).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SymmetricRequest<'a> {
    /// The data to operate on (base64).
    #[serde(default)]
    pub input: Bytes,
    /// Name of the key to use.
    #[serde(default, borrow, alias = "key_name")]
    pub key_name: Cow<'a, str>,
    /// The algorithm, as API.md spells it (e.g. `AES/GCM/NoPadding`, `SHA256withECDSA`).
    #[serde(default, borrow)]
    pub algorithm: Cow<'a, str>,
    /// Additional authenticated data (GCM only; an addition to the first VSSM).
    #[serde(default)]
    pub aad: Bytes,
    /// The caller's iv or nonce (symmetric/encrypt only; empty: a random
    /// one, the default).
    #[serde(default)]
    pub iv: Bytes,
    /// The key version to use (0 or absent: not named; see API.md, "Key versions").
    #[serde(default, alias = "key_version", deserialize_with = "u32_number_or_string")]
    pub key_version: u32,
    /// True: a ciphertext carries the version header, and the answer names the version.
    #[serde(default)]
    pub versioned: bool,
}

/// symmetric/generatedatakey.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateDataKeyRequest<'a> {
    /// The key that wraps the data key (an AES key).
    #[serde(default, borrow, alias = "key_name")]
    pub key_name: Cow<'a, str>,
    /// `AES_256` (default) or `AES_128`.
    #[serde(default, alias = "key_spec")]
    pub key_spec: String,
    /// True: answer only the wrapped form.
    #[serde(default, alias = "without_plaintext")]
    pub without_plaintext: bool,
    /// Additional authenticated data bound into the wrapped form.
    #[serde(default)]
    pub aad: Bytes,
    /// The key version to use (0 or absent: not named; see API.md, "Key versions").
    #[serde(default, alias = "key_version", deserialize_with = "u32_number_or_string")]
    pub key_version: u32,
    /// True: a ciphertext carries the version header, and the answer names the version.
    #[serde(default)]
    pub versioned: bool,
}

/// symmetric/generatedatakey answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateDataKeyResponse {
    /// The data key under the named key, as symmetric/encrypt with
    /// `AES/GCM/NoPadding` writes it: nonce(12) || ciphertext || tag(16).
    pub ciphertext: Bytes,
    /// The data key itself, unless `withoutPlaintext`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<SecretBytes>,
    /// `AES_256` or `AES_128`.
    pub key_spec: &'static str,
    /// As in [`OutputResponse`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_version: Option<u32>,
}

/// asymmetric/encrypt, asymmetric/decrypt and hmac/create.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyedInputRequest<'a> {
    /// The data to operate on (base64).
    #[serde(default)]
    pub input: Bytes,
    /// Name of the key to use.
    #[serde(default, borrow, alias = "key_name")]
    pub key_name: Cow<'a, str>,
    /// The algorithm, as API.md spells it (e.g. `AES/GCM/NoPadding`, `SHA256withECDSA`).
    #[serde(default, borrow)]
    pub algorithm: Cow<'a, str>,
    /// The key version to use (0 or absent: not named; see API.md, "Key versions").
    #[serde(default, alias = "key_version", deserialize_with = "u32_number_or_string")]
    pub key_version: u32,
    /// True: a ciphertext carries the version header, and the answer names the version.
    #[serde(default)]
    pub versioned: bool,
}

/// asymmetric/sign: `input` (server hashes) or `hashed` (caller's digest).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignRequest<'a> {
    /// The data to operate on (base64).
    #[serde(default)]
    pub input: Bytes,
    /// The caller's digest, instead of `input`.
    #[serde(default)]
    pub hashed: Bytes,
    /// Name of the key to use.
    #[serde(default, borrow, alias = "key_name")]
    pub key_name: Cow<'a, str>,
    /// The algorithm, as API.md spells it (e.g. `AES/GCM/NoPadding`, `SHA256withECDSA`).
    #[serde(default, borrow)]
    pub algorithm: Cow<'a, str>,
    /// The key version to use (0 or absent: not named; see API.md, "Key versions").
    #[serde(default, alias = "key_version", deserialize_with = "u32_number_or_string")]
    pub key_version: u32,
    /// True: a ciphertext carries the version header, and the answer names the version.
    #[serde(default)]
    pub versioned: bool,
}

/// asymmetric/verify.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyRequest<'a> {
    /// The data to operate on (base64).
    #[serde(default)]
    pub input: Bytes,
    /// The caller's digest, instead of `input`.
    #[serde(default)]
    pub hashed: Bytes,
    /// The signature to check.
    #[serde(default)]
    pub signature: Bytes,
    /// Name of the key to use.
    #[serde(default, borrow, alias = "key_name")]
    pub key_name: Cow<'a, str>,
    /// The algorithm, as API.md spells it (e.g. `AES/GCM/NoPadding`, `SHA256withECDSA`).
    #[serde(default, borrow)]
    pub algorithm: Cow<'a, str>,
    /// The key version to use (0 or absent: not named; see API.md, "Key versions").
    #[serde(default, alias = "key_version", deserialize_with = "u32_number_or_string")]
    pub key_version: u32,
    /// True: a ciphertext carries the version header, and the answer names the version.
    #[serde(default)]
    pub versioned: bool,
}

/// hmac/verify.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HmacVerifyRequest<'a> {
    /// The data to operate on (base64).
    #[serde(default)]
    pub input: Bytes,
    /// The MAC to check.
    #[serde(default)]
    pub hmac: Bytes,
    /// Name of the key to use.
    #[serde(default, borrow, alias = "key_name")]
    pub key_name: Cow<'a, str>,
    /// The algorithm, as API.md spells it (e.g. `AES/GCM/NoPadding`, `SHA256withECDSA`).
    #[serde(default, borrow)]
    pub algorithm: Cow<'a, str>,
    /// The key version to use (0 or absent: not named; see API.md, "Key versions").
    #[serde(default, alias = "key_version", deserialize_with = "u32_number_or_string")]
    pub key_version: u32,
    /// True: a ciphertext carries the version header, and the answer names the version.
    #[serde(default)]
    pub versioned: bool,
}

/// Response of every operation that produces bytes.
#[derive(Debug, Serialize)]
pub struct OutputResponse {
    /// The result bytes (base64).
    pub output: Bytes,
    /// The key version used; only when the request named one or asked for
    /// `versioned` (first-VSSM clients never see it).
    #[serde(rename = "keyVersion", skip_serializing_if = "Option::is_none")]
    pub key_version: Option<u32>,
}

/// Response of the verify operations.
#[derive(Debug, Serialize)]
pub struct ValidResponse {
    /// Whether the signature or MAC is valid.
    pub valid: bool,
    /// As in [`OutputResponse`].
    #[serde(rename = "keyVersion", skip_serializing_if = "Option::is_none")]
    pub key_version: Option<u32>,
}

/// What a crypto request says about key versions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VersionChoice {
    /// The version named (0: none).
    pub key_version: u32,
    /// Versioned ciphertexts and answers.
    pub versioned: bool,
}

impl VersionChoice {
    /// True when the answer must name the version.
    pub fn reports_version(self) -> bool {
        self.key_version != 0 || self.versioned
    }
}

macro_rules! version_choice_of {
    ($($ty:ident),*) => {$(
        impl $ty<'_> {
            /// The request's key-version fields.
            pub fn version_choice(&self) -> VersionChoice {
                VersionChoice { key_version: self.key_version, versioned: self.versioned }
            }
        }
    )*};
}

version_choice_of!(
    SymmetricRequest,
    GenerateDataKeyRequest,
    KeyedInputRequest,
    SignRequest,
    VerifyRequest,
    HmacVerifyRequest
);

/// admin/generatekey.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateKeyRequest {
    /// The admin password (never logged).
    #[serde(default, alias = "admin_password")]
    pub admin_password: SecretString,
    /// Name of the key to use.
    #[serde(default, alias = "key_name")]
    pub key_name: String,
    /// SYMMETRIC, ASYMMETRIC or MAC.
    #[serde(default, alias = "key_type")]
    pub key_type: String,
    /// RSA or EC (asymmetric keys).
    #[serde(default, alias = "key_spec")]
    pub key_spec: String,
    /// Bytes for SYMMETRIC and MAC keys, bits for RSA, the curve size for EC.
    #[serde(default, alias = "key_size")]
    pub key_size: Int64,
    /// The application's identifier for the key (PKCS#11's `CKA_ID`), kept
    /// and reported by keys/list, keys/publickey and keys/describe.
    #[serde(default, alias = "object_id")]
    pub object_id: Bytes,
}

/// admin/injectkey.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InjectKeyRequest {
    /// The admin password (never logged).
    #[serde(default, alias = "admin_password")]
    pub admin_password: SecretString,
    /// Name of the key to use.
    #[serde(default, alias = "key_name")]
    pub key_name: String,
    /// SYMMETRIC, ASYMMETRIC or MAC.
    #[serde(default, alias = "key_type")]
    pub key_type: String,
    /// The key: raw bytes, or PKCS#8 DER for asymmetric keys.
    #[serde(default)]
    pub key: SecretBytes,
    /// The application's identifier for the key, as for admin/generatekey.
    #[serde(default, alias = "object_id")]
    pub object_id: Bytes,
}

/// admin/getlogs: only the password.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordOnlyRequest {
    /// The admin password (never logged).
    #[serde(default, alias = "admin_password")]
    pub admin_password: SecretString,
}

/// admin/generatebackup.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateBackupRequest {
    /// The admin password (never logged); empty for certificate administration.
    #[serde(default, alias = "admin_password")]
    pub admin_password: SecretString,
    /// 1 or 2; 0 or absent: 1 when the cluster has no authorization state, else 2.
    #[serde(default, alias = "backup_version")]
    pub backup_version: Int64,
}

/// admin/restorebackup.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreBackupRequest {
    /// The admin password (never logged).
    #[serde(default, alias = "admin_password")]
    pub admin_password: SecretString,
    /// The backup to restore.
    #[serde(default)]
    pub backup: Option<BackupBlob>,
}

/// admin/listkeys: all keys, or the one named `keyName` of `keyType`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListKeysRequest {
    /// The admin password (never logged).
    #[serde(default, alias = "admin_password")]
    pub admin_password: SecretString,
    /// Only the key of this name.
    #[serde(default, alias = "key_name")]
    pub key_name: String,
    /// Only keys of this type (required with `keyName`).
    #[serde(default, alias = "key_type")]
    pub key_type: String,
}

/// admin/bootstrap.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BootstrapRequest {
    /// PKCS#8 DER private key of the RPC certificate.
    #[serde(default, alias = "rpc_private_key")]
    pub rpc_private_key: SecretBytes,
}

/// The encrypted backup, version 1 or 2 (API.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupBlob {
    /// The AES-256 data key wrapped with RSA-OAEP/SHA-256 under the RPC key.
    #[serde(default, alias = "encryption_key")]
    pub encryption_key: Bytes,
    /// Format version (1, or 2 with authorization state).
    #[serde(default)]
    pub version: Int64Number,
    /// When the backup was made, in ms since the Unix epoch.
    #[serde(default)]
    pub timestamp: Int64,
    /// The JSON inventory under AES-256-GCM with the data key.
    #[serde(default, alias = "encrypted_state")]
    pub encrypted_state: Bytes,
}

/// Reads a proto3 `uint32` as JSON allows it: a number or a string.
pub fn u32_number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let value = Int64::deserialize(d)?.0;
    u32::try_from(value).map_err(|_| serde::de::Error::custom(format!("{value} is not a 32-bit unsigned integer")))
}

/// A 32-bit proto field: written as a JSON number, read from a number or a string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Int64Number(pub i64);

impl Serialize for Int64Number {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Int64Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Int64::deserialize(d).map(|v| Int64Number(v.0))
    }
}

/// admin/generatebackup response.
#[derive(Debug, Serialize)]
pub struct GenerateBackupResponse {
    /// The encrypted backup.
    pub backup: BackupBlob,
}

/// admin/restorebackup response: `conflicts` (an addition) names keys that
/// were kept as they were because the backup holds different material under
/// the same name.
#[derive(Debug, Serialize)]
pub struct RestoreBackupResponse {
    /// Names of the keys kept because the backup holds other material under them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    /// `TYPE/name` of keys (or trimmed versions) the backup holds but this
    /// cluster destroyed: their material was left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub destroyed: Vec<String>,
}

/// admin/listkeys response.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListKeysResponse {
    /// Symmetric keys.
    pub symmetric_key: Vec<SymmetricKeyInfo>,
    /// Asymmetric keys.
    pub asymmetric_key: Vec<AsymmetricKeyInfo>,
    /// MAC keys.
    pub mac_key: Vec<MacKeyInfo>,
}

/// One symmetric key in listkeys.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SymmetricKeyInfo {
    /// Key name.
    pub name: String,
    /// Creation time in ms since the Unix epoch.
    pub created_at: Int64,
    /// Key length in bytes.
    pub key_length: Int64,
}

/// One MAC key in listkeys.
pub type MacKeyInfo = SymmetricKeyInfo;

/// One asymmetric key in listkeys, with its public key (DER SubjectPublicKeyInfo).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AsymmetricKeyInfo {
    /// Key name.
    pub name: String,
    /// Creation time in ms since the Unix epoch.
    pub created_at: Int64,
    /// RSA, EC or ED25519.
    pub key_spec: String,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Bytes,
}

/// admin/getlogs response.
#[derive(Debug, Serialize)]
pub struct LogsResponse {
    /// Audit entries, oldest first.
    pub log: Vec<String>,
}

/// Every response without fields.
#[derive(Debug, Serialize)]
pub struct EmptyResponse {}

/// The error body of every non-200 response.
#[derive(Debug, Serialize)]
pub struct ErrorResponse<'a> {
    /// What went wrong; never secrets, "internal error" for faults of the node.
    pub error: &'a str,
}

/// The key inventory inside a backup (proto3 JSON of the first VSSM's state).
/// Unknown fields are tolerated here so that newer backups stay readable.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupInventory {
    /// Symmetric keys.
    #[serde(default, alias = "symmetric_key")]
    pub symmetric_key: Vec<BackupRawKey>,
    /// Asymmetric keys.
    #[serde(default, alias = "asymmetric_key")]
    pub asymmetric_key: Vec<BackupAsymmetricKey>,
    /// MAC keys.
    #[serde(default, alias = "mac_key")]
    pub mac_key: Vec<BackupRawKey>,
    /// Grants, revocations and the policy mode (backup version 2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<super::authz::AuthorizationStateWire>,
    /// Key lifecycle state (backup version 2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Vec<super::lifecycle::KeyLifecycleWire>>,
}

/// The version of a key record that names none.
pub fn first_version() -> u32 {
    1
}

/// True for version 1 (left out of the JSON).
pub fn is_first_version(version: &u32) -> bool {
    *version == 1
}

/// A symmetric or MAC key in a backup.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupRawKey {
    /// Key name.
    #[serde(default)]
    pub name: String,
    /// The key version (1, and absent, unless the key was rotated).
    #[serde(default = "first_version", skip_serializing_if = "is_first_version")]
    pub version: u32,
    /// Creation time in ms since the Unix epoch.
    #[serde(default, alias = "created_at")]
    pub created_at: Int64,
    /// The raw key bytes.
    #[serde(default)]
    pub key: SecretBytes,
    /// The application's identifier (version 2 only; absent when none).
    #[serde(default, alias = "object_id", skip_serializing_if = "Bytes::is_empty")]
    pub object_id: Bytes,
}

/// An asymmetric key in a backup: `keyType` is "RSA" or "EC" (or "ED25519").
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupAsymmetricKey {
    /// Key name.
    #[serde(default)]
    pub name: String,
    /// The key version (1, and absent, unless the key was rotated).
    #[serde(default = "first_version", skip_serializing_if = "is_first_version")]
    pub version: u32,
    /// Creation time in ms since the Unix epoch.
    #[serde(default, alias = "created_at")]
    pub created_at: Int64,
    /// RSA, EC or ED25519.
    #[serde(default, alias = "key_type")]
    pub key_type: String,
    /// PKCS#8 DER private key.
    #[serde(default)]
    pub key: SecretBytes,
    /// The application's identifier (version 2 only; absent when none).
    #[serde(default, alias = "object_id", skip_serializing_if = "Bytes::is_empty")]
    pub object_id: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_and_camel_case_are_both_accepted() {
        let a: KeyedInputRequest =
            serde_json::from_str(r#"{"keyName":"k","input":"AQ==","algorithm":"SHA256"}"#).unwrap();
        let b: KeyedInputRequest =
            serde_json::from_str(r#"{"key_name":"k","input":"AQ","algorithm":"SHA256"}"#).unwrap();
        assert_eq!(a.key_name, b.key_name);
        assert_eq!(a.input, b.input);
    }

    #[test]
    fn unknown_field_is_named_in_the_error() {
        let err = serde_json::from_str::<KeyedInputRequest>(r#"{"keyNme":"k"}"#).unwrap_err();
        assert!(err.to_string().contains("keyNme"), "{err}");
    }

    #[test]
    fn list_keys_response_uses_proto3_json() {
        let mut r = ListKeysResponse::default();
        r.symmetric_key.push(SymmetricKeyInfo { name: "a".into(), created_at: Int64(5), key_length: Int64(32) });
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"symmetricKey":[{"name":"a","createdAt":"5","keyLength":"32"}],"asymmetricKey":[],"macKey":[]}"#
        );
    }

    #[test]
    fn backup_version_accepts_number_or_string() {
        let b: BackupBlob = serde_json::from_str(r#"{"version":"1","timestamp":7}"#).unwrap();
        assert_eq!(b.version, Int64Number(1));
        assert_eq!(serde_json::to_value(&b).unwrap()["version"], 1);
    }
}

#[cfg(test)]
mod property_tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(bytes: &[u8]) {
        let _ = serde_json::from_slice::<SymmetricRequest>(bytes);
        let _ = serde_json::from_slice::<KeyedInputRequest>(bytes);
        let _ = serde_json::from_slice::<SignRequest>(bytes);
        let _ = serde_json::from_slice::<VerifyRequest>(bytes);
        let _ = serde_json::from_slice::<HmacVerifyRequest>(bytes);
        let _ = serde_json::from_slice::<GenerateKeyRequest>(bytes);
        let _ = serde_json::from_slice::<InjectKeyRequest>(bytes);
        let _ = serde_json::from_slice::<RestoreBackupRequest>(bytes);
        let _ = serde_json::from_slice::<ListKeysRequest>(bytes);
        let _ = serde_json::from_slice::<BootstrapRequest>(bytes);
        let _ = serde_json::from_slice::<BackupInventory>(bytes);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            parse_all(&bytes);
        }

        #[test]
        fn json_shaped_input_never_panics(
            field in "(input|keyName|key_name|algorithm|hashed|signature|hmac|keySize|key|backup|adminPassword|[a-z]{1,8})",
            value in "(\"[A-Za-z0-9+/=_-]{0,40}\"|-?[0-9]{1,25}|[0-9]+\\.[0-9]+|null|true|\\[\\]|\\{\\}|\"\\\\u0000\")",
        ) {
            parse_all(format!("{{\"{field}\":{value}}}").as_bytes());
        }
    }
}
