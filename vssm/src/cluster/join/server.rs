//! The join port's HTTP side: hands out challenges, runs the policy, and
//! returns the RPC key sealed to the requester. Used by cluster nodes and by
//! the stand-alone bootstrapper alike. Every decision is audited.

use super::challenge::{ChallengeStore, CHALLENGE_TTL};
use super::policy::JoinPolicy;
use super::seal::seal_to;
use crate::audit::{AuditLog, Outcome};
use crate::cluster::protocol::*;
use crate::crypto::keys::AsymmetricKey;
use crate::server::api::{error_response, json_response, parse_json, ApiError, ApiResult};
use crate::server::body::{read_body, CLIENT_BODY_BUDGET};
use crate::wire::{Bytes as WireBytes, Int64};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::net::SocketAddr;
use std::time::Instant;

/// Largest join request (document + PKCS#7 + STS request).
const MAX_JOIN_BODY: usize = 64 * 1024;

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
    pub async fn handle(
        &self,
        rpc_key: Option<&AsymmetricKey>,
        audit: &AuditLog,
        peer: SocketAddr,
        request: Request<Incoming>,
    ) -> Response<Full<Bytes>> {
        match self.route(rpc_key, audit, peer, request).await {
            Ok(response) => response,
            Err(error) => error_response(&error),
        }
    }

    async fn route(
        &self,
        rpc_key: Option<&AsymmetricKey>,
        audit: &AuditLog,
        peer: SocketAddr,
        request: Request<Incoming>,
    ) -> ApiResult {
        if request.method() != Method::POST {
            return Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "use POST"));
        }
        let path = request.uri().path().to_string();
        let body = read_body(request, MAX_JOIN_BODY, Some(&CLIENT_BODY_BUDGET)).await?;
        let rpc_key = rpc_key.ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "node is bootstrapping"))?;
        match path.as_str() {
            CHALLENGE_PATH => {
                parse_json::<Empty>(&body)?;
                let challenge = self.challenges.issue(peer.ip(), Instant::now())?;
                json_response(&ChallengeResponse {
                    challenge: WireBytes(challenge.to_vec()),
                    expires_in_seconds: Int64(CHALLENGE_TTL.as_secs() as i64),
                })
            }
            JOIN_PATH => {
                let request: JoinRequest = parse_json(&body)?;
                let checked = match self.challenges.take(&request.challenge.0, peer.ip(), Instant::now()) {
                    Ok(()) => self.policy.check(peer.ip(), &request).await,
                    Err(reason) => Err(reason),
                };
                let doc = checked.map_err(|reason| {
                    audit.record("join", &peer.ip().to_string(), Outcome::Refused, &reason);
                    ApiError::new(StatusCode::FORBIDDEN, format!("join refused: {reason}"))
                })?;
                let aad = ring::digest::digest(&ring::digest::SHA256, &request.document.0);
                let (public, sealed) = seal_to(
                    &request.ephemeral_public_key.0,
                    &request.challenge.0,
                    aad.as_ref(),
                    &rpc_key.to_pkcs8_der(),
                )
                .map_err(ApiError::bad_request)?;
                audit.record(
                    "join",
                    &peer.ip().to_string(),
                    Outcome::Ok,
                    &format!("granted to instance {} (image {})", doc.instance_id, doc.image_id),
                );
                json_response(&JoinResponse {
                    ephemeral_public_key: WireBytes(public),
                    encrypted_rpc_key: WireBytes(sealed),
                })
            }
            _ => Err(ApiError::not_found("unknown join endpoint")),
        }
    }
}
