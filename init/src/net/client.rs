//! The DHCP exchange: DISCOVER/OFFER/REQUEST/ACK over a UDP socket on
//! `0.0.0.0:68` bound to the interface (`SO_BINDTODEVICE`, `SO_BROADCAST`),
//! and the lease keeper (renew at T1, rebind at T2, re-DISCOVER on expiry).

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::dhcp::{self, DhcpLease, ReplyKind};
use crate::{entropy, InitError};

/// Client port.
pub const CLIENT_PORT: u16 = 68;
/// Server port.
pub const SERVER_PORT: u16 = 67;
/// First retransmission timeout; doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Largest retransmission timeout.
pub const MAX_BACKOFF: Duration = Duration::from_secs(16);

/// Opens the client socket: UDP `0.0.0.0:68`, bound to `ifname`, broadcast
/// allowed, address reuse so the keeper and a later boot step can reopen it.
pub fn open_socket(ifname: &str) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    s.bind_device(Some(ifname.as_bytes()))?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, CLIENT_PORT).into())?;
    Ok(s.into())
}

/// Sends `packet` to `dest:67` and waits up to `wait` for a reply to `xid`
/// that `accept` takes.
fn exchange<T>(
    sock: &UdpSocket,
    packet: &[u8],
    dest: Ipv4Addr,
    xid: u32,
    mac: &[u8; 6],
    wait: Duration,
    mut accept: impl FnMut(dhcp::Reply) -> Option<T>,
) -> io::Result<Option<T>> {
    sock.send_to(packet, SocketAddrV4::new(dest, SERVER_PORT))?;
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 1500];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        sock.set_read_timeout(Some(deadline - now))?;
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                if let Ok(reply) = dhcp::parse_reply(&buf[..n], xid, mac) {
                    if let Some(t) = accept(reply) {
                        return Ok(Some(t));
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

fn secs_since(start: Instant) -> u16 {
    start.elapsed().as_secs().min(u64::from(u16::MAX)) as u16
}

fn next_backoff(b: Duration) -> Duration {
    (b * 2).min(MAX_BACKOFF)
}

/// One DISCOVER/OFFER/REQUEST/ACK round. `Ok(None)` on timeout or NAK.
fn try_once(sock: &UdpSocket, mac: &[u8; 6], start: Instant, wait: Duration) -> io::Result<Option<DhcpLease>> {
    let xid = entropy::xid();
    let offer =
        exchange(sock, &dhcp::discover(xid, mac, secs_since(start)), Ipv4Addr::BROADCAST, xid, mac, wait, |r| {
            (r.kind == ReplyKind::Offer && !r.yiaddr.is_unspecified() && r.server.is_some()).then_some(r)
        })?;
    let Some(offer) = offer else { return Ok(None) };
    let server = offer.server.unwrap_or(Ipv4Addr::UNSPECIFIED);
    log!("dhcp: offer {} from {server}", offer.yiaddr);
    // The REQUEST is retransmitted a few times before starting over.
    let mut w = wait;
    for _ in 0..3 {
        let sent = Instant::now();
        let req = dhcp::request_selecting(xid, mac, secs_since(start), offer.yiaddr, server);
        let reply = exchange(sock, &req, Ipv4Addr::BROADCAST, xid, mac, w, |r| {
            (r.kind != ReplyKind::Offer && r.server.is_none_or(|s| s == server)).then_some(r)
        })?;
        match reply {
            Some(r) if r.kind == ReplyKind::Nak => {
                log!("dhcp: NAK from {server}");
                return Ok(None);
            }
            Some(r) => match r.into_lease(sent) {
                Some(lease) => return Ok(Some(lease)),
                None => {
                    log!("dhcp: unusable ACK from {server}");
                    return Ok(None);
                }
            },
            None => w = next_backoff(w),
        }
    }
    Ok(None)
}

/// Gets a lease on `ifname` (which must be up), retrying with exponential
/// backoff (1 s doubling to 16 s) until `total` has passed.
pub fn acquire(ifname: &str, mac: [u8; 6], total: Duration) -> Result<DhcpLease, InitError> {
    let start = Instant::now();
    let sock = open_socket(ifname).map_err(|e| InitError::Dhcp(format!("socket on {ifname}: {e}")))?;
    let mut wait = FIRST_BACKOFF;
    let mut last_err = None;
    while start.elapsed() < total {
        match try_once(&sock, &mac, start, wait) {
            Ok(Some(lease)) => {
                log!("dhcp: ACK {}/{} from {}", lease.address, lease.prefix_len, lease.server);
                return Ok(lease);
            }
            Ok(None) => {}
            Err(e) => {
                // E.g. ENETDOWN while the link comes up: wait and retry.
                log!("dhcp: {e}");
                last_err = Some(e);
                std::thread::sleep(wait);
            }
        }
        wait = next_backoff(wait);
    }
    Err(InitError::Dhcp(match last_err {
        Some(e) => format!("no lease on {ifname} after {total:?} (last error: {e})"),
        None => format!("no lease on {ifname} after {total:?}"),
    }))
}

/// How an attempt to renew or rebind a lease ended.
#[derive(Debug)]
pub enum Extension {
    /// The server acknowledged: the lease as it now stands.
    Acked(DhcpLease),
    /// The server refused the address.
    Nak,
    /// No answer before the deadline.
    TimedOut,
}

/// Renews (`dest` = the lease's server, unicast) or rebinds (`dest` =
/// 255.255.255.255) `lease` until `until`, retransmitting after half the
/// remaining time (at least 10 s).
pub fn extend(ifname: &str, mac: &[u8; 6], lease: &DhcpLease, dest: Ipv4Addr, until: Instant) -> Extension {
    let start = Instant::now();
    loop {
        let now = Instant::now();
        if now >= until {
            return Extension::TimedOut;
        }
        // RFC 2131 4.4.5: retransmit after half the remaining time, >= 60 s;
        // here at least 10 s so short test leases work too.
        let wait = ((until - now) / 2).max(Duration::from_secs(10)).min(until - now);
        let xid = entropy::xid();
        let sent = Instant::now();
        let packet = dhcp::request_renew(xid, mac, secs_since(start), lease.address);
        let reply = open_socket(ifname).and_then(|sock| {
            exchange(&sock, &packet, dest, xid, mac, wait, |r| (r.kind != ReplyKind::Offer).then_some(r))
        });
        match reply {
            Ok(Some(r)) if r.kind == ReplyKind::Nak => return Extension::Nak,
            Ok(Some(r)) => {
                if let Some(new) = r.into_lease(sent) {
                    return Extension::Acked(new);
                }
            }
            Ok(None) => {}
            Err(e) => {
                log!("dhcp: renew: {e}");
                std::thread::sleep(wait.min(Duration::from_secs(10)));
            }
        }
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// The lease keeper's loop (see [`crate::spawn_lease_keeper`]). Returns only
/// for an infinite lease.
pub fn keep(ifname: String, mut lease: DhcpLease) {
    let mac = match super::iface::hw_addr(&ifname) {
        Ok(m) => m,
        Err(e) => {
            log!("dhcp: lease keeper: no hardware address for {ifname}: {e}");
            return;
        }
    };
    loop {
        let (Some(t1), Some(t2), Some(total)) = (lease.t1, lease.t2, lease.lease_time) else {
            log!("dhcp: infinite lease on {}; keeper done", lease.address);
            return;
        };
        let expiry = lease.obtained + total;
        sleep_until(lease.obtained + t1);
        log!("dhcp: renewing {} with {}", lease.address, lease.server);
        let mut outcome = extend(&ifname, &mac, &lease, lease.server, lease.obtained + t2);
        if let Extension::TimedOut = outcome {
            log!("dhcp: rebinding {}", lease.address);
            outcome = extend(&ifname, &mac, &lease, Ipv4Addr::BROADCAST, expiry);
        }
        match outcome {
            Extension::Acked(new) => {
                if new.address != lease.address || new.gateway != lease.gateway || new.prefix_len != lease.prefix_len {
                    log!(
                        "dhcp: lease changed: {}/{} -> {}/{}",
                        lease.address,
                        lease.prefix_len,
                        new.address,
                        new.prefix_len
                    );
                } else {
                    log!("dhcp: lease on {} extended ({:?})", new.address, new.lease_time);
                }
                if let Err(e) = super::apply_lease(&ifname, Some(&lease), &new) {
                    log!("dhcp: cannot apply lease: {e}");
                }
                lease = new;
                continue;
            }
            Extension::Nak => log!("dhcp: NAK for {}", lease.address),
            Extension::TimedOut => log!("dhcp: lease on {} expired", lease.address),
        }
        super::deconfigure(&ifname, &lease);
        let new = loop {
            match acquire(&ifname, mac, Duration::from_secs(60)) {
                Ok(l) => break l,
                Err(e) => log!("dhcp: {e}; retrying"),
            }
        };
        if let Err(e) = super::apply_lease(&ifname, None, &new) {
            log!("dhcp: cannot apply lease: {e}");
        }
        lease = new;
    }
}
