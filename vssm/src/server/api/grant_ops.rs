//! The grant endpoints: create, revoke and list grants, and turn
//! enforcement on or off (operation `manage-grants`). Each change is
//! applied all or nothing, audited by the dispatcher in `admin_ops`, and
//! pushed to the peers.

use super::admin_ops::authorize;
use super::{json_response, parse_json, ApiError, ApiResult, ClientInfo};
use crate::audit::Outcome;
use crate::authz::state::{parse_grant_content, stored_subject, UnknownOperations, MAX_GRANT_RECORDS};
use crate::authz::{AccessError, AuthzState, Grant, GrantError, GrantId, Operation, PolicyMode, Revocation};
use crate::node::Node;
use crate::wire::authz::{
    CreateGrantsRequest, GrantsResponse, ListGrantsResponse, RevokeGrantsRequest, RevokeGrantsResponse,
    SetPolicyRequest, SetPolicyResponse,
};
use crate::wire::{Int64, PasswordOnlyRequest};

/// Grants or ids one request may carry.
pub const MAX_PER_REQUEST: usize = 1000;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Refuses a list `field` that is empty or longer than [`MAX_PER_REQUEST`].
fn check_entries(field: &str, len: usize) -> Result<(), ApiError> {
    let reason = match len {
        0 => "is required".to_string(),
        n if n > MAX_PER_REQUEST => format!("holds more than {MAX_PER_REQUEST} entries"),
        _ => return Ok(()),
    };
    Err(GrantError { field: field.into(), reason }.into())
}

/// admin/creategrants: every grant valid, or none added.
pub async fn create(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: CreateGrantsRequest = parse_json(body)?;
    authorize(node, client, &request.admin_password.0, Operation::ManageGrants, None, detail).await?;
    check_entries("grants", request.grants.len())?;
    let created_at_ms = now_ms();
    let mut added = AuthzState::default();
    let mut grants = Vec::with_capacity(request.grants.len());
    for (i, wire) in request.grants.iter().enumerate() {
        let field = format!("grants[{i}]");
        if !wire.id.is_empty() || !wire.created_by.is_empty() || wire.created_at.0 != 0 {
            return Err(GrantError { field, reason: "id, createdAt and createdBy are set by the node".into() }.into());
        }
        let content = parse_grant_content(wire, &field, UnknownOperations::Refuse)?;
        let grant = Grant {
            id: GrantId::random(),
            identity: content.identity,
            keys: content.keys,
            operations: content.operations,
            unknown_operations: content.unknown_operations,
            comment: wire.comment.clone(),
            created_at_ms,
            created_by: stored_subject(&client.subject),
        };
        grants.push(grant.to_wire());
        added.add_grant(grant);
    }
    node.authz.update(|state| {
        if state.record_count() + added.record_count() > MAX_GRANT_RECORDS {
            return Err(AccessError::Limit(format!(
                "the cluster holds {} of at most {MAX_GRANT_RECORDS} grant records",
                state.record_count()
            )));
        }
        state.merge(&added);
        Ok(())
    })?;
    // One history line per grant: the request's own line is bounded.
    detail.push_str(&format!(" created={}", grants.len()));
    for g in &grants {
        let line = format!("id={} identity={} keys={} operations={}", g.id, g.identity, g.keys, g.operations.join(","));
        node.audit.record_history("creategrant", &client.subject, Outcome::Ok, &line);
    }
    node.authorization_changed(added);
    json_response(&GrantsResponse { grants })
}

/// Refuses a restore whose authorization state would take the cluster past
/// [`MAX_GRANT_RECORDS`] (records it holds already do not count).
pub fn check_restore_limit(node: &Node, incoming: &AuthzState) -> Result<(), ApiError> {
    let policy = node.authz.policy();
    let mut merged = policy.state().clone();
    merged.merge(incoming);
    let new_records = merged.record_count() - policy.state().record_count();
    if new_records > 0 && merged.record_count() > MAX_GRANT_RECORDS {
        return Err(AccessError::Limit(format!(
            "the backup would take the cluster to {} of at most {MAX_GRANT_RECORDS} grant records",
            merged.record_count()
        ))
        .into());
    }
    Ok(())
}

/// admin/revokegrants: records a revocation for every id (known here or not).
pub async fn revoke(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: RevokeGrantsRequest = parse_json(body)?;
    authorize(node, client, &request.admin_password.0, Operation::ManageGrants, None, detail).await?;
    check_entries("ids", request.ids.len())?;
    let mut ids = Vec::with_capacity(request.ids.len());
    for (i, text) in request.ids.iter().enumerate() {
        let id = GrantId::parse(text)
            .ok_or_else(|| GrantError { field: format!("ids[{i}]"), reason: "is not 32 hex digits".into() })?;
        ids.push(id);
    }
    let revocation = Revocation { revoked_at_ms: now_ms(), revoked_by: stored_subject(&client.subject) };
    let mut added = AuthzState::default();
    let mut answer = RevokeGrantsResponse { revoked: Vec::new(), unknown: Vec::new() };
    node.authz.update(|state| {
        // Revoking a known grant is always possible (it adds at most one
        // record per grant); ids unknown here count against the limit.
        let unknown = ids.iter().filter(|id| !state.knows_grant(id) && !state.is_revoked(id)).count();
        if unknown > 0 && state.record_count() + unknown > MAX_GRANT_RECORDS {
            return Err(ApiError::from(AccessError::Limit(format!(
                "the cluster holds {} of at most {MAX_GRANT_RECORDS} grant records; unknown ids cannot be revoked ahead",
                state.record_count()
            ))));
        }
        for id in &ids {
            let active = state.knows_grant(id) && !state.is_revoked(id);
            if !state.knows_grant(id) {
                answer.unknown.push(id.to_string());
            } else if active {
                answer.revoked.push(id.to_string());
            }
            state.add_revocation(*id, revocation.clone());
            added.add_revocation(*id, revocation.clone());
        }
        Ok(())
    })?;
    detail.push_str(&format!(" revoked={} unknown={}", answer.revoked.len(), answer.unknown.len()));
    for id in answer.revoked.iter().chain(&answer.unknown) {
        node.audit.record_history("revokegrant", &client.subject, Outcome::Ok, &format!("id={id}"));
    }
    node.authorization_changed(added);
    json_response(&answer)
}

/// admin/listgrants: the active grants.
pub async fn list(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: PasswordOnlyRequest = parse_json(body)?;
    authorize(node, client, &request.admin_password.0, Operation::ManageGrants, None, detail).await?;
    let policy = node.authz.policy();
    json_response(&ListGrantsResponse {
        policy_enforced: policy.enforced(),
        grants: policy.state().active().map(|g| g.to_wire()).collect(),
        revoked_count: Int64(policy.state().revocation_count() as i64),
    })
}

/// admin/setpolicy: turns enforcement on or off, cluster-wide.
pub async fn set_policy(node: &Node, client: &ClientInfo, body: &[u8], detail: &mut String) -> ApiResult {
    let request: SetPolicyRequest = parse_json(body)?;
    authorize(node, client, &request.admin_password.0, Operation::ManageGrants, None, detail).await?;
    let enforce =
        request.enforce.ok_or_else(|| GrantError { field: "enforce".into(), reason: "is required".into() })?;
    let mode = PolicyMode { enforce, changed_at_ms: now_ms(), changed_by: stored_subject(&client.subject) };
    let mut added = AuthzState::default();
    node.authz.update(|state| {
        // A clock behind the last change would lose the register: the
        // change is made one millisecond after it instead.
        let mut mode = mode;
        if let Some(last) = state.mode() {
            mode.changed_at_ms = mode.changed_at_ms.max(last.changed_at_ms.saturating_add(1));
        }
        added.set_mode(mode.clone());
        state.set_mode(mode);
        Ok::<_, ApiError>(())
    })?;
    detail.push_str(&format!(" enforce={enforce}"));
    node.authorization_changed(added);
    json_response(&SetPolicyResponse { policy_enforced: node.authz.enforced() })
}
