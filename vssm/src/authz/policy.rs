//! The compiled, immutable form of the authorization state that decisions
//! read: grants indexed by the exact identity values they name, so finding
//! the grants of one client costs a few hash lookups plus a scan of the
//! pattern grants only, whatever the number of grants.

use super::identity::ClientIdentity;
use super::operation::{Operation, OperationSet};
use super::selector::{IdentitySelector, KeySelector};
use super::state::{AuthzState, Grant};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One snapshot of the authorization state, ready for decisions.
#[derive(Debug, Default)]
pub struct Policy {
    state: AuthzState,
    /// Unique per snapshot: connections cache their grants by it.
    generation: u64,
    by_spki: HashMap<[u8; 32], Vec<Arc<Grant>>>,
    by_subject: HashMap<String, Vec<Arc<Grant>>>,
    by_common_name: HashMap<String, Vec<Arc<Grant>>>,
    /// Lowercased: DNS selectors compare case-insensitively.
    by_dns_name: HashMap<String, Vec<Arc<Grant>>>,
    /// Pattern, email, URI and IP grants: checked one by one.
    scanned: Vec<Arc<Grant>>,
    /// The state's digest, computed once (every sync round asks).
    digest: std::sync::OnceLock<[u8; 32]>,
}

static GENERATIONS: AtomicU64 = AtomicU64::new(1);

impl Policy {
    /// Compiles `state`.
    pub fn new(state: AuthzState) -> Policy {
        let mut policy = Policy { generation: GENERATIONS.fetch_add(1, Ordering::Relaxed), ..Policy::default() };
        for grant in state.active() {
            let grant = Arc::clone(grant);
            let bucket = match &grant.identity {
                IdentitySelector::Spki(hash) => policy.by_spki.entry(*hash).or_default(),
                IdentitySelector::Subject(dn) => policy.by_subject.entry(dn.clone()).or_default(),
                IdentitySelector::CommonName(p) if p.exact().is_some() => {
                    policy.by_common_name.entry(p.exact().unwrap_or_default().to_string()).or_default()
                }
                IdentitySelector::Dns(p) if p.exact().is_some() => {
                    policy.by_dns_name.entry(p.exact().unwrap_or_default().to_ascii_lowercase()).or_default()
                }
                _ => &mut policy.scanned,
            };
            bucket.push(grant);
        }
        policy.state = state;
        policy
    }

    /// The state this policy was compiled from.
    pub fn state(&self) -> &AuthzState {
        &self.state
    }

    /// True when everything not granted is denied.
    pub fn enforced(&self) -> bool {
        self.state.enforced()
    }

    /// [`AuthzState::digest`] of the state, computed once per snapshot.
    pub fn digest(&self) -> [u8; 32] {
        *self.digest.get_or_init(|| self.state.digest())
    }

    /// Identifies this snapshot.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The active grants that cover `identity`, in a stable order.
    pub fn grants_for(&self, identity: &ClientIdentity) -> Vec<Arc<Grant>> {
        let mut out: Vec<Arc<Grant>> = Vec::new();
        let mut take = |grants: Option<&Vec<Arc<Grant>>>| out.extend(grants.into_iter().flatten().cloned());
        take(self.by_spki.get(&identity.spki_sha256));
        take(self.by_subject.get(&identity.subject));
        for cn in &identity.common_names {
            take(self.by_common_name.get(cn));
        }
        for dns in &identity.dns_names {
            take(self.by_dns_name.get(&dns.to_ascii_lowercase()));
        }
        out.extend(self.scanned.iter().filter(|g| g.identity.matches(identity)).cloned());
        out.sort_by_key(|g| g.id);
        out.dedup_by_key(|g| g.id);
        out
    }
}

/// The grants of one identity under one policy snapshot, reduced to what
/// decisions need.
#[derive(Debug)]
pub struct IdentityGrants {
    /// The snapshot these were computed from.
    pub generation: u64,
    /// Whether that snapshot enforces.
    pub enforced: bool,
    /// (keys, operations) of every grant that covers the identity.
    pub rules: Vec<(KeySelector, OperationSet)>,
}

impl IdentityGrants {
    /// Computes the rules of `identity` under `policy`.
    pub fn compute(policy: &Policy, identity: &ClientIdentity) -> IdentityGrants {
        IdentityGrants {
            generation: policy.generation(),
            enforced: policy.enforced(),
            rules: policy.grants_for(identity).iter().map(|g| (g.keys.clone(), g.operations)).collect(),
        }
    }

    /// True when a grant allows `op` on the key `name`, or with None on
    /// some key (cluster-wide operations ignore the name: their grants
    /// select every key).
    pub fn granted(&self, op: Operation, name: Option<&str>) -> bool {
        self.rules
            .iter()
            .any(|(keys, ops)| ops.contains(op) && (op.is_cluster_wide() || name.is_none_or(|name| keys.matches(name))))
    }

    /// The use operations the grants allow on `name`.
    pub fn uses_of(&self, name: &str) -> OperationSet {
        self.rules
            .iter()
            .filter(|(keys, _)| keys.matches(name))
            .fold(OperationSet::empty(), |set, (_, ops)| set.union(ops.intersection(OperationSet::USES)))
    }

    /// The decision for a use of a key: every use is allowed while the
    /// policy is not enforced (compatibility mode), else only what a
    /// grant allows. Deny by default.
    pub fn allows_use(&self, op: Operation, name: &str) -> bool {
        !self.enforced || self.granted(op, Some(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::state::{GrantId, PolicyMode};
    use proptest::prelude::*;

    fn identity(cn: &str, dns: &str, spki: u8) -> ClientIdentity {
        ClientIdentity {
            subject: format!("CN={cn}"),
            common_names: vec![cn.into()],
            dns_names: vec![dns.into()],
            spki_sha256: [spki; 32],
            ..ClientIdentity::default()
        }
    }

    fn selectors() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ab]{1,2}".prop_map(|v| format!("cn:{v}")),
            "[ab]{0,1}".prop_map(|v| format!("cn:{v}*")),
            "[ab]{1,2}".prop_map(|v| format!("dns:{v}.example")),
            "[ab]{0,1}".prop_map(|v| format!("dns:*{v}.example")),
            (0u8..3).prop_map(|b| format!("spki:{}", format!("{b:02x}").repeat(32))),
            "[ab]{1,2}".prop_map(|v| format!("subject:CN={v}")),
        ]
    }

    fn grants() -> impl Strategy<Value = Vec<(String, String, Vec<Operation>)>> {
        let keys = prop_oneof![Just("*".to_string()), "[xy]{1,2}", "[xy]{0,1}".prop_map(|p| format!("{p}*"))];
        let ops = proptest::sample::subsequence(Operation::ALL[..8].to_vec(), 1..4);
        proptest::collection::vec((selectors(), keys, ops), 0..12)
    }

    fn state_of(grants: &[(String, String, Vec<Operation>)], enforce: bool) -> AuthzState {
        let mut state = AuthzState::default();
        for (i, (identity, keys, ops)) in grants.iter().enumerate() {
            state.add_grant(Grant {
                id: GrantId([i as u8; 16]),
                identity: IdentitySelector::parse(identity).unwrap(),
                keys: KeySelector::parse(keys).unwrap(),
                operations: ops.iter().copied().collect(),
                unknown_operations: Vec::new(),
                comment: String::new(),
                created_at_ms: 0,
                created_by: String::new(),
            });
        }
        state.set_mode(PolicyMode { enforce, changed_at_ms: 1, changed_by: String::new() });
        state
    }

    proptest! {
        /// Under enforcement a request is allowed exactly when one grant
        /// covers its identity, its key and its operation: everything else
        /// is denied, whatever the index the grant landed in.
        #[test]
        fn enforced_policy_denies_by_default(
            grants in grants(),
            cn in "[ab]{1,2}",
            dns in "[ab]{1,2}",
            spki in 0u8..3,
            key in "[xy]{1,2}",
            op in proptest::sample::select(Operation::ALL[..8].to_vec()),
        ) {
            let id = identity(&cn, &format!("{dns}.example"), spki);
            let policy = Policy::new(state_of(&grants, true));
            let decision = IdentityGrants::compute(&policy, &id).allows_use(op, &key);
            let expected = grants.iter().any(|(s, k, ops)| {
                IdentitySelector::parse(s).unwrap().matches(&id)
                    && KeySelector::parse(k).unwrap().matches(&key)
                    && ops.contains(&op)
            });
            prop_assert_eq!(decision, expected);
            let compatible = Policy::new(state_of(&grants, false));
            prop_assert!(IdentityGrants::compute(&compatible, &id).allows_use(op, &key));
        }
    }

    #[test]
    fn revoked_grants_and_other_identities_allow_nothing() {
        let mut state = state_of(&[("cn:svc-a".into(), "a/*".into(), vec![Operation::Encrypt])], true);
        let a = identity("svc-a", "a.example", 1);
        let b = identity("svc-b", "b.example", 2);
        let policy = Policy::new(state.clone());
        assert!(IdentityGrants::compute(&policy, &a).allows_use(Operation::Encrypt, "a/k"));
        assert!(!IdentityGrants::compute(&policy, &a).allows_use(Operation::Decrypt, "a/k"));
        assert!(!IdentityGrants::compute(&policy, &a).allows_use(Operation::Encrypt, "b/k"));
        assert!(!IdentityGrants::compute(&policy, &b).allows_use(Operation::Encrypt, "a/k"));
        state.add_revocation(
            GrantId([0; 16]),
            crate::authz::state::Revocation { revoked_at_ms: 2, revoked_by: String::new() },
        );
        let revoked = Policy::new(state);
        assert!(!IdentityGrants::compute(&revoked, &a).allows_use(Operation::Encrypt, "a/k"));
        assert_ne!(policy.generation(), revoked.generation());
    }
}
