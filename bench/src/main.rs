//! `vssm-bench`: closed-loop load benchmark of the VSSM mutual-TLS JSON API,
//! compared with the bare single-core rate of the same primitives (in the
//! libraries the server uses: AWS-LC, RustCrypto for AES).
//!
//! Flow: create the benchmark keys through the admin API (and with
//! `--grants N`, load grants and enforce the authorization policy), measure
//! the bare primitives, then for each op open N keep-alive connections and
//! drive them back-to-back for the given duration while sampling the
//! server's RSS. With `--rotations N` it measures instead how old key
//! versions decrypt after N rotations (`rotation.rs`). The `-p11` ops
//! sign through the PKCS#11 module instead (`--pkcs11-module`): N threads,
//! one session each (`pkcs11.rs`, `pkcs11_load.rs`), compared with the same
//! operation through the JSON API.

mod args;
mod bare;
mod client;
mod grants;
mod load;
mod ops;
mod pkcs11;
mod pkcs11_load;
mod procfs;
mod report;
mod rotation;
mod setup;
mod tls;

use std::process::ExitCode;

use std::sync::Arc;

use args::Args;
use load::LoadResult;
use ops::{Op, Via};
use report::{OpReport, Report};

/// Error type of the whole binary: every failure ends up as a message.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(args) => args,
        Err(msg) => {
            if let Some(msg) = &msg {
                eprintln!("vssm-bench: {msg}\n");
            }
            eprint!("{}", args::USAGE);
            return if msg.is_some() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    // One thread: the bench is meant to be pinned to one core next to the server.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    if let Some(rotations) = args.rotations {
        return rotation_main(&runtime, &args, rotations);
    }
    finish(runtime.block_on(run(&args)), args.json)
}

/// What both reports offer for printing.
trait BenchReport {
    fn errors(&self) -> u64;
    fn print_table(&self);
    fn to_json(&self) -> serde_json::Value;
}

impl BenchReport for Report {
    fn errors(&self) -> u64 {
        Report::errors(self)
    }
    fn print_table(&self) {
        Report::print_table(self)
    }
    fn to_json(&self) -> serde_json::Value {
        Report::to_json(self)
    }
}

impl BenchReport for rotation::Report {
    fn errors(&self) -> u64 {
        rotation::Report::errors(self)
    }
    fn print_table(&self) {
        rotation::Report::print_table(self)
    }
    fn to_json(&self) -> serde_json::Value {
        rotation::Report::to_json(self)
    }
}

/// Prints a report (table or JSON) and turns the outcome into the exit code.
fn finish<R: BenchReport, E: std::fmt::Display>(result: Result<Option<R>, E>, json: bool) -> ExitCode {
    match result {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(report)) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&report.to_json()).expect("JSON"));
            } else {
                report.print_table();
            }
            if report.errors() > 0 {
                eprintln!("vssm-bench: {} requests failed", report.errors());
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("vssm-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--rotations N`: the rotation benchmark and its report.
fn rotation_main(runtime: &tokio::runtime::Runtime, args: &Args, rotations: u32) -> ExitCode {
    let result = runtime.block_on(async {
        let connector = tls::connector(&args.dir, args.h2)?;
        rotation::main(args, &connector, rotations).await
    });
    finish(result, args.json)
}

/// What the setup left for the load phases.
struct Prepared {
    /// The `input` bytes of each op of `args.ops`, in order.
    inputs: Vec<Vec<u8>>,
    /// The node's authorization mode (`None`: the server predates it).
    policy: Option<grants::PolicyState>,
    /// The PKCS#11 module, initialized and logged in, when an op needs it.
    token: Option<Arc<pkcs11::Token>>,
}

/// Creates the keys (reusing existing ones), with `--grants` reconciles the
/// grants and enforces the policy, reads the mode and makes the ops' inputs.
async fn setup(args: &Args, connector: &tokio_rustls::TlsConnector) -> Result<Prepared, Error> {
    let password = setup::admin_password(&args.dir)?;
    let mut admin =
        client::Client::connect(args.addr, connector).await.map_err(|e| format!("connect {}: {e}", args.addr))?;
    if admin.is_h2() != args.h2 {
        let got = if admin.is_h2() { "h2" } else { "HTTP/1.1" };
        return Err(format!("server negotiated {got}, not the requested protocol").into());
    }
    for line in setup::ensure_keys(&mut admin, args.h2, &password, &args.ops).await? {
        eprintln!("{line}");
    }
    let policy = match args.grants {
        Some(others) => {
            let (lines, state) = grants::load(&mut admin, &password, others, &args.ops).await?;
            lines.iter().for_each(|line| eprintln!("{line}"));
            Some(state)
        }
        None => {
            let state = grants::state(&mut admin, &password).await?;
            match &state {
                Some(state) => eprintln!("policy: {state}"),
                None => eprintln!("policy: none (the server predates authorization)"),
            }
            state
        }
    };
    let mut inputs = Vec::new();
    for op in &args.ops {
        inputs.push(setup::op_input(&mut admin, args.h2, op).await?);
    }
    let token = match &args.pkcs11_module {
        Some(module) if args.ops.iter().any(|op| op.via == Via::Pkcs11) => {
            let token = pkcs11::Token::open(module, &args.dir, args.addr)?;
            eprintln!("pkcs11: {} loaded, logged in ({})", module.display(), pkcs11::CONFIG_FILE);
            Some(Arc::new(token))
        }
        _ => None,
    };
    Ok(Prepared { inputs, policy, token })
}

/// Runs the benchmark; progress goes to stderr so `--json` stdout stays
/// clean. `None` after `--setup-only`.
async fn run(args: &Args) -> Result<Option<Report>, Error> {
    let connector = tls::connector(&args.dir, args.h2)?;
    let Prepared { inputs, policy, token } = setup(args, &connector).await?;
    if args.setup_only {
        return Ok(None);
    }

    let bare: Vec<Option<f64>> = args
        .ops
        .iter()
        .map(|op| {
            (!args.bare_duration.is_zero()).then(|| {
                let rate = bare::measure(args.bare_duration, (op.bare)(op.input_len));
                eprintln!("bare {:<9} {rate:>10.0} op/s", op.name);
                rate
            })
        })
        .collect();

    let rss_idle_kib = args.server_pid.and_then(procfs::vm_rss_kib);
    // Interleaved rounds: a slow spell of a shared machine hits every op,
    // not just the one measured at the time.
    let mut ops: Vec<OpReport> = Vec::new();
    for round in 1..=args.rounds {
        let mut measured = Vec::new();
        for ((op, bare_per_s), input) in args.ops.iter().zip(&bare).zip(&inputs) {
            measured.push(measure_op(args, &connector, token.as_ref(), op, *bare_per_s, input).await?);
        }
        if args.rounds > 1 {
            for gain in report::batch_gains(&measured) {
                let per_cpu = gain.per_cpu.map_or_else(|| "-".into(), |g| format!("{g:.1}x"));
                eprintln!(
                    "round {round}/{}: {} {:.1}x, {per_cpu} per server CPU-second",
                    args.rounds, gain.batch, gain.wall
                );
            }
        }
        if ops.is_empty() {
            ops = measured;
        } else {
            ops.iter_mut().zip(measured).for_each(|(total, round)| total.absorb(round));
        }
    }

    drop(token);
    Ok(Some(Report {
        addr: args.addr.to_string(),
        protocol: if args.h2 { "h2" } else { "http/1.1" },
        connections: args.connections,
        seconds: args.duration.as_secs_f64(),
        rounds: args.rounds,
        rss_idle_kib,
        policy,
        ops,
    }))
}

/// One load phase of `op`, with the server's and this process's CPU and
/// the server's RSS peak.
async fn measure_op(
    args: &Args,
    connector: &tokio_rustls::TlsConnector,
    token: Option<&Arc<pkcs11::Token>>,
    op: &'static Op,
    bare_per_s: Option<f64>,
    input: &[u8],
) -> Result<OpReport, Error> {
    let sampler = args.server_pid.map(procfs::PeakSampler::start);
    let server_cpu = args.server_pid.map(procfs::CpuMeter::start);
    let bench_cpu = procfs::CpuMeter::start(std::process::id());
    let load = match op.via {
        Via::Json => {
            eprintln!("load {:<9} {} connections, {:?}", op.name, args.connections, args.duration);
            let phase = load::Phase {
                addr: args.addr,
                connector: connector.clone(),
                target: client::Target::new(op.path, args.h2),
                body: op.request_body(input),
                batch: op.batch,
            };
            load::run(&phase, args.connections, args.duration).await?
        }
        Via::Pkcs11 => {
            eprintln!(
                "load {:<9} {} threads, one PKCS#11 session each, {:?}",
                op.name, args.connections, args.duration
            );
            let token = token.cloned().ok_or("no PKCS#11 module")?;
            pkcs11_phase(token, op, input.to_vec(), args.connections, args.duration).await?
        }
    };
    let bench_cpu_pct = bench_cpu.finish();
    let server_cpu_pct = server_cpu.and_then(procfs::CpuMeter::finish);
    let rss_peak_kib = match sampler {
        Some(s) => s.finish().await,
        None => None,
    };
    Ok(OpReport { op, load, bare_per_s, rss_peak_kib, server_cpu_pct, bench_cpu_pct })
}

/// A PKCS#11 load phase, on threads of its own while this runtime keeps
/// sampling the server's RSS.
async fn pkcs11_phase(
    token: Arc<pkcs11::Token>,
    op: &'static Op,
    input: Vec<u8>,
    threads: usize,
    duration: std::time::Duration,
) -> Result<LoadResult, Error> {
    let key = token.private_key(op)?;
    tokio::task::spawn_blocking(move || {
        let mechanism = pkcs11::mechanism(op.algorithm).ok_or_else(|| format!("{}: no PKCS#11 mechanism", op.name))?;
        let signing = pkcs11_load::Signing { mechanism, key, input };
        pkcs11_load::run(&token, &signing, threads, duration)
    })
    .await?
}
