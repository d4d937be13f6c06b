//! One link per peer: a task that pushes this node's changes to that peer
//! and runs the periodic anti-entropy rounds with it, over its own pooled
//! connection. Because every peer has its own task, a peer that is stopped,
//! partitioned or slow holds up only its own sync (until the call times
//! out), never the pushes and rounds with the other peers.

use super::discovery::Peer;
use super::peer_client::PeerClient;
use super::{authz_sync, lifecycle_sync, sync};
use crate::audit::Outcome;
use crate::authz::AuthzState;
use crate::keystore::KeyRecord;
use crate::lifecycle::LifecycleMap;
use crate::node::{LocalChange, Node};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// One local change, shared by every link.
#[derive(Clone)]
pub enum Change {
    /// Key records added.
    Records(Arc<[Arc<KeyRecord>]>),
    /// Authorization records added.
    Authorization(Arc<AuthzState>),
    /// Lifecycle state changed.
    Lifecycle(Arc<LifecycleMap>),
}

impl From<LocalChange> for Change {
    fn from(change: LocalChange) -> Change {
        match change {
            LocalChange::Records(records) => Change::Records(records.into()),
            LocalChange::Authorization(state) => Change::Authorization(Arc::new(state)),
            LocalChange::Lifecycle(changed) => Change::Lifecycle(Arc::new(changed)),
        }
    }
}

/// How links reach peers.
#[derive(Clone)]
pub struct LinkSettings {
    /// TLS pinned to the RPC certificate.
    pub tls: Arc<rustls::ClientConfig>,
    /// This node's address: every connection leaves from it.
    pub source: IpAddr,
    /// Sync port of the peers.
    pub port: u16,
    /// Longest wait for one call to a peer.
    pub call_timeout: Duration,
    /// Mean time between anti-entropy rounds (jittered ±25%).
    pub round_interval: Duration,
}

/// The links to the current peers.
pub struct PeerLinks {
    node: Arc<Node>,
    settings: LinkSettings,
    links: HashMap<IpAddr, Link>,
}

struct Link {
    changes: mpsc::UnboundedSender<Change>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PeerLinks {
    /// A set without links; [`PeerLinks::update`] opens them.
    pub fn new(node: Arc<Node>, settings: LinkSettings) -> Self {
        PeerLinks { node, settings, links: HashMap::new() }
    }

    /// Opens links to new peers (each starts with a round at once) and
    /// closes the links to peers that are gone. Returns, for each new link,
    /// a receiver that fires when its first round has ended (in sync or not).
    pub fn update(&mut self, peers: &[Peer]) -> Vec<oneshot::Receiver<()>> {
        self.links.retain(|ip, _| peers.iter().any(|p| p.ip == *ip));
        let mut first_rounds = Vec::new();
        for peer in peers {
            if self.links.contains_key(&peer.ip) {
                continue;
            }
            let (changes, queue) = mpsc::unbounded_channel();
            let (first_round_done, first_round) = oneshot::channel();
            let worker = LinkWorker {
                node: Arc::clone(&self.node),
                client: PeerClient::new(
                    Arc::clone(&self.settings.tls),
                    self.settings.source,
                    self.settings.call_timeout,
                ),
                peer: SocketAddr::new(peer.ip, self.settings.port),
                round_interval: self.settings.round_interval,
            };
            let task = tokio::spawn(worker.run(queue, first_round_done));
            self.links.insert(peer.ip, Link { changes, task });
            first_rounds.push(first_round);
        }
        first_rounds
    }

    /// Queues a local change for every peer.
    pub fn push(&self, change: &Change) {
        for link in self.links.values() {
            let _ = link.changes.send(change.clone());
        }
    }
}

struct LinkWorker {
    node: Arc<Node>,
    client: PeerClient,
    peer: SocketAddr,
    round_interval: Duration,
}

impl LinkWorker {
    async fn run(self, mut queue: mpsc::UnboundedReceiver<Change>, first_round_done: oneshot::Sender<()>) {
        let mut round_wanted = self.node.authz.freshness.round_wanted();
        self.round().await;
        let _ = first_round_done.send(());
        let mut next_round = Instant::now() + jittered(self.round_interval);
        loop {
            tokio::select! {
                Some(change) = queue.recv() => self.push_queued(change, &mut queue).await,
                // A request found the authorization state stale: a round now.
                Ok(()) = round_wanted.changed() => self.round().await,
                _ = tokio::time::sleep_until(next_round) => {
                    self.round().await;
                    next_round = Instant::now() + jittered(self.round_interval);
                }
            }
        }
    }

    /// Pushes `first` and everything queued behind it, authorization
    /// records first. After a failure the rest of the queue is dropped: the
    /// next round moves whatever the peer still lacks, and a peer that is
    /// down must not pile up work.
    async fn push_queued(&self, first: Change, queue: &mut mpsc::UnboundedReceiver<Change>) {
        let mut records: Vec<Arc<KeyRecord>> = Vec::new();
        let mut authorization = AuthzState::default();
        let mut lifecycle = LifecycleMap::default();
        let mut take = |change: Change| match change {
            Change::Records(more) => records.extend(more.iter().cloned()),
            Change::Authorization(added) => {
                authorization.merge(&added);
            }
            Change::Lifecycle(changed) => {
                lifecycle.merge(&changed);
            }
        };
        take(first);
        while let Ok(more) = queue.try_recv() {
            take(more);
        }
        if !authorization.is_empty() {
            if let Err(e) = authz_sync::push(&self.client, self.peer, &authorization).await {
                eprintln!("vssm: push to {}: {e}", self.peer);
                while queue.try_recv().is_ok() {}
                return;
            }
        }
        // Records before lifecycle state: a rotation's new version should
        // be there when a state that names it arrives.
        for batch in records.chunks(sync::BATCH) {
            if let Err(e) = sync::push(&self.client, self.peer, batch.iter()).await {
                eprintln!("vssm: push to {}: {e}", self.peer);
                while queue.try_recv().is_ok() {}
                return;
            }
            self.node.cluster_stats.pushed.fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        if !lifecycle.is_empty() {
            if let Err(e) = lifecycle_sync::push(&self.client, self.peer, &lifecycle).await {
                eprintln!("vssm: push to {}: {e}", self.peer);
                while queue.try_recv().is_ok() {}
            }
        }
    }

    /// One anti-entropy round; its bytes are this link's own, since the
    /// link's calls never overlap.
    async fn round(&self) {
        let stats = &self.node.cluster_stats;
        let before = self.client.bytes_moved();
        let start = self.node.authz.freshness.round_start();
        let started_at_ms = crate::server::api::now_ms();
        match sync::reconcile(&self.node, &self.client, self.peer).await {
            Ok(report) => {
                if report.lifecycle_current {
                    let mut confirmed = stats.lifecycle_confirmed.lock().unwrap_or_else(|e| e.into_inner());
                    let at = confirmed.entry(self.peer.ip()).or_default();
                    *at = (*at).max(started_at_ms);
                }
                if report.authorization_current && report.lifecycle_current {
                    self.node.authz.freshness.mark_confirmed(start);
                }
                stats.rounds.fetch_add(1, Ordering::Relaxed);
                stats.last_round_bytes.store(self.client.bytes_moved() - before, Ordering::Relaxed);
                if report.fetched + report.pushed > 0 {
                    self.node.audit.record(
                        "sync",
                        &self.peer.ip().to_string(),
                        Outcome::Ok,
                        &format!("fetched {} and pushed {} records", report.fetched, report.pushed),
                    );
                }
            }
            // A peer that is down or not yet bootstrapped: next round.
            Err(e) => eprintln!("vssm: sync with {}: {e}", self.peer.ip()),
        }
    }
}

/// `interval` ±25%, so that nodes do not all call each other at once.
pub fn jittered(interval: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let _ = aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut byte);
    let factor = 0.75 + (byte[0] as f64 / 255.0) * 0.5;
    interval.mul_f64(factor)
}
