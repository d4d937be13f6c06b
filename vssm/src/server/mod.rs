//! The node's network servers: one I/O thread per core, each a
//! single-threaded tokio runtime accepting on the API port's one socket;
//! the health port lives on the first thread. CPU-heavy work (RSA key
//! generation, scrypt) goes to the runtimes' blocking pools. Every port
//! admits connections through [`admission`], so unauthenticated peers can
//! neither fill a port nor take the body budget of authenticated ones.

pub mod admission;
pub mod api;
pub mod body;
pub mod connection;
pub mod health;
pub mod json;
pub mod listener;

use crate::audit::Outcome;
use crate::node::Node;
use crate::tls;
use admission::{Admission, AdmissionLimits, Slot};
use api::ClientInfo;
use body::BodyPolicy;
use connection::{ConnectionSettings, HEALTH_PORT_TIMEOUTS, TLS_PORT_TIMEOUTS};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The client API and sync ports: many clients, each proving itself with a
/// certificate within the handshake.
pub const TLS_PORT_LIMITS: AdmissionLimits = AdmissionLimits { total: 4096, unauthenticated_per_source: 256 };
/// The join port and the bootstrapper: a few joining nodes, none
/// authenticated by TLS, each body at most 64 KiB.
pub const JOIN_PORT_LIMITS: AdmissionLimits = AdmissionLimits { total: 256, unauthenticated_per_source: 16 };
/// The health port (plain HTTP, anyone may connect): load balancers open
/// a connection per check.
pub const HEALTH_PORT_LIMITS: AdmissionLimits = AdmissionLimits { total: 256, unauthenticated_per_source: 16 };
/// How long in-flight requests get to finish on shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Running servers; dropping it does not stop them, call [`Servers::stop`].
pub struct Servers {
    shutdown: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
}

impl Servers {
    /// Serves the API and health ports of `node` on the listeners bound for
    /// them, one I/O thread per core.
    pub fn start(node: Arc<Node>, api: std::net::TcpListener, health: std::net::TcpListener) -> io::Result<Servers> {
        let io_threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let api_admission = Admission::new(TLS_PORT_LIMITS);
        let mut health = Some(health);
        let mut threads = Vec::with_capacity(io_threads);
        for index in 0..io_threads {
            // Every thread accepts on a duplicate of the one socket.
            let api = api.try_clone()?;
            let health = health.take();
            let node = Arc::clone(&node);
            let shutdown_rx = shutdown_rx.clone();
            let admission = Arc::clone(&api_admission);
            let thread = std::thread::Builder::new().name(format!("vssm-io-{index}")).spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .max_blocking_threads(2)
                    .thread_name("vssm-blocking")
                    .build()
                    .expect("a tokio runtime can be built");
                runtime.block_on(io_thread(node, api, health, shutdown_rx, admission));
            })?;
            threads.push(thread);
        }
        // The staleness guard's heartbeat (authz::freshness) on a thread of
        // its own: a busy I/O thread must not look like a paused process.
        let beating = Arc::clone(&node);
        let stop = shutdown.subscribe();
        threads.push(std::thread::Builder::new().name("vssm-heartbeat".into()).spawn(move || {
            while !*stop.borrow() {
                beating.authz.freshness.beat();
                std::thread::sleep(crate::authz::freshness::HEARTBEAT);
            }
        })?);
        Ok(Servers { shutdown, threads })
    }

    /// Stops accepting, lets in-flight requests finish (bounded), and joins.
    pub fn stop(self) {
        let _ = self.shutdown.send(true);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

async fn io_thread(
    node: Arc<Node>,
    api: std::net::TcpListener,
    health: Option<std::net::TcpListener>,
    shutdown: watch::Receiver<bool>,
    admission: Arc<Admission>,
) {
    let api = TcpListener::from_std(api).expect("listener registers with the runtime");
    if let Some(health) = health {
        // One thread keeps the lifecycle clock: the one that serves health.
        tokio::spawn(api::lifecycle_clock::run(Arc::clone(&node), shutdown.clone()));
        let health = TcpListener::from_std(health).expect("listener registers with the runtime");
        let node = Arc::clone(&node);
        let shutdown = shutdown.clone();
        tokio::spawn(accept_loop(
            health,
            shutdown.clone(),
            Admission::new(HEALTH_PORT_LIMITS),
            move |tcp, _peer, _| {
                let node = Arc::clone(&node);
                let shutdown = shutdown.clone();
                async move {
                    let settings = ConnectionSettings { timeouts: HEALTH_PORT_TIMEOUTS, close: None };
                    connection::serve(
                        tcp,
                        move |request| health::handle(Arc::clone(&node), request),
                        shutdown,
                        settings,
                    )
                    .await;
                }
            },
        ));
    }
    let accept_node = Arc::clone(&node);
    let accept_shutdown = shutdown.clone();
    accept_loop(api, shutdown, Arc::clone(&admission), move |tcp, peer, slot| {
        serve_api_connection(Arc::clone(&accept_node), tcp, peer, slot, accept_shutdown.clone())
    })
    .await;
    // Drain: give open connections time to finish their requests.
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while admission.open() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How the peers of a cluster-side TLS port prove who they are.
#[derive(Debug, Clone, Copy)]
pub enum PeerProof {
    /// A verified certificate in the handshake (the sync port's RPC
    /// certificate): the connection is authenticated once it completes.
    Certificate,
    /// Nothing at the TLS layer (the join port, the bootstrapper): every
    /// connection stays unauthenticated, with a body budget of one
    /// `max_body` for itself.
    Nothing {
        /// The port's largest request body.
        max_body: usize,
    },
}

/// Serves a TLS port whose handler needs only the peer address and its
/// connection's body policy (the cluster's sync and join ports, the
/// bootstrapper). `tls` is asked at each accept; None (not bootstrapped
/// yet) closes the connection at once. Refused handshakes are reported to
/// `on_refused` (for the audit log).
pub async fn serve_tls_port<T, H, F, R>(
    listener: TcpListener,
    proof: PeerProof,
    tls: T,
    handler: H,
    on_refused: R,
    shutdown: watch::Receiver<bool>,
) where
    T: Fn() -> Option<Arc<rustls::ServerConfig>> + Send + Sync + 'static,
    H: Fn(SocketAddr, BodyPolicy, hyper::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = hyper::Response<http_body_util::Full<bytes::Bytes>>> + Send + 'static,
    R: Fn(SocketAddr, String) + Send + Sync + 'static,
{
    let tls = Arc::new(tls);
    let on_refused = Arc::new(on_refused);
    let limits = match proof {
        PeerProof::Certificate => TLS_PORT_LIMITS,
        PeerProof::Nothing { .. } => JOIN_PORT_LIMITS,
    };
    let conn_shutdown = shutdown.clone();
    accept_loop(listener, shutdown, Admission::new(limits), move |tcp, peer, slot| {
        let config = tls();
        let handler = handler.clone();
        let on_refused = Arc::clone(&on_refused);
        let shutdown = conn_shutdown.clone();
        async move {
            let Some(config) = config else { return };
            let Some(stream) = accept_tls(config, tcp, |reason| on_refused(peer, reason)).await else { return };
            let body = match proof {
                PeerProof::Certificate => {
                    slot.authenticated();
                    BodyPolicy::cluster_peer()
                }
                PeerProof::Nothing { max_body } => BodyPolicy::unauthenticated_connection(max_body),
            };
            let settings = ConnectionSettings { timeouts: TLS_PORT_TIMEOUTS, close: None };
            connection::serve(stream, move |request| handler(peer, body.clone(), request), shutdown, settings).await;
        }
    })
    .await;
}

/// Accepts until shutdown; each connection runs in its own task, holding
/// its place in `admission` until it ends or is evicted to make room.
async fn accept_loop<S, F>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    admission: Arc<Admission>,
    serve: S,
) where
    S: Fn(tokio::net::TcpStream, SocketAddr, Arc<Slot>) -> F,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(_) => {
                // Out of file descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // The port is full of authenticated connections: close this one.
        let Some(slot) = admission.admit(peer.ip()) else { continue };
        let _ = tcp.set_nodelay(true);
        let slot = Arc::new(slot);
        let task = serve(tcp, peer, Arc::clone(&slot));
        tokio::spawn(async move {
            tokio::select! {
                _ = task => {}
                _ = slot.evicted() => {}
            }
        });
    }
}

async fn serve_api_connection(
    node: Arc<Node>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    slot: Arc<Slot>,
    shutdown: watch::Receiver<bool>,
) {
    let refused =
        |reason: String| node.audit.record("tls-handshake", "-", Outcome::Refused, &format!("from {peer}: {reason}"));
    let Some(stream) = accept_tls(node.api_tls(), tcp, refused).await else { return };
    let certificates = stream.get_ref().1.peer_certificates();
    let authenticated = certificates.is_some_and(|c| !c.is_empty());
    // Before bootstrap nobody has a client certificate: such a connection
    // may only bootstrap, stays evictable, and pays for its own body.
    let body = if authenticated {
        slot.authenticated();
        BodyPolicy::authenticated_client()
    } else {
        BodyPolicy::unauthenticated_connection(api::MAX_BOOTSTRAP_BODY_BYTES)
    };
    let client = ClientInfo {
        subject: tls::peer_subject(certificates).into(),
        authz: crate::authz::ClientIdentity::of_peer(certificates)
            .filter(|_| authenticated)
            .map(|identity| Arc::new(crate::authz::ConnectionAuthz::new(identity))),
        authenticated,
        peer,
        close: Arc::new(tokio::sync::Notify::new()),
        body,
    };
    let settings = ConnectionSettings { timeouts: TLS_PORT_TIMEOUTS, close: Some(Arc::clone(&client.close)) };
    connection::serve(
        stream,
        move |request| api::handle(Arc::clone(&node), client.clone(), request),
        shutdown,
        settings,
    )
    .await;
}

/// The TLS handshake on an accepted connection, within
/// [`connection::HANDSHAKE_TIMEOUT`]; a refusal worth auditing goes to
/// `on_refused`, and None means the connection is done.
async fn accept_tls(
    config: Arc<rustls::ServerConfig>,
    tcp: tokio::net::TcpStream,
    on_refused: impl FnOnce(String),
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    match tokio::time::timeout(connection::HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            if let Some(reason) = refusal_reason(&error) {
                on_refused(reason);
            }
            None
        }
        Err(_) => None,
    }
}

/// The reason worth auditing for a failed handshake; None for a peer that
/// just went away (port scans, load-balancer TCP checks).
fn refusal_reason(error: &io::Error) -> Option<String> {
    match error.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => None,
        _ => Some(error.to_string()),
    }
}
