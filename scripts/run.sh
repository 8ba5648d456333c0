#!/usr/bin/env bash
# The main job: installs what is needed, builds, and reruns every built-in experiment at
# quick scale, then writes the report to runs/reproduce/report/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
# --rerun-changed: runs left by an older attnlab whose built-in specs have changed since are
# rerun, not mixed with the new ones.
./build/attnlab reproduce --scale quick --out runs/reproduce --rerun-changed
echo "report: $(pwd)/runs/reproduce/report/index.html"
