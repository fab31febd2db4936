#!/usr/bin/env bash
# The cellular story with a real osmo-hlr (Debian osmo-hlr) as mtchpd's
# upstream HLR: osmo-hlr runs on loopback with a temporary database and its
# own configuration, the subscriber is created through its VTY (MILENAGE K
# and OPc), mtchpd relays GSUP to it and lists the IMSI in integrity_only.
# The MS attaches with the vectors osmo-hlr made, the SGSN gets IK but no
# CK (mtchpd strips it), mtcsd gets K_UP and the payloads are answered.
# Then an MS whose SQN_MS is ahead resynchronises: the AUTS goes through
# mtchpd to osmo-hlr, which accepts it.
#
# osmo-hlr 1.5 binds GSUP, VTY and CTRL to fixed ports (4222, 4258, 4259;
# only the address is configurable), so the test picks a free address in
# 127.0.0.0/8 where those three ports are free.
# shellcheck source=cell_lib.sh
. "$(dirname "$0")/cell_lib.sh" "$@"

OSMO_HLR=$(command -v osmo-hlr || true)
if [ -z "$OSMO_HLR" ]; then
  log "SKIP: osmo-hlr is not installed (Debian package osmo-hlr; scripts/deps.sh installs it)"
  exit 77
fi

IMSI=001010000000041

# A loopback address with 4222, 4258 and 4259 free for TCP.
HLR_IP=$(python3 - <<'PY'
import random, socket
cands = ["127.%d.%d.%d" % (random.randint(100, 250), random.randint(0, 255),
                            random.randint(1, 254)) for _ in range(20)]
for ip in cands + ["127.0.0.1"]:
    socks, ok = [], True
    for port in (4222, 4258, 4259):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        socks.append(s)
        try:
            s.bind((ip, port))
        except OSError:
            ok = False
            break
    for s in socks:
        s.close()
    if ok:
        print(ip)
        break
PY
)
if [ -z "$HLR_IP" ]; then
  log "SKIP: no loopback address with ports 4222, 4258 and 4259 free for osmo-hlr"
  exit 77
fi

cat >"$T/osmo-hlr.cfg" <<EOF
log stderr
 logging filter all 1
 logging color 0
 logging print category 1
 logging print level 1
 logging level main notice
 logging level db notice
 logging level auc info
 logging level linp error
line vty
 bind $HLR_IP
ctrl
 bind $HLR_IP
hlr
 gsup
  bind ip $HLR_IP
EOF
start osmohlr "$OSMO_HLR" -c "$T/osmo-hlr.cfg" -l "$T/osmo-hlr.db"
# shellcheck disable=SC2154
if ! wait_for 15 tcp_open "$HLR_IP" 4258 || ! kill -0 "$PID_osmohlr"; then
  tail -n 20 "$T/osmohlr.log"
  log "SKIP: osmo-hlr did not start on $HLR_IP (its log is above)"
  exit 77
fi
wait_for 5 tcp_open "$HLR_IP" 4222 || fail "osmo-hlr's GSUP port is not open"
log "osmo-hlr $("$OSMO_HLR" --version 2>&1 | sed -n -E 's/.*OsmoHLR version ([^ ]+).*/\1/p' | head -n 1) on $HLR_IP"

log "a subscriber created through osmo-hlr's VTY"
celltool vty --addr "$HLR_IP:4258" "subscriber imsi $IMSI create" \
  "subscriber imsi $IMSI update aud3g milenage k $TEST_K opc $TEST_OPC" \
  "show subscriber imsi $IMSI" >"$T/vty.out" || {
  cat "$T/vty.out"
  fail "the VTY refused a command"
}
out_has vty "% Created subscriber $IMSI"
out_has vty '3G auth: MILENAGE'

cell_init
# mtchpd in upstream mode; its hlr.db stays empty: the integrity-only
# policy comes from the configuration alone.
printf 'upstream_hlr = %s:4222\nintegrity_only = %s\n' "$HLR_IP" $IMSI \
  >>"$MTCSEC_DIR/mtchpd.conf"
# The USIM file by hand (docs/CELLULAR-SYSTEM.md section 5): the HLR is
# osmo-hlr, so `mtcsec sub add --usim` is not used.
printf '{"imsi": "%s", "k": "%s", "opc": "%s", "amf": "0000", "plmn": "00101", "mtcs_id": "%s", "ind_bitlen": 5}\n' \
  $IMSI $TEST_K $TEST_OPC "$MTCS_ID" >"$T/ms.json"
chmod 600 "$T/ms.json"
start_network
log_has hp "event=ready mode=upstream upstream=$HLR_IP:4222"
log_has hp "event=upstream_ready peer=$HLR_IP:4222" 15

log "attach with osmo-hlr's vectors -> PDP context -> payloads"
# shellcheck disable=SC2154
ms_run ms 0 --usim "$T/ms.json" --sgsn "$radio_ADDR" --send "via osmo-hlr" \
  --send "second" --interval 50 --trace
out_has ms "^attached: IMSI $IMSI, TLLI [0-9a-f]{8}, LLC MAC-I \(integrity\)$"
out_has ms '^downlink: ack via osmo-hlr$'
out_has ms '^downlink: ack second$'
out_has ms '^2/2 payloads answered$'
TLLI=$(sed -n -E 's/^attached: .*TLLI ([0-9a-f]{8}),.*/\1/p' "$T/ms.out")

log "the vectors came from osmo-hlr; mtchpd stripped CK and Kc"
log_has hp "event=sai conn=[0-9]+ imsi=$IMSI source=upstream vectors=[0-9]+ resync=0 policy=integrity-only result=ok"
expect_count hp 'source=auc' 0
expect_count osmohlr "IMSI='$IMSI': Generated [0-9]+ vectors" 1
log_has sgsn "event=sai tlli=$TLLI imsi=$IMSI vectors=[0-9]+ ck_received=0 kc_received=0 policy=integrity resync=0"
log_has sgsn "event=attached tlli=$TLLI imsi=$IMSI policy=integrity"
expect_sgsn_stat sai_ck_received 0

log "mtcsd got K_UP for osmo-hlr's RAND and opened the payloads"
log_has hp "event=kup_request peer=127\.0\.0\.1 server=$MTCS_ID imsi=$IMSI status=200 result=ok"
log_has mtcsd "event=cellular_context_open .*imsi=$IMSI result=ok status=0x00"
expect_metric 'mtcsd_cellular_payloads_total{result="ok"}' 2
plaintext_absent "via osmo-hlr"
plaintext_absent "ack second"

log "SQN_MS ahead: AUTS through mtchpd to osmo-hlr, then attach"
SLOTS=$(seq -s ', ' 32000 32031)
printf '{"ind_bitlen": 5, "sqn_ms": [%s]}\n' "$SLOTS" >"$T/ms.state"
ms_run ms2 0 --usim "$T/ms.json" --sgsn "$radio_ADDR" --send "resynced" --trace
out_has ms2 'MS +-> SGSN +AUTH_FAILURE +[0-9]+ B +synch failure'
out_has ms2 '^downlink: ack resynced$'
SQN=$(sed -n -E 's/.*AUTH_RESPONSE +[0-9]+ B +SQN ([0-9]+) accepted.*/\1/p' \
  "$T/ms2.out")
if [ -z "$SQN" ] || [ "$SQN" -le 32031 ]; then
  fail "SQN after resync: '$SQN', expected above 32031"
fi
log_has sgsn "event=sai tlli=[0-9a-f]{8} imsi=$IMSI .*ck_received=0 kc_received=0 policy=integrity resync=1"
log_has hp "event=sai conn=[0-9]+ imsi=$IMSI source=upstream vectors=[0-9]+ resync=1 policy=integrity-only result=ok"
# osmo-hlr made the vectors of the stale challenge and, after checking the
# AUTS, the fresh ones.
expect_count osmohlr "IMSI='$IMSI': Generated [0-9]+ vectors" 3

stop_all
stop osmohlr
log "ok"
