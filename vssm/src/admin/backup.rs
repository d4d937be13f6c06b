//! Encrypted backups in the format of the first VSSM: a fresh AES-256 data
//! key wrapped with RSA-OAEP/SHA-256 under the RPC certificate's key, and
//! the proto3-JSON inventory under AES-256-GCM. Version 1 is the first
//! VSSM's; version 2 adds, in the same envelope, the authorization state
//! (grants, revocations, the policy mode), key versions (a `version` per
//! key record) and the key lifecycle state (states, deletion schedules,
//! tombstones, minimum versions, rotation schedules).

use crate::authz::AuthzState;
use crate::crypto::algorithm::{AsymmetricEncryption, HashAlg, SymmetricAlgorithm};
use crate::crypto::keys::{AsymmetricKey, KeySpec, MacKey, SymmetricKey};
use crate::crypto::{asymmetric, quote, symmetric};
use crate::error::{Classify, ErrorKind};
use crate::keystore::{validate_name, Inventory, KeyMaterial, KeyRecord, MAX_OBJECT_ID_BYTES, MAX_VERSIONS};
use crate::lifecycle::LifecycleMap;
use crate::wire::{
    BackupAsymmetricKey, BackupBlob, BackupInventory, BackupRawKey, Bytes, Int64, Int64Number, SecretBytes,
};
use std::fmt;
use zeroize::Zeroizing;

/// The first VSSM's format: keys only.
pub const BACKUP_VERSION_1: i64 = 1;
/// Keys and authorization state.
pub const BACKUP_VERSION_2: i64 = 2;

/// Which version a backup is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Version 1: keys only (readable by the first VSSM).
    V1,
    /// Version 2: keys with their versions, authorization and lifecycle state.
    V2,
}

impl Format {
    /// The version `requested` (0: version 1 while the cluster has no
    /// authorization state, no lifecycle state, no rotated key and no key
    /// with an `objectId`, so that the first VSSM can still read it; else
    /// version 2). Version 1 is refused for rotated keys, which it cannot
    /// tell apart, and for keys with an `objectId`, which it cannot hold.
    pub fn choose(requested: i64, state: &AuthzState, inventory: &Inventory) -> Result<Format, BackupError> {
        let beyond_v1 = || inventory.needs_successor_backup();
        match requested {
            0 if state.is_empty() && !inventory.has_lifecycle() && !beyond_v1() => Ok(Format::V1),
            0 | BACKUP_VERSION_2 => Ok(Format::V2),
            BACKUP_VERSION_1 if beyond_v1() => Err(BackupError::Invalid(
                "backupVersion 1 cannot hold the versions of rotated keys nor objectIds: use backupVersion 2".into(),
            )),
            BACKUP_VERSION_1 => Ok(Format::V1),
            other => Err(BackupError::Invalid(format!("backupVersion must be 1 or 2, not {other}"))),
        }
    }

    /// The number in the blob.
    pub fn version(self) -> i64 {
        match self {
            Format::V1 => BACKUP_VERSION_1,
            Format::V2 => BACKUP_VERSION_2,
        }
    }
}

/// What a backup holds.
pub struct BackupContents {
    /// The keys.
    pub records: Vec<KeyRecord>,
    /// The authorization state (version 2 only).
    pub authorization: Option<AuthzState>,
    /// The key lifecycle state (version 2 only; empty for version 1).
    pub lifecycle: LifecycleMap,
}
const GCM: &str = "AES/GCM/NoPadding";

/// Why a backup could not be made or opened. Messages name keys, never bytes.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    /// The backup is not version 1, cannot be decrypted, or its content is
    /// invalid; the text says where (list and index), never key bytes.
    #[error("{0}")]
    Invalid(String),
    /// The node cannot make backups: its RPC key is not RSA.
    #[error("backups need an RSA RPC certificate (the data key is wrapped with RSA-OAEP)")]
    NeedsRsa,
    /// A fault of this node while making a backup.
    #[error("cannot make a backup: {0}")]
    Internal(&'static str),
}

impl Classify for BackupError {
    fn kind(&self) -> ErrorKind {
        match self {
            BackupError::Invalid(_) => ErrorKind::BadRequest,
            BackupError::NeedsRsa => ErrorKind::ServiceUnavailable,
            BackupError::Internal(_) => ErrorKind::Internal,
        }
    }
}

fn oaep_sha256() -> AsymmetricEncryption {
    AsymmetricEncryption::RsaOaep(HashAlg::Sha256)
}

fn gcm() -> SymmetricAlgorithm {
    SymmetricAlgorithm::parse(GCM).expect("AES/GCM/NoPadding is a valid algorithm")
}

/// Serializes `value` into a buffer allocated once at its exact size, so
/// that no earlier, smaller copy of the plaintext inventory is freed
/// without being wiped (a growing `Vec` reallocates), and wiped on drop.
fn json_in_one_buffer<T: serde::Serialize>(value: &T) -> serde_json::Result<Zeroizing<Vec<u8>>> {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0 += data.len();
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut size = Counter(0);
    serde_json::to_writer(&mut size, value)?;
    let mut buffer = Zeroizing::new(Vec::with_capacity(size.0));
    serde_json::to_writer(&mut *buffer, value)?;
    Ok(buffer)
}

/// Encrypts the whole inventory (and in version 2 the authorization state
/// of `format`) for `rpc_key`'s public key.
pub fn create(
    inventory: &Inventory,
    format: (Format, &AuthzState),
    rpc_key: &AsymmetricKey,
    timestamp_ms: i64,
) -> Result<BackupBlob, BackupError> {
    if rpc_key.spec() != KeySpec::Rsa {
        return Err(BackupError::NeedsRsa);
    }
    let mut wire = records_to_wire(inventory.records());
    if format.0 == Format::V2 {
        wire.authorization = Some(format.1.to_wire());
        wire.lifecycle = Some(inventory.lifecycle_map().to_wire());
    }
    let state = json_in_one_buffer(&wire).map_err(|_| BackupError::Internal("cannot serialize the inventory"))?;
    let data_key = SymmetricKey::generate(32).map_err(|_| BackupError::Internal("cannot generate the data key"))?;
    let encrypted_state = symmetric::encrypt(&gcm(), &data_key, &state, &[])
        .map_err(|_| BackupError::Internal("cannot encrypt the inventory"))?;
    let encryption_key = asymmetric::encrypt(&oaep_sha256(), rpc_key, data_key.as_bytes())
        .map_err(|_| BackupError::Internal("cannot wrap the data key"))?;
    Ok(BackupBlob {
        encryption_key: Bytes(encryption_key),
        version: Int64Number(format.0.version()),
        timestamp: Int64(timestamp_ms),
        encrypted_state: Bytes(encrypted_state),
    })
}

/// Decrypts and validates a backup; every key and grant in it must be
/// valid, or nothing is returned (a restore is all or nothing).
pub fn open(blob: &BackupBlob, rpc_key: &AsymmetricKey) -> Result<BackupContents, BackupError> {
    if blob.version.0 != BACKUP_VERSION_1 && blob.version.0 != BACKUP_VERSION_2 {
        return Err(BackupError::Invalid(format!("unsupported backup version {}", blob.version.0)));
    }
    let undecryptable = || BackupError::Invalid("backup cannot be decrypted with this cluster's RPC key".into());
    let data_key_bytes = Zeroizing::new(
        asymmetric::decrypt(&oaep_sha256(), rpc_key, &blob.encryption_key.0).map_err(|_| undecryptable())?,
    );
    if data_key_bytes.len() != 32 {
        return Err(undecryptable());
    }
    let data_key = SymmetricKey::from_bytes(&data_key_bytes).map_err(|_| undecryptable())?;
    let state = Zeroizing::new(
        symmetric::decrypt(&gcm(), &data_key, &blob.encrypted_state.0, &[]).map_err(|_| undecryptable())?,
    );
    let mut inventory: BackupInventory = serde_json::from_slice(&state).map_err(|e| {
        BackupError::Invalid(format!(
            "backup content is not a key inventory: {}",
            crate::wire::codec::json_error_kind(&e)
        ))
    })?;
    // Version 1 carries no authorization state, whatever its JSON holds.
    let authorization = match inventory.authorization.take() {
        Some(wire) if blob.version.0 == BACKUP_VERSION_2 => Some(
            AuthzState::from_wire(&wire, "authorization").map_err(|e| BackupError::Invalid(format!("backup {e}")))?,
        ),
        _ if blob.version.0 == BACKUP_VERSION_2 => Some(AuthzState::default()),
        _ => None,
    };
    let lifecycle = match inventory.lifecycle.take() {
        Some(wire) if blob.version.0 == BACKUP_VERSION_2 => {
            LifecycleMap::from_wire(&wire, "lifecycle").map_err(|e| BackupError::Invalid(format!("backup {e}")))?
        }
        _ => LifecycleMap::default(),
    };
    Ok(BackupContents { records: records_from_wire(inventory)?, authorization, lifecycle })
}

/// The proto3-JSON inventory form of `records` (backups and node-to-node sync).
pub fn records_to_wire<'a>(records: impl IntoIterator<Item = &'a std::sync::Arc<KeyRecord>>) -> BackupInventory {
    let raw = |record: &KeyRecord, bytes: &[u8]| BackupRawKey {
        name: record.name.clone(),
        version: record.version,
        created_at: Int64(record.created_at_ms),
        key: SecretBytes(Zeroizing::new(bytes.to_vec())),
        object_id: Bytes(record.object_id.clone()),
    };
    let mut out = BackupInventory::default();
    // Every version under its own name: a restore elsewhere recreates the
    // same conflict rather than losing a version.
    for record in records {
        match &record.material {
            KeyMaterial::Symmetric(k) => out.symmetric_key.push(raw(record, k.as_bytes())),
            KeyMaterial::Mac(k) => out.mac_key.push(raw(record, k.as_bytes())),
            KeyMaterial::Asymmetric(k) => out.asymmetric_key.push(BackupAsymmetricKey {
                name: record.name.clone(),
                version: record.version,
                created_at: Int64(record.created_at_ms),
                key_type: k.spec().as_str().to_string(),
                key: SecretBytes(k.to_pkcs8_der()),
                object_id: Bytes(record.object_id.clone()),
            }),
        }
    }
    out
}

/// A record's version number: 1 to [`MAX_VERSIONS`].
fn check_version(list: &str, i: usize, version: u32) -> Result<u32, BackupError> {
    if (1..=MAX_VERSIONS).contains(&version) {
        Ok(version)
    } else {
        Err(BackupError::Invalid(format!("backup {list}[{i}].version: must be 1 to {MAX_VERSIONS}, got {version}")))
    }
}

/// A record's `objectId`: at most [`MAX_OBJECT_ID_BYTES`].
fn check_object_id(list: &str, i: usize, object_id: &Bytes) -> Result<Vec<u8>, BackupError> {
    if object_id.0.len() <= MAX_OBJECT_ID_BYTES {
        Ok(object_id.0.clone())
    } else {
        Err(BackupError::Invalid(format!("backup {list}[{i}].objectId: at most {MAX_OBJECT_ID_BYTES} bytes")))
    }
}

/// Validates every key of a wire inventory; all or nothing.
pub fn records_from_wire(inventory: BackupInventory) -> Result<Vec<KeyRecord>, BackupError> {
    let invalid =
        |list: &str, i: usize, why: &dyn fmt::Display| BackupError::Invalid(format!("backup {list}[{i}]: {why}"));
    let mut records = Vec::new();
    for (i, k) in inventory.symmetric_key.iter().enumerate() {
        validate_name(&k.name).map_err(|w| invalid("symmetricKey", i, &w))?;
        let key = SymmetricKey::from_bytes(&k.key.0).map_err(|e| invalid("symmetricKey", i, &e))?;
        let version = check_version("symmetricKey", i, k.version)?;
        let object_id = check_object_id("symmetricKey", i, &k.object_id)?;
        let record = KeyRecord::new(k.name.clone(), k.created_at.0, KeyMaterial::Symmetric(key));
        records.push(record.with_version(version).with_object_id(object_id));
    }
    for (i, k) in inventory.mac_key.iter().enumerate() {
        validate_name(&k.name).map_err(|w| invalid("macKey", i, &w))?;
        let key = MacKey::from_bytes(&k.key.0).map_err(|e| invalid("macKey", i, &e))?;
        let version = check_version("macKey", i, k.version)?;
        let object_id = check_object_id("macKey", i, &k.object_id)?;
        let record = KeyRecord::new(k.name.clone(), k.created_at.0, KeyMaterial::Mac(key));
        records.push(record.with_version(version).with_object_id(object_id));
    }
    for (i, k) in inventory.asymmetric_key.iter().enumerate() {
        validate_name(&k.name).map_err(|w| invalid("asymmetricKey", i, &w))?;
        if k.key.0.len() > crate::node::MAX_KEY_DER_BYTES {
            return Err(invalid("asymmetricKey", i, &"key is too large"));
        }
        let key = AsymmetricKey::from_pkcs8_der(&k.key.0).map_err(|e| invalid("asymmetricKey", i, &e))?;
        if !k.key_type.is_empty() && KeySpec::parse(&k.key_type).ok() != Some(key.spec()) {
            return Err(invalid(
                "asymmetricKey",
                i,
                &format_args!("keyType {} does not match the key", quote(&k.key_type)),
            ));
        }
        let version = check_version("asymmetricKey", i, k.version)?;
        let object_id = check_object_id("asymmetricKey", i, &k.object_id)?;
        let material = KeyMaterial::Asymmetric(Box::new(key));
        records.push(
            KeyRecord::new(k.name.clone(), k.created_at.0, material).with_version(version).with_object_id(object_id),
        );
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::{ConflictPolicy, KeyType, Keystore};
    use crate::lifecycle::{KeyLifecycle, KeyStatus};

    fn sym(name: &str, byte: u8) -> KeyRecord {
        KeyRecord::new(name.into(), 1, KeyMaterial::Symmetric(SymmetricKey::from_bytes(&[byte; 32]).unwrap()))
    }

    #[test]
    fn version_2_carries_versions_and_lifecycle_and_version_1_refuses_rotated_keys() {
        let rpc = crate::crypto::test_util::rsa2048();
        let keystore = Keystore::new();
        keystore.insert(sym("plain", 1)).unwrap();
        let empty = AuthzState::default();
        assert_eq!(Format::choose(0, &empty, &keystore.snapshot()).unwrap(), Format::V1, "as the first VSSM");
        keystore.insert(sym("k", 2)).unwrap();
        keystore.add_version(sym("k", 3)).unwrap();
        let mut disabled = KeyLifecycle::default();
        disabled.set_status(KeyStatus::Disabled, 10, "node");
        let mut map = LifecycleMap::default();
        map.set(KeyType::Symmetric, "plain", disabled.clone());
        keystore.merge_lifecycle(&map);
        let snapshot = keystore.snapshot();
        assert_eq!(Format::choose(0, &empty, &snapshot).unwrap(), Format::V2);
        assert!(Format::choose(BACKUP_VERSION_1, &empty, &snapshot).is_err(), "v1 cannot hold versions");

        let blob = create(&snapshot, (Format::V2, &empty), rpc, 5).unwrap();
        let contents = open(&blob, rpc).unwrap();
        assert_eq!(contents.lifecycle.get(KeyType::Symmetric, "plain"), Some(&disabled));
        let restored = Keystore::new();
        restored.merge_lifecycle(&contents.lifecycle);
        restored.merge(contents.records, ConflictPolicy::KeepExisting);
        let entry = restored.snapshot().entry(KeyType::Symmetric, "k").map(|e| e.version_numbers());
        assert_eq!(entry, Some(vec![1, 2]));
        assert_eq!(restored.snapshot().digest(), snapshot.digest());
        assert_eq!(restored.snapshot().lifecycle_map(), snapshot.lifecycle_map());
    }
}
