#!/usr/bin/env bash
# Installs what attnlab needs on Debian 12, idempotently. Run as root (or via sudo).
#   bash scripts/setup.sh          what the main job uses: the compiler, the libraries attnlab
#                                  links, gnuplot for the report's figures
#   bash scripts/setup.sh --tests  also what only the tests and benchmarks use: GoogleTest,
#                                  Google Benchmark, PyTorch and NumPy (parity checks and
#                                  speed comparisons), Chromium (the report's end-to-end test)
#   bash scripts/setup.sh --fuzz   also clang and libFuzzer (scripts/fuzz.sh)
set -euo pipefail
PKGS=(g++ cmake make pkg-config git
      libopenblas-openmp-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libfmt-dev
      libsqlite3-dev libopenmpi-dev openmpi-bin pybind11-dev python3-dev python3-numpy gnuplot-nox)
if [ "${1:-}" = "--tests" ]; then
  PKGS+=(libgtest-dev libbenchmark-dev python3-torch python3-pandas python3-matplotlib chromium)
elif [ "${1:-}" = "--fuzz" ]; then
  # clang 14 and its runtimes: libFuzzer and the sanitizers are in libclang-rt-14-dev (only
  # recommended by clang-14, so not installed with --no-install-recommends); OpenMP for
  # clang is libomp.
  PKGS+=(clang clang-14 libclang-rt-14-dev libomp-14-dev)
elif [ -n "${1:-}" ]; then
  echo "setup: unknown option '$1' (expected nothing, --tests or --fuzz)" >&2
  exit 2
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
