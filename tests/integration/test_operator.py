"""The operator's tools: `vssm call` (one API call over mTLS, the node's RPC
certificate pinned) and the bootstrap certificate's key pin on the console."""
import base64
import hashlib
import json
import os
import socket
import time
import ssl
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vssmtest.node import IP_MAIN, require_binary
from vssmtest.util import ADMIN_PASSWORD, VSSM_BIN, b64d, b64e, uniq

IP_PIN = "127.0.0.21"


def vssm_call(pki, endpoint, body=None, *, password_file=None, server_cert=None, env=None,
              stdin=None, node=IP_MAIN):
    require_binary()
    crt, key = pki.client_cert()
    args = [str(VSSM_BIN), "call", "--node", node, "--server-cert", str(server_cert or pki.rpc_crt),
            "--cert", str(crt), "--key", str(key)]
    if password_file:
        args += ["--password-file", str(password_file)]
    args.append(endpoint)
    if body is not None:
        args.append(body if isinstance(body, str) else json.dumps(body))
    run_env = {k: v for k, v in os.environ.items() if k != "VSSM_ADMIN_PASSWORD"}
    run_env.update(env or {})
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60, env=run_env)


def test_call_makes_admin_and_crypto_calls(main_node, pki, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(ADMIN_PASSWORD + "\n")
    name, key = uniq("op-aes"), os.urandom(32)
    r = vssm_call(pki, "admin/injectkey", {"keyName": name, "keyType": "SYMMETRIC", "key": b64e(key)},
                  password_file=pw)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {}
    # A ciphertext made through `vssm call` decrypts with an independent AES-GCM.
    pt = b"made by the operator client"
    r = vssm_call(pki, "symmetric/encrypt", {"keyName": name, "algorithm": "AES/GCM/NoPadding", "input": b64e(pt)})
    assert r.returncode == 0, r.stderr
    ct = b64d(json.loads(r.stdout)["output"])
    assert AESGCM(key).decrypt(ct[:12], ct[12:], None) == pt
    # The request from stdin, the password from the environment.
    r = vssm_call(pki, "admin/listkeys", "-", stdin=json.dumps({"keyName": name, "keyType": "SYMMETRIC"}),
                  env={"VSSM_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert r.returncode == 0, r.stderr
    assert [k["name"] for k in json.loads(r.stdout)["symmetricKey"]] == [name]


def test_call_reports_errors_and_never_talks_to_an_unpinned_node(main_node, pki, tmp_path):
    r = vssm_call(pki, "symmetric/encrypt", {"keyName": uniq("absent"), "algorithm": "AES/GCM/NoPadding",
                                             "input": b64e(b"x")})
    assert r.returncode != 0 and r.stdout == ""
    assert "404" in r.stderr, r.stderr
    # Admin calls need a password; it is never taken from the command line.
    r = vssm_call(pki, "admin/listkeys")
    assert r.returncode != 0 and "admin password" in r.stderr, r.stderr
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password\n")
    r = vssm_call(pki, "admin/listkeys", password_file=wrong)
    assert r.returncode != 0 and "401" in r.stderr, r.stderr
    # A node that does not present the given RPC certificate gets nothing.
    other = tmp_path / "other.crt"
    other.write_bytes(pki.client_cert()[0].read_bytes())
    r = vssm_call(pki, "admin/listkeys", server_cert=other, password_file=wrong)
    assert r.returncode != 0 and "pinned RPC certificate" in r.stderr, r.stderr


def test_bootstrap_key_pin_on_the_console_matches_the_served_certificate(make_node):
    node = make_node(IP_PIN).start()
    # The port may answer a moment before the console line is written.
    deadline = time.monotonic() + 5
    while True:
        log = node.log()
        pins = [w for w in log.split() if w.startswith("sha256//")]
        if pins:
            break
        assert time.monotonic() < deadline, log
        time.sleep(0.05)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((IP_PIN, 8080), timeout=10) as tcp:
        with ctx.wrap_socket(tcp, server_hostname="VSSM") as tls:
            der = tls.getpeercert(binary_form=True)
    spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert pins[0].rstrip(")") == "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode()
    assert node.bootstrap().status == 200
