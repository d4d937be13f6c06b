//! Test support: a real `vssm dev` node, the module's configuration, and
//! the module loaded through `cryptoki` (and raw, through its function list).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The module is one global per process: tests take turns.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// target/debug (or the profile folder the tests run from).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The cdylib under test.
pub fn module_path() -> PathBuf {
    if let Some(path) = std::env::var_os("VSSM_PKCS11_MODULE") {
        return PathBuf::from(path);
    }
    // `cargo test` builds the rlib, not the cdylib: refuse a stale one.
    let path = profile_dir().join("libvssm_pkcs11.so");
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: run cargo build -p vssm-pkcs11 first", path.display()));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).unwrap() {
        let modified = entry.unwrap().metadata().unwrap().modified().unwrap();
        assert!(
            modified <= built,
            "{} is older than the sources: run cargo build -p vssm-pkcs11 first",
            path.display()
        );
    }
    path
}

fn vssm_bin() -> PathBuf {
    std::env::var_os("VSSM_BIN").map(PathBuf::from).unwrap_or_else(|| profile_dir().join("vssm"))
}

/// A running dev node.
pub struct Node {
    pub dir: PathBuf,
    pub ip: String,
    pub admin_password: String,
    child: Mutex<Option<Child>>,
}

impl Node {
    /// Starts `vssm dev` on a loopback address of its own (from a thread
    /// that lives as long as the test process, so that PDEATHSIG fires only
    /// when the tests end).
    pub fn start(tag: u8) -> Node {
        let ip = format!(
            "127.{}.{}.{}",
            100 + tag,
            (std::process::id() % 200) as u8 + 1,
            (std::process::id() / 200 % 250) as u8 + 1
        );
        let dir = std::env::temp_dir().join(format!("vssm-p11-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (tx, rx) = std::sync::mpsc::channel();
        let (d, i) = (dir.clone(), ip.clone());
        std::thread::spawn(move || {
            let mut command = Command::new(vssm_bin());
            command.args(["dev", "--dir"]).arg(&d).args(["--bind", &i]).stdout(Stdio::null()).stderr(Stdio::null());
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            tx.send(command.spawn().expect("start vssm dev (cargo build -p vssm, or set VSSM_BIN)")).unwrap();
            loop {
                std::thread::park();
            }
        });
        let child = rx.recv().unwrap();
        let mut node = Node { dir, ip, admin_password: String::new(), child: Mutex::new(Some(child)) };
        node.wait_ready();
        node.admin_password = std::fs::read_to_string(node.dir.join("admin-password")).unwrap().trim().to_string();
        node
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect((self.ip.as_str(), 8081)) {
                let _ = s.write_all(b"GET /REST/v1/healthcheck HTTP/1.0\r\n\r\n");
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.contains(" 200 ") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("vssm dev did not become ready on {}", self.ip);
    }

    /// Stops the node.
    pub fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `host:port` of the API.
    pub fn api(&self) -> String {
        format!("{}:8080", self.ip)
    }

    /// The module's configuration JSON for this node (nodes overridable).
    pub fn config(&self, nodes: &[String], key: &Path, extra: &str) -> String {
        let d = self.dir.display();
        let nodes = serde_json::to_string(nodes).unwrap();
        format!(
            r#"{{"nodes": {nodes}, "serverCertificate": "{d}/rpc.crt", "clientCertificate": "{d}/client.crt",
               "clientKey": "{}", "tokenLabel": "VSSM test", "adminPasswordFile": "{d}/admin-password",
               "timeoutSeconds": 3{extra}}}"#,
            key.display()
        )
    }

    /// Writes a config file and points VSSM_PKCS11_CONFIG at it.
    pub fn use_config(&self, name: &str, json: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, json).unwrap();
        std::env::set_var("VSSM_PKCS11_CONFIG", &path);
        path
    }

    /// The client key encrypted with `passphrase` (PKCS#8, PBES2).
    pub fn encrypted_key(&self, passphrase: &str) -> PathBuf {
        use pkcs8::der::pem::LineEnding;
        let pem = std::fs::read_to_string(self.dir.join("client.key")).unwrap();
        let (_, der) = pkcs8::SecretDocument::from_pem(&pem).unwrap();
        let info = pkcs8::PrivateKeyInfo::try_from(der.as_bytes()).unwrap();
        let mut rng = rand_core::OsRng;
        let encrypted = info.encrypt(&mut rng, passphrase.as_bytes()).unwrap();
        let path = self.dir.join("client-encrypted.key");
        std::fs::write(&path, encrypted.to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF).unwrap().as_bytes()).unwrap();
        path
    }

    /// A direct API call (for setup the module does not do, e.g. injectkey).
    pub fn call(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value, vssm_pkcs11::error::Error> {
        let config =
            vssm_pkcs11::config::Config::parse(&self.config(&[self.api()], &self.dir.join("client.key"), "")).unwrap();
        let identity = vssm_pkcs11::identity::Identity::load(&config).unwrap();
        let client = vssm_pkcs11::client::Client::new(identity.tls(b"").unwrap(), &config.nodes, config.timeout());
        client.post(path, &body, false)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The node shared by the tests of one binary.
pub fn node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| Node::start(0))
}

/// The raw function list of the module (the same loaded instance cryptoki uses).
pub fn raw() -> &'static cryptoki_sys::CK_FUNCTION_LIST {
    static LIST: OnceLock<usize> = OnceLock::new();
    let addr = *LIST.get_or_init(|| {
        // SAFETY: loading our own module; its initializers do nothing.
        let lib = Box::leak(Box::new(unsafe { libloading::Library::new(module_path()) }.unwrap()));
        // SAFETY: the symbol has this type.
        let get: libloading::Symbol<unsafe extern "C" fn(*mut *mut cryptoki_sys::CK_FUNCTION_LIST) -> u64> =
            unsafe { lib.get(b"C_GetFunctionList") }.unwrap();
        let mut list = std::ptr::null_mut();
        // SAFETY: a valid out pointer.
        assert_eq!(unsafe { get(&mut list) }, 0);
        list as usize
    });
    // SAFETY: the list is static in the loaded (leaked) library.
    unsafe { &*(addr as *const cryptoki_sys::CK_FUNCTION_LIST) }
}
