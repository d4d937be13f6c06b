//! The joining side: this instance's own attestation (identity document and
//! signature from IMDS, role credentials for the STS proof) and the join
//! exchange with peers.

use super::super::aws::{AwsDiscovery, AwsError, StsVerifier};
use super::super::config_digest::{AcceptedConfigs, ConfigDigest};
use super::super::discovery::{Discovery, DiscoveryError};
use super::super::peer_client::{PeerClient, PeerError};
use super::super::protocol::*;
use super::policy::{bound_headers, JoinPolicy};
use super::seal::{binding_aad, ephemeral_key, open_from, SealError};
use crate::audit::Outcome;
use crate::cloud::aws_identity::{verify_identity, IdentityDocument, IdentityError, TrustedSigners};
use crate::cloud::imds::{ImdsClient, ImdsError};
use crate::config::{AttestationMode, ClusterConfig};
use crate::node::{BootstrapError, Node};
use crate::tls::TlsError;
use crate::wire::Bytes as WireBytes;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Why this instance cannot attest itself.
#[derive(Debug, thiserror::Error)]
pub enum AttestationError {
    /// A configured attestation CA certificate is not usable.
    #[error("cluster.attestationCaCertificates[{index}]: {reason}")]
    CaCertificate {
        /// Its index in the config.
        index: usize,
        /// Why it is not usable.
        reason: IdentityError,
    },
    /// IMDS did not give the identity document or its signature.
    #[error("{0}")]
    Imds(ImdsError),
    /// The identity document from IMDS does not verify.
    #[error("{0}")]
    Identity(IdentityError),
}

/// Why a join attempt with one peer failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinAttemptError {
    /// The call to the peer failed or was refused.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// The ephemeral key or the sealed RPC key failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The strong-mode STS request could not be signed.
    #[error(transparent)]
    Sts(#[from] AwsError),
    /// The key received did not bootstrap this node.
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
}

/// Why no peer gave this node the RPC key.
#[derive(Debug, thiserror::Error)]
pub enum JoinPeersError {
    /// Peers could not be discovered.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// Neither bootstrappers nor peers are known yet.
    #[error("no peers to join yet")]
    NoPeers,
    /// The pinned client TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Every candidate failed, each for its reason.
    #[error("{}", Attempts(.0))]
    AllFailed(Vec<(SocketAddr, JoinAttemptError)>),
}

/// Failed attempts as `addr: reason; addr: reason`.
struct Attempts<'a>(&'a [(SocketAddr, JoinAttemptError)]);

impl fmt::Display for Attempts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (addr, error)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{addr}: {error}")?;
        }
        Ok(())
    }
}

/// This instance's attestation: who it is, per IMDS, verified like a peer would.
pub struct Attestation {
    mode: AttestationMode,
    imds: Arc<ImdsClient>,
    signers: TrustedSigners,
    own: IdentityDocument,
    /// The identity document and its rsa2048 signature as IMDS served them
    /// (read once: they do not change while the instance lives).
    document: Vec<u8>,
    signature: Vec<u8>,
    aws: AwsDiscovery,
    sts: Arc<StsVerifier>,
}

impl Attestation {
    /// Reads and verifies this instance's own identity from IMDS; None when
    /// attestation is off or IMDS cannot tell who we are (logged).
    pub async fn discover(node: &Node, settings: &ClusterConfig) -> Option<Attestation> {
        let mode = settings.attestation?;
        let imds = Arc::new(ImdsClient::new(&settings.imds_endpoint).map_err(|e| eprintln!("vssm: IMDS: {e}")).ok()?);
        let signers =
            trusted_signers(&settings.attestation_ca_certificates).map_err(|e| eprintln!("vssm: {e}")).ok()?;
        let (own, document, signature) = match own_identity(&imds, &signers).await {
            Ok(identity) => identity,
            Err(e) => {
                eprintln!("vssm: attestation disabled: cannot read this instance's identity: {e}");
                return None;
            }
        };
        node.audit.record(
            "identity",
            "-",
            Outcome::Ok,
            &format!(
                "instance {} image {} account {} region {}",
                own.instance_id, own.image_id, own.account_id, own.region
            ),
        );
        // Strong mode checks that joiners are sessions of this instance's
        // own role; without it, strong attestation cannot work.
        let instance_role = match mode {
            AttestationMode::Basic => None,
            AttestationMode::Strong => match imds.role_name().await {
                Ok(role) => Some(role),
                Err(e) => {
                    eprintln!("vssm: attestation disabled: cannot read this instance's role: {e}");
                    return None;
                }
            },
        };
        let source = node.config.bind_address;
        let (aws, sts) = match (
            AwsDiscovery::new(&imds, &own, &settings.aws_endpoints, source),
            StsVerifier::new(&imds, &own, &settings.aws_endpoints, source, instance_role),
        ) {
            (Ok(aws), Ok(sts)) => (aws, Arc::new(sts)),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("vssm: attestation disabled: {e}");
                return None;
            }
        };
        Some(Attestation { mode, imds, signers, own, document, signature, aws, sts })
    }

    /// This instance's private address (its identity document's `privateIp`).
    pub fn private_ip(&self) -> IpAddr {
        self.own.private_ip
    }

    /// Discovery through this instance's Auto Scaling group.
    pub fn aws_discovery(&self) -> AwsDiscovery {
        self.aws.clone()
    }

    /// The policy this node applies to others: same account, region and
    /// image (or `extra_images`), current membership per `discovery`, and a
    /// configuration `configs` accepts.
    pub fn policy_for_peers(
        &self,
        discovery: Arc<Discovery>,
        extra_images: &[String],
        configs: AcceptedConfigs,
    ) -> JoinPolicy {
        let mut images = vec![self.own.image_id.clone()];
        images.extend(extra_images.iter().cloned());
        JoinPolicy {
            signers: self.signers.clone(),
            account_id: Some(self.own.account_id.clone()),
            region: Some(self.own.region.clone()),
            images,
            membership: Some(discovery),
            sts: (self.mode == AttestationMode::Strong).then(|| Arc::clone(&self.sts)),
            configs,
        }
    }
}

/// AWS's published signing certificates plus those the config names.
pub fn trusted_signers(extra_der: &[Vec<u8>]) -> Result<TrustedSigners, AttestationError> {
    let mut signers = TrustedSigners::aws_published();
    for (index, cert) in extra_der.iter().enumerate() {
        signers.add(None, cert).map_err(|reason| AttestationError::CaCertificate { index, reason })?;
    }
    Ok(signers)
}

async fn own_identity(
    imds: &ImdsClient,
    signers: &TrustedSigners,
) -> Result<(IdentityDocument, Vec<u8>, Vec<u8>), AttestationError> {
    let document = imds.identity_document().await.map_err(AttestationError::Imds)?;
    let signature = imds.identity_signature_rsa2048().await.map_err(AttestationError::Imds)?;
    let doc = verify_identity(&document, &signature, signers).map_err(AttestationError::Identity)?;
    Ok((doc, document, signature))
}

/// Tries the bootstrappers and each discovered peer until one grants the
/// RPC key; bootstraps the node with it.
pub async fn join_any_peer(
    node: &Node,
    attestation: &Attestation,
    discovery: &Discovery,
    bootstrappers: &[IpAddr],
) -> Result<(), JoinPeersError> {
    let mut candidates: Vec<IpAddr> = bootstrappers.to_vec();
    candidates.extend(discovery.peers().await?.into_iter().map(|p| p.ip));
    if candidates.is_empty() {
        return Err(JoinPeersError::NoPeers);
    }
    let tls = crate::tls::pinned_client_config(node.config.rpc_certificate.clone(), None)?;
    let client = PeerClient::new(tls, node.config.bind_address, Duration::from_secs(15));
    let mut errors = Vec::new();
    for ip in candidates {
        let addr = SocketAddr::new(ip, node.config.ports.join);
        match join_peer(node, attestation, &client, addr, &attestation.document, &attestation.signature).await {
            Ok(()) => {
                node.audit.record("join", &ip.to_string(), Outcome::Ok, "received the RPC key; bootstrapped");
                return Ok(());
            }
            Err(e) => errors.push((addr, e)),
        }
    }
    Err(JoinPeersError::AllFailed(errors))
}

async fn join_peer(
    node: &Node,
    attestation: &Attestation,
    client: &PeerClient,
    addr: SocketAddr,
    document: &[u8],
    signature: &[u8],
) -> Result<(), JoinAttemptError> {
    let challenge: ChallengeResponse = client.post_json(addr, CHALLENGE_PATH, &Empty {}).await?;
    let (private, public) = ephemeral_key()?;
    // This image's own code reports its configuration: the peer grants the
    // key only to the cluster's configuration (or an accepted one).
    let config_digest = ConfigDigest::of(&node.config);
    let sts_request = match attestation.mode {
        AttestationMode::Basic => None,
        AttestationMode::Strong => {
            let bound = bound_headers(&challenge.challenge.0, &public, &config_digest);
            Some(attestation.sts.sign_for_join(&attestation.imds, &bound).await?)
        }
    };
    let request = JoinRequest {
        document: WireBytes(document.to_vec()),
        signature: WireBytes(signature.to_vec()),
        challenge: challenge.challenge.clone(),
        ephemeral_public_key: WireBytes(public.clone()),
        config_digest: Some(WireBytes(config_digest.0.to_vec())),
        sts_request,
    };
    let answer: JoinResponse = client.post_json(addr, JOIN_PATH, &request).await?;
    let rpc_key = open_from(
        private,
        &public,
        &answer.ephemeral_public_key.0,
        &challenge.challenge.0,
        &binding_aad(document, &config_digest.0),
        &answer.encrypted_rpc_key.0,
    )?;
    Ok(node.bootstrap(&rpc_key)?)
}
