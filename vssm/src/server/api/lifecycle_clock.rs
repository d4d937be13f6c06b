//! The node's lifecycle clock, once a second: destroys the keys whose
//! deletion deadline has passed and rotates the keys whose rotation is due.
//!
//! Every node runs it, with no coordinator. A destruction is the same
//! fact on every node (destroyedAt is the deadline), so nodes that do it
//! independently agree. At the deadline every node refuses the key at
//! once; it destroys the material only once every current peer has
//! compared lifecycle states with it in a round that began after the
//! deadline, so that a cancellation any node acknowledged before the
//! deadline always wins over it (meanwhile the key is refused, and a peer
//! that stays unreachable holds the zeroization back until discovery
//! drops it). Due rotations wait one random moment, then look again, so
//! that usually one node rotates and the others receive its version; two
//! nodes that still rotate at once make two materials of the same version
//! number, which the version header's key id tells apart (see
//! `crypto::versioned`).

use crate::audit::Outcome;
use crate::keystore::KeyType;
use crate::lifecycle::{EffectiveState, LifecycleMap};
use crate::node::Node;
use std::sync::Arc;
use std::time::Duration;

/// How often the clock looks.
const TICK: Duration = Duration::from_secs(1);
/// The longest random pause before a scheduled rotation.
const ROTATION_JITTER_MS: u64 = 1500;

/// Runs the clock until `shutdown`.
pub async fn run(node: Arc<Node>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => return,
        }
        if !node.is_ready() {
            continue;
        }
        destroy_due(&node);
        if rotations_due(&node, super::now_ms()).is_empty() {
            continue;
        }
        let jitter = u64::from(crate::crypto::random_bytes(2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]])));
        tokio::time::sleep(Duration::from_millis(jitter % ROTATION_JITTER_MS)).await;
        // Peers' rotations may have arrived meanwhile.
        for (key_type, name) in rotations_due(&node, super::now_ms()) {
            let detail = format!("key={} type={}", crate::server::api::printable(&name), key_type.as_str());
            match super::lifecycle_ops::rotate(&node, key_type, &name).await {
                Ok(record) => node.audit.record_history(
                    "rotatekey",
                    "scheduled",
                    Outcome::Ok,
                    &format!("{detail} version={}", record.version),
                ),
                Err(e) => node.audit.record("rotatekey", "scheduled", Outcome::Failed, &format!("{detail}: {e}")),
            }
        }
    }
}

/// Destroys every key whose deadline passed, if this node's state is confirmed.
fn destroy_due(node: &Node) {
    let now = super::now_ms();
    let snapshot = node.keystore.snapshot();
    let due: Vec<(KeyType, String, i64)> = snapshot
        .lifecycle_map()
        .iter()
        .filter_map(|(key_type, name, lifecycle)| match lifecycle.effective(now) {
            EffectiveState::DeletionDue { delete_at_ms } => Some((key_type, name.to_string(), delete_at_ms)),
            _ => None,
        })
        .collect();
    if due.is_empty() || !node.authz.freshness.is_fresh() {
        return;
    }
    let mut pushed = LifecycleMap::default();
    for (key_type, name, delete_at_ms) in due {
        // A cancellation any peer acknowledged before the deadline must
        // reach this node first: every current peer has to have compared
        // lifecycle states with it in a round that began after the deadline.
        if !node.cluster_stats.every_peer_confirmed_since(delete_at_ms) {
            continue;
        }
        let result = node.keystore.change_lifecycle(key_type, &name, |_, lifecycle| {
            lifecycle.destroy(delete_at_ms);
            Ok::<(), std::convert::Infallible>(())
        });
        if let Ok(Some((lifecycle, _))) = result {
            node.audit.record_history(
                "destroy",
                "scheduled",
                Outcome::Ok,
                &format!(
                    "key={} type={} deletionDate={delete_at_ms}",
                    crate::server::api::printable(&name),
                    key_type.as_str()
                ),
            );
            pushed.set(key_type, &name, lifecycle);
        }
    }
    if !pushed.is_empty() {
        node.lifecycle_changed(pushed);
    }
}

/// The enabled keys whose newest version is older than their rotation period.
fn rotations_due(node: &Node, now: i64) -> Vec<(KeyType, String)> {
    let snapshot = node.keystore.snapshot();
    snapshot
        .lifecycle_map()
        .iter()
        .filter(|(_, _, lifecycle)| {
            lifecycle.rotation_period_ms() > 0 && lifecycle.effective(now) == EffectiveState::Enabled
        })
        .filter_map(|(key_type, name, lifecycle)| {
            let newest = snapshot.entry(key_type, name)?.active()?;
            let due = newest.created_at_ms.saturating_add(lifecycle.rotation_period_ms() as i64) <= now;
            due.then(|| (key_type, name.to_string()))
        })
        .collect()
}
