//! The `vssm` command: serve a node, run a dev node, hash a password, run
//! the bootstrapper, call a node's API.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use vssm::admin::password::{PasswordHash, DEFAULT_LOG_N};
use vssm::config::Config;
use vssm::node::Node;
use vssm::server::Servers;
use zeroize::Zeroizing;

const USAGE: &str = "usage:
  vssm [serve] [--config FILE] [--bind IP]   serve a node (config: ./config.json, else /etc/vssm/config.json)
  vssm dev [--dir DIR] [--bind IP]           a single bootstrapped node with generated certificates (default ./vssm-dev, 127.0.0.1)
  vssm hash-password [--log-n N]             print the scrypt hash for rootPassword (password from a prompt or stdin)
  vssm bootstrapper --trusted-image AMI[,AMI…] --account ID --private-key FILE [--certificate FILE] [--bind IP]
                    [--port 8083] [--region NAME] [--attestation-ca FILE]
                                             hand the RPC key to attested instances of the trusted images
                                             (certificate: --certificate, else rpcCertificate of the default config)
  vssm call [--node HOST[:PORT]] [--dir DIR | --server-cert FILE --cert FILE --key FILE] [--password-file FILE]
            ENDPOINT [JSON|-]                one API call over mutual TLS, the answer on stdout (e.g. admin/listkeys,
                                             symmetric/encrypt '{\"keyName\":…}'); the node must present the RPC
                                             certificate; admin calls take the password from --password-file,
                                             VSSM_ADMIN_PASSWORD or DIR/admin-password; JSON: {} by default, - for stdin";

fn main() -> ExitCode {
    if vssm_init::is_pid1() {
        appliance();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.first().map(String::as_str) {
        None => ("serve", &args[..]),
        Some(first) if first.starts_with('-') => ("serve", &args[..]),
        Some(first) => (first, &args[1..]),
    };
    let result = match command {
        "serve" => parse_flags(rest, &["--config", "--bind"]).and_then(|f| serve(f.get("--config"), f.get("--bind"))),
        "dev" => parse_flags(rest, &["--dir", "--bind"]).and_then(|f| dev(f.get("--dir"), f.get("--bind"))),
        "hash-password" => parse_flags(rest, &["--log-n"]).and_then(|f| hash_password(f.get("--log-n"))),
        "bootstrapper" => parse_flags(
            rest,
            &[
                "--trusted-image",
                "--private-key",
                "--certificate",
                "--bind",
                "--port",
                "--account",
                "--region",
                "--attestation-ca",
            ],
        )
        .and_then(|f| bootstrapper(&f)),
        "call" => call(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("vssm: {message}");
            ExitCode::from(2)
        }
    }
}

/// `vssm call`: flags, then the endpoint and the optional JSON.
fn call(args: &[String]) -> Result<(), String> {
    const FLAGS: [&str; 6] = ["--node", "--dir", "--server-cert", "--cert", "--key", "--password-file"];
    let first_positional =
        args.iter().enumerate().step_by(2).find(|(_, a)| !a.starts_with("--")).map_or(args.len(), |(i, _)| i);
    let flags = parse_flags(&args[..first_positional], &FLAGS)?;
    let (endpoint, body) = match &args[first_positional..] {
        [endpoint] => (endpoint.clone(), "{}".to_string()),
        [endpoint, body] if body == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| format!("stdin: {e}"))?;
            (endpoint.clone(), text)
        }
        [endpoint, body] => (endpoint.clone(), body.clone()),
        _ => return Err(format!("call needs an ENDPOINT and at most one JSON argument\n{USAGE}")),
    };
    let path = |name: &str| flags.get(name).map(PathBuf::from);
    let options = vssm::operator::CallOptions {
        node: flags.get("--node").unwrap_or("127.0.0.1").to_string(),
        dir: path("--dir"),
        server_cert: path("--server-cert"),
        cert: path("--cert"),
        key: path("--key"),
        password_file: path("--password-file"),
        endpoint,
        body,
    };
    let answer = vssm::operator::call(&options, std::env::var(vssm::operator::PASSWORD_ENV).ok())?;
    println!("{answer}");
    Ok(())
}

/// `--name value` pairs, each allowed name at most once.
struct Flags(Vec<(String, String)>);

impl Flags {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

fn parse_flags(args: &[String], allowed: &[&str]) -> Result<Flags, String> {
    let mut flags = Vec::new();
    let mut iter = args.iter();
    while let Some(name) = iter.next() {
        if !allowed.contains(&name.as_str()) {
            return Err(format!("unknown argument {name:?}\n{USAGE}"));
        }
        let value = iter.next().ok_or_else(|| format!("{name} needs a value"))?;
        if flags.iter().any(|(n, _)| n == name) {
            return Err(format!("{name} given twice"));
        }
        flags.push((name.clone(), value.clone()));
    }
    Ok(Flags(flags))
}

fn parse_ip(text: Option<&str>) -> Result<Option<IpAddr>, String> {
    text.map(|t| t.parse().map_err(|_| format!("--bind: not an IP address: {t:?}"))).transpose()
}

fn serve(config_path: Option<&str>, bind: Option<&str>) -> Result<(), String> {
    let bind = parse_ip(bind)?;
    let path = match config_path {
        Some(p) => PathBuf::from(p),
        None => Config::find_default().map_err(|e| e.to_string())?,
    };
    let mut config = Config::load(&path).map_err(|e| e.to_string())?;
    if let Some(ip) = bind {
        config.bind_address = ip;
    }
    run_node(config)
}

/// Runs a node from `config` until SIGTERM or SIGINT.
fn run_node(config: Config) -> Result<(), String> {
    prepare_process();
    let node = Node::new(config).map_err(|e| format!("cannot start: {e}"))?;
    let servers = Servers::start(Arc::clone(&node)).map_err(|e| e.to_string())?;
    let _cluster = vssm::cluster::start(Arc::clone(&node));
    let c = &node.config;
    eprintln!(
        "vssm: bootstrapping; POST the RPC key to https://{}:{}/REST/v1/admin/bootstrap (health on http://{}:{}/REST/v1/healthcheck)",
        c.bind_address, c.ports.api, c.bind_address, c.ports.health
    );
    if !node.is_ready() {
        eprintln!(
            "vssm: this start's bootstrap certificate key is {} (check it: curl --pinnedpubkey {})",
            node.bootstrap_key_pin, node.bootstrap_key_pin
        );
    }
    wait_for_stop_signal();
    eprintln!("vssm: stopping");
    servers.stop();
    Ok(())
}

/// The appliance: `vssm` as process 1 of the image. Boots the machine
/// (vssm-init), reads config.json from the instance user-data (IMDSv2) and
/// serves; powers the machine off when stopped or on any fatal error.
fn appliance() -> ! {
    vssm_init::install_fatal_handlers();
    let info = vssm_init::boot(&vssm_init::BootOptions::default())
        .unwrap_or_else(|e| vssm_init::power_off(&format!("boot failed: {e}")));
    vssm_init::spawn_lease_keeper(&info);
    vssm_init::configure_other_interfaces(&info.interface);
    if let Err(e) = vssm_init::watch_power_button(|| {
        // SAFETY: sending a signal to this process.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    }) {
        eprintln!("vssm: power button not watched: {e}");
    }
    let result = config_from_user_data().and_then(run_node);
    match result {
        Ok(()) => vssm_init::power_off("stopped"),
        Err(e) => vssm_init::power_off(&e),
    }
}

/// The config from IMDS user-data, waiting (bounded) for IMDS to answer.
fn config_from_user_data() -> Result<Config, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let imds =
            vssm::cloud::imds::ImdsClient::new(vssm::cloud::imds::DEFAULT_IMDS_URL).map_err(|e| e.to_string())?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            match imds.user_data().await {
                Ok(Some(bytes)) => return Config::parse(&bytes, "user-data").map_err(|e| e.to_string()),
                Ok(None) => return Err("the instance has no user-data: put config.json there".into()),
                Err(e) if std::time::Instant::now() > deadline => return Err(format!("IMDS user-data: {e}")),
                Err(e) => {
                    eprintln!("vssm: IMDS user-data: {e}; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
            }
        }
    })
}

fn dev(dir: Option<&str>, bind: Option<&str>) -> Result<(), String> {
    let bind = parse_ip(bind)?.unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let setup = vssm::dev::prepare(&PathBuf::from(dir.unwrap_or("vssm-dev")), bind)?;
    prepare_process();
    let node = Node::new(setup.config.clone()).map_err(|e| format!("cannot start: {e}"))?;
    node.bootstrap(&setup.rpc_key_pkcs8).map_err(|e| format!("cannot bootstrap the dev node: {e}"))?;
    node.audit.record("bootstrap", "vssm dev", vssm::audit::Outcome::Ok, "with the dev RPC key");
    let servers = Servers::start(Arc::clone(&node)).map_err(|e| e.to_string())?;
    println!(
        "VSSM dev node running: API on {}:{} (mTLS, server name VSSM), health on http://{}:{}/REST/v1/healthcheck\n\
         Data folder: {} (certificates, keys, admin-password, config.json)\n\nTry:\n{}\n\n         or with the operator client:\n{}\n",
        setup.config.bind_address,
        setup.config.ports.api,
        setup.config.bind_address,
        setup.config.ports.health,
        setup.dir.display(),
        vssm::dev::curl_example(&setup),
        vssm::dev::call_example(&setup)
    );
    wait_for_stop_signal();
    eprintln!("vssm: stopping");
    servers.stop();
    Ok(())
}

fn hash_password(log_n: Option<&str>) -> Result<(), String> {
    let log_n = match log_n {
        None => DEFAULT_LOG_N,
        Some(t) => t.parse().map_err(|_| format!("--log-n: not a number: {t:?}"))?,
    };
    let password = read_password()?;
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    println!("{}", PasswordHash::create(password.as_bytes(), log_n)?);
    Ok(())
}

fn bootstrapper(flags: &Flags) -> Result<(), String> {
    use vssm::cluster::bootstrapper::{Bootstrapper, BootstrapperOptions};
    let read = |flag: &str, path: &str| std::fs::read(path).map_err(|e| format!("{flag} {path}: {e}"));
    let key_path = flags.get("--private-key").ok_or("--private-key is required")?;
    let certificate = match flags.get("--certificate") {
        Some(path) => {
            vssm::tls::load_certificate(&read("--certificate", path)?).map_err(|e| format!("--certificate: {e}"))?
        }
        None => {
            Config::load(&Config::find_default().map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?
                .rpc_certificate
        }
    };
    let attestation_cas = match flags.get("--attestation-ca") {
        Some(path) => vec![vssm::tls::load_certificate(&read("--attestation-ca", path)?)
            .map_err(|e| format!("--attestation-ca: {e}"))?
            .to_vec()],
        None => Vec::new(),
    };
    let port = match flags.get("--port") {
        None => 8083,
        Some(p) => p.parse().map_err(|_| format!("--port: not a port: {p:?}"))?,
    };
    let options = BootstrapperOptions {
        trusted_images: flags
            .get("--trusted-image")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        private_key_pem_or_der: Zeroizing::new(read("--private-key", key_path)?),
        certificate,
        bind: parse_ip(flags.get("--bind"))?.unwrap_or(IpAddr::from([0, 0, 0, 0])),
        port,
        // Without it any account able to launch the image would get the key.
        account: Some(
            flags.get("--account").ok_or("--account is required (the AWS account of the cluster)")?.to_string(),
        ),
        region: flags.get("--region").map(String::from),
        attestation_cas,
    };
    prepare_process();
    let bootstrapper = Bootstrapper::new(options)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let serving = tokio::spawn(bootstrapper.serve(shutdown));
        wait_for_signal().await;
        let _ = stop.send(true);
        serving.await.map_err(|e| e.to_string())?.map_err(String::from)
    })
}

/// From a no-echo prompt (asked twice) on a terminal, else the first line of stdin.
fn read_password() -> Result<Zeroizing<String>, String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(rpassword::prompt_password("Admin password: ").map_err(|e| e.to_string())?);
        let second = Zeroizing::new(rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?);
        if first != second {
            return Err("the passwords differ".into());
        }
        Ok(first)
    } else {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().read_line(&mut line).map_err(|e| e.to_string())?;
        Ok(Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string()))
    }
}

/// Hardening and TLS provider, before any key is loaded.
fn prepare_process() {
    vssm::tls::install_crypto_provider();
    for warning in vssm::hardening::harden_process() {
        eprintln!("vssm: warning: {warning}");
    }
}

/// Blocks until SIGTERM or SIGINT.
fn wait_for_stop_signal() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("signal runtime");
    runtime.block_on(wait_for_signal());
}

/// Resolves on SIGTERM or SIGINT.
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
