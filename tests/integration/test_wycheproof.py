"""Project Wycheproof vectors through the API (see testdata/wycheproof/README.md).

Every vector is run; failures are collected and reported together.
valid -> must work with the right output; invalid -> must be refused (decrypt:
400 with one generic error body per file; HMAC verify: valid=false);
acceptable -> either.
"""
import json
from collections import Counter

import pytest

from vssmtest.util import WYCHEPROOF, b64d, b64e, uniq


def _load(name):
    path = WYCHEPROOF / name
    if not path.is_file():
        pytest.fail(f"missing test vectors {path} (testdata/ of the repository)")
    return json.loads(path.read_text())


class Runner:
    def __init__(self, api, key_type):
        self.api, self.key_type = api, key_type
        self.keys = {}
        self.failures = []
        self.errors = Counter()
        self.skipped = []
        self.counts = Counter()

    def key(self, material: bytes, allowed_inject_refusal=False):
        if material not in self.keys:
            name = uniq(f"wp-{self.key_type.lower()}")
            r = self.api.admin("injectkey", keyName=name, keyType=self.key_type,
                               key=b64e(material))
            if r.status != 200:
                if allowed_inject_refusal and r.status == 400:
                    self.keys[material] = None
                else:
                    raise AssertionError(f"injectkey ({len(material)} bytes) failed: {r!r}")
            else:
                self.keys[material] = name
        return self.keys[material]

    def decrypt_case(self, tc_id, path, name, algorithm, ct, msg, result, comment):
        self.counts[result] += 1
        r = self.api.op(path, keyName=name, algorithm=algorithm, input=ct)
        if result == "valid":
            if r.status != 200:
                self.failures.append(f"tcId {tc_id} valid ({comment}): {r!r}")
            elif b64d(r.json.get("output", "")) != msg:
                self.failures.append(f"tcId {tc_id} valid ({comment}): wrong plaintext")
        elif result == "invalid":
            if r.status != 400:
                self.failures.append(f"tcId {tc_id} invalid ({comment}): expected 400, got {r!r}")
            else:
                self.errors[r.text] += 1
        else:  # acceptable
            if r.status == 200:
                if b64d(r.json.get("output", "")) != msg:
                    self.failures.append(f"tcId {tc_id} acceptable: decrypted to the wrong plaintext")
            elif r.status == 400:
                self.errors[r.text] += 1
            else:
                self.failures.append(f"tcId {tc_id} acceptable: {r!r}")

    def finish(self, label):
        if len(self.errors) > 1:
            self.failures.append(f"decrypt failures are distinguishable ({len(self.errors)} "
                                 f"different bodies): {dict(self.errors)}")
        summary = f"{label}: {dict(self.counts)}, skipped {len(self.skipped)}"
        print(summary)
        assert not self.failures, f"{summary}\n{len(self.failures)} failures:\n" + \
            "\n".join(self.failures[:60])


def test_aes_gcm(api):
    data = _load("aes_gcm_test.json")
    run = Runner(api, "SYMMETRIC")
    for g in data["testGroups"]:
        if g["ivSize"] != 96 or g["tagSize"] != 128:
            continue
        for t in g["tests"]:
            if t["aad"]:
                continue
            name = run.key(bytes.fromhex(t["key"]))
            ct = bytes.fromhex(t["iv"] + t["ct"] + t["tag"])
            run.decrypt_case(t["tcId"], "symmetric/decrypt", name, "AES/GCM/NoPadding", ct,
                             bytes.fromhex(t["msg"]), t["result"], t["comment"])
    assert sum(run.counts.values()) > 100
    run.finish("aes_gcm")


def test_aes_cbc_pkcs5(api):
    data = _load("aes_cbc_pkcs5_test.json")
    run = Runner(api, "SYMMETRIC")
    for g in data["testGroups"]:
        for t in g["tests"]:
            name = run.key(bytes.fromhex(t["key"]))
            ct = bytes.fromhex(t["iv"] + t["ct"])
            run.decrypt_case(t["tcId"], "symmetric/decrypt", name, "AES/CBC/PKCS5Padding", ct,
                             bytes.fromhex(t["msg"]), t["result"], t["comment"])
    assert sum(run.counts.values()) == 216
    run.finish("aes_cbc_pkcs5")


@pytest.mark.parametrize("sha", ["SHA1", "SHA256", "SHA384", "SHA512"])
def test_hmac(api, sha):
    data = _load(f"hmac_{sha.lower()}_test.json")
    full = {"SHA1": 160, "SHA256": 256, "SHA384": 384, "SHA512": 512}[sha]
    run = Runner(api, "MAC")
    for g in data["testGroups"]:
        if g["tagSize"] != full:
            continue
        for t in g["tests"]:
            material = bytes.fromhex(t["key"])
            # MAC keys outside 16..128 bytes may be refused by policy (generatekey range)
            name = run.key(material, allowed_inject_refusal=not 16 <= len(material) <= 128)
            if name is None:
                run.skipped.append(t["tcId"])
                continue
            run.counts[t["result"]] += 1
            msg, tag = bytes.fromhex(t["msg"]), bytes.fromhex(t["tag"])
            r = api.op("hmac/verify", keyName=name, algorithm=sha, input=msg, hmac=tag)
            if t["result"] == "valid":
                if r.status != 200 or r.json.get("valid") is not True:
                    run.failures.append(f"tcId {t['tcId']} valid: {r!r}")
                c = api.op("hmac/create", keyName=name, algorithm=sha, input=msg)
                if c.status != 200 or b64d(c.json["output"]) != tag:
                    run.failures.append(f"tcId {t['tcId']} create: {c!r}")
            elif t["result"] == "invalid":
                if not (r.status == 200 and r.json.get("valid", False) is False):
                    run.failures.append(f"tcId {t['tcId']} invalid ({t['comment']}): {r!r}")
    assert sum(run.counts.values()) > 60
    run.finish(f"hmac_{sha}")


@pytest.mark.parametrize("sha", ["SHA1", "SHA256", "SHA384", "SHA512"])
def test_rsa_oaep(api, sha):
    n = sha[3:]
    data = _load(f"rsa_oaep_2048_sha{n}_mgf1sha{n}_test.json")
    run = Runner(api, "ASYMMETRIC")
    for g in data["testGroups"]:
        name = run.key(bytes.fromhex(g["privateKeyPkcs8"]))
        for t in g["tests"]:
            if t.get("label", ""):
                continue
            run.decrypt_case(t["tcId"], "asymmetric/decrypt", name, f"RSA-OAEP/{sha}",
                             bytes.fromhex(t["ct"]), bytes.fromhex(t["msg"]), t["result"],
                             t["comment"])
    assert sum(run.counts.values()) > 20
    run.finish(f"rsa_oaep_{sha}")


def test_rsa_pkcs1(api):
    data = _load("rsa_pkcs1_2048_test.json")
    run = Runner(api, "ASYMMETRIC")
    for g in data["testGroups"]:
        name = run.key(bytes.fromhex(g["privateKeyPkcs8"]))
        for t in g["tests"]:
            run.decrypt_case(t["tcId"], "asymmetric/decrypt", name, "RSA",
                             bytes.fromhex(t["ct"]), bytes.fromhex(t["msg"]), t["result"],
                             t["comment"])
    assert sum(run.counts.values()) == 67
    run.finish("rsa_pkcs1")


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


@pytest.mark.parametrize("file,algorithm", [
    ("rsa_pkcs1_2048_test.json", "RSA"),
    ("rsa_oaep_2048_sha256_mgf1sha256_test.json", "RSA-OAEP/SHA256"),
])
def test_rsa_padding_refusals_share_the_timing_class_of_success(api, file, algorithm):
    """A padding oracle also shows in timing: a refusal that returns before
    (or without) the private-key operation is several times faster than a
    success. Valid and invalid ciphertexts are sent interleaved; every kind
    of invalid padding must take about as long as a valid ciphertext. Only
    ciphertexts that the public key alone shows to be bad (wrong length,
    not below n, or 0, 1, n-1) may be refused sooner."""
    import time
    from cryptography.hazmat.primitives import serialization
    data = _load(file)
    group = data["testGroups"][0]
    der = bytes.fromhex(group["privateKeyPkcs8"])
    n = serialization.load_der_private_key(der, None).public_key().public_numbers().n
    k = (n.bit_length() + 7) // 8
    name = Runner(api, "ASYMMETRIC").key(der)

    def publicly_bad(ct: bytes) -> bool:
        c = int.from_bytes(ct, "big")
        return len(ct) != k or c >= n or c in (0, 1, n - 1)

    tests = [t for t in group["tests"] if not t.get("label", "")]
    valid = next(t for t in tests if t["result"] == "valid")
    padding = {}  # one case per kind of bad padding
    for t in tests:
        if t["result"] == "invalid" and not publicly_bad(bytes.fromhex(t["ct"])):
            padding.setdefault(t["comment"], t)
    assert len(padding) >= 5, list(padding)
    cases = {"valid": valid, **padding}

    def measure():
        times = {kind: [] for kind in cases}
        for _ in range(25):
            for kind, t in cases.items():
                t0 = time.perf_counter()
                r = api.op("asymmetric/decrypt", keyName=name, algorithm=algorithm, input=bytes.fromhex(t["ct"]))
                times[kind].append(time.perf_counter() - t0)
                assert r.status == (200 if kind == "valid" else 400), (kind, r)
        base = _median(times["valid"])
        ratios = {kind: round(_median(v) / base, 2) for kind, v in times.items()}
        print(f"{algorithm}: valid median {base * 1000:.2f} ms; ratios {ratios}")
        return ratios

    # A real oracle shows in every measurement; a burst of other work on a
    # shared CI machine shows in one: up to three measurements.
    for _ in range(3):
        ratios = measure()
        if all(0.7 <= x <= 1.4 for x in ratios.values()):
            break
    assert all(0.7 <= x <= 1.4 for x in ratios.values()), ratios
