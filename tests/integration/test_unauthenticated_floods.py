"""Attacks by peers that hold no certificate and no password (issue 8,
findings 1, 3 and the HTTP/2 rapid reset of 9): whatever they send or hold
open on the API, health or join port, a legitimate client is served.

The attackers connect from their own loopback addresses (127.0.2.x), so the
per-source limits are exercised the way a real botnet would meet them:
several sources, many sockets each."""
from __future__ import annotations

import resource
import socket
import ssl
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import pytest

from vssmtest.client import tls_context
from vssmtest.cluster import ClusterNode, FakeAws, JoinClient, http_get
from vssmtest.node import health
from vssmtest.util import API_PORT, HEALTH_PORT, uniq

IP_FLOOD = "127.0.0.30"
IP_PRE_BOOTSTRAP = "127.0.0.31"
IP_JOIN_NODE = "127.0.0.33"
IP_H2 = "127.0.0.34"
JOIN_PORT = 8083
KiB = 1024
GCM = "AES/GCM/NoPadding"


@pytest.fixture(scope="module", autouse=True)
def many_file_descriptors():
    """Thousands of sockets in this process and in the node it starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def attacker_sources(count: int) -> list[str]:
    return [f"127.0.2.{i}" for i in range(1, count + 1)]


def connect_from(source: str, ip: str, port: int, timeout=5.0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(timeout)
    s.connect((ip, port))
    return s


def hold_idle_sockets(ip: str, port: int, sources: list[str], per_source: int) -> list[socket.socket]:
    """TCP connections that never send a byte (no ClientHello, no request)."""
    held = []
    for source in sources:
        for _ in range(per_source):
            try:
                held.append(connect_from(source, ip, port))
            except OSError:
                pass
    time.sleep(1.0)  # let the node accept them all
    return held


def close_all(sockets):
    for s in sockets:
        try:
            s.close()
        except OSError:
            pass


def encrypt_status(client, key: str, size: int) -> int | str:
    """Status of an authenticated encrypt with a body of about `size` bytes,
    or the connection error's name."""
    try:
        return client.op("symmetric/encrypt", keyName=key, algorithm=GCM, input=b"x" * size).status
    except (OSError, ssl.SSLError) as e:
        return type(e).__name__


def start_join_node(pki, tmp_path) -> tuple[FakeAws, ClusterNode]:
    """A bootstrapped cluster node with its join port (8083) open."""
    fake = FakeAws(tmp_path / "fake-aws").start()
    inst = fake.add_instance(33, IP_JOIN_NODE)
    node = ClusterNode(pki, IP_JOIN_NODE, tmp_path / "node", cluster=fake.cluster_config(inst))
    node.start()
    node.wait_health()
    assert node.bootstrap().status == 200
    node.wait_ready(15)
    return fake, node


class H2Uploader:
    """One HTTP/2 connection (no client certificate) that opens `streams`
    POSTs each declaring `declared` body bytes and sending `send` of them."""

    def __init__(self, source: str, ip: str, port: int):
        ctx = tls_context(None, None, alpn=("h2",))
        self.sock = ctx.wrap_socket(connect_from(source, ip, port, timeout=10), server_hostname="VSSM")
        assert self.sock.selected_alpn_protocol() == "h2"
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
        self.flush()
        self.events = []

    def flush(self):
        self.sock.sendall(self.conn.data_to_send())

    def read_events(self, timeout=0.2):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return []
        if not data:
            raise ConnectionError("closed")
        events = self.conn.receive_data(data)
        self.flush()
        self.events += events
        return events

    def stall_uploads(self, path: str, streams: int, declared: int, send: int):
        for _ in range(streams):
            sid = self.conn.get_next_available_stream_id()
            self.conn.send_headers(sid, [(":method", "POST"), (":path", path), (":scheme", "https"),
                                         (":authority", "VSSM"), ("content-length", str(declared))])
            self.flush()
            self.send_body(sid, send)

    def send_body(self, sid: int, size: int):
        """Sends `size` body bytes as flow control allows (reading the
        server's window updates), or less if the server ends the stream."""
        deadline = time.monotonic() + 5
        while size > 0 and time.monotonic() < deadline:
            try:
                chunk = min(size, self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
                if chunk <= 0:
                    self.read_events(0.05)
                    continue
                self.conn.send_data(sid, b"x" * chunk)
            except h2.exceptions.StreamClosedError:
                return
            size -= chunk
            self.flush()

    def close(self):
        close_all([self.sock])


# --------------------------------------------------------------------------
# Finding 3: connection caps filled before authentication
# --------------------------------------------------------------------------

def test_idle_sockets_on_the_health_port_do_not_fail_health_checks(make_node):
    """300 idle TCP sockets from 20 addresses (the old cap was 64 for
    everyone): the load balancer's check is still answered."""
    node = make_node(IP_FLOOD)
    node.start_bootstrapped()
    held = hold_idle_sockets(node.ip, HEALTH_PORT, attacker_sources(20), 15)
    try:
        assert len(held) == 300
        checks = [health(node.ip) for _ in range(5)]
        assert checks == [(200, "running")] * 5, checks
    finally:
        close_all(held)
    assert node.alive()


def test_one_address_holding_more_than_its_share_loses_its_oldest_sockets(make_node):
    """40 idle sockets from one address on the health port: only its
    newest 16 stay open (the old cap let one address hold all 64 places)."""
    node = make_node(IP_FLOOD)
    node.start_bootstrapped()
    held = hold_idle_sockets(node.ip, HEALTH_PORT, attacker_sources(1), 40)
    try:
        assert len(held) == 40

        def closed_by_node(s) -> bool:
            s.settimeout(0.05)
            try:
                return s.recv(1) == b""
            except (socket.timeout, BlockingIOError):
                return False
            except OSError:
                return True

        closed = [closed_by_node(s) for s in held]
        assert closed == [True] * 24 + [False] * 16, closed
        assert health(node.ip) == (200, "running")
    finally:
        close_all(held)


def test_sockets_that_never_send_a_client_hello_do_not_lock_out_clients(make_node):
    """4,400 TCP connections that never start TLS, from 20 addresses, more
    than the port's 4,096 places: an mTLS client still gets its answer."""
    node = make_node(IP_FLOOD)
    node.start_bootstrapped()
    key = uniq("idle")
    c = node.client()
    assert c.generate(key, "SYMMETRIC", "32").status == 200
    c.close()
    held = hold_idle_sockets(node.ip, API_PORT, attacker_sources(20), 220)
    try:
        assert len(held) > 4096
        for _ in range(3):
            fresh = node.client()
            assert encrypt_status(fresh, key, 100) == 200
            fresh.close()
    finally:
        close_all(held)
    assert node.alive()


# --------------------------------------------------------------------------
# Finding 1: unauthenticated bodies starving the body budget
# --------------------------------------------------------------------------

def test_join_port_uploads_cannot_take_the_client_body_budget(pki, tmp_path):
    """HTTP/2 on the join port: 14 connections x 128 streams, each stream
    declaring 64 KiB and sending 32 KiB + 1, used to hold the whole 96 MiB
    budget that authenticated clients need. Now each unauthenticated
    connection pays for its own bodies: clients and joiners are served."""
    fake, node = start_join_node(pki, tmp_path)
    uploaders = []
    try:
        c = node.client()
        key = uniq("budget")
        assert c.generate(key, "SYMMETRIC", "32").status == 200
        for i, source in enumerate(attacker_sources(14)):
            try:
                u = H2Uploader(source, node.ip, JOIN_PORT)
                u.stall_uploads("/REST/v1/join/challenge", 128, 64 * KiB, 32 * KiB + 1)
                uploaders.append(u)
            except (OSError, ssl.SSLError, ConnectionError):
                pass
        time.sleep(1.0)
        assert encrypt_status(c, key, 300_000) == 200
        # The join port itself still serves a legitimate joiner's challenge,
        # also while 300 idle sockets from 20 more addresses hold more
        # than its 256 places.
        challenge = JoinClient(pki, node.ip).challenge("127.0.0.1")
        assert len(challenge) >= 16
        idle = hold_idle_sockets(node.ip, JOIN_PORT, [f"127.0.3.{i}" for i in range(1, 21)], 15)
        try:
            assert len(JoinClient(pki, node.ip).challenge("127.0.0.1")) >= 16
        finally:
            close_all(idle)
    finally:
        for u in uploaders:
            u.close()
        node.stop()
        fake.stop()


def test_stalled_uploads_before_bootstrap_do_not_block_the_operator(make_node):
    """Before bootstrap nobody has a certificate. 1,600 connections each
    declaring 64 KiB and sending 32 KiB + 1, then smaller uploads to use up
    the rest, used to fill the one body budget and the operator's bootstrap
    got 503. Unauthenticated connections may now send only bootstrap-sized
    bodies, each paid from a small budget of its own."""
    node = make_node(IP_PRE_BOOTSTRAP)
    node.start()
    node.wait_health()
    ctx = tls_context(None, None)
    sources = attacker_sources(10)
    held = []

    def upload(n: int, declared: int, send: int) -> bool:
        """One stalled upload; False once the node answers it at once
        (refused: this size no longer fits)."""
        try:
            s = ctx.wrap_socket(connect_from(sources[n % 10], node.ip, API_PORT, timeout=10),
                                server_hostname="VSSM")
            s.sendall((f"POST /REST/v1/symmetric/encrypt HTTP/1.1\r\nHost: VSSM\r\n"
                       f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n").encode()
                      + b"x" * send)
        except OSError:
            return True
        held.append(s)
        return True

    def answered_at_once(s) -> bool:
        s.settimeout(0.2)
        try:
            return s.recv(64) != b""
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        except OSError:
            return True

    try:
        started = time.monotonic()
        for n in range(1600):
            upload(n, 64 * KiB, 32 * KiB + 1)
        # What is left of the budget goes to ever smaller uploads.
        for declared in (8 * KiB, 2 * KiB, 512):
            for n in range(64):
                count = len(held)
                upload(n, declared, declared // 2 + 1)
                if len(held) > count and answered_at_once(held[-1]):
                    break
        assert time.monotonic() - started < 60
        r = node.bootstrap()
        assert r.status == 200, r
    finally:
        close_all(held)
    node.wait_health(200)


def test_a_body_trickled_byte_by_byte_is_cut_off_by_its_total_deadline(make_node):
    """One byte every 2 s never trips the 10 s stall timeout; the total
    deadline of an unauthenticated body (10 s) ends it with 408."""
    node = make_node(IP_PRE_BOOTSTRAP)
    node.start()
    node.wait_health()
    s = tls_context(None, None).wrap_socket(connect_from("127.0.2.50", node.ip, API_PORT), server_hostname="VSSM")
    try:
        s.sendall(b"POST /REST/v1/admin/bootstrap HTTP/1.1\r\nHost: VSSM\r\nContent-Length: 4000\r\n\r\n")
        started = time.monotonic()
        s.settimeout(0.1)
        answer = b""
        while time.monotonic() - started < 20 and not answer:
            try:
                s.sendall(b" ")
            except OSError:
                break
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and not answer:
                try:
                    answer = s.recv(4096)
                except (socket.timeout, ssl.SSLWantReadError):
                    pass
                except OSError:
                    break
        elapsed = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), (answer[:200], elapsed)
        assert b"not complete within 10 s" in answer, answer
        assert 9 <= elapsed <= 14, elapsed
    finally:
        s.close()
    assert node.alive()


# --------------------------------------------------------------------------
# Finding 9: HTTP/2 rapid reset
# --------------------------------------------------------------------------

def test_http2_rapid_reset_ends_the_connection_and_spares_the_node(make_node):
    """CVE-2023-44487: open and at once reset thousands of streams on one
    HTTP/2 connection. The node sends GOAWAY, stays responsive for other
    clients while it happens, and keeps running."""
    node = make_node(IP_H2)
    node.start()
    node.wait_health()
    ctx = tls_context(None, None, alpn=("h2",))
    sock = ctx.wrap_socket(connect_from("127.0.2.60", node.ip, API_PORT), server_hostname="VSSM")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    goaway = None
    stop = threading.Event()
    probes = []

    def probe():
        while not stop.is_set():
            t = time.monotonic()
            ok = health(node.ip, timeout=2) is not None
            probes.append((ok, time.monotonic() - t))
            time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    sent = 0
    try:
        sock.settimeout(0.001)
        while sent < 20_000 and goaway is None:
            for _ in range(100):
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, [(":method", "POST"), (":path", "/REST/v1/admin/bootstrap"),
                                        (":scheme", "https"), (":authority", "VSSM")])
                conn.reset_stream(sid)
                sent += 1
            try:
                sock.sendall(conn.data_to_send())
                data = sock.recv(65536)
                if not data:
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ConnectionTerminated):
                        goaway = event
            except (socket.timeout, ssl.SSLWantReadError):
                pass
            except (OSError, h2.exceptions.ProtocolError):
                break
    finally:
        stop.set()
        prober.join()
        sock.close()
    assert goaway is not None or sent < 20_000, "the node never ended the reset flood"
    assert probes and all(ok for ok, _ in probes), probes
    assert max(t for _, t in probes) < 1.0, probes
    assert node.alive()
    assert health(node.ip) == (503, "bootstrapping")


def test_cluster_status_on_the_health_port_shows_no_topology(make_node):
    """Finding 9: the unauthenticated health port told anyone the peer
    addresses and the key-set digest; by default it now says only whether
    the node is ready."""
    node = make_node(IP_FLOOD)
    node.start_bootstrapped()
    status, body = http_get(node.ip, HEALTH_PORT, "/REST/v1/cluster/status")
    assert status == 200
    import json
    fields = json.loads(body)
    assert "peers" not in fields and "digest" not in fields, fields
    assert fields.get("ready") is True, fields
