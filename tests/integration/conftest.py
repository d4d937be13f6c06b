"""Fixtures of the black-box integration tests; the helpers live in the
vssmtest package (tests/vssmtest, importable through pytest.ini's
`pythonpath`).

- pki: one test PKI for the session.
- main_node / api: the shared, bootstrapped node on 127.0.0.11 and its mTLS
  client. When the session ends, main_node checks that the node came through
  every test that used it unharmed (alive, healthy, serving, no panic) and
  fails the run otherwise, whatever order the tests ran in.
- make_node: a factory of extra nodes, stopped at the test's teardown.
"""

from __future__ import annotations

import shutil

import pytest

from vssmtest.client import ApiClient
from vssmtest.node import IP_MAIN, Node, require_binary
from vssmtest.pki import Pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.fail("openssl CLI is required")
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def main_node(pki, tmp_path_factory):
    """The shared, bootstrapped node on 127.0.0.11; checked at session end."""
    require_binary()
    node = Node(pki, IP_MAIN, tmp_path_factory.mktemp("node-main"))
    try:
        node.start_bootstrapped()
        yield node
        # An error here is reported at the teardown of the last test and makes
        # the run fail.
        problems = node.survival_problems()
        assert not problems, "the shared main node did not survive the tests:\n" + "\n".join(problems)
    finally:
        node.stop()


@pytest.fixture(scope="session")
def api(main_node) -> ApiClient:
    """mTLS client of the main node (its subject never fails an admin login)."""
    c = main_node.client()
    yield c
    c.close()


@pytest.fixture
def make_node(pki, tmp_path):
    """Factory for extra nodes; every node started is stopped at teardown."""
    nodes = []

    def factory(ip, **kw) -> Node:
        require_binary()
        n = Node(pki, ip, tmp_path / f"node-{ip}-{len(nodes)}", **kw)
        nodes.append(n)
        return n

    yield factory
    for n in nodes:
        n.stop()
