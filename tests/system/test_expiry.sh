#!/usr/bin/env bash
# Time limits: a grant whose --until is past gives UE_NOT_AUTHORIZED; a
# DMKey with a 2 s lifetime is erased by the device after 2 s and records
# under it are refused.
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh" "$@"

DEV1=0200000000000005
DEV2=0200000000000006
UE=0e00000000000005

setup_server
mtcsec device add $DEV1 >/dev/null
mtcsec device add $DEV2 >/dev/null
mtcsec ue add $UE >/dev/null
mtcsec grant $UE $DEV1 --perms read --until 2001-01-01 >/dev/null
mtcsec grant $UE $DEV2 --perms read --lifetime 2s >/dev/null
start_mtcsd
start_device devs $((PORT_BASE + 2)) $DEV1 $DEV2

log "expired grant"
expect_status 1 mtcsec ue get $DEV1 temperature \
  --device-addr "127.0.0.1:$((PORT_BASE + 2))"
expect_output "server refused: UE_NOT_AUTHORIZED.*run: mtcsec grant $UE $DEV1"

log "2 s key"
expect_status 0 mtcsec ue get $DEV2 temperature \
  --device-addr "127.0.0.1:$((PORT_BASE + 3))"
expect_output 'new \(read, 2 s\)'
expect_status 0 mtcsec ue get $DEV2 uptime --cached-only \
  --device-addr "127.0.0.1:$((PORT_BASE + 3))"
log_has devs "event=expired mtcd=$DEV2" 5

log "after the lifetime the device refuses the key"
expect_status 1 mtcsec ue get $DEV2 temperature --cached-only \
  --ignore-expiry --device-addr "127.0.0.1:$((PORT_BASE + 3))"
log_has devs "event=record_refused mtcd=$DEV2 key_id=[0-9]+ err=MTCSEC_ERR_NOT_FOUND"
log "... and the UE has erased it too"
expect_status 1 mtcsec ue get $DEV2 temperature --cached-only \
  --device-addr "127.0.0.1:$((PORT_BASE + 3))"
expect_output 'no live key'

stop devs
stop mtcsd
log "ok"
