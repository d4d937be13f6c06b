#!/usr/bin/env bash
# Fuzzes the parsers that network and IMDS input reach (the cargo-fuzz crate
# in fuzz/): builds every target once, then runs each, one after the other,
# for N executions (default 1,000,000), at the lowest CPU priority and
# single-process (no -jobs/-fork). Prints executions, exec/s and crashes per
# target; exits non-zero if any target crashed, hung or ran out of memory.
#
#   scripts/fuzz.sh [--runs N] [TARGET...]
#
# Needs a nightly toolchain (rustup toolchain install nightly) and cargo-fuzz
# (cargo install cargo-fuzz --locked). Not part of CI or scripts/test.sh.
# Seeds: fuzz/seeds/TARGET (committed); the grown corpus goes to
# fuzz/corpus/TARGET and failing inputs to fuzz/artifacts/TARGET (both
# ignored by git). Extra libFuzzer flags: FUZZ_FLAGS="-max_len=8192".
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

runs=1000000
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="${2:?--runs needs a number}"; shift 2 ;;
        --runs=*) runs="${1#--runs=}"; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
case "$runs" in ''|*[!0-9]*) echo "--runs must be a number" >&2; exit 2 ;; esac

rustup toolchain list | grep -q '^nightly' || { echo "needs a nightly toolchain: rustup toolchain install nightly" >&2; exit 2; }
cargo fuzz --version >/dev/null 2>&1 || { echo "needs cargo-fuzz: cargo install cargo-fuzz --locked" >&2; exit 2; }

all=$(cargo +nightly fuzz list)
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets <<<"$all"
fi
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$all" || { echo "unknown target $t; targets: $(echo $all)" >&2; exit 2; }
done

# -a: debug assertions and overflow checks, so an arithmetic overflow is a
# crash here rather than a silent wrap.
echo "== building ${#targets[@]} targets" >&2
if [ ${#targets[@]} -eq "$(wc -l <<<"$all")" ]; then
    nice -n 19 cargo +nightly fuzz build -a
else
    for t in "${targets[@]}"; do nice -n 19 cargo +nightly fuzz build -a "$t"; done
fi
bin_dir="target/$(rustc -vV | sed -n 's/^host: //p')/release"

results=()
failed=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t/last-run.log"
    echo "== $t: $runs executions" >&2
    status=0
    # shellcheck disable=SC2086  # FUZZ_FLAGS is a list of flags
    nice -n 19 "$bin_dir/$t" -runs="$runs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" ${FUZZ_FLAGS:-} "corpus/$t" "seeds/$t" >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [ "$status" -ne 0 ]; then
        failed=1
        artifact=$(sed -n 's/^artifact_prefix=.*; Test unit written to //p' "$log" | tail -1)
        results+=("$(printf '%-20s %12s %10s  FAILED (exit %s) %s' "$t" "${execs:--}" "${rate:--}" "$status" "${artifact:-see $log}")")
        tail -n 30 "$log" >&2
    else
        results+=("$(printf '%-20s %12s %10s  ok' "$t" "${execs:--}" "${rate:--}")")
    fi
done

printf '\n%-20s %12s %10s  %s\n' target executions exec/s result
printf '%s\n' "${results[@]}"
exit "$failed"
