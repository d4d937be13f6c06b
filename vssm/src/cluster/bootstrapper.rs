//! `vssm bootstrapper`: a stand-alone join server for the first bring-up of
//! a cluster. It holds the RPC key (from a file) and hands it to attested
//! instances of the trusted images that run the cluster's configuration
//! (the config digest of the cluster's `config.json`, or one it accepts),
//! so that no operator has to upload the key to a node by hand. Nodes find
//! it through `cluster.bootstrappers`.
//!
//! It does not check group membership: it runs outside AWS, without the
//! instance identity, role credentials and Auto Scaling group that a
//! node's check derives from (SECURITY.md says what that leaves open).

use super::config_digest::AcceptedConfigs;
use super::join::client::AttestationError;
use super::join::{trusted_signers, JoinPolicy, JoinServer};
use crate::audit::{AuditLog, Outcome, DEFAULT_CAPACITY};
use crate::config::{CertificateError, Config};
use crate::crypto::keys::AsymmetricKey;
use crate::crypto::CryptoError;
use crate::tls;
use rustls_pki_types::CertificateDer;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// What the bootstrapper serves and whom it trusts.
pub struct BootstrapperOptions {
    /// AMI ids allowed to receive the key.
    pub trusted_images: Vec<String>,
    /// The RPC private key, PEM or DER.
    pub private_key_pem_or_der: zeroize::Zeroizing<Vec<u8>>,
    /// The RPC certificate (the join port presents it).
    pub certificate: CertificateDer<'static>,
    /// Address to listen on.
    pub bind: IpAddr,
    /// Port to listen on.
    pub port: u16,
    /// Required AWS account of joining instances.
    pub account: Option<String>,
    /// Required region of joining instances; None accepts any.
    pub region: Option<String>,
    /// Extra identity-signing certificates (DER), e.g. the fake AWS's CA in tests.
    pub attestation_cas: Vec<Vec<u8>>,
    /// The cluster's configuration: joiners must attest its config digest
    /// (or one of its `acceptedConfigDigests`), and its RPC certificate
    /// must be `certificate`.
    pub cluster_config: Config,
}

/// Why the bootstrapper cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapperError {
    /// No trusted image, or one that is not an AMI id.
    #[error("--trusted-image needs one or more AMI ids (ami-…)")]
    Images,
    /// The private key file is not a private key.
    #[error("--private-key: {0}")]
    PrivateKeyFile(tls::TlsError),
    /// The private key is not a supported key.
    #[error("--private-key: {0}")]
    PrivateKey(CryptoError),
    /// The certificate is not X.509.
    #[error("--certificate: {0}")]
    Certificate(CertificateError),
    /// The private key is not the certificate's.
    #[error("--private-key is not the key of the RPC certificate")]
    KeyMismatch,
    /// The certificate is not the cluster config's RPC certificate.
    #[error("--certificate is not the rpcCertificate of --config")]
    CertificateNotConfigured,
    /// The TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// An attestation CA certificate is not usable.
    #[error(transparent)]
    Signers(#[from] AttestationError),
    /// The join port cannot be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        reason: std::io::Error,
    },
}

/// A prepared bootstrapper; [`Bootstrapper::serve`] runs it.
pub struct Bootstrapper {
    server: Arc<JoinServer>,
    key: Arc<AsymmetricKey>,
    tls: Arc<rustls::ServerConfig>,
    audit: Arc<AuditLog>,
    addr: SocketAddr,
}

impl Bootstrapper {
    /// Checks the options: the key must be the certificate's, images given.
    pub fn new(options: BootstrapperOptions) -> Result<Bootstrapper, BootstrapperError> {
        // The same start-up self-tests as a node; after a failure the join
        // route answers 503 and hands out nothing.
        crate::crypto::selftest::run_and_report();
        if options.trusted_images.is_empty() || options.trusted_images.iter().any(|i| !i.starts_with("ami-")) {
            return Err(BootstrapperError::Images);
        }
        let loaded =
            tls::load_private_key(&options.private_key_pem_or_der).map_err(BootstrapperError::PrivateKeyFile)?;
        let key = AsymmetricKey::from_pkcs8_der(loaded.secret_der()).map_err(BootstrapperError::PrivateKey)?;
        let spki = crate::config::spki_of(&options.certificate).map_err(BootstrapperError::Certificate)?;
        if key.public_key_der() != spki {
            return Err(BootstrapperError::KeyMismatch);
        }
        if options.certificate != options.cluster_config.rpc_certificate {
            return Err(BootstrapperError::CertificateNotConfigured);
        }
        let configs = AcceptedConfigs::of(&options.cluster_config);
        eprintln!("vssm bootstrapper: joiners must run config digest {}", configs.own);
        let tls_key = key.to_rustls_key();
        let tls = tls::server_config(vec![options.certificate], tls_key.clone_key(), None)?;
        let policy = JoinPolicy {
            signers: trusted_signers(&options.attestation_cas)?,
            account_id: options.account,
            region: options.region,
            images: options.trusted_images,
            membership: None,
            sts: None,
            configs,
        };
        Ok(Bootstrapper {
            server: Arc::new(JoinServer::new(policy)),
            key: Arc::new(key),
            tls,
            audit: Arc::new(AuditLog::new(DEFAULT_CAPACITY, true)),
            addr: SocketAddr::new(options.bind, options.port),
        })
    }

    /// Serves joins until `shutdown` fires.
    pub async fn serve(self, shutdown: tokio::sync::watch::Receiver<bool>) -> Result<(), BootstrapperError> {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .map_err(|reason| BootstrapperError::Listen { addr: self.addr, reason })?;
        eprintln!("vssm bootstrapper: serving joins on {}", self.addr);
        let tls = self.tls;
        let (server, key, audit) = (self.server, self.key, self.audit);
        let refusals = Arc::clone(&audit);
        crate::server::serve_tls_port(
            listener,
            crate::server::PeerProof::Nothing { max_body: super::join::server::MAX_JOIN_BODY },
            move || Some(Arc::clone(&tls)),
            move |peer, body: crate::server::body::BodyPolicy, request| {
                let (server, key, audit) = (Arc::clone(&server), Arc::clone(&key), Arc::clone(&audit));
                async move { server.handle(Some(&key), &audit, peer, &body, request).await }
            },
            move |peer, reason| {
                refusals.record("tls-handshake", "-", Outcome::Refused, &format!("from {peer}: {reason}"))
            },
            shutdown,
        )
        .await;
        Ok(())
    }
}
