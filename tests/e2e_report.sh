#!/usr/bin/env bash
# End to end: a small sweep, its report, and the report loaded in headless Chromium with
# every figure rendered and no console error. Usage: e2e_report.sh ATTNLAB SOURCE_DIR WORK_DIR
set -u
bin=$1; src=$2; work=$3
rm -rf "$work"; mkdir -p "$work"
"$bin" sweep "$src/tests/data/tiny_sweep.toml" --scale quick -j 2 --out "$work/sweep" > "$work/sweep.log" 2>&1 \
  || { echo "e2e: sweep failed"; cat "$work/sweep.log"; exit 1; }
"$bin" report "$work/sweep" -o "$work/report" > "$work/report.log" 2>&1 \
  || { echo "e2e: report failed"; cat "$work/report.log"; exit 1; }
for f in index.html claims.json tiny_sweep/fig1.svg tiny_sweep/fig1.csv; do
  [ -s "$work/report/$f" ] || { echo "e2e: missing $f"; exit 1; }
done
chrome=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chrome" ] || { echo "e2e: chromium is not installed (scripts/setup.sh installs it)"; exit 1; }
profile=$(mktemp -d)
timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --enable-logging=stderr --v=0 \
  --virtual-time-budget=10000 --dump-dom "file://$work/report/index.html" > "$work/dom.html" 2> "$work/chrome.log"
rm -rf "$profile"
figs=$(grep -o 'data-figures="[0-9]*/[0-9]*"' "$work/dom.html" | head -1)
echo "e2e: $figs"
[ -n "$figs" ] || { echo "e2e: the page did not finish loading"; tail -20 "$work/chrome.log"; exit 1; }
ok=${figs#data-figures=\"}; ok=${ok%\"}
[ "${ok%/*}" = "${ok#*/}" ] && [ "${ok#*/}" -ge 1 ] || { echo "e2e: not every figure rendered ($ok)"; exit 1; }
if grep -E ':CONSOLE|Uncaught' "$work/chrome.log"; then echo "e2e: console messages above"; exit 1; fi
# The top a reader sees first: the verdict counts of all claims, one line per paper, and the
# claim's verdict cell in its color class.
grep -qE '<p id="headline"><b>[0-9]+ hold, [0-9]+ refuted, [0-9]+ undecided, [0-9]+ n/a of 1 claims</b>' "$work/dom.html" \
  || { echo "e2e: no verdict headline"; exit 1; }
grep -q '<ul id="papers">' "$work/dom.html" && grep -q 'href="#paper-p2">Paper 2' "$work/dom.html" \
  || { echo "e2e: no per-paper line"; exit 1; }
grep -qE '<td class="(holds|refuted|undecided|na)">(holds|refuted|undecided|n/a)' "$work/dom.html" \
  || { echo "e2e: no verdict cell"; exit 1; }
echo "e2e report: 1 passed, 0 failed"
