#!/usr/bin/env bash
# End-to-end server benchmark (docs/BENCHMARKS-SERVER.md): mtcsd with the
# durable SQLite store driven over TLS 1.3 by bench_e2e, and an OpenSSL
# DTLS 1.2 PSK server driven by its clients (bench_dtls_server), on this
# machine, in one run.
#
#   1. Release build of mtcsd, bench_e2e and bench_dtls_server ($B)
#   2. waits while scripts/bench.sh runs (timings would be meaningless)
#   3. two provisioned stores: 10k and MTCSEC_E2E_BIG (1M) devices
#   4. for N = 1, 8, 32: mtcsd (10k devices) under N TLS connections x
#      W = 64 M2s in flight, then the DTLS 1.2 PSK server under N clients
#      with and without the cookie exchange; then mtcsd with N = 1, W = 1
#      (latency without queueing)
#   5. mtcsd with 1M devices (N = 8, 32; N = 32 again with the devices in
#      sequential order), and a 30 s run with 10k devices
#   6. summary; raw outputs in $B/results
# Each mtcsd run starts on a fresh copy of the provisioned database, so that
# sessions recorded by one run do not slow the next.
#
# Knobs (environment): MTCSEC_E2E_DIR (build/bench-e2e), MTCSEC_E2E_DURATION
# seconds per measured window (10), MTCSEC_E2E_WARMUP (2), MTCSEC_E2E_CONNS
# ("1 8 32"), MTCSEC_E2E_WINDOW (64), MTCSEC_E2E_BIG devices of the large
# store (1000000), MTCSEC_E2E_M1S M1s built per run (default: 150000 per
# second of warm-up and window, enough for 150k handshakes/s; a run whose
# pool runs out ends its window early and says pool_exhausted=1),
# MTCSEC_E2E_QUIET_WAIT seconds in all to wait for a quiet machine (60).
# State directories are made under $TMPDIR (else /tmp) and removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

B=${MTCSEC_E2E_DIR:-build/bench-e2e}
DUR=${MTCSEC_E2E_DURATION:-10}
WARM=${MTCSEC_E2E_WARMUP:-2}
CONNS=${MTCSEC_E2E_CONNS:-1 8 32}
WIN=${MTCSEC_E2E_WINDOW:-64}
BIG=${MTCSEC_E2E_BIG:-1000000}
M1S=${MTCSEC_E2E_M1S:-0}
SMALL=10000
R=$B/results
jobs=$(nproc 2>/dev/null || echo 2)

step() { echo "== $*" >&2; }

# ------------------------------------------------------------ build
mkdir -p "$R"
step "1/6 Release build in $B"
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DMTCSEC_BUILD_TESTS=OFF \
  >"$R/build.log" 2>&1
cmake --build "$B" -j "$jobs" --target mtcsd mtcsec-cli bench_e2e \
  bench_dtls_server \
  >>"$R/build.log" 2>&1 || {
  tail -n 40 "$R/build.log" >&2
  exit 1
}
MTCSD=$B/apps/mtcsd
CLI=$B/apps/mtcsec
E2E=$B/bench/bench_e2e
DTLS=$B/bench/bench_dtls_server

step "2/6 waiting until no other benchmark runs"
while pgrep -f 'scripts/bench.sh' >/dev/null; do
  echo "e2e: scripts/bench.sh is running; waiting" >&2
  sleep 10
done

# ------------------------------------------------------------ state
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mtcsec-e2e.XXXXXX")
MPID=
cleanup() {
  if [ -n "$MPID" ] && kill -0 "$MPID" 2>/dev/null; then
    kill -KILL "$MPID" 2>/dev/null || true
    wait "$MPID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
  echo "kernel: $(uname -r)"
  echo "compiler: $(cc --version | sed -n 1p)"
  echo "openssl: $(openssl version)"
  echo "sqlite: $(pkg-config --modversion sqlite3 2>/dev/null || echo '?')"
  echo "state fs: $(df -T "$TMP" | awk 'NR == 2 {print $2}')"
} >"$R/machine.txt"
cat "$R/machine.txt" >&2

# Busy percentage of the whole machine over one second (/proc/stat).
busy() {
  local a b
  a=$(head -n 1 /proc/stat)
  sleep 1
  b=$(head -n 1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {
    split(a, x, " "); split(b, y, " "); t = 0; idle = 0
    for (k = 2; k <= 9; k++) { d = y[k] - x[k]; t += d
      if (k == 5 || k == 6) idle += d }
    printf "%d", (t > 0 ? 100 * (t - idle) / t : 0) }'
}

# quiet WHAT: waits (within a budget of MTCSEC_E2E_QUIET_WAIT s for the
# whole run, default 60) until other programs use < 20% of the machine, and
# records what was found: on 2 cores, a busy neighbour halves the results.
QUIET_LEFT=${MTCSEC_E2E_QUIET_WAIT:-60}
quiet() {
  local b
  b=$(busy)
  while [ "$b" -gt 20 ] && [ "$QUIET_LEFT" -gt 0 ]; do
    echo "e2e: machine ${b}% busy before $1; waiting" >&2
    sleep 4
    QUIET_LEFT=$((QUIET_LEFT - 5))
    b=$(busy)
  done
  echo "background before $1: ${b}% of the machine busy" |
    tee -a "$R/machine.txt" >&2
}

# start_mtcsd DIR: mtcsd in the foreground of a background job, log level
# warn (set in mtcsd.conf): no line per exchange.
start_mtcsd() {
  "$MTCSD" -c "$1/mtcsd.conf" -f 2>"$1/mtcsd.log" &
  MPID=$!
}

stop_mtcsd() {
  kill -TERM "$MPID"
  wait "$MPID" || {
    echo "e2e: mtcsd exited with $?" >&2
    cat "$1/mtcsd.log" >&2
    exit 1
  }
  MPID=
  if [ -s "$1/mtcsd.log" ]; then
    echo "e2e: mtcsd logged (warn and above):" >&2
    head -n 5 "$1/mtcsd.log" >&2
  fi
}

# mtcsd_run DIR DEVICES CONNS WINDOW LABEL DURATION [ORDER]: mtcsd on a
# fresh copy of the provisioned database (no sessions yet), one load run
# (devices in scattered order unless ORDER says sequential), stop.
mtcsd_run() {
  quiet "$5"
  cp "$1/provisioned.db" "$1/mtcsd.db"
  rm -f "$1/mtcsd.db-wal" "$1/mtcsd.db-shm"
  sync "$1/mtcsd.db"
  start_mtcsd "$1"
  timeout 180 "$E2E" load --dir "$1" --pid "$MPID" --devices "$2" \
    --conns "$3" --window "$4" --duration "$6" --warmup "$WARM" \
    --m1s "$((M1S > 0 ? M1S : 150000 * ($6 + WARM)))" --label "$5" \
    --order "${7:-scattered}" \
    2> >(tee -a "$R/progress.log" >&2) | tee -a "$R/e2e.txt"
  stop_mtcsd "$1"
  "$E2E" dbinfo "$1" | sed "s/^/$5 after the run: /" | tee -a "$R/setup.txt"
}

# dtls_run CLIENTS LABEL [--nocookie]
dtls_run() {
  quiet "$2"
  timeout 120 "$DTLS" --clients "$1" --duration "$DUR" --warmup "$WARM" \
    --server-threads 2 --label "$2" ${3:-} \
    2> >(tee -a "$R/progress.log" >&2) | tee -a "$R/dtls.txt"
}

: >"$R/e2e.txt"
: >"$R/dtls.txt"
: >"$R/setup.txt"
: >"$R/progress.log"

# ------------------------------------------------------------ stores
step "3/6 stores of $SMALL and $BIG devices"
S=$TMP/s10k
L=$TMP/sbig
# The product makes the state directories (CA, certificates, KEK, DB);
# bench_e2e provisions the devices and rewrites mtcsd.conf.
for d in "$S" "$L"; do
  "$CLI" init "$d" --mtcs-id 5e00000000000001 >/dev/null
  "$CLI" -d "$d" ue add 0e00000000000042 >/dev/null
done
"$E2E" setup "$S" --devices "$SMALL" --api 200 | tee -a "$R/setup.txt"
timeout 300 "$E2E" setup "$L" --devices "$BIG" --api 200 |
  tee -a "$R/setup.txt"
for d in "$S" "$L"; do
  "$E2E" dbinfo "$d" | sed "s/^/$(basename "$d") provisioned: /" |
    tee -a "$R/setup.txt"
  mv "$d/mtcsd.db" "$d/provisioned.db"
done

# ------------------------------------------------------------ runs
step "4/6 mtcsd ($SMALL devices) and the DTLS 1.2 PSK server, N = $CONNS"
for n in $CONNS; do
  mtcsd_run "$S" "$SMALL" "$n" "$WIN" "10k-n$n-w$WIN" "$DUR"
  dtls_run "$n" "dtls-cookie-n$n"
  dtls_run "$n" "dtls-nocookie-n$n" --nocookie
done
mtcsd_run "$S" "$SMALL" 1 1 "10k-n1-w1" "$DUR"

step "5/6 mtcsd with $BIG devices; a 30 s run with $SMALL devices"
for n in 8 32; do
  mtcsd_run "$L" "$BIG" "$n" "$WIN" "big-n$n-w$WIN" "$DUR"
done
mtcsd_run "$L" "$BIG" 32 "$WIN" "big-n32-w$WIN-seq" "$DUR" sequential
mtcsd_run "$S" "$SMALL" 32 "$WIN" "10k-n32-w$WIN-30s" 30
rm -rf "$S" "$L"

# ------------------------------------------------------------ summary
step "6/6 summary"
val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
{
  printf '%-20s %8s %8s %8s %10s %13s %7s\n' run hs/s p50_ms p99_ms \
    srv_cores hs/srv-cpu-s others
  while read -r line; do
    printf '%-20s %8s %8s %8s %10s %13s %7s\n' "$(echo "$line" | val label)" \
      "$(echo "$line" | val hs_per_s)" "$(echo "$line" | val p50_ms)" \
      "$(echo "$line" | val p99_ms)" "$(echo "$line" | val srv_cores)" \
      "$(echo "$line" | val hs_per_srv_cpu_s)" \
      "$(echo "$line" | val others_cores)"
  done < <(cat "$R/e2e.txt" "$R/dtls.txt")
  echo
  for n in $CONNS; do
    m=$(grep " label=10k-n$n-w$WIN " "$R/e2e.txt")
    dc=$(grep " label=dtls-cookie-n$n " "$R/dtls.txt")
    dn=$(grep " label=dtls-nocookie-n$n " "$R/dtls.txt")
    awk -v n="$n" -v m="$(echo "$m" | val hs_per_s)" \
      -v dc="$(echo "$dc" | val hs_per_s)" \
      -v dn="$(echo "$dn" | val hs_per_s)" \
      -v mc="$(echo "$m" | val hs_per_srv_cpu_s)" \
      -v dcc="$(echo "$dc" | val hs_per_srv_cpu_s)" \
      -v dnc="$(echo "$dn" | val hs_per_srv_cpu_s)" 'BEGIN {
      printf "N=%s: mtcsd / DTLS hs/s: %.1fx (cookie), %.1fx (no cookie); " \
        "per server CPU-second: %.1fx, %.1fx\n", n, m / dc, m / dn,
        mc / dcc, mc / dnc }'
  done
} | tee "$R/summary.txt"
