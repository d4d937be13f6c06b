//! `config.json`: loading, validation, and the node settings derived from it.
//! Every error names the file and the field, so an operator can fix it.

use crate::admin::password::PasswordHash;
use crate::cluster::config_digest::ConfigDigest;
use crate::wire::codec::decode_base64;
use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Where `vssm` without arguments looks for its config, in order.
pub const DEFAULT_CONFIG_PATHS: [&str; 2] = ["./config.json", "/etc/vssm/config.json"];
/// Largest config file accepted (user-data is limited to 16 KiB on AWS; a
/// trust store of many CAs still fits).
const MAX_CONFIG_BYTES: usize = 4 << 20;

/// The ports a node listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Client API (8080).
    pub api: u16,
    /// Health check (8081).
    pub health: u16,
    /// Node-to-node sync (8082).
    pub sync: u16,
    /// Attested join (8083).
    pub join: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports { api: 8080, health: 8081, sync: 8082, join: 8083 }
    }
}

/// A validated node configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The cluster's RPC certificate (server certificate after bootstrap).
    pub rpc_certificate: CertificateDer<'static>,
    /// SubjectPublicKeyInfo of the RPC certificate, to check the bootstrap key.
    pub rpc_public_key_spki: Vec<u8>,
    /// CA certificates that client certificates must be signed by.
    pub client_trust_store: Vec<CertificateDer<'static>>,
    /// The admin password hash.
    pub root_password: PasswordHash,
    /// Address all listeners bind to.
    pub bind_address: IpAddr,
    /// The ports to listen on.
    pub ports: Ports,
    /// Cluster settings; None for a standalone node.
    pub cluster: Option<ClusterConfig>,
    /// Whether the unauthenticated health port's `/REST/v1/cluster/status`
    /// shows peer addresses, the key-set digest and counters (config
    /// `healthDetails`, default false: only readiness).
    pub health_details: bool,
    /// Whether admin endpoints accept the admin password (config
    /// `authorization.passwordAdmin`, default true). When false, only
    /// certificates with management grants administer.
    pub password_admin: bool,
    /// Bounds of the key lifecycle (config `lifecycle`).
    pub lifecycle: LifecycleConfig,
}

/// Bounds of the key lifecycle that an operator sets (config `lifecycle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// The shortest waiting period admin/scheduledeletion accepts
    /// (`minimumDeletionWindowSeconds`, default 7 days).
    pub minimum_deletion_window_s: u64,
    /// The shortest automatic rotation period admin/setrotation accepts
    /// (`minimumRotationPeriodSeconds`, default 1 day).
    pub minimum_rotation_period_s: u64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig { minimum_deletion_window_s: 7 * 86_400, minimum_rotation_period_s: 86_400 }
    }
}

/// How a node finds its peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryConfig {
    /// A fixed list of peer addresses (same ports as this node).
    Static(Vec<IpAddr>),
    /// The node's own EC2 Auto Scaling group (Pending/InService instances).
    Aws,
}

/// How much a joining node must prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestationMode {
    /// Signed identity document, bound to source address, group membership and a fresh challenge.
    Basic,
    /// Basic plus an `sts:GetCallerIdentity` request signed with the instance-role
    /// credentials, binding the challenge and the ephemeral key to the instance.
    Strong,
}

/// Overrides of AWS API endpoints (for tests and the qemu harness).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsEndpoints {
    /// Auto Scaling endpoint URL.
    pub autoscaling: Option<String>,
    /// EC2 endpoint URL.
    pub ec2: Option<String>,
    /// STS endpoint URL.
    pub sts: Option<String>,
}

/// The `cluster` section of config.json.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// How peers are found.
    pub discovery: DiscoveryConfig,
    /// Attestation of joining nodes; None disables join (manual bootstrap only).
    pub attestation: Option<AttestationMode>,
    /// IMDS base URL (default http://169.254.169.254).
    pub imds_endpoint: String,
    /// Overrides of the AWS API endpoints.
    pub aws_endpoints: AwsEndpoints,
    /// Images other than this node's own that may join (rolling upgrades).
    pub trusted_image_ids: Vec<String>,
    /// Extra identity-document signing certificates (DER), e.g. a test CA.
    /// Trusted only because the config names them.
    pub attestation_ca_certificates: Vec<Vec<u8>>,
    /// Mean time between anti-entropy rounds (jittered ±25%).
    pub sync_interval: std::time::Duration,
    /// Addresses of stand-alone bootstrappers (`vssm bootstrapper`) to ask
    /// for the RPC key before the discovered peers.
    pub bootstrappers: Vec<IpAddr>,
    /// Config digests of joiners that may receive the RPC key besides this
    /// node's own (a configuration change being rolled out).
    pub accepted_config_digests: Vec<ConfigDigest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCluster {
    discovery: Option<String>,
    peers: Option<Vec<String>>,
    attestation: Option<String>,
    #[serde(alias = "imds_endpoint")]
    imds_endpoint: Option<String>,
    #[serde(alias = "aws_endpoints")]
    aws_endpoints: Option<RawAwsEndpoints>,
    #[serde(alias = "trusted_image_ids")]
    trusted_image_ids: Option<Vec<String>>,
    #[serde(alias = "attestation_ca_certificates")]
    attestation_ca_certificates: Option<Vec<String>>,
    #[serde(alias = "sync_interval_seconds")]
    sync_interval_seconds: Option<f64>,
    bootstrappers: Option<Vec<String>>,
    #[serde(alias = "accepted_config_digests")]
    accepted_config_digests: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAwsEndpoints {
    autoscaling: Option<String>,
    ec2: Option<String>,
    sts: Option<String>,
}

/// A config error: which file, which field, what is wrong.
#[derive(Debug)]
pub struct ConfigError {
    /// The file (or "user-data") the config came from.
    pub source: String,
    /// The offending field; empty for the whole file.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.source, self.message)
        } else {
            write!(f, "{}: field `{}`: {}", self.source, self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    #[serde(alias = "rpc_certificate")]
    rpc_certificate: Option<String>,
    #[serde(alias = "client_trust_store")]
    client_trust_store: Option<Vec<String>>,
    #[serde(alias = "root_password")]
    root_password: Option<String>,
    #[serde(alias = "bind_address")]
    bind_address: Option<String>,
    #[serde(alias = "api_port")]
    api_port: Option<u16>,
    #[serde(alias = "health_port")]
    health_port: Option<u16>,
    #[serde(alias = "sync_port")]
    sync_port: Option<u16>,
    #[serde(alias = "join_port")]
    join_port: Option<u16>,
    cluster: Option<RawCluster>,
    health_details: Option<bool>,
    authorization: Option<RawAuthorization>,
    lifecycle: Option<RawLifecycle>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawLifecycle {
    #[serde(alias = "minimum_deletion_window_seconds")]
    minimum_deletion_window_seconds: Option<u64>,
    #[serde(alias = "minimum_rotation_period_seconds")]
    minimum_rotation_period_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawAuthorization {
    #[serde(alias = "password_admin")]
    password_admin: Option<bool>,
}

impl Config {
    /// Finds the config in the default places (see [`DEFAULT_CONFIG_PATHS`]).
    pub fn find_default() -> Result<PathBuf, ConfigError> {
        DEFAULT_CONFIG_PATHS.iter().map(PathBuf::from).find(|p| p.exists()).ok_or_else(|| ConfigError {
            source: DEFAULT_CONFIG_PATHS.join(" or "),
            field: String::new(),
            message: "no config file found".into(),
        })
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let source = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| ConfigError {
            source: source.clone(),
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&bytes, &source)
    }

    /// Validates config bytes; `source` names them in errors (a path or "user-data").
    pub fn parse(bytes: &[u8], source: &str) -> Result<Config, ConfigError> {
        let fail = |field: &str, message: String| ConfigError {
            source: source.to_string(),
            field: field.to_string(),
            message,
        };
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(fail("", format!("larger than {MAX_CONFIG_BYTES} bytes")));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let raw: RawConfig = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            fail(&field, format!("invalid: {}", e.inner()))
        })?;
        deserializer.end().map_err(|e| fail("", format!("invalid JSON: {e}")))?;

        let rpc_text = raw.rpc_certificate.ok_or_else(|| fail("rpcCertificate", "missing".into()))?;
        let rpc_certificate = parse_certificate(&rpc_text).map_err(|m| fail("rpcCertificate", m.to_string()))?;
        let rpc_public_key_spki = spki_of(&rpc_certificate).map_err(|m| fail("rpcCertificate", m.to_string()))?;

        let trust_texts = raw.client_trust_store.ok_or_else(|| fail("clientTrustStore", "missing".into()))?;
        if trust_texts.is_empty() {
            return Err(fail("clientTrustStore", "must name at least one CA certificate".into()));
        }
        let mut client_trust_store = Vec::with_capacity(trust_texts.len());
        for (i, text) in trust_texts.iter().enumerate() {
            let cert = parse_certificate(text).map_err(|m| fail(&format!("clientTrustStore[{i}]"), m.to_string()))?;
            client_trust_store.push(cert);
        }

        // The same checks bootstrap applies (CA flags, key types), now, so
        // that a bad trust store stops start-up instead of every bootstrap.
        crate::tls::ClientCaVerifier::new(&client_trust_store).map_err(|e| fail("clientTrustStore", e.to_string()))?;

        let password_text = raw.root_password.ok_or_else(|| fail("rootPassword", "missing".into()))?;
        let root_password = PasswordHash::parse(&password_text).map_err(|m| fail("rootPassword", m.to_string()))?;

        let bind_address = match raw.bind_address {
            None => IpAddr::from([0, 0, 0, 0]),
            Some(text) => text.parse().map_err(|_| fail("bindAddress", format!("not an IP address: {text:?}")))?,
        };
        let defaults = Ports::default();
        let ports = Ports {
            api: raw.api_port.unwrap_or(defaults.api),
            health: raw.health_port.unwrap_or(defaults.health),
            sync: raw.sync_port.unwrap_or(defaults.sync),
            join: raw.join_port.unwrap_or(defaults.join),
        };
        let all =
            [("apiPort", ports.api), ("healthPort", ports.health), ("syncPort", ports.sync), ("joinPort", ports.join)];
        for (i, (name, port)) in all.iter().enumerate() {
            if *port == 0 {
                return Err(fail(name, "must not be 0".into()));
            }
            if all[..i].iter().any(|(_, p)| p == port) {
                return Err(fail(name, format!("port {port} is used twice")));
            }
        }

        let cluster = raw.cluster.map(|c| parse_cluster(c, &fail)).transpose()?;
        let defaults = LifecycleConfig::default();
        let lifecycle = match raw.lifecycle {
            None => defaults,
            Some(l) => LifecycleConfig {
                minimum_deletion_window_s: l
                    .minimum_deletion_window_seconds
                    .unwrap_or(defaults.minimum_deletion_window_s),
                minimum_rotation_period_s: l
                    .minimum_rotation_period_seconds
                    .unwrap_or(defaults.minimum_rotation_period_s),
            },
        };
        for (field, value) in [
            ("lifecycle.minimumDeletionWindowSeconds", lifecycle.minimum_deletion_window_s),
            ("lifecycle.minimumRotationPeriodSeconds", lifecycle.minimum_rotation_period_s),
        ] {
            if !(1..=366 * 86_400).contains(&value) {
                return Err(fail(field, format!("must be 1 to 31622400 seconds, got {value}")));
            }
        }
        Ok(Config {
            rpc_certificate,
            rpc_public_key_spki,
            client_trust_store,
            root_password,
            bind_address,
            ports,
            cluster,
            health_details: raw.health_details.unwrap_or(false),
            password_admin: raw.authorization.and_then(|a| a.password_admin).unwrap_or(true),
            lifecycle,
        })
    }
}

fn parse_cluster(raw: RawCluster, fail: &dyn Fn(&str, String) -> ConfigError) -> Result<ClusterConfig, ConfigError> {
    let discovery = match (raw.discovery.as_deref(), raw.peers) {
        (Some("aws"), None) => DiscoveryConfig::Aws,
        (Some("aws"), Some(_)) => return Err(fail("cluster.peers", "not used with discovery \"aws\"".into())),
        (Some("static") | None, Some(peers)) => {
            let mut ips = Vec::with_capacity(peers.len());
            for (i, text) in peers.iter().enumerate() {
                ips.push(
                    text.parse()
                        .map_err(|_| fail(&format!("cluster.peers[{i}]"), format!("not an IP address: {text:?}")))?,
                );
            }
            DiscoveryConfig::Static(ips)
        }
        (Some("static") | None, None) => {
            return Err(fail("cluster.peers", "missing (or set discovery to \"aws\")".into()))
        }
        (Some(other), _) => {
            return Err(fail("cluster.discovery", format!("must be \"aws\" or \"static\", not {other:?}")))
        }
    };
    let attestation = match raw.attestation.as_deref() {
        None | Some("basic") => Some(AttestationMode::Basic),
        Some("strong") => Some(AttestationMode::Strong),
        Some("none") => None,
        Some(other) => {
            return Err(fail(
                "cluster.attestation",
                format!("must be \"basic\", \"strong\" or \"none\", not {other:?}"),
            ))
        }
    };
    let check_url = |field: &str, url: Option<String>| -> Result<Option<String>, ConfigError> {
        match url {
            Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                Err(fail(field, format!("not an http(s) URL: {u:?}")))
            }
            other => Ok(other),
        }
    };
    let imds_endpoint =
        check_url("cluster.imdsEndpoint", raw.imds_endpoint)?.unwrap_or_else(|| "http://169.254.169.254".into());
    let endpoints = raw.aws_endpoints.unwrap_or(RawAwsEndpoints { autoscaling: None, ec2: None, sts: None });
    let aws_endpoints = AwsEndpoints {
        autoscaling: check_url("cluster.awsEndpoints.autoscaling", endpoints.autoscaling)?,
        ec2: check_url("cluster.awsEndpoints.ec2", endpoints.ec2)?,
        sts: check_url("cluster.awsEndpoints.sts", endpoints.sts)?,
    };
    let trusted_image_ids = raw.trusted_image_ids.unwrap_or_default();
    for (i, id) in trusted_image_ids.iter().enumerate() {
        if !id.starts_with("ami-") || id.len() > 64 {
            return Err(fail(&format!("cluster.trustedImageIds[{i}]"), format!("not an AMI id: {id:?}")));
        }
    }
    let mut attestation_ca_certificates = Vec::new();
    for (i, text) in raw.attestation_ca_certificates.unwrap_or_default().iter().enumerate() {
        let cert = parse_certificate(text)
            .map_err(|m| fail(&format!("cluster.attestationCaCertificates[{i}]"), m.to_string()))?;
        attestation_ca_certificates.push(cert.as_ref().to_vec());
    }
    let seconds = raw.sync_interval_seconds.unwrap_or(10.0);
    if !(0.1..=3600.0).contains(&seconds) {
        return Err(fail("cluster.syncIntervalSeconds", "must be between 0.1 and 3600".into()));
    }
    let mut bootstrappers = Vec::new();
    for (i, text) in raw.bootstrappers.unwrap_or_default().iter().enumerate() {
        bootstrappers.push(
            text.parse()
                .map_err(|_| fail(&format!("cluster.bootstrappers[{i}]"), format!("not an IP address: {text:?}")))?,
        );
    }
    let mut accepted_config_digests = Vec::new();
    for (i, text) in raw.accepted_config_digests.unwrap_or_default().iter().enumerate() {
        accepted_config_digests.push(ConfigDigest::parse_hex(text).ok_or_else(|| {
            fail(&format!("cluster.acceptedConfigDigests[{i}]"), "not 64 hex digits (see `vssm config-digest`)".into())
        })?);
    }
    Ok(ClusterConfig {
        bootstrappers,
        accepted_config_digests,
        discovery,
        attestation,
        imds_endpoint,
        aws_endpoints,
        trusted_image_ids,
        attestation_ca_certificates,
        sync_interval: std::time::Duration::from_secs_f64(seconds),
    })
}

/// Why a configured certificate is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The text is not base64.
    #[error("not base64")]
    NotBase64,
    /// The bytes are not a DER X.509 certificate.
    #[error("not a DER X.509 certificate")]
    NotX509,
}

/// Decodes a base64 DER certificate and checks that it parses as X.509.
fn parse_certificate(text: &str) -> Result<CertificateDer<'static>, CertificateError> {
    let der = decode_base64(text.trim()).map_err(|_| CertificateError::NotBase64)?;
    x509_parser::parse_x509_certificate(&der).map_err(|_| CertificateError::NotX509)?;
    Ok(CertificateDer::from(der))
}

/// The DER SubjectPublicKeyInfo of a certificate.
pub fn spki_of(cert: &CertificateDer<'_>) -> Result<Vec<u8>, CertificateError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|_| CertificateError::NotX509)?;
    Ok(parsed.tbs_certificate.subject_pki.raw.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn sample_cert_b64() -> String {
        let cert = rcgen::generate_simple_self_signed(vec!["VSSM".into()]).unwrap();
        base64::engine::general_purpose::STANDARD.encode(cert.cert.der())
    }

    fn sample_ca_b64() -> String {
        let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        base64::engine::general_purpose::STANDARD.encode(params.self_signed(&key).unwrap().der())
    }

    fn sample(extra: &str) -> String {
        let cert = sample_cert_b64();
        let ca = sample_ca_b64();
        let pw = PasswordHash::create(b"pw", 4).unwrap();
        format!(r#"{{"rpcCertificate":"{cert}","clientTrustStore":["{ca}"],"rootPassword":"{pw}"{extra}}}"#)
    }

    #[test]
    fn valid_config_with_defaults() {
        let c = Config::parse(sample("").as_bytes(), "t.json").unwrap();
        assert_eq!(c.ports, Ports::default());
        assert_eq!(c.bind_address, IpAddr::from([0, 0, 0, 0]));
        assert!(!c.rpc_public_key_spki.is_empty());
    }

    #[test]
    fn optional_fields_are_read() {
        let c = Config::parse(sample(r#","bindAddress":"127.0.0.7","apiPort":9080"#).as_bytes(), "t").unwrap();
        assert_eq!(c.bind_address.to_string(), "127.0.0.7");
        assert_eq!(c.ports.api, 9080);
    }

    #[test]
    fn cluster_section_is_validated() {
        let c = Config::parse(sample(r#","cluster":{"peers":["127.0.0.2"],"syncIntervalSeconds":2}"#).as_bytes(), "t")
            .unwrap();
        let cluster = c.cluster.unwrap();
        assert_eq!(cluster.discovery, DiscoveryConfig::Static(vec!["127.0.0.2".parse().unwrap()]));
        assert_eq!(cluster.attestation, Some(AttestationMode::Basic));
        for (extra, field) in [
            (r#","cluster":{"discovery":"dns"}"#, "cluster.discovery"),
            (r#","cluster":{"peers":["x"]}"#, "cluster.peers[0]"),
            (r#","cluster":{"discovery":"aws","attestation":"weak"}"#, "cluster.attestation"),
            (r#","cluster":{"discovery":"aws","imdsEndpoint":"ftp://x"}"#, "cluster.imdsEndpoint"),
            (r#","cluster":{"discovery":"aws","trustedImageIds":["x"]}"#, "cluster.trustedImageIds[0]"),
            (r#","cluster":{"discovery":"aws","bogus":1}"#, "bogus"),
            (r#","cluster":{"discovery":"aws","acceptedConfigDigests":["abc"]}"#, "cluster.acceptedConfigDigests[0]"),
        ] {
            let err = Config::parse(sample(extra).as_bytes(), "t").unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn errors_name_file_and_field() {
        let cases = [
            (sample(r#","rootPasswrd":"x""#), "rootPasswrd"),
            (sample(r#","bindAddress":"nowhere""#), "bindAddress"),
            (sample(r#","healthPort":8080"#), "healthPort"),
            (sample(r#","apiPort":"not-a-port""#), "apiPort"),
            (sample(r#","apiPort":70000"#), "apiPort"),
            (sample("").replacen("\"rootPassword\":\"$s0$", "\"rootPassword\":\"$s9$", 1), "rootPassword"),
            (r#"{"clientTrustStore":[],"rootPassword":"x"}"#.to_string(), "rpcCertificate"),
            (sample("").replacen("clientTrustStore\":[\"", "clientTrustStore\":[\"AAAA", 1), "clientTrustStore[0]"),
            (
                sample("").replacen(
                    "clientTrustStore\":[\"",
                    &format!("clientTrustStore\":[\"{}\",\"", sample_cert_b64()),
                    1,
                ),
                "not a CA",
            ),
        ];
        for (text, field) in cases {
            let err = Config::parse(text.as_bytes(), "my.json").unwrap_err().to_string();
            assert!(err.contains("my.json") && err.contains(field), "{field}: {err}");
        }
    }
}
