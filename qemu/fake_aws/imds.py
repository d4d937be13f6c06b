"""IMDSv2 of one instance: stateless HMAC tokens, the metadata tree, the
request handler of the per-instance listeners, and --imds-stdio (one
connection over stdin/stdout for qemu's guestfwd)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import os
import secrets
import socket
import sys
import time
import traceback
import urllib.parse

from .common import (IMDS_STDIO_LOG, IMDS_STDIO_REQUESTS, STATE_FILE, TOKEN_KEY_FILE, atomic_write,
                     b64wrap, iso, role_id, utcnow)
from .identity import identity_document

def aws_pretty_json(obj: dict) -> str:
    """IMDS's JSON style for credentials: `"k" : v`, two-space indent."""
    return "{\n" + ",\n".join(f'  "{k}" : {json.dumps(v)}' for k, v in obj.items()) + "\n}"


# --------------------------------------------------------------------------
# IMDSv2 tokens: stateless HMAC tokens bound to the instance, so the
# per-connection --imds-stdio processes accept tokens minted by each other.

class TokenMinter:
    """Mints and checks IMDSv2 tokens with the key in DIR/imds-token.key."""

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
        # Recorded before the answer goes out: a client that reads the log
        # right after its answer finds its request in it.
        self.record({"kind": "imds", "instanceId": self.instance_id, "method": self.command,
                     "path": self.path, "status": status})
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = do_PATCH = _serve

    def log_message(self, fmt, *args):
        pass


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

