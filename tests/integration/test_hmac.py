"""HMAC create/verify against Python's hmac."""
import hashlib
import hmac
import os

import pytest

from vssmtest.util import uniq

ALGS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA384": hashlib.sha384,
        "SHA512": hashlib.sha512}


@pytest.fixture(scope="module")
def mac_keys(api):
    keys = {}
    for size in (16, 32, 64, 65, 128):
        name, key = uniq(f"mac{size}"), os.urandom(size)
        api.inject(name, "MAC", key)
        keys[size] = (name, key)
    return keys


@pytest.mark.parametrize("alg", list(ALGS))
@pytest.mark.parametrize("size", [16, 32, 64, 65, 128])
def test_hmac_create_and_verify(api, mac_keys, alg, size):
    name, key = mac_keys[size]
    for msg in (b"", b"abc", os.urandom(1000)):
        want = hmac.new(key, msg, ALGS[alg]).digest()
        got = api.out("hmac/create", keyName=name, algorithm=alg, input=msg)
        assert got == want, f"HMAC-{alg} differs from the local HMAC"
        r = api.op_ok("hmac/verify", keyName=name, algorithm=alg, input=msg, hmac=want)
        assert r.get("valid") is True, r
        bad = bytes([want[0] ^ 0x80]) + want[1:]
        r = api.op_ok("hmac/verify", keyName=name, algorithm=alg, input=msg, hmac=bad)
        assert r.get("valid", False) is False, r
        r = api.op_ok("hmac/verify", keyName=name, algorithm=alg, input=msg + b"x", hmac=want)
        assert r.get("valid", False) is False, r


def test_hmac_verify_truncated_or_empty_tag_is_false(api, mac_keys):
    name, key = mac_keys[32]
    want = hmac.new(key, b"m", hashlib.sha256).digest()
    for tag in (want[:16], want[:1], b"", want + b"\x00"):
        r = api.op("hmac/verify", keyName=name, algorithm="SHA256", input=b"m", hmac=tag)
        assert (r.status == 200 and r.json.get("valid", False) is False) or r.status == 400, \
            f"tag len {len(tag)}: {r!r}"


def test_hmac_wrong_algorithm(api, mac_keys):
    name, _ = mac_keys[32]
    for alg in ("MD5", "SHA224x", "HmacSHA256x", ""):
        r = api.op("hmac/create", keyName=name, algorithm=alg, input=b"m")
        assert r.status == 400, f"{alg!r}: {r!r}"
        r.error()


def test_hmac_with_symmetric_key_name_is_refused(api):
    name = uniq("aes-not-mac")
    api.inject(name, "SYMMETRIC", os.urandom(32))
    r = api.op("hmac/create", keyName=name, algorithm="SHA256", input=b"m")
    assert r.status in (400, 404), r
    r.error()
