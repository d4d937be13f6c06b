//! One accepted connection: TLS handshake with a deadline, then HTTP/1.1 or
//! HTTP/2 (by ALPN) with header and idle timeouts, until the peer leaves,
//! idles out, or the node shuts down.

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Notify};

/// Time allowed for the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The timeouts of one port's HTTP connections.
#[derive(Debug, Clone, Copy)]
pub struct HttpTimeouts {
    /// Time allowed for the next request's headers. hyper starts this clock
    /// when it starts waiting for a request, i.e. also on an idle keep-alive
    /// connection, and then drops the connection without a TLS
    /// close_notify; so it is longer than `idle`, which closes idle
    /// connections cleanly first, and it still ends a client that trickles
    /// its headers.
    pub header: Duration,
    /// A connection with no traffic for this long is closed (gracefully).
    pub idle: Duration,
}

/// The TLS ports: clients and peers keep connections open between requests.
pub const TLS_PORT_TIMEOUTS: HttpTimeouts =
    HttpTimeouts { header: Duration::from_secs(90), idle: Duration::from_secs(60) };

/// The health port: one short request per connection is all a load
/// balancer needs, so idle sockets are closed quickly.
pub const HEALTH_PORT_TIMEOUTS: HttpTimeouts =
    HttpTimeouts { header: Duration::from_secs(5), idle: Duration::from_secs(5) };

/// The HTTP server settings shared by all ports.
pub fn http_builder(timeouts: HttpTimeouts) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(128).max_header_list_size(32 * 1024);
    // No server-side HTTP/2 pings: their traffic would count as activity
    // and keep idle connections open forever; the idle timeout closes
    // connections whose client has gone quiet.
    builder
}

/// How one connection is served.
pub struct ConnectionSettings {
    /// Its timeouts.
    pub timeouts: HttpTimeouts,
    /// Notified by a handler to end this connection after the current
    /// response.
    pub close: Option<Arc<Notify>>,
}

/// Serves HTTP on `io` with `handler` until done, idle, `shutdown` fires,
/// or a handler asks through `settings.close` to end this connection
/// (graceful: the current response goes out; HTTP/2 gets a GOAWAY).
pub async fn serve<IO, H, F>(io: IO, handler: H, mut shutdown: watch::Receiver<bool>, settings: ConnectionSettings)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<http_body_util::Full<bytes::Bytes>>> + Send + 'static,
{
    let started = Instant::now();
    let last_activity = Arc::new(AtomicU64::new(0));
    let io = ActivityTracker { inner: io, started, last_activity: Arc::clone(&last_activity) };
    let ConnectionSettings { timeouts, close } = settings;
    let handler = Arc::new(handler);
    let service = service_fn(move |request: Request<Incoming>| {
        let handler = Arc::clone(&handler);
        async move { Ok::<_, std::convert::Infallible>(handler(request).await) }
    });
    let builder = http_builder(timeouts);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut tick = tokio::time::interval(timeouts.idle / 4);
    let mut closing = false;
    loop {
        tokio::select! {
            _ = &mut connection => break,
            _ = shutdown.changed(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = async { close.as_ref().expect("guarded by is_some").notified().await }, if !closing && close.is_some() => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = tick.tick(), if !closing => {
                let idle_ms = started.elapsed().as_millis() as u64 - last_activity.load(Ordering::Relaxed);
                if idle_ms > timeouts.idle.as_millis() as u64 {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Wraps a stream and notes when bytes last moved, for the idle timeout.
struct ActivityTracker<IO> {
    inner: IO,
    started: Instant,
    last_activity: Arc<AtomicU64>,
}

impl<IO> ActivityTracker<IO> {
    fn touch(&self) {
        self.last_activity.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for ActivityTracker<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        result
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for ActivityTracker<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
