"""Batches (issue 10, item 7): every crypto endpoint takes
`{"items": [...]}` and answers `{"results": [...]}` item by item. Each
result is checked against an independent implementation (Python
`cryptography`, hmac), each failed item against the single request's own
answer (same message, same status), under enforcement too; references,
the item and body limits, memory, a non-batch body answered as before, and
a long batch that leaves the other connections of its I/O thread served.
The contract: docs/API.md, "Batches".

Addresses: the shared main node, 127.0.3.10 (enforced), 127.0.3.11
(memory), 127.0.3.12 (one I/O thread).
"""
import hashlib
import hmac
import json
import os
import re
import stat
import threading
import time

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as apad
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vssmtest.authz import grant, make_identity
from vssmtest.crypto_ref import oaep, pkcs8, sym_decrypt, sym_encrypt
from vssmtest.lifecycle import describe_ok
from vssmtest.node import Node
from vssmtest.util import VSSM_BIN, b64d, b64e, uniq

IP_ENFORCED = "127.0.3.10"
IP_MEMORY = "127.0.3.11"
IP_ONE_THREAD = "127.0.3.12"

MAX_ITEMS = 1000
GCM, CBC = "AES/GCM/NoPadding", "AES/CBC/PKCS5Padding"


def batch(client, path: str, items: list[dict]):
    """POST {"items": items} to /REST/v1/PATH (bytes values as base64)."""
    encoded = [{k: (b64e(v) if isinstance(v, (bytes, bytearray)) else v) for k, v in item.items()}
               for item in items]
    return client.post(f"/REST/v1/{path}", {"items": encoded})


def results(client, path: str, items: list[dict]) -> list[dict]:
    r = batch(client, path, items)
    assert r.status == 200, r
    assert list(r.json) == ["results"] and len(r.json["results"]) == len(items), r
    return r.json["results"]


def ok(result: dict, reference: str | None = None) -> dict:
    """The fields of a successful result but its reference (checked)."""
    assert "error" not in result, result
    assert result.get("reference") == reference, result
    return {k: v for k, v in result.items() if k != "reference"}


def public_key(client, name: str):
    der = b64d(client.ok("/REST/v1/keys/publickey", {"keyName": name})["publicKey"])
    return serialization.load_der_public_key(der)


def vm_rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def keys(api):
    """Keys on the main node: material known here where results are
    decrypted here, generated on the node where its public key suffices."""
    k = type("Keys", (), {})()
    k.aes, k.aes_name = os.urandom(32), uniq("batch-aes")
    k.mac, k.mac_name = os.urandom(32), uniq("batch-mac")
    k.rsa, k.rsa_name = rsa.generate_private_key(65537, 2048), uniq("batch-rsa")
    k.ec_name, k.ed_name = uniq("batch-ec"), uniq("batch-ed")
    api.inject(k.aes_name, "SYMMETRIC", k.aes)
    api.inject(k.mac_name, "MAC", k.mac)
    api.inject(k.rsa_name, "ASYMMETRIC", pkcs8(k.rsa))
    assert api.generate(k.ec_name, "ASYMMETRIC", 256, "EC").status == 200
    assert api.generate(k.ed_name, "ASYMMETRIC", key_spec="ED25519").status == 200
    return k


# --------------------------------------------------------------------------
# Every endpoint, item by item against an independent implementation
# --------------------------------------------------------------------------

def test_symmetric_encrypt_and_decrypt_batches(api, keys):
    plaintexts = [os.urandom(n) for n in (0, 1, 16, 64, 1000)]
    items = []
    for i, pt in enumerate(plaintexts):
        items.append({"reference": f"gcm-{i}", "keyName": keys.aes_name, "algorithm": GCM, "input": pt,
                      "aad": b"tenant-%d" % i})
        items.append({"reference": f"cbc-{i}", "keyName": keys.aes_name, "algorithm": CBC, "input": pt})
    out = results(api, "symmetric/encrypt", items)
    for i, pt in enumerate(plaintexts):
        gcm, cbc = b64d(ok(out[2 * i], f"gcm-{i}")["output"]), b64d(ok(out[2 * i + 1], f"cbc-{i}")["output"])
        assert sym_decrypt(GCM, keys.aes, gcm, b"tenant-%d" % i) == pt
        assert sym_decrypt(CBC, keys.aes, cbc) == pt

    ciphertexts = [sym_encrypt(GCM, keys.aes, pt) for pt in plaintexts]
    items = [{"reference": str(i), "keyName": keys.aes_name, "algorithm": GCM, "input": ct}
             for i, ct in enumerate(ciphertexts)]
    out = results(api, "symmetric/decrypt", items)
    assert [b64d(ok(r, str(i))["output"]) for i, r in enumerate(out)] == plaintexts


def test_asymmetric_encrypt_and_decrypt_batches(api, keys):
    plaintexts = [os.urandom(n) for n in (1, 32, 100)]
    algorithms = ["RSA-OAEP/SHA256", "RSA-OAEP/SHA1", "RSA"]
    items = [{"keyName": keys.rsa_name, "algorithm": a, "input": pt} for a, pt in zip(algorithms, plaintexts)]
    out = results(api, "asymmetric/encrypt", items)
    paddings = [oaep("SHA256"), oaep("SHA1"), apad.PKCS1v15()]
    for r, pad, pt in zip(out, paddings, plaintexts):
        assert keys.rsa.decrypt(b64d(ok(r)["output"]), pad) == pt

    public = keys.rsa.public_key()
    items = [{"reference": a, "keyName": keys.rsa_name, "algorithm": a, "input": public.encrypt(pt, pad)}
             for a, pad, pt in zip(algorithms, paddings, plaintexts)]
    out = results(api, "asymmetric/decrypt", items)
    assert [b64d(ok(r, a)["output"]) for r, a in zip(out, algorithms)] == plaintexts


def test_sign_batches_verify_with_the_public_keys_and_verify_batches_agree(api, keys):
    messages = [os.urandom(n) for n in (0, 5, 64, 300)]
    items = []
    for m in messages:
        items.append({"keyName": keys.ec_name, "algorithm": "SHA256withECDSA", "input": m})
        items.append({"keyName": keys.ed_name, "algorithm": "Ed25519", "input": m})
        items.append({"keyName": keys.rsa_name, "algorithm": "SHA256withRSA/PSS", "input": m})
    # A digest the caller made (`hashed`).
    digest = hashlib.sha256(b"pre-hashed").digest()
    items.append({"keyName": keys.ec_name, "algorithm": "SHA256withECDSA", "hashed": digest})
    out = results(api, "asymmetric/sign", items)
    ec_pub, ed_pub, rsa_pub = public_key(api, keys.ec_name), public_key(api, keys.ed_name), keys.rsa.public_key()
    pss = apad.PSS(mgf=apad.MGF1(hashes.SHA256()), salt_length=32)
    signatures = [b64d(ok(r)["output"]) for r in out]
    for i, m in enumerate(messages):
        ec_sig, ed_sig, rsa_sig = signatures[3 * i:3 * i + 3]
        ec_pub.verify(ec_sig, m, ec.ECDSA(hashes.SHA256()))
        ed_pub.verify(ed_sig, m)
        rsa_pub.verify(rsa_sig, m, pss, hashes.SHA256())
    ec_pub.verify(signatures[-1], b"pre-hashed", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        ec_pub.verify(signatures[0], b"another message", ec.ECDSA(hashes.SHA256()))

    # Verify: every signature made above, and each against a wrong message.
    items = []
    for i, m in enumerate(messages):
        for j, (name, alg) in enumerate([(keys.ec_name, "SHA256withECDSA"), (keys.ed_name, "Ed25519"),
                                         (keys.rsa_name, "SHA256withRSA/PSS")]):
            items.append({"keyName": name, "algorithm": alg, "input": m, "signature": signatures[3 * i + j]})
            items.append({"keyName": name, "algorithm": alg, "input": m + b"!", "signature": signatures[3 * i + j]})
    out = results(api, "asymmetric/verify", items)
    assert [ok(r) for r in out] == [{"valid": True}, {"valid": False}] * (len(items) // 2)


def test_hmac_batches_and_data_key_batches(api, keys):
    messages = [os.urandom(n) for n in (0, 3, 64, 700)]
    algs = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA384": hashlib.sha384, "SHA512": hashlib.sha512}
    items = [{"reference": a, "keyName": keys.mac_name, "algorithm": a, "input": m}
             for m in messages for a in algs]
    out = results(api, "hmac/create", items)
    for item, r in zip(items, out):
        want = hmac.new(keys.mac, item["input"], algs[item["algorithm"]]).digest()
        assert b64d(ok(r, item["algorithm"])["output"]) == want

    tags = [b64d(ok(r, item["algorithm"])["output"]) for item, r in zip(items, out)]
    verify = [{"keyName": keys.mac_name, "algorithm": item["algorithm"], "input": item["input"],
               "hmac": tag if n % 2 == 0 else bytes([tag[0] ^ 1]) + tag[1:]}
              for n, (item, tag) in enumerate(zip(items, tags))]
    out = results(api, "hmac/verify", verify)
    assert [ok(r)["valid"] for r in out] == [n % 2 == 0 for n in range(len(verify))]

    items = [{"reference": "a", "keyName": keys.aes_name},
             {"reference": "b", "keyName": keys.aes_name, "keySpec": "AES_128", "withoutPlaintext": True,
              "aad": b"ctx"}]
    first, second = results(api, "symmetric/generatedatakey", items)
    first, second = ok(first, "a"), ok(second, "b")
    assert set(first) == {"ciphertext", "plaintext", "keySpec"} and first["keySpec"] == "AES_256"
    assert set(second) == {"ciphertext", "keySpec"} and second["keySpec"] == "AES_128"
    wrapped = b64d(first["ciphertext"])
    assert AESGCM(keys.aes).decrypt(wrapped[:12], wrapped[12:], None) == b64d(first["plaintext"])
    wrapped = b64d(second["ciphertext"])
    assert len(AESGCM(keys.aes).decrypt(wrapped[:12], wrapped[12:], b"ctx")) == 16


# --------------------------------------------------------------------------
# Bad items fail alone, exactly as the single request would
# --------------------------------------------------------------------------

def single_answer(client, path: str, item: dict) -> tuple[int, str]:
    """The status and message of the single request of `item`, without the
    position in the body that serde_json adds to an unknown or missing
    field (a batch leaves it out: the item is not the body)."""
    fields = {k: v for k, v in item.items() if k != "reference"}
    r = client.post(f"/REST/v1/{path}", fields)
    assert r.status != 200, r
    return r.status, re.sub(r" at line \d+ column \d+$", "", r.error())


def assert_failed_like_single(client, path: str, item: dict, result: dict, status: int):
    """`result` is the failure the single request of `item` gets: same status, same message."""
    want_status, want_error = single_answer(client, path, item)
    assert want_status == status, (want_status, want_error)
    expected = {"error": want_error, "status": want_status}
    if "reference" in item:
        expected = {"reference": item["reference"], **expected}
    assert result == expected
    assert list(result) == list(expected), "reference first, then error and status"


def test_bad_items_fail_alone_with_the_single_requests_status_and_message(api, keys):
    pt = b"good items still work"
    good = {"keyName": keys.aes_name, "algorithm": GCM, "input": b64e(pt)}
    bad = [
        ({"reference": "unknown-key", "keyName": uniq("batch-none"), "algorithm": GCM, "input": b64e(pt)}, 404),
        ({"reference": "bad-algorithm", "keyName": keys.aes_name, "algorithm": "AES/XTS/NoPadding",
          "input": b64e(pt)}, 400),
        ({"reference": "no-key-name", "algorithm": GCM, "input": b64e(pt)}, 400),
        ({"reference": "unknown-field", "keyName": keys.aes_name, "algorithm": GCM, "inptu": b64e(pt)}, 400),
        ({"reference": "bad-base64", "keyName": keys.aes_name, "algorithm": GCM, "input": "not base64!"}, 400),
        ({"reference": "wrong-type", "keyName": 7, "algorithm": GCM}, 400),
        ({"keyName": keys.aes_name, "algorithm": "AES/CBC/NoPadding", "input": b64e(b"not aligned")}, 400),
        ({"reference": "mac-key-name", "keyName": keys.mac_name, "algorithm": GCM, "input": b64e(pt)}, 404),
    ]
    items = []
    for n, (item, _) in enumerate(bad):
        items.append({"reference": f"good-{n}", **good})
        items.append(item)
    out = results(api, "symmetric/encrypt", items)
    for n, (item, status) in enumerate(bad):
        assert sym_decrypt(GCM, keys.aes, b64d(ok(out[2 * n], f"good-{n}")["output"])) == pt
        assert_failed_like_single(api, "symmetric/encrypt", item, out[2 * n + 1], status)

    # A decryption failure is the one generic 400, as for a single request.
    tampered = bytearray(sym_encrypt(GCM, keys.aes, pt))
    tampered[-1] ^= 1
    item = {"keyName": keys.aes_name, "algorithm": GCM, "input": b64e(bytes(tampered))}
    out = results(api, "symmetric/decrypt", [item, {**item, "input": b64e(sym_encrypt(GCM, keys.aes, pt))}])
    assert_failed_like_single(api, "symmetric/decrypt", item, out[0], 400)
    assert b64d(ok(out[1])["output"]) == pt

    # Sign: input and hashed together; the wrong key type for the algorithm.
    sign_bad = [{"keyName": keys.ec_name, "algorithm": "SHA256withECDSA", "input": b64e(b"m"),
                 "hashed": b64e(bytes(32))},
                {"keyName": keys.ed_name, "algorithm": "SHA256withRSA", "input": b64e(b"m")}]
    out = results(api, "asymmetric/sign", sign_bad + [{"keyName": keys.ed_name, "algorithm": "Ed25519",
                                                       "input": b64e(b"m")}])
    for item, result in zip(sign_bad, out):
        assert_failed_like_single(api, "asymmetric/sign", item, result, 400)
    public_key(api, keys.ed_name).verify(b64d(ok(out[2])["output"]), b"m")

    # Data keys: a keySpec that does not exist.
    item = {"reference": "x", "keyName": keys.aes_name, "keySpec": "AES_512"}
    out = results(api, "symmetric/generatedatakey", [item])
    assert_failed_like_single(api, "symmetric/generatedatakey", item, out[0], 400)
    assert "keySpec must be AES_256 or AES_128" in out[0]["error"]


@pytest.fixture(scope="module")
def enforced(pki, tmp_path_factory):
    """A node under enforcement: svc may encrypt and sign with `svc/*` only."""
    node = Node(pki, IP_ENFORCED, tmp_path_factory.mktemp("batch-enforced"))
    try:
        node.start_bootstrapped()
        admin = node.client()
        state = type("Enforced", (), {})()
        state.node, state.aes = node, os.urandom(32)
        admin.inject("svc/aes", "SYMMETRIC", state.aes)
        admin.inject("other/aes", "SYMMETRIC", os.urandom(32))
        assert admin.generate("svc/ec", "ASYMMETRIC", 256, "EC").status == 200
        state.ec_public = public_key(admin, "svc/ec")
        admin.create_grants(grant("cn:batch-svc", "svc/*", "encrypt", "sign"))
        assert admin.set_policy(True) == {"policyEnforced": True}
        state.svc = make_identity(pki, "batch-svc", cn="batch-svc")
        yield state
    finally:
        node.stop()


def test_each_item_is_authorized_as_its_single_request(enforced):
    svc = enforced.svc.client(enforced.node)
    pt = b"authorized per item"
    items = [
        {"reference": "mine", "keyName": "svc/aes", "algorithm": GCM, "input": b64e(pt)},
        {"reference": "not-granted", "keyName": "other/aes", "algorithm": GCM, "input": b64e(pt)},
        {"reference": "missing-outside", "keyName": "other/none", "algorithm": GCM, "input": b64e(pt)},
        {"reference": "missing-inside", "keyName": "svc/none", "algorithm": GCM, "input": b64e(pt)},
        {"reference": "mine-again", "keyName": "svc/aes", "algorithm": GCM, "input": b64e(pt)},
    ]
    out = results(svc, "symmetric/encrypt", items)
    assert sym_decrypt(GCM, enforced.aes, b64d(ok(out[0], "mine")["output"])) == pt
    assert sym_decrypt(GCM, enforced.aes, b64d(ok(out[4], "mine-again")["output"])) == pt
    assert_failed_like_single(svc, "symmetric/encrypt", items[1], out[1], 403)
    assert_failed_like_single(svc, "symmetric/encrypt", items[2], out[2], 403)
    assert_failed_like_single(svc, "symmetric/encrypt", items[3], out[3], 404)
    assert out[1]["error"] == 'no grant allows encrypt with key "other/aes"', out[1]

    # Another operation on a granted key is refused per item too.
    item = {"keyName": "svc/aes", "algorithm": GCM, "input": sym_encrypt(GCM, enforced.aes, pt)}
    out = results(svc, "symmetric/decrypt", [item])
    assert out[0]["status"] == 403 and out[0]["error"] == 'no grant allows decrypt with key "svc/aes"', out

    out = results(svc, "asymmetric/sign", [{"keyName": "svc/ec", "algorithm": "SHA256withECDSA", "input": b"m"},
                                           {"keyName": "svc/ec", "algorithm": "SHA256withECDSA", "input": b"m",
                                            "signature": b"x"}])
    enforced.ec_public.verify(b64d(ok(out[0])["output"]), b"m", ec.ECDSA(hashes.SHA256()))
    assert out[1]["status"] == 400 and "signature" in out[1]["error"], out


# --------------------------------------------------------------------------
# References, limits, whole-request errors
# --------------------------------------------------------------------------

def test_references_are_echoed_only_when_given_and_bounded(api, keys):
    base = {"keyName": keys.mac_name, "algorithm": "SHA256", "input": b64e(b"m")}
    tag = b64e(hmac.new(keys.mac, b"m", hashlib.sha256).digest())
    long_ref = "r" * 256
    items = [
        base,
        {**base, "reference": ""},
        {**base, "reference": "ünïcode ✓ \"quoted\" \\ \n"},
        {**base, "reference": long_ref},
        {**base, "reference": long_ref + "r"},
        {**base, "reference": 7},
        {**base, "reference": None},
    ]
    out = results(api, "hmac/create", items)
    assert out[0] == {"output": tag}
    assert out[1] == {"reference": "", "output": tag}
    assert out[2] == {"reference": "ünïcode ✓ \"quoted\" \\ \n", "output": tag}
    assert out[3] == {"reference": long_ref, "output": tag}
    refused = {"error": "reference must be a string of at most 256 bytes", "status": 400}
    assert out[4] == refused and out[5] == refused
    assert out[6] == {"output": tag}, "null is no reference"
    # A reference spelt with escapes, and one that is not first.
    body = ('{"items":[{"keyName":"%s","algorithm":"SHA256","input":"bQ==","\\u0072eference":"\\u00e9"},'
            '{"keyName":"%s","reference":"mid","algorithm":"SHA256","input":"bQ=="}]}'
            % (keys.mac_name, keys.mac_name))
    r = api.post_raw("/REST/v1/hmac/create", body.encode())
    assert r.status == 200 and r.json == {"results": [{"reference": "é", "output": tag},
                                                      {"reference": "mid", "output": tag}]}, r
    # Two references in one item: that item fails.
    body = ('{"items":[{"reference":"a","reference":"b","keyName":"%s","algorithm":"SHA256"}]}'
            % keys.mac_name)
    r = api.post_raw("/REST/v1/hmac/create", body.encode())
    assert r.status == 200 and r.json == {"results": [{"error": "duplicate field `reference`",
                                                       "status": 400}]}, r


def test_item_limit_body_limit_and_malformed_batches(api, keys):
    item = {"keyName": keys.mac_name, "algorithm": "SHA256", "input": b64e(b"m")}
    tag = b64e(hmac.new(keys.mac, b"m", hashlib.sha256).digest())
    out = results(api, "hmac/create", [item] * MAX_ITEMS)
    assert out == [{"output": tag}] * MAX_ITEMS

    r = batch(api, "hmac/create", [item] * (MAX_ITEMS + 1))
    assert r.status == 400 and r.error() == f"a batch holds at most {MAX_ITEMS} items, not {MAX_ITEMS + 1}", r
    # A body of many tiny items is counted, not kept.
    r = api.post_raw("/REST/v1/hmac/create", b'{"items":[' + b",".join([b"{}"] * 300_000) + b"]}")
    assert r.status == 400 and r.error() == f"a batch holds at most {MAX_ITEMS} items, not 300000", r

    # Over 1 MiB: 413, as for any request.
    big = {**item, "input": b64e(os.urandom(1100))}
    r = batch(api, "hmac/create", [big] * 800)
    assert r.status == 413 and r.error() == "request body larger than 1048576 bytes", r

    assert results(api, "hmac/create", []) == []
    for body, message in [
        ({"items": 5}, "invalid value for field `items` (wrong type or encoding)"),
        ({"items": {"keyName": "k"}}, "invalid value for field `items` (wrong type or encoding)"),
        ({"items": [item, "x"]}, "items[1] is not a JSON object"),
        ({"items": [item, [item]]}, "items[1] is not a JSON object"),
        ({"items": [None]}, "items[0] is not a JSON object"),
        ({"items": [item], "keyName": keys.mac_name}, "unknown field `keyName`, expected `items`"),
    ]:
        r = api.post("/REST/v1/hmac/create", body)
        assert r.status == 400 and re.sub(r" at line \d+ column \d+$", "", r.error()) == message, (body, r)
    r = api.post_raw("/REST/v1/hmac/create", b'{"items":[{}] ')
    assert r.status == 400 and r.error().startswith("malformed JSON"), r


def test_a_body_refused_as_a_whole_runs_none_of_its_items(api):
    """A body answered 400 as a whole runs none of its items, also when it
    breaks only after many valid ones (trailing text, a second member,
    item 1001): its key is never used (lastUsed stays unset), as it would be
    if the items had run before the error was found."""
    name = uniq("batch-unused")
    assert api.generate(name, "SYMMETRIC", 32).status == 200
    item = {"keyName": name, "algorithm": GCM, "input": b64e(b"never")}
    items = json.dumps([item] * 3)
    for body in [
        '{"items":%s} trailing' % items,
        '{"items":%s,"extra":1}' % items,
        '{"items":%s,"items":[]}' % items,
        '{"items":%s}' % json.dumps([item] * (MAX_ITEMS + 1)),
    ]:
        r = api.post_raw("/REST/v1/symmetric/encrypt", body.encode())
        assert r.status == 400, (body[-40:], r)
    versions = describe_ok(api, name)["versions"]
    assert [v for v in versions if "lastUsed" in v] == [], f"an item of a refused batch ran: {versions}"
    assert results(api, "symmetric/encrypt", [item])[0]["output"], "the key itself works"
    assert "lastUsed" in describe_ok(api, name)["versions"][0]


def test_a_body_that_is_not_a_batch_is_answered_exactly_as_before(api, keys):
    # A key named "items" is just a key name.
    assert api.admin("injectkey", keyName="items", keyType="MAC", key=b64e(keys.mac)).status in (200, 409)
    r = api.post_raw("/REST/v1/hmac/create",
                     json.dumps({"keyName": "items", "algorithm": "SHA256", "input": b64e(b"m")}).encode())
    tag = b64e(hmac.new(keys.mac, b"m", hashlib.sha256).digest())
    assert r.status == 200 and r.body == b'{"output":"%s"}' % tag.encode(), r
    r = api.post_raw("/REST/v1/hmac/verify",
                     b'{"keyName":"%s","algorithm":"SHA256","input":"bQ==","hmac":"%s"}'
                     % (keys.mac_name.encode(), tag.encode()))
    assert r.status == 200 and r.body == b'{"valid":true}', r
    # Errors too: an unknown field (even one spelt `items` with an escape,
    # or `items` in a body that is not an object) reads as before.
    r = api.post("/REST/v1/hmac/create", {"keyName": keys.mac_name, "itemz": []})
    assert r.status == 400 and r.error().startswith("unknown field `itemz`, expected one of"), r
    for raw in (b'["items"]', b'"items"', b'{"keyName": "items", "algorithm": "SHA256"} x'):
        r = api.post_raw("/REST/v1/hmac/create", raw)
        assert r.status == 400 and "items" not in r.error(), (raw, r)
    r = api.post("/REST/v1/asymmetric/sign", {"keyName": keys.ec_name, "algorithm": "SHA256withECDSA",
                                               "input": b64e(b"m"), "hashed": b64e(bytes(32))})
    assert r.status == 400 and r.body == b'{"error":"give either input or hashed, not both"}', r


# --------------------------------------------------------------------------
# Memory and the other connections of the I/O thread
# --------------------------------------------------------------------------

def test_large_batches_do_not_grow_memory(make_node):
    node = make_node(IP_MEMORY).start_bootstrapped()
    c = node.client()
    name = uniq("mem-aes")
    assert c.generate(name, "SYMMETRIC", 32).status == 200
    pt = b64e(os.urandom(700))
    item = {"keyName": name, "algorithm": GCM, "input": pt}
    body = json.dumps({"items": [item] * MAX_ITEMS}).encode()
    assert 900_000 < len(body) <= 1 << 20
    tiny = json.dumps({"items": [{"keyName": name, "algorithm": GCM}] * MAX_ITEMS}).encode()
    r = c.post_raw("/REST/v1/symmetric/encrypt", body)
    assert r.status == 200, r
    before = vm_rss_kib(node.proc.pid)
    for _ in range(10):
        r = c.post_raw("/REST/v1/symmetric/encrypt", body)
        assert r.status == 200 and len(r.json["results"]) == MAX_ITEMS
        assert c.post_raw("/REST/v1/symmetric/encrypt", tiny).status == 200
    grown = vm_rss_kib(node.proc.pid) - before
    # The body (1 MiB), its answer (1.3 MiB) and buffers: a few MiB, not per item.
    assert grown < 8 * 1024, f"RSS grew by {grown} KiB over 20 batches"


def test_a_long_batch_leaves_the_other_connections_of_its_thread_served(pki, tmp_path):
    """On one core (one I/O thread) a batch of 1000 RSA-4096 signatures
    takes seconds; single requests on another connection are answered
    meanwhile, not after it."""
    wrapper = tmp_path / "vssm-one-core"
    wrapper.write_text(f"#!/bin/sh\nexec taskset -c 0 {VSSM_BIN} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    node = Node(pki, IP_ONE_THREAD, tmp_path / "node")
    node.binary = wrapper
    try:
        node.start_bootstrapped()
        admin, other = node.client(), node.client()
        assert admin.generate("rsa", "ASYMMETRIC", 4096, "RSA").status == 200
        assert admin.generate("aes", "SYMMETRIC", 32).status == 200
        ping = {"keyName": "aes", "algorithm": GCM, "input": b64e(b"ping")}
        assert other.post("/REST/v1/symmetric/encrypt", ping).status == 200
        items = [{"keyName": "rsa", "algorithm": "SHA256withRSA", "input": b64e(b"%d" % i)} for i in range(1000)]
        done = {}

        def run_batch():
            started = time.monotonic()
            done["status"] = admin.post("/REST/v1/asymmetric/sign", {"items": items}).status
            done["seconds"] = time.monotonic() - started

        thread = threading.Thread(target=run_batch)
        thread.start()
        time.sleep(0.2)
        latencies = []
        while thread.is_alive():
            sent = time.monotonic()
            assert other.post("/REST/v1/symmetric/encrypt", ping).status == 200
            latencies.append(time.monotonic() - sent)
        thread.join()
        assert done["status"] == 200
        if done["seconds"] < 0.6:
            pytest.skip(f"the batch took only {done['seconds']:.2f} s: nothing to measure")
        latencies.sort()
        assert len(latencies) >= 10, (done, latencies)
        assert latencies[len(latencies) // 2] < 0.1 and latencies[-1] < done["seconds"] / 2, (done, latencies)
    finally:
        node.stop()
