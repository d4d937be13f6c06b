//! HTTPS client for calls to a node: node-to-node sync and join, and the
//! operator's `vssm call`. The node must present the cluster's RPC
//! certificate (pinned), and the connection leaves from the given source
//! address so peers see (and can check) who is calling.

use crate::admin::backup::BackupError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Time allowed to connect and finish the TLS handshake with a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Largest response accepted from a peer (a fetch of many RSA keys).
pub const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// A failed call to a peer; each names the peer and path called.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The request could not be encoded as JSON.
    #[error("cannot encode: {0}")]
    Encode(serde_json::Error),
    /// No answer within the client's timeout.
    #[error("{peer}{path}: timed out")]
    Timeout {
        /// The peer called.
        peer: SocketAddr,
        /// The path called.
        path: String,
    },
    /// Connecting, TLS, HTTP or reading the answer failed.
    #[error("{peer}{path}: {stage}: {reason}")]
    Transport {
        /// The peer called.
        peer: SocketAddr,
        /// The path called.
        path: String,
        /// What failed: socket, bind, connect, TLS, HTTP, body.
        stage: &'static str,
        /// The underlying error, rendered.
        reason: String,
    },
    /// The peer answered with an error status.
    #[error("{peer}{path}: {} {message}", .status.as_u16())]
    Status {
        /// The peer called.
        peer: SocketAddr,
        /// The path called.
        path: String,
        /// The status of the answer.
        status: hyper::StatusCode,
        /// The answer's `error` text, bounded and without control characters.
        message: String,
    },
    /// The answer is not the expected JSON.
    #[error("{peer}{path}: invalid answer: {kind}")]
    InvalidAnswer {
        /// The peer called.
        peer: SocketAddr,
        /// The path called.
        path: String,
        /// What kind of JSON error (never the content).
        kind: &'static str,
    },
    /// The peer sent records that are not valid keys.
    #[error("{peer}: {source}")]
    Records {
        /// The peer called.
        peer: SocketAddr,
        /// Which record is invalid.
        source: BackupError,
    },
    /// The peer sent authorization records that are not valid.
    #[error("{peer}: {source}")]
    Authorization {
        /// The peer called.
        peer: SocketAddr,
        /// Which record is invalid.
        source: crate::authz::GrantError,
    },
    /// The peer's lifecycle state is not valid.
    #[error("invalid lifecycle state from {peer}: {source}")]
    Lifecycle {
        /// The peer called.
        peer: SocketAddr,
        /// Which entry is invalid.
        source: Box<crate::lifecycle::LifecycleError>,
    },
}

/// Calls peers over pinned TLS, keeping one idle keep-alive connection per
/// peer (so a steady-state anti-entropy round costs no handshake), and
/// counts every byte that crosses its sockets.
pub struct PeerClient {
    tls: Arc<rustls::ClientConfig>,
    source: IpAddr,
    timeout: Duration,
    wire_bytes: Arc<AtomicU64>,
    idle: Mutex<HashMap<SocketAddr, SendRequest<Full<Bytes>>>>,
}

impl PeerClient {
    /// A client with `tls` (pinned to the RPC certificate) leaving from `source`.
    pub fn new(tls: Arc<rustls::ClientConfig>, source: IpAddr, timeout: Duration) -> Self {
        PeerClient { tls, source, timeout, wire_bytes: Arc::new(AtomicU64::new(0)), idle: Mutex::new(HashMap::new()) }
    }

    /// Bytes sent and received on the wire so far (TLS records included).
    pub fn bytes_moved(&self) -> u64 {
        self.wire_bytes.load(Ordering::Relaxed)
    }

    /// POSTs `body` as JSON to `path` on `peer` and parses the JSON answer.
    pub async fn post_json<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        peer: SocketAddr,
        path: &str,
        body: &Req,
    ) -> Result<Resp, PeerError> {
        let request_body = Bytes::from(serde_json::to_vec(body).map_err(PeerError::Encode)?);
        let response = tokio::time::timeout(self.timeout, self.exchange(peer, path, request_body))
            .await
            .map_err(|_| PeerError::Timeout { peer, path: path.to_string() })??;
        serde_json::from_slice(&response).map_err(|e| PeerError::InvalidAnswer {
            peer,
            path: path.to_string(),
            kind: crate::wire::codec::json_error_kind(&e),
        })
    }

    /// One request on the pooled connection to `peer` if it is still good,
    /// else (or if it fails before an answer) on a new one.
    async fn exchange(&self, peer: SocketAddr, path: &str, body: Bytes) -> Result<Bytes, PeerError> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).remove(&peer);
        if let Some(mut sender) = pooled.filter(|s| !s.is_closed()) {
            if sender.ready().await.is_ok() {
                if let Ok(response) = sender.send_request(request(path, body.clone())).await {
                    return self.finish(peer, path, sender, response).await;
                }
            }
        }
        let mut sender = self.connect(peer, path).await?;
        let response = sender.send_request(request(path, body)).await.map_err(|e| transport(peer, path, "HTTP", &e))?;
        self.finish(peer, path, sender, response).await
    }

    async fn connect(&self, peer: SocketAddr, path: &str) -> Result<SendRequest<Full<Bytes>>, PeerError> {
        let fail = |what: &'static str, e: &dyn fmt::Display| transport(peer, path, what, e);
        let socket = if peer.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() }
            .map_err(|e| fail("socket", &e))?;
        if !self.source.is_unspecified() && self.source.is_ipv4() == peer.is_ipv4() {
            socket.bind(SocketAddr::new(self.source, 0)).map_err(|e| fail("bind", &e))?;
        }
        // A peer that is down or stopped must not hold a round (or a
        // joining node's first sync) for the whole request timeout.
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(peer))
            .await
            .map_err(|_| fail("connect", &"timed out"))?
            .map_err(|e| fail("connect", &e))?;
        let _ = tcp.set_nodelay(true);
        let counted = ByteCounter { inner: tcp, total: Arc::clone(&self.wire_bytes) };
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls));
        let name = ServerName::try_from("VSSM").expect("VSSM is a valid server name");
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, counted))
            .await
            .map_err(|_| fail("TLS", &"handshake timed out"))?
            .map_err(|e| fail("TLS", &e))?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| fail("HTTP", &e))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Reads the answer, returns the connection to the pool, maps errors.
    async fn finish(
        &self,
        peer: SocketAddr,
        path: &str,
        sender: SendRequest<Full<Bytes>>,
        response: hyper::Response<hyper::body::Incoming>,
    ) -> Result<Bytes, PeerError> {
        let fail = |what: &'static str, e: &dyn fmt::Display| transport(peer, path, what, e);
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| fail("body", &e))?
            .to_bytes();
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).insert(peer, sender);
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_default();
            // A bounded, printable copy: the text ends up in logs.
            let message = message.chars().filter(|c| !c.is_control()).take(512).collect();
            return Err(PeerError::Status { peer, path: path.to_string(), status, message });
        }
        Ok(body)
    }
}

fn transport(peer: SocketAddr, path: &str, stage: &'static str, reason: &dyn fmt::Display) -> PeerError {
    PeerError::Transport { peer, path: path.to_string(), stage, reason: reason.to_string() }
}

fn request(path: &str, body: Bytes) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = hyper::Method::POST;
    *request.uri_mut() = path.parse().unwrap_or_else(|_| hyper::Uri::from_static("/"));
    request.headers_mut().insert(HOST, hyper::header::HeaderValue::from_static("VSSM"));
    request.headers_mut().insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    // Only where answers carry origins: a digest round stays as small as before.
    if [super::protocol::MANIFEST_PATH, super::protocol::FETCH_PATH].contains(&path) {
        request.headers_mut().insert(super::protocol::ORIGIN_HEADER, hyper::header::HeaderValue::from_static("1"));
    }
    request
}

/// Counts the bytes read and written on a stream.
struct ByteCounter<S> {
    inner: S,
    total: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for ByteCounter<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.total.fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ByteCounter<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = result {
            self.total.fetch_add(n as u64, Ordering::Relaxed);
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
