"""A PyKCS11 client of libvssm_pkcs11.so, run by tests/integration/test_pkcs11.py
in a process of its own (the module reads its configuration, from
VSSM_PKCS11_CONFIG, at C_Initialize: one configuration per process, as in a
real client).

    python3 pykcs11_client.py basic MODULE PLAN_JSON
        list, sign, verify, decrypt, random and AES with the caller's IV;
        prints one JSON object (hex bytes) for the test to check against the
        node's API and the `cryptography` package.
    python3 pykcs11_client.py failover MODULE PLAN_JSON
        signs once, prints "ready", waits for a line on stdin (the test stops
        the first node meanwhile), then times two more signatures; prints
        one JSON object.

Any failure is an exception: a traceback on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
import time

import PyKCS11
from PyKCS11 import LowLevel

P = PyKCS11


def open_token(module: str, label: str):
    lib = P.PyKCS11Lib()
    lib.load(module)
    slots = lib.getSlotList(tokenPresent=True)
    assert len(slots) == 1, slots
    token = lib.getTokenInfo(slots[0])
    assert token.label.strip() == label, token.label
    session = lib.openSession(slots[0], P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION)
    session.login("any")
    return lib, slots[0], token, session


def one(session, cls, label):
    found = session.findObjects([(P.CKA_CLASS, cls), (P.CKA_LABEL, label)])
    assert len(found) == 1, (cls, label, found)
    return found[0]


def hx(data) -> str:
    return bytes(data).hex()


def basic(module: str, plan: dict) -> dict:
    lib, slot, token, session = open_token(module, plan["token"])
    out: dict = {"manufacturer": token.manufacturerID.strip(), "model": token.model.strip()}
    mechanisms = set(lib.getMechanismList(slot))
    out["mechanisms"] = sorted(mechanisms)
    info = lib.getMechanismInfo(slot, "CKM_ECDSA")
    assert "CKF_HW" in info.flags2text() and "CKF_SIGN" in info.flags2text(), info.flags2text()

    labels = {session.getAttributeValue(o, [P.CKA_LABEL])[0]
              for o in session.findObjects([(P.CKA_CLASS, P.CKO_PRIVATE_KEY)])}
    out["private_labels"] = sorted(labels)

    data = bytes.fromhex(plan["data"])
    ec_priv = one(session, P.CKO_PRIVATE_KEY, plan["ec"])
    ec_pub = one(session, P.CKO_PUBLIC_KEY, plan["ec"])
    point = session.getAttributeValue(ec_pub, [P.CKA_EC_POINT])[0]
    out["ec_point"] = hx(point)
    # CKA_VALUE is sensitive; the other attribute of the same call is filled.
    # (PyKCS11 sees CKR_ATTRIBUTE_SENSITIVE, asks again one attribute at a
    # time and answers None for the sensitive one.)
    value, label = session.getAttributeValue(ec_priv, [P.CKA_VALUE, P.CKA_LABEL])
    assert value is None and label == plan["ec"], (value, label)
    raw = session.lib  # the low-level call: its return value itself
    attrs = LowLevel.ckattrlist(2)
    attrs[0].SetType(P.CKA_VALUE)
    attrs[1].SetType(P.CKA_LABEL)
    rv = raw.C_GetAttributeValue(session.session, ec_priv, attrs)
    assert rv == P.CKR_ATTRIBUTE_SENSITIVE, P.CKR[rv]
    ecdsa = session.sign(ec_priv, data, P.Mechanism(P.CKM_ECDSA_SHA256))
    assert session.verify(ec_pub, data, ecdsa, P.Mechanism(P.CKM_ECDSA_SHA256))
    assert not session.verify(ec_pub, data + b"x", ecdsa, P.Mechanism(P.CKM_ECDSA_SHA256))
    out["ecdsa_sha256"] = hx(ecdsa)

    rsa_priv = one(session, P.CKO_PRIVATE_KEY, plan["rsa"])
    rsa_pub = one(session, P.CKO_PUBLIC_KEY, plan["rsa"])
    pkcs1 = session.sign(rsa_priv, data, P.Mechanism(P.CKM_SHA256_RSA_PKCS))
    assert session.verify(rsa_pub, data, pkcs1, P.Mechanism(P.CKM_SHA256_RSA_PKCS))
    out["sha256_rsa_pkcs"] = hx(pkcs1)
    pss_mech = P.RSA_PSS_Mechanism(P.CKM_SHA384_RSA_PKCS_PSS, P.CKM_SHA384, P.CKG_MGF1_SHA384, 48)
    pss = session.sign(rsa_priv, data, pss_mech)
    assert session.verify(rsa_pub, data, pss, pss_mech)
    out["sha384_rsa_pss"] = hx(pss)

    oaep = P.RSAOAEPMechanism(P.CKM_SHA256, P.CKG_MGF1_SHA256)
    out["oaep_plain"] = hx(session.decrypt(rsa_priv, bytes.fromhex(plan["oaep_ct"]), oaep))
    out["pkcs1_plain"] = hx(session.decrypt(rsa_priv, bytes.fromhex(plan["pkcs1_ct"]), P.MechanismRSAPKCS1))
    # Encrypt with the token's public key, decrypt with its private key.
    ct = session.encrypt(rsa_pub, b"wrapped secret", oaep)
    assert bytes(session.decrypt(rsa_priv, ct, oaep)) == b"wrapped secret"

    r1, r2 = bytes(session.generateRandom(32)), bytes(session.generateRandom(32))
    assert len(r1) == 32 and r1 != r2
    session.seedRandom(b"ignored")
    out["random"] = r1.hex()

    # AES with the caller's IV: the test decrypts each result through the API.
    aes = one(session, P.CKO_SECRET_KEY, plan["aes"])
    iv = bytes.fromhex(plan["iv16"])
    nonce = bytes.fromhex(plan["nonce12"])
    msg = bytes.fromhex(plan["aes_plain"])  # a multiple of 16 bytes
    ecb = session.encrypt(aes, msg, P.Mechanism(P.CKM_AES_ECB))
    out["aes_ecb"] = hx(ecb)
    cases = {
        "aes_cbc": P.Mechanism(P.CKM_AES_CBC, iv),
        "aes_cbc_pad": P.Mechanism(P.CKM_AES_CBC_PAD, iv),
        "aes_ctr": P.AES_CTR_Mechanism(128, iv),
        "aes_gcm": P.AES_GCM_Mechanism(nonce, b"header", 128),
    }
    for name, mech in cases.items():
        try:
            ct = session.encrypt(aes, msg, mech)
            pt = session.decrypt(aes, ct, mech)
            assert bytes(pt) == msg, name
            out[name] = hx(ct)
        except P.PyKCS11Error as e:
            out[name] = f"error {e}"
    # The 128-bit counter: the block after ...ffffffffffffffff carries into
    # the upper half.
    low = bytes(8) + b"\xff" * 8
    try:
        two = bytes(session.encrypt(aes, msg[:32], P.AES_CTR_Mechanism(128, low)))
        second = bytes(session.encrypt(aes, msg[16:32], P.AES_CTR_Mechanism(128, (1).to_bytes(8, "big") + bytes(8))))
        out["ctr_carry"] = [two.hex(), second.hex()]
    except P.PyKCS11Error as e:
        out["ctr_carry"] = f"error {e}"

    session.logout()
    session.closeSession()
    return out


def failover(module: str, plan: dict) -> dict:
    lib, slot, token, session = open_token(module, plan["token"])
    key = one(session, P.CKO_PRIVATE_KEY, plan["ec"])
    mech = P.Mechanism(P.CKM_ECDSA_SHA256)
    data = b"failover"
    out: dict = {"signatures": []}
    out["signatures"].append(hx(session.sign(key, data, mech)))
    print("ready", flush=True)
    sys.stdin.readline()
    for step in ("during", "after"):
        start = time.monotonic()
        try:
            out["signatures"].append(hx(session.sign(key, data, mech)))
            out[step] = {"ok": True, "seconds": time.monotonic() - start}
        except P.PyKCS11Error as e:
            out[step] = {"ok": False, "seconds": time.monotonic() - start, "error": str(e)}
    session.closeSession()
    return out


def main():
    mode, module, plan = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    result = {"basic": basic, "failover": failover}[mode](module, plan)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
