"""Start-up crypto self-tests: a passing node says so in its log; a node
whose self-test fails stays up, refuses every API request with 503 and
says why in its health answer.

The failure is injected with VSSM_SELFTEST_FAIL, which only debug builds
honour (crypto/selftest): against a release binary that test is skipped.
"""

import pytest

from vssmtest.util import b64e

IP_SELFTEST = "127.0.0.77"


def test_passing_self_tests_are_logged(main_node):
    assert "crypto self-tests passed in" in main_node.log()


@pytest.mark.parametrize("failing", ["aes-gcm", "ecdsa-p256", "pct"])
def test_failed_self_test_refuses_crypto(make_node, monkeypatch, failing):
    monkeypatch.setenv("VSSM_SELFTEST_FAIL", failing)
    node = make_node(IP_SELFTEST)
    if "release" in str(node.binary):
        pytest.skip("release builds ignore VSSM_SELFTEST_FAIL")
    node.start()
    status, body = node.wait_health()
    want = f"crypto self-test failed: {failing} known-answer test"
    assert (status, body) == (503, want)
    assert want in node.log()
    # Every request is refused, bootstrap included, with the reason.
    r = node.bootstrap()
    assert r.status == 503 and r.error() == want, r
    c = node.pre_client()
    r = c.post("/REST/v1/symmetric/encrypt",
               {"keyName": "k", "algorithm": "AES/GCM/NoPadding", "input": b64e(b"x")})
    assert r.status == 503 and r.error() == want, r
