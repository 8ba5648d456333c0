#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test (GoogleTest via CTest, plus the
# PyTorch parity check). Exit status 0 only if all pass.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --tests
cd build
ctest --output-on-failure -j2 --timeout 900
