"""RSA encrypt/decrypt and RSA/ECDSA/Ed25519 sign/verify vs local `cryptography`."""
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric import padding as apad
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from vssmtest.crypto_ref import HASHES, digest, oaep, pkcs8
from vssmtest.util import b64d, uniq

ENC_ALGS = ["RSA", "RSA-OAEP/SHA1", "RSA-OAEP/SHA256", "RSA-OAEP/SHA384", "RSA-OAEP/SHA512"]
RSA_SIGS = ["SHA1withRSA", "SHA256withRSA", "SHA384withRSA", "SHA512withRSA"]
ECDSA_SIGS = ["SHA1withECDSA", "SHA256withECDSA"]
ECDSA_SIGS_OPTIONAL = ["SHA384withECDSA", "SHA512withECDSA"]
PSS_SIGS_OPTIONAL = ["SHA256withRSA/PSS", "SHA384withRSA/PSS", "SHA512withRSA/PSS"]


def _hash_of(alg: str) -> str:
    return alg.split("with")[0]


def _enc_padding(alg: str):
    return apad.PKCS1v15() if alg == "RSA" else oaep(alg.split("/")[1])


@pytest.fixture(scope="module")
def rsa_key(api):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = uniq("rsa2048")
    api.inject(name, "ASYMMETRIC", pkcs8(key))
    return name, key


@pytest.fixture(scope="module")
def ec_keys(api):
    out = {}
    for curve in (ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()):
        key = ec.generate_private_key(curve)
        name = uniq(f"ec{curve.key_size}")
        api.inject(name, "ASYMMETRIC", pkcs8(key))
        out[curve.key_size] = (name, key)
    return out


# ---- encryption ----------------------------------------------------------

@pytest.mark.parametrize("alg", ENC_ALGS)
def test_rsa_encrypt_both_directions(api, rsa_key, alg):
    name, key = rsa_key
    pad = _enc_padding(alg)
    for pt in (b"", b"x", os.urandom(62)):
        ct = api.out("asymmetric/encrypt", keyName=name, algorithm=alg, input=pt)
        assert len(ct) == 256
        assert key.decrypt(ct, pad) == pt, f"{alg}: server ciphertext does not decrypt locally"
        local = key.public_key().encrypt(pt, pad)
        assert api.out("asymmetric/decrypt", keyName=name, algorithm=alg, input=local) == pt
    # randomized padding: two encryptions differ
    a = api.out("asymmetric/encrypt", keyName=name, algorithm=alg, input=b"same")
    b = api.out("asymmetric/encrypt", keyName=name, algorithm=alg, input=b"same")
    assert a != b


@pytest.mark.parametrize("alg", ENC_ALGS)
def test_rsa_encrypt_too_long_is_400(api, rsa_key, alg):
    name, _ = rsa_key
    r = api.op("asymmetric/encrypt", keyName=name, algorithm=alg, input=os.urandom(256))
    assert r.status == 400, r
    r.error()


def test_rsa_decrypt_failures_are_generic(api, rsa_key):
    name, key = rsa_key
    errors = {}
    good_oaep = key.public_key().encrypt(b"hello", oaep("SHA256"))
    good_v15 = key.public_key().encrypt(b"hello", apad.PKCS1v15())
    cases = {
        "oaep-wrong-hash": ("RSA-OAEP/SHA1", good_oaep),
        "oaep-flipped": ("RSA-OAEP/SHA256", good_oaep[:-1] + bytes([good_oaep[-1] ^ 1])),
        "oaep-short": ("RSA-OAEP/SHA256", good_oaep[:100]),
        "v15-as-oaep": ("RSA-OAEP/SHA256", good_v15),
        "oaep-as-v15": ("RSA", good_oaep),
        "v15-flipped": ("RSA", good_v15[:10] + bytes([good_v15[10] ^ 0x55]) + good_v15[11:]),
        "zeros": ("RSA", b"\x00" * 256),
    }
    for label, (alg, ct) in cases.items():
        r = api.op("asymmetric/decrypt", keyName=name, algorithm=alg, input=ct)
        assert r.status == 400, f"{label}: {r!r}"
        errors[label] = r.error()
    assert len(set(errors.values())) == 1, f"RSA decrypt failures are distinguishable: {errors}"


# ---- signatures ----------------------------------------------------------

def _local_verify(pub, alg, sig, data, prehashed=False):
    h = HASHES[_hash_of(alg)]()
    algo = Prehashed(h) if prehashed else h
    if alg.endswith("/PSS"):
        pub.verify(sig, data, apad.PSS(apad.MGF1(h), apad.PSS.AUTO), algo)
    elif "RSA" in alg:
        pub.verify(sig, data, apad.PKCS1v15(), algo)
    else:
        pub.verify(sig, data, ec.ECDSA(algo))


def _local_sign(priv, alg, data, prehashed=False):
    h = HASHES[_hash_of(alg)]()
    algo = Prehashed(h) if prehashed else h
    if alg.endswith("/PSS"):
        return priv.sign(data, apad.PSS(apad.MGF1(h), h.digest_size), algo)
    if "RSA" in alg:
        return priv.sign(data, apad.PKCS1v15(), algo)
    return priv.sign(data, ec.ECDSA(algo))


def _sign_verify_roundtrip(api, name, priv, alg):
    msg = os.urandom(100)
    dig = digest(_hash_of(alg), msg)
    pub = priv.public_key()
    # server signs (input mode) -> local verify
    sig = api.out("asymmetric/sign", keyName=name, algorithm=alg, input=msg)
    _local_verify(pub, alg, sig, msg)
    # server signs (hashed mode) -> local verify
    sig_h = api.out("asymmetric/sign", keyName=name, algorithm=alg, hashed=dig)
    _local_verify(pub, alg, sig_h, msg)
    if "RSA" in alg and not alg.endswith("/PSS"):
        assert sig == sig_h, "PKCS#1 v1.5 is deterministic: input and hashed modes must agree"
    # local signs -> server verifies, both modes
    local = _local_sign(priv, alg, msg)
    for mode in ({"input": msg}, {"hashed": dig}):
        r = api.op_ok("asymmetric/verify", keyName=name, algorithm=alg, signature=local, **mode)
        assert r.get("valid") is True, f"{alg} {list(mode)}: local signature rejected: {r}"
    # wrong message / tampered signature -> valid false
    r = api.op_ok("asymmetric/verify", keyName=name, algorithm=alg, signature=local,
                  input=msg + b"!")
    assert r.get("valid", False) is False, f"{alg}: signature over another message accepted"
    r = api.op_ok("asymmetric/verify", keyName=name, algorithm=alg, signature=local,
                  hashed=bytes([dig[0] ^ 1]) + dig[1:])
    assert r.get("valid", False) is False
    tampered = local[:-8] + bytes(b ^ 0xA5 for b in local[-8:]) if "RSA" in alg else None
    if tampered is not None:
        r = api.op_ok("asymmetric/verify", keyName=name, algorithm=alg, signature=tampered,
                      input=msg)
        assert r.get("valid", False) is False


@pytest.mark.parametrize("alg", RSA_SIGS)
def test_rsa_sign_verify(api, rsa_key, alg):
    name, priv = rsa_key
    _sign_verify_roundtrip(api, name, priv, alg)


@pytest.mark.parametrize("alg", ECDSA_SIGS)
@pytest.mark.parametrize("curve", [256, 384, 521])
def test_ecdsa_sign_verify(api, ec_keys, alg, curve):
    name, priv = ec_keys[curve]
    _sign_verify_roundtrip(api, name, priv, alg)


def test_ecdsa_signature_is_asn1_der_and_randomized(api, ec_keys):
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    name, _ = ec_keys[256]
    s1 = api.out("asymmetric/sign", keyName=name, algorithm="SHA256withECDSA", input=b"m")
    s2 = api.out("asymmetric/sign", keyName=name, algorithm="SHA256withECDSA", input=b"m")
    decode_dss_signature(s1)
    assert s1[0] == 0x30 and s1 != s2


def test_ecdsa_malformed_signature_not_valid(api, ec_keys):
    name, _ = ec_keys[256]
    r = api.op("asymmetric/verify", keyName=name, algorithm="SHA256withECDSA",
               signature=b"\x30\x02\x01", input=b"m")
    assert (r.status == 200 and r.json.get("valid", False) is False) or r.status == 400, r


@pytest.mark.parametrize("alg,size", [("SHA256withRSA", 31), ("SHA256withRSA", 33),
                                      ("SHA1withRSA", 32), ("SHA512withRSA", 20)])
def test_hashed_wrong_length_is_400(api, rsa_key, alg, size):
    name, _ = rsa_key
    r = api.op("asymmetric/sign", keyName=name, algorithm=alg, hashed=os.urandom(size))
    assert r.status == 400, r


def test_wrong_algorithm_for_key_type(api, rsa_key, ec_keys):
    rsa_name, _ = rsa_key
    ec_name, _ = ec_keys[256]
    checks = [
        ("asymmetric/sign", dict(keyName=rsa_name, algorithm="SHA256withECDSA", input=b"m")),
        ("asymmetric/sign", dict(keyName=ec_name, algorithm="SHA256withRSA", input=b"m")),
        ("asymmetric/encrypt", dict(keyName=ec_name, algorithm="RSA-OAEP/SHA256", input=b"m")),
        ("asymmetric/decrypt", dict(keyName=ec_name, algorithm="RSA", input=b"\x00" * 32)),
        ("asymmetric/encrypt", dict(keyName=rsa_name, algorithm="AES/CBC/PKCS5Padding", input=b"m")),
        ("asymmetric/sign", dict(keyName=rsa_name, algorithm="MD5withRSA", input=b"m")),
        ("asymmetric/encrypt", dict(keyName=rsa_name, algorithm="RSA-OAEP/MD5", input=b"m")),
    ]
    for path, fields in checks:
        r = api.op(path, **fields)
        assert r.status == 400, f"{path} {fields['algorithm']}: {r!r}"
        r.error()
    # symmetric endpoint with an asymmetric key name: 400 (wrong type) or 404 (per-type names)
    r = api.op("symmetric/encrypt", keyName=rsa_name, algorithm="AES/GCM/NoPadding", input=b"m")
    assert r.status in (400, 404), r


def test_public_key_from_listkeys_verifies_server_signature(api, rsa_key, ec_keys):
    for name, _ in (rsa_key, ec_keys[384]):
        lk = api.listkeys(keyName=name, keyType="ASYMMETRIC")
        entry = [k for k in lk.get("asymmetricKey", []) if k["name"] == name]
        assert len(entry) == 1, lk
        pub = serialization.load_der_public_key(b64d(entry[0]["publicKey"]))
        alg = "SHA256withRSA" if isinstance(pub, rsa.RSAPublicKey) else "SHA256withECDSA"
        sig = api.out("asymmetric/sign", keyName=name, algorithm=alg, input=b"listkeys")
        _local_verify(pub, alg, sig, b"listkeys")


# ---- optional algorithms (announced additions) ---------------------------

@pytest.mark.parametrize("alg", ECDSA_SIGS_OPTIONAL)
def test_optional_ecdsa_sha384_sha512(api, ec_keys, alg):
    name, priv = ec_keys[384]
    _sign_verify_roundtrip(api, name, priv, alg)


@pytest.mark.parametrize("alg", PSS_SIGS_OPTIONAL)
def test_optional_rsa_pss(api, rsa_key, alg):
    name, priv = rsa_key
    _sign_verify_roundtrip(api, name, priv, alg)


ED25519_ALG = "Ed25519"


def test_optional_ed25519(api):
    priv = ed25519.Ed25519PrivateKey.generate()
    name = uniq("ed25519")
    api.inject(name, "ASYMMETRIC", pkcs8(priv))
    lk = api.listkeys(keyName=name, keyType="ASYMMETRIC")
    entry = lk["asymmetricKey"][0]
    assert entry["keySpec"] == "ED25519", entry
    pub = serialization.load_der_public_key(b64d(entry["publicKey"]))
    assert pub.public_bytes_raw() == priv.public_key().public_bytes_raw()
    msg = os.urandom(77)
    sig = api.out("asymmetric/sign", keyName=name, algorithm=ED25519_ALG, input=msg)
    priv.public_key().verify(sig, msg)
    assert sig == priv.sign(msg)  # deterministic
    r = api.op_ok("asymmetric/verify", keyName=name, algorithm=ED25519_ALG,
                  signature=priv.sign(msg), input=msg)
    assert r.get("valid") is True
    r = api.op_ok("asymmetric/verify", keyName=name, algorithm=ED25519_ALG,
                  signature=priv.sign(msg), input=msg + b"x")
    assert r.get("valid", False) is False
    # generated Ed25519 key
    gname = uniq("ed25519-gen")
    r = api.generate(gname, "ASYMMETRIC", key_spec="ED25519")
    if r.status == 400:  # a size may be required: 256 bits
        r = api.generate(gname, "ASYMMETRIC", 256, "ED25519")
    assert r.status == 200, r
    lk = api.listkeys(keyName=gname, keyType="ASYMMETRIC")
    gpub = serialization.load_der_public_key(b64d(lk["asymmetricKey"][0]["publicKey"]))
    gsig = api.out("asymmetric/sign", keyName=gname, algorithm=ED25519_ALG, input=msg)
    gpub.verify(gsig, msg)
