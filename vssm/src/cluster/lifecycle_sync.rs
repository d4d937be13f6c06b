//! Replication of key lifecycle state (states, deletion schedules,
//! tombstones, minimum versions, rotation schedules) on the sync port,
//! exactly as [`super::authz_sync`] replicates the authorization state: a
//! push of what a node changed, and in an anti-entropy round whose state
//! digest differs a comparison of the lifecycle digests followed, when
//! they differ, by one exchange of the whole state both ways. Merging
//! follows [`crate::lifecycle`]'s rules, so a partial, repeated or crossed
//! push is harmless, and a tombstone wins every merge. Key versions
//! themselves are key records and travel with them.
//!
//! A peer of an older version answers 404 on these paths: it is skipped.

use super::peer_client::{PeerClient, PeerError};
use super::protocol::Empty;
use super::sync::SyncError;
use crate::audit::Outcome;
use crate::keystore::KeyType;
use crate::lifecycle::{LifecycleError, LifecycleMap};
use crate::node::Node;
use crate::server::json::{json_response, parse_json};
use crate::wire::lifecycle::KeyLifecycleWire;
use crate::wire::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

type HttpResponse = hyper::Response<http_body_util::Full<bytes::Bytes>>;

/// How far ahead of this node's clock a peer's register times may be
/// before they are moved back (see `KeyLifecycle::clamp_future`).
const PEER_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// Sync port: the digest of the lifecycle state.
pub const DIGEST_PATH: &str = "/cluster/v1/lifecycle/digest";
/// Sync port: the caller's whole state in, the callee's whole state out.
pub const STATE_PATH: &str = "/cluster/v1/lifecycle/state";
/// Sync port: entries the caller changed.
pub const PUSH_PATH: &str = "/cluster/v1/lifecycle/push";
/// Sync port: when this node last used each version of one key.
pub const LAST_USED_PATH: &str = "/cluster/v1/lifecycle/lastused";

/// How long keys/describe waits for a peer's last-use times.
const LAST_USED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// A [`LAST_USED_PATH`] request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LastUsedRequest {
    /// SYMMETRIC, ASYMMETRIC or MAC.
    pub key_type: String,
    /// The key.
    pub name: String,
}

/// One version's last use on one node.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LastUsedEntry {
    /// The version.
    pub version: u32,
    /// Its key id (8 hex digits).
    pub key_id: String,
    /// Seconds since the Unix epoch.
    pub last_used: crate::wire::Int64,
}

/// A [`LAST_USED_PATH`] answer: the versions this node used.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LastUsedResponse {
    /// One entry per used version.
    pub versions: Vec<LastUsedEntry>,
}

/// This node's last uses of every version of `key_type`/`name`.
pub fn local_last_used(node: &Node, key_type: KeyType, name: &str) -> LastUsedResponse {
    let snapshot = node.keystore.snapshot();
    let Some(entry) = snapshot.entry(key_type, name) else { return LastUsedResponse::default() };
    let versions = entry
        .records()
        .filter_map(|record| {
            let seconds = record.last_used_s.load(std::sync::atomic::Ordering::Relaxed);
            (seconds > 0).then(|| LastUsedEntry {
                version: record.version,
                key_id: crate::wire::codec::encode_hex(&record.key_id()),
                last_used: crate::wire::Int64(seconds),
            })
        })
        .collect();
    LastUsedResponse { versions }
}

/// The last uses of every version of a key across the cluster: this
/// node's and those of every peer that answers within two seconds, the
/// latest per (version, key id); and how many nodes answered.
pub async fn cluster_last_used(node: &Node, key_type: KeyType, name: &str) -> (HashMap<(u32, String), i64>, usize) {
    let mut latest: HashMap<(u32, String), i64> = HashMap::new();
    let mut take = |answer: LastUsedResponse| {
        for entry in answer.versions {
            let slot = latest.entry((entry.version, entry.key_id)).or_default();
            *slot = (*slot).max(entry.last_used.0);
        }
    };
    take(local_last_used(node, key_type, name));
    let mut answered = 1;
    let peers: Vec<String> = node.cluster_stats.peers.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let (Some(tls), false) = (node.cluster_tls(), peers.is_empty()) {
        let client =
            Arc::new(PeerClient::new(Arc::clone(&tls.peer_client), node.config.bind_address, LAST_USED_TIMEOUT));
        let mut calls = tokio::task::JoinSet::new();
        for ip in peers.iter().filter_map(|p| p.parse::<std::net::IpAddr>().ok()) {
            let (client, port) = (Arc::clone(&client), node.config.ports.sync);
            let request = LastUsedRequest { key_type: key_type.as_str().to_string(), name: name.to_string() };
            calls.spawn(async move {
                client.post_json::<_, LastUsedResponse>(SocketAddr::new(ip, port), LAST_USED_PATH, &request).await
            });
        }
        while let Some(result) = calls.join_next().await {
            if let Ok(Ok(answer)) = result {
                answered += 1;
                take(answer);
            }
        }
    }
    (latest, answered)
}

/// The lifecycle state on the wire: one entry per key.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleMessage {
    /// The entries.
    #[serde(default)]
    pub keys: Vec<KeyLifecycleWire>,
}

/// The digest of a node's lifecycle state.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LifecycleDigestResponse {
    /// See [`LifecycleMap::digest`].
    pub digest: Bytes,
}

/// Merges state that came from `peer` and audits what it destroyed.
pub fn merge_from_peer(node: &Node, peer: &str, message: &LifecycleMessage) -> Result<usize, LifecycleError> {
    let mut incoming = LifecycleMap::from_wire(&message.keys, "lifecycle")?;
    // A peer's clock may run a little ahead; more would pin a register.
    incoming.clamp_future(crate::server::api::now_ms() + PEER_CLOCK_SKEW_MS);
    let report = node.keystore.merge_lifecycle(&incoming);
    if !report.changed.is_empty() {
        let destroyed = if report.destroyed.is_empty() {
            String::new()
        } else {
            format!("; material destroyed: {}", report.destroyed.join(", "))
        };
        node.audit.record_history(
            "sync-lifecycle",
            peer,
            Outcome::Ok,
            &format!("lifecycle of {} keys changed{destroyed}", report.changed.len()),
        );
    }
    Ok(report.changed.len())
}

fn message_of(map: &LifecycleMap) -> LifecycleMessage {
    LifecycleMessage { keys: map.to_wire() }
}

/// The sync-port answer for `path`, or None when it is not a lifecycle path.
pub fn handle(node: &Node, peer: &str, path: &str, body: &[u8]) -> Option<Result<HttpResponse, SyncError>> {
    Some(match path {
        DIGEST_PATH => parse_json::<Empty>(body).map_err(SyncError::from).and_then(|_| {
            let digest = Bytes(node.keystore.snapshot().lifecycle_map().digest().to_vec());
            Ok(json_response(&LifecycleDigestResponse { digest })?)
        }),
        STATE_PATH => parse_json::<LifecycleMessage>(body).map_err(SyncError::from).and_then(|theirs| {
            merge_from_peer(node, peer, &theirs)?;
            Ok(json_response(&message_of(node.keystore.snapshot().lifecycle_map()))?)
        }),
        PUSH_PATH => parse_json::<LifecycleMessage>(body).map_err(SyncError::from).and_then(|theirs| {
            merge_from_peer(node, peer, &theirs)?;
            Ok(json_response(&Empty {})?)
        }),
        LAST_USED_PATH => parse_json::<LastUsedRequest>(body).map_err(SyncError::from).and_then(|request| {
            let answer = match KeyType::parse(&request.key_type) {
                Some(key_type) => local_last_used(node, key_type, &request.name),
                None => LastUsedResponse::default(),
            };
            Ok(json_response(&answer)?)
        }),
        _ => return None,
    })
}

/// True when the peer answered 404: a node of an older version.
fn unsupported(result: &Result<impl Sized, PeerError>) -> bool {
    matches!(result, Err(PeerError::Status { status, .. }) if *status == hyper::StatusCode::NOT_FOUND)
}

/// The lifecycle part of an anti-entropy round with `peer`; true when both
/// states are now equal (false with a peer of an older version).
pub async fn reconcile(node: &Node, client: &PeerClient, peer: SocketAddr) -> Result<bool, PeerError> {
    let snapshot = node.keystore.snapshot();
    let ours = snapshot.lifecycle_map();
    let remote = client.post_json::<_, LifecycleDigestResponse>(peer, DIGEST_PATH, &Empty {}).await;
    if unsupported(&remote) {
        return Ok(false);
    }
    if remote?.digest.0 == ours.digest() {
        return Ok(true);
    }
    let theirs: LifecycleMessage = client.post_json(peer, STATE_PATH, &message_of(ours)).await?;
    merge_from_peer(node, &peer.ip().to_string(), &theirs)
        .map_err(|e| PeerError::Lifecycle { peer, source: Box::new(e) })?;
    Ok(true)
}

/// Pushes the entries this node changed to `peer`.
pub async fn push(client: &PeerClient, peer: SocketAddr, changed: &LifecycleMap) -> Result<(), PeerError> {
    let result = client.post_json::<_, Empty>(peer, PUSH_PATH, &message_of(changed)).await;
    if unsupported(&result) {
        return Ok(());
    }
    result.map(|_| ())
}
