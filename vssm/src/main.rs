//! The `vssm` command: serve a node, run a dev node, hash a password, run
//! the bootstrapper, call a node's API.

#![forbid(unsafe_code)]

use clap::{Args, Parser, Subcommand};
use std::error::Error;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use vssm::admin::password::{PasswordHash, DEFAULT_LOG_N};
use vssm::config::{Config, ConfigError};
use vssm::node::Node;
use vssm::server::listener::NodeListeners;
use vssm::server::Servers;
use zeroize::Zeroizing;

/// Every heap block is wiped before it is freed: HTTP, TLS and JSON buffers
/// that carried keys, passwords or plaintext leave no copy in freed memory
/// (SECURITY.md, "Memory disclosure").
#[global_allocator]
static ALLOCATOR: vssm_zeroing_alloc::ZeroingAllocator<std::alloc::System> =
    vssm_zeroing_alloc::ZeroingAllocator(std::alloc::System);

/// Virtual software security module: non-exportable keys behind a mutual-TLS JSON API.
///
/// Without a command, `vssm` serves a node (as `vssm serve`).
#[derive(Parser, Debug)]
#[command(name = "vssm", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `vssm --config FILE --bind IP` (no command) serves, as before there were commands.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve a node (the default command).
    Serve(ServeArgs),
    /// Run a single bootstrapped node with generated certificates, for trying VSSM out.
    Dev(DevArgs),
    /// Print the scrypt hash for rootPassword (password from a prompt, else the first line of stdin).
    HashPassword(HashPasswordArgs),
    /// Hand the RPC key to attested instances of the trusted images.
    Bootstrapper(BootstrapperArgs),
    /// Print the digest of a config's security-relevant settings (what joining nodes attest).
    ///
    /// List it in the running cluster's cluster.acceptedConfigDigests to let nodes with this
    /// config join during a rollout.
    ConfigDigest(ConfigDigestArgs),
    /// Make one API call over mutual TLS and print the answer on stdout.
    ///
    /// The node must present the RPC certificate given (pinned). Admin calls take the admin password
    /// from --password-file, else VSSM_ADMIN_PASSWORD, else DIR/admin-password; never from the
    /// command line. Without any of these they go without a password, for a certificate with a
    /// management grant.
    #[command(after_help = "Examples:\n  vssm call --dir vssm-dev admin/listkeys\n  \
                            vssm call --dir vssm-dev symmetric/encrypt \\\n    \
                            '{\"keyName\":\"k\",\"algorithm\":\"AES/GCM/NoPadding\",\"input\":\"aGk=\"}'\n  \
                            vssm call --node 10.0.0.5 --server-cert rpc.crt --cert c.crt --key c.key \\\n    \
                            --password-file pw admin/listkeys")]
    Call(CallArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// The node's config [default: ./config.json, else /etc/vssm/config.json].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen on this address instead of the config's bindAddress.
    #[arg(long, value_name = "IP")]
    bind: Option<IpAddr>,
}

#[derive(Args, Debug)]
struct DevArgs {
    /// Data folder for certificates, keys, admin-password and config.json (created on first use).
    #[arg(long, value_name = "DIR", default_value = "vssm-dev")]
    dir: PathBuf,
    /// Address to listen on.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    bind: IpAddr,
}

#[derive(Args, Debug)]
struct HashPasswordArgs {
    /// scrypt cost: N = 2^LOG_N (r = 8, p = 1), 1 to 17.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LOG_N)]
    log_n: u8,
}

#[derive(Args, Debug)]
struct ConfigDigestArgs {
    /// The config [default: ./config.json, else /etc/vssm/config.json].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct BootstrapperArgs {
    /// The cluster's config.json: joiners must run this configuration (its config digest, or one
    /// of its acceptedConfigDigests) [default: ./config.json, else /etc/vssm/config.json].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// AMI ids whose instances may receive the RPC key (comma-separated or repeated).
    #[arg(long, value_name = "AMI[,AMI…]", value_delimiter = ',', required = true)]
    trusted_image: Vec<String>,
    /// The AWS account of the cluster (without it any account able to launch the image would get the key).
    #[arg(long, value_name = "ID")]
    account: String,
    /// The RPC private key (PEM or DER).
    #[arg(long, value_name = "FILE")]
    private_key: PathBuf,
    /// The RPC certificate; must be the config's rpcCertificate [default: that one].
    #[arg(long, value_name = "FILE")]
    certificate: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, value_name = "IP", default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Port to listen on.
    #[arg(long, default_value_t = 8083)]
    port: u16,
    /// Only instances in this AWS region [default: any region].
    #[arg(long, value_name = "NAME")]
    region: Option<String>,
    /// Extra certificate trusted to sign instance identity documents (PEM or DER; for tests).
    #[arg(long, value_name = "FILE")]
    attestation_ca: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct CallArgs {
    /// The node: HOST or HOST:PORT (port 8080 by default).
    #[arg(long, value_name = "HOST[:PORT]", default_value = "127.0.0.1")]
    node: String,
    /// A `vssm dev` folder: default for the certificates, key and admin password.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The node's RPC certificate, pinned [default: DIR/rpc.crt].
    #[arg(long, value_name = "FILE")]
    server_cert: Option<PathBuf>,
    /// Client certificate [default: DIR/client.crt].
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// Client private key [default: DIR/client.key].
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// File whose first line is the admin password.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Endpoint below /REST/v1/, e.g. admin/listkeys or symmetric/encrypt.
    endpoint: String,
    /// The JSON request, `-` to read it from stdin.
    #[arg(default_value = "{}")]
    json: String,
}

/// Why a command failed after its arguments were accepted.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// The config could not be found, read or validated.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The `vssm dev` folder could not be prepared.
    #[error(transparent)]
    Dev(#[from] vssm::dev::DevError),
    /// `vssm call` failed.
    #[error(transparent)]
    Call(#[from] vssm::operator::CallError),
    /// A file named by a flag could not be read.
    #[error("{flag} {}: {source}", path.display())]
    Read { flag: &'static str, path: PathBuf, source: std::io::Error },
    /// A certificate named by a flag is unusable.
    #[error("{flag}: {source}")]
    Certificate { flag: &'static str, source: vssm::tls::TlsError },
    /// The terminal or stdin could not be read.
    #[error("{what}: {source}")]
    Io { what: &'static str, source: std::io::Error },
    /// The two passwords typed differ.
    #[error("the passwords differ")]
    PasswordsDiffer,
    /// The password is empty.
    #[error("the password is empty")]
    EmptyPassword,
    /// A step failed: starting, bootstrapping, serving, hashing.
    #[error("{what}: {source}")]
    Failed { what: &'static str, source: Box<dyn Error + Send + Sync> },
}

/// Wraps any error (typed or a message) with what was being done.
fn failed<E: Into<Box<dyn Error + Send + Sync>>>(what: &'static str) -> impl FnOnce(E) -> CliError {
    move |e| CliError::Failed { what, source: e.into() }
}

fn main() -> ExitCode {
    // As process 1 the kernel's command line is no user's: never parse it.
    if vssm_init::is_pid1() {
        appliance();
    }
    // Usage errors exit with 2 and a hint; --help and --version with 0.
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Dev(args)) => dev(args),
        Some(Command::HashPassword(args)) => hash_password(args.log_n),
        Some(Command::Bootstrapper(args)) => bootstrapper(args),
        Some(Command::ConfigDigest(args)) => config_digest(args),
        Some(Command::Call(args)) => call(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vssm: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `vssm call`: one request, the pretty-printed answer on stdout.
fn call(args: CallArgs) -> Result<(), CliError> {
    let body = if args.json == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|source| CliError::Io { what: "stdin", source })?;
        text
    } else {
        args.json
    };
    let options = vssm::operator::CallOptions {
        node: args.node,
        dir: args.dir,
        server_cert: args.server_cert,
        cert: args.cert,
        key: args.key,
        password_file: args.password_file,
        endpoint: args.endpoint,
        body,
    };
    let answer = vssm::operator::call(&options, std::env::var(vssm::operator::PASSWORD_ENV).ok())?;
    println!("{answer}");
    Ok(())
}

fn serve(args: ServeArgs) -> Result<(), CliError> {
    let mut config = load_config(args.config)?;
    if let Some(ip) = args.bind {
        config.bind_address = ip;
    }
    run_node(config)
}

/// Runs a node from `config` until SIGTERM or SIGINT.
fn run_node(config: Config) -> Result<(), CliError> {
    prepare_process();
    // Every port first: a taken one ends the start before anything runs.
    let listeners = NodeListeners::bind(&config).map_err(failed("cannot listen"))?;
    let node = Node::new(config).map_err(failed("cannot start"))?;
    let servers =
        Servers::start(Arc::clone(&node), listeners.api, listeners.health).map_err(failed("cannot listen"))?;
    let _cluster = vssm::cluster::start(Arc::clone(&node), listeners.cluster);
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
        // The same graceful stop as `kill -TERM 1`; sending to itself cannot fail.
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGTERM);
    }) {
        eprintln!("vssm: power button not watched: {e}");
    }
    let result = config_from_user_data().and_then(run_node);
    match result {
        Ok(()) => vssm_init::power_off("stopped"),
        Err(e) => vssm_init::power_off(&e.to_string()),
    }
}

/// The config from IMDS user-data, waiting (bounded) for IMDS to answer.
fn config_from_user_data() -> Result<Config, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io { what: "runtime", source })?;
    runtime.block_on(async {
        let imds =
            vssm::cloud::imds::ImdsClient::new(vssm::cloud::imds::DEFAULT_IMDS_URL).map_err(failed("IMDS client"))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            match imds.user_data().await {
                Ok(Some(bytes)) => return Ok(Config::parse(&bytes, "user-data")?),
                Ok(None) => return Err(failed("user-data")("the instance has no user-data: put config.json there")),
                Err(e) if std::time::Instant::now() > deadline => return Err(failed("IMDS user-data")(e)),
                Err(e) => {
                    eprintln!("vssm: IMDS user-data: {e}; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
            }
        }
    })
}

fn dev(args: DevArgs) -> Result<(), CliError> {
    let setup = vssm::dev::prepare(&args.dir, args.bind)?;
    prepare_process();
    let listeners = NodeListeners::bind(&setup.config).map_err(failed("cannot listen"))?;
    let node = Node::new(setup.config.clone()).map_err(failed("cannot start"))?;
    node.bootstrap(&setup.rpc_key_pkcs8).map_err(|e| failed("cannot bootstrap the dev node")(e.to_string()))?;
    node.audit.record_history("bootstrap", "vssm dev", vssm::audit::Outcome::Ok, "with the dev RPC key");
    let servers =
        Servers::start(Arc::clone(&node), listeners.api, listeners.health).map_err(failed("cannot listen"))?;
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

fn hash_password(log_n: u8) -> Result<(), CliError> {
    let password = read_password()?;
    if password.is_empty() {
        return Err(CliError::EmptyPassword);
    }
    println!("{}", PasswordHash::create(password.as_bytes(), log_n).map_err(failed("cannot hash"))?);
    Ok(())
}

/// Reads a file named by `flag`.
fn read_flag_file(flag: &'static str, path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Read { flag, path: path.to_path_buf(), source })
}

/// Reads a certificate file named by `flag`.
fn load_flag_certificate(
    flag: &'static str,
    path: &Path,
) -> Result<rustls_pki_types::CertificateDer<'static>, CliError> {
    vssm::tls::load_certificate(&read_flag_file(flag, path)?).map_err(|source| CliError::Certificate { flag, source })
}

/// Loads `--config FILE`, else the config in the default places.
fn load_config(path: Option<PathBuf>) -> Result<Config, CliError> {
    let path = match path {
        Some(p) => p,
        None => Config::find_default()?,
    };
    Ok(Config::load(&path)?)
}

/// `vssm config-digest`: the digest a node with this config attests when it joins.
fn config_digest(args: ConfigDigestArgs) -> Result<(), CliError> {
    let config = load_config(args.config)?;
    println!("{}", vssm::cluster::config_digest::ConfigDigest::of(&config));
    Ok(())
}

fn bootstrapper(args: BootstrapperArgs) -> Result<(), CliError> {
    use vssm::cluster::bootstrapper::{Bootstrapper, BootstrapperOptions};
    let cluster_config = load_config(args.config)?;
    let certificate = match &args.certificate {
        Some(path) => load_flag_certificate("--certificate", path)?,
        None => cluster_config.rpc_certificate.clone(),
    };
    let attestation_cas = match &args.attestation_ca {
        Some(path) => vec![load_flag_certificate("--attestation-ca", path)?.to_vec()],
        None => Vec::new(),
    };
    let options = BootstrapperOptions {
        trusted_images: args.trusted_image.into_iter().filter(|s| !s.is_empty()).collect(),
        private_key_pem_or_der: Zeroizing::new(read_flag_file("--private-key", &args.private_key)?),
        certificate,
        bind: args.bind,
        port: args.port,
        account: Some(args.account),
        region: args.region,
        attestation_cas,
        cluster_config,
    };
    prepare_process();
    let bootstrapper = Bootstrapper::new(options).map_err(failed("bootstrapper"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io { what: "runtime", source })?;
    runtime.block_on(async {
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let serving = tokio::spawn(bootstrapper.serve(shutdown));
        wait_for_signal().await;
        let _ = stop.send(true);
        serving.await.map_err(failed("bootstrapper"))?.map_err(failed("bootstrapper"))
    })
}

/// From a no-echo prompt (asked twice) on a terminal, else the first line of stdin.
fn read_password() -> Result<Zeroizing<String>, CliError> {
    use std::io::IsTerminal;
    let terminal = |source| CliError::Io { what: "terminal", source };
    if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(rpassword::prompt_password("Admin password: ").map_err(terminal)?);
        let second = Zeroizing::new(rpassword::prompt_password("Again: ").map_err(terminal)?);
        if first != second {
            return Err(CliError::PasswordsDiffer);
        }
        Ok(first)
    } else {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().read_line(&mut line).map_err(|source| CliError::Io { what: "stdin", source })?;
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
