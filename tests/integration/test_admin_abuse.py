"""Attacks on the admin surface (issue 8 items 4, 6 and 9): erasing the
audit history by floods, guessing the password with many certificates,
abusive scrypt parameters in the config, and a crafted backup that takes
over a name cluster-wide. Each test reproduces the attack against a real
node; each fails on the binary before the fixes.

Addresses: 127.0.0.71-75 (single nodes), 127.0.0.81-82 (cluster pair),
127.0.0.91-95 (extra source addresses of clients).
"""
import os
import socket
import ssl
import time

from vssmtest.backup import make_backup
from vssmtest.client import ApiClient, _Conn
from vssmtest.cluster import all_converged, start_lagging, static_pair, two_versions, wait_until
from vssmtest.crypto_ref import sym_decrypt
from vssmtest.util import b64e, uniq

GCM = "AES/GCM/NoPadding"

LIMIT_PER_MINUTE = 30  # audit::MAX_LIMITED_PER_WINDOW


def _flood_malformed_admin(client: ApiClient, count: int) -> float:
    """`count` malformed admin requests on one keep-alive connection: each
    is a 400 that is audited as a failure. Returns the seconds taken."""
    t0 = time.monotonic()
    for i in range(count):
        r = client.post("/REST/v1/admin/listkeys", {"x": 1})
        assert r.status == 400, f"request {i}: {r!r}"
    return time.monotonic() - t0


def _failed_handshakes(ip: str, count: int):
    """TLS handshakes without a client certificate (refused after bootstrap)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    refused = 0
    for _ in range(count):
        with socket.create_connection((ip, 8080), 5) as sock:
            try:
                with ctx.wrap_socket(sock, server_hostname="VSSM") as tls:
                    tls.sendall(b"POST /REST/v1/admin/listkeys HTTP/1.1\r\nHost: VSSM\r\n\r\n")
                    tls.recv(1)
            except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                refused += 1
    assert refused == count, f"only {refused} of {count} handshakes were refused"


def test_floods_of_failures_cannot_erase_the_admin_history(make_node):
    node = make_node("127.0.0.71")
    node.start_bootstrapped()
    admin = node.client()
    marker = uniq("audit-marker")
    assert admin.generate(marker, "SYMMETRIC", "32").status == 200

    # A trusted client without the password: 10,400 malformed admin
    # requests (more than the 10,000 lines getlogs keeps) ...
    mallory = node.client("mallory")
    seconds = _flood_malformed_admin(mallory, 10_400)
    # ... and strangers failing TLS handshakes.
    _failed_handshakes(node.ip, 300)

    log = admin.admin_ok("getlogs")["log"]
    assert any("action=generatekey" in l and marker in l and "outcome=ok" in l for l in log), (
        f"the successful generatekey left getlogs after the flood ({seconds:.1f} s); "
        f"{len(log)} lines, first: {log[:2]}")
    failed = [l for l in log if "action=listkeys" in l and "outcome=failed" in l]
    refused = [l for l in log if "action=tls-handshake" in l and "outcome=refused" in l]
    assert len(failed) <= 2 * LIMIT_PER_MINUTE, f"{len(failed)} failure lines: not rate-limited"
    assert len(refused) <= 2 * LIMIT_PER_MINUTE, f"{len(refused)} refusal lines: not rate-limited"
    # The console keeps the marker too, and is not flooded either.
    console = node.log()
    assert marker in console
    assert console.count("action=listkeys") <= 2 * LIMIT_PER_MINUTE + 2, "console flooded"


# --------------------------------------------------------------------------
# Password guessing with many certificates (admin throttle)
# --------------------------------------------------------------------------

PER_SOURCE, PER_NODE = 10, 30  # admin::throttle::MAX_FAILURES_PER_SOURCE / _PER_NODE


class _SourceConn(_Conn):
    """A connection that leaves from a chosen source address."""

    def __init__(self, host, port, context, sni, timeout, source):
        super().__init__(host, port, context, sni, timeout)
        self._source = source

    def connect(self):
        sock = socket.create_connection((self.host, self.port), self.timeout, (self._source, 0))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._sni)


class _SourceClient(ApiClient):
    def __init__(self, node, cn: str, source: str):
        super().__init__(node.ip, ca=node.rpc_crt, cert=node.pki.client_cert(cn), password="wrong")
        self.source = source

    def _new_conn(self):
        self.close()
        self.conn = _SourceConn(self.host, self.port, self.ctx, self.sni, self.timeout, self.source)
        self.conn.connect()


def _guess(node, cn: str, source: str) -> int:
    c = _SourceClient(node, cn, source)
    try:
        return c.admin("listkeys").status
    finally:
        c.close()


def test_many_certificates_on_one_address_do_not_guess_faster(make_node):
    node = make_node("127.0.0.72")
    node.start_bootstrapped()
    admin = node.client("throttle-admin")
    assert admin.admin("listkeys").status == 200  # the admin proves the password first
    statuses = [_guess(node, f"guesser-{i}", "127.0.0.91") for i in range(PER_SOURCE)]
    assert statuses == [401] * PER_SOURCE, statuses
    # An 11th certificate from the same address: every subject is new, but the address is not.
    assert _guess(node, "guesser-fresh", "127.0.0.91") == 429
    assert _guess(node, "guesser-elsewhere", "127.0.0.92") == 401, "other addresses are not affected"
    assert admin.admin("listkeys").status == 200, "the admin is not locked out by strangers"


def test_many_certificates_on_many_addresses_are_limited_by_the_node(make_node):
    node = make_node("127.0.0.73")
    node.start_bootstrapped()
    admin = node.client("throttle-admin")
    assert admin.admin("listkeys").status == 200
    sources = [f"127.0.0.{91 + s}" for s in range(4)]
    statuses = [_guess(node, f"spread-{i}", sources[i % len(sources)]) for i in range(PER_NODE)]
    assert statuses == [401] * PER_NODE, statuses
    assert _guess(node, "spread-fresh", "127.0.0.95") == 429, "a fresh address and certificate still waits"
    assert admin.admin("listkeys").status == 200, "a subject that proved the password is exempt"
    log = admin.admin_ok("getlogs")["log"]
    assert any("outcome=refused" in l and "CN=spread-" in l and "401" in l for l in log), "guesses are audited"


# --------------------------------------------------------------------------
# A crafted backup restored on a lagging node (issue 8 item 6)
# --------------------------------------------------------------------------

def test_crafted_backup_on_a_lagging_node_does_not_take_over_a_name(pki, tmp_path):
    a, b = static_pair(pki, tmp_path, ["127.0.0.81", "127.0.0.82"])
    try:
        ca = a.client()
        name, real, crafted = uniq("payments"), os.urandom(32), os.urandom(32)
        ca.inject(name, "SYMMETRIC", real)

        a.sigstop()  # B lags: it has not received the name
        start_lagging(b)
        cb = b.client()
        inventory = {"symmetricKey": [{"name": name, "createdAt": "1", "key": b64e(crafted)}]}
        r = cb.admin("restorebackup", backup=make_backup(inventory, pki.rpc_private_key.public_key()))
        assert r.status == 200, r
        a.sigcont()

        def both_versions(c):
            return two_versions(c, name)
        wait_until(lambda: both_versions(ca) and both_versions(cb), 15, desc="both versions on both nodes")
        wait_until(lambda: all_converged([a, b]), 10, desc="digests equal")
        pt = b"card numbers"
        for node, c in (("A", ca), ("B", cb)):
            ct = c.out("symmetric/encrypt", keyName=name, algorithm=GCM, input=pt)
            assert sym_decrypt(GCM, real, ct) == pt, f"{name} on node {node} is not the injected key"
            alias = next(e["name"] for e in both_versions(c) if e["name"] != name)
            assert sym_decrypt(GCM, crafted, c.out("symmetric/encrypt", keyName=alias, algorithm=GCM,
                                                   input=pt)) == pt
        # Reported: every node audits the restored version that lost, in the history.
        for node in (a, b):
            lines = [l for l in node.audit() if "action=sync-conflict" in l and name in l]
            assert any("restored from a backup" in l for l in lines), (node.ip, lines)
    finally:
        a.stop()
        b.stop()
