#!/usr/bin/env bash
# Runs every test of mtcsec on a Debian 12 machine, installing what is
# missing first.  Stages:
#   1. ASan+UBSan build, every CTest test (unit, integration, vectors, model)
#   2. plain build, device/channel/codec tests under valgrind memcheck
#   3. libFuzzer build (clang), each fuzz target for MTCSEC_FUZZ_SECONDS (20)
#   4. firmware configuration (docs/DEVICE-BUILD.md): the device-only build
#      (Mbed TLS, 16-byte keys) compiles, and the device, channel and codec
#      unit tests pass built with the same -D flags (ASan+UBSan)
# Ends with one line "N passed, N failed, N skipped" over all stages.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

jobs=$(nproc 2>/dev/null || echo 2)
B=${MTCSEC_BUILD_DIR:-$top/build}
mkdir -p "$B"
passed=0; failed=0; skipped=0

# Adds the counts of one ctest log to the totals.
count_ctest() {
  local log=$1 line total nfail nskip
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" |
         tail -n 1)
  if [ -z "$line" ]; then
    failed=$((failed + 1))
    echo "== no ctest summary in $log" >&2
    return
  fi
  nfail=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
  nskip=$(grep -c '(Skipped)' "$log" || true)
  passed=$((passed + total - nfail - nskip))
  failed=$((failed + nfail))
  skipped=$((skipped + nskip))
}

# A build step counts as one test.
build() {
  local name=$1; shift
  if "$@" >"$B/$name.build.log" 2>&1; then
    return 0
  fi
  echo "== build $name FAILED; last lines of $B/$name.build.log:" >&2
  tail -n 40 "$B/$name.build.log" >&2
  failed=$((failed + 1))
  return 1
}

echo "== 1/4 ASan+UBSan build and tests"
if build asan cmake -S . -B "$B/asan" -DMTCSEC_SANITIZE=ON \
       -DCMAKE_BUILD_TYPE=Debug &&
   build asan-make cmake --build "$B/asan" -j "$jobs"; then
  ctest --test-dir "$B/asan" --output-on-failure -j "$jobs" 2>&1 |
    tee "$B/asan.ctest.log"
  count_ctest "$B/asan.ctest.log"
fi

echo "== 2/4 valgrind memcheck"
if build vg cmake -S . -B "$B/valgrind" -DMTCSEC_VALGRIND_TESTS=ON \
       -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
   build vg-make cmake --build "$B/valgrind" -j "$jobs"; then
  ctest --test-dir "$B/valgrind" -R '^valgrind\.' --output-on-failure \
    -j "$jobs" 2>&1 | tee "$B/valgrind.ctest.log"
  count_ctest "$B/valgrind.ctest.log"
fi

echo "== 3/4 libFuzzer targets (${MTCSEC_FUZZ_SECONDS:-20} s each)"
if build fuzz env CC=clang cmake -S . -B "$B/fuzz" -DMTCSEC_BUILD_FUZZ=ON \
       -DMTCSEC_BUILD_TESTS=OFF -DMTCSEC_WITH_MBEDTLS=OFF &&
   build fuzz-make cmake --build "$B/fuzz" -j "$jobs"; then
  ctest --test-dir "$B/fuzz" --output-on-failure -j "$jobs" 2>&1 |
    tee "$B/fuzz.ctest.log"
  count_ctest "$B/fuzz.ctest.log"
fi

echo "== 4/4 firmware configuration: device-only build and its tests"
# The -D flags of a device firmware (docs/DEVICE-BUILD.md), besides
# MTCSEC_CFG_MAX_KEY_LEN=16: one suite, 32-bit seconds, no NULL checks, no
# logs.  Given as CMAKE_C_FLAGS so that a build directory from an earlier
# run takes them too.
fw_defs="-DMTCSEC_CFG_SUITES=1 -DMTCSEC_CFG_DEV_TIME32=1"
fw_defs="$fw_defs -DMTCSEC_CFG_CHECK_PARAMS=0 -DMTCSEC_LOG_LEVEL=-1"
if build device cmake -S . -B "$B/device" -DCMAKE_C_FLAGS="$fw_defs" \
       -DMTCSEC_DEVICE_ONLY=ON -DMTCSEC_CFG_MAX_KEY_LEN=16 \
       -DCMAKE_BUILD_TYPE=MinSizeRel &&
   build device-make cmake --build "$B/device" -j "$jobs"; then
  echo "device-only build: ok"
  passed=$((passed + 1))
fi
# The unit tests of what a firmware links, in that configuration (a host
# build: the tests need OpenSSL and cmocka).
if build fwtest cmake -S . -B "$B/fwtest" -DCMAKE_C_FLAGS="$fw_defs" \
       -DMTCSEC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
       -DMTCSEC_CFG_MAX_KEY_LEN=16 &&
   build fwtest-make cmake --build "$B/fwtest" -j "$jobs" --target \
       unit_device unit_channel unit_codec; then
  ctest --test-dir "$B/fwtest" -R '^unit\.(device|channel|codec)$' \
    --output-on-failure 2>&1 | tee "$B/fwtest.ctest.log"
  count_ctest "$B/fwtest.ctest.log"
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
