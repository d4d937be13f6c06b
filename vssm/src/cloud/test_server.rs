//! In-test HTTP/1.1 server (hyper, tokio) on 127.0.0.1 with a synchronous handler.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use super::http_client::Url;

pub struct TestRequest {
    pub method: String,
    /// Origin-form target (path and query).
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
}

impl TestRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub struct TestResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: bool,
}

impl TestResponse {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> TestResponse {
        TestResponse { status, headers: Vec::new(), body: body.into(), chunked: false }
    }
    pub fn header(mut self, n: &str, v: &str) -> TestResponse {
        self.headers.push((n.to_string(), v.to_string()));
        self
    }
    /// Send the body in 1 KiB chunks without Content-Length.
    pub fn chunked(mut self) -> TestResponse {
        self.chunked = true;
        self
    }
}

/// Body of known chunks with no size hint (forces chunked transfer encoding).
struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start<F>(handler: F) -> TestServer
    where
        F: Fn(&TestRequest) -> TestResponse + Send + Sync + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else { continue };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<Incoming>| {
                        let handler = handler.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                            let treq = TestRequest {
                                method: parts.method.to_string(),
                                uri: parts.uri.to_string(),
                                headers: parts.headers,
                                body,
                                peer,
                            };
                            let r = handler(&treq);
                            let chunks: VecDeque<Bytes> = if r.chunked {
                                r.body.chunks(1024).map(Bytes::copy_from_slice).collect()
                            } else {
                                std::iter::once(Bytes::from(r.body)).collect()
                            };
                            let mut resp = hyper::Response::new(Chunks(chunks));
                            *resp.status_mut() = hyper::StatusCode::from_u16(r.status).unwrap();
                            for (n, v) in &r.headers {
                                resp.headers_mut().append(
                                    HeaderName::from_bytes(n.as_bytes()).unwrap(),
                                    HeaderValue::from_str(v).unwrap(),
                                );
                            }
                            if !r.chunked {
                                let len = resp.body().0.iter().map(|b| b.len()).sum::<usize>();
                                resp.headers_mut().insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(len));
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        TestServer { addr, task }
    }

    pub fn base_url(&self) -> Url {
        Url::parse(&format!("http://{}", self.addr)).unwrap()
    }

    pub fn url(&self, path_and_query: &str) -> Url {
        Url::parse(&format!("http://{}{}", self.addr, path_and_query)).unwrap()
    }
}
