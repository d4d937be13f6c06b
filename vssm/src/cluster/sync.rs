//! Key synchronization between nodes (port 8082, mutual TLS with the RPC
//! certificate on both sides). The server answers digest, manifest, fetch
//! and push; the client side runs one anti-entropy round with a peer:
//! compare digests (O(1) bytes when in sync), else exchange manifests and
//! move only the missing records, both ways.

use super::discovery::{Discovery, DiscoveryError};
use super::peer_client::{PeerClient, PeerError};
use super::protocol::*;
use crate::admin::backup::{self, BackupError};
use crate::audit::Outcome;
use crate::error::{error_response, Classify, ErrorKind};
use crate::keystore::{ConflictPolicy, Fingerprint, Inventory, KeyRecord, KeyType, MergeReport, Origin};
use crate::node::Node;
use crate::server::body::{read_body, BodyError, BodyPolicy};
use crate::server::json::{json_response, parse_json, JsonError};
use crate::wire::{Bytes as WireBytes, Int64};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Largest sync request (a push of many RSA keys).
pub const MAX_SYNC_BODY_BYTES: usize = 256 << 20;
/// Records per fetch or push request.
pub const BATCH: usize = 2000;

/// Why a sync request failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Every sync endpoint is POST.
    #[error("use POST")]
    MethodNotAllowed,
    /// The body could not be read within its limit.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The body is not the expected JSON.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// Pushed records that are not valid keys.
    #[error(transparent)]
    Records(#[from] BackupError),
    /// Authorization records that are not valid.
    #[error(transparent)]
    Authorization(#[from] crate::authz::GrantError),
    /// Lifecycle state that is not valid.
    #[error(transparent)]
    Lifecycle(#[from] crate::lifecycle::LifecycleError),
    /// No sync endpoint at this path.
    #[error("unknown sync endpoint")]
    UnknownEndpoint,
    /// The crypto self-tests failed: this node neither serves nor takes keys.
    #[error("{0}")]
    SelfTestFailed(&'static str),
    /// The caller holds the RPC certificate but is not a current member
    /// (e.g. an instance detached from the group).
    #[error("{0} is not a current member of the cluster")]
    NotMember(IpAddr),
    /// Current membership is unknown (discovery failing for longer than
    /// its staleness bound): this node syncs with nobody meanwhile.
    #[error("cluster membership unknown: {0}")]
    MembershipUnknown(DiscoveryError),
}

impl Classify for SyncError {
    fn kind(&self) -> ErrorKind {
        match self {
            SyncError::MethodNotAllowed => ErrorKind::MethodNotAllowed,
            SyncError::Body(e) => e.kind(),
            SyncError::Json(e) => e.kind(),
            SyncError::Records(e) => e.kind(),
            SyncError::Authorization(e) => e.kind(),
            SyncError::Lifecycle(e) => e.kind(),
            SyncError::UnknownEndpoint => ErrorKind::NotFound,
            SyncError::SelfTestFailed(_) | SyncError::MembershipUnknown(_) => ErrorKind::ServiceUnavailable,
            SyncError::NotMember(_) => ErrorKind::Forbidden,
        }
    }
}

/// Serves one request on the sync port; only current members (per
/// `members`) are served, whatever certificate they hold.
pub async fn handle(
    node: Arc<Node>,
    members: Arc<Discovery>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    match route(&node, &members, peer, request).await {
        Ok(response) => response,
        Err(error) => {
            if error.kind().outcome() == Outcome::Refused {
                node.audit.record("sync", &peer.ip().to_string(), Outcome::Refused, &error.to_string());
            }
            error_response(&error)
        }
    }
}

async fn route(
    node: &Node,
    members: &Discovery,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, SyncError> {
    if request.method() != Method::POST {
        return Err(SyncError::MethodNotAllowed);
    }
    crate::crypto::selftest::check().map_err(SyncError::SelfTestFailed)?;
    // Holding the RPC certificate is not enough: an instance that left the
    // group (or never was in it) neither reads nor pushes keys.
    if !members.is_member_ip(peer.ip()).await.map_err(SyncError::MembershipUnknown)? {
        return Err(SyncError::NotMember(peer.ip()));
    }
    let path = request.uri().path().to_string();
    let with_origin = request.headers().contains_key(ORIGIN_HEADER);
    // Not charged to the client budget: peers hold the RPC key, and one
    // push may be larger than that budget.
    let body = read_body(request, MAX_SYNC_BODY_BYTES, &BodyPolicy::cluster_peer()).await?;
    if let Some(answer) = super::authz_sync::handle(node, &peer.ip().to_string(), &path, &body) {
        return answer;
    }
    if let Some(answer) = super::lifecycle_sync::handle(node, &peer.ip().to_string(), &path, &body) {
        return answer;
    }
    let snapshot = node.keystore.snapshot();
    match path.as_str() {
        DIGEST_PATH => {
            parse_json::<Empty>(&body)?;
            Ok(json_response(&DigestResponse {
                digest: WireBytes(snapshot.digest().to_vec()),
                count: Int64(snapshot.len() as i64),
            })?)
        }
        STATE_DIGEST_PATH => {
            parse_json::<Empty>(&body)?;
            let digest = state_digest(&snapshot, &node.authz.policy().digest());
            Ok(json_response(&DigestResponse {
                digest: WireBytes(digest.to_vec()),
                count: Int64(snapshot.len() as i64),
            })?)
        }
        MANIFEST_PATH => {
            parse_json::<Empty>(&body)?;
            Ok(json_response(&ManifestResponse { entries: manifest(&snapshot, with_origin) })?)
        }
        FETCH_PATH => {
            let request: FetchRequest = parse_json(&body)?;
            let records = request.entries.iter().filter_map(|e| lookup(&snapshot, e));
            Ok(json_response(&records_message(records, with_origin))?)
        }
        PUSH_PATH => {
            let request: RecordsMessage = parse_json(&body)?;
            let records = records_from_message(request)?;
            let report = merge_from_peer(node, &peer.ip().to_string(), records);
            Ok(json_response(&PushResponse { added: Int64(report.added as i64), conflicts: report.conflicts })?)
        }
        _ => Err(SyncError::UnknownEndpoint),
    }
}

/// Merges records that came from a peer and audits conflicts.
pub fn merge_from_peer(node: &Node, peer: &str, records: Vec<KeyRecord>) -> MergeReport {
    let report = node.keystore.merge(records, ConflictPolicy::KeepBoth);
    for conflict in &report.conflicts {
        let detail = if report.restored_outranked.contains(conflict) {
            "a version restored from a backup meets one generated or injected in the cluster: the generated or injected one is active whatever the createdAt, the restored one is usable as name~fingerprint"
        } else {
            "peers hold different material under this name; both are kept, the older is active, the other is usable as name~fingerprint"
        };
        node.audit.record_history("sync-conflict", peer, Outcome::Failed, &format!("{conflict}: {detail}"));
    }
    report
}

/// Records in wire form, with their origins for a peer that understands them.
fn records_message<'a>(records: impl IntoIterator<Item = &'a Arc<KeyRecord>>, with_origin: bool) -> RecordsMessage {
    let records: Vec<&Arc<KeyRecord>> = records.into_iter().collect();
    let mut restored = Vec::new();
    if with_origin {
        // The order records_from_wire reads them back in.
        let in_wire_order = [KeyType::Symmetric, KeyType::Mac, KeyType::Asymmetric]
            .into_iter()
            .flat_map(|t| records.iter().filter(move |r| r.material.key_type() == t));
        for (i, record) in in_wire_order.enumerate() {
            if record.origin == Origin::Restored {
                restored.push(i as u32);
            }
        }
    }
    RecordsMessage { inventory: backup::records_to_wire(records), restored }
}

/// The records of a message, those it names as restored marked so
/// (indexes past the end are ignored).
pub fn records_from_message(message: RecordsMessage) -> Result<Vec<KeyRecord>, BackupError> {
    let mut records = backup::records_from_wire(message.inventory)?;
    for i in message.restored {
        if let Some(record) = records.get_mut(i as usize) {
            record.origin = Origin::Restored;
        }
    }
    Ok(records)
}

fn manifest(snapshot: &Inventory, with_origin: bool) -> Vec<ManifestEntry> {
    snapshot.records().into_iter().map(|r| entry_of(r, with_origin)).collect()
}

fn entry_of(record: &KeyRecord, with_origin: bool) -> ManifestEntry {
    ManifestEntry {
        key_type: record.material.key_type().as_str().to_string(),
        name: record.name.clone(),
        fingerprint: WireBytes(record.fingerprint.to_vec()),
        version: record.version,
        restored: with_origin && record.origin == Origin::Restored,
    }
}

fn lookup<'a>(snapshot: &'a Inventory, entry: &ManifestEntry) -> Option<&'a Arc<KeyRecord>> {
    let key_type = KeyType::parse(&entry.key_type)?;
    let fingerprint: Fingerprint = entry.fingerprint.0.as_slice().try_into().ok()?;
    snapshot.version(key_type, &entry.name, &fingerprint)
}

/// What one anti-entropy round did.
#[derive(Debug, Default, Clone, Copy)]
pub struct RoundReport {
    /// Records fetched from the peer.
    pub fetched: usize,
    /// Records pushed to the peer.
    pub pushed: usize,
    /// The authorization states were compared and are now equal (false
    /// with a peer of an older version, or when the exchange failed).
    pub authorization_current: bool,
    /// The same for the key lifecycle states.
    pub lifecycle_current: bool,
}

/// One anti-entropy round with `peer`: one digest of everything (O(1)
/// bytes when in sync), else the authorization state, then the keys:
/// digest first, then only the difference.
pub async fn reconcile(node: &Node, client: &PeerClient, peer: SocketAddr) -> Result<RoundReport, PeerError> {
    let snapshot = node.keystore.snapshot();
    let ours = state_digest(&snapshot, &node.authz.policy().digest());
    let remote = client.post_json::<_, DigestResponse>(peer, STATE_DIGEST_PATH, &Empty {}).await;
    let mut report = RoundReport::default();
    match remote {
        Ok(remote) if remote.digest.0 == ours => {
            report.authorization_current = true;
            report.lifecycle_current = true;
            return Ok(report);
        }
        // Authorization first: a revocation matters more than a new key;
        // then lifecycle state, so that a tombstone is here before the
        // records it forbids. Their failure must not hold up the keys.
        Ok(_) => {
            match super::authz_sync::reconcile(node, client, peer).await {
                Ok(current) => report.authorization_current = current,
                Err(e) => eprintln!("vssm: authorization sync with {}: {e}", peer.ip()),
            }
            match super::lifecycle_sync::reconcile(node, client, peer).await {
                Ok(current) => report.lifecycle_current = current,
                Err(e) => eprintln!("vssm: lifecycle sync with {}: {e}", peer.ip()),
            }
        }
        // A node of an older version: keys only.
        Err(PeerError::Status { status, .. }) if status == hyper::StatusCode::NOT_FOUND => {}
        Err(e) => return Err(e),
    }
    let remote: DigestResponse = client.post_json(peer, DIGEST_PATH, &Empty {}).await?;
    if remote.digest.0 == snapshot.digest() {
        return Ok(report);
    }
    let theirs: ManifestResponse = client.post_json(peer, MANIFEST_PATH, &Empty {}).await?;
    let ours = manifest(&snapshot, true);
    let our_set: HashSet<&ManifestEntry> = ours.iter().collect();
    let their_set: HashSet<&ManifestEntry> = theirs.entries.iter().collect();
    let missing_here: Vec<ManifestEntry> = theirs.entries.iter().filter(|e| !our_set.contains(e)).cloned().collect();
    let missing_there: Vec<&ManifestEntry> = ours.iter().filter(|e| !their_set.contains(e)).collect();

    for batch in missing_here.chunks(BATCH) {
        let answer: RecordsMessage =
            client.post_json(peer, FETCH_PATH, &FetchRequest { entries: batch.to_vec() }).await?;
        let records = records_from_message(answer).map_err(|e| PeerError::Records { peer, source: e })?;
        report.fetched += merge_from_peer(node, &peer.ip().to_string(), records).added;
    }
    let to_push: Vec<&Arc<KeyRecord>> = missing_there.iter().filter_map(|e| lookup(&snapshot, e)).collect();
    for batch in to_push.chunks(BATCH) {
        push(client, peer, batch.iter().copied()).await?;
        report.pushed += batch.len();
    }
    Ok(report)
}

/// Sends records to a peer.
pub async fn push<'a>(
    client: &PeerClient,
    peer: SocketAddr,
    records: impl IntoIterator<Item = &'a Arc<KeyRecord>>,
) -> Result<PushResponse, PeerError> {
    let mut message = records_message(records, true);
    let answer = client.post_json(peer, PUSH_PATH, &message).await;
    // A peer of an older version refuses the origins (unknown field): it
    // does not rank by origin anyway, so it gets the records without them.
    if matches!(&answer, Err(PeerError::Status { status, .. }) if *status == hyper::StatusCode::BAD_REQUEST)
        && !message.restored.is_empty()
    {
        message.restored.clear();
        return client.post_json(peer, PUSH_PATH, &message).await;
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::{MacKey, SymmetricKey};
    use crate::keystore::KeyMaterial;

    #[test]
    fn origins_survive_the_wire_whatever_the_mix_of_types() {
        let record = |name: &str, mac: bool, origin: Origin| {
            let material = if mac {
                KeyMaterial::Mac(MacKey::from_bytes(&[7; 32]).unwrap())
            } else {
                KeyMaterial::Symmetric(SymmetricKey::from_bytes(&[7; 16]).unwrap())
            };
            let mut r = KeyRecord::new(name.into(), 1, material);
            r.origin = origin;
            Arc::new(r)
        };
        // MACs first here, symmetric keys first on the wire.
        let sent = [
            record("m1", true, Origin::Restored),
            record("s1", false, Origin::Created),
            record("m2", true, Origin::Created),
            record("s2", false, Origin::Restored),
        ];
        let origin_of = |records: &[KeyRecord], name: &str| records.iter().find(|r| r.name == name).unwrap().origin;
        let received = records_from_message(records_message(&sent, true)).unwrap();
        for r in &sent {
            assert_eq!(origin_of(&received, &r.name), r.origin, "{}", r.name);
        }
        let plain = records_message(&sent, false);
        assert!(plain.restored.is_empty(), "an older peer gets no origins");
        assert!(records_from_message(plain).unwrap().iter().all(|r| r.origin == Origin::Created));
    }
}
