//! One keep-alive HTTPS connection (HTTP/1.1 or HTTP/2) that POSTs JSON.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::{tls, Error};

/// The protocol-specific request handle of a connection.
enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// An established mutual-TLS connection; its I/O is driven by a spawned task.
pub struct Client {
    sender: Sender,
}

impl Client {
    /// True if ALPN selected HTTP/2 on this connection.
    pub fn is_h2(&self) -> bool {
        matches!(self.sender, Sender::H2(_))
    }
}

/// A request target prepared once per op, so the hot loop does not parse URIs.
#[derive(Clone)]
pub struct Target {
    uri: Uri,
}

impl Target {
    /// Origin-form URI for HTTP/1.1, absolute URI (`https://VSSM/...`) for HTTP/2.
    pub fn new(path: &str, h2: bool) -> Target {
        let uri = if h2 { format!("https://{}{path}", tls::SERVER_NAME) } else { path.to_string() };
        Target { uri: uri.parse().expect("valid API path") }
    }
}

impl Client {
    /// Connects over TCP (no Nagle), completes the TLS handshake and the
    /// HTTP handshake for the ALPN-negotiated protocol.
    pub async fn connect(addr: SocketAddr, connector: &TlsConnector) -> Result<Client, Error> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let tls = connector.connect(tls::server_name(), tcp).await?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        let sender = if h2 {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            Sender::H2(sender)
        } else {
            let (sender, conn) = http1::handshake(io).await?;
            tokio::spawn(conn);
            Sender::H1(sender)
        };
        Ok(Client { sender })
    }

    /// POSTs `body` as JSON and returns the status and the full response body.
    pub async fn post(&mut self, target: &Target, body: Bytes) -> Result<(StatusCode, Bytes), Error> {
        let builder =
            Request::builder().method(Method::POST).uri(target.uri.clone()).header(CONTENT_TYPE, "application/json");
        let response = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await?;
                let req = builder.header(HOST, tls::SERVER_NAME).body(Full::new(body))?;
                s.send_request(req).await?
            }
            Sender::H2(s) => {
                s.ready().await?;
                s.send_request(builder.body(Full::new(body))?).await?
            }
        };
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// POSTs a JSON value to the API `path` (setup calls, not the hot loop).
    pub async fn call(&mut self, path: &str, body: &serde_json::Value) -> Result<(StatusCode, Bytes), Error> {
        self.post(&Target::new(path, self.is_h2()), Bytes::from(body.to_string())).await
    }

    /// [`Client::call`] that wants a 200 with a JSON answer, and returns it.
    pub async fn call_json(&mut self, path: &str, body: &serde_json::Value) -> Result<serde_json::Value, Error> {
        let (status, answer) = self.call(path, body).await?;
        json_answer(path, status, &answer)
    }
}

/// The JSON answer of a call to `path`; any status but 200, or a body that
/// is not JSON, is an error naming the path, the status and the body.
pub fn json_answer(path: &str, status: StatusCode, body: &[u8]) -> Result<serde_json::Value, Error> {
    let fail = || format!("{path}: HTTP {status}: {}", String::from_utf8_lossy(body));
    if status != StatusCode::OK {
        return Err(fail().into());
    }
    serde_json::from_slice(body).map_err(|_| fail().into())
}
