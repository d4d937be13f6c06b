//! The operator client (`vssm call`): one API call to a node over mutual
//! TLS from the command line, so operators do not need curl. The node must
//! present exactly the RPC certificate given (pinned, as between nodes);
//! admin calls get the admin password filled in from a file or the
//! environment, never from the command line, where other users could see it.

use crate::cluster::peer_client::PeerClient;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

/// Environment variable read for the admin password when no file is given.
pub const PASSWORD_ENV: &str = "VSSM_ADMIN_PASSWORD";
/// Longest wait for the answer (RSA-4096 generation and large restores take a while).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Why `vssm call` made no call or got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The endpoint has characters other than letters, digits and `/`.
    #[error("not an endpoint: {0:?} (e.g. symmetric/encrypt, admin/listkeys)")]
    Endpoint(String),
    /// The request body is not JSON.
    #[error("the request is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The request body is JSON but not an object.
    #[error("the request must be a JSON object")]
    NotAnObject,
    /// A file is neither given nor found through `--dir`.
    #[error("{0} is needed (or --dir with a `vssm dev` folder)")]
    MissingFile(&'static str),
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A certificate or key file is unusable, or the TLS client cannot be built.
    #[error("{what}: {source}")]
    Tls {
        /// The file (or `TLS client`).
        what: String,
        /// Why.
        #[source]
        source: crate::tls::TlsError,
    },
    /// The admin password file is not UTF-8.
    #[error("{}: not UTF-8", .0.display())]
    PasswordNotText(PathBuf),
    /// The admin password found is empty.
    #[error("the admin password is empty")]
    EmptyPassword,
    /// `--node` does not resolve to an address.
    #[error("--node {node}: {reason}")]
    Node {
        /// As given.
        node: String,
        /// Why.
        reason: String,
    },
    /// The client runtime could not start.
    #[error("cannot start the client: {0}")]
    Runtime(#[source] std::io::Error),
    /// The node refused the call, answered an error status or could not be reached.
    #[error("{0}")]
    Peer(crate::cluster::peer_client::PeerError),
}

/// What `vssm call` needs.
#[derive(Debug, Default)]
pub struct CallOptions {
    /// `HOST` or `HOST:PORT` (port 8080 by default).
    pub node: String,
    /// A `vssm dev` folder: default for the three files and the password.
    pub dir: Option<PathBuf>,
    /// The node's RPC certificate (PEM or DER), pinned.
    pub server_cert: Option<PathBuf>,
    /// Client certificate (PEM or DER).
    pub cert: Option<PathBuf>,
    /// Client private key (PEM or DER).
    pub key: Option<PathBuf>,
    /// File holding the admin password (first line).
    pub password_file: Option<PathBuf>,
    /// Endpoint below `/REST/v1/`, e.g. `symmetric/encrypt` or `admin/listkeys`.
    pub endpoint: String,
    /// The JSON request (an object).
    pub body: String,
}

/// Makes the call and returns the answer, pretty-printed. An error status
/// is an error naming the status and the node's message.
pub fn call(options: &CallOptions, password_from_env: Option<String>) -> Result<String, CallError> {
    let endpoint = options.endpoint.trim_start_matches('/').trim_start_matches("REST/v1/");
    if endpoint.is_empty() || !endpoint.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/') {
        return Err(CallError::Endpoint(options.endpoint.clone()));
    }
    let mut body: serde_json::Value = serde_json::from_str(&options.body).map_err(CallError::NotJson)?;
    let Some(fields) = body.as_object_mut() else {
        return Err(CallError::NotAnObject);
    };
    // Without any password source an admin call goes without one: the
    // node then decides by the grants of the client certificate.
    if endpoint.starts_with("admin/") && endpoint != "admin/bootstrap" && !fields.contains_key("adminPassword") {
        if let Some(password) = admin_password(options, password_from_env)? {
            fields.insert("adminPassword".into(), serde_json::Value::String(password.to_string()));
        }
    }
    let tls = client_tls(options)?;
    let address = resolve(&options.node)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(CallError::Runtime)?;
    let answer: serde_json::Value = runtime
        .block_on(async {
            let client = PeerClient::new(tls, std::net::Ipv4Addr::UNSPECIFIED.into(), CALL_TIMEOUT);
            client.post_json(address, &format!("/REST/v1/{endpoint}"), &body).await
        })
        .map_err(CallError::Peer)?;
    // A `Value` always serializes.
    Ok(serde_json::to_string_pretty(&answer).unwrap_or_default())
}

fn file_or_dir(
    given: &Option<PathBuf>,
    dir: &Option<PathBuf>,
    name: &str,
    flag: &'static str,
) -> Result<PathBuf, CallError> {
    match (given, dir) {
        (Some(path), _) => Ok(path.clone()),
        (None, Some(dir)) => Ok(dir.join(name)),
        (None, None) => Err(CallError::MissingFile(flag)),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CallError> {
    std::fs::read(path).map_err(|source| CallError::Read { path: path.to_path_buf(), source })
}

/// Names the file a TLS loading error came from.
fn tls_error(path: &Path) -> impl FnOnce(crate::tls::TlsError) -> CallError + '_ {
    move |source| CallError::Tls { what: path.display().to_string(), source }
}

fn client_tls(options: &CallOptions) -> Result<std::sync::Arc<rustls::ClientConfig>, CallError> {
    let server = file_or_dir(&options.server_cert, &options.dir, "rpc.crt", "--server-cert")?;
    let cert = file_or_dir(&options.cert, &options.dir, "client.crt", "--cert")?;
    let key = file_or_dir(&options.key, &options.dir, "client.key", "--key")?;
    let server_cert = crate::tls::load_certificate(&read(&server)?).map_err(tls_error(&server))?;
    let chain = crate::tls::load_certificates(&read(&cert)?).map_err(tls_error(&cert))?;
    let key_bytes = Zeroizing::new(read(&key)?);
    let private_key = crate::tls::load_private_key(&key_bytes).map_err(tls_error(&key))?;
    // A copy for the configuration, which wipes it once loaded; `private_key` is wiped on drop.
    crate::tls::pinned_client_config(server_cert, Some((chain, private_key.clone_key())))
        .map_err(|source| CallError::Tls { what: "TLS client".into(), source })
}

/// The admin password from `--password-file`, the environment or the
/// folder's `admin-password` file, in that order; None when there is none
/// (certificate administration).
fn admin_password(options: &CallOptions, from_env: Option<String>) -> Result<Option<Zeroizing<String>>, CallError> {
    let file = options.password_file.clone().or_else(|| {
        // The environment comes before a dev folder's file, after an explicit file.
        if from_env.is_some() {
            None
        } else {
            options.dir.as_ref().map(|d| d.join("admin-password")).filter(|f| f.exists())
        }
    });
    let password = match (file, from_env) {
        (Some(path), _) => {
            let text = Zeroizing::new(String::from_utf8(read(&path)?).map_err(|_| CallError::PasswordNotText(path))?);
            Zeroizing::new(text.lines().next().unwrap_or_default().to_string())
        }
        (None, Some(env)) => Zeroizing::new(env),
        (None, None) => return Ok(None),
    };
    if password.is_empty() {
        return Err(CallError::EmptyPassword);
    }
    Ok(Some(password))
}

fn resolve(node: &str) -> Result<SocketAddr, CallError> {
    let with_port = if node.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{node}]:8080")
    } else if node.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        node.to_string()
    } else {
        format!("{node}:8080")
    };
    let failed = |reason: String| CallError::Node { node: node.to_string(), reason };
    with_port.to_socket_addrs().map_err(|e| failed(e.to_string()))?.next().ok_or_else(|| failed("no address".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_default_to_the_api_port() {
        assert_eq!(resolve("127.0.0.5").unwrap(), "127.0.0.5:8080".parse().unwrap());
        assert_eq!(resolve("127.0.0.5:9443").unwrap(), "127.0.0.5:9443".parse().unwrap());
        assert_eq!(resolve("::1").unwrap(), "[::1]:8080".parse().unwrap());
        assert_eq!(resolve("[::1]:9443").unwrap(), "[::1]:9443".parse().unwrap());
    }

    #[test]
    fn bad_requests_fail_before_any_connection() {
        let mut o =
            CallOptions { node: "127.0.0.1:1".into(), endpoint: "symmetric/encrypt".into(), ..Default::default() };
        o.body = "not json".into();
        assert!(matches!(call(&o, None), Err(CallError::NotJson(_))));
        o.body = "[1]".into();
        assert!(matches!(call(&o, None), Err(CallError::NotAnObject)));
        o.body = "{}".into();
        o.endpoint = "../etc".into();
        assert!(call(&o, None).unwrap_err().to_string().contains("not an endpoint"));
        o.endpoint = "admin/listkeys".into();
        assert!(
            matches!(call(&o, None), Err(CallError::MissingFile("--server-cert"))),
            "no password: certificate admin"
        );
        o.endpoint = "symmetric/encrypt".into();
        assert!(matches!(call(&o, None), Err(CallError::MissingFile("--server-cert"))));
    }

    #[test]
    fn password_comes_from_the_file_first_then_the_environment() {
        let dir = std::env::temp_dir().join(format!("vssm-operator-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "from file\nignored\n").unwrap();
        let mut o = CallOptions { password_file: Some(file), ..Default::default() };
        let found = |o: &CallOptions, env: Option<&str>| {
            admin_password(o, env.map(str::to_string)).unwrap().map(|p| p.to_string())
        };
        assert_eq!(found(&o, Some("from env")).as_deref(), Some("from file"));
        o.password_file = None;
        assert_eq!(found(&o, Some("from env")).as_deref(), Some("from env"));
        o.dir = Some(dir.clone());
        assert_eq!(found(&o, None), None, "a folder without admin-password: certificate admin");
        std::fs::write(dir.join("admin-password"), "dev\n").unwrap();
        assert_eq!(found(&o, None).as_deref(), Some("dev"));
        assert_eq!(found(&o, Some("from env")).as_deref(), Some("from env"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
