"""Symmetric encrypt/decrypt against a local `cryptography` reference."""
import os

import pytest

from vssmtest.crypto_ref import BLOCK, pkcs7_pad, sym_decrypt, sym_encrypt
from vssmtest.util import uniq

KEY_SIZES = {"AES": [16, 24, 32], "DES": [8], "3DES": [24]}
PADDINGS = ["NoPadding", "PKCS5Padding", "PKCS7Padding"]

CASES = []
for cipher, sizes in KEY_SIZES.items():
    for size in sizes:
        for mode in ["ECB", "CBC", "CTR", "GCM"]:
            if mode == "GCM" and cipher != "AES":
                continue
            for pad in PADDINGS:
                CASES.append((cipher, size, mode, pad))


@pytest.fixture(scope="module")
def sym_keys(api):
    """One injected key per (cipher, size); returns {(cipher, size): (name, key)}."""
    keys = {}
    for cipher, sizes in KEY_SIZES.items():
        for size in sizes:
            name, key = uniq(f"sym-{cipher}-{size}"), os.urandom(size)
            api.inject(name, "SYMMETRIC", key)
            keys[(cipher, size)] = (name, key)
    return keys


def _plaintexts(cipher, mode, pad):
    bs = BLOCK[cipher]
    if pad == "NoPadding" and mode in ("ECB", "CBC"):
        return [b"", os.urandom(bs), os.urandom(bs * 5)]
    return [b"", b"a", os.urandom(bs - 1), os.urandom(bs), os.urandom(bs * 3 + 5)]


@pytest.mark.parametrize("cipher,size,mode,pad", CASES,
                         ids=[f"{c}{s * 8}-{m}-{p}" for c, s, m, p in CASES])
def test_symmetric_both_directions(api, sym_keys, cipher, size, mode, pad):
    name, key = sym_keys[(cipher, size)]
    alg = f"{cipher}/{mode}/{pad}"
    bs = BLOCK[cipher]
    for pt in _plaintexts(cipher, mode, pad):
        # server -> independent implementation
        ct = api.out("symmetric/encrypt", keyName=name, algorithm=alg, input=pt)
        assert sym_decrypt(alg, key, ct) == pt, f"{alg}: server ciphertext does not decrypt locally"
        # PKCS5/PKCS7 pad before every mode (the first VSSM's rule), also CTR and GCM.
        body_len = len(pkcs7_pad(pt, bs)) if pad != "NoPadding" else len(pt)
        prefix = {"ECB": 0, "CBC": bs, "CTR": bs, "GCM": 12}[mode]
        tag = 16 if mode == "GCM" else 0
        assert len(ct) == prefix + body_len + tag, f"{alg}: unexpected ciphertext layout/length"
        if pad != "NoPadding":
            raw = sym_decrypt(alg.replace(pad, "NoPadding"), key, ct)
            assert raw == pkcs7_pad(pt, bs), f"{alg}: the plaintext was not padded before the mode"
        # server round trip
        assert api.out("symmetric/decrypt", keyName=name, algorithm=alg, input=ct) == pt
        # independent implementation -> server (a migrating client's ciphertext)
        local_ct = sym_encrypt(alg, key, pt)
        assert api.out("symmetric/decrypt", keyName=name, algorithm=alg, input=local_ct) == pt, \
            f"{alg}: local ciphertext does not decrypt on the server"


@pytest.mark.parametrize("alg", ["AES/CTR/PKCS5Padding", "AES/GCM/PKCS7Padding", "DES/CTR/PKCS5Padding"])
def test_stream_and_aead_unpad_failure_is_the_generic_error(api, sym_keys, alg):
    """A CTR/GCM plaintext without valid padding is refused with the same 400
    as a tag failure, never returned with its tail."""
    cipher = alg.split("/")[0]
    name, key = sym_keys[(cipher, KEY_SIZES[cipher][-1])]
    bs = BLOCK[cipher]
    unpadded = alg.replace(alg.split("/")[2], "NoPadding")
    bad_inputs = [
        sym_encrypt(unpadded, key, b"x" * bs + b"\x00"),  # wrong length after the mode
        sym_encrypt(unpadded, key, b"y" * (bs - 1) + b"\x00"),  # pad byte 0
        sym_encrypt(unpadded, key, b"z" * (bs - 3) + b"\x01\x02\x03"),  # inconsistent pad bytes
        sym_encrypt(unpadded, key, b""),  # empty after the mode
    ]
    good = sym_encrypt(alg, key, b"hello")
    errors = set()
    for ct in bad_inputs:
        r = api.op("symmetric/decrypt", keyName=name, algorithm=alg, input=ct)
        assert r.status == 400, f"{alg}: bad padding gave {r.status}"
        errors.add(r.error())
    if alg.split("/")[1] == "GCM":
        tampered = good[:-1] + bytes([good[-1] ^ 1])
        r = api.op("symmetric/decrypt", keyName=name, algorithm=alg, input=tampered)
        assert r.status == 400
        errors.add(r.error())
    assert len(errors) == 1, f"{alg}: unpadding failures are distinguishable: {errors}"
    assert api.out("symmetric/decrypt", keyName=name, algorithm=alg, input=good) == b"hello"


@pytest.mark.parametrize("alg", ["AES/CBC/PKCS5Padding", "AES/CTR/NoPadding", "AES/GCM/NoPadding",
                                 "3DES/CBC/PKCS5Padding", "DES/CTR/NoPadding"])
def test_random_iv(api, sym_keys, alg):
    cipher = alg.split("/")[0]
    name, _ = sym_keys[(cipher, KEY_SIZES[cipher][-1])]
    cts = {api.out("symmetric/encrypt", keyName=name, algorithm=alg, input=b"same plaintext")
           for _ in range(4)}
    assert len(cts) == 4, f"{alg}: IV/nonce is not random"


@pytest.mark.parametrize("cipher,size", [("AES", 16), ("DES", 8), ("3DES", 24)])
def test_ctr_counter_wraps_whole_block(api, sym_keys, cipher, size):
    """Counter = whole IV block, big endian, wrapping (Go cipher.NewCTR)."""
    name, key = sym_keys[(cipher, size)]
    bs = BLOCK[cipher]
    alg = f"{cipher}/CTR/NoPadding"
    for iv in (b"\xff" * bs, b"\x00" * (bs - 1) + b"\xff", b"\x00" * (bs - 2) + b"\xff\xff"):
        pt = os.urandom(bs * 4 + 3)
        ct = sym_encrypt(alg, key, pt, iv=iv)
        assert api.out("symmetric/decrypt", keyName=name, algorithm=alg, input=ct) == pt


@pytest.mark.parametrize("alg", ["AES/ECB/NoPadding", "AES/CBC/NoPadding", "DES/ECB/NoPadding",
                                 "3DES/CBC/NoPadding"])
def test_nopadding_requires_whole_blocks(api, sym_keys, alg):
    cipher = alg.split("/")[0]
    name, _ = sym_keys[(cipher, KEY_SIZES[cipher][0])]
    r = api.op("symmetric/encrypt", keyName=name, algorithm=alg, input=b"x" * 13)
    assert r.status == 400, r
    r.error()


def test_decrypt_failures_are_generic(api, sym_keys):
    """Tag failure, bad padding, bad length: one 400 message, no oracle."""
    name, key = sym_keys[("AES", 32)]
    errors = {}
    good = sym_encrypt("AES/GCM/NoPadding", key, b"secret message")
    bad_tag = good[:-1] + bytes([good[-1] ^ 1])
    cases = {
        "gcm-tag": ("AES/GCM/NoPadding", bad_tag),
        "gcm-short": ("AES/GCM/NoPadding", good[:20]),
        "cbc-bad-padding": ("AES/CBC/PKCS5Padding",
                            sym_encrypt("AES/CBC/NoPadding", key, b"A" * 15 + b"\x00")),
        "cbc-bad-padding2": ("AES/CBC/PKCS5Padding",
                             sym_encrypt("AES/CBC/NoPadding", key, b"A" * 14 + b"\x03\x03")),
        "cbc-not-block": ("AES/CBC/PKCS5Padding", os.urandom(16 + 7)),
        "ecb-bad-padding": ("AES/ECB/PKCS5Padding",
                            sym_encrypt("AES/ECB/NoPadding", key, b"B" * 16)),
    }
    for label, (alg, ct) in cases.items():
        r = api.op("symmetric/decrypt", keyName=name, algorithm=alg, input=ct)
        assert r.status == 400, f"{label}: {r!r}"
        errors[label] = r.error()
        assert "secret" not in r.text and "AAAA" not in r.text
    assert len(set(errors.values())) == 1, f"decrypt failures are distinguishable: {errors}"


@pytest.mark.parametrize("key,alg", [
    (("DES", 8), "AES/CBC/PKCS5Padding"),       # 8-byte key is not an AES key
    (("DES", 8), "AES/GCM/NoPadding"),
    (("AES", 16), "3DES/CBC/PKCS5Padding"),     # 16-byte key is not a 3DES key
    (("AES", 16), "DES/ECB/PKCS5Padding"),
    (("3DES", 24), "3DES/GCM/NoPadding"),       # GCM only with AES
    (("DES", 8), "DES/GCM/NoPadding"),
])
def test_wrong_key_size_or_mode_for_cipher(api, sym_keys, key, alg):
    name, _ = sym_keys[key]
    for path in ("symmetric/encrypt", "symmetric/decrypt"):
        r = api.op(path, keyName=name, algorithm=alg, input=b"x" * 48)
        assert r.status == 400, f"{path}: {r!r}"
        r.error()


@pytest.mark.parametrize("alg", ["AES/XTS/NoPadding", "AES/CBC/ISO10126Padding", "AES/CBC",
                                 "RC4/ECB/NoPadding", "", "aes/cbc/pkcs5padding/extra"])
def test_unknown_algorithm(api, sym_keys, alg):
    name, _ = sym_keys[("AES", 16)]
    r = api.op("symmetric/encrypt", keyName=name, algorithm=alg, input=b"x" * 16)
    assert r.status == 400, r
    r.error()


# ---- optional: GCM additional authenticated data ------------------------

def test_gcm_aad_optional_field(api, sym_keys):
    name, key = sym_keys[("AES", 16)]
    alg, aad, pt = "AES/GCM/NoPadding", b"header-v1", b"payload"
    ct = api.out("symmetric/encrypt", keyName=name, algorithm=alg, input=pt, aad=aad)
    assert sym_decrypt(alg, key, ct, aad=aad) == pt
    local = sym_encrypt(alg, key, pt, aad=aad)
    assert api.out("symmetric/decrypt", keyName=name, algorithm=alg, input=local, aad=aad) == pt
    r = api.op("symmetric/decrypt", keyName=name, algorithm=alg, input=local, aad=b"other")
    assert r.status == 400, r
    r = api.op("symmetric/decrypt", keyName=name, algorithm=alg, input=local)
    assert r.status == 400, r


@pytest.mark.parametrize("cipher,size", [("AES", 32), ("DES", 8), ("3DES", 24)])
def test_ctr_counter_wraps_like_go(api, sym_keys, cipher, size):
    """CTR counts modulo 2^(8*block) as Go's cipher.NewCTR does: a ciphertext
    whose IV is all-ones (the counter wraps after the first block) made by the
    independent implementation decrypts on the server, and back."""
    name, key = sym_keys[(cipher, size)]
    bs = BLOCK[cipher]
    pt = os.urandom(bs * 3 + 5)
    for iv in (b"\xff" * bs, b"\xff" * (bs - 1) + b"\xfe"):
        for pad in ("NoPadding", "PKCS5Padding"):
            alg = f"{cipher}/CTR/{pad}"
            ct = sym_encrypt(alg, key, pt, iv=iv)
            assert api.out("symmetric/decrypt", keyName=name, algorithm=alg, input=ct) == pt, \
                f"{alg}: counter wrap after IV {iv.hex()} differs from Go's"


# ---- optional: the caller's iv/nonce (symmetric/encrypt only) -----------

@pytest.mark.parametrize("alg", ["AES/GCM/NoPadding", "AES/GCM/PKCS5Padding", "AES/CBC/NoPadding",
                                 "AES/CBC/PKCS5Padding", "AES/CTR/NoPadding", "3DES/CBC/PKCS5Padding",
                                 "DES/CTR/NoPadding"])
def test_caller_iv_gives_the_independent_ciphertext(api, sym_keys, alg):
    """With `iv` the ciphertext is exactly what an independent implementation
    makes with that iv (the layout keeps the iv in front), and it decrypts."""
    cipher, mode, _ = alg.split("/")
    name, key = sym_keys[(cipher, KEY_SIZES[cipher][-1])]
    iv = os.urandom(12 if mode == "GCM" else BLOCK[cipher])
    pt = os.urandom(BLOCK[cipher] * 3)
    aad = b"tenant-7" if mode == "GCM" else None
    fields = {"aad": aad} if aad else {}
    ct = api.out("symmetric/encrypt", keyName=name, algorithm=alg, input=pt, iv=iv, **fields)
    assert ct == sym_encrypt(alg, key, pt, iv=iv, aad=aad)
    assert api.out("symmetric/decrypt", keyName=name, algorithm=alg, input=ct, **fields) == pt


@pytest.mark.parametrize("alg,iv_len,message", [
    ("AES/GCM/NoPadding", 16, "iv must be 12 bytes"),
    ("AES/GCM/NoPadding", 8, "iv must be 12 bytes"),
    ("AES/CBC/NoPadding", 12, "iv must be 16 bytes"),
    ("3DES/CBC/PKCS5Padding", 16, "iv must be 8 bytes"),
    ("AES/ECB/NoPadding", 16, "ECB takes no iv"),
])
def test_caller_iv_of_the_wrong_length_is_refused(api, sym_keys, alg, iv_len, message):
    cipher = alg.split("/")[0]
    name, _ = sym_keys[(cipher, KEY_SIZES[cipher][-1])]
    r = api.op("symmetric/encrypt", keyName=name, algorithm=alg, input=b"x" * 16, iv=os.urandom(iv_len))
    assert r.status == 400, r
    assert message in r.error()


@pytest.mark.parametrize("path", ["symmetric/decrypt", "symmetric/rewrap"])
def test_iv_is_refused_where_the_ciphertext_carries_it(api, sym_keys, path):
    name, _ = sym_keys[("AES", 32)]
    ct = api.out("symmetric/encrypt", keyName=name, algorithm="AES/GCM/NoPadding", input=b"data")
    r = api.op(path, keyName=name, algorithm="AES/GCM/NoPadding", input=ct, iv=ct[:12])
    assert r.status == 400, r
    assert "iv is only accepted by symmetric/encrypt" in r.error()
