#!/usr/bin/env bash
# Direct mode: a UE establishes a key with a device agent through mtcsd,
# then reads, writes and actuates over the direct channel; an operation
# outside the PERMS is FORBIDDEN; with mtcsd stopped the kept key still
# works, and a new establishment fails cleanly.
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh" "$@"

DEV=0200000000000001
UE=0e00000000000001

setup_server
DEV_PORT=$((PORT_BASE + 2))
mtcsec device add $DEV >/dev/null
mtcsec ue add $UE >/dev/null
mtcsec grant $UE $DEV --perms read,write,actuate >/dev/null
start_mtcsd
start_device dev $DEV_PORT $DEV

log "new key, READ"
expect_status 0 mtcsec ue get $DEV temperature --trace
expect_output '^key [0-9]+ with 0200000000000001: new \(read,write,actuate'
expect_output 'UE +-> MTCs +M2'
expect_output 'MTCs -> UE +M3'
expect_output '^temperature = [0-9]+\.[0-9]$'
log_has dev 'event=established mtcd=0200000000000001 ue=0e00000000000001'

log "kept key: WRITE, ACTUATE, READ back"
expect_status 0 mtcsec ue put $DEV interval 30
expect_output 'mtcsd not contacted'
expect_output '^interval = 30$'
expect_status 0 mtcsec ue put $DEV led on --actuate
expect_output '^led = on$'
expect_status 0 mtcsec ue get $DEV interval
expect_output '^interval = 30$'

log "outside the PERMS and unknown names"
expect_status 1 mtcsec ue put $DEV name kitchen --configure
expect_output 'FORBIDDEN'
expect_status 3 mtcsec ue get $DEV pressure
expect_output 'NOT_FOUND'
expect_status 1 mtcsec ue put $DEV interval 0
expect_output 'BAD_REQUEST'

log "the server issued exactly one session"
expect_status 0 mtcsec sessions
[ "$(grep -c "$DEV" "$T/last.out")" -eq 1 ] || { cat "$T/last.out"; fail "expected one session"; }

log "mtcsd stopped: the kept key still works"
stop mtcsd
expect_status 0 mtcsec ue get $DEV temperature --trace
expect_output 'mtcsd not contacted'
expect_output '^temperature = '
if grep -q 'MTCs' "$T/last.out"; then
  fail "the server link was used"
fi
log "... but a new key cannot be had"
expect_status 1 mtcsec ue get $DEV temperature --new
expect_output 'cannot reach mtcsd'

stop dev
log "ok"
