"""Backups in the format of the first VSSM (docs/API.md "BackupBlob"):
an AES-256-GCM encrypted JSON inventory whose data key is RSA-OAEP(SHA-256)
encrypted to the RPC certificate's key."""

from __future__ import annotations

import json
import os
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vssmtest.crypto_ref import oaep
from vssmtest.util import b64d, b64e


def open_backup(blob: dict, rpc_private_key) -> dict:
    """The inventory inside `blob` (checks the data key size and the GCM tag)."""
    data_key = rpc_private_key.decrypt(b64d(blob["encryptionKey"]), oaep("SHA256"))
    assert len(data_key) == 32, "backup data key must be 32 bytes (AES-256)"
    state = b64d(blob["encryptedState"])
    plain = AESGCM(data_key).decrypt(state[:12], state[12:], None)
    return json.loads(plain)


def make_backup(inventory: dict, rpc_public_key, version=1, timestamp_ms=None,
                raw_json: bytes | None = None) -> dict:
    """A blob of `inventory` (or of the exact bytes `raw_json`) for restorebackup."""
    data_key = os.urandom(32)
    nonce = os.urandom(12)
    plain = raw_json if raw_json is not None else json.dumps(inventory).encode()
    return {
        "encryptionKey": b64e(rpc_public_key.encrypt(data_key, oaep("SHA256"))),
        "version": version,
        "timestamp": str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)),
        "encryptedState": b64e(nonce + AESGCM(data_key).encrypt(nonce, plain, None)),
    }
