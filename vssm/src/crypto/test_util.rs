//! Shared test helpers: hex, the `openssl` CLI as an independent
//! implementation, temp dirs and cached (slow to make) keys.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::keys::{AsymmetricKey, KeySpec};

pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs `openssl` (must be installed: these tests are the cross-check).
pub fn openssl(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let out = openssl_status(args, stdin);
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

pub fn openssl_status(args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl CLI is required for the cross-check tests");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "vssm-crypto-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn write(&self, name: &str, data: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, data).unwrap();
        p.to_str().unwrap().to_string()
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// PKCS#8 DER from `openssl genpkey` (its DER output is PKCS#1 for RSA,
/// hence the `pkcs8 -topk8` step).
pub fn openssl_genpkey(args: &[&str]) -> Vec<u8> {
    let mut a = vec!["genpkey"];
    a.extend_from_slice(args);
    let pem = openssl(&a, b"");
    openssl(&["pkcs8", "-topk8", "-nocrypt", "-outform", "DER"], &pem)
}

/// The one RSA key our own generator makes in tests (slow in debug builds).
pub fn rsa2048() -> &'static AsymmetricKey {
    static K: OnceLock<AsymmetricKey> = OnceLock::new();
    K.get_or_init(|| AsymmetricKey::generate(KeySpec::Rsa, 2048).unwrap())
}

/// RSA keys of other sizes, made by openssl (fast) and imported.
pub fn openssl_rsa(bits: u32) -> &'static AsymmetricKey {
    static K3072: OnceLock<AsymmetricKey> = OnceLock::new();
    static K4096: OnceLock<AsymmetricKey> = OnceLock::new();
    static K1024: OnceLock<AsymmetricKey> = OnceLock::new();
    let cell = match bits {
        1024 => &K1024,
        3072 => &K3072,
        4096 => &K4096,
        _ => panic!("no cached key of {bits} bits"),
    };
    cell.get_or_init(|| {
        let opt = format!("rsa_keygen_bits:{bits}");
        AsymmetricKey::from_pkcs8_der(&openssl_genpkey(&["-algorithm", "RSA", "-pkeyopt", &opt])).unwrap()
    })
}

pub fn ec(bits: u64) -> &'static AsymmetricKey {
    static P256: OnceLock<AsymmetricKey> = OnceLock::new();
    static P384: OnceLock<AsymmetricKey> = OnceLock::new();
    static P521: OnceLock<AsymmetricKey> = OnceLock::new();
    let cell = match bits {
        256 => &P256,
        384 => &P384,
        521 => &P521,
        _ => panic!("no curve {bits}"),
    };
    cell.get_or_init(|| AsymmetricKey::generate(KeySpec::Ec, bits).unwrap())
}

pub fn ed25519() -> &'static AsymmetricKey {
    static K: OnceLock<AsymmetricKey> = OnceLock::new();
    K.get_or_init(|| AsymmetricKey::generate(KeySpec::Ed25519, 0).unwrap())
}
