#!/usr/bin/env bash
# Load benchmark of a local `vssm dev` node.
#
# Builds the release binaries, starts `vssm dev` in a temporary data folder
# pinned to CPU 0, waits for the health check, runs vssm-bench pinned to CPU 1
# (with the server's PID for RSS sampling), then stops the server.
#
# usage: scripts/bench.sh [vssm-bench options...]
#   e.g. scripts/bench.sh --connections 32 --seconds 10
#        scripts/bench.sh --ops rsa,ecdsa --h2 --json
#        scripts/bench.sh --rotations 1000 --seconds 5   (decryption after key rotation)
#        scripts/bench.sh --ops ecdsa,ecdsa-p11          (signing through the PKCS#11 module
#                                                         too: builds and passes libvssm_pkcs11.so)
# Environment: SERVER_CPU (0), BENCH_CPU (1), KEEP_DIR=1 keeps the data folder,
# SKIP_BUILD=1 uses the binaries already in target/release, BIND (127.0.0.1)
# the loopback address of the node (another one when 127.0.0.1:8080 is taken).
set -euo pipefail

cd "$(dirname "$0")/.."
SERVER_CPU=${SERVER_CPU:-0}
BENCH_CPU=${BENCH_CPU:-1}
BIND=${BIND:-127.0.0.1}
HEALTH_URL=http://$BIND:8081/REST/v1/healthcheck

# An op of the PKCS#11 module (ecdsa-p11, ...) in --ops: build and pass the module.
packages=(-p vssm -p vssm-bench)
module_args=()
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do
    if [[ ${args[i]} == --ops && ,${args[i + 1]}, == *-p11,* ]]; then
        packages+=(-p vssm-pkcs11)
        module_args=(--pkcs11-module "$PWD/target/release/libvssm_pkcs11.so")
        break
    fi
done

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    cargo build --release "${packages[@]}" >&2
fi

dir=$(mktemp -d -t vssm-bench.XXXXXX)
server_pid=
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
    fi
    if [[ ${KEEP_DIR:-0} == 1 ]]; then echo "data folder kept: $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT

taskset -c "$SERVER_CPU" target/release/vssm dev --dir "$dir" --bind "$BIND" >"$dir.log" 2>&1 &
server_pid=$!

# Wait up to 60 s for the node to report 200 "running".
for _ in $(seq 600); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$HEALTH_URL" || true)
    [[ $code == 200 ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "vssm dev exited early; log:" >&2; cat "$dir.log" >&2; exit 1
    fi
    sleep 0.1
done
if [[ $code != 200 ]]; then
    echo "vssm dev not healthy after 60 s (last status $code); log:" >&2; cat "$dir.log" >&2; exit 1
fi

status=0
taskset -c "$BENCH_CPU" target/release/vssm-bench --dir "$dir" --addr "$BIND:8080" \
    --server-pid "$server_pid" "${module_args[@]}" "$@" || status=$?
rm -f "$dir.log"
exit "$status"
