"""Backups: format of the first VSSM, local decryption, restore, restart, conflicts."""
import hashlib
import json
import hmac
import os
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as apad

from vssmtest.backup import make_backup, open_backup
from vssmtest.crypto_ref import pkcs8, sym_decrypt
from vssmtest.node import IP_RESTART, health
from vssmtest.util import b64d, b64e, uniq


def _sections(inv):
    return {s: {e["name"]: e for e in inv.get(s, [])} for s in ("symmetricKey", "asymmetricKey", "macKey")}


def _names(api):
    lk = api.listkeys()
    return {s: sorted(e["name"] for e in lk.get(s, [])) for s in ("symmetricKey", "asymmetricKey", "macKey")}


def _check_blob_shape(blob):
    assert set(blob) == {"encryptionKey", "version", "timestamp", "encryptedState"}, blob.keys()
    assert blob["version"] in (1, "1"), blob["version"]
    assert isinstance(blob["timestamp"], str) and blob["timestamp"].isdigit(), blob["timestamp"]
    assert abs(int(blob["timestamp"]) - time.time() * 1000) < 10 * 60 * 1000
    assert len(b64d(blob["encryptionKey"])) == 256  # RSA-2048 OAEP
    assert len(b64d(blob["encryptedState"])) > 12 + 16


def test_generatebackup_decrypts_locally_with_inventory_format(api, pki):
    sym, mac, rsa_name, ec_name = uniq("bk-sym"), uniq("bk-mac"), uniq("bk-rsa"), uniq("bk-ec")
    sym_key, mac_key = os.urandom(32), os.urandom(40)
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP384R1())
    api.inject(sym, "SYMMETRIC", sym_key)
    api.inject(mac, "MAC", mac_key)
    api.inject(rsa_name, "ASYMMETRIC", pkcs8(rsa_key))
    api.inject(ec_name, "ASYMMETRIC", pkcs8(ec_key))
    gen = uniq("bk-gen")
    assert api.generate(gen, "SYMMETRIC", 16).status == 200

    resp = api.admin_ok("generatebackup")
    assert set(resp) == {"backup"}, resp
    blob = resp["backup"]
    _check_blob_shape(blob)
    inv = open_backup(blob, pki.rpc_private_key)
    assert set(inv) <= {"symmetricKey", "asymmetricKey", "macKey"}, inv.keys()
    secs = _sections(inv)

    e = secs["symmetricKey"][sym]
    assert set(e) == {"name", "createdAt", "key"}, e
    assert isinstance(e["createdAt"], str) and e["createdAt"].isdigit()
    assert b64d(e["key"]) == sym_key
    assert len(b64d(secs["symmetricKey"][gen]["key"])) == 16

    e = secs["macKey"][mac]
    assert set(e) == {"name", "createdAt", "key"}, e
    assert b64d(e["key"]) == mac_key

    for name, key, kt in ((rsa_name, rsa_key, "RSA"), (ec_name, ec_key, "EC")):
        e = secs["asymmetricKey"][name]
        assert set(e) == {"name", "createdAt", "keyType", "key"}, e
        assert e["keyType"] == kt
        restored = serialization.load_der_private_key(b64d(e["key"]), None)
        assert restored.private_numbers() == key.private_numbers()

    # the generated symmetric key from the backup really is the server's key
    ct = api.out("symmetric/encrypt", keyName=gen, algorithm="AES/GCM/NoPadding", input=b"gen")
    assert sym_decrypt("AES/GCM/NoPadding", b64d(secs["symmetricKey"][gen]["key"]), ct) == b"gen"
    # two backups use fresh data keys
    blob2 = api.admin_ok("generatebackup")["backup"]
    assert blob2["encryptionKey"] != blob["encryptionKey"]


def test_restore_locally_built_v1_backup(api, pki):
    sym, sym2, mac, rsa_name, ec_name = (uniq("rs-sym"), uniq("rs-des"), uniq("rs-mac"),
                                         uniq("rs-rsa"), uniq("rs-ec"))
    sym_key, des_key, mac_key = os.urandom(24), os.urandom(8), os.urandom(64)
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    created = 1_600_000_000_123
    inventory = {  # as the Go service wrote it (int64 as strings) + a number variant
        "symmetricKey": [{"name": sym, "createdAt": str(created), "key": b64e(sym_key)},
                         {"name": sym2, "createdAt": created, "key": b64e(des_key)}],
        "asymmetricKey": [{"name": rsa_name, "createdAt": str(created), "keyType": "RSA",
                           "key": b64e(pkcs8(rsa_key))},
                          {"name": ec_name, "createdAt": str(created), "keyType": "EC",
                           "key": b64e(pkcs8(ec_key))}],
        "macKey": [{"name": mac, "createdAt": str(created), "key": b64e(mac_key)}],
    }
    blob = make_backup(inventory, pki.rpc_private_key.public_key())
    r = api.admin("restorebackup", backup=blob)
    assert r.status == 200, r

    pt = b"restored"
    ct = api.out("symmetric/encrypt", keyName=sym, algorithm="AES/CBC/PKCS5Padding", input=pt)
    assert sym_decrypt("AES/CBC/PKCS5Padding", sym_key, ct) == pt
    ct = api.out("symmetric/encrypt", keyName=sym2, algorithm="DES/CBC/PKCS5Padding", input=pt)
    assert sym_decrypt("DES/CBC/PKCS5Padding", des_key, ct) == pt
    tag = api.out("hmac/create", keyName=mac, algorithm="SHA512", input=pt)
    assert tag == hmac.new(mac_key, pt, hashlib.sha512).digest()
    sig = api.out("asymmetric/sign", keyName=rsa_name, algorithm="SHA256withRSA", input=pt)
    rsa_key.public_key().verify(sig, pt, apad.PKCS1v15(), hashes.SHA256())
    sig = api.out("asymmetric/sign", keyName=ec_name, algorithm="SHA256withECDSA", input=pt)
    ec_key.public_key().verify(sig, pt, ec.ECDSA(hashes.SHA256()))

    lk = api.listkeys(keyName=sym, keyType="SYMMETRIC")
    assert lk["symmetricKey"][0]["createdAt"] == str(created), "restore must keep createdAt"
    lk = api.listkeys(keyName=ec_name, keyType="ASYMMETRIC")
    assert lk["asymmetricKey"][0]["keySpec"] == "EC"

    # restoring the same backup again changes nothing and is not a conflict
    r = api.admin("restorebackup", backup=blob)
    assert r.status == 200, f"identical re-restore: {r!r}"


def test_restore_backup_with_omitted_sections_and_numeric_fields(api, pki):
    """proto3 JSON omits empty repeated fields; int64 may come as numbers."""
    name, key = uniq("rs-only"), os.urandom(16)
    inventory = {"symmetricKey": [{"name": name, "createdAt": 1700000000000, "key": b64e(key)}]}
    blob = make_backup(inventory, pki.rpc_private_key.public_key())
    blob["timestamp"] = int(blob["timestamp"])
    r = api.admin("restorebackup", backup=blob)
    assert r.status == 200, r
    ct = api.out("symmetric/encrypt", keyName=name, algorithm="AES/GCM/NoPadding", input=b"x")
    assert sym_decrypt("AES/GCM/NoPadding", key, ct) == b"x"


def test_restore_conflict_keeps_original(api, pki):
    name, original = uniq("conflict"), os.urandom(32)
    api.inject(name, "SYMMETRIC", original)
    alg = "AES/CBC/PKCS5Padding"
    old_ct = api.out("symmetric/encrypt", keyName=name, algorithm=alg, input=b"keep me")
    other = uniq("conflict-newcomer")
    inventory = {"symmetricKey": [
        {"name": name, "createdAt": "1700000000000", "key": b64e(os.urandom(32))},
        {"name": other, "createdAt": "1700000000000", "key": b64e(os.urandom(16))},
    ]}
    r = api.admin("restorebackup", backup=make_backup(inventory, pki.rpc_private_key.public_key()))
    if r.status == 409:
        assert name in r.error(), f"409 must name the conflicting key: {r!r}"
    else:
        assert r.status == 200 and name in r.text, f"expected 409 or 200 reporting the conflict: {r!r}"
    # the original key is untouched
    assert api.out("symmetric/decrypt", keyName=name, algorithm=alg, input=old_ct) == b"keep me"
    ct = api.out("symmetric/encrypt", keyName=name, algorithm=alg, input=b"still A")
    assert sym_decrypt(alg, original, ct) == b"still A"
    assert api.listkeys(keyName=name, keyType="SYMMETRIC")["symmetricKey"][0]["keyLength"] == "32"


def _corruptions(pki, name):
    pub = pki.rpc_private_key.public_key()
    inv = {"symmetricKey": [{"name": name, "createdAt": "1", "key": b64e(os.urandom(16))}]}
    good = make_backup(inv, pub)

    def flip(b64, idx):
        raw = bytearray(b64d(b64))
        raw[idx] ^= 0x01
        return b64e(bytes(raw))

    foreign = rsa.generate_private_key(65537, 2048).public_key()
    yield "tag flipped", {**good, "encryptedState": flip(good["encryptedState"], -1)}
    yield "nonce flipped", {**good, "encryptedState": flip(good["encryptedState"], 0)}
    yield "ciphertext flipped", {**good, "encryptedState": flip(good["encryptedState"], 14)}
    yield "truncated state", {**good, "encryptedState": b64e(b64d(good["encryptedState"])[:20])}
    yield "wrapped key flipped", {**good, "encryptionKey": flip(good["encryptionKey"], 5)}
    yield "wrapped key truncated", {**good, "encryptionKey": b64e(b64d(good["encryptionKey"])[:100])}
    yield "wrong rpc key", make_backup(inv, foreign)
    yield "not json inside", make_backup(None, pub, raw_json=b"this is not json")
    yield "bad key inside", make_backup(
        {"asymmetricKey": [{"name": name, "createdAt": "1", "keyType": "RSA",
                            "key": b64e(b"garbage")}]}, pub)
    yield "unknown version", make_backup(inv, pub, version=99)
    yield "empty", {}


def test_corrupted_backup_is_400_and_changes_nothing(api, pki):
    before = _names(api)
    name = uniq("corrupt")
    failures = []
    for label, blob in _corruptions(pki, name):
        r = api.admin("restorebackup", backup=blob)
        if r.status != 400:
            failures.append(f"{label}: {r!r}")
        elif not isinstance(r.json, dict) or set(r.json) != {"error"}:
            failures.append(f"{label}: bad error body {r!r}")
    assert _names(api) == before, "a refused restore changed the inventory"
    assert api.admin("listkeys", keyName=name, keyType="SYMMETRIC").status == 404
    assert not failures, "\n".join(failures)


def test_restorebackup_unknown_field_in_blob(api, pki, main_node):
    blob = make_backup({}, pki.rpc_private_key.public_key())
    blob["extraBlobField"] = 1
    r = api.admin("restorebackup", backup=blob)
    assert r.status == 400 and "extraBlobField" in r.error(), r


def test_restart_then_restore(make_node, pki):
    node = make_node(IP_RESTART).start_bootstrapped()
    c = node.client()
    name = uniq("survivor")
    assert c.generate(name, "SYMMETRIC", 32).status == 200
    mac = uniq("survivor-mac")
    assert c.generate(mac, "MAC", 64).status == 200
    ct = c.out("symmetric/encrypt", keyName=name, algorithm="AES/GCM/NoPadding", input=b"old data")
    tag = c.out("hmac/create", keyName=mac, algorithm="SHA256", input=b"old data")
    blob = c.admin_ok("generatebackup")["backup"]
    c.close()

    node.kill()
    node.start()
    assert health(node.ip) == (503, "bootstrapping")
    r = node.bootstrap()
    assert r.status == 200, r
    node.wait_health(want=200)
    c = node.client()
    r = c.op("symmetric/decrypt", keyName=name, algorithm="AES/GCM/NoPadding", input=ct)
    assert r.status == 404, f"a restarted node must not hold keys: {r!r}"
    assert c.admin("restorebackup", backup=blob).status == 200
    assert c.out("symmetric/decrypt", keyName=name, algorithm="AES/GCM/NoPadding", input=ct) == b"old data"
    r = c.op_ok("hmac/verify", keyName=mac, algorithm="SHA256", input=b"old data", hmac=tag)
    assert r.get("valid") is True
    assert node.alive()


def test_restore_of_a_backup_over_1_mib_is_accepted(api, pki):
    """A node must be able to restore the backups it makes: restorebackup
    has its own, larger body limit (other endpoints keep 1 MiB)."""
    tag = uniq("big")
    inv = {"symmetricKey": [{"name": f"{tag}-{i:05d}", "createdAt": "1700000000000",
                             "key": b64e(os.urandom(32))} for i in range(14000)]}
    blob = make_backup(inv, pki.rpc_private_key.public_key())
    assert len(json.dumps(blob)) > 1 << 20
    r = api.admin("restorebackup", backup=blob)
    assert r.status == 200, r
    names = _names(api)
    assert f"{tag}-00000" in names["symmetricKey"] and f"{tag}-13999" in names["symmetricKey"]
