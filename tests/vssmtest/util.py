"""Paths, ports and small helpers shared by the whole harness.

Paths are computed from this file, so the harness works from any current
directory. VSSM_BIN: $VSSM_BIN, else the release build.
"""

from __future__ import annotations

import base64
import os
import re
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTDATA = REPO / "testdata"
WYCHEPROOF = TESTDATA / "wycheproof"
VSSM_BIN = Path(os.environ.get("VSSM_BIN", REPO / "target" / "release" / "vssm"))

API_PORT, HEALTH_PORT = 8080, 8081

# Fresh for every run, so a test can never pass because of a password that a
# stale node or an earlier run happened to know.
ADMIN_PASSWORD = "correct horse battery staple " + uuid.uuid4().hex[:8]


def b64e(data: bytes) -> str:
    """Standard padded base64 of `data`."""
    return base64.b64encode(data).decode()


def b64d(text: str) -> bytes:
    """Strict decode of what the server writes: standard alphabet, padded."""
    assert isinstance(text, str), f"expected base64 string, got {text!r}"
    assert re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text) and len(text) % 4 == 0, (
        f"not standard padded base64: {text[:80]!r}")
    return base64.b64decode(text, validate=True)


def uniq(prefix: str) -> str:
    """`prefix-` plus 10 random hex digits: key names that never collide
    between tests sharing a node."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
