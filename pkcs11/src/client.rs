//! The transport: HTTP/1.1 over mutual TLS (rustls with AWS-LC) to the VSSM
//! nodes, with a pinned server certificate, keep-alive connections per node,
//! per-request timeouts and failover to the next node.
//!
//! The answer head (status line and headers) is parsed by `httparse` (the
//! parser under hyper); this file only frames the body: `Content-Length`,
//! `chunked` (sizes parsed by `httparse::parse_chunk_size`) or
//! read-to-close, each bounded (64 KiB of head, [`MAX_BODY`] of body).
//!
//! `ureq` was considered for the whole client and rejected:
//! - the node is reached by address while its certificate names `VSSM`,
//!   and it is pinned (byte-equal DER, handshake signature still checked):
//!   that needs a custom rustls `ServerCertVerifier`. ureq 3's `TlsConfig`
//!   takes root certificates, a client certificate and a crypto provider,
//!   not a verifier; ureq 2 takes a whole rustls `ClientConfig` but its
//!   `tls` feature builds rustls with `ring` (a second crypto library in
//!   the module next to AWS-LC, which the workspace avoids);
//! - failover must know whether a request may have reached a node: a
//!   refused connection or TLS handshake goes to the next node, while a
//!   key creation that was written out is never sent twice. ureq reports
//!   one error type for both, and retries on its own pooled connections;
//! - one POST with a JSON body per call, keep-alive per node, and exact
//!   connect/read/write timeouts are a few lines over `rustls::StreamOwned`.

use crate::error::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
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
///
/// The client certificate may be an X.509 v1 certificate (VSSM's README
/// recipe): rustls' `with_client_auth_cert` parses it with webpki to check
/// that it matches the key and refuses v1, so the certified key is built
/// here and the match checked on the SPKI of [`crate::der::certificate_spki`].
pub fn tls_config(
    server_cert: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let signing_key =
        provider.key_provider.load_private_key(key).map_err(|e| Error::Config(format!("client key: {e}")))?;
    let end_entity = chain.first().ok_or_else(|| Error::Config("no client certificate".into()))?;
    let cert_spki = crate::der::certificate_spki(end_entity)
        .ok_or_else(|| Error::Config("client certificate: not an X.509 certificate".into()))?;
    if let Some(key_spki) = signing_key.public_key() {
        if key_spki.as_ref() != cert_spki.as_slice() {
            return Err(Error::Config("the client key does not match the client certificate".into()));
        }
    }
    let certified = Arc::new(CertifiedKey::new(chain, signing_key));
    let verifier =
        Arc::new(PinnedServerCert { cert: server_cert, algorithms: provider.signature_verification_algorithms });
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider) as Arc<CryptoProvider>)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(ClientIdentity(certified)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Always presents the configured certificate chain and key.
#[derive(Debug)]
struct ClientIdentity(Arc<CertifiedKey>);

impl ResolvesClientCert for ClientIdentity {
    fn resolve(&self, _root_hint_subjects: &[&[u8]], _sigschemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
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

/// Largest answer head (status line and headers).
const MAX_HEAD: usize = 64 << 10;
/// Most headers an answer may have.
const MAX_HEADERS: usize = 64;

fn invalid(why: &str) -> std::io::Error {
    std::io::Error::new(ErrorKind::InvalidData, why.to_string())
}

/// How the body of an answer is framed.
enum Framing {
    Length(usize),
    Chunked,
    ToClose,
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
    // Only a connection that ends before the first answer byte may have
    // been dropped unused (`is_closed`); once the node has begun to answer
    // it took the request, so a later failure must not look like that.
    if stream.fill_buf()?.is_empty() {
        return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "connection closed before answer"));
    }
    read_answer(stream).map_err(|e| std::io::Error::other(format!("answer cut: {e}")))
}

/// The answer after its first byte arrived: (status, body, keep-alive).
fn read_answer(stream: &mut Stream) -> std::io::Result<(u16, Vec<u8>, bool)> {
    let (status, framing, mut keep) = read_head(stream)?;
    let answer = match framing {
        Framing::Length(length) => {
            let mut answer = vec![0; length];
            stream.read_exact(&mut answer)?;
            answer
        }
        Framing::Chunked => read_chunked(stream)?,
        Framing::ToClose => {
            keep = false;
            let mut answer = Vec::new();
            stream.take(MAX_BODY as u64 + 1).read_to_end(&mut answer)?;
            if answer.len() > MAX_BODY {
                return Err(invalid("answer too large"));
            }
            answer
        }
    };
    Ok((status, answer, keep))
}

/// Reads and parses the answer head with `httparse`, consuming exactly its
/// bytes from the buffered stream: (status, body framing, keep-alive).
fn read_head(stream: &mut impl BufRead) -> std::io::Result<(u16, Framing, bool)> {
    let mut head: Vec<u8> = Vec::new();
    loop {
        let before = head.len();
        let available = stream.fill_buf()?;
        if available.is_empty() {
            let why = if before == 0 { "connection closed before answer" } else { "answer head cut" };
            return Err(std::io::Error::new(ErrorKind::UnexpectedEof, why));
        }
        let take = available.len().min(MAX_HEAD - before);
        head.extend_from_slice(&available[..take]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&head) {
            Ok(httparse::Status::Complete(length)) => {
                stream.consume(length - before);
                return head_fields(&response);
            }
            Ok(httparse::Status::Partial) => {
                stream.consume(take);
                if head.len() >= MAX_HEAD {
                    return Err(invalid("answer head too large"));
                }
            }
            Err(e) => return Err(invalid(&format!("not an HTTP answer: {e}"))),
        }
    }
}

/// Status, framing and keep-alive of a parsed head.
fn head_fields(response: &httparse::Response<'_, '_>) -> std::io::Result<(u16, Framing, bool)> {
    let status = response.code.ok_or_else(|| invalid("no status"))?;
    let mut keep = response.version == Some(1);
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).map_err(|_| invalid("header not UTF-8"))?.trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.parse().map_err(|_| invalid("bad Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(invalid("conflicting Content-Length"));
            }
            length = Some(n);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().split(',').any(|c| c.trim() == "chunked");
        } else if header.name.eq_ignore_ascii_case("connection") {
            let close = value.split(',').any(|c| c.trim().eq_ignore_ascii_case("close"));
            let keep_alive = value.split(',').any(|c| c.trim().eq_ignore_ascii_case("keep-alive"));
            keep = if close { false } else { keep || keep_alive };
        }
    }
    // RFC 9112 6.3: chunked wins over a Content-Length.
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) if n > MAX_BODY => return Err(invalid("answer too large")),
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::ToClose,
    };
    Ok((status, framing, keep))
}

/// A `chunked` body, at most [`MAX_BODY`] bytes; trailers are skipped.
fn read_chunked(stream: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut answer = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        read_line(stream, &mut line)?;
        let size = match httparse::parse_chunk_size(line.as_bytes()) {
            Ok(httparse::Status::Complete((_, size))) => size,
            _ => return Err(invalid("bad chunk size")),
        };
        if size == 0 {
            // Trailers up to the empty line.
            loop {
                line.clear();
                if read_line(stream, &mut line)? == 0 || line.trim_end().is_empty() {
                    return Ok(answer);
                }
            }
        }
        let size =
            usize::try_from(size).ok().filter(|&s| answer.len().checked_add(s).is_some_and(|end| end <= MAX_BODY));
        let size = size.ok_or_else(|| invalid("answer too large"))?;
        let start = answer.len();
        answer.resize(start + size, 0);
        stream.read_exact(&mut answer[start..])?;
        line.clear();
        read_line(stream, &mut line)?;
        if line != "\r\n" {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}

/// Reads one line (chunk size or trailer) of at most 8 KiB.
fn read_line(stream: &mut impl BufRead, line: &mut String) -> std::io::Result<usize> {
    stream.by_ref().take(8192).read_line(line)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn read(raw: &[u8]) -> std::io::Result<(u16, Vec<u8>, bool, Vec<u8>)> {
        let mut r = Cursor::new(raw.to_vec());
        let (status, framing, keep) = read_head(&mut r)?;
        let body = match framing {
            Framing::Length(n) => {
                let mut b = vec![0; n];
                r.read_exact(&mut b)?;
                b
            }
            Framing::Chunked => read_chunked(&mut r)?,
            Framing::ToClose => {
                let mut b = Vec::new();
                r.read_to_end(&mut b)?;
                b
            }
        };
        let mut rest = Vec::new();
        r.read_to_end(&mut rest)?;
        Ok((status, body, keep, rest))
    }

    #[test]
    fn content_length_and_keep_alive() {
        let (status, body, keep, rest) = read(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 ...").unwrap();
        assert_eq!((status, body.as_slice(), keep, rest.as_slice()), (200, &b"{}"[..], true, &b"HTTP/1.1 ..."[..]));
        let (_, _, keep, _) = read(b"HTTP/1.1 404 X\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(!keep);
        let (_, _, keep, _) = read(b"HTTP/1.0 200 X\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(!keep);
    }

    #[test]
    fn chunked() {
        let raw =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\nNEXT";
        let (_, body, _, rest) = read(raw).unwrap();
        assert_eq!((body.as_slice(), rest.as_slice()), (&b"abcde"[..], &b"NEXT"[..]));
        assert!(read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err());
        assert!(read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n").is_err());
        let huge = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n", MAX_BODY + 1);
        assert!(read(huge.as_bytes()).is_err());
    }

    #[test]
    fn bounded_and_malformed() {
        let big = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
        assert!(read(big.as_bytes()).is_err());
        assert!(read(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab").is_err());
        assert!(read(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(read(b"garbage\r\n\r\n").is_err());
        let e = read(b"").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnexpectedEof);
        let e = read(b"HTTP/1.1 200 OK\r\nContent-").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnexpectedEof);
        let mut long = b"HTTP/1.1 200 OK\r\n".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        assert_eq!(read(&long).unwrap_err().kind(), ErrorKind::InvalidData);
    }
}
