#!/usr/bin/env bash
# A full disk, for real.  mtcsd's state directory (its SQLite database, WAL
# and shared-memory index) lives on a small file system in a private mount
# namespace, and a filler file takes its last free block.  Then:
#
#  - every exchange is answered ERR INTERNAL (PROTOCOL.md section 5, code
#    12), mtcsd logs event=store_commit_failed saying the disk is full and
#    what to do, keeps running and keeps answering;
#  - nothing of a failed exchange is kept: no session, no nonce window;
#  - once the filler is removed, exchanges succeed again;
#  - a kill -9 with the disk full, a restart with it still full, then freed,
#    loses no session that was acknowledged before;
#  - a checkpoint that must grow the database file (another connection's
#    while mtcsd runs, mtcsd's own when it stops cleanly) fails with
#    SQLITE_FULL: the WAL stays, and a restart finds every session; the
#    final fold of the session log at the stop fails too, and mtcsd says so
#    (event=store_final_fold_failed); with room, it leaves no log tail;
#  - after a complete checkpoint SQLite writes the WAL again from its start,
#    so exchanges that fit into its blocks succeed on a full disk: they are
#    acknowledged, and must survive a kill -9 like any other.
#
# The device and UE agents keep their own files (nonce counters, kept keys)
# in a directory on the ordinary file system, as field equipment would: only
# the server's disk fills.
#
# The small file system is an 8 MiB tmpfs; MTCSEC_DISKFULL_FS=ext4 uses an
# ext4 image on a loop device instead (block allocation, journal and fsync
# of a disk file system).  Needs a private mount namespace and the mount
# (root; tmpfs also in an unprivileged user namespace): exits 77 (skipped)
# with the reason otherwise.
# shellcheck disable=SC2154 # PID_<name> is set by lib.sh's start

# Run again in a mount namespace of our own: the mount is private to this
# test and goes away with it, whatever happens.  MTCSEC_DISKFULL_NS names
# the namespace we came from; nothing is mounted unless this one differs
# from it and from our parent's (when that can be read).
NS_NOW=$(readlink /proc/self/ns/mnt)
NS_PARENT=$(readlink "/proc/$PPID/ns/mnt" 2>/dev/null || true)
if [ -z "${MTCSEC_DISKFULL_NS:-}" ] || [ "$MTCSEC_DISKFULL_NS" = "$NS_NOW" ] ||
  [ "$NS_PARENT" = "$NS_NOW" ]; then
  for flags in "-m" "-r -m"; do
    # shellcheck disable=SC2086
    if unshare $flags --propagation private true 2>/dev/null; then
      export MTCSEC_DISKFULL_NS=$NS_NOW
      # shellcheck disable=SC2086
      exec unshare $flags --propagation private bash "$0" "$@"
    fi
  done
  echo "[test_diskfull] SKIP: cannot make a private mount namespace here" \
    "(unshare -m needs root or unprivileged user namespaces)"
  exit 77
fi

# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh" "$@"

skip() {
  log "SKIP: $*"
  exit 77
}

FS=$T/fs
mkdir "$FS"
case "${MTCSEC_DISKFULL_FS:-tmpfs}" in
tmpfs)
  mount -t tmpfs -o size=8m,mode=0700 mtcsec-diskfull "$FS" 2>"$T/mount.err" ||
    skip "cannot mount a tmpfs: $(cat "$T/mount.err")"
  ;;
ext4)
  command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 is not installed"
  truncate -s 16m "$T/disk.img"
  mkfs.ext4 -q -m 0 -F "$T/disk.img" >"$T/mount.err" 2>&1 ||
    skip "mkfs.ext4 failed: $(cat "$T/mount.err")"
  mount -o loop "$T/disk.img" "$FS" 2>"$T/mount.err" ||
    skip "cannot mount an ext4 image on a loop device: $(cat "$T/mount.err")"
  chmod 0700 "$FS"
  ;;
*) fail "MTCSEC_DISKFULL_FS is tmpfs or ext4" ;;
esac
# Lazy: mtcsd may still hold its files when the hooks run.
CLEANUP_HOOKS+=("umount -l '$FS' 2>/dev/null")

SRV=$FS/state # the server's state directory, on the small file system
DB=$SRV/mtcsd.db
AG=$T/agents # the agents' files, on the ordinary one
export MTCSEC_DIR=$SRV
N=16
UE=0e000000000000df

avail() { df --output=avail -B1 "$FS" | tail -n 1 | tr -d ' '; }

# fill: the filler takes every free block (the last ones one file system
# block at a time).
fill() {
  dd if=/dev/zero of="$FS/filler" bs=64k >/dev/null 2>&1 || true
  dd if=/dev/zero of="$FS/filler" bs="$(stat -f -c %S "$FS")" oflag=append \
    conv=notrunc >/dev/null 2>&1 || true
  sync -f "$FS/filler" 2>/dev/null || true
  [ "$(avail)" -eq 0 ] || fail "the file system did not fill: $(avail) bytes free"
}
unfill() { rm -f "$FS/filler"; }

# sqlq SQL: runs SQL on the database read-only (as a second reader would).
sqlq() {
  python3 - "$DB" "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
for row in db.execute(sys.argv[2]):
    print(*row)
db.close()
PY
}

# sqlw SQL: runs SQL on a read-write connection of its own (as an operator's
# sqlite3 shell or a backup tool would, next to mtcsd).
sqlw() {
  python3 - "$DB" "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
try:
    for row in db.execute(sys.argv[2]):
        print(*row)
finally:
    db.close()
PY
}

# nsessions: how many sessions the server recorded; the list is kept in
# $T/sessions.json.
nsessions() {
  mtcsec sessions --json >"$T/sessions.json" || fail "mtcsec sessions failed"
  python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' \
    "$T/sessions.json"
}

expect_sessions() {
  local got
  got=$(nsessions)
  [ "$got" -eq "$1" ] || fail "$2: $got sessions recorded, expected $1"
}

# check_kept: every session of $T/sessions.acked is in $T/sessions.json.
check_kept() {
  python3 - "$T/sessions.acked" "$T/sessions.json" <<'PY' ||
import json, sys
key = lambda s: json.dumps(s, sort_keys=True)
acked = {key(s) for s in json.load(open(sys.argv[1]))}
now = {key(s) for s in json.load(open(sys.argv[2]))}
for s in sorted(acked - now):
    print("lost:", s)
sys.exit(1 if acked - now else 0)
PY
    fail "an acknowledged session was lost"
}

# windows: every device's nonce window and session count (`device list`).
windows() { mtcsec device list | sort; }

# scan WANT_STATUS: one UE establishes keys with every device at once, over
# one TLS connection (N exchanges in flight, committed together).
scan() {
  expect_status "$1" mtcsec -d "$AG" ue scan "${ids[@]}" \
    --addr-file "$T/addrs" --server "127.0.0.1:$SRV_PORT" --concurrency $N
}
scan_ok() {
  scan 0
  expect_output "^scan: $N devices, $N keys, 0 refused, 0 failed"
}
scan_internal() {
  scan 1
  expect_output "^scan: $N devices, 0 keys, $N refused, 0 failed"
  [ "$(grep -Ec '^020000000000d[0-9a-f]{3} +refused INTERNAL' "$T/last.out")" -eq $N ] ||
    { cat "$T/last.out"; fail "not every device was refused INTERNAL"; }
}

# metric NAME: a sample of mtcsd's /metrics (NAME with its labels).
metric() {
  python3 - "$METRICS_PORT" "$1" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1],
                              timeout=10).read().decode()
for line in body.splitlines():
    name, _, value = line.rpartition(" ")
    if name == sys.argv[2]:
        print(value)
        sys.exit(0)
print(0)
PY
}

mtcsd_alive() {
  kill -0 "$PID_mtcsd" 2>/dev/null || fail "mtcsd is not running"
  tcp_open 127.0.0.1 "$SRV_PORT" || fail "mtcsd does not accept connections"
}

# crash: kill -9 mtcsd (it leaves the WAL and its index as they are).
crash() {
  local i
  kill -KILL "$PID_mtcsd"
  wait "$PID_mtcsd" 2>/dev/null || true
  for i in "${!PIDS[@]}"; do
    [ "${PIDS[$i]}" != "$PID_mtcsd" ] || unset "PIDS[$i]"
  done
}

# restart: mtcsd again; the earlier log is kept as mtcsd-N.log.
NSTARTS=0
restart() {
  NSTARTS=$((NSTARTS + 1))
  mv "$T/mtcsd.log" "$T/mtcsd-$NSTARTS.log"
  start_mtcsd
}

log "state directory on a $(df -h --output=size "$FS" | tail -n 1 | tr -d ' ')" \
  "${MTCSEC_DISKFULL_FS:-tmpfs}"
PORT_BASE=$(free_ports $((N + 2))) || fail "no free ports"
SRV_PORT=$PORT_BASE
DEV_BASE=$((PORT_BASE + 2))
mtcsec init "$SRV" --listen "127.0.0.1:$SRV_PORT" >/dev/null
METRICS_PORT=$((PORT_BASE + 1))
sed -i "s/^metrics_listen *=.*/metrics_listen = 127.0.0.1:$METRICS_PORT/" \
  "$SRV/mtcsd.conf"
ids=()
: >"$T/addrs"
for i in $(seq 1 $N); do
  id=$(printf '020000000000d%03x' "$i")
  ids+=("$id")
  echo "$id 127.0.0.1:$((DEV_BASE + i - 1))" >>"$T/addrs"
  mtcsec device add "$id" --group fleet >/dev/null
done
mtcsec ue add $UE >/dev/null
mtcsec grant $UE @fleet --perms read >/dev/null

# What the field equipment holds: provisioning files, the UE's certificate
# and key, the CA certificate.  Neither the database nor the KEK.
mkdir -p "$AG/devices" "$AG/ues"
cp "$SRV"/devices/*.json "$AG/devices/"
cp "$SRV/ues/$UE.pem" "$SRV/ues/$UE.key" "$AG/ues/"
cp "$SRV/ca.pem" "$AG/"
chmod -R go-rwx "$AG"

start_mtcsd
# A device whose exchange failed waits for an M4 that never comes: give up
# soon (retx-max 0), so that the next scan finds it free again.
start devs "$MTCSEC" -d "$AG" device run "${ids[@]}" \
  --listen "127.0.0.1:$DEV_BASE" --m0-interval 200 --retx-timeout 500 \
  --retx-max 0
log_has devs "$N devices listening" 15

log "free disk: every device gets a key"
scan_ok
expect_sessions $N "after the first scan"
windows >"$T/windows.before"
[ "$(grep -Ec '^020000000000d[0-9a-f]{3} .* 1 +[0-9a-f]{16}$' "$T/windows.before")" -eq $N ] ||
  { cat "$T/windows.before"; fail "expected one session and a nonce per device"; }

log "disk full: every exchange is answered INTERNAL, twice; mtcsd goes on"
fill
for _ in 1 2; do
  scan_internal
  mtcsd_alive
done
log_has mtcsd 'level=error prog=mtcsd event=store_commit_failed n=[0-9]+ err=MTCSEC_ERR_STORE detail="[^"]* disk [^"]* is full: free space and retry; nothing of this operation was written" answer=INTERNAL'
[ "$(grep -c 'event=exchange .*result=INTERNAL' "$T/mtcsd.log")" -eq $((2 * N)) ] ||
  fail "mtcsd did not log $((2 * N)) exchanges with result=INTERNAL"
if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' "$T/mtcsd.log"; then
  fail "mtcsd reported a sanitizer error"
fi
log "... the UE is told so"
expect_status 1 mtcsec -d "$AG" ue get "${ids[0]}" temperature --new \
  --device-addr "127.0.0.1:$DEV_BASE" --server "127.0.0.1:$SRV_PORT"
expect_output 'server refused: INTERNAL.*full disk.*retry later'
[ "$(metric 'mtcsd_handshakes_total{result="INTERNAL"}')" -eq $((2 * N + 1)) ] ||
  fail "mtcsd_handshakes_total does not count $((2 * N + 1)) INTERNAL answers"
[ "$(metric mtcsd_store_commit_failures_total)" -ge 2 ] ||
  fail "mtcsd_store_commit_failures_total does not count the failed commits"
log "... and nothing of the failed exchanges was kept"
expect_sessions $N "after the failed exchanges"
windows >"$T/windows.full"
diff "$T/windows.before" "$T/windows.full" ||
  fail "a failed exchange moved a nonce window or counted a session"

log "disk freed: exchanges succeed again"
unfill
scan_ok
expect_sessions $((2 * N)) "after the disk was freed"
mtcsd_alive

log "disk full, kill -9, restart with the disk still full"
cp "$T/sessions.json" "$T/sessions.acked"
fill
scan_internal
crash
restart
scan_internal
mtcsd_alive
expect_sessions $((2 * N)) "after kill -9 on a full disk"

log "disk freed: every acknowledged session is there"
unfill
scan_ok
expect_sessions $((3 * N)) "after the restart"
check_kept

# Checkpoints.  Once the WAL holds pages past the end of the database file
# (the sessions of the scans since mtcsd started), a checkpoint must grow
# the file: with the disk full it fails with SQLITE_FULL and must leave the
# WAL, and every commit in it, as it is.  This is what happens to mtcsd's
# own automatic checkpoint (after 1000 WAL pages; SQLite ignores its error)
# and to the checkpoint of its last connection when it stops.
log "checkpoints on a full disk fail and lose nothing"
for _ in 1 2 3 4 5 6; do
  past=$(($(sqlq 'PRAGMA page_count') * $(sqlq 'PRAGMA page_size') -
    $(stat -c %s "$DB")))
  [ "$past" -le 0 ] || break
  scan_ok # more sessions, until the database file must grow
done
[ "$past" -gt 0 ] || fail "the WAL never held pages past the end of the database"
log "... the WAL holds $past bytes of pages past the end of the database file"
dbsize=$(stat -c %s "$DB")
nses=$(nsessions)
fill
sqlw 'PRAGMA wal_checkpoint(PASSIVE)' >"$T/ckpt.out" 2>&1 || true
grep -q 'database or disk is full' "$T/ckpt.out" ||
  { cat "$T/ckpt.out"; fail "a checkpoint on a full disk did not fail"; }
scan_internal
stop mtcsd # exit status 0 and no sanitizer report: checked by stop
# Its last commit, the final fold of the session log, did not fit: said so.
log_has mtcsd 'level=warn prog=mtcsd event=store_final_fold_failed err=MTCSEC_ERR_STORE detail="[^"]* is full[^"]*"'
[ -s "$DB-wal" ] || fail "the WAL is gone although the disk was full"
[ "$(stat -c %s "$DB")" -eq "$dbsize" ] || fail "the database file changed size"
[ "$(sqlq 'PRAGMA quick_check')" = ok ] || fail "the database is damaged"
expect_sessions "$nses" "after a clean stop on a full disk"

log "restart with the disk still full: INTERNAL; freed: keys again"
restart
scan_internal
expect_sessions "$nses" "after a restart on a full disk"
unfill
scan_ok
expect_sessions $((nses + N)) "after the disk was freed"

# After a checkpoint that copied the whole WAL back (here with room to grow
# the database), SQLite writes the WAL again from its start: commits that
# fit into the blocks the WAL file already has succeed even on a full disk.
# They are acknowledged, so they must be durable like any other.
log "a full disk after a complete checkpoint: the WAL's own blocks are reused"
sqlw 'PRAGMA wal_checkpoint(RESTART)' >"$T/ckpt.out"
grep -q '^0 ' "$T/ckpt.out" ||
  { cat "$T/ckpt.out"; fail "the checkpoint with room did not complete"; }
[ "$(stat -c %s "$DB")" -gt "$dbsize" ] ||
  fail "the checkpoint did not grow the database file"
walsize=$(stat -c %s "$DB-wal")
fill
scan_ok
[ "$(stat -c %s "$DB-wal")" -eq "$walsize" ] || fail "the WAL grew on a full disk"
expect_sessions $((nses + 2 * N)) "after exchanges in the reused WAL"
cp "$T/sessions.json" "$T/sessions.acked"
crash
restart
expect_sessions $((nses + 2 * N)) "after kill -9"
check_kept
unfill
scan_ok
stop mtcsd
! grep -q 'event=store_final_fold_failed' "$T/mtcsd.log" ||
  fail "the final fold failed with room on the disk"
[ "$(sqlq 'SELECT folded = indexed AND indexed = (SELECT max(id) FROM session) FROM store_log')" = 1 ] ||
  fail "the final fold left a log tail"
[ ! -s "$DB-wal" ] || fail "the closing checkpoint did not empty the WAL"
[ "$(sqlq 'PRAGMA integrity_check')" = ok ] || fail "the database is damaged"
expect_sessions $((nses + 3 * N)) "at the end"

stop devs
log "ok"
