//! `vssm dev`: a single node for a newcomer. Creates (or reuses) a data
//! folder with a throwaway RPC certificate, client CA, client certificate
//! and admin password, writes the matching config.json, and hands back what
//! the caller needs to start the node already bootstrapped.

use crate::admin::password::{PasswordHash, DEFAULT_LOG_N};
use crate::config::Config;
use crate::crypto::keys::{AsymmetricKey, KeySpec};
use crate::tls;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// What `vssm dev` needs to start: the config, the RPC key to bootstrap
/// with, and the admin password to show.
pub struct DevSetup {
    /// The data folder.
    pub dir: PathBuf,
    /// The node's config (also written to `dir/config.json`).
    pub config: Config,
    /// The RPC key to bootstrap the node with (PKCS#8 DER).
    pub rpc_key_pkcs8: Zeroizing<Vec<u8>>,
    /// The admin password, to print for the newcomer.
    pub admin_password: Zeroizing<String>,
}

/// Why the dev folder could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// A file or the folder could not be created, read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// `create`, `read` or `write`.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file of the folder holds no usable certificate or key.
    #[error("{file}: {source}")]
    Tls {
        /// The file name inside the folder.
        file: &'static str,
        /// Why.
        #[source]
        source: tls::TlsError,
    },
    /// The admin password file is not UTF-8.
    #[error("{ADMIN_PASSWORD} is not text")]
    PasswordNotText,
    /// Generating the key, the certificates, the password or its hash failed.
    #[error("cannot generate the {what}: {source}")]
    Generate {
        /// What was being generated.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The generated config was refused (a bug: it is built here).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// Wraps any error (typed or a message) as a [`DevError::Generate`].
fn generate<E: Into<Box<dyn std::error::Error + Send + Sync>>>(what: &'static str) -> impl FnOnce(E) -> DevError {
    move |e| DevError::Generate { what, source: e.into() }
}

/// Wraps an I/O error with the action and path.
fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> DevError + 'a {
    move |source| DevError::Io { action, path: path.to_path_buf(), source }
}

const RPC_CERT: &str = "rpc.crt";
const RPC_KEY: &str = "rpc.key";
const CLIENT_CA_CERT: &str = "client-ca.crt";
const CLIENT_CERT: &str = "client.crt";
const CLIENT_KEY: &str = "client.key";
const ADMIN_PASSWORD: &str = "admin-password";
const CONFIG: &str = "config.json";

/// Prepares `dir` (creating the PKI on first use) and the config for `bind`.
pub fn prepare(dir: &Path, bind: IpAddr) -> Result<DevSetup, DevError> {
    fs::create_dir_all(dir).map_err(io("create", dir))?;
    if !dir.join(RPC_KEY).exists() {
        create_pki(dir)?;
    }
    let read = |name: &str| {
        let path = dir.join(name);
        fs::read(&path).map_err(|source| DevError::Io { action: "read", path, source })
    };
    let tls_error = |file: &'static str| move |source| DevError::Tls { file, source };
    let rpc_cert = tls::load_certificate(&read(RPC_CERT)?).map_err(tls_error(RPC_CERT))?;
    let client_ca = tls::load_certificate(&read(CLIENT_CA_CERT)?).map_err(tls_error(CLIENT_CA_CERT))?;
    let rpc_key = tls::load_private_key(&Zeroizing::new(read(RPC_KEY)?)).map_err(tls_error(RPC_KEY))?;
    let rpc_key_pkcs8 = Zeroizing::new(rpc_key.secret_der().to_vec());
    let admin_password = Zeroizing::new(
        String::from_utf8(read(ADMIN_PASSWORD)?).map_err(|_| DevError::PasswordNotText)?.trim().to_string(),
    );
    let root_password =
        PasswordHash::create(admin_password.as_bytes(), DEFAULT_LOG_N).map_err(generate("password hash"))?;
    let config_json = serde_json::json!({
        "rpcCertificate": STANDARD.encode(rpc_cert.as_ref()),
        "clientTrustStore": [STANDARD.encode(client_ca.as_ref())],
        "rootPassword": root_password,
        "bindAddress": bind.to_string(),
    });
    // A `Value` always serializes.
    let config_text = serde_json::to_string_pretty(&config_json).unwrap_or_default();
    write_file(&dir.join(CONFIG), config_text.as_bytes(), false)?;
    let config = Config::parse(config_text.as_bytes(), &dir.join(CONFIG).display().to_string())?;
    Ok(DevSetup { dir: dir.to_path_buf(), config, rpc_key_pkcs8, admin_password })
}

fn create_pki(dir: &Path) -> Result<(), DevError> {
    let rpc_key = AsymmetricKey::generate(KeySpec::Rsa, 2048).map_err(generate("RPC key"))?;
    let pki = tls::generate_dev_pki(&rpc_key.to_pkcs8_der()).map_err(generate("certificates"))?;
    let mut password = [0u8; 18];
    SystemRandom::new().fill(&mut password).map_err(|_| generate("admin password")("no randomness available"))?;
    let password = Zeroizing::new(URL_SAFE_NO_PAD.encode(password));
    write_file(&dir.join(RPC_CERT), pki.rpc_cert_pem.as_bytes(), false)?;
    write_file(&dir.join(CLIENT_CA_CERT), pki.client_ca_cert_pem.as_bytes(), false)?;
    write_file(&dir.join(CLIENT_CERT), pki.client_cert_pem.as_bytes(), false)?;
    write_file(&dir.join(CLIENT_KEY), pki.client_key_pem.as_bytes(), true)?;
    write_file(&dir.join(ADMIN_PASSWORD), format!("{}\n", password.as_str()).as_bytes(), true)?;
    // The RPC key last: its presence marks a complete folder.
    write_file(&dir.join(RPC_KEY), pki.rpc_key_pem.as_bytes(), true)
}

fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), DevError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true).mode(if secret { 0o600 } else { 0o644 });
    let mut file = options.open(path).map_err(io("write", path))?;
    file.write_all(contents).map_err(io("write", path))
}

/// The copy-paste curl command for a dev node.
pub fn curl_example(setup: &DevSetup) -> String {
    let ip = reachable_ip(setup);
    let d = setup.dir.display();
    let port = setup.config.ports.api;
    format!(
        "curl --cacert {d}/{RPC_CERT} --cert {d}/{CLIENT_CERT} --key {d}/{CLIENT_KEY} \\\n  \
         --resolve VSSM:{port}:{ip} https://VSSM:{port}/REST/v1/admin/listkeys \\\n  \
         -H 'Content-Type: application/json' -d '{{\"adminPassword\":\"{}\"}}'",
        setup.admin_password.as_str()
    )
}

/// The same call with `vssm call` (which reads the dev folder's files).
pub fn call_example(setup: &DevSetup) -> String {
    format!(
        "vssm call --node {}:{} --dir {} admin/listkeys",
        reachable_ip(setup),
        setup.config.ports.api,
        setup.dir.display()
    )
}

/// Where a local client reaches the dev node.
fn reachable_ip(setup: &DevSetup) -> String {
    match setup.config.bind_address {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        ip => ip.to_string(),
    }
}
