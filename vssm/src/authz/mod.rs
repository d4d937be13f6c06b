//! Per-identity authorization: which client (by its certificate) may do
//! which operation with which keys.
//!
//! - [`identity`]: what a client certificate says about its holder;
//! - [`selector`] and [`operation`]: the parts of a grant;
//! - [`state`]: grants, revocations and the mode as replicated state with
//!   loss-free merge rules;
//! - [`policy`]: the compiled snapshot decisions read, lock-free;
//! - [`freshness`]: whether a cluster node's state is recent enough.
//!
//! In compatibility mode (the default: enforcement never turned on) every
//! trusted client may use every key, as in the first VSSM; grants then only
//! add certificate administration. Once enforced, everything not granted
//! is denied.

pub mod access;
pub mod freshness;
pub mod identity;
pub mod operation;
pub mod policy;
pub mod selector;
pub mod state;

pub use access::AccessError;
pub use identity::ClientIdentity;
pub use operation::{Operation, OperationSet};
pub use policy::{IdentityGrants, Policy};
pub use state::{AuthzState, Grant, GrantError, GrantId, MergeChanges, PolicyMode, Revocation};

use arc_swap::{ArcSwap, ArcSwapOption};
use freshness::Freshness;
use std::sync::{Arc, Mutex};

/// The node's authorization state and settings.
#[derive(Debug)]
pub struct Authorization {
    current: ArcSwap<Policy>,
    writer: Mutex<()>,
    /// False when the configuration turned password administration off.
    pub password_admin: bool,
    /// Staleness guard of a cluster node.
    pub freshness: Freshness,
}

impl Authorization {
    /// Empty state (compatibility mode).
    pub fn new(password_admin: bool, sync_interval: Option<std::time::Duration>) -> Authorization {
        Authorization {
            current: ArcSwap::from_pointee(Policy::new(AuthzState::default())),
            writer: Mutex::new(()),
            password_admin,
            freshness: Freshness::new(sync_interval),
        }
    }

    /// The current policy (lock-free).
    pub fn policy(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// True when enforcement is on (lock-free).
    pub fn enforced(&self) -> bool {
        self.current.load().enforced()
    }

    /// Applies `change` to a copy of the state and swaps it in when the
    /// change succeeds; all or nothing. Returns the change's result.
    pub fn update<R, E>(&self, change: impl FnOnce(&mut AuthzState) -> Result<R, E>) -> Result<R, E> {
        let _guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = self.current.load().state().clone();
        let result = change(&mut next)?;
        if next != *self.current.load().state() {
            self.current.store(Arc::new(Policy::new(next)));
        }
        Ok(result)
    }

    /// Merges state from a peer or a backup.
    pub fn merge(&self, incoming: &AuthzState) -> MergeChanges {
        self.update(|state| Ok::<_, std::convert::Infallible>(state.merge(incoming))).unwrap_or_else(|e| match e {})
    }
}

/// A connection's identity and its grants under the last policy it saw:
/// recomputed only when the policy changes, so a request checks a handful
/// of rules whatever the number of grants.
#[derive(Debug)]
pub struct ConnectionAuthz {
    /// The client.
    pub identity: ClientIdentity,
    cached: ArcSwapOption<IdentityGrants>,
}

impl ConnectionAuthz {
    /// For a client identity.
    pub fn new(identity: ClientIdentity) -> ConnectionAuthz {
        ConnectionAuthz { identity, cached: ArcSwapOption::empty() }
    }

    /// The identity's grants under the current policy.
    pub fn grants(&self, authorization: &Authorization) -> Arc<IdentityGrants> {
        let policy = authorization.current.load();
        if let Some(cached) = self.cached.load_full() {
            if cached.generation == policy.generation() {
                return cached;
            }
        }
        let fresh = Arc::new(IdentityGrants::compute(&policy, &self.identity));
        self.cached.store(Some(Arc::clone(&fresh)));
        fresh
    }
}
