//! DHCPv4 messages (RFC 2131/2132): building the client's requests and
//! reading the server's replies, and turning an ACK into a [`DhcpLease`].
//! Pure functions, no I/O.
//!
//! The codec is written here rather than taken from a crate: `dhcproto` 0.15
//! panics on crafted replies (`Message::chaddr()` slices by an unchecked
//! `hlen`; `debug_assert!`s and length underflows in option decoding), and a
//! panic in PID 1 ends the machine. This parser reads only the fields and
//! options VSSM uses, treats malformed options as absent, and is
//! property-tested never to panic.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// BOOTP op: request.
pub const BOOTREQUEST: u8 = 1;
/// BOOTP op: reply.
pub const BOOTREPLY: u8 = 2;
/// The magic cookie 99.130.83.99 that starts the options.
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Fixed header length before the magic cookie.
pub const HEADER_LEN: usize = 236;

/// Option codes used here.
pub mod opt {
    /// Subnet mask.
    pub const SUBNET_MASK: u8 = 1;
    /// Routers.
    pub const ROUTER: u8 = 3;
    /// DNS servers.
    pub const DNS: u8 = 6;
    /// Host name.
    pub const HOSTNAME: u8 = 12;
    /// Domain name.
    pub const DOMAIN_NAME: u8 = 15;
    /// Interface MTU.
    pub const MTU: u8 = 26;
    /// Broadcast address.
    pub const BROADCAST: u8 = 28;
    /// Requested IP address.
    pub const REQUESTED_IP: u8 = 50;
    /// Lease time.
    pub const LEASE_TIME: u8 = 51;
    /// Message type.
    pub const MESSAGE_TYPE: u8 = 53;
    /// Server identifier.
    pub const SERVER_ID: u8 = 54;
    /// Parameter request list.
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    /// Maximum message size.
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    /// Renewal time T1.
    pub const RENEWAL_TIME: u8 = 58;
    /// Rebinding time T2.
    pub const REBINDING_TIME: u8 = 59;
    /// Client identifier.
    pub const CLIENT_ID: u8 = 61;
    /// Padding.
    pub const PAD: u8 = 0;
    /// End of options.
    pub const END: u8 = 255;
}

/// DHCP message types (option 53).
pub mod msg_type {
    /// DHCPDISCOVER.
    pub const DISCOVER: u8 = 1;
    /// DHCPOFFER.
    pub const OFFER: u8 = 2;
    /// DHCPREQUEST.
    pub const REQUEST: u8 = 3;
    /// DHCPACK.
    pub const ACK: u8 = 5;
    /// DHCPNAK.
    pub const NAK: u8 = 6;
    /// DHCPRELEASE.
    pub const RELEASE: u8 = 7;
}

/// Options the client asks for (option 55).
pub const PARAMETER_REQUEST_LIST: &[u8] = &[
    opt::SUBNET_MASK,
    opt::ROUTER,
    opt::DNS,
    opt::HOSTNAME,
    opt::DOMAIN_NAME,
    opt::MTU,
    opt::BROADCAST,
    opt::LEASE_TIME,
    opt::SERVER_ID,
    opt::RENEWAL_TIME,
    opt::REBINDING_TIME,
];

/// Lease time assumed when an ACK has no (valid) option 51.
pub const DEFAULT_LEASE_SECS: u64 = 3600;

/// Largest DHCP message the client accepts (option 57).
pub const MAX_MESSAGE_SIZE: u16 = 1500;
/// A lease: what an ACK gave, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpLease {
    /// Our address (`yiaddr`).
    pub address: Ipv4Addr,
    /// Prefix length from option 1 (classful default when absent).
    pub prefix_len: u8,
    /// Default gateway: the first router of option 3.
    pub gateway: Option<Ipv4Addr>,
    /// DNS servers (option 6).
    pub dns: Vec<Ipv4Addr>,
    /// Hostname (option 12).
    pub hostname: Option<String>,
    /// Domain name (option 15).
    pub domain: Option<String>,
    /// Interface MTU (option 26).
    pub mtu: Option<u16>,
    /// The server that granted it (option 54).
    pub server: Ipv4Addr,
    /// Lease time (option 51); `None` means infinite.
    pub lease_time: Option<Duration>,
    /// Renewal time T1 (option 58, default lease/2).
    pub t1: Option<Duration>,
    /// Rebinding time T2 (option 59, default lease*7/8).
    pub t2: Option<Duration>,
    /// When the request that got this lease was sent.
    pub obtained: Instant,
}

impl DhcpLease {
    /// The netmask of [`Self::prefix_len`].
    pub fn netmask(&self) -> Ipv4Addr {
        netmask(self.prefix_len)
    }
}

/// The netmask for a prefix length (lengths above 32 count as 32).
pub fn netmask(prefix_len: u8) -> Ipv4Addr {
    let p = u32::from(prefix_len.min(32));
    if p == 0 {
        Ipv4Addr::UNSPECIFIED
    } else {
        Ipv4Addr::from(u32::MAX << (32 - p))
    }
}

/// The prefix length of a netmask; `None` if its one-bits are not contiguous.
pub fn prefix_len(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// The classful prefix for an address, used when a server sends no netmask.
pub fn classful_prefix(addr: Ipv4Addr) -> u8 {
    match addr.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

/// True when `a` and `b` are in the same `prefix_len` network.
pub fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, prefix_len: u8) -> bool {
    let m = u32::from(netmask(prefix_len));
    u32::from(a) & m == u32::from(b) & m
}

/// Client identifier (option 61): hardware type 1 (Ethernet) and the MAC.
pub fn client_id(mac: &[u8; 6]) -> Vec<u8> {
    let mut id = vec![1u8];
    id.extend_from_slice(mac);
    id
}

/// The fixed fields of a client message.
struct Header<'a> {
    kind: u8,
    xid: u32,
    mac: &'a [u8; 6],
    secs: u16,
    ciaddr: Ipv4Addr,
    broadcast: bool,
}

/// Builds a client message: BOOTP header, magic cookie, option 53 first,
/// then `extra` options in the order given, then 55, 57 and 61 unless
/// `minimal`, then End.
fn build(header: Header, extra: &[(u8, &[u8])], minimal: bool) -> Vec<u8> {
    let Header { kind, xid, mac, secs, ciaddr, broadcast } = header;
    let mut b = Vec::with_capacity(300);
    b.extend_from_slice(&[BOOTREQUEST, 1, 6, 0]); // op, htype Ethernet, hlen, hops
    b.extend_from_slice(&xid.to_be_bytes());
    b.extend_from_slice(&secs.to_be_bytes());
    b.extend_from_slice(&(if broadcast { 0x8000u16 } else { 0 }).to_be_bytes());
    b.extend_from_slice(&ciaddr.octets());
    b.extend_from_slice(&[0u8; 12]); // yiaddr, siaddr, giaddr
    b.extend_from_slice(mac);
    b.extend_from_slice(&[0u8; 10]); // chaddr padding
    b.extend_from_slice(&[0u8; 64 + 128]); // sname, file
    b.extend_from_slice(&MAGIC_COOKIE);
    let mut put = |code: u8, value: &[u8]| {
        b.push(code);
        b.push(value.len() as u8);
        b.extend_from_slice(value);
    };
    put(opt::MESSAGE_TYPE, &[kind]);
    for (code, value) in extra {
        put(*code, value);
    }
    if !minimal {
        put(opt::PARAMETER_REQUEST_LIST, PARAMETER_REQUEST_LIST);
        put(opt::MAX_MESSAGE_SIZE, &MAX_MESSAGE_SIZE.to_be_bytes());
    }
    put(opt::CLIENT_ID, &client_id(mac));
    b.push(opt::END);
    // Pad to the 300-byte BOOTP minimum some servers and relays expect.
    if b.len() < 300 {
        b.resize(300, opt::PAD);
    }
    b
}

/// DHCPDISCOVER, broadcast flag set (we have no address to receive unicast).
pub fn discover(xid: u32, mac: &[u8; 6], secs: u16) -> Vec<u8> {
    let header = Header { kind: msg_type::DISCOVER, xid, mac, secs, ciaddr: Ipv4Addr::UNSPECIFIED, broadcast: true };
    build(header, &[], false)
}

/// DHCPREQUEST in SELECTING state: requested address (50) and server id (54)
/// from the OFFER, broadcast.
pub fn request_selecting(xid: u32, mac: &[u8; 6], secs: u16, offered: Ipv4Addr, server: Ipv4Addr) -> Vec<u8> {
    let extra: [(u8, &[u8]); 2] = [(opt::REQUESTED_IP, &offered.octets()), (opt::SERVER_ID, &server.octets())];
    let header = Header { kind: msg_type::REQUEST, xid, mac, secs, ciaddr: Ipv4Addr::UNSPECIFIED, broadcast: true };
    build(header, &extra, false)
}

/// DHCPREQUEST in RENEWING (unicast to the server) or REBINDING (broadcast)
/// state: `ciaddr` is our address, no options 50/54 (RFC 2131 4.3.2).
pub fn request_renew(xid: u32, mac: &[u8; 6], secs: u16, ciaddr: Ipv4Addr) -> Vec<u8> {
    build(Header { kind: msg_type::REQUEST, xid, mac, secs, ciaddr, broadcast: false }, &[], false)
}

/// DHCPRELEASE of `ciaddr` to `server`.
pub fn release(xid: u32, mac: &[u8; 6], ciaddr: Ipv4Addr, server: Ipv4Addr) -> Vec<u8> {
    let extra: [(u8, &[u8]); 1] = [(opt::SERVER_ID, &server.octets())];
    build(Header { kind: msg_type::RELEASE, xid, mac, secs: 0, ciaddr, broadcast: false }, &extra, true)
}

/// Reads the options after the magic cookie into code -> value. Repeated
/// codes are concatenated (RFC 3396). Stops at End, at the end of the data,
/// or at an option whose length runs past the end (that option is dropped).
pub fn parse_options(data: &[u8]) -> BTreeMap<u8, Vec<u8>> {
    let mut out: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    let mut i = 0;
    while let Some(&code) = data.get(i) {
        match code {
            opt::PAD => i += 1,
            opt::END => break,
            _ => {
                let Some(&len) = data.get(i + 1) else { break };
                let Some(value) = data.get(i + 2..i + 2 + len as usize) else { break };
                out.entry(code).or_default().extend_from_slice(value);
                i += 2 + len as usize;
            }
        }
    }
    out
}

fn ipv4(v: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(v).ok().map(Ipv4Addr::from)
}

fn ipv4s(v: &[u8]) -> Vec<Ipv4Addr> {
    if !v.len().is_multiple_of(4) {
        return Vec::new();
    }
    v.chunks_exact(4).filter_map(ipv4).collect()
}

fn u32_be(v: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(v).ok().map(u32::from_be_bytes)
}

fn text(v: &[u8]) -> Option<String> {
    // Servers sometimes NUL-terminate strings.
    let v = v.split(|b| *b == 0).next().unwrap_or(&[]);
    let s = std::str::from_utf8(v).ok()?;
    (!s.is_empty()).then(|| s.to_string())
}

/// The kind of a server reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// DHCPOFFER.
    Offer,
    /// DHCPACK.
    Ack,
    /// DHCPNAK.
    Nak,
}

/// A server reply, reduced to what the client uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// OFFER, ACK or NAK.
    pub kind: ReplyKind,
    /// Transaction id.
    pub xid: u32,
    /// `yiaddr`: the address offered or granted.
    pub yiaddr: Ipv4Addr,
    /// Option 54 (falls back to `siaddr` when absent, which some servers do).
    pub server: Option<Ipv4Addr>,
    /// Option 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3.
    pub routers: Vec<Ipv4Addr>,
    /// Option 6.
    pub dns: Vec<Ipv4Addr>,
    /// Option 12.
    pub hostname: Option<String>,
    /// Option 15.
    pub domain: Option<String>,
    /// Option 26.
    pub mtu: Option<u16>,
    /// Option 51 in seconds (`u32::MAX` = infinite; absent: [`DEFAULT_LEASE_SECS`]).
    pub lease_secs: Option<u32>,
    /// Option 58.
    pub t1_secs: Option<u32>,
    /// Option 59.
    pub t2_secs: Option<u32>,
}

/// Why a datagram is not a reply for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not a well-formed DHCP message.
    Malformed(String),
    /// A request (op 1), not a reply.
    NotAReply,
    /// No option 53, or a type a server does not send to clients.
    BadType,
    /// For another transaction or another client.
    NotOurs,
}

/// Decodes a datagram as a server reply for transaction `xid` and client
/// `mac`. Options with a wrong length count as absent. Never panics on any
/// input.
pub fn parse_reply(bytes: &[u8], xid: u32, mac: &[u8; 6]) -> Result<Reply, ParseError> {
    if bytes.len() < HEADER_LEN + 4 {
        return Err(ParseError::Malformed(format!("{} bytes is too short", bytes.len())));
    }
    if bytes[HEADER_LEN..HEADER_LEN + 4] != MAGIC_COOKIE {
        return Err(ParseError::Malformed("no magic cookie".into()));
    }
    if bytes[0] != BOOTREPLY {
        return Err(ParseError::NotAReply);
    }
    let msg_xid = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if msg_xid != xid || bytes[1] != 1 || bytes[2] != 6 || bytes[28..34] != mac[..] {
        return Err(ParseError::NotOurs);
    }
    let opts = parse_options(&bytes[HEADER_LEN + 4..]);
    let get = |code: u8| opts.get(&code).map(Vec::as_slice);
    let kind = match get(opt::MESSAGE_TYPE) {
        Some([msg_type::OFFER]) => ReplyKind::Offer,
        Some([msg_type::ACK]) => ReplyKind::Ack,
        Some([msg_type::NAK]) => ReplyKind::Nak,
        _ => return Err(ParseError::BadType),
    };
    let yiaddr = Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19]);
    let siaddr = Ipv4Addr::new(bytes[20], bytes[21], bytes[22], bytes[23]);
    let server = get(opt::SERVER_ID).and_then(ipv4).or_else(|| (!siaddr.is_unspecified()).then_some(siaddr));
    Ok(Reply {
        kind,
        xid,
        yiaddr,
        server,
        subnet_mask: get(opt::SUBNET_MASK).and_then(ipv4),
        routers: get(opt::ROUTER).map(ipv4s).unwrap_or_default(),
        dns: get(opt::DNS).map(ipv4s).unwrap_or_default(),
        hostname: get(opt::HOSTNAME).and_then(text),
        domain: get(opt::DOMAIN_NAME).and_then(text),
        mtu: get(opt::MTU).and_then(|v| <[u8; 2]>::try_from(v).ok()).map(u16::from_be_bytes),
        lease_secs: get(opt::LEASE_TIME).and_then(u32_be),
        t1_secs: get(opt::RENEWAL_TIME).and_then(u32_be),
        t2_secs: get(opt::REBINDING_TIME).and_then(u32_be),
    })
}

impl Reply {
    /// Turns an ACK into a lease (obtained at `sent`, the time the request
    /// went out). `None` when it is not an ACK or lacks an address or
    /// server. Lease times are sanitised: T1 <= T2 <= lease, defaults
    /// lease/2 and lease*7/8; an MTU below 576 is ignored.
    pub fn into_lease(self, sent: Instant) -> Option<DhcpLease> {
        if self.kind != ReplyKind::Ack || self.yiaddr.is_unspecified() {
            return None;
        }
        let server = self.server?;
        let prefix_len = self.subnet_mask.and_then(prefix_len).unwrap_or_else(|| classful_prefix(self.yiaddr));
        let lease = match self.lease_secs {
            Some(u32::MAX) => None,
            // An ACK must carry option 51; without a usable one, assume a
            // short lease rather than keeping the address forever.
            None => Some(DEFAULT_LEASE_SECS),
            Some(s) => Some(u64::from(s.max(10))),
        };
        let (t1, t2) = match lease {
            None => (None, None),
            Some(l) => {
                let t2 = self.t2_secs.map(u64::from).filter(|t| *t < l).unwrap_or(l * 7 / 8);
                let t1 = self.t1_secs.map(u64::from).filter(|t| *t < t2).unwrap_or((l / 2).min(t2));
                (Some(Duration::from_secs(t1)), Some(Duration::from_secs(t2)))
            }
        };
        Some(DhcpLease {
            address: self.yiaddr,
            prefix_len,
            gateway: self.routers.iter().copied().find(|r| !r.is_unspecified()),
            dns: self.dns,
            hostname: self.hostname,
            domain: self.domain,
            mtu: self.mtu.filter(|m| *m >= 576),
            server,
            lease_time: lease.map(Duration::from_secs),
            t1,
            t2,
            obtained: sent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    const XID: u32 = 0xdead_beef;

    /// Walks the options of an encoded message: (code, value) pairs, up to End.
    fn options(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut i = 240;
        while i < bytes.len() {
            let code = bytes[i];
            if code == 255 {
                out.push((255, vec![]));
                break;
            }
            if code == 0 {
                i += 1;
                continue;
            }
            let len = bytes[i + 1] as usize;
            out.push((code, bytes[i + 2..i + 2 + len].to_vec()));
            i += 2 + len;
        }
        out
    }

    #[test]
    fn discover_bytes() {
        let b = discover(XID, &MAC, 3);
        assert!(b.len() >= 240 + 3);
        assert_eq!(b[0], 1, "op BOOTREQUEST");
        assert_eq!(b[1], 1, "htype ethernet");
        assert_eq!(b[2], 6, "hlen");
        assert_eq!(b[3], 0, "hops");
        assert_eq!(&b[4..8], &XID.to_be_bytes(), "xid");
        assert_eq!(&b[8..10], &3u16.to_be_bytes(), "secs");
        assert_eq!(&b[10..12], &[0x80, 0x00], "flags: broadcast");
        assert_eq!(&b[12..28], &[0u8; 16], "ciaddr yiaddr siaddr giaddr");
        assert_eq!(&b[28..34], &MAC, "chaddr");
        assert_eq!(&b[34..44], &[0u8; 10], "chaddr padding");
        assert!(b[44..236].iter().all(|x| *x == 0), "sname, file");
        assert_eq!(&b[236..240], &[99, 130, 83, 99], "magic cookie");
        let opts = options(&b);
        let codes: Vec<u8> = opts.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, vec![53, 55, 57, 61, 255]);
        assert_eq!(opts[0].1, vec![1], "DHCPDISCOVER");
        assert_eq!(opts[1].1, vec![1, 3, 6, 12, 15, 26, 28, 51, 54, 58, 59]);
        assert_eq!(opts[2].1, 1500u16.to_be_bytes().to_vec());
        assert_eq!(opts[3].1, [&[1u8][..], &MAC[..]].concat(), "client id");
    }

    #[test]
    fn request_bytes() {
        let offered = Ipv4Addr::new(10, 0, 2, 15);
        let server = Ipv4Addr::new(10, 0, 2, 2);
        let b = request_selecting(XID, &MAC, 0, offered, server);
        assert_eq!(&b[10..12], &[0x80, 0x00]);
        assert_eq!(&b[12..16], &[0; 4], "ciaddr empty while selecting");
        let opts = options(&b);
        assert!(opts.contains(&(53, vec![3])));
        assert!(opts.contains(&(50, offered.octets().to_vec())));
        assert!(opts.contains(&(54, server.octets().to_vec())));

        let r = request_renew(XID, &MAC, 0, offered);
        assert_eq!(&r[10..12], &[0, 0], "renewal is unicast");
        assert_eq!(&r[12..16], &offered.octets(), "ciaddr set");
        let opts = options(&r);
        assert!(opts.contains(&(53, vec![3])));
        assert!(!opts.iter().any(|(c, _)| *c == 50 || *c == 54));

        let rel = options(&release(XID, &MAC, offered, server));
        assert!(rel.contains(&(53, vec![7])));
        assert!(rel.contains(&(54, server.octets().to_vec())));
    }

    /// A realistic ACK as a server on a /20 would send it (AWS-like).
    fn ack_bytes() -> Vec<u8> {
        let mut b = vec![0u8; 240];
        b[0] = 2; // BOOTREPLY
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&XID.to_be_bytes());
        b[10] = 0x80;
        b[16..20].copy_from_slice(&[172, 31, 5, 17]); // yiaddr
        b[20..24].copy_from_slice(&[172, 31, 0, 1]); // siaddr
        b[28..34].copy_from_slice(&MAC);
        b[236..240].copy_from_slice(&[99, 130, 83, 99]);
        let opts: &[&[u8]] = &[
            &[53, 1, 5],
            &[54, 4, 172, 31, 0, 1],
            &[51, 4, 0, 0, 0x0e, 0x10], // 3600 s
            &[58, 4, 0, 0, 0x07, 0x08], // 1800 s
            &[59, 4, 0, 0, 0x0c, 0x4e], // 3150 s
            &[1, 4, 255, 255, 240, 0],
            &[3, 4, 172, 31, 0, 1],
            &[6, 8, 172, 31, 0, 2, 8, 8, 8, 8],
            &[15, 27],
            b"eu-west-1.compute.internal",
            &[0], // pad
            &[12, 15],
            b"ip-172-31-5-17",
            &[26, 2, 0x23, 0x29], // MTU 9001
            &[255],
        ];
        // Fix up lengths written above for the two strings.
        let mut o: Vec<u8> = opts.concat();
        let dn = o.iter().position(|x| *x == 15).unwrap();
        o[dn + 1] = b"eu-west-1.compute.internal".len() as u8;
        let hn = o.windows(2).position(|w| w == [12, 15]).unwrap();
        o[hn + 1] = b"ip-172-31-5-17".len() as u8;
        b.extend_from_slice(&o);
        b
    }

    #[test]
    fn parse_ack() {
        let r = parse_reply(&ack_bytes(), XID, &MAC).unwrap();
        assert_eq!(r.kind, ReplyKind::Ack);
        assert_eq!(r.yiaddr, Ipv4Addr::new(172, 31, 5, 17));
        assert_eq!(r.server, Some(Ipv4Addr::new(172, 31, 0, 1)));
        assert_eq!(r.subnet_mask, Some(Ipv4Addr::new(255, 255, 240, 0)));
        assert_eq!(r.routers, vec![Ipv4Addr::new(172, 31, 0, 1)]);
        assert_eq!(r.dns, vec![Ipv4Addr::new(172, 31, 0, 2), Ipv4Addr::new(8, 8, 8, 8)]);
        assert_eq!(r.hostname.as_deref(), Some("ip-172-31-5-17"));
        assert_eq!(r.domain.as_deref(), Some("eu-west-1.compute.internal"));
        assert_eq!(r.mtu, Some(9001));
        assert_eq!((r.lease_secs, r.t1_secs, r.t2_secs), (Some(3600), Some(1800), Some(3150)));
        let now = Instant::now();
        let lease = r.into_lease(now).unwrap();
        assert_eq!(lease.prefix_len, 20);
        assert_eq!(lease.netmask(), Ipv4Addr::new(255, 255, 240, 0));
        assert_eq!(lease.gateway, Some(Ipv4Addr::new(172, 31, 0, 1)));
        assert_eq!(lease.lease_time, Some(Duration::from_secs(3600)));
        assert_eq!(lease.t1, Some(Duration::from_secs(1800)));
        assert_eq!(lease.t2, Some(Duration::from_secs(3150)));
    }

    #[test]
    fn parse_offer_and_foreign() {
        let mut b = ack_bytes();
        b[242] = 2; // option 53 value: OFFER
        let r = parse_reply(&b, XID, &MAC).unwrap();
        assert_eq!(r.kind, ReplyKind::Offer);
        assert!(r.into_lease(Instant::now()).is_none(), "an offer is no lease");
        assert_eq!(parse_reply(&b, XID + 1, &MAC), Err(ParseError::NotOurs));
        assert_eq!(parse_reply(&b, XID, &[1, 2, 3, 4, 5, 6]), Err(ParseError::NotOurs));
        let mut req = b.clone();
        req[0] = 1;
        assert_eq!(parse_reply(&req, XID, &MAC), Err(ParseError::NotAReply));
        b[242] = 1; // DISCOVER from a server: not a reply type
        assert_eq!(parse_reply(&b, XID, &MAC), Err(ParseError::BadType));
    }

    #[test]
    fn lease_defaults() {
        let mut b = ack_bytes();
        b.truncate(240);
        b.extend_from_slice(&[53, 1, 5, 54, 4, 10, 0, 0, 1, 51, 4, 0, 0, 0, 100, 255]);
        b[16..20].copy_from_slice(&[10, 1, 2, 3]);
        let lease = parse_reply(&b, XID, &MAC).unwrap().into_lease(Instant::now()).unwrap();
        assert_eq!(lease.prefix_len, 8, "classful default");
        assert_eq!(lease.t1, Some(Duration::from_secs(50)));
        assert_eq!(lease.t2, Some(Duration::from_secs(87)));
        assert_eq!(lease.gateway, None);
        // Infinite lease.
        let mut inf = b.clone();
        let p = inf.len() - 5;
        inf[p..p + 4].copy_from_slice(&[255; 4]);
        let lease = parse_reply(&inf, XID, &MAC).unwrap().into_lease(Instant::now()).unwrap();
        assert_eq!((lease.lease_time, lease.t1, lease.t2), (None, None, None));
    }

    #[test]
    fn truncated_and_bad_lengths_do_not_panic() {
        let good = ack_bytes();
        for n in 0..good.len() {
            let _ = parse_reply(&good[..n], XID, &MAC);
        }
        // Header only, no options at all.
        assert!(parse_reply(&good[..240], XID, &MAC).is_err());
        // Option length running past the end.
        let mut b = good[..240].to_vec();
        b.extend_from_slice(&[53, 1, 5, 6, 200, 1, 2, 3]);
        let _ = parse_reply(&b, XID, &MAC);
        // Wrong lengths for fixed-size options.
        for bad in [&[1u8, 3, 255, 255, 0][..], &[51, 2, 0, 1], &[54, 0], &[53, 0], &[26, 1, 5], &[3, 5, 1, 2, 3, 4, 5]]
        {
            let mut b = good[..240].to_vec();
            b.extend_from_slice(&[53, 1, 5, 54, 4, 10, 0, 0, 1]);
            b.extend_from_slice(bad);
            b.push(255);
            if let Ok(r) = parse_reply(&b, XID, &MAC) {
                let _ = r.into_lease(Instant::now());
            }
        }
        // No magic cookie.
        let mut b = good.clone();
        b[236] = 0;
        let _ = parse_reply(&b, XID, &MAC);
    }

    #[test]
    fn netmask_prefix() {
        assert_eq!(netmask(0), Ipv4Addr::new(0, 0, 0, 0));
        assert_eq!(netmask(8), Ipv4Addr::new(255, 0, 0, 0));
        assert_eq!(netmask(20), Ipv4Addr::new(255, 255, 240, 0));
        assert_eq!(netmask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(netmask(31), Ipv4Addr::new(255, 255, 255, 254));
        assert_eq!(netmask(32), Ipv4Addr::new(255, 255, 255, 255));
        assert_eq!(netmask(40), Ipv4Addr::new(255, 255, 255, 255));
        for p in 0..=32 {
            assert_eq!(prefix_len(netmask(p)), Some(p));
        }
        assert_eq!(prefix_len(Ipv4Addr::new(255, 0, 255, 0)), None);
        assert!(same_subnet(Ipv4Addr::new(10, 0, 1, 5), Ipv4Addr::new(10, 0, 0, 1), 20));
        assert!(!same_subnet(Ipv4Addr::new(10, 0, 1, 5), Ipv4Addr::new(10, 0, 16, 1), 20));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(r) = parse_reply(&bytes, XID, &MAC) {
                let _ = r.into_lease(Instant::now());
            }
        }

        #[test]
        fn parse_never_panics_on_mangled_ack(
            cut in 0usize..400,
            flips in proptest::collection::vec((240usize..400, any::<u8>()), 0..8),
        ) {
            let mut b = ack_bytes();
            for (i, v) in flips {
                if i < b.len() { b[i] = v; }
            }
            b.truncate(cut.max(1));
            if let Ok(r) = parse_reply(&b, XID, &MAC) {
                let _ = r.into_lease(Instant::now());
            }
        }

        #[test]
        fn discover_roundtrips(xid in any::<u32>(), mac in any::<[u8; 6]>(), secs in any::<u16>()) {
            let b = discover(xid, &mac, secs);
            prop_assert_eq!(&b[4..8], &xid.to_be_bytes());
            prop_assert_eq!(&b[28..34], &mac[..]);
            let opts = parse_options(&b[240..]);
            prop_assert_eq!(opts.get(&opt::MESSAGE_TYPE), Some(&vec![msg_type::DISCOVER]));
            prop_assert_eq!(opts.get(&opt::CLIENT_ID), Some(&client_id(&mac)));
            // A server echoing it as an ACK is understood.
            let mut r = b.clone();
            r[0] = BOOTREPLY;
            r[240..243].copy_from_slice(&[53, 1, msg_type::ACK]);
            prop_assert_eq!(parse_reply(&r, xid, &mac).map(|r| r.kind), Ok(ReplyKind::Ack));
        }
    }

    #[test]
    fn options_concatenate_and_stop() {
        // RFC 3396: a long option split in two parts.
        let o = parse_options(&[6, 4, 1, 1, 1, 1, 0, 6, 4, 8, 8, 8, 8, 255, 1, 4, 9, 9, 9, 9]);
        assert_eq!(o[&6], vec![1, 1, 1, 1, 8, 8, 8, 8]);
        assert!(!o.contains_key(&1), "nothing after End");
        let o = parse_options(&[1, 4, 255, 255, 255, 0, 3, 9, 1]);
        assert_eq!(o.len(), 1, "the overlong option is dropped");
    }

    #[test]
    fn crafted_header_lengths() {
        // hlen > 16 made dhcproto 0.15 panic (slice out of range).
        let mut b = ack_bytes();
        b[2] = 255;
        assert_eq!(parse_reply(&b, XID, &MAC), Err(ParseError::NotOurs));
        // Options with wrong lengths count as absent, the rest still parses.
        let mut b = ack_bytes();
        b.truncate(240);
        b.extend_from_slice(&[
            53, 1, 5, 54, 4, 10, 0, 0, 1, 1, 3, 255, 255, 0, 51, 2, 0, 1, 3, 5, 1, 2, 3, 4, 5, 26, 1, 5, 255,
        ]);
        b[16..20].copy_from_slice(&[10, 1, 2, 3]);
        let r = parse_reply(&b, XID, &MAC).unwrap();
        assert_eq!((r.subnet_mask, r.lease_secs, r.mtu), (None, None, None));
        assert!(r.routers.is_empty());
        let lease = r.into_lease(Instant::now()).unwrap();
        assert_eq!(lease.lease_time, Some(Duration::from_secs(DEFAULT_LEASE_SECS)));
    }
}
