"""Bootstrap flow, health endpoint, TLS/mTLS on port 8080."""
import json
import shutil
import ssl
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from vssmtest.client import ApiClient, tls_context, try_request
from vssmtest.crypto_ref import pkcs8
from vssmtest.node import IP_BOOTSTRAP, IP_EC_RPC, health
from vssmtest.util import b64e

CRYPTO_PATHS = ["/REST/v1/symmetric/encrypt", "/REST/v1/asymmetric/sign",
                "/REST/v1/hmac/create", "/REST/v1/admin/listkeys",
                "/REST/v1/admin/generatekey"]


def refused(result) -> bool:
    """A refused mTLS attempt: TLS/connection error, or a non-2xx answer."""
    if isinstance(result, Exception):
        return True
    return not (200 <= result.status < 300)


def test_bootstrap_flow(make_node, pki):
    node = make_node(IP_BOOTSTRAP).start()

    # Health: 503 bootstrapping
    assert health(node.ip) == (503, "bootstrapping")

    # 8080 is TLS with a runtime self-signed certificate, no client cert needed
    pre = node.pre_client()
    runtime_cert = x509.load_der_x509_certificate(pre.peer_cert_der())
    assert runtime_cert.public_bytes(
        serialization.Encoding.DER
    ) != pki.rpc_cert_der, "before bootstrap the server must not present the RPC certificate"

    # Everything except bootstrap -> 503 {"error": ...}
    for path in CRYPTO_PATHS:
        r = pre.post(path, {"keyName": "x"})
        assert r.status == 503, f"{path} before bootstrap: {r!r}"
        r.error()

    # Wrong key (does not match rpcCertificate) -> 400, still bootstrapping
    other = pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    r = node.bootstrap(other)
    assert r.status == 400, f"bootstrap with a foreign key: {r!r}"
    r.error()
    assert health(node.ip) == (503, "bootstrapping")

    # Garbage key -> 400
    r = node.bootstrap(b"not a pkcs8 key")
    assert r.status == 400, f"bootstrap with garbage: {r!r}"
    assert health(node.ip) == (503, "bootstrapping")

    # Unknown field -> 400
    r = pre.post("/REST/v1/admin/bootstrap", {"rpcPrivateKey": b64e(node.rpc_pkcs8), "x": 1})
    assert r.status == 400, r
    assert health(node.ip) == (503, "bootstrapping")

    # Good key -> 200 {}
    r = node.bootstrap()
    assert r.status == 200 and r.json == {}, f"bootstrap with the right key: {r!r}"
    node.wait_health(want=200, timeout=10)
    assert health(node.ip) == (200, "running")

    # Now mTLS with the RPC certificate as server certificate, verified as VSSM
    c = node.client()
    assert c.peer_cert_der() == pki.rpc_cert_der
    r = c.admin("listkeys")
    assert r.status == 200, r

    # No client certificate -> refused
    no_cert = ApiClient(node.ip, ca=node.rpc_crt, cert=None)
    res = try_request(no_cert, "/REST/v1/admin/listkeys", {"adminPassword": node.password})
    no_cert.close()
    assert refused(res), f"request without a client certificate was served: {res!r}"

    # Client certificate from an untrusted CA -> refused
    rogue = ApiClient(node.ip, ca=node.rpc_crt, cert=pki.client_cert("rogue-client", rogue=True))
    res = try_request(rogue, "/REST/v1/admin/listkeys", {"adminPassword": node.password})
    rogue.close()
    assert refused(res), f"request with an untrusted client certificate was served: {res!r}"

    # Bootstrap again -> 409 (or 400), node keeps running
    r = c.post("/REST/v1/admin/bootstrap", {"rpcPrivateKey": b64e(node.rpc_pkcs8)})
    assert r.status in (409, 400), f"second bootstrap: {r!r}"
    r.error()
    assert health(node.ip) == (200, "running")
    assert c.admin("listkeys").status == 200
    assert node.alive()


def test_bootstrap_with_ec_p256_rpc_key(make_node, pki):
    crt, key_der = pki.ec_rpc()
    node = make_node(IP_EC_RPC, rpc_crt=crt, rpc_pkcs8=key_der).start()
    assert health(node.ip) == (503, "bootstrapping")
    # The RSA RPC key does not match the EC certificate
    r = node.bootstrap(pki.rpc_pkcs8_der)
    assert r.status == 400, r
    r = node.bootstrap(key_der)
    assert r.status == 200 and r.json == {}, r
    node.wait_health(want=200, timeout=10)
    c = node.client()
    assert c.peer_cert_der() == x509.load_pem_x509_certificate(crt.read_bytes()).public_bytes(
        serialization.Encoding.DER)
    assert c.admin("listkeys").status == 200
    name = "ec-rpc-aes"
    c.inject(name, "SYMMETRIC", b"k" * 16)
    ct = c.out("symmetric/encrypt", keyName=name, algorithm="AES/GCM/NoPadding", input=b"hi")
    assert c.out("symmetric/decrypt", keyName=name, algorithm="AES/GCM/NoPadding",
                 input=ct) == b"hi"


# ---- TLS details on the shared main node ---------------------------------

def test_health_running(main_node):
    assert health(main_node.ip) == (200, "running")


def test_server_cert_verifies_as_vssm(main_node, pki):
    # A wrong name must fail verification (the client really checks the name)
    bad = ApiClient(main_node.ip, ca=main_node.rpc_crt, cert=pki.client_cert(), sni="NOT-VSSM")
    with pytest.raises(ssl.SSLCertVerificationError):
        bad.post("/REST/v1/admin/listkeys", {"adminPassword": main_node.password})
    bad.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_versions(main_node, pki, version):
    ctx = tls_context(main_node.rpc_crt, pki.client_cert(), min_version=version,
                      max_version=version)
    c = ApiClient(main_node.ip, context=ctx)
    r = c.admin("listkeys")
    assert r.status == 200, r
    assert c.conn.sock.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]
    c.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_untrusted_client_refused_each_tls_version(main_node, pki, version):
    for cert in (None, pki.client_cert("rogue-client", rogue=True)):
        ctx = tls_context(main_node.rpc_crt, cert, min_version=version, max_version=version)
        c = ApiClient(main_node.ip, context=ctx)
        res = try_request(c, "/REST/v1/admin/listkeys", {"adminPassword": main_node.password})
        c.close()
        assert refused(res), f"{version.name} cert={cert}: served {res!r}"


def test_alpn_offers_h2(main_node, pki):
    ctx = tls_context(main_node.rpc_crt, pki.client_cert(), alpn=("h2", "http/1.1"))
    c = ApiClient(main_node.ip, context=ctx)
    c._new_conn()
    assert c.conn.sock.selected_alpn_protocol() == "h2"
    c.close()
    ctx = tls_context(main_node.rpc_crt, pki.client_cert(), alpn=("http/1.1",))
    c = ApiClient(main_node.ip, context=ctx)
    c._new_conn()
    assert c.conn.sock.selected_alpn_protocol() == "http/1.1"
    c.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_http2_request(main_node, pki):
    crt, key = pki.client_cert()
    body = json.dumps({"adminPassword": main_node.password})
    res = subprocess.run(
        ["curl", "-sS", "--http2", "--cacert", str(main_node.rpc_crt), "--cert", str(crt),
         "--key", str(key), "--resolve", f"VSSM:8080:{main_node.ip}",
         "-H", "Content-Type: application/json", "--data-binary", body,
         "-w", "\n%{http_code} %{http_version}",
         "https://VSSM:8080/REST/v1/admin/listkeys"],
        capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    payload, _, status = res.stdout.rpartition("\n")
    assert status == "200 2", f"curl: {res.stdout!r} {res.stderr!r}"
    assert isinstance(json.loads(payload), dict)


def test_connection_opened_before_bootstrap_is_closed_after_it(make_node, pki):
    """A keep-alive connection made before bootstrap carries no client
    certificate: once the node is bootstrapped it gets one 503 and is then
    closed by the server, so the client reconnects with mutual TLS."""
    import http.client
    import ssl

    node = make_node("127.0.0.18").start()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(node.ip, 8080, context=ctx, timeout=10)
    headers = {"Content-Type": "application/json"}
    conn.request("POST", "/REST/v1/hmac/create", body=b'{"keyName":"x"}', headers=headers)
    first = conn.getresponse()
    assert first.status == 503 and b"bootstrapping" in first.read()

    assert node.bootstrap(node.rpc_pkcs8).status == 200
    conn.request("POST", "/REST/v1/hmac/create", body=b'{"keyName":"x"}', headers=headers)
    second = conn.getresponse()
    assert second.status == 503 and b"reconnect" in second.read()

    closed = False
    try:
        conn.request("POST", "/REST/v1/hmac/create", body=b'{"keyName":"x"}', headers=headers)
        conn.getresponse().read()
    except (http.client.HTTPException, ConnectionError, ssl.SSLError, OSError):
        closed = True
    assert closed, "the server must close the unauthenticated connection"
    assert node.client().listkeys() is not None


def test_idle_keep_alive_connection_is_reused_after_15_seconds(main_node, pki):
    """Clients pool keep-alive connections: one idle for 15 s must still
    carry the next request (it must not be dropped mid-pool)."""
    import http.client
    import ssl
    import time

    crt, key = pki.client_cert()
    ctx = ssl.create_default_context(cafile=str(pki.rpc_crt))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(crt), str(key))
    conn = http.client.HTTPSConnection(main_node.ip, 8080, context=ctx, timeout=10)
    headers = {"Content-Type": "application/json"}
    conn.request("POST", "/REST/v1/hmac/create", body=b'{"keyName":"nope"}', headers=headers)
    assert conn.getresponse().read()
    sock = conn.sock
    time.sleep(15)
    conn.request("POST", "/REST/v1/hmac/create", body=b'{"keyName":"nope"}', headers=headers)
    r = conn.getresponse()
    r.read()
    assert r.status == 404 and conn.sock is sock, "the idle connection was dropped"
