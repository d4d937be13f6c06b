//! The digest of a node's security-relevant configuration. A joining node
//! attests it in its join request and the peer (or bootstrapper) hands out
//! the RPC key only when it equals its own digest or one of its
//! `acceptedConfigDigests`: an instance of the trusted image launched with
//! other user-data (its own client CA, its own admin password, another
//! attestation policy) is refused the key.
//!
//! The digest is only as honest as the code that computes it: it means
//! something because the joiner runs the trusted image (checked by its
//! signed identity document), whose code reports its real configuration.
//!
//! Covered, in a canonical form (sets sorted and without duplicates):
//! `rpcCertificate`, `clientTrustStore`, `rootPassword` (the parsed scrypt
//! parameters, salt and hash), `healthDetails` (what the unauthenticated
//! health port shows), `authorization.passwordAdmin` (when false) and the
//! cluster's policy: `discovery` with the static `peers`, `attestation`,
//! `trustedImageIds`, `attestationCaCertificates`, `awsEndpoints` and
//! `acceptedConfigDigests` itself. Not covered, because they are per node or do not decide who
//! gets keys: `bindAddress`, the ports, `imdsEndpoint` (each instance's
//! own metadata service: in the qemu harness and the tests it differs per
//! instance; a joiner's documents are checked against AWS's signatures
//! whatever its IMDS says), `syncIntervalSeconds` and `bootstrappers`.

use crate::config::{AttestationMode, ClusterConfig, Config, DiscoveryConfig};
use std::fmt;

/// Length of a config digest (SHA-256).
pub const CONFIG_DIGEST_LEN: usize = 32;

/// Names the encoding, so a future change of the covered fields cannot
/// collide with this one.
const DOMAIN: &[u8] = b"vssm config digest v1";

/// SHA-256 of a node's security-relevant configuration.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigDigest(pub [u8; CONFIG_DIGEST_LEN]);

impl ConfigDigest {
    /// The digest of `config` (see the module documentation for what it covers).
    pub fn of(config: &Config) -> ConfigDigest {
        let mut out = Canonical::default();
        out.bytes(DOMAIN);
        out.bytes(config.rpc_certificate.as_ref());
        out.set(config.client_trust_store.iter().map(|c| c.as_ref().to_vec()));
        out.bytes(&config.root_password.canonical_encoding());
        out.bytes(if config.health_details { b"health details" } else { b"health minimal" });
        // Only the non-default adds bytes: configurations without the
        // setting keep the digest that earlier versions compute.
        if !config.password_admin {
            out.bytes(b"password admin off");
        }
        if config.lifecycle != crate::config::LifecycleConfig::default() {
            out.bytes(b"lifecycle");
            out.bytes(&config.lifecycle.minimum_deletion_window_s.to_be_bytes());
            out.bytes(&config.lifecycle.minimum_rotation_period_s.to_be_bytes());
        }
        match &config.cluster {
            None => out.bytes(b"standalone"),
            Some(cluster) => out.cluster(cluster),
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &out.0);
        ConfigDigest(digest.as_ref().try_into().expect("SHA-256 is 32 bytes"))
    }

    /// Parses 64 hex digits (either case).
    pub fn parse_hex(text: &str) -> Option<ConfigDigest> {
        crate::wire::codec::decode_hex_array(text).map(ConfigDigest)
    }

    /// The digest from wire bytes; None unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<ConfigDigest> {
        bytes.try_into().ok().map(ConfigDigest)
    }
}

/// Lower-case hex, as `vssm config-digest` prints it and the config lists it.
impl fmt::Display for ConfigDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ConfigDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConfigDigest({self})")
    }
}

/// Which digests a join server accepts from joiners: its own and the
/// configured `acceptedConfigDigests`.
#[derive(Debug, Clone)]
pub struct AcceptedConfigs {
    /// The server's own digest.
    pub own: ConfigDigest,
    /// Further digests accepted during a rollout.
    pub extra: Vec<ConfigDigest>,
}

impl AcceptedConfigs {
    /// What a server with `config` accepts.
    pub fn of(config: &Config) -> AcceptedConfigs {
        let extra = config.cluster.as_ref().map(|c| c.accepted_config_digests.clone()).unwrap_or_default();
        AcceptedConfigs { own: ConfigDigest::of(config), extra }
    }

    /// Whether a joiner with `digest` may receive the RPC key.
    pub fn accepts(&self, digest: &ConfigDigest) -> bool {
        *digest == self.own || self.extra.contains(digest)
    }
}

/// Length-prefixed fields, so that no two configurations encode alike.
#[derive(Default)]
struct Canonical(Vec<u8>);

impl Canonical {
    fn bytes(&mut self, field: &[u8]) {
        self.0.extend_from_slice(&(field.len() as u64).to_be_bytes());
        self.0.extend_from_slice(field);
    }

    /// A set: sorted, duplicates dropped, prefixed with its size.
    fn set(&mut self, items: impl Iterator<Item = Vec<u8>>) {
        let mut items: Vec<Vec<u8>> = items.collect();
        items.sort();
        items.dedup();
        self.0.extend_from_slice(&(items.len() as u64).to_be_bytes());
        for item in &items {
            self.bytes(item);
        }
    }

    fn optional(&mut self, value: Option<&str>) {
        match value {
            None => self.bytes(b"-"),
            Some(v) => self.bytes(format!("={v}").as_bytes()),
        }
    }

    fn cluster(&mut self, cluster: &ClusterConfig) {
        self.bytes(b"cluster");
        match &cluster.discovery {
            DiscoveryConfig::Aws => self.bytes(b"aws"),
            DiscoveryConfig::Static(peers) => {
                self.bytes(b"static");
                self.set(peers.iter().map(|ip| ip.to_string().into_bytes()));
            }
        }
        self.bytes(match cluster.attestation {
            None => b"none",
            Some(AttestationMode::Basic) => b"basic",
            Some(AttestationMode::Strong) => b"strong",
        });
        self.set(cluster.trusted_image_ids.iter().map(|i| i.as_bytes().to_vec()));
        self.set(cluster.attestation_ca_certificates.iter().cloned());
        let endpoints = &cluster.aws_endpoints;
        self.optional(endpoints.autoscaling.as_deref());
        self.optional(endpoints.ec2.as_deref());
        self.optional(endpoints.sts.as_deref());
        self.set(cluster.accepted_config_digests.iter().map(|d| d.0.to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::password::PasswordHash;
    use base64::Engine;

    fn b64(der: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(der)
    }

    fn ca() -> String {
        let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        b64(params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().der())
    }

    struct Parts {
        rpc: String,
        cas: [String; 2],
        password: String,
    }

    fn parts() -> Parts {
        let rpc = b64(rcgen::generate_simple_self_signed(vec!["VSSM".into()]).unwrap().cert.der());
        Parts { rpc, cas: [ca(), ca()], password: PasswordHash::create(b"pw", 4).unwrap() }
    }

    fn digest(p: &Parts, trust: &[&str], password: &str, extra: &str) -> ConfigDigest {
        let trust = trust.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(",");
        let text = format!(
            r#"{{"rpcCertificate":"{}","clientTrustStore":[{trust}],"rootPassword":"{password}"{extra}}}"#,
            p.rpc
        );
        ConfigDigest::of(&Config::parse(text.as_bytes(), "t").unwrap())
    }

    #[test]
    fn local_settings_do_not_change_the_digest_but_security_settings_do() {
        let p = parts();
        let [a, b] = [p.cas[0].as_str(), p.cas[1].as_str()];
        let cluster = r#","cluster":{"discovery":"aws","trustedImageIds":["ami-1","ami-2"]}"#;
        let base = digest(&p, &[a, b], &p.password, cluster);
        // Order and duplicates of sets, ports, bind address, IMDS and sync interval do not matter.
        let local = r#","bindAddress":"127.0.0.9","apiPort":9000,"cluster":{"discovery":"aws","trustedImageIds":["ami-2","ami-1","ami-2"],"imdsEndpoint":"http://127.0.0.1:1","syncIntervalSeconds":3,"bootstrappers":["10.0.0.1"]}"#;
        assert_eq!(digest(&p, &[b, a, b], &p.password, local), base);
        // The default of passwordAdmin, stated or not, keeps earlier versions' digest.
        let stated_default = format!(r#","authorization":{{"passwordAdmin":true}}{cluster}"#);
        assert_eq!(digest(&p, &[a, b], &p.password, &stated_default), base);

        let other_password = PasswordHash::create(b"pw", 4).unwrap(); // same password, other salt
        let accepted = format!(
            r#","cluster":{{"discovery":"aws","trustedImageIds":["ami-1","ami-2"],"acceptedConfigDigests":["{base}"]}}"#
        );
        let changed = [
            digest(&p, &[a], &p.password, cluster),
            digest(&p, &[a, b], &other_password, cluster),
            digest(&p, &[a, b], &p.password, ""),
            digest(&p, &[a, b], &p.password, r#","cluster":{"discovery":"aws","trustedImageIds":["ami-1"]}"#),
            digest(
                &p,
                &[a, b],
                &p.password,
                r#","cluster":{"discovery":"aws","attestation":"strong","trustedImageIds":["ami-1","ami-2"]}"#,
            ),
            digest(
                &p,
                &[a, b],
                &p.password,
                r#","cluster":{"discovery":"aws","trustedImageIds":["ami-1","ami-2"],"awsEndpoints":{"sts":"http://x/"}}"#,
            ),
            digest(
                &p,
                &[a, b],
                &p.password,
                &format!(
                    r#","cluster":{{"discovery":"aws","trustedImageIds":["ami-1","ami-2"],"attestationCaCertificates":["{a}"]}}"#
                ),
            ),
            digest(
                &p,
                &[a, b],
                &p.password,
                r#","cluster":{"peers":["10.0.0.1"],"trustedImageIds":["ami-1","ami-2"]}"#,
            ),
            digest(&p, &[a, b], &p.password, &accepted),
            digest(&p, &[a, b], &p.password, &format!(r#","healthDetails":true{cluster}"#)),
            digest(&p, &[a, b], &p.password, &format!(r#","authorization":{{"passwordAdmin":false}}{cluster}"#)),
        ];
        for (i, d) in changed.iter().enumerate() {
            assert_ne!(*d, base, "change {i} kept the digest");
        }
        let unique: std::collections::BTreeSet<_> = changed.iter().collect();
        assert_eq!(unique.len(), changed.len());
    }

    #[test]
    fn hex_round_trips_and_rejects_malformed_text() {
        let d = ConfigDigest([0xab; 32]);
        assert_eq!(d.to_string(), "ab".repeat(32));
        assert_eq!(ConfigDigest::parse_hex(&"AB".repeat(32)), Some(d));
        for bad in ["", "ab", &"zz".repeat(32), &"a".repeat(63), &"é".repeat(32)] {
            assert_eq!(ConfigDigest::parse_hex(bad), None, "{bad}");
        }
        assert_eq!(ConfigDigest::from_slice(&[1; 31]), None);
    }
}
