//! DHCP exchange and interface configuration against a real DHCP server
//! (dnsmasq) across a veth pair in network namespaces. Run by
//! `init/tests/netns-dhcp.sh` (root, `ip`, `dnsmasq`); ignored otherwise.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use vssm_init::net::{self, client, iface};

fn default_route(ifname: &str) -> Option<Ipv4Addr> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 7 && f[0] == ifname && f[1] == "00000000" && f[7] == "00000000")
            .then(|| u32::from_str_radix(f[2], 16).ok())
            .flatten()
            .map(|gw| Ipv4Addr::from(u32::from_be(gw)))
    })
}

#[test]
#[ignore = "needs root, a veth pair in a network namespace and dnsmasq: run init/tests/netns-dhcp.sh"]
fn dhcp_in_netns() {
    let ifname = std::env::var("VSSM_NETNS_IF").expect("VSSM_NETNS_IF");
    let expect_host = std::env::var("VSSM_NETNS_HOSTNAME").ok();
    iface::set_up("lo").unwrap();
    iface::set_up(&ifname).unwrap();
    assert!(iface::is_up(&ifname).unwrap());
    let mac = iface::hw_addr(&ifname).unwrap();

    let lease = client::acquire(&ifname, mac, Duration::from_secs(30)).unwrap();
    println!("lease: {lease:?}");
    assert_eq!(lease.server, Ipv4Addr::new(10, 213, 0, 1));
    assert_eq!(lease.prefix_len, 24);
    assert_eq!(lease.gateway, Some(Ipv4Addr::new(10, 213, 0, 1)));
    assert_eq!(lease.dns, vec![Ipv4Addr::new(10, 213, 0, 1)]);
    assert_eq!(lease.mtu, Some(1400));
    assert_eq!(lease.hostname, expect_host);
    assert!(lease.t1.unwrap() < lease.t2.unwrap());
    assert!(lease.t2.unwrap() < lease.lease_time.unwrap());

    net::apply_lease(&ifname, None, &lease).unwrap();
    assert_eq!(default_route(&ifname), Some(Ipv4Addr::new(10, 213, 0, 1)));
    let mtu: u32 = std::fs::read_to_string(format!("/sys/class/net/{ifname}/mtu")).unwrap().trim().parse().unwrap();
    assert_eq!(mtu, 1400);
    let resolv = std::fs::read_to_string(net::RESOLV_CONF).unwrap();
    assert!(resolv.contains("nameserver 10.213.0.1"), "{resolv}");

    // RENEWING: unicast to the server from our new address.
    let renewed = match client::extend(&ifname, &mac, &lease, lease.server, Instant::now() + Duration::from_secs(20)) {
        client::Extension::Acked(lease) => lease,
        other => panic!("no ACK to the unicast renewal: {other:?}"),
    };
    assert_eq!(renewed.address, lease.address);
    net::apply_lease(&ifname, Some(&lease), &renewed).unwrap();
    // REBINDING: broadcast.
    let rebound =
        match client::extend(&ifname, &mac, &renewed, Ipv4Addr::BROADCAST, Instant::now() + Duration::from_secs(20)) {
            client::Extension::Acked(lease) => lease,
            other => panic!("no ACK to the broadcast rebind: {other:?}"),
        };
    assert_eq!(rebound.address, lease.address);

    // Deconfigure removes address and route.
    net::deconfigure(&ifname, &rebound);
    assert_eq!(default_route(&ifname), None);
    println!("netns dhcp: ok ({} via {})", lease.address, lease.server);
}
