"""Harness for the cluster integration tests (test_cluster.py, test_bootstrapper.py).

Black-box like the rest of vssmtest: real `vssm` processes on 127.0.0.x addresses, the
fake AWS of qemu/fake_aws as IMDS + Auto Scaling/EC2/STS, and a hand-made
client for the join port (8083) to play instances and attackers.

- FakeAws: starts/stops qemu/fake_aws/fake_aws.py, adds/changes instances,
  signs documents with its test CA, serves IMDS reads.
- ClusterNode: a vssmtest.node.Node with a `cluster` config section, SIGKILL,
  SIGSTOP/SIGCONT, /REST/v1/cluster/status and audit-log helpers.
- JoinClient: the join wire protocol from a chosen source address, and the
  requester's side of the key agreement (to prove a grant really carries the
  RPC key).
- sigv4_sts_request: a strong-mode stsRequest signed with given credentials.
- static_cluster, static_pair: static-discovery nodes bootstrapped by hand.
- wait_until, Measurements.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.x25519 import (X25519PrivateKey,
                                                              X25519PublicKey)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import pkcs7

from vssmtest.client import tls_context
from vssmtest.crypto_ref import scrypt_mcf
from vssmtest.node import Node, health, terminate
from vssmtest.util import ADMIN_PASSWORD, HEALTH_PORT, REPO, b64d, b64e

FAKE_AWS = REPO / "qemu" / "fake_aws" / "fake_aws.py"
# The brief: $VSSM_BIN, else the debug build (what scripts/test.sh uses).
CLUSTER_BIN = Path(os.environ.get("VSSM_BIN") or (REPO / "target" / "debug" / "vssm"))
JOIN_PORT = 8083
MEASUREMENTS_FILE = REPO / "tests" / "integration" / ".measurements.json"


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def wait_until(predicate, timeout: float, interval: float = 0.05, desc: str = "condition"):
    """Polls `predicate` until it returns a truthy value (returned); fails with
    the last value (or exception) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except AssertionError:
            raise
        except Exception as e:  # noqa: BLE001 - report it if we time out
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {desc}; last={last!r}")
        time.sleep(interval)


def instance_id(n: int) -> str:
    """The EC2-style id of fake instance number `n` (i- + 17 hex digits)."""
    return "i-" + format(n, "017x")


class Measurements:
    """Collected numbers; printed and written to tests/integration/.measurements.json."""

    def __init__(self, path: Path = MEASUREMENTS_FILE):
        self.path = path
        self.data: dict = {}

    def record(self, key: str, value):
        self.data[key] = value
        print(f"MEASUREMENT {key} = {json.dumps(value)}", file=sys.stderr)
        try:
            self.path.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        except OSError as e:  # never fail a test because of the report file
            print(f"cannot write {self.path}: {e}", file=sys.stderr)


MEASUREMENTS = Measurements()


# --------------------------------------------------------------------------
# Fake AWS
# --------------------------------------------------------------------------

class FakeAws:
    """qemu/fake_aws/fake_aws.py as a process (fresh state, ephemeral ports) and
    a client of its control API and of its instances' IMDS."""

    def __init__(self, state_dir: Path):
        self.dir = state_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.control_port = self.api_port = None
        self._log = None

    def start(self, timeout=20.0):
        self._log = open(self.dir / "fake_aws.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(FAKE_AWS), "--state", str(self.dir), "--control-port", "0",
             "--api-port", "0", "--reset"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        ports = self.dir / "ports.json"

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"fake_aws exited {self.proc.returncode}: {self.log()[-2000:]}")
            if not ports.exists():
                return None
            p = json.loads(ports.read_text())
            self.control_port, self.api_port = p["controlPort"], p["apiPort"]
            return self.control("GET", "/health")[0] == 200

        wait_until(ready, timeout, desc="fake_aws to start")
        return self

    def stop(self):
        terminate(self.proc)
        if self._log:
            self._log.close()
            self._log = None

    def log(self) -> str:
        try:
            return (self.dir / "fake_aws.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- control API --
    def control(self, method: str, path: str, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.control_port, timeout=30)
        try:
            data = None if body is None else json.dumps(body).encode()
            c.request(method, path, body=data, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            raw = r.read()
            try:
                return r.status, json.loads(raw) if raw else None
            except ValueError:
                return r.status, raw
        finally:
            c.close()

    def _ok(self, method, path, body=None):
        status, obj = self.control(method, path, body)
        assert 200 <= status < 300, f"fake_aws {method} {path} {body!r} -> {status} {obj!r}"
        return obj

    def add_instance(self, n: int, ip: str, **fields) -> dict:
        return self._ok("POST", "/instances", {"instanceId": instance_id(n), "privateIp": ip, **fields})

    def patch_instance(self, iid: str, **fields) -> dict:
        return self._ok("PATCH", f"/instances/{iid}", fields)

    def delete_instance(self, iid: str):
        return self._ok("DELETE", f"/instances/{iid}")

    def ca_der(self) -> bytes:
        return base64.b64decode(self._ok("GET", "/ca")["der"])

    def sign(self, document: bytes) -> bytes:
        return base64.b64decode(self._ok("POST", "/sign", {"document": document.decode()})["signature"])

    def requests(self, **filters) -> list:
        q = "&".join(f"{k}={v}" for k, v in filters.items())
        return self._ok("GET", "/requests" + (f"?{q}" if q else ""))["requests"]

    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/"

    # -- IMDSv2 of one instance --
    def imds_get(self, imds_port: int, path: str) -> bytes:
        c = http.client.HTTPConnection("127.0.0.1", imds_port, timeout=10)
        try:
            c.request("PUT", "/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
            r = c.getresponse()
            token = r.read().decode()
            assert r.status == 200, f"IMDS token: {r.status} {token!r}"
            c.request("GET", path, headers={"X-aws-ec2-metadata-token": token})
            r = c.getresponse()
            body = r.read()
            assert r.status == 200, f"IMDS GET {path}: {r.status} {body!r}"
            return body
        finally:
            c.close()

    def identity(self, inst: dict) -> tuple[bytes, bytes]:
        """(document bytes exactly as served, PKCS#7 DER) from the instance's IMDS."""
        port = inst["imdsPort"]
        doc = self.imds_get(port, "/latest/dynamic/instance-identity/document")
        sig = self.imds_get(port, "/latest/dynamic/instance-identity/rsa2048")
        return doc, base64.b64decode(b"".join(sig.split()))

    def cluster_config(self, inst: dict, attestation="basic", sync_interval=2, **extra) -> dict:
        ep = self.endpoint()
        cfg = {
            "discovery": "aws",
            "attestation": attestation,
            "imdsEndpoint": f"http://127.0.0.1:{inst['imdsPort']}",
            "awsEndpoints": {"autoscaling": ep, "ec2": ep, "sts": ep},
            "attestationCaCertificates": [b64e(self.ca_der())],
            "syncIntervalSeconds": sync_interval,
        }
        cfg.update(extra)
        return cfg


# --------------------------------------------------------------------------
# Nodes
# --------------------------------------------------------------------------

def http_get(ip: str, port: int, path: str, timeout=2.0):
    """(status, body) of a plain HTTP GET, None if unreachable."""
    try:
        c = http.client.HTTPConnection(ip, port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body
    except (OSError, http.client.HTTPException):
        return None


_SHARED_PASSWORD_HASH: list[str] = []


def shared_password_hash() -> str:
    """One rootPassword hash (of ADMIN_PASSWORD) for every cluster node of the
    run: nodes of a cluster share their config, and the config digest a joiner
    attests covers the hash, salt included."""
    if not _SHARED_PASSWORD_HASH:
        _SHARED_PASSWORD_HASH.append(scrypt_mcf(ADMIN_PASSWORD))
    return _SHARED_PASSWORD_HASH[0]


def config_digest(config_path: Path, binary: Path = CLUSTER_BIN) -> bytes:
    """The config digest of a config file, as `vssm config-digest` prints it (32 bytes)."""
    r = subprocess.run([str(binary), "config-digest", "--config", str(config_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"vssm config-digest: {r.returncode} {r.stderr}"
    return bytes.fromhex(r.stdout.strip())


class ClusterNode(Node):
    """A Node with a `cluster` config section; unless told otherwise, its
    rootPassword is the run's shared hash (as in a real cluster's shared config)."""

    def __init__(self, pki, ip, workdir, cluster: dict, **extra):
        # The tests follow convergence on /REST/v1/cluster/status.
        extra.setdefault("healthDetails", True)
        extra.setdefault("password_hash", shared_password_hash())
        super().__init__(pki, ip, workdir, cluster=cluster, **extra)
        self.started_at: float | None = None
        self.stopped_signal = False

    def config_digest(self) -> bytes:
        """The digest this node attests when it joins (and requires of joiners)."""
        return config_digest(self.config_path, self.binary)

    binary = CLUSTER_BIN

    def start(self, args=None, wait=False):
        self.started_at = time.monotonic()
        super().start(args=args, wait=False)
        if wait:
            self.wait_health()
        return self

    def health_code(self):
        h = health(self.ip, timeout=1.0)
        return h[0] if h else None

    def wait_ready(self, timeout=15.0) -> float:
        """Waits for health 200; returns seconds since start()."""
        def ready():
            if not self.alive():
                raise AssertionError(f"{self.ip} exited {self.proc.returncode}; log:\n{self.log()[-3000:]}")
            return self.health_code() == 200
        try:
            wait_until(ready, timeout, desc=f"{self.ip} health 200")
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- log of {self.ip} ---\n{self.log()[-4000:]}") from None
        return time.monotonic() - self.started_at

    def status(self) -> dict | None:
        r = http_get(self.ip, HEALTH_PORT, "/REST/v1/cluster/status")
        if r is None or r[0] != 200:
            return None
        return json.loads(r[1])

    def sigkill(self):
        self.sigcont()
        self.kill()

    def sigstop(self):
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.stopped_signal = True

    def sigcont(self):
        if self.stopped_signal and self.alive():
            os.kill(self.proc.pid, signal.SIGCONT)
        self.stopped_signal = False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.sigcont()
        super().stop()

    def audit(self) -> list[str]:
        """Audit lines from admin/getlogs."""
        c = self.client()
        try:
            return c.admin_ok("getlogs")["log"]
        finally:
            c.close()

    def stderr_audit(self) -> list[str]:
        return [l for l in self.log().splitlines() if " audit action=" in l]


def static_pair(pki, root, ips) -> tuple[ClusterNode, ClusterNode]:
    """Two nodes of a static-discovery cluster (no attestation, a sync round
    every second), not started; A is started and bootstrapped alone, so B
    can be brought up while A is stopped (a partition)."""
    cluster = {"discovery": "static", "peers": ips, "attestation": "none", "syncIntervalSeconds": 1}
    a = ClusterNode(pki, ips[0], root / "a", cluster=cluster)
    b = ClusterNode(pki, ips[1], root / "b", cluster=cluster)
    try:
        start_lagging(a)
    except BaseException:
        a.stop()
        raise
    return a, b


def static_cluster(pki, root, ips, configs: dict[int, dict] | None = None,
                   started: int | None = None) -> list[ClusterNode]:
    """The nodes of a static-discovery cluster (no attestation, a sync round
    every second), each started and bootstrapped by hand; `configs[i]` adds
    top-level config fields to node i. Only the first `started` nodes (all
    by default) are started: the others are members that join later
    (start_lagging). All are stopped if one fails to start."""
    cluster = {"discovery": "static", "peers": list(ips), "attestation": "none",
               "syncIntervalSeconds": 1}
    nodes = [ClusterNode(pki, ip, root / f"node-{ip}", cluster=cluster, **((configs or {}).get(i) or {}))
             for i, ip in enumerate(ips)]
    first = nodes[:started]
    try:
        for n in first:
            n.start(wait=True)
            assert n.bootstrap().status == 200, n.log()[-2000:]
        for n in first:
            n.wait_ready(10)
    except BaseException:
        for n in nodes:
            n.stop()
        raise
    return nodes


def start_lagging(node: ClusterNode):
    """Starts and bootstraps `node` (its peer is stopped, so it lags)."""
    node.start(wait=True)
    assert node.bootstrap().status == 200
    node.wait_ready(10)


def two_versions(client, name: str, section: str = "symmetricKey"):
    """The listing entries of `name` and its `name~…` alias if there are two, else None."""
    versions = [e for e in client.listkeys().get(section, [])
                if e["name"] == name or e["name"].startswith(name + "~")]
    return versions if len(versions) == 2 else None


def all_converged(nodes, records: int | None = None):
    """The statuses if every node is ready with the same digest (and record count)."""
    sts = [n.status() for n in nodes]
    if any(s is None or not s.get("ready") for s in sts):
        return None
    if len({s["digest"] for s in sts}) != 1 or len({s["records"] for s in sts}) != 1:
        return None
    if records is not None and sts[0]["records"] != records:
        return None
    return sts


def key_names(listing: dict) -> dict:
    """A listkeys answer reduced to sorted (name, createdAt) pairs per key kind."""
    return {s: sorted((e["name"], e["createdAt"]) for e in listing.get(s, []))
            for s in ("symmetricKey", "asymmetricKey", "macKey")}


# --------------------------------------------------------------------------
# Join port client
# --------------------------------------------------------------------------

KDF_INFO = b"vssm join v1"


class _SrcConn(http.client.HTTPSConnection):
    def __init__(self, host, port, context, source_ip, timeout=15):
        super().__init__(host, port, context=context, timeout=timeout)
        self._src = source_ip

    def connect(self):
        sock = socket.create_connection((self.host, self.port), self.timeout,
                                        source_address=(self._src, 0))
        self.sock = self._context.wrap_socket(sock, server_hostname="VSSM")


class JoinResult:
    """One answer of the join port: status, json (None if not JSON), raw body."""

    def __init__(self, status, obj, raw):
        self.status, self.json, self.raw = status, obj, raw

    def __repr__(self):
        return f"<join HTTP {self.status} {self.raw[:400]!r}>"


class JoinClient:
    """Talks to IP:8083 from `source_ip`, verifying the RPC certificate as VSSM."""

    def __init__(self, pki, peer_ip: str):
        self.peer = peer_ip
        self.ctx = tls_context(ca=pki.rpc_crt, cert=None)

    def post(self, source_ip: str, path: str, body) -> JoinResult:
        c = _SrcConn(self.peer, JOIN_PORT, self.ctx, source_ip)
        try:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            c.request("POST", path, body=data, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            raw = r.read()
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = None
            return JoinResult(r.status, obj, raw)
        finally:
            c.close()

    def challenge(self, source_ip: str) -> bytes:
        r = self.post(source_ip, "/cluster/v1/join/challenge", {})
        assert r.status == 200, f"challenge from {source_ip}: {r!r}"
        assert int(r.json["expiresInSeconds"]) > 0, r
        ch = b64d(r.json["challenge"])
        assert len(ch) >= 16, r
        return ch

    def join(self, source_ip: str, request: dict) -> JoinResult:
        return self.post(source_ip, "/cluster/v1/join", request)


def new_ephemeral():
    """A fresh X25519 key pair: (private key, raw 32-byte public key)."""
    priv = X25519PrivateKey.generate()
    pub = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return priv, pub


def join_request(document: bytes, signature: bytes, challenge: bytes, eph_pub: bytes,
                 config_digest: bytes, sts_request: dict | None = None) -> dict:
    """The JSON body of POST /cluster/v1/join."""
    req = {"document": b64e(document), "signature": b64e(signature),
           "challenge": b64e(challenge), "ephemeralPublicKey": b64e(eph_pub),
           "configDigest": b64e(config_digest)}
    if sts_request is not None:
        req["stsRequest"] = sts_request
    return req


def open_granted_key(priv: X25519PrivateKey, eph_pub: bytes, challenge: bytes, document: bytes,
                     config_digest: bytes, response: dict) -> bytes:
    """The requester's side: decrypts encryptedRpcKey (X25519 + HKDF-SHA256 +
    AES-256-GCM with SHA-256(document) || config digest as associated data)."""
    server_pub = b64d(response["ephemeralPublicKey"])
    shared = priv.exchange(X25519PublicKey.from_public_bytes(server_pub))
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=challenge,
               info=KDF_INFO + eph_pub + server_pub).derive(shared)
    sealed = b64d(response["encryptedRpcKey"])
    return AESGCM(key).decrypt(sealed[:12], sealed[12:], hashlib.sha256(document).digest() + config_digest)


def aws_document(fields: dict) -> bytes:
    """AWS pretty-print of an identity document (as fake_aws/IMDS serve it)."""
    return ("{\n" + ",\n".join(f"  {json.dumps(k)} : {json.dumps(v)}" for k, v in fields.items())
            + "\n}").encode()


def lookalike_pkcs7(document: bytes, ca_der: bytes) -> bytes:
    """PKCS#7 over `document` made with a self-generated key whose certificate
    copies the trusted CA's subject and serial (so issuer+serial point at the
    pinned CA) and is embedded in the blob."""
    ca = x509.load_der_x509_certificate(ca_der)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(ca.subject).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(ca.serial_number)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return (pkcs7.PKCS7SignatureBuilder().set_data(document)
            .add_signer(cert, key, hashes.SHA256())
            .sign(serialization.Encoding.DER,
                  [pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.NoCapabilities]))


# --------------------------------------------------------------------------
# SigV4 (strong mode: sts:GetCallerIdentity signed by an instance role)
# --------------------------------------------------------------------------

STS_BODY = "Action=GetCallerIdentity&Version=2011-06-15"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_sts_request(credentials: dict, sts_url: str, region: str, bound: dict[str, str],
                      now: datetime.datetime | None = None) -> dict:
    """A SignedRequest JSON {method, url, headers: [[name, value]...], body} for
    STS GetCallerIdentity, signing `bound` extra headers, with these credentials."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    host = sts_url.split("://", 1)[1].split("/", 1)[0]
    headers = [("content-type", "application/x-www-form-urlencoded; charset=utf-8"), ("host", host)]
    headers += [(k.lower(), v) for k, v in bound.items()]
    headers += [("x-amz-date", amz_date), ("x-amz-security-token", credentials["Token"])]
    canon = sorted((n, " ".join(v.strip().split())) for n, v in headers)
    signed = ";".join(n for n, _ in canon)
    canonical_request = "\n".join([
        "POST", "/", "", "".join(f"{n}:{v}\n" for n, v in canon), signed,
        hashlib.sha256(STS_BODY.encode()).hexdigest()])
    scope = f"{day}/{region}/sts/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical_request.encode()).hexdigest()])
    k = _hmac(("AWS4" + credentials["SecretAccessKey"]).encode(), day)
    for part in (region, "sts", "aws4_request"):
        k = _hmac(k, part)
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    auth = (f"AWS4-HMAC-SHA256 Credential={credentials['AccessKeyId']}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}")
    headers.append(("authorization", auth))
    return {"method": "POST", "url": sts_url, "headers": [list(h) for h in headers], "body": STS_BODY}


def strong_bound_headers(challenge: bytes, eph_pub: bytes, config_digest: bytes) -> dict:
    """The extra headers a strong-mode stsRequest must sign (bind it to this join)."""
    return {"x-vssm-challenge": b64e(challenge),
            "x-vssm-ephemeral-key-sha256": hashlib.sha256(eph_pub).hexdigest(),
            "x-vssm-config-digest": config_digest.hex()}
