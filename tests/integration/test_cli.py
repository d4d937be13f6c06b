"""The vssm command line: hash-password, config validation, plain `vssm`, dev mode."""
import json
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from vssmtest.client import ApiClient
from vssmtest.crypto_ref import scrypt_mcf, scrypt_mcf_verify
from vssmtest.node import (IP_CONFIG_ERR, IP_DEV, IP_PASSWORD, IP_PLAIN, health, require_binary,
                           terminate)
from vssmtest.util import VSSM_BIN, b64e


def _hash_password(password_input: str, *args, timeout=60):
    require_binary()
    return subprocess.run([str(VSSM_BIN), "hash-password", *args], input=password_input,
                          capture_output=True, text=True, timeout=timeout)


def test_hash_password_log_n_10():
    res = _hash_password("s3cret pass phrase\n", "--log-n", "10")
    assert res.returncode == 0, res.stderr
    mcf = res.stdout.strip()
    assert "\n" not in mcf, res.stdout
    v = scrypt_mcf_verify(mcf, "s3cret pass phrase")
    assert v["ok"], f"independent scrypt does not match {mcf}"
    assert (v["log_n"], v["r"], v["p"]) == (10, 8, 1)
    assert v["params_hex"].upper() == "A0801"
    assert len(v["salt"]) >= 16
    # fresh salt each time
    again = _hash_password("s3cret pass phrase\n", "--log-n", "10").stdout.strip()
    assert again != mcf and scrypt_mcf_verify(again, "s3cret pass phrase")["ok"]


def test_hash_password_default_log_n_15_first_line_only():
    res = _hash_password("first-line\nsecond-line\n")
    assert res.returncode == 0, res.stderr
    mcf = res.stdout.strip()
    assert mcf.upper().startswith("$S0$F0801$"), mcf
    v = scrypt_mcf_verify(mcf, "first-line")
    assert v["ok"], "the password is the first stdin line without its newline"


@pytest.mark.parametrize("variant", ["vssm hash-password", "lowercase-hex"])
def test_password_hash_accepted_by_server(make_node, variant):
    password = "pw-" + variant.replace(" ", "-")
    if variant == "vssm hash-password":
        res = _hash_password(password + "\n", "--log-n", "10")
        assert res.returncode == 0, res.stderr
        mcf = res.stdout.strip()
    else:  # Java SCryptUtil (lambdaworks) writes the params in lowercase hex
        mcf = scrypt_mcf(password, log_n=10, lower_hex=True)
    node = make_node(IP_PASSWORD, password=password, password_hash=mcf).start_bootstrapped()
    c = node.client()
    assert c.admin("listkeys").status == 200
    c.close()
    bad = node.client("pw-wrong-client")
    bad.password = password + "!"
    assert bad.admin("listkeys").status == 401


CONFIG_ERRORS = [
    ("unknown field", lambda cfg: cfg.update(bogusSetting=True), "bogusSetting"),
    ("bad apiPort", lambda cfg: cfg.update(apiPort="not-a-port"), "apiPort"),
    ("apiPort out of range", lambda cfg: cfg.update(apiPort=70000), "apiPort"),
    ("bad bindAddress", lambda cfg: cfg.update(bindAddress="300.1.2.3"), "bindAddress"),
    ("bad rootPassword", lambda cfg: cfg.update(rootPassword="plaintext"), "rootPassword"),
    ("bad rpcCertificate b64", lambda cfg: cfg.update(rpcCertificate="%%%"), "rpcCertificate"),
    ("bad rpcCertificate der", lambda cfg: cfg.update(rpcCertificate=b64e(b"not der")),
     "rpcCertificate"),
    ("bad clientTrustStore", lambda cfg: cfg.update(clientTrustStore=[b64e(b"junk")]),
     "clientTrustStore"),
    ("missing rootPassword", lambda cfg: cfg.pop("rootPassword"), "rootPassword"),
    # scrypt PARAMS (issue 8 item 9): 1 GiB of locked memory, log2(N) that
    # would be truncated to a byte (0x10F -> 15), p=255, a sign
    *[(f"rootPassword PARAMS {params}",
       lambda cfg, params=params: cfg.update(rootPassword=cfg["rootPassword"].replace(
           "$" + cfg["rootPassword"].split("$")[2] + "$", f"${params}$", 1)), "rootPassword")
      for params in ("140801", "10F0801", "F08FF", "+F0801")],
    ("missing rpcCertificate", lambda cfg: cfg.pop("rpcCertificate"), "rpcCertificate"),
]


@pytest.mark.parametrize("label,mutate,field", CONFIG_ERRORS, ids=[c[0] for c in CONFIG_ERRORS])
def test_invalid_config_stops_startup(pki, tmp_path, label, mutate, field):
    require_binary()
    cfg = pki.config(IP_CONFIG_ERR, scrypt_mcf("x"))
    mutate(cfg)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    proc = subprocess.Popen([str(VSSM_BIN), "serve", "--config", str(path)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{label}: vssm kept running with an invalid config")
    assert proc.returncode != 0, f"{label}: exit code 0"
    assert field in out + err, f"{label}: message does not name {field}: {err!r}"


def _assert_serves_bootstrapping(proc):
    """`proc` (a `vssm` serving on IP_PLAIN) answers health with 503
    bootstrapping within 20 s; stops it either way."""
    try:
        deadline = time.time() + 20
        h = None
        while time.time() < deadline and proc.poll() is None:
            h = health(IP_PLAIN)
            if h:
                break
            time.sleep(0.05)
        assert h == (503, "bootstrapping"), f"health={h}, rc={proc.poll()}"
    finally:
        terminate(proc)


def test_plain_vssm_reads_cwd_config(pki, tmp_path):
    require_binary()
    (tmp_path / "config.json").write_text(json.dumps(pki.config(IP_PLAIN, scrypt_mcf("x"))))
    proc = subprocess.Popen([str(VSSM_BIN)], cwd=tmp_path, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _assert_serves_bootstrapping(proc)


def _printed_curl_command(output: str):
    """The first `curl ...` command in the output, with `\\` continuation lines joined."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if "curl " in line:
            cmd = [line[line.index("curl "):].strip()]
            while cmd[-1].endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd.append(lines[i].strip())
            return "\n".join(cmd)
    return None


def test_dev_mode(tmp_path):
    require_binary()
    d = tmp_path / "devnode"
    log = open(tmp_path / "dev.log", "w+")
    proc = subprocess.Popen([str(VSSM_BIN), "dev", "--dir", str(d), "--bind", IP_DEV],
                            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            text=True)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            assert proc.poll() is None, f"vssm dev exited: {(tmp_path / 'dev.log').read_text()}"
            if health(IP_DEV) == (200, "running"):
                break
            time.sleep(0.1)
        assert health(IP_DEV) == (200, "running"), "dev node is not running/bootstrapped"
        for f in ("config.json", "rpc.crt", "rpc.key", "client-ca.crt", "client.crt",
                  "client.key", "admin-password"):
            assert (d / f).is_file(), f"dev mode did not create {f}"
        cfg = json.loads((d / "config.json").read_text())
        assert {"rpcCertificate", "clientTrustStore", "rootPassword"} <= set(cfg)
        rpc = x509.load_pem_x509_certificate((d / "rpc.crt").read_bytes())
        assert rpc.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "VSSM"
        san = rpc.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "VSSM" in san.get_values_for_type(x509.DNSName)
        password = (d / "admin-password").read_text().strip()
        assert password
        assert scrypt_mcf_verify(cfg["rootPassword"], password)["ok"]

        c = ApiClient(IP_DEV, ca=d / "rpc.crt", cert=(d / "client.crt", d / "client.key"),
                      password=password)
        assert c.admin("listkeys").status == 200
        assert c.generate("dev-key", "SYMMETRIC", 32).status == 200
        ct = c.out("symmetric/encrypt", keyName="dev-key", algorithm="AES/GCM/NoPadding", input=b"hi")
        assert c.out("symmetric/decrypt", keyName="dev-key", algorithm="AES/GCM/NoPadding",
                     input=ct) == b"hi"
        c.close()

        log.flush()
        output = (tmp_path / "dev.log").read_text()
        cmd = _printed_curl_command(output)
        assert cmd, f"dev mode printed no curl command line: {output[-2000:]!r}"
        res = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True,
                             timeout=30)
        assert res.returncode == 0, f"printed curl command failed: {cmd}\n{res.stderr}"
        assert res.stdout.strip().startswith("{"), res.stdout
    finally:
        terminate(proc)
        log.close()


def _vssm(*args, timeout=30):
    require_binary()
    return subprocess.run([str(VSSM_BIN), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("command", ["serve", "dev", "hash-password", "bootstrapper", "call"])
def test_help_lists_every_command_and_its_flags(command):
    res = _vssm("--help")
    assert res.returncode == 0, res.stderr
    assert command in res.stdout and "Usage: vssm" in res.stdout, res.stdout
    sub = _vssm(command, "--help")
    assert sub.returncode == 0, sub.stderr
    assert f"Usage: vssm {command}" in sub.stdout, sub.stdout
    flags = {"serve": ["--config", "--bind"], "dev": ["--dir", "--bind"], "hash-password": ["--log-n"],
             "bootstrapper": ["--trusted-image", "--account", "--private-key", "--certificate", "--bind",
                              "--port", "--region", "--attestation-ca"],
             "call": ["--node", "--dir", "--server-cert", "--cert", "--key", "--password-file", "ENDPOINT"]}
    for flag in flags[command]:
        assert flag in sub.stdout, f"{command} --help does not mention {flag}: {sub.stdout}"
    assert _vssm("help", command).stdout == sub.stdout


def test_version():
    res = _vssm("--version")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("vssm ") and res.stdout.strip().split()[1][0].isdigit(), res.stdout


@pytest.mark.parametrize("args,mentions", [
    (["frobnicate"], "frobnicate"),
    (["--frobnicate"], "--frobnicate"),
    (["serve", "--bind", "not-an-ip"], "--bind"),
    (["dev", "--bind"], "--bind"),
    (["hash-password", "--log-n", "many"], "--log-n"),
    (["hash-password", "--log-n", "10", "--log-n", "11"], "--log-n"),
    (["bootstrapper", "--trusted-image", "ami-1", "--private-key", "k"], "--account"),
    (["bootstrapper", "--trusted-image", "ami-1", "--account", "1", "--private-key", "k", "--port", "x"],
     "--port"),
    (["call"], "ENDPOINT"),
    (["call", "admin/listkeys", "{}", "extra"], "extra"),
    (["--config", "x.json", "dev"], "dev"),
])
def test_usage_errors_exit_2_with_a_hint(args, mentions):
    res = _vssm(*args)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stdout == ""
    assert mentions in res.stderr and "--help" in res.stderr, res.stderr


def test_runtime_errors_exit_1_and_name_the_cause(tmp_path):
    res = _vssm("--config", str(tmp_path / "missing.json"))
    assert res.returncode == 1, (res.returncode, res.stderr)
    assert "missing.json" in res.stderr, res.stderr
    res = _vssm("call", "--node", "127.0.0.1:1", "symmetric/encrypt", "not json")
    assert res.returncode == 1 and "not JSON" in res.stderr, res.stderr


def test_top_level_flags_still_serve(pki, tmp_path):
    """`vssm --config FILE --bind IP` (no command) serves, as `vssm serve` does."""
    require_binary()
    cfg = pki.config(IP_PLAIN, scrypt_mcf("x"))
    cfg["bindAddress"] = "127.0.0.1"
    path = tmp_path / "elsewhere.json"
    path.write_text(json.dumps(cfg))
    proc = subprocess.Popen([str(VSSM_BIN), "--config", str(path), "--bind", IP_PLAIN], cwd=tmp_path,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _assert_serves_bootstrapping(proc)
