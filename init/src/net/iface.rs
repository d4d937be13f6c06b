//! Interface configuration with plain ioctls on an `AF_INET` datagram socket:
//! flags, address, netmask, MTU, hardware address, routes.

use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn ctl_socket() -> io::Result<OwnedFd> {
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad interface name"));
    }
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok(req)
}

fn ioctl<T>(request: libc::c_ulong, arg: &mut T) -> io::Result<()> {
    let sock = ctl_socket()?;
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), request as _, arg as *mut T) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A `struct sockaddr` holding an IPv4 address (port 0).
pub fn sockaddr_v4(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from(addr).to_be() },
        sin_zero: [0; 8],
    };
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// Sets `IFF_UP` on the interface (`SIOCGIFFLAGS` + `SIOCSIFFLAGS`).
pub fn set_up(name: &str) -> io::Result<()> {
    let mut req = ifreq(name)?;
    ioctl(libc::SIOCGIFFLAGS, &mut req)?;
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    ioctl(libc::SIOCSIFFLAGS, &mut req)
}

/// True when the interface has `IFF_UP`.
pub fn is_up(name: &str) -> io::Result<bool> {
    let mut req = ifreq(name)?;
    ioctl(libc::SIOCGIFFLAGS, &mut req)?;
    Ok(unsafe { req.ifr_ifru.ifru_flags } & libc::IFF_UP as libc::c_short != 0)
}

/// Sets the primary IPv4 address (`SIOCSIFADDR`); `0.0.0.0` removes it.
pub fn set_addr(name: &str, addr: Ipv4Addr) -> io::Result<()> {
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_addr = sockaddr_v4(addr);
    ioctl(libc::SIOCSIFADDR, &mut req)
}

/// Sets the netmask (`SIOCSIFNETMASK`).
pub fn set_netmask(name: &str, mask: Ipv4Addr) -> io::Result<()> {
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_netmask = sockaddr_v4(mask);
    ioctl(libc::SIOCSIFNETMASK, &mut req)
}

/// Sets the MTU (`SIOCSIFMTU`).
pub fn set_mtu(name: &str, mtu: u16) -> io::Result<()> {
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_mtu = mtu as libc::c_int;
    ioctl(libc::SIOCSIFMTU, &mut req)
}

/// The Ethernet address (`SIOCGIFHWADDR`).
pub fn hw_addr(name: &str) -> io::Result<[u8; 6]> {
    let mut req = ifreq(name)?;
    ioctl(libc::SIOCGIFHWADDR, &mut req)?;
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (m, d) in mac.iter_mut().zip(data.iter()) {
        *m = *d as u8;
    }
    Ok(mac)
}

/// Linux `struct rtentry` (not in every libc target), for `SIOCADDRT`.
#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr,
    rt_gateway: libc::sockaddr,
    rt_genmask: libc::sockaddr,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_pad4: *mut libc::c_void,
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

fn route(
    request: libc::c_ulong,
    dev: &str,
    dst: Ipv4Addr,
    mask: Ipv4Addr,
    gateway: Option<Ipv4Addr>,
) -> io::Result<()> {
    let dev = CString::new(dev).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad interface name"))?;
    let mut flags = libc::RTF_UP;
    if gateway.is_some() {
        flags |= libc::RTF_GATEWAY;
    }
    if mask == Ipv4Addr::BROADCAST {
        flags |= libc::RTF_HOST;
    }
    let mut rt = RtEntry {
        rt_pad1: 0,
        rt_dst: sockaddr_v4(dst),
        rt_gateway: sockaddr_v4(gateway.unwrap_or(Ipv4Addr::UNSPECIFIED)),
        rt_genmask: sockaddr_v4(mask),
        rt_flags: flags,
        rt_pad2: 0,
        rt_pad3: 0,
        rt_pad4: std::ptr::null_mut(),
        rt_metric: 0,
        rt_dev: dev.as_ptr() as *mut libc::c_char,
        rt_mtu: 0,
        rt_window: 0,
        rt_irtt: 0,
    };
    ioctl(request, &mut rt)
}

/// Adds the default route via `gateway` on `dev` (`SIOCADDRT`); an existing
/// identical route (`EEXIST`) is fine.
pub fn add_default_route(dev: &str, gateway: Ipv4Addr) -> io::Result<()> {
    match route(libc::SIOCADDRT, dev, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Some(gateway)) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        r => r,
    }
}

/// Deletes the default route via `gateway` on `dev` (`SIOCDELRT`); a missing
/// route (`ESRCH`) is fine.
pub fn del_default_route(dev: &str, gateway: Ipv4Addr) -> io::Result<()> {
    match route(libc::SIOCDELRT, dev, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Some(gateway)) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        r => r,
    }
}

/// Adds an on-link host route to `host` on `dev`, for a gateway outside the
/// subnet; `EEXIST` is fine.
pub fn add_host_route(dev: &str, host: Ipv4Addr) -> io::Result<()> {
    match route(libc::SIOCADDRT, dev, host, Ipv4Addr::BROADCAST, None) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtentry_layout_matches_linux() {
        // x86_64 / aarch64: 8 + 3*16 + 2 + 2(pad) + 4(align) + 8 + 8 + 2 + 6(pad) + 8 + 8 + 8 + 2 + 6 = 120
        #[cfg(target_pointer_width = "64")]
        assert_eq!(std::mem::size_of::<RtEntry>(), 120);
    }

    #[test]
    fn loopback_queries() {
        assert_eq!(hw_addr("lo").unwrap(), [0; 6]);
        assert!(ifreq("").is_err());
        assert!(ifreq("a-name-that-is-too-long").is_err());
        assert!(set_up("does-not-exist0").is_err());
    }
}
