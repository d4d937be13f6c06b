"""Per-identity authorization (issue 9): the test identities (client
certificates with chosen subjects and SANs, see Pki.identity_cert), grant
bodies, and what `authz/whoami` must say about a certificate, computed
independently from the certificate with `cryptography`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from vssmtest.client import ApiClient
from vssmtest.pki import Pki, spki_sha256

# Config fields of a node that takes no admin password (certificate administration only).
PASSWORD_ADMIN_OFF = {"authorization": {"passwordAdmin": False}}


@dataclass(frozen=True)
class Identity:
    """A client certificate of the test CA and what it identifies."""
    crt: Path
    key: Path

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.crt.read_bytes())

    @property
    def spki_sha256(self) -> str:
        return spki_sha256(self.crt)

    @property
    def subject(self) -> str:
        """RFC 4514 rendering, most-specific RDN first, `", "`-separated (as
        the audit log and whoami render it; plain values need no escaping)."""
        return ", ".join(rdn.rfc4514_string() for rdn in reversed(self.cert.subject.rdns))

    def whoami_identity(self) -> dict:
        """The `identity` object whoami must answer for this certificate."""
        cert = self.cert
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            san = x509.SubjectAlternativeName([])
        return {
            "subject": self.subject,
            "commonNames": [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)],
            "dnsNames": san.get_values_for_type(x509.DNSName),
            "emails": san.get_values_for_type(x509.RFC822Name),
            "uris": san.get_values_for_type(x509.UniformResourceIdentifier),
            "ipAddresses": [str(ip) for ip in san.get_values_for_type(x509.IPAddress)],
            "spkiSha256": self.spki_sha256,
        }

    def client(self, node, **kw) -> ApiClient:
        """An mTLS client of `node` with this certificate and no admin password."""
        kw.setdefault("password", None)
        return node.client(cert=(self.crt, self.key), **kw)


def make_identity(pki: Pki, stem: str, **fields) -> Identity:
    """An Identity of a new certificate; `fields` as Pki.identity_cert takes them."""
    return Identity(*pki.identity_cert(stem, **fields))


def grant(identity: str, keys: str, *operations: str, **extra) -> dict:
    """A grant of a creategrants request."""
    return {"identity": identity, "keys": keys, "operations": list(operations), **extra}
