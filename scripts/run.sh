#!/usr/bin/env bash
# The main job: installs what is needed, builds, and reruns every built-in experiment at
# quick scale, then writes the report to runs/reproduce/report/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
./build/attnlab reproduce --scale quick --out runs/reproduce
echo "report: $(pwd)/runs/reproduce/report/index.html"
