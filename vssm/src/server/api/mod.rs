//! The client API on port 8080: routing, JSON in and out, and the mapping
//! of errors to status codes and `{"error": …}` bodies.

mod admin_ops;
mod crypto_ops;

use super::body::{read_body, CLIENT_BODY_BUDGET};
use crate::crypto::CryptoError;
use crate::node::Node;
use crate::wire::ErrorResponse;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
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
}

/// An API error: status code and a message that never holds secrets.
#[derive(Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<CryptoError> for ApiError {
    fn from(e: CryptoError) -> Self {
        match e {
            // A fault of this node: 500, and no detail for the client.
            CryptoError::Internal(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
            // Display of DecryptionFailed is one generic message for every cause.
            _ => ApiError::bad_request(e.to_string()),
        }
    }
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
    let limit = match endpoint.as_str() {
        "admin/bootstrap" => MAX_BOOTSTRAP_BODY_BYTES,
        "admin/restorebackup" => MAX_RESTORE_BODY_BYTES,
        _ => MAX_BODY_BYTES,
    };
    let body = read_body(request, limit, Some(&CLIENT_BODY_BUDGET)).await?;
    if endpoint.is_empty() {
        return Err(ApiError::not_found(format!("unknown endpoint {}", printable(&path))));
    }
    if !is_post {
        return Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "use POST"));
    }
    if let Err(why) = crate::crypto::selftest::check() {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why));
    }
    if endpoint == "admin/bootstrap" {
        return admin_ops::bootstrap(node, client, &body);
    }
    if !node.is_ready() {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "node is bootstrapping"));
    }
    if !node.is_synced() {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "node is synchronizing keys with its peers"));
    }
    if !client.authenticated {
        // A connection opened before bootstrap has no client certificate:
        // answer, then end the connection gracefully so the client
        // reconnects with mutual TLS. notify_one keeps the permit if the
        // connection task is not waiting yet, so the close is never lost.
        client.close.notify_one();
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "node is bootstrapped: reconnect with a client certificate",
        ));
    }
    if let Some(result) = crypto_ops::dispatch(node, &endpoint, &body) {
        return result;
    }
    if let Some(result) = admin_ops::dispatch(node, client, &endpoint, &body).await {
        return result;
    }
    Err(ApiError::not_found(format!("unknown endpoint {}", printable(&path))))
}

/// Parses a JSON request; the error names an unknown or mistyped field but
/// never quotes values.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let text = inner.to_string();
        let message = if text.starts_with("unknown field") || text.starts_with("missing field") {
            // "unknown field `x`, expected one of …" — names only.
            text
        } else {
            match inner.classify() {
                serde_json::error::Category::Data => {
                    format!("invalid value for field `{path}` (wrong type or encoding)")
                }
                _ => format!("malformed JSON (line {}, column {})", inner.line(), inner.column()),
            }
        };
        ApiError::bad_request(message)
    })?;
    deserializer.end().map_err(|_| ApiError::bad_request("malformed JSON: trailing characters after the object"))?;
    Ok(value)
}

/// A 200 response with a JSON body.
pub(crate) fn json_response<T: Serialize>(value: &T) -> ApiResult {
    let body = serde_json::to_vec(value)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the response"))?;
    Ok(with_json(Response::new(Full::new(Bytes::from(body)))))
}

/// The `{"error": …}` response for an error.
pub fn error_response(error: &ApiError) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&ErrorResponse { error: &error.message }).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = with_json(Response::new(Full::new(Bytes::from(body))));
    *response.status_mut() = error.status;
    response
}

fn with_json(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response.headers_mut().insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

/// A path as it may appear in an error message: bounded and printable.
pub(crate) fn printable(text: &str) -> String {
    text.chars().take(100).filter(|c| !c.is_control()).collect()
}
