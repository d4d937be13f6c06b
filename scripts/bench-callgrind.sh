#!/usr/bin/env bash
# Instructions per request of the server, counted by callgrind: a measure
# that does not move with the machine's load (the wall-clock benchmark,
# scripts/bench.sh, varies by ±15% on a shared VM).
#
# Starts `vssm dev` under valgrind, makes the keys (vssm-bench --setup-only),
# then for each op sends 500 keep-alive requests (after one warm-up request,
# so the TLS handshake is not counted) between a callgrind counter reset and
# a dump, and prints the server's instructions per request.
#
# With GRANTS=N it then measures the same ops again, on the same process,
# with authorization enforced and N grants for other identities loaded
# (vssm-bench --grants N), and prints both modes side by side with their
# throughput ratio, instructions(compatibility) / instructions(enforced);
# issue 9 wants >= 0.97 with N = 10000.
#
# With ROTATIONS=N it measures instead AES-256-GCM decryption of 64 B after
# key bench-rotated was rotated N times (vssm-bench --setup-only
# --rotations N): a ciphertext of the never-rotated key bench-rot-fresh
# (plain, without version fields, and versioned), a versioned ciphertext of
# the newest version, of version 1, and a plain ciphertext of version 1
# named by keyVersion; with each one's ratio to the
# newest version (issue 10 wants version 1 as fast as a fresh key after
# 1,000 rotations): the median of ROUNDS (3) interleaved rounds.
#
# usage: [GRANTS=N | ROTATIONS=N [ROUNDS=3]] [REQUESTS=500] [OPS="aes hmac ecdsa"] scripts/bench-callgrind.sh [VSSM-BINARY]
#   OPS: ops of bench/callgrind/drive.py; aes64x100 and ecdsax100 are
#   batches of 100 (instructions per request: divide by 100 for an item).
#   VSSM-BINARY defaults to target/release/vssm; vssm-bench is taken from the
#   same folder (BENCH_BIN overrides).
# Needs valgrind (Debian package `valgrind`). Uses 127.0.0.1:8080/8081, or
# BIND:8080/8081 with BIND=127.0.0.x when 127.0.0.1:8080 is taken.
set -euo pipefail
shopt -s inherit_errexit  # a failing drive.py stops the script inside $(measure)
cd "$(dirname "$0")/.."
# callgrind counts every byte of a `rep stosb`/`rep movsb` as an
# instruction, while the CPU moves 32 or more bytes a cycle with them;
# glibc picks them for blocks over a few KiB. Keep glibc on its AVX2 vector
# loops (one instruction per 32 bytes) so large memsets and copies, such as
# the allocator's wipe of freed buffers, count for about what they cost.
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.cpu.x86_rep_stosb_threshold=0x7fffffff:glibc.cpu.x86_rep_movsb_threshold=0x7fffffff}
bin=$(realpath "${1:-target/release/vssm}")
bench=$(realpath "${BENCH_BIN:-$(dirname "$bin")/vssm-bench}")
n=${REQUESTS:-500}
grants=${GRANTS:-}
export BIND=${BIND:-127.0.0.1}  # drive.py reads it too
rotations=${ROTATIONS:-}
read -ra ops <<< "${OPS:-aes hmac ecdsa}"
work=$(mktemp -d -t vssm-callgrind.XXXXXX)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
healthy() {
    for _ in $(seq "$1"); do
        [[ $(curl -s http://$BIND:8081/REST/v1/healthcheck || true) == running ]] && return 0
        sleep 0.25
    done
    echo "node not healthy" >&2; return 1
}

# Generate the dev PKI natively (RSA key generation under valgrind is slow).
"$bin" dev --dir "$work/dev" --bind "$BIND" >"$work/native.log" 2>&1 & pid=$!
healthy 240; kill "$pid"; wait "$pid" 2>/dev/null || true

valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" \
    "$bin" dev --dir "$work/dev" --bind "$BIND" >"$work/vg.log" 2>&1 & pid=$!
healthy 1200
# Keys (and with --grants N, grants and enforcement) for the ops; progress on stderr.
setup() { "$bench" --dir "$work/dev" --addr "$BIND:8080" --ops "$(IFS=,; echo "${ops[*]}")" --setup-only "$@" >&2; }
# The server's instructions per request of op $1.
measure() {
    python3 bench/callgrind/drive.py "$work/dev" "$1" "$n"
    local dump total
    dump=$(ls -t "$work"/cg.*.* | head -1)
    total=$(sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$dump" | head -1)
    echo $((total / n))
}

if [[ -n $rotations ]]; then
    "$bench" --dir "$work/dev" --addr "$BIND:8080" --setup-only --rotations "$rotations" >&2
    # Interleaved rounds, the median of each case: one count moves by
    # about 1% from run to run, more than the differences looked for.
    declare -A counts
    dec_ops=(dec-legacy dec-fresh dec-newest dec-v1 dec-v1kv)
    for _ in $(seq "${ROUNDS:-3}"); do
        for op in "${dec_ops[@]}"; do counts[$op]+=" $(measure "$op")"; done
    done
    median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    declare -A label=([dec-legacy]="never-rotated key, no version fields" [dec-fresh]="never-rotated key, v1 versioned"
                      [dec-newest]="rotated key, newest version versioned" [dec-v1]="rotated key, v1 versioned"
                      [dec-v1kv]="rotated key, v1 by keyVersion")
    newest=$(median "${counts[dec-newest]}")
    printf '%-40s %12s %9s  %s\n' "AES-256-GCM decrypt 64 B, $rotations rotations" "instr/req" "vs newest" "rounds"
    for op in "${dec_ops[@]}"; do
        awk -v l="${label[$op]}" -v c="$(median "${counts[$op]}")" -v n="$newest" -v all="${counts[$op]}" \
            'BEGIN { printf "%-40s %12d %9.3f %s\n", l, c, n / c, all }'
    done
    exit 0
fi
setup
if [[ -z $grants ]]; then
    printf '%-8s %12s\n' op instr/req
    for op in "${ops[@]}"; do
        count=$(measure "$op")
        printf '%-8s %12d\n' "$op" "$count"
    done
    exit 0
fi
declare -A compat
for op in "${ops[@]}"; do compat[$op]=$(measure "$op"); done
setup --grants "$grants"
printf '%-8s %14s %22s %7s\n' op compatibility "enforced, $grants grants" ratio
for op in "${ops[@]}"; do
    enforced=$(measure "$op")
    awk -v op="$op" -v c="${compat[$op]}" -v e="$enforced" 'BEGIN {
        r = c / e; printf "%-8s %14d %22d %7.3f%s\n", op, c, e, r, (r < 0.97 ? "  below 0.97" : "") }'
done
