#!/usr/bin/env bash
# The main job: installs what is needed, builds, and runs the example experiment.
# Output: runs/sparse_memory/ (config.toml, metrics.jsonl, summary.json, model.safetensors).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
./build/attnlab train experiments/sparse_memory.toml --out runs/sparse_memory
echo "results: runs/sparse_memory/summary.json"
