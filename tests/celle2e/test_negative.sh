#!/usr/bin/env bash
# The cellular story's refusals, with the real programs: a forged and a
# replayed LLC frame dropped and counted at the SGSN; K_UP refused to a
# server not in allowed_servers (403) and to a client without a certificate
# (as the SGSN is: the TLS handshake fails); a CTX_OPEN with a RAND mtchpd
# never issued (404, status 0x02, GTP cause 0xca); a replayed and a forged
# payload dropped and counted at mtcsd, never answered; an MS whose SQN_MS
# is ahead resynchronises with AUTS and attaches; a subscriber that is not
# integrity-only gets CK and Kc at the SGSN and FCS frames, and is refused
# payload protection: the SGSN holds CK and IK and could compute K_UP, so
# mtchpd answers 403 ck_released, mtcsd 0x01, the GGSN GTP 0xca and the MS
# sees its PDP context activation rejected (SM cause 0x1d).
# shellcheck source=cell_lib.sh
. "$(dirname "$0")/cell_lib.sh" "$@"

IMSI1=001010000000031 # integrity-only
IMSI2=001010000000032 # normal
OTHER=0c000000000000bd # an identity from the same CA, not an allowed server

cell_init
mtcsec sub add $IMSI1 --k $TEST_K --opc $TEST_OPC --integrity-only \
  --usim "$T/ms1.json" >/dev/null
mtcsec sub add $IMSI2 --k $TEST_K --opc $TEST_OPC --usim "$T/ms2.json" \
  >/dev/null
# A clientAuth certificate with CN = OTHER, signed by the init CA.
mtcsec ggsn add $OTHER >/dev/null 2>&1
start_network

log "an integrity-only MS attaches and gets one payload answered"
# shellcheck disable=SC2154
ms_run ms1 0 --usim "$T/ms1.json" --sgsn "$radio_ADDR" --send "first" --trace
out_has ms1 'LLC MAC-I \(integrity\)$'
out_has ms1 '^downlink: ack first$'
TLLI1=$(sed -n -E 's/^attached: .*TLLI ([0-9a-f]{8}),.*/\1/p' "$T/ms1.out")
RAND1=$(cap_hex radio down "4d02$TLLI1")
RAND1=${RAND1:12:32}
[ ${#RAND1} -eq 32 ] || fail "no AUTH_REQUEST recorded"

log "a frame with a bad MAC-I, injected at the SGSN's radio port, is dropped and counted"
FRAME=$(cap_hex radio up "4d10${TLLI1}03")
[ -n "$FRAME" ] || fail "no uplink SAPI-3 frame recorded"
GPDU_UL=$(count_lines "$T/gtp.cap" '^up 30ff')
LAST=${FRAME: -2}
# shellcheck disable=SC2154
celltool ctl "$radio_CTL" up "${FRAME:0:${#FRAME}-2}$(printf '%02x' $((0x$LAST ^ 0x01)))"
log_has sgsn "event=llc_mac_failure tlli=$TLLI1 imsi=$IMSI1 sapi=3 nu=0 llc_mac_failures=1"
log "the same frame replayed unchanged fails its MAC-I too (COUNT 512 higher)"
celltool ctl "$radio_CTL" up "$FRAME"
log_has sgsn "event=llc_mac_failure tlli=$TLLI1 imsi=$IMSI1 sapi=3 nu=0 llc_mac_failures=2"
expect_sgsn_stat llc_mac_failures 2
[ "$(count_lines "$T/gtp.cap" '^up 30ff')" -eq "$GPDU_UL" ] ||
  fail "the SGSN forwarded a frame whose MAC-I failed"

log "a replayed and a forged uplink payload are rejected at mtcsd, never answered"
GPDU=$(cap_hex gtp up '30ff')
GPDU_DL=$(count_lines "$T/gtp.cap" '^down 30ff')
# shellcheck disable=SC2154
celltool ctl "$gtp_CTL" up "$GPDU"
# Forged: the same record under another sequence number (100; the seq is
# in the CCM nonce and header), so that the replay window lets it through
# and the tag check refuses it.  G-PDU header 8 octets, then 0x16,
# key_id(2), seq(4).
celltool ctl "$gtp_CTL" up "${GPDU:0:22}00000064${GPDU:30}"
deadline=$((SECONDS + 10))
until [ "$(metric 'mtcsd_cellular_payloads_total{result="mic"}')" = 1 ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "mtcsd did not count the forged payload"
  sleep 0.1
done
expect_metric 'mtcsd_cellular_payloads_total{result="replay"}' 1
expect_metric 'mtcsd_cellular_payloads_total{result="ok"}' 1
log_has mtcsd "event=cellular_payload_dropped ggsn=$GGSN_ID ctx=[0-9]+ reason=replay"
sleep 0.5
[ "$(count_lines "$T/gtp.cap" '^down 30ff')" -eq "$GPDU_DL" ] ||
  fail "mtcsd answered a replayed or forged payload"

log "a server not in allowed_servers is refused K_UP (403)"
CA=$MTCSEC_DIR/ca.pem
celltool kup --addr "$KUP_ADDR" --ca "$CA" \
  --cert "$MTCSEC_DIR/ggsns/$OTHER.pem" --key "$MTCSEC_DIR/ggsns/$OTHER.key" \
  --imsi $IMSI1 --rand "$RAND1" >"$T/kup.out"
out_has kup '^status=403 body=\{"error":"server_not_authorized"\}$'
log_has hp "event=kup_request peer=127\.0\.0\.1 server=$OTHER imsi=$IMSI1 status=403 result=unauthorized"
log "so is the GGSN's own certificate"
celltool kup --addr "$KUP_ADDR" --ca "$CA" \
  --cert "$MTCSEC_DIR/ggsns/$GGSN_ID.pem" \
  --key "$MTCSEC_DIR/ggsns/$GGSN_ID.key" --imsi $IMSI1 --rand "$RAND1" \
  >"$T/kup.out"
out_has kup '^status=403 '
log_has hp "server=$GGSN_ID imsi=$IMSI1 status=403 result=unauthorized"
log "the same request with mtcsd's certificate is served (the refusal is the identity)"
celltool kup --addr "$KUP_ADDR" --ca "$CA" \
  --cert "$MTCSEC_DIR/mtcs-client.pem" --key "$MTCSEC_DIR/mtcs-client.key" \
  --imsi $IMSI1 --rand "$RAND1" >"$T/kup.out"
out_has kup '^status=200 kup_hex_digits=32$'

log "an SGSN has no client certificate: the HTTPS request fails in TLS"
set +e
celltool kup --addr "$KUP_ADDR" --ca "$CA" --imsi $IMSI1 --rand "$RAND1" \
  >"$T/kup.out"
rc=$?
set -e
[ "$rc" -eq 1 ] || { cat "$T/kup.out"; fail "a request without a certificate got an HTTP answer"; }
# The client sees the alert "certificate required" or just the connection
# closing, depending on timing; mtchpd says why.
out_has kup '^tls_error='
log_has hp 'event=kup_request peer=127\.0\.0\.1 status=0 result=tls_failed detail=".*peer did not return a certificate"'
expect_count hp 'status=200' 2 # mtcsd's fetch and the request above

log "a CTX_OPEN with a RAND mtchpd never issued is refused (404, 0x02, GTP 0xca)"
WRONG=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
celltool gtp-create --to "$GTP_ADDR" --imsi $IMSI1 --rand "$WRONG" >"$T/gtp.out"
out_has gtp '^cause=0xca teid=0$'
log_has hp "event=kup_request peer=127\.0\.0\.1 server=$MTCS_ID imsi=$IMSI1 status=404 result=unknown"
log_has mtcsd "event=cellular_context_open .*imsi=$IMSI1 result=unknown_vector status=0x02"
expect_metric 'mtcsd_cellular_context_opens_total{result="unknown_vector"}' 1
expect_metric 'mtcsd_cellular_context_opens_total{result="ok"}' 1

log "an MS whose SQN_MS is ahead resynchronises with AUTS and attaches"
# TS 33.102 C.2.1: one SQN per IND slot; mtchpd uses IND 0.
printf '{"ind_bitlen": 5, "sqn_ms": [32000]}\n' >"$T/ms1.state"
ms_run ms1b 0 --usim "$T/ms1.json" --sgsn "$radio_ADDR" --send "after resync" \
  --trace
out_has ms1b 'MS +-> SGSN +AUTH_FAILURE +[0-9]+ B +synch failure \(SQN stale\), AUTS'
out_has ms1b '^downlink: ack after resync$'
SQN=$(sed -n -E 's/.*AUTH_RESPONSE +[0-9]+ B +SQN ([0-9]+) accepted.*/\1/p' \
  "$T/ms1b.out")
if [ -z "$SQN" ] || [ "$SQN" -le 32000 ]; then
  fail "SQN after resync: '$SQN', expected above 32000"
fi
log_has sgsn "event=resync tlli=[0-9a-f]{8} imsi=$IMSI1"
log_has sgsn "event=sai tlli=[0-9a-f]{8} imsi=$IMSI1 .*ck_received=0 kc_received=0 policy=integrity resync=1"
log_has hp "event=sai conn=[0-9]+ imsi=$IMSI1 source=auc vectors=[0-9]+ resync=1 policy=integrity-only result=ok"
grep -Eq "\"sqn_ms\": \[${SQN}[],]" "$T/ms1.state" ||
  fail "the state file does not hold SQN $SQN: $(cat "$T/ms1.state")"

log "a normal subscriber gets CK and Kc as usual and its frames use FCS, but no K_UP (CK is at the SGSN)"
ms_run ms2 1 --usim "$T/ms2.json" --sgsn "$radio_ADDR" --send "normal" --trace
out_has ms2 "^attached: IMSI $IMSI2, TLLI [0-9a-f]{8}, LLC FCS \(no integrity\)$"
out_has ms2 '^mtcsec ms run: PDP context activation rejected, SM cause 0x1d'
if grep -q '^downlink: ' "$T/ms2.out"; then
  cat "$T/ms2.out"
  fail "a payload of the normal subscriber was answered"
fi
TLLI2=$(sed -n -E 's/^attached: .*TLLI ([0-9a-f]{8}),.*/\1/p' "$T/ms2.out")
log_has hp "event=sai conn=[0-9]+ imsi=$IMSI2 source=auc .*policy=normal result=ok"
log_has sgsn "event=sai tlli=$TLLI2 imsi=$IMSI2 vectors=[0-9]+ ck_received=1 kc_received=1 policy=fcs"
expect_sgsn_stat sai_ck_received 1
log_has hp "event=kup_request peer=127\.0\.0\.1 server=$MTCS_ID imsi=$IMSI2 status=403 result=ck_released"
log_has mtcsd "event=cellular_context_open .*imsi=$IMSI2 result=not_authorized status=0x01"
expect_metric 'mtcsd_cellular_context_opens_total{result="not_authorized"}' 1
# The PDP context is refused, so the LLC frames are the SM messages:
# ACTIVATE_PDP_CONTEXT_REQUEST up, ACTIVATE_PDP_CONTEXT_REJECT down.
n=0
for dir in up down; do
  FRAME=$(cap_hex radio $dir "4d10$TLLI2")
  [ -n "$FRAME" ] || fail "no $dir LLC frame of $TLLI2"
  printf '{"frame":"%s"}' "${FRAME:12}" | "$MTCSEC" 3gpp llc-fcs |
    grep -Eq '"fcs_ok":[[:space:]]*true' ||
    fail "$dir frame ${FRAME:12} has no valid TS 44.064 FCS"
  n=$((n + 1))
done
log "$n LLC frames of the normal MS checked: FCS correct"

expect_metric 'mtcsd_cellular_payloads_total{result="ok"}' 2
expect_metric 'mtcsd_cellular_context_opens_total{result="ok"}' 2
expect_sgsn_stat llc_mac_failures 2
expect_sgsn_stat llc_fcs_failures 0
stop_all
log "ok"
