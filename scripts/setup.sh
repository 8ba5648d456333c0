#!/usr/bin/env bash
# Installs everything attnlab needs on Debian 12, idempotently. Run as root (or via sudo).
set -euo pipefail
PKGS=(g++ cmake make pkg-config git
      libopenblas-openmp-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libfmt-dev
      libsqlite3-dev gnuplot-nox libgtest-dev libbenchmark-dev
      python3-torch python3-numpy chromium)
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
