#!/usr/bin/env bash
# The demo: installs what is missing, builds mtcsec, and runs a full key
# establishment in one process, direct and then through a relay, printing
# every message with its size.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
B=${MTCSEC_BUILD_DIR:-build}/demo
mkdir -p "$B"
echo "building mtcsec in $B ..." >&2
if ! { cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DMTCSEC_BUILD_TESTS=OFF &&
       cmake --build "$B" -j "$(nproc 2>/dev/null || echo 2)"; } \
     >"$B/build.log" 2>&1; then
  tail -n 40 "$B/build.log" >&2
  echo "demo: the build failed; the whole log is $B/build.log" >&2
  exit 1
fi
"$B/examples/mtcsec-example"
