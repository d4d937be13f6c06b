//! Keystore tests: uniqueness, conflicts and the merge laws.

use super::*;
use crate::lifecycle::LifecycleMap;

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

/// One thing a node can receive: a key record or lifecycle state.
#[derive(Clone, Copy, Debug)]
enum Arrival {
    /// A record of `k`: (version, material byte).
    Record(u32, u8),
    /// Versions below this are trimmed.
    Trim(u32),
    /// `k` is destroyed at this time.
    Destroy(i64),
    /// `k` is disabled at this time.
    Disable(i64),
}

fn receive(ks: &Keystore, arrival: Arrival) {
    let mut lifecycle = crate::lifecycle::KeyLifecycle::default();
    match arrival {
        Arrival::Record(version, byte) => {
            ks.merge(vec![sym("k", byte).with_version(version)], ConflictPolicy::KeepBoth);
            return;
        }
        Arrival::Trim(version) => {
            lifecycle.trim(version);
        }
        Arrival::Destroy(at) => {
            lifecycle.destroy(at);
        }
        Arrival::Disable(at) => {
            lifecycle.set_status(crate::lifecycle::KeyStatus::Disabled, at, "node");
        }
    }
    let mut map = LifecycleMap::default();
    map.set(KeyType::Symmetric, "k", lifecycle);
    ks.merge_lifecycle(&map);
}

/// Everything a node serves for `k`: every version's materials in order,
/// the newest version, and the lifecycle state.
/// Every version with its materials, the newest version, the record and lifecycle digests.
type KeyState = (Vec<(u32, Vec<Vec<u8>>)>, u32, [u8; 32], [u8; 32]);

fn key_state(ks: &Keystore) -> KeyState {
    let snapshot = ks.snapshot();
    let versions = snapshot
        .entry(KeyType::Symmetric, "k")
        .map(|entry| {
            entry
                .version_numbers()
                .into_iter()
                .map(|v| (v, entry.versions[&v].0.iter().map(|r| bytes_of(r)).collect()))
                .collect()
        })
        .unwrap_or_default();
    let newest = snapshot.entry(KeyType::Symmetric, "k").map_or(0, |e| e.newest_version());
    (versions, newest, snapshot.digest(), snapshot.lifecycle_map().digest())
}

fn converges(arrivals: &[Arrival]) -> KeyState {
    let apply = |order: &[Arrival]| {
        let ks = Keystore::new();
        order.iter().for_each(|a| receive(&ks, *a));
        // Idempotence: everything again changes nothing.
        let once = key_state(&ks);
        order.iter().for_each(|a| receive(&ks, *a));
        assert_eq!(key_state(&ks), once, "{order:?} applied twice");
        once
    };
    let reference = apply(arrivals);
    let mut order = arrivals.to_vec();
    // Every order (commutativity; with one arrival per merge, grouping
    // cannot matter beyond order): Heap's algorithm, iteratively.
    let mut c = vec![0; order.len()];
    let mut i = 0;
    while i < order.len() {
        if c[i] < i {
            order.swap(if i % 2 == 0 { 0 } else { c[i] }, i);
            assert_eq!(apply(&order), reference, "{order:?}");
            c[i] += 1;
            i = 0;
        } else {
            c[i] = 0;
            i += 1;
        }
    }
    reference
}

#[test]
fn versions_trims_and_concurrent_rotations_converge_in_any_order() {
    // Version 2 made twice at once (two nodes rotated), and a trim of version 1.
    let (versions, newest, ..) = converges(&[
        Arrival::Record(1, 1),
        Arrival::Record(2, 2),
        Arrival::Record(2, 3),
        Arrival::Trim(2),
        Arrival::Disable(5),
    ]);
    assert_eq!(newest, 2);
    assert_eq!(versions.len(), 1, "version 1 is trimmed whenever its record arrives: {versions:?}");
    assert_eq!(versions[0].1.len(), 2, "both materials of version 2 are kept");
}

#[test]
fn a_destroyed_key_never_comes_back_whatever_arrives_when() {
    let (versions, ..) = converges(&[
        Arrival::Record(1, 1),
        Arrival::Record(2, 2),
        Arrival::Destroy(10),
        Arrival::Disable(20),
        Arrival::Destroy(5),
    ]);
    assert!(versions.is_empty(), "no material of a destroyed key: {versions:?}");
    let ks = Keystore::new();
    receive(&ks, Arrival::Destroy(1));
    assert_eq!(ks.insert(sym("k", 9)).unwrap_err(), InsertError::Destroyed, "names are not reused");
    let report = ks.merge(vec![sym("k", 1)], ConflictPolicy::KeepExisting);
    assert_eq!(report.destroyed, vec!["SYMMETRIC/k".to_string()], "a restore reports what it left out");
}

#[test]
fn a_rotation_adds_the_next_version_and_keeps_the_old_one_addressable() {
    let ks = Keystore::new();
    ks.insert(sym("k", 1)).unwrap();
    let v2 = ks.add_version(sym("k", 2)).unwrap();
    assert_eq!(v2.version, 2);
    let snapshot = ks.snapshot();
    let entry = snapshot.entry(KeyType::Symmetric, "k").unwrap();
    assert!(entry.was_rotated());
    assert_eq!(bytes_of(entry.active().unwrap()), vec![2; 16]);
    let v1 = entry.version(1).unwrap();
    assert_eq!(bytes_of(v1), vec![1; 16]);
    assert!(entry.version_with_id(1, &v1.key_id()).is_some());
    assert!(entry.version_with_id(1, &v2.key_id()).is_none(), "the key id must match the version's material");
    assert_eq!(ks.add_version(sym("nothing", 3)).unwrap_err(), RotateError::NoSuchKey);
}
