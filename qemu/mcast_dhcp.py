#!/usr/bin/env python3
"""A tiny DHCP server (and ARP responder) for a qemu `-netdev socket,mcast=` segment.

qemu's socket netdev in mcast mode (net/socket.c, net_socket_send_dgram /
net_socket_receive_dgram) carries each raw Ethernet frame as one UDP datagram
to GROUP:PORT, without a length prefix. Joining the same group therefore puts
this process on the VMs' L2 segment: it reads the frames the VMs send and
answers DHCP DISCOVER/REQUEST with OFFER/ACK frames (Ethernet + IPv4 + UDP built
here) and ARP requests for the server address.

Leases are static, by MAC: `--lease MAC=IP` and/or `--leases FILE` (JSON
{"52:54:00:..": "10.77.0.11"}, re-read when it changes, so a launcher can add
VMs later). No router option: the segment is the cluster network only.

    python3 qemu/mcast_dhcp.py --mcast 230.0.1.2:45678 --leases leases.json
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import socket
import struct
import sys
import time

SERVER_MAC = bytes.fromhex("525400ffff01")
BROADCAST_MAC = b"\xff" * 6
MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = 1, 2, 3, 4, 5, 6, 7, 8


def log(msg: str):
    print(f"{time.strftime('%H:%M:%S')} mcast_dhcp: {msg}", flush=True)


def mac_str(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_udp_frame(src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes,
                   sport: int, dport: int, payload: bytes) -> bytes:
    udp_len = 8 + len(payload)
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    csum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0x10, 20 + udp_len, 0, 0, 64, 17, 0, src_ip, dst_ip)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + udp


def parse_options(data: bytes) -> dict[int, bytes]:
    opts, i = {}, 0
    while i < len(data):
        code = data[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(data):
            break
        n = data[i + 1]
        opts[code] = data[i + 2:i + 2 + n]
        i += 2 + n
    return opts


class Server:
    def __init__(self, group: str, port: int, localaddr: str, server_ip: str, netmask: str,
                 lease_time: int, leases: dict[str, str], leases_file: str | None):
        self.group, self.port = group, port
        self.server_ip = ipaddress.IPv4Address(server_ip)
        self.netmask = ipaddress.IPv4Address(netmask)
        self.lease_time = lease_time
        self.static = {k.lower(): v for k, v in leases.items()}
        self.leases_file = leases_file
        self._file_mtime = None
        self._file_leases: dict[str, str] = {}
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((group, port))  # as qemu does: only this group's datagrams
        mreq = socket.inet_aton(group) + socket.inet_aton(localaddr)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(localaddr))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
        self.sock = s

    def lease_for(self, mac: str) -> str | None:
        if self.leases_file:
            try:
                m = os.stat(self.leases_file).st_mtime_ns
                if m != self._file_mtime:
                    with open(self.leases_file) as f:
                        self._file_leases = {k.lower(): v for k, v in json.load(f).items()}
                    self._file_mtime = m
            except (OSError, ValueError) as e:
                log(f"leases file: {e}")
        return self._file_leases.get(mac) or self.static.get(mac)

    def send(self, frame: bytes):
        self.sock.sendto(frame, (self.group, self.port))

    def serve(self):
        log(f"listening on {self.group}:{self.port} as {self.server_ip} ({mac_str(SERVER_MAC)})")
        while True:
            frame, _ = self.sock.recvfrom(65536)
            try:
                self.handle(frame)
            except Exception as e:  # noqa: BLE001 - never die on a bad frame
                log(f"bad frame ({len(frame)} bytes): {e!r}")

    def handle(self, frame: bytes):
        if len(frame) < 14 or frame[6:12] == SERVER_MAC:
            return  # our own frame looped back
        dst, src, ethertype = frame[0:6], frame[6:12], struct.unpack("!H", frame[12:14])[0]
        if ethertype == 0x0806:
            self.handle_arp(frame[14:], src)
        elif ethertype == 0x0800 and dst in (BROADCAST_MAC, SERVER_MAC):
            self.handle_ip(frame[14:], src)

    def handle_arp(self, arp: bytes, src_mac: bytes):
        if len(arp) < 28:
            return
        htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", arp[:8])
        if htype != 1 or ptype != 0x0800 or op != 1:
            return
        sha, spa, tpa = arp[8:14], arp[14:18], arp[24:28]
        if tpa != self.server_ip.packed:
            return
        reply = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + SERVER_MAC + tpa + sha + spa
        self.send(src_mac + SERVER_MAC + b"\x08\x06" + reply + b"\0" * 18)

    def handle_ip(self, ip: bytes, src_mac: bytes):
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            return
        ihl = (ip[0] & 0xF) * 4
        udp = ip[ihl:]
        if len(udp) < 8:
            return
        sport, dport = struct.unpack("!HH", udp[:4])
        if dport != 67:
            return
        self.handle_dhcp(udp[8:], src_mac)

    def handle_dhcp(self, msg: bytes, src_mac: bytes):
        if len(msg) < 240 or msg[0] != 1 or msg[236:240] != MAGIC:
            return
        xid, flags = msg[4:8], struct.unpack("!H", msg[10:12])[0]
        ciaddr, chaddr = msg[12:16], msg[28:34]
        opts = parse_options(msg[240:])
        mtype = opts.get(53, b"\0")[0]
        mac = mac_str(chaddr)
        ip = self.lease_for(mac)
        if mtype not in (DISCOVER, REQUEST, INFORM, RELEASE, DECLINE):
            return
        if mtype in (RELEASE, DECLINE):
            log(f"{mac}: {'RELEASE' if mtype == RELEASE else 'DECLINE'}")
            return
        if ip is None:
            log(f"{mac}: no lease configured; ignoring type {mtype}")
            return
        yiaddr = ipaddress.IPv4Address(ip).packed
        if mtype == DISCOVER:
            reply = OFFER
        elif mtype == INFORM:
            reply, yiaddr = ACK, b"\0" * 4
        else:
            sid = opts.get(54)
            if sid is not None and sid != self.server_ip.packed:
                return  # chose another server
            wanted = opts.get(50) or (ciaddr if ciaddr != b"\0" * 4 else None)
            reply = ACK if wanted in (None, yiaddr) else NAK
        names = {OFFER: "OFFER", ACK: "ACK", NAK: "NAK"}
        log(f"{mac}: type {mtype} -> {names[reply]} {ip if reply != NAK else ''}")
        out = bytearray(240)
        out[0:4] = bytes([2, 1, 6, 0])
        out[4:8] = xid
        out[10:12] = struct.pack("!H", flags)
        out[12:16] = ciaddr
        if reply != NAK:
            out[16:20] = yiaddr
        out[20:24] = self.server_ip.packed
        out[28:44] = msg[28:44]
        out[236:240] = MAGIC
        o = bytearray([53, 1, reply, 54, 4]) + self.server_ip.packed
        if reply != NAK:
            if mtype != INFORM:
                o += bytes([51, 4]) + struct.pack("!I", self.lease_time)
                o += bytes([58, 4]) + struct.pack("!I", self.lease_time // 2)
                o += bytes([59, 4]) + struct.pack("!I", self.lease_time * 7 // 8)
            o += bytes([1, 4]) + self.netmask.packed
        o += b"\xff"
        payload = bytes(out) + bytes(o)
        payload += b"\0" * max(0, 300 - len(payload))  # BOOTP minimum
        # Broadcast when the client asks for it (or for a NAK), else unicast to chaddr.
        if reply == NAK or flags & 0x8000:
            dst_mac, dst_ip = BROADCAST_MAC, b"\xff" * 4
        else:
            dst_mac, dst_ip = chaddr, (ciaddr if ciaddr != b"\0" * 4 else yiaddr)
        self.send(ipv4_udp_frame(SERVER_MAC, dst_mac, self.server_ip.packed, dst_ip, 67, 68, payload))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mcast", required=True, help="GROUP:PORT of the qemu socket netdev")
    ap.add_argument("--localaddr", default="127.0.0.1")
    ap.add_argument("--server-ip", default="10.77.0.1")
    ap.add_argument("--netmask", default="255.255.255.0")
    ap.add_argument("--lease-time", type=int, default=3600)
    ap.add_argument("--lease", action="append", default=[], metavar="MAC=IP")
    ap.add_argument("--leases", metavar="FILE", help="JSON {mac: ip}, re-read on change")
    a = ap.parse_args(argv)
    group, port = a.mcast.rsplit(":", 1)
    static = dict(x.split("=", 1) for x in a.lease)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv = Server(group, int(port), a.localaddr, a.server_ip, a.netmask, a.lease_time, static, a.leases)
    try:
        srv.serve()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
