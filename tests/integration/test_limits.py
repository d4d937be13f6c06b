"""Memory limits a hostile client notices: the bodies of all connections
share one budget (96 MiB), so many connections each sending a large body
get 503 instead of growing the node without bound, and a body that stalls
is abandoned with 408, giving its share back."""
import socket
import time

from vssmtest.util import uniq

IP_LIMITS = "127.0.0.20"
MiB = 1024 * 1024
BUDGET_MIB = 96
STALL_SECONDS = 10


def vm_rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_stalled_body(node, declared: int, send: int):
    """An mTLS connection that declares `declared` body bytes, sends `send`
    of them and then stalls; None if the server refused it meanwhile."""
    ctx = node.client().ctx
    tcp = socket.create_connection((node.ip, 8080), timeout=10)
    s = ctx.wrap_socket(tcp, server_hostname="VSSM")
    head = (f"POST /REST/v1/symmetric/encrypt HTTP/1.1\r\nHost: VSSM\r\n"
            f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n").encode()
    try:
        s.sendall(head + b"x" * send)
    except OSError:
        s.close()
        return None
    return s


def read_status(s) -> int | None:
    s.settimeout(STALL_SECONDS + 10)
    try:
        data = s.recv(4096)
    except OSError:
        return None
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data[9:12])


def test_many_large_bodies_share_one_budget_and_stalled_bodies_time_out(make_node):
    node = make_node(IP_LIMITS)
    node.start_bootstrapped()
    c = node.client()
    key = uniq("budget")
    assert c.generate(key, "SYMMETRIC", "32").status == 200
    idle_rss = vm_rss_kib(node.proc.pid)

    # 150 connections each push almost 1 MiB and stall: without a budget
    # that is 150 MiB held; with it, at most 96 are held and the rest are
    # refused with 503.
    sockets = [open_stalled_body(node, MiB, MiB - 1000) for _ in range(150)]
    held = [s for s in sockets if s is not None]
    time.sleep(0.5)
    rss = vm_rss_kib(node.proc.pid)
    assert rss - idle_rss < (BUDGET_MIB + 24) * 1024, (idle_rss, rss)

    # The budget is full: a new request with a body is refused, clearly.
    deadline = time.monotonic() + 5
    while True:
        r = c.op("symmetric/encrypt", keyName=key, algorithm="AES/GCM/NoPadding", input=b"x" * 300_000)
        if r.status == 503 or time.monotonic() > deadline:
            break
    assert r.status == 503, r
    assert "busy" in r.error(), r

    # The stalled bodies are abandoned with 408 and give their share back.
    statuses = [read_status(s) for s in held]
    assert 408 in statuses, statuses
    assert set(statuses) <= {408, 503, None}, statuses
    for s in held:
        s.close()
    r = c.op("symmetric/encrypt", keyName=key, algorithm="AES/GCM/NoPadding", input=b"x" * 300_000)
    assert r.status == 200, r
    assert node.alive()
