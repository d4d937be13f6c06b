"""Key lifecycle (issue 10): the node config for windows of seconds, the
versioned ciphertext header, and short forms of the lifecycle endpoints
(admin/rotatekey ... admin/trimversions, keys/describe)."""

from __future__ import annotations

from vssmtest.client import ApiClient, Resp
from vssmtest.cluster import static_cluster

# Node config of the lifecycle tests: deletion windows and rotation periods
# of seconds (the config digest covers it: every node of a cluster needs it).
LIFECYCLE_CONFIG = {"lifecycle": {"minimumDeletionWindowSeconds": 1, "minimumRotationPeriodSeconds": 1}}

# "VK", format 1, then the version (u32 big-endian) and the 4-byte key id.
VERSIONED_MAGIC = b"VK\x01"
VERSIONED_HEADER_LEN = 11


def lifecycle_cluster(pki, root, ips, started: int | None = None):
    """static_cluster whose every node has LIFECYCLE_CONFIG."""
    return static_cluster(pki, root, ips, configs={i: LIFECYCLE_CONFIG for i in range(len(ips))},
                          started=started)


def split_versioned(data: bytes) -> tuple[int, str, bytes]:
    """(version, key id as 8 hex digits, the ciphertext behind the header) of
    a versioned ciphertext; asserts the header's format."""
    assert len(data) >= VERSIONED_HEADER_LEN and data[:3] == VERSIONED_MAGIC, (
        f"not a versioned ciphertext: {data[:16].hex()}")
    return int.from_bytes(data[3:7], "big"), data[7:11].hex(), data[VERSIONED_HEADER_LEN:]


def key_admin(client: ApiClient, op: str, name: str, key_type: str = "SYMMETRIC", **fields) -> Resp:
    """admin/OP on one key (with the client's admin password, if it has one)."""
    return client.admin(op, keyType=key_type, keyName=name, **fields)


def key_admin_ok(client: ApiClient, op: str, name: str, key_type: str = "SYMMETRIC", **fields) -> dict:
    r = key_admin(client, op, name, key_type, **fields)
    assert r.status == 200 and isinstance(r.json, dict), f"admin/{op} of {name}: {r!r}"
    return r.json


def describe(client: ApiClient, name: str, key_type: str = "SYMMETRIC") -> Resp:
    return client.post("/REST/v1/keys/describe", {"keyType": key_type, "keyName": name})


def describe_ok(client: ApiClient, name: str, key_type: str = "SYMMETRIC") -> dict:
    r = describe(client, name, key_type)
    assert r.status == 200 and isinstance(r.json, dict), f"keys/describe of {name}: {r!r}"
    return r.json


def key_ids(description: dict) -> dict[int, str]:
    """version -> keyId of a keys/describe answer."""
    return {v["version"]: v["keyId"] for v in description["versions"]}
