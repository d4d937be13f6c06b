//! Authorization of API requests: uses of keys by the caller's grants
//! (every use in compatibility mode), management by the admin password or
//! by the caller's grants. Every refusal is audited with the identity, the
//! operation and the key.

use super::{ApiError, ClientInfo};
use crate::audit::Outcome;
use crate::authz::{AccessError, IdentityGrants, Operation};
use crate::node::Node;
use std::sync::Arc;

/// How a management request proved its right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminProof {
    /// The admin password.
    Password,
    /// A grant of the caller's certificate.
    Certificate,
}

impl AdminProof {
    /// For the audit line.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminProof::Password => "auth=password",
            AdminProof::Certificate => "auth=certificate",
        }
    }
}

/// The caller's grants under the current policy (none for a connection
/// without a certificate, which never gets this far).
pub fn grants_of(node: &Node, client: &ClientInfo) -> Option<Arc<IdentityGrants>> {
    client.authz.as_ref().map(|authz| authz.grants(&node.authz))
}

/// Under enforcement, or once the cluster keeps key lifecycle state (a key
/// disabled, scheduled for deletion or destroyed), waits for a cluster
/// node's state to be confirmed with a peer when it is stale (see
/// `authz::freshness`): a node that was stopped or cut off applies
/// revocations and destructions before it serves again. So does a cluster
/// node that was paused, in every mode (it may have missed the cluster's
/// first destruction). At once otherwise.
pub async fn ensure_current(node: &Node) -> Result<(), ApiError> {
    if node.authz.enforced() || node.keystore.snapshot().has_lifecycle() || node.authz.freshness.was_paused() {
        confirm(node).await?;
    }
    Ok(())
}

/// Confirms a cluster node's state with a peer if it is stale.
async fn confirm(node: &Node) -> Result<(), ApiError> {
    if node.authz.freshness.confirm().await {
        return Ok(());
    }
    let bound = node.authz.freshness.bound().map_or(0, |b| b.as_secs());
    Err(AccessError::NotConfirmed(bound).into())
}

/// Refuses `op` on the key `name` unless the caller may do it; the
/// decision comes before the key lookup, so a refusal reveals nothing
/// about which keys exist.
pub fn check_use(node: &Node, client: &ClientInfo, op: Operation, name: &str) -> Result<(), ApiError> {
    // Compatibility mode: one atomic load, as before grants existed.
    if !node.authz.enforced() {
        return Ok(());
    }
    if grants_of(node, client).is_some_and(|g| g.allows_use(op, name)) {
        return Ok(());
    }
    Err(refuse(node, client, op, name))
}

/// Audits and returns the refusal of `op` on `name`.
pub fn refuse(node: &Node, client: &ClientInfo, op: Operation, name: &str) -> ApiError {
    let error = AccessError::denied(op, name);
    node.audit.record(
        "authorize",
        &client.subject,
        Outcome::Refused,
        &format!("op={op} key={}: {error}", crate::crypto::quote(name)),
    );
    error.into()
}

/// Authorizes a management request: a non-empty `password` is checked as
/// the admin password (when the configuration allows it); without one a
/// grant of the caller must allow `op` on `key` (None: on some key, as for
/// a whole listing and the cluster-wide operations). In compatibility
/// mode, a caller without such a grant gets the password check as before
/// (an empty password fails it).
pub async fn authorize_admin(
    node: &Node,
    client: &ClientInfo,
    password: &str,
    op: Operation,
    key: Option<&str>,
) -> Result<AdminProof, ApiError> {
    if !password.is_empty() {
        if !node.authz.password_admin {
            return Err(AccessError::PasswordAdminOff.into());
        }
        node.admin.authorize(&client.subject, client.peer.ip(), password).await?;
        return Ok(AdminProof::Password);
    }
    if grants_of(node, client).is_some_and(|g| g.granted(op, key)) {
        // Even in compatibility mode: a revoked officer must not act on a
        // node that has not heard of the revocation.
        confirm(node).await?;
        return Ok(AdminProof::Certificate);
    }
    if node.authz.enforced() || !node.authz.password_admin {
        return Err(refuse(node, client, op, key.unwrap_or("*")));
    }
    node.admin.authorize(&client.subject, client.peer.ip(), password).await?;
    Ok(AdminProof::Password)
}
