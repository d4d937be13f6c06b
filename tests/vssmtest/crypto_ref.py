"""Independent reference crypto, built only on the Python `cryptography`
package and hashlib: what the server's answers are checked against.

- sym_encrypt / sym_decrypt: AES, DES, 3DES in ECB, CBC, CTR, GCM with the
  first VSSM's framing (IV or nonce first) and its PKCS#7 padding before every
  mode (CTR and GCM included).
- ctr_xor: CTR with the whole block as a big-endian counter (Go's cipher.NewCTR).
- HASHES, oaep, digest, pkcs8: asymmetric helpers.
- scrypt_mcf / scrypt_mcf_verify: the `$s0$` password hash format of the
  configuration's rootPassword.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding as apad
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vssmtest.util import b64e

try:  # cryptography >= 43 moved 3DES to "decrepit"
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover
    TripleDES = algorithms.TripleDES

SCRYPT_LOG_N = 10  # fast; the format is the same as with 15

# --------------------------------------------------------------------------
# Symmetric
# --------------------------------------------------------------------------

BLOCK = {"AES": 16, "DES": 8, "3DES": 8}


def _alg(cipher: str, key: bytes):
    if cipher == "AES":
        return algorithms.AES(key)
    if cipher == "DES":
        assert len(key) == 8
        return TripleDES(key * 3)  # EDE with K1=K2=K3 is single DES
    if cipher == "3DES":
        return TripleDES(key)
    raise ValueError(cipher)


def ecb_raw(cipher, key, data, decrypt=False):
    """ECB of whole blocks, no padding."""
    c = Cipher(_alg(cipher, key), modes.ECB())
    x = c.decryptor() if decrypt else c.encryptor()
    return x.update(data) + x.finalize()


def pkcs7_pad(data: bytes, bs: int) -> bytes:
    """PKCS#7 (= PKCS#5 for 8-byte blocks): always 1..bs bytes of value n."""
    n = bs - len(data) % bs
    return data + bytes([n]) * n


def pkcs7_unpad(data: bytes, bs: int) -> bytes:
    """Strict inverse of pkcs7_pad (asserts on bad padding)."""
    assert data and len(data) % bs == 0, "bad padded length"
    n = data[-1]
    assert 1 <= n <= bs and data[-n:] == bytes([n]) * n, "bad padding"
    return data[:-n]


def ctr_xor(cipher, key, iv, data):
    """CTR with the whole block as a big-endian counter (Go's cipher.NewCTR)."""
    bs = BLOCK[cipher]
    ctr = int.from_bytes(iv, "big")
    nblocks = (len(data) + bs - 1) // bs
    counters = b"".join(((ctr + i) % (1 << (8 * bs))).to_bytes(bs, "big") for i in range(nblocks))
    ks = ecb_raw(cipher, key, counters)
    return bytes(a ^ b for a, b in zip(data, ks))


def sym_encrypt(algorithm: str, key: bytes, pt: bytes, iv: bytes | None = None,
                aad: bytes | None = None) -> bytes:
    """`algorithm` = "CIPHER/MODE/PADDING"; returns IV/nonce + ciphertext (+ tag)."""
    cipher, mode, pad = algorithm.split("/")
    bs = BLOCK[cipher]
    # The first VSSM pads before every mode, CTR and GCM included.
    if pad != "NoPadding":
        pt = pkcs7_pad(pt, bs)
    if mode == "ECB":
        return ecb_raw(cipher, key, pt)
    if mode == "CBC":
        iv = iv or os.urandom(bs)
        e = Cipher(_alg(cipher, key), modes.CBC(iv)).encryptor()
        return iv + e.update(pt) + e.finalize()
    if mode == "CTR":
        iv = iv or os.urandom(bs)
        return iv + ctr_xor(cipher, key, iv, pt)
    if mode == "GCM":
        iv = iv or os.urandom(12)
        return iv + AESGCM(key).encrypt(iv, pt, aad)
    raise ValueError(mode)


def sym_decrypt(algorithm: str, key: bytes, ct: bytes, aad: bytes | None = None) -> bytes:
    """Inverse of sym_encrypt; raises on a bad tag or bad padding."""
    cipher, mode, pad = algorithm.split("/")
    bs = BLOCK[cipher]
    if mode == "ECB":
        pt = ecb_raw(cipher, key, ct, decrypt=True)
    elif mode == "CBC":
        d = Cipher(_alg(cipher, key), modes.CBC(ct[:bs])).decryptor()
        pt = d.update(ct[bs:]) + d.finalize()
    elif mode == "CTR":
        pt = ctr_xor(cipher, key, ct[:bs], ct[bs:])
    elif mode == "GCM":
        pt = AESGCM(key).decrypt(ct[:12], ct[12:], aad)
    else:
        raise ValueError(mode)
    return pkcs7_unpad(pt, bs) if pad != "NoPadding" else pt


# --------------------------------------------------------------------------
# Asymmetric and digests
# --------------------------------------------------------------------------

HASHES = {"SHA1": hashes.SHA1, "SHA256": hashes.SHA256, "SHA384": hashes.SHA384,
          "SHA512": hashes.SHA512}


def oaep(h: str):
    """OAEP padding with hash `h` for both the label hash and MGF1, no label."""
    return apad.OAEP(mgf=apad.MGF1(HASHES[h]()), algorithm=HASHES[h](), label=None)


def digest(h: str, data: bytes) -> bytes:
    """Hash `data` with one of HASHES."""
    d = hashes.Hash(HASHES[h]())
    d.update(data)
    return d.finalize()


def pkcs8(private_key) -> bytes:
    """Unencrypted PKCS#8 DER of a `cryptography` private key (injectkey input)."""
    return private_key.private_bytes(serialization.Encoding.DER,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


# --------------------------------------------------------------------------
# scrypt MCF ($s0$PARAMS$SALT$DK)
# --------------------------------------------------------------------------

def scrypt_mcf(password: str, log_n: int = SCRYPT_LOG_N, r: int = 8, p: int = 1,
               lower_hex: bool = False) -> str:
    """A `$s0$` hash of `password` with a fresh salt."""
    salt = os.urandom(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=1 << log_n, r=r, p=p,
                        dklen=32, maxmem=256 * 1024 * 1024)
    params = format((log_n << 16) | (r << 8) | p, "x" if lower_hex else "X")
    return f"$s0${params}${b64e(salt)}${b64e(dk)}"


def scrypt_mcf_verify(mcf: str, password: str) -> dict:
    """Parses `mcf` and checks `password`: {log_n, r, p, salt, ok, params_hex}."""
    m = re.fullmatch(r"\$s0\$([0-9A-Fa-f]+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)", mcf)
    assert m, f"not an $s0$ MCF string: {mcf!r}"
    params = int(m.group(1), 16)
    log_n, r, p = params >> 16, (params >> 8) & 0xFF, params & 0xFF
    salt = base64.b64decode(m.group(2), validate=True)
    want = base64.b64decode(m.group(3), validate=True)
    assert len(want) == 32, "derived key must be 32 bytes"
    got = hashlib.scrypt(password.encode(), salt=salt, n=1 << log_n, r=r, p=p,
                         dklen=32, maxmem=512 * 1024 * 1024)
    return {"log_n": log_n, "r": r, "p": p, "salt": salt, "ok": got == want,
            "params_hex": m.group(1)}
