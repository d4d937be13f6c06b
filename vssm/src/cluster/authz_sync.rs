//! Replication of the authorization state (grants, revocations, the mode)
//! on the sync port, beside the key records: a push of the records a node
//! added, and in an anti-entropy round whose state digest differs
//! ([`super::protocol::STATE_DIGEST_PATH`]) a comparison of the
//! authorization digests followed, when they differ, by one exchange of
//! the whole state both ways.
//! Merging is a union (see [`crate::authz::state`]), so a partial push, a
//! repeated one or one that crosses another is harmless.
//!
//! A peer of an older version answers 404 on these paths: it is skipped
//! (it neither holds nor enforces grants; see SECURITY.md).

use super::peer_client::{PeerClient, PeerError};
use super::protocol::Empty;
use super::sync::SyncError;
use crate::audit::Outcome;
use crate::authz::{AuthzState, GrantError, MergeChanges};
use crate::node::Node;
use crate::server::json::{json_response, parse_json};
use crate::wire::authz::AuthorizationStateWire;
use crate::wire::Bytes;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

type HttpResponse = hyper::Response<http_body_util::Full<bytes::Bytes>>;

/// Sync port: the digest of the authorization state.
pub const DIGEST_PATH: &str = "/cluster/v1/policy/digest";
/// Sync port: the caller's whole state in, the callee's whole state out.
pub const STATE_PATH: &str = "/cluster/v1/policy/state";
/// Sync port: records the caller added.
pub const PUSH_PATH: &str = "/cluster/v1/policy/push";

/// The digest of a node's authorization state.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyDigestResponse {
    /// See [`AuthzState::digest`].
    pub digest: Bytes,
}

/// Merges state that came from `peer` and audits what it changed.
pub fn merge_from_peer(node: &Node, peer: &str, wire: &AuthorizationStateWire) -> Result<MergeChanges, GrantError> {
    let incoming = AuthzState::from_wire(wire, "authorization")?;
    let changes = node.authz.merge(&incoming);
    if !changes.is_empty() {
        node.audit.record_history(
            "sync-authorization",
            peer,
            Outcome::Ok,
            &format!(
                "{} grants and {} revocations added{}",
                changes.grants,
                changes.revocations,
                if changes.mode {
                    format!(", policy now {}", if node.authz.enforced() { "enforced" } else { "not enforced" })
                } else {
                    String::new()
                }
            ),
        );
    }
    Ok(changes)
}

/// The sync-port answer for `path`, or None when it is not a policy path.
pub fn handle(node: &Node, peer: &str, path: &str, body: &[u8]) -> Option<Result<HttpResponse, SyncError>> {
    Some(match path {
        DIGEST_PATH => parse_json::<Empty>(body).map_err(SyncError::from).and_then(|_| {
            let digest = Bytes(node.authz.policy().digest().to_vec());
            Ok(json_response(&PolicyDigestResponse { digest })?)
        }),
        STATE_PATH => parse_json::<AuthorizationStateWire>(body).map_err(SyncError::from).and_then(|theirs| {
            merge_from_peer(node, peer, &theirs)?;
            Ok(json_response(&node.authz.policy().state().to_wire())?)
        }),
        PUSH_PATH => parse_json::<AuthorizationStateWire>(body).map_err(SyncError::from).and_then(|theirs| {
            merge_from_peer(node, peer, &theirs)?;
            Ok(json_response(&Empty {})?)
        }),
        _ => return None,
    })
}

/// True when the peer answered 404: a node of an older version.
fn unsupported(result: &Result<impl Sized, PeerError>) -> bool {
    matches!(result, Err(PeerError::Status { status, .. }) if *status == hyper::StatusCode::NOT_FOUND)
}

/// The authorization part of an anti-entropy round with `peer`; true when
/// both states are now equal (false with a peer of an older version).
pub async fn reconcile(node: &Node, client: &PeerClient, peer: SocketAddr) -> Result<bool, PeerError> {
    let ours = node.authz.policy();
    let remote = client.post_json::<_, PolicyDigestResponse>(peer, DIGEST_PATH, &Empty {}).await;
    if unsupported(&remote) {
        return Ok(false);
    }
    if remote?.digest.0 == ours.digest() {
        return Ok(true);
    }
    let theirs: AuthorizationStateWire = client.post_json(peer, STATE_PATH, &ours.state().to_wire()).await?;
    merge_from_peer(node, &peer.ip().to_string(), &theirs)
        .map_err(|source| PeerError::Authorization { peer, source })?;
    Ok(true)
}

/// Pushes the records this node added to `peer`.
pub async fn push(client: &PeerClient, peer: SocketAddr, added: &AuthzState) -> Result<(), PeerError> {
    let result = client.post_json::<_, Empty>(peer, PUSH_PATH, &added.to_wire()).await;
    if unsupported(&result) {
        return Ok(());
    }
    result.map(|_| ())
}
