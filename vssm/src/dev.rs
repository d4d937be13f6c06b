//! `vssm dev`: a single node for a newcomer. Creates (or reuses) a data
//! folder with a throwaway RPC certificate, client CA, client certificate
//! and admin password, writes the matching config.json, and hands back what
//! the caller needs to start the node already bootstrapped.

use crate::admin::password::{PasswordHash, DEFAULT_LOG_N};
use crate::config::Config;
use crate::crypto::keys::{AsymmetricKey, KeySpec};
use crate::tls;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// What `vssm dev` needs to start: the config, the RPC key to bootstrap
/// with, and the admin password to show.
pub struct DevSetup {
    pub dir: PathBuf,
    pub config: Config,
    pub rpc_key_pkcs8: Zeroizing<Vec<u8>>,
    pub admin_password: Zeroizing<String>,
}

const RPC_CERT: &str = "rpc.crt";
const RPC_KEY: &str = "rpc.key";
const CLIENT_CA_CERT: &str = "client-ca.crt";
const CLIENT_CERT: &str = "client.crt";
const CLIENT_KEY: &str = "client.key";
const ADMIN_PASSWORD: &str = "admin-password";
const CONFIG: &str = "config.json";

/// Prepares `dir` (creating the PKI on first use) and the config for `bind`.
pub fn prepare(dir: &Path, bind: IpAddr) -> Result<DevSetup, String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if !dir.join(RPC_KEY).exists() {
        create_pki(dir)?;
    }
    let read =
        |name: &str| fs::read(dir.join(name)).map_err(|e| format!("cannot read {}: {e}", dir.join(name).display()));
    let rpc_cert = tls::load_certificate(&read(RPC_CERT)?).map_err(|e| format!("{RPC_CERT}: {e}"))?;
    let client_ca = tls::load_certificate(&read(CLIENT_CA_CERT)?).map_err(|e| format!("{CLIENT_CA_CERT}: {e}"))?;
    let rpc_key = tls::load_private_key(&Zeroizing::new(read(RPC_KEY)?)).map_err(|e| format!("{RPC_KEY}: {e}"))?;
    let rpc_key_pkcs8 = Zeroizing::new(rpc_key.secret_der().to_vec());
    let admin_password = Zeroizing::new(
        String::from_utf8(read(ADMIN_PASSWORD)?)
            .map_err(|_| format!("{ADMIN_PASSWORD} is not text"))?
            .trim()
            .to_string(),
    );
    let root_password = PasswordHash::create(admin_password.as_bytes(), DEFAULT_LOG_N)?;
    let config_json = serde_json::json!({
        "rpcCertificate": STANDARD.encode(rpc_cert.as_ref()),
        "clientTrustStore": [STANDARD.encode(client_ca.as_ref())],
        "rootPassword": root_password,
        "bindAddress": bind.to_string(),
    });
    let config_text = serde_json::to_string_pretty(&config_json).map_err(|e| e.to_string())?;
    write_file(&dir.join(CONFIG), config_text.as_bytes(), false)?;
    let config =
        Config::parse(config_text.as_bytes(), &dir.join(CONFIG).display().to_string()).map_err(|e| e.to_string())?;
    Ok(DevSetup { dir: dir.to_path_buf(), config, rpc_key_pkcs8, admin_password })
}

fn create_pki(dir: &Path) -> Result<(), String> {
    let rpc_key = AsymmetricKey::generate(KeySpec::Rsa, 2048).map_err(|e| e.to_string())?;
    let pki = tls::generate_dev_pki(&rpc_key.to_pkcs8_der()).map_err(|e| e.to_string())?;
    let mut password = [0u8; 18];
    SystemRandom::new().fill(&mut password).map_err(|_| "no randomness available".to_string())?;
    let password = Zeroizing::new(URL_SAFE_NO_PAD.encode(password));
    write_file(&dir.join(RPC_CERT), pki.rpc_cert_pem.as_bytes(), false)?;
    write_file(&dir.join(CLIENT_CA_CERT), pki.client_ca_cert_pem.as_bytes(), false)?;
    write_file(&dir.join(CLIENT_CERT), pki.client_cert_pem.as_bytes(), false)?;
    write_file(&dir.join(CLIENT_KEY), pki.client_key_pem.as_bytes(), true)?;
    write_file(&dir.join(ADMIN_PASSWORD), format!("{}\n", password.as_str()).as_bytes(), true)?;
    // The RPC key last: its presence marks a complete folder.
    write_file(&dir.join(RPC_KEY), pki.rpc_key_pem.as_bytes(), true)
}

fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true).mode(if secret { 0o600 } else { 0o644 });
    let mut file = options.open(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
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
