//! JSON in and out for every port: request parsing whose errors name fields
//! but never quote values, and 200 responses with a JSON body.

use crate::error::{Classify, ErrorKind};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;
use serde::{Deserialize, Serialize};

/// A request body that is not the expected JSON, or a response that cannot
/// be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The request is not the expected JSON object; the text names the
    /// field or position, never a value.
    #[error("{0}")]
    Invalid(String),
    /// The response could not be encoded (a fault of this node).
    #[error("cannot encode the response")]
    Encode,
}

impl Classify for JsonError {
    fn kind(&self) -> ErrorKind {
        match self {
            JsonError::Invalid(_) => ErrorKind::BadRequest,
            JsonError::Encode => ErrorKind::Internal,
        }
    }
}

/// Parses a JSON request; the error names an unknown or mistyped field but
/// never quotes values.
pub fn parse_json<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, JsonError> {
    // The plain parse first: tracking the path costs an allocation per
    // field, and only an error needs it. A body that fails is parsed again
    // below, the same way as ever, for the message.
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let text = inner.to_string();
        let message = if text.starts_with("unknown field") || text.starts_with("missing field") {
            // "unknown field `x`, expected one of …" — names only, but a
            // client-chosen name is bounded (the body may be 1 MiB).
            const MAX_CHARS: usize = 300;
            if text.chars().count() > MAX_CHARS {
                format!("{}…", text.chars().take(MAX_CHARS).collect::<String>())
            } else {
                text
            }
        } else {
            match inner.classify() {
                serde_json::error::Category::Data => {
                    format!("invalid value for field `{path}` (wrong type or encoding)")
                }
                _ => format!("malformed JSON (line {}, column {})", inner.line(), inner.column()),
            }
        };
        JsonError::Invalid(message)
    })?;
    deserializer
        .end()
        .map_err(|_| JsonError::Invalid("malformed JSON: trailing characters after the object".into()))?;
    Ok(value)
}

/// A 200 response with a JSON body.
pub fn json_response<T: Serialize>(value: &T) -> Result<Response<Full<Bytes>>, JsonError> {
    let body = serde_json::to_vec(value).map_err(|_| JsonError::Encode)?;
    Ok(json_bytes_response(body))
}

/// A 200 response whose body is `json`, already encoded.
pub fn json_bytes_response(json: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(json)));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
