"""Key lifecycle (issue 10) with real processes: versions and rotation across
a cluster, first-VSSM answers for keys that were never rotated, the minimum
decryption version, rewrap and trimming, states that replicate, deletion
that no stopped node and no old backup undoes, scheduled rotation, the
management operations under enforcement, and data keys of rotated keys.
Ciphertexts, signatures and MACs are checked with Python `cryptography` /
`hmac`; material of versions made by the server comes from a version-2
backup opened locally with the RPC key.

Addresses: shared trio 127.0.0.60-62; destruction while a node is stopped
.63-65, .66-68 and .83-85; concurrent rotations .86-87; cancel
cut off from the peers .88-90; backup cluster .69, .70, .76 (+ .78 joining
later); fresh node for a restore .79; enforced node .80.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import concurrent.futures
import threading
import time

import pytest
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vssmtest.authz import grant, make_identity
from vssmtest.backup import open_backup
from vssmtest.cluster import start_lagging, wait_until
from vssmtest.lifecycle import (LIFECYCLE_CONFIG, describe, describe_ok, key_admin, key_admin_ok, key_ids,
                                lifecycle_cluster, split_versioned)
from vssmtest.node import Node
from vssmtest.util import b64d, b64e, uniq

IPS_TRIO = ["127.0.0.60", "127.0.0.61", "127.0.0.62"]
IPS_STOPPED_AFTER = ["127.0.0.63", "127.0.0.64", "127.0.0.65"]
IPS_STOPPED_BEFORE = ["127.0.0.66", "127.0.0.67", "127.0.0.68"]
IPS_STOPPED_IN_USE = ["127.0.0.83", "127.0.0.84", "127.0.0.85"]
IPS_BACKUP = ["127.0.0.69", "127.0.0.70", "127.0.0.76", "127.0.0.78"]  # the last joins later
IPS_PAIR = ["127.0.0.86", "127.0.0.87"]
IPS_CANCEL = ["127.0.0.88", "127.0.0.89", "127.0.0.90"]
IP_FRESH = "127.0.0.79"
IP_ENFORCED = "127.0.0.80"

GCM = "AES/GCM/NoPadding"
SYM, ASYM, MAC = "SYMMETRIC", "ASYMMETRIC", "MAC"
# A state change or a rotation is visible on every node within this (issue 10, item 9).
REPLICATION_S = 2.0


def as_int(value) -> int:
    """An int64 of the API (a string) or a plain number, as an int."""
    assert isinstance(value, (int, str)) and str(value).lstrip("-").isdigit(), value
    return int(value)


def now_ms() -> int:
    return int(time.time() * 1000)


def version_required(resp, name: str):
    """The 400 of a rotated key asked for without version information."""
    assert resp.status == 400, f"a rotated key without version fields must be 400: {resp!r}"
    message = resp.error()
    assert f'key "{name}"' in message and '"versioned"' in message and '"keyVersion"' in message, message


def encrypt(client, name, versioned=None, key_version=None, pt=b"lifecycle"):
    fields = {}
    if versioned is not None:
        fields["versioned"] = versioned
    if key_version is not None:
        fields["keyVersion"] = key_version
    return client.op("symmetric/encrypt", keyName=name, algorithm=GCM, input=pt, **fields)


def decrypt(client, name, ct, **fields):
    return client.op("symmetric/decrypt", keyName=name, algorithm=GCM, input=ct, **fields)


def clients(nodes):
    return [n.client() for n in nodes]


def on_every_node(nodes, name, key_type=SYM, timeout=5.0):
    """Waits until every node lists `name`."""
    for n in nodes:
        c = n.client()
        wait_until(lambda: c.admin("listkeys", keyName=name, keyType=key_type).status == 200, timeout,
                   desc=f"{name} on {n.ip}")


def backup_material(client, rpc_private_key, name, section="symmetricKey") -> dict[int, bytes]:
    """version -> key bytes of `name` in a fresh backup of the node (opened locally)."""
    blob = client.admin_ok("generatebackup", backupVersion=2)["backup"]
    assert as_int(blob["version"]) == 2, blob["version"]
    inventory = open_backup(blob, rpc_private_key)
    return {e.get("version", 1): b64d(e["key"]) for e in inventory.get(section, []) if e["name"] == name}


@pytest.fixture(scope="module")
def trio(pki, tmp_path_factory):
    """A static 3-node cluster (sync every second) with second-long lifecycle minimums."""
    nodes = lifecycle_cluster(pki, tmp_path_factory.mktemp("lc-trio"), IPS_TRIO)
    try:
        yield nodes
    finally:
        for n in nodes:
            n.stop()


# --------------------------------------------------------------------------
# 1. Versions across nodes; first-VSSM answers for keys never rotated
# --------------------------------------------------------------------------

def test_rotation_on_a_is_used_on_c_and_old_ciphertexts_still_decrypt_on_b(trio, pki):
    ca, cb, cc = clients(trio)
    name, v1 = uniq("lc-sym"), os.urandom(32)
    ca.inject(name, SYM, v1)
    on_every_node(trio, name)

    legacy_ct = cb.out("symmetric/encrypt", keyName=name, algorithm=GCM, input=b"legacy before")
    answer = cb.op_ok("symmetric/encrypt", keyName=name, algorithm=GCM, input=b"versioned before", versioned=True)
    assert set(answer) == {"output", "keyVersion"} and answer["keyVersion"] == 1, answer
    versioned_v1 = b64d(answer["output"])
    version, v1_id, body = split_versioned(versioned_v1)
    assert version == 1 and AESGCM(v1).decrypt(body[:12], body[12:], None) == b"versioned before"

    assert key_admin_ok(ca, "rotatekey", name) == {"keyVersion": 2}
    t0 = time.monotonic()
    answer = wait_until(lambda: (r := encrypt(cc, name, versioned=True, pt=b"after")).status == 200
                        and r.json["keyVersion"] == 2 and r.json, 5, interval=0.01, desc="version 2 on C")
    seen_after = time.monotonic() - t0
    assert seen_after < REPLICATION_S, f"the rotation reached C after {seen_after:.2f} s"
    assert set(answer) == {"output", "keyVersion"}, answer
    version, v2_id, body = split_versioned(b64d(answer["output"]))
    assert version == 2 and v2_id != v1_id
    assert key_ids(describe_ok(cc, name)) == {1: v1_id, 2: v2_id}, "the header's key id is the version's"
    # Independently: version 2's material (from a backup) opens C's output; version 1's does not.
    material = backup_material(ca, pki.rpc_private_key, name)
    assert material[1] == v1 and len(material[2]) == 32 and material[2] != v1
    assert AESGCM(material[2]).decrypt(body[:12], body[12:], None) == b"after"
    with pytest.raises(InvalidTag):
        AESGCM(v1).decrypt(body[:12], body[12:], None)

    # Old ciphertexts still decrypt on B, naming their version.
    wait_until(lambda: describe_ok(cb, name)["newestVersion"] == 2, 5, desc="version 2 on B")
    r = decrypt(cb, name, legacy_ct, keyVersion=1)
    assert r.status == 200 and r.json == {"output": b64e(b"legacy before"), "keyVersion": 1}, r
    r = decrypt(cb, name, versioned_v1, versioned=True)
    assert r.status == 200 and r.json == {"output": b64e(b"versioned before"), "keyVersion": 1}, r
    assert b64d(decrypt(cb, name, b64d(answer["output"]), versioned=True).json["output"]) == b"after"
    # The header and keyVersion must agree; a version that does not exist is refused.
    assert decrypt(cb, name, versioned_v1, versioned=True, keyVersion=2).status == 400
    assert encrypt(cb, name, key_version=7).status == 400
    # The legacy forms cannot say which version they mean: 400 that says what to send.
    version_required(decrypt(cb, name, legacy_ct), name)
    version_required(encrypt(cc, name), name)
    # keyVersion 1 still encrypts with version 1 (the caller asked for it).
    r = encrypt(ca, name, key_version=1, pt=b"old on purpose")
    out = b64d(r.json["output"])
    assert r.json["keyVersion"] == 1 and AESGCM(v1).decrypt(out[:12], out[12:], None) == b"old on purpose"


def test_a_key_never_rotated_answers_exactly_as_the_first_vssm(trio):
    ca, cb, _ = clients(trio)
    aes, mac_key = os.urandom(32), os.urandom(32)
    sym, mac, eck = uniq("lc-plain-sym"), uniq("lc-plain-mac"), uniq("lc-plain-ec")
    ca.inject(sym, SYM, aes)
    ca.inject(mac, MAC, mac_key)
    assert ca.generate(eck, ASYM, 256, "EC").status == 200
    on_every_node(trio, eck, ASYM)
    on_every_node(trio, mac, MAC)

    r = cb.op("symmetric/encrypt", keyName=sym, algorithm=GCM, input=b"x")
    assert r.status == 200 and list(r.json) == ["output"], r
    assert r.body == b'{"output":"' + r.json["output"].encode() + b'"}', r.body
    ct = b64d(r.json["output"])
    assert ct[:3] != b"VK\x01" and len(ct) == 12 + 1 + 16, "no header without `versioned`"
    r = cb.op("symmetric/decrypt", keyName=sym, algorithm=GCM, input=ct)
    assert r.body == b'{"output":"' + b64e(b"x").encode() + b'"}', r.body
    r = cb.op("hmac/create", keyName=mac, algorithm="SHA256", input=b"m")
    tag = hmac.new(mac_key, b"m", hashlib.sha256).digest()
    assert r.body == b'{"output":"' + b64e(tag).encode() + b'"}', r.body
    r = cb.op("hmac/verify", keyName=mac, algorithm="SHA256", input=b"m", hmac=tag)
    assert r.status == 200 and r.json == {"valid": True}, r
    r = cb.op("asymmetric/sign", keyName=eck, algorithm="SHA256withECDSA", input=b"m")
    assert r.status == 200 and list(r.json) == ["output"], r
    r = cb.op("asymmetric/verify", keyName=eck, algorithm="SHA256withECDSA", input=b"m", signature=b64d(r.json["output"]))
    assert r.status == 200 and r.json == {"valid": True}, r
    r = cb.post("/REST/v1/keys/publickey", {"keyName": eck})
    assert r.status == 200 and "keyVersion" not in r.json, r
    r = cb.op("symmetric/generatedatakey", keyName=sym)
    assert r.status == 200 and set(r.json) == {"ciphertext", "plaintext", "keySpec"}, r
    # Describing a key changes nothing of that.
    d = describe_ok(cb, sym)
    assert (d["state"], d["newestVersion"], d["minDecryptionVersion"]) == ("ENABLED", 1, 1), d
    assert list(cb.op_ok("symmetric/encrypt", keyName=sym, algorithm=GCM, input=b"x")) == ["output"]


def test_rotated_ec_key_signs_with_the_newest_version_and_verifies_by_version(trio):
    ca, cb, cc = clients(trio)
    name = uniq("lc-ec")
    assert ca.generate(name, ASYM, 256, "EC").status == 200
    on_every_node(trio, name, ASYM)
    sig1 = cb.out("asymmetric/sign", keyName=name, algorithm="SHA256withECDSA", input=b"v1 doc")
    pub1 = serialization.load_der_public_key(b64d(cb.ok("/REST/v1/keys/publickey", {"keyName": name})["publicKey"]))
    pub1.verify(sig1, b"v1 doc", ec.ECDSA(hashes.SHA256()))

    assert key_admin_ok(ca, "rotatekey", name, ASYM) == {"keyVersion": 2}
    answer = wait_until(lambda: (r := cc.op("asymmetric/sign", keyName=name, algorithm="SHA256withECDSA",
                                            input=b"v2 doc", versioned=True)).status == 200
                        and r.json["keyVersion"] == 2 and r.json, 5, interval=0.01, desc="version 2 on C")
    assert set(answer) == {"output", "keyVersion"}, answer
    sig2 = b64d(answer["output"])
    assert sig2[0] == 0x30, "a signature stays the raw DER signature, without a header"

    pub = cb.ok("/REST/v1/keys/publickey", {"keyName": name, "keyVersion": 2})
    assert pub["keyVersion"] == 2 and pub["keySpec"] == "EC", pub
    pub2 = serialization.load_der_public_key(b64d(pub["publicKey"]))
    pub2.verify(sig2, b"v2 doc", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        pub1.verify(sig2, b"v2 doc", ec.ECDSA(hashes.SHA256()))
    newest = cb.ok("/REST/v1/keys/publickey", {"keyName": name})
    assert newest["keyVersion"] == 2 and newest["publicKey"] == pub["publicKey"], "without keyVersion: the newest"
    old = cb.ok("/REST/v1/keys/publickey", {"keyName": name, "keyVersion": 1})
    assert old["keyVersion"] == 1 and serialization.load_der_public_key(b64d(old["publicKey"])).public_numbers() \
        == pub1.public_numbers()

    def verify(sig, msg, **fields):
        return cb.op("asymmetric/verify", keyName=name, algorithm="SHA256withECDSA", input=msg, signature=sig, **fields)

    r = verify(sig2, b"v2 doc")
    assert r.status == 400 and "keyVersion" in r.error(), r
    r = verify(sig2, b"v2 doc", versioned=True)
    assert r.status == 400 and "keyVersion" in r.error(), f"a signature has no header to read: {r!r}"
    assert verify(sig2, b"v2 doc", keyVersion=2).json == {"valid": True, "keyVersion": 2}
    assert verify(sig1, b"v1 doc", keyVersion=1).json == {"valid": True, "keyVersion": 1}
    assert verify(sig1, b"v1 doc", keyVersion=2).json.get("valid", False) is False
    version_required(cb.op("asymmetric/sign", keyName=name, algorithm="SHA256withECDSA", input=b"m"), name)


def test_rotated_mac_key_creates_with_the_newest_version_and_old_macs_verify_only_as_version_1(trio):
    ca, cb, cc = clients(trio)
    name, k1 = uniq("lc-mac"), os.urandom(32)
    ca.inject(name, MAC, k1)
    on_every_node(trio, name, MAC)
    mac1 = cb.out("hmac/create", keyName=name, algorithm="SHA256", input=b"msg")
    assert mac1 == hmac.new(k1, b"msg", hashlib.sha256).digest()

    assert key_admin_ok(cb, "rotatekey", name, MAC) == {"keyVersion": 2}
    answer = wait_until(lambda: (r := cc.op("hmac/create", keyName=name, algorithm="SHA256", input=b"msg",
                                            versioned=True)).status == 200 and r.json["keyVersion"] == 2 and r.json,
                        5, interval=0.01, desc="version 2 on C")
    mac2 = b64d(answer["output"])
    assert len(mac2) == 32 and mac2 != mac1, "version 2 is new material"

    def verify(tag, **fields):
        return ca.op("hmac/verify", keyName=name, algorithm="SHA256", input=b"msg", hmac=tag, **fields)

    wait_until(lambda: describe_ok(ca, name, MAC)["newestVersion"] == 2, 5, desc="version 2 on A")
    assert verify(mac2, keyVersion=2).json == {"valid": True, "keyVersion": 2}
    assert verify(mac1, keyVersion=1).json == {"valid": True, "keyVersion": 1}
    assert verify(mac1, keyVersion=2).json.get("valid", False) is False
    assert verify(mac2, keyVersion=1).json.get("valid", False) is False
    r = verify(mac1)
    assert r.status == 400 and "keyVersion" in r.error(), r
    version_required(ca.op("hmac/create", keyName=name, algorithm="SHA256", input=b"msg"), name)


def test_last_used_shows_which_versions_are_still_in_use(trio):
    ca, cb, _ = clients(trio)
    name, v1 = uniq("lc-used"), os.urandom(32)
    ca.inject(name, SYM, v1)
    assert key_admin_ok(ca, "rotatekey", name) == {"keyVersion": 2}
    wait_until(lambda: describe(cb, name).status == 200 and describe_ok(cb, name)["newestVersion"] == 2, 5,
               desc="version 2 on B")
    assert [v for v in describe_ok(cb, name)["versions"] if "lastUsed" in v] == [], "never used yet"
    nonce = os.urandom(12)
    ct = nonce + AESGCM(v1).encrypt(nonce, b"old data", None)
    before = now_ms() // 1000 * 1000
    assert b64d(decrypt(cb, name, ct, keyVersion=1).json["output"]) == b"old data"
    versions = {v["version"]: v for v in describe_ok(cb, name)["versions"]}
    assert before <= as_int(versions[1]["lastUsed"]) <= now_ms(), versions
    assert "lastUsed" not in versions[2], f"version 2 was not used: {versions}"
    assert as_int(versions[2]["createdAt"]) >= as_int(versions[1]["createdAt"])


def test_concurrent_rotations_on_two_nodes_keep_both_materials_apart(pki, tmp_path):
    """A and B each make a "version 2" before either hears of the other's
    (both rotations sent at the same moment); after they meet, ciphertexts
    of both decrypt on both nodes (the header's key id picks the material)
    and both encrypt with the same newest. (Pausing one node instead would
    not do: a paused node confirms with a peer before it serves again.)"""
    nodes = lifecycle_cluster(pki, tmp_path, IPS_PAIR)
    try:
        a, b = nodes
        ca, cb = clients(nodes)
        attempts = []
        for _ in range(20):
            name = uniq("lc-split")
            assert ca.generate(name, SYM, 32).status == 200
            on_every_node(nodes, name)
            start = threading.Barrier(2)

            def rotate(c):
                start.wait()
                return key_admin_ok(c, "rotatekey", name)["keyVersion"]
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                versions = list(pool.map(rotate, (ca, cb)))
            attempts.append(versions)
            if versions == [2, 2]:
                break
            # One node heard of the other's rotation first: not concurrent, try again.
        assert attempts[-1] == [2, 2], f"the rotations never crossed: {attempts}"
        # Both materials of version 2 are kept: the one both nodes use, and
        # the other under its conflict alias name~<fingerprint prefix>.
        alias = wait_until(
            lambda: next((k["name"] for k in ca.ok("/REST/v1/keys/list", {}).get("keys", [])
                          if k["name"].startswith(name + "~")), None), 5, desc="the conflict alias")
        ct_a = b64d(encrypt(ca, name, versioned=True, pt=b"from A").json["output"])
        ct_b = b64d(encrypt(cb, alias, versioned=True, pt=b"from B").json["output"])
        (va, id_a, _), (vb, id_b, _) = split_versioned(ct_a), split_versioned(ct_b)
        assert va == vb == 2 and id_a != id_b, "two materials, both numbered 2"

        def agreed():  # lastUsed is each node's own
            ds = [describe_ok(x, name) for x in (ca, cb)]
            return key_ids(ds[0]) == key_ids(ds[1]) and ds[0]
        d = wait_until(agreed, 5, desc="A and B agree on the versions")
        assert key_ids(d)[2] in (id_a, id_b), d
        for x in (ca, cb):
            for ct, pt in ((ct_a, b"from A"), (ct_b, b"from B")):
                r = wait_until(lambda: (r := decrypt(x, name, ct, versioned=True)).status == 200 and r, 5,
                               desc=f"{pt!r} on {x.host}")
                assert r.json == {"output": b64e(pt), "keyVersion": 2}, r
        newest = {split_versioned(b64d(encrypt(x, name, versioned=True).json["output"]))[:2] for x in (ca, cb)}
        assert newest == {(2, key_ids(d)[2])}, newest
    finally:
        for n in nodes:
            n.stop()


# --------------------------------------------------------------------------
# 2. Minimum decryption version, rewrap, trimming
# --------------------------------------------------------------------------

def test_min_decryption_version_rewrap_and_trimming(trio, pki):
    ca, cb, cc = clients(trio)
    name, v1 = uniq("lc-retire"), os.urandom(32)
    ca.inject(name, SYM, v1)
    on_every_node(trio, name)
    old = b64d(encrypt(cb, name, versioned=True, pt=b"secret v1").json["output"])
    assert split_versioned(old)[0] == 1
    assert key_admin_ok(ca, "rotatekey", name) == {"keyVersion": 2}
    for c in (cb, cc):
        wait_until(lambda: describe_ok(c, name)["newestVersion"] == 2, 5, desc="version 2 everywhere")

    # Rewrap: old versioned ciphertext in, newest-version ciphertext out; no plaintext in the answer.
    r = cc.op("symmetric/rewrap", keyName=name, algorithm=GCM, input=old, versioned=True)
    assert r.status == 200 and set(r.json) == {"output", "keyVersion"} and r.json["keyVersion"] == 2, r
    assert b"secret v1" not in r.body and b64e(b"secret v1").encode() not in r.body
    rewrapped = b64d(r.json["output"])
    version, key_id, body = split_versioned(rewrapped)
    assert version == 2 and key_id == key_ids(describe_ok(cc, name))[2]
    with pytest.raises(InvalidTag):
        AESGCM(v1).decrypt(body[:12], body[12:], None)
    assert b64d(decrypt(ca, name, rewrapped, versioned=True).json["output"]) == b"secret v1"
    # A legacy v1 ciphertext rewraps when it names its version.
    legacy = encrypt(cb, name, key_version=1, pt=b"legacy v1").json["output"]
    r = cb.op("symmetric/rewrap", keyName=name, algorithm=GCM, input=b64d(legacy), keyVersion=1)
    assert r.status == 200 and r.json["keyVersion"] == 2, r
    assert b64d(decrypt(cc, name, b64d(r.json["output"]), versioned=True).json["output"]) == b"legacy v1"

    # Minimum decryption version 2: version 1 refused (400) on every node.
    assert key_admin_ok(cb, "setmindecryptionversion", name, minDecryptionVersion=2) == {}
    for c in (ca, cb, cc):
        r = wait_until(lambda: (r := decrypt(c, name, old, versioned=True)).status != 200 and r, REPLICATION_S,
                       interval=0.01, desc="version 1 retired")
        assert r.status == 400 and "minimum decryption version 2" in r.error(), r
        assert decrypt(c, name, b64d(legacy), keyVersion=1).status == 400
        assert b64d(decrypt(c, name, rewrapped, versioned=True).json["output"]) == b"secret v1"
        assert c.op("symmetric/rewrap", keyName=name, algorithm=GCM, input=old, versioned=True).status == 400
    assert key_admin(ca, "setmindecryptionversion", name, minDecryptionVersion=3).status == 400, "no version 3"

    # Trimming: only up to the minimum decryption version.
    r = key_admin(ca, "trimversions", name, minAvailableVersion=3)
    assert r.status == 400 and "minAvailableVersion" in r.error(), r
    assert key_admin(ca, "rotatekey", name).json == {"keyVersion": 3}
    r = key_admin(cc, "trimversions", name, minAvailableVersion=3)
    assert r.status == 400, f"version 3 is above minDecryptionVersion 2: {r!r}"
    assert key_admin_ok(cc, "trimversions", name, minAvailableVersion=2) == {}
    for c in (ca, cb, cc):
        r = wait_until(lambda: (r := decrypt(c, name, old, versioned=True)).status == 410 and r, REPLICATION_S,
                       interval=0.01, desc="version 1 destroyed")
        assert "version 1" in r.error() and "destroyed" in r.error(), r
        assert decrypt(c, name, b64d(legacy), keyVersion=1).status == 410
        d = describe_ok(c, name)
        assert (d["minAvailableVersion"], d["minDecryptionVersion"], d["newestVersion"]) == (2, 2, 3), d
        assert sorted(key_ids(d)) == [2, 3], d
        assert b64d(decrypt(c, name, rewrapped, versioned=True).json["output"]) == b"secret v1"
    # Version 1's material is gone from the backups as well.
    assert sorted(backup_material(cb, pki.rpc_private_key, name)) == [2, 3]
    r = key_admin(ca, "setmindecryptionversion", name, minDecryptionVersion=1)
    assert r.status == 400, f"below the trimmed versions: {r!r}"


# --------------------------------------------------------------------------
# 3. States across nodes
# --------------------------------------------------------------------------

def refused_everywhere(cs, name, status, text, timeout=REPLICATION_S):
    """Waits until every client's encrypt of `name` is refused with `status`; checks the message."""
    t0 = time.monotonic()
    for c in cs:
        r = wait_until(lambda: (r := encrypt(c, name)).status == status and r, max(0.1, timeout - (time.monotonic() - t0)),
                       interval=0.01, desc=f"{status} on {c.host}")
        assert text in r.error(), r


def test_disable_enable_cancel_and_destruction_replicate(trio):
    a, b, c = trio
    ca, cb, cc = clients(trio)
    name = uniq("lc-state")
    assert ca.generate(name, SYM, 32).status == 200
    on_every_node(trio, name)
    ct = encrypt(cc, name, pt=b"kept").json["output"]

    # Disable on A: 409 on B and C within 2 s; enable on C: usable on A.
    assert key_admin_ok(ca, "disablekey", name) == {}
    refused_everywhere([ca, cb, cc], name, 409, f'key "{name}" is disabled')
    assert decrypt(cb, name, b64d(ct)).status == 409
    for x in (ca, cb, cc):
        assert describe_ok(x, name)["state"] == "DISABLED"
    assert key_admin_ok(cc, "enablekey", name) == {}
    wait_until(lambda: encrypt(ca, name).status == 200, REPLICATION_S, interval=0.01, desc="enabled on A")
    wait_until(lambda: encrypt(cb, name).status == 200, REPLICATION_S, interval=0.01, desc="enabled on B")

    # minimumWindow: the node's minimum (1 s in these tests), never with a window beside it.
    r = key_admin(cb, "scheduledeletion", name, pendingWindowSeconds=3, minimumWindow=True)
    assert r.status == 400 and "give pendingWindowSeconds or minimumWindow, not both" in r.error(), r
    shortest = uniq("lc-min-window")
    assert ca.generate(shortest, SYM, 16).status == 200
    before = now_ms()
    date = as_int(key_admin_ok(ca, "scheduledeletion", shortest, minimumWindow=True)["deletionDate"])
    assert before + 1000 <= date <= now_ms() + 1000, (before, date)

    # Schedule on B (3 s): 409 pending everywhere; enable and rotate refused; cancel on A: DISABLED.
    before = now_ms()
    date = as_int(key_admin_ok(cb, "scheduledeletion", name, pendingWindowSeconds=3)["deletionDate"])
    assert before + 3000 <= date <= now_ms() + 3000, (before, date)
    refused_everywhere([ca, cb, cc], name, 409, "pending deletion")
    for x in (ca, cb, cc):
        d = describe_ok(x, name)
        assert d["state"] == "PENDING_DELETION" and as_int(d["deletionDate"]) == date, d
    assert key_admin(ca, "enablekey", name).status == 409
    assert key_admin(cc, "rotatekey", name).status == 409
    assert key_admin(ca, "scheduledeletion", name, pendingWindowSeconds=5).status == 409, "scheduled already"
    assert key_admin_ok(ca, "canceldeletion", name) == {}
    for x in (ca, cb, cc):
        wait_until(lambda: describe_ok(x, name)["state"] == "DISABLED", REPLICATION_S, interval=0.01,
                   desc=f"cancelled on {x.host}")
        assert "deletionDate" not in describe_ok(x, name)
    assert now_ms() < date, "the test was too slow to cancel before the deadline"
    refused_everywhere([ca, cb, cc], name, 409, "disabled")
    time.sleep(max(0.0, (date - now_ms()) / 1000 + 1.2))  # past the old deadline: nothing destroys it
    assert key_admin_ok(cb, "enablekey", name) == {}
    for x in (ca, cb, cc):
        wait_until(lambda: encrypt(x, name).status == 200, REPLICATION_S, interval=0.01, desc="usable again")
        assert b64d(decrypt(x, name, b64d(ct)).json["output"]) == b"kept"

    # Schedule again (2 s) on C: after the deadline 410 everywhere, at once.
    date = as_int(key_admin_ok(cc, "scheduledeletion", name, pendingWindowSeconds=2)["deletionDate"])
    refused_everywhere([ca, cb, cc], name, 409, "pending deletion")
    time.sleep(max(0.0, (date - now_ms()) / 1000 + 0.05))
    for x in (ca, cb, cc):
        r = encrypt(x, name)
        assert r.status == 410 and r.error() == f'key "{name}" was destroyed', r
        assert decrypt(x, name, b64d(ct)).status == 410
        assert describe_ok(x, name)["state"] == "DESTROYED"
    for x in (ca, cb, cc):
        d = wait_until(lambda: "destroyedAt" in (d := describe_ok(x, name)) and d, 5, desc=f"tombstone on {x.host}")
        assert d["state"] == "DESTROYED" and as_int(d["destroyedAt"]) == date and d["versions"] == [], d
        r = x.generate(name, SYM, 32)
        assert r.status == 409 and "destroyed" in r.error(), f"a destroyed name is not reused: {r!r}"
        r = x.admin("injectkey", keyName=name, keyType=SYM, key=b64e(os.urandom(32)))
        assert r.status == 409, r
        assert name not in [e["name"] for e in x.listkeys().get("symmetricKey", [])]
        assert name not in [k["name"] for k in x.ok("/REST/v1/keys/list", {}).get("keys", [])]
        assert key_admin(x, "enablekey", name).status == 410
        assert key_admin(x, "canceldeletion", name).status == 410


# --------------------------------------------------------------------------
# 4. Destruction while a node is stopped
# --------------------------------------------------------------------------

@pytest.mark.parametrize("stop", ["after-schedule", "before-schedule", "before-schedule-lifecycle-in-use"])
def test_node_stopped_during_a_destruction_never_serves_the_key_again(pki, tmp_path, stop):
    """C is stopped (SIGSTOP) while B's deletion of a key comes due, either
    once C knows of the schedule or before it is made; in the last variant
    the cluster already keeps lifecycle state of another key (a disabled
    one) when C stops, in the other two the doomed key is the first."""
    ips = {"after-schedule": IPS_STOPPED_AFTER, "before-schedule": IPS_STOPPED_BEFORE,
           "before-schedule-lifecycle-in-use": IPS_STOPPED_IN_USE}[stop]
    nodes = lifecycle_cluster(pki, tmp_path, ips)
    try:
        a, b, c = nodes
        ca, cb, cc = clients(nodes)
        name, other = uniq("lc-gone"), uniq("lc-other")
        assert ca.generate(name, SYM, 32).status == 200
        on_every_node(nodes, name)
        ct = b64d(encrypt(cc, name).json["output"])  # C holds and serves the key
        if stop == "before-schedule-lifecycle-in-use":
            assert ca.generate(other, SYM, 32).status == 200
            on_every_node(nodes, other)
            assert key_admin_ok(ca, "disablekey", other) == {}
            wait_until(lambda: encrypt(cc, other).status == 409, REPLICATION_S, desc="the other key disabled on C")

        if stop.startswith("before-schedule"):
            c.sigstop()
            time.sleep(1.5)  # A's and B's links to C are stuck in a round: their pushes wait
        stopped_at = time.monotonic()
        date = as_int(key_admin_ok(cb, "scheduledeletion", name, pendingWindowSeconds=3)["deletionDate"])
        if stop == "after-schedule":
            wait_until(lambda: encrypt(cc, name).status == 409, REPLICATION_S, interval=0.01, desc="pending on C")
            c.sigstop()
            stopped_at = time.monotonic()
        try:
            time.sleep(max(0.0, (date - now_ms()) / 1000))
            # A and B refuse the key from the deadline on, but keep the
            # material until C, which might hold a cancellation, has
            # compared states with them.
            for x in (ca, cb):
                r = wait_until(lambda: (r := encrypt(x, name)).status == 410 and r, 5, desc=f"refused on {x.host}")
                d = describe_ok(x, name)
                assert d["state"] == "DESTROYED" and "destroyedAt" not in d, d
            time.sleep(max(0.0, stopped_at + 3.5 - time.monotonic()))  # past C's staleness bound too
        finally:
            c.sigcont()
        seen = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            for r in (encrypt(cc, name), decrypt(cc, name, ct)):
                seen.append(r.status)
                assert r.status in (410, 409, 503), f"C served the destroyed key after resuming: {seen} {r!r}"
        assert seen[-1] == 410, seen
        for x in (ca, cb, cc):
            d = wait_until(lambda: "destroyedAt" in (d := describe_ok(x, name)) and d, 8, desc=f"destroyed on {x.host}")
            assert d["state"] == "DESTROYED" and as_int(d["destroyedAt"]) == date and d["versions"] == [], d
        assert cc.generate(name, SYM, 32).status == 409
    finally:
        for n in nodes:
            n.stop()


def test_a_cancel_acknowledged_before_the_deadline_is_never_lost(pki, tmp_path):
    """A cancels the deletion 2.5 s before its deadline, while B and C are
    stopped (A's pushes wait in A); A stops, B and C resume and pass the
    deadline without A. The cancel was acknowledged before the deadline:
    once A is back, the key must be DISABLED everywhere, not destroyed."""
    nodes = lifecycle_cluster(pki, tmp_path, IPS_CANCEL)
    try:
        a, b, c = nodes
        ca, cb, cc = clients(nodes)
        name = uniq("lc-cancel")
        assert ca.generate(name, SYM, 32).status == 200
        on_every_node(nodes, name)
        ct = b64d(encrypt(cc, name, pt=b"must survive").json["output"])
        date = as_int(key_admin_ok(ca, "scheduledeletion", name, pendingWindowSeconds=4)["deletionDate"])
        refused_everywhere([ca, cb, cc], name, 409, "pending deletion")
        b.sigstop()
        c.sigstop()
        try:
            time.sleep(1.5)  # A's links to B and C are stuck in rounds: A's pushes wait in A
            assert key_admin_ok(ca, "canceldeletion", name) == {}
            assert now_ms() < date - 1500, "the cancel came too late for this test"
            assert describe_ok(ca, name)["state"] == "DISABLED"
            a.sigstop()
            b.sigcont()
            c.sigcont()
            time.sleep(max(0.0, (date - now_ms()) / 1000 + 1.5))  # B and C pass the deadline without A
        finally:
            a.sigcont()
            b.sigcont()
            c.sigcont()
        for x in (ca, cb, cc):
            d = wait_until(lambda: (d := describe_ok(x, name))["state"] in ("DISABLED", "DESTROYED") and d, 8,
                           interval=0.1, desc=f"the cancel on {x.host}")
            assert d["state"] == "DISABLED" and "destroyedAt" not in d, f"the cancelled key was destroyed: {d}"
        assert key_admin_ok(cb, "enablekey", name) == {}
        for x in (ca, cb, cc):
            r = wait_until(lambda: (r := decrypt(x, name, ct)).status == 200 and r, REPLICATION_S,
                           desc=f"usable on {x.host}")
            assert b64d(r.json["output"]) == b"must survive"
    finally:
        for n in nodes:
            n.stop()


# --------------------------------------------------------------------------
# 5. Backups
# --------------------------------------------------------------------------

def test_old_backup_restored_after_a_destruction_brings_nothing_back(pki, tmp_path):
    nodes = lifecycle_cluster(pki, tmp_path / "cluster", IPS_BACKUP, started=3)
    fresh = None
    try:
        a, b, c, d = nodes
        ca, cb, cc = clients(nodes[:3])
        doomed, kept, rotated = uniq("lc-doomed"), uniq("lc-kept"), uniq("lc-rotated")
        doomed_key, rot_v1 = os.urandom(32), os.urandom(32)
        ca.inject(doomed, SYM, doomed_key)
        assert ca.generate(kept, SYM, 32).status == 200
        ca.inject(rotated, SYM, rot_v1)
        legacy_v1 = b64d(encrypt(ca, rotated, pt=b"made by v1").json["output"])
        versioned_v1 = b64d(encrypt(ca, rotated, versioned=True, pt=b"versioned v1").json["output"])
        assert key_admin_ok(ca, "rotatekey", rotated) == {"keyVersion": 2}
        versioned_v2 = b64d(encrypt(ca, rotated, versioned=True, pt=b"versioned v2").json["output"])
        for name in (doomed, kept, rotated):
            on_every_node(nodes[:3], name)

        r = ca.admin("generatebackup", backupVersion=1)
        assert r.status == 400 and "backupVersion 2" in r.error(), f"version 1 cannot hold versions: {r!r}"
        blob = ca.admin_ok("generatebackup")["backup"]
        assert as_int(blob["version"]) == 2, "a rotated key makes the default version 2"
        inventory = open_backup(blob, pki.rpc_private_key)
        held = {(e["name"], e.get("version", 1)) for e in inventory["symmetricKey"]}
        assert {(doomed, 1), (kept, 1), (rotated, 1), (rotated, 2)} <= held, held

        # The backup restores every version into a fresh cluster (same RPC key).
        fresh = Node(pki, IP_FRESH, tmp_path / "fresh", **LIFECYCLE_CONFIG).start_bootstrapped()
        cf = fresh.client()
        assert cf.admin_ok("restorebackup", backup=blob) == {}
        assert describe_ok(cf, rotated)["newestVersion"] == 2
        assert b64d(decrypt(cf, rotated, legacy_v1, keyVersion=1).json["output"]) == b"made by v1"
        assert b64d(decrypt(cf, rotated, versioned_v1, versioned=True).json["output"]) == b"versioned v1"
        assert b64d(decrypt(cf, rotated, versioned_v2, versioned=True).json["output"]) == b"versioned v2"
        version_required(decrypt(cf, rotated, legacy_v1), rotated)
        fresh.stop()

        # Destroy `doomed` on B; D joins the cluster afterwards and restores the old backup.
        date = as_int(key_admin_ok(cb, "scheduledeletion", doomed, pendingWindowSeconds=1)["deletionDate"])
        for x in (ca, cb, cc):
            wait_until(lambda: encrypt(x, doomed).status == 410, date / 1000 - time.time() + 5,
                       desc=f"{doomed} refused on {x.host}")
        # D, a member that was never started, joins: the material is
        # zeroized once every member has compared states after the deadline.
        start_lagging(d)
        cd = d.client()
        for x in (ca, cb, cc, cd):
            wait_until(lambda: describe(x, doomed).status == 200 and "destroyedAt" in describe_ok(x, doomed), 8,
                       desc=f"{doomed} destroyed on {x.host}")
        r = cd.admin("restorebackup", backup=blob)
        assert r.status == 200 and r.json == {"destroyed": [f"SYMMETRIC/{doomed}"]}, r
        r = ca.admin("restorebackup", backup=blob)
        assert r.status == 200 and r.json == {"destroyed": [f"SYMMETRIC/{doomed}"]}, r
        for x in (ca, cb, cc, cd):
            assert encrypt(x, doomed).status == 410
            dd = describe_ok(x, doomed)
            assert dd["state"] == "DESTROYED" and dd["versions"] == [], dd
            assert encrypt(x, kept).status == 200
            assert doomed not in [e["name"] for e in x.listkeys().get("symmetricKey", [])]
        assert b64d(decrypt(cd, rotated, versioned_v1, versioned=True).json["output"]) == b"versioned v1"
        # ... and no later backup holds its material.
        inventory = open_backup(cd.admin_ok("generatebackup")["backup"], pki.rpc_private_key)
        assert doomed not in {e["name"] for e in inventory["symmetricKey"]}
    finally:
        if fresh is not None:
            fresh.stop()
        for n in nodes:
            n.stop()


# --------------------------------------------------------------------------
# 6. Scheduled rotation
# --------------------------------------------------------------------------

def test_scheduled_rotation_advances_on_every_node_and_stops_when_turned_off(trio):
    ca, cb, cc = clients(trio)
    name = uniq("lc-sched")
    assert ca.generate(name, SYM, 32).status == 200
    on_every_node(trio, name)
    r = key_admin(ca, "setrotation", name, rotationPeriodSeconds=-1)
    assert r.status == 400 and "rotationPeriodSeconds" in r.error(), r
    assert key_admin_ok(ca, "setrotation", name, rotationPeriodSeconds=2) == {}
    d = wait_until(lambda: as_int((d := describe_ok(cb, name))["rotationPeriodSeconds"]) == 2 and d,
                   REPLICATION_S, desc="the period on B")
    assert as_int(d["nextRotation"]) > as_int(d["versions"][0]["createdAt"]), d

    def newest_everywhere():
        return [describe_ok(x, name)["newestVersion"] for x in (ca, cb, cc)]

    wait_until(lambda: min(newest_everywhere()) >= 2, 6, interval=0.1, desc="a scheduled rotation on every node")
    # Every node holds the same material under each version number.
    ids = wait_until(lambda: (all_ids := [key_ids(describe_ok(x, name)) for x in (ca, cb, cc)])
                     and all_ids[0] == all_ids[1] == all_ids[2] and all_ids[0], 5, desc="the same versions everywhere")
    assert len(set(ids.values())) == len(ids), f"distinct material per version: {ids}"
    out = wait_until(lambda: (r := encrypt(ca, name, versioned=True, pt=b"rotating")).status == 200 and r.json, 2)
    assert b64d(wait_until(lambda: (r := decrypt(cc, name, b64d(out["output"]), versioned=True)).status == 200
                           and r.json, 3, desc="A's newest version on C")["output"]) == b"rotating"

    assert key_admin_ok(cb, "setrotation", name, rotationPeriodSeconds=0) == {}
    for x in (ca, cb, cc):
        wait_until(lambda: as_int(describe_ok(x, name)["rotationPeriodSeconds"]) == 0, REPLICATION_S,
                   desc=f"rotation off on {x.host}")
        assert "nextRotation" not in describe_ok(x, name)
    time.sleep(1.6)  # a rotation already under way (jitter <= 1.5 s) may still land
    settled = wait_until(lambda: len(set(v := newest_everywhere())) == 1 and v, 5, desc="the nodes agree")
    time.sleep(4.5)  # two periods and more
    assert newest_everywhere() == settled, "the version grew after the rotation was turned off"


# --------------------------------------------------------------------------
# 7. Authorization of the management operations
# --------------------------------------------------------------------------

def test_management_of_a_key_needs_its_own_grant_under_enforcement(pki, tmp_path):
    node = Node(pki, IP_ENFORCED, tmp_path / "enforced", **LIFECYCLE_CONFIG)
    try:
        node.start_bootstrapped()
        admin = node.client()
        name = uniq("lc-authz")
        admin.inject(name, SYM, os.urandom(32))
        user = make_identity(pki, "lc-user", cn="lc-user")
        rotator = make_identity(pki, "lc-rotator", cn="lc-rotator")
        admin.create_grants(grant("cn:lc-user", name, "encrypt"), grant("cn:lc-rotator", name, "rotate"),
                            grant("cn:vssm-test-client", "*", "list"))  # keys/describe for the test's own checks
        assert admin.set_policy(True) == {"policyEnforced": True}
        cu, cr = user.client(node), rotator.client(node)
        assert encrypt(cu, name).status == 200

        for op, fields in (("rotatekey", {}), ("setrotation", {"rotationPeriodSeconds": 5}),
                           ("setmindecryptionversion", {"minDecryptionVersion": 1}),
                           ("disablekey", {}), ("enablekey", {}),
                           ("scheduledeletion", {"pendingWindowSeconds": 5}), ("canceldeletion", {}),
                           ("trimversions", {"minAvailableVersion": 1})):
            r = key_admin(cu, op, name, **fields)
            assert r.status == 403 and r.error().startswith("no grant allows"), f"{op} by an encrypt-only client: {r!r}"
        for op in ("disablekey", "scheduledeletion"):
            r = key_admin(cr, op, name, **({"pendingWindowSeconds": 5} if op == "scheduledeletion" else {}))
            assert r.status == 403, f"rotate does not cover {op}: {r!r}"
        d = describe_ok(admin, name)
        assert (d["state"], d["newestVersion"], as_int(d["rotationPeriodSeconds"])) == ("ENABLED", 1, 0), d
        assert encrypt(cu, name).status == 200, "the refused calls changed nothing"

        assert key_admin_ok(cr, "rotatekey", name) == {"keyVersion": 2}, "rotate grant, no password"
        assert describe_ok(admin, name)["newestVersion"] == 2
        assert encrypt(cu, name, versioned=True).json["keyVersion"] == 2
        # rewrap needs decrypt as well as encrypt.
        ct = b64d(encrypt(cu, name, versioned=True).json["output"])
        r = cu.op("symmetric/rewrap", keyName=name, algorithm=GCM, input=ct, versioned=True)
        assert r.status == 403, r
    finally:
        node.stop()


# --------------------------------------------------------------------------
# 8. Data keys under rotated keys
# --------------------------------------------------------------------------

def test_data_keys_of_a_rotated_key_are_versioned_and_unwrap_with_decrypt(trio):
    ca, cb, cc = clients(trio)
    name, v1 = uniq("lc-dk"), os.urandom(32)
    ca.inject(name, SYM, v1)
    assert key_admin_ok(ca, "rotatekey", name) == {"keyVersion": 2}
    on_every_node(trio, name)
    wait_until(lambda: describe_ok(cb, name)["newestVersion"] == 2, 5, desc="version 2 on B")

    version_required(cb.op("symmetric/generatedatakey", keyName=name), name)
    answer = cb.op_ok("symmetric/generatedatakey", keyName=name, versioned=True)
    assert set(answer) == {"ciphertext", "plaintext", "keySpec", "keyVersion"} and answer["keyVersion"] == 2, answer
    data_key, wrapped = b64d(answer["plaintext"]), b64d(answer["ciphertext"])
    version, key_id, body = split_versioned(wrapped)
    assert len(data_key) == 32 and version == 2 and len(body) == 12 + 32 + 16
    assert key_id == key_ids(describe_ok(cb, name))[2]
    with pytest.raises(InvalidTag):
        AESGCM(v1).decrypt(body[:12], body[12:], None)
    for c in (ca, cc):
        wait_until(lambda: describe_ok(c, name)["newestVersion"] == 2, 5, desc="version 2")
        r = c.op_ok("symmetric/decrypt", keyName=name, algorithm=GCM, input=wrapped, versioned=True)
        assert r == {"output": b64e(data_key), "keyVersion": 2}, r
    nonce = os.urandom(12)
    sealed = AESGCM(data_key).encrypt(nonce, b"bulk", None)
    assert AESGCM(data_key).decrypt(nonce, sealed, None) == b"bulk"

    # Version 1 on request: wrapped under the injected material (checked locally).
    answer = ca.op_ok("symmetric/generatedatakey", keyName=name, keyVersion=1, withoutPlaintext=True)
    assert set(answer) == {"ciphertext", "keySpec", "keyVersion"} and answer["keyVersion"] == 1, answer
    wrapped = b64d(answer["ciphertext"])
    data_key = AESGCM(v1).decrypt(wrapped[:12], wrapped[12:], None)
    assert cc.op_ok("symmetric/decrypt", keyName=name, algorithm=GCM, input=wrapped, keyVersion=1)["output"] \
        == b64e(data_key)


# --------------------------------------------------------------------------
# The application's identifier (PKCS#11's CKA_ID)
# --------------------------------------------------------------------------

IP_OBJECT_ID_FRESH = "127.0.0.97"


def test_object_id_is_kept_replicated_rotated_and_backed_up(trio, pki, tmp_path):
    """An `objectId` given at generation is reported by keys/list,
    keys/publickey and keys/describe on every node, survives rotation, makes
    the automatic backup version 2 (version 1 cannot hold it) and comes
    back from a restore; a key made without one reports none."""
    ca, cb, cc = clients(trio)
    ec_name, aes_name, plain = uniq("oid-ec"), uniq("oid-aes"), uniq("oid-none")
    ec_id, aes_id = b"\x01\x02vault-key-7", b"\xff" * 128
    assert ca.admin("generatekey", keyName=ec_name, keyType="ASYMMETRIC", keySpec="EC", keySize=256,
                    objectId=b64e(ec_id)).status == 200
    assert ca.admin("generatekey", keyName=aes_name, keyType=SYM, keySize=32, objectId=b64e(aes_id)).status == 200
    assert ca.generate(plain, SYM, 16).status == 200
    r = ca.admin("generatekey", keyName=uniq("oid-long"), keyType=SYM, keySize=16, objectId=b64e(b"x" * 129))
    assert r.status == 400 and "objectId must be at most 128 bytes" in r.error(), r

    def listed(client, name):
        return next((k for k in client.ok("/REST/v1/keys/list", {})["keys"] if k["name"] == name), None)

    for x in (ca, cb, cc):
        wait_until(lambda: listed(x, plain) is not None and listed(x, ec_name) is not None, REPLICATION_S,
                   interval=0.01, desc=f"keys on {x.host}")
        assert b64d(listed(x, ec_name)["objectId"]) == ec_id
        assert b64d(listed(x, aes_name)["objectId"]) == aes_id
        assert "objectId" not in listed(x, plain), "a key made without objectId must not report one"
        assert b64d(x.ok("/REST/v1/keys/publickey", {"keyName": ec_name})["objectId"]) == ec_id

    assert key_admin_ok(cb, "rotatekey", aes_name) == {"keyVersion": 2}
    for x in (ca, cb, cc):
        wait_until(lambda: describe_ok(x, aes_name)["newestVersion"] == 2, REPLICATION_S, interval=0.01,
                   desc=f"rotation on {x.host}")
        assert b64d(describe_ok(x, aes_name)["objectId"]) == aes_id

    r = ca.admin("generatebackup", backupVersion=1)
    assert r.status == 400 and "objectIds" in r.error(), r
    blob = ca.admin_ok("generatebackup")["backup"]
    assert as_int(blob["version"]) == 2
    fresh = Node(pki, IP_OBJECT_ID_FRESH, tmp_path / "fresh", **LIFECYCLE_CONFIG).start_bootstrapped()
    try:
        cf = fresh.client()
        assert cf.admin_ok("restorebackup", backup=blob) == {}
        assert b64d(listed(cf, ec_name)["objectId"]) == ec_id
        assert b64d(describe_ok(cf, aes_name)["objectId"]) == aes_id
        assert "objectId" not in listed(cf, plain)
    finally:
        fresh.stop()
