//! Encrypted backups in the version-1 format of the first VSSM:
//! a fresh AES-256 data key wrapped with RSA-OAEP/SHA-256 under the RPC
//! certificate's key, and the proto3-JSON inventory under AES-256-GCM.

use crate::crypto::algorithm::{AsymmetricEncryption, HashAlg, SymmetricAlgorithm};
use crate::crypto::keys::{AsymmetricKey, KeySpec, MacKey, SymmetricKey};
use crate::crypto::{asymmetric, quote, symmetric};
use crate::error::{Classify, ErrorKind};
use crate::keystore::{validate_name, Inventory, KeyMaterial, KeyRecord};
use crate::wire::{
    BackupAsymmetricKey, BackupBlob, BackupInventory, BackupRawKey, Bytes, Int64, Int64Number, SecretBytes,
};
use std::fmt;
use zeroize::Zeroizing;

/// The only backup format there is.
pub const BACKUP_VERSION: i64 = 1;
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

/// Encrypts the whole inventory for `rpc_key`'s public key.
pub fn create(inventory: &Inventory, rpc_key: &AsymmetricKey, timestamp_ms: i64) -> Result<BackupBlob, BackupError> {
    if rpc_key.spec() != KeySpec::Rsa {
        return Err(BackupError::NeedsRsa);
    }
    let state = json_in_one_buffer(&records_to_wire(inventory.records()))
        .map_err(|_| BackupError::Internal("cannot serialize the inventory"))?;
    let data_key = SymmetricKey::generate(32).map_err(|_| BackupError::Internal("cannot generate the data key"))?;
    let encrypted_state = symmetric::encrypt(&gcm(), &data_key, &state, &[])
        .map_err(|_| BackupError::Internal("cannot encrypt the inventory"))?;
    let encryption_key = asymmetric::encrypt(&oaep_sha256(), rpc_key, data_key.as_bytes())
        .map_err(|_| BackupError::Internal("cannot wrap the data key"))?;
    Ok(BackupBlob {
        encryption_key: Bytes(encryption_key),
        version: Int64Number(BACKUP_VERSION),
        timestamp: Int64(timestamp_ms),
        encrypted_state: Bytes(encrypted_state),
    })
}

/// Decrypts and validates a backup; every key in it must be usable, or
/// nothing is returned (a restore is all or nothing).
pub fn open(blob: &BackupBlob, rpc_key: &AsymmetricKey) -> Result<Vec<KeyRecord>, BackupError> {
    if blob.version.0 != BACKUP_VERSION {
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
    let inventory: BackupInventory = serde_json::from_slice(&state).map_err(|e| {
        BackupError::Invalid(format!(
            "backup content is not a key inventory: {}",
            crate::wire::codec::json_error_kind(&e)
        ))
    })?;
    records_from_wire(inventory)
}

/// The proto3-JSON inventory form of `records` (backups and node-to-node sync).
pub fn records_to_wire<'a>(records: impl IntoIterator<Item = &'a std::sync::Arc<KeyRecord>>) -> BackupInventory {
    let raw = |record: &KeyRecord, bytes: &[u8]| BackupRawKey {
        name: record.name.clone(),
        created_at: Int64(record.created_at_ms),
        key: SecretBytes(Zeroizing::new(bytes.to_vec())),
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
                created_at: Int64(record.created_at_ms),
                key_type: k.spec().as_str().to_string(),
                key: SecretBytes(k.to_pkcs8_der()),
            }),
        }
    }
    out
}

/// Validates every key of a wire inventory; all or nothing.
pub fn records_from_wire(inventory: BackupInventory) -> Result<Vec<KeyRecord>, BackupError> {
    let invalid =
        |list: &str, i: usize, why: &dyn fmt::Display| BackupError::Invalid(format!("backup {list}[{i}]: {why}"));
    let mut records = Vec::new();
    for (i, k) in inventory.symmetric_key.iter().enumerate() {
        validate_name(&k.name).map_err(|w| invalid("symmetricKey", i, &w))?;
        let key = SymmetricKey::from_bytes(&k.key.0).map_err(|e| invalid("symmetricKey", i, &e))?;
        records.push(KeyRecord::new(k.name.clone(), k.created_at.0, KeyMaterial::Symmetric(key)));
    }
    for (i, k) in inventory.mac_key.iter().enumerate() {
        validate_name(&k.name).map_err(|w| invalid("macKey", i, &w))?;
        let key = MacKey::from_bytes(&k.key.0).map_err(|e| invalid("macKey", i, &e))?;
        records.push(KeyRecord::new(k.name.clone(), k.created_at.0, KeyMaterial::Mac(key)));
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
        records.push(KeyRecord::new(k.name.clone(), k.created_at.0, KeyMaterial::Asymmetric(Box::new(key))));
    }
    Ok(records)
}
