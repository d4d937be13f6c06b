"""`vssm bootstrapper` (issue 3 item 7): a stand-alone join server holding
the RPC key hands it to attested instances of the trusted image, so the
first node of a cluster comes up without an operator uploading the key.

Addresses: bootstrapper 127.0.0.140, nodes 127.0.0.141-142.
"""
import subprocess
import time

from vssmtest.cluster import CLUSTER_BIN, ClusterNode, FakeAws, wait_until
from vssmtest.node import terminate

BOOTSTRAPPER_IP = "127.0.0.140"
IMAGE = "ami-0123456789abcdef0"


def start_bootstrapper(pki, ca_file, trusted_image, log_path):
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(CLUSTER_BIN), "bootstrapper", "--trusted-image", trusted_image, "--account", "123456789012",
         "--private-key", str(pki.rpc_key_pem), "--certificate", str(pki.rpc_crt),
         "--bind", BOOTSTRAPPER_IP, "--attestation-ca", str(ca_file)],
        stdout=log, stderr=subprocess.STDOUT)
    wait_until(lambda: b"serving joins" in log_path.read_bytes() or proc.poll() is not None, 10,
               desc="bootstrapper listening")
    assert proc.poll() is None, log_path.read_text()
    return proc


def _run(pki, tmp_path, trusted_image, ip_suffix):
    fake = FakeAws(tmp_path / "fake-aws").start()
    ca_file = tmp_path / "attestation-ca.der"
    ca_file.write_bytes(fake.ca_der())
    log_path = tmp_path / "bootstrapper.log"
    proc = start_bootstrapper(pki, ca_file, trusted_image, log_path)
    ip = f"127.0.0.{ip_suffix}"
    inst = fake.add_instance(ip_suffix, ip)
    node = ClusterNode(pki, ip, tmp_path / "node",
                       cluster=fake.cluster_config(inst, bootstrappers=[BOOTSTRAPPER_IP]))
    return fake, proc, log_path, node


def test_first_node_gets_the_rpc_key_from_the_bootstrapper(pki, tmp_path):
    fake, proc, log_path, node = _run(pki, tmp_path, IMAGE, 141)
    try:
        node.start()
        seconds = node.wait_ready(15)
        assert seconds < 15
        log = log_path.read_text()
        assert "action=join" in log and "outcome=ok" in log and "granted to instance" in log, log
        assert any("received the RPC key" in line for line in node.stderr_audit()), node.log()[-2000:]
    finally:
        node.stop()
        terminate(proc)
        fake.stop()


def test_bootstrapper_requires_the_account(pki, tmp_path):
    r = subprocess.run([str(CLUSTER_BIN), "bootstrapper", "--trusted-image", IMAGE,
                        "--private-key", str(pki.rpc_key_pem), "--certificate", str(pki.rpc_crt)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "--account" in r.stderr, r


def test_bootstrapper_refuses_an_untrusted_image(pki, tmp_path):
    fake, proc, log_path, node = _run(pki, tmp_path, "ami-0fffffffffffffff0", 142)
    try:
        node.start()
        wait_until(lambda: "outcome=refused" in log_path.read_text(), 15, desc="refusal audited")
        time.sleep(0.5)
        assert node.health_code() == 503, "the node must stay bootstrapping"
        log = log_path.read_text()
        assert f"image {IMAGE} is not trusted" in log, log
        assert "granted" not in log, log
    finally:
        node.stop()
        terminate(proc)
        fake.stop()
