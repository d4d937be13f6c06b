//! What a join server requires of a requester before it hands out the RPC
//! key. A cluster node requires its own account, region and image (or an
//! allow-listed one), current group membership and its own configuration
//! (or an accepted one); the stand-alone bootstrapper requires the images
//! it was told to trust and the configuration of the cluster it serves.

use super::super::aws::{AwsError, StsVerifier};
use super::super::config_digest::{AcceptedConfigs, ConfigDigest};
use super::super::discovery::{Discovery, DiscoveryError};
use super::super::protocol::{JoinRequest, STS_CHALLENGE_HEADER, STS_CONFIG_DIGEST_HEADER, STS_EPHEMERAL_KEY_HEADER};
use crate::cloud::aws_identity::{verify_identity, IdentityDocument, IdentityError, TrustedSigners};
use std::net::IpAddr;
use std::sync::Arc;

/// Why a join request was refused. The values named come from the
/// signature-verified identity document or from this node's own checks.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The identity document or its signature is not valid.
    #[error("identity document: {0}")]
    Identity(IdentityError),
    /// Another account than the cluster's.
    #[error("account {0} is not this cluster's account")]
    Account(String),
    /// Another region than the cluster's.
    #[error("region {0} is not this cluster's region")]
    Region(String),
    /// An image that is not trusted.
    #[error("image {0} is not trusted")]
    Image(String),
    /// The TCP source is not the document's private address.
    #[error("source address {source_ip} is not the document's privateIp {private_ip}")]
    SourceAddress {
        /// Where the request came from.
        source_ip: IpAddr,
        /// The document's privateIp.
        private_ip: IpAddr,
    },
    /// The ephemeral public key is not 32 bytes.
    #[error("ephemeralPublicKey must be an X25519 public key (32 bytes)")]
    EphemeralKey,
    /// The request attests no configuration (or not a 32-byte digest).
    #[error("configDigest must be the joiner's 32-byte config digest")]
    NoConfigDigest,
    /// The joiner's configuration is not this cluster's (nor an accepted one).
    #[error("instance {instance_id} runs another configuration (digest {digest}) than this cluster's; see acceptedConfigDigests")]
    ConfigMismatch {
        /// The instance of the identity document.
        instance_id: String,
        /// The digest it attested.
        digest: ConfigDigest,
    },
    /// The instance is not a current member of the group.
    #[error("instance {0} is not a Pending/InService member of the group")]
    NotMember(String),
    /// Membership could not be checked.
    #[error("membership check failed: {0}")]
    Membership(DiscoveryError),
    /// Strong mode without an STS request.
    #[error("strong attestation needs stsRequest")]
    NoStsRequest,
    /// The STS proof does not hold.
    #[error(transparent)]
    Sts(#[from] AwsError),
}

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
    /// The joiner's config digest must be one of these.
    pub configs: AcceptedConfigs,
}

impl JoinPolicy {
    /// Every check on a join request from `source` (after the challenge);
    /// Ok(who was admitted) or the reason for the refusal.
    pub async fn check(&self, source: IpAddr, request: &JoinRequest) -> Result<Admitted, PolicyError> {
        let doc =
            verify_identity(&request.document.0, &request.signature.0, &self.signers).map_err(PolicyError::Identity)?;
        if self.account_id.as_ref().is_some_and(|a| *a != doc.account_id) {
            return Err(PolicyError::Account(doc.account_id));
        }
        if self.region.as_ref().is_some_and(|r| *r != doc.region) {
            return Err(PolicyError::Region(doc.region));
        }
        if !self.images.contains(&doc.image_id) {
            return Err(PolicyError::Image(doc.image_id));
        }
        if doc.private_ip != source {
            return Err(PolicyError::SourceAddress { source_ip: source, private_ip: doc.private_ip });
        }
        if request.ephemeral_public_key.0.len() != 32 {
            return Err(PolicyError::EphemeralKey);
        }
        let digest = request
            .config_digest
            .as_ref()
            .and_then(|d| ConfigDigest::from_slice(&d.0))
            .ok_or(PolicyError::NoConfigDigest)?;
        if !self.configs.accepts(&digest) {
            return Err(PolicyError::ConfigMismatch { instance_id: doc.instance_id, digest });
        }
        if let Some(discovery) = &self.membership {
            match discovery.is_member(&doc.instance_id, doc.private_ip).await {
                Ok(true) => {}
                Ok(false) => return Err(PolicyError::NotMember(doc.instance_id)),
                Err(e) => return Err(PolicyError::Membership(e)),
            }
        }
        if let Some(sts) = &self.sts {
            let signed = request.sts_request.as_ref().ok_or(PolicyError::NoStsRequest)?;
            let bound = bound_headers(&request.challenge.0, &request.ephemeral_public_key.0, &digest);
            sts.verify_instance(signed, &bound, &doc).await?;
        }
        Ok(Admitted { document: doc, config_digest: digest })
    }
}

/// A joiner that passed every check.
pub struct Admitted {
    /// Its signature-verified identity document.
    pub document: IdentityDocument,
    /// The configuration it attested (one this server accepts).
    pub config_digest: ConfigDigest,
}

/// The headers a strong-mode STS request must sign: they tie the caller's
/// role session to this challenge, this ephemeral key and this configuration.
pub fn bound_headers(
    challenge: &[u8],
    ephemeral_public_key: &[u8],
    config_digest: &ConfigDigest,
) -> [(&'static str, String); 3] {
    [
        (STS_CHALLENGE_HEADER, crate::wire::codec::encode_base64(challenge)),
        (STS_EPHEMERAL_KEY_HEADER, crate::cloud::sigv4::hex_sha256(ephemeral_public_key)),
        (STS_CONFIG_DIGEST_HEADER, config_digest.to_string()),
    ]
}
