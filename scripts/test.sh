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
# The PKCS#11 module's real clients (tests/integration/test_pkcs11.py):
# pkcs11-tool, libp11's OpenSSL engine, GnuTLS's p11tool (with p11-kit),
# Go and miekg/pkcs11 (GOPATH /usr/share/gocode). PyKCS11 comes from
# tests/requirements.txt (Debian's python3-pykcs11 serves /usr/bin/python3 only).
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in opensc libengine-pkcs11-openssl gnutls-bin golang-go golang-github-miekg-pkcs11-dev; do
  installed "$pkg" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
fi
# Exact versions (a no-op when they are installed already). A throwaway CI
# machine with Debian's own Python (PEP 668) takes them system-wide.
export PIP_BREAK_SYSTEM_PACKAGES=1
python3 -m pip install -q -r tests/requirements.txt

# Cheap gates first: formatting, dependency policy (cargo-deny), clippy -D warnings.
scripts/check.sh

# One build profile for everything: dependencies are optimized even in the
# dev profile (Cargo.toml), so the debug binary is fast enough for tests.
# (This also builds the PKCS#11 module, pkcs11/'s cdylib.)
cargo build --workspace --all-targets
test -f target/debug/libvssm_pkcs11.so || { echo "target/debug/libvssm_pkcs11.so was not built" >&2; exit 1; }
cargo test --workspace -- --quiet
VSSM_BIN="$PWD/target/debug/vssm" VSSM_PKCS11_MODULE="$PWD/target/debug/libvssm_pkcs11.so" \
  python3 -m pytest -q -p no:cacheprovider tests/integration qemu/fake_aws "$@"

# The appliance: static musl build, image, packer validate, qemu cluster e2e.
scripts/e2e.sh
