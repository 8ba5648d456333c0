#!/usr/bin/env bash
# Builds and runs tools/gemm_libs.cpp: OpenBLAS, BLIS, oneDNN and libxsmm timed at attnlab's
# GEMM shapes on one thread (installs the three other libraries' Debian packages first).
#   bash tools/gemm_libs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for p in libopenblas-openmp-dev libblis-openmp-dev libdnnl-dev libxsmm-dev g++; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bl=/usr/lib/x86_64-linux-gnu/blis-openmp
g++ -O2 -fopenmp -std=c++17 tools/gemm_libs.cpp -o "$out/gemm_libs" \
  -I/usr/include/x86_64-linux-gnu/openblas-openmp -I/usr/include/x86_64-linux-gnu/blis-openmp \
  -lopenblas "$bl/libblis.so" -Wl,-rpath,"$bl" -ldnnl /usr/lib/libxsmm.a -lpthread -lrt -ldl -lm
# OpenBLAS's own choice on this CPU is AVX2 (see ARCHITECTURE.md); attnlab runs SkylakeX kernels on AVX-512 CPUs.
if grep -q avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi
"$out/gemm_libs"
