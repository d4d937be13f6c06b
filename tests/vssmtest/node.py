"""One `vssm serve` process on its own 127.0.0.x address with the default
ports (API 8080, health 8081): start/stop/kill, health polling, bootstrap,
clients. Whoever starts a Node stops it (the fixtures do at teardown)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from vssmtest.client import ApiClient, Resp
from vssmtest.crypto_ref import scrypt_mcf
from vssmtest.pki import Pki
from vssmtest.util import ADMIN_PASSWORD, API_PORT, HEALTH_PORT, VSSM_BIN, b64e

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


def health(ip: str, timeout=2.0):
    """(status, body) of GET /REST/v1/healthcheck on IP:8081, None if unreachable."""
    try:
        c = http.client.HTTPConnection(ip, HEALTH_PORT, timeout=timeout)
        c.request("GET", "/REST/v1/healthcheck")
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
        c.close()
        return r.status, body
    except (OSError, http.client.HTTPException):
        return None


def terminate(proc: subprocess.Popen | None, timeout: float = 5):
    """Stops `proc` if it still runs: SIGTERM, then SIGKILL after `timeout` s."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def address_taken(ip: str, ports=(API_PORT, HEALTH_PORT)) -> int | None:
    """The first of `ports` on `ip` that already accepts connections, else None.
    A second node on a taken address refuses to start; this check names the
    cause (a stray node, or a concurrent test run on the same machine) before
    a test fails on that."""
    for port in ports:
        try:
            socket.create_connection((ip, port), timeout=0.5).close()
            return port
        except OSError:
            pass
    return None


def require_binary(binary: Path | None = None):
    """Fails the test (not skip: a missing binary is a broken setup) unless
    `binary` (default VSSM_BIN) is an executable file."""
    binary = binary or VSSM_BIN
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"vssm binary not found at {binary} (build it: cargo build --release, "
                    f"or set VSSM_BIN)")


class Node:
    """A node's directory (config.json, vssm.log) and process."""

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
        taken = address_taken(self.ip)
        if taken is not None:
            pytest.fail(f"{self.ip}:{taken} is already served by another process (a stray node, or "
                        f"another test run on this machine)")
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
        """Polls the health port until it answers (with status `want` if given)."""
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
        """Unverified client for the pre-bootstrap API."""
        c = ApiClient(self.ip, ca=None, cert=None, password=self.password)
        self._clients.append(c)
        return c

    def client(self, cn: str = "vssm-test-client", cert=None, **kw) -> ApiClient:
        """mTLS client with a certificate of the test CA: subject CN=`cn`, or
        `cert` ((crt, key) paths). `password=None` omits adminPassword."""
        kw.setdefault("password", self.password)
        c = ApiClient(self.ip, ca=self.rpc_crt, cert=cert or self.pki.client_cert(cn), **kw)
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

    # -- after the tests --
    def survival_problems(self) -> list[str]:
        """What is wrong with a node that should have come through everything
        unharmed: not running, health not (200, running), admin listkeys
        refused, or a panic in its log (a panicking thread need not kill the
        process). Empty if all is well."""
        if not self.alive():
            rc = None if self.proc is None else self.proc.returncode
            return [f"node {self.ip} died: rc={rc}\n{self.log()[-3000:]}"]
        problems = []
        h = health(self.ip)
        if h != (200, "running"):
            problems.append(f"node {self.ip} health is {h!r}, not (200, 'running')")
        c = self.client(timeout=10)  # a hung node must not stall the run for long
        try:
            r = c.admin("listkeys")
            if r.status != 200:
                problems.append(f"node {self.ip} admin listkeys: {r!r}")
        except (OSError, http.client.HTTPException) as e:
            problems.append(f"node {self.ip} admin listkeys: {e!r}")
        finally:
            c.close()
        log = self.log()
        if "panicked" in log:
            problems.append(f"node {self.ip} panicked:\n{log[max(0, log.find('panicked') - 500):][:2000]}")
        return problems
