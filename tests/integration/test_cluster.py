"""Cluster (issue 3 item 9/10): attested join, discovery through the fake
AWS Auto Scaling group, sync, partitions, conflicts, restore, strong
attestation, and the measurements (join time, 10,000-key convergence,
steady-state anti-entropy bytes).

Addresses: AWS cluster 127.0.0.101-109 (+ .150 as an attacker), replacement
cluster 127.0.0.161-164, static pair 127.0.0.111-112, strong cluster
127.0.0.121-123, measurement cluster 127.0.0.131-135; issue 8: other user-data
127.0.0.171-174, rollout 127.0.0.176-177, detached member 127.0.0.181-183,
strong-mode role 127.0.0.191-193.
"""
import hashlib
import hmac
import json
import os
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import padding as apad

from vssmtest.backup import make_backup
from vssmtest.cluster import (MEASUREMENTS, ClusterNode, FakeAws, JoinClient, all_converged,
                              aws_document, join_request, key_names, lookalike_pkcs7, new_ephemeral,
                              open_granted_key, sigv4_sts_request, start_lagging, static_pair,
                              strong_bound_headers, two_versions, wait_until)
from vssmtest.crypto_ref import scrypt_mcf, sym_decrypt, sym_encrypt
from vssmtest.util import TESTDATA, b64d, b64e, uniq

ATTACKER_IP = "127.0.0.150"
FORGED_DIR = TESTDATA / "aws-iid"
GCM = "AES/GCM/NoPadding"


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------

class AwsCluster:
    """One fake AWS account/group and the nodes of its instances."""

    def __init__(self, pki, root, base_ip: int, attestation="basic"):
        self.pki, self.root, self.base, self.attestation = pki, root, base_ip, attestation
        self.fake = FakeAws(root / "fake-aws").start()
        self.nodes: dict[int, ClusterNode] = {}
        self.instances: dict[int, dict] = {}

    def ip(self, n: int) -> str:
        return f"127.0.0.{self.base + n}"

    def add(self, n: int, start=True, config: dict | None = None, cluster: dict | None = None,
            **fields) -> ClusterNode:
        """Instance n (fake AWS `fields`) and its node; `config` adds or replaces
        top-level config fields (the user-data), `cluster` fields of its cluster section."""
        inst = self.fake.add_instance(self.base + n, self.ip(n), **fields)
        self.instances[n] = inst
        node = ClusterNode(self.pki, self.ip(n), self.root / f"node{n}",
                           cluster=self.fake.cluster_config(inst, attestation=self.attestation,
                                                            **(cluster or {})),
                           **(config or {}))
        self.nodes[n] = node
        if start:
            node.start()
        return node

    def live(self) -> list:
        """The running nodes, ready (waits for joiners)."""
        nodes = [n for n in self.nodes.values() if n.alive()]
        for n in nodes:
            n.wait_ready(10)
        return nodes

    def iid(self, n: int) -> str:
        return self.instances[n]["instanceId"]

    def digest(self) -> bytes:
        """The config digest of the cluster's nodes (they share their config but for IMDS)."""
        if not hasattr(self, "_digest"):
            self._digest = next(iter(self.nodes.values())).config_digest()
        return self._digest

    def bootstrap_by_hand(self, n: int) -> ClusterNode:
        node = self.add(n)
        node.wait_health()
        r = node.bootstrap()
        assert r.status == 200, f"bootstrap: {r!r}\n{node.log()[-2000:]}"
        node.wait_ready(10)
        return node

    def close(self):
        for node in self.nodes.values():
            node.stop()
        self.fake.stop()


def grant_lines(nodes, iid):
    return [l for n in nodes if n.alive() for l in n.audit()
            if "action=join" in l and "outcome=ok" in l and f"granted to instance {iid}" in l]


def rpc_key_matches(pki, pkcs8_der: bytes) -> bool:
    key = serialization.load_der_private_key(pkcs8_der, None)
    return key.public_key().public_numbers() == pki.rpc_private_key.public_key().public_numbers()


def wait_converged(nodes, timeout, records=None):
    return wait_until(lambda: all_converged(nodes, records), timeout, interval=0.05,
                      desc=f"digests of {[n.ip for n in nodes]} equal" +
                           (f" with {records} records" if records is not None else "") +
                           f"; statuses={[n.status() for n in nodes]}")


def assert_refused(peer, result, source, keywords, since):
    """403 {"error": "join refused: <reason>"} naming `keywords`, no key in the
    answer, and the same reason audited by `peer` for `source` (after entry `since`)."""
    assert result.status == 403, f"expected 403: {result!r}"
    assert isinstance(result.json, dict) and set(result.json) == {"error"}, result
    err = result.json["error"]
    assert err.startswith("join refused: "), err
    assert "encryptedRpcKey" not in result.raw.decode(errors="replace"), result
    assert all(k.lower() in err.lower() for k in keywords), f"reason {err!r} lacks {keywords}"
    reason = err[len("join refused: "):].replace('"', '\\"')[:120]
    lines = [l for l in peer.audit()[since:] if "action=join" in l
             and f'subject="{source}"' in l and "outcome=refused" in l]
    assert any(f"detail={reason}" in l for l in lines), (
        f"no audit line with the reason {err!r} for {source}: {lines}")


def decrypt_ok(client, name, ct, pt):
    r = client.op("symmetric/decrypt", keyName=name, algorithm=GCM, input=ct)
    return r.status == 200 and b64d(r.json["output"]) == pt


@pytest.fixture(scope="module", autouse=True)
def print_measurements(request):
    """Shows the measurements at the end of the module, past pytest's capture."""
    yield
    if MEASUREMENTS.data:
        capman = request.config.pluginmanager.get_plugin("capturemanager")
        text = f"\ncluster measurements ({MEASUREMENTS.path}):\n" + json.dumps(
            MEASUREMENTS.data, indent=2, sort_keys=True)
        if capman is not None:
            with capman.global_and_fixture_disabled():
                print(text)
        else:
            print(text)


# --------------------------------------------------------------------------
# The AWS-discovered cluster: join, replacement, refusals, partition, restore
# --------------------------------------------------------------------------

def three_node_aws_cluster(pki, root, base_ip):
    """Node 1 bootstrapped by hand, nodes 2 and 3 started (joining by attestation)."""
    c = AwsCluster(pki, root, base_ip=base_ip)
    try:
        c.bootstrap_by_hand(1)
        c.add(2)
        c.add(3)
        yield c
    finally:
        c.close()


@pytest.fixture(scope="class")
def aws(pki, tmp_path_factory):
    """The cluster of TestAwsCluster; its tests leave nodes 1-3 running, so
    they pass in any order."""
    yield from three_node_aws_cluster(pki, tmp_path_factory.mktemp("aws-cluster"), 100)


@pytest.fixture(scope="class")
def aws_replace(pki, tmp_path_factory):
    """A cluster of its own for the test that kills node 1 (which others need)."""
    yield from three_node_aws_cluster(pki, tmp_path_factory.mktemp("aws-replace"), 160)


class TestAwsCluster:
    def test_nodes_join_by_attestation_and_keys_work_across_nodes(self, aws, pki):
        n1, n2, n3 = (aws.nodes[i] for i in (1, 2, 3))
        t2, t3 = n2.wait_ready(10), n3.wait_ready(10)
        MEASUREMENTS.record("join_seconds_aws_cluster_nodes_2_3", [round(t2, 3), round(t3, 3)])

        for n, joiner in ((2, n2), (3, n3)):
            assert grant_lines([n1, n2, n3], aws.iid(n)), (
                f"no peer audited a granted join of {aws.iid(n)}:\n" +
                "\n".join(l for x in (n1, n2, n3) for l in x.audit() if "action=join" in l))
            mine = [l for l in joiner.audit() if "action=join" in l and "outcome=ok" in l
                    and "received the RPC key" in l]
            assert mine, f"{joiner.ip} did not audit its own join: {joiner.audit()}"

        # Node 2 and node 3 serve the RPC certificate and mTLS like node 1.
        c2, c3 = n2.client(), n3.client()
        assert c2.peer_cert_der() == pki.rpc_cert_der == c3.peer_cert_der()

        aes, pt = uniq("aes"), os.urandom(100)
        assert c2.generate(aes, "SYMMETRIC", "32").status == 200
        ct = c2.out("symmetric/encrypt", keyName=aes, algorithm=GCM, input=pt)
        t0 = time.monotonic()
        wait_until(lambda: decrypt_ok(c3, aes, ct, pt), 5, desc=f"{aes} usable on node 3")
        MEASUREMENTS.record("key_visible_on_other_node_seconds", round(time.monotonic() - t0, 3))
        # ... and the other way round.
        ct3 = c3.out("symmetric/encrypt", keyName=aes, algorithm=GCM, input=pt)
        assert decrypt_ok(c2, aes, ct3, pt)

        rsa, msg = uniq("rsa"), b"signed on node 2"
        assert c2.generate(rsa, "ASYMMETRIC", "2048", "RSA").status == 200
        sig = c2.out("asymmetric/sign", keyName=rsa, algorithm="SHA256withRSA", input=msg)
        pub_der = b64d(c2.listkeys(keyName=rsa, keyType="ASYMMETRIC")["asymmetricKey"][0]["publicKey"])
        pub = serialization.load_der_public_key(pub_der)
        pub.verify(sig, msg, apad.PKCS1v15(), hashes.SHA256())
        wait_until(lambda: c3.op("asymmetric/verify", keyName=rsa, algorithm="SHA256withRSA",
                                 input=msg, signature=sig).json == {"valid": True},
                   5, desc=f"{rsa} on node 3")
        sig3 = c3.out("asymmetric/sign", keyName=rsa, algorithm="SHA256withRSA", input=msg)
        pub.verify(sig3, msg, apad.PKCS1v15(), hashes.SHA256())

    # ---- refusals (peer: node 2; the "victim" identity: instance 3) ----

    def _refused(self, aws, result, source, keywords, since):
        assert_refused(aws.nodes[2], result, source, keywords, since)

    def _jc(self, aws, pki):
        aws.nodes[2].wait_ready(10)
        return JoinClient(pki, aws.ip(2))

    def _audit_len(self, aws):
        aws.nodes[2].wait_ready(10)
        return len(aws.nodes[2].audit())

    def test_valid_request_is_granted_but_a_used_challenge_is_refused(self, aws, pki):
        jc = self._jc(aws, pki)
        doc, sig = aws.fake.identity(aws.instances[3])
        priv, pub = new_ephemeral()
        ch = jc.challenge(aws.ip(3))
        req = join_request(doc, sig, ch, pub, aws.digest())
        ok = jc.join(aws.ip(3), req)
        # Positive control: the harness speaks the protocol right and the key really comes back.
        assert ok.status == 200, ok
        assert rpc_key_matches(pki, open_granted_key(priv, pub, ch, doc, aws.digest(), ok.json))
        since = self._audit_len(aws)
        again = jc.join(aws.ip(3), req)
        self._refused(aws, again, aws.ip(3), ["challenge"], since)

    def test_captured_request_replayed_from_another_address_is_refused(self, aws, pki):
        jc = self._jc(aws, pki)
        doc, sig = aws.fake.identity(aws.instances[3])  # genuine document + signature
        _, pub = new_ephemeral()
        # a) the whole captured request (challenge issued to instance 3) sent from the attacker
        ch = jc.challenge(aws.ip(3))
        since = self._audit_len(aws)
        r = jc.join(ATTACKER_IP, join_request(doc, sig, ch, pub, aws.digest()))
        self._refused(aws, r, ATTACKER_IP, ["challenge"], since)
        # b) the attacker gets its own fresh challenge and replays document + signature
        ch = jc.challenge(ATTACKER_IP)
        since = self._audit_len(aws)
        r = jc.join(ATTACKER_IP, join_request(doc, sig, ch, pub, aws.digest()))
        self._refused(aws, r, ATTACKER_IP, [ATTACKER_IP, aws.ip(3)], since)

    @pytest.mark.parametrize("field,value", [("imageId", "ami-0fedcba9876543210"),
                                             ("accountId", "210987654321")])
    def test_document_of_another_image_or_account_is_refused(self, aws, pki, field, value):
        jc = self._jc(aws, pki)
        doc, _ = aws.fake.identity(aws.instances[3])
        fields = json.loads(doc)
        fields[field] = value
        other = aws_document(fields)
        sig = aws.fake.sign(other)  # genuinely signed by the trusted (test) CA
        _, pub = new_ephemeral()
        ch = jc.challenge(aws.ip(3))
        since = self._audit_len(aws)
        r = jc.join(aws.ip(3), join_request(other, sig, ch, pub, aws.digest()))
        self._refused(aws, r, aws.ip(3), [value], since)

    @pytest.mark.parametrize("how", ["other-group", "terminating", "deleted"])
    def test_instance_not_in_the_group_is_refused(self, aws, pki, how):
        n = {"other-group": 5, "terminating": 6, "deleted": 7}[how]
        fields = {"other-group": {"groupName": "other-asg"},
                  "terminating": {"lifecycleState": "Terminating"},
                  "deleted": {}}[how]
        inst = aws.fake.add_instance(aws.base + n, aws.ip(n), **fields)
        doc, sig = aws.fake.identity(inst)
        if how == "deleted":
            aws.fake.delete_instance(inst["instanceId"])
            time.sleep(2.5)  # longer than any membership cache (2 s in the node)
        jc = self._jc(aws, pki)
        _, pub = new_ephemeral()
        ch = jc.challenge(aws.ip(n))
        since = self._audit_len(aws)
        r = jc.join(aws.ip(n), join_request(doc, sig, ch, pub, aws.digest()))
        self._refused(aws, r, aws.ip(n), ["member"], since)

    def test_forged_pkcs7_is_refused(self, aws, pki):
        jc = self._jc(aws, pki)
        _, pub = new_ephemeral()
        # a) the shared forged blob (embedded look-alike AWS certificate) with its document
        doc = (FORGED_DIR / "forged.document.json").read_bytes()
        blob = (FORGED_DIR / "forged-embedded-lookalike-cert.p7.der").read_bytes()
        ch = jc.challenge(aws.ip(3))
        since = self._audit_len(aws)
        r = jc.join(aws.ip(3), join_request(doc, blob, ch, pub, aws.digest()))
        self._refused(aws, r, aws.ip(3), ["identity document"], since)
        # b) instance 3's exact document signed with a self-made key whose embedded
        #    certificate copies the test CA's subject and serial; right address, fresh challenge
        doc, _ = aws.fake.identity(aws.instances[3])
        blob = lookalike_pkcs7(doc, aws.fake.ca_der())
        ch = jc.challenge(aws.ip(3))
        since = self._audit_len(aws)
        r = jc.join(aws.ip(3), join_request(doc, blob, ch, pub, aws.digest()))
        self._refused(aws, r, aws.ip(3), ["identity document"], since)

    # ---- partition and restore ----

    def test_partitioned_node_converges_after_healing(self, aws):
        live = aws.live()
        n3 = aws.nodes[3]
        others = [n for n in live if n is not n3]
        assert len(others) >= 2, [n.ip for n in live]
        wait_converged(live, 10)
        # every node knows the others (pushes go to the peers discovery reported)
        wait_until(lambda: all({o.ip for o in live if o is not n} <= set(n.status()["peers"]) for n in live),
                   10, desc="every live node lists the others as peers")
        writers = [n.client() for n in others]
        before = n3.status()["records"]
        n3.sigstop()
        try:
            made = []
            for i in range(5):
                name = uniq("part")
                writer, reader = writers[i % len(writers)], writers[(i + 1) % len(writers)]
                assert writer.generate(name, "SYMMETRIC", "16").status == 200
                made.append(name)
                # Pushed at once to the live peer: the stopped one must not
                # hold up pushes (or rounds) to the others. Rounds come every
                # 1.5-2.5 s, so only a push meets this bound every time.
                wait_until(lambda: name in {n for n, _ in key_names(reader.listkeys())["symmetricKey"]}, 1.2,
                           desc=f"{name} pushed to the live peer while one peer is stopped")
            wait_converged(others, 10, records=before + 5)
            pt = b"made during the partition"
            ct = writers[-1].out("symmetric/encrypt", keyName=made[0], algorithm=GCM, input=pt)
        finally:
            n3.sigcont()
        t0 = time.monotonic()
        sts = wait_converged(live, 30, records=before + 5)
        MEASUREMENTS.record("partition_heal_convergence_seconds", round(time.monotonic() - t0, 3))
        c3 = n3.client()
        names = {n for n, _ in key_names(c3.listkeys())["symmetricKey"]}
        assert set(made) <= names
        assert decrypt_ok(c3, made[0], ct, pt)
        assert sts[0]["records"] == len(c3.listkeys()["symmetricKey"]) + len(
            c3.listkeys()["asymmetricKey"]) + len(c3.listkeys()["macKey"])

    def test_restore_on_one_node_reaches_all(self, aws, pki):
        live = aws.live()
        assert len(live) >= 3, [n.ip for n in live]
        target, rest = live[0], live[1:]
        aes_key, mac_key = os.urandom(32), os.urandom(32)
        ec_key = ec.generate_private_key(ec.SECP256R1())
        now = int(time.time() * 1000)
        names = {s: uniq(s) for s in ("r-aes", "r-mac", "r-ec")}
        inventory = {
            "symmetricKey": [{"name": names["r-aes"], "createdAt": str(now - 5000), "key": b64e(aes_key)}],
            "asymmetricKey": [{"name": names["r-ec"], "createdAt": str(now - 4000), "keyType": "EC",
                               "key": b64e(ec_key.private_bytes(serialization.Encoding.DER,
                                                                serialization.PrivateFormat.PKCS8,
                                                                serialization.NoEncryption()))}],
            "macKey": [{"name": names["r-mac"], "createdAt": str(now - 3000), "key": b64e(mac_key)}],
        }
        blob = make_backup(inventory, pki.rpc_private_key.public_key())
        assert target.client().admin("restorebackup", backup=blob).status == 200
        pt = b"restored elsewhere"
        local_ct = sym_encrypt(GCM, aes_key, pt)
        msg = b"mac me"
        tag = hmac.new(mac_key, msg, hashlib.sha256).digest()
        for node in rest:
            c = node.client()
            wait_until(lambda: decrypt_ok(c, names["r-aes"], local_ct, pt), 10,
                       desc=f"restored AES key on {node.ip}")
            wait_until(lambda: c.op("hmac/verify", keyName=names["r-mac"], algorithm="SHA256",
                                    input=msg, hmac=tag).json == {"valid": True}, 10,
                       desc=f"restored MAC key on {node.ip}")
            sig = wait_until(lambda: c.op("asymmetric/sign", keyName=names["r-ec"],
                                          algorithm="SHA256withECDSA", input=msg).json, 10)
            ec_key.public_key().verify(b64d(sig["output"]), msg, ec.ECDSA(hashes.SHA256()))
            created = {e["name"]: e["createdAt"] for s in ("symmetricKey", "macKey", "asymmetricKey")
                       for e in c.listkeys().get(s, [])}
            assert created[names["r-aes"]] == str(now - 5000), "createdAt of the backup is kept"
        wait_converged(live, 10)


class TestAwsClusterReplacement:
    def test_node1_killed_node4_joins_and_holds_every_key(self, aws_replace):
        aws = aws_replace
        n1, n2, n3 = (aws.nodes[i] for i in (1, 2, 3))
        for n in (n1, n2, n3):
            n.wait_ready(10)
        # Old data, made on node 2 before node 1 dies.
        c2 = n2.client()
        aes, pt = uniq("aes"), os.urandom(50)
        assert c2.generate(aes, "SYMMETRIC", "32").status == 200
        ct = c2.out("symmetric/encrypt", keyName=aes, algorithm=GCM, input=pt)
        rsa = uniq("rsa")
        assert c2.generate(rsa, "ASYMMETRIC", "2048", "RSA").status == 200
        rsa_pub = b64d(c2.listkeys(keyName=rsa, keyType="ASYMMETRIC")["asymmetricKey"][0]["publicKey"])
        c1 = n1.client()
        mac, data = uniq("mac-on-1"), b"made on node 1 just before it dies"
        assert c1.generate(mac, "MAC", "32").status == 200
        tag = c1.out("hmac/create", keyName=mac, algorithm="SHA256", input=data)
        wait_converged([n1, n2, n3], 10)
        before = key_names(c1.listkeys())
        assert mac in [n for n, _ in before["macKey"]]

        n1.sigkill()
        aws.fake.delete_instance(aws.iid(1))  # the ASG replaces it
        n4 = aws.add(4)
        t4 = n4.wait_ready(15)
        MEASUREMENTS.record("join_seconds_replacement_node4", round(t4, 3))
        assert grant_lines([n2, n3], aws.iid(4)), "no audited grant for node 4"

        c4 = n4.client()
        wait_until(lambda: key_names(c4.listkeys()) == before, 10,
                   desc="node 4 lists every key of the dead node 1")
        assert key_names(n2.client().listkeys()) == before == key_names(n3.client().listkeys())
        assert decrypt_ok(c4, aes, ct, pt), "old ciphertext does not decrypt on node 4"
        assert c4.op_ok("hmac/verify", keyName=mac, algorithm="SHA256", input=data,
                        hmac=tag) == {"valid": True}
        pub = b64d(c4.listkeys(keyName=rsa, keyType="ASYMMETRIC")["asymmetricKey"][0]["publicKey"])
        assert pub == rsa_pub


# --------------------------------------------------------------------------
# Concurrent same-name keys on two nodes (static discovery, manual bootstrap)
# --------------------------------------------------------------------------

def test_concurrent_same_name_keys_are_both_kept(pki, tmp_path):
    a, b = static_pair(pki, tmp_path, ["127.0.0.111", "127.0.0.112"])
    try:
        ca = a.client()
        name = uniq("dup")
        key_a, key_b = os.urandom(32), os.urandom(32)
        ca.inject(name, "SYMMETRIC", key_a)  # B is not running: nothing can reach it
        pt = b"data made before the heal"
        ct_a = ca.out("symmetric/encrypt", keyName=name, algorithm=GCM, input=pt)

        a.sigstop()  # A is partitioned from now on
        start_lagging(b)
        cb = b.client()
        assert name not in [e["name"] for e in cb.listkeys().get("symmetricKey", [])], (
            "B got A's key although A was stopped")
        cb.inject(name, "SYMMETRIC", key_b)
        ct_b = cb.out("symmetric/encrypt", keyName=name, algorithm=GCM, input=pt)
        a.sigcont()

        def both_versions(c):
            return two_versions(c, name)
        wait_until(lambda: both_versions(ca) and both_versions(cb), 15, desc="both versions on both nodes")
        wait_converged([a, b], 10)
        la, lb = both_versions(ca), both_versions(cb)
        assert sorted((e["name"], e["createdAt"]) for e in la) == sorted(
            (e["name"], e["createdAt"]) for e in lb), (la, lb)
        active = next(e for e in la if e["name"] == name)
        alias = next(e["name"] for e in la if e["name"] != name)
        assert len(alias) == len(name) + 1 + 12 and all(
            ch in "0123456789abcdef" for ch in alias[len(name) + 1:]), alias
        # A's version was created first: the smaller createdAt is the active one everywhere.
        assert int(active["createdAt"]) == min(int(e["createdAt"]) for e in la)
        for c in (ca, cb):
            assert decrypt_ok(c, name, ct_a, pt), "active version is not A's (older) key"
            assert decrypt_ok(c, alias, ct_b, pt), "B's data is not recoverable under the alias"
            new = c.out("symmetric/encrypt", keyName=name, algorithm=GCM, input=pt)
            assert sym_decrypt(GCM, key_a, new) == pt
            new = c.out("symmetric/encrypt", keyName=alias, algorithm=GCM, input=pt)
            assert sym_decrypt(GCM, key_b, new) == pt
        conflict = [l for n in (a, b) for l in n.audit() if "action=sync-conflict" in l and name in l]
        assert conflict, "no sync-conflict audit line"
    finally:
        a.stop()
        b.stop()


# --------------------------------------------------------------------------
# Strong attestation (STS GetCallerIdentity)
# --------------------------------------------------------------------------

def test_strong_attestation_join_and_foreign_sts_credentials(pki, tmp_path):
    c = AwsCluster(pki, tmp_path, base_ip=120, attestation="strong")
    try:
        s1 = c.bootstrap_by_hand(1)
        s2 = c.add(2)
        MEASUREMENTS.record("join_seconds_strong", round(s2.wait_ready(15), 3))
        assert grant_lines([s1], c.iid(2)), "no audited grant for the strong join"
        sts_calls = [r for r in c.fake.requests(action="GetCallerIdentity") if r.get("status") == 200]
        assert any(c.iid(2) in json.dumps(r) for r in sts_calls), (
            f"the peer did not check the joiner with STS: {sts_calls}")

        inst3 = c.fake.add_instance(c.base + 3, c.ip(3))  # a member, not running a node
        jc = JoinClient(pki, c.ip(1))
        doc, sig = c.fake.identity(c.instances[2])
        region = json.loads(doc)["region"]
        sts_url = c.fake.endpoint()

        def attempt(credentials):
            priv, pub = new_ephemeral()
            ch = jc.challenge(c.ip(2))
            sts = None if credentials is None else sigv4_sts_request(
                credentials, sts_url, region, strong_bound_headers(ch, pub, c.digest()))
            return jc.join(c.ip(2), join_request(doc, sig, ch, pub, c.digest(), sts)), priv, pub, ch

        # Positive control: instance 2's own role credentials.
        r, priv, pub, ch = attempt(c.instances[2]["credentials"])
        assert r.status == 200, r
        assert rpc_key_matches(pki, open_granted_key(priv, pub, ch, doc, c.digest(), r.json))

        for label, creds in (("another instance's credentials", inst3["credentials"]),
                             ("the peer's own credentials", c.instances[1]["credentials"]),
                             ("no stsRequest", None)):
            since = len(s1.audit())
            r, *_ = attempt(creds)
            assert_refused(s1, r, c.ip(2), ["sts"] if creds is None else ["sts", c.iid(2)], since)
    finally:
        c.close()


# --------------------------------------------------------------------------
# Issue 8: joiners with other user-data, detached members, strong-mode roles
# --------------------------------------------------------------------------

def refusals(node, action, source, text):
    """Refused audit lines of `action` from `source` that contain `text`."""
    return [l for l in node.audit() if f"action={action}" in l and f'subject="{source}"' in l
            and "outcome=refused" in l and text in l]


def rogue_ca_trust_store(pki) -> list:
    """A clientTrustStore naming the attacker's own CA (pki's rogue CA)."""
    from vssmtest.pki import pem_to_der_cert
    return [b64e(pem_to_der_cert(pki.rogue_ca_crt))]


def test_trusted_image_with_other_user_data_is_refused_the_rpc_key(pki, tmp_path):
    """Attack (issue 8 item 2): an instance of the trusted image in the group,
    launched with the attacker's own user-data (own client CA; own admin
    password), must not get the RPC key; one with the cluster's config does."""
    c = AwsCluster(pki, tmp_path, base_ip=170)
    try:
        n1 = c.bootstrap_by_hand(1)
        rogue_ca = c.add(2, config={"clientTrustStore": rogue_ca_trust_store(pki)})
        rogue_pw = c.add(3, config={"password_hash": scrypt_mcf("the attacker's password")},)
        for n, rogue in ((2, rogue_ca), (3, rogue_pw)):
            wait_until(lambda: refusals(n1, "join", c.ip(n), "another configuration"), 15,
                       desc=f"node 1 refuses instance {n}'s configuration; audit="
                            f"{[l for l in n1.audit() if 'action=join' in l]}")
            assert rogue.health_code() == 503, f"{rogue.ip} must stay bootstrapping"
            assert not grant_lines([n1], c.iid(n))
            assert rogue.config_digest() != n1.config_digest()
        # Positive control: the cluster's own config joins.
        good = c.add(4)
        good.wait_ready(15)
        assert grant_lines([n1], c.iid(4))
        time.sleep(1)
        assert rogue_ca.health_code() == 503 and rogue_pw.health_code() == 503
        assert not grant_lines([n1, good], c.iid(2)) and not grant_lines([n1, good], c.iid(3))
    finally:
        c.close()


def test_rollout_lets_a_listed_configuration_join(pki, tmp_path):
    """A config change (a second client CA) joins a cluster whose config lists
    its digest in acceptedConfigDigests (the documented rollout)."""
    from vssmtest.pki import pem_to_der_cert
    c = AwsCluster(pki, tmp_path, base_ip=175)
    try:
        both_cas = [b64e(pem_to_der_cert(pki.ca_crt))] + rogue_ca_trust_store(pki)
        new = c.add(2, start=False, config={"clientTrustStore": both_cas})
        new_digest = new.config_digest()
        n1 = c.add(1, start=False, cluster={"acceptedConfigDigests": [new_digest.hex()]})
        assert n1.config_digest() != new_digest
        n1.start()
        n1.wait_health()
        assert n1.bootstrap().status == 200
        n1.wait_ready(10)
        name = uniq("before-rollout")
        assert n1.client().generate(name, "SYMMETRIC", "32").status == 200
        new.start()
        new.wait_ready(15)
        grants = grant_lines([n1], c.iid(2))
        assert grants and new_digest.hex() in grants[0], grants
        wait_converged([n1, new], 10, records=1)
        assert name in {n for n, _ in key_names(new.client().listkeys())["symmetricKey"]}
    finally:
        c.close()


def test_detached_instance_stops_receiving_updates_and_its_pushes_are_refused(pki, tmp_path):
    """Attack (issue 8 item 2, sync): an instance detached from the group keeps
    the RPC key; within 30 s it must stop receiving updates, and what it pushes
    must be refused."""
    c = AwsCluster(pki, tmp_path, base_ip=180)
    try:
        n1 = c.bootstrap_by_hand(1)
        n2, n3 = c.add(2), c.add(3)
        nodes = c.live()
        wait_converged(nodes, 10)
        before = n1.status()["records"]

        c.fake.patch_instance(c.iid(3), groupName=None)  # aws autoscaling detach-instances
        t0 = time.monotonic()
        # The members drop their links to it and refuse its rounds and pushes.
        wait_until(lambda: all(c.ip(3) not in n.status()["peers"] for n in (n1, n2))
                   and all(refusals(n, "sync", c.ip(3), "not a current member") for n in (n1, n2)),
                   30, interval=0.2, desc="members drop and refuse the detached instance")
        MEASUREMENTS.record("detached_instance_cut_off_seconds", round(time.monotonic() - t0, 3))

        after_detach = uniq("after-detach")
        assert n1.client().generate(after_detach, "SYMMETRIC", "32").status == 200
        from_detached = uniq("from-detached")
        assert n3.client().generate(from_detached, "SYMMETRIC", "32").status == 200
        wait_converged([n1, n2], 10, records=before + 1)
        time.sleep(6)  # three sync intervals of the test config
        names3 = {n for n, _ in key_names(n3.client().listkeys())["symmetricKey"]}
        assert after_detach not in names3, "the detached instance still receives updates"
        for n in (n1, n2):
            assert from_detached not in {k for k, _ in key_names(n.client().listkeys())["symmetricKey"]}, (
                f"{n.ip} accepted a push of the detached instance")
            assert n.status()["records"] == before + 1
        assert "403" in n3.log() and "not a current member" in n3.log()
    finally:
        c.close()


def test_strong_attestation_refuses_a_session_of_another_role(pki, tmp_path):
    """Attack (issue 8 item 5): a joiner whose STS session is named after its
    instance but belongs to another role than the cluster's instance role."""
    c = AwsCluster(pki, tmp_path, base_ip=190, attestation="strong")
    try:
        n1 = c.bootstrap_by_hand(1)
        other = c.add(2, roleName="some-other-role")
        wait_until(lambda: refusals(n1, "join", c.ip(2), "instance role vssm-node"), 15,
                   desc=f"node 1 refuses the other role; audit={[l for l in n1.audit() if 'action=join' in l]}")
        line = refusals(n1, "join", c.ip(2), "instance role vssm-node")[0]
        assert "session of role some-other-role" in line, line
        assert other.health_code() == 503
        assert not grant_lines([n1], c.iid(2))
        # Positive control: the cluster's role joins in strong mode.
        c.add(3).wait_ready(15)
        assert grant_lines([n1], c.iid(3))
        assert other.health_code() == 503
    finally:
        c.close()


# --------------------------------------------------------------------------
# Measurements: join time, 10,000 keys across 5 nodes, steady-state bytes
# --------------------------------------------------------------------------

def _compact_backup(pki, prefix, n_sym, n_mac):
    now = int(time.time() * 1000)
    inv = {"symmetricKey": [{"name": f"{prefix}s{i:04d}", "createdAt": now, "key": b64e(os.urandom(16))}
                            for i in range(n_sym)],
           "macKey": [{"name": f"{prefix}m{i:04d}", "createdAt": now, "key": b64e(os.urandom(16))}
                      for i in range(n_mac)]}
    raw = json.dumps(inv, separators=(",", ":")).encode()
    return inv, make_backup(None, pki.rpc_private_key.public_key(), raw_json=raw)


def _steady_bytes(nodes, timeout=15):
    """lastRoundBytes of every node in steady state: in sync, each did more
    rounds than it has peers, and its connections to the peers are set up
    (a node's first round with a peer carries that TLS handshake, a few KB;
    a node that kept reconnecting would never get under the bound here)."""
    start = {n.ip: n.status()["antiEntropyRounds"] for n in nodes}
    wait_until(lambda: all(n.status()["antiEntropyRounds"] >= start[n.ip] + len(nodes)
                           for n in nodes), timeout, interval=0.2, desc="steady-state rounds")
    wait_converged(nodes, 5)
    last = {}

    def settled():
        last.update({n.ip: n.status()["lastRoundBytes"] for n in nodes})
        return all(0 < b < 512 for b in last.values())
    try:
        wait_until(settled, timeout, interval=0.2, desc="rounds without a handshake")
    except AssertionError:
        raise AssertionError(f"steady-state rounds still move {last} bytes") from None
    return [last[n.ip] for n in nodes]


def test_measurements_join_convergence_and_steady_state_bytes(pki, tmp_path):
    c = AwsCluster(pki, tmp_path, base_ip=130)
    try:
        n1 = c.bootstrap_by_hand(1)
        others = [c.add(i) for i in range(2, 6)]
        joins = [round(n.wait_ready(20), 3) for n in others]
        MEASUREMENTS.record("join_seconds_5node_cluster_nodes_2_5_started_together", joins)
        nodes = [n1] + others
        wait_converged(nodes, 10, records=0)

        # 10 keys
        _, small = _compact_backup(pki, "a", 5, 5)
        assert n1.client().admin("restorebackup", backup=small).status == 200
        wait_converged(nodes, 10, records=10)
        bytes_10 = _steady_bytes(nodes)
        MEASUREMENTS.record("steady_state_round_bytes_10_keys", bytes_10)

        # 10,000 keys in one restore on node 1
        _, big = _compact_backup(pki, "b", 5000, 5000)
        size = len(json.dumps({"adminPassword": n1.password, "backup": big}))
        assert size < 1 << 20, f"backup request of {size} bytes is over the 1 MiB limit"
        c1 = n1.client()
        t0 = time.monotonic()
        r = c1.admin("restorebackup", backup=big)
        t_restore = time.monotonic() - t0
        assert r.status == 200, r
        wait_converged(nodes, 90, records=10010)
        t_conv = time.monotonic() - t0
        MEASUREMENTS.record("restore_10000_keys_request_seconds", round(t_restore, 3))
        MEASUREMENTS.record("converge_10000_keys_5_nodes_seconds", round(t_conv, 3))

        bytes_10k = _steady_bytes(nodes)
        MEASUREMENTS.record("steady_state_round_bytes_10010_keys", bytes_10k)
        # A key from the big restore works on the last node.
        cl = others[-1].client()
        names = {e["name"] for e in cl.listkeys()["symmetricKey"]}
        assert {"bs0000", "bs4999"} <= names

        for b in bytes_10 + bytes_10k:
            assert 0 < b < 512, f"steady-state round moved {b} bytes"
        # O(1): the only difference allowed is the digits of the record count.
        assert max(bytes_10k) - min(bytes_10) <= 8 and max(bytes_10) - min(bytes_10k) <= 8, (
            bytes_10, bytes_10k)
        assert t_conv <= 5.0, f"10,000 keys took {t_conv:.2f}s to converge on 5 nodes (target 5 s)"
    finally:
        c.close()
