"""Tests for fake_aws.py: run with `pytest qemu/fake_aws`."""

import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake_aws.py")


# ---------------------------------------------------------------- helpers

def start_fake(state_dir):
    p = subprocess.Popen([sys.executable, FAKE, "--state", str(state_dir), "--control-port", "0"],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.search(r"control=(\d+) api=(\d+)", line)
    assert m, line
    return p, int(m.group(1)), int(m.group(2))


def stop_fake(p):
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 0


def http_req(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data, r


def ctl(port, method, path, obj=None):
    body = json.dumps(obj).encode() if obj is not None else None
    st, data, _ = http_req(port, method, path, body, {"Content-Type": "application/json"} if body else {})
    return st, json.loads(data)


def imds_token(port, ttl="60"):
    st, data, _ = http_req(port, "PUT", "/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": ttl})
    assert st == 200
    return data.decode()


def imds_get(port, path, token):
    st, data, _ = http_req(port, "GET", path, headers={"X-aws-ec2-metadata-token": token})
    return st, data


def sign_v4(creds, region, service, host, body, extra_headers=None, when=None, secret=None):
    """Minimal SigV4 signer (POST /, form body), written from the AWS docs."""
    t = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = t.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    headers = {
        "host": host,
        "content-type": "application/x-www-form-urlencoded; charset=utf-8",
        "x-amz-date": amz_date,
        "x-amz-security-token": creds["Token"],
    }
    headers.update({k.lower(): v for k, v in (extra_headers or {}).items()})
    names = sorted(headers)
    canon = "\n".join([
        "POST", "/", "",
        "".join(f"{n}:{' '.join(str(headers[n]).strip().split())}\n" for n in names),
        ";".join(names),
        hashlib.sha256(body).hexdigest(),
    ])
    scope = f"{date}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canon.encode()).hexdigest()])
    k = ("AWS4" + (secret or creds["SecretAccessKey"])).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={creds['AccessKeyId']}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={sig}")
    return headers


def api_call(api_port, creds, service, params, region="eu-west-1", host=None, **kw):
    body = urllib.parse.urlencode(params).encode()
    host = host or f"127.0.0.1:{api_port}"
    headers = sign_v4(creds, region, service, host, body, **kw)
    st, data, _ = http_req(api_port, "POST", "/", body, headers)
    return st, ET.fromstring(data)


def strip_ns(root):
    for el in root.iter():
        el.tag = el.tag.split("}")[-1]
    return root


# ---------------------------------------------------------------- fixtures

@pytest.fixture()
def fake(tmp_path):
    p, cport, aport = start_fake(tmp_path)
    yield {"proc": p, "ctl": cport, "api": aport, "dir": tmp_path}
    if p.poll() is None:
        stop_fake(p)


@pytest.fixture()
def inst(fake):
    st, inst = ctl(fake["ctl"], "POST", "/instances",
                   {"instanceId": "i-0a1b2c3d4e5f60718", "privateIp": "10.0.1.10"})
    assert st == 200, inst
    return inst


# ---------------------------------------------------------------- tests

def test_ca_files_and_reuse(tmp_path):
    p, cport, _ = start_fake(tmp_path)
    _, ca = ctl(cport, "GET", "/ca")
    stop_fake(p)
    for f in ("ca.crt", "ca.der", "ca.key"):
        assert (tmp_path / f).exists()
    assert base64.b64decode(ca["der"]) == (tmp_path / "ca.der").read_bytes()
    subj = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "ca.crt"), "-noout", "-subject"],
                          capture_output=True, text=True, check=True).stdout
    assert "O = Amazon Web Services LLC" in subj and "ST = Washington State" in subj
    p, cport, _ = start_fake(tmp_path)
    _, ca2 = ctl(cport, "GET", "/ca")
    stop_fake(p)
    assert ca2["der"] == ca["der"]


def test_imdsv2_walk(fake, inst):
    port = inst["imdsPort"]
    # no token -> 401; bad TTL -> 400; X-Forwarded-For -> 403
    assert imds_get(port, "/latest/meta-data/instance-id", "")[0] == 401
    assert imds_get(port, "/latest/meta-data/instance-id", "bogus")[0] == 401
    assert http_req(port, "GET", "/latest/meta-data/instance-id")[0] == 401
    assert http_req(port, "PUT", "/latest/api/token")[0] == 400
    for bad in ("0", "21601", "x"):
        assert http_req(port, "PUT", "/latest/api/token",
                        headers={"X-aws-ec2-metadata-token-ttl-seconds": bad})[0] == 400
    assert http_req(port, "PUT", "/latest/api/token", headers={
        "X-aws-ec2-metadata-token-ttl-seconds": "60", "X-Forwarded-For": "1.2.3.4"})[0] == 403
    tok = imds_token(port)
    assert http_req(port, "GET", "/latest/meta-data/instance-id", headers={
        "X-aws-ec2-metadata-token": tok, "X-Forwarded-For": "1.2.3.4"})[0] == 403
    assert imds_get(port, "/latest/meta-data/instance-id", tok) == (200, inst["instanceId"].encode())
    assert imds_get(port, "/latest/meta-data/local-ipv4", tok) == (200, b"10.0.1.10")
    assert imds_get(port, "/latest/user-data", tok)[0] == 404
    assert imds_get(port, "/latest/nope", tok)[0] == 404

    st, doc = imds_get(port, "/latest/dynamic/instance-identity/document", tok)
    assert st == 200
    d = json.loads(doc)
    genuine = str(Path(__file__).resolve().parents[2] / "testdata/aws-iid/genuine-ap-southeast-2.document.json")
    if os.path.exists(genuine):
        with open(genuine) as f:
            assert list(d) == list(json.load(f))
    assert d["accountId"] == "123456789012" and d["region"] == "eu-west-1"
    assert d["imageId"] == "ami-0123456789abcdef0" and d["privateIp"] == "10.0.1.10"
    assert doc.startswith(b'{\n  "accountId" : "123456789012",\n') and doc.endswith(b'"\n}')

    # a token of another instance is not valid here
    st, other = ctl(fake["ctl"], "POST", "/instances", {"privateIp": "10.0.1.11", "userData": "hello"})
    assert imds_get(port, "/latest/meta-data/instance-id", imds_token(other["imdsPort"]))[0] == 401
    assert imds_get(other["imdsPort"], "/latest/user-data", imds_token(other["imdsPort"])) == (200, b"hello")

    role = imds_get(port, "/latest/meta-data/iam/security-credentials/", tok)[1].decode()
    assert role == "vssm-node"
    st, cj = imds_get(port, f"/latest/meta-data/iam/security-credentials/{role}", tok)
    creds = json.loads(cj)
    assert creds["Code"] == "Success" and creds["AccessKeyId"].startswith("ASIA")
    assert creds["AccessKeyId"] == inst["credentials"]["AccessKeyId"]
    assert set(creds) >= {"SecretAccessKey", "Token", "Expiration"}

    # PATCH user data and lifecycle
    st, p = ctl(fake["ctl"], "PATCH", f"/instances/{inst['instanceId']}", {"userData": "ud", "lifecycleState": "Pending"})
    assert st == 200 and p["lifecycleState"] == "Pending"
    assert imds_get(port, "/latest/user-data", tok) == (200, b"ud")


def _rsa2048(fake, inst):
    port = inst["imdsPort"]
    tok = imds_token(port)
    doc = imds_get(port, "/latest/dynamic/instance-identity/document", tok)[1]
    blob = base64.b64decode(imds_get(port, "/latest/dynamic/instance-identity/rsa2048", tok)[1])
    return doc, blob


def test_rsa2048_openssl(fake, inst, tmp_path):
    doc, blob = _rsa2048(fake, inst)
    (tmp_path / "p7.der").write_bytes(blob)
    ca = str(fake["dir"] / "ca.crt")
    printed = subprocess.run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", str(tmp_path / "p7.der")],
                             capture_output=True, text=True, check=True).stdout
    assert re.search(r"certificates:\s*<ABSENT>", printed)
    attrs = re.findall(r"object: (\S+) \(", printed)
    assert attrs == ["contentType", "signingTime", "messageDigest"], attrs
    assert "sha256" in printed and "issuerAndSerialNumber" in printed
    out = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "p7.der"),
                          "-CAfile", ca, "-certfile", ca], capture_output=True, check=True).stdout
    assert out == doc


def test_rsa2048_manual(fake, inst):
    """Verify without openssl: minimal DER walk + cryptography."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    doc, blob = _rsa2048(fake, inst)

    def tlv(b, i):
        tag = b[i]; i += 1
        ln = b[i]; i += 1
        if ln & 0x80:
            n = ln & 0x7F
            ln = int.from_bytes(b[i:i + n], "big"); i += n
        return tag, i, i + ln  # tag, content start, end

    def children(b, s, e):
        out = []
        while s < e:
            t, cs, ce = tlv(b, s)
            out.append((t, s, cs, ce))
            s = ce
        return out

    _, cs, ce = tlv(blob, 0)                      # ContentInfo
    ci = children(blob, cs, ce)
    _, _, cs, ce = ci[1]                          # [0] explicit
    _, cs, ce = tlv(blob, cs)                     # SignedData
    sd = children(blob, cs, ce)
    assert not any(t == 0xA0 for t, *_ in sd[3:-1]), "certificates embedded"
    encap = children(blob, sd[2][2], sd[2][3])
    _, _, ocs, oce = encap[1]
    _, ecs, ece = tlv(blob, ocs)
    assert blob[ecs:ece] == doc
    signer = children(blob, *children(blob, sd[-1][2], sd[-1][3])[0][2:4])
    attrs = next(x for x in signer if x[0] == 0xA0)
    sig = next(x for x in signer if x[0] == 0x04)
    signed_attrs = b"\x31" + blob[attrs[1] + 1:attrs[3]]  # [0] IMPLICIT -> SET OF
    assert hashlib.sha256(doc).digest() in signed_attrs   # messageDigest attribute
    cert = x509.load_der_x509_certificate((fake["dir"] / "ca.der").read_bytes())
    cert.public_key().verify(blob[sig[2]:sig[3]], signed_attrs, padding.PKCS1v15(), hashes.SHA256())


def test_sign_endpoint(fake, tmp_path):
    doc = '{\n  "imageId" : "ami-0ffffffffffffffff"\n}'
    st, r = ctl(fake["ctl"], "POST", "/sign", {"document": doc})
    assert st == 200
    (tmp_path / "s.der").write_bytes(base64.b64decode(r["signature"]))
    ca = str(fake["dir"] / "ca.crt")
    out = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "s.der"),
                          "-CAfile", ca, "-certfile", ca], capture_output=True, check=True).stdout
    assert out == doc.encode()


def test_apis(fake, inst):
    creds, api = inst["credentials"], fake["api"]
    ctl(fake["ctl"], "POST", "/instances", {"instanceId": "i-0b1b2c3d4e5f60718", "privateIp": "10.0.1.12",
                                            "lifecycleState": "Pending"})
    ctl(fake["ctl"], "POST", "/instances", {"instanceId": "i-0c1b2c3d4e5f60718", "privateIp": "10.9.9.9",
                                            "accountId": "999999999999"})

    st, x = api_call(api, creds, "autoscaling", {"Action": "DescribeAutoScalingGroups", "Version": "2011-01-01",
                                                 "AutoScalingGroupNames.member.1": "vssm-asg"})
    assert st == 200 and x.tag == "{http://autoscaling.amazonaws.com/doc/2011-01-01/}DescribeAutoScalingGroupsResponse"
    x = strip_ns(x)
    members = x.findall("./DescribeAutoScalingGroupsResult/AutoScalingGroups/member/Instances/member")
    got = {m.findtext("InstanceId"): m.findtext("LifecycleState") for m in members}
    assert got == {"i-0a1b2c3d4e5f60718": "InService", "i-0b1b2c3d4e5f60718": "Pending"}  # not the other account's
    assert members[0].findtext("HealthStatus") == "Healthy" and members[0].findtext("AvailabilityZone") == "eu-west-1a"

    st, x = api_call(api, creds, "autoscaling", {"Action": "DescribeAutoScalingInstances", "Version": "2011-01-01",
                                                 "InstanceIds.member.1": "i-0b1b2c3d4e5f60718"})
    x = strip_ns(x)
    m = x.findall("./DescribeAutoScalingInstancesResult/AutoScalingInstances/member")
    assert st == 200 and len(m) == 1
    assert m[0].findtext("AutoScalingGroupName") == "vssm-asg" and m[0].findtext("LifecycleState") == "Pending"

    st, x = api_call(api, creds, "ec2", {"Action": "DescribeInstances", "Version": "2016-11-15",
                                         "InstanceId.1": "i-0a1b2c3d4e5f60718"})
    assert st == 200 and x.tag == "{http://ec2.amazonaws.com/doc/2016-11-15/}DescribeInstancesResponse"
    it = strip_ns(x).find("./reservationSet/item/instancesSet/item")
    assert it.findtext("instanceId") == "i-0a1b2c3d4e5f60718" and it.findtext("imageId") == "ami-0123456789abcdef0"
    assert it.findtext("privateIpAddress") == "10.0.1.10" and it.findtext("instanceState/name") == "running"
    st, x = api_call(api, creds, "ec2", {"Action": "DescribeInstances", "Version": "2016-11-15",
                                         "InstanceId.1": "i-0c1b2c3d4e5f60718"})
    assert st == 400 and strip_ns(x).findtext("./Errors/Error/Code") == "InvalidInstanceID.NotFound"

    # GetCallerIdentity as forwarded by a peer: signed for the real STS host,
    # with an extra signed challenge header.
    st, x = api_call(api, creds, "sts", {"Action": "GetCallerIdentity", "Version": "2011-06-15"},
                     host="sts.eu-west-1.amazonaws.com", extra_headers={"X-Vssm-Challenge": "  abc   def "})
    assert st == 200, ET.tostring(x)
    assert x.tag == "{https://sts.amazonaws.com/doc/2011-06-15/}GetCallerIdentityResponse"
    r = strip_ns(x).find("GetCallerIdentityResult")
    assert r.findtext("Arn") == "arn:aws:sts::123456789012:assumed-role/vssm-node/i-0a1b2c3d4e5f60718"
    assert r.findtext("Account") == "123456789012"
    assert re.fullmatch(r"AROA[A-Z2-7]{17}:i-0a1b2c3d4e5f60718", r.findtext("UserId"))

    _, log = ctl(fake["ctl"], "GET", "/requests?kind=api&action=GetCallerIdentity")
    assert log["requests"][-1]["caller"] == "i-0a1b2c3d4e5f60718"
    assert "x-vssm-challenge" in log["requests"][-1]["signedHeaders"]


def test_refusals(fake, inst):
    creds, api = inst["credentials"], fake["api"]
    gci = {"Action": "GetCallerIdentity", "Version": "2011-06-15"}

    def code(x):
        x = strip_ns(x)
        return x.findtext("./Error/Code") or x.findtext("./Errors/Error/Code")

    st, x = api_call(api, creds, "sts", gci, secret="wrong")
    assert (st, code(x)) == (403, "SignatureDoesNotMatch")
    st, x = api_call(api, dict(creds, AccessKeyId="ASIAXXXXXXXXXXXXXXXX"), "sts", gci)
    assert (st, code(x)) == (403, "InvalidClientTokenId")
    st, x = api_call(api, dict(creds, Token="nope"), "sts", gci)
    assert (st, code(x)) == (403, "InvalidClientTokenId")
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=16)
    st, x = api_call(api, creds, "sts", gci, when=old)
    assert (st, code(x)) == (403, "SignatureDoesNotMatch")
    st, x = api_call(api, creds, "autoscaling", gci)  # scoped to the wrong service
    assert (st, code(x)) == (403, "SignatureDoesNotMatch")
    st, x = api_call(api, creds, "ec2", {"Action": "DescribeInstances", "Version": "2016-11-15"}, secret="x")
    assert (st, code(x)) == (403, "SignatureDoesNotMatch")
    # tampering with a signed header after signing
    body = urllib.parse.urlencode(gci).encode()
    h = sign_v4(creds, "eu-west-1", "sts", "sts.amazonaws.com", body, extra_headers={"x-vssm-challenge": "a"})
    h["x-vssm-challenge"] = "b"
    st, data, _ = http_req(api, "POST", "/", body, h)
    assert st == 403 and b"SignatureDoesNotMatch" in data
    # region mismatch with a real-looking host
    h = sign_v4(creds, "eu-west-1", "sts", "sts.amazonaws.com", body)
    assert http_req(api, "POST", "/", body, h)[0] == 403
    h = sign_v4(creds, "us-east-1", "sts", "sts.amazonaws.com", body)
    assert http_req(api, "POST", "/", body, h)[0] == 200
    # deleted instance: its credentials die with it
    ctl(fake["ctl"], "DELETE", f"/instances/{inst['instanceId']}")
    st, x = api_call(api, creds, "sts", gci)
    assert (st, code(x)) == (403, "InvalidClientTokenId")
    for _ in range(50):  # its IMDS listener goes away
        try:
            http_req(inst["imdsPort"], "PUT", "/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "1"})
        except OSError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("IMDS listener of a deleted instance still answers")


def test_pagination(fake, inst):
    creds, api = inst["credentials"], fake["api"]
    for n in range(5):
        ctl(fake["ctl"], "POST", "/instances", {"privateIp": f"10.0.2.{n}", "groupName": f"g{n % 3}"})
    ids, token = [], None
    while True:
        p = {"Action": "DescribeInstances", "Version": "2016-11-15", "MaxResults": "5"}
        if token:
            p["NextToken"] = token
        st, x = api_call(api, creds, "ec2", p)
        x = strip_ns(x)
        assert st == 200
        ids += [e.text for e in x.findall("./reservationSet/item/instancesSet/item/instanceId")]
        token = x.findtext("nextToken")
        if not token:
            break
    assert len(ids) == 6 == len(set(ids))

    ctl(fake["ctl"], "PUT", "/config", {"pageSize": {"DescribeAutoScalingGroups": 1}})
    names, token, pages = [], None, 0
    while True:
        p = {"Action": "DescribeAutoScalingGroups", "Version": "2011-01-01"}
        if token:
            p["NextToken"] = token
        st, x = api_call(api, creds, "autoscaling", p)
        x = strip_ns(x)
        pages += 1
        names += [e.text for e in x.findall(".//AutoScalingGroups/member/AutoScalingGroupName")]
        token = x.findtext("./DescribeAutoScalingGroupsResult/NextToken")
        if not token:
            break
    assert names == ["g0", "g1", "g2", "vssm-asg"] and pages == 4


def test_imds_stdio(fake, inst):
    def one(req: bytes) -> bytes:
        p = subprocess.run([sys.executable, FAKE, "--imds-stdio", inst["instanceId"], "--state", str(fake["dir"])],
                           input=req, capture_output=True, timeout=20)
        assert p.stderr == b""
        return p.stdout

    out = one(b"PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\n"
              b"X-aws-ec2-metadata-token-ttl-seconds: 30\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200")
    tok = out.split(b"\r\n\r\n", 1)[1]
    # two requests on one connection (keep-alive), token from the other process
    out = one(b"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\nX-aws-ec2-metadata-token: " + tok +
              b"\r\n\r\nGET /latest/dynamic/instance-identity/document HTTP/1.1\r\nHost: x\r\n"
              b"X-aws-ec2-metadata-token: " + tok + b"\r\nConnection: close\r\n\r\n")
    assert out.count(b"HTTP/1.1 200") == 2 and inst["instanceId"].encode() in out and b'"privateIp" : "10.0.1.10"' in out
    out = one(b"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 401")


def test_control_errors(fake, inst):
    assert ctl(fake["ctl"], "POST", "/instances", {"privateIp": "nope"})[0] == 400
    assert ctl(fake["ctl"], "POST", "/instances", {"instanceId": inst["instanceId"], "privateIp": "10.0.0.1"})[0] == 409
    assert ctl(fake["ctl"], "PATCH", "/instances/i-0000000000000000f", {"lifecycleState": "x"})[0] == 404
    assert ctl(fake["ctl"], "DELETE", "/instances/i-0000000000000000f")[0] == 404
    st, lst = ctl(fake["ctl"], "GET", "/instances")
    assert st == 200 and [i["instanceId"] for i in lst["instances"]] == [inst["instanceId"]]


def test_imds_stdio_path_loads_no_third_party_module():
    """qemu starts one --imds-stdio process per guest connection: the package
    and the IMDS code must not pull in `cryptography` (slow to import)."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import fake_aws.server, fake_aws.imds; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cryptography', 'cffi')))")
    p = subprocess.run([sys.executable, "-c", code, os.path.dirname(HERE)], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"
