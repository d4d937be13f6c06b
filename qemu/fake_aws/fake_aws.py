#!/usr/bin/env python3
"""fake_aws: a small fake of the AWS pieces VSSM's cluster attestation uses.

One process serves:
  * a control API (JSON over HTTP, 127.0.0.1:--control-port) to create, change
    and delete fake instances, sign arbitrary documents, read the request log;
  * one IMDSv2 listener per instance (127.0.0.1 on a fresh port by default);
  * the AWS query APIs autoscaling / ec2 / sts on --api-port, with SigV4
    verification against the temporary credentials handed out over IMDS.

`--imds-stdio ID` speaks IMDS for instance ID over stdin/stdout for one
connection (qemu guestfwd ... -cmd:), reading DIR/state.json.

Standard library + `cryptography` only. See README.md next to this file.
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime
import hashlib
import hmac
import http.server
import ipaddress
import json
import os
import posixpath
import re
import secrets
import signal
import socket
import string
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from xml.sax.saxutils import escape as _xml_escape

# --------------------------------------------------------------------------
# constants

STATE_FILE = "state.json"
TOKEN_KEY_FILE = "imds-token.key"
IMDS_STDIO_LOG = "imds-stdio.log"
IMDS_STDIO_REQUESTS = "imds-stdio-requests.jsonl"

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "eu-west-1"
DEFAULT_IMAGE = "ami-0123456789abcdef0"
DEFAULT_GROUP = "vssm-asg"
DEFAULT_ROLE = "vssm-node"
DEFAULT_INSTANCE_TYPE = "t3.small"
DEFAULT_ARCH = "x86_64"
DEFAULT_CRED_TTL = 6 * 3600

MAX_SKEW = 15 * 60  # SigV4: signing time must be within 15 minutes

# field order of the genuine document (testdata/aws-iid/genuine-*.document.json)
DOC_FIELDS = [
    "accountId", "architecture", "availabilityZone", "billingProducts",
    "devpayProductCodes", "marketplaceProductCodes", "imageId", "instanceId",
    "instanceType", "kernelId", "pendingTime", "privateIp", "ramdiskId",
    "region", "version",
]

ACTIONS = {
    "DescribeAutoScalingGroups": "autoscaling",
    "DescribeAutoScalingInstances": "autoscaling",
    "DescribeInstances": "ec2",
    "GetCallerIdentity": "sts",
}
API_VERSIONS = {"autoscaling": "2011-01-01", "ec2": "2016-11-15", "sts": "2011-06-15"}
NAMESPACES = {
    "autoscaling": "http://autoscaling.amazonaws.com/doc/2011-01-01/",
    "ec2": "http://ec2.amazonaws.com/doc/2016-11-15/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}
EC2_STATE_CODES = {
    "pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
    "stopping": 64, "stopped": 80,
}
INSTANCE_ID_RE = re.compile(r"^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$")


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def iso(dt: datetime.datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(dt: datetime.datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_iso(s: str) -> datetime.datetime:
    return datetime.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)


def atomic_write(path: str, data: bytes, mode: int = 0o600) -> None:
    tmp = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def xml(s) -> str:
    return _xml_escape("" if s is None else str(s))


def rand_upper(n: int) -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def b64wrap(data: bytes, width: int = 64) -> str:
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i + width] for i in range(0, len(s), width))


# --------------------------------------------------------------------------
# test CA (plays AWS's regional identity-signing certificate)

class TestCA:
    def __init__(self, state_dir: str):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.crt_path = os.path.join(state_dir, "ca.crt")
        self.der_path = os.path.join(state_dir, "ca.der")
        self.key_path = os.path.join(state_dir, "ca.key")
        if os.path.exists(self.crt_path) and os.path.exists(self.key_path):
            with open(self.crt_path, "rb") as f:
                self.cert = x509.load_pem_x509_certificate(f.read())
            with open(self.key_path, "rb") as f:
                self.key = serialization.load_pem_private_key(f.read(), password=None)
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            name = x509.Name([
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Washington State"),
                x509.NameAttribute(NameOID.LOCALITY_NAME, "Seattle"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Amazon Web Services LLC"),
            ])
            serial = secrets.randbits(63) | (1 << 63)  # 64-bit like AWS's
            pub = self.key.public_key()
            ski = x509.SubjectKeyIdentifier.from_public_key(pub)
            now = utcnow()
            # Same shape as AWS's regional certs: v3, KU digitalSignature,
            # SKI, AKI (keyid + issuer + serial), BC critical CA:TRUE pathlen 0.
            self.cert = (
                x509.CertificateBuilder()
                .subject_name(name).issuer_name(name).public_key(pub)
                .serial_number(serial)
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(datetime.datetime(2195, 4, 3, 9, 0, 57, tzinfo=datetime.timezone.utc))
                .add_extension(x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False), critical=False)
                .add_extension(ski, critical=False)
                .add_extension(x509.AuthorityKeyIdentifier(
                    key_identifier=ski.digest,
                    authority_cert_issuer=[x509.DirectoryName(name)],
                    authority_cert_serial_number=serial), critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .sign(self.key, hashes.SHA256())
            )
            atomic_write(self.key_path, self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
            atomic_write(self.crt_path, self.cert.public_bytes(serialization.Encoding.PEM), 0o644)
        from cryptography.hazmat.primitives import serialization as _s
        self.der = self.cert.public_bytes(_s.Encoding.DER)
        self.pem = self.cert.public_bytes(_s.Encoding.PEM).decode()
        if not os.path.exists(self.der_path):
            atomic_write(self.der_path, self.der, 0o644)

    def sign(self, document: bytes) -> bytes:
        """PKCS#7 SignedData (DER): SHA-256/RSA, document attached, no certs,
        signed attrs contentType, signingTime, messageDigest.

        Binary: no MIME CRLF translation (the signed bytes are the document's
        exact bytes). NoCapabilities: no S/MIME capabilities attribute."""
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.serialization import pkcs7
        opts = [pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.NoCerts,
                pkcs7.PKCS7Options.NoCapabilities]
        return (pkcs7.PKCS7SignatureBuilder().set_data(document)
                .add_signer(self.cert, self.key, hashes.SHA256())
                .sign(serialization.Encoding.DER, opts))


# --------------------------------------------------------------------------
# instance identity document

def identity_document(inst: dict) -> bytes:
    """The document, pretty-printed exactly like AWS's (`"k" : v`, two-space
    indent, no trailing newline)."""
    if inst.get("identityDocument") is not None:
        return inst["identityDocument"].encode()
    values = {
        "accountId": inst["accountId"],
        "architecture": inst["architecture"],
        "availabilityZone": inst["availabilityZone"],
        "billingProducts": None,
        "devpayProductCodes": None,
        "marketplaceProductCodes": None,
        "imageId": inst["imageId"],
        "instanceId": inst["instanceId"],
        "instanceType": inst["instanceType"],
        "kernelId": None,
        "pendingTime": inst["pendingTime"],
        "privateIp": inst["privateIp"],
        "ramdiskId": None,
        "region": inst["region"],
        "version": "2017-09-30",
    }
    lines = [f'  "{k}" : {json.dumps(values[k])}' for k in DOC_FIELDS]
    return ("{\n" + ",\n".join(lines) + "\n}").encode()


def aws_pretty_json(obj: dict) -> str:
    """IMDS's JSON style for credentials: `"k" : v`, two-space indent."""
    return "{\n" + ",\n".join(f'  "{k}" : {json.dumps(v)}' for k, v in obj.items()) + "\n}"


# --------------------------------------------------------------------------
# IMDSv2 tokens: stateless HMAC tokens bound to the instance, so the
# per-connection --imds-stdio processes accept tokens minted by each other.

class TokenMinter:
    def __init__(self, state_dir: str, create: bool):
        path = os.path.join(state_dir, TOKEN_KEY_FILE)
        if create and not os.path.exists(path):
            atomic_write(path, secrets.token_bytes(32))
        with open(path, "rb") as f:
            self.key = f.read()

    def _mac(self, iid: str, nonce: bytes, exp: bytes) -> bytes:
        return hmac.new(self.key, b"imds-token\0" + iid.encode() + b"\0" + nonce + exp,
                        hashlib.sha256).digest()[:24]

    def mint(self, iid: str, ttl: int) -> str:
        nonce = secrets.token_bytes(16)
        exp = int(time.time() + ttl).to_bytes(8, "big")
        return base64.urlsafe_b64encode(nonce + exp + self._mac(iid, nonce, exp)).decode()

    def valid(self, iid: str, token: str) -> bool:
        try:
            raw = base64.urlsafe_b64decode(token.encode())
        except Exception:
            return False
        if len(raw) != 48:
            return False
        nonce, exp, mac = raw[:16], raw[16:24], raw[24:]
        if not hmac.compare_digest(mac, self._mac(iid, nonce, exp)):
            return False
        return int.from_bytes(exp, "big") > time.time()


# --------------------------------------------------------------------------
# IMDS request handling (shared by the listeners and --imds-stdio)

def imds_response(inst: dict | None, iid: str, minter: TokenMinter, method: str,
                  path: str, headers) -> tuple[int, str, dict]:
    """Returns (status, body, extra headers) for one IMDS request."""
    path = urllib.parse.urlsplit(path).path
    if method not in ("GET", "PUT", "HEAD"):
        return 405, "", {"Allow": "GET, PUT"}
    if headers.get("X-Forwarded-For") is not None:
        return 403, "Forbidden", {}
    if method == "PUT":
        if path != "/latest/api/token":
            return 405, "", {"Allow": "GET"}
        ttl = headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        if ttl is None:
            return 400, "Bad Request", {}
        try:
            ttl_i = int(ttl.strip())
        except ValueError:
            return 400, "Bad Request", {}
        if not 1 <= ttl_i <= 21600:
            return 400, "Bad Request", {}
        return 200, minter.mint(iid, ttl_i), {"X-aws-ec2-metadata-token-ttl-seconds": str(ttl_i)}
    token = headers.get("X-aws-ec2-metadata-token")
    if token is None or not minter.valid(iid, token.strip()):
        return 401, "Unauthorized", {}
    if inst is None:
        return 404, "Not Found", {}
    body = imds_get(inst, path)
    if body is None:
        return 404, "Not Found", {}
    return 200, body, {}


def imds_get(inst: dict, path: str) -> str | None:
    role = inst.get("roleName")
    creds = inst.get("credentials")
    ud = inst.get("userData")
    az = inst["availabilityZone"]
    host = "ip-" + inst["privateIp"].replace(".", "-") + f".{inst['region']}.compute.internal"
    tree = {
        "/latest/": "dynamic/\nmeta-data/" + ("\nuser-data" if ud is not None else ""),
        "/latest/dynamic/": "instance-identity/",
        "/latest/dynamic/instance-identity/": "document\nrsa2048",
        "/latest/dynamic/instance-identity/document": identity_document(inst).decode(),
        "/latest/dynamic/instance-identity/rsa2048": b64wrap(base64.b64decode(inst["rsa2048"])),
        "/latest/meta-data/": "ami-id\nhostname\n" + ("iam/\n" if role else "")
        + "instance-id\ninstance-type\nlocal-hostname\nlocal-ipv4\nplacement/",
        "/latest/meta-data/ami-id": inst["imageId"],
        "/latest/meta-data/hostname": host,
        "/latest/meta-data/local-hostname": host,
        "/latest/meta-data/instance-id": inst["instanceId"],
        "/latest/meta-data/instance-type": inst["instanceType"],
        "/latest/meta-data/local-ipv4": inst["privateIp"],
        "/latest/meta-data/placement/": "availability-zone\nregion",
        "/latest/meta-data/placement/availability-zone": az,
        "/latest/meta-data/placement/region": inst["region"],
    }
    if ud is not None:
        tree["/latest/user-data"] = ud
    if role and creds:
        tree["/latest/meta-data/iam/"] = "info\nsecurity-credentials/"
        tree["/latest/meta-data/iam/info"] = aws_pretty_json({
            "Code": "Success",
            "LastUpdated": creds["LastUpdated"],
            "InstanceProfileArn": f"arn:aws:iam::{inst['accountId']}:instance-profile/{role}",
            "InstanceProfileId": "AIPA" + role_id(inst["accountId"], role)[4:],
        })
        tree["/latest/meta-data/iam/security-credentials/"] = role
        tree[f"/latest/meta-data/iam/security-credentials/{role}"] = aws_pretty_json({
            "Code": "Success",
            "LastUpdated": creds["LastUpdated"],
            "Type": "AWS-HMAC",
            "AccessKeyId": creds["AccessKeyId"],
            "SecretAccessKey": creds["SecretAccessKey"],
            "Token": creds["Token"],
            "Expiration": creds["Expiration"],
        })
    if path in tree:
        return tree[path]
    # directories are also served without the trailing slash
    if not path.endswith("/") and path + "/" in tree:
        return tree[path + "/"]
    return None


def role_id(account: str, role: str) -> str:
    h = hashlib.sha256(f"{account}/{role}".encode()).digest()
    alphabet = string.ascii_uppercase + "234567"
    return "AROA" + "".join(alphabet[b % 32] for b in h[:17])


class IMDSHandler(http.server.BaseHTTPRequestHandler):
    """Per-instance IMDS. Subclasses set `instance_id` and `lookup`."""
    protocol_version = "HTTP/1.1"
    server_version = "EC2ws"

    def version_string(self):
        return self.server_version
    instance_id = ""
    minter: TokenMinter
    lookup = staticmethod(lambda iid: None)
    record = staticmethod(lambda entry: None)

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        inst = self.lookup(self.instance_id)
        status, body, extra = imds_response(inst, self.instance_id, self.minter,
                                            self.command, self.path, self.headers)
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.record({"kind": "imds", "instanceId": self.instance_id, "method": self.command,
                     "path": self.path, "status": status})

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = do_PATCH = _serve

    def log_message(self, fmt, *args):
        pass


# --------------------------------------------------------------------------
# SigV4 (independent implementation, per the AWS General Reference)

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-_.~")


def uri_encode(s: str, encode_slash: bool = True) -> str:
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        if c in _UNRESERVED or (c == "/" and not encode_slash):
            out.append(c)
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def canonical_uri(raw_path: str) -> str:
    """Non-S3 services: normalized path, each segment URI-encoded again (the
    path as received is already encoded once, so this is the double encoding)."""
    if not raw_path:
        return "/"
    norm = posixpath.normpath(raw_path)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    if raw_path.endswith("/") and norm != "/":
        norm += "/"
    return "/".join(uri_encode(seg) for seg in norm.split("/"))


def canonical_query(raw_query: str) -> str:
    pairs = []
    if raw_query:
        for part in raw_query.split("&"):
            if not part:
                continue
            k, _, v = part.partition("=")
            pairs.append((uri_encode(urllib.parse.unquote(k)), uri_encode(urllib.parse.unquote(v))))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_header_value(values: list[str]) -> str:
    return ",".join(" ".join(v.strip().split()) for v in values)


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    k = hmac.new(k, region.encode(), hashlib.sha256).digest()
    k = hmac.new(k, service.encode(), hashlib.sha256).digest()
    return hmac.new(k, b"aws4_request", hashlib.sha256).digest()


def sigv4_canonical(method: str, raw_path: str, raw_query: str, header_lookup, signed: list[str],
                    body: bytes) -> str:
    lines = [method, canonical_uri(raw_path), canonical_query(raw_query)]
    hdrs = "".join(f"{h}:{canonical_header_value(header_lookup(h))}\n" for h in signed)
    return "\n".join(lines) + "\n" + hdrs + "\n" + ";".join(signed) + "\n" + hashlib.sha256(body).hexdigest()


class Conflict(Exception):
    pass


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, sender: bool = True, debug: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.sender = status, code, message, sender
        self.debug = debug or {}


# --------------------------------------------------------------------------
# the fake

class Fake:
    def __init__(self, state_dir: str, reset: bool = False):
        self.dir = os.path.abspath(state_dir)
        os.makedirs(self.dir, exist_ok=True)
        self.lock = threading.RLock()
        self.ca = TestCA(self.dir)
        self.minter = TokenMinter(self.dir, create=True)
        self.instances: dict[str, dict] = {}
        self.groups: dict[str, dict] = {}
        self.config = {"pageSize": {}}
        self.faults: list[dict] = []
        self.log: collections.deque = collections.deque(maxlen=20000)
        self.seq = 0
        self.imds_servers: dict[str, http.server.ThreadingHTTPServer] = {}
        self.ports = {}
        path = os.path.join(self.dir, STATE_FILE)
        if os.path.exists(path) and not reset:
            with open(path) as f:
                st = json.load(f)
            self.instances = st.get("instances", {})
            self.groups = st.get("groups", {})
            self.config = st.get("config", self.config)

    # ---- persistence & log

    def save(self):
        with self.lock:
            data = json.dumps({"version": 1, "ports": self.ports, "instances": self.instances,
                               "groups": self.groups, "config": self.config}, indent=1).encode()
            atomic_write(os.path.join(self.dir, STATE_FILE), data)

    def record(self, entry: dict):
        with self.lock:
            self.seq += 1
            entry = {"seq": self.seq, "time": iso(utcnow()), **entry}
            self.log.append(entry)

    def requests(self) -> list[dict]:
        with self.lock:
            entries = list(self.log)
        path = os.path.join(self.dir, IMDS_STDIO_REQUESTS)
        try:
            with open(path) as f:
                for line in f:
                    try:
                        entries.append(json.loads(line))
                    except ValueError:
                        pass
        except FileNotFoundError:
            pass
        return entries

    def clear_requests(self):
        with self.lock:
            self.log.clear()
        try:
            os.unlink(os.path.join(self.dir, IMDS_STDIO_REQUESTS))
        except FileNotFoundError:
            pass

    # ---- instances

    @staticmethod
    def new_credentials(ttl: int) -> dict:
        now = utcnow()
        return {
            "AccessKeyId": "ASIA" + rand_upper(16),
            "SecretAccessKey": base64.b64encode(secrets.token_bytes(30)).decode(),
            "Token": "IQoJb3JpZ2luX2VjE" + base64.b64encode(secrets.token_bytes(96)).decode(),
            "LastUpdated": iso(now),
            "Expiration": iso(now + datetime.timedelta(seconds=ttl)),
        }

    def ensure_group(self, name: str, account: str, region: str, **kw) -> dict:
        key = f"{account}/{region}/{name}"
        g = self.groups.get(key)
        if g is None:
            g = {"name": name, "accountId": account, "region": region,
                 "createdTime": iso_ms(utcnow()), "uuid": str(uuid.uuid4()),
                 "minSize": 0, "maxSize": 10, "desiredCapacity": None}
            self.groups[key] = g
        for k in ("minSize", "maxSize", "desiredCapacity"):
            if kw.get(k) is not None:
                g[k] = int(kw[k])
        return g

    def resign(self, inst: dict):
        if inst.get("identityRsa2048") is not None:
            inst["rsa2048"] = inst["identityRsa2048"]
        else:
            inst["rsa2048"] = base64.b64encode(self.ca.sign(identity_document(inst))).decode()

    DOC_KEYS = ("privateIp", "imageId", "accountId", "region", "instanceType", "architecture",
                "availabilityZone", "pendingTime", "identityDocument", "identityRsa2048")
    MUTABLE = DOC_KEYS + ("lifecycleState", "healthStatus", "userData", "groupName", "roleName",
                          "state", "credentialsTtlSeconds")

    def _validate(self, inst: dict):
        try:
            ipaddress.IPv4Address(inst["privateIp"])
        except (ValueError, KeyError, TypeError):
            raise ValueError("privateIp must be an IPv4 address")
        if not INSTANCE_ID_RE.match(inst["instanceId"]):
            raise ValueError("instanceId must look like i-0123456789abcdef0")
        if not re.fullmatch(r"\d{12}", inst["accountId"]):
            raise ValueError("accountId must be 12 digits")
        if inst["state"] not in EC2_STATE_CODES:
            raise ValueError(f"state must be one of {sorted(EC2_STATE_CODES)}")
        if inst["userData"] is not None and not isinstance(inst["userData"], str):
            raise ValueError("userData must be a string or null")
        if inst.get("identityRsa2048") is not None:
            base64.b64decode(inst["identityRsa2048"], validate=True)

    def add_instance(self, body: dict) -> dict:
        with self.lock:
            iid = body.get("instanceId") or ("i-" + secrets.token_hex(9)[:17])
            if iid in self.instances:
                raise Conflict(f"instance {iid} exists")
            region = body.get("region") or DEFAULT_REGION
            inst = {
                "instanceId": iid,
                "privateIp": body.get("privateIp"),
                "imageId": body.get("imageId") or DEFAULT_IMAGE,
                "accountId": body.get("accountId") or DEFAULT_ACCOUNT,
                "region": region,
                "availabilityZone": body.get("availabilityZone") or region + "a",
                "instanceType": body.get("instanceType") or DEFAULT_INSTANCE_TYPE,
                "architecture": body.get("architecture") or DEFAULT_ARCH,
                "pendingTime": body.get("pendingTime") or iso(utcnow()),
                "groupName": body.get("groupName", DEFAULT_GROUP),
                "lifecycleState": body.get("lifecycleState") or "InService",
                "healthStatus": body.get("healthStatus") or "Healthy",
                "state": body.get("state") or "running",
                "userData": body.get("userData"),
                "roleName": body.get("roleName", DEFAULT_ROLE),
                "credentialsTtlSeconds": int(body.get("credentialsTtlSeconds") or DEFAULT_CRED_TTL),
                "identityDocument": body.get("identityDocument"),
                "identityRsa2048": body.get("identityRsa2048"),
                "imdsBind": body.get("imdsBind") or "127.0.0.1",
                "imdsPort": int(body.get("imdsPort") or 0),
                "imds": body.get("imds", True),
                "credentials": None,
                "previousCredentials": [],
            }
            self._validate(inst)
            if inst["roleName"]:
                inst["credentials"] = self.new_credentials(inst["credentialsTtlSeconds"])
            self.resign(inst)
            if inst["imds"]:
                self.start_imds(inst)  # raises OSError if the port is taken
            self.instances[iid] = inst
            if inst["groupName"]:
                self.ensure_group(inst["groupName"], inst["accountId"], inst["region"])
            self.save()
            return dict(inst)

    def patch_instance(self, iid: str, body: dict) -> dict:
        with self.lock:
            inst = self.instances.get(iid)
            if inst is None:
                raise LookupError(iid)
            unknown = set(body) - set(self.MUTABLE) - {"rotateCredentials"}
            if unknown:
                raise ValueError(f"unknown or immutable fields: {sorted(unknown)}")
            new = dict(inst)
            new.update({k: body[k] for k in self.MUTABLE if k in body})
            self._validate(new)
            if "roleName" in body and body["roleName"] != inst.get("roleName"):
                new["previousCredentials"] = []
                new["credentials"] = (self.new_credentials(new["credentialsTtlSeconds"])
                                      if new["roleName"] else None)
            elif body.get("rotateCredentials") and new["roleName"]:
                self._rotate(new)
            if any(k in body for k in self.DOC_KEYS):
                self.resign(new)
            if new["groupName"]:
                self.ensure_group(new["groupName"], new["accountId"], new["region"])
            inst.clear()
            inst.update(new)
            self.save()
            return dict(inst)

    def _rotate(self, inst: dict):
        if inst.get("credentials"):
            inst["previousCredentials"] = [inst["credentials"]] + inst.get("previousCredentials", [])[:2]
        inst["credentials"] = self.new_credentials(inst["credentialsTtlSeconds"])

    def delete_instance(self, iid: str):
        with self.lock:
            if iid not in self.instances:
                raise LookupError(iid)
            del self.instances[iid]
            srv = self.imds_servers.pop(iid, None)
            self.save()
        if srv is not None:
            threading.Thread(target=lambda: (srv.shutdown(), srv.server_close()), daemon=True).start()

    def housekeeping(self):
        """Rotate credentials a quarter of their lifetime before expiry (the old
        ones stay valid until they expire, like the real IMDS)."""
        with self.lock:
            changed = False
            now = utcnow()
            for inst in self.instances.values():
                c = inst.get("credentials")
                if c:
                    left = (parse_iso(c["Expiration"]) - now).total_seconds()
                    if left < inst["credentialsTtlSeconds"] / 4:
                        self._rotate(inst)
                        changed = True
                prev = [p for p in inst.get("previousCredentials", []) if parse_iso(p["Expiration"]) > now]
                if prev != inst.get("previousCredentials", []):
                    inst["previousCredentials"] = prev
                    changed = True
            if changed:
                self.save()

    def find_credentials(self, akid: str):
        with self.lock:
            for inst in self.instances.values():
                for c in [inst.get("credentials")] + inst.get("previousCredentials", []):
                    if c and hmac.compare_digest(c["AccessKeyId"], akid):
                        return dict(inst), dict(c)
        return None, None

    def public_view(self, inst: dict) -> dict:
        v = {k: val for k, val in inst.items() if k not in ("rsa2048",)}
        return v

    # ---- IMDS listeners

    def start_imds(self, inst: dict):
        fake = self

        class H(IMDSHandler):
            instance_id = inst["instanceId"]
            minter = fake.minter
            lookup = staticmethod(lambda iid: fake.instances.get(iid))
            record = staticmethod(fake.record)

        srv = ThreadingServer((inst["imdsBind"], inst["imdsPort"]), H)
        inst["imdsPort"] = srv.server_address[1]
        self.imds_servers[inst["instanceId"]] = srv
        threading.Thread(target=srv.serve_forever, name=f"imds-{inst['instanceId']}", daemon=True).start()

    def restart_imds_listeners(self):
        for inst in list(self.instances.values()):
            if inst.get("imds", True):
                try:
                    self.start_imds(inst)
                except OSError as e:
                    print(f"fake_aws: IMDS for {inst['instanceId']} on port {inst['imdsPort']}: {e};"
                          " using a fresh port", file=sys.stderr)
                    inst["imdsPort"] = 0
                    self.start_imds(inst)

    # ---- query API

    def verify_sigv4(self, service: str, method: str, raw_path: str, raw_query: str, headers,
                     body: bytes, host_region: str | None) -> tuple[dict, dict, str]:
        ec2 = service == "ec2"

        def deny_key(msg="The security token included in the request is invalid."):
            if ec2:
                return ApiError(401, "AuthFailure", "AWS was not able to validate the provided access credentials")
            return ApiError(403, "InvalidClientTokenId", msg)

        auth = headers.get("Authorization")
        if auth is None:
            if ec2:
                raise ApiError(401, "MissingAuthenticationToken", "Request is missing Authentication Token")
            raise ApiError(403, "MissingAuthenticationToken", "Request is missing Authentication Token")
        scheme, _, rest = auth.strip().partition(" ")
        if scheme != "AWS4-HMAC-SHA256":
            raise ApiError(400, "IncompleteSignature", f"Unsupported AWS 'algorithm': '{scheme}'")
        comps = {}
        for part in rest.split(","):
            k, eq, v = part.strip().partition("=")
            if eq:
                comps[k] = v
        missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in comps]
        if missing:
            raise ApiError(400, "IncompleteSignature",
                           f"Authorization header requires {', '.join(missing)} parameter(s). Authorization={auth}")
        cred = comps["Credential"].split("/")
        if len(cred) != 5:
            raise ApiError(400, "IncompleteSignature", f"Credential is malformed: {comps['Credential']}")
        akid, sdate, sregion, sservice, term = cred
        inst, creds = self.find_credentials(akid)
        if inst is None:
            raise deny_key()
        tok = headers.get("X-Amz-Security-Token")
        if tok is None or not hmac.compare_digest(tok.strip().encode(), creds["Token"].encode()):
            raise deny_key()
        now = datetime.datetime.now(datetime.timezone.utc)
        if parse_iso(creds["Expiration"]) <= now:
            raise ApiError(400 if not ec2 else 400, "ExpiredToken",
                           "The security token included in the request is expired")
        signed = comps["SignedHeaders"].split(";")
        if signed != sorted(set(h.lower() for h in signed)):
            raise ApiError(403, "SignatureDoesNotMatch",
                           "SignedHeaders must be lower-case, sorted and unique: " + comps["SignedHeaders"])
        if "host" not in signed:
            raise ApiError(403, "SignatureDoesNotMatch",
                           "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
        if "x-amz-security-token" not in signed:
            raise ApiError(403, "SignatureDoesNotMatch",
                           "fake_aws requires 'x-amz-security-token' to be a SignedHeader")
        for h in signed:
            if headers.get_all(h) is None:
                raise ApiError(403, "SignatureDoesNotMatch", f"Signed header '{h}' is missing from the request")
        amz_date = headers.get("X-Amz-Date")
        if amz_date is None:
            raise ApiError(400, "IncompleteSignature",
                           "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
        if "x-amz-date" not in signed:
            raise ApiError(403, "SignatureDoesNotMatch", "'x-amz-date' must be a SignedHeader")
        amz_date = amz_date.strip()
        try:
            t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            raise ApiError(400, "IncompleteSignature", f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'.")
        if term != "aws4_request":
            raise ApiError(403, "SignatureDoesNotMatch",
                           f"Credential should be scoped with a valid terminator: 'aws4_request', not '{term}'.")
        if sdate != amz_date[:8]:
            raise ApiError(403, "SignatureDoesNotMatch",
                           f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{sdate}' != '{amz_date[:8]}', from '{amz_date}'.")
        if sservice != service:
            raise ApiError(403, "SignatureDoesNotMatch",
                           f"Credential should be scoped to correct service: '{service}'.")
        if host_region is not None and sregion != host_region:
            raise ApiError(403, "SignatureDoesNotMatch",
                           f"Credential should be scoped to a valid region, not '{sregion}'.")
        if not sregion:
            raise ApiError(403, "SignatureDoesNotMatch", "Credential should be scoped to a valid region.")
        skew = (t - now).total_seconds()
        fmt = lambda d: d.strftime("%Y%m%dT%H%M%SZ")
        if skew < -MAX_SKEW or skew > MAX_SKEW:
            if ec2:
                raise ApiError(400, "RequestExpired", f"Request has expired. Timestamp date is {amz_date}")
            if skew < 0:
                msg = (f"Signature expired: {amz_date} is now earlier than "
                       f"{fmt(now - datetime.timedelta(seconds=MAX_SKEW))} ({fmt(now)} - 15 min.)")
            else:
                msg = (f"Signature not yet current: {amz_date} is still later than "
                       f"{fmt(now + datetime.timedelta(seconds=MAX_SKEW))} ({fmt(now)} + 15 min.)")
            raise ApiError(403, "SignatureDoesNotMatch", msg)
        creq = sigv4_canonical(method, raw_path, raw_query, lambda h: headers.get_all(h) or [], signed, body)
        scope = f"{sdate}/{sregion}/{sservice}/aws4_request"
        sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
        expect = hmac.new(signing_key(creds["SecretAccessKey"], sdate, sregion, sservice),
                          sts.encode(), hashlib.sha256).hexdigest()
        debug = {"canonicalRequest": creq, "stringToSign": sts}
        if not hmac.compare_digest(expect, comps["Signature"].strip().lower()):
            raise ApiError(403, "SignatureDoesNotMatch",
                           "The request signature we calculated does not match the signature you provided. "
                           "Check your AWS Secret Access Key and signing method. Consult the service "
                           "documentation for details.\n\nThe Canonical String for this request should have been\n'"
                           + creq + "'\n\nThe String-to-Sign should have been\n'" + sts + "'\n", debug=debug)
        return inst, creds, sregion

    def take_fault(self, action: str):
        with self.lock:
            for f in self.faults:
                if f["action"] in (action, "*") and f["count"] > 0:
                    f["count"] -= 1
                    if f["count"] == 0:
                        self.faults.remove(f)
                    return ApiError(int(f.get("status", 400)), f.get("code", "Throttling"),
                                    f.get("message", "Rate exceeded"), sender=int(f.get("status", 400)) < 500)
        return None

    def visible(self, caller: dict, region: str) -> list[dict]:
        with self.lock:
            return sorted((dict(i) for i in self.instances.values()
                           if i["accountId"] == caller["accountId"] and i["region"] == region),
                          key=lambda i: i["instanceId"])

    def page_size(self, action: str, given: str | None, lo: int, hi: int, default: int | None,
                  name: str) -> int | None:
        if given is not None:
            try:
                n = int(given)
            except ValueError:
                raise ApiError(400, "ValidationError" if action != "DescribeInstances" else "InvalidParameterValue",
                               f"Invalid value for {name}: {given}")
            if not lo <= n <= hi:
                if action == "DescribeInstances":
                    raise ApiError(400, "InvalidParameterValue",
                                   f"Value ( {n} ) for parameter maxResults is invalid. Expecting a value between {lo} and {hi}.")
                raise ApiError(400, "ValidationError",
                               f"1 validation error detected: Value '{n}' at 'maxRecords' failed to satisfy constraint: "
                               f"Member must have value between {lo} and {hi}")
            return n
        forced = self.config.get("pageSize", {}).get(action)
        return int(forced) if forced else default

    @staticmethod
    def next_token(action: str, offset: int) -> str:
        return base64.b64encode(json.dumps({"a": action, "o": offset}).encode()).decode()

    @staticmethod
    def parse_token(action: str, token: str | None, code: str) -> int:
        if token is None:
            return 0
        try:
            d = json.loads(base64.b64decode(token, validate=True))
            if d["a"] == action and isinstance(d["o"], int) and d["o"] >= 0:
                return d["o"]
        except Exception:
            pass
        raise ApiError(400, code, "The token provided is invalid" if code != "InvalidNextToken"
                       else "The specified token is invalid.")

    def action_describe_asgs(self, p: dict, caller: dict, region: str) -> str:
        names = members(p, "AutoScalingGroupNames.member")
        size = self.page_size("DescribeAutoScalingGroups", p.get("MaxRecords"), 1, 100, 50, "MaxRecords")
        offset = self.parse_token("DescribeAutoScalingGroups", p.get("NextToken"), "InvalidNextToken")
        insts = self.visible(caller, region)
        with self.lock:
            groups = sorted((dict(g) for g in self.groups.values()
                             if g["accountId"] == caller["accountId"] and g["region"] == region
                             and (not names or g["name"] in names)), key=lambda g: g["name"])
        page, nxt = groups[offset:offset + size], offset + size < len(groups)
        out = []
        for g in page:
            gi = [i for i in insts if i.get("groupName") == g["name"]]
            azs = sorted({i["availabilityZone"] for i in gi}) or [region + "a"]
            desired = g["desiredCapacity"] if g["desiredCapacity"] is not None else len(gi)
            inst_xml = "".join(
                "<member>"
                f"<InstanceId>{xml(i['instanceId'])}</InstanceId>"
                f"<InstanceType>{xml(i['instanceType'])}</InstanceType>"
                f"<AvailabilityZone>{xml(i['availabilityZone'])}</AvailabilityZone>"
                f"<LifecycleState>{xml(i['lifecycleState'])}</LifecycleState>"
                f"<HealthStatus>{xml(i['healthStatus'])}</HealthStatus>"
                "<LaunchTemplate><LaunchTemplateId>lt-0123456789abcdef0</LaunchTemplateId>"
                f"<LaunchTemplateName>{xml(g['name'])}-lt</LaunchTemplateName><Version>1</Version></LaunchTemplate>"
                "<ProtectedFromScaleIn>false</ProtectedFromScaleIn>"
                "</member>" for i in gi)
            out.append(
                "<member>"
                f"<AutoScalingGroupARN>arn:aws:autoscaling:{region}:{g['accountId']}:autoScalingGroup:{g['uuid']}:autoScalingGroupName/{xml(g['name'])}</AutoScalingGroupARN>"
                f"<AutoScalingGroupName>{xml(g['name'])}</AutoScalingGroupName>"
                f"<MinSize>{g['minSize']}</MinSize><MaxSize>{max(g['maxSize'], desired)}</MaxSize>"
                f"<DesiredCapacity>{desired}</DesiredCapacity><DefaultCooldown>300</DefaultCooldown>"
                "<AvailabilityZones>" + "".join(f"<member>{xml(a)}</member>" for a in azs) + "</AvailabilityZones>"
                "<LoadBalancerNames/><TargetGroupARNs/>"
                "<HealthCheckType>EC2</HealthCheckType><HealthCheckGracePeriod>300</HealthCheckGracePeriod>"
                f"<Instances>{inst_xml}</Instances>"
                f"<CreatedTime>{g['createdTime']}</CreatedTime>"
                "<SuspendedProcesses/><VPCZoneIdentifier>subnet-0123456789abcdef0</VPCZoneIdentifier>"
                "<EnabledMetrics/><Tags/><TerminationPolicies><member>Default</member></TerminationPolicies>"
                "<NewInstancesProtectedFromScaleIn>false</NewInstancesProtectedFromScaleIn>"
                f"<ServiceLinkedRoleARN>arn:aws:iam::{g['accountId']}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling</ServiceLinkedRoleARN>"
                "</member>")
        token = f"<NextToken>{self.next_token('DescribeAutoScalingGroups', offset + size)}</NextToken>" if nxt else ""
        return f"<DescribeAutoScalingGroupsResult><AutoScalingGroups>{''.join(out)}</AutoScalingGroups>{token}</DescribeAutoScalingGroupsResult>"

    def action_describe_asg_instances(self, p: dict, caller: dict, region: str) -> str:
        ids = members(p, "InstanceIds.member")
        if len(ids) > 50:
            raise ApiError(400, "ValidationError", "The number of instance ids that may be passed in is 50.")
        size = self.page_size("DescribeAutoScalingInstances", p.get("MaxRecords"), 1, 50, 50, "MaxRecords")
        offset = self.parse_token("DescribeAutoScalingInstances", p.get("NextToken"), "InvalidNextToken")
        insts = [i for i in self.visible(caller, region)
                 if i.get("groupName") and (not ids or i["instanceId"] in ids)]
        page, nxt = insts[offset:offset + size], offset + size < len(insts)
        out = "".join(
            "<member>"
            f"<InstanceId>{xml(i['instanceId'])}</InstanceId>"
            f"<InstanceType>{xml(i['instanceType'])}</InstanceType>"
            f"<AutoScalingGroupName>{xml(i['groupName'])}</AutoScalingGroupName>"
            f"<AvailabilityZone>{xml(i['availabilityZone'])}</AvailabilityZone>"
            f"<LifecycleState>{xml(i['lifecycleState'])}</LifecycleState>"
            f"<HealthStatus>{xml(i['healthStatus'].upper())}</HealthStatus>"
            "<LaunchTemplate><LaunchTemplateId>lt-0123456789abcdef0</LaunchTemplateId>"
            f"<LaunchTemplateName>{xml(i['groupName'])}-lt</LaunchTemplateName><Version>1</Version></LaunchTemplate>"
            "<ProtectedFromScaleIn>false</ProtectedFromScaleIn>"
            "</member>" for i in page)
        token = f"<NextToken>{self.next_token('DescribeAutoScalingInstances', offset + size)}</NextToken>" if nxt else ""
        return f"<DescribeAutoScalingInstancesResult><AutoScalingInstances>{out}</AutoScalingInstances>{token}</DescribeAutoScalingInstancesResult>"

    def action_describe_instances(self, p: dict, caller: dict, region: str, request_id: str) -> str:
        ids = members(p, "InstanceId")
        bad = [i for i in ids if not INSTANCE_ID_RE.match(i)]
        if bad:
            raise ApiError(400, "InvalidInstanceID.Malformed", f'Invalid id: "{bad[0]}"')
        if ids and p.get("MaxResults") is not None:
            raise ApiError(400, "InvalidParameterCombination",
                           "The parameter instancesSet cannot be used with the parameter maxResults")
        size = self.page_size("DescribeInstances", p.get("MaxResults"), 5, 1000, None, "MaxResults")
        offset = self.parse_token("DescribeInstances", p.get("NextToken"), "InvalidParameterValue")
        insts = self.visible(caller, region)
        if ids:
            known = {i["instanceId"] for i in insts}
            missing = [i for i in ids if i not in known]
            if missing:
                if len(missing) == 1:
                    raise ApiError(400, "InvalidInstanceID.NotFound", f"The instance ID '{missing[0]}' does not exist")
                raise ApiError(400, "InvalidInstanceID.NotFound",
                               f"The instance IDs '{', '.join(missing)}' do not exist")
            insts = [i for i in insts if i["instanceId"] in ids]
        for name, values in filters(p):
            insts = [i for i in insts if ec2_filter_match(i, name, values)]
        if size is None:
            page, nxt = insts[offset:], False
        else:
            page, nxt = insts[offset:offset + size], offset + size < len(insts)
        items = []
        for i in page:
            code = EC2_STATE_CODES[i["state"]]
            dns = "ip-" + i["privateIp"].replace(".", "-") + f".{region}.compute.internal"
            tags = ""
            if i.get("groupName"):
                tags = ("<item><key>aws:autoscaling:groupName</key>"
                        f"<value>{xml(i['groupName'])}</value></item>")
            profile = ""
            if i.get("roleName"):
                profile = (f"<iamInstanceProfile><arn>arn:aws:iam::{i['accountId']}:instance-profile/{xml(i['roleName'])}</arn>"
                           f"<id>AIPA{role_id(i['accountId'], i['roleName'])[4:]}</id></iamInstanceProfile>")
            rid = "r-" + hashlib.sha256(i["instanceId"].encode()).hexdigest()[:17]
            items.append(
                "<item>"
                f"<reservationId>{rid}</reservationId><ownerId>{i['accountId']}</ownerId><groupSet/>"
                "<instancesSet><item>"
                f"<instanceId>{xml(i['instanceId'])}</instanceId>"
                f"<imageId>{xml(i['imageId'])}</imageId>"
                f"<instanceState><code>{code}</code><name>{i['state']}</name></instanceState>"
                f"<privateDnsName>{dns}</privateDnsName><dnsName/><reason/>"
                "<amiLaunchIndex>0</amiLaunchIndex><productCodes/>"
                f"<instanceType>{xml(i['instanceType'])}</instanceType>"
                f"<launchTime>{iso_ms(parse_iso(i['pendingTime']))}</launchTime>"
                f"<placement><availabilityZone>{xml(i['availabilityZone'])}</availabilityZone>"
                "<groupName/><tenancy>default</tenancy></placement>"
                "<monitoring><state>disabled</state></monitoring>"
                "<subnetId>subnet-0123456789abcdef0</subnetId><vpcId>vpc-0123456789abcdef0</vpcId>"
                f"<privateIpAddress>{xml(i['privateIp'])}</privateIpAddress>"
                f"<architecture>{xml(i['architecture'])}</architecture>"
                "<rootDeviceType>ebs</rootDeviceType><rootDeviceName>/dev/xvda</rootDeviceName>"
                f"{profile}<tagSet>{tags}</tagSet>"
                "<metadataOptions><state>applied</state><httpTokens>required</httpTokens>"
                "<httpPutResponseHopLimit>1</httpPutResponseHopLimit><httpEndpoint>enabled</httpEndpoint>"
                "</metadataOptions>"
                "</item></instancesSet></item>")
        token = f"<nextToken>{self.next_token('DescribeInstances', offset + size)}</nextToken>" if nxt else ""
        return f"<requestId>{request_id}</requestId><reservationSet>{''.join(items)}</reservationSet>{token}"

    def action_get_caller_identity(self, caller: dict) -> str:
        role, acct, iid = caller["roleName"], caller["accountId"], caller["instanceId"]
        return ("<GetCallerIdentityResult>"
                f"<Arn>arn:aws:sts::{acct}:assumed-role/{xml(role)}/{xml(iid)}</Arn>"
                f"<UserId>{role_id(acct, role)}:{xml(iid)}</UserId>"
                f"<Account>{acct}</Account>"
                "</GetCallerIdentityResult>")


def members(p: dict, prefix: str) -> list[str]:
    """Values of prefix.1, prefix.2, ... (AWS query list encoding)."""
    out = []
    for k, v in p.items():
        if k.startswith(prefix + "."):
            idx = k[len(prefix) + 1:]
            if idx.isdigit():
                out.append((int(idx), v))
    return [v for _, v in sorted(out)]


def filters(p: dict) -> list[tuple[str, list[str]]]:
    out = []
    n = 1
    while f"Filter.{n}.Name" in p:
        out.append((p[f"Filter.{n}.Name"], members(p, f"Filter.{n}.Value")))
        n += 1
    return out


def ec2_filter_match(i: dict, name: str, values: list[str]) -> bool:
    field = {
        "instance-id": i["instanceId"], "image-id": i["imageId"], "private-ip-address": i["privateIp"],
        "instance-state-name": i["state"], "availability-zone": i["availabilityZone"],
        "tag:aws:autoscaling:groupName": i.get("groupName"), "owner-id": i["accountId"],
    }
    if name not in field:
        raise ApiError(400, "InvalidParameterValue", f"The filter '{name}' is invalid")
    return field[name] in values


# --------------------------------------------------------------------------
# HTTP servers

class ThreadingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def host_service_region(host: str | None) -> tuple[str | None, str | None]:
    """From a real-looking endpoint host, the service and region it implies."""
    if not host:
        return None, None
    h = host.split(":")[0].lower()
    if h == "sts.amazonaws.com":
        return "sts", "us-east-1"
    m = re.fullmatch(r"(autoscaling|ec2|sts)\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?", h)
    if m:
        return m.group(1), m.group(2)
    return None, None


class ApiHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Server"

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        pass

    def _send(self, status: int, body: str, ctype: str = "text/xml"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", self._rid)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        fake: Fake = self.server.fake
        self._rid = str(uuid.uuid4())
        raw_path, _, raw_query = self.path.partition("?")
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return self._send(411, "Length Required", "text/plain")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        params = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if self.command == "POST" and ctype == "application/x-www-form-urlencoded":
            try:
                params.update(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                pass
        action = params.get("Action")
        host_service, host_region = host_service_region(self.headers.get("Host"))
        service = ACTIONS.get(action or "") or host_service or "sts"
        entry = {"kind": "api", "method": self.command, "path": self.path, "host": self.headers.get("Host"),
                 "action": action, "service": service, "params": params,
                 "signedHeaders": None, "accessKeyId": None, "caller": None}
        try:
            if action is None:
                raise ApiError(400, "MissingAction", "Missing Action")
            if action not in ACTIONS or (host_service and host_service != ACTIONS[action]):
                raise ApiError(400, "InvalidAction", f"Could not find operation {action} for version {params.get('Version')}")
            m = re.search(r"SignedHeaders=([^,\s]+)", self.headers.get("Authorization") or "")
            entry["signedHeaders"] = m.group(1) if m else None
            m = re.search(r"Credential=([^/,\s]+)", self.headers.get("Authorization") or "")
            entry["accessKeyId"] = m.group(1) if m else None
            caller, _creds, region = fake.verify_sigv4(service, self.command, raw_path, raw_query,
                                                      self.headers, body, host_region)
            entry["caller"], entry["region"] = caller["instanceId"], region
            if params.get("Version") != API_VERSIONS[service]:
                raise ApiError(400, "InvalidAction",
                               f"Could not find operation {action} for version {params.get('Version')}")
            fault = fake.take_fault(action)
            if fault:
                raise fault
            if action == "DescribeAutoScalingGroups":
                result = fake.action_describe_asgs(params, caller, region)
            elif action == "DescribeAutoScalingInstances":
                result = fake.action_describe_asg_instances(params, caller, region)
            elif action == "DescribeInstances":
                result = fake.action_describe_instances(params, caller, region, self._rid)
            else:
                result = fake.action_get_caller_identity(caller)
            if service == "ec2":
                out = f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{NAMESPACES[service]}">{result}</{action}Response>'
            else:
                out = (f'<{action}Response xmlns="{NAMESPACES[service]}">{result}'
                       f"<ResponseMetadata><RequestId>{self._rid}</RequestId></ResponseMetadata></{action}Response>")
            entry.update(status=200, errorCode=None)
            self._send(200, out)
        except ApiError as e:
            entry.update(status=e.status, errorCode=e.code, errorMessage=e.message, **e.debug)
            if service == "ec2":
                out = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                       f"<Response><Errors><Error><Code>{xml(e.code)}</Code><Message>{xml(e.message)}</Message>"
                       f"</Error></Errors><RequestID>{self._rid}</RequestID></Response>")
            else:
                out = (f'<ErrorResponse xmlns="{NAMESPACES[service]}"><Error>'
                       f"<Type>{'Sender' if e.sender else 'Receiver'}</Type><Code>{xml(e.code)}</Code>"
                       f"<Message>{xml(e.message)}</Message></Error><RequestId>{self._rid}</RequestId></ErrorResponse>")
            self._send(e.status, out)
        except Exception as e:  # noqa: BLE001 -- a fake must keep serving
            traceback.print_exc()
            entry.update(status=500, errorCode="InternalFailure", errorMessage=repr(e))
            self._send(500, "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>"
                            f"<Message>{xml(repr(e))}</Message></Error></ErrorResponse>")
        finally:
            fake.record(entry)

    do_POST = do_GET = _handle


class ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _json(self, status: int, obj):
        data = json.dumps(obj, indent=1).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _raw(self, status: int, data: bytes, ctype: str):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if not n:
            return {}
        obj = json.loads(self.rfile.read(n))
        if not isinstance(obj, dict):
            raise ValueError("body must be a JSON object")
        return obj

    def _handle(self):
        fake: Fake = self.server.fake
        url = urllib.parse.urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        q = dict(urllib.parse.parse_qsl(url.query))
        m = self.command
        try:
            body = self._body() if m in ("POST", "PATCH", "PUT") else {}
            if m == "GET" and parts in ([], ["health"]):
                return self._json(200, {"ok": True, "stateDir": fake.dir, **fake.ports,
                                        "caFile": fake.ca.crt_path})
            if parts == ["instances"] and m == "GET":
                with fake.lock:
                    return self._json(200, {"instances": [fake.public_view(i) for i in fake.instances.values()]})
            if parts == ["instances"] and m == "POST":
                return self._json(200, fake.public_view(fake.add_instance(body)))
            if len(parts) == 2 and parts[0] == "instances":
                iid = parts[1]
                if m == "GET":
                    with fake.lock:
                        if iid not in fake.instances:
                            raise LookupError(iid)
                        return self._json(200, fake.public_view(fake.instances[iid]))
                if m == "PATCH":
                    return self._json(200, fake.public_view(fake.patch_instance(iid, body)))
                if m == "DELETE":
                    fake.delete_instance(iid)
                    return self._json(200, {"deleted": iid})
            if parts == ["groups"] and m == "GET":
                with fake.lock:
                    return self._json(200, {"groups": list(fake.groups.values())})
            if parts == ["groups"] and m == "POST":
                with fake.lock:
                    if not body.get("name"):
                        raise ValueError("name required")
                    g = fake.ensure_group(body["name"], body.get("accountId") or DEFAULT_ACCOUNT,
                                          body.get("region") or DEFAULT_REGION, **body)
                    fake.save()
                    return self._json(200, g)
            if parts == ["sign"] and m == "POST":
                doc = body.get("document")
                if not isinstance(doc, str):
                    raise ValueError("document (string) required")
                sig = fake.ca.sign(doc.encode())
                return self._json(200, {"signature": base64.b64encode(sig).decode()})
            if parts == ["ca"] and m == "GET":
                return self._json(200, {"der": base64.b64encode(fake.ca.der).decode(), "pem": fake.ca.pem})
            if parts == ["ca.der"] and m == "GET":
                return self._raw(200, fake.ca.der, "application/pkix-cert")
            if parts == ["ca.pem"] and m == "GET":
                return self._raw(200, fake.ca.pem.encode(), "application/x-pem-file")
            if parts == ["requests"] and m == "GET":
                reqs = fake.requests()
                for k in ("kind", "action", "caller", "instanceId"):
                    if k in q:
                        reqs = [r for r in reqs if str(r.get(k)) == q[k]]
                if "since" in q:
                    reqs = [r for r in reqs if r.get("seq", 0) > int(q["since"])]
                return self._json(200, {"requests": reqs})
            if parts == ["requests"] and m == "DELETE":
                fake.clear_requests()
                return self._json(200, {"cleared": True})
            if parts == ["config"] and m in ("PUT", "PATCH"):
                with fake.lock:
                    if "pageSize" in body:
                        if not isinstance(body["pageSize"], dict):
                            raise ValueError("pageSize must be an object {Action: n}")
                        fake.config["pageSize"] = {k: int(v) for k, v in body["pageSize"].items() if v}
                    fake.save()
                    return self._json(200, fake.config)
            if parts == ["config"] and m == "GET":
                return self._json(200, fake.config)
            if parts == ["faults"] and m == "POST":
                if not body.get("action"):
                    raise ValueError("action required (or '*')")
                f = {"action": body["action"], "code": body.get("code", "Throttling"),
                     "message": body.get("message", "Rate exceeded"), "status": int(body.get("status", 400)),
                     "count": int(body.get("count", 1))}
                with fake.lock:
                    fake.faults.append(f)
                return self._json(200, f)
            if parts == ["faults"] and m == "DELETE":
                with fake.lock:
                    fake.faults.clear()
                return self._json(200, {"cleared": True})
            if parts == ["faults"] and m == "GET":
                with fake.lock:
                    return self._json(200, {"faults": list(fake.faults)})
            return self._json(404, {"error": f"no route {m} {url.path}"})
        except Conflict as e:
            return self._json(409, {"error": str(e)})
        except LookupError as e:
            return self._json(404, {"error": f"no such instance {e.args[0]}"})
        except (ValueError, TypeError) as e:
            return self._json(400, {"error": str(e)})
        except OSError as e:
            return self._json(400, {"error": f"listen failed: {e}"})
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            return self._json(500, {"error": repr(e)})

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle


# --------------------------------------------------------------------------
# --imds-stdio

class _StdoutWriter:
    def __init__(self, fd: int):
        self.fd = fd

    def write(self, data) -> int:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        return len(data)

    def flush(self):
        pass


def run_imds_stdio(state_dir: str, iid: str) -> int:
    state_dir = os.path.abspath(state_dir)
    # libslirp's guestfwd cmd: gives the child the socket as stdin, stdout AND
    # stderr: nothing but HTTP may be written to fds 1 and 2.
    try:
        logfd = os.open(os.path.join(state_dir, IMDS_STDIO_LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        logfd = os.open(os.devnull, os.O_WRONLY)
    out_fd = os.dup(1)
    os.dup2(logfd, 2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w")
    sys.stderr = os.fdopen(2, "w", buffering=1)

    try:
        s = socket.socket(fileno=os.dup(0))
        s.settimeout(60)
        rfile = s.makefile("rb")
    except OSError:
        rfile = os.fdopen(os.dup(0), "rb")
    minter = TokenMinter(state_dir, create=False)

    def lookup(_iid):
        try:
            with open(os.path.join(state_dir, STATE_FILE)) as f:
                return json.load(f).get("instances", {}).get(_iid)
        except (OSError, ValueError):
            return None

    def record(entry):
        entry = {"time": iso(utcnow()), "seq": 0, "via": "stdio", **entry}
        line = (json.dumps(entry) + "\n").encode()
        fd = os.open(os.path.join(state_dir, IMDS_STDIO_REQUESTS), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    class H(IMDSHandler):
        instance_id = iid

        def setup(self):
            self.rfile = rfile
            self.wfile = _StdoutWriter(out_fd)

        def finish(self):
            pass

    H.minter = minter
    H.lookup = staticmethod(lookup)
    H.record = staticmethod(record)

    class _Srv:
        pass
    try:
        H(None, ("169.254.169.254", 0), _Srv())
    except (OSError, socket.timeout) as e:
        print(f"imds-stdio {iid}: {e!r}", file=sys.stderr)
    except Exception:
        traceback.print_exc()
        return 1
    return 0


# --------------------------------------------------------------------------
# main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state", required=True, help="state directory (CA, state.json, logs)")
    ap.add_argument("--control-port", type=int, default=0, help="control API port (0: ephemeral)")
    ap.add_argument("--control-bind", default="127.0.0.1")
    ap.add_argument("--api-port", type=int, default=0, help="AWS query API port (0: ephemeral)")
    ap.add_argument("--api-bind", default="127.0.0.1")
    ap.add_argument("--reset", action="store_true", help="forget instances/groups kept in state.json")
    ap.add_argument("--imds-stdio", metavar="INSTANCE_ID",
                    help="serve IMDS for this instance over stdin/stdout for one connection and exit")
    args = ap.parse_args(argv)

    if args.imds_stdio:
        return run_imds_stdio(args.state, args.imds_stdio)

    fake = Fake(args.state, reset=args.reset)
    control = ThreadingServer((args.control_bind, args.control_port), ControlHandler)
    api = ThreadingServer((args.api_bind, args.api_port), ApiHandler)
    control.fake = api.fake = fake
    fake.ports = {"controlPort": control.server_address[1], "apiPort": api.server_address[1]}
    with fake.lock:
        fake.restart_imds_listeners()
        fake.save()
    atomic_write(os.path.join(fake.dir, "ports.json"), json.dumps(fake.ports).encode(), 0o644)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = [threading.Thread(target=s.serve_forever, name=n, daemon=True)
               for s, n in ((control, "control"), (api, "api"))]
    for t in threads:
        t.start()
    print(f"fake_aws ready control={fake.ports['controlPort']} api={fake.ports['apiPort']} "
          f"state={fake.dir}", flush=True)

    while not stop.wait(15):
        try:
            fake.housekeeping()
        except Exception:
            traceback.print_exc()

    for s in [control, api] + list(fake.imds_servers.values()):
        s.shutdown()
        s.server_close()
    fake.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
