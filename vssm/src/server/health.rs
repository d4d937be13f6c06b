//! Port 8081: plain-HTTP health check for load balancers and orchestration.

use crate::node::Node;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;

/// `GET /REST/v1/healthcheck`: 503 `bootstrapping`, then 200 `running`.
pub async fn handle(node: Arc<Node>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, body) = if request.uri().path() != "/REST/v1/healthcheck" {
        (StatusCode::NOT_FOUND, "not found")
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        (StatusCode::METHOD_NOT_ALLOWED, "use GET")
    } else if node.is_ready() {
        (StatusCode::OK, "running")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "bootstrapping")
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}
