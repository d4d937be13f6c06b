//! The authorization state every node holds: grants, revocations and the
//! policy mode, with merge rules that make it a state-based CRDT.
//!
//! Merge rules (each is a union or a maximum, so merging is commutative,
//! associative and idempotent, and nodes that saw the same records agree
//! whatever the order):
//! - grants: a grow-only map from a random 128-bit id to immutable content;
//!   should two different contents ever arrive under one id, the smaller by
//!   (createdAt, canonical text) is kept everywhere;
//! - revocations: a grow-only map of ids, the earliest record kept; a
//!   grant whose id is revoked is never active again, even if the grant
//!   arrives after its revocation or from an old backup;
//! - the mode: a last-writer-wins register ordered by (changedAt, enforce,
//!   changedBy), so concurrent changes in the same millisecond settle on
//!   enforcement.

use super::operation::{Operation, OperationSet};
use super::selector::{IdentitySelector, KeySelector, SelectorError};
use crate::wire::authz::{AuthorizationStateWire, GrantWire, PolicyModeWire, RevocationWire};
use crate::wire::Int64;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Grant records (active and revoked) a cluster admits: creategrants, a
/// revocation ahead of its grant and a restore stop there.
pub const MAX_GRANT_RECORDS: usize = 100_000;
/// Records accepted from a peer or a backup: above [`MAX_GRANT_RECORDS`],
/// because revoking known grants is never refused (up to two records per
/// grant) and nodes admit concurrently; a state this node made always
/// passes between nodes.
pub const MAX_STATE_RECORDS: usize = 4 * MAX_GRANT_RECORDS;
/// Operations one grant may list.
pub const MAX_OPERATIONS: usize = 16;
/// Longest comment, in bytes.
pub const MAX_COMMENT_BYTES: usize = 256;

/// A grant's id: 16 random bytes, written as 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantId(pub [u8; 16]);

impl GrantId {
    /// A fresh random id.
    pub fn random() -> GrantId {
        let mut id = [0u8; 16];
        // Without randomness the node cannot make keys either; a zero id
        // would only collide with another such id.
        let _ = aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut id);
        GrantId(id)
    }

    /// Parses 32 hex digits.
    pub fn parse(text: &str) -> Option<GrantId> {
        crate::wire::codec::decode_hex_array(text).map(GrantId)
    }
}

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&crate::wire::codec::encode_hex(&self.0))
    }
}

/// Who may do what with which keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Unique id.
    pub id: GrantId,
    /// The clients it is for.
    pub identity: IdentitySelector,
    /// The keys it covers.
    pub keys: KeySelector,
    /// What it allows.
    pub operations: OperationSet,
    /// Operation names this version does not know, from a peer or backup of
    /// a newer version: kept so that the grant travels on unchanged, and
    /// allowing nothing here.
    pub unknown_operations: Vec<String>,
    /// Operator's note.
    pub comment: String,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Subject of the creator.
    pub created_by: String,
}

impl Grant {
    /// The wire form.
    pub fn to_wire(&self) -> GrantWire {
        GrantWire {
            id: self.id.to_string(),
            identity: self.identity.to_string(),
            keys: self.keys.to_string(),
            operations: self
                .operations
                .iter()
                .map(|op| op.as_str().to_string())
                .chain(self.unknown_operations.iter().cloned())
                .collect(),
            comment: self.comment.clone(),
            created_at: Int64(self.created_at_ms),
            created_by: self.created_by.clone(),
        }
    }

    /// Order between two contents under one id (see the module doc): the
    /// canonical JSON of the wire form breaks ties.
    fn rank(&self) -> (i64, String) {
        (self.created_at_ms, serde_json::to_string(&self.to_wire()).unwrap_or_default())
    }
}

/// Why a grant (or another record) in a request, backup or push is not
/// acceptable: the field path and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct GrantError {
    /// e.g. `grants[2].operations[0]`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl GrantError {
    fn new(field: String, reason: impl fmt::Display) -> GrantError {
        GrantError { field, reason: reason.to_string() }
    }
}

impl crate::error::Classify for GrantError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::BadRequest
    }
}

/// What to do with an operation name this version does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownOperations {
    /// A client's request: 400 naming it.
    Refuse,
    /// A peer's or a backup's record (a newer version during a rolling
    /// upgrade): kept, allowing nothing.
    Keep,
}

/// The checked content of a grant.
#[derive(Debug)]
pub struct GrantContent {
    /// The clients it is for.
    pub identity: IdentitySelector,
    /// The keys it covers.
    pub keys: KeySelector,
    /// The operations this version knows.
    pub operations: OperationSet,
    /// The others (empty with [`UnknownOperations::Refuse`]), sorted.
    pub unknown_operations: Vec<String>,
}

/// A well-formed operation name of some version: lowercase letters,
/// digits and `-`, at most 64 bytes.
fn is_operation_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The content of a grant as a request, a peer or a backup states it,
/// checked; `field` is the path of the grant (e.g. `grants[2]`).
pub fn parse_grant_content(
    wire: &GrantWire,
    field: &str,
    unknown: UnknownOperations,
) -> Result<GrantContent, GrantError> {
    let sub = |name: &str| format!("{field}.{name}");
    let identity = IdentitySelector::parse(&wire.identity).map_err(|e| GrantError::new(sub("identity"), e))?;
    let keys = KeySelector::parse(&wire.keys).map_err(|e: SelectorError| GrantError::new(sub("keys"), e))?;
    if wire.operations.is_empty() {
        return Err(GrantError::new(sub("operations"), "is required"));
    }
    if wire.operations.len() > MAX_OPERATIONS {
        return Err(GrantError::new(sub("operations"), format_args!("holds more than {MAX_OPERATIONS} entries")));
    }
    let mut operations = OperationSet::empty();
    let mut unknown_operations = Vec::new();
    for (i, name) in wire.operations.iter().enumerate() {
        match Operation::parse(name) {
            Some(op) => operations.insert(op),
            None if unknown == UnknownOperations::Keep && is_operation_name(name) => {
                unknown_operations.push(name.clone())
            }
            None => {
                return Err(GrantError::new(
                    format!("{field}.operations[{i}]"),
                    format_args!("unknown operation {}", crate::crypto::quote(name)),
                ))
            }
        }
    }
    unknown_operations.sort();
    unknown_operations.dedup();
    if operations.has_cluster_wide() && keys != KeySelector::All {
        return Err(GrantError::new(
            sub("keys"),
            "backup, restore, getlogs and manage-grants act on the whole cluster: keys must be \"*\"",
        ));
    }
    if wire.comment.len() > MAX_COMMENT_BYTES {
        return Err(GrantError::new(sub("comment"), format_args!("is longer than {MAX_COMMENT_BYTES} bytes")));
    }
    if wire.comment.chars().any(char::is_control) {
        return Err(GrantError::new(sub("comment"), "contains control characters"));
    }
    Ok(GrantContent { identity, keys, operations, unknown_operations })
}

/// A complete grant from a backup or a peer.
fn grant_from_wire(wire: &GrantWire, field: &str) -> Result<Grant, GrantError> {
    let id = GrantId::parse(&wire.id).ok_or_else(|| GrantError::new(format!("{field}.id"), "is not 32 hex digits"))?;
    let content = parse_grant_content(wire, field, UnknownOperations::Keep)?;
    Ok(Grant {
        id,
        identity: content.identity,
        keys: content.keys,
        operations: content.operations,
        unknown_operations: content.unknown_operations,
        comment: wire.comment.clone(),
        created_at_ms: wire.created_at.0,
        created_by: stored_subject(&wire.created_by),
    })
}

/// A subject as records store it, bounded and without control characters
/// (it ends up in listings and the audit log). Locally made records go
/// through it too, so that a record reads back from the wire unchanged.
pub fn stored_subject(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(1024).collect()
}

/// A revocation record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Revocation {
    /// Milliseconds since the Unix epoch.
    pub revoked_at_ms: i64,
    /// Subject of the revoker.
    pub revoked_by: String,
}

/// The policy mode register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyMode {
    /// True when everything not granted is denied.
    pub enforce: bool,
    /// Milliseconds since the Unix epoch.
    pub changed_at_ms: i64,
    /// Subject of the client that changed it.
    pub changed_by: String,
}

impl PolicyMode {
    fn rank(&self) -> (i64, bool, &str) {
        (self.changed_at_ms, self.enforce, &self.changed_by)
    }
}

/// Grants, revocations and the mode (see the module doc for the merge rules).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthzState {
    grants: BTreeMap<GrantId, Arc<Grant>>,
    revocations: BTreeMap<GrantId, Revocation>,
    mode: Option<PolicyMode>,
}

/// What a merge changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MergeChanges {
    /// Grants that were new here.
    pub grants: usize,
    /// Grants whose id held other content here, replaced by the lower
    /// ranked content (only a faulty peer or a crafted backup makes them).
    pub replaced: usize,
    /// Revocations that were new here.
    pub revocations: usize,
    /// The mode changed.
    pub mode: bool,
}

impl MergeChanges {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.grants == 0 && self.replaced == 0 && self.revocations == 0 && !self.mode
    }
}

impl AuthzState {
    /// True when no grant, revocation or mode was ever recorded.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty() && self.revocations.is_empty() && self.mode.is_none()
    }

    /// True when enforcement is on.
    pub fn enforced(&self) -> bool {
        self.mode.as_ref().is_some_and(|m| m.enforce)
    }

    /// The mode register, when ever set.
    pub fn mode(&self) -> Option<&PolicyMode> {
        self.mode.as_ref()
    }

    /// Moves a mode change dated after `now_ms` to `now_ms`, so that state
    /// from outside the cluster (a backup) cannot win the register against
    /// every later change.
    pub fn clamp_mode_time(&mut self, now_ms: i64) {
        if let Some(mode) = &mut self.mode {
            mode.changed_at_ms = mode.changed_at_ms.min(now_ms);
        }
    }

    /// Grant plus revocation records.
    pub fn record_count(&self) -> usize {
        self.grants.len() + self.revocations.len()
    }

    /// Number of revocation records.
    pub fn revocation_count(&self) -> usize {
        self.revocations.len()
    }

    /// True when `id` is revoked.
    pub fn is_revoked(&self, id: &GrantId) -> bool {
        self.revocations.contains_key(id)
    }

    /// True when a grant with this id is known (revoked or not).
    pub fn knows_grant(&self, id: &GrantId) -> bool {
        self.grants.contains_key(id)
    }

    /// The grants that are not revoked, by id.
    pub fn active(&self) -> impl Iterator<Item = &Arc<Grant>> {
        self.grants.iter().filter(|(id, _)| !self.revocations.contains_key(id)).map(|(_, g)| g)
    }

    /// Adds a grant (merge rule for grants).
    pub fn add_grant(&mut self, grant: Grant) -> bool {
        match self.grants.get(&grant.id) {
            Some(existing) if **existing == grant || existing.rank() <= grant.rank() => false,
            _ => {
                self.grants.insert(grant.id, Arc::new(grant));
                true
            }
        }
    }

    /// Adds a revocation (merge rule for revocations).
    pub fn add_revocation(&mut self, id: GrantId, revocation: Revocation) -> bool {
        match self.revocations.get(&id) {
            Some(existing) if *existing <= revocation => false,
            Some(_) => {
                self.revocations.insert(id, revocation);
                false
            }
            None => {
                self.revocations.insert(id, revocation);
                true
            }
        }
    }

    /// Sets the mode (merge rule for the register).
    pub fn set_mode(&mut self, mode: PolicyMode) -> bool {
        if self.mode.as_ref().is_some_and(|m| m.rank() >= mode.rank()) {
            return false;
        }
        let changed = self.enforced() != mode.enforce || self.mode.is_none();
        self.mode = Some(mode);
        changed
    }

    /// Merges `other` into this state.
    pub fn merge(&mut self, other: &AuthzState) -> MergeChanges {
        let mut changes = MergeChanges::default();
        for grant in other.grants.values() {
            let new = !self.grants.contains_key(&grant.id);
            if self.add_grant(Grant::clone(grant)) {
                if new {
                    changes.grants += 1;
                } else {
                    changes.replaced += 1;
                }
            }
        }
        for (id, revocation) in &other.revocations {
            if self.add_revocation(*id, revocation.clone()) {
                changes.revocations += 1;
            }
        }
        if let Some(mode) = &other.mode {
            changes.mode = self.set_mode(mode.clone());
        }
        changes
    }

    /// Order-independent digest: equal on two nodes exactly when they hold
    /// the same records.
    pub fn digest(&self) -> [u8; 32] {
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        // The wire text of each record in id order is canonical.
        let text = serde_json::to_vec(&self.to_wire()).unwrap_or_default();
        context.update(&text);
        let mut out = [0u8; 32];
        out.copy_from_slice(context.finish().as_ref());
        out
    }

    /// The wire form (every record).
    pub fn to_wire(&self) -> AuthorizationStateWire {
        AuthorizationStateWire {
            grants: self.grants.values().map(|g| g.to_wire()).collect(),
            revocations: self
                .revocations
                .iter()
                .map(|(id, r)| RevocationWire {
                    id: id.to_string(),
                    revoked_at: Int64(r.revoked_at_ms),
                    revoked_by: r.revoked_by.clone(),
                })
                .collect(),
            policy: self.mode.as_ref().map(|m| PolicyModeWire {
                enforce: m.enforce,
                changed_at: Int64(m.changed_at_ms),
                changed_by: m.changed_by.clone(),
            }),
        }
    }

    /// Reads a wire state (backup or peer); all or nothing. `field` prefixes
    /// the field paths of errors (e.g. `authorization`).
    pub fn from_wire(wire: &AuthorizationStateWire, field: &str) -> Result<AuthzState, GrantError> {
        if wire.grants.len() + wire.revocations.len() > MAX_GRANT_RECORDS {
            return Err(GrantError::new(
                field.to_string(),
                format_args!("holds more than {MAX_GRANT_RECORDS} records"),
            ));
        }
        let mut state = AuthzState::default();
        for (i, grant) in wire.grants.iter().enumerate() {
            state.add_grant(grant_from_wire(grant, &format!("{field}.grants[{i}]"))?);
        }
        for (i, revocation) in wire.revocations.iter().enumerate() {
            let id = GrantId::parse(&revocation.id)
                .ok_or_else(|| GrantError::new(format!("{field}.revocations[{i}].id"), "is not 32 hex digits"))?;
            state.add_revocation(
                id,
                Revocation {
                    revoked_at_ms: revocation.revoked_at.0,
                    revoked_by: stored_subject(&revocation.revoked_by),
                },
            );
        }
        if let Some(mode) = &wire.policy {
            state.set_mode(PolicyMode {
                enforce: mode.enforce,
                changed_at_ms: mode.changed_at.0,
                changed_by: stored_subject(&mode.changed_by),
            });
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn grant(id: u8, created_at_ms: i64) -> Grant {
        Grant {
            id: GrantId([id; 16]),
            identity: IdentitySelector::parse(&format!("cn:svc-{id}")).unwrap(),
            keys: KeySelector::parse("k*").unwrap(),
            operations: [Operation::Encrypt].into_iter().collect(),
            unknown_operations: Vec::new(),
            comment: String::new(),
            created_at_ms,
            created_by: "CN=officer".into(),
        }
    }

    /// One random change: a grant, a revocation or a mode change.
    fn change() -> impl Strategy<Value = AuthzState> {
        (0u8..6, 0i64..4, 0u8..3, any::<bool>()).prop_map(|(id, at, kind, enforce)| {
            let mut s = AuthzState::default();
            match kind {
                0 => {
                    s.add_grant(grant(id, at));
                }
                1 => {
                    s.add_revocation(GrantId([id; 16]), Revocation { revoked_at_ms: at, revoked_by: "x".into() });
                }
                _ => {
                    s.set_mode(PolicyMode { enforce, changed_at_ms: at, changed_by: format!("n{id}") });
                }
            }
            s
        })
    }

    fn merged(parts: &[AuthzState]) -> AuthzState {
        let mut s = AuthzState::default();
        parts.iter().for_each(|p| {
            s.merge(p);
        });
        s
    }

    proptest! {
        /// Nodes that receive the same changes in any order, any grouping
        /// and with repeats end up with the same state.
        #[test]
        fn merge_is_commutative_associative_and_idempotent(
            changes in proptest::collection::vec(change(), 1..12),
            seed in any::<u64>(),
        ) {
            let forward = merged(&changes);
            let mut shuffled = changes.clone();
            // A deterministic shuffle from the seed.
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(&merged(&shuffled), &forward);
            let (left, right) = changes.split_at(changes.len() / 2);
            let mut grouped = merged(left);
            grouped.merge(&merged(right));
            prop_assert_eq!(&grouped, &forward);
            let mut twice = forward.clone();
            prop_assert!(twice.merge(&forward).is_empty());
            prop_assert_eq!(&twice, &forward);
            prop_assert_eq!(twice.digest(), forward.digest());
        }
    }

    #[test]
    fn a_revoked_grant_never_comes_back() {
        let mut node = AuthzState::default();
        node.add_revocation(GrantId([1; 16]), Revocation { revoked_at_ms: 5, revoked_by: "CN=o".into() });
        // The grant arrives after its revocation (an old backup, a slow peer).
        let mut old_backup = AuthzState::default();
        old_backup.add_grant(grant(1, 1));
        node.merge(&old_backup);
        assert_eq!(node.active().count(), 0);
        let round_trip = AuthzState::from_wire(&node.to_wire(), "authorization").unwrap();
        assert_eq!(round_trip, node);
    }

    #[test]
    fn bad_records_name_their_field() {
        let mut wire = AuthzState::default();
        let mut long = grant(1, 1);
        long.created_by = format!("CN={}", "x".repeat(2000));
        long.created_by = stored_subject(&long.created_by);
        wire.add_grant(long);
        let again = AuthzState::from_wire(&wire.to_wire(), "authorization").unwrap();
        assert_eq!(again, wire, "a stored subject reads back unchanged");
        let mut text = wire.to_wire();
        text.grants[0].operations.push("Encrypt".into());
        let error = AuthzState::from_wire(&text, "authorization").unwrap_err();
        assert_eq!(error.to_string(), "authorization.grants[0].operations[1]: unknown operation \"Encrypt\"");
        let mut backup_wide = GrantWire { identity: "cn:o".into(), keys: "k".into(), ..GrantWire::default() };
        backup_wide.operations = vec!["backup".into()];
        let refused = parse_grant_content(&backup_wide, "grants[0]", UnknownOperations::Refuse).unwrap_err();
        assert_eq!(refused.field, "grants[0].keys");
    }

    #[test]
    fn operations_of_a_newer_version_travel_on_and_allow_nothing() {
        let mut state = AuthzState::default();
        state.add_grant(grant(1, 1));
        let mut wire = state.to_wire();
        wire.grants[0].operations.push("attest".into());
        let read = AuthzState::from_wire(&wire, "authorization").unwrap();
        let kept = read.active().next().unwrap();
        assert_eq!(kept.operations, [Operation::Encrypt].into_iter().collect());
        assert_eq!(kept.unknown_operations, vec!["attest".to_string()]);
        assert_eq!(read.to_wire(), wire, "the grant travels on unchanged");
        wire.grants[0].operations.push("Attest Now".into());
        assert!(AuthzState::from_wire(&wire, "authorization").is_err(), "malformed names are still refused");
    }
}
