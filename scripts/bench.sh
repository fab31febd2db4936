#!/usr/bin/env bash
# Runs every benchmark of docs/BENCHMARKS.md on this machine and prints a
# summary.  Benchmarks only measure; nothing here is a test.  Stages:
#   1. host Release build of the bench programs (build/bench)
#   2. server-core handshakes/s next to the crypto-only limit (bench_server),
#      plus the same comparison in instructions (callgrind)
#   3. device work per establishment vs an OpenSSL DTLS 1.2 PSK client
#      handshake, in instructions (callgrind)
#   4. device-link bytes per establishment and per record (bench_link)
#   5. Cortex-M4 cross build: flash of mtcsec's own code in the firmware
#      configuration of docs/DEVICE-BUILD.md (plain, and with link-time
#      optimisation as a firmware build may use it) and with the library's
#      defaults, RAM per context
#   6. cellular mode vs DTLS 1.2 PSK over the simulated radio: bytes and
#      messages before the first payload, MS instructions (bench_cellular)
# Knobs (environment): MTCSEC_BENCH_N handshakes per server round (100000),
# MTCSEC_BENCH_ROUNDS rounds (7), MTCSEC_BENCH_SUITES (1,2,3),
# MTCSEC_BENCH_DIR (build/bench).  Raw outputs go to $MTCSEC_BENCH_DIR/results.
set -euo pipefail
cd "$(dirname "$0")/.."

MTCSEC_DEPS_EXTRA="gcc-arm-none-eabi libnewlib-arm-none-eabi ${MTCSEC_DEPS_EXTRA:-}" \
  scripts/deps.sh

B=${MTCSEC_BENCH_DIR:-build/bench}
N=${MTCSEC_BENCH_N:-100000}
ROUNDS=${MTCSEC_BENCH_ROUNDS:-7}
SUITES=${MTCSEC_BENCH_SUITES:-1,2,3}
ARM=$B-arm
ARMLOG=$B-arm-logs
ARMLTO=$B-arm-lto
ARMDEF=$B-arm-defaults
R=$B/results
jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p "$R"

step() { echo "== $*" >&2; }

# Instructions collected by callgrind in the function named $2 while running
# the rest of the arguments; prints the total.  The profile is kept as
# $R/callgrind.$1.out (callgrind_annotate reads it).
callgrind_ir() {
  local tag=$1 fn=$2 out
  shift 2
  out=$R/callgrind.$tag.out
  valgrind --tool=callgrind --collect-atstart=no --toggle-collect="$fn" \
    --callgrind-out-file="$out" "$@" >/dev/null 2>"$R/callgrind.$tag.log"
  awk '/^totals:/ {print $2}' "$out"
}

# Self instructions of mtcsec's own functions in a bench_device profile:
# everything in the bench_device binary except the provider glue (ossl_*,
# mbed_*) and the benchmark itself (bench_*).
own_ir() {
  callgrind_annotate --threshold=100 "$R/callgrind.$1.out" 2>/dev/null |
    awk 'NF > 1 && /bench_device\]/ && $(NF - 1) !~ /ossl_|mbed_|bench_/ {
      gsub(",", "", $1); s += $1 } END {print s + 0}'
}

# Inclusive instructions of function $2 in profile $1.
incl_ir() {
  callgrind_annotate --inclusive=yes --threshold=100 "$R/callgrind.$1.out" \
    2>/dev/null | awk -v fn="???:$2" 'NF > 1 && $(NF - 1) == fn && !done {
      gsub(",", "", $1); print $1; done = 1 }'
}

# ------------------------------------------------------------ machine
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
  echo "kernel: $(uname -r)"
  echo "compiler: $(cc --version | sed -n 1p)"
  echo "openssl: $(openssl version)"
  echo "mbedtls: $(dpkg-query -W -f='${Version}' libmbedtls-dev 2>/dev/null || echo '?')"
  echo "arm-gcc: $(arm-none-eabi-gcc --version | sed -n 1p)"
  echo "valgrind: $(valgrind --version)"
} >"$R/machine.txt"

# -------------------------------------------------------------- build
step "1/5 host Release build in $B"
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DMTCSEC_BUILD_TESTS=OFF \
  >"$R/build.log" 2>&1
cmake --build "$B" -j "$jobs" --target bench_server bench_device bench_dtls \
  bench_link >>"$R/build.log" 2>&1 || {
  tail -n 40 "$R/build.log" >&2
  exit 1
}
BIN=$B/bench

# One core: pin to the last CPU when taskset exists.
PIN=()
if command -v taskset >/dev/null 2>&1; then
  PIN=(taskset -c "$(($(nproc) - 1))")
fi

# ------------------------------------------------------------- server
step "2/5 server core vs crypto-only limit (suites $SUITES, $ROUNDS rounds" \
  "of $N handshakes; a progress line per round)"
"${PIN[@]}" "$BIN/bench_server" --suites "$SUITES" --n "$N" \
  --rounds "$ROUNDS" >"$R/server.txt"
step "2/5 the same in instructions (callgrind, suite 1, 4096 handshakes)"
srv_ir=$(callgrind_ir server bench_server_loop "$BIN/bench_server" --suites 1 \
  --n 4096 --rounds 1 --only arena)
cry_ir=$(callgrind_ir crypto bench_crypto_loop "$BIN/bench_server" --suites 1 \
  --n 4096 --rounds 1 --only crypto)
{
  echo "server_core_ir_per_hs $((srv_ir / 4096))"
  echo "crypto_only_ir_per_hs $((cry_ir / 4096))"
  echo "server_mac_ir_per_hs $(($(incl_ir server ossl_mac) / 4096))"
  echo "server_random_ir_per_hs $(($(incl_ir server ossl_random) / 4096))"
} >"$R/server_ir.txt"

# ------------------------------------------------------------- device
step "3/5 device work and DTLS client work in instructions (callgrind)"
DN=10
: >"$R/device_ir.txt"
for prov in openssl mbedtls; do
  for fn in bench_dev_m0_to_m1 bench_dev_m4 bench_dev_init; do
    n=$DN
    [ "$fn" = bench_dev_init ] && n=1
    ir=$(callgrind_ir "$prov.$fn" "$fn" "$BIN/bench_device" \
      --provider "$prov" --suite 1 --n "$DN")
    echo "$prov $fn $((ir / n)) $(($(own_ir "$prov.$fn") / n))" \
      >>"$R/device_ir.txt"
  done
done
DTN=5
dtls_ir=$(callgrind_ir dtls bench_dtls_client_measured "$BIN/bench_dtls" \
  --n "$DTN")
echo "dtls_client_ir_per_handshake $((dtls_ir / DTN))" >"$R/dtls_ir.txt"
"$BIN/bench_dtls" --n 1 >"$R/dtls.txt"
"$BIN/bench_dtls" --n 1 --nocookie >>"$R/dtls.txt"

# --------------------------------------------------------------- bytes
step "4/5 device-link bytes"
"$BIN/bench_link" >"$R/link.txt"

# ---------------------------------------------------------------- arm
step "5/5 Cortex-M4 cross build ($ARM)"
arm_build() { # dir, CFLAGS
  rm -rf "$1"
  CFLAGS=$2 cmake -S . -B "$1" \
    -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-arm-none-eabi.cmake \
    -DCMAKE_BUILD_TYPE=MinSizeRel -DMTCSEC_DEVICE_ONLY=ON \
    -DMTCSEC_CFG_MAX_KEY_LEN=16 -DMTCSEC_WITH_MBEDTLS=ON \
    -DMTCSEC_ARM_MBEDTLS_INCLUDE=/usr/include -DMBEDCRYPTO_LIB=mbedcrypto \
    >"$1.log" 2>&1 && cmake --build "$1" -j "$jobs" >>"$1.log" 2>&1
}
ARMFLAGS=(-mcpu=cortex-m4 -mthumb -mfloat-abi=soft -Os -ffunction-sections
  -fdata-sections -std=c11 -Wall -Wextra -Werror -DMTCSEC_CFG_MAX_KEY_LEN=16
  -Iinclude)
# The firmware configuration (docs/DEVICE-BUILD.md; MTCSEC_CFG_MAX_KEY_LEN=16
# comes with the CMake option and ARMFLAGS) and the logs compiled out.  The
# firmware stand-in is compiled with the same -D flags as the libraries: they
# change the device's structs.
FWDEFS="-DMTCSEC_CFG_SUITES=1 -DMTCSEC_CFG_DEV_TIME32=1"
FWDEFS="$FWDEFS -DMTCSEC_CFG_CHECK_PARAMS=0"
NOLOG=-DMTCSEC_LOG_LEVEL=-1
fw_link() { # dir, extra flags...
  local d=$1
  shift
  arm-none-eabi-gcc "${ARMFLAGS[@]}" "$@" bench/bench_arm_fw.c \
    --specs=nano.specs --specs=nosys.specs -Wl,--gc-sections \
    -Wl,-Map="$d/fw.map" "$d/libmtcsec_device.a" "$d/libmtcsec_core.a" \
    -o "$d/fw.elf"
}
# The same firmware with link-time optimisation over mtcsec (its libraries
# built with -flto -ffat-lto-objects).  The firmware's own file is compiled
# without LTO, so that its stub provider stays opaque to the optimiser.
fw_link_lto() { # dir, extra flags...
  local d=$1
  shift
  arm-none-eabi-gcc "${ARMFLAGS[@]}" "$@" -c bench/bench_arm_fw.c -o "$d/fw.o"
  arm-none-eabi-gcc "${ARMFLAGS[@]}" -flto "$d/fw.o" --specs=nano.specs \
    --specs=nosys.specs -Wl,--gc-sections -Wl,-Map="$d/fw.map" \
    "$d/libmtcsec_device.a" "$d/libmtcsec_core.a" -o "$d/fw.elf"
}
# Sums the input sections of a GNU ld map by origin (core, device, lto:
# mtcsec code the link-time optimiser emitted, libgcc, libc, app) and kind
# (flash = .text/.rodata, data, bss).
map_sum() {
  awk '
    function hex(s,   i, v) {
      v = 0; s = tolower(s); sub(/^0x/, "", s)
      for (i = 1; i <= length(s); i++)
        v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
      return v
    }
    /^Linker script and memory map/ { m = 1; next }
    !m { next }
    $1 ~ /^\./ && NF == 1 { sec = $1; next }
    {
      if ($1 ~ /^\./ && $2 ~ /^0x/ && $3 ~ /^0x/ && NF >= 4) {
        s = $1; sz = $3; f = $4
      } else if ($1 ~ /^0x/ && $2 ~ /^0x/ && NF >= 3 && sec != "") {
        s = sec; sz = $2; f = $3
      } else { sec = ""; next }
      sec = ""
      n = hex(sz)
      if (n == 0) next
      if (s ~ /^\.(text|rodata)/) k = "flash"
      else if (s ~ /^\.data/) k = "data"
      else if (s ~ /^\.bss/) k = "bss"
      else next
      g = "other"
      if (f ~ /libmtcsec_core\.a/) g = "core"
      else if (f ~ /libmtcsec_device\.a/) g = "device"
      else if (f ~ /ltrans/) g = "lto"
      else if (f ~ /libgcc\.a/) g = "libgcc"
      else if (f ~ /lib(c|c_nano|g|g_nano|nosys)\.a/) g = "libc"
      else if (f ~ /\.o$/ && f !~ /\.a\(/) g = "app"
      t[g " " k] += n
    }
    END { for (x in t) print x, t[x] }' "$1" | sort
}
# shellcheck disable=SC2086
if arm_build "$ARM" "$FWDEFS $NOLOG -fstack-usage" &&
   arm_build "$ARMLOG" "$FWDEFS" &&
   arm_build "$ARMLTO" "$FWDEFS $NOLOG -flto -ffat-lto-objects" &&
   arm_build "$ARMDEF" "$NOLOG"; then
  arm-none-eabi-size "$ARM/libmtcsec_core.a" "$ARM/libmtcsec_device.a" \
    "$ARM/libmtcsec_crypto_mbedtls.a" >"$R/arm_objects.txt"
  fw_link "$ARM" $FWDEFS $NOLOG
  fw_link "$ARMLOG" $FWDEFS
  fw_link_lto "$ARMLTO" $FWDEFS $NOLOG
  fw_link "$ARMDEF" $NOLOG
  map_sum "$ARM/fw.map" >"$R/arm_fw.txt"
  map_sum "$ARMLOG/fw.map" >"$R/arm_fw_logs.txt"
  map_sum "$ARMLTO/fw.map" >"$R/arm_fw_lto.txt"
  map_sum "$ARMDEF/fw.map" >"$R/arm_fw_defaults.txt"
  # Function sizes of the plain image (text and rodata symbols).
  arm-none-eabi-nm --size-sort -S "$ARM/fw.elf" >"$R/arm_fw_nm.txt"
  {
    echo "vsnprintf_linked_logs_off $(arm-none-eabi-nm "$ARM/fw.elf" |
      grep -c -w -E '_?vsnprintf|_svfprintf_r|_vfprintf_r' || true)"
    echo "vsnprintf_linked_logs_on $(arm-none-eabi-nm "$ARMLOG/fw.elf" |
      grep -c -w -E '_?vsnprintf|_svfprintf_r|_vfprintf_r' || true)"
    echo "libgcc_by_mtcsec $(sed -n '/^Archive member included/,/^Discarded/p' \
      "$ARM/fw.map" | grep -A1 'libgcc.a' | grep -c 'libmtcsec_' || true)"
  } >"$R/arm_logs.txt"
  # Session storage is the caller's (mtcsec_dev_config.sessions): the
  # context's size does not depend on how many DMKeys the firmware keeps.
  for cfg in "$FWDEFS" "$FWDEFS -DMTCSEC_DEV_MAX_INFO=16" ""; do
    # shellcheck disable=SC2086
    arm-none-eabi-gcc "${ARMFLAGS[@]}" $cfg -DMTCSEC_BENCH_MBEDTLS \
      -idirafter /usr/include -c bench/bench_arm_sizes.c -o "$ARM/sizes.o"
    echo "config: ${cfg:-defaults}"
    arm-none-eabi-nm -S "$ARM/sizes.o" | awk '
      function hex(s,   i, v) {
        v = 0; s = tolower(s)
        for (i = 1; i <= length(s); i++)
          v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
        return v
      }
      {printf "  %s %d\n", $4, hex($2)}'
  done >"$R/arm_sizeof.txt" 2>&1
  # Stack frames (-fstack-usage) of the functions the firmware contains.
  arm-none-eabi-nm "$ARM/fw.elf" | awk '{print $3}' | sort -u >"$R/arm_syms.txt"
  find "$ARM" -name '*.su' -exec cat {} + |
    awk -F '\t' 'NR == FNR {have[$1] = 1; next}
      {n = split($1, p, ":"); if (have[p[n]]) print}' "$R/arm_syms.txt" - |
    sort -t "$(printf '\t')" -k2 -n -r |
    sed -n "s|^.*/src/|src/|;1,10p" >"$R/arm_stack.txt"
else
  echo "cross build failed: see $ARM.log, $ARMLOG.log, $ARMLTO.log and" \
    "$ARMDEF.log" >&2
  : >"$R/arm_fw.txt"
fi

# ------------------------------------------------------------ summary
get() { awk -v k="$1" '$1 == k {print $2}' "$2"; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", 100 * a / b}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a / b}'; }
yn() { if [ "$1" = 1 ]; then echo "MET"; else echo "NOT MET"; fi; }

echo
echo "mtcsec benchmarks ($(sed -n 's/^date: //p' "$R/machine.txt"); $(nproc)" \
  "cores, $(sed -n 's/^cpu: //p' "$R/machine.txt"))"
echo
echo "1. Server core vs crypto-only (handshakes per CPU-second, one thread):"
sed 's/^/   /' "$R/server.txt"
ir_ratio=$(pct "$(get crypto_only_ir_per_hs "$R/server_ir.txt")" \
  "$(get server_core_ir_per_hs "$R/server_ir.txt")")
echo "   instructions per handshake (suite 1): server core" \
  "$(get server_core_ir_per_hs "$R/server_ir.txt") (MACs" \
  "$(get server_mac_ir_per_hs "$R/server_ir.txt"), random" \
  "$(get server_random_ir_per_hs "$R/server_ir.txt")), crypto-only" \
  "$(get crypto_only_ir_per_hs "$R/server_ir.txt") -> $ir_ratio%"
s1=$(awk '$1 == "1" {sub(/%/, "", $4); print $4}' "$R/server.txt")
s1a=$(awk '$1 == "1" {sub(/%/, "", $7); print $7}' "$R/server.txt")
echo "   target >= 50% (suite 1, CPU time): $(yn "$(awk -v r="${s1:-0}" \
  'BEGIN {print (r >= 50)}')") ($s1%; $s1a% on pre-faulted memory)"

echo
echo "2. Device instructions per establishment (callgrind, suite 1):"
dtls=$(get dtls_client_ir_per_handshake "$R/dtls_ir.txt")
for prov in openssl mbedtls; do
  a=$(awk -v p=$prov '$1 == p && $2 == "bench_dev_m0_to_m1" {print $3}' \
    "$R/device_ir.txt")
  b=$(awk -v p=$prov '$1 == p && $2 == "bench_dev_m4" {print $3}' \
    "$R/device_ir.txt")
  c=$(awk -v p=$prov '$1 == p && $2 == "bench_dev_init" {print $3}' \
    "$R/device_ir.txt")
  own=$(awk -v p=$prov '$1 == p && $2 != "bench_dev_init" {s += $4}
    END {print s}' "$R/device_ir.txt")
  echo "   $prov provider: M0->M1 $a + M4->established $b = $((a + b))" \
    "(of which mtcsec's own code $own; boot-time init $c);" \
    "DTLS client / device = $(div "$dtls" $((a + b)))"
done
echo "   OpenSSL DTLS 1.2 PSK client handshake: $dtls instructions"
dev_os=$(awk '$1 == "openssl" && $2 != "bench_dev_init" {s += $3} END {print s}' \
  "$R/device_ir.txt")
echo "   target device <= 1/20 of DTLS (OpenSSL provider): $(yn "$(awk \
  -v d="$dev_os" -v t="$dtls" 'BEGIN {print (d * 20 <= t)}')")"

echo
echo "3. Device-link bytes:"
sed 's/^/   /' "$R/link.txt"
s1d=$(awk '$1 == "1" && $2 == "direct" && $3 == "UE<->device" {print $7}' \
  "$R/link.txt")
dtb=$(awk '$1 == "dtls" && $2 == "cookie=on" {sub(/bytes=/, "", $3); print $3}' \
  "$R/link.txt")
ovh=$(awk '$1 == "1" && $2 == "direct" && $3 == "UE<->device" {print $8}' \
  "$R/link.txt")
echo "   target suite 1 direct = 113 B: $(yn "$([ "$s1d" = 113 ] && echo 1)")" \
  "($s1d B); < 1/5 of DTLS with cookie ($dtb B): $(yn "$(awk -v a="$s1d" \
  -v b="$dtb" 'BEGIN {print (a * 5 < b)}')"); record overhead <= 15 B:" \
  "$(yn "$([ "${ovh:-99}" -le 15 ] && echo 1)") ($ovh B)"

echo
echo "4. Cortex-M4 (arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os," \
  "gc-sections, logs compiled out; firmware configuration $FWDEFS" \
  "-DMTCSEC_CFG_MAX_KEY_LEN=16 unless said otherwise):"
if [ -s "$R/arm_fw.txt" ]; then
  sed 's/^/   object /' "$R/arm_objects.txt"
  core=$(awk '$1 == "core" && $2 != "bss" {s += $3} END {print s + 0}' \
    "$R/arm_fw.txt")
  dev=$(awk '$1 == "device" && $2 != "bss" {s += $3} END {print s + 0}' \
    "$R/arm_fw.txt")
  lgcc=$(awk '$1 == "libgcc" && $2 == "flash" {print $3}' "$R/arm_fw.txt")
  corelog=$(awk '($1 == "core" || $1 == "device") && $2 != "bss" {s += $3}
    END {print s + 0}' "$R/arm_fw_logs.txt")
  libclog=$(awk '$1 == "libc" && $2 == "flash" {print $3}' \
    "$R/arm_fw_logs.txt")
  libc=$(awk '$1 == "libc" && $2 == "flash" {print $3}' "$R/arm_fw.txt")
  lto=$(awk '($1 == "lto" || $1 == "core" || $1 == "device") && $2 != "bss" {
    s += $3} END {print s + 0}' "$R/arm_fw_lto.txt")
  dcore=$(awk '$1 == "core" && $2 != "bss" {s += $3} END {print s + 0}' \
    "$R/arm_fw_defaults.txt")
  ddev=$(awk '$1 == "device" && $2 != "bss" {s += $3} END {print s + 0}' \
    "$R/arm_fw_defaults.txt")
  echo "   linked firmware stand-in: mtcsec core $core B + device $dev B" \
    "= $((core + dev)) B flash (+ libgcc ${lgcc:-0} B, 64-bit helpers);" \
    "newlib $libc B"
  echo "   the same with -flto over mtcsec: $lto B flash"
  echo "   the library's defaults instead of the firmware configuration" \
    "(only MTCSEC_CFG_MAX_KEY_LEN=16): core $dcore B + device $ddev B =" \
    "$((dcore + ddev)) B flash"
  off=$(get vsnprintf_linked_logs_off "$R/arm_logs.txt")
  on=$(get vsnprintf_linked_logs_on "$R/arm_logs.txt")
  echo "   vsnprintf linked with logs compiled out: $([ "$off" = 0 ] &&
    echo no || echo YES); with the default log level: $([ "$on" = 0 ] &&
    echo no || echo yes) (mtcsec $corelog B, newlib $libclog B)"
  sed 's/^/   sizeof /' "$R/arm_sizeof.txt"
  echo "   largest stack frames:"
  sed 's/^/     /' "$R/arm_stack.txt"
  devsz=$(awk '$1 == "sizeof_mtcsec_dev" {print $2; exit}' \
    "$R/arm_sizeof.txt")
  sesz=$(awk '$1 == "sizeof_mtcsec_dev_session" {print $2; exit}' \
    "$R/arm_sizeof.txt")
  echo "   RAM: device context sizeof(mtcsec_dev) = $devsz B; each live" \
    "DMKey sizeof(mtcsec_dev_session) = $sesz B (caller's storage);" \
    "context + 1 session = $((${devsz:-0} + ${sesz:-0})) B"
  echo "   target <= 4096 B flash: $(yn "$([ $((core + dev)) -le 4096 ] &&
    echo 1)") ($((core + dev)) B); with -flto: $(yn "$([ "$lto" -le 4096 ] &&
    echo 1)") ($lto B); <= 256 B RAM per device context (sizeof(mtcsec_dev) =" \
    "$devsz): $(yn "$([ "${devsz:-999}" -le 256 ] && echo 1)"); with one" \
    "live session ($((${devsz:-0} + ${sesz:-0})) B): $(yn "$([ \
    $((${devsz:-999} + ${sesz:-0})) -le 256 ] && echo 1)")"
else
  echo "   cross build failed (see $ARM.log)"
fi

# Cellular mode (issue 4, item 7): radio bytes MS<->SGSN to the first payload,
# and the MS's instructions (callgrind) for this mode and for DTLS 1.2 PSK.
echo
echo "5. Cellular mode vs DTLS 1.2 PSK, radio side (bench_cellular):"
step "cellular mode: radio bytes; MS instructions (callgrind)"
if cmake --build "$B" -j "$jobs" --target bench_cellular >>"$R/build.log" 2>&1
then
  "$BIN/bench_cellular" >"$R/cellular.txt"
  for c in a:openssl a:mbedtls b:openssl; do
    callgrind_ir "cell.${c/:/.}" bench_cell_ms_step "$BIN/bench_cellular" \
      --only "${c%:*}" --provider "${c#*:}" --n 10 >/dev/null
    callgrind_annotate --inclusive=yes --threshold=100 \
      "$R/callgrind.cell.${c/:/.}.out" 2>/dev/null | awk 'NF > 1 &&
      $1 ~ /^[0-9,]+$/ {gsub(",", "", $1); n = $(NF - 1); sub(/.*:/, "", n);
      print n, $1}' >"$R/cellular_ir.${c/:/.}.txt"
  done
  "$BIN/bench_cellular" --report 10 "$R/cellular_ir.a.openssl.txt" \
    "$R/cellular_ir.b.openssl.txt" "$R/device_ir.txt" \
    "$R/cellular_ir.a.mbedtls.txt" >>"$R/cellular.txt"
  grep -v '^#' "$R/cellular.txt" | sed 's/^/   /'
else
  echo "   bench_cellular did not build (see $R/build.log)"
fi
echo
echo "raw outputs: $R"
