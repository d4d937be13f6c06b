//! The cluster: peer discovery, attested join, and loss-free key
//! synchronization. Runs on its own thread with a single-threaded runtime,
//! apart from the I/O threads that serve clients.

pub mod authz_sync;
pub mod aws;
pub mod bootstrapper;
pub mod config_digest;
pub mod discovery;
pub mod join;
pub mod lifecycle_sync;
pub mod links;
pub mod peer_client;
pub mod protocol;
pub mod sync;

use crate::audit::Outcome;
use crate::node::Node;
use crate::server::body::BodyPolicy;
use crate::server::listener::ClusterListeners;
use crate::server::PeerProof;
use discovery::{Discovery, Peer};
use links::{Change, LinkSettings, PeerLinks};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// First and longest pause between join attempts.
const JOIN_RETRY_MIN: Duration = Duration::from_millis(250);
const JOIN_RETRY_MAX: Duration = Duration::from_secs(2);

/// Timeout of one call to a peer.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);

/// Counters shown on the health port (`/REST/v1/cluster/status`).
#[derive(Default)]
pub struct ClusterStats {
    /// Anti-entropy rounds completed (one per peer and round).
    pub rounds: AtomicU64,
    /// Bytes on the wire (TLS records included) of the last anti-entropy
    /// round with one peer.
    pub last_round_bytes: AtomicU64,
    /// Records pushed to peers after local changes.
    pub pushed: AtomicU64,
    /// The peers discovery reported last.
    pub peers: Mutex<Vec<String>>,
    /// Per peer, the wall-clock start (ms since the epoch) of the last
    /// round that found both lifecycle states equal.
    pub lifecycle_confirmed: Mutex<std::collections::HashMap<std::net::IpAddr, i64>>,
}

impl ClusterStats {
    /// True when every current peer completed a round that started at or
    /// after `since_ms` and found its lifecycle state equal to this node's
    /// (true without peers): nothing any peer knew before then is missing
    /// here.
    pub fn every_peer_confirmed_since(&self, since_ms: i64) -> bool {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let confirmed = self.lifecycle_confirmed.lock().unwrap_or_else(|e| e.into_inner());
        peers.iter().all(|peer| {
            peer.parse::<std::net::IpAddr>().ok().and_then(|ip| confirmed.get(&ip)).is_some_and(|at| *at >= since_ms)
        })
    }
}

/// Starts the cluster thread on the cluster ports bound for it (there are
/// none when the config has no cluster section).
pub fn start(node: Arc<Node>, listeners: Option<ClusterListeners>) -> Option<std::thread::JoinHandle<()>> {
    node.config.cluster.as_ref()?;
    let listeners = listeners?;
    if !node.is_ready() {
        node.hold_until_synced();
    }
    std::thread::Builder::new()
        .name("vssm-cluster".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime can be built");
            runtime.block_on(run(node, listeners));
        })
        .ok()
}

async fn run(node: Arc<Node>, listeners: ClusterListeners) {
    let settings = node.config.cluster.clone().expect("checked by start");
    // Operators compare it with `vssm config-digest` of a new config (rollouts).
    eprintln!("vssm: config digest {}", config_digest::ConfigDigest::of(&node.config));
    let attestation = join::Attestation::discover(&node, &settings).await;
    // Peers see this node at its bind address, or (bound to all addresses)
    // at the private address of its identity document.
    let own_ip = match (&attestation, node.config.bind_address) {
        (Some(a), ip) if ip.is_unspecified() => a.private_ip(),
        (_, ip) => ip,
    };
    let discovery = match Discovery::new(&settings, attestation.as_ref().map(|a| a.aws_discovery()), own_ip) {
        Ok(d) => Arc::new(d),
        Err(e) => {
            eprintln!("vssm: cluster disabled: {e}");
            return;
        }
    };
    let attestation = attestation.map(Arc::new);
    let (_never_stop, shutdown) = tokio::sync::watch::channel(false);
    serve_sync_port(&node, listeners.sync, Arc::clone(&discovery), shutdown.clone());
    // Without attestation nobody can join through this node: the join
    // socket closes, so joiners fail fast instead of waiting in its backlog.
    if let Some(a) = &attestation {
        let configs = config_digest::AcceptedConfigs::of(&node.config);
        let policy = a.policy_for_peers(Arc::clone(&discovery), &settings.trusted_image_ids, configs);
        let server = join::JoinServer::new(policy);
        serve_join_port(&node, listeners.join, Arc::new(server), shutdown);
    }
    // Until bootstrapped (by hand or by joining), try to join a peer, with
    // backoff; the same failure is logged once, not on every attempt.
    let mut pause = JOIN_RETRY_MIN;
    let mut last_error = String::new();
    while !node.is_ready() {
        if let Some(a) = &attestation {
            match join::join_any_peer(&node, a, &discovery, &settings.bootstrappers).await {
                Err(e) if e.to_string() != last_error => {
                    last_error = e.to_string();
                    eprintln!("vssm: join: {last_error}");
                }
                _ => {}
            }
        }
        if !node.is_ready() {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(JOIN_RETRY_MAX);
        }
    }
    let tls = node.cluster_tls().expect("ready nodes have cluster TLS");
    let mut links = PeerLinks::new(
        Arc::clone(&node),
        LinkSettings {
            tls: Arc::clone(&tls.peer_client),
            source: node.config.bind_address,
            port: node.config.ports.sync,
            call_timeout: PEER_TIMEOUT,
            round_interval: settings.sync_interval,
        },
    );
    let (changes_tx, mut changes) = mpsc::unbounded_channel::<Change>();
    node.set_change_hook(Box::new(move |change| {
        let _ = changes_tx.send(change.into());
    }));

    // Pull from every peer at start-up (at once, in parallel); the API
    // opens after it. Changes made meanwhile wait in the channel.
    let peers = current_peers(&node, &discovery).await.unwrap_or_default();
    for first_round in links.update(&peers) {
        let _ = first_round.await;
    }
    confirm_if_alone(&node, &peers);
    node.mark_synced();
    // From here on: forward changes to the links; refresh the peer list
    // before each push (discovery caches its answer) and once per sync
    // interval, at least every MEMBERSHIP_REFRESH (a new peer gets a round
    // at once, a peer that left loses its link). When membership is unknown
    // for longer than discovery's staleness bound, every link closes.
    let refresh_period = || links::jittered(settings.sync_interval).min(discovery::MEMBERSHIP_REFRESH);
    let mut next_refresh = Instant::now() + refresh_period();
    let mut round_wanted = node.authz.freshness.round_wanted();
    loop {
        let change = tokio::select! {
            Some(change) = changes.recv() => Some(change),
            _ = tokio::time::sleep_until(next_refresh) => None,
            Ok(()) = round_wanted.changed() => None,
        };
        let peers = current_peers(&node, &discovery).await;
        links.update(peers.as_deref().unwrap_or_default());
        if let Some(peers) = &peers {
            confirm_if_alone(&node, peers);
        }
        match change {
            Some(change) => links.push(&change),
            None => next_refresh = Instant::now() + refresh_period(),
        }
    }
}

/// Serves a cluster port with the TLS configuration `pick` chooses from the
/// node's cluster TLS (connections before bootstrap are closed at once).
fn serve_cluster_port<H, F>(
    node: &Arc<Node>,
    listener: std::net::TcpListener,
    proof: PeerProof,
    pick: fn(&crate::node::ClusterTls) -> &Arc<rustls::ServerConfig>,
    handler: H,
    shutdown: tokio::sync::watch::Receiver<bool>,
) where
    H: Fn(std::net::SocketAddr, BodyPolicy, hyper::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = hyper::Response<http_body_util::Full<bytes::Bytes>>> + Send + 'static,
{
    let port = listener.local_addr().map_or(0, |a| a.port());
    let listener = tokio::net::TcpListener::from_std(listener).expect("listener registers with the runtime");
    let tls_node = Arc::clone(node);
    let audit_node = Arc::clone(node);
    let action = format!("tls-handshake:{port}");
    tokio::spawn(crate::server::serve_tls_port(
        listener,
        proof,
        move || tls_node.cluster_tls().map(|t| Arc::clone(pick(t))),
        handler,
        move |peer, reason| audit_node.audit.record(&action, "-", Outcome::Refused, &format!("from {peer}: {reason}")),
        shutdown,
    ));
}

/// Port 8082: sync, mutual TLS with the RPC certificate on both sides,
/// for current members only.
fn serve_sync_port(
    node: &Arc<Node>,
    listener: std::net::TcpListener,
    members: Arc<Discovery>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let handler_node = Arc::clone(node);
    let handler =
        move |peer, _body, request| sync::handle(Arc::clone(&handler_node), Arc::clone(&members), peer, request);
    serve_cluster_port(node, listener, PeerProof::Certificate, |t| &t.sync_server, handler, shutdown);
}

/// Port 8083: join, server TLS with the RPC certificate.
fn serve_join_port(
    node: &Arc<Node>,
    listener: std::net::TcpListener,
    server: Arc<join::JoinServer>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let handler_node = Arc::clone(node);
    let handler = move |peer, body: BodyPolicy, request| {
        let (node, server) = (Arc::clone(&handler_node), Arc::clone(&server));
        async move { server.handle(node.rpc_key(), &node.audit, peer, &body, request).await }
    };
    let proof = PeerProof::Nothing { max_body: join::server::MAX_JOIN_BODY };
    serve_cluster_port(node, listener, proof, |t| &t.join_server, handler, shutdown);
}

/// A node that discovery reports alone has nobody to hear a revocation
/// from: its authorization state is as current as it can be.
fn confirm_if_alone(node: &Node, peers: &[Peer]) {
    if peers.is_empty() {
        let freshness = &node.authz.freshness;
        freshness.mark_confirmed(freshness.round_start());
    }
}

/// The current peers, or `None` (logged) when discovery failed for longer
/// than its staleness bound (a short failure answers from its last answer).
async fn current_peers(node: &Node, discovery: &Discovery) -> Option<Vec<Peer>> {
    let peers = discovery.peers().await.inspect_err(|e| eprintln!("vssm: discovery: {e}")).ok();
    *node.cluster_stats.peers.lock().unwrap_or_else(|e| e.into_inner()) =
        peers.iter().flatten().map(|p| p.ip.to_string()).collect();
    peers
}
