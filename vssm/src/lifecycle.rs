//! The lifecycle of keys — status, tombstone, minimum decryption version,
//! trimmed versions and rotation period — as a state-based CRDT: every node
//! holds a [`LifecycleMap`], changes and peers' states are merged into it,
//! and nodes that have seen the same changes hold the same state whatever
//! the order, the grouping and the repeats in which they saw them.
//!
//! Merge rules (each field merges on its own, by a maximum, a minimum or a
//! last-writer-wins register, so merging is commutative, associative and
//! idempotent):
//! - **status** (enabled, disabled, or deletion pending with its deletion
//!   date): a last-writer-wins register. Of two writes the one with the
//!   greater (time, writer, value) wins, where ENABLED < DISABLED <
//!   PENDING_DELETION and pending deletions compare by deletion date. The
//!   status moves both ways (enable ⇄ disable, schedule then cancel), so no
//!   order of the values themselves could stand for the operator's intent:
//!   the latest decision stands. A cancellation made after a scheduling
//!   wins, and so does a scheduling made after a cancellation. The writer
//!   and the value only break ties, so that the result depends on the writes
//!   alone.
//! - **destroyed** (the tombstone): the earliest destruction time, and
//!   absorbing: once a key is destroyed it stays destroyed through every
//!   merge, whatever the status register says, even when it holds a later
//!   write. The material of a destroyed key is zeroized and cannot come
//!   back, so a node that was offline or an old backup must never make the
//!   key look usable again. Two nodes may record the destruction at
//!   different times; the earliest is kept, so they agree.
//! - **minimum decryption version**: a last-writer-wins register ordered
//!   like the status. An operator may lower it again, so it is not a
//!   maximum.
//! - **minimum available version** (trim): the maximum. Versions below it
//!   are destroyed; destroyed material cannot come back, so the trim only
//!   grows. 0 and 1 both mean that no version was trimmed.
//! - **rotation period**: a last-writer-wins register ordered like the
//!   status; 0 turns automatic rotation off.
//!
//! A register time cannot lie in the future of the node that reads it:
//! state from a peer or a backup goes through [`LifecycleMap::clamp_future`],
//! so that a write dated far ahead cannot win the register against every
//! later change. Local writes ([`Lww::after`]) are dated after what the
//! node has seen, so that they win over it.
//!
//! A key whose lifecycle was never changed has no entry:
//! [`KeyLifecycle::default`] (enabled, nothing trimmed or destroyed, no
//! register ever written) is the state of every such key, and merging it
//! into anything changes nothing. Versions themselves are not part of this
//! state: they live in the key records.

use crate::keystore::{validate_name, KeyType, NameError};
use crate::wire::lifecycle::{KeyLifecycleWire, PeriodRegisterWire, StatusRegisterWire, VersionRegisterWire};
use crate::wire::Int64;
use std::collections::BTreeMap;

/// Entries accepted from a peer or a backup.
pub const MAX_LIFECYCLE_RECORDS: usize = 1_000_000;
/// Longest node id in a register, in bytes.
pub const MAX_NODE_ID_BYTES: usize = 128;
/// Latest time accepted from a peer or a backup (milliseconds since the
/// Unix epoch): far beyond any real date, and twice it still fits an `i64`.
pub const MAX_TIME_MS: i64 = i64::MAX / 2;
/// Highest version number accepted from a peer or a backup.
pub const MAX_VERSION: u32 = 100_000;
/// Longest rotation period: ten years of 366 days, in milliseconds.
pub const MAX_ROTATION_PERIOD_MS: u64 = 10 * 366 * 86_400_000;
/// SHA-256 of no bytes: the digest of an empty [`LifecycleMap`]
/// (`e3b0c442…7852b855`).
pub const EMPTY_DIGEST: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

const ENABLED: &str = "ENABLED";
const DISABLED: &str = "DISABLED";
const PENDING_DELETION: &str = "PENDING_DELETION";

/// The status an operator set (ordered as the merge rule breaks ties).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyStatus {
    /// Usable.
    Enabled,
    /// Refused until enabled again.
    Disabled,
    /// Refused, and destroyed at `delete_at_ms` unless cancelled before.
    PendingDeletion {
        /// Milliseconds since the Unix epoch.
        delete_at_ms: i64,
    },
}

/// A last-writer-wins register. The derived order, by (`at_ms`, `by`,
/// `value`), is the merge order: the greater write wins.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lww<T> {
    /// Milliseconds since the Unix epoch of the write.
    pub at_ms: i64,
    /// Who wrote it: the client certificate subject of an admin change (at most [`MAX_NODE_ID_BYTES`], no control
    /// characters).
    pub by: String,
    /// The value written.
    pub value: T,
}

impl<T> Lww<T> {
    /// A local write over `previous`: dated `now_ms`, or just after
    /// `previous` when that is not earlier (another node's clock ahead of
    /// this one), so that it wins here. `by` is cut to a valid node id.
    pub fn after(previous: Option<&Lww<T>>, now_ms: i64, by: &str, value: T) -> Lww<T> {
        let at_ms = match previous {
            Some(p) if p.at_ms >= now_ms => p.at_ms.saturating_add(1),
            _ => now_ms,
        };
        Lww { at_ms, by: node_id(by), value }
    }
}

/// `text` without control characters, cut to [`MAX_NODE_ID_BYTES`] on a
/// character boundary: what a register stores, so that it reads back from
/// the wire unchanged.
fn node_id(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_NODE_ID_BYTES {
            break;
        }
        out.push(c);
    }
    out
}

/// Merges a register: the greater write wins (`None` is below every write).
fn merge_register<T: Ord + Clone>(mine: &mut Option<Lww<T>>, theirs: &Option<Lww<T>>) -> bool {
    if *theirs > *mine {
        mine.clone_from(theirs);
        true
    } else {
        false
    }
}

/// Moves a register write dated after `now_ms` to `now_ms`.
fn clamp_register<T>(register: &mut Option<Lww<T>>, now_ms: i64) -> bool {
    match register {
        Some(r) if r.at_ms > now_ms => {
            r.at_ms = now_ms;
            true
        }
        _ => false,
    }
}

/// The lifecycle state of one key (see the module doc for the merge rules).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KeyLifecycle {
    /// None: enabled, never changed.
    pub status: Option<Lww<KeyStatus>>,
    /// The tombstone: absorbing, merged by the minimum.
    pub destroyed_at_ms: Option<i64>,
    /// None: 1.
    pub min_decryption_version: Option<Lww<u32>>,
    /// Versions below it are destroyed; merged by the maximum (0 or 1: none).
    pub min_available_version: u32,
    /// None or 0: no automatic rotation.
    pub rotation_period_ms: Option<Lww<u64>>,
}

/// What a key's lifecycle allows at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectiveState {
    /// Usable.
    Enabled,
    /// Refused until enabled again.
    Disabled,
    /// Refused; destroyed at the deadline unless cancelled before.
    PendingDeletion {
        /// Milliseconds since the Unix epoch.
        delete_at_ms: i64,
    },
    /// The deadline has passed but the key is not destroyed here yet: it is
    /// refused as if destroyed, and destroyed once its state is confirmed
    /// with the peers (a cancellation made before the deadline may still
    /// arrive).
    DeletionDue {
        /// Milliseconds since the Unix epoch.
        delete_at_ms: i64,
    },
    /// Destroyed (final).
    Destroyed {
        /// Milliseconds since the Unix epoch.
        at_ms: i64,
    },
}

impl KeyLifecycle {
    /// Merges `other` into this state; true when this state changed.
    pub fn merge(&mut self, other: &KeyLifecycle) -> bool {
        let mut changed = merge_register(&mut self.status, &other.status);
        if let Some(theirs) = other.destroyed_at_ms {
            if self.destroyed_at_ms.is_none_or(|mine| theirs < mine) {
                self.destroyed_at_ms = Some(theirs);
                changed = true;
            }
        }
        changed |= merge_register(&mut self.min_decryption_version, &other.min_decryption_version);
        if other.min_available_version > self.min_available_version {
            self.min_available_version = other.min_available_version;
            changed = true;
        }
        changed |= merge_register(&mut self.rotation_period_ms, &other.rotation_period_ms);
        changed
    }

    /// The state at `now_ms` (milliseconds since the Unix epoch).
    pub fn effective(&self, now_ms: i64) -> EffectiveState {
        if let Some(at_ms) = self.destroyed_at_ms {
            return EffectiveState::Destroyed { at_ms };
        }
        match self.status.as_ref().map(|s| s.value) {
            None | Some(KeyStatus::Enabled) => EffectiveState::Enabled,
            Some(KeyStatus::Disabled) => EffectiveState::Disabled,
            Some(KeyStatus::PendingDeletion { delete_at_ms }) if now_ms >= delete_at_ms => {
                EffectiveState::DeletionDue { delete_at_ms }
            }
            Some(KeyStatus::PendingDeletion { delete_at_ms }) => EffectiveState::PendingDeletion { delete_at_ms },
        }
    }

    /// The lowest version that may decrypt or verify (at least 1).
    pub fn min_decryption_version(&self) -> u32 {
        self.min_decryption_version.as_ref().map_or(1, |r| r.value.max(1))
    }

    /// True when `version`'s material may not be held: the key was
    /// destroyed, or the version trimmed.
    pub fn forbids_material_of(&self, version: u32) -> bool {
        self.destroyed_at_ms.is_some() || version < self.min_available_version
    }

    /// The lowest version whose material is kept (at least 1).
    pub fn min_available_version(&self) -> u32 {
        self.min_available_version.max(1)
    }

    /// The automatic rotation period in milliseconds; 0: none.
    pub fn rotation_period_ms(&self) -> u64 {
        self.rotation_period_ms.as_ref().map_or(0, |r| r.value)
    }

    /// True when nothing was ever changed: no entry needs to exist.
    pub fn is_default(&self) -> bool {
        *self == KeyLifecycle::default()
    }

    /// Writes the status register locally (see [`Lww::after`]).
    pub fn set_status(&mut self, status: KeyStatus, now_ms: i64, by: &str) {
        self.status = Some(Lww::after(self.status.as_ref(), now_ms, by, status));
    }

    /// Writes the minimum decryption version register locally.
    pub fn set_min_decryption_version(&mut self, version: u32, now_ms: i64, by: &str) {
        self.min_decryption_version = Some(Lww::after(self.min_decryption_version.as_ref(), now_ms, by, version));
    }

    /// Writes the rotation period register locally (0: off).
    pub fn set_rotation_period_ms(&mut self, period_ms: u64, now_ms: i64, by: &str) {
        self.rotation_period_ms = Some(Lww::after(self.rotation_period_ms.as_ref(), now_ms, by, period_ms));
    }

    /// Raises the minimum available version; true when it rose.
    pub fn trim(&mut self, min_available_version: u32) -> bool {
        self.merge(&KeyLifecycle { min_available_version, ..KeyLifecycle::default() })
    }

    /// Records the destruction at `at_ms` (an earlier record is kept); true
    /// when the state changed.
    pub fn destroy(&mut self, at_ms: i64) -> bool {
        self.merge(&KeyLifecycle { destroyed_at_ms: Some(at_ms), ..KeyLifecycle::default() })
    }

    /// What a restore may apply of a backup's state: anyone can encrypt a
    /// backup to the RPC certificate, so a backup never destroys or
    /// schedules: the tombstone and the trim are left out (a destroyed key
    /// or version has no material in the backup anyway) and a pending
    /// deletion becomes a disabled key. States, minimum decryption version
    /// and rotation period are kept.
    pub fn restorable(&self) -> KeyLifecycle {
        let mut status = self.status.clone();
        if let Some(register) = &mut status {
            if let KeyStatus::PendingDeletion { .. } = register.value {
                register.value = KeyStatus::Disabled;
            }
        }
        KeyLifecycle {
            status,
            destroyed_at_ms: None,
            min_decryption_version: self.min_decryption_version.clone(),
            min_available_version: 0,
            rotation_period_ms: self.rotation_period_ms.clone(),
        }
    }

    /// Moves every register write dated after `now_ms` to `now_ms`, so that
    /// state from a peer or a backup cannot pin a value until its date. The
    /// tombstone and the deletion date are not register times and stay.
    /// True when something moved.
    pub fn clamp_future(&mut self, now_ms: i64) -> bool {
        let mut moved = clamp_register(&mut self.status, now_ms);
        moved |= clamp_register(&mut self.min_decryption_version, now_ms);
        moved |= clamp_register(&mut self.rotation_period_ms, now_ms);
        moved
    }

    fn to_wire(&self, key_type: KeyType, name: &str) -> KeyLifecycleWire {
        KeyLifecycleWire {
            key_type: key_type.as_str().to_string(),
            name: name.to_string(),
            status: self.status.as_ref().map(|r| {
                let (value, delete_at) = match r.value {
                    KeyStatus::Enabled => (ENABLED, None),
                    KeyStatus::Disabled => (DISABLED, None),
                    KeyStatus::PendingDeletion { delete_at_ms } => (PENDING_DELETION, Some(Int64(delete_at_ms))),
                };
                StatusRegisterWire { at: Int64(r.at_ms), by: r.by.clone(), value: value.to_string(), delete_at }
            }),
            destroyed_at: self.destroyed_at_ms.map(Int64),
            min_decryption_version: self.min_decryption_version.as_ref().map(|r| VersionRegisterWire {
                at: Int64(r.at_ms),
                by: r.by.clone(),
                value: u64::from(r.value),
            }),
            min_available_version: u64::from(self.min_available_version),
            rotation_period: self.rotation_period_ms.as_ref().map(|r| PeriodRegisterWire {
                at: Int64(r.at_ms),
                by: r.by.clone(),
                // At most MAX_ROTATION_PERIOD_MS when read from the wire.
                value_ms: Int64(i64::try_from(r.value).unwrap_or(i64::MAX)),
            }),
        }
    }

    /// Reads one entry; `field` is its path (e.g. `lifecycle[3]`).
    fn from_wire(wire: &KeyLifecycleWire, field: &str) -> Result<(KeyType, KeyLifecycle), LifecycleError> {
        let sub = |name: &str| format!("{field}.{name}");
        let key_type = KeyType::parse(&wire.key_type).ok_or_else(|| LifecycleError::UnknownKeyType {
            field: sub("keyType"),
            value: crate::crypto::quote(&wire.key_type),
        })?;
        validate_name(&wire.name).map_err(|reason| LifecycleError::InvalidName { field: sub("name"), reason })?;
        let status = match &wire.status {
            None => None,
            Some(r) => {
                let at = sub("status");
                let value = match r.value.as_str() {
                    ENABLED => KeyStatus::Enabled,
                    DISABLED => KeyStatus::Disabled,
                    PENDING_DELETION => {
                        let delete_at = r
                            .delete_at
                            .ok_or_else(|| LifecycleError::MissingDeletionDate { field: format!("{at}.deleteAt") })?;
                        KeyStatus::PendingDeletion { delete_at_ms: time(delete_at, &format!("{at}.deleteAt"))? }
                    }
                    other => {
                        return Err(LifecycleError::UnknownStatus {
                            field: format!("{at}.value"),
                            value: crate::crypto::quote(other),
                        })
                    }
                };
                Some(register(r.at, &r.by, value, &at)?)
            }
        };
        let destroyed_at_ms = wire.destroyed_at.map(|t| time(t, &sub("destroyedAt"))).transpose()?;
        let min_decryption_version = match &wire.min_decryption_version {
            None => None,
            Some(r) => {
                let at = sub("minDecryptionVersion");
                let value = version(r.value, &format!("{at}.value"))?;
                Some(register(r.at, &r.by, value, &at)?)
            }
        };
        let min_available_version = version(wire.min_available_version, &sub("minAvailableVersion"))?;
        let rotation_period_ms = match &wire.rotation_period {
            None => None,
            Some(r) => {
                let at = sub("rotationPeriod");
                let value =
                    u64::try_from(r.value_ms.0).ok().filter(|v| *v <= MAX_ROTATION_PERIOD_MS).ok_or_else(|| {
                        LifecycleError::OutOfRange {
                            field: format!("{at}.valueMs"),
                            value: i128::from(r.value_ms.0),
                            max: i128::from(MAX_ROTATION_PERIOD_MS),
                        }
                    })?;
                Some(register(r.at, &r.by, value, &at)?)
            }
        };
        Ok((
            key_type,
            KeyLifecycle { status, destroyed_at_ms, min_decryption_version, min_available_version, rotation_period_ms },
        ))
    }
}

/// A time from the wire, within `0..=MAX_TIME_MS`.
fn time(value: Int64, field: &str) -> Result<i64, LifecycleError> {
    if (0..=MAX_TIME_MS).contains(&value.0) {
        Ok(value.0)
    } else {
        Err(LifecycleError::OutOfRange {
            field: field.to_string(),
            value: i128::from(value.0),
            max: i128::from(MAX_TIME_MS),
        })
    }
}

/// A version from the wire, within `0..=MAX_VERSION`.
fn version(value: u64, field: &str) -> Result<u32, LifecycleError> {
    u32::try_from(value).ok().filter(|v| *v <= MAX_VERSION).ok_or_else(|| LifecycleError::OutOfRange {
        field: field.to_string(),
        value: i128::from(value),
        max: i128::from(MAX_VERSION),
    })
}

/// A register from the wire; `field` is its path.
fn register<T>(at: Int64, by: &str, value: T, field: &str) -> Result<Lww<T>, LifecycleError> {
    let at_ms = time(at, &format!("{field}.at"))?;
    if by.len() > MAX_NODE_ID_BYTES {
        return Err(LifecycleError::NodeIdTooLong { field: format!("{field}.by") });
    }
    if by.chars().any(char::is_control) {
        return Err(LifecycleError::NodeIdNotPrintable { field: format!("{field}.by") });
    }
    Ok(Lww { at_ms, by: by.to_string(), value })
}

/// Why lifecycle state from a peer or a backup is not acceptable. Every
/// message starts with the path of the field (e.g.
/// `lifecycle[3].status.value: unknown status "FOO"`); strings from the
/// input are quoted, escaped and bounded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// More than [`MAX_LIFECYCLE_RECORDS`] entries.
    #[error("{field}: holds more than {max} entries")]
    TooManyEntries {
        /// The path of the list.
        field: String,
        /// The limit.
        max: usize,
    },
    /// `keyType` is not SYMMETRIC, ASYMMETRIC or MAC.
    #[error("{field}: unknown key type {value}")]
    UnknownKeyType {
        /// The path of the field.
        field: String,
        /// The value, quoted.
        value: String,
    },
    /// The key name is not a valid name.
    #[error("{field}: {reason}")]
    InvalidName {
        /// The path of the field.
        field: String,
        /// What is wrong with it.
        reason: NameError,
    },
    /// The status is not ENABLED, DISABLED or PENDING_DELETION.
    #[error("{field}: unknown status {value}")]
    UnknownStatus {
        /// The path of the field.
        field: String,
        /// The value, quoted.
        value: String,
    },
    /// PENDING_DELETION without `deleteAt`.
    #[error("{field}: is required with PENDING_DELETION")]
    MissingDeletionDate {
        /// The path of the field.
        field: String,
    },
    /// A time, version or period outside its range.
    #[error("{field}: {value} is outside 0..={max}")]
    OutOfRange {
        /// The path of the field.
        field: String,
        /// The value.
        value: i128,
        /// The largest acceptable value.
        max: i128,
    },
    /// A node id longer than [`MAX_NODE_ID_BYTES`].
    #[error("{field}: is longer than {MAX_NODE_ID_BYTES} bytes")]
    NodeIdTooLong {
        /// The path of the field.
        field: String,
    },
    /// A node id with control characters.
    #[error("{field}: contains control characters")]
    NodeIdNotPrintable {
        /// The path of the field.
        field: String,
    },
}

impl LifecycleError {
    /// The path of the offending field.
    pub fn field(&self) -> &str {
        match self {
            LifecycleError::TooManyEntries { field, .. }
            | LifecycleError::UnknownKeyType { field, .. }
            | LifecycleError::InvalidName { field, .. }
            | LifecycleError::UnknownStatus { field, .. }
            | LifecycleError::MissingDeletionDate { field }
            | LifecycleError::OutOfRange { field, .. }
            | LifecycleError::NodeIdTooLong { field }
            | LifecycleError::NodeIdNotPrintable { field } => field,
        }
    }
}

impl crate::error::Classify for LifecycleError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::BadRequest
    }
}

/// The position of a key type in [`KeyType::ALL`], the order of the map.
fn type_index(key_type: KeyType) -> usize {
    match key_type {
        KeyType::Symmetric => 0,
        KeyType::Asymmetric => 1,
        KeyType::Mac => 2,
    }
}

/// The lifecycle of many keys, by (key type, name), in the order of
/// [`KeyType::ALL`] and then of the names' bytes. Holds no entry whose state
/// is the default (see [`KeyLifecycle::is_default`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifecycleMap {
    by_type: [BTreeMap<String, KeyLifecycle>; 3],
}

impl LifecycleMap {
    /// The lifecycle of a key; None: the default (never changed).
    pub fn get(&self, key_type: KeyType, name: &str) -> Option<&KeyLifecycle> {
        self.by_type[type_index(key_type)].get(name)
    }

    /// Replaces the lifecycle of a key, without merging (the default removes
    /// the entry). For state this node holds already; changes go through
    /// [`LifecycleMap::update`] or [`LifecycleMap::merge_key`] so that they
    /// follow the merge rules.
    pub fn set(&mut self, key_type: KeyType, name: &str, lifecycle: KeyLifecycle) {
        let map = &mut self.by_type[type_index(key_type)];
        if lifecycle.is_default() {
            map.remove(name);
        } else {
            map.insert(name.to_string(), lifecycle);
        }
    }

    /// Changes the lifecycle of a key in place (starting from the default);
    /// an entry left at the default is removed.
    pub fn update<R>(&mut self, key_type: KeyType, name: &str, change: impl FnOnce(&mut KeyLifecycle) -> R) -> R {
        let map = &mut self.by_type[type_index(key_type)];
        let mut lifecycle = map.remove(name).unwrap_or_default();
        let out = change(&mut lifecycle);
        if !lifecycle.is_default() {
            map.insert(name.to_string(), lifecycle);
        }
        out
    }

    /// Merges `other` into the lifecycle of a key; true when it changed.
    pub fn merge_key(&mut self, key_type: KeyType, name: &str, other: &KeyLifecycle) -> bool {
        if other.is_default() {
            return false;
        }
        let map = &mut self.by_type[type_index(key_type)];
        match map.get_mut(name) {
            Some(mine) => mine.merge(other),
            None => {
                map.insert(name.to_string(), other.clone());
                true
            }
        }
    }

    /// Merges `other` into this map; returns the keys whose lifecycle
    /// changed, in map order.
    pub fn merge(&mut self, other: &LifecycleMap) -> Vec<(KeyType, String)> {
        let mut changed = Vec::new();
        for (key_type, name, lifecycle) in other.iter() {
            if self.merge_key(key_type, name, lifecycle) {
                changed.push((key_type, name.to_string()));
            }
        }
        changed
    }

    /// Number of entries (keys whose lifecycle was ever changed).
    pub fn len(&self) -> usize {
        self.by_type.iter().map(BTreeMap::len).sum()
    }

    /// True when no key's lifecycle was ever changed.
    pub fn is_empty(&self) -> bool {
        self.by_type.iter().all(BTreeMap::is_empty)
    }

    /// The entries in map order.
    pub fn iter(&self) -> impl Iterator<Item = (KeyType, &str, &KeyLifecycle)> {
        KeyType::ALL
            .into_iter()
            .flat_map(move |t| self.by_type[type_index(t)].iter().map(move |(name, l)| (t, name.as_str(), l)))
    }

    /// Moves every register write dated after `now_ms` to `now_ms` (see
    /// [`KeyLifecycle::clamp_future`]); true when something moved. A peer
    /// that holds the unclamped write keeps it, so the two digests differ
    /// until its date has passed: for peers' state pass the clock plus the
    /// skew tolerated between nodes, so that only writes beyond it (a
    /// faulty clock, a crafted backup) are moved.
    pub fn clamp_future(&mut self, now_ms: i64) -> bool {
        let mut moved = false;
        for map in &mut self.by_type {
            for lifecycle in map.values_mut() {
                moved |= lifecycle.clamp_future(now_ms);
            }
        }
        moved
    }

    /// Order-independent digest: equal on two nodes exactly when they hold
    /// the same state. SHA-256 over the canonical encoding of every entry in
    /// map order, each entry prefix-free (strings length-prefixed, optional
    /// fields tagged); an empty map has [`EMPTY_DIGEST`], the SHA-256 of no
    /// bytes.
    pub fn digest(&self) -> [u8; 32] {
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let mut buffer = Vec::new();
        for (key_type, name, lifecycle) in self.iter() {
            buffer.clear();
            encode_entry(&mut buffer, key_type, name, lifecycle);
            context.update(&buffer);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(context.finish().as_ref());
        out
    }

    /// The wire form, in map order (deterministic).
    pub fn to_wire(&self) -> Vec<KeyLifecycleWire> {
        self.iter().map(|(key_type, name, lifecycle)| lifecycle.to_wire(key_type, name)).collect()
    }

    /// Reads the wire form from a peer or a backup, all or nothing; entries
    /// for one key are merged. `context` prefixes the field paths of errors
    /// (e.g. `lifecycle` gives `lifecycle[3].status.value`).
    pub fn from_wire(wire: &[KeyLifecycleWire], context: &str) -> Result<LifecycleMap, LifecycleError> {
        from_wire_limited(wire, context, MAX_LIFECYCLE_RECORDS)
    }
}

fn from_wire_limited(wire: &[KeyLifecycleWire], context: &str, max: usize) -> Result<LifecycleMap, LifecycleError> {
    if wire.len() > max {
        return Err(LifecycleError::TooManyEntries { field: context.to_string(), max });
    }
    let mut map = LifecycleMap::default();
    for (i, entry) in wire.iter().enumerate() {
        let (key_type, lifecycle) = KeyLifecycle::from_wire(entry, &format!("{context}[{i}]"))?;
        map.merge_key(key_type, &entry.name, &lifecycle);
    }
    Ok(map)
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    // Names are at most 256 bytes and node ids 128: the length fits.
    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn put_register<T>(out: &mut Vec<u8>, register: &Option<Lww<T>>, value: impl Fn(&mut Vec<u8>, &T)) {
    match register {
        None => out.push(0),
        Some(r) => {
            out.push(1);
            out.extend_from_slice(&r.at_ms.to_be_bytes());
            put_str(out, &r.by);
            value(out, &r.value);
        }
    }
}

/// The canonical encoding of one entry (see [`LifecycleMap::digest`]).
fn encode_entry(out: &mut Vec<u8>, key_type: KeyType, name: &str, lifecycle: &KeyLifecycle) {
    put_str(out, key_type.as_str());
    put_str(out, name);
    put_register(out, &lifecycle.status, |out, status| match status {
        KeyStatus::Enabled => out.push(0),
        KeyStatus::Disabled => out.push(1),
        KeyStatus::PendingDeletion { delete_at_ms } => {
            out.push(2);
            out.extend_from_slice(&delete_at_ms.to_be_bytes());
        }
    });
    match lifecycle.destroyed_at_ms {
        None => out.push(0),
        Some(at_ms) => {
            out.push(1);
            out.extend_from_slice(&at_ms.to_be_bytes());
        }
    }
    put_register(out, &lifecycle.min_decryption_version, |out, v| out.extend_from_slice(&v.to_be_bytes()));
    out.extend_from_slice(&lifecycle.min_available_version.to_be_bytes());
    put_register(out, &lifecycle.rotation_period_ms, |out, v| out.extend_from_slice(&v.to_be_bytes()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::option;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn reg<T>(at_ms: i64, by: &str, value: T) -> Option<Lww<T>> {
        Some(Lww { at_ms, by: by.into(), value })
    }

    fn with_status(at_ms: i64, by: &str, status: KeyStatus) -> KeyLifecycle {
        KeyLifecycle { status: reg(at_ms, by, status), ..KeyLifecycle::default() }
    }

    /// `a` merged with `b`, and whether `a` changed.
    fn join(a: &KeyLifecycle, b: &KeyLifecycle) -> (KeyLifecycle, bool) {
        let mut out = a.clone();
        let changed = out.merge(b);
        (out, changed)
    }

    /// Both merge orders agree; returns the result.
    fn both_orders(a: &KeyLifecycle, b: &KeyLifecycle) -> KeyLifecycle {
        let (ab, _) = join(a, b);
        let (ba, _) = join(b, a);
        assert_eq!(ab, ba);
        ab
    }

    const PENDING: KeyStatus = KeyStatus::PendingDeletion { delete_at_ms: 1_000 };

    #[test]
    fn a_later_cancel_beats_a_schedule_and_a_later_schedule_beats_a_cancel() {
        let scheduled = with_status(10, "node-a", PENDING);
        let cancelled = with_status(20, "node-b", KeyStatus::Disabled);
        assert_eq!(both_orders(&scheduled, &cancelled).effective(500), EffectiveState::Disabled);
        let rescheduled = with_status(30, "node-a", PENDING);
        let state = both_orders(&cancelled, &rescheduled);
        assert_eq!(state.effective(500), EffectiveState::PendingDeletion { delete_at_ms: 1_000 });
        assert_eq!(state.effective(1_000), EffectiveState::DeletionDue { delete_at_ms: 1_000 });
        assert_eq!(state.effective(999), EffectiveState::PendingDeletion { delete_at_ms: 1_000 });
    }

    #[test]
    fn destroyed_wins_over_a_later_enable_and_keeps_the_earliest_time() {
        let destroyed = KeyLifecycle { destroyed_at_ms: Some(100), ..with_status(10, "a", PENDING) };
        let enabled = with_status(200, "b", KeyStatus::Enabled);
        let state = both_orders(&destroyed, &enabled);
        assert_eq!(state.effective(300), EffectiveState::Destroyed { at_ms: 100 });
        assert_eq!(state.status.as_ref().unwrap().value, KeyStatus::Enabled, "the register still merges");
        let mut later = KeyLifecycle::default();
        assert!(later.destroy(150));
        assert!(!later.destroy(160), "a later record changes nothing");
        assert_eq!(both_orders(&state, &later).destroyed_at_ms, Some(100));
    }

    #[test]
    fn the_trim_only_grows() {
        let mut state = KeyLifecycle { min_available_version: 5, ..KeyLifecycle::default() };
        assert!(!state.merge(&KeyLifecycle { min_available_version: 3, ..KeyLifecycle::default() }));
        assert!(!state.trim(4));
        assert_eq!(state.min_available_version, 5);
        assert!(state.trim(6));
        assert_eq!(state.min_available_version(), 6);
        assert_eq!(KeyLifecycle::default().min_available_version(), 1);
    }

    #[test]
    fn ties_break_on_the_node_id_then_the_value() {
        let a = with_status(10, "node-a", KeyStatus::Enabled);
        let b = with_status(10, "node-b", KeyStatus::Enabled);
        assert_eq!(both_orders(&a, &b).status.unwrap().by, "node-b");
        let disabled = with_status(10, "node-a", KeyStatus::Disabled);
        assert_eq!(both_orders(&a, &disabled).effective(0), EffectiveState::Disabled);
        let pending = with_status(10, "node-a", PENDING);
        assert_eq!(
            both_orders(&disabled, &pending).effective(0),
            EffectiveState::PendingDeletion { delete_at_ms: 1_000 }
        );
        let later = with_status(10, "node-a", KeyStatus::PendingDeletion { delete_at_ms: 2_000 });
        assert_eq!(both_orders(&pending, &later).effective(0), EffectiveState::PendingDeletion { delete_at_ms: 2_000 });
        let period =
            |at, by: &str, value| KeyLifecycle { rotation_period_ms: reg(at, by, value), ..KeyLifecycle::default() };
        assert_eq!(both_orders(&period(5, "a", 9), &period(5, "a", 7)).rotation_period_ms(), 9);
        assert_eq!(both_orders(&period(6, "a", 0), &period(5, "b", 7)).rotation_period_ms(), 0, "0 turns it off");
        let min = |at, value| KeyLifecycle { min_decryption_version: reg(at, "a", value), ..KeyLifecycle::default() };
        assert_eq!(both_orders(&min(6, 2), &min(5, 4)).min_decryption_version(), 2, "it may be lowered");
        assert_eq!(min(1, 0).min_decryption_version(), 1);
    }

    #[test]
    fn local_writes_win_over_what_the_node_has_seen() {
        let mut state = with_status(5_000, "fast-clock", KeyStatus::Disabled);
        state.set_status(KeyStatus::Enabled, 4_000, "slow-clock");
        let status = state.status.as_ref().unwrap();
        assert_eq!((status.at_ms, status.value), (5_001, KeyStatus::Enabled));
        state.set_status(KeyStatus::Disabled, 9_000, "slow-clock");
        assert_eq!(state.status.as_ref().unwrap().at_ms, 9_000);
        let long = format!("{}\u{7}{}", "n".repeat(100), "é".repeat(40));
        state.set_min_decryption_version(2, 1, &long);
        let by = &state.min_decryption_version.as_ref().unwrap().by;
        assert!(by.len() <= MAX_NODE_ID_BYTES && by.len() >= MAX_NODE_ID_BYTES - 1 && !by.contains('\u{7}'));
        state.set_rotation_period_ms(86_400_000, 1, "n");
        let mut map = LifecycleMap::default();
        map.set(KeyType::Mac, "k", state.clone());
        let read = LifecycleMap::from_wire(&map.to_wire(), "lifecycle").unwrap();
        assert_eq!(read.get(KeyType::Mac, "k"), Some(&state), "local writes read back from the wire");
    }

    #[test]
    fn far_future_writes_are_clamped_but_not_the_tombstone_or_the_deadline() {
        let mut state = with_status(i64::MAX / 2, "x", KeyStatus::PendingDeletion { delete_at_ms: 9_000 });
        state.destroyed_at_ms = Some(8_000);
        state.rotation_period_ms = reg(10, "x", 5);
        let mut map = LifecycleMap::default();
        map.set(KeyType::Symmetric, "k", state);
        assert!(map.clamp_future(1_000));
        assert!(!map.clamp_future(1_000));
        let state = map.get(KeyType::Symmetric, "k").unwrap();
        assert_eq!(state.status.as_ref().unwrap().at_ms, 1_000);
        assert_eq!(state.status.as_ref().unwrap().value, KeyStatus::PendingDeletion { delete_at_ms: 9_000 });
        assert_eq!(state.rotation_period_ms.as_ref().unwrap().at_ms, 10);
        assert_eq!(state.destroyed_at_ms, Some(8_000));
        let mut later = with_status(2_000, "y", KeyStatus::Enabled);
        assert!(later.merge(state) && later.status.as_ref().unwrap().at_ms == 2_000, "a later write still wins");
    }

    #[test]
    fn the_map_holds_no_default_entry() {
        let mut map = LifecycleMap::default();
        assert!(map.is_empty() && KeyLifecycle::default().is_default());
        assert_eq!(map.digest(), EMPTY_DIGEST);
        assert!(!map.merge_key(KeyType::Symmetric, "k", &KeyLifecycle::default()));
        assert!(map.is_empty());
        assert!(!map.update(KeyType::Symmetric, "k", |l| l.trim(0)));
        assert!(map.is_empty());
        assert!(map.update(KeyType::Symmetric, "k", |l| l.trim(2)));
        assert_eq!(map.len(), 1);
        assert_ne!(map.digest(), EMPTY_DIGEST);
        map.set(KeyType::Symmetric, "k", KeyLifecycle::default());
        assert!(map.is_empty());
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"");
        assert_eq!(digest.as_ref(), EMPTY_DIGEST);
    }

    #[test]
    fn the_map_merge_names_the_changed_keys() {
        let mut a = LifecycleMap::default();
        a.set(KeyType::Symmetric, "k", with_status(10, "a", KeyStatus::Disabled));
        a.set(KeyType::Mac, "k", with_status(10, "a", KeyStatus::Disabled));
        let mut b = LifecycleMap::default();
        b.set(KeyType::Symmetric, "k", with_status(5, "b", KeyStatus::Enabled));
        b.set(KeyType::Mac, "k", with_status(20, "b", KeyStatus::Enabled));
        b.set(KeyType::Asymmetric, "k", with_status(1, "b", KeyStatus::Disabled));
        let changed = a.merge(&b);
        assert_eq!(changed, vec![(KeyType::Asymmetric, "k".to_string()), (KeyType::Mac, "k".to_string())]);
        assert!(a.merge(&b).is_empty());
        let types: Vec<KeyType> = a.iter().map(|(t, _, _)| t).collect();
        assert_eq!(types, KeyType::ALL.to_vec());
    }

    #[test]
    fn the_example_entry_reads_and_writes_back() {
        let text = json!([{
            "keyType": "SYMMETRIC", "name": "k",
            "status": {"at": "1700000000000", "by": "10.0.0.1", "value": "PENDING_DELETION", "deleteAt": "1700000300000"},
            "destroyedAt": "1700000300000",
            "minDecryptionVersion": {"at": "1700000000001", "by": "10.0.0.2", "value": 2},
            "minAvailableVersion": 2,
            "rotationPeriod": {"at": "1700000000002", "by": "10.0.0.3", "valueMs": "86400000"},
            "addedByANewerVersion": {"x": 1}
        }]);
        let wire: Vec<KeyLifecycleWire> = serde_json::from_value(text.clone()).unwrap();
        let map = LifecycleMap::from_wire(&wire, "lifecycle").unwrap();
        let state = map.get(KeyType::Symmetric, "k").unwrap();
        assert_eq!(state.effective(0), EffectiveState::Destroyed { at_ms: 1_700_000_300_000 });
        assert_eq!(
            state.status,
            reg(1_700_000_000_000, "10.0.0.1", KeyStatus::PendingDeletion { delete_at_ms: 1_700_000_300_000 })
        );
        assert_eq!(state.min_decryption_version(), 2);
        assert_eq!(state.min_available_version, 2);
        assert_eq!(state.rotation_period_ms(), 86_400_000);
        let mut expected = text;
        expected[0].as_object_mut().unwrap().remove("addedByANewerVersion");
        assert_eq!(serde_json::to_value(map.to_wire()).unwrap(), expected);
        let minimal: Vec<KeyLifecycleWire> = serde_json::from_value(json!([{"keyType": "MAC", "name": "m"}])).unwrap();
        assert!(LifecycleMap::from_wire(&minimal, "lifecycle").unwrap().is_empty(), "absent fields are defaults");
    }

    #[test]
    fn entries_for_one_key_are_merged() {
        let wire: Vec<KeyLifecycleWire> = serde_json::from_value(json!([
            {"keyType": "MAC", "name": "m", "status": {"at": 5, "by": "a", "value": "DISABLED"}, "minAvailableVersion": 3},
            {"keyType": "MAC", "name": "m", "status": {"at": 4, "by": "b", "value": "ENABLED"}, "minAvailableVersion": 2},
        ]))
        .unwrap();
        let map = LifecycleMap::from_wire(&wire, "lifecycle").unwrap();
        assert_eq!(map.len(), 1);
        let state = map.get(KeyType::Mac, "m").unwrap();
        assert_eq!((state.effective(0), state.min_available_version), (EffectiveState::Disabled, 3));
    }

    fn error_of(entry: Value) -> String {
        let wire: Vec<KeyLifecycleWire> =
            serde_json::from_value(json!([{"keyType": "SYMMETRIC", "name": "ok"}, entry])).unwrap();
        LifecycleMap::from_wire(&wire, "lifecycle").unwrap_err().to_string()
    }

    #[test]
    fn bad_entries_name_their_field() {
        let status = |value: Value| json!({"keyType": "SYMMETRIC", "name": "k", "status": value});
        assert_eq!(
            error_of(status(json!({"at": 1, "by": "n", "value": "FOO"}))),
            "lifecycle[1].status.value: unknown status \"FOO\""
        );
        assert_eq!(
            error_of(status(json!({"at": 1, "by": "n", "value": "PENDING_DELETION"}))),
            "lifecycle[1].status.deleteAt: is required with PENDING_DELETION"
        );
        assert_eq!(
            error_of(status(json!({"at": "-1", "by": "n", "value": "DISABLED"}))),
            format!("lifecycle[1].status.at: -1 is outside 0..={MAX_TIME_MS}")
        );
        assert_eq!(
            error_of(status(json!({"at": 1, "by": "x".repeat(129), "value": "DISABLED"}))),
            "lifecycle[1].status.by: is longer than 128 bytes"
        );
        assert_eq!(
            error_of(status(json!({"at": 1, "by": "a\nb", "value": "DISABLED"}))),
            "lifecycle[1].status.by: contains control characters"
        );
        assert_eq!(
            error_of(json!({"keyType": "symmetric", "name": "k"})),
            "lifecycle[1].keyType: unknown key type \"symmetric\""
        );
        assert_eq!(
            error_of(json!({"keyType": "MAC", "name": "a~b"})),
            "lifecycle[1].name: keyName contains control characters or '~'"
        );
        assert_eq!(error_of(json!({"keyType": "MAC"})), "lifecycle[1].name: keyName is required");
        assert_eq!(
            error_of(json!({"keyType": "MAC", "name": "k", "minAvailableVersion": 100_001})),
            "lifecycle[1].minAvailableVersion: 100001 is outside 0..=100000"
        );
        assert_eq!(
            error_of(
                json!({"keyType": "MAC", "name": "k", "minDecryptionVersion": {"at": 1, "by": "", "value": 5_000_000_000u64}})
            ),
            "lifecycle[1].minDecryptionVersion.value: 5000000000 is outside 0..=100000"
        );
        assert_eq!(
            error_of(json!({"keyType": "MAC", "name": "k", "rotationPeriod": {"at": 1, "by": "", "valueMs": "-5"}})),
            format!("lifecycle[1].rotationPeriod.valueMs: -5 is outside 0..={MAX_ROTATION_PERIOD_MS}")
        );
        assert_eq!(
            error_of(json!({"keyType": "MAC", "name": "k", "destroyedAt": i64::MAX.to_string()})),
            format!("lifecycle[1].destroyedAt: {} is outside 0..={MAX_TIME_MS}", i64::MAX)
        );
        let long = "\u{1b}".repeat(500);
        let quoted = error_of(json!({"keyType": long, "name": "k"}));
        assert!(quoted.len() < 500 && !quoted.contains('\u{1b}'), "input is bounded and escaped: {quoted}");
        let many = vec![KeyLifecycleWire::default(); 3];
        let error = from_wire_limited(&many, "lifecycle", 2).unwrap_err();
        assert_eq!(error.to_string(), "lifecycle: holds more than 2 entries");
        assert_eq!(error.field(), "lifecycle");
    }

    // ---- properties ----

    fn lww<T: std::fmt::Debug + Clone>(
        at_ms: impl Strategy<Value = i64>,
        by: impl Strategy<Value = String>,
        value: impl Strategy<Value = T>,
    ) -> impl Strategy<Value = Lww<T>> {
        (at_ms, by, value).prop_map(|(at_ms, by, value)| Lww { at_ms, by, value })
    }

    fn status(delete_at_ms: impl Strategy<Value = i64>) -> impl Strategy<Value = KeyStatus> {
        prop_oneof![
            Just(KeyStatus::Enabled),
            Just(KeyStatus::Disabled),
            delete_at_ms.prop_map(|delete_at_ms| KeyStatus::PendingDeletion { delete_at_ms }),
        ]
    }

    type Parts = (Option<Lww<KeyStatus>>, Option<i64>, Option<Lww<u32>>, u32, Option<Lww<u64>>);

    fn assemble(
        (status, destroyed_at_ms, min_decryption_version, min_available_version, rotation_period_ms): Parts,
    ) -> KeyLifecycle {
        KeyLifecycle { status, destroyed_at_ms, min_decryption_version, min_available_version, rotation_period_ms }
    }

    fn assemble_map(entries: Vec<(usize, String, KeyLifecycle)>) -> LifecycleMap {
        let mut map = LifecycleMap::default();
        for (t, name, lifecycle) in entries {
            map.merge_key(KeyType::ALL[t], &name, &lifecycle);
        }
        map
    }

    /// Small values, so that ties and equal fields are frequent.
    fn lifecycle() -> impl Strategy<Value = KeyLifecycle> {
        let by = || prop_oneof![Just("a".to_string()), Just("b".to_string())];
        (
            option::of(lww(0i64..4, by(), status(0i64..3))),
            option::of(0i64..4),
            option::of(lww(0i64..4, by(), 0u32..4)),
            0u32..4,
            option::of(lww(0i64..4, by(), 0u64..3)),
        )
            .prop_map(assemble)
    }

    fn map() -> impl Strategy<Value = LifecycleMap> {
        vec((0usize..3, "[ab]", lifecycle()), 0..6).prop_map(assemble_map)
    }

    fn merged_maps(parts: &[LifecycleMap]) -> LifecycleMap {
        let mut map = LifecycleMap::default();
        parts.iter().for_each(|p| {
            map.merge(p);
        });
        map
    }

    /// A deterministic shuffle from `seed`.
    fn shuffle<T>(items: &mut [T], seed: u64) {
        let mut x = seed | 1;
        for i in (1..items.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            items.swap(i, (x % (i as u64 + 1)) as usize);
        }
    }

    /// Valid values over their whole ranges, for the wire.
    fn wide_lifecycle() -> impl Strategy<Value = KeyLifecycle> {
        let by = || "\\PC{0,30}";
        (
            option::of(lww(0..=MAX_TIME_MS, by(), status(0..=MAX_TIME_MS))),
            option::of(0..=MAX_TIME_MS),
            option::of(lww(0..=MAX_TIME_MS, by(), 0..=MAX_VERSION)),
            0..=MAX_VERSION,
            option::of(lww(0..=MAX_TIME_MS, by(), 0..=MAX_ROTATION_PERIOD_MS)),
        )
            .prop_map(assemble)
    }

    fn wide_map() -> impl Strategy<Value = LifecycleMap> {
        vec((0usize..3, "[^~\\p{C}]{1,20}", wide_lifecycle()), 0..5).prop_map(assemble_map)
    }

    /// JSON in roughly the shape of the wire form, with hostile values.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop_oneof![
                Just("SYMMETRIC"),
                Just("MAC"),
                Just("ENABLED"),
                Just("DISABLED"),
                Just("PENDING_DELETION"),
                Just("-1"),
                Just("9223372036854775807"),
                Just("1700000000000"),
                Just("a~b"),
            ]
            .prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::from),
            (0u32..200_000).prop_map(Value::from),
        ];
        let key = prop_oneof![
            Just("keyType".to_string()),
            Just("name".to_string()),
            Just("status".to_string()),
            Just("at".to_string()),
            Just("by".to_string()),
            Just("value".to_string()),
            Just("deleteAt".to_string()),
            Just("destroyedAt".to_string()),
            Just("minDecryptionVersion".to_string()),
            Just("minAvailableVersion".to_string()),
            Just("rotationPeriod".to_string()),
            Just("valueMs".to_string()),
            "[a-z]{1,6}",
        ];
        leaf.prop_recursive(3, 48, 8, move |inner| {
            prop_oneof![
                vec(inner.clone(), 0..4).prop_map(Value::Array),
                vec((key.clone(), inner), 0..8).prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    /// Mostly valid, sometimes anything: a valid entry is likely, and so is
    /// each kind of error.
    fn mostly<T: std::fmt::Debug>(
        valid: impl Strategy<Value = T> + 'static,
        any: impl Strategy<Value = T> + 'static,
    ) -> BoxedStrategy<T> {
        prop_oneof![8 => valid, 1 => any].boxed()
    }

    /// Arbitrary field values in the wire structs themselves (past serde).
    fn hostile_wire() -> impl Strategy<Value = KeyLifecycleWire> {
        let key_type =
            mostly(prop_oneof![Just("SYMMETRIC"), Just("ASYMMETRIC"), Just("MAC")].prop_map(String::from), ".{0,20}");
        let name = mostly("[a-c]{1,2}", ".{0,300}");
        let by = || mostly("[a-z0-9.]{0,10}", ".{0,140}");
        let time = || mostly(0..=MAX_TIME_MS, any::<i64>()).prop_map(Int64);
        let status_value = mostly(
            prop_oneof![Just("ENABLED"), Just("DISABLED"), Just("PENDING_DELETION")].prop_map(String::from),
            ".{0,20}",
        );
        let version = || mostly(0..=u64::from(MAX_VERSION), any::<u64>());
        let period = mostly(0..=(MAX_ROTATION_PERIOD_MS as i64), any::<i64>());
        (
            key_type,
            name,
            option::of((time(), by(), status_value, mostly(option::of(time()), Just(None)))),
            option::of(time()),
            option::of((time(), by(), version())),
            version(),
            option::of((time(), by(), period)),
        )
            .prop_map(
                |(key_type, name, status, destroyed_at, min_decryption, min_available_version, period)| {
                    KeyLifecycleWire {
                        key_type,
                        name,
                        status: status.map(|(at, by, value, delete_at)| StatusRegisterWire {
                            at,
                            by,
                            value,
                            delete_at,
                        }),
                        destroyed_at,
                        min_decryption_version: min_decryption.map(|(at, by, value)| VersionRegisterWire {
                            at,
                            by,
                            value,
                        }),
                        min_available_version,
                        rotation_period: period.map(|(at, by, ms)| PeriodRegisterWire { at, by, value_ms: Int64(ms) }),
                    }
                },
            )
    }

    /// The JSON of a valid state with some fields replaced by arbitrary JSON.
    fn mutated_json() -> impl Strategy<Value = Value> {
        let field = prop_oneof![
            Just((None, "keyType")),
            Just((None, "name")),
            Just((None, "status")),
            Just((None, "destroyedAt")),
            Just((None, "minAvailableVersion")),
            Just((None, "minDecryptionVersion")),
            Just((None, "rotationPeriod")),
            Just((None, "newerField")),
            Just((Some("status"), "at")),
            Just((Some("status"), "by")),
            Just((Some("status"), "value")),
            Just((Some("status"), "deleteAt")),
            Just((Some("minDecryptionVersion"), "value")),
            Just((Some("rotationPeriod"), "valueMs")),
            Just((Some("rotationPeriod"), "newerField")),
        ];
        (wide_map(), vec((any::<prop::sample::Index>(), field, json_value()), 0..3)).prop_map(|(map, mutations)| {
            let mut json = serde_json::to_value(map.to_wire()).unwrap();
            let entries = json.as_array_mut().unwrap();
            let count = entries.len();
            if count == 0 {
                return json;
            }
            for (index, (parent, name), value) in mutations {
                let entry = &mut entries[index.index(count)];
                let target = match parent {
                    None => Some(entry),
                    Some(parent) => entry.get_mut(parent),
                };
                if let Some(Value::Object(object)) = target {
                    object.insert(name.to_string(), value);
                }
            }
            json
        })
    }

    proptest! {
        /// The merge of two lifecycles is commutative, associative and
        /// idempotent, and says truly whether it changed anything.
        #[test]
        fn lifecycle_merge_is_a_join(a in lifecycle(), b in lifecycle(), c in lifecycle()) {
            let (ab, changed) = join(&a, &b);
            prop_assert_eq!(changed, ab != a);
            prop_assert_eq!(&ab, &join(&b, &a).0);
            prop_assert_eq!(join(&ab, &c).0, join(&a, &join(&b, &c).0).0);
            let (aa, changed) = join(&a, &a);
            prop_assert!(!changed);
            prop_assert_eq!(&aa, &a);
            prop_assert_eq!(join(&a, &KeyLifecycle::default()), (a.clone(), false));
            prop_assert!(ab.min_available_version >= a.min_available_version.max(b.min_available_version));
        }

        /// A destruction survives every merge order, with the earliest time.
        #[test]
        fn destroyed_never_disappears(mut parts in vec(lifecycle(), 1..8), seed in any::<u64>()) {
            let earliest = parts.iter().filter_map(|p| p.destroyed_at_ms).min();
            shuffle(&mut parts, seed);
            let mut state = KeyLifecycle::default();
            for part in &parts {
                state.merge(part);
                if let Some(at_ms) = state.destroyed_at_ms {
                    prop_assert_eq!(state.effective(i64::MAX), EffectiveState::Destroyed { at_ms });
                }
            }
            prop_assert_eq!(state.destroyed_at_ms, earliest);
        }

        /// Maps that receive the same states in any order, any grouping and
        /// with repeats end up equal, with equal digests.
        #[test]
        fn map_merge_is_a_join(mut parts in vec(map(), 1..8), seed in any::<u64>()) {
            let forward = merged_maps(&parts);
            let (left, right) = parts.split_at(parts.len() / 2);
            let mut grouped = merged_maps(left);
            grouped.merge(&merged_maps(right));
            prop_assert_eq!(&grouped, &forward);
            shuffle(&mut parts, seed);
            let shuffled = merged_maps(&parts);
            prop_assert_eq!(&shuffled, &forward);
            prop_assert_eq!(shuffled.digest(), forward.digest());
            let mut twice = forward.clone();
            prop_assert!(twice.merge(&forward).is_empty());
            prop_assert_eq!(&twice, &forward);
            prop_assert!(forward.iter().all(|(_, _, l)| !l.is_default()));
        }

        /// The changed keys a map merge names are exactly those that differ.
        #[test]
        fn map_merge_names_exactly_the_changed_keys(a in map(), b in map()) {
            let mut merged = a.clone();
            let changed = merged.merge(&b);
            let differing: Vec<(KeyType, String)> = merged
                .iter()
                .filter(|(t, name, l)| a.get(*t, name) != Some(*l))
                .map(|(t, name, _)| (t, name.to_string()))
                .collect();
            prop_assert_eq!(changed, differing);
            prop_assert_eq!(merged == a, merged.digest() == a.digest());
        }

        /// The wire form reads back exactly, through JSON text.
        #[test]
        fn wire_round_trips(map in wide_map()) {
            let wire = map.to_wire();
            let text = serde_json::to_string(&wire).unwrap();
            let parsed: Vec<KeyLifecycleWire> = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&parsed, &wire);
            let read = LifecycleMap::from_wire(&parsed, "lifecycle").unwrap();
            prop_assert_eq!(&read, &map);
            prop_assert_eq!(read.digest(), map.digest());
        }

        /// Arbitrary JSON never panics the reader; what it accepts writes
        /// back and reads again unchanged.
        #[test]
        fn from_wire_never_panics_on_json(
            json in prop_oneof![vec(json_value(), 0..4).prop_map(Value::Array), mutated_json()],
        ) {
            if let Ok(wire) = serde_json::from_value::<Vec<KeyLifecycleWire>>(json) {
                if let Ok(map) = LifecycleMap::from_wire(&wire, "lifecycle") {
                    prop_assert_eq!(LifecycleMap::from_wire(&map.to_wire(), "lifecycle").unwrap(), map);
                }
            }
        }

        /// Arbitrary field values never panic the reader either.
        #[test]
        fn from_wire_never_panics_on_fields(wire in vec(hostile_wire(), 0..4), now in any::<i64>()) {
            match LifecycleMap::from_wire(&wire, "lifecycle") {
                Ok(mut map) => {
                    prop_assert_eq!(LifecycleMap::from_wire(&map.to_wire(), "lifecycle").unwrap(), map.clone());
                    map.clamp_future(now);
                    for (_, _, l) in map.iter() {
                        let _ = l.effective(now);
                    }
                }
                Err(error) => prop_assert!(error.to_string().starts_with(error.field())),
            }
        }
    }
}
