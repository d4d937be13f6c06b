#!/usr/bin/env bash
# Appliance end-to-end: builds the image (scripts/build-image.sh installs its
# own tools), checks its contents, validates the packer template, and boots a
# qemu cluster of it (tests/e2e). Extra arguments go to pytest.
#   VSSM_E2E_SKIP_BUILD=1  reuse build/image as is
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)

if [ "${VSSM_E2E_SKIP_BUILD:-0}" != 1 ]; then
  scripts/build-image.sh
fi
if ! python3 -c 'import pytest, cryptography' 2>/dev/null; then
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q -r tests/requirements.txt
fi

# packer: Debian ships 1.6.6, which validates the JSON template offline.
if ! command -v packer >/dev/null; then
  apt-get install -y -q --no-install-recommends packer >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends packer >/dev/null 2>&1; } || true
fi
if command -v packer >/dev/null; then
  echo "e2e: $(packer version | head -n1): validate packer/vssm.json"
  packer validate packer/vssm.json
else
  echo "e2e: SKIP packer validate: no packer package on this machine (Debian 12 has packer 1.6.6 in main)"
fi

python3 -m pytest -v -s tests/e2e "$@"
echo "e2e: whole run $(( $(date +%s) - t0 )) s; measurements in build/e2e/measurements.json"
