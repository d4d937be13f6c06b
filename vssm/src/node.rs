//! One node's state: configuration, keys, audit log, and the lifecycle from
//! "bootstrapping" (no RPC key yet) to "ready" (full API with mutual TLS).

use crate::admin::AdminGuard;
use crate::audit::{AuditLog, DEFAULT_CAPACITY};
use crate::cluster::ClusterStats;
use crate::config::Config;
use crate::crypto::keys::AsymmetricKey;
use crate::error::{Classify, ErrorKind};
use crate::keystore::{KeyRecord, Keystore};
use crate::tls;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Largest private key (PKCS#8 DER) accepted anywhere: RSA-8192 is under 5 KiB.
pub const MAX_KEY_DER_BYTES: usize = 8 * 1024;

/// Why a bootstrap was refused.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The node has its RPC key already.
    #[error("node is already bootstrapped")]
    AlreadyBootstrapped,
    /// The key is larger than any supported private key.
    #[error("rpcPrivateKey is larger than {MAX_KEY_DER_BYTES} bytes")]
    KeyTooLarge,
    /// The key is not a supported PKCS#8 private key.
    #[error("rpcPrivateKey is not a supported PKCS#8 private key")]
    NotPkcs8,
    /// The key is not the key of the RPC certificate.
    #[error("rpcPrivateKey does not match the public key of rpcCertificate")]
    WrongKey,
    /// The TLS configuration could not be built with this key (a fault of
    /// this node: the key matched the certificate).
    #[error("cannot build the TLS configuration: {0}")]
    Tls(#[from] tls::TlsError),
}

impl Classify for BootstrapError {
    fn kind(&self) -> ErrorKind {
        match self {
            BootstrapError::AlreadyBootstrapped => ErrorKind::Conflict,
            BootstrapError::KeyTooLarge | BootstrapError::NotPkcs8 | BootstrapError::WrongKey => ErrorKind::BadRequest,
            BootstrapError::Tls(_) => ErrorKind::Internal,
        }
    }
}

/// Everything a running node shares between its I/O threads.
pub struct Node {
    /// The validated configuration.
    pub config: Config,
    /// The keys.
    pub keystore: Keystore,
    /// The audit log.
    pub audit: AuditLog,
    /// The admin password guard.
    pub admin: AdminGuard,
    /// Grants, revocations and the policy mode.
    pub authz: crate::authz::Authorization,
    /// TLS for the API port: self-signed before bootstrap, mutual TLS with
    /// the RPC certificate after.
    api_tls: ArcSwap<rustls::ServerConfig>,
    rpc_key: OnceLock<AsymmetricKey>,
    bootstrap_lock: Mutex<()>,
    change_hook: OnceLock<ChangeHook>,
    cluster_tls: OnceLock<ClusterTls>,
    /// False while a cluster node that just got its RPC key has not yet
    /// pulled the keys from its peers (see [`Node::is_serving`]).
    synced: AtomicBool,
    /// Counters of the cluster layer, shown on the health port.
    pub cluster_stats: ClusterStats,
    /// `sha256//BASE64` of the bootstrap certificate's public key (curl's
    /// `--pinnedpubkey` form), printed on the console so that the operator
    /// who uploads the RPC key can check whom it goes to.
    pub bootstrap_key_pin: String,
}

/// TLS configurations that need the RPC key: built at bootstrap.
pub struct ClusterTls {
    /// Sync port: RPC certificate, and the peer must present it too.
    pub sync_server: Arc<rustls::ServerConfig>,
    /// Join port: RPC certificate; the caller proves itself by attestation.
    pub join_server: Arc<rustls::ServerConfig>,
    /// Calls to peers' sync ports: pinned RPC certificate both ways.
    pub peer_client: Arc<rustls::ClientConfig>,
}

/// What a node changed locally, for the cluster to push to its peers.
pub enum LocalChange {
    /// Key records added.
    Records(Vec<Arc<KeyRecord>>),
    /// Authorization records added (grants, revocations, the mode).
    Authorization(crate::authz::AuthzState),
    /// Key lifecycle state changed (the changed keys' whole lifecycle).
    Lifecycle(crate::lifecycle::LifecycleMap),
}

/// Called with each local change, so the cluster can push it.
pub type ChangeHook = Box<dyn Fn(LocalChange) + Send + Sync>;

impl Node {
    /// A node in the bootstrapping state.
    pub fn new(config: Config) -> Result<Arc<Node>, tls::TlsError> {
        // Known-answer tests before any key is touched; a failure leaves the
        // node up but refusing crypto (503), so its health check says why.
        crate::crypto::selftest::run_and_report();
        let (chain, key) = tls::bootstrap_identity()?;
        let bootstrap_key_pin = tls::public_key_pin(&chain[0])?;
        let bootstrap_tls = tls::server_config(chain, key, None)?;
        let admin = AdminGuard::new(config.root_password.clone());
        let authz =
            crate::authz::Authorization::new(config.password_admin, config.cluster.as_ref().map(|c| c.sync_interval));
        Ok(Arc::new(Node {
            config,
            keystore: Keystore::new(),
            audit: AuditLog::new(DEFAULT_CAPACITY, true),
            admin,
            authz,
            api_tls: ArcSwap::new(bootstrap_tls),
            rpc_key: OnceLock::new(),
            bootstrap_lock: Mutex::new(()),
            change_hook: OnceLock::new(),
            cluster_tls: OnceLock::new(),
            synced: AtomicBool::new(true),
            cluster_stats: ClusterStats::default(),
            bootstrap_key_pin,
        }))
    }

    /// True once the RPC key is installed and the full API is served.
    pub fn is_ready(&self) -> bool {
        self.rpc_key.get().is_some()
    }

    /// True when the node serves the API: bootstrapped and, in a cluster,
    /// synchronized once with its peers (a node that just joined must not
    /// answer 404 for keys it has not pulled yet).
    pub fn is_serving(&self) -> bool {
        self.is_ready() && self.is_synced()
    }

    /// False between joining a cluster and the first completed sync round.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Holds the API until [`Node::mark_synced`] (called by the cluster layer).
    pub fn hold_until_synced(&self) {
        self.synced.store(false, Ordering::Release);
    }

    /// The first sync round is done: serve.
    pub fn mark_synced(&self) {
        self.synced.store(true, Ordering::Release);
    }

    /// The RPC private key (present once ready).
    pub fn rpc_key(&self) -> Option<&AsymmetricKey> {
        self.rpc_key.get()
    }

    /// Tells the cluster layer about records this node added (pushed to peers).
    pub fn cluster_changed(&self, records: Vec<Arc<KeyRecord>>) {
        self.changed(LocalChange::Records(records));
    }

    /// Tells the cluster layer about authorization records this node added
    /// (pushed to peers).
    pub fn authorization_changed(&self, added: crate::authz::AuthzState) {
        self.changed(LocalChange::Authorization(added));
    }

    /// Tells the cluster layer about lifecycle changes made here (pushed to peers).
    pub fn lifecycle_changed(&self, changed: crate::lifecycle::LifecycleMap) {
        self.changed(LocalChange::Lifecycle(changed));
    }

    fn changed(&self, change: LocalChange) {
        if let Some(hook) = self.change_hook.get() {
            hook(change);
        }
    }

    /// Installs the function that pushes changes to peers (set once by the cluster layer).
    pub fn set_change_hook(&self, hook: ChangeHook) {
        let _ = self.change_hook.set(hook);
    }

    /// TLS for the sync and join ports and for calls to peers (once ready).
    pub fn cluster_tls(&self) -> Option<&ClusterTls> {
        self.cluster_tls.get()
    }

    /// The TLS configuration new API connections get.
    pub fn api_tls(&self) -> Arc<rustls::ServerConfig> {
        self.api_tls.load_full()
    }

    /// Installs the RPC private key (PKCS#8 DER). It must be the key of the
    /// configured RPC certificate; on any error the node stays bootstrapping.
    pub fn bootstrap(&self, pkcs8_der: &[u8]) -> Result<(), BootstrapError> {
        if self.is_ready() {
            return Err(BootstrapError::AlreadyBootstrapped);
        }
        // Anyone may call this before bootstrap: bound the work before
        // parsing (an RSA-8192 PKCS#8 key is under 5 KiB), and parse
        // outside the lock so a slow parse blocks nobody else.
        if pkcs8_der.len() > MAX_KEY_DER_BYTES {
            return Err(BootstrapError::KeyTooLarge);
        }
        let key = AsymmetricKey::from_pkcs8_der(pkcs8_der).map_err(|_| BootstrapError::NotPkcs8)?;
        let _guard = self.bootstrap_lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_ready() {
            return Err(BootstrapError::AlreadyBootstrapped);
        }
        if key.public_key_der() != self.config.rpc_public_key_spki {
            return Err(BootstrapError::WrongKey);
        }
        let verifier = tls::ClientCaVerifier::new(&self.config.client_trust_store)?;
        let tls_key = key.to_rustls_key();
        let chain = vec![self.config.rpc_certificate.clone()];
        let api_tls = tls::server_config(chain.clone(), tls_key.clone_key(), Some(verifier))?;
        let pinned_peer = tls::PinnedClientCert::new(self.config.rpc_certificate.clone());
        let cluster_tls = ClusterTls {
            sync_server: tls::server_config(chain.clone(), tls_key.clone_key(), Some(pinned_peer))?,
            join_server: tls::server_config(chain.clone(), tls_key.clone_key(), None)?,
            peer_client: tls::pinned_client_config(
                self.config.rpc_certificate.clone(),
                Some((chain, tls_key.clone_key())),
            )?,
        };
        let _ = self.cluster_tls.set(cluster_tls);
        self.keystore.set_fingerprint_secret(key.pkcs8_der());
        self.api_tls.store(api_tls);
        let _ = self.rpc_key.set(key);
        Ok(())
    }
}
