"""Shared pieces of fake_aws: defaults, time and file helpers, AWS errors,
query-API list decoding and pagination, the threading HTTP server."""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.server
import json
import os
import secrets
import string
import threading
from xml.sax.saxutils import escape as _xml_escape

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


def role_id(account: str, role: str) -> str:
    h = hashlib.sha256(f"{account}/{role}".encode()).digest()
    alphabet = string.ascii_uppercase + "234567"
    return "AROA" + "".join(alphabet[b % 32] for b in h[:17])


class Conflict(Exception):
    """Control API: the instance exists (409)."""


class ApiError(Exception):
    """An AWS error answer: HTTP status, error code, message; `debug` goes to
    the request log (canonical request on a signature mismatch)."""

    def __init__(self, status: int, code: str, message: str, sender: bool = True, debug: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.sender = status, code, message, sender
        self.debug = debug or {}


# --------------------------------------------------------------------------
# query API: list parameters and pagination

def members(p: dict, prefix: str) -> list[str]:
    """Values of prefix.1, prefix.2, ... (AWS query list encoding)."""
    out = []
    for k, v in p.items():
        if k.startswith(prefix + "."):
            idx = k[len(prefix) + 1:]
            if idx.isdigit():
                out.append((int(idx), v))
    return [v for _, v in sorted(out)]


def page_size(config: dict, action: str, given: str | None, lo: int, hi: int, default: int | None,
              name: str) -> int | None:
    """MaxRecords/MaxResults if given (validated as AWS does), else the test
    knob config["pageSize"][action], else `default`."""
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
    forced = config.get("pageSize", {}).get(action)
    return int(forced) if forced else default


def next_token(action: str, offset: int) -> str:
    return base64.b64encode(json.dumps({"a": action, "o": offset}).encode()).decode()


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


class ThreadingServer(http.server.ThreadingHTTPServer):
    """One thread per connection, daemon threads, quick port reuse."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

