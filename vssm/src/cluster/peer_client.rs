//! HTTPS client for node-to-node calls: the peer must present the cluster's
//! RPC certificate (pinned), and the connection leaves from this node's own
//! address so peers see (and can check) who is calling.

use crate::server::api::ApiError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Largest response accepted from a peer (a fetch of many RSA keys).
pub const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// A failed call to a peer.
#[derive(Debug)]
pub struct PeerError(pub String);

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ApiError> for PeerError {
    fn from(e: ApiError) -> Self {
        PeerError(e.message)
    }
}

/// Calls peers over pinned TLS; counts the body bytes it moves.
pub struct PeerClient {
    tls: Arc<rustls::ClientConfig>,
    source: IpAddr,
    timeout: Duration,
    bytes_moved: AtomicU64,
}

impl PeerClient {
    /// A client with `tls` (pinned to the RPC certificate) leaving from `source`.
    pub fn new(tls: Arc<rustls::ClientConfig>, source: IpAddr, timeout: Duration) -> Self {
        PeerClient { tls, source, timeout, bytes_moved: AtomicU64::new(0) }
    }

    /// Request plus response body bytes moved so far.
    pub fn bytes_moved(&self) -> u64 {
        self.bytes_moved.load(Ordering::Relaxed)
    }

    /// POSTs `body` as JSON to `path` on `peer` and parses the JSON answer.
    pub async fn post_json<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        peer: SocketAddr,
        path: &str,
        body: &Req,
    ) -> Result<Resp, PeerError> {
        let request_body = serde_json::to_vec(body).map_err(|e| PeerError(format!("cannot encode: {e}")))?;
        let sent = request_body.len();
        let response = tokio::time::timeout(self.timeout, self.exchange(peer, path, request_body))
            .await
            .map_err(|_| PeerError(format!("{peer}{path}: timed out")))??;
        self.bytes_moved.fetch_add((sent + response.len()) as u64, Ordering::Relaxed);
        serde_json::from_slice(&response).map_err(|e| PeerError(format!("{peer}{path}: invalid answer: {}", crate::wire::codec::json_error_kind(&e))))
    }

    async fn exchange(&self, peer: SocketAddr, path: &str, body: Vec<u8>) -> Result<Bytes, PeerError> {
        let fail = |what: &str, e: &dyn fmt::Display| PeerError(format!("{peer}{path}: {what}: {e}"));
        let socket = if peer.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() }
            .map_err(|e| fail("socket", &e))?;
        if !self.source.is_unspecified() && self.source.is_ipv4() == peer.is_ipv4() {
            socket.bind(SocketAddr::new(self.source, 0)).map_err(|e| fail("bind", &e))?;
        }
        let tcp = socket.connect(peer).await.map_err(|e| fail("connect", &e))?;
        let _ = tcp.set_nodelay(true);
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls));
        let name = ServerName::try_from("VSSM").expect("VSSM is a valid server name");
        let tls = connector.connect(name, tcp).await.map_err(|e| fail("TLS", &e))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| fail("HTTP", &e))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = Request::post(path)
            .header(HOST, "VSSM")
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| fail("request", &e))?;
        let response = sender.send_request(request).await.map_err(|e| fail("HTTP", &e))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| fail("body", &e))?
            .to_bytes();
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_default();
            return Err(PeerError(format!("{peer}{path}: {} {}", status.as_u16(), message)));
        }
        Ok(body)
    }
}
