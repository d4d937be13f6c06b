"""The instance identity document and the test CA that signs it (plays
AWS's regional identity-signing certificate). `cryptography` is imported only
when a CA is made, so the --imds-stdio processes start fast."""

from __future__ import annotations

import datetime
import json
import os
import secrets

from .common import atomic_write, utcnow

# field order of the genuine document (testdata/aws-iid/genuine-*.document.json)
DOC_FIELDS = [
    "accountId", "architecture", "availabilityZone", "billingProducts",
    "devpayProductCodes", "marketplaceProductCodes", "imageId", "instanceId",
    "instanceType", "kernelId", "pendingTime", "privateIp", "ramdiskId",
    "region", "version",
]


class TestCA:
    """DIR/ca.crt + ca.key, made once and reused; signs documents like AWS."""

    def __init__(self, state_dir: str):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.crt_path = os.path.join(state_dir, "ca.crt")
        self.der_path = os.path.join(state_dir, "ca.der")
        self.key_path = os.path.join(state_dir, "ca.key")
        if os.path.exists(self.crt_path) and os.path.exists(self.key_path):
            with open(self.crt_path, "rb") as f:
                self.cert = x509.load_pem_x509_certificate(f.read())
            with open(self.key_path, "rb") as f:
                self.key = serialization.load_pem_private_key(f.read(), password=None)
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            name = x509.Name([
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Washington State"),
                x509.NameAttribute(NameOID.LOCALITY_NAME, "Seattle"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Amazon Web Services LLC"),
            ])
            serial = secrets.randbits(63) | (1 << 63)  # 64-bit like AWS's
            pub = self.key.public_key()
            ski = x509.SubjectKeyIdentifier.from_public_key(pub)
            now = utcnow()
            # Same shape as AWS's regional certs: v3, KU digitalSignature,
            # SKI, AKI (keyid + issuer + serial), BC critical CA:TRUE pathlen 0.
            self.cert = (
                x509.CertificateBuilder()
                .subject_name(name).issuer_name(name).public_key(pub)
                .serial_number(serial)
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(datetime.datetime(2195, 4, 3, 9, 0, 57, tzinfo=datetime.timezone.utc))
                .add_extension(x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False), critical=False)
                .add_extension(ski, critical=False)
                .add_extension(x509.AuthorityKeyIdentifier(
                    key_identifier=ski.digest,
                    authority_cert_issuer=[x509.DirectoryName(name)],
                    authority_cert_serial_number=serial), critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .sign(self.key, hashes.SHA256())
            )
            atomic_write(self.key_path, self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
            atomic_write(self.crt_path, self.cert.public_bytes(serialization.Encoding.PEM), 0o644)
        from cryptography.hazmat.primitives import serialization as _s
        self.der = self.cert.public_bytes(_s.Encoding.DER)
        self.pem = self.cert.public_bytes(_s.Encoding.PEM).decode()
        if not os.path.exists(self.der_path):
            atomic_write(self.der_path, self.der, 0o644)

    def sign(self, document: bytes) -> bytes:
        """PKCS#7 SignedData (DER): SHA-256/RSA, document attached, no certs,
        signed attrs contentType, signingTime, messageDigest.

        Binary: no MIME CRLF translation (the signed bytes are the document's
        exact bytes). NoCapabilities: no S/MIME capabilities attribute."""
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.serialization import pkcs7
        opts = [pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.NoCerts,
                pkcs7.PKCS7Options.NoCapabilities]
        return (pkcs7.PKCS7SignatureBuilder().set_data(document)
                .add_signer(self.cert, self.key, hashes.SHA256())
                .sign(serialization.Encoding.DER, opts))


def identity_document(inst: dict) -> bytes:
    """The document, pretty-printed exactly like AWS's (`"k" : v`, two-space
    indent, no trailing newline)."""
    if inst.get("identityDocument") is not None:
        return inst["identityDocument"].encode()
    values = {
        "accountId": inst["accountId"],
        "architecture": inst["architecture"],
        "availabilityZone": inst["availabilityZone"],
        "billingProducts": None,
        "devpayProductCodes": None,
        "marketplaceProductCodes": None,
        "imageId": inst["imageId"],
        "instanceId": inst["instanceId"],
        "instanceType": inst["instanceType"],
        "kernelId": None,
        "pendingTime": inst["pendingTime"],
        "privateIp": inst["privateIp"],
        "ramdiskId": None,
        "region": inst["region"],
        "version": "2017-09-30",
    }
    lines = [f'  "{k}" : {json.dumps(values[k])}' for k in DOC_FIELDS]
    return ("{\n" + ",\n".join(lines) + "\n}").encode()

