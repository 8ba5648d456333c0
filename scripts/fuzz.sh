#!/usr/bin/env bash
# Fuzzes attnlab's input parsers with libFuzzer under AddressSanitizer and
# UndefinedBehaviorSanitizer (targets: fuzz/CMakeLists.txt).
#   bash scripts/fuzz.sh [SECONDS] [TARGET ...]
# SECONDS per target (default 300); TARGETs among config override spec safetensors npy
# (default: all, one after the other). Installs what it needs (as scripts/setup.sh: root or
# sudo), builds the targets with clang into build-fuzz/, and runs each on a scratch copy of
# its seed corpus fuzz/corpus/TARGET (the repository's corpus is not grown). Prints per
# target the executions and whether anything was found; a finding's input is kept in
# build-fuzz/findings/ and the target's log in build-fuzz/logs/. Exit status 1 if anything
# was found.
# With ATTNLAB_BUILD_LOCK=FILE, each configure, build and fuzzer run holds flock(FILE)
# (machines where builds must not overlap).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-300}
case "$SECS" in '' | *[!0-9]*) echo "fuzz: SECONDS must be a number (got '$SECS')" >&2; exit 2 ;; esac
shift $(( $# > 0 ? 1 : 0 ))
ALL=(config override spec safetensors npy)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "fuzz: unknown target '$t' (targets: ${ALL[*]})" >&2; exit 2; }
done

bash scripts/setup.sh --fuzz

locked() {  # runs "$@", holding $ATTNLAB_BUILD_LOCK if set
  if [ -n "${ATTNLAB_BUILD_LOCK:-}" ]; then flock "$ATTNLAB_BUILD_LOCK" "$@"; else "$@"; fi
}

mkdir -p build-fuzz/logs build-fuzz/findings
echo "fuzz: building the targets into build-fuzz/ (log: build-fuzz/logs/build.log)"
{
  locked env CC=clang CXX=clang++ cmake -S . -B build-fuzz -DATTNLAB_FUZZ=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    locked cmake --build build-fuzz -j"$(nproc)" --target fuzz
} > build-fuzz/logs/build.log 2>&1 || { tail -40 build-fuzz/logs/build.log; exit 1; }

found=0
scratch=$(mktemp -d /tmp/attnlab-fuzz.XXXXXX)
shm=$(mktemp -d /dev/shm/attnlab-fuzz.XXXXXX)  # fuzz_spec's spec files (load_spec takes a path)
trap 'rm -rf "$scratch" "$shm"' EXIT
for t in "${TARGETS[@]}"; do
  corpus="$scratch/$t/corpus"
  mkdir -p "$corpus"
  cp fuzz/corpus/"$t"/* "$corpus"/
  dict=fuzz/dict/toml.dict
  case "$t" in npy) dict=fuzz/dict/npy.dict ;; safetensors) dict=fuzz/dict/safetensors.dict ;; esac
  log=build-fuzz/logs/$t.log
  rm -f build-fuzz/findings/"$t"-*
  status=0
  # -timeout: one input taking 10 s is a finding (a hang); -rss_limit_mb: so is 2 GB of memory.
  ATTNLAB_FUZZ_DIR="$shm" ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    locked ./build-fuzz/fuzz/fuzz_"$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
      -dict="$dict" -print_final_stats=1 -artifact_prefix=build-fuzz/findings/"$t"- "$corpus" \
      < /dev/null > "$log" 2>&1 || status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  if [ -z "$execs" ]; then execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#'); fi
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || true)
  artifacts=$(ls build-fuzz/findings/"$t"-* 2> /dev/null || true)
  if [ "$status" -ne 0 ] || [ -n "$artifacts" ]; then
    found=1
    why=$(grep -m1 -E '^==[0-9]+==ERROR|runtime error|deadly signal|uncaught exception|terminate called|-timeout|out-of-memory' "$log" || true)
    echo "fuzz_$t: ${execs:-?} executions in ${SECS} s, coverage ${cov:-?}: FOUND (exit $status) ${why}"
    for a in $artifacts; do echo "  input: $a"; done
    echo "  log: $log"
  else
    echo "fuzz_$t: ${execs:-?} executions in ${SECS} s, coverage ${cov:-?}: nothing found"
  fi
done
exit $found
