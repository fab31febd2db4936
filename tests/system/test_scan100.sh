#!/usr/bin/env bash
# One UE establishes keys with 100 devices at once over one TLS connection
# (`mtcsec ue scan`, pipelined req_ids); the devices run in one agent
# process (one UDP port each).  Then one of them is read with its kept key.
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh" "$@"

N=100
UE=0e00000000000003
NPORTS=$((N + 8)) setup_server
DEV_BASE=$((PORT_BASE + 4))

ids=()
: >"$T/addrs"
for i in $(seq 1 $N); do
  id=$(printf '02000000%08x' "$i")
  ids+=("$id")
  echo "$id 127.0.0.1:$((DEV_BASE + i - 1))" >>"$T/addrs"
done
log "provisioning $N devices"
for id in "${ids[@]}"; do
  mtcsec device add "$id" --group fleet >/dev/null
done
mtcsec ue add $UE >/dev/null
mtcsec grant $UE @fleet --perms read >/dev/null
start_mtcsd
start_device devs $DEV_BASE "${ids[@]}"
log_has devs "$N devices listening"

log "scan"
start_ms=$(date +%s%3N)
expect_status 0 mtcsec ue scan "${ids[@]}" --addr-file "$T/addrs" \
  --concurrency $N
end_ms=$(date +%s%3N)
expect_output "^scan: $N devices, $N keys, 0 refused, 0 failed; 1 TLS connection"
[ "$(grep -Ec '^02000000[0-9a-f]{8} +ok ' "$T/last.out")" -eq $N ] ||
  fail "not every row is ok"
tail -n 1 "$T/last.out"
log "scan took $((end_ms - start_ms)) ms wall clock"
[ "$(grep -c 'event=established mtcd=' "$T/devs.log")" -eq $N ] ||
  fail "the devices did not accept $N M4s"
[ "$(grep -c 'event=conn_ready' "$T/mtcsd.log")" -eq 1 ] ||
  fail "mtcsd saw more than one UE connection"

log "a kept key of the scan"
expect_status 0 mtcsec ue get "${ids[56]}" temperature --cached-only \
  --device-addr "127.0.0.1:$((DEV_BASE + 56))"
expect_output '^temperature = '

stop devs
stop mtcsd
log "ok"
