"""vssmtest: the black-box test harness of VSSM.

Everything here talks to the `vssm` binary over the network exactly as an
external client would; nothing imports or reads the Rust code. Used by the
pytest suites (tests/integration, whose conftest.py holds only fixtures) and by
qemu/launch.py, which imports it without pytest's help.

Modules, by concern:
- util: paths (REPO, TESTDATA, WYCHEPROOF, VSSM_BIN), ports, the admin
  password of the run, base64 and unique names.
- pki: the certificates, built with the openssl CLI (Pki).
- client: the mTLS JSON client (ApiClient, Resp, tls_context).
- node: one `vssm serve` process (Node, health, terminate, require_binary) and
  the loopback addresses of the single-node tests.
- cluster: the cluster tests' pieces (FakeAws, ClusterNode, JoinClient, SigV4).
- crypto_ref: independent reference crypto on Python `cryptography` (symmetric
  modes, paddings, OAEP, digests, scrypt MCF).
- backup: the backup blob format of the first VSSM (open_backup, make_backup).
- authz: per-identity authorization (issue 9): test identities with chosen
  subjects and SANs, grant bodies, the whoami identity a certificate must get.
- lifecycle: key lifecycle (issue 10): the node config for windows of
  seconds, clusters with it, the versioned ciphertext header, short forms of
  the lifecycle endpoints and keys/describe.

The names below are re-exported for tools that use the harness as one object
(qemu/launch.py: Pki, ApiClient, scrypt_mcf, terminate); tests import from the
modules.
"""

from vssmtest.client import ApiClient
from vssmtest.crypto_ref import scrypt_mcf
from vssmtest.node import Node, terminate
from vssmtest.pki import Pki

__all__ = ["ApiClient", "Node", "Pki", "scrypt_mcf", "terminate"]
