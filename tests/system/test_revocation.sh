#!/usr/bin/env bash
# Revocation (PROTOCOL.md section 7): `mtcsec revoke` prints the
# revocation; a UE carries it to the device, which erases that DMKey and
# refuses every later record under it, even from a UE that kept a copy.
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh" "$@"

DEV=0200000000000004
UE=0e00000000000004

setup_server
DEV_PORT=$((PORT_BASE + 2))
mtcsec device add $DEV >/dev/null
mtcsec ue add $UE >/dev/null
mtcsec grant $UE $DEV --perms read >/dev/null
start_mtcsd
start_device dev $DEV_PORT $DEV

expect_status 0 mtcsec ue get $DEV battery
expect_output '^battery = 100$'
KEYFILE=$MTCSEC_DIR/ues/$UE.keys/$DEV.json
[ -f "$KEYFILE" ] || fail "the UE kept no key"
cp "$KEYFILE" "$T/stolen.json"

log "revoke the session"
expect_status 0 mtcsec sessions $DEV --json
SID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["id"])' "$T/last.out")
expect_status 0 mtcsec revoke "$SID"
REV=$(grep -Eo '^17[0-9a-f]+$' "$T/last.out" | head -n 1)
[ -n "$REV" ] || { cat "$T/last.out"; fail "no revocation hex"; }

log "a UE carries it to the device"
expect_status 0 mtcsec ue get $DEV --carry-revocation "$REV" --trace
expect_output 'UE +-> MTCd +revocation'
expect_output 'revocation of key [0-9]+ delivered'
log_has dev 'event=revoked mtcd=0200000000000004'
[ ! -f "$KEYFILE" ] || fail "the carrying UE kept the revoked key"

log "records under the revoked key are refused"
cp "$T/stolen.json" "$KEYFILE"
expect_status 1 mtcsec ue get $DEV battery --cached-only
expect_output 'no answer'
log_has dev 'event=record_refused mtcd=0200000000000004 key_id=[0-9]+ err=MTCSEC_ERR_NOT_FOUND'

log "a new key works"
rm -f "$KEYFILE"
expect_status 0 mtcsec ue get $DEV battery
expect_output 'new \(read'

stop dev
stop mtcsd
log "ok"
