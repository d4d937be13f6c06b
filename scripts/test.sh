#!/usr/bin/env bash
# The test command of README.md: installs what the tests need on a fresh
# machine (Debian + rustup), runs the gates (rustfmt, cargo-deny, clippy
# with -D warnings), builds once, runs the unit tests, the
# black-box integration tests against the real binary (single node and
# multi-process clusters on loopback), then the appliance end-to-end tests
# (image contents, packer validate, a qemu cluster booted from the image).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v git >/dev/null || need_apt+=(git)
command -v cc >/dev/null || need_apt+=(build-essential)
command -v curl >/dev/null || need_apt+=(curl)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -q && apt-get install -y -q "${need_apt[@]}"
fi
# Exact versions (a no-op when they are installed already). A throwaway CI
# machine with Debian's own Python (PEP 668) takes them system-wide.
export PIP_BREAK_SYSTEM_PACKAGES=1
python3 -m pip install -q -r tests/requirements.txt

# Cheap gates first: formatting, dependency policy (cargo-deny), clippy -D warnings.
scripts/check.sh

# One build profile for everything: dependencies are optimized even in the
# dev profile (Cargo.toml), so the debug binary is fast enough for tests.
cargo build --workspace --all-targets
cargo test --workspace -- --quiet
VSSM_BIN="$PWD/target/debug/vssm" python3 -m pytest -q -p no:cacheprovider tests/integration qemu/fake_aws "$@"

# The appliance: static musl build, image, packer validate, qemu cluster e2e.
scripts/e2e.sh
