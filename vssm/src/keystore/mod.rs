//! The key inventory. Readers on the hot path take no lock: they load an
//! atomically swapped snapshot. Writers serialize on one mutex, copy the
//! snapshot (key material and key entries are shared through `Arc`, not
//! copied), change the copy and swap it in, so a change is applied
//! entirely or not at all.
//!
//! A key is a [`KeyEntry`]: its versions (1 when created, one more per
//! rotation), each found in O(1) by number, and at each number the
//! material that competes for it (more than one only after a conflict).

use crate::crypto::keys::{AsymmetricKey, KeySpec, MacKey, SymmetricKey};
use crate::lifecycle::{KeyLifecycle, LifecycleMap};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
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

    /// Fresh material of the same kind and size, for a new version. An
    /// RSA key of a size VSSM does not generate (an imported 1024-bit
    /// key, say) gets the next generated size, 2048 to 4096 bits. RSA
    /// generation takes up to seconds: call it off the I/O threads.
    pub fn generate_like(&self) -> Result<KeyMaterial, crate::crypto::CryptoError> {
        use crate::crypto::keys::RSA_GENERATE_BITS;
        Ok(match self {
            KeyMaterial::Symmetric(k) => KeyMaterial::Symmetric(SymmetricKey::generate(k.len() as u64)?),
            KeyMaterial::Mac(k) => {
                let bytes = zeroize::Zeroizing::new(crate::crypto::random_bytes(k.len())?);
                KeyMaterial::Mac(MacKey::from_bytes(&bytes)?)
            }
            KeyMaterial::Asymmetric(k) => {
                let spec = k.spec();
                let size = match spec {
                    KeySpec::Rsa => {
                        let bits = k.size_bits() as u64;
                        RSA_GENERATE_BITS.into_iter().find(|b| *b >= bits).unwrap_or(RSA_GENERATE_BITS[2])
                    }
                    KeySpec::Ec | KeySpec::Ed25519 => k.size_bits() as u64,
                };
                KeyMaterial::Asymmetric(Box::new(AsymmetricKey::generate(spec, size)?))
            }
        })
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
    /// The key version: 1 as created, one more per rotation.
    pub version: u32,
    /// When this node last used the material, in seconds since the Unix
    /// epoch (0: never); local to the node, not replicated.
    pub last_used_s: AtomicI64,
    /// The identifier the creating application gave the key (PKCS#11's
    /// `CKA_ID`; empty: none), at most [`MAX_OBJECT_ID_BYTES`]. Set at
    /// creation, carried by every version, never changed: so every copy of
    /// a record agrees, and it stays out of the digest.
    pub object_id: Vec<u8>,
}

/// Longest `objectId`, in bytes.
pub const MAX_OBJECT_ID_BYTES: usize = 128;

impl KeyRecord {
    /// A record of created material to hand to [`Keystore::insert`] or
    /// [`Keystore::merge`] (set `origin` for restored material).
    pub fn new(name: String, created_at_ms: i64, material: KeyMaterial) -> Self {
        KeyRecord {
            name,
            created_at_ms,
            origin: Origin::Created,
            material,
            fingerprint: [0; 32],
            version: 1,
            last_used_s: AtomicI64::new(0),
            object_id: Vec::new(),
        }
    }

    /// The same record with the application's identifier `object_id`.
    pub fn with_object_id(mut self, object_id: Vec<u8>) -> Self {
        self.object_id = object_id;
        self
    }

    /// The same record as version `version`.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// The 4 bytes that name this material in a versioned ciphertext: the
    /// start of its fingerprint (so two materials that both became the
    /// same version number in concurrent rotations are told apart).
    pub fn key_id(&self) -> [u8; 4] {
        [self.fingerprint[0], self.fingerprint[1], self.fingerprint[2], self.fingerprint[3]]
    }

    /// Notes a use now; one relaxed load, and a store only when the second changed.
    pub fn touch(&self, now_s: i64) {
        if self.last_used_s.load(Ordering::Relaxed) < now_s {
            self.last_used_s.store(now_s, Ordering::Relaxed);
        }
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

/// The materials that hold one version number of one name: more than one
/// only after a conflict. Sorted by [`KeyRecord::rank`] (origin, creation
/// time, fingerprint): the first is the one operations use, on every node
/// alike.
#[derive(Clone, Default)]
struct Versions(Vec<Arc<KeyRecord>>);

impl Versions {
    fn active(&self) -> Option<&Arc<KeyRecord>> {
        self.0.first()
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
        self.active().is_some_and(|a| a.origin == Origin::Created)
            && self.0.iter().any(|r| r.origin == Origin::Restored)
    }
}

/// Most versions one key may have (rotations stop there).
pub const MAX_VERSIONS: u32 = 100_000;

/// Hashes a version number with one multiplication. Version numbers are
/// at most [`MAX_VERSIONS`] and made by rotations, so SipHash's defence
/// against chosen keys buys little here, and it cost 90 instructions per
/// use of a key: 1.3% of an AES-GCM batch item (callgrind).
#[derive(Clone, Copy, Default)]
struct VersionHasher(u64);

impl std::hash::Hasher for VersionHasher {
    fn finish(&self) -> u64 {
        // The product's high bits mixed into the low ones, which pick the bucket.
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u32(u32::from(byte) ^ (self.0 as u32));
        }
    }

    fn write_u32(&mut self, number: u32) {
        self.0 = (self.0 ^ u64::from(number)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// One key's versions by number.
type VersionMap = HashMap<u32, Versions, std::hash::BuildHasherDefault<VersionHasher>>;

/// One key: its versions by number, and its lifecycle. A destroyed key
/// stays as an entry without material: its tombstone.
#[derive(Clone, Default)]
pub struct KeyEntry {
    versions: VersionMap,
    /// The highest version number held (0 for none).
    newest: u32,
    lifecycle: KeyLifecycle,
}

impl KeyEntry {
    /// The highest version number (0 when no material is held).
    pub fn newest_version(&self) -> u32 {
        self.newest
    }

    /// True once the key was rotated: legacy requests, which cannot name a
    /// version, are refused from then on.
    pub fn was_rotated(&self) -> bool {
        self.newest > 1
    }

    /// The material of the newest version.
    pub fn active(&self) -> Option<&Arc<KeyRecord>> {
        self.version(self.newest)
    }

    /// The material of version `number` (O(1)).
    pub fn version(&self, number: u32) -> Option<&Arc<KeyRecord>> {
        self.versions.get(&number)?.active()
    }

    /// The material of version `number` whose key id is `key_id` (O(1)
    /// but for conflicts, which hold a handful).
    pub fn version_with_id(&self, number: u32, key_id: &[u8; 4]) -> Option<&Arc<KeyRecord>> {
        self.versions.get(&number)?.0.iter().find(|r| &r.key_id() == key_id)
    }

    /// The version numbers held, ascending.
    pub fn version_numbers(&self) -> Vec<u32> {
        let mut numbers: Vec<u32> = self.versions.keys().copied().collect();
        numbers.sort_unstable();
        numbers
    }

    /// Every record of every version.
    pub fn records(&self) -> impl Iterator<Item = &Arc<KeyRecord>> {
        self.versions.values().flat_map(|v| v.0.iter())
    }

    /// Records that lost a conflict for their version number (usable by alias).
    fn conflict_losers(&self) -> impl Iterator<Item = &Arc<KeyRecord>> {
        self.versions.values().flat_map(|v| v.0.iter().skip(1))
    }

    fn add(&mut self, record: Arc<KeyRecord>) {
        self.newest = self.newest.max(record.version);
        self.versions.entry(record.version).or_default().add(record);
    }

    fn restored_outranked(&self) -> bool {
        self.versions.values().any(Versions::restored_outranked)
    }
}

/// One immutable snapshot of all keys.
#[derive(Default)]
pub struct Inventory {
    by_type: [HashMap<String, Arc<KeyEntry>>; 3],
    /// Computed once per snapshot (sync and the status page ask often).
    digest: std::sync::OnceLock<[u8; 32]>,
    /// The lifecycle of every key that has one, made once per snapshot.
    lifecycle: std::sync::OnceLock<LifecycleMap>,
}

impl Clone for Inventory {
    /// A copy to change: the digest is not carried over.
    fn clone(&self) -> Self {
        Inventory {
            by_type: self.by_type.clone(),
            digest: std::sync::OnceLock::new(),
            lifecycle: std::sync::OnceLock::new(),
        }
    }
}

impl Inventory {
    /// The key `name` of `key_type`: the newest version, or a losing
    /// version of a conflict by its alias `name~fingerprint-prefix`.
    pub fn get(&self, key_type: KeyType, name: &str) -> Option<&Arc<KeyRecord>> {
        let map = &self.by_type[key_type.index()];
        if let Some(entry) = map.get(name) {
            return entry.active();
        }
        let (base, prefix) = name.rsplit_once('~')?;
        map.get(base)?.conflict_losers().find(|r| hex_prefix(&r.fingerprint) == prefix)
    }

    /// The entry of key `name` of `key_type` (all its versions), by its
    /// name only (no alias).
    pub fn entry(&self, key_type: KeyType, name: &str) -> Option<&KeyEntry> {
        self.by_type[key_type.index()].get(name).map(|e| e.as_ref())
    }

    /// Whether a key was rotated or carries an `objectId`: what a version 1
    /// backup cannot hold.
    pub fn needs_successor_backup(&self) -> bool {
        let entries = self.by_type.iter().flat_map(|map| map.values());
        entries.flat_map(|entry| entry.records()).any(|r| r.version > 1 || !r.object_id.is_empty())
    }

    /// The key `name` of `key_type` with all its versions, to keep beyond
    /// this snapshot.
    pub fn shared_entry(&self, key_type: KeyType, name: &str) -> Option<&Arc<KeyEntry>> {
        self.by_type[key_type.index()].get(name)
    }

    /// The keys of one type sorted by name (each with its newest version),
    /// with losing conflict versions listed under their aliases.
    pub fn sorted(&self, key_type: KeyType) -> Vec<(String, &Arc<KeyRecord>)> {
        let mut keys: Vec<(String, &Arc<KeyRecord>)> = Vec::new();
        for (name, entry) in &self.by_type[key_type.index()] {
            keys.extend(entry.active().map(|active| (name.clone(), active)));
            keys.extend(entry.conflict_losers().map(|r| (r.conflict_alias(), r)));
        }
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys
    }

    /// Every stored record (all versions), in a stable order.
    pub fn records(&self) -> Vec<&Arc<KeyRecord>> {
        let mut out: Vec<&Arc<KeyRecord>> =
            self.by_type.iter().flat_map(|m| m.values().flat_map(|e| e.records())).collect();
        out.sort_by(|a, b| {
            (a.material.key_type().index(), &a.name, a.version, a.fingerprint).cmp(&(
                b.material.key_type().index(),
                &b.name,
                b.version,
                b.fingerprint,
            ))
        });
        out
    }

    /// The record of `key_type`/`name` with exactly this fingerprint.
    pub fn version(&self, key_type: KeyType, name: &str, fingerprint: &Fingerprint) -> Option<&Arc<KeyRecord>> {
        self.by_type[key_type.index()].get(name)?.records().find(|r| &r.fingerprint == fingerprint)
    }

    /// Number of stored records (all versions).
    pub fn len(&self) -> usize {
        self.by_type.iter().map(|m| m.values().map(|e| e.records().count()).sum::<usize>()).sum()
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
            // Only rotated versions add their number, and only restored
            // records a byte: a set without either digests as before
            // versions and origins existed (peers of an older version agree).
            if record.version != 1 {
                context.update(b"V");
                context.update(&record.version.to_be_bytes());
            }
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
    /// A key of that type and name was destroyed: names are never reused.
    Destroyed,
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
    /// `TYPE/name` of keys (or trimmed versions) that were destroyed here:
    /// their material was left out.
    pub destroyed: Vec<String>,
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
        record.version = 1;
        let _guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.current.load();
        let key_type = record.material.key_type();
        if let Some(entry) = current.by_type[key_type.index()].get(&record.name) {
            if entry.lifecycle.destroyed_at_ms.is_some() {
                return Err(InsertError::Destroyed);
            }
            // An entry without material but with lifecycle state (which a
            // peer's state can bring before the records) is taken over.
            if entry.newest != 0 {
                return Err(InsertError::Exists);
            }
        }
        let record = Arc::new(record);
        let mut entry =
            current.by_type[key_type.index()].get(&record.name).map(|e| KeyEntry::clone(e)).unwrap_or_default();
        entry.add(Arc::clone(&record));
        let mut next = Inventory::clone(&current);
        next.by_type[key_type.index()].insert(record.name.clone(), Arc::new(entry));
        self.current.store(Arc::new(next));
        Ok(record)
    }

    /// Adds `record` as the next version of the existing key of its type
    /// and name (a rotation): the number is the newest held plus one,
    /// decided under the writer lock.
    pub fn add_version(&self, mut record: KeyRecord) -> Result<Arc<KeyRecord>, RotateError> {
        record.fingerprint = self.fingerprint(&record.material);
        let _guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.current.load();
        let key_type = record.material.key_type();
        let entry = current.by_type[key_type.index()].get(&record.name).ok_or(RotateError::NoSuchKey)?;
        if entry.lifecycle.destroyed_at_ms.is_some() {
            return Err(RotateError::Destroyed);
        }
        if entry.newest == 0 {
            return Err(RotateError::NoSuchKey);
        }
        if entry.newest >= MAX_VERSIONS {
            return Err(RotateError::TooManyVersions);
        }
        record.version = entry.newest + 1;
        let record = Arc::new(record);
        let mut entry = KeyEntry::clone(entry);
        entry.add(Arc::clone(&record));
        let mut next = Inventory::clone(&current);
        next.by_type[key_type.index()].insert(record.name.clone(), Arc::new(entry));
        self.current.store(Arc::new(next));
        Ok(record)
    }

    /// Merges records (from a backup or a peer). Key material is never
    /// replaced or dropped: identical records are one, and a version of a
    /// name that arrives with different material is a conflict handled by
    /// `policy`. With [`ConflictPolicy::KeepBoth`] the result is a pure
    /// function of the record sets (commutative, associative, idempotent):
    /// copies of the same material keep the higher-ranked (origin, creation
    /// time), and the materials of one version are ordered by
    /// [`KeyRecord::rank`]. Applied at once: readers see all of it or none.
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
            let map = &mut next.by_type[key_type.index()];
            let entry = Arc::make_mut(map.entry(record.name.clone()).or_default());
            if entry.forbids(record.version) {
                let label = format!("{}/{}", key_type.as_str(), record.name);
                if !report.destroyed.contains(&label) {
                    report.destroyed.push(label);
                }
                continue;
            }
            let held = entry.versions.get(&record.version);
            if let Some(i) = held.and_then(|v| v.position(&record.fingerprint)) {
                // A restore never reorders what is here; a peer's better copy
                // (created rather than restored, or older) wins everywhere.
                let versions = entry.versions.get_mut(&record.version).expect("held above");
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
            if held.is_some_and(|v| !v.0.is_empty()) {
                let label = format!("{}/{}", key_type.as_str(), record.name);
                if conflicts.insert(label.clone()) {
                    report.conflicts.push(label);
                }
                // KeepExisting protects what the version meant before this
                // merge; materials that arrive together (a backup of a
                // conflict) are all kept, as on the cluster they came from.
                let existed_before = before.by_type[key_type.index()]
                    .get(&record.name)
                    .is_some_and(|e| e.versions.contains_key(&record.version));
                if policy == ConflictPolicy::KeepExisting && existed_before {
                    continue;
                }
            }
            let record = Arc::new(record);
            entry.add(Arc::clone(&record));
            report.added += 1;
            report.new_records.push(record);
        }
        for label in &report.conflicts {
            let outranked = label.split_once('/').is_some_and(|(t, name)| {
                KeyType::parse(t)
                    .and_then(|t| next.by_type[t.index()].get(name))
                    .is_some_and(|e| e.restored_outranked())
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

/// Why a rotation did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateError {
    /// No key of that type and name.
    NoSuchKey,
    /// The key has [`MAX_VERSIONS`] versions.
    TooManyVersions,
    /// The key was destroyed.
    Destroyed,
}

mod lifecycle_store;
pub use lifecycle_store::LifecycleMerge;

#[cfg(test)]
mod tests;
