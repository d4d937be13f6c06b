//! What a join server requires of a requester before it hands out the RPC
//! key. A cluster node requires its own account, region and image (or an
//! allow-listed one) and current group membership; the stand-alone
//! bootstrapper requires the images it was told to trust.

use super::super::aws::StsVerifier;
use super::super::discovery::Discovery;
use super::super::protocol::{JoinRequest, STS_CHALLENGE_HEADER, STS_EPHEMERAL_KEY_HEADER};
use crate::cloud::aws_identity::{verify_identity, IdentityDocument, TrustedSigners};
use std::net::IpAddr;
use std::sync::Arc;

/// The checks a join server applies (challenge freshness is checked by the server).
pub struct JoinPolicy {
    /// Certificates the identity document's signature must verify with.
    pub signers: TrustedSigners,
    /// Required account; None accepts any (bootstrapper without --account).
    pub account_id: Option<String>,
    /// Required region; None accepts any.
    pub region: Option<String>,
    /// Images allowed to join (never empty).
    pub images: Vec<String>,
    /// Current membership must be confirmed here; None skips the check.
    pub membership: Option<Arc<Discovery>>,
    /// Strong mode: the STS proof is required and checked here.
    pub sts: Option<Arc<StsVerifier>>,
}

impl JoinPolicy {
    /// Every check on a join request from `source` (after the challenge);
    /// Ok(the verified document) or the reason for the refusal.
    pub async fn check(&self, source: IpAddr, request: &JoinRequest) -> Result<IdentityDocument, String> {
        let doc = verify_identity(&request.document.0, &request.signature.0, &self.signers)
            .map_err(|e| format!("identity document: {e}"))?;
        if self.account_id.as_ref().is_some_and(|a| *a != doc.account_id) {
            return Err(format!("account {} is not this cluster's account", doc.account_id));
        }
        if self.region.as_ref().is_some_and(|r| *r != doc.region) {
            return Err(format!("region {} is not this cluster's region", doc.region));
        }
        if !self.images.contains(&doc.image_id) {
            return Err(format!("image {} is not trusted", doc.image_id));
        }
        if doc.private_ip != source {
            return Err(format!("source address {source} is not the document's privateIp {}", doc.private_ip));
        }
        if request.ephemeral_public_key.0.len() != 32 {
            return Err("ephemeralPublicKey must be an X25519 public key (32 bytes)".into());
        }
        if let Some(discovery) = &self.membership {
            match discovery.is_member(&doc.instance_id, doc.private_ip).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(format!("instance {} is not a Pending/InService member of the group", doc.instance_id))
                }
                Err(e) => return Err(format!("membership check failed: {e}")),
            }
        }
        if let Some(sts) = &self.sts {
            let signed = request.sts_request.as_ref().ok_or("strong attestation needs stsRequest")?;
            sts.verify_instance(signed, &bound_headers(&request.challenge.0, &request.ephemeral_public_key.0), &doc)
                .await?;
        }
        Ok(doc)
    }
}

/// The headers a strong-mode STS request must sign: they tie the caller's
/// role session to this challenge and this ephemeral key.
pub fn bound_headers(challenge: &[u8], ephemeral_public_key: &[u8]) -> [(&'static str, String); 2] {
    [
        (STS_CHALLENGE_HEADER, crate::wire::codec::encode_base64(challenge)),
        (STS_EPHEMERAL_KEY_HEADER, crate::cloud::sigv4::hex_sha256(ephemeral_public_key)),
    ]
}
