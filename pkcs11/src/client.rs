//! The transport: HTTP/1.1 over mutual TLS (rustls with AWS-LC) to the VSSM
//! nodes, with a pinned server certificate, keep-alive connections per node,
//! per-request timeouts and failover to the next node.
//!
//! A small hand-written HTTP/1.1 client rather than `ureq`: the node is
//! reached by address while its certificate names `VSSM` (SNI and the pin
//! need a custom rustls verifier, which ureq 3 does not take), and the
//! module needs exact control of timeouts and of when a request may be sent
//! again to another node (never an admin request that may have arrived).

use crate::error::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest answer body accepted from a node.
const MAX_BODY: usize = 64 << 20;
/// Idle connections kept per node.
const MAX_IDLE: usize = 64;

/// Trusts exactly the pinned RPC certificate (byte-equal DER); handshake
/// signatures are still verified against its key.
#[derive(Debug)]
struct PinnedServerCert {
    cert: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("server certificate is not the pinned VSSM certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Builds the mutual-TLS client configuration.
pub fn tls_config(
    server_cert: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier =
        Arc::new(PinnedServerCert { cert: server_cert, algorithms: provider.signature_verification_algorithms });
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider) as Arc<CryptoProvider>)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain, key)
        .map_err(|e| Error::Config(format!("client certificate or key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

type Stream = BufReader<StreamOwned<ClientConnection, TcpStream>>;

/// One node: its address and idle keep-alive connections.
struct Node {
    name: String,
    idle: Mutex<Vec<Stream>>,
}

/// The client of a set of nodes. Cheap to share between threads.
pub struct Client {
    tls: Arc<ClientConfig>,
    nodes: Vec<Node>,
    preferred: AtomicUsize,
    timeout: Duration,
}

/// How one attempt on one node failed.
enum Attempt {
    /// The request certainly did not reach the node: another node may take it.
    NotSent(String),
    /// The request may have reached the node (no or a broken answer).
    MaybeSent(String),
    /// The node answered.
    Answer(u16, Vec<u8>),
}

impl Client {
    /// A client for `nodes` (`host:port`, port 8080 when absent).
    pub fn new(tls: Arc<ClientConfig>, nodes: &[String], timeout: Duration) -> Client {
        let nodes = nodes.iter().map(|n| Node { name: n.clone(), idle: Mutex::new(Vec::new()) }).collect();
        Client { tls, nodes, preferred: AtomicUsize::new(0), timeout }
    }

    /// POSTs `body` to `/REST/v1/<path>` and answers the JSON of a 200.
    /// Nodes are tried from the last one that answered; a request that may
    /// have reached a node is sent again elsewhere only when `idempotent`.
    pub fn post(&self, path: &str, body: &serde_json::Value, idempotent: bool) -> Result<serde_json::Value> {
        let body = serde_json::to_vec(body).map_err(|e| Error::BadAnswer(e.to_string()))?;
        let start = self.preferred.load(Ordering::Relaxed);
        let count = self.nodes.len();
        let mut failures = Vec::new();
        for i in 0..count {
            let index = (start + i) % count;
            let node = &self.nodes[index];
            match self.attempt(node, path, &body) {
                Attempt::Answer(503, text) if i + 1 < count => {
                    failures.push(format!("{}: 503 {}", node.name, error_message(&text)));
                }
                Attempt::Answer(status, text) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return answer(status, &text);
                }
                Attempt::NotSent(why) => failures.push(format!("{}: {why}", node.name)),
                Attempt::MaybeSent(why) if idempotent => failures.push(format!("{}: {why}", node.name)),
                Attempt::MaybeSent(why) => return Err(Error::Unreachable(format!("{}: {why}", node.name))),
            }
        }
        Err(Error::Unreachable(failures.join("; ")))
    }

    /// One request on one node: on a kept connection (again on a fresh one
    /// when the kept one was closed meanwhile), else a fresh connection.
    fn attempt(&self, node: &Node, path: &str, body: &[u8]) -> Attempt {
        let kept = node.idle.lock().ok().and_then(|mut idle| idle.pop());
        if let Some(mut stream) = kept {
            match exchange(&mut stream, path, body) {
                Ok((status, text, keep)) => {
                    self.give_back(node, stream, keep);
                    return Attempt::Answer(status, text);
                }
                // A kept connection the node closed meanwhile: no answer bytes at all.
                Err(e) if is_closed(&e) => {}
                Err(e) => return Attempt::MaybeSent(e.to_string()),
            }
        }
        let mut stream = match self.connect(&node.name) {
            Ok(stream) => stream,
            Err(why) => return Attempt::NotSent(why),
        };
        match exchange(&mut stream, path, body) {
            Ok((status, text, keep)) => {
                self.give_back(node, stream, keep);
                Attempt::Answer(status, text)
            }
            Err(e) => Attempt::MaybeSent(e.to_string()),
        }
    }

    fn give_back(&self, node: &Node, stream: Stream, keep: bool) {
        if keep {
            if let Ok(mut idle) = node.idle.lock() {
                if idle.len() < MAX_IDLE {
                    idle.push(stream);
                }
            }
        }
    }

    /// Connects and completes the TLS handshake within the timeout.
    fn connect(&self, name: &str) -> std::result::Result<Stream, String> {
        let addrs = resolve(name)?;
        let mut last = String::from("no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    tcp.set_read_timeout(Some(self.timeout)).map_err(|e| e.to_string())?;
                    tcp.set_write_timeout(Some(self.timeout)).map_err(|e| e.to_string())?;
                    let server = ServerName::try_from("VSSM").map_err(|e| e.to_string())?;
                    let conn = ClientConnection::new(Arc::clone(&self.tls), server).map_err(|e| e.to_string())?;
                    let mut stream = StreamOwned::new(conn, tcp);
                    // Handshake now, so that a refused certificate counts as "not sent".
                    while stream.conn.is_handshaking() {
                        stream.conn.complete_io(&mut stream.sock).map_err(|e| format!("TLS handshake: {e}"))?;
                    }
                    return Ok(BufReader::new(stream));
                }
                Err(e) => last = format!("connect {addr}: {e}"),
            }
        }
        Err(last)
    }
}

fn resolve(name: &str) -> std::result::Result<Vec<SocketAddr>, String> {
    let with_port = if name.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{name}]:8080")
    } else if name.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        name.to_string()
    } else {
        format!("{name}:8080")
    };
    with_port.to_socket_addrs().map(|a| a.collect()).map_err(|e| format!("resolve: {e}"))
}

/// Whether a kept connection was closed by the node before it answered
/// (an idle connection the node dropped): the request was not taken.
fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
    )
}

/// Sends one request and reads one answer: (status, body, keep-alive).
fn exchange(stream: &mut Stream, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>, bool)> {
    let head = format!(
        "POST /REST/v1/{path} HTTP/1.1\r\nHost: VSSM\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut request = Vec::with_capacity(head.len() + body.len());
    request.extend_from_slice(head.as_bytes());
    request.extend_from_slice(body);
    {
        let inner = stream.get_mut();
        inner.write_all(&request)?;
        inner.flush()?;
    }
    let mut line = String::new();
    let n = read_line(stream, &mut line)?;
    if n == 0 {
        return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "connection closed before answer"));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, "not an HTTP answer"))?;
    let http10 = line.starts_with("HTTP/1.0");
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut keep = !http10;
    loop {
        line.clear();
        if read_line(stream, &mut line)? == 0 {
            return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "answer headers cut"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().ok(),
                "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                "connection" => keep = !value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
    }
    let mut answer = Vec::new();
    if chunked {
        loop {
            line.clear();
            read_line(stream, &mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| std::io::Error::new(ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers up to the empty line.
                loop {
                    line.clear();
                    if read_line(stream, &mut line)? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            if answer.len() + size > MAX_BODY {
                return Err(std::io::Error::new(ErrorKind::InvalidData, "answer too large"));
            }
            let start = answer.len();
            answer.resize(start + size, 0);
            stream.read_exact(&mut answer[start..])?;
            line.clear();
            read_line(stream, &mut line)?;
        }
    } else if let Some(length) = length {
        if length > MAX_BODY {
            return Err(std::io::Error::new(ErrorKind::InvalidData, "answer too large"));
        }
        answer.resize(length, 0);
        stream.read_exact(&mut answer)?;
    } else {
        stream.take(MAX_BODY as u64).read_to_end(&mut answer)?;
        keep = false;
    }
    Ok((status, answer, keep))
}

/// Reads one header line of at most 8 KiB.
fn read_line(stream: &mut Stream, line: &mut String) -> std::io::Result<usize> {
    let n = stream.by_ref().take(8192).read_line(line)?;
    Ok(n)
}

fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_default()
}

fn answer(status: u16, body: &[u8]) -> Result<serde_json::Value> {
    if status == 200 {
        serde_json::from_slice(body).map_err(|e| Error::BadAnswer(e.to_string()))
    } else {
        Err(Error::Status { status, message: error_message(body) })
    }
}
