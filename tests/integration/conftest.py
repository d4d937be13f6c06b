"""Black-box integration harness for VSSM.

Everything here talks to the `vssm` binary over the network exactly as an
external client would; nothing imports or reads the Rust code.

Pieces:
- Pki: the certificates, built with the openssl CLI the way the first VSSM's
  README told operators to (CA, X.509 v1 client certificates, RPC certificate
  with CN=VSSM and no SAN, PKCS#8 DER RPC key).
- ApiClient: a keep-alive HTTPS/JSON client (http.client + ssl) that verifies the
  server as `VSSM` against the RPC certificate and presents a client
  certificate.
- Node: one `vssm serve` process on its own 127.0.0.x address with the default
  ports; start/stop/bootstrap helpers. Fixtures always stop what they start.
- Local crypto references (symmetric modes, paddings, backups) built only on
  the Python `cryptography` package.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding as apad
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

try:  # cryptography >= 43 moved 3DES to "decrepit"
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover
    TripleDES = algorithms.TripleDES

# --------------------------------------------------------------------------
# Locations
# --------------------------------------------------------------------------

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TESTDATA = REPO / "testdata"
WYCHEPROOF = TESTDATA / "wycheproof"
VSSM_BIN = Path(os.environ.get("VSSM_BIN", REPO / "target" / "release" / "vssm"))

API_PORT, HEALTH_PORT = 8080, 8081

# One loopback address per node so tests never clash with each other or with
# a developer's `vssm dev` node.
IP_MAIN = "127.0.0.11"
IP_BOOTSTRAP = "127.0.0.12"
IP_RESTART = "127.0.0.13"
IP_EC_RPC = "127.0.0.14"
IP_DEV = "127.0.0.15"
IP_PASSWORD = "127.0.0.16"
IP_PLAIN = "127.0.0.17"
IP_CONFIG_ERR = "127.0.0.19"

ADMIN_PASSWORD = "correct horse battery staple " + uuid.uuid4().hex[:8]
SCRYPT_LOG_N = 10  # fast; the format is the same as with 15


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64d(text: str) -> bytes:
    """Strict decode of what the server writes: standard alphabet, padded."""
    assert isinstance(text, str), f"expected base64 string, got {text!r}"
    assert re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text) and len(text) % 4 == 0, (
        f"not standard padded base64: {text[:80]!r}")
    return base64.b64decode(text, validate=True)


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def scrypt_mcf(password: str, log_n: int = SCRYPT_LOG_N, r: int = 8, p: int = 1,
               lower_hex: bool = False) -> str:
    salt = os.urandom(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=1 << log_n, r=r, p=p,
                        dklen=32, maxmem=256 * 1024 * 1024)
    params = format((log_n << 16) | (r << 8) | p, "x" if lower_hex else "X")
    return f"$s0${params}${b64e(salt)}${b64e(dk)}"


def scrypt_mcf_verify(mcf: str, password: str) -> dict:
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


def openssl(*args, cwd: Path):
    res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {res.stderr}")
    return res.stdout


def pem_to_der_cert(path: Path) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(
        serialization.Encoding.DER)


# --------------------------------------------------------------------------
# PKI (openssl CLI, old VSSM README recipe)
# --------------------------------------------------------------------------

class Pki:
    def __init__(self, root: Path):
        self.dir = root
        root.mkdir(parents=True, exist_ok=True)
        self.ca_crt, self.ca_key = self._make_ca("ca", "VSSM Test Client CA")
        self.rogue_ca_crt, self.rogue_ca_key = self._make_ca("rogue-ca", "Rogue CA")
        # RPC certificate: self-signed, CN=VSSM, no SAN (README recipe).
        self.rpc_crt, self.rpc_key_pem = self.dir / "rpc.crt", self.dir / "rpc.key"
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rpc.key",
                "-subj", "/CN=VSSM", "-days", "365", "-out", "rpc.crt", cwd=root)
        openssl("pkcs8", "-topk8", "-nocrypt", "-in", "rpc.key", "-outform", "DER",
                "-out", "rpc.pk8.der", cwd=root)
        self.rpc_pkcs8_der = (root / "rpc.pk8.der").read_bytes()
        self.rpc_cert_der = pem_to_der_cert(self.rpc_crt)
        self.rpc_private_key = serialization.load_der_private_key(self.rpc_pkcs8_der, None)
        self._clients: dict[tuple[str, str], tuple[Path, Path]] = {}
        self._ec_rpc = None

    def _make_ca(self, stem: str, cn: str):
        openssl("genrsa", "-out", f"{stem}.key", "2048", cwd=self.dir)
        openssl("req", "-x509", "-new", "-key", f"{stem}.key", "-subj", f"/CN={cn}",
                "-days", "3650", "-out", f"{stem}.crt", cwd=self.dir)
        return self.dir / f"{stem}.crt", self.dir / f"{stem}.key"

    def client_cert(self, cn: str = "vssm-test-client", rogue: bool = False):
        """CSR + `openssl x509 -req -CA ... -CAcreateserial` => X.509 v1 cert."""
        key = (cn, "rogue" if rogue else "ca")
        if key not in self._clients:
            stem = ("rogue-" if rogue else "") + re.sub(r"[^A-Za-z0-9_.-]", "_", cn)
            ca = "rogue-ca" if rogue else "ca"
            openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{stem}.key",
                    "-subj", f"/CN={cn}", "-out", f"{stem}.csr", cwd=self.dir)
            openssl("x509", "-req", "-in", f"{stem}.csr", "-CA", f"{ca}.crt", "-CAkey",
                    f"{ca}.key", "-CAcreateserial", "-days", "365", "-out", f"{stem}.crt",
                    cwd=self.dir)
            self._clients[key] = (self.dir / f"{stem}.crt", self.dir / f"{stem}.key")
        return self._clients[key]

    def ec_rpc(self):
        """EC P-256 RPC certificate + PKCS#8 DER key (variant)."""
        if self._ec_rpc is None:
            openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", "rpc-ec.key", "-subj", "/CN=VSSM", "-days", "365",
                    "-out", "rpc-ec.crt", cwd=self.dir)
            openssl("pkcs8", "-topk8", "-nocrypt", "-in", "rpc-ec.key", "-outform", "DER",
                    "-out", "rpc-ec.pk8.der", cwd=self.dir)
            self._ec_rpc = (self.dir / "rpc-ec.crt", (self.dir / "rpc-ec.pk8.der").read_bytes())
        return self._ec_rpc

    def config(self, ip: str, password_hash: str, rpc_crt: Path | None = None, **extra) -> dict:
        cfg = {
            "rpcCertificate": b64e(pem_to_der_cert(rpc_crt or self.rpc_crt)),
            "clientTrustStore": [b64e(pem_to_der_cert(self.ca_crt))],
            "rootPassword": password_hash,
            "bindAddress": ip,
        }
        cfg.update(extra)
        return cfg


# --------------------------------------------------------------------------
# HTTP/JSON client
# --------------------------------------------------------------------------

class Resp:
    def __init__(self, status: int, body: bytes, headers, request_desc: str):
        self.status, self.body, self.headers, self.request = status, body, headers, request_desc
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<{self.request} -> HTTP {self.status} {self.text[:300]!r}>"

    def error(self) -> str:
        assert isinstance(self.json, dict) and set(self.json) == {"error"} and isinstance(
            self.json["error"], str), f"error body must be {{\"error\": \"...\"}}: {self!r}"
        return self.json["error"]


class _Conn(http.client.HTTPSConnection):
    def __init__(self, host, port, context, sni, timeout):
        super().__init__(host, port, context=context, timeout=timeout)
        self._sni = sni

    def connect(self):
        sock = socket.create_connection((self.host, self.port), self.timeout)
        # http.client sends headers and body in two writes: with Nagle on,
        # the body waits for the server's delayed ACK (40 ms a request).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._sni)


def tls_context(ca: Path | None = None, cert=None, hostname_check=True,
                alpn=("http/1.1",), min_version=None, max_version=None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cafile=str(ca))
        ctx.check_hostname = hostname_check
        ctx.hostname_checks_common_name = True  # the README RPC cert has CN only
    if cert:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def _without_secrets(body: bytes) -> bytes:
    """The request body for failure messages, with the password and the RPC key masked."""
    return re.sub(rb'"(adminPassword|rpcPrivateKey)"\s*:\s*"[^"]*"', rb'"\1":"<redacted>"', body)


class ApiClient:
    """Keep-alive JSON client. `ca=None` = do not verify (pre-bootstrap)."""

    def __init__(self, host, port=API_PORT, ca=None, cert=None, sni="VSSM", timeout=60,
                 password=ADMIN_PASSWORD, context=None):
        self.host, self.port, self.sni, self.timeout = host, port, sni, timeout
        self.ctx = context or tls_context(ca, cert)
        self.password = password
        self.conn = None

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def _new_conn(self):
        self.close()
        self.conn = _Conn(self.host, self.port, self.ctx, self.sni, self.timeout)
        self.conn.connect()

    def peer_cert_der(self) -> bytes:
        if self.conn is None or self.conn.sock is None:
            self._new_conn()
        return self.conn.sock.getpeercert(binary_form=True)

    def post_raw(self, path: str, body: bytes, headers: dict | None = None,
                 method: str = "POST") -> Resp:
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        desc = f"{method} {path} {_without_secrets(body)[:200]!r}"
        for attempt in (0, 1):
            reused = self.conn is not None
            try:
                if self.conn is None:
                    self._new_conn()
                self.conn.request(method, path, body=body, headers=hdrs)
                r = self.conn.getresponse()
                data = r.read()
                if r.will_close:
                    self.close()
                return Resp(r.status, data, r.headers, desc)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.BadStatusLine, ssl.SSLEOFError,
                    ssl.SSLZeroReturnError):
                self.close()
                if attempt == 0 and reused:
                    continue  # idle keep-alive connection closed by the server
                raise
            except Exception:
                self.close()
                raise
        raise AssertionError("unreachable")

    def post(self, path: str, obj) -> Resp:
        body = obj if isinstance(obj, (bytes, bytearray)) else json.dumps(obj).encode()
        return self.post_raw(path, bytes(body))

    def ok(self, path: str, obj) -> dict:
        r = self.post(path, obj)
        assert r.status == 200, f"expected 200: {r!r}"
        assert isinstance(r.json, dict), f"expected JSON object: {r!r}"
        return r.json

    # --- admin helpers -------------------------------------------------
    def admin(self, op: str, **fields) -> Resp:
        return self.post(f"/REST/v1/admin/{op}", {"adminPassword": self.password, **fields})

    def admin_ok(self, op: str, **fields) -> dict:
        return self.ok(f"/REST/v1/admin/{op}", {"adminPassword": self.password, **fields})

    def inject(self, name: str, key_type: str, key: bytes) -> dict:
        return self.admin_ok("injectkey", keyName=name, keyType=key_type, key=b64e(key))

    def generate(self, name: str, key_type: str, key_size=None, key_spec=None) -> Resp:
        f = {"keyName": name, "keyType": key_type}
        if key_size is not None:
            f["keySize"] = key_size
        if key_spec is not None:
            f["keySpec"] = key_spec
        return self.admin("generatekey", **f)

    def listkeys(self, **f) -> dict:
        return self.admin_ok("listkeys", **f)

    # --- crypto helpers ------------------------------------------------
    def op(self, path: str, **fields) -> Resp:
        body = {k: (b64e(v) if isinstance(v, (bytes, bytearray)) else v) for k, v in fields.items()}
        return self.post(f"/REST/v1/{path}", body)

    def op_ok(self, path: str, **fields) -> dict:
        r = self.op(path, **fields)
        assert r.status == 200, f"expected 200: {r!r}"
        return r.json

    def out(self, path: str, **fields) -> bytes:
        return b64d(self.op_ok(path, **fields)["output"])


def try_request(client: ApiClient, path: str, obj):
    """Return Resp, or the exception raised by the TLS/HTTP stack."""
    try:
        return client.post(path, obj)
    except (ssl.SSLError, OSError, http.client.HTTPException) as e:
        return e


def health(ip: str, timeout=2.0):
    try:
        c = http.client.HTTPConnection(ip, HEALTH_PORT, timeout=timeout)
        c.request("GET", "/REST/v1/healthcheck")
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
        c.close()
        return r.status, body
    except (OSError, http.client.HTTPException):
        return None


# --------------------------------------------------------------------------
# Node process
# --------------------------------------------------------------------------

def terminate(proc: subprocess.Popen | None, timeout: float = 5):
    """Stops `proc` if it still runs: SIGTERM, then SIGKILL after `timeout` s."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def require_binary(binary: Path | None = None):
    binary = binary or VSSM_BIN
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"vssm binary not found at {binary} (build it: cargo build --release, "
                    f"or set VSSM_BIN)")


class Node:
    def __init__(self, pki: Pki, ip: str, workdir: Path, password: str = ADMIN_PASSWORD,
                 password_hash: str | None = None, rpc_crt: Path | None = None,
                 rpc_pkcs8: bytes | None = None, **extra_config):
        self.pki, self.ip, self.dir = pki, ip, workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.rpc_crt = rpc_crt or pki.rpc_crt
        self.rpc_pkcs8 = rpc_pkcs8 or pki.rpc_pkcs8_der
        self.config = pki.config(ip, password_hash or scrypt_mcf(password), self.rpc_crt,
                                 **extra_config)
        self.config_path = self.dir / "config.json"
        self.config_path.write_text(json.dumps(self.config, indent=2))
        self.proc: subprocess.Popen | None = None
        self.log_path = self.dir / "vssm.log"
        self._logf = None
        self._clients: list[ApiClient] = []

    # -- process --
    binary = VSSM_BIN  # the cluster harness runs its own build

    def start(self, args=None, wait=True):
        require_binary(self.binary)
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._logf = open(self.log_path, "ab")
        self._logf.write(f"\n===== start {time.strftime('%H:%M:%S')} =====\n".encode())
        self._logf.flush()
        cmd = [str(self.binary)] + (args if args is not None else
                                 ["serve", "--config", str(self.config_path)])
        self.proc = subprocess.Popen(cmd, cwd=self.dir, stdin=subprocess.DEVNULL,
                                     stdout=self._logf, stderr=subprocess.STDOUT)
        if wait:
            self.wait_health()
        return self

    def wait_health(self, want=None, timeout=30.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"vssm exited with {self.proc.returncode}; log:\n{self.log()[-3000:]}")
            h = health(self.ip)
            if h is not None and (want is None or h[0] == want):
                return h
            time.sleep(0.05)
        pytest.fail(f"node {self.ip} not healthy (want {want}) within {timeout}s; "
                    f"last={health(self.ip)}; log:\n{self.log()[-3000:]}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        for c in self._clients:
            c.close()
        self._clients.clear()
        terminate(self.proc)
        if self._logf:
            self._logf.close()
            self._logf = None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.stop()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- clients --
    def pre_client(self) -> ApiClient:
        c = ApiClient(self.ip, ca=None, cert=None, password=self.password)
        self._clients.append(c)
        return c

    def client(self, cn: str = "vssm-test-client", **kw) -> ApiClient:
        c = ApiClient(self.ip, ca=self.rpc_crt, cert=self.pki.client_cert(cn),
                      password=self.password, **kw)
        self._clients.append(c)
        return c

    def bootstrap(self, key_der: bytes | None = None) -> Resp:
        c = self.pre_client()
        try:
            return c.post("/REST/v1/admin/bootstrap",
                          {"rpcPrivateKey": b64e(key_der or self.rpc_pkcs8)})
        finally:
            c.close()

    def start_bootstrapped(self):
        self.start()
        r = self.bootstrap()
        assert r.status == 200, f"bootstrap failed: {r!r}\n{self.log()[-2000:]}"
        self.wait_health(want=200)
        return self


# --------------------------------------------------------------------------
# Local crypto references
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
    c = Cipher(_alg(cipher, key), modes.ECB())
    x = c.decryptor() if decrypt else c.encryptor()
    return x.update(data) + x.finalize()


def pkcs7_pad(data: bytes, bs: int) -> bytes:
    n = bs - len(data) % bs
    return data + bytes([n]) * n


def pkcs7_unpad(data: bytes, bs: int) -> bytes:
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


HASHES = {"SHA1": hashes.SHA1, "SHA256": hashes.SHA256, "SHA384": hashes.SHA384,
          "SHA512": hashes.SHA512}


def oaep(h: str):
    return apad.OAEP(mgf=apad.MGF1(HASHES[h]()), algorithm=HASHES[h](), label=None)


def digest(h: str, data: bytes) -> bytes:
    d = hashes.Hash(HASHES[h]())
    d.update(data)
    return d.finalize()


# --------------------------------------------------------------------------
# Backups (format of the first VSSM, API.md "BackupBlob")
# --------------------------------------------------------------------------

def open_backup(blob: dict, rpc_private_key) -> dict:
    data_key = rpc_private_key.decrypt(b64d(blob["encryptionKey"]), oaep("SHA256"))
    assert len(data_key) == 32, "backup data key must be 32 bytes (AES-256)"
    state = b64d(blob["encryptedState"])
    plain = AESGCM(data_key).decrypt(state[:12], state[12:], None)
    return json.loads(plain)


def make_backup(inventory: dict, rpc_public_key, version=1, timestamp_ms=None,
                raw_json: bytes | None = None) -> dict:
    data_key = os.urandom(32)
    nonce = os.urandom(12)
    plain = raw_json if raw_json is not None else json.dumps(inventory).encode()
    return {
        "encryptionKey": b64e(rpc_public_key.encrypt(data_key, oaep("SHA256"))),
        "version": version,
        "timestamp": str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)),
        "encryptedState": b64e(nonce + AESGCM(data_key).encrypt(nonce, plain, None)),
    }


def pkcs8(private_key) -> bytes:
    return private_key.private_bytes(serialization.Encoding.DER,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.fail("openssl CLI is required")
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def main_node(pki, tmp_path_factory):
    """The shared, bootstrapped node on 127.0.0.11."""
    require_binary()
    node = Node(pki, IP_MAIN, tmp_path_factory.mktemp("node-main"))
    try:
        node.start_bootstrapped()
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def api(main_node) -> ApiClient:
    """mTLS client of the main node (its subject never fails an admin login)."""
    c = main_node.client()
    yield c
    c.close()


@pytest.fixture
def make_node(pki, tmp_path):
    """Factory for extra nodes; every node started is stopped at teardown."""
    nodes = []

    def factory(ip, **kw) -> Node:
        require_binary()
        n = Node(pki, ip, tmp_path / f"node-{ip}-{len(nodes)}", **kw)
        nodes.append(n)
        return n

    yield factory
    for n in nodes:
        n.stop()
