#!/usr/bin/env bash
# Cluster visibility benchmark (issue 10, item 9): how long a key rotation,
# a disable and an enable made on node 1 take to be visible on every node
# of a static cluster of `vssm` processes on loopback.
#
# Builds the release binary and runs bench/cluster/visibility.py, which
# starts the nodes with the test harness (tests/vssmtest), makes the
# changes, polls every node's keys/describe and prints median, p95 and max.
#
# usage: scripts/bench-cluster.sh [--nodes 5] [--repeat 20] [--sync-interval 1] [--json]
# Environment: SKIP_BUILD=1 uses the binary already in target/release.
# Needs python3 with the packages of tests/requirements.txt (the harness
# uses `cryptography` and `pytest`) and the openssl CLI; uses
# 127.0.0.200-204 (--base-ip) and ports 8080-8083.
set -euo pipefail

cd "$(dirname "$0")/.."
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    cargo build --release -p vssm >&2
fi
exec python3 bench/cluster/visibility.py --bin target/release/vssm "$@"
