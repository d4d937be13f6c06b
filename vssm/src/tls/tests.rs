//! Tests with real TLS handshakes (tokio duplex pipes + tokio-rustls), using
//! certificates made with the old VSSM README recipe (openssl CLI) and rcgen.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    SignatureAlgorithm, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;

// ---------------------------------------------------------------- fixtures

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "vssm-tls-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("/usr/bin/openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The old VSSM README recipe, plus variants that must be refused.
struct OpensslPki {
    ca: CertificateDer<'static>,
    client_cert: CertificateDer<'static>,
    client_key_pem: Vec<u8>,
    client_text: String,
    rpc_cert: CertificateDer<'static>,
    rpc_key_pem: Vec<u8>,
    rpc_text: String,
    sha1_cert: CertificateDer<'static>,
    sha1_text: String,
    other_ca_client_cert: CertificateDer<'static>,
    forged_cert: CertificateDer<'static>,
    pss_cert: CertificateDer<'static>,
    pss_text: String,
    v1_ca: CertificateDer<'static>,
    v1_ca_client_cert: CertificateDer<'static>,
}

fn openssl_pki() -> &'static OpensslPki {
    static PKI: OnceLock<OpensslPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let tmp = TempDir::new("openssl");
        let d = tmp.0.as_path();
        let sign = |ca: &str, cakey: &str, out: &str, extra: &[&str]| {
            let mut args = vec![
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                ca,
                "-CAkey",
                cakey,
                "-CAcreateserial",
                "-days",
                "30",
                "-out",
                out,
            ];
            args.extend_from_slice(extra);
            openssl(d, &args);
        };
        // README recipe.
        openssl(d, &["genrsa", "-out", "ca.key", "2048"]);
        openssl(
            d,
            &["req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=Test CA", "-days", "30", "-out", "ca.crt"],
        );
        openssl(d, &["genrsa", "-out", "client.key", "2048"]);
        openssl(d, &["req", "-new", "-key", "client.key", "-subj", "/O=Example/CN=alice", "-out", "client.csr"]);
        sign("ca.crt", "ca.key", "client.crt", &[]);
        openssl(
            d,
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rpc.key", "-out", "rpc.crt", "-subj",
                "/CN=VSSM", "-days", "30",
            ],
        );
        // Variants.
        sign("ca.crt", "ca.key", "client-sha1.crt", &["-sha1"]);
        sign(
            "ca.crt",
            "ca.key",
            "client-pss.crt",
            &["-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"],
        );
        openssl(d, &["genrsa", "-out", "other.key", "2048"]);
        openssl(
            d,
            &["req", "-x509", "-new", "-key", "other.key", "-subj", "/CN=Other CA", "-days", "30", "-out", "other.crt"],
        );
        sign("other.crt", "other.key", "client-other.crt", &[]);
        // Same subject as the real CA, different key.
        openssl(
            d,
            &["req", "-x509", "-new", "-key", "other.key", "-subj", "/CN=Test CA", "-days", "30", "-out", "fake.crt"],
        );
        sign("fake.crt", "other.key", "client-forged.crt", &[]);
        // A v1 CA (self-signed without extensions).
        openssl(d, &["genrsa", "-out", "v1ca.key", "2048"]);
        openssl(d, &["req", "-new", "-key", "v1ca.key", "-subj", "/CN=V1 CA", "-out", "v1ca.csr"]);
        openssl(d, &["x509", "-req", "-in", "v1ca.csr", "-signkey", "v1ca.key", "-days", "30", "-out", "v1ca.crt"]);
        sign("v1ca.crt", "v1ca.key", "client-v1ca.crt", &[]);

        let read = |f: &str| std::fs::read(d.join(f)).unwrap();
        let cert = |f: &str| load_certificate(&read(f)).unwrap();
        let text = |f: &str| openssl(d, &["x509", "-in", f, "-noout", "-text"]);
        OpensslPki {
            ca: cert("ca.crt"),
            client_cert: cert("client.crt"),
            client_key_pem: read("client.key"),
            client_text: text("client.crt"),
            rpc_cert: cert("rpc.crt"),
            rpc_key_pem: read("rpc.key"),
            rpc_text: text("rpc.crt"),
            sha1_cert: cert("client-sha1.crt"),
            sha1_text: text("client-sha1.crt"),
            other_ca_client_cert: cert("client-other.crt"),
            forged_cert: cert("client-forged.crt"),
            pss_cert: cert("client-pss.crt"),
            pss_text: text("client-pss.crt"),
            v1_ca: cert("v1ca.crt"),
            v1_ca_client_cert: cert("client-v1ca.crt"),
        }
    })
}

impl OpensslPki {
    fn client_key(&self) -> PrivateKeyDer<'static> {
        load_private_key(&self.client_key_pem).unwrap().clone_key()
    }
    fn rpc_key(&self) -> PrivateKeyDer<'static> {
        load_private_key(&self.rpc_key_pem).unwrap().clone_key()
    }
    /// The 8080 server of a bootstrapped node trusting `cas`.
    fn api_server(&self, cas: &[CertificateDer<'static>]) -> Arc<ServerConfig> {
        let verifier: Arc<dyn ClientCertVerifier> = ClientCaVerifier::new(cas).unwrap();
        server_config(vec![self.rpc_cert.clone()], self.rpc_key(), Some(verifier)).unwrap()
    }
    /// Handshake with the 8080 server trusting the README CA, the client presenting
    /// `leaf` with the README client key.
    async fn api_handshake(&self, leaf: &CertificateDer<'static>, ver: Ver) -> Outcome {
        let client = client_config(&self.rpc_cert, Some((leaf.clone(), self.client_key())), ver);
        handshake(self.api_server(std::slice::from_ref(&self.ca)), client).await
    }
}

/// rcgen CA with the given key algorithm and validity.
fn rcgen_ca(alg: &'static SignatureAlgorithm, cn: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let cert = p.self_signed(&key).unwrap();
    (cert, key)
}

/// rcgen leaf signed by `ca`, customised by `f`.
fn rcgen_leaf(
    ca: &(rcgen::Certificate, KeyPair),
    alg: &'static SignatureAlgorithm,
    f: impl FnOnce(&mut CertificateParams),
) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, "rcgen client");
    f(&mut p);
    let cert = p.signed_by(&key, &ca.0, &ca.1).unwrap();
    (cert.der().clone(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
}

// ---------------------------------------------------------------- handshakes

#[derive(Clone, Copy)]
enum Ver {
    Any,
    Tls12,
    Tls13,
}

fn client_config(
    pinned: &CertificateDer<'static>,
    identity: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    ver: Ver,
) -> Arc<ClientConfig> {
    let identity = identity.map(|(c, k)| (vec![c], k));
    let versions: &[&'static rustls::SupportedProtocolVersion] = match ver {
        Ver::Any => return pinned_client_config(pinned.clone(), identity).unwrap(),
        Ver::Tls12 => &[&rustls::version::TLS12],
        Ver::Tls13 => &[&rustls::version::TLS13],
    };
    super::config::pinned_client_config_with_versions(pinned.clone(), identity, versions).unwrap()
}

struct Outcome {
    /// Server side: the peer subject and ALPN protocol, or the error.
    server: Result<(String, Option<Vec<u8>>), String>,
    /// Client side: the echoed application data, or the error.
    client: Result<(), String>,
}

impl Outcome {
    fn assert_ok(&self) -> &str {
        match (&self.server, &self.client) {
            (Ok((subject, _)), Ok(())) => subject,
            _ => panic!("handshake failed: server={:?} client={:?}", self.server, self.client),
        }
    }
    /// Asserts that the server refused; returns the server's error message.
    fn assert_refused(&self) -> &str {
        match (&self.server, &self.client) {
            (Err(e), Err(_)) => e,
            _ => panic!("handshake unexpectedly accepted: server={:?} client={:?}", self.server, self.client),
        }
    }
}

async fn handshake(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> Outcome {
    let (c_io, s_io) = tokio::io::duplex(64 * 1024);
    let server_side = async move {
        let mut tls = TlsAcceptor::from(server).accept(s_io).await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        assert_eq!(&buf, b"hello");
        tls.write_all(b"world").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let (_, conn) = tls.get_ref();
        let subject = peer_subject(conn.peer_certificates());
        let alpn = conn.alpn_protocol().map(|p| p.to_vec());
        tls.shutdown().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((subject, alpn))
    };
    let client_side = async move {
        let name = ServerName::try_from("VSSM").unwrap();
        let mut tls = TlsConnector::from(client).connect(name, c_io).await.map_err(|e| e.to_string())?;
        tls.write_all(b"hello").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        assert_eq!(&buf, b"world");
        Ok::<_, String>(())
    };
    let (server, client) =
        tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(server_side, client_side) })
            .await
            .expect("handshake timed out");
    Outcome { server, client }
}

/// Runs a handshake the server must refuse; returns the server's error message.
async fn refused(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> String {
    handshake(server, client).await.assert_refused().to_string()
}

// ---------------------------------------------------------------- README recipe

#[test]
fn readme_recipe_produces_v1_client_and_sanless_rpc_cert() {
    let pki = openssl_pki();
    assert!(pki.client_text.contains("Version: 1 (0x0)"), "{}", pki.client_text);
    assert!(!pki.client_text.contains("X509v3"), "{}", pki.client_text);
    assert!(!pki.rpc_text.contains("Subject Alternative Name"), "{}", pki.rpc_text);
    assert!(pki.sha1_text.contains("sha1WithRSAEncryption"), "{}", pki.sha1_text);
    assert!(pki.pss_text.contains("rsassaPss"), "{}", pki.pss_text);
}

#[tokio::test]
async fn readme_v1_client_cert_accepted_tls13_and_tls12() {
    let pki = openssl_pki();
    for ver in [Ver::Any, Ver::Tls12, Ver::Tls13] {
        let out = pki.api_handshake(&pki.client_cert, ver).await;
        assert_eq!(out.assert_ok(), "CN=alice, O=Example");
    }
}

#[tokio::test]
async fn second_trust_store_entry_and_v1_ca_work() {
    let pki = openssl_pki();
    let cas = [pki.ca.clone(), pki.v1_ca.clone()];
    let client = client_config(&pki.rpc_cert, Some((pki.v1_ca_client_cert.clone(), pki.client_key())), Ver::Any);
    handshake(pki.api_server(&cas), client).await.assert_ok();
}

#[tokio::test]
async fn no_client_cert_refused() {
    let pki = openssl_pki();
    for ver in [Ver::Tls12, Ver::Tls13] {
        let client = client_config(&pki.rpc_cert, None, ver);
        let err = refused(pki.api_server(std::slice::from_ref(&pki.ca)), client).await;
        assert!(err.contains("no certificate"), "{err}");
    }
}

#[tokio::test]
async fn cert_from_other_ca_refused() {
    let pki = openssl_pki();
    let out = pki.api_handshake(&pki.other_ca_client_cert, Ver::Any).await;
    let err = out.assert_refused();
    assert!(err.contains("UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn sha1_signed_leaf_refused() {
    let pki = openssl_pki();
    let out = pki.api_handshake(&pki.sha1_cert, Ver::Any).await;
    let err = out.assert_refused();
    assert!(err.contains("sha1WithRSAEncryption") && err.contains("not allowed"), "{err}");
}

#[tokio::test]
async fn issuer_name_match_with_foreign_signature_refused() {
    let pki = openssl_pki();
    let out = pki.api_handshake(&pki.forged_cert, Ver::Any).await;
    let err = out.assert_refused();
    assert!(err.contains("BadSignature"), "{err}");
}

#[tokio::test]
async fn rsa_pss_signed_leaf_accepted() {
    let pki = openssl_pki();
    pki.api_handshake(&pki.pss_cert, Ver::Any).await.assert_ok();
}

#[tokio::test]
async fn intermediates_sent_by_client_are_ignored() {
    // Client sends [leaf signed by Other CA, Test CA]: must still be refused.
    let pki = openssl_pki();
    let chain = vec![pki.other_ca_client_cert.clone(), pki.ca.clone()];
    let client = pinned_client_config(pki.rpc_cert.clone(), Some((chain, pki.client_key()))).unwrap();
    handshake(pki.api_server(std::slice::from_ref(&pki.ca)), client).await.assert_refused();
}

// ---------------------------------------------------------------- rcgen cases

#[tokio::test]
async fn expired_and_not_yet_valid_leaf_refused() {
    let pki = openssl_pki();
    let ca = rcgen_ca(&PKCS_ECDSA_P256_SHA256, "rcgen CA");
    let cases: [(i32, i32, &str); 2] = [(2020, 2021, "Expired"), (2090, 2091, "NotValidYet")];
    for (from, to, want) in cases {
        let (cert, key) = rcgen_leaf(&ca, &PKCS_ECDSA_P256_SHA256, |p| {
            p.not_before = rcgen::date_time_ymd(from, 1, 1);
            p.not_after = rcgen::date_time_ymd(to, 1, 1);
        });
        let client = client_config(&pki.rpc_cert, Some((cert, key)), Ver::Any);
        let err = refused(pki.api_server(&[ca.0.der().clone()]), client).await;
        assert!(err.contains(want), "{want}: {err}");
    }
}

#[tokio::test]
async fn expired_ca_refused() {
    let pki = openssl_pki();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, "old CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.not_before = rcgen::date_time_ymd(2019, 1, 1);
    p.not_after = rcgen::date_time_ymd(2020, 1, 1);
    let ca = (p.self_signed(&key).unwrap(), key);
    let (cert, key) = rcgen_leaf(&ca, &PKCS_ECDSA_P256_SHA256, |_| {});
    let client = client_config(&pki.rpc_cert, Some((cert, key)), Ver::Any);
    let err = refused(pki.api_server(&[ca.0.der().clone()]), client).await;
    assert!(err.contains("Expired"), "{err}");
}

#[tokio::test]
async fn ecdsa_and_ed25519_client_keys_accepted() {
    let pki = openssl_pki();
    for ca_alg in [&PKCS_ECDSA_P256_SHA256, &PKCS_ECDSA_P384_SHA384, &PKCS_ED25519] {
        let ca = rcgen_ca(ca_alg, "rcgen CA");
        for leaf_alg in [&PKCS_ECDSA_P256_SHA256, &PKCS_ECDSA_P384_SHA384, &PKCS_ED25519] {
            for ver in [Ver::Tls12, Ver::Tls13] {
                let (cert, key) = rcgen_leaf(&ca, leaf_alg, |p| {
                    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                });
                let client = client_config(&pki.rpc_cert, Some((cert, key)), ver);
                let out = handshake(pki.api_server(&[ca.0.der().clone()]), client).await;
                assert_eq!(out.assert_ok(), "CN=rcgen client");
            }
        }
    }
}

#[tokio::test]
async fn wrong_key_usage_or_ca_leaf_refused() {
    let pki = openssl_pki();
    let ca = rcgen_ca(&PKCS_ECDSA_P256_SHA256, "rcgen CA");
    type Customise = fn(&mut CertificateParams);
    let cases: [(Customise, &str); 3] = [
        (|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth], "InvalidPurpose"),
        (
            |p| {
                // (rcgen only writes extensions if e.g. an EKU is present)
                p.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            },
            "InvalidPurpose",
        ),
        (|p| p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained), "CA certificate cannot be used"),
    ];
    for (customise, want) in cases {
        let (cert, key) = rcgen_leaf(&ca, &PKCS_ECDSA_P256_SHA256, customise);
        let client = client_config(&pki.rpc_cert, Some((cert, key)), Ver::Any);
        let err = refused(pki.api_server(&[ca.0.der().clone()]), client).await;
        assert!(err.contains(want), "{want}: {err}");
    }
}

#[test]
fn verifier_construction_errors_name_the_entry() {
    let pki = openssl_pki();
    let garbage = CertificateDer::from(b"not a cert".to_vec());
    let err = ClientCaVerifier::new(&[pki.ca.clone(), garbage]).unwrap_err();
    assert_eq!(err.to_string(), "clientTrustStore[1]: not a valid X.509 certificate");

    let ca = rcgen_ca(&PKCS_ECDSA_P256_SHA256, "rcgen CA");
    let (leaf, _) = rcgen_leaf(&ca, &PKCS_ECDSA_P256_SHA256, |p| p.is_ca = IsCa::ExplicitNoCa);
    let err = ClientCaVerifier::new(&[leaf]).unwrap_err().to_string();
    assert!(err.starts_with("clientTrustStore[0]: not a CA certificate"), "{err}");

    assert!(ClientCaVerifier::new(&[]).is_err());

    let v = ClientCaVerifier::new(&[pki.ca.clone(), pki.v1_ca.clone(), pki.ca.clone()]).unwrap();
    let hints: Vec<String> = v
        .root_hint_subjects()
        .iter()
        .map(|dn| {
            let (_, name) =
                <x509_parser::x509::X509Name as x509_parser::prelude::FromDer<_>>::from_der(dn.as_ref()).unwrap();
            name.to_string()
        })
        .collect();
    assert_eq!(hints, ["CN=Test CA", "CN=V1 CA"]);
}

#[test]
fn verify_client_cert_checks_time_against_now() {
    let pki = openssl_pki();
    let v = ClientCaVerifier::new(std::slice::from_ref(&pki.ca)).unwrap();
    let now = UnixTime::now();
    assert!(v.verify_client_cert(&pki.client_cert, &[], now).is_ok());
    let later = UnixTime::since_unix_epoch(Duration::from_secs(now.as_secs() + 40 * 86400));
    assert!(v.verify_client_cert(&pki.client_cert, &[], later).is_err());
}

// ---------------------------------------------------------------- pinning

#[tokio::test]
async fn pinned_client_config_accepts_only_the_pinned_cert() {
    let pki = openssl_pki();
    let server = server_config(vec![pki.rpc_cert.clone()], pki.rpc_key(), None).unwrap();
    // The RPC certificate has CN=VSSM and no SAN: accepted by pinning.
    handshake(server.clone(), client_config(&pki.rpc_cert, None, Ver::Any)).await.assert_ok();
    handshake(server.clone(), client_config(&pki.rpc_cert, None, Ver::Tls12)).await.assert_ok();
    // Pinned to another certificate: the client refuses.
    let dev = dev_pki();
    let out = handshake(server, client_config(&dev.rpc_cert_der, None, Ver::Any)).await;
    let err = out.client.unwrap_err();
    assert!(err.contains("not the pinned RPC certificate"), "{err}");
}

#[tokio::test]
async fn pinned_client_cert_on_sync_port() {
    let pki = openssl_pki();
    let verifier: Arc<dyn ClientCertVerifier> = PinnedClientCert::new(pki.rpc_cert.clone());
    let server = server_config(vec![pki.rpc_cert.clone()], pki.rpc_key(), Some(verifier)).unwrap();
    for ver in [Ver::Tls12, Ver::Tls13] {
        let ok = client_config(&pki.rpc_cert, Some((pki.rpc_cert.clone(), pki.rpc_key())), ver);
        assert_eq!(handshake(server.clone(), ok).await.assert_ok(), "CN=VSSM");
        let other = client_config(&pki.rpc_cert, Some((pki.client_cert.clone(), pki.client_key())), ver);
        handshake(server.clone(), other).await.assert_refused();
        handshake(server.clone(), client_config(&pki.rpc_cert, None, ver)).await.assert_refused();
    }
}

// ---------------------------------------------------------------- generated identities

#[tokio::test]
async fn dev_pki_end_to_end_with_alpn() {
    install_crypto_provider();
    install_crypto_provider();
    let dev = dev_pki();
    let rpc_cert = load_certificate(dev.rpc_cert_pem.as_bytes()).unwrap();
    assert_eq!(rpc_cert, dev.rpc_cert_der);
    let rpc_key = load_private_key(dev.rpc_key_pem.as_bytes()).unwrap();
    let ca = load_certificate(dev.client_ca_cert_pem.as_bytes()).unwrap();
    let verifier: Arc<dyn ClientCertVerifier> = ClientCaVerifier::new(&[ca]).unwrap();
    let server = server_config(vec![rpc_cert], rpc_key.clone_key(), Some(verifier)).unwrap();
    let client_cert = load_certificate(dev.client_cert_pem.as_bytes()).unwrap();
    let client_key = load_private_key(dev.client_key_pem.as_bytes()).unwrap();
    let mut client =
        pinned_client_config(dev.rpc_cert_der.clone(), Some((vec![client_cert], client_key.clone_key()))).unwrap();
    Arc::make_mut(&mut client).alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let out = handshake(server, client).await;
    assert_eq!(out.assert_ok(), "CN=vssm-dev-client");
    assert_eq!(out.server.as_ref().unwrap().1.as_deref(), Some(&b"h2"[..]));
    // DER key field matches the PEM one.
    assert_eq!(dev.rpc_key(), *load_private_key(&dev.rpc_key_pkcs8_der).unwrap());
    assert!(format!("{dev:?}").starts_with("DevPki"));
}

#[tokio::test]
async fn bootstrap_identity_serves_without_client_auth() {
    let (chain, key) = bootstrap_identity().unwrap();
    let parsed = super::cert::parse_certificate(chain[0].as_ref()).unwrap();
    assert_eq!(parsed.tbs_certificate.subject.to_string(), "CN=VSSM bootstrap");
    let server = server_config(chain.clone(), key, None).unwrap();
    handshake(server, client_config(&chain[0], None, Ver::Any)).await.assert_ok();
}

// ---------------------------------------------------------------- loading and subjects

#[test]
fn load_certificate_and_key_formats() {
    let pki = openssl_pki();
    let der = pki.ca.as_ref().to_vec();
    assert_eq!(load_certificate(&der).unwrap(), pki.ca);
    let two = format!("{}{}", der_to_pem(&der), der_to_pem(pki.rpc_cert.as_ref()));
    assert_eq!(load_certificates(two.as_bytes()).unwrap().len(), 2);
    let err = load_certificate(two.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("exactly one"), "{err}");
    let err = load_certificate(b"garbage").unwrap_err().with_context("rpcCertificate").to_string();
    assert_eq!(err, "rpcCertificate: not a valid X.509 certificate");
    assert!(load_certificate(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err());

    let dev = dev_pki();
    assert!(matches!(*load_private_key(&dev.client_key_pkcs8_der).unwrap(), PrivateKeyDer::Pkcs8(_)));
    assert!(load_private_key(b"garbage").is_err());
    assert!(load_private_key(pki.rpc_text.as_bytes()).is_err());
    let err = load_private_key(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("encrypted"), "{err}");
    // Key/certificate mismatch is reported by server_config.
    let err = server_config(vec![pki.rpc_cert.clone()], pki.client_key(), None).unwrap_err();
    assert!(err.to_string().starts_with("TLS server configuration:"), "{err}");
}

fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

#[test]
fn peer_subject_formatting() {
    assert_eq!(peer_subject(None), "-");
    assert_eq!(peer_subject(Some(&[])), "-");
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CountryName, "DE");
    p.distinguished_name.push(DnType::OrganizationName, "Example, Inc.");
    p.distinguished_name.push(DnType::CommonName, "eve\nCN=admin");
    let cert = p.self_signed(&key).unwrap();
    assert_eq!(peer_subject(Some(&[cert.der().clone()])), "CN=eve\\0ACN\\=admin, O=Example\\, Inc., C=DE");
    assert_eq!(peer_subject(Some(&[CertificateDer::from(vec![1, 2, 3])])), "<unparsable certificate>");
}

// ---------------------------------------------------------------- handshake signatures

/// Identity pairing `cert` with an unrelated private key (bypassing the key check).
fn mismatched_identity(
    cert: &CertificateDer<'static>,
    key: &PrivateKeyDer<'static>,
) -> Arc<super::config::FixedIdentity> {
    let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(key).unwrap();
    Arc::new(super::config::FixedIdentity(Arc::new(rustls::sign::CertifiedKey::new(vec![cert.clone()], signer))))
}

#[tokio::test]
async fn handshake_signature_by_wrong_key_refused() {
    let pki = openssl_pki();
    let dev = dev_pki();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // Client presents the valid v1 client certificate but signs with another RSA key
    // (the RPC key) or an ECDSA key.
    for key in [pki.rpc_key(), dev.client_key()] {
        for ver in [&rustls::version::TLS12, &rustls::version::TLS13] {
            let client = ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[ver])
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(PinnedServerCert::new(pki.rpc_cert.clone()))
                .with_client_cert_resolver(mismatched_identity(&pki.client_cert, &key));
            let err = refused(pki.api_server(std::slice::from_ref(&pki.ca)), Arc::new(client)).await;
            assert!(err.contains("BadSignature") || err.contains("does not match"), "{err}");
        }
    }
    // Server presents the pinned RPC certificate but signs with another key.
    for ver in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[ver])
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(mismatched_identity(&pki.rpc_cert, &pki.client_key()));
        let out = handshake(Arc::new(server), client_config(&pki.rpc_cert, None, Ver::Any)).await;
        let err = out.client.unwrap_err();
        assert!(err.contains("BadSignature"), "{err}");
    }
}

/// A dev PKI around one RSA-2048 RPC key made once per test run (RSA key
/// generation is slow; the PKI around it is fresh each time).
fn dev_pki() -> DevPki {
    use rsa::pkcs8::EncodePrivateKey;
    static RPC_KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let der = RPC_KEY.get_or_init(|| {
        let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        key.to_pkcs8_der().unwrap().as_bytes().to_vec()
    });
    generate_dev_pki(der).unwrap()
}
