//! Command-line parsing (hand-rolled: a dozen flags do not justify a parser crate).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::ops::{self, Op, Via};

/// Usage text printed by `--help` and on a parse error.
pub const USAGE: &str = "\
usage: vssm-bench --dir DIR [options]

  --dir DIR            `vssm dev` data folder (rpc.crt, client.crt, client.key, admin-password)
  --addr HOST:PORT     client API address            [127.0.0.1:8080]
  --connections N      keep-alive connections per op [32]
  --seconds S          load duration per op          [10]
  --ops LIST           comma-separated subset of aes,hmac,ecdsa,rsa,rsadec,aes64,
                       aes64x100,ecdsax100 (these two: batches of 100),ecdsa-p11
                       (ecdsa through the PKCS#11 module)  [all; ecdsa-p11 with --pkcs11-module]
  --pkcs11-module PATH libvssm_pkcs11.so for the -p11 ops: configured for --dir/--addr
                       (DIR/bench-pkcs11.json), one session per connection's thread
  --h2                 negotiate HTTP/2 instead of HTTP/1.1
  --server-pid PID     report the server's VmRSS (idle, and peak under load)
  --bare-seconds S     duration of each in-process primitive measurement, 0 = skip [2]
  --grants N           put the node under authorization: N grants for other identities,
                       one for this client (exactly the use ops of the benchmark keys),
                       policy enforced; re-running reconciles instead of adding
  --setup-only         create the keys (and grants), print the policy mode and exit
  --rotations N        instead of the ops: rotate key bench-rotated to N+1 versions (re-running
                       rotates only what is missing), then compare AES-256-GCM decryption of
                       64 B with version 1, the newest version and a never-rotated key, in
                       interleaved rounds of --seconds per case (not with --grants)
  --rounds R           interleaved rounds: every op (or --rotations case) runs R times
                       in turn, --seconds each; rates are over all rounds  [1; 3 with --rotations]
  --json               print one JSON document instead of the table
";

/// Parsed command line.
#[derive(Debug)]
pub struct Args {
    /// `vssm dev` data folder.
    pub dir: PathBuf,
    /// Client API address (mutual TLS).
    pub addr: SocketAddr,
    /// Concurrent keep-alive connections, each a closed loop.
    pub connections: usize,
    /// Load duration of each op.
    pub duration: Duration,
    /// Ops to run, in table order.
    pub ops: Vec<&'static Op>,
    /// Use HTTP/2 (ALPN h2) instead of HTTP/1.1.
    pub h2: bool,
    /// Server process whose RSS is sampled.
    pub server_pid: Option<u32>,
    /// Duration of each bare-primitive measurement (zero skips them).
    pub bare_duration: Duration,
    /// Machine-readable output.
    pub json: bool,
    /// Grants for other identities to load before enforcing the policy
    /// (`None`: leave the node's authorization state as it is).
    pub grants: Option<usize>,
    /// Stop after creating the keys (and grants): no measurement.
    pub setup_only: bool,
    /// The PKCS#11 module the `Via::Pkcs11` ops load.
    pub pkcs11_module: Option<PathBuf>,
    /// Rotations of the rotation benchmark (`None`: the ops).
    pub rotations: Option<u32>,
    /// Interleaved rounds of the ops, or of the rotation benchmark's cases.
    pub rounds: usize,
}

impl Args {
    /// Parses `std::env::args()`; `Err` carries a message for the user
    /// (`Err(None)` means `--help` was asked for).
    pub fn parse() -> Result<Args, Option<String>> {
        Self::parse_from(std::env::args().skip(1))
    }

    /// Parses an argument list without the program name.
    pub fn parse_from(argv: impl IntoIterator<Item = String>) -> Result<Args, Option<String>> {
        let mut args = Args {
            dir: PathBuf::new(),
            addr: "127.0.0.1:8080".parse().unwrap(),
            connections: 32,
            duration: Duration::from_secs(10),
            ops: ops::OPS.iter().collect(),
            h2: false,
            server_pid: None,
            bare_duration: Duration::from_secs(2),
            json: false,
            grants: None,
            setup_only: false,
            pkcs11_module: None,
            rotations: None,
            rounds: 0,
        };
        let mut dir = None;
        let mut ops_given = false;
        let mut it = argv.into_iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| Some(format!("{flag} needs a value")));
            match flag.as_str() {
                "-h" | "--help" => return Err(None),
                "--dir" => dir = Some(PathBuf::from(value()?)),
                "--addr" => args.addr = parse_num(&flag, &value()?)?,
                "--connections" => args.connections = parse_num(&flag, &value()?)?,
                "--seconds" => args.duration = Duration::from_secs_f64(parse_num(&flag, &value()?)?),
                "--bare-seconds" => args.bare_duration = Duration::from_secs_f64(parse_num(&flag, &value()?)?),
                "--server-pid" => args.server_pid = Some(parse_num(&flag, &value()?)?),
                "--ops" => {
                    args.ops = parse_ops(&value()?)?;
                    ops_given = true;
                }
                "--pkcs11-module" => args.pkcs11_module = Some(PathBuf::from(value()?)),
                "--h2" => args.h2 = true,
                "--json" => args.json = true,
                "--grants" => args.grants = Some(parse_num(&flag, &value()?)?),
                "--setup-only" => args.setup_only = true,
                "--rotations" => args.rotations = Some(parse_num(&flag, &value()?)?),
                "--rounds" => match parse_num(&flag, &value()?)? {
                    0 => return Err(Some("--rounds must be positive".into())),
                    rounds => args.rounds = rounds,
                },
                _ => return Err(Some(format!("unknown argument {flag:?}"))),
            }
        }
        args.dir = dir.ok_or_else(|| Some("--dir is required".to_string()))?;
        if args.connections == 0 || args.duration.is_zero() {
            return Err(Some("--connections and --seconds must be positive".into()));
        }
        if args.rounds == 0 {
            args.rounds = if args.rotations.is_some() { 3 } else { 1 };
        }
        let needs_module = |op: &&Op| op.via == Via::Pkcs11;
        if args.pkcs11_module.is_none() {
            if ops_given && args.ops.iter().any(needs_module) {
                return Err(Some("the -p11 ops need --pkcs11-module PATH".into()));
            }
            args.ops.retain(|op| !needs_module(op));
        }
        if args.rotations.is_some() && args.grants.is_some() {
            return Err(Some("--rotations and --grants do not go together".into()));
        }
        Ok(args)
    }
}

/// Parses a flag value, naming the flag on failure.
fn parse_num<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, Option<String>> {
    value.parse().map_err(|_| Some(format!("{flag}: invalid value {value:?}")))
}

/// Resolves a comma-separated op list against [`ops::OPS`], keeping table order.
fn parse_ops(list: &str) -> Result<Vec<&'static Op>, Option<String>> {
    let wanted: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if let Some(bad) = wanted.iter().find(|w| ops::find(w).is_none()) {
        let known: Vec<_> = ops::OPS.iter().map(|o| o.name).collect();
        return Err(Some(format!("unknown op {bad:?} (known: {})", known.join(","))));
    }
    let selected: Vec<_> = ops::OPS.iter().filter(|o| wanted.contains(&o.name)).collect();
    if selected.is_empty() {
        return Err(Some("--ops is empty".into()));
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::Args;

    fn parse(argv: &[&str]) -> Result<Args, Option<String>> {
        Args::parse_from(["--dir", "d"].iter().chain(argv).map(|s| s.to_string()))
    }

    fn names(args: &Args) -> Vec<&'static str> {
        args.ops.iter().map(|op| op.name).collect()
    }

    #[test]
    fn the_pkcs11_ops_run_with_a_module_only() {
        assert!(!names(&parse(&[]).unwrap()).contains(&"ecdsa-p11"));
        assert!(names(&parse(&["--pkcs11-module", "m.so"]).unwrap()).contains(&"ecdsa-p11"));
        let both = parse(&["--ops", "ecdsa-p11,ecdsa", "--pkcs11-module", "m.so"]).unwrap();
        assert_eq!(names(&both), ["ecdsa", "ecdsa-p11"]);
        let missing = parse(&["--ops", "ecdsa,ecdsa-p11"]).unwrap_err().unwrap();
        assert!(missing.contains("--pkcs11-module"), "{missing}");
    }
}
