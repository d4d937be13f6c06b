"""Admin endpoints: generatekey, injectkey, listkeys, passwords, lockout, getlogs."""
import os
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as apad

from vssmtest.crypto_ref import pkcs8
from vssmtest.util import b64d, b64e, uniq

GOOD_SIZES = [("SYMMETRIC", None, s) for s in (8, 16, 24, 32)] + \
             [("MAC", None, s) for s in (16, 17, 32, 64, 100, 128)] + \
             [("ASYMMETRIC", "RSA", 2048), ("ASYMMETRIC", "RSA", 3072)] + \
             [("ASYMMETRIC", "EC", s) for s in (256, 384, 521)]

BAD_SIZES = [("SYMMETRIC", None, s) for s in (0, 7, 12, 31, 33, 64)] + \
            [("MAC", None, s) for s in (0, 8, 15, 129, 1024)] + \
            [("ASYMMETRIC", "RSA", s) for s in (0, 512, 1024, 2047, 8192, 100000)] + \
            [("ASYMMETRIC", "EC", s) for s in (0, 128, 255, 512)]


def _entries(listing: dict, section: str, name: str):
    return [k for k in listing.get(section, []) if k.get("name") == name]


def _assert_created_at(value):
    assert isinstance(value, str) and value.isdigit(), f"createdAt must be an int64 string: {value!r}"
    now_ms = time.time() * 1000
    assert abs(int(value) - now_ms) < 10 * 60 * 1000, f"createdAt {value} is not ms near now"


@pytest.mark.parametrize("key_type,spec,size", GOOD_SIZES,
                         ids=[f"{t}-{s or ''}{n}" for t, s, n in GOOD_SIZES])
def test_generatekey_valid_sizes_and_usable(api, key_type, spec, size):
    name = uniq(f"gen-{key_type.lower()}-{size}")
    r = api.generate(name, key_type, size, spec)
    assert r.status == 200 and r.json == {}, r
    section = {"SYMMETRIC": "symmetricKey", "MAC": "macKey", "ASYMMETRIC": "asymmetricKey"}[key_type]
    lk = api.listkeys(keyName=name, keyType=key_type)
    [entry] = _entries(lk, section, name)
    _assert_created_at(entry.get("createdAt"))
    if key_type == "SYMMETRIC":
        assert entry.get("keyLength") == str(size), entry
        alg = {8: "DES", 16: "AES", 24: "3DES", 32: "AES"}[size] + "/CBC/PKCS5Padding"
        ct = api.out("symmetric/encrypt", keyName=name, algorithm=alg, input=b"generated")
        assert api.out("symmetric/decrypt", keyName=name, algorithm=alg, input=ct) == b"generated"
        if size == 24:  # 24 bytes is also AES-192
            ct = api.out("symmetric/encrypt", keyName=name, algorithm="AES/GCM/NoPadding", input=b"g")
            assert api.out("symmetric/decrypt", keyName=name, algorithm="AES/GCM/NoPadding", input=ct) == b"g"
    elif key_type == "MAC":
        assert entry.get("keyLength") == str(size), entry
        tag = api.out("hmac/create", keyName=name, algorithm="SHA256", input=b"m")
        assert len(tag) == 32
        r = api.op_ok("hmac/verify", keyName=name, algorithm="SHA256", input=b"m", hmac=tag)
        assert r.get("valid") is True
    else:
        assert entry.get("keySpec") == spec, entry
        pub = serialization.load_der_public_key(b64d(entry["publicKey"]))
        if spec == "RSA":
            assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == size
            sig = api.out("asymmetric/sign", keyName=name, algorithm="SHA256withRSA", input=b"m")
            pub.verify(sig, b"m", apad.PKCS1v15(), hashes.SHA256())
            ct = pub.encrypt(b"secret", apad.OAEP(apad.MGF1(hashes.SHA256()), hashes.SHA256(), None))
            assert api.out("asymmetric/decrypt", keyName=name, algorithm="RSA-OAEP/SHA256",
                           input=ct) == b"secret"
        else:
            assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.key_size == size
            sig = api.out("asymmetric/sign", keyName=name, algorithm="SHA256withECDSA", input=b"m")
            pub.verify(sig, b"m", ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize("key_type,spec,size", BAD_SIZES,
                         ids=[f"{t}-{s or ''}{n}" for t, s, n in BAD_SIZES])
def test_generatekey_invalid_sizes(api, key_type, spec, size):
    name = uniq("badsize")
    t0 = time.time()
    r = api.generate(name, key_type, size, spec)
    assert r.status == 400, r
    r.error()
    assert time.time() - t0 < 5, "refusing a size must be immediate"
    r = api.admin("listkeys", keyName=name, keyType=key_type)
    assert r.status == 404, f"refused key must not exist: {r!r}"


def test_generatekey_ec_224_is_valid_or_400(api):
    name = uniq("ec224")
    r = api.generate(name, "ASYMMETRIC", 224, "EC")
    assert r.status in (200, 400), r


@pytest.mark.parametrize("fields", [
    {"keyType": "SYMMETRIC"},                                   # no size
    {"keyType": "ASYMMETRIC", "keySize": 2048},                 # no spec
    {"keyType": "ASYMMETRIC", "keySpec": "DSA", "keySize": 2048},
    {"keyType": "BOGUS", "keySize": 16},
])
def test_generatekey_invalid_requests(api, fields):
    r = api.admin("generatekey", keyName=uniq("badreq"), **fields)
    assert r.status == 400, r
    r.error()


def test_generatekey_without_name_is_400(api):
    r = api.admin("generatekey", keyType="SYMMETRIC", keySize=16)
    assert r.status == 400, r


def test_duplicate_name_same_type_is_409(api):
    name = uniq("dup")
    assert api.generate(name, "SYMMETRIC", 32).status == 200
    key = os.urandom(32)
    r = api.generate(name, "SYMMETRIC", 16)
    assert r.status == 409, r
    r.error()
    r = api.admin("injectkey", keyName=name, keyType="SYMMETRIC", key=b64e(key))
    assert r.status == 409, r
    # the original key is still there, unchanged length
    lk = api.listkeys(keyName=name, keyType="SYMMETRIC")
    assert _entries(lk, "symmetricKey", name)[0]["keyLength"] == "32"

    mname = uniq("dupmac")
    api.inject(mname, "MAC", os.urandom(32))
    assert api.admin("injectkey", keyName=mname, keyType="MAC", key=b64e(os.urandom(32))).status == 409
    aname = uniq("duprsa")
    assert api.generate(aname, "ASYMMETRIC", 256, "EC").status == 200
    assert api.generate(aname, "ASYMMETRIC", 256, "EC").status == 409


def test_injectkey_invalid_material(api):
    cases = [
        ("SYMMETRIC", os.urandom(20)),            # not 8/16/24/32
        ("SYMMETRIC", b""),
        ("MAC", b""),
        ("ASYMMETRIC", b"not pkcs8 at all"),
        ("ASYMMETRIC", rsa.generate_private_key(65537, 2048).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)),
    ]
    for key_type, material in cases:
        r = api.admin("injectkey", keyName=uniq("badinject"), keyType=key_type, key=b64e(material))
        assert r.status == 400, f"{key_type} {len(material)} bytes: {r!r}"
        r.error()
        assert b64e(material) not in r.text if material else True


def test_listkeys_full_and_formats(api):
    sym, mac = uniq("lk-sym"), uniq("lk-mac")
    api.inject(sym, "SYMMETRIC", os.urandom(24))
    api.inject(mac, "MAC", os.urandom(48))
    ecname = uniq("lk-ec")
    eckey = ec.generate_private_key(ec.SECP256R1())
    api.inject(ecname, "ASYMMETRIC", pkcs8(eckey))
    lk = api.listkeys()
    assert set(lk) <= {"symmetricKey", "asymmetricKey", "macKey"}, lk.keys()
    [s] = _entries(lk, "symmetricKey", sym)
    assert set(s) == {"name", "createdAt", "keyLength"}, s
    assert s["keyLength"] == "24"
    _assert_created_at(s["createdAt"])
    [m] = _entries(lk, "macKey", mac)
    assert set(m) == {"name", "createdAt", "keyLength"} and m["keyLength"] == "48", m
    [a] = _entries(lk, "asymmetricKey", ecname)
    assert set(a) == {"name", "createdAt", "keySpec", "publicKey"}, a
    assert a["keySpec"] == "EC"
    spki = b64d(a["publicKey"])
    assert spki == eckey.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    # no key material anywhere in the listing
    for section in ("symmetricKey", "asymmetricKey", "macKey"):
        for e in lk.get(section, []):
            assert "key" not in e and "privateKey" not in e, e


def test_listkeys_filter_and_unknown(api):
    name = uniq("lk-one")
    api.inject(name, "MAC", os.urandom(16))
    lk = api.listkeys(keyName=name, keyType="MAC")
    assert lk.get("macKey") and [k["name"] for k in lk["macKey"]] == [name], lk
    assert not lk.get("symmetricKey") and not lk.get("asymmetricKey"), lk
    r = api.admin("listkeys", keyName=name, keyType="SYMMETRIC")
    assert r.status == 404, r
    r = api.admin("listkeys", keyName=uniq("nope"), keyType="MAC")
    assert r.status == 404, r
    r.error()
    r = api.admin("listkeys", keyName=name)  # keyType required with keyName
    assert r.status == 400, r


def test_unknown_key_is_404_everywhere(api):
    missing = uniq("missing")
    calls = [
        ("symmetric/encrypt", dict(algorithm="AES/GCM/NoPadding", input=b"x")),
        ("symmetric/decrypt", dict(algorithm="AES/GCM/NoPadding", input=b"x" * 40)),
        ("asymmetric/encrypt", dict(algorithm="RSA", input=b"x")),
        ("asymmetric/decrypt", dict(algorithm="RSA", input=b"x" * 256)),
        ("asymmetric/sign", dict(algorithm="SHA256withRSA", input=b"x")),
        ("asymmetric/verify", dict(algorithm="SHA256withRSA", input=b"x", signature=b"s")),
        ("hmac/create", dict(algorithm="SHA256", input=b"x")),
        ("hmac/verify", dict(algorithm="SHA256", input=b"x", hmac=b"h" * 32)),
    ]
    for path, fields in calls:
        r = api.op(path, keyName=missing, **fields)
        assert r.status == 404, f"{path}: {r!r}"
        r.error()


def test_wrong_admin_password_is_401(main_node):
    c = main_node.client("wrong-password-client")
    for op in ("listkeys", "generatekey", "getlogs", "generatebackup"):
        r = c.post(f"/REST/v1/admin/{op}", {"adminPassword": main_node.password + "x"})
        assert r.status == 401, f"{op}: {r!r}"
        assert main_node.password not in r.text
        r.error()
    break_in = uniq("no-auth")
    r = c.post("/REST/v1/admin/injectkey", {"keyName": break_in, "keyType": "MAC",
                                            "key": b64e(os.urandom(16))})
    assert r.status == 401, f"missing password: {r!r}"
    c.close()
    c2 = main_node.client()
    assert c2.admin("listkeys", keyName=break_in, keyType="MAC").status == 404
    c2.close()


def test_lockout_after_five_failures(main_node):
    c = main_node.client("lockout-client")
    for i in range(5):
        r = c.post("/REST/v1/admin/listkeys", {"adminPassword": f"wrong-{i}"})
        assert r.status == 401, f"attempt {i + 1}: {r!r}"
    r = c.post("/REST/v1/admin/listkeys", {"adminPassword": "wrong-6"})
    assert r.status == 429, f"6th failed attempt: {r!r}"
    r.error()
    r = c.post("/REST/v1/admin/listkeys", {"adminPassword": main_node.password})
    assert r.status == 429, f"locked-out subject with the right password: {r!r}"
    c.close()
    # a fresh connection with the same subject is still locked out
    c = main_node.client("lockout-client")
    assert c.post("/REST/v1/admin/listkeys", {"adminPassword": main_node.password}).status == 429
    c.close()
    # other subjects are not affected
    other = main_node.client()
    assert other.admin("listkeys").status == 200
    other.close()


def test_getlogs_mentions_admin_calls_without_secrets(api, main_node):
    name = uniq("audited")
    material = os.urandom(32)
    api.inject(name, "SYMMETRIC", material)
    gname = uniq("audited-gen")
    assert api.generate(gname, "MAC", 32).status == 200
    logs = api.admin_ok("getlogs").get("log")
    assert isinstance(logs, list) and logs and all(isinstance(l, str) for l in logs), logs
    joined = "\n".join(logs)
    assert name in joined, "injectkey is not in the audit log"
    assert gname in joined, "generatekey is not in the audit log"
    forbidden = {
        "admin password": main_node.password,
        "key base64": b64e(material),
        "key base64 unpadded": b64e(material).rstrip("="),
        "key hex": material.hex(),
        "key HEX": material.hex().upper(),
    }
    for label, needle in forbidden.items():
        assert needle not in joined, f"getlogs contains the {label}"
        assert needle not in main_node.log(), f"stderr log contains the {label}"
    assert name in main_node.log(), "audit lines must go to stderr too"
