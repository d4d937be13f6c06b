//! Port 8081: plain-HTTP health check for load balancers and orchestration.

use crate::node::Node;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;

/// `GET /REST/v1/healthcheck`: 503 `crypto self-test failed: …` when the
/// start-up self-tests failed, 503 `bootstrapping`, (in a cluster) 503
/// `synchronizing` until the first sync with the peers, then 200 `running`.
/// `GET /REST/v1/cluster/status`: `{"ready":…,"serving":…}`, and with the
/// config's `healthDetails` the cluster layer's counters, peer addresses
/// and key-set digest (no secrets, but topology an anonymous caller need
/// not see).
pub async fn handle(node: Arc<Node>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.uri().path() == "/REST/v1/cluster/status" && request.method() == Method::GET {
        return cluster_status(&node);
    }
    let (status, body) = if request.uri().path() != "/REST/v1/healthcheck" {
        (StatusCode::NOT_FOUND, "not found")
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        (StatusCode::METHOD_NOT_ALLOWED, "use GET")
    } else if let Err(why) = crate::crypto::selftest::check() {
        (StatusCode::SERVICE_UNAVAILABLE, why)
    } else if node.is_serving() {
        (StatusCode::OK, "running")
    } else if node.is_ready() {
        (StatusCode::SERVICE_UNAVAILABLE, "synchronizing")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "bootstrapping")
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

fn cluster_status(node: &Node) -> Response<Full<Bytes>> {
    use std::sync::atomic::Ordering;
    if !node.config.health_details {
        let body = serde_json::json!({ "ready": node.is_ready(), "serving": node.is_serving() });
        return json_response(body);
    }
    let snapshot = node.keystore.snapshot();
    let stats = &node.cluster_stats;
    let digest: String = snapshot.digest().iter().map(|b| format!("{b:02x}")).collect();
    let body = serde_json::json!({
        "ready": node.is_ready(),
        "records": snapshot.len(),
        "digest": digest,
        "peers": *stats.peers.lock().unwrap_or_else(|e| e.into_inner()),
        "antiEntropyRounds": stats.rounds.load(Ordering::Relaxed),
        "lastRoundBytes": stats.last_round_bytes.load(Ordering::Relaxed),
        "pushedRecords": stats.pushed.load(Ordering::Relaxed),
        "vmRssKib": resident_kib(),
    });
    json_response(body)
}

fn json_response(body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

/// This process's resident memory (VmRSS), for operators and the benchmarks.
fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
