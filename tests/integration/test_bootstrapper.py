"""`vssm bootstrapper` (issue 3 item 7): a stand-alone join server holding
the RPC key hands it to attested instances of the trusted image, so the
first node of a cluster comes up without an operator uploading the key.

Addresses: bootstrapper 127.0.0.140, nodes 127.0.0.141-145.
"""
import subprocess
import time

from vssmtest.cluster import CLUSTER_BIN, ClusterNode, FakeAws, wait_until
from vssmtest.crypto_ref import scrypt_mcf
from vssmtest.node import terminate
from vssmtest.pki import pem_to_der_cert
from vssmtest.util import b64e

BOOTSTRAPPER_IP = "127.0.0.140"
IMAGE = "ami-0123456789abcdef0"


def start_bootstrapper(pki, ca_file, trusted_image, log_path, cluster_dir):
    """The bootstrapper, run in `cluster_dir`, whose config.json is the cluster's
    config (the default of --config, as of --certificate)."""
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(CLUSTER_BIN), "bootstrapper", "--trusted-image", trusted_image, "--account", "123456789012",
         "--private-key", str(pki.rpc_key_pem), "--certificate", str(pki.rpc_crt),
         "--bind", BOOTSTRAPPER_IP, "--attestation-ca", str(ca_file)],
        stdout=log, stderr=subprocess.STDOUT, cwd=cluster_dir)
    wait_until(lambda: b"serving joins" in log_path.read_bytes() or proc.poll() is not None, 10,
               desc="bootstrapper listening")
    assert proc.poll() is None, log_path.read_text()
    return proc


def _node(pki, fake, tmp_path, ip_suffix, **config) -> ClusterNode:
    """Instance `ip_suffix` and its (not started) node; `config` changes its user-data."""
    ip = f"127.0.0.{ip_suffix}"
    inst = fake.add_instance(ip_suffix, ip)
    return ClusterNode(pki, ip, tmp_path / f"node{ip_suffix}",
                       cluster=fake.cluster_config(inst, bootstrappers=[BOOTSTRAPPER_IP]), **config)


def _run(pki, tmp_path, trusted_image, ip_suffix):
    fake = FakeAws(tmp_path / "fake-aws").start()
    ca_file = tmp_path / "attestation-ca.der"
    ca_file.write_bytes(fake.ca_der())
    log_path = tmp_path / "bootstrapper.log"
    node = _node(pki, fake, tmp_path, ip_suffix)
    proc = start_bootstrapper(pki, ca_file, trusted_image, log_path, node.dir)
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


def test_bootstrapper_refuses_a_joiner_with_other_user_data(pki, tmp_path):
    """Attack (issue 8 item 2): instances of the trusted image launched with the
    attacker's own user-data (own client CA; own admin password) ask the
    bootstrapper for the RPC key; only the cluster's configuration gets it."""
    fake, proc, log_path, good = _run(pki, tmp_path, IMAGE, 143)
    rogue_ca = _node(pki, fake, tmp_path, 144,
                     clientTrustStore=[b64e(pem_to_der_cert(pki.rogue_ca_crt))])
    rogue_pw = _node(pki, fake, tmp_path, 145, password_hash=scrypt_mcf("the attacker's password"))
    try:
        for rogue in (rogue_ca, rogue_pw):
            rogue.start()
        for rogue in (rogue_ca, rogue_pw):
            wait_until(lambda: f'subject="{rogue.ip}"' in log_path.read_text()
                       and "another configuration" in log_path.read_text(), 15,
                       desc=f"bootstrapper refuses {rogue.ip}'s configuration:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.5)
        for rogue in (rogue_ca, rogue_pw):
            assert rogue.health_code() == 503, f"{rogue.ip} got the RPC key"
        assert "granted" not in log_path.read_text()
        good.start()
        good.wait_ready(15)
        log = log_path.read_text()
        assert "granted to instance" in log and good.config_digest().hex() in log, log
        assert rogue_ca.health_code() == 503 and rogue_pw.health_code() == 503
    finally:
        for node in (good, rogue_ca, rogue_pw):
            node.stop()
        terminate(proc)
        fake.stop()


def test_bootstrapper_needs_the_clusters_config(pki, tmp_path):
    r = subprocess.run([str(CLUSTER_BIN), "bootstrapper", "--trusted-image", IMAGE, "--account", "123456789012",
                        "--private-key", str(pki.rpc_key_pem), "--certificate", str(pki.rpc_crt)],
                       capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert r.returncode == 1 and "config" in r.stderr, r
