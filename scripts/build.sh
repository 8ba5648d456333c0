#!/usr/bin/env bash
# Installs the dependencies (scripts/setup.sh) and builds attnlab into build/ (Release).
#   bash scripts/build.sh          the attnlab command only (what the main job needs)
#   bash scripts/build.sh --tests  also the tests and the micro-benchmarks, with what they need
set -euo pipefail
cd "$(dirname "$0")/.."
testing=OFF
if [ "${1:-}" = "--tests" ]; then testing=ON; bash scripts/setup.sh --tests; else bash scripts/setup.sh; fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=$testing > build.log 2>&1 || { cat build.log; exit 1; }
cmake --build build -j"$(nproc)" >> build.log 2>&1 || { tail -50 build.log; exit 1; }
rm -f build.log
