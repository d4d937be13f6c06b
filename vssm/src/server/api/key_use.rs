//! Which material of a key a crypto request uses: the key's state, the
//! version the request names (or the newest), and the versioned
//! ciphertext header. A key that was never rotated answers exactly as
//! before versions existed; once rotated, a request that cannot say which
//! version it means is refused rather than answered with the wrong key.

use super::access::check_use;
use super::{ApiError, Caller};
use crate::authz::Operation;
use crate::crypto::versioned;
use crate::error::{Classify, ErrorKind};
use crate::keystore::{Inventory, KeyEntry, KeyRecord, KeyType};
use crate::lifecycle::EffectiveState;
use crate::wire::VersionChoice;
use std::sync::Arc;

/// Why a key cannot serve a request (names bounded and printable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyUseError {
    /// A rotated key and a request that names no version.
    #[error(
        "key {name:?} has {newest} versions: send \"versioned\": true (decrypting a versioned ciphertext) or \"keyVersion\""
    )]
    VersionRequired {
        /// The key.
        name: String,
        /// Its newest version.
        newest: u32,
    },
    /// The named version does not exist (or never reached this node).
    #[error("key {name:?} has no version {version}")]
    NoSuchVersion {
        /// The key.
        name: String,
        /// The version asked for.
        version: u32,
    },
    /// `versioned` decryption of input without the header, or whose key id
    /// names other material than this key's version.
    #[error("input is not a versioned ciphertext of key {name:?}")]
    NotVersioned {
        /// The key.
        name: String,
    },
    /// The header and `keyVersion` disagree.
    #[error("keyVersion {requested} differs from version {found} in the ciphertext")]
    VersionMismatch {
        /// `keyVersion` of the request.
        requested: u32,
        /// The version in the header.
        found: u32,
    },
    /// A verification of a rotated key needs `keyVersion` (signatures and
    /// MACs carry no header).
    #[error("verifying with a versioned key needs \"keyVersion\"")]
    VerifyNeedsVersion,
    /// The version is below the key's minimum decryption version.
    #[error("version {version} of key {name:?} is below its minimum decryption version {minimum}")]
    VersionRetired {
        /// The key.
        name: String,
        /// The version asked for.
        version: u32,
        /// The key's minimum decryption version.
        minimum: u32,
    },
    /// The version was trimmed: its material is destroyed.
    #[error("version {version} of key {name:?} was destroyed")]
    VersionDestroyed {
        /// The key.
        name: String,
        /// The version asked for.
        version: u32,
    },
    /// The key is disabled.
    #[error("key {name:?} is disabled")]
    Disabled {
        /// The key.
        name: String,
    },
    /// The key is scheduled for deletion.
    #[error("key {name:?} is pending deletion (at {delete_at_ms} ms since the epoch); cancel the deletion to use it")]
    PendingDeletion {
        /// The key.
        name: String,
        /// The deadline.
        delete_at_ms: i64,
    },
    /// The key was destroyed (or its deletion deadline has passed).
    #[error("key {name:?} was destroyed")]
    Destroyed {
        /// The key.
        name: String,
    },
}

impl Classify for KeyUseError {
    fn kind(&self) -> ErrorKind {
        match self {
            KeyUseError::VersionRequired { .. }
            | KeyUseError::NoSuchVersion { .. }
            | KeyUseError::NotVersioned { .. }
            | KeyUseError::VersionMismatch { .. }
            | KeyUseError::VerifyNeedsVersion
            | KeyUseError::VersionRetired { .. } => ErrorKind::BadRequest,
            KeyUseError::Disabled { .. } | KeyUseError::PendingDeletion { .. } => ErrorKind::Conflict,
            KeyUseError::VersionDestroyed { .. } | KeyUseError::Destroyed { .. } => ErrorKind::Gone,
        }
    }
}

/// Refuses a key that is not enabled.
pub fn check_state(entry: &KeyEntry, name: &str, now_ms: i64) -> Result<(), KeyUseError> {
    let name = || super::printable(name);
    match entry.lifecycle().effective(now_ms) {
        EffectiveState::Enabled => Ok(()),
        EffectiveState::Disabled => Err(KeyUseError::Disabled { name: name() }),
        EffectiveState::PendingDeletion { delete_at_ms } => {
            Err(KeyUseError::PendingDeletion { name: name(), delete_at_ms })
        }
        EffectiveState::DeletionDue { .. } | EffectiveState::Destroyed { .. } => {
            Err(KeyUseError::Destroyed { name: name() })
        }
    }
}

/// The material a request uses, and what the answer says about it.
pub struct KeyUse {
    /// The material.
    pub record: Arc<KeyRecord>,
    /// The request's version fields.
    pub choice: VersionChoice,
}

impl KeyUse {
    /// The version for the answer: only when the request asked.
    pub fn reported_version(&self) -> Option<u32> {
        self.choice.reports_version().then_some(self.record.version)
    }

    /// `ciphertext` as the request wants it: behind the version header when
    /// `versioned`.
    pub fn wrap_output(&self, ciphertext: Vec<u8>) -> Vec<u8> {
        if self.choice.versioned {
            versioned::prepend(self.record.version, self.record.key_id(), &ciphertext)
        } else {
            ciphertext
        }
    }
}

/// What a request's key name names.
#[derive(Clone)]
enum Target {
    /// A key, with all its versions.
    Entry(Arc<KeyEntry>),
    /// One material exactly: a conflict alias (`name~prefix`).
    Alias(Arc<KeyRecord>),
}

/// The keys a batch's items have looked up, with the operation each was
/// authorized for: a batch decides each (key, operation) once, at the
/// first item that names it, from one keystore snapshot, and its other
/// items reuse that decision (a few hundred instructions each: a third
/// of an AES-GCM item). Refusals are not kept: every refused item is
/// decided (and audited) on its own. Its items note the batch's start
/// second as their keys' last use (one clock read per batch, not per item).
pub struct Lookups {
    found: std::sync::Mutex<Vec<Lookup>>,
    started_s: i64,
}

impl Default for Lookups {
    fn default() -> Lookups {
        Lookups { found: std::sync::Mutex::default(), started_s: super::now_ms() / 1000 }
    }
}

struct Lookup {
    op: Operation,
    key_type: KeyType,
    name: String,
    target: Target,
}

impl Lookups {
    /// Most keys kept: a batch naming more keys looks the others up per item.
    const MAX: usize = 64;

    fn get(&self, op: Operation, key_type: KeyType, name: &str) -> Option<Target> {
        let found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        let hit = found.iter().find(|l| l.op == op && l.key_type == key_type && l.name == name);
        hit.map(|l| l.target.clone())
    }

    fn put(&self, op: Operation, key_type: KeyType, name: &str, target: &Target) {
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        if found.len() < Self::MAX {
            found.push(Lookup { op, key_type, name: name.to_owned(), target: target.clone() });
        }
    }
}

/// Authorizes `op` on `name` and finds the key (see [`authorize`] and
/// [`find`]), or reuses what an earlier item of the batch found.
fn lookup(caller: Caller, op: Operation, key_type: KeyType, name: &str) -> Result<Target, ApiError> {
    if let Some(target) = caller.lookups.and_then(|lookups| lookups.get(op, key_type, name)) {
        return Ok(target);
    }
    let snapshot = authorize(caller, op, name)?;
    let target = find(&snapshot, key_type, name)?;
    if let Some(lookups) = caller.lookups {
        lookups.put(op, key_type, name, &target);
    }
    Ok(target)
}

/// The checks before any lookup: 400 without a name, 403 when no grant
/// allows `op` (decided before the lookup, so whether the key exists
/// stays hidden).
fn authorize(caller: Caller, op: Operation, name: &str) -> Result<Arc<Inventory>, ApiError> {
    if name.is_empty() {
        return Err(ApiError::KeyNameRequired);
    }
    check_use(caller.node, caller.client, op, name)?;
    Ok(caller.node.keystore.snapshot())
}

/// The key `name` of `key_type` in `snapshot`, if its state allows use:
/// 404 when unknown, 409 when disabled or pending deletion, 410 when
/// destroyed. A conflict alias has the state and the minimum decryption
/// version of its key.
fn find(snapshot: &Inventory, key_type: KeyType, name: &str) -> Result<Target, ApiError> {
    let now_ms = super::now_ms();
    if let Some(entry) = snapshot.shared_entry(key_type, name) {
        check_state(entry, name, now_ms)?;
        return Ok(Target::Entry(Arc::clone(entry)));
    }
    let record = snapshot.get(key_type, name).ok_or_else(|| no_such_key(key_type, name))?;
    let entry = snapshot.entry(key_type, &record.name).ok_or_else(|| no_such_key(key_type, name))?;
    check_state(entry, &record.name, now_ms)?;
    check_version(entry, &record.name, record.version, true)?;
    Ok(Target::Alias(Arc::clone(record)))
}

fn no_such_key(key_type: KeyType, name: &str) -> ApiError {
    ApiError::NoSuchKey { key_type, name: super::printable(name) }
}

fn newest(entry: &KeyEntry, key_type: KeyType, name: &str) -> Result<Arc<KeyRecord>, ApiError> {
    entry.active().cloned().ok_or_else(|| no_such_key(key_type, name))
}

/// Version `version` of the key, if it may still be used.
fn numbered(entry: &KeyEntry, name: &str, version: u32) -> Result<Arc<KeyRecord>, KeyUseError> {
    let record = entry.version(version).cloned();
    check_version(entry, name, version, record.is_some())?;
    record.ok_or_else(|| KeyUseError::NoSuchVersion { name: super::printable(name), version })
}

/// Refuses a trimmed version (410) and one below the minimum decryption
/// version (400), whether or not its material is held here.
fn check_version(entry: &KeyEntry, name: &str, version: u32, held: bool) -> Result<(), KeyUseError> {
    let lifecycle = entry.lifecycle();
    if version < lifecycle.min_available_version() && !held {
        return Err(KeyUseError::VersionDestroyed { name: super::printable(name), version });
    }
    let minimum = lifecycle.min_decryption_version();
    if version < minimum {
        return Err(KeyUseError::VersionRetired { name: super::printable(name), version, minimum });
    }
    Ok(())
}

fn touched(caller: Caller, record: Arc<KeyRecord>, choice: VersionChoice) -> KeyUse {
    let now_s = caller.lookups.map_or_else(|| super::now_ms() / 1000, |lookups| lookups.started_s);
    record.touch(now_s);
    KeyUse { record, choice }
}

/// The material that makes new output (encrypt, sign, MAC, data keys):
/// the named version, else the newest when the request is versioned or
/// the key was never rotated.
pub fn for_output(
    caller: Caller,
    op: Operation,
    key_type: KeyType,
    name: &str,
    choice: VersionChoice,
) -> Result<KeyUse, ApiError> {
    let entry = match lookup(caller, op, key_type, name)? {
        Target::Alias(record) => return Ok(touched(caller, record, choice)),
        Target::Entry(entry) => entry,
    };
    let entry = entry.as_ref();
    let record = if choice.key_version != 0 {
        numbered(entry, name, choice.key_version)?
    } else if choice.versioned || !entry.was_rotated() {
        newest(entry, key_type, name)?
    } else {
        return Err(
            KeyUseError::VersionRequired { name: super::printable(name), newest: entry.newest_version() }.into()
        );
    };
    Ok(touched(caller, record, choice))
}

/// The material that checks or opens existing output (decrypt, verify),
/// and the input without its version header. `header_in` is the input
/// that carries the header when the request is `versioned` (ciphertexts);
/// None for signatures and MACs, which carry none.
pub fn for_input<'a>(
    caller: Caller,
    op: Operation,
    key_type: KeyType,
    name: &str,
    choice: VersionChoice,
    header_in: Option<&'a [u8]>,
) -> Result<(KeyUse, Option<&'a [u8]>), ApiError> {
    let target = lookup(caller, op, key_type, name)?;
    let not_versioned = || KeyUseError::NotVersioned { name: super::printable(name) };
    let (header, rest) = match (choice.versioned, header_in) {
        (true, Some(input)) => {
            let (version, key_id, rest) = versioned::split(input).ok_or_else(not_versioned)?;
            if choice.key_version != 0 && choice.key_version != version {
                return Err(KeyUseError::VersionMismatch { requested: choice.key_version, found: version }.into());
            }
            (Some((version, key_id)), Some(rest))
        }
        (_, input) => (None, input),
    };
    let entry = match target {
        Target::Alias(record) => {
            if header.is_some_and(|(v, id)| v != record.version || id != record.key_id()) {
                return Err(not_versioned().into());
            }
            return Ok((touched(caller, record, choice), rest));
        }
        Target::Entry(entry) => entry,
    };
    let entry = entry.as_ref();
    let record = match header {
        Some((version, key_id)) => {
            let record = entry.version_with_id(version, &key_id).cloned();
            check_version(entry, name, version, record.is_some())?;
            record.ok_or_else(not_versioned)?
        }
        None if choice.key_version != 0 => numbered(entry, name, choice.key_version)?,
        None if choice.versioned && header_in.is_none() && entry.was_rotated() => {
            return Err(KeyUseError::VerifyNeedsVersion.into())
        }
        None if !entry.was_rotated() => newest(entry, key_type, name)?,
        None => {
            return Err(
                KeyUseError::VersionRequired { name: super::printable(name), newest: entry.newest_version() }.into()
            )
        }
    };
    Ok((touched(caller, record, choice), rest))
}
