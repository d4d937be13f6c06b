//! The key inventory. Readers on the hot path take no lock: they load an
//! atomically swapped snapshot. Writers serialize on one mutex, copy the
//! snapshot (key material is shared through `Arc`, not copied), change the
//! copy and swap it in, so a change is applied entirely or not at all.

use crate::crypto::keys::{AsymmetricKey, MacKey, SymmetricKey};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// The three key namespaces of the API; a name is unique within its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// AES, DES and 3DES keys.
    Symmetric,
    /// RSA, EC and Ed25519 key pairs.
    Asymmetric,
    /// HMAC keys.
    Mac,
}

impl KeyType {
    /// All types, in the order listings use.
    pub const ALL: [KeyType; 3] = [KeyType::Symmetric, KeyType::Asymmetric, KeyType::Mac];

    /// Parses the API's `keyType` (`SYMMETRIC`, `ASYMMETRIC`, `MAC`).
    pub fn parse(text: &str) -> Option<KeyType> {
        match text {
            "SYMMETRIC" => Some(KeyType::Symmetric),
            "ASYMMETRIC" => Some(KeyType::Asymmetric),
            "MAC" => Some(KeyType::Mac),
            _ => None,
        }
    }

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Symmetric => "SYMMETRIC",
            KeyType::Asymmetric => "ASYMMETRIC",
            KeyType::Mac => "MAC",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Key material of one of the three types. Zeroized on drop by the key types.
/// Asymmetric keys are boxed: they are ~30× larger than the others, and an
/// inventory of small keys should not pay for them in every record.
pub enum KeyMaterial {
    /// A symmetric key.
    Symmetric(SymmetricKey),
    /// A private key with its public key.
    Asymmetric(Box<AsymmetricKey>),
    /// An HMAC key.
    Mac(MacKey),
}

impl KeyMaterial {
    /// The namespace this material lives in.
    pub fn key_type(&self) -> KeyType {
        match self {
            KeyMaterial::Symmetric(_) => KeyType::Symmetric,
            KeyMaterial::Asymmetric(_) => KeyType::Asymmetric,
            KeyMaterial::Mac(_) => KeyType::Mac,
        }
    }

    /// The symmetric key, if this is one.
    pub fn symmetric(&self) -> Option<&SymmetricKey> {
        match self {
            KeyMaterial::Symmetric(k) => Some(k),
            _ => None,
        }
    }

    /// The asymmetric key, if this is one.
    pub fn asymmetric(&self) -> Option<&AsymmetricKey> {
        match self {
            KeyMaterial::Asymmetric(k) => Some(k),
            _ => None,
        }
    }

    /// The MAC key, if this is one.
    pub fn mac(&self) -> Option<&MacKey> {
        match self {
            KeyMaterial::Mac(k) => Some(k),
            _ => None,
        }
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "KeyMaterial({})", self.key_type().as_str())
    }
}

/// Key names: 1 to 256 bytes, no control characters and no `~` (which
/// marks the alias of a conflict version); they appear in logs and listings.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > 256 {
        return Err(NameError::TooLong);
    }
    if name.chars().any(|c| c.is_control() || c == '~') {
        return Err(NameError::Forbidden);
    }
    Ok(())
}

/// Why a key name is not acceptable (the name itself is not repeated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// No name given.
    #[error("keyName is required")]
    Empty,
    /// Over 256 bytes.
    #[error("keyName is longer than 256 bytes")]
    TooLong,
    /// A control character or the alias marker `~`.
    #[error("keyName contains control characters or '~'")]
    Forbidden,
}

impl crate::error::Classify for NameError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::BadRequest
    }
}

/// Fingerprint of key material: HMAC-SHA256 under a key derived from the
/// cluster's RPC key, so that equal material has equal fingerprints on every
/// node while the fingerprint reveals nothing (not even of a 56-bit DES key)
/// to anyone without the RPC key.
pub type Fingerprint = [u8; 32];

/// Where a record's material came from, as far as the cluster knows. It
/// ranks first when versions of a name compete: a backup's `createdAt` is
/// whatever the backup says, so a restored version must never outrank one
/// that was generated or injected anywhere in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// Generated or injected on a node of the cluster (or received from a
    /// peer that does not mark origins).
    Created,
    /// Restored from a backup, and not known to be created anywhere.
    Restored,
}

/// A named key with its creation time.
#[derive(Debug)]
pub struct KeyRecord {
    /// The name clients use (unique per type).
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Generated/injected or restored (see [`Origin`]).
    pub origin: Origin,
    /// The key itself.
    pub material: KeyMaterial,
    /// Set by the keystore when the record is stored.
    pub fingerprint: Fingerprint,
}

impl KeyRecord {
    /// A record of created material to hand to [`Keystore::insert`] or
    /// [`Keystore::merge`] (set `origin` for restored material).
    pub fn new(name: String, created_at_ms: i64, material: KeyMaterial) -> Self {
        KeyRecord { name, created_at_ms, origin: Origin::Created, material, fingerprint: [0; 32] }
    }

    /// The order of versions of one name: created before restored, then
    /// older before newer, then by fingerprint. The first is active.
    fn rank(&self) -> (Origin, i64, Fingerprint) {
        (self.origin, self.created_at_ms, self.fingerprint)
    }

    /// The name under which a losing version of a conflict stays usable:
    /// `name~` and the first 12 hex digits of its fingerprint.
    pub fn conflict_alias(&self) -> String {
        format!("{}~{}", self.name, hex_prefix(&self.fingerprint))
    }
}

fn hex_prefix(fingerprint: &Fingerprint) -> String {
    fingerprint[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// All versions of one (type, name): more than one only after a conflict.
/// Sorted by [`KeyRecord::rank`] (origin, creation time, fingerprint): the
/// first is the one new operations use, on every node alike.
#[derive(Clone, Default)]
struct Versions(Vec<Arc<KeyRecord>>);

impl Versions {
    fn active(&self) -> &Arc<KeyRecord> {
        &self.0[0]
    }

    fn position(&self, fingerprint: &Fingerprint) -> Option<usize> {
        self.0.iter().position(|r| &r.fingerprint == fingerprint)
    }

    fn add(&mut self, record: Arc<KeyRecord>) {
        self.0.push(record);
        self.0.sort_by_key(|a| a.rank());
    }

    /// A restored version that a created one outranks.
    fn restored_outranked(&self) -> bool {
        self.active().origin == Origin::Created && self.0.iter().any(|r| r.origin == Origin::Restored)
    }
}

/// One immutable snapshot of all keys.
#[derive(Default)]
pub struct Inventory {
    by_type: [HashMap<String, Versions>; 3],
    /// Computed once per snapshot (sync and the status page ask often).
    digest: std::sync::OnceLock<[u8; 32]>,
}

impl Clone for Inventory {
    /// A copy to change: the digest is not carried over.
    fn clone(&self) -> Self {
        Inventory { by_type: self.by_type.clone(), digest: std::sync::OnceLock::new() }
    }
}

impl Inventory {
    /// The key `name` of `key_type`: the active version, or a losing version
    /// of a conflict by its alias `name~fingerprint-prefix`.
    pub fn get(&self, key_type: KeyType, name: &str) -> Option<&Arc<KeyRecord>> {
        let map = &self.by_type[key_type.index()];
        if let Some(versions) = map.get(name) {
            return Some(versions.active());
        }
        let (base, prefix) = name.rsplit_once('~')?;
        let versions = map.get(base)?;
        versions.0.iter().skip(1).find(|r| hex_prefix(&r.fingerprint) == prefix)
    }

    /// The keys of one type sorted by name, with losing conflict versions
    /// listed under their aliases.
    pub fn sorted(&self, key_type: KeyType) -> Vec<(String, &Arc<KeyRecord>)> {
        let mut keys: Vec<(String, &Arc<KeyRecord>)> = Vec::new();
        for (name, versions) in &self.by_type[key_type.index()] {
            keys.push((name.clone(), versions.active()));
            keys.extend(versions.0.iter().skip(1).map(|r| (r.conflict_alias(), r)));
        }
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys
    }

    /// Every stored record (all versions), in a stable order.
    pub fn records(&self) -> Vec<&Arc<KeyRecord>> {
        let mut out: Vec<&Arc<KeyRecord>> =
            self.by_type.iter().flat_map(|m| m.values().flat_map(|v| v.0.iter())).collect();
        out.sort_by(|a, b| {
            (a.material.key_type().index(), &a.name, a.fingerprint).cmp(&(
                b.material.key_type().index(),
                &b.name,
                b.fingerprint,
            ))
        });
        out
    }

    /// The record of `key_type`/`name` with exactly this fingerprint.
    pub fn version(&self, key_type: KeyType, name: &str, fingerprint: &Fingerprint) -> Option<&Arc<KeyRecord>> {
        self.by_type[key_type.index()].get(name)?.0.iter().find(|r| &r.fingerprint == fingerprint)
    }

    /// Number of stored records (all versions).
    pub fn len(&self) -> usize {
        self.by_type.iter().map(|m| m.values().map(|v| v.0.len()).sum::<usize>()).sum()
    }

    /// True when there is no key at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Order-independent digest of the whole record set: two nodes with the
    /// same digest hold the same keys, so anti-entropy can stop there.
    pub fn digest(&self) -> [u8; 32] {
        *self.digest.get_or_init(|| self.compute_digest())
    }

    fn compute_digest(&self) -> [u8; 32] {
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for record in self.records() {
            context.update(&[record.material.key_type().index() as u8]);
            context.update(&(record.name.len() as u32).to_be_bytes());
            context.update(record.name.as_bytes());
            context.update(&record.created_at_ms.to_be_bytes());
            context.update(&record.fingerprint);
            // Only restored records add a byte: a set without any digests
            // as before origins existed (peers of an older version agree).
            if record.origin == Origin::Restored {
                context.update(b"R");
            }
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(context.finish().as_ref());
        out
    }
}

/// Why an insert did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum InsertError {
    /// A key of that type and name exists already.
    Exists,
}

/// What a merge does with a name that arrives with different material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// Keep every version (node-to-node sync: concurrent creation on two
    /// nodes). The first by (creation time, fingerprint) is active on every
    /// node; the others stay usable as `name~fingerprint-prefix`.
    KeepBoth,
    /// Keep the existing key and leave the incoming one out, reported
    /// (backup restore: a restore never changes which key a name means).
    KeepExisting,
}

/// What a merge did.
#[derive(Debug, Default)]
pub struct MergeReport {
    /// Records that were new here (including new conflict versions).
    pub added: usize,
    /// Records that were here already with the same material.
    pub unchanged: usize,
    /// `TYPE/name` of names that arrived with different material (kept or
    /// left out as the [`ConflictPolicy`] says).
    pub conflicts: Vec<String>,
    /// Records that were here with the same material but were replaced by
    /// a higher-ranked copy (created rather than restored, or older).
    pub updated: usize,
    /// `TYPE/name` of conflicts where a restored version is now outranked
    /// by a generated or injected one (subset of `conflicts`).
    pub restored_outranked: Vec<String>,
    /// The records this merge added or updated, for pushing on to peers.
    pub new_records: Vec<Arc<KeyRecord>>,
}

/// The node's key inventory.
#[derive(Default)]
pub struct Keystore {
    current: ArcSwap<Inventory>,
    writer: Mutex<()>,
    fingerprint_key: std::sync::OnceLock<aws_lc_rs::hmac::Key>,
}

impl Keystore {
    /// An empty keystore.
    pub fn new() -> Self {
        Keystore::default()
    }

    /// Derives the fingerprint key from the cluster secret (the RPC private
    /// key, PKCS#8); set once at bootstrap, before any key is stored.
    pub fn set_fingerprint_secret(&self, cluster_secret: &[u8]) {
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        context.update(b"vssm key fingerprint v1\0");
        context.update(cluster_secret);
        let _ = self
            .fingerprint_key
            .set(aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, context.finish().as_ref()));
    }

    /// The fingerprint of `material` (see [`Fingerprint`]).
    pub fn fingerprint(&self, material: &KeyMaterial) -> Fingerprint {
        static UNSET: std::sync::OnceLock<aws_lc_rs::hmac::Key> = std::sync::OnceLock::new();
        let key = self.fingerprint_key.get().unwrap_or_else(|| {
            UNSET.get_or_init(|| aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"vssm unbootstrapped"))
        });
        let mut context = aws_lc_rs::hmac::Context::with_key(key);
        context.update(&[material.key_type().index() as u8]);
        match material {
            KeyMaterial::Symmetric(k) => context.update(k.as_bytes()),
            KeyMaterial::Mac(k) => context.update(k.as_bytes()),
            KeyMaterial::Asymmetric(k) => context.update(k.pkcs8_der()),
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(context.sign().as_ref());
        out
    }

    /// The current snapshot (lock-free).
    pub fn snapshot(&self) -> Arc<Inventory> {
        self.current.load_full()
    }

    /// The key `name` of `key_type` (lock-free; the hot path of every crypto call).
    pub fn get(&self, key_type: KeyType, name: &str) -> Option<Arc<KeyRecord>> {
        self.current.load().get(key_type, name).cloned()
    }

    /// Adds a new key; refuses a name that exists in that type.
    pub fn insert(&self, mut record: KeyRecord) -> Result<Arc<KeyRecord>, InsertError> {
        record.fingerprint = self.fingerprint(&record.material);
        let _guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.current.load();
        let key_type = record.material.key_type();
        if current.by_type[key_type.index()].contains_key(&record.name) {
            return Err(InsertError::Exists);
        }
        let record = Arc::new(record);
        let mut next = Inventory::clone(&current);
        next.by_type[key_type.index()].insert(record.name.clone(), Versions(vec![Arc::clone(&record)]));
        self.current.store(Arc::new(next));
        Ok(record)
    }

    /// Merges records (from a backup or a peer). Key material is never
    /// replaced or dropped: identical records are one, and a name that
    /// arrives with different material is a conflict handled by `policy`.
    /// With [`ConflictPolicy::KeepBoth`] the result is a pure function of
    /// the record sets (commutative, associative, idempotent): copies of the
    /// same material keep the higher-ranked (origin, creation time), and
    /// versions of a name are ordered by [`KeyRecord::rank`].
    /// Applied at once: readers see all of it or none.
    pub fn merge(&self, records: Vec<KeyRecord>, policy: ConflictPolicy) -> MergeReport {
        let records: Vec<KeyRecord> = records
            .into_iter()
            .map(|mut r| {
                r.fingerprint = self.fingerprint(&r.material);
                r
            })
            .collect();
        let _guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let before = self.current.load_full();
        let mut next = Inventory::clone(&before);
        let mut report = MergeReport::default();
        let mut conflicts = std::collections::HashSet::new();
        for record in records {
            let key_type = record.material.key_type();
            let versions = next.by_type[key_type.index()].entry(record.name.clone()).or_default();
            if let Some(i) = versions.position(&record.fingerprint) {
                // A restore never reorders what is here; a peer's better copy
                // (created rather than restored, or older) wins everywhere.
                if policy == ConflictPolicy::KeepBoth && record.rank() < versions.0[i].rank() {
                    let record = Arc::new(record);
                    versions.0.remove(i);
                    versions.add(Arc::clone(&record));
                    report.updated += 1;
                    report.new_records.push(record);
                } else {
                    report.unchanged += 1;
                }
                continue;
            }
            if !versions.0.is_empty() {
                let label = format!("{}/{}", key_type.as_str(), record.name);
                if conflicts.insert(label.clone()) {
                    report.conflicts.push(label);
                }
                // KeepExisting protects what the name meant before this
                // merge; versions that arrive together (a backup of a
                // conflict) are all kept, as on the cluster they came from.
                let existed_before = before.by_type[key_type.index()].contains_key(&record.name);
                if policy == ConflictPolicy::KeepExisting && existed_before {
                    continue;
                }
            }
            let record = Arc::new(record);
            versions.add(Arc::clone(&record));
            report.added += 1;
            report.new_records.push(record);
        }
        for label in &report.conflicts {
            let outranked = label.split_once('/').is_some_and(|(t, name)| {
                KeyType::parse(t)
                    .and_then(|t| next.by_type[t.index()].get(name))
                    .is_some_and(Versions::restored_outranked)
            });
            if outranked {
                report.restored_outranked.push(label.clone());
            }
        }
        if report.added + report.updated > 0 {
            self.current.store(Arc::new(next));
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(name: &str, byte: u8) -> KeyRecord {
        KeyRecord::new(name.into(), 1, KeyMaterial::Symmetric(SymmetricKey::from_bytes(&[byte; 16]).unwrap()))
    }

    fn mac(name: &str, byte: u8) -> KeyRecord {
        KeyRecord::new(name.into(), 1, KeyMaterial::Mac(MacKey::from_bytes(&[byte; 32]).unwrap()))
    }

    #[test]
    fn names_are_unique_per_type_only() {
        let ks = Keystore::new();
        ks.insert(sym("a", 1)).unwrap();
        assert_eq!(ks.insert(sym("a", 2)).unwrap_err(), InsertError::Exists);
        ks.insert(mac("a", 1)).unwrap();
        assert_eq!(ks.snapshot().len(), 2);
        assert!(ks.get(KeyType::Asymmetric, "a").is_none());
    }

    fn bytes_of(record: &KeyRecord) -> Vec<u8> {
        record.material.symmetric().unwrap().as_bytes().to_vec()
    }

    #[test]
    fn merge_keeps_every_version_and_resolves_conflicts_alike_everywhere() {
        let a = Keystore::new();
        let b = Keystore::new();
        a.insert(sym("k", 1)).unwrap();
        b.insert(sym("k", 9)).unwrap();
        let report_a = a.merge(vec![sym("k", 9), sym("k", 1), sym("other", 2), mac("m", 3)], ConflictPolicy::KeepBoth);
        assert_eq!(report_a.added, 3);
        assert_eq!(report_a.unchanged, 1);
        assert_eq!(report_a.conflicts, vec!["SYMMETRIC/k".to_string()]);
        b.merge(vec![sym("k", 1), sym("other", 2), mac("m", 3)], ConflictPolicy::KeepBoth);
        // Same record set, same digest, same active version, whatever the order.
        assert_eq!(a.snapshot().digest(), b.snapshot().digest());
        let active_a = a.get(KeyType::Symmetric, "k").unwrap();
        let active_b = b.get(KeyType::Symmetric, "k").unwrap();
        assert_eq!(bytes_of(&active_a), bytes_of(&active_b));
        // The other version stays usable under its alias.
        let listing = a.snapshot();
        let names: Vec<String> = listing.sorted(KeyType::Symmetric).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        let alias = names.iter().find(|n| n.starts_with("k~")).unwrap();
        let loser = a.get(KeyType::Symmetric, alias).unwrap();
        assert_ne!(bytes_of(&loser), bytes_of(&active_a));
    }

    #[test]
    fn keep_existing_never_changes_what_a_name_means() {
        let ks = Keystore::new();
        ks.insert(sym("k", 1)).unwrap();
        let mut older = sym("k", 9);
        older.created_at_ms = 0;
        let report = ks.merge(vec![older, sym("new", 2)], ConflictPolicy::KeepExisting);
        assert_eq!(report.added, 1);
        assert_eq!(report.conflicts, vec!["SYMMETRIC/k".to_string()]);
        assert_eq!(bytes_of(&ks.get(KeyType::Symmetric, "k").unwrap()), vec![1u8; 16]);
        assert_eq!(ks.snapshot().len(), 2);
    }

    #[test]
    fn a_restored_conflict_keeps_both_versions_on_a_node_without_the_name() {
        let ks = Keystore::new();
        let report = ks.merge(vec![sym("k", 1), sym("k", 9)], ConflictPolicy::KeepExisting);
        assert_eq!(report.added, 2);
        assert_eq!(ks.snapshot().len(), 2);
    }

    /// (name, material byte, createdAt, origin) of the test records.
    type Spec = (&'static str, u8, i64, Origin);

    fn record(spec: &Spec) -> KeyRecord {
        let mut r = sym(spec.0, spec.1);
        r.created_at_ms = spec.2;
        r.origin = spec.3;
        r
    }

    /// Every listed name with the material byte, createdAt and origin behind it.
    type Listing = Vec<(String, Vec<u8>, i64, Origin)>;

    /// Everything a node's state means: every version with its rank, and
    /// which one each name uses.
    fn state(ks: &Keystore) -> (Listing, [u8; 32]) {
        let snapshot = ks.snapshot();
        let listed = snapshot
            .sorted(KeyType::Symmetric)
            .into_iter()
            .map(|(name, r)| (name, bytes_of(r), r.created_at_ms, r.origin))
            .collect();
        (listed, snapshot.digest())
    }

    fn merged(batches: &[Vec<Spec>]) -> Keystore {
        let ks = Keystore::new();
        for batch in batches {
            ks.merge(batch.iter().map(record).collect(), ConflictPolicy::KeepBoth);
        }
        ks
    }

    /// The takeover of issue 8 item 6 and its neighbours: a crafted restored
    /// `payments` with createdAt=1, the real one, a copy of the real one
    /// restored from an old backup, a concurrent creation elsewhere, and the
    /// same material injected twice with different times.
    const SPECS: [Spec; 6] = [
        ("payments", 66, 1, Origin::Restored),
        ("payments", 1, 1000, Origin::Created),
        ("payments", 1, 500, Origin::Restored),
        ("payments", 2, 2000, Origin::Created),
        ("other", 3, 10, Origin::Created),
        ("other", 3, 5, Origin::Created),
    ];

    fn permutations(items: &[Spec]) -> Vec<Vec<Spec>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut tail in permutations(&rest) {
                tail.insert(0, first);
                out.push(tail);
            }
        }
        out
    }

    #[test]
    fn sync_merge_is_commutative_associative_and_idempotent() {
        let reference = state(&merged(&[SPECS.to_vec()]));
        for order in permutations(&SPECS) {
            // One record per merge, in every order (commutativity) ...
            let one_by_one: Vec<Vec<Spec>> = order.iter().map(|s| vec![*s]).collect();
            assert_eq!(state(&merged(&one_by_one)), reference, "{order:?}");
            // ... and split into two batches at every point (associativity).
            for cut in 1..order.len() {
                let ks = merged(&[order[..cut].to_vec(), order[cut..].to_vec()]);
                assert_eq!(state(&ks), reference, "{order:?} cut at {cut}");
            }
        }
        // Merging what is there already changes nothing (idempotence).
        let ks = merged(&[SPECS.to_vec()]);
        let again = ks.merge(SPECS.iter().map(record).collect(), ConflictPolicy::KeepBoth);
        assert_eq!((again.added, again.updated), (0, 0));
        assert_eq!(state(&ks), reference);
        // Two nodes merging each other's records end equal.
        let (a, b) = (merged(&[SPECS[..3].to_vec()]), merged(&[SPECS[3..].to_vec()]));
        let records_of = |ks: &Keystore| -> Vec<KeyRecord> {
            ks.snapshot()
                .records()
                .into_iter()
                .map(|r| {
                    record(&(
                        SPECS.iter().find(|s| s.0 == r.name && s.1 == bytes_of(r)[0]).unwrap().0,
                        bytes_of(r)[0],
                        r.created_at_ms,
                        r.origin,
                    ))
                })
                .collect()
        };
        let (from_a, from_b) = (records_of(&a), records_of(&b));
        a.merge(from_b, ConflictPolicy::KeepBoth);
        b.merge(from_a, ConflictPolicy::KeepBoth);
        assert_eq!(state(&a), state(&b));
        assert_eq!(state(&a), reference);
    }

    #[test]
    fn a_restored_version_never_outranks_a_created_one() {
        let ks = merged(&[SPECS.to_vec()]);
        let active = ks.get(KeyType::Symmetric, "payments").unwrap();
        assert_eq!((bytes_of(&active)[0], active.origin, active.created_at_ms), (1, Origin::Created, 1000));
        let (listed, _) = state(&ks);
        let crafted = listed.iter().find(|(_, bytes, _, _)| bytes[0] == 66).unwrap();
        assert!(crafted.0.starts_with("payments~"), "the crafted key is only an alias: {crafted:?}");
        assert_eq!(listed.iter().filter(|(n, ..)| n.starts_with("payments")).count(), 3);
        // The same material, restored and created: the created copy (and its time) stays.
        let other = ks.get(KeyType::Symmetric, "other").unwrap();
        assert_eq!((other.origin, other.created_at_ms), (Origin::Created, 5));
    }

    #[test]
    fn the_merge_reports_a_restored_version_that_a_created_one_outranks() {
        let lagging = Keystore::new();
        let restore = lagging.merge(vec![record(&SPECS[0])], ConflictPolicy::KeepExisting);
        assert!(restore.conflicts.is_empty(), "the lagging node cannot know yet");
        let report = lagging.merge(vec![record(&SPECS[1])], ConflictPolicy::KeepBoth);
        assert_eq!(report.conflicts, vec!["SYMMETRIC/payments".to_string()]);
        assert_eq!(report.restored_outranked, report.conflicts);
        assert_eq!(bytes_of(&lagging.get(KeyType::Symmetric, "payments").unwrap())[0], 1);
    }

    #[test]
    fn a_restore_does_not_reorder_or_taint_what_is_here() {
        let ks = Keystore::new();
        ks.insert(sym("k", 1)).unwrap();
        let report = ks.merge(vec![record(&("k", 1, 0, Origin::Restored))], ConflictPolicy::KeepExisting);
        assert_eq!((report.unchanged, report.updated), (1, 0));
        let k = ks.get(KeyType::Symmetric, "k").unwrap();
        assert_eq!((k.origin, k.created_at_ms), (Origin::Created, 1));
    }

    #[test]
    fn origins_change_the_digest_only_when_restored() {
        let plain = merged(&[vec![("k", 1, 1, Origin::Created)]]);
        let restored = merged(&[vec![("k", 1, 1, Origin::Restored)]]);
        assert_ne!(plain.snapshot().digest(), restored.snapshot().digest());
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let r = plain.get(KeyType::Symmetric, "k").unwrap();
        context.update(&[0]);
        context.update(&1u32.to_be_bytes());
        context.update(b"k");
        context.update(&1i64.to_be_bytes());
        context.update(&r.fingerprint);
        assert_eq!(plain.snapshot().digest().as_slice(), context.finish().as_ref(), "the digest of older versions");
    }

    #[test]
    fn fingerprints_depend_on_the_cluster_secret() {
        let a = Keystore::new();
        let b = Keystore::new();
        a.set_fingerprint_secret(b"one");
        b.set_fingerprint_secret(b"two");
        let m = KeyMaterial::Mac(MacKey::from_bytes(&[7; 32]).unwrap());
        assert_ne!(a.fingerprint(&m), b.fingerprint(&m));
        assert_eq!(a.fingerprint(&m), a.fingerprint(&m));
    }

    #[test]
    fn a_reader_keeps_its_snapshot_while_a_writer_swaps() {
        let ks = Keystore::new();
        let before = ks.snapshot();
        ks.insert(sym("a", 1)).unwrap();
        assert!(before.is_empty());
        assert_eq!(ks.snapshot().len(), 1);
    }
}
