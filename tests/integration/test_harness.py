"""Self-checks of the harness: PKI recipe, local references (no server), the
survival check of the shared node and the taken-address guard (servers on
127.0.0.22)."""
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID

from vssmtest.backup import make_backup, open_backup
from vssmtest.crypto_ref import scrypt_mcf, scrypt_mcf_verify, sym_decrypt, sym_encrypt


def test_client_cert_is_x509_v1_without_extensions(pki):
    crt, _ = pki.client_cert()
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    assert cert.version == x509.Version.v1
    assert len(cert.extensions) == 0
    issuer = x509.load_pem_x509_certificate(pki.ca_crt.read_bytes())
    assert cert.issuer == issuer.subject
    cert.verify_directly_issued_by(issuer)


def test_rpc_cert_is_cn_vssm_without_san_and_key_matches(pki):
    cert = x509.load_der_x509_certificate(pki.rpc_cert_der)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "VSSM"
    assert all(e.oid != x509.ExtensionOID.SUBJECT_ALTERNATIVE_NAME for e in cert.extensions)
    assert isinstance(pki.rpc_private_key, rsa.RSAPrivateKey)
    assert pki.rpc_private_key.public_key().public_numbers() == cert.public_key().public_numbers()


def test_local_ctr_matches_library_aes_ctr():
    key, iv = os.urandom(16), b"\xff" * 15 + b"\xfe"  # crosses the 128-bit wrap
    pt = os.urandom(100)
    ct = sym_encrypt("AES/CTR/NoPadding", key, pt, iv=iv)
    e = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    assert ct == iv + e.update(pt) + e.finalize()
    assert sym_decrypt("AES/CTR/NoPadding", key, ct) == pt


def test_local_backup_roundtrip(pki):
    inv = {"symmetricKey": [{"name": "a", "createdAt": "1", "key": "AAAAAAAAAAAAAAAAAAAAAA=="}]}
    blob = make_backup(inv, pki.rpc_private_key.public_key())
    assert open_backup(blob, pki.rpc_private_key) == inv


def test_local_scrypt_mcf():
    mcf = scrypt_mcf("pw", log_n=10)
    assert mcf.startswith("$s0$A0801$")
    v = scrypt_mcf_verify(mcf, "pw")
    assert v["ok"] and v["log_n"] == 10 and v["r"] == 8 and v["p"] == 1
    assert not scrypt_mcf_verify(mcf, "pW")["ok"]


IP_SELFTEST = "127.0.0.22"


def test_survival_check_passes_a_healthy_node_and_reports_panics_and_death(make_node):
    """The session-end check of the shared main node (conftest.main_node) can fail."""
    node = make_node(IP_SELFTEST).start_bootstrapped()
    assert node.survival_problems() == []
    with node.log_path.open("a") as f:
        f.write("thread 'worker' panicked at src/x.rs:1:1:\nboom\n")
    problems = node.survival_problems()
    assert len(problems) == 1 and "panicked" in problems[0], problems
    node.kill()
    problems = node.survival_problems()
    assert len(problems) == 1 and "died" in problems[0], problems


def test_a_node_on_an_address_already_served_is_refused(make_node):
    """The harness names the cause (a stray node, another run's) before a
    second vssm on the same address fails to start."""
    make_node(IP_SELFTEST).start()
    with pytest.raises(pytest.fail.Exception, match="already served by another process"):
        make_node(IP_SELFTEST).start()
