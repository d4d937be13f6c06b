//! A tiny one-request-per-connection HTTP/1.1 client (hyper `client::conn::http1` over a tokio
//! `TcpStream`, optionally wrapped in TLS with a caller-supplied `rustls::ClientConfig`).
//!
//! Every call has a total timeout (connect + TLS + request + body) and a response body size limit.
//! The local (source) address can be pinned so cluster nodes talk from their own address.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};

/// Default response body limit.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Errors of the HTTP client.
#[derive(Debug)]
pub enum HttpError {
    /// The URL is not an absolute http(s) URL this client accepts.
    InvalidUrl(String),
    /// A header name or value is unusable.
    InvalidHeader(String),
    /// `https://` URL but the client has no TLS configuration.
    TlsNotConfigured,
    /// The host name did not resolve to a usable address.
    Resolve(String),
    /// The TCP connection failed.
    Connect(std::io::Error),
    /// The TLS handshake failed.
    Tls(std::io::Error),
    /// HTTP protocol error.
    Protocol(hyper::Error),
    /// The response body exceeds the limit.
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The whole exchange took longer than its timeout.
    Timeout,
}

impl HttpError {
    /// Errors for which retrying the same request may succeed (transport-level trouble).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HttpError::Resolve(_)
                | HttpError::Connect(_)
                | HttpError::Tls(_)
                | HttpError::Protocol(_)
                | HttpError::Timeout
        )
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidUrl(m) => write!(f, "invalid URL: {m}"),
            HttpError::InvalidHeader(m) => write!(f, "invalid header: {m}"),
            HttpError::TlsNotConfigured => write!(f, "https URL but no TLS configuration"),
            HttpError::Resolve(m) => write!(f, "cannot resolve host: {m}"),
            HttpError::Connect(e) => write!(f, "connect failed: {e}"),
            HttpError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            HttpError::Protocol(e) => write!(f, "HTTP error: {e}"),
            HttpError::BodyTooLarge { limit } => write!(f, "response body larger than {limit} bytes"),
            HttpError::Timeout => write!(f, "request timed out"),
        }
    }
}

impl std::error::Error for HttpError {}

/// URL scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`
    Http,
    /// `https://`
    Https,
}

/// A parsed absolute `http://` or `https://` URL (ASCII only; path and query kept in wire form).
#[derive(Clone, PartialEq, Eq)]
pub struct Url {
    scheme: Scheme,
    /// Host without brackets (IPv6 literals are stored bare).
    host: String,
    port: u16,
    /// Path in wire (percent-encoded) form, always starting with `/`.
    path: String,
    /// Query in wire form without the `?`, if any.
    query: Option<String>,
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL. The grammar is `http::Uri`'s; on top of it
    /// only printable ASCII is accepted, no userinfo, no empty port, and host names of letters,
    /// digits, `.` and `-` (or an IP literal). A fragment is dropped.
    pub fn parse(s: &str) -> Result<Url, HttpError> {
        let bad = |m: &str| HttpError::InvalidUrl(format!("{m}: {s:?}"));
        if s.len() > 8192 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("not printable ASCII or too long"));
        }
        let uri: hyper::Uri = s.parse().map_err(|e| bad(&format!("{e}")))?;
        let scheme = match uri.scheme_str() {
            Some(x) if x.eq_ignore_ascii_case("http") => Scheme::Http,
            Some(x) if x.eq_ignore_ascii_case("https") => Scheme::Https,
            _ => return Err(bad("scheme must be http or https")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?.as_str();
        if authority.contains('@') {
            return Err(bad("userinfo not allowed"));
        }
        // `Authority::port` reads an empty port as none; the split is done here to refuse it.
        let (host, port_str) = match authority.strip_prefix('[') {
            Some(r) => {
                let (h, after) = r.split_once(']').ok_or_else(|| bad("unterminated IPv6 literal"))?;
                h.parse::<std::net::Ipv6Addr>().map_err(|_| bad("bad IPv6 literal"))?;
                match after.strip_prefix(':') {
                    Some(p) => (h, Some(p)),
                    None if after.is_empty() => (h, None),
                    None => return Err(bad("garbage after IPv6 literal")),
                }
            }
            None => match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':') {
            return Err(bad("bad host"));
        }
        let port = match port_str {
            None => match scheme {
                Scheme::Http => 80,
                Scheme::Https => 443,
            },
            Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u16>().map_err(|_| bad("bad port"))?
            }
            Some(_) => return Err(bad("bad port")),
        };
        let path = match uri.path() {
            "" => "/".to_string(),
            p => p.to_string(),
        };
        Ok(Url { scheme, host: host.to_ascii_lowercase(), port, path, query: uri.query().map(String::from) })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
    /// Host as given (IPv6 without brackets), lowercased.
    pub fn host(&self) -> &str {
        &self.host
    }
    /// The port (the scheme default if none was given).
    pub fn port(&self) -> u16 {
        self.port
    }
    /// Path in wire form (starts with `/`).
    pub fn path(&self) -> &str {
        &self.path
    }
    /// Query in wire form, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    fn default_port(&self) -> bool {
        matches!((self.scheme, self.port), (Scheme::Http, 80) | (Scheme::Https, 443))
    }

    /// Value of the `Host` header: host, bracketed if IPv6, plus `:port` if not the scheme default.
    pub fn host_header(&self) -> String {
        let h = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.default_port() {
            h
        } else {
            format!("{h}:{}", self.port)
        }
    }

    /// Request target in origin form: `path[?query]`.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.clone(),
        }
    }

    /// Same scheme/host/port with another path-and-query (`p` must start with `/`).
    pub fn with_path_and_query(&self, p: &str) -> Result<Url, HttpError> {
        if !p.starts_with('/') {
            return Err(HttpError::InvalidUrl(format!("path must start with '/': {p:?}")));
        }
        let s = format!("{}{}", self.origin(), p);
        Url::parse(&s)
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}", self.host_header())
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin(), self.path_and_query())
    }
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Url({self})")
    }
}

impl std::str::FromStr for Url {
    type Err = HttpError;
    fn from_str(s: &str) -> Result<Url, HttpError> {
        Url::parse(s)
    }
}

impl Serialize for Url {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Url {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
        let s = String::deserialize(d)?;
        Url::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Reusable client settings: TLS configuration (needed for `https://` only) and source address.
#[derive(Clone, Default)]
pub struct HttpClient {
    tls: Option<Arc<rustls::ClientConfig>>,
    source_ip: Option<IpAddr>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient").field("tls", &self.tls.is_some()).field("source_ip", &self.source_ip).finish()
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body (within the limit).
    pub body: Bytes,
}

impl HttpClient {
    /// Plain-HTTP-only client (IMDS, tests).
    pub fn new() -> HttpClient {
        HttpClient::default()
    }

    /// Client able to do `https://` with the given rustls configuration (root store chosen by the caller).
    pub fn with_tls(tls: Arc<rustls::ClientConfig>) -> HttpClient {
        HttpClient { tls: Some(tls), source_ip: None }
    }

    /// Bind outgoing sockets to this local address (port chosen by the kernel).
    pub fn source_ip(mut self, ip: Option<IpAddr>) -> HttpClient {
        self.source_ip = ip;
        self
    }

    /// One request on a fresh connection. `headers` are sent as given; `Host` and `Content-Length`
    /// are added unless present. The whole exchange is bounded by `timeout`; a body larger than
    /// `max_response_bytes` fails with [`HttpError::BodyTooLarge`].
    pub async fn request(
        &self,
        method: Method,
        url: &Url,
        headers: &HeaderMap,
        body: Bytes,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> Result<Response, HttpError> {
        match tokio::time::timeout(timeout, self.request_inner(method, url, headers, body, max_response_bytes)).await {
            Ok(r) => r,
            Err(_) => Err(HttpError::Timeout),
        }
    }

    async fn request_inner(
        &self,
        method: Method,
        url: &Url,
        headers: &HeaderMap,
        body: Bytes,
        max_response_bytes: usize,
    ) -> Result<Response, HttpError> {
        if url.scheme() == Scheme::Https && self.tls.is_none() {
            return Err(HttpError::TlsNotConfigured);
        }
        let tcp = connect(url, self.source_ip).await?;
        let mut req = Request::builder()
            .method(method)
            .uri(url.path_and_query())
            .body(Full::new(body.clone()))
            .map_err(|e| HttpError::InvalidUrl(e.to_string()))?;
        *req.headers_mut() = headers.clone();
        if !req.headers().contains_key(HOST) {
            let host =
                HeaderValue::from_str(&url.host_header()).map_err(|e| HttpError::InvalidHeader(e.to_string()))?;
            req.headers_mut().insert(HOST, host);
        }
        if !req.headers().contains_key(CONTENT_LENGTH)
            && (!body.is_empty() || req.method() == Method::POST || req.method() == Method::PUT)
        {
            req.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        match url.scheme() {
            Scheme::Http => send(tcp, req, max_response_bytes).await,
            Scheme::Https => {
                let cfg = self.tls.clone().ok_or(HttpError::TlsNotConfigured)?;
                let name = rustls_pki_types::ServerName::try_from(url.host().to_string())
                    .map_err(|e| HttpError::InvalidUrl(e.to_string()))?;
                let tls = tokio_rustls::TlsConnector::from(cfg).connect(name, tcp).await.map_err(HttpError::Tls)?;
                send(tls, req, max_response_bytes).await
            }
        }
    }
}

/// Convenience wrapper: plain HTTP (or https with `tls`), default 1 MiB response limit.
pub async fn request(
    method: Method,
    url: &Url,
    headers: &HeaderMap,
    body: Bytes,
    timeout: Duration,
    source_ip: Option<IpAddr>,
) -> Result<(StatusCode, HeaderMap, Bytes), HttpError> {
    let r = HttpClient::new()
        .source_ip(source_ip)
        .request(method, url, headers, body, timeout, DEFAULT_MAX_RESPONSE_BYTES)
        .await?;
    Ok((r.status, r.headers, r.body))
}

/// Builds a `HeaderMap` from string pairs (validated).
pub fn header_map<'a, I: IntoIterator<Item = (&'a str, &'a str)>>(pairs: I) -> Result<HeaderMap, HttpError> {
    let mut map = HeaderMap::new();
    for (n, v) in pairs {
        let name = HeaderName::from_bytes(n.as_bytes()).map_err(|_| HttpError::InvalidHeader(format!("name {n:?}")))?;
        let value = HeaderValue::from_str(v).map_err(|_| HttpError::InvalidHeader(format!("value of {n}")))?;
        map.append(name, value);
    }
    Ok(map)
}

async fn connect(url: &Url, source_ip: Option<IpAddr>) -> Result<TcpStream, HttpError> {
    let addrs: Vec<SocketAddr> = match url.host().parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, url.port())],
        Err(_) => tokio::net::lookup_host((url.host(), url.port()))
            .await
            .map_err(|e| HttpError::Resolve(format!("{}: {e}", url.host())))?
            .collect(),
    };
    let candidates: Vec<SocketAddr> =
        addrs.into_iter().filter(|a| source_ip.is_none_or(|s| s.is_ipv4() == a.is_ipv4())).collect();
    if candidates.is_empty() {
        return Err(HttpError::Resolve(format!("no usable address for {}", url.host())));
    }
    let mut last_err = None;
    for addr in candidates {
        let sock =
            if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(HttpError::Connect)?;
        if let Some(ip) = source_ip {
            sock.bind(SocketAddr::new(ip, 0)).map_err(HttpError::Connect)?;
        }
        match sock.connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(HttpError::Connect(last_err.unwrap_or_else(|| std::io::Error::other("no address"))))
}

/// Aborts the spawned connection driver when the request is finished or cancelled (timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn send<IO>(io: IO, req: Request<Full<Bytes>>, max_response_bytes: usize) -> Result<Response, HttpError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(HttpError::Protocol)?;
    let _driver = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let resp = sender.send_request(req).await.map_err(HttpError::Protocol)?;
    let (parts, body) = resp.into_parts();
    if let Some(len) =
        parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
    {
        if len > max_response_bytes as u64 {
            return Err(HttpError::BodyTooLarge { limit: max_response_bytes });
        }
    }
    let collected = Limited::new(body, max_response_bytes).collect().await.map_err(|e| {
        match e.downcast::<hyper::Error>() {
            Ok(he) => HttpError::Protocol(*he),
            // The only other error source is the length limit.
            Err(_) => HttpError::BodyTooLarge { limit: max_response_bytes },
        }
    })?;
    Ok(Response { status: parts.status, headers: parts.headers, body: collected.to_bytes() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::test_server::{TestResponse, TestServer};

    #[test]
    fn url_parsing() {
        let u = Url::parse("http://169.254.169.254").unwrap();
        assert_eq!(u.host_header(), "169.254.169.254");
        assert_eq!(u.path_and_query(), "/");
        let u = Url::parse("https://Sts.us-east-1.amazonaws.com:443/a/b?x=1&y=2#frag").unwrap();
        assert_eq!(u.host(), "sts.us-east-1.amazonaws.com");
        assert_eq!(u.host_header(), "sts.us-east-1.amazonaws.com");
        assert_eq!(u.path(), "/a/b");
        assert_eq!(u.query(), Some("x=1&y=2"));
        assert_eq!(u.to_string(), "https://sts.us-east-1.amazonaws.com/a/b?x=1&y=2");
        let u = Url::parse("http://[::1]:8080/x").unwrap();
        assert_eq!(u.host(), "::1");
        assert_eq!(u.host_header(), "[::1]:8080");
        assert_eq!(u.with_path_and_query("/q?a=b").unwrap().to_string(), "http://[::1]:8080/q?a=b");
        let u = Url::parse("HTTP://Example.com?x").unwrap();
        assert_eq!((u.scheme(), u.path_and_query().as_str()), (Scheme::Http, "/?x"));
        assert_eq!(Url::parse("https://h:8443").unwrap().host_header(), "h:8443");
        for bad in [
            "ftp://x/",
            "http://",
            "http://user@host/",
            "http://host:99999/",
            "http://host:/",
            "http://ho st/",
            "http://hé/",
            "http://[::1/",
            "http://host_x/",
            "http://[::1]x/",
            "http://[fe80::1%25eth0]/",
            "http://a:b@host/",
            "http://host/\u{7f}",
            "//host/",
            "/path",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&Url::parse("http://127.0.0.1:5/p").unwrap()).unwrap();
        assert_eq!(json, "\"http://127.0.0.1:5/p\"");
        let back: Url = serde_json::from_str(&json).unwrap();
        assert_eq!(back.port(), 5);
        assert!(serde_json::from_str::<Url>("\"gopher://x\"").is_err());
    }

    #[tokio::test]
    async fn roundtrip_headers_body_and_source_ip() {
        let server = TestServer::start(|req| {
            let echo = format!(
                "{} {} host={} x={} peer={} body={}",
                req.method,
                req.uri,
                req.header("host").unwrap_or(""),
                req.header("x-test").unwrap_or(""),
                req.peer.ip(),
                String::from_utf8_lossy(&req.body)
            );
            TestResponse::new(201, echo).header("x-reply", "yes")
        })
        .await;
        let url = server.url("/path?q=1");
        let headers = header_map([("x-test", "abc")]).unwrap();
        let (status, hdrs, body) = request(
            Method::POST,
            &url,
            &headers,
            Bytes::from_static(b"hello"),
            Duration::from_secs(5),
            Some("127.0.0.2".parse().unwrap()),
        )
        .await
        .unwrap();
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(hdrs.get("x-reply").unwrap(), "yes");
        let expected = format!("POST /path?q=1 host={} x=abc peer=127.0.0.2 body=hello", url.host_header());
        assert_eq!(String::from_utf8(body.to_vec()).unwrap(), expected);
    }

    #[tokio::test]
    async fn body_limit_enforced() {
        let server = TestServer::start(|_| TestResponse::new(200, vec![b'a'; 10_000])).await;
        let client = HttpClient::new();
        let ok = client
            .request(Method::GET, &server.url("/"), &HeaderMap::new(), Bytes::new(), Duration::from_secs(5), 10_000)
            .await
            .unwrap();
        assert_eq!(ok.body.len(), 10_000);
        let err = client
            .request(Method::GET, &server.url("/"), &HeaderMap::new(), Bytes::new(), Duration::from_secs(5), 9_999)
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::BodyTooLarge { limit: 9_999 }), "{err:?}");
        // Chunked (no Content-Length) response is limited while streaming.
        let server = TestServer::start(|_| TestResponse::new(200, vec![b'b'; 50_000]).chunked()).await;
        let err = client
            .request(Method::GET, &server.url("/"), &HeaderMap::new(), Bytes::new(), Duration::from_secs(5), 1_000)
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::BodyTooLarge { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn total_timeout_and_connect_error() {
        // A listener that accepts but never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _hold = tokio::spawn(async move {
            let mut conns = Vec::new();
            loop {
                if let Ok((s, _)) = listener.accept().await {
                    conns.push(s);
                }
            }
        });
        let url = Url::parse(&format!("http://{addr}/")).unwrap();
        let t0 = std::time::Instant::now();
        let err = HttpClient::new()
            .request(Method::GET, &url, &HeaderMap::new(), Bytes::new(), Duration::from_millis(300), 100)
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::Timeout), "{err:?}");
        assert!(t0.elapsed() < Duration::from_secs(3));
        assert!(err.is_transient());

        // Nothing listening: connection refused.
        let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead);
        let url = Url::parse(&format!("http://{dead_addr}/")).unwrap();
        let err = HttpClient::new()
            .request(Method::GET, &url, &HeaderMap::new(), Bytes::new(), Duration::from_secs(2), 100)
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::Connect(_)), "{err:?}");

        // https without TLS config is refused before anything is sent.
        let url = Url::parse(&format!("https://{addr}/")).unwrap();
        let err = HttpClient::new()
            .request(Method::GET, &url, &HeaderMap::new(), Bytes::new(), Duration::from_secs(2), 100)
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::TlsNotConfigured), "{err:?}");
    }
}
