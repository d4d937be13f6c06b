"""Finding 8: a second `vssm` started on an address that is already served
used to start without error (every port was bound with SO_REUSEPORT) and
the kernel handed it about half of the connections. Now start-up fails
with the address in the message and a non-zero exit code, for every port."""
from __future__ import annotations

import json
import subprocess

from vssmtest.node import health

IP_TAKEN = "127.0.0.35"
IP_TAKEN_CLUSTER = "127.0.0.36"


def second_process(binary, config: dict, workdir) -> subprocess.CompletedProcess:
    """Runs `vssm serve` with `config`; it must exit on its own."""
    path = workdir / "second.json"
    path.write_text(json.dumps(config))
    return subprocess.run([str(binary), "serve", "--config", str(path)], capture_output=True, text=True,
                          timeout=15, stdin=subprocess.DEVNULL)


def test_a_second_node_on_a_served_address_refuses_to_start(make_node, tmp_path):
    first = make_node(IP_TAKEN)
    first.start_bootstrapped()
    result = second_process(first.binary, first.config, tmp_path)
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert f"cannot listen on {IP_TAKEN}:8080" in result.stderr, result.stderr
    assert "in use" in result.stderr.lower(), result.stderr
    # The first node kept every connection.
    assert health(IP_TAKEN) == (200, "running")
    c = first.client()
    assert c.listkeys() is not None


def test_a_taken_cluster_port_stops_the_start_too(make_node, tmp_path):
    """The sync and join ports were bound later, by the cluster thread, and
    a failure there was only logged while the node went on without them."""
    cluster = {"discovery": "static", "peers": [IP_TAKEN_CLUSTER], "attestation": "none"}
    first = make_node(IP_TAKEN_CLUSTER, cluster=cluster)
    first.start()
    # Other API and health ports, the same sync port.
    config = dict(first.config, apiPort=9080, healthPort=9081)
    result = second_process(first.binary, config, tmp_path)
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert f"cannot listen on {IP_TAKEN_CLUSTER}:8082" in result.stderr, result.stderr
