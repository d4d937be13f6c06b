"""proto3-JSON mapping rules, error format, limits."""
import base64
import json
import os
import shutil
import subprocess

import pytest

from vssmtest.crypto_ref import sym_encrypt
from vssmtest.util import b64d, b64e, uniq

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def aes_key(api):
    name, key = uniq("json-aes"), os.urandom(16)
    api.inject(name, "SYMMETRIC", key)
    return name, key


def test_snake_case_field_names(api, main_node):
    name, key = uniq("snake"), os.urandom(32)
    r = api.post("/REST/v1/admin/injectkey", {"admin_password": main_node.password,
                                              "key_name": name, "key_type": "SYMMETRIC",
                                              "key": b64e(key)})
    assert r.status == 200, r
    r = api.post("/REST/v1/admin/listkeys", {"admin_password": main_node.password,
                                             "key_name": name, "key_type": "SYMMETRIC"})
    assert r.status == 200 and r.json["symmetricKey"][0]["name"] == name, r
    pt = os.urandom(16)
    r = api.post("/REST/v1/symmetric/encrypt", {"key_name": name, "algorithm": "AES/ECB/NoPadding",
                                                "input": b64e(pt)})
    assert r.status == 200, r
    assert b64d(r.json["output"]) == sym_encrypt("AES/ECB/NoPadding", key, pt)
    r = api.post("/REST/v1/admin/generatekey", {"admin_password": main_node.password,
                                                "key_name": uniq("snake-gen"),
                                                "key_type": "ASYMMETRIC", "key_spec": "EC",
                                                "key_size": 256})
    assert r.status == 200, r


def test_base64_variants_accepted_on_input(api, aes_key):
    name, key = aes_key
    pt = b"\xfb\xff\xbf" * 5 + b"\xfb\xef"  # 17 bytes: '+' and '/' and padding
    std = base64.b64encode(pt).decode()
    assert "+" in std and "/" in std and std.endswith("=")
    want = sym_encrypt("AES/ECB/PKCS5Padding", key, pt)
    variants = {
        "std-padded": std,
        "std-unpadded": std.rstrip("="),
        "url-padded": base64.urlsafe_b64encode(pt).decode(),
        "url-unpadded": base64.urlsafe_b64encode(pt).decode().rstrip("="),
    }
    for label, text in variants.items():
        r = api.post("/REST/v1/symmetric/encrypt",
                     {"keyName": name, "algorithm": "AES/ECB/PKCS5Padding", "input": text})
        assert r.status == 200, f"{label}: {r!r}"
        assert b64d(r.json["output"]) == want, label
    # key material in URL-safe unpadded form
    kname, kmat = uniq("urlkey"), b"\xfb\xff\xbf" * 10 + b"\xfb\xff"
    r = api.admin("injectkey", keyName=kname, keyType="SYMMETRIC",
                  key=base64.urlsafe_b64encode(kmat).decode().rstrip("="))
    assert r.status == 200, r
    r = api.op_ok("symmetric/encrypt", keyName=kname, algorithm="AES/ECB/NoPadding", input=b"\0" * 16)
    assert b64d(r["output"]) == sym_encrypt("AES/ECB/NoPadding", kmat, b"\0" * 16)


def test_invalid_base64_is_400(api, aes_key):
    name, _ = aes_key
    r = api.post("/REST/v1/symmetric/encrypt",
                 {"keyName": name, "algorithm": "AES/GCM/NoPadding", "input": "not*base64!"})
    assert r.status == 400, r
    r.error()


def test_output_is_standard_padded_base64(api, aes_key):
    name, _ = aes_key
    seen_special = False
    for _ in range(20):
        r = api.op_ok("symmetric/encrypt", keyName=name, algorithm="AES/GCM/NoPadding", input=b"x" * 5)
        b64d(r["output"])  # asserts alphabet + padding
        seen_special |= any(c in r["output"] for c in "+/=")
    assert seen_special


@pytest.mark.parametrize("size", [16, "16"])
def test_int64_accepted_as_number_or_string(api, size):
    name = uniq("int64")
    r = api.generate(name, "MAC", size)
    assert r.status == 200, r
    lk = api.listkeys(keyName=name, keyType="MAC")
    assert lk["macKey"][0]["keyLength"] == "16"
    assert isinstance(lk["macKey"][0]["createdAt"], str)


@pytest.mark.parametrize("size", ["abc", "1.5", [16], {"x": 1}, True])
def test_int64_garbage_is_400(api, size):
    r = api.generate(uniq("int64bad"), "MAC", size)
    assert r.status == 400, r


def test_absent_and_null_fields_are_defaults(api, aes_key):
    name, key = aes_key
    r = api.post("/REST/v1/symmetric/encrypt", {"keyName": name, "algorithm": "AES/GCM/NoPadding"})
    assert r.status == 200, f"absent input must mean empty input: {r!r}"
    ct = b64d(r.json["output"])
    assert len(ct) == 28
    r = api.post("/REST/v1/symmetric/decrypt", {"keyName": name, "algorithm": "AES/GCM/NoPadding",
                                                "input": b64e(ct)})
    assert r.status == 200, r
    # empty output: either "" or the field omitted (proto3 default)
    assert r.json.get("output", "") == "", r
    r = api.post("/REST/v1/symmetric/encrypt",
                 {"keyName": name, "algorithm": "AES/GCM/NoPadding", "input": None})
    assert r.status == 200, f"null means default in proto3 JSON: {r!r}"


@pytest.mark.parametrize("path,extra", [
    ("/REST/v1/symmetric/encrypt", {"algorithm": "AES/GCM/NoPadding", "input": ""}),
    ("/REST/v1/hmac/create", {"algorithm": "SHA256", "input": ""}),
    ("/REST/v1/admin/listkeys", {}),
    ("/REST/v1/admin/generatekey", {"keyType": "MAC", "keySize": 16}),
])
def test_unknown_field_is_400_naming_it(api, main_node, aes_key, path, extra):
    body = {"keyName": aes_key[0], **extra, "inptu_typo_field": "eA=="}
    if "/admin/" in path:
        body["adminPassword"] = main_node.password
        if "listkeys" in path:
            body.pop("keyName")
    r = api.post(path, body)
    assert r.status == 400, r
    assert "inptu_typo_field" in r.error(), f"error must name the unknown field: {r!r}"


def test_unknown_field_rejected_before_side_effects(api, main_node):
    name = uniq("typo")
    r = api.post("/REST/v1/admin/generatekey", {"adminPassword": main_node.password, "keyName": name,
                                                "keyType": "MAC", "keySize": 16, "keySzie": 32})
    assert r.status == 400 and "keySzie" in r.error(), r
    assert api.admin("listkeys", keyName=name, keyType="MAC").status == 404


@pytest.mark.parametrize("raw", [b"{", b"not json", b"{\"keyName\": }", b"[]", b"\"str\"", b"42",
                                 b"", b"{\"keyName\": 5, \"algorithm\": \"SHA256\"}",
                                 b"{\"keyName\": \"a\"} trailing"])
def test_malformed_json_is_400(api, raw):
    r = api.post_raw("/REST/v1/hmac/create", raw)
    assert r.status == 400, r
    r.error()


def test_error_body_and_content_type(api):
    r = api.post_raw("/REST/v1/hmac/create", b"{")
    assert r.status == 400
    r.error()
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    r = api.op("hmac/create", keyName=uniq("nokey"), algorithm="SHA256", input=b"x")
    assert r.status == 404 and r.headers.get("Content-Type", "").startswith("application/json")
    r.error()


def test_success_content_type(api, aes_key):
    r = api.op("symmetric/encrypt", keyName=aes_key[0], algorithm="AES/GCM/NoPadding", input=b"x")
    assert r.status == 200 and r.headers.get("Content-Type", "").startswith("application/json")


def _post_streaming(api, path, body: bytes, chunked: bool):
    """Send headers, then the body in pieces; the server may answer 413 and close
    early, so write errors are ignored and the response is read anyway."""
    api.close()
    api._new_conn()
    conn = api.conn
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", "application/json")
    if chunked:
        conn.putheader("Transfer-Encoding", "chunked")
    else:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    try:
        for i in range(0, len(body), 65536):
            chunk = body[i:i + 65536]
            conn.send((f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") if chunked else chunk)
        if chunked:
            conn.send(b"0\r\n\r\n")
    except OSError:
        pass
    resp = conn.getresponse()
    data = resp.read()
    api.close()
    return resp.status, data


def _big_body(name, n):
    return json.dumps({"keyName": name, "algorithm": "AES/CTR/NoPadding",
                       "input": b64e(os.urandom(n))}).encode()


def test_body_just_under_limit_is_served(api, aes_key):
    pt = os.urandom(760_000)
    body = json.dumps({"keyName": aes_key[0], "algorithm": "AES/CTR/NoPadding",
                       "input": b64e(pt)}).encode()
    assert len(body) < MiB
    r = api.post_raw("/REST/v1/symmetric/encrypt", body)
    assert r.status == 200, r
    assert len(b64d(r.json["output"])) == 16 + len(pt)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_limit_is_413(api, aes_key, chunked):
    body = _big_body(aes_key[0], 800_000)
    assert len(body) > MiB
    status, data = _post_streaming(api, "/REST/v1/symmetric/encrypt", body, chunked)
    assert status == 413, (status, data[:200])
    assert set(json.loads(data)) == {"error"}
    # the server is fine afterwards
    r = api.op("symmetric/encrypt", keyName=aes_key[0], algorithm="AES/GCM/NoPadding", input=b"x")
    assert r.status == 200, r


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_body_over_limit_is_413_over_http2(main_node, pki, aes_key, tmp_path):
    """curl and Go clients negotiate h2: they must get the 413 too."""
    crt, key = pki.client_cert()
    (tmp_path / "body.json").write_bytes(_big_body(aes_key[0], 800_000))
    res = subprocess.run(
        ["curl", "-sS", "--http2", "-o", str(tmp_path / "out"), "-w", "%{http_code} %{http_version}",
         "--cacert", str(main_node.rpc_crt), "--cert", str(crt), "--key", str(key),
         "--resolve", f"VSSM:8080:{main_node.ip}", "-H", "Content-Type: application/json",
         "--data-binary", f"@{tmp_path / 'body.json'}",
         "https://VSSM:8080/REST/v1/symmetric/encrypt"],
        capture_output=True, text=True, timeout=60)
    assert res.stdout == "413 2", f"curl rc={res.returncode} out={res.stdout!r} err={res.stderr.strip()!r}"


def test_unknown_path_and_method(api):
    r = api.post("/REST/v1/symmetric/encrypt-nope", {})
    assert r.status == 404, r
    r = api.post_raw("/REST/v1/symmetric/encrypt", b"", method="GET")
    assert r.status in (404, 405), r
