# shellcheck shell=bash disable=SC2120
# Shared helpers of the system tests (sourced, not run).  Every test gets a
# fresh temporary directory with its own state directory, picks free
# loopback ports, starts programs in the background with logs in the
# temporary directory, waits with deadlines, and on exit stops everything
# it started and removes the directory.  On failure it prints the logs.
#
# Usage in a test:  . "$(dirname "$0")/lib.sh" "$@"   (MTCSEC MTCSD paths)

set -euo pipefail

MTCSEC=${1:?usage: test.sh MTCSEC MTCSD}
MTCSD=${2:?usage: test.sh MTCSEC MTCSD}
TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/mtcsec-$TEST_NAME.XXXXXX")
export MTCSEC_DIR=$T/state
PIDS=()
NAMES=()
CLEANUP_HOOKS=()

log() { printf '[%s] %s\n' "$TEST_NAME" "$*"; }

fail() {
  log "FAIL: $*"
  exit 1
}

_cleanup() {
  local rc=$? i
  set +e
  for i in "${!CLEANUP_HOOKS[@]}"; do
    eval "${CLEANUP_HOOKS[$i]}"
  done
  for i in "${!PIDS[@]}"; do
    kill -TERM "${PIDS[$i]}" 2>/dev/null
  done
  for i in "${!PIDS[@]}"; do
    _wait_pid "${PIDS[$i]}" 3 || kill -KILL "${PIDS[$i]}" 2>/dev/null
  done
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    for f in "$T"/*.log; do
      [ -f "$f" ] || continue
      echo "----- $(basename "$f") (last 40 lines)"
      tail -n 40 "$f"
    done
  fi
  rm -rf "$T"
  exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

# _wait_pid PID SECONDS: waits for a background child; 0 when it ended.
_wait_pid() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
  return 0
}

# free_ports N: the first of N consecutive loopback ports free for both
# TCP and UDP.
free_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(500):
    base = random.randint(20000, 60000 - n)
    ok, socks = True, []
    for p in range(base, base + n):
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            socks.append(s)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
                break
        if not ok:
            break
    for s in socks:
        s.close()
    if ok:
        print(base)
        sys.exit(0)
sys.exit(1)
PY
}

# start NAME CMD...: runs CMD in the background, output in $T/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$T/$name.log" 2>&1 &
  PIDS+=("$!")
  NAMES+=("$name")
  eval "PID_$name=$!"
}

# stop NAME: SIGTERM, wait (5 s), and check the exit status is 0 (a
# sanitizer report or a leak makes it non-zero).
stop() {
  local name=$1 pid i rc
  pid=$(eval echo "\$PID_$name")
  kill -TERM "$pid" 2>/dev/null || true
  _wait_pid "$pid" 5 || fail "$name did not stop on SIGTERM"
  set +e
  wait "$pid"
  rc=$?
  set -e
  for i in "${!PIDS[@]}"; do
    [ "${PIDS[$i]}" != "$pid" ] || unset "PIDS[$i]"
  done
  [ "$rc" -eq 0 ] || fail "$name exited with status $rc"
}

# wait_for SECONDS CMD...: retries CMD until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# mtcsec ARGS: the admin tool / agents, bounded in time.
mtcsec() { timeout 60 "$MTCSEC" "$@"; }

# expect_status CODE CMD...: runs CMD (output in $T/last.out), checks CODE.
expect_status() {
  local want=$1 rc
  shift
  set +e
  "$@" >"$T/last.out" 2>&1
  rc=$?
  set -e
  if [ "$rc" -ne "$want" ]; then
    cat "$T/last.out"
    fail "expected status $want, got $rc: $*"
  fi
}

# expect_output REGEX: the last expect_status output matches REGEX.
expect_output() {
  grep -Eq -- "$1" "$T/last.out" || {
    cat "$T/last.out"
    fail "output does not match /$1/"
  }
}

# log_has NAME REGEX [SECONDS]: a background program's log matches.
log_has() {
  local deadline=$((SECONDS + ${3:-5}))
  until grep -Eq -- "$2" "$T/$1.log"; do
    [ "$SECONDS" -lt "$deadline" ] || {
      tail -n 20 "$T/$1.log"
      fail "$1.log does not match /$2/"
    }
    sleep 0.05
  done
}

# setup_server [LISTEN_HOST]: a state directory and a running mtcsd on a
# free port; PORT_BASE leaves PORT_BASE+2.. for the test.
setup_server() {
  local host=${1:-127.0.0.1}
  PORT_BASE=$(free_ports "${NPORTS:-16}") || fail "no free ports"
  SRV_PORT=$PORT_BASE
  mtcsec init "$MTCSEC_DIR" --listen "$host:$SRV_PORT" >/dev/null
  # No metrics endpoint: one port less to collide on.
  sed -i 's/^metrics_listen *=.*/metrics_listen =/' "$MTCSEC_DIR/mtcsd.conf"
}

start_mtcsd() {
  local host=${1:-127.0.0.1}
  start mtcsd "$MTCSD" -c "$MTCSEC_DIR/mtcsd.conf"
  wait_for 15 tcp_open "$host" "$SRV_PORT" || fail "mtcsd did not listen"
}

# start_device NAME PORT ID... [options]: a device agent; waits until every
# ID announced its address.
start_device() {
  local name=$1 port=$2 id
  shift 2
  start "$name" "$MTCSEC" device run "$@" --listen "127.0.0.1:$port" \
    --m0-interval 200 --retx-timeout 1000 --retx-max 1
  for id in "$@"; do
    case "$id" in -*) break ;; esac
    wait_for 15 test -f "$MTCSEC_DIR/devices/$id.addr" ||
      fail "device $id did not start"
  done
}
