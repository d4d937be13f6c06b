"""The HTTPS/JSON client of the API (http.client + ssl): keep-alive, verifies
the server as `VSSM` against the RPC certificate (CN only, as in the README
recipe), presents a client certificate, and masks secrets in failure
messages."""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
from pathlib import Path

from vssmtest.util import ADMIN_PASSWORD, API_PORT, b64d, b64e


class Resp:
    """One HTTP answer: status, body, headers, json (None if not JSON)."""

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
        """The message of an `{"error": "..."}` body (asserts that shape)."""
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
    """Client context: `ca=None` = no verification; `cert` = (crt, key) paths."""
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
        """Sends `body` as is; retries once if the server had closed an idle
        keep-alive connection."""
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
    def _admin_body(self, fields: dict) -> dict:
        """`fields` with this client's adminPassword; none if the password is
        None (certificate administration)."""
        return fields if self.password is None else {"adminPassword": self.password, **fields}

    def admin(self, op: str, **fields) -> Resp:
        return self.post(f"/REST/v1/admin/{op}", self._admin_body(fields))

    def admin_ok(self, op: str, **fields) -> dict:
        return self.ok(f"/REST/v1/admin/{op}", self._admin_body(fields))

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

    # --- authorization (issue 9) ---------------------------------------
    def whoami(self) -> dict:
        return self.ok("/REST/v1/authz/whoami", {})

    def create_grants(self, *grants: dict) -> list[dict]:
        """admin/creategrants of `grants` (see vssmtest.authz.grant); the created grants."""
        return self.admin_ok("creategrants", grants=list(grants))["grants"]

    def revoke_grants(self, *ids: str) -> dict:
        return self.admin_ok("revokegrants", ids=list(ids))

    def set_policy(self, enforce: bool) -> dict:
        return self.admin_ok("setpolicy", enforce=enforce)

    # --- crypto helpers ------------------------------------------------
    def op(self, path: str, **fields) -> Resp:
        """POST /REST/v1/PATH; bytes fields are sent as base64."""
        body = {k: (b64e(v) if isinstance(v, (bytes, bytearray)) else v) for k, v in fields.items()}
        return self.post(f"/REST/v1/{path}", body)

    def op_ok(self, path: str, **fields) -> dict:
        r = self.op(path, **fields)
        assert r.status == 200, f"expected 200: {r!r}"
        return r.json

    def out(self, path: str, **fields) -> bytes:
        """The decoded `output` field of a successful operation."""
        return b64d(self.op_ok(path, **fields)["output"])


def try_request(client: ApiClient, path: str, obj):
    """Return Resp, or the exception raised by the TLS/HTTP stack."""
    try:
        return client.post(path, obj)
    except (ssl.SSLError, OSError, http.client.HTTPException) as e:
        return e
