#!/usr/bin/env bash
# Extended mode: the UE reaches the device only through a relay agent
# (`mtcsec gw run`).  Before `relay allow` the server answers
# RELAY_NOT_AUTHORIZED; afterwards M0 carries the relay's ID, the key is
# issued and records flow through the relay.
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh" "$@"

DEV=0200000000000002
UE=0e00000000000002
GW=6700000000000002

setup_server
DEV_PORT=$((PORT_BASE + 2))
GW_PORT=$((PORT_BASE + 3))
mtcsec device add $DEV >/dev/null
mtcsec ue add $UE >/dev/null
mtcsec gw add $GW >/dev/null
mtcsec grant $UE $DEV --perms read,configure >/dev/null
start_mtcsd
start_device dev $DEV_PORT $DEV
start gw "$MTCSEC" gw run $GW --map "127.0.0.1:$GW_PORT=127.0.0.1:$DEV_PORT" \
  --trace --log-level debug
log_has gw "127.0.0.1:$GW_PORT -> 127.0.0.1:$DEV_PORT"

log "relay not allowed yet"
expect_status 1 mtcsec ue get $DEV humidity --via "127.0.0.1:$GW_PORT"
expect_output 'server refused: RELAY_NOT_AUTHORIZED'
expect_output "relay allow"
log_has gw 'GW +-> MTCd +M0 +19 B +hop appended'

# The device still holds the refused exchange (until it gives up after one
# resend); the UE resends M0 every 700 ms until it is free again.
log "relay allowed"
mtcsec relay allow $GW $DEV >/dev/null
expect_status 0 mtcsec ue get $DEV humidity --via "127.0.0.1:$GW_PORT" --trace
expect_output 'through the relay'
expect_output 'UE +-> GW +M0 +11 B'
expect_output 'GW +-> UE +M1'
expect_output '^humidity = [0-9]+$'
log_has gw 'GW +-> MTCd +record'
log_has gw 'GW +-> UE +record'

log "configure through the relay with the kept key"
expect_status 0 mtcsec ue put $DEV name porch --configure --via "127.0.0.1:$GW_PORT"
expect_output '^name = porch$'
expect_status 0 mtcsec ue get $DEV name --via "127.0.0.1:$GW_PORT"
expect_output '^name = porch$'

log "the session records the relay"
expect_status 0 mtcsec sessions $DEV
grep -q "$GW" "$T/last.out" || { cat "$T/last.out"; fail "the relay is not in the session's path"; }

stop gw
stop dev
stop mtcsd
log "ok"
