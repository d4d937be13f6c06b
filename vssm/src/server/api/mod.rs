//! The client API on port 8080: routing to the crypto and admin endpoints.
//! Errors are [`ApiError`]s, answered through [`crate::error`].

mod access;
mod admin_ops;
mod batch;
mod crypto_ops;
mod discovery_ops;
mod error;
mod grant_ops;
mod key_use;
pub mod lifecycle_clock;
mod lifecycle_ops;

pub use batch::{BatchError, MAX_BATCH_ITEMS};
pub use error::ApiError;
pub use key_use::KeyUseError;
pub use lifecycle_ops::LifecycleChangeError;

use super::body::read_body;
use crate::error::error_response;
use crate::node::Node;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use std::sync::Arc;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Largest restorebackup body: a node must restore the backups it makes
/// (an RSA-2048 key takes about 2.3 KB in a backup).
pub const MAX_RESTORE_BODY_BYTES: usize = 64 << 20;
/// Largest bootstrap body (anyone may send one before bootstrap).
pub const MAX_BOOTSTRAP_BODY_BYTES: usize = 16 << 10;

/// What the TLS layer learnt about the client of one connection.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    /// Subject of the verified client certificate, or "-" before bootstrap.
    pub subject: Arc<str>,
    /// True when the connection was made with mutual TLS (after bootstrap).
    pub authenticated: bool,
    /// The TCP peer, for the audit log.
    pub peer: std::net::SocketAddr,
    /// Notified to end this connection gracefully after the current response.
    pub close: Arc<tokio::sync::Notify>,
    /// How this connection's request bodies are paid for.
    pub body: super::body::BodyPolicy,
    /// The certificate's identity and its grants (None before bootstrap).
    pub authz: Option<Arc<crate::authz::ConnectionAuthz>>,
}

/// The node and the client of one request (and, in a batch, the keys its
/// items have looked up already).
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    node: &'a Node,
    client: &'a ClientInfo,
    lookups: Option<&'a key_use::Lookups>,
}

/// The response type of every handler.
pub type ApiResult = Result<Response<Full<Bytes>>, ApiError>;

/// Serves one request on the API port.
pub async fn handle(node: Arc<Node>, client: ClientInfo, request: Request<Incoming>) -> Response<Full<Bytes>> {
    match route(&node, &client, request).await {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

async fn route(node: &Node, client: &ClientInfo, request: Request<Incoming>) -> ApiResult {
    let path = request.uri().path().to_string();
    let endpoint = path.strip_prefix("/REST/v1/").unwrap_or("").to_string();
    let is_post = request.method() == Method::POST;
    // The body is read before any answer, errors included: a response to
    // an unread body makes hyper close the connection, which a client's
    // keep-alive pool would then find dead.
    // A connection without a client certificate can only bootstrap.
    let limit = match endpoint.as_str() {
        _ if !client.authenticated => MAX_BOOTSTRAP_BODY_BYTES,
        "admin/bootstrap" => MAX_BOOTSTRAP_BODY_BYTES,
        "admin/restorebackup" => MAX_RESTORE_BODY_BYTES,
        _ => MAX_BODY_BYTES,
    };
    let body = read_body(request, limit, &client.body).await?;
    if endpoint.is_empty() {
        return Err(ApiError::UnknownEndpoint(printable(&path)));
    }
    if !is_post {
        return Err(ApiError::MethodNotAllowed);
    }
    if let Err(why) = crate::crypto::selftest::check() {
        return Err(ApiError::SelfTestFailed(why));
    }
    if endpoint == "admin/bootstrap" {
        return admin_ops::bootstrap(node, client, &body);
    }
    if !node.is_ready() {
        return Err(ApiError::Bootstrapping);
    }
    if !node.is_synced() {
        return Err(ApiError::Synchronizing);
    }
    if !client.authenticated {
        // A connection opened before bootstrap has no client certificate:
        // answer, then end the connection gracefully so the client
        // reconnects with mutual TLS. notify_one keeps the permit if the
        // connection task is not waiting yet, so the close is never lost.
        client.close.notify_one();
        return Err(ApiError::Reconnect);
    }
    access::ensure_current(node).await?;
    if let Some(result) = crypto_ops::dispatch(node, client, &endpoint, &body).await {
        return result;
    }
    if endpoint == "keys/describe" {
        return discovery_ops::describe(node, client, &body).await;
    }
    if let Some(result) = discovery_ops::dispatch(node, client, &endpoint, &body) {
        return result;
    }
    if let Some(result) = admin_ops::dispatch(node, client, &endpoint, &body).await {
        return result;
    }
    Err(ApiError::UnknownEndpoint(printable(&path)))
}

/// A 200 response with a JSON body.
fn json_response<T: serde::Serialize>(value: &T) -> ApiResult {
    Ok(super::json::json_response(value)?)
}

/// Parses a JSON request body.
fn parse_json<'de, T: serde::Deserialize<'de>>(body: &'de [u8]) -> Result<T, ApiError> {
    Ok(super::json::parse_json(body)?)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A path as it may appear in an error message: bounded and printable.
pub(crate) fn printable(text: &str) -> String {
    text.chars().take(100).filter(|c| !c.is_control()).collect()
}
