#!/usr/bin/env bash
# Runs the ignored `dhcp_in_netns` test against dnsmasq across a veth pair.
# Needs root, iproute2 and dnsmasq (Debian: dnsmasq-base). Touches nothing
# outside the two namespaces it creates (vssmi-c, vssmi-s) and removes them.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" != 0 ]; then echo "netns-dhcp: needs root" >&2; exit 1; fi
command -v dnsmasq >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsmasq-base; }

C=vssmi-c S=vssmi-s
MAC=52:54:00:aa:bb:01
tmp=$(mktemp -d)
cleanup() {
    [ -f "$tmp/dnsmasq.pid" ] && kill "$(cat "$tmp/dnsmasq.pid")" 2>/dev/null || true
    ip netns del $C 2>/dev/null || true
    ip netns del $S 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
cleanup; tmp=$(mktemp -d)

ip netns add $C
ip netns add $S
ip link add vssmi0 netns $C address $MAC type veth peer name vssmi1 netns $S
ip -n $S addr add 10.213.0.1/24 dev vssmi1
ip -n $S link set vssmi1 up
ip -n $S link set lo up
ip netns exec $S dnsmasq --keep-in-foreground --no-resolv --no-hosts --port=0 \
    --interface=vssmi1 --bind-interfaces --pid-file="$tmp/dnsmasq.pid" \
    --dhcp-range=10.213.0.100,10.213.0.150,255.255.255.0,2m \
    --dhcp-option=option:router,10.213.0.1 --dhcp-option=option:dns-server,10.213.0.1 \
    --dhcp-option=option:mtu,1400 --dhcp-host=$MAC,vssm-test-1 \
    --dhcp-leasefile="$tmp/leases" --log-dhcp --log-facility="$tmp/dnsmasq.log" &
sleep 1

cargo test -p vssm-init --test netns_dhcp --no-run
bin=$(ls -t target/debug/deps/netns_dhcp-* | grep -v '\.d$' | head -1)
# Own mount namespace with a private /run so resolv.conf lands nowhere real.
status=0
ip netns exec $C unshare -m sh -c "mount -t tmpfs tmpfs /run && \
    VSSM_NETNS_IF=vssmi0 VSSM_NETNS_HOSTNAME=vssm-test-1 exec $bin --ignored --nocapture --test-threads=1" || status=$?
echo "--- dnsmasq log"; cat "$tmp/dnsmasq.log" || true
exit $status
