//! Networking: find the NIC, configure it from a DHCP lease, write
//! `/run/resolv.conf`.
//!
//! * [`iface`]: ioctls (flags, address, netmask, MTU, routes);
//! * [`dhcp`]: DHCP messages and leases (pure);
//! * [`client`]: the DHCP exchange over a UDP socket bound to the interface,
//!   and the lease keeper.

pub mod client;
pub mod dhcp;
pub mod iface;

use std::io;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::InitError;
use dhcp::DhcpLease;

/// Where the resolver configuration goes (the root is read-only; the image
/// can make `/etc/resolv.conf` a symlink to it).
pub const RESOLV_CONF: &str = "/run/resolv.conf";

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn ifindex(sys: &Path, name: &str) -> u32 {
    std::fs::read_to_string(sys.join(name).join("ifindex")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(u32::MAX)
}

/// Picks an interface from a `/sys/class/net`-like directory: `wanted` if
/// present; otherwise the non-`lo` interface with the lowest ifindex,
/// preferring ones backed by a device (`device` link) unless `any` is set.
pub fn pick_interface(sys: &Path, wanted: Option<&str>, any: bool) -> Option<String> {
    if let Some(w) = wanted {
        return sys.join(w).exists().then(|| w.to_string());
    }
    let mut cands: Vec<(u32, String)> = std::fs::read_dir(sys)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo")
        .filter(|n| any || sys.join(n).join("device").exists())
        .map(|n| (ifindex(sys, &n), n))
        .collect();
    cands.sort();
    cands.into_iter().next().map(|(_, n)| n)
}

/// Waits up to `timeout` for the interface to appear in `/sys/class/net`
/// (see [`pick_interface`]); at the deadline any non-`lo` interface will do.
pub fn wait_for_interface(wanted: Option<&str>, timeout: Duration) -> Result<String, InitError> {
    let sys = Path::new("/sys/class/net");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(n) = pick_interface(sys, wanted, false) {
            return Ok(n);
        }
        if Instant::now() >= deadline {
            if wanted.is_none() {
                if let Some(n) = pick_interface(sys, None, true) {
                    return Ok(n);
                }
            }
            return Err(InitError::NoInterface(match wanted {
                Some(w) => format!("{w} did not appear within {timeout:?}"),
                None => format!("no interface appeared within {timeout:?}"),
            }));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Configures `ifname` for `new`: address, netmask, MTU, default route (with
/// an on-link host route first when the gateway is outside the subnet) and
/// `/run/resolv.conf`. With `old`, only what changed is touched.
pub fn apply_lease(ifname: &str, old: Option<&DhcpLease>, new: &DhcpLease) -> io::Result<()> {
    let same_addr = old.is_some_and(|o| o.address == new.address && o.prefix_len == new.prefix_len);
    if let Some(o) = old {
        if let Some(gw) = o.gateway {
            if !same_addr || o.gateway != new.gateway {
                let _ = iface::del_default_route(ifname, gw);
            }
        }
    }
    if !same_addr {
        iface::set_addr(ifname, new.address)?;
        iface::set_netmask(ifname, new.netmask())?;
        log!(
            "network: {ifname} {}/{} (lease {:?}, server {})",
            new.address,
            new.prefix_len,
            new.lease_time,
            new.server
        );
    }
    if let Some(mtu) = new.mtu {
        if old.and_then(|o| o.mtu) != Some(mtu) {
            if let Err(e) = iface::set_mtu(ifname, mtu) {
                log!("network: cannot set MTU {mtu} on {ifname}: {e}");
            }
        }
    }
    iface::set_up(ifname)?;
    if let Some(gw) = new.gateway {
        if !dhcp::same_subnet(new.address, gw, new.prefix_len) {
            iface::add_host_route(ifname, gw)?;
        }
        iface::add_default_route(ifname, gw)?;
        if old.map(|o| o.gateway) != Some(new.gateway) {
            log!("network: default route via {gw}");
        }
    }
    if old.map(|o| (&o.dns, &o.domain)) != Some((&new.dns, &new.domain)) {
        if let Err(e) = write_resolv_conf(Path::new(RESOLV_CONF), &new.dns, new.domain.as_deref()) {
            log!("network: cannot write {RESOLV_CONF}: {e}");
        }
    }
    Ok(())
}

/// Removes the lease's address and default route from `ifname`.
pub fn deconfigure(ifname: &str, lease: &DhcpLease) {
    if let Some(gw) = lease.gateway {
        let _ = iface::del_default_route(ifname, gw);
    }
    if let Err(e) = iface::set_addr(ifname, Ipv4Addr::UNSPECIFIED) {
        log!("network: cannot remove address from {ifname}: {e}");
    }
    log!("network: {ifname} deconfigured ({} removed)", lease.address);
}

/// The text of a resolv.conf.
pub fn resolv_conf(dns: &[Ipv4Addr], domain: Option<&str>) -> String {
    let mut s = String::from("# written by vssm-init from DHCP\n");
    if let Some(d) = domain.filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_graphic())) {
        s.push_str(&format!("search {d}\n"));
    }
    for ns in dns.iter().take(3) {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    s
}

/// Writes [`resolv_conf`] to `path` atomically (temp file + rename).
pub fn write_resolv_conf(path: &Path, dns: &[Ipv4Addr], domain: Option<&str>) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, resolv_conf(dns, domain))?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_text() {
        let s = resolv_conf(&[Ipv4Addr::new(10, 0, 0, 2)], Some("ec2.internal"));
        assert!(s.contains("search ec2.internal\nnameserver 10.0.0.2\n"));
        assert!(!resolv_conf(&[], Some("bad domain")).contains("search"));
    }

    #[test]
    fn picks_interfaces() {
        let tmp = std::env::temp_dir().join(format!("vssm-init-net-{}", std::process::id()));
        for (n, idx, dev) in [("lo", 1, false), ("eth1", 3, true), ("ens5", 2, true), ("veth0", 4, false)] {
            std::fs::create_dir_all(tmp.join(n)).unwrap();
            std::fs::write(tmp.join(n).join("ifindex"), format!("{idx}\n")).unwrap();
            if dev {
                std::fs::create_dir_all(tmp.join(n).join("device")).unwrap();
            }
        }
        assert_eq!(pick_interface(&tmp, None, false).as_deref(), Some("ens5"));
        assert_eq!(pick_interface(&tmp, Some("veth0"), false).as_deref(), Some("veth0"));
        assert_eq!(pick_interface(&tmp, Some("nope"), false), None);
        std::fs::remove_dir_all(tmp.join("eth1")).unwrap();
        std::fs::remove_dir_all(tmp.join("ens5")).unwrap();
        assert_eq!(pick_interface(&tmp, None, false), None);
        assert_eq!(pick_interface(&tmp, None, true).as_deref(), Some("veth0"));
        std::fs::remove_dir_all(&tmp).unwrap();
        assert_eq!(format_mac(&[0x52, 0x54, 0, 0x12, 0x34, 0xab]), "52:54:00:12:34:ab");
    }
}
