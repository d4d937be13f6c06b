//! `--rotations N`: the decryption speed of old key versions (issue 10,
//! item 9: "a ciphertext from version 1 still decrypts after 1,000
//! rotations at the same speed as a fresh one").
//!
//! Setup: a symmetric key [`ROTATED`] that `admin/rotatekey` brings to
//! N+1 versions (a re-run rotates only what is missing, so it never adds
//! more), and a key [`FRESH`] of the same kind that is never rotated. Then
//! the closed loop of the ops runs AES-256-GCM decryptions of 64 bytes, one
//! phase per [`Case`]: ciphertexts of version 1 and of the newest version
//! of the rotated key, of the fresh key, with the version in the ciphertext
//! header (`versioned: true`) or named by `keyVersion`. The phases run in
//! interleaved rounds, so a slow spell of a shared machine hits all cases
//! alike; the report gives each case's rate (and per server core, with
//! `--server-pid`) and its ratio to the newest version and to the fresh key.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio_rustls::TlsConnector;

use crate::args::Args;
use crate::client::{self, Client, Target};
use crate::load::{self, LoadResult};
use crate::{procfs, Error};

/// The key that is rotated N times.
pub const ROTATED: &str = "bench-rotated";
/// The key of the same kind that is never rotated.
pub const FRESH: &str = "bench-rot-fresh";
/// Plaintext length.
const INPUT_LEN: usize = 64;
/// AES-256-GCM, as the `aes` op.
const ALGORITHM: &str = "AES/GCM/NoPadding";

const ENCRYPT: &str = "/REST/v1/symmetric/encrypt";
const DECRYPT: &str = "/REST/v1/symmetric/decrypt";
const GENERATEKEY: &str = "/REST/v1/admin/generatekey";
const ROTATEKEY: &str = "/REST/v1/admin/rotatekey";
const DESCRIBE: &str = "/REST/v1/keys/describe";
const WHOAMI: &str = "/REST/v1/authz/whoami";
const CREATEGRANTS: &str = "/REST/v1/admin/creategrants";
const REVOKEGRANTS: &str = "/REST/v1/admin/revokegrants";

/// Which version of which key a case decrypts, and how the request names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    /// The never-rotated key, no version fields: today's request.
    FreshLegacy,
    /// The never-rotated key, versioned ciphertext (version 1).
    FreshVersioned,
    /// The rotated key's newest version, versioned ciphertext.
    Newest,
    /// The rotated key's version 1, versioned ciphertext.
    OldestVersioned,
    /// The rotated key's version 1, plain ciphertext and `keyVersion: 1`.
    OldestByNumber,
}

/// One measured case.
#[derive(Debug)]
struct Case {
    /// Short name (JSON).
    name: &'static str,
    /// What it decrypts.
    version: Version,
}

/// The cases, in table order.
const CASES: [Case; 5] = [
    Case { name: "fresh-legacy", version: Version::FreshLegacy },
    Case { name: "fresh-versioned", version: Version::FreshVersioned },
    Case { name: "newest-versioned", version: Version::Newest },
    Case { name: "v1-versioned", version: Version::OldestVersioned },
    Case { name: "v1-keyversion", version: Version::OldestByNumber },
];

impl Case {
    /// The key the case uses.
    fn key(&self) -> &'static str {
        match self.version {
            Version::FreshLegacy | Version::FreshVersioned => FRESH,
            _ => ROTATED,
        }
    }

    /// The version fields of the decryption: what a client holding the
    /// ciphertext sends (a versioned ciphertext names its version itself).
    fn fields(&self) -> Value {
        match self.version {
            Version::FreshLegacy => json!({}),
            Version::FreshVersioned | Version::Newest | Version::OldestVersioned => json!({ "versioned": true }),
            Version::OldestByNumber => json!({ "keyVersion": 1 }),
        }
    }

    /// The version fields of the encryption that makes the case's
    /// ciphertext at setup: version 1 of the rotated key is named (its
    /// material is the one that was there before the rotations).
    fn encrypt_fields(&self) -> Value {
        match self.version {
            Version::OldestVersioned => json!({ "versioned": true, "keyVersion": 1 }),
            _ => self.fields(),
        }
    }

    /// Table label, with the version numbers of this run.
    fn label(&self, newest: u32) -> String {
        match self.version {
            Version::FreshLegacy => "fresh key, no version fields".into(),
            Version::FreshVersioned => "fresh key, v1 versioned".into(),
            Version::Newest => format!("rotated, v{newest} (newest) versioned"),
            Version::OldestVersioned => "rotated, v1 versioned".into(),
            Version::OldestByNumber => "rotated, v1 by keyVersion".into(),
        }
    }

    /// The decryption request of `input`.
    fn request(&self, input: &[u8]) -> Value {
        self.with_key(self.fields(), input)
    }

    /// The encryption request of `input`.
    fn encrypt_request(&self, input: &[u8]) -> Value {
        self.with_key(self.encrypt_fields(), input)
    }

    /// `fields` plus the key, the algorithm and `input`.
    fn with_key(&self, mut body: Value, input: &[u8]) -> Value {
        body["keyName"] = self.key().into();
        body["algorithm"] = ALGORITHM.into();
        body["input"] = B64.encode(input).into();
        body
    }
}

/// What the setup left: the rotated key's versions and one decryption body per case.
pub struct Prepared {
    /// The rotated key's newest version.
    newest: u32,
    /// Rotations this run made.
    rotated_now: u32,
    /// Seconds the rotations took.
    rotation_seconds: f64,
    /// Decryption request body per case of [`CASES`].
    bodies: Vec<Bytes>,
}

/// Creates the keys, rotates [`ROTATED`] to `rotations + 1` versions and
/// makes one ciphertext per case (each decrypted once, checked).
pub async fn setup(client: &mut Client, password: &str, rotations: u32) -> Result<Prepared, Error> {
    for name in [ROTATED, FRESH] {
        let body = json!({"adminPassword": password, "keyName": name, "keyType": "SYMMETRIC", "keySize": 32});
        let (status, answer) = client.call(GENERATEKEY, &body).await?;
        let outcome = match status.as_u16() {
            200 => "created",
            409 => "exists, reused",
            _ => return Err(format!("generatekey {name}: HTTP {status}: {}", String::from_utf8_lossy(&answer)).into()),
        };
        eprintln!("key {name}: {outcome}");
    }
    let fresh = newest_version(client, FRESH).await?;
    if fresh != 1 {
        return Err(
            format!("key {FRESH} has {fresh} versions: it must never be rotated (use a new data folder)").into()
        );
    }

    let want = rotations.checked_add(1).ok_or("--rotations is too large")?;
    let mut newest = newest_version(client, ROTATED).await?;
    let before = newest;
    let mut rotation_seconds = 0.0;
    if newest < want {
        // Every password check is an scrypt run (about a quarter of a
        // second, one at a time): the rotations go by a certificate grant
        // of `rotate` on the key to this client, revoked when they are done.
        let grant = RotateGrant::create(client, password).await?;
        let start = std::time::Instant::now();
        let rotate = json!({"keyType": "SYMMETRIC", "keyName": ROTATED, "adminPassword": grant.password()});
        let rotated = async {
            while newest < want {
                let answer = client.call_json(ROTATEKEY, &rotate).await?;
                newest = answer
                    .get("keyVersion")
                    .and_then(Value::as_u64)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| format!("{ROTATEKEY}: no keyVersion in {answer}"))?;
                if newest % 100 == 0 || newest == want {
                    let per_s = rate(newest - before, start.elapsed());
                    eprintln!("key {ROTATED}: version {newest} ({per_s:.0} rotations/s)");
                }
            }
            Ok::<(), Error>(())
        }
        .await;
        rotation_seconds = start.elapsed().as_secs_f64();
        grant.revoke(client, password).await?;
        rotated?;
    }
    if newest > want {
        eprintln!("key {ROTATED}: {newest} versions already, more than --rotations {rotations} + 1 (kept)");
    }

    let plaintext = crate::ops::input(INPUT_LEN);
    let mut bodies = Vec::new();
    for case in &CASES {
        let encrypted = client.call_json(ENCRYPT, &case.encrypt_request(&plaintext)).await?;
        check_version(case, &encrypted, newest)?;
        let ciphertext = B64.decode(field(&encrypted, "output", ENCRYPT)?)?;
        let body = case.request(&ciphertext);
        let decrypted = client.call_json(DECRYPT, &body).await?;
        check_version(case, &decrypted, newest)?;
        if B64.decode(field(&decrypted, "output", DECRYPT)?)? != plaintext {
            return Err(format!("{}: decryption does not give the plaintext back", case.name).into());
        }
        bodies.push(Bytes::from(body.to_string()));
    }
    Ok(Prepared { newest, rotated_now: newest - before, rotation_seconds, bodies })
}

/// The bench client's grant of `rotate` on [`ROTATED`]; with a server
/// that predates grants, every rotation sends the password instead.
struct RotateGrant {
    /// The grant's id, or the password to send instead.
    id: Result<String, String>,
}

impl RotateGrant {
    /// Makes the grant for this client's public key (`authz/whoami`).
    async fn create(client: &mut Client, password: &str) -> Result<RotateGrant, Error> {
        let (status, answer) = client.call(WHOAMI, &json!({})).await?;
        if status.as_u16() == 404 {
            return Ok(RotateGrant { id: Err(password.to_string()) });
        }
        let whoami = client::json_answer(WHOAMI, status, &answer)?;
        let spki = whoami
            .pointer("/identity/spkiSha256")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{WHOAMI}: no identity.spkiSha256 in {whoami}"))?;
        let grant = json!({
            "identity": format!("spki:{}", spki.to_ascii_lowercase()),
            "keys": ROTATED,
            "operations": ["rotate"],
            "comment": "vssm-bench rotations",
        });
        let created = client.call_json(CREATEGRANTS, &json!({"adminPassword": password, "grants": [grant]})).await?;
        let id = created
            .pointer("/grants/0/id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{CREATEGRANTS}: no grant id in {created}"))?;
        Ok(RotateGrant { id: Ok(id.to_string()) })
    }

    /// The `adminPassword` a rotation sends: none with the grant.
    fn password(&self) -> &str {
        self.id.as_ref().err().map_or("", String::as_str)
    }

    /// Revokes the grant.
    async fn revoke(self, client: &mut Client, password: &str) -> Result<(), Error> {
        if let Ok(id) = self.id {
            client.call_json(REVOKEGRANTS, &json!({"adminPassword": password, "ids": [id]})).await?;
        }
        Ok(())
    }
}

/// `keys/describe`'s `newestVersion` of the symmetric key `name`.
async fn newest_version(client: &mut Client, name: &str) -> Result<u32, Error> {
    let answer = client.call_json(DESCRIBE, &json!({"keyType": "SYMMETRIC", "keyName": name})).await?;
    answer
        .get("newestVersion")
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| format!("{DESCRIBE}: no newestVersion in {answer}").into())
}

/// A string field of an answer.
fn field<'a>(answer: &'a Value, name: &str, path: &str) -> Result<&'a str, Error> {
    answer.get(name).and_then(Value::as_str).ok_or_else(|| format!("{path}: no {name} in {answer}").into())
}

/// The answer names the version the case means (and none for a legacy request).
fn check_version(case: &Case, answer: &Value, newest: u32) -> Result<(), Error> {
    let got = answer.get("keyVersion").and_then(Value::as_u64);
    let want = match case.version {
        Version::FreshLegacy => None,
        Version::FreshVersioned | Version::OldestVersioned | Version::OldestByNumber => Some(1),
        Version::Newest => Some(u64::from(newest)),
    };
    if got != want {
        return Err(format!("{}: keyVersion {got:?} in the answer, want {want:?}: {answer}", case.name).into());
    }
    Ok(())
}

fn rate(count: u32, elapsed: Duration) -> f64 {
    f64::from(count) / elapsed.as_secs_f64().max(1e-9)
}

/// One case's measurements over all rounds.
struct CaseResult {
    case: &'static Case,
    /// Every request of every round (latencies merged and sorted).
    load: LoadResult,
    /// Each round's rate.
    round_rates: Vec<f64>,
    /// Server CPU time over the case's phases (with `--server-pid`).
    server_cpu_s: Option<f64>,
}

impl CaseResult {
    /// Requests per second over all rounds.
    fn rate(&self) -> f64 {
        self.load.rate()
    }

    /// Requests per second of server CPU time: the rate per server core.
    fn per_core(&self) -> Option<f64> {
        self.server_cpu_s.filter(|s| *s > 0.0).map(|s| self.load.ok as f64 / s)
    }

    /// The figure the ratios compare: per server core when known.
    fn figure(&self) -> f64 {
        self.per_core().unwrap_or_else(|| self.rate())
    }
}

/// The whole rotation report.
pub struct Report {
    addr: String,
    protocol: &'static str,
    connections: usize,
    rounds: usize,
    seconds: f64,
    prepared: Prepared,
    results: Vec<CaseResult>,
}

/// Runs `args.rounds` rounds of every case, `args.duration` each.
pub async fn run(args: &Args, connector: &TlsConnector, prepared: Prepared) -> Result<Report, Error> {
    let mut results: Vec<CaseResult> = CASES
        .iter()
        .map(|case| CaseResult {
            case,
            load: LoadResult::default(),
            round_rates: Vec::new(),
            server_cpu_s: args.server_pid.map(|_| 0.0),
        })
        .collect();
    let rounds = args.rounds;
    for round in 1..=rounds {
        for (result, body) in results.iter_mut().zip(&prepared.bodies) {
            eprintln!(
                "round {round}/{rounds}: {} ({} connections, {:?})",
                result.case.name, args.connections, args.duration
            );
            let phase = load::Phase {
                addr: args.addr,
                connector: connector.clone(),
                target: Target::new(DECRYPT, args.h2),
                body: body.clone(),
                batch: 1,
            };
            let cpu_before = args.server_pid.and_then(procfs::cpu_time);
            let load = load::run(&phase, args.connections, args.duration).await?;
            let cpu_after = args.server_pid.and_then(procfs::cpu_time);
            result.server_cpu_s = match (result.server_cpu_s, cpu_before, cpu_after) {
                (Some(total), Some(before), Some(after)) => Some(total + (after - before).as_secs_f64()),
                _ => None,
            };
            result.round_rates.push(load.rate());
            add_round(&mut result.load, load);
        }
    }
    for result in &mut results {
        result.load.latencies_us.sort_unstable();
    }
    Ok(Report {
        addr: args.addr.to_string(),
        protocol: if args.h2 { "h2" } else { "http/1.1" },
        connections: args.connections,
        rounds,
        seconds: args.duration.as_secs_f64(),
        prepared,
        results,
    })
}

/// Adds one round's phase to a case's total (latencies sorted later).
fn add_round(total: &mut LoadResult, round: LoadResult) {
    total.ok += round.ok;
    total.errors += round.errors;
    total.elapsed += round.elapsed;
    if total.first_error.is_none() {
        total.first_error = round.first_error;
    }
    total.latencies_us.extend(round.latencies_us);
}

fn fmt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

impl Report {
    /// Failed requests over all cases.
    pub fn errors(&self) -> u64 {
        self.results.iter().map(|r| r.load.errors).sum()
    }

    fn find(&self, version: Version) -> Option<&CaseResult> {
        self.results.iter().find(|r| r.case.version == version)
    }

    /// `figure(result) / figure(of the case of `version`)`.
    fn ratio(&self, result: &CaseResult, version: Version) -> Option<f64> {
        let base = self.find(version)?.figure();
        (base > 0.0).then(|| result.figure() / base)
    }

    /// Prints the table to stdout.
    pub fn print_table(&self) {
        let p = &self.prepared;
        println!(
            "VSSM decryption after key rotation: {} over {}, {} connections, {} rounds of {} s per case",
            self.addr, self.protocol, self.connections, self.rounds, self.seconds
        );
        println!(
            "AES-256-GCM decrypt of {INPUT_LEN} B; key {ROTATED}: {} versions ({} rotations, {} by this run{}); key {FRESH}: never rotated",
            p.newest,
            p.newest - 1,
            p.rotated_now,
            if p.rotated_now > 0 {
                format!(", {:.0}/s", f64::from(p.rotated_now) / p.rotation_seconds.max(1e-9))
            } else {
                String::new()
            }
        );
        println!(
            "{:<34} {:>8} {:>15} {:>7} {:>7} {:>6} {:>8} {:>10} {:>9} {:>8}",
            "case",
            "req/s",
            "rounds min-max",
            "p50 ms",
            "p99 ms",
            "errors",
            "srv CPU",
            "req/s/core",
            "vs newest",
            "vs fresh"
        );
        for r in &self.results {
            let min = r.round_rates.iter().copied().fold(f64::INFINITY, f64::min);
            let max = r.round_rates.iter().copied().fold(0.0, f64::max);
            let cpu = r.server_cpu_s.map(|s| 100.0 * s / r.load.elapsed.as_secs_f64().max(1e-9));
            println!(
                "{:<34} {:>8.0} {:>15} {:>7} {:>7} {:>6} {:>8} {:>10} {:>9} {:>8}",
                r.case.label(p.newest),
                r.rate(),
                format!("{min:.0}-{max:.0}"),
                fmt(r.load.quantile_ms(0.50), 2),
                fmt(r.load.quantile_ms(0.99), 2),
                r.load.errors,
                cpu.map_or_else(|| "-".into(), |c| format!("{c:.1}%")),
                fmt(r.per_core(), 0),
                fmt(self.ratio(r, Version::Newest), 3),
                fmt(self.ratio(r, Version::FreshVersioned), 3),
            );
        }
        let basis = if self.results.iter().all(|r| r.per_core().is_some()) {
            "requests per second of server CPU"
        } else {
            "requests per second (no --server-pid: not per core)"
        };
        println!("ratios: {basis}; vs fresh compares with the never-rotated key's versioned ciphertext");
        if self.errors() > 0 {
            println!("\n!!!!!!!! {} FAILED REQUESTS — THESE NUMBERS ARE NOT VALID !!!!!!!!", self.errors());
            for r in self.results.iter().filter(|r| r.load.errors > 0) {
                println!("  {}: first: {}", r.case.name, r.load.first_error.as_deref().unwrap_or("?"));
            }
        }
    }

    /// The machine-readable form.
    pub fn to_json(&self) -> Value {
        let p = &self.prepared;
        let cases: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                json!({
                    "case": r.case.name,
                    "label": r.case.label(p.newest),
                    "key": r.case.key(),
                    "requests_ok": r.load.ok,
                    "errors": r.load.errors,
                    "first_error": r.load.first_error,
                    "elapsed_s": r.load.elapsed.as_secs_f64(),
                    "req_per_s": r.rate(),
                    "round_req_per_s": r.round_rates,
                    "p50_ms": r.load.quantile_ms(0.50),
                    "p99_ms": r.load.quantile_ms(0.99),
                    "server_cpu_s": r.server_cpu_s,
                    "req_per_server_core_s": r.per_core(),
                    "vs_newest": self.ratio(r, Version::Newest),
                    "vs_fresh": self.ratio(r, Version::FreshVersioned),
                })
            })
            .collect();
        json!({
            "addr": self.addr,
            "protocol": self.protocol,
            "connections": self.connections,
            "seconds_per_round": self.seconds,
            "rounds": self.rounds,
            "key": ROTATED,
            "newest_version": p.newest,
            "rotations_this_run": p.rotated_now,
            "rotation_seconds": p.rotation_seconds,
            "errors": self.errors(),
            "cases": cases,
        })
    }
}

/// Connects, sets up and (unless `--setup-only`) measures.
pub async fn main(args: &Args, connector: &TlsConnector, rotations: u32) -> Result<Option<Report>, Error> {
    let password = crate::setup::admin_password(&args.dir)?;
    let mut admin = Client::connect(args.addr, connector).await.map_err(|e| format!("connect {}: {e}", args.addr))?;
    let prepared = setup(&mut admin, &password, rotations).await?;
    drop(admin);
    if args.setup_only {
        return Ok(None);
    }
    run(args, connector, prepared).await.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_name_the_versions_they_decrypt() {
        let input = [1u8, 2, 3];
        let request = |version| CASES.iter().find(|c| c.version == version).unwrap().request(&input);
        assert_eq!(request(Version::FreshLegacy), json!({"keyName": FRESH, "algorithm": ALGORITHM, "input": "AQID"}));
        assert_eq!(request(Version::Newest)["versioned"], true);
        assert_eq!(request(Version::Newest).get("keyVersion"), None);
        assert_eq!(request(Version::OldestVersioned), request(Version::Newest));
        let oldest = CASES.iter().find(|c| c.version == Version::OldestVersioned).unwrap();
        assert_eq!(oldest.encrypt_request(&input)["keyVersion"], 1);
        assert_eq!(request(Version::OldestByNumber).get("versioned"), None);
        assert_eq!(request(Version::OldestByNumber)["keyName"], ROTATED);
    }
}
