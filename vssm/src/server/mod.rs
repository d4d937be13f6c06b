//! The node's network servers: one I/O thread per core, each a
//! single-threaded tokio runtime with its own SO_REUSEPORT listener on the
//! API port; the health port lives on the first thread. CPU-heavy work
//! (RSA key generation, scrypt) goes to the runtimes' blocking pools.

pub mod api;
pub mod body;
pub mod connection;
pub mod health;
pub mod json;
pub mod listener;

use crate::audit::Outcome;
use crate::node::Node;
use crate::tls;
use api::ClientInfo;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Most simultaneous connections on a TLS port; more are closed at once.
pub const MAX_CONNECTIONS: usize = 4096;
/// Most simultaneous connections on the health port (plain HTTP, anyone
/// may connect): its own small budget, so it cannot exhaust the API's.
pub const MAX_HEALTH_CONNECTIONS: usize = 64;
/// How long in-flight requests get to finish on shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Running servers; dropping it does not stop them, call [`Servers::stop`].
pub struct Servers {
    shutdown: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
}

impl Servers {
    /// Binds the API and health ports of `node` and starts the I/O threads.
    /// Bind errors are returned before anything runs.
    pub fn start(node: Arc<Node>) -> io::Result<Servers> {
        let ip = node.config.bind_address;
        let ports = node.config.ports;
        let io_threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let connections = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::with_capacity(io_threads);
        for index in 0..io_threads {
            let api = std_listener(SocketAddr::new(ip, ports.api))?;
            let health = if index == 0 { Some(std_listener(SocketAddr::new(ip, ports.health))?) } else { None };
            let node = Arc::clone(&node);
            let shutdown_rx = shutdown_rx.clone();
            let connections = Arc::clone(&connections);
            let thread = std::thread::Builder::new().name(format!("vssm-io-{index}")).spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .max_blocking_threads(2)
                    .thread_name("vssm-blocking")
                    .build()
                    .expect("a tokio runtime can be built");
                runtime.block_on(io_thread(node, api, health, shutdown_rx, connections));
            })?;
            threads.push(thread);
        }
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

fn std_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    listener::bind_reuseport(addr).map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

async fn io_thread(
    node: Arc<Node>,
    api: std::net::TcpListener,
    health: Option<std::net::TcpListener>,
    shutdown: watch::Receiver<bool>,
    connections: Arc<AtomicUsize>,
) {
    let api = TcpListener::from_std(api).expect("listener registers with the runtime");
    if let Some(health) = health {
        let health = TcpListener::from_std(health).expect("listener registers with the runtime");
        let node = Arc::clone(&node);
        let shutdown = shutdown.clone();
        let health_connections = Arc::new(AtomicUsize::new(0));
        tokio::spawn(accept_loop(
            health,
            shutdown.clone(),
            health_connections,
            MAX_HEALTH_CONNECTIONS,
            move |tcp, _peer| {
                let node = Arc::clone(&node);
                let shutdown = shutdown.clone();
                async move {
                    connection::serve(tcp, move |request| health::handle(Arc::clone(&node), request), shutdown, None)
                        .await;
                }
            },
        ));
    }
    let accept_node = Arc::clone(&node);
    let accept_shutdown = shutdown.clone();
    accept_loop(api, shutdown, Arc::clone(&connections), MAX_CONNECTIONS, move |tcp, peer| {
        serve_api_connection(Arc::clone(&accept_node), tcp, peer, accept_shutdown.clone())
    })
    .await;
    // Drain: give open connections time to finish their requests.
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while connections.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Serves a TLS port whose handler needs only the peer address (the
/// cluster's sync and join ports, the bootstrapper). `tls` is asked at each
/// accept; None (not bootstrapped yet) closes the connection at once.
/// Refused handshakes are reported to `on_refused` (for the audit log).
pub async fn serve_tls_port<T, H, F, R>(
    listener: TcpListener,
    tls: T,
    handler: H,
    on_refused: R,
    shutdown: watch::Receiver<bool>,
) where
    T: Fn() -> Option<Arc<rustls::ServerConfig>> + Send + Sync + 'static,
    H: Fn(SocketAddr, hyper::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = hyper::Response<http_body_util::Full<bytes::Bytes>>> + Send + 'static,
    R: Fn(SocketAddr, String) + Send + Sync + 'static,
{
    let tls = Arc::new(tls);
    let on_refused = Arc::new(on_refused);
    let connections = Arc::new(AtomicUsize::new(0));
    let conn_shutdown = shutdown.clone();
    accept_loop(listener, shutdown, connections, MAX_CONNECTIONS, move |tcp, peer| {
        let config = tls();
        let handler = handler.clone();
        let on_refused = Arc::clone(&on_refused);
        let shutdown = conn_shutdown.clone();
        async move {
            let Some(config) = config else { return };
            let Some(stream) = accept_tls(config, tcp, |reason| on_refused(peer, reason)).await else { return };
            connection::serve(stream, move |request| handler(peer, request), shutdown, None).await;
        }
    })
    .await;
}

/// Accepts until shutdown; each connection runs in its own task, at most
/// `cap` at a time (counted in `connections`).
async fn accept_loop<S, F>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    connections: Arc<AtomicUsize>,
    cap: usize,
    serve: S,
) where
    S: Fn(tokio::net::TcpStream, SocketAddr) -> F,
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
        if connections.fetch_add(1, Ordering::AcqRel) >= cap {
            connections.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let task = serve(tcp, peer);
        let connections = Arc::clone(&connections);
        tokio::spawn(async move {
            task.await;
            connections.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

async fn serve_api_connection(
    node: Arc<Node>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let refused =
        |reason: String| node.audit.record("tls-handshake", "-", Outcome::Refused, &format!("from {peer}: {reason}"));
    let Some(stream) = accept_tls(node.api_tls(), tcp, refused).await else { return };
    let certificates = stream.get_ref().1.peer_certificates();
    let client = ClientInfo {
        subject: tls::peer_subject(certificates).into(),
        authenticated: certificates.is_some_and(|c| !c.is_empty()),
        peer,
        close: Arc::new(tokio::sync::Notify::new()),
    };
    let close = Arc::clone(&client.close);
    connection::serve(
        stream,
        move |request| api::handle(Arc::clone(&node), client.clone(), request),
        shutdown,
        Some(close),
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
