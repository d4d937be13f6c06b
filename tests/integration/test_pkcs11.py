"""libvssm_pkcs11.so under real PKCS#11 clients, against live nodes (issue 11,
item 9): OpenSC's pkcs11-tool, OpenSSL through libp11's engine (a self-signed
certificate, s_server/s_client over TLS 1.2 and 1.3), a Go program on
miekg/pkcs11 following Bank-Vaults' and OpenBao's paths, PyKCS11, p11-kit
with GnuTLS's p11tool, and failover in a two-node cluster. Every signature is
verified outside the module (openssl or `cryptography`) against the public
key the node reports.

VSSM_PKCS11_MODULE names the module (default: target/debug/libvssm_pkcs11.so
of VSSM_BIN's target directory). A missing module or client tool fails the
test with what to install; nothing is skipped. scripts/test.sh installs the
tools (Debian 12 packages opensc, libengine-pkcs11-openssl, gnutls-bin,
golang-go, golang-github-miekg-pkcs11-dev; PyKCS11 from tests/requirements.txt).

Addresses: 127.0.0.230 (the node), 127.0.0.231-232 (the cluster), and
127.0.0.230:4433-4434 for s_server.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from vssmtest.cluster import static_cluster, wait_until
from vssmtest.node import Node, require_binary
from vssmtest.util import REPO, VSSM_BIN, b64d, uniq

IP = "127.0.0.230"
CLUSTER_IPS = ["127.0.0.231", "127.0.0.232"]
MODULE = Path(os.environ.get("VSSM_PKCS11_MODULE")
              or VSSM_BIN.resolve().parent.parent / "debug" / "libvssm_pkcs11.so")
CLIENTS = REPO / "tests" / "pkcs11"
TOKEN = "VSSM"
PIN = "any"

# --------------------------------------------------------------------------
# Tools: fail (never skip) with what to install.
# --------------------------------------------------------------------------

PACKAGES = {"pkcs11-tool": "opensc", "p11tool": "gnutls-bin", "go": "golang-go", "openssl": "openssl"}


def require_module():
    if not MODULE.is_file():
        pytest.fail(f"PKCS#11 module not found at {MODULE}: build it (cargo build -p vssm-pkcs11) "
                    f"or set VSSM_PKCS11_MODULE")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install the Debian package {PACKAGES[name]} (scripts/test.sh does)")
    return path


def engine_path() -> Path:
    out = subprocess.run(["openssl", "version", "-e"], capture_output=True, text=True).stdout
    engines = Path(out.split('"')[1]) if '"' in out else Path("/usr/lib/x86_64-linux-gnu/engines-3")
    path = engines / "pkcs11.so"
    if not path.is_file():
        pytest.fail(f"libp11's engine not found at {path}: install libengine-pkcs11-openssl")
    return path


def run(cmd, env=None, input=None, timeout=60, check=True) -> subprocess.CompletedProcess:
    """Runs `cmd` (bytes in and out); fails the test with its output unless
    it exits 0 (when `check`)."""
    r = subprocess.run([str(c) for c in cmd], env=env, input=input, capture_output=True, timeout=timeout)
    if check and r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {r.returncode}\nstdout:\n"
                    f"{r.stdout.decode(errors='replace')[-3000:]}\nstderr:\n{r.stderr.decode(errors='replace')[-3000:]}")
    return r


def text(r: subprocess.CompletedProcess) -> str:
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


# --------------------------------------------------------------------------
# The node and the module's configurations
# --------------------------------------------------------------------------

class Token:
    """A node on IP, an API client, and module configuration files."""

    def __init__(self, node: Node, root: Path, pki):
        self.node, self.dir = node, root
        self.api = node.client()
        crt, key = pki.client_cert("vssm-pkcs11-client")
        (root / "admin-password").write_text(node.password)
        self.base = {"serverCertificate": str(pki.rpc_crt), "clientCertificate": str(crt),
                     "clientKey": str(key), "tokenLabel": TOKEN,
                     "adminPasswordFile": str(root / "admin-password")}
        self.config = self.write_config("pkcs11.json", nodes=[f"{IP}:8080"])
        # libp11 0.4.12 cannot enumerate a token holding an Ed25519 key.
        self.config_no_ed = self.write_config("pkcs11-openssl.json", nodes=[f"{IP}:8080"],
                                              hideKeyTypes=["ED25519"])

    def write_config(self, name: str, **fields) -> Path:
        path = self.dir / name
        path.write_text(json.dumps({**self.base, **fields}, indent=2))
        return path

    def env(self, config: Path | None = None, **extra) -> dict:
        return {**os.environ, "VSSM_PKCS11_CONFIG": str(config or self.config), **extra}

    def tool(self, *args, config: Path | None = None, **kw) -> subprocess.CompletedProcess:
        """pkcs11-tool --module MODULE ARGS."""
        return run([require_tool("pkcs11-tool"), "--module", MODULE, *args], env=self.env(config), **kw)

    def public_key(self, name: str):
        """The public key the node reports (keys/publickey) and its PEM file."""
        answer = self.api.op_ok("keys/publickey", keyName=name)
        der = b64d(answer["publicKey"])
        pem = self.dir / f"{name}.pub.pem"
        pem.write_bytes(serialization.load_der_public_key(der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return der, pem

    def generate(self, name, key_type, size=None, spec=None):
        r = self.api.generate(name, key_type, size, spec)
        assert r.status == 200, r
        return name


@pytest.fixture(scope="module")
def token(pki, tmp_path_factory):
    require_binary()
    require_module()
    root = tmp_path_factory.mktemp("pkcs11")
    node = Node(pki, IP, root / "node")
    try:
        node.start_bootstrapped()
        t = Token(node, root, pki)
        # Keys made through the API for the clients that only use keys.
        t.generate("api-ec", "ASYMMETRIC", 256, "EC")
        t.generate("api-rsa", "ASYMMETRIC", 2048, "RSA")
        t.generate("api-aes", "SYMMETRIC", 32)
        yield t
        problems = node.survival_problems()
        assert not problems, "\n".join(problems)
    finally:
        node.stop()


def hexid(label: str) -> str:
    """pkcs11-tool's --id for a VSSM key: CKA_ID is the UTF-8 name."""
    return label.encode().hex()


# --------------------------------------------------------------------------
# pkcs11-tool
# --------------------------------------------------------------------------

def test_pkcs11_tool_lists_slot_token_mechanisms(token):
    slots = text(token.tool("-L"))
    assert "Slot 0" in slots and f"token label        : {TOKEN}" in slots, slots
    assert "token manufacturer : VSSM" in slots, slots
    tokens = text(token.tool("-T"))
    assert "login required" in tokens and "rng" in tokens, tokens
    mechs = text(token.tool("-M"))
    for m in ("RSA-PKCS-KEY-PAIR-GEN", "RSA-PKCS-OAEP", "SHA256-RSA-PKCS-PSS", "ECDSA-SHA256",
              "ECDSA-KEY-PAIR-GEN", "EC-EDWARDS-KEY-PAIR-GEN", "EDDSA", "AES-GCM", "AES-CBC-PAD", "AES-CTR", "SHA256-HMAC"):
        assert m in mechs, (m, mechs)


@pytest.fixture(scope="module")
def tool_keys(token):
    """Keys generated by pkcs11-tool: RSA-2048, P-256, P-384, Ed25519, AES-256, HMAC."""
    names = {k: uniq(f"tool-{k}") for k in ("rsa", "p256", "p384", "ed", "aes", "hmac")}
    for kind, spec in (("rsa", "rsa:2048"), ("p256", "EC:prime256v1"), ("p384", "EC:secp384r1"),
                       ("ed", "EC:edwards25519")):
        out = text(token.tool("--login", "--pin", PIN, "--keypairgen", "--key-type", spec,
                              "--label", names[kind]))
        assert "Key pair generated" in out, out
    for kind, spec in (("aes", "AES:32"), ("hmac", "GENERIC:32")):
        out = text(token.tool("--login", "--pin", PIN, "--keygen", "--key-type", spec, "--label", names[kind]))
        assert "Key generated" in out, out
    listed = {k["name"]: k for k in token.api.ok("/REST/v1/keys/list", {})["keys"]}
    assert listed[names["rsa"]]["keySpec"] == "RSA" and int(listed[names["rsa"]]["keyBits"]) == 2048
    assert listed[names["p384"]]["curve"] in ("P-384", "secp384r1"), listed[names["p384"]]
    assert listed[names["ed"]]["keySpec"] == "ED25519"
    assert listed[names["hmac"]]["keyType"] == "MAC"
    return names


def test_pkcs11_tool_lists_objects_after_login(token, tool_keys):
    out = text(token.tool("-O", "--login", "--pin", PIN))
    for name in tool_keys.values():
        assert f'label:      {name}' in out, (name, out)
    assert "Private Key Object; RSA" in out and "Public Key Object; EC" in out, out
    assert "Secret Key Object; AES" in out, out


def test_pkcs11_tool_read_object_is_the_nodes_public_key(token, tool_keys):
    for kind in ("rsa", "p256", "ed"):
        der, _ = token.public_key(tool_keys[kind])
        out = token.dir / f"{kind}.read.der"
        token.tool("--read-object", "--type", "pubkey", "--label", tool_keys[kind], "-o", out)
        got = out.read_bytes()
        if got.startswith(b"-----BEGIN"):  # pkcs11-tool 0.23 writes Ed25519 keys as PEM
            got = serialization.load_pem_public_key(got).public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert got == der, kind


def digest_info(name: str, digest: bytes) -> bytes:
    prefixes = {"sha256": "3031300d060960864801650304020105000420"}
    return bytes.fromhex(prefixes[name]) + digest


def test_pkcs11_tool_signatures_verify_with_openssl(token, tool_keys):
    data = token.dir / "data.bin"
    data.write_bytes(os.urandom(1500))  # over 1 KiB: hash-and-sign mechanisms
    raw = data.read_bytes()
    d256, d384 = token.dir / "d256.bin", token.dir / "d384.bin"
    d256.write_bytes(hashlib.sha256(raw).digest())
    d384.write_bytes(hashlib.sha384(raw).digest())
    di = token.dir / "digestinfo.bin"
    di.write_bytes(digest_info("sha256", hashlib.sha256(raw).digest()))
    pss = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]

    _, rsa_pem = token.public_key(tool_keys["rsa"])
    _, p256_pem = token.public_key(tool_keys["p256"])
    _, p384_pem = token.public_key(tool_keys["p384"])
    _, ed_pem = token.public_key(tool_keys["ed"])
    cases = [  # key, mechanism, pkcs11-tool input, openssl digest, openssl options, extra tool args
        ("rsa", "SHA1-RSA-PKCS", data, "sha1", [], []),
        ("rsa", "SHA256-RSA-PKCS", data, "sha256", [], []),
        ("rsa", "SHA384-RSA-PKCS", data, "sha384", [], []),
        ("rsa", "SHA512-RSA-PKCS", data, "sha512", [], []),
        ("rsa", "RSA-PKCS", di, "sha256", [], []),
        ("rsa", "SHA256-RSA-PKCS-PSS", data, "sha256", pss, []),
        ("rsa", "SHA384-RSA-PKCS-PSS", data, "sha384", pss, []),
        ("rsa", "SHA512-RSA-PKCS-PSS", data, "sha512", pss, []),
        ("rsa", "RSA-PKCS-PSS", d256, "sha256", pss, ["--hash-algorithm", "SHA256", "--mgf", "MGF1-SHA256"]),
        ("p256", "ECDSA-SHA1", data, "sha1", [], ["--signature-format", "openssl"]),
        ("p256", "ECDSA-SHA256", data, "sha256", [], ["--signature-format", "openssl"]),
        ("p256", "ECDSA", d256, "sha256", [], ["--signature-format", "openssl"]),
        ("p384", "ECDSA-SHA384", data, "sha384", [], ["--signature-format", "openssl"]),
        ("p384", "ECDSA-SHA512", data, "sha512", [], ["--signature-format", "openssl"]),
        ("p384", "ECDSA", d384, "sha384", [], ["--signature-format", "openssl"]),
    ]
    pems = {"rsa": rsa_pem, "p256": p256_pem, "p384": p384_pem}
    failures = []
    for kind, mech, infile, dgst, opts, extra in cases:
        sig = token.dir / f"{kind}-{mech}.sig"
        r = token.tool("--login", "--pin", PIN, "--sign", "-m", mech, "--id", hexid(tool_keys[kind]),
                       "-i", infile, "-o", sig, *extra, check=False)
        if r.returncode != 0:
            failures.append(f"{mech}: pkcs11-tool: {text(r)[-600:]}")
            continue
        v = run(["openssl", "dgst", f"-{dgst}", "-verify", pems[kind], "-signature", sig, *opts, data],
                check=False)
        if v.returncode != 0 or b"Verified OK" not in v.stdout:
            failures.append(f"{mech}: openssl: {text(v)[-600:]}")
    # Ed25519 (pure): openssl pkeyutl over the message.
    sig = token.dir / "ed.sig"
    r = token.tool("--login", "--pin", PIN, "--sign", "-m", "EDDSA", "--id", hexid(tool_keys["ed"]),
                   "-i", data, "-o", sig, check=False)
    if r.returncode != 0:
        failures.append(f"EDDSA: pkcs11-tool: {text(r)[-600:]}")
    else:
        v = run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", ed_pem, "-rawin", "-in", data,
                 "-sigfile", sig], check=False)
        if v.returncode != 0:
            failures.append(f"EDDSA: openssl: {text(v)[-600:]}")
    # HMAC: the node verifies it (the key never leaves it).
    for mech, alg in (("SHA256-HMAC", "SHA256"), ("SHA512-HMAC", "SHA512")):
        sig = token.dir / f"{mech}.mac"
        r = token.tool("--login", "--pin", PIN, "--sign", "-m", mech, "--id", hexid(tool_keys["hmac"]),
                       "-i", data, "-o", sig, check=False)
        if r.returncode != 0:
            failures.append(f"{mech}: pkcs11-tool: {text(r)[-600:]}")
            continue
        ok = token.api.op_ok("hmac/verify", keyName=tool_keys["hmac"], algorithm=alg, input=raw,
                             hmac=sig.read_bytes())
        if ok.get("valid") is not True:
            failures.append(f"{mech}: hmac/verify: {ok}")
    assert not failures, "\n".join(failures)
    # The check is not vacuous: another message does not verify.
    other = token.dir / "other.bin"
    other.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    v = run(["openssl", "dgst", "-sha256", "-verify", p256_pem, "-signature",
             token.dir / "p256-ECDSA-SHA256.sig", other], check=False)
    assert v.returncode != 0 and b"Verification failure" in v.stdout + v.stderr


def test_pkcs11_tool_decrypts_rsa_pkcs_and_oaep(token, tool_keys):
    _, pem = token.public_key(tool_keys["rsa"])
    secret = token.dir / "secret.bin"
    secret.write_bytes(os.urandom(32))
    cases = [
        ("RSA-PKCS", [], []),
        ("RSA-PKCS-OAEP", ["-pkeyopt", "rsa_padding_mode:oaep"], ["--hash-algorithm", "SHA-1"]),
        ("RSA-PKCS-OAEP", ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                           "-pkeyopt", "rsa_mgf1_md:sha256"], ["--hash-algorithm", "SHA256", "--mgf", "MGF1-SHA256"]),
    ]
    for i, (mech, enc_opts, tool_opts) in enumerate(cases):
        ct, pt = token.dir / f"ct{i}.bin", token.dir / f"pt{i}.bin"
        run(["openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", pem, *enc_opts, "-in", secret, "-out", ct])
        token.tool("--login", "--pin", PIN, "--decrypt", "-m", mech, *tool_opts, "--id", hexid(tool_keys["rsa"]),
                   "-i", ct, "-o", pt)
        assert pt.read_bytes() == secret.read_bytes(), (mech, tool_opts)


def test_pkcs11_tool_aes_with_caller_iv(token, tool_keys):
    """AES-CBC-PAD with pkcs11-tool's --iv; the node decrypts iv || ct."""
    plain = token.dir / "aes.in"
    plain.write_bytes(os.urandom(100))
    iv = os.urandom(16)
    ct = token.dir / "aes.ct"
    token.tool("--login", "--pin", PIN, "--encrypt", "-m", "AES-CBC-PAD", "--iv", iv.hex(),
               "--id", hexid(tool_keys["aes"]), "-i", plain, "-o", ct)
    assert len(ct.read_bytes()) == 112
    out = token.api.out("symmetric/decrypt", keyName=tool_keys["aes"], algorithm="AES/CBC/PKCS5Padding",
                        input=iv + ct.read_bytes())
    assert out == plain.read_bytes()


def test_pkcs11_tool_test_login(token, tool_keys):
    out = text(token.tool("--test", "--login", "--pin", PIN, timeout=120))
    assert "No errors" in out, out


def test_pkcs11_tool_test_fork(token):
    out = text(token.tool("--test-fork", timeout=60))
    assert "error" not in out.lower(), out


# --------------------------------------------------------------------------
# OpenSSL through libp11's engine
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def openssl_env(token):
    cnf = token.dir / "openssl-pkcs11.cnf"
    cnf.write_text(f"""openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = {engine_path()}
MODULE_PATH = {MODULE}
PIN = {PIN}
init = 0
""")
    return token.env(token.config_no_ed, OPENSSL_CONF=str(cnf))


def engine_cert(token, env, name: str, *extra) -> Path:
    crt = token.dir / f"{name}.crt"
    run(["openssl", "req", "-new", "-x509", "-engine", "pkcs11", "-keyform", "engine",
         "-key", f"pkcs11:token={TOKEN};object={name};type=private", "-subj", f"/CN={name}",
         "-days", "2", "-sha256", *extra, "-out", crt], env=env)
    return crt


def test_openssl_engine_self_signed_certificate(token, openssl_env):
    for name in ("api-ec", "api-rsa"):
        crt = engine_cert(token, openssl_env, name)
        der, _ = token.public_key(name)
        cert_pub = run(["openssl", "x509", "-in", crt, "-noout", "-pubkey"]).stdout
        assert serialization.load_pem_public_key(cert_pub).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == der
        # Plain openssl checks the certificate's own signature.
        out = run(["openssl", "verify", "-CAfile", crt, "-check_ss_sig", crt]).stdout
        assert b": OK" in out, out


def wait_listening(ip: str, port: int, proc: subprocess.Popen, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"s_server exited {proc.returncode}: {proc.stdout.read().decode(errors='replace')}")
        try:
            socket.create_connection((ip, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"s_server not listening on {ip}:{port}")


@pytest.mark.parametrize("key,port", [("api-ec", 4433), ("api-rsa", 4434)])
def test_openssl_s_server_key_in_vssm(token, openssl_env, key, port):
    crt = engine_cert(token, openssl_env, key)
    server = subprocess.Popen(
        ["openssl", "s_server", "-engine", "pkcs11", "-keyform", "engine",
         "-key", f"pkcs11:token={TOKEN};object={key};type=private", "-cert", str(crt),
         "-accept", f"{IP}:{port}", "-www"],
        env=openssl_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_listening(IP, port, server)
        for version in ("-tls1_2", "-tls1_3"):
            sigalgs = ["-sigalgs", "rsa_pss_rsae_sha256"] if key == "api-rsa" else []
            r = run(["openssl", "s_client", "-connect", f"{IP}:{port}", version, *sigalgs, "-CAfile", crt,
                     "-verify_return_error", "-brief", "-no_ign_eof"], input=b"GET / HTTP/1.0\r\n\r\n",
                    timeout=30, check=False)
            out = text(r)
            assert r.returncode == 0, out
            want = "TLSv1.3" if version == "-tls1_3" else "TLSv1.2"
            assert f"Protocol version: {want}" in out, out
            assert "Verification: OK" in out, out
            if key == "api-rsa":
                assert "rsa_pss" in out.lower() or "RSA-PSS" in out, out
            else:
                assert "ECDSA" in out, out
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --------------------------------------------------------------------------
# Go on miekg/pkcs11: Bank-Vaults' and OpenBao's paths
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hsmclient(tmp_path_factory):
    go = require_tool("go")
    gopath = Path("/usr/share/gocode")
    if not (gopath / "src" / "github.com" / "miekg" / "pkcs11").is_dir():
        pytest.fail("github.com/miekg/pkcs11 not in /usr/share/gocode: install golang-github-miekg-pkcs11-dev")
    out = tmp_path_factory.mktemp("go") / "hsmclient"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(gopath), "GOFLAGS": ""}
    r = subprocess.run([go, "build", "-o", str(out), "."], env=env, cwd=CLIENTS / "hsmclient",
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pytest.fail(f"go build of tests/pkcs11/hsmclient: {r.stdout}{r.stderr}")
    return out


def test_go_bank_vaults_unseal_path(token, hsmclient):
    label = uniq("bank-vaults")
    results = []
    for _ in range(2):  # generates the pair, then finds it
        r = run([hsmclient, "bankvaults", MODULE, TOKEN, PIN, label], env=token.env())
        results.append(json.loads(r.stdout))
    assert [r["generated"] for r in results] == [True, False]
    der, _ = token.public_key(label)
    pub = serialization.load_der_public_key(der).public_numbers()
    assert int(results[1]["modulus"], 16) == pub.n and int(results[1]["exponent"], 16) == pub.e
    assert pub.n.bit_length() == 2048
    for res in results:
        # Real OAEP SHA-1: the node decrypts what the Go client encrypted.
        out = token.api.out("asymmetric/decrypt", keyName=label, algorithm="RSA-OAEP/SHA1",
                            input=bytes.fromhex(res["ciphertext"]))
        assert out.hex() == res["plaintext"]


def test_go_openbao_seal_path(token, hsmclient):
    label = uniq("openbao")
    results = []
    for _ in range(2):
        r = run([hsmclient, "openbao", MODULE, TOKEN, PIN, label], env=token.env())
        results.append(json.loads(r.stdout))
    assert [r["generated"] for r in results] == [True, False]
    for res in results:
        # The seal's own nonce was used: the node opens nonce || ct || tag.
        out = token.api.out("symmetric/decrypt", keyName=label, algorithm="AES/GCM/NoPadding",
                            input=bytes.fromhex(res["nonce"] + res["ciphertext"]))
        assert out.hex() == res["plaintext"]


# --------------------------------------------------------------------------
# PyKCS11
# --------------------------------------------------------------------------

def pykcs11_cmd(mode: str, plan: dict) -> list[str]:
    """The command running tests/pkcs11/pykcs11_client.py (a process of its own)."""
    try:
        import PyKCS11  # noqa: F401
    except ImportError:
        pytest.fail(f"PyKCS11 is not importable by {sys.executable}: "
                    f"python3 -m pip install -r tests/requirements.txt")
    return [sys.executable, str(CLIENTS / "pykcs11_client.py"), mode, str(MODULE), json.dumps(plan)]


def test_pykcs11_list_sign_verify_decrypt_random_aes(token):
    ec_der, _ = token.public_key("api-ec")
    rsa_der, _ = token.public_key("api-rsa")
    ec_pub, rsa_pub = serialization.load_der_public_key(ec_der), serialization.load_der_public_key(rsa_der)
    data = os.urandom(2000)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    plan = {"token": TOKEN, "ec": "api-ec", "rsa": "api-rsa", "aes": "api-aes", "data": data.hex(),
            "oaep_ct": rsa_pub.encrypt(b"oaep secret", oaep).hex(),
            "pkcs1_ct": rsa_pub.encrypt(b"pkcs1 secret", padding.PKCS1v15()).hex(),
            "iv16": os.urandom(16).hex(), "nonce12": os.urandom(12).hex(), "aes_plain": os.urandom(48).hex()}
    cmd = pykcs11_cmd("basic", plan)
    out = json.loads(run(cmd, env=token.env()).stdout)

    assert (out["manufacturer"], out["model"]) == ("VSSM", "VSSM")
    assert {"api-ec", "api-rsa"} <= set(out["private_labels"])
    point = bytes.fromhex(out["ec_point"])  # DER OCTET STRING of the uncompressed point
    assert point[0] == 0x04 and point[2:] == ec_pub.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    rs = bytes.fromhex(out["ecdsa_sha256"])
    assert len(rs) == 64
    ec_pub.verify(encode_dss_signature(int.from_bytes(rs[:32], "big"), int.from_bytes(rs[32:], "big")),
                  data, ec.ECDSA(hashes.SHA256()))
    rsa_pub.verify(bytes.fromhex(out["sha256_rsa_pkcs"]), data, padding.PKCS1v15(), hashes.SHA256())
    rsa_pub.verify(bytes.fromhex(out["sha384_rsa_pss"]), data,
                   padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48), hashes.SHA384())
    with pytest.raises(InvalidSignature):
        rsa_pub.verify(bytes.fromhex(out["sha256_rsa_pkcs"]), data + b"x", padding.PKCS1v15(), hashes.SHA256())
    assert bytes.fromhex(out["oaep_plain"]) == b"oaep secret"
    assert bytes.fromhex(out["pkcs1_plain"]) == b"pkcs1 secret"
    assert len(bytes.fromhex(out["random"])) == 32

    # AES: each ciphertext opened by the node with the caller's IV in front.
    iv, nonce, msg = (bytes.fromhex(plan[k]) for k in ("iv16", "nonce12", "aes_plain"))
    problems = []
    ecb = bytes.fromhex(out["aes_ecb"])
    assert token.api.out("symmetric/decrypt", keyName="api-aes", algorithm="AES/ECB/NoPadding", input=ecb) == msg
    for name, alg, prefix in (("aes_cbc", "AES/CBC/NoPadding", iv), ("aes_cbc_pad", "AES/CBC/PKCS5Padding", iv),
                              ("aes_ctr", "AES/CTR/NoPadding", iv), ("aes_gcm", "AES/GCM/NoPadding", nonce)):
        value = out[name]
        if value.startswith("error"):
            problems.append(f"{name}: the module refused: {value}")
            continue
        kw = {"aad": b"header"} if name == "aes_gcm" else {}
        r = token.api.op("symmetric/decrypt", keyName="api-aes", algorithm=alg,
                         input=prefix + bytes.fromhex(value), **kw)
        if r.status != 200 or b64d(r.json["output"]) != msg:
            problems.append(f"{name}: the node does not open it with the caller's IV: {r!r}")
    # CTR: a 128-bit counter. E_k(counter) from ECB of the same key.
    if isinstance(out["ctr_carry"], str):
        problems.append(f"ctr carry: {out['ctr_carry']}")
    else:
        two, second = (bytes.fromhex(x) for x in out["ctr_carry"])
        if two[16:] != second:
            problems.append("CTR counter does not carry over 64 bits (not a 128-bit counter)")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# p11-kit and GnuTLS
# --------------------------------------------------------------------------

def p11kit_run(cmd, modules: Path, env: dict) -> subprocess.CompletedProcess:
    """Runs `cmd` with p11-kit seeing the module files of `modules`. p11-kit
    skips the user configuration (~/.config/pkcs11/modules) of a program
    running as root: as root, `modules` is bind-mounted over p11-kit's
    system module directory in a mount namespace of the command's own, so
    the machine's configuration is never changed."""
    if os.geteuid() != 0:
        home = modules.parent / "home"
        (home / ".config" / "pkcs11").mkdir(parents=True, exist_ok=True)
        link = home / ".config" / "pkcs11" / "modules"
        if not link.exists():
            link.symlink_to(modules)
        return run(cmd, env={**env, "HOME": str(home)})
    system = Path("/usr/share/p11-kit/modules")
    if not system.is_dir():
        pytest.fail(f"{system} missing: install p11-kit (a dependency of gnutls-bin)")
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("unshare not found (util-linux)")
    script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
    return run([unshare, "-m", "--propagation", "private", "sh", "-c", script, "sh", modules, system, *cmd],
               env=env)


def test_p11_kit_registration_p11tool_lists_the_token(token, tmp_path):
    p11tool = require_tool("p11tool")
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "vssm.module").write_text(f"module: {MODULE}\n")
    env = token.env()
    out = text(p11kit_run([p11tool, "--list-tokens"], modules, env))
    assert f"Label: {TOKEN}" in out and "Manufacturer: VSSM" in out, out
    url = next(line.split("URL:", 1)[1].strip() for line in out.splitlines()
               if "URL:" in line and "manufacturer=VSSM" in line)
    objects = text(p11kit_run([p11tool, "--list-all", url], modules, env))
    assert "api-ec" in objects and "Public key" in objects, objects


# --------------------------------------------------------------------------
# Failover in a two-node cluster
# --------------------------------------------------------------------------

def test_failover_to_the_second_node(pki, tmp_path):
    require_binary()
    require_module()
    nodes = static_cluster(pki, tmp_path / "cluster", CLUSTER_IPS)
    a, b = nodes
    try:
        ca, cb = a.client(), b.client()
        assert ca.generate("failover-ec", "ASYMMETRIC", 256, "EC").status == 200

        def on_b():
            return any(k["name"] == "failover-ec" for k in cb.ok("/REST/v1/keys/list", {})["keys"])
        wait_until(on_b, 20, desc="the key on the second node")
        pub = serialization.load_der_public_key(b64d(cb.op_ok("keys/publickey", keyName="failover-ec")["publicKey"]))

        crt, key = pki.client_cert("vssm-pkcs11-client")
        config = tmp_path / "failover.json"
        # The default timeout (10 s): what a real configuration gets.
        config.write_text(json.dumps({"nodes": [f"{ip}:8080" for ip in CLUSTER_IPS],
                                      "serverCertificate": str(pki.rpc_crt), "clientCertificate": str(crt),
                                      "clientKey": str(key), "tokenLabel": TOKEN}))
        env = {**os.environ, "VSSM_PKCS11_CONFIG": str(config)}
        cmd = pykcs11_cmd("failover", {"token": TOKEN, "ec": "failover-ec"})
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            line = proc.stdout.readline()
            assert line.strip() == b"ready", (line, proc.stderr.read() if proc.poll() is not None else b"")
            a.sigstop()  # the first node hangs: connections open, nothing answers
            stdout, stderr = proc.communicate(b"\n", timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, stderr.decode(errors="replace")
        out = json.loads(stdout)
        during, after = out["during"], out["after"]
        assert during["seconds"] < 15, during
        assert after["ok"] and after["seconds"] < 10, (during, after)
        for sig in out["signatures"]:
            rs = bytes.fromhex(sig)
            pub.verify(encode_dss_signature(int.from_bytes(rs[:32], "big"), int.from_bytes(rs[32:], "big")),
                       b"failover", ec.ECDSA(hashes.SHA256()))
        print(f"failover: during {during} after {after}", file=sys.stderr)
    finally:
        for n in nodes:
            n.stop()
