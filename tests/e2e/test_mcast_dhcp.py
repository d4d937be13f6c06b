"""qemu/mcast_dhcp.py on its own: a fake client on the multicast segment sends
raw Ethernet frames exactly as qemu's socket netdev does (one frame per UDP
datagram) and gets OFFER/ACK/ARP replies. No VM needed."""

from __future__ import annotations

import random
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "qemu"))
import mcast_dhcp as md  # noqa: E402

MAC = bytes.fromhex("525400770001")


def dhcp_frame(mtype: int, xid: bytes, requested: bytes | None = None) -> bytes:
    msg = bytearray(240)
    msg[0:4] = bytes([1, 1, 6, 0])
    msg[4:8] = xid
    msg[28:34] = MAC
    msg[236:240] = md.MAGIC
    opts = bytes([53, 1, mtype]) + (bytes([50, 4]) + requested if requested else b"") + b"\xff"
    return md.ipv4_udp_frame(MAC, md.BROADCAST_MAC, b"\0" * 4, b"\xff" * 4, 68, 67, bytes(msg) + opts)


@pytest.fixture
def segment(tmp_path):
    group = f"230.0.{random.randrange(1, 255)}.{random.randrange(1, 255)}"
    port = random.randrange(20000, 60000)
    proc = subprocess.Popen([sys.executable, str(REPO / "qemu" / "mcast_dhcp.py"), "--mcast", f"{group}:{port}",
                             "--lease", f"{md.mac_str(MAC)}=10.77.0.11"],
                            stdout=open(tmp_path / "dhcp.log", "wb"), stderr=subprocess.STDOUT)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((group, port))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton("127.0.0.1"))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    s.settimeout(0.5)
    time.sleep(0.5)
    yield s, (group, port)
    proc.terminate()
    proc.wait(timeout=5)
    s.close()


def exchange(sock, dest, frame, want):
    for _ in range(10):
        sock.sendto(frame, dest)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            try:
                data, _ = sock.recvfrom(65536)
            except socket.timeout:
                break
            if data[6:12] == md.SERVER_MAC and want(data):
                return data
    raise AssertionError("no reply from mcast_dhcp")


def dhcp_reply(data):
    if data[12:14] != b"\x08\x00":
        return None
    ip = data[14:]
    udp = ip[(ip[0] & 0xF) * 4:]
    return udp[8:]


def test_discover_request_arp(segment):
    sock, dest = segment
    xid = b"\x12\x34\x56\x78"
    offer = exchange(sock, dest, dhcp_frame(1, xid), lambda d: (m := dhcp_reply(d)) and m[4:8] == xid)
    m = dhcp_reply(offer)
    opts = md.parse_options(m[240:])
    assert opts[53] == bytes([2]) and m[16:20] == socket.inet_aton("10.77.0.11")
    assert opts[54] == socket.inet_aton("10.77.0.1") and opts[1] == socket.inet_aton("255.255.255.0")
    assert 3 not in opts, "no router on the cluster segment"
    assert struct.unpack("!I", opts[51])[0] == 3600
    assert offer[0:6] == MAC  # unicast to the client's MAC
    ack = exchange(sock, dest, dhcp_frame(3, xid, socket.inet_aton("10.77.0.11")),
                   lambda d: (m := dhcp_reply(d)) and md.parse_options(m[240:]).get(53) == bytes([5]))
    assert dhcp_reply(ack)[16:20] == socket.inet_aton("10.77.0.11")
    nak = exchange(sock, dest, dhcp_frame(3, xid, socket.inet_aton("10.77.0.99")),
                   lambda d: (m := dhcp_reply(d)) and md.parse_options(m[240:]).get(53) == bytes([6]))
    assert nak[0:6] == md.BROADCAST_MAC
    arp_req = (md.BROADCAST_MAC + MAC + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + MAC
               + socket.inet_aton("10.77.0.11") + b"\0" * 6 + socket.inet_aton("10.77.0.1"))
    arp = exchange(sock, dest, arp_req, lambda d: d[12:14] == b"\x08\x06")
    assert arp[14 + 8:14 + 14] == md.SERVER_MAC and arp[14 + 14:14 + 18] == socket.inet_aton("10.77.0.1")
