//! Attested join (port 8083). A node without the RPC key proves to a peer
//! that it is a current member of the cluster running a trusted image, and
//! receives the RPC key encrypted to a fresh X25519 key of its own.
//!
//! The peer checks, in order: a fresh single-use challenge issued to the
//! same source address; the identity document's PKCS#7 signature against
//! the pinned per-region certificate; account, region and image equal to
//! its own (or an allow-listed image); the TCP source address equal to the
//! document's privateIp; current Pending/InService membership; in strong
//! mode an STS GetCallerIdentity request signed by the instance role whose
//! signed headers bind the challenge and the ephemeral key. Every decision
//! is audited with its reason.

use super::aws::{AwsDiscovery, StsVerifier};
use super::discovery::Discovery;
use super::peer_client::{PeerClient, PeerError};
use super::protocol::*;
use crate::audit::Outcome;
use crate::cloud::aws_identity::{verify_identity, IdentityDocument, TrustedSigners};
use crate::cloud::imds::ImdsClient;
use crate::config::{AttestationMode, ClusterConfig};
use crate::node::Node;
use crate::server::api::{error_response, json_response, parse_json, read_body, ApiError, ApiResult};
use crate::wire::{Bytes as WireBytes, Int64};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How long a challenge stays valid.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(60);
/// Outstanding challenges kept at most (oldest dropped first).
const MAX_CHALLENGES: usize = 1024;
/// Largest join request (document + PKCS#7 + STS request).
const MAX_JOIN_BODY: usize = 64 * 1024;
const KDF_INFO: &[u8] = b"vssm join v1";

/// Challenges handed out and not yet used.
#[derive(Default)]
pub struct ChallengeStore {
    issued: Mutex<HashMap<[u8; 32], (Instant, IpAddr)>>,
}

impl ChallengeStore {
    /// A new random challenge for a requester at `ip`.
    pub fn issue(&self, ip: IpAddr, now: Instant) -> Result<[u8; 32], ApiError> {
        let mut challenge = [0u8; 32];
        SystemRandom::new()
            .fill(&mut challenge)
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "no randomness"))?;
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        issued.retain(|_, (at, _)| now.duration_since(*at) < CHALLENGE_TTL);
        if issued.len() >= MAX_CHALLENGES {
            if let Some(oldest) = issued.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k) {
                issued.remove(&oldest);
            }
        }
        issued.insert(challenge, (now, ip));
        Ok(challenge)
    }

    /// Consumes a challenge: it must exist, be fresh and have been issued to `ip`.
    pub fn take(&self, challenge: &[u8], ip: IpAddr, now: Instant) -> Result<(), String> {
        let key: [u8; 32] = challenge.try_into().map_err(|_| "challenge has the wrong length".to_string())?;
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        match issued.remove(&key) {
            None => Err("unknown or already used challenge".into()),
            Some((at, _)) if now.duration_since(at) >= CHALLENGE_TTL => Err("expired challenge".into()),
            Some((_, issued_to)) if issued_to != ip => Err(format!("challenge was issued to {issued_to}, not {ip}")),
            Some(_) => Ok(()),
        }
    }
}

/// What this node knows to attest others and itself.
pub struct Attestation {
    mode: AttestationMode,
    imds: Arc<ImdsClient>,
    signers: TrustedSigners,
    own: IdentityDocument,
    trusted_images: Vec<String>,
    aws: AwsDiscovery,
    sts: StsVerifier,
    challenges: ChallengeStore,
}

impl Attestation {
    /// Reads and verifies this instance's own identity from IMDS; None when
    /// attestation is off or IMDS cannot tell who we are (logged).
    pub async fn discover(node: &Node, settings: &ClusterConfig) -> Option<Attestation> {
        let mode = settings.attestation?;
        let imds = Arc::new(ImdsClient::new(&settings.imds_endpoint).map_err(|e| eprintln!("vssm: IMDS: {e}")).ok()?);
        let mut signers = TrustedSigners::aws_published();
        for cert in &settings.attestation_ca_certificates {
            if let Err(e) = signers.add(None, cert) {
                eprintln!("vssm: cluster.attestationCaCertificates: {e}");
                return None;
            }
        }
        let own = match own_identity(&imds, &signers).await {
            Ok((doc, _, _)) => doc,
            Err(e) => {
                eprintln!("vssm: attestation disabled: cannot read this instance's identity: {e}");
                return None;
            }
        };
        node.audit.record(
            "identity",
            "-",
            Outcome::Ok,
            &format!("instance {} image {} account {} region {}", own.instance_id, own.image_id, own.account_id, own.region),
        );
        let source = node.config.bind_address;
        let (aws, sts) = match (
            AwsDiscovery::new(&imds, &own, &settings.aws_endpoints, source),
            StsVerifier::new(&imds, &own, &settings.aws_endpoints, source),
        ) {
            (Ok(aws), Ok(sts)) => (aws, sts),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("vssm: attestation disabled: {e}");
                return None;
            }
        };
        Some(Attestation {
            mode,
            imds,
            signers,
            own,
            trusted_images: settings.trusted_image_ids.clone(),
            aws,
            sts,
            challenges: ChallengeStore::default(),
        })
    }

    /// Discovery through this instance's Auto Scaling group.
    pub fn aws_discovery(&self) -> Option<AwsDiscovery> {
        Some(self.aws.clone())
    }

    /// Runs every check on a join request from `source`; Ok(document) or the reason.
    async fn check(&self, discovery: &Discovery, source: IpAddr, request: &JoinRequest) -> Result<IdentityDocument, String> {
        self.challenges.take(&request.challenge.0, source, Instant::now())?;
        let doc = verify_identity(&request.document.0, &request.signature.0, &self.signers).map_err(|e| format!("identity document: {e}"))?;
        if doc.account_id != self.own.account_id {
            return Err(format!("account {} is not this cluster's account", doc.account_id));
        }
        if doc.region != self.own.region {
            return Err(format!("region {} is not this cluster's region", doc.region));
        }
        if doc.image_id != self.own.image_id && !self.trusted_images.contains(&doc.image_id) {
            return Err(format!("image {} is not trusted", doc.image_id));
        }
        if doc.private_ip != source {
            return Err(format!("source address {source} is not the document's privateIp {}", doc.private_ip));
        }
        if request.ephemeral_public_key.0.len() != 32 {
            return Err("ephemeralPublicKey must be an X25519 public key (32 bytes)".into());
        }
        match discovery.is_member(&doc.instance_id, doc.private_ip).await {
            Ok(true) => {}
            Ok(false) => return Err(format!("instance {} is not a Pending/InService member of the group", doc.instance_id)),
            Err(e) => return Err(format!("membership check failed: {e}")),
        }
        if self.mode == AttestationMode::Strong {
            let sts = request.sts_request.as_ref().ok_or("strong attestation needs stsRequest")?;
            let expected = [
                (STS_CHALLENGE_HEADER, crate::wire::codec::encode_base64(&request.challenge.0)),
                (STS_EPHEMERAL_KEY_HEADER, hex_sha256(&request.ephemeral_public_key.0)),
            ];
            self.sts.verify_instance(sts, &expected, &doc).await?;
        }
        Ok(doc)
    }
}

async fn own_identity(imds: &ImdsClient, signers: &TrustedSigners) -> Result<(IdentityDocument, Vec<u8>, Vec<u8>), String> {
    let document = imds.identity_document().await.map_err(|e| e.to_string())?;
    let signature = imds.identity_signature_rsa2048().await.map_err(|e| e.to_string())?;
    let doc = verify_identity(&document, &signature, signers).map_err(|e| e.to_string())?;
    Ok((doc, document, signature))
}

fn hex_sha256(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The AES-256-GCM key both sides derive from the X25519 secret, bound to
/// the challenge and both public keys.
fn derive_key(shared: &[u8], challenge: &[u8], requester_public: &[u8], server_public: &[u8]) -> Result<LessSafeKey, String> {
    let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, challenge);
    let info = [KDF_INFO, requester_public, server_public];
    let prk = salt.extract(shared);
    let okm = prk.expand(&info, &aead::AES_256_GCM).map_err(|_| "key derivation failed".to_string())?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

/// Encrypts `secret` to `requester_public`: returns (server public key, nonce||ct||tag).
pub fn seal_to(requester_public: &[u8], challenge: &[u8], aad: &[u8], secret: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let rng = SystemRandom::new();
    let private = EphemeralPrivateKey::generate(&X25519, &rng).map_err(|_| "no randomness".to_string())?;
    let public = private.compute_public_key().map_err(|_| "X25519 failed".to_string())?.as_ref().to_vec();
    let peer = UnparsedPublicKey::new(&X25519, requester_public);
    let key = agreement::agree_ephemeral(private, &peer, |shared| derive_key(shared, challenge, requester_public, &public))
        .map_err(|_| "invalid ephemeral public key".to_string())??;
    let mut nonce = [0u8; 12];
    rng.fill(&mut nonce).map_err(|_| "no randomness".to_string())?;
    let mut sealed = secret.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut sealed)
        .map_err(|_| "encryption failed".to_string())?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok((public, out))
}

/// Decrypts what [`seal_to`] made, with the requester's private key.
pub fn open_from(
    private: EphemeralPrivateKey,
    requester_public: &[u8],
    server_public: &[u8],
    challenge: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, String> {
    if sealed.len() < 12 + 16 {
        return Err("encrypted RPC key is too short".into());
    }
    let peer = UnparsedPublicKey::new(&X25519, server_public);
    let key = agreement::agree_ephemeral(private, &peer, |shared| derive_key(shared, challenge, requester_public, server_public))
        .map_err(|_| "invalid peer ephemeral key".to_string())??;
    let nonce = Nonce::try_assume_unique_for_key(&sealed[..12]).map_err(|_| "bad nonce".to_string())?;
    let mut buffer = Zeroizing::new(sealed[12..].to_vec());
    let plain_len = key
        .open_in_place(nonce, Aad::from(aad), &mut buffer)
        .map_err(|_| "encrypted RPC key does not decrypt".to_string())?
        .len();
    buffer.truncate(plain_len);
    Ok(buffer)
}

/// Serves one request on the join port.
pub async fn handle(
    node: Arc<Node>,
    attestation: Arc<Attestation>,
    discovery: Arc<Discovery>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    match route(&node, &attestation, &discovery, peer, request).await {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

async fn route(node: &Node, attestation: &Attestation, discovery: &Discovery, peer: SocketAddr, request: Request<Incoming>) -> ApiResult {
    let path = request.uri().path().to_string();
    let body = read_body(request, MAX_JOIN_BODY).await?;
    let rpc_key = node.rpc_key().ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "node is bootstrapping"))?;
    match path.as_str() {
        CHALLENGE_PATH => {
            parse_json::<Empty>(&body)?;
            let challenge = attestation.challenges.issue(peer.ip(), Instant::now())?;
            json_response(&ChallengeResponse {
                challenge: WireBytes(challenge.to_vec()),
                expires_in_seconds: Int64(CHALLENGE_TTL.as_secs() as i64),
            })
        }
        JOIN_PATH => {
            let request: JoinRequest = parse_json(&body)?;
            let doc = match attestation.check(discovery, peer.ip(), &request).await {
                Ok(doc) => doc,
                Err(reason) => {
                    node.audit.record("join", &peer.ip().to_string(), Outcome::Refused, &reason);
                    return Err(ApiError::new(StatusCode::FORBIDDEN, format!("join refused: {reason}")));
                }
            };
            let aad = ring::digest::digest(&ring::digest::SHA256, &request.document.0);
            let (public, sealed) = seal_to(&request.ephemeral_public_key.0, &request.challenge.0, aad.as_ref(), &rpc_key.to_pkcs8_der())
                .map_err(ApiError::bad_request)?;
            node.audit.record(
                "join",
                &peer.ip().to_string(),
                Outcome::Ok,
                &format!("granted to instance {} (image {})", doc.instance_id, doc.image_id),
            );
            json_response(&JoinResponse { ephemeral_public_key: WireBytes(public), encrypted_rpc_key: WireBytes(sealed) })
        }
        _ => Err(ApiError::not_found("unknown join endpoint")),
    }
}

/// Tries each discovered peer until one grants the RPC key; bootstraps with it.
pub async fn join_any_peer(node: &Node, attestation: &Attestation, discovery: &Discovery) -> Result<(), String> {
    let own_ip = node.config.bind_address;
    let peers = discovery.peers(own_ip).await?;
    if peers.is_empty() {
        return Err("no peers to join yet".into());
    }
    let (_, document, signature) = own_identity(&attestation.imds, &attestation.signers).await?;
    let tls = crate::tls::pinned_client_config(node.config.rpc_certificate.clone(), None).map_err(|e| e.to_string())?;
    let client = PeerClient::new(tls, own_ip, Duration::from_secs(15));
    let mut last_error = String::new();
    for peer in peers {
        let addr = SocketAddr::new(peer.ip, node.config.ports.join);
        match join_peer(node, attestation, &client, addr, &document, &signature).await {
            Ok(()) => {
                node.audit.record("join", &peer.ip.to_string(), Outcome::Ok, "received the RPC key; bootstrapped");
                return Ok(());
            }
            Err(e) => last_error = format!("{addr}: {e}"),
        }
    }
    Err(last_error)
}

async fn join_peer(
    node: &Node,
    attestation: &Attestation,
    client: &PeerClient,
    addr: SocketAddr,
    document: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let challenge: ChallengeResponse = client.post_json(addr, CHALLENGE_PATH, &Empty {}).await.map_err(|e: PeerError| e.0)?;
    let rng = SystemRandom::new();
    let private = EphemeralPrivateKey::generate(&X25519, &rng).map_err(|_| "no randomness".to_string())?;
    let public = private.compute_public_key().map_err(|_| "X25519 failed".to_string())?.as_ref().to_vec();
    let sts_request = match attestation.mode {
        AttestationMode::Basic => None,
        AttestationMode::Strong => {
            let bound = [
                (STS_CHALLENGE_HEADER, crate::wire::codec::encode_base64(&challenge.challenge.0)),
                (STS_EPHEMERAL_KEY_HEADER, hex_sha256(&public)),
            ];
            Some(attestation.sts.sign_for_join(&attestation.imds, &bound).await?)
        }
    };
    let request = JoinRequest {
        document: WireBytes(document.to_vec()),
        signature: WireBytes(signature.to_vec()),
        challenge: challenge.challenge.clone(),
        ephemeral_public_key: WireBytes(public.clone()),
        sts_request,
    };
    let answer: JoinResponse = client.post_json(addr, JOIN_PATH, &request).await.map_err(|e| e.0)?;
    let aad = ring::digest::digest(&ring::digest::SHA256, document);
    let rpc_key = open_from(private, &public, &answer.ephemeral_public_key.0, &challenge.challenge.0, aad.as_ref(), &answer.encrypted_rpc_key.0)?;
    node.bootstrap(&rpc_key).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_single_use_fresh_and_bound_to_the_address() {
        let store = ChallengeStore::default();
        let now = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c = store.issue(a, now).unwrap();
        assert!(store.take(&c, b, now).is_err(), "other address");
        let c = store.issue(a, now).unwrap();
        assert!(store.take(&c, a, now + CHALLENGE_TTL).is_err(), "expired");
        let c = store.issue(a, now).unwrap();
        assert!(store.take(&c, a, now).is_ok());
        assert!(store.take(&c, a, now).is_err(), "replayed");
        assert!(store.take(&[0u8; 5], a, now).is_err());
    }

    #[test]
    fn sealed_key_opens_only_with_the_requesters_private_key_and_same_binding() {
        let rng = SystemRandom::new();
        let private = EphemeralPrivateKey::generate(&X25519, &rng).unwrap();
        let public = private.compute_public_key().unwrap().as_ref().to_vec();
        let (server_public, sealed) = seal_to(&public, b"challenge", b"doc", b"rpc key").unwrap();
        let opened = open_from(private, &public, &server_public, b"challenge", b"doc", &sealed).unwrap();
        assert_eq!(opened.as_slice(), b"rpc key");

        // Another private key (an eavesdropper replaying the request) cannot open it.
        let other = EphemeralPrivateKey::generate(&X25519, &rng).unwrap();
        assert!(open_from(other, &public, &server_public, b"challenge", b"doc", &sealed).is_err());
        // A different challenge or document binding does not open it either.
        let private = EphemeralPrivateKey::generate(&X25519, &rng).unwrap();
        let public = private.compute_public_key().unwrap().as_ref().to_vec();
        let (server_public, sealed) = seal_to(&public, b"challenge", b"doc", b"rpc key").unwrap();
        assert!(open_from(private, &public, &server_public, b"other", b"doc", &sealed).is_err());
    }
}
