"""Finding 7: after bootstrap and 300 further requests the node's memory
held copies of the uploaded base64 RPC key in freed HTTP and TLS buffers.
Every heap block is now wiped when it is freed: the node's whole memory,
read through /proc/PID/mem (root), holds no copy of the key's text, nor of
an admin password or an injected key, once their connections are gone."""
from __future__ import annotations

import base64
import os
import re
import time

import pytest

from vssmtest.util import b64e, uniq

IP_WIPE = "127.0.0.37"
GCM = "AES/GCM/NoPadding"


def process_memory(pid: int) -> bytes:
    """Every readable private mapping of `pid` (heap, stacks, anonymous)."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            perms, path = fields[1], fields[5] if len(fields) > 5 else ""
            if not perms.startswith("r") or path.startswith("/") or path == "[vvar]" or path == "[vsyscall]":
                continue
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except OSError:
                pass
    return b"".join(chunks)


def test_no_copy_of_uploaded_secrets_stays_in_memory(make_node):
    if os.geteuid() != 0:
        pytest.skip("reading another process's memory needs root")
    node = make_node(IP_WIPE)
    node.start()
    node.wait_health()
    rpc_key_text = b64e(node.rpc_pkcs8).encode()
    assert node.bootstrap().status == 200
    node.wait_health(200)
    c = node.client()
    secret = os.urandom(32)
    name = uniq("wiped")
    c.inject(name, "SYMMETRIC", secret)
    for i in range(300):
        c.op_ok("symmetric/encrypt", keyName=name, algorithm=GCM, input=b"request %d" % i)
    c.close()
    # Characters from the middle of each secret's text form.
    needles = {
        "the bootstrap body's base64 RPC key": rpc_key_text[400:448],
        "the injected key's base64": base64.b64encode(secret)[:40],
        "the admin password": node.password.encode(),
    }
    # The node frees the client's connection once it has seen it close;
    # until then its buffers are live (and not wiped, as SECURITY.md says).
    deadline = time.monotonic() + 10
    while True:
        memory = process_memory(node.proc.pid)
        assert len(memory) > 1 << 20
        found = {what: len(re.findall(re.escape(needle), memory)) for what, needle in needles.items()}
        if not any(found.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert found == {what: 0 for what in needles}, found
    assert node.alive()
