//! The cluster: peer discovery, attested join, and loss-free key
//! synchronization. Runs on its own thread with a single-threaded runtime,
//! apart from the I/O threads that serve clients.

pub mod aws;
pub mod bootstrapper;
pub mod discovery;
pub mod join;
pub mod peer_client;
pub mod protocol;
pub mod sync;

use crate::audit::Outcome;
use crate::keystore::KeyRecord;
use crate::node::Node;
use discovery::{Discovery, Peer};
use peer_client::PeerClient;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// First and longest pause between join attempts.
const JOIN_RETRY_MIN: Duration = Duration::from_millis(250);
const JOIN_RETRY_MAX: Duration = Duration::from_secs(2);

/// Timeout of one call to a peer.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);

/// Counters shown on the health port (`/REST/v1/cluster/status`).
#[derive(Default)]
pub struct ClusterStats {
    /// Anti-entropy rounds completed (one per peer contacted).
    pub rounds: AtomicU64,
    /// Bytes on the wire (TLS records included) of the last anti-entropy
    /// round with one peer.
    pub last_round_bytes: AtomicU64,
    /// Records pushed to peers after local changes.
    pub pushed: AtomicU64,
    /// The peers discovery reported last.
    pub peers: Mutex<Vec<String>>,
}

/// Starts the cluster thread when the config has a cluster section.
pub fn start(node: Arc<Node>) -> Option<std::thread::JoinHandle<()>> {
    node.config.cluster.as_ref()?;
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
            runtime.block_on(run(node));
        })
        .ok()
}

async fn run(node: Arc<Node>) {
    let settings = node.config.cluster.clone().expect("checked by start");
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
    serve_sync_port(&node, shutdown.clone()).await;
    if let Some(a) = &attestation {
        let server = join::JoinServer::new(a.policy_for_peers(Arc::clone(&discovery), &settings.trusted_image_ids));
        serve_join_port(&node, Arc::new(server), shutdown).await;
    }
    // Until bootstrapped (by hand or by joining), try to join a peer, with
    // backoff; the same failure is logged once, not on every attempt.
    let mut pause = JOIN_RETRY_MIN;
    let mut last_error = String::new();
    while !node.is_ready() {
        if let Some(a) = &attestation {
            match join::join_any_peer(&node, a, &discovery, &settings.bootstrappers).await {
                Err(e) if e != last_error => {
                    eprintln!("vssm: join: {e}");
                    last_error = e;
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
    // Two clients, each with its own connections and byte counter: pushes
    // run concurrently with rounds and must not show up in a round's bytes.
    let new_client = || Arc::new(PeerClient::new(Arc::clone(&tls.peer_client), node.config.bind_address, PEER_TIMEOUT));
    let (client, push_client) = (new_client(), new_client());

    let (changes_tx, changes_rx) = mpsc::unbounded_channel();
    node.set_change_hook(Box::new(move |records| {
        let _ = changes_tx.send(records);
    }));
    tokio::spawn(push_changes(Arc::clone(&node), push_client, Arc::clone(&discovery), changes_rx));

    // Anti-entropy: at once (pull at start-up; the API opens after it),
    // then every interval ±25%.
    anti_entropy_round(&node, &client, &discovery).await;
    node.mark_synced();
    loop {
        tokio::time::sleep(jittered(settings.sync_interval)).await;
        anti_entropy_round(&node, &client, &discovery).await;
    }
}

/// Serves a cluster port with the TLS configuration `pick` chooses from the
/// node's cluster TLS (connections before bootstrap are closed at once).
async fn serve_cluster_port<H, F>(
    node: &Arc<Node>,
    port: u16,
    pick: fn(&crate::node::ClusterTls) -> &Arc<rustls::ServerConfig>,
    handler: H,
    shutdown: tokio::sync::watch::Receiver<bool>,
) where
    H: Fn(std::net::SocketAddr, hyper::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = hyper::Response<http_body_util::Full<bytes::Bytes>>> + Send + 'static,
{
    let addr = SocketAddr::new(node.config.bind_address, port);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => return eprintln!("vssm: cannot listen on {addr}: {e}"),
    };
    let tls_node = Arc::clone(node);
    let audit_node = Arc::clone(node);
    let action = format!("tls-handshake:{port}");
    tokio::spawn(crate::server::serve_tls_port(
        listener,
        move || tls_node.cluster_tls().map(|t| Arc::clone(pick(t))),
        handler,
        move |peer, reason| audit_node.audit.record(&action, "-", Outcome::Refused, &format!("from {peer}: {reason}")),
        shutdown,
    ));
}

/// Port 8082: sync, mutual TLS with the RPC certificate on both sides.
async fn serve_sync_port(node: &Arc<Node>, shutdown: tokio::sync::watch::Receiver<bool>) {
    let handler_node = Arc::clone(node);
    let handler = move |peer, request| sync::handle(Arc::clone(&handler_node), peer, request);
    serve_cluster_port(node, node.config.ports.sync, |t| &t.sync_server, handler, shutdown).await;
}

/// Port 8083: join, server TLS with the RPC certificate.
async fn serve_join_port(node: &Arc<Node>, server: Arc<join::JoinServer>, shutdown: tokio::sync::watch::Receiver<bool>) {
    let handler_node = Arc::clone(node);
    let handler = move |peer, request| {
        let (node, server) = (Arc::clone(&handler_node), Arc::clone(&server));
        async move { server.handle(node.rpc_key(), &node.audit, peer, request).await }
    };
    serve_cluster_port(node, node.config.ports.join, |t| &t.join_server, handler, shutdown).await;
}

fn sync_addr(node: &Node, peer: &Peer) -> SocketAddr {
    SocketAddr::new(peer.ip, node.config.ports.sync)
}

async fn current_peers(node: &Node, discovery: &Discovery) -> Vec<Peer> {
    match discovery.peers().await {
        Ok(peers) => {
            *node.cluster_stats.peers.lock().unwrap_or_else(|e| e.into_inner()) =
                peers.iter().map(|p| p.ip.to_string()).collect();
            peers
        }
        Err(e) => {
            eprintln!("vssm: discovery: {e}");
            Vec::new()
        }
    }
}

async fn anti_entropy_round(node: &Arc<Node>, client: &Arc<PeerClient>, discovery: &Discovery) {
    for peer in current_peers(node, discovery).await {
        let before = client.bytes_moved();
        match sync::reconcile(node, client, sync_addr(node, &peer)).await {
            Ok(report) => {
                node.cluster_stats.rounds.fetch_add(1, Ordering::Relaxed);
                node.cluster_stats.last_round_bytes.store(client.bytes_moved() - before, Ordering::Relaxed);
                if report.fetched + report.pushed > 0 {
                    node.audit.record(
                        "sync",
                        &peer.ip.to_string(),
                        Outcome::Ok,
                        &format!("fetched {} and pushed {} records", report.fetched, report.pushed),
                    );
                }
            }
            // A peer that is down or not yet bootstrapped: next round.
            Err(e) => eprintln!("vssm: sync with {}: {e}", peer.ip),
        }
    }
}

/// Pushes local changes to every peer as they happen; a peer that misses a
/// push gets the records in the next anti-entropy round.
async fn push_changes(
    node: Arc<Node>,
    client: Arc<PeerClient>,
    discovery: Arc<Discovery>,
    mut changes: mpsc::UnboundedReceiver<Vec<Arc<KeyRecord>>>,
) {
    while let Some(mut records) = changes.recv().await {
        while let Ok(more) = changes.try_recv() {
            records.extend(more);
        }
        let records = Arc::new(records);
        let mut tasks = tokio::task::JoinSet::new();
        for peer in current_peers(&node, &discovery).await {
            let (client, records, addr) = (Arc::clone(&client), Arc::clone(&records), sync_addr(&node, &peer));
            tasks.spawn(async move { (addr, sync::push(&client, addr, records.iter()).await) });
        }
        while let Some(Ok((addr, result))) = tasks.join_next().await {
            match result {
                Ok(_) => {
                    node.cluster_stats.pushed.fetch_add(records.len() as u64, Ordering::Relaxed);
                }
                Err(e) => eprintln!("vssm: push to {addr}: {e}"),
            }
        }
    }
}

/// `interval` ±25%, so that nodes do not all call each other at once.
fn jittered(interval: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte);
    let factor = 0.75 + (byte[0] as f64 / 255.0) * 0.5;
    interval.mul_f64(factor)
}
