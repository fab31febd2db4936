# shellcheck shell=bash
# Helpers of the cellular end-to-end tests (sourced, not run).  On top of
# tests/system/lib.sh (temporary directory, start/stop/log_has, cleanup of
# everything started): the cellular programs started on loopback with
# system-chosen ports (read back from their `event=listening` lines), UDP
# relays of celltool.py between them, metrics and SGSN counters.
#
# Usage in a test:  . "$(dirname "$0")/cell_lib.sh" "$@"
#                   (MTCSEC MTCSD MTCHPD paths)

CELL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MTCHPD=${3:?usage: test.sh MTCSEC MTCSD MTCHPD}
# shellcheck source=../system/lib.sh disable=SC2119
. "$CELL_DIR/../system/lib.sh" "$1" "$2"

command -v python3 >/dev/null || {
  echo "[$TEST_NAME] SKIP: python3 is missing (scripts/deps.sh installs it)"
  exit 77
}
[ -x "$MTCHPD" ] || fail "mtchpd not found at $MTCHPD"

GGSN_ID=6600000000000001
# TS 35.208 test set 1: K and OPc (public test values, never real ones).
# shellcheck disable=SC2034 # used by the tests
TEST_K=465b5ce8b199b49faa5f0a2ee238a6bc
# shellcheck disable=SC2034
TEST_OPC=cd63cb71954a9f4e48a5994e37a02baf

celltool() { timeout 30 python3 "$CELL_DIR/celltool.py" "$@"; }

# log_addr NAME KEY [SECONDS]: waits for "KEY=ADDR" in NAME.log (a line
# written when a program has bound a socket) and prints ADDR.
log_addr() {
  local name=$1 key=$2 deadline=$((SECONDS + ${3:-15})) v
  while :; do
    v=$(sed -n -E "s/.*[ ]$key=([^ ]+).*/\1/p" "$T/$name.log" 2>/dev/null |
      head -n 1)
    if [ -n "$v" ]; then
      printf '%s\n' "$v"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "[$TEST_NAME] no '$key=' in $name.log" >&2
      tail -n 20 "$T/$name.log" >&2
      return 1
    fi
    sleep 0.05
  done
}

# cell_init: one state directory (mtcsec init, hp init, a GGSN certificate)
# with every listener on a port chosen by the system.
cell_init() {
  mtcsec init "$MTCSEC_DIR" --listen 127.0.0.1:0 >/dev/null
  mtcsec hp init --gsup-listen 127.0.0.1:0 --kup-listen 127.0.0.1:0 \
    >/dev/null 2>&1
  mtcsec ggsn add $GGSN_ID >/dev/null 2>&1
  MTCS_ID=$(sed -n -E 's/^mtcs_id *= *([0-9a-f]{16}).*/\1/p' \
    "$MTCSEC_DIR/mtcsd.conf")
  [ -n "$MTCS_ID" ] || fail "no mtcs_id in mtcsd.conf"
}

# start_hp: mtchpd with the state directory's mtchpd.conf; sets GSUP_ADDR
# and KUP_ADDR.
start_hp() {
  start hp "$MTCHPD" -c "$MTCSEC_DIR/mtchpd.conf" --log-level debug
  GSUP_ADDR=$(log_addr hp 'service=gsup addr')
  KUP_ADDR=$(log_addr hp 'service=kup addr')
  log_has hp 'event=ready mode='
}

# start_mtcsd_cell: mtcsd with its cellular service (cellular_listen,
# allowed_ggsns, home_proxy = this mtchpd) and a metrics endpoint; sets
# CELL_ADDR and METRICS_ADDR.
start_mtcsd_cell() {
  sed -i -E -e 's/^cellular_listen *=.*/cellular_listen = 127.0.0.1:0/' \
    -e "s/^allowed_ggsns *=.*/allowed_ggsns = $GGSN_ID/" \
    -e "s/^home_proxy *=.*/home_proxy = $KUP_ADDR/" \
    -e 's/^metrics_listen *=.*/metrics_listen = 127.0.0.1:0/' \
    -e 's/^log_level *=.*/log_level = debug/' "$MTCSEC_DIR/mtcsd.conf"
  start mtcsd "$MTCSD" -c "$MTCSEC_DIR/mtcsd.conf"
  CELL_ADDR=$(log_addr mtcsd 'event=cellular_listening addr')
  METRICS_ADDR=$(log_addr mtcsd 'event=metrics_listening addr')
  log_has mtcsd 'event=cellular_ready' 15
}

# start_ggsn: the GGSN agent with its Gi link up; sets GTP_ADDR.
start_ggsn() {
  start ggsn "$MTCSEC" ggsn run --listen 127.0.0.1:0 --mtcs "$CELL_ADDR" \
    --cert "$MTCSEC_DIR/ggsns/$GGSN_ID.pem" \
    --key "$MTCSEC_DIR/ggsns/$GGSN_ID.key" --ca "$MTCSEC_DIR/ca.pem" \
    --trace --log-level debug
  GTP_ADDR=$(log_addr ggsn 'service=gtp addr')
  log_has ggsn 'event=gi_connected' 15
  log_has mtcsd "event=gi_connected .*ggsn=$GGSN_ID"
}

# start_sgsn HLR GGSN: the SGSN agent, its GSUP link up; sets RADIO_ADDR.
start_sgsn() {
  start sgsn "$MTCSEC" sgsn run --listen 127.0.0.1:0 --hlr "$1" --ggsn "$2" \
    --trace --log-level debug
  RADIO_ADDR=$(log_addr sgsn 'service=radio addr')
  log_has sgsn 'event=hlr_ready' 15
}

# start_relay NAME TO: a celltool relay in front of TO; sets NAME_ADDR (its
# client-facing address) and NAME_CTL (its control port).  Datagrams are
# recorded in $T/NAME.cap.
start_relay() {
  local name=$1 to=$2 line deadline=$((SECONDS + 15))
  start "$name" python3 "$CELL_DIR/celltool.py" relay --to "$to" \
    --capture "$T/$name.cap" --ready "$T/$name.ready"
  until [ -s "$T/$name.ready" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "relay $name did not start"
    sleep 0.05
  done
  # shellcheck disable=SC2034 # read by the evals below
  read -r line <"$T/$name.ready"
  eval "${name}_ADDR=\${line% *}"
  eval "${name}_CTL=\${line#* }"
}

# start_network: mtchpd, mtcsd, GGSN, SGSN, with relays "gtp" (SGSN <->
# GGSN) and "radio" (MS <-> SGSN); MSs use $radio_ADDR.
start_network() {
  start_hp
  start_mtcsd_cell
  start_ggsn
  start_relay gtp "$GTP_ADDR"
  # shellcheck disable=SC2154
  start_sgsn "$GSUP_ADDR" "$gtp_ADDR"
  start_relay radio "$RADIO_ADDR"
}

# ms_run OUT STATUS ARGS...: `mtcsec ms run ARGS` in the foreground (output
# in $T/OUT.out), checking its exit status.
ms_run() {
  local out=$1 want=$2 rc
  shift 2
  set +e
  timeout 60 "$MTCSEC" ms run "$@" >"$T/$out.out" 2>&1
  rc=$?
  set -e
  if [ "$rc" -ne "$want" ]; then
    cat "$T/$out.out"
    fail "ms run $*: expected status $want, got $rc"
  fi
}

# out_has OUT REGEX: $T/OUT.out matches REGEX.
out_has() {
  grep -Eq -- "$2" "$T/$1.out" || {
    cat "$T/$1.out"
    fail "$1.out does not match /$2/"
  }
}

# count_lines FILE REGEX: how many lines of FILE match (0 when none).
count_lines() { grep -Ec -- "$2" "$1" || true; }

# expect_count NAME REGEX N: NAME.log has exactly N lines matching REGEX.
expect_count() {
  local n
  n=$(count_lines "$T/$1.log" "$2")
  [ "$n" -eq "$3" ] || {
    grep -E -- "$2" "$T/$1.log" || true
    fail "$1.log: $n lines match /$2/, expected $3"
  }
}

# metric NAME: the value of one metric line of mtcsd's /metrics (exact
# name with labels, e.g. 'mtcsd_cellular_payloads_total{result="ok"}').
metric() {
  local host=${METRICS_ADDR%:*} port=${METRICS_ADDR##*:}
  exec 9<>"/dev/tcp/$host/$port" || fail "metrics endpoint unreachable"
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&9
  tr -d '\r' <&9 | awk -v k="$1" '$1 == k { print $2 }'
  exec 9>&-
}

# expect_metric NAME VALUE
expect_metric() {
  local v
  v=$(metric "$1")
  [ "$v" = "$2" ] || fail "metric $1 = '${v}', expected $2"
}

# sgsn_stat KEY: the SGSN's counter KEY from a fresh `event=stats` line
# (SIGUSR1).
sgsn_stat() {
  local before
  before=$(count_lines "$T/sgsn.log" 'event=stats ')
  # shellcheck disable=SC2154
  kill -USR1 "$PID_sgsn"
  local deadline=$((SECONDS + 5))
  until [ "$(count_lines "$T/sgsn.log" 'event=stats ')" -gt "$before" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the SGSN did not log its stats"
    sleep 0.05
  done
  grep -E 'event=stats ' "$T/sgsn.log" | tail -n 1 |
    sed -n -E "s/.*[ ]$1=([0-9]+).*/\1/p"
}

expect_sgsn_stat() {
  local v
  v=$(sgsn_stat "$1")
  [ "$v" = "$2" ] || fail "SGSN counter $1 = '${v}', expected $2"
}

# plaintext_absent TEXT: TEXT is in no datagram the SGSN sent or received
# (both relays' records) and nowhere in its log and trace.
plaintext_absent() {
  local n
  for cap in radio gtp; do
    n=$(celltool contains "$T/$cap.cap" "$1")
    [ "$n" = 0 ] || fail "'$1' in clear in $n datagrams of $cap.cap"
  done
  if grep -qF -- "$1" "$T/sgsn.log"; then
    fail "'$1' in the SGSN's log or trace"
  fi
}

# cap_hex CAP DIR REGEX [N]: the Nth (default 1st) datagram recorded by relay
# CAP in direction DIR ("up": toward the server side, "down") whose hex
# starts with REGEX.
cap_hex() {
  local cap=$1 dir=$2 re=$3 n=${4:-1}
  grep -E "^$dir $re" "$T/$cap.cap" | sed -n "${n}p" | cut -d' ' -f2
}

# stop_all: stops the network in order, checking each exit status (an
# ASan or leak report makes it non-zero).
stop_all() {
  stop sgsn
  stop ggsn
  stop mtcsd
  stop hp
}
