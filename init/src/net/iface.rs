//! Interface configuration with plain ioctls on an `AF_INET` datagram socket:
//! flags, address, netmask, MTU, hardware address, routes.
//!
//! Each request has its own typed wrapper (module `sys`), so a request can
//! only ever be given the struct the kernel reads or writes for it.

use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

/// One `unsafe fn` per ioctl request, with the exact argument type
/// (`SIOC*` requests are not `_IOC`-encoded, hence the `_bad` macros).
mod sys {
    nix::ioctl_readwrite_bad!(get_flags, libc::SIOCGIFFLAGS, libc::ifreq);
    nix::ioctl_write_ptr_bad!(set_flags, libc::SIOCSIFFLAGS, libc::ifreq);
    nix::ioctl_write_ptr_bad!(set_addr, libc::SIOCSIFADDR, libc::ifreq);
    nix::ioctl_write_ptr_bad!(set_netmask, libc::SIOCSIFNETMASK, libc::ifreq);
    nix::ioctl_write_ptr_bad!(set_mtu, libc::SIOCSIFMTU, libc::ifreq);
    nix::ioctl_readwrite_bad!(get_hwaddr, libc::SIOCGIFHWADDR, libc::ifreq);
    nix::ioctl_write_ptr_bad!(add_route, libc::SIOCADDRT, super::RtEntry);
    nix::ioctl_write_ptr_bad!(del_route, libc::SIOCDELRT, super::RtEntry);
}

fn ctl_socket() -> io::Result<OwnedFd> {
    Ok(socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?)
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad interface name"));
    }
    // SAFETY: ifreq is a C struct of a byte array and a union of integers,
    // byte arrays, sockaddrs and a raw pointer: all zeroes is a valid value
    // of each (and an empty, NUL-terminated name).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok(req)
}

/// The `ifru_flags` member of the union.
fn flags_of(req: &libc::ifreq) -> libc::c_short {
    // SAFETY: every member of the ifr_ifru union is plain old data (integers,
    // byte arrays, a raw pointer), so any bytes are a valid c_short.
    unsafe { req.ifr_ifru.ifru_flags }
}

/// A `struct sockaddr` holding an IPv4 address (port 0): the bytes of a
/// `sockaddr_in`, family first, then port and address in network order.
pub fn sockaddr_v4(addr: Ipv4Addr) -> libc::sockaddr {
    let mut sa_data = [0 as libc::c_char; 14];
    for (d, s) in sa_data[2..6].iter_mut().zip(addr.octets()) {
        *d = s as libc::c_char;
    }
    libc::sockaddr { sa_family: libc::AF_INET as libc::sa_family_t, sa_data }
}

/// Sets `IFF_UP` on the interface (`SIOCGIFFLAGS` + `SIOCSIFFLAGS`).
pub fn set_up(name: &str) -> io::Result<()> {
    let sock = ctl_socket()?;
    let mut req = ifreq(name)?;
    // SAFETY: `sock` is an open socket and `req` a live, initialised ifreq
    // (the argument of SIOCGIFFLAGS), valid for reads and writes.
    unsafe { sys::get_flags(sock.as_raw_fd(), &mut req) }?;
    req.ifr_ifru.ifru_flags = flags_of(&req) | libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS only reads the ifreq.
    unsafe { sys::set_flags(sock.as_raw_fd(), &req) }?;
    Ok(())
}

/// True when the interface has `IFF_UP`.
pub fn is_up(name: &str) -> io::Result<bool> {
    let sock = ctl_socket()?;
    let mut req = ifreq(name)?;
    // SAFETY: `sock` is an open socket and `req` a live, initialised ifreq
    // (the argument of SIOCGIFFLAGS), valid for reads and writes.
    unsafe { sys::get_flags(sock.as_raw_fd(), &mut req) }?;
    Ok(flags_of(&req) & libc::IFF_UP as libc::c_short != 0)
}

/// Sets the primary IPv4 address (`SIOCSIFADDR`); `0.0.0.0` removes it.
pub fn set_addr(name: &str, addr: Ipv4Addr) -> io::Result<()> {
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_addr = sockaddr_v4(addr);
    let sock = ctl_socket()?;
    // SAFETY: `sock` is an open socket and `req` a live, initialised ifreq,
    // the argument SIOCSIFADDR reads.
    unsafe { sys::set_addr(sock.as_raw_fd(), &req) }?;
    Ok(())
}

/// Sets the netmask (`SIOCSIFNETMASK`).
pub fn set_netmask(name: &str, mask: Ipv4Addr) -> io::Result<()> {
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_netmask = sockaddr_v4(mask);
    let sock = ctl_socket()?;
    // SAFETY: `sock` is an open socket and `req` a live, initialised ifreq,
    // the argument SIOCSIFNETMASK reads.
    unsafe { sys::set_netmask(sock.as_raw_fd(), &req) }?;
    Ok(())
}

/// Sets the MTU (`SIOCSIFMTU`).
pub fn set_mtu(name: &str, mtu: u16) -> io::Result<()> {
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_mtu = libc::c_int::from(mtu);
    let sock = ctl_socket()?;
    // SAFETY: `sock` is an open socket and `req` a live, initialised ifreq,
    // the argument SIOCSIFMTU reads.
    unsafe { sys::set_mtu(sock.as_raw_fd(), &req) }?;
    Ok(())
}

/// The Ethernet address (`SIOCGIFHWADDR`).
pub fn hw_addr(name: &str) -> io::Result<[u8; 6]> {
    let sock = ctl_socket()?;
    let mut req = ifreq(name)?;
    // SAFETY: `sock` is an open socket and `req` a live, initialised ifreq
    // (the argument of SIOCGIFHWADDR), valid for reads and writes.
    unsafe { sys::get_hwaddr(sock.as_raw_fd(), &mut req) }?;
    // SAFETY: the union holds plain old data only; any bytes are a valid
    // sockaddr, and the kernel has just written the hardware address there.
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

/// Which routing-table ioctl [`route`] makes.
#[derive(Clone, Copy)]
enum RouteOp {
    Add,
    Delete,
}

fn route(op: RouteOp, dev: &str, dst: Ipv4Addr, mask: Ipv4Addr, gateway: Option<Ipv4Addr>) -> io::Result<()> {
    let dev = CString::new(dev).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad interface name"))?;
    let mut flags = libc::RTF_UP;
    if gateway.is_some() {
        flags |= libc::RTF_GATEWAY;
    }
    if mask == Ipv4Addr::BROADCAST {
        flags |= libc::RTF_HOST;
    }
    let rt = RtEntry {
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
    let sock = ctl_socket()?;
    let fd = sock.as_raw_fd();
    // SAFETY: `fd` is an open socket; `rt` is a live, fully initialised
    // `struct rtentry` (layout checked by a test), the argument both requests
    // read; its `rt_dev` points into `dev`, which outlives the call.
    unsafe {
        match op {
            RouteOp::Add => sys::add_route(fd, &rt),
            RouteOp::Delete => sys::del_route(fd, &rt),
        }
    }?;
    Ok(())
}

/// Adds the default route via `gateway` on `dev` (`SIOCADDRT`); an existing
/// identical route (`EEXIST`) is fine.
pub fn add_default_route(dev: &str, gateway: Ipv4Addr) -> io::Result<()> {
    match route(RouteOp::Add, dev, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Some(gateway)) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        r => r,
    }
}

/// Deletes the default route via `gateway` on `dev` (`SIOCDELRT`); a missing
/// route (`ESRCH`) is fine.
pub fn del_default_route(dev: &str, gateway: Ipv4Addr) -> io::Result<()> {
    match route(RouteOp::Delete, dev, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Some(gateway)) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        r => r,
    }
}

/// Adds an on-link host route to `host` on `dev`, for a gateway outside the
/// subnet; `EEXIST` is fine.
pub fn add_host_route(dev: &str, host: Ipv4Addr) -> io::Result<()> {
    match route(RouteOp::Add, dev, host, Ipv4Addr::BROADCAST, None) {
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
    fn sockaddr_v4_is_a_sockaddr_in() {
        let sa = sockaddr_v4(Ipv4Addr::new(10, 77, 0, 11));
        assert_eq!(sa.sa_family, libc::AF_INET as libc::sa_family_t);
        let data: Vec<u8> = sa.sa_data.iter().map(|b| *b as u8).collect();
        assert_eq!(data, [0, 0, 10, 77, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn loopback_queries() {
        assert!(is_up("lo").unwrap());
        assert_eq!(hw_addr("lo").unwrap(), [0; 6]);
        assert!(ifreq("").is_err());
        assert!(ifreq("a-name-that-is-too-long").is_err());
        assert!(set_up("does-not-exist0").is_err());
    }
}
