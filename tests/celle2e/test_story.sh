#!/usr/bin/env bash
# The whole cellular story with the real programs (CELLULAR.md): mtchpd
# (built-in AuC), mtcsd with its cellular service, the GGSN, SGSN and MS
# agents.  An integrity-only MS attaches (AKA; the SGSN gets IK, never CK),
# activates a PDP context whose PCO carries RAND, mtcsd obtains K_UP from
# mtchpd and opens each AES-CCM payload, answering "ack <payload>".  Two
# UDP relays record what the SGSN sent and received: no plaintext in it,
# and the LLC MAC-I is 128-EIA2 with IK, recomputed here from K, OPc and the
# RAND on the wire with `mtcsec 3gpp milenage|eia2`.
# shellcheck source=cell_lib.sh
. "$(dirname "$0")/cell_lib.sh" "$@"

IMSI=001010000000021
P1="hello mtcsd"
P2="reading 21.5 C"

cell_init
mtcsec sub add $IMSI --k $TEST_K --opc $TEST_OPC --integrity-only \
  --usim "$T/ms.json" >/dev/null
start_network

log "attach -> PDP context -> 4 payloads"
# shellcheck disable=SC2154
ms_run ms 0 --usim "$T/ms.json" --sgsn "$radio_ADDR" --send "$P1" \
  --send "$P2" --count 2 --interval 50 --trace
out_has ms "^attached: IMSI $IMSI, TLLI [0-9a-f]{8}, LLC MAC-I \(integrity\)$"
out_has ms '^PDP context active: NSAPI 5$'
out_has ms '^4/4 payloads answered$'
[ "$(count_lines "$T/ms.out" "^downlink: ack $P1\$")" -eq 2 ] ||
  fail "expected two answers 'ack $P1'"
[ "$(count_lines "$T/ms.out" "^downlink: ack $P2\$")" -eq 2 ] ||
  fail "expected two answers 'ack $P2'"
out_has ms 'MS +-> SGSN +LLC +[0-9]+ B +SAPI 1 ACTIVATE_PDP_CONTEXT_REQUEST NSAPI 5, PCO 0xff00'
TLLI=$(sed -n -E 's/^attached: .*TLLI ([0-9a-f]{8}),.*/\1/p' "$T/ms.out")

log "the SGSN got IK only: no CK, no Kc"
expect_count hp "event=sai .*imsi=$IMSI source=auc .*policy=integrity-only result=ok" 1
log_has sgsn "event=sai tlli=$TLLI imsi=$IMSI vectors=[0-9]+ ck_received=0 kc_received=0 policy=integrity"
expect_count sgsn 'ck_received=1' 0
log_has sgsn "event=attached tlli=$TLLI imsi=$IMSI policy=integrity"
expect_sgsn_stat sai_ck_received 0
expect_sgsn_stat llc_mac_failures 0
expect_sgsn_stat gtpu_ul 4
expect_sgsn_stat gtpu_dl 4

log "RAND of the AKA run travels in the PCO container 0xff00"
AUTH_REQ=$(cap_hex radio down "4d02$TLLI")
[ -n "$AUTH_REQ" ] || fail "no AUTH_REQUEST recorded"
RAND=${AUTH_REQ:12:32}
CREATE=$(cap_hex gtp up '4710')
[ -n "$CREATE" ] || fail "no CREATE_PDP_REQUEST recorded"
# PCO contents: 0x80, container 0xff00, length 20, PLMN 001/01, version 1.
case "$CREATE" in
  *80ff001400f11001"$RAND") ;;
  *) fail "CREATE_PDP_REQUEST $CREATE does not end with the PCO container holding RAND $RAND" ;;
esac

log "mtcsd got K_UP from mtchpd (status 200, its own ID) and opened 4 payloads"
expect_count hp "event=kup_request peer=127\.0\.0\.1 server=$MTCS_ID imsi=$IMSI status=200 result=ok" 1
expect_count hp 'event=kup_request' 1
log_has mtcsd "event=cellular_context_open conn=[0-9]+ ggsn=$GGSN_ID ctx=[0-9]+ imsi=$IMSI result=ok status=0x00"
expect_count mtcsd "event=cellular_uplink ggsn=$GGSN_ID ctx=[0-9]+ imsi=$IMSI len=${#P1}\$" 2
expect_count mtcsd "event=cellular_uplink ggsn=$GGSN_ID ctx=[0-9]+ imsi=$IMSI len=${#P2}\$" 2
expect_metric 'mtcsd_cellular_payloads_total{result="ok"}' 4
for r in mic replay malformed unknown_ctx expired; do
  expect_metric "mtcsd_cellular_payloads_total{result=\"$r\"}" 0
done
expect_metric 'mtcsd_cellular_context_opens_total{result="ok"}' 1
expect_metric 'mtcsd_cellular_contexts' 1
expect_metric 'mtcsd_cellular_gi_connections' 1
expect_metric 'mtcsd_cellular_kup_fetch_seconds_count' 1

log "the SGSN never saw a payload in clear"
for text in "$P1" "$P2" "ack $P1"; do
  plaintext_absent "$text"
done
grep -qF -- "$P1" "$T/mtcsd.log" && fail "mtcsd logged a payload"
# The same search finds what is in clear by design (so it can fail): RAND,
# in AUTH_REQUEST and in the PCO on the radio, in the PCO on GTP.
[ "$(celltool contains "$T/radio.cap" "$RAND" --hex)" -ge 2 ] ||
  fail "RAND is not in two radio datagrams"
[ "$(celltool contains "$T/gtp.cap" "$RAND" --hex)" -ge 1 ] ||
  fail "RAND is not in one GTP datagram"

log "LLC MAC-I = 128-EIA2(IK, COUNT 0, BEARER = SAPI 3, uplink)"
FRAME=$(cap_hex radio up "4d10${TLLI}03")
[ -n "$FRAME" ] || fail "no uplink SAPI-3 frame recorded"
LLC=${FRAME:12}
IK=$(printf '{"K":"%s","RAND":"%s","SQN":"000000000000","AMF":"8000","OPc":"%s"}' \
  $TEST_K "$RAND" $TEST_OPC | "$MTCSEC" 3gpp milenage |
  sed -n -E 's/.*"f4":[[:space:]]*"([0-9a-f]{32})".*/\1/p')
[ ${#IK} -eq 32 ] || fail "mtcsec 3gpp milenage gave no f4"
MSG=${LLC:0:${#LLC}-8}
MAC=$(printf '{"key":"%s","count":"00000000","bearer":"03","direction":0,"length_bits":%d,"message":"%s"}' \
  "$IK" $((${#MSG} * 4)) "$MSG" | "$MTCSEC" 3gpp eia2 |
  sed -n -E 's/.*"mac_i":[[:space:]]*"([0-9a-f]{8})".*/\1/p')
IK=
[ "$MAC" = "${LLC: -8}" ] ||
  fail "MAC-I ${LLC: -8} of frame $LLC is not 128-EIA2 with IK ($MAC)"
# ... and the frame carries no valid FCS (a MAC-I replaces it).
printf '{"frame":"%s"}' "$LLC" | "$MTCSEC" 3gpp llc-fcs |
  grep -Eq '"fcs_ok":[[:space:]]*false' || fail "an integrity frame has a valid FCS"

log "every program stops cleanly"
stop_all
log "ok"
