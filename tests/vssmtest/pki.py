"""The test PKI, built with the openssl CLI the way the first VSSM's README
told operators to: a client CA, X.509 v1 client certificates, a self-signed RPC
certificate with CN=VSSM and no SAN, and its key as PKCS#8 DER. A second
("rogue") CA issues certificates the server must refuse."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import re
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vssmtest.util import b64e


def openssl(*args, cwd: Path):
    """Runs `openssl ARGS` in `cwd`; its stdout, or RuntimeError with stderr."""
    res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {res.stderr}")
    return res.stdout


def spki_sha256(cert_path: Path) -> str:
    """Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo of the PEM
    certificate in `cert_path` (what `openssl x509 -pubkey | openssl pkey
    -pubin -outform DER | sha256sum` prints)."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return hashlib.sha256(cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def pem_to_der_cert(path: Path) -> bytes:
    """The DER of the PEM certificate in `path`."""
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(
        serialization.Encoding.DER)


class Pki:
    """Certificates and keys under `root` (created on construction; client
    certificates on first use)."""

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
        self._identities: dict[str, tuple[Path, Path]] = {}
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

    def identity_cert(self, stem: str, cn: str | None = None, org: str | None = None,
                      dns=(), emails=(), uris=(), ips=()):
        """An X.509 v3 client certificate of the test CA with exactly this
        subject (O, then CN: rendered `CN=..., O=...`) and these SAN entries,
        on a fresh P-256 key; made with `cryptography`, for the identities of
        the authorization tests. (crt, key) PEM paths, cached by `stem`."""
        if stem not in self._identities:
            ca_cert = x509.load_pem_x509_certificate(self.ca_crt.read_bytes())
            ca_key = serialization.load_pem_private_key(self.ca_key.read_bytes(), None)
            key = ec.generate_private_key(ec.SECP256R1())
            attrs = ([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []) + (
                [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
            sans = ([x509.DNSName(d) for d in dns] + [x509.RFC822Name(e) for e in emails]
                    + [x509.UniformResourceIdentifier(u) for u in uris]
                    + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips])
            now = datetime.datetime.now(datetime.timezone.utc)
            builder = (x509.CertificateBuilder().subject_name(x509.Name(attrs))
                       .issuer_name(ca_cert.subject).public_key(key.public_key())
                       .serial_number(x509.random_serial_number())
                       .not_valid_before(now - datetime.timedelta(days=1))
                       .not_valid_after(now + datetime.timedelta(days=30))
                       .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                                      critical=False))
            if sans:
                builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            cert = builder.sign(ca_key, hashes.SHA256())
            crt, key_path = self.dir / f"id-{stem}.crt", self.dir / f"id-{stem}.key"
            crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
            self._identities[stem] = (crt, key_path)
        return self._identities[stem]

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
        """A node configuration trusting this CA; `extra` keys are added as given."""
        cfg = {
            "rpcCertificate": b64e(pem_to_der_cert(rpc_crt or self.rpc_crt)),
            "clientTrustStore": [b64e(pem_to_der_cert(self.ca_crt))],
            "rootPassword": password_hash,
            "bindAddress": ip,
        }
        cfg.update(extra)
        return cfg
