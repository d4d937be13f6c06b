//! The keystore's side of the key lifecycle: each [`KeyEntry`] carries its
//! [`KeyLifecycle`] (merged with the rules of [`crate::lifecycle`]), and
//! every change of it is applied with the material at once, in the same
//! snapshot swap: a destroyed key or a trimmed version loses its material
//! (zeroized when the last request using it ends), and material that
//! arrives later for it, from a peer or a backup, is dropped.

use super::{Inventory, KeyEntry, KeyType, Keystore};
use crate::lifecycle::{KeyLifecycle, LifecycleMap};
use std::sync::Arc;

/// What merging lifecycle state changed.
#[derive(Debug, Default)]
pub struct LifecycleMerge {
    /// Keys whose lifecycle changed here.
    pub changed: Vec<(KeyType, String)>,
    /// `TYPE/name` of keys whose material this merge destroyed (all of it,
    /// or trimmed versions).
    pub destroyed: Vec<String>,
}

impl KeyEntry {
    /// The key's lifecycle (default: enabled, never changed).
    pub fn lifecycle(&self) -> &KeyLifecycle {
        &self.lifecycle
    }

    /// True when `version`'s material may not be held: the key was
    /// destroyed, or the version trimmed.
    pub fn forbids(&self, version: u32) -> bool {
        self.lifecycle.forbids_material_of(version)
    }

    /// Drops the material the lifecycle forbids; true when some was held.
    pub(super) fn enforce(&mut self) -> bool {
        let before = self.versions.len();
        let lifecycle = &self.lifecycle;
        self.versions.retain(|version, _| !lifecycle.forbids_material_of(*version));
        // The newest held, as if the dropped material had never arrived:
        // the same whatever came first, the records or the lifecycle.
        self.newest = self.versions.keys().copied().max().unwrap_or(0);
        self.versions.len() != before
    }
}

impl Inventory {
    /// The lifecycle of every key that has one other than the default.
    pub fn lifecycle_map(&self) -> &LifecycleMap {
        self.lifecycle.get_or_init(|| {
            let mut map = LifecycleMap::default();
            for key_type in KeyType::ALL {
                for (name, entry) in &self.by_type[key_type.index()] {
                    if !entry.lifecycle.is_default() {
                        map.set(key_type, name, entry.lifecycle.clone());
                    }
                }
            }
            map
        })
    }

    /// The lifecycle of the keys `keys` (to push after a change).
    pub fn lifecycle_of(&self, keys: &[(KeyType, String)]) -> LifecycleMap {
        let mut map = LifecycleMap::default();
        for (key_type, name) in keys {
            if let Some(entry) = self.entry(*key_type, name) {
                map.set(*key_type, name, entry.lifecycle.clone());
            }
        }
        map
    }

    /// True when some key has lifecycle state (a state change, a rotation
    /// schedule, a tombstone).
    pub fn has_lifecycle(&self) -> bool {
        !self.lifecycle_map().is_empty()
    }
}

impl Keystore {
    /// Merges lifecycle state from a peer or a backup, and drops the
    /// material it destroys. Applied at once.
    pub fn merge_lifecycle(&self, incoming: &LifecycleMap) -> LifecycleMerge {
        self.merge_lifecycle_where(incoming, |_| true)
    }

    /// Merges the lifecycle state of keys that have no entry here (a
    /// backup's, see admin/restorebackup): a restore never changes the
    /// state of a key this node knows.
    pub fn merge_lifecycle_of_new_keys(&self, incoming: &LifecycleMap) -> LifecycleMerge {
        self.merge_lifecycle_where(incoming, |existing| existing.is_none())
    }

    /// Merges the entries of `incoming` whose key's entry here passes `take`.
    fn merge_lifecycle_where(
        &self,
        incoming: &LifecycleMap,
        take: impl Fn(Option<&KeyEntry>) -> bool,
    ) -> LifecycleMerge {
        let _guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.current.load_full();
        let mut next = Inventory::clone(&current);
        let mut report = LifecycleMerge::default();
        for (key_type, name, lifecycle) in incoming.iter() {
            if !take(current.by_type[key_type.index()].get(name).map(|e| e.as_ref())) {
                continue;
            }
            let map = &mut next.by_type[key_type.index()];
            let entry = Arc::make_mut(map.entry(name.to_string()).or_default());
            if entry.lifecycle.merge(lifecycle) {
                report.changed.push((key_type, name.to_string()));
                if entry.enforce() {
                    report.destroyed.push(format!("{}/{}", key_type.as_str(), name));
                }
            }
        }
        if !report.changed.is_empty() {
            self.current.store(Arc::new(next));
        }
        report
    }

    /// Changes the lifecycle of the existing key `key_type`/`name` with
    /// `change`, which sees the entry as it is and may refuse; answers the
    /// new lifecycle (to push to peers) and whether material was destroyed.
    pub fn change_lifecycle<E>(
        &self,
        key_type: KeyType,
        name: &str,
        change: impl FnOnce(&KeyEntry, &mut KeyLifecycle) -> Result<(), E>,
    ) -> Result<Option<(KeyLifecycle, bool)>, E> {
        let _guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.current.load_full();
        let Some(entry) = current.by_type[key_type.index()].get(name) else {
            return Ok(None);
        };
        let mut lifecycle = entry.lifecycle.clone();
        change(entry, &mut lifecycle)?;
        let mut entry = KeyEntry::clone(entry);
        entry.lifecycle.merge(&lifecycle);
        let destroyed = entry.enforce();
        let lifecycle = entry.lifecycle.clone();
        let mut next = Inventory::clone(&current);
        next.by_type[key_type.index()].insert(name.to_string(), Arc::new(entry));
        self.current.store(Arc::new(next));
        Ok(Some((lifecycle, destroyed)))
    }
}
