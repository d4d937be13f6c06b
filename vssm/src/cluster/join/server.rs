//! The join port's HTTP side: hands out challenges, runs the policy, and
//! returns the RPC key sealed to the requester. Used by cluster nodes and by
//! the stand-alone bootstrapper alike. Every decision is audited.

use super::challenge::{ChallengeError, ChallengeStore, CHALLENGE_TTL};
use super::policy::{JoinPolicy, PolicyError};
use super::seal::{binding_aad, seal_to, SealError};
use crate::audit::{AuditLog, Outcome};
use crate::cluster::protocol::*;
use crate::crypto::keys::AsymmetricKey;
use crate::error::{error_response, Classify, ErrorKind};
use crate::server::body::{read_body, BodyError, BodyPolicy};
use crate::server::json::{json_response, parse_json, JsonError};
use crate::wire::{Bytes as WireBytes, Int64};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use std::net::SocketAddr;
use std::time::Instant;

/// Largest join request (document + PKCS#7 + STS request).
pub const MAX_JOIN_BODY: usize = 64 * 1024;

/// Why a join request failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// Every join endpoint is POST.
    #[error("use POST")]
    MethodNotAllowed,
    /// The body could not be read within its limit.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The body is not the expected JSON.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// This node has no RPC key to hand out yet.
    #[error("node is bootstrapping")]
    Bootstrapping,
    /// The crypto self-tests failed: this node hands out nothing.
    #[error("{0}")]
    SelfTestFailed(&'static str),
    /// No challenge could be issued (a fault of this node).
    #[error("cannot issue a challenge: {0}")]
    Challenge(ChallengeError),
    /// The challenge presented is not acceptable.
    #[error("join refused: {0}")]
    ChallengeRefused(ChallengeError),
    /// The requester does not meet the policy.
    #[error("join refused: {0}")]
    PolicyRefused(PolicyError),
    /// The RPC key could not be sealed to the requester's key.
    #[error("cannot seal the RPC key: {0}")]
    Seal(SealError),
    /// No join endpoint at this path.
    #[error("unknown join endpoint")]
    UnknownEndpoint,
}

impl Classify for JoinError {
    fn kind(&self) -> ErrorKind {
        match self {
            JoinError::MethodNotAllowed => ErrorKind::MethodNotAllowed,
            JoinError::Body(e) => e.kind(),
            JoinError::Json(e) => e.kind(),
            JoinError::Bootstrapping | JoinError::SelfTestFailed(_) => ErrorKind::ServiceUnavailable,
            JoinError::Challenge(_) => ErrorKind::Internal,
            JoinError::ChallengeRefused(_) | JoinError::PolicyRefused(_) => ErrorKind::Forbidden,
            // The policy checked the key's length; a key X25519 still refuses
            // is the requester's, anything else is this node's fault.
            JoinError::Seal(SealError::InvalidRequesterKey) => ErrorKind::BadRequest,
            JoinError::Seal(_) => ErrorKind::Internal,
            JoinError::UnknownEndpoint => ErrorKind::NotFound,
        }
    }
}

/// A join server: a policy and its outstanding challenges.
pub struct JoinServer {
    policy: JoinPolicy,
    challenges: ChallengeStore,
}

impl JoinServer {
    /// A server applying `policy`.
    pub fn new(policy: JoinPolicy) -> Self {
        JoinServer { policy, challenges: ChallengeStore::default() }
    }

    /// Serves one request; `rpc_key` is None while this node is bootstrapping.
    /// `body` is the body policy of the requester's connection.
    pub async fn handle(
        &self,
        rpc_key: Option<&AsymmetricKey>,
        audit: &AuditLog,
        peer: SocketAddr,
        body: &BodyPolicy,
        request: Request<Incoming>,
    ) -> Response<Full<Bytes>> {
        match self.route(rpc_key, audit, peer, body, request).await {
            Ok(response) => response,
            Err(error) => error_response(&error),
        }
    }

    async fn route(
        &self,
        rpc_key: Option<&AsymmetricKey>,
        audit: &AuditLog,
        peer: SocketAddr,
        body_policy: &BodyPolicy,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, JoinError> {
        if request.method() != Method::POST {
            return Err(JoinError::MethodNotAllowed);
        }
        // A node (or bootstrapper) whose self-tests failed must not seal the
        // RPC key with crypto it cannot trust.
        crate::crypto::selftest::check().map_err(JoinError::SelfTestFailed)?;
        let path = request.uri().path().to_string();
        let body = read_body(request, MAX_JOIN_BODY, body_policy).await?;
        let rpc_key = rpc_key.ok_or(JoinError::Bootstrapping)?;
        match path.as_str() {
            CHALLENGE_PATH => {
                parse_json::<Empty>(&body)?;
                let challenge = self.challenges.issue(peer.ip(), Instant::now()).map_err(JoinError::Challenge)?;
                Ok(json_response(&ChallengeResponse {
                    challenge: WireBytes(challenge.to_vec()),
                    expires_in_seconds: Int64(CHALLENGE_TTL.as_secs() as i64),
                })?)
            }
            JOIN_PATH => {
                let request: JoinRequest = parse_json(&body)?;
                let checked = match self.challenges.take(&request.challenge.0, peer.ip(), Instant::now()) {
                    Ok(()) => self.policy.check(peer.ip(), &request).await.map_err(JoinError::PolicyRefused),
                    Err(reason) => Err(JoinError::ChallengeRefused(reason)),
                };
                let admitted = checked.inspect_err(|refusal| {
                    let reason = match refusal {
                        JoinError::ChallengeRefused(e) => e.to_string(),
                        JoinError::PolicyRefused(e) => e.to_string(),
                        other => other.to_string(),
                    };
                    audit.record("join", &peer.ip().to_string(), refusal.kind().outcome(), &reason);
                })?;
                let aad = binding_aad(&request.document.0, &admitted.config_digest.0);
                let (public, sealed) =
                    seal_to(&request.ephemeral_public_key.0, &request.challenge.0, &aad, &rpc_key.to_pkcs8_der())
                        .map_err(JoinError::Seal)?;
                audit.record(
                    "join",
                    &peer.ip().to_string(),
                    Outcome::Ok,
                    &format!(
                        "granted to instance {} (image {}, config digest {})",
                        admitted.document.instance_id, admitted.document.image_id, admitted.config_digest
                    ),
                );
                Ok(json_response(&JoinResponse {
                    ephemeral_public_key: WireBytes(public),
                    encrypted_rpc_key: WireBytes(sealed),
                })?)
            }
            _ => Err(JoinError::UnknownEndpoint),
        }
    }
}
