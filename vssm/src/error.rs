//! The one error vocabulary of the HTTP ports (API 8080, sync 8082, join
//! 8083): each domain error says which [`ErrorKind`] it is, and
//! [`ErrorKind`] alone decides the status code, what the client is told
//! and the audit outcome. Internal faults answer 500 with a generic
//! message; their detail goes to the node's log only.

use crate::audit::Outcome;
use crate::wire::ErrorResponse;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use std::fmt::Display;

/// The message every internal fault shows the client.
pub const INTERNAL_MESSAGE: &str = "internal error";

/// What kind of failure an error is, from the client's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or invalid (400).
    BadRequest,
    /// Wrong admin password (401).
    Unauthorized,
    /// The caller is not allowed this (403), e.g. a refused join.
    Forbidden,
    /// No such endpoint or key (404).
    NotFound,
    /// The endpoint exists for another HTTP method (405).
    MethodNotAllowed,
    /// The request body stalled (408).
    RequestTimeout,
    /// The request conflicts with the node's state (409).
    Conflict,
    /// The key or key version was destroyed (410).
    Gone,
    /// The request body is over its limit (413).
    PayloadTooLarge,
    /// The caller is throttled (429).
    TooManyRequests,
    /// The node cannot serve this now: bootstrapping, syncing, busy (503).
    ServiceUnavailable,
    /// A fault of this node, not of the request (500).
    Internal,
}

impl ErrorKind {
    /// Every kind, for tables and tests.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::BadRequest,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::MethodNotAllowed,
        ErrorKind::RequestTimeout,
        ErrorKind::Conflict,
        ErrorKind::Gone,
        ErrorKind::PayloadTooLarge,
        ErrorKind::TooManyRequests,
        ErrorKind::ServiceUnavailable,
        ErrorKind::Internal,
    ];

    /// The HTTP status of this kind.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Gone => StatusCode::GONE,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The audit outcome of a request that failed this way: an access
    /// decision against the caller is a refusal (rate-limited in the log),
    /// anything else a failure.
    pub fn outcome(self) -> Outcome {
        match self {
            ErrorKind::Unauthorized | ErrorKind::Forbidden | ErrorKind::TooManyRequests => Outcome::Refused,
            _ => Outcome::Failed,
        }
    }
}

/// An error that can be answered over HTTP. Its `Display` is the client
/// message for client faults and the log detail for internal ones, so it
/// must never hold key material, passwords or plaintext, and must bound and
/// escape strings a client chose (see `crypto::quote`).
pub trait Classify: Display {
    /// Which kind of failure this is.
    fn kind(&self) -> ErrorKind;
}

/// How a failed request is answered and audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `{"error": …}` text: the error's message, or [`INTERNAL_MESSAGE`].
    pub message: String,
    /// The audit outcome.
    pub outcome: Outcome,
    /// The full message for the log and audit line (same as `message` for client faults).
    pub detail: String,
}

/// The one mapping from an error to its status, client message and audit outcome.
pub fn reply<E: Classify + ?Sized>(error: &E) -> Reply {
    let kind = error.kind();
    let detail = error.to_string();
    let message = if kind == ErrorKind::Internal { INTERNAL_MESSAGE.to_string() } else { detail.clone() };
    Reply { status: kind.status(), message, outcome: kind.outcome(), detail }
}

/// [`reply`], with an internal fault logged here with its detail, which
/// the client does not see (for errors answered to a client).
pub fn logged_reply<E: Classify + ?Sized>(error: &E) -> Reply {
    let reply = reply(error);
    if error.kind() == ErrorKind::Internal {
        eprintln!("vssm: internal error: {}", reply.detail.escape_debug());
    }
    reply
}

/// The `{"error": …}` response for `error`; an internal fault is logged
/// here with its detail, which the client does not see.
pub fn error_response<E: Classify + ?Sized>(error: &E) -> Response<Full<Bytes>> {
    let reply = logged_reply(error);
    let body = serde_json::to_vec(&ErrorResponse { error: &reply.message }).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    *response.status_mut() = reply.status;
    response
}

#[cfg(test)]
mod tests;
