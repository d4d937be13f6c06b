//! PID-1 duties of the VSSM appliance.
//!
//! The `vssm` binary is the only program in a read-only image and runs as
//! process 1. Before it starts its tokio runtimes it calls [`boot`], which
//! mounts the kernel file systems, sends logs to the serial console, loads the
//! kernel modules, waits for the kernel RNG, configures the network by DHCP,
//! sets the hostname and starts a zombie reaper. Afterwards
//! [`spawn_lease_keeper`] keeps the DHCP lease, [`watch_power_button`] turns an
//! ACPI power-button press into a callback and [`power_off`] ends the machine.
//!
//! Everything here is blocking code on plain threads; nothing needs a runtime.

#![deny(missing_docs)]

#[macro_use]
mod log;

pub mod console;
pub mod entropy;
pub mod hostname;
pub mod modules;
pub mod mounts;
pub mod net;
pub mod power;
pub mod reaper;

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use net::dhcp::DhcpLease;
pub use power::{install_fatal_handlers, power_off, watch_power_button};

/// True when this process is PID 1.
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// What [`boot`] should do differently from the defaults.
#[derive(Debug, Clone)]
pub struct BootOptions {
    /// Where the kernel modules live (default `/lib/modules`). Either the
    /// directory of one kernel release (holding `modules.dep`) or its parent
    /// (then the subdirectory named after `uname -r` is used when present).
    pub modules_dir: PathBuf,
    /// Interface to configure; default: the first non-`lo` interface backed
    /// by a device that appears.
    pub interface: Option<String>,
    /// Hostname to use when DHCP does not give one (option 12); default `vssm`.
    pub hostname: Option<String>,
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions { modules_dir: PathBuf::from("/lib/modules"), interface: None, hostname: None }
    }
}

/// What [`boot`] configured.
#[derive(Debug, Clone)]
pub struct BootInfo {
    /// The configured interface, e.g. `eth0` or `ens5`.
    pub interface: String,
    /// The hostname that was set.
    pub hostname: String,
    /// The lease (address, prefix, gateway, DNS), for [`spawn_lease_keeper`].
    pub lease: DhcpLease,
}

/// Why boot failed. PID 1 should log it and [`power_off`].
#[derive(Debug)]
pub enum InitError {
    /// Mounting a kernel file system failed.
    Mount {
        /// The mount point.
        target: PathBuf,
        /// The error.
        source: nix::Error,
    },
    /// No usable network interface appeared in time.
    NoInterface(String),
    /// DHCP found no lease.
    Dhcp(String),
    /// Configuring the interface or route failed.
    Network(std::io::Error),
    /// The kernel RNG did not become ready in time.
    Entropy(Duration),
    /// Modules could not be ordered (dependency cycle).
    Modules(String),
    /// Other I/O failure.
    Io(std::io::Error),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Mount { target, source } => {
                write!(f, "mounting {}: {}", target.display(), source)
            }
            InitError::NoInterface(s) => write!(f, "no network interface: {s}"),
            InitError::Dhcp(s) => write!(f, "dhcp: {s}"),
            InitError::Network(e) => write!(f, "network configuration: {e}"),
            InitError::Entropy(d) => write!(f, "kernel RNG not ready after {d:?}"),
            InitError::Modules(s) => write!(f, "kernel modules: {s}"),
            InitError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitError::Mount { source, .. } => Some(source),
            InitError::Network(e) | InitError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for InitError {
    fn from(e: std::io::Error) -> Self {
        InitError::Io(e)
    }
}

/// How long [`boot`] waits for the NIC to appear.
const NIC_WAIT: Duration = Duration::from_secs(10);
/// How long [`boot`] keeps trying DHCP before giving up.
const DHCP_BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long [`boot`] waits for the kernel RNG before failing.
const ENTROPY_TIMEOUT: Duration = Duration::from_secs(120);

/// Everything PID 1 must do before serving, in this order:
///
/// 1. block `SIGCHLD` and start the reaper thread ([`reaper`]), before any
///    other thread exists so every later thread inherits the mask;
/// 2. mount devtmpfs `/dev`, proc `/proc`, sysfs `/sys`, tmpfs `/run` and
///    `/tmp` ([`mounts`]; mount points are created when the root allows);
/// 3. send stdout/stderr to the serial console ([`console`]);
/// 4. load every `.ko` under `modules_dir` in dependency order ([`modules`]),
///    then remount `/` read-only;
/// 5. wait for the kernel RNG on a thread ([`entropy`]) while the network
///    comes up: `lo`, then the NIC (up to 10 s to appear), DHCP, address,
///    netmask, MTU, default route, `/run/resolv.conf` ([`net`]);
/// 6. set the hostname: DHCP option 12, else `options.hostname`, else `vssm`
///    ([`hostname`]).
///
/// Call it only as PID 1 (see [`is_pid1`]) and before starting other threads.
pub fn boot(options: &BootOptions) -> Result<BootInfo, InitError> {
    reaper::start()?;
    mounts::mount_all()?;
    if let Err(e) = console::attach() {
        log!("no serial console: {e}");
    }
    log!("booting");
    let report = modules::load_all(&options.modules_dir)?;
    match modules::disable_further_loading(Path::new(modules::MODULES_DISABLED)) {
        Ok(()) => log!("module loading disabled"),
        Err(e) => log!("warning: module loading stays enabled: {e}"),
    }
    // Nothing writes to / after this point (resolv.conf goes to /run).
    if let Err(e) = mounts::make_root_read_only() {
        log!("warning: root file system stays writable: {e}");
    }
    log!(
        "modules: {} loaded, {} already present, {} failed, {} missing",
        report.loaded.len(),
        report.already.len(),
        report.failed.len(),
        report.missing.len()
    );
    let rng = entropy::wait_in_background();

    net::iface::set_up("lo").map_err(InitError::Network)?;
    let ifname = net::wait_for_interface(options.interface.as_deref(), NIC_WAIT)?;
    net::iface::set_up(&ifname).map_err(InitError::Network)?;
    let mac = net::iface::hw_addr(&ifname).map_err(InitError::Network)?;
    log!("network: using {ifname} ({})", net::format_mac(&mac));
    let lease = net::client::acquire(&ifname, mac, DHCP_BOOT_TIMEOUT)?;
    net::apply_lease(&ifname, None, &lease).map_err(InitError::Network)?;

    let name = hostname::choose(lease.hostname.as_deref(), options.hostname.as_deref());
    if let Err(e) = hostname::set(&name) {
        log!("hostname: cannot set {name:?}: {e}");
    }

    entropy::join(rng, ENTROPY_TIMEOUT)?;
    log!("boot complete");
    Ok(BootInfo { interface: ifname, hostname: name, lease })
}

/// How long each secondary NIC gets for DHCP.
const SECONDARY_DHCP_TIMEOUT: Duration = Duration::from_secs(20);

/// Brings up every other NIC that has a device (a qemu cluster segment, a
/// second ENI) with DHCP, after [`boot`] configured `primary`. A NIC
/// without a lease is logged and left down; it is not fatal. Each lease is
/// kept by its own thread.
pub fn configure_other_interfaces(primary: &str) -> Vec<(String, Ipv4Addr)> {
    let mut configured = Vec::new();
    let Ok(entries) = std::fs::read_dir("/sys/class/net") else { return configured };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo" && n != primary && Path::new("/sys/class/net").join(n).join("device").exists())
        .collect();
    names.sort();
    for ifname in names {
        let result = net::iface::set_up(&ifname)
            .and_then(|()| net::iface::hw_addr(&ifname))
            .map_err(InitError::Network)
            .and_then(|mac| net::client::acquire(&ifname, mac, SECONDARY_DHCP_TIMEOUT))
            .and_then(|lease| net::apply_lease(&ifname, None, &lease).map(|()| lease).map_err(InitError::Network));
        match result {
            Ok(lease) => {
                log!("network: {ifname} has {}/{}", lease.address, lease.prefix_len);
                configured.push((ifname.clone(), lease.address));
                let name = ifname.clone();
                let _ = std::thread::Builder::new()
                    .name(format!("dhcp-{name}"))
                    .spawn(move || net::client::keep(name, lease));
            }
            Err(e) => log!("network: {ifname} left unconfigured: {e}"),
        }
    }
    configured
}

/// Keeps the DHCP lease: renew at T1 (unicast to the server), rebind at T2
/// (broadcast), re-DISCOVER on expiry; reconfigures the interface when the
/// address, netmask or gateway changes. Runs on its own thread and logs
/// changes; it never returns unless the lease is infinite.
pub fn spawn_lease_keeper(info: &BootInfo) -> std::thread::JoinHandle<()> {
    let ifname = info.interface.clone();
    let lease = info.lease.clone();
    std::thread::Builder::new()
        .name("dhcp-lease".into())
        .spawn(move || net::client::keep(ifname, lease))
        .expect("spawn dhcp lease thread")
}
