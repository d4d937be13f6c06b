//! Result presentation: a readable table or one JSON document.

use serde_json::{json, Value};

use crate::grants::PolicyState;
use crate::load::LoadResult;
use crate::ops::{Op, Via};

/// Results of one op.
pub struct OpReport {
    /// The op.
    pub op: &'static Op,
    /// Load phase against the server.
    pub load: LoadResult,
    /// Bare primitive's rate on one thread (calls/s), if measured.
    pub bare_per_s: Option<f64>,
    /// Peak server RSS during this op's load phase (KiB).
    pub rss_peak_kib: Option<u64>,
    /// Server CPU during the load phase, percent of one core.
    pub server_cpu_pct: Option<f64>,
    /// This benchmark's own CPU during the load phase, percent of one core.
    pub bench_cpu_pct: Option<f64>,
}

/// Bench CPU share above which the client, not the server, may be the bottleneck.
const BENCH_SATURATED_PCT: f64 = 90.0;

impl OpReport {
    /// Adds a later round of the same op: counts and time add up, CPU
    /// shares are averaged over the time, the RSS peak is the higher one.
    pub fn absorb(&mut self, round: OpReport) {
        let (mine, theirs) = (self.load.elapsed.as_secs_f64(), round.load.elapsed.as_secs_f64());
        let weighted =
            |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| (a * mine + b * theirs) / (mine + theirs).max(1e-9));
        self.server_cpu_pct = weighted(self.server_cpu_pct, round.server_cpu_pct);
        self.bench_cpu_pct = weighted(self.bench_cpu_pct, round.bench_cpu_pct);
        self.rss_peak_kib = self.rss_peak_kib.max(round.rss_peak_kib);
        self.load.elapsed += round.load.elapsed;
        self.load.merge(round.load);
        self.load.latencies_us.sort_unstable();
    }

    /// Items per second: requests per second times the items of each.
    pub fn items_rate(&self) -> f64 {
        self.load.rate() * self.op.batch as f64
    }

    /// Items per second of server CPU time: the rate of one fully busy
    /// server core, also when the server was not saturated (the client was
    /// the bottleneck, or other work shared the core).
    pub fn items_per_cpu_s(&self) -> Option<f64> {
        self.server_cpu_pct.filter(|c| *c > 0.0).map(|c| self.items_rate() / (c / 100.0))
    }

    /// Server items per CPU-second divided by the bare primitive's
    /// single-core rate (per CPU-second too).
    pub fn ratio(&self) -> Option<f64> {
        let bare = self.bare_per_s.filter(|b| *b > 0.0)?;
        Some(self.items_per_cpu_s()? / bare)
    }

    /// Whether `single` is the single request of this batch op's items.
    fn batches(&self, single: &OpReport) -> bool {
        let (b, s) = (self.op, single.op);
        b.batch > 1
            && s.batch == 1
            && b.via == s.via
            && (b.path, b.algorithm, b.input_len, b.key.name) == (s.path, s.algorithm, s.input_len, s.key.name)
    }

    /// Whether `json` is this PKCS#11 op's request sent through the JSON API.
    fn through_module_of(&self, json: &OpReport) -> bool {
        let (p, j) = (self.op, json.op);
        p.via == Via::Pkcs11
            && j.via == Via::Json
            && (p.path, p.algorithm, p.input_len, p.batch, p.key.name)
                == (j.path, j.algorithm, j.input_len, j.batch, j.key.name)
    }
}

/// A PKCS#11 op's rate against the same request through the JSON API.
pub struct ModuleRatio {
    /// The PKCS#11 op.
    pub module: &'static str,
    /// The JSON API op.
    pub json: &'static str,
    /// Operations/s through the module over requests/s through the API (wall clock).
    pub wall: f64,
    /// The same per second of server CPU time.
    pub per_cpu: Option<f64>,
    /// The server's CPU in the module's phase and in the API's (percent of one core).
    pub server_cpu_pct: (Option<f64>, Option<f64>),
}

/// Server CPU shares (percentage points) further apart than this make the
/// wall-clock ratio of two phases compare unequal machines.
const SERVER_CPU_SPREAD_PCT: f64 = 10.0;

impl ModuleRatio {
    /// Whether the server had a different share of its core in the two
    /// phases (other work on the machine): then only the ratio per server
    /// CPU-second compares the two clients.
    pub fn uneven(&self) -> bool {
        match self.server_cpu_pct {
            (Some(m), Some(j)) => (m - j).abs() > SERVER_CPU_SPREAD_PCT,
            _ => false,
        }
    }
}

/// How many more items per second a batch op gets than its single request.
pub struct BatchGain {
    /// The batch op.
    pub batch: &'static str,
    /// The op of its single request.
    pub single: &'static str,
    /// Items/s of the batch over requests/s of the single (wall clock).
    pub wall: f64,
    /// The same per second of server CPU time.
    pub per_cpu: Option<f64>,
}

/// Results of the whole run.
pub struct Report {
    /// Server address.
    pub addr: String,
    /// Negotiated-by-request HTTP protocol ("http/1.1" or "h2").
    pub protocol: &'static str,
    /// Connections per op.
    pub connections: usize,
    /// Load seconds per op and round.
    pub seconds: f64,
    /// Interleaved rounds of every op.
    pub rounds: usize,
    /// Server RSS before load (KiB).
    pub rss_idle_kib: Option<u64>,
    /// The node's authorization mode during the run (`None`: the server predates it).
    pub policy: Option<PolicyState>,
    /// Per-op results, in run order.
    pub ops: Vec<OpReport>,
}

/// Formats an optional number with `decimals`, or "-".
fn fmt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

/// Formats an optional percentage, or "-".
fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}%"))
}

/// KiB to MiB.
fn mib(kib: Option<u64>) -> Option<f64> {
    kib.map(|k| k as f64 / 1024.0)
}

/// For each batch op whose single request was measured too: the batch
/// op, the single op, items/s of the batch over requests/s of the single,
/// and the same per server CPU-second.
pub fn batch_gains(ops: &[OpReport]) -> Vec<BatchGain> {
    let mut gains = Vec::new();
    for batch in ops {
        if let Some(single) = ops.iter().find(|single| batch.batches(single)) {
            if single.load.rate() > 0.0 {
                gains.push(BatchGain {
                    batch: batch.op.name,
                    single: single.op.name,
                    wall: batch.items_rate() / single.load.rate(),
                    per_cpu: batch.items_per_cpu_s().zip(single.items_per_cpu_s()).map(|(b, s)| b / s),
                });
            }
        }
    }
    gains
}

impl Report {
    /// Total failed requests over all ops.
    pub fn errors(&self) -> u64 {
        self.ops.iter().map(|o| o.load.errors).sum()
    }

    /// For each batch op whose single request was measured too: the batch
    /// op, the single op, items/s of the batch over requests/s of the
    /// single, and the same per server CPU-second.
    pub fn batch_gains(&self) -> Vec<BatchGain> {
        batch_gains(&self.ops)
    }

    /// For each PKCS#11 op whose JSON API counterpart was measured too:
    /// its rate over the API's, wall clock and per server CPU-second.
    pub fn module_ratios(&self) -> Vec<ModuleRatio> {
        let mut ratios = Vec::new();
        for module in &self.ops {
            if let Some(json) = self.ops.iter().find(|json| module.through_module_of(json)) {
                if json.load.rate() > 0.0 {
                    ratios.push(ModuleRatio {
                        module: module.op.name,
                        json: json.op.name,
                        wall: module.load.rate() / json.load.rate(),
                        per_cpu: module.items_per_cpu_s().zip(json.items_per_cpu_s()).map(|(m, j)| m / j),
                        server_cpu_pct: (module.server_cpu_pct, json.server_cpu_pct),
                    });
                }
            }
        }
        ratios
    }

    /// Peak server RSS over all load phases (KiB).
    pub fn rss_peak_kib(&self) -> Option<u64> {
        self.ops.iter().filter_map(|o| o.rss_peak_kib).max()
    }

    /// Prints the human-readable table to stdout.
    pub fn print_table(&self) {
        println!(
            "VSSM load: {} over {}, {} connections, {} s per op{} (bare: same primitive in-process, 1 thread, per CPU-second; items/cpu: items per second of server CPU time)",
            self.addr,
            self.protocol,
            self.connections,
            self.seconds,
            if self.rounds > 1 { format!(" in each of {} interleaved rounds", self.rounds) } else { String::new() }
        );
        match &self.policy {
            Some(policy) => println!("authorization: {policy}"),
            None => println!("authorization: none (the server predates it)"),
        }
        println!(
            "{:<30} {:>8} {:>8} {:>9} {:>7} {:>7} {:>6} {:>10} {:>8} {:>7} {:>7} {:>7}",
            "op",
            "req/s",
            "items/s",
            "items/cpu",
            "p50 ms",
            "p99 ms",
            "errors",
            "bare op/s",
            "srv/bare",
            "srv CPU",
            "cli CPU",
            "RSS MiB"
        );
        for r in &self.ops {
            println!(
                "{:<30} {:>8.0} {:>8.0} {:>9} {:>7} {:>7} {:>6} {:>10} {:>8} {:>7} {:>7} {:>7}",
                r.op.label,
                r.load.rate(),
                r.items_rate(),
                fmt(r.items_per_cpu_s(), 0),
                fmt(r.load.quantile_ms(0.50), 2),
                fmt(r.load.quantile_ms(0.99), 2),
                r.load.errors,
                fmt(r.bare_per_s, 0),
                pct(r.ratio().map(|x| x * 100.0)),
                pct(r.server_cpu_pct),
                pct(r.bench_cpu_pct),
                fmt(mib(r.rss_peak_kib), 1),
            );
        }
        for gain in self.batch_gains() {
            println!(
                "{}: {:.1}x the items/s of single requests ({}), {}x per server CPU-second",
                gain.batch,
                gain.wall,
                gain.single,
                fmt(gain.per_cpu, 1)
            );
        }
        let module_ops: Vec<_> = self.ops.iter().filter(|r| r.op.via == Via::Pkcs11).map(|r| r.op.name).collect();
        if !module_ops.is_empty() {
            println!(
                "{}: {} threads of one process, one PKCS#11 session each, through the module's own keep-alive HTTP/1.1 connections",
                module_ops.join(","),
                self.connections
            );
        }
        for ratio in self.module_ratios() {
            println!(
                "{}: {:.1}% of the JSON API's rate ({}), {} per server CPU-second",
                ratio.module,
                100.0 * ratio.wall,
                ratio.json,
                pct(ratio.per_cpu.map(|x| x * 100.0))
            );
            if ratio.uneven() {
                println!(
                    "note: the server had {} of its core for {} and {} for {}: other work shared it, compare per server CPU-second",
                    pct(ratio.server_cpu_pct.0),
                    ratio.module,
                    pct(ratio.server_cpu_pct.1),
                    ratio.json
                );
            }
        }
        if self.rss_idle_kib.is_some() {
            println!(
                "server RSS: idle {} MiB, peak under load {} MiB",
                fmt(mib(self.rss_idle_kib), 1),
                fmt(mib(self.rss_peak_kib()), 1)
            );
        }
        let saturated: Vec<_> = self
            .ops
            .iter()
            .filter(|r| r.bench_cpu_pct.is_some_and(|c| c >= BENCH_SATURATED_PCT))
            .map(|r| r.op.name)
            .collect();
        if !saturated.is_empty() {
            println!(
                "note: the bench used >= {BENCH_SATURATED_PCT}% of its core for {}: client-bound, server rate is a lower bound",
                saturated.join(",")
            );
        }
        let errors = self.errors();
        if errors > 0 {
            println!("\n!!!!!!!! {errors} FAILED REQUESTS — THESE NUMBERS ARE NOT VALID !!!!!!!!");
            for r in self.ops.iter().filter(|r| r.load.errors > 0) {
                println!(
                    "  {}: {} errors, first: {}",
                    r.op.name,
                    r.load.errors,
                    r.load.first_error.as_deref().unwrap_or("?")
                );
            }
        }
    }

    /// The machine-readable form.
    pub fn to_json(&self) -> Value {
        let ops: Vec<Value> = self
            .ops
            .iter()
            .map(|r| {
                json!({
                    "op": r.op.name,
                    "label": r.op.label,
                    "via": match r.op.via { Via::Json => "json", Via::Pkcs11 => "pkcs11" },
                    "requests_ok": r.load.ok,
                    "errors": r.load.errors,
                    "first_error": r.load.first_error,
                    "elapsed_s": r.load.elapsed.as_secs_f64(),
                    "req_per_s": r.load.rate(),
                    "batch": r.op.batch,
                    "items_per_s": r.items_rate(),
                    "items_per_server_cpu_s": r.items_per_cpu_s(),
                    "p50_ms": r.load.quantile_ms(0.50),
                    "p99_ms": r.load.quantile_ms(0.99),
                    "bare_per_s": r.bare_per_s,
                    "server_over_bare": r.ratio(),
                    "rss_peak_kib": r.rss_peak_kib,
                    "server_cpu_pct": r.server_cpu_pct,
                    "bench_cpu_pct": r.bench_cpu_pct,
                })
            })
            .collect();
        json!({
            "addr": self.addr,
            "protocol": self.protocol,
            "connections": self.connections,
            "seconds": self.seconds,
            "rounds": self.rounds,
            "rss_idle_kib": self.rss_idle_kib,
            "policy_enforced": self.policy.map(|p| p.enforced),
            "active_grants": self.policy.map(|p| p.active_grants),
            "rss_peak_kib": self.rss_peak_kib(),
            "errors": self.errors(),
            "ops": ops,
            "batch_gains": self.batch_gains().iter()
                .map(|g| json!({"batch": g.batch, "single": g.single, "gain": g.wall, "gain_per_server_cpu": g.per_cpu}))
                .collect::<Vec<_>>(),
            "module_ratios": self.module_ratios().iter()
                .map(|r| json!({"op": r.module, "json_op": r.json, "ratio": r.wall, "ratio_per_server_cpu": r.per_cpu, "uneven_server_cpu": r.uneven()}))
                .collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{OpReport, Report};
    use crate::load::LoadResult;
    use crate::ops;

    fn measured(name: &str, ok: u64, server_cpu_pct: f64) -> OpReport {
        OpReport {
            op: ops::find(name).unwrap(),
            load: LoadResult { ok, elapsed: Duration::from_secs(1), ..LoadResult::default() },
            bare_per_s: None,
            rss_peak_kib: None,
            server_cpu_pct: Some(server_cpu_pct),
            bench_cpu_pct: None,
        }
    }

    fn report(ops: Vec<OpReport>) -> Report {
        Report {
            addr: "127.0.0.1:8080".into(),
            protocol: "http/1.1",
            connections: 32,
            seconds: 1.0,
            rounds: 1,
            rss_idle_kib: None,
            policy: None,
            ops,
        }
    }

    #[test]
    fn the_module_is_compared_with_the_same_request_through_the_api() {
        let both = report(vec![measured("ecdsa", 1000, 100.0), measured("ecdsa-p11", 850, 90.0)]);
        let ratios = both.module_ratios();
        assert_eq!(ratios.len(), 1);
        assert_eq!((ratios[0].module, ratios[0].json), ("ecdsa-p11", "ecdsa"));
        assert!((ratios[0].wall - 0.85).abs() < 1e-9);
        assert!((ratios[0].per_cpu.unwrap() - 0.85 / 0.9).abs() < 1e-9);
        assert!(!ratios[0].uneven());
        let starved = report(vec![measured("ecdsa", 600, 50.0), measured("ecdsa-p11", 850, 90.0)]);
        assert!(starved.module_ratios()[0].uneven());
        // Neither a batch nor another operation is the module's counterpart,
        // and the module's op is not the single request of a batch.
        let others = report(vec![
            measured("ecdsax100", 10, 100.0),
            measured("rsa", 500, 100.0),
            measured("ecdsa-p11", 850, 90.0),
        ]);
        assert!(others.module_ratios().is_empty());
        assert!(others.batch_gains().is_empty());
    }
}
