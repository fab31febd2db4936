#!/usr/bin/env bash
# The demo: installs what is missing, builds mtcsec, runs a full key
# establishment in one process (the library alone), then the real programs
# on loopback: mtcsd, two simulated devices, a relay and a UE.  The UE gets
# a key directly from device 1 and through the relay from device 2, reads
# and commands over the direct channel, and keeps talking to device 1 after
# mtcsd is stopped.  Section 9 runs the cellular mode: the home proxy
# mtchpd, a simulated GGSN, SGSN and MS, and a fresh mtcsd with its
# cellular service (AKA, RAND in PCO, K_UP, AES-CCM payloads).  Everything
# it starts is stopped at exit and its temporary directory removed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
B=${MTCSEC_BUILD_DIR:-build}/demo
mkdir -p "$B"
echo "building mtcsec in $B ..." >&2
if ! { cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DMTCSEC_BUILD_TESTS=OFF &&
       cmake --build "$B" -j "$(nproc 2>/dev/null || echo 2)"; } \
     >"$B/build.log" 2>&1; then
  tail -n 40 "$B/build.log" >&2
  echo "demo: the build failed; the whole log is $B/build.log" >&2
  exit 1
fi

BABS=$(cd "$B" && pwd)
MTCSEC_BIN=$BABS/apps/mtcsec
MTCSD_BIN=$BABS/apps/mtcsd
for p in "$MTCSEC_BIN" "$MTCSD_BIN"; do
  [ -x "$p" ] || { echo "demo: $p was not built (see $B/build.log)" >&2; exit 1; }
done

section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() {
  printf '\033[2m$ mtcsec %s\033[0m\n' "$*"
  timeout 30 "$MTCSEC_BIN" "$@"
}

section "1. The library alone: four roles wired in one process"
"$BABS/examples/mtcsec-example"

# ------------------------------------------------------------------ setup
W=$(mktemp -d "${TMPDIR:-/tmp}/mtcsec-demo.XXXXXX")
PIDS=()
cleanup() {
  local rc=$? p
  set +e
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$W"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export MTCSEC_DIR=$W/state

# Four consecutive free loopback ports: mtcsd, device 1, device 2, relay.
BASE=$(python3 - <<'PY'
import random, socket
for _ in range(500):
    base = random.randint(20000, 60000)
    socks, ok = [], True
    for p in range(base, base + 4):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET, kind)
            socks.append(s)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
    for s in socks:
        s.close()
    if ok:
        print(base)
        break
PY
)
SRV=127.0.0.1:$BASE
DEV1_ADDR=127.0.0.1:$((BASE + 1))
DEV2_ADDR=127.0.0.1:$((BASE + 2))
GW_ADDR=127.0.0.1:$((BASE + 3))
DEV1=02000000000000d1
DEV2=02000000000000d2
UE=0e00000000000042
GW=6700000000000001

section "2. Provisioning (a fresh state directory)"
run init "$MTCSEC_DIR" --listen "$SRV" >"$W/init.out"
head -n 1 "$W/init.out"
sed -i 's/^metrics_listen *=.*/metrics_listen =/' "$MTCSEC_DIR/mtcsd.conf"
run device add $DEV1 --label "greenhouse sensor" >/dev/null
run device add $DEV2 --label "shed actuator" >/dev/null
run ue add $UE >/dev/null
run gw add $GW >/dev/null
run grant $UE $DEV1 --perms read,write,actuate --lifetime 1h
run grant $UE $DEV2 --perms read
run relay allow $GW $DEV2

section "3. Starting mtcsd, two devices and a relay in the background"
"$MTCSD_BIN" -c "$MTCSEC_DIR/mtcsd.conf" >"$W/mtcsd.log" 2>&1 &
MTCSD_PID=$!
PIDS+=("$MTCSD_PID")
"$MTCSEC_BIN" device run $DEV1 --listen "$DEV1_ADDR" >"$W/dev1.log" 2>&1 &
PIDS+=("$!")
"$MTCSEC_BIN" device run $DEV2 --listen "$DEV2_ADDR" >"$W/dev2.log" 2>&1 &
PIDS+=("$!")
"$MTCSEC_BIN" gw run $GW --map "$GW_ADDR=$DEV2_ADDR" --trace >"$W/gw.trace" \
  2>"$W/gw.log" &
PIDS+=("$!")
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$BASE") 2>/dev/null &&
     [ -f "$MTCSEC_DIR/devices/$DEV1.addr" ] &&
     [ -f "$MTCSEC_DIR/devices/$DEV2.addr" ] && grep -q relay "$W/gw.trace"; then
    break
  fi
  sleep 0.1
done
echo "mtcsd on $SRV (TLS 1.3); device 1 on $DEV1_ADDR; device 2 on $DEV2_ADDR"
echo "behind relay $GW on $GW_ADDR (udp)"

section "4. UE and device 1, direct: M0 M1 | M2 M3 over TLS | M4, then a record"
run ue get $DEV1 temperature --device-addr "$DEV1_ADDR" --trace

section "5. UE and device 2 through the relay (6 messages on the device link)"
run ue get $DEV2 humidity --via "$GW_ADDR" --trace
echo "the relay's trace of the same exchange (its clock started with it):"
grep -E ' (UE|GW|MTCd) +-> ' "$W/gw.trace"

section "6. Commands to device 1 over the direct channel, with the kept key"
run ue put $DEV1 interval 30 --device-addr "$DEV1_ADDR" --trace
run ue put $DEV1 led on --actuate --device-addr "$DEV1_ADDR"

section "7. mtcsd stops; the UE still reads from device 1 with its key"
kill -TERM "$MTCSD_PID"
wait "$MTCSD_PID" 2>/dev/null || true
if (exec 3<>"/dev/tcp/127.0.0.1/$BASE") 2>/dev/null; then
  echo "demo: mtcsd is still listening" >&2
  exit 1
fi
echo "mtcsd stopped: nothing listens on $SRV any more"
run ue get $DEV1 temperature --device-addr "$DEV1_ADDR" --trace
run ue get $DEV1 led --device-addr "$DEV1_ADDR"

section "8. What the server issued (read from its database)"
run sessions

section "9. Cellular mode: attach, RAND in PCO, K_UP, AES-CCM payloads without a handshake"
# docs/CELLULAR-SYSTEM.md: the home proxy (mtchpd), a GGSN, an SGSN and an
# MS with a USIM, against a fresh mtcsd with its cellular service.  Every
# listener takes a port chosen by the system, read back from its log.
MTCHPD_BIN=$BABS/apps/mtchpd
[ -x "$MTCHPD_BIN" ] ||
  { echo "demo: $MTCHPD_BIN was not built (see $B/build.log)" >&2; exit 1; }
IMSI=001010000000021
GGSN=6600000000000001
# log_addr FILE KEY: waits for "KEY=ADDR" in FILE (written once a program
# has bound its socket) and prints ADDR.
log_addr() {
  local i v
  for i in $(seq 150); do
    v=$(sed -n -E "s/.*[ ]$2=([^ ]+).*/\1/p" "$1" | head -n 1)
    if [ -n "$v" ]; then
      echo "$v"
      return 0
    fi
    [ "$i" -lt 150 ] && sleep 0.1
  done
  echo "demo: no '$2' in $1:" >&2
  tail -n 20 "$1" >&2
  return 1
}
run hp init --gsup-listen 127.0.0.1:0 --kup-listen 127.0.0.1:0 >/dev/null 2>&1
# TS 35.208 test set 1 K and OPc (public test values).
run sub add $IMSI --k 465b5ce8b199b49faa5f0a2ee238a6bc \
  --opc cd63cb71954a9f4e48a5994e37a02baf --integrity-only --usim "$W/ms.json"
run ggsn add $GGSN >/dev/null 2>&1
"$MTCHPD_BIN" -c "$MTCSEC_DIR/mtchpd.conf" >"$W/mtchpd.log" 2>&1 &
PIDS+=("$!")
GSUP=$(log_addr "$W/mtchpd.log" 'service=gsup addr')
KUP=$(log_addr "$W/mtchpd.log" 'service=kup addr')
MTCS_ID=$(sed -n -E 's/^mtcs_id *= *([0-9a-f]{16}).*/\1/p' "$MTCSEC_DIR/mtcsd.conf")
sed -i -E -e 's/^listen *=.*/listen = 127.0.0.1:0/' \
  -e 's/^metrics_listen *=.*/metrics_listen = 127.0.0.1:0/' \
  -e 's/^cellular_listen *=.*/cellular_listen = 127.0.0.1:0/' \
  -e "s/^allowed_ggsns *=.*/allowed_ggsns = $GGSN/" \
  -e "s/^home_proxy *=.*/home_proxy = $KUP/" \
  -e 's/^log_level *=.*/log_level = debug/' "$MTCSEC_DIR/mtcsd.conf"
"$MTCSD_BIN" -c "$MTCSEC_DIR/mtcsd.conf" >"$W/mtcsd-cell.log" 2>&1 &
PIDS+=("$!")
GI=$(log_addr "$W/mtcsd-cell.log" 'event=cellular_listening addr')
METRICS=$(log_addr "$W/mtcsd-cell.log" 'event=metrics_listening addr')
"$MTCSEC_BIN" ggsn run --listen 127.0.0.1:0 --mtcs "$GI" \
  --cert "$MTCSEC_DIR/ggsns/$GGSN.pem" --key "$MTCSEC_DIR/ggsns/$GGSN.key" \
  --ca "$MTCSEC_DIR/ca.pem" --trace >"$W/ggsn.trace" 2>"$W/ggsn.log" &
PIDS+=("$!")
GTP=$(log_addr "$W/ggsn.log" 'service=gtp addr')
log_addr "$W/ggsn.log" 'event=gi_connected mtcs' >/dev/null
"$MTCSEC_BIN" sgsn run --listen 127.0.0.1:0 --hlr "$GSUP" --ggsn "$GTP" \
  --trace >"$W/sgsn.trace" 2>"$W/sgsn.log" &
PIDS+=("$!")
RADIO=$(log_addr "$W/sgsn.log" 'service=radio addr')
log_addr "$W/sgsn.log" 'event=hlr_ready peer' >/dev/null
echo "mtchpd: GSUP on $GSUP, K_UP (HTTPS, client certificates) on $KUP"
echo "mtcsd (MTCsID $MTCS_ID): Gi (TLS 1.3) on $GI; GGSN: GTP on $GTP;" \
  "SGSN: radio on $RADIO"
echo "the MS attaches, then sends two payloads, each answered by mtcsd:"
run ms run --usim "$W/ms.json" --sgsn "$RADIO" --send "hello mtcsd" \
  --send "temp=21.5" --interval 200 --trace --log-level warn |
  tee "$W/ms.out"
awk '/SAPI 3 record seq/ { exit }
     / ms +(MS|SGSN) +-> +(SGSN|MS) / {
       for (i = 1; i < NF; i++) if ($(i + 1) == "B") { b += $i; n++; break }
     }
     END { printf "radio before the first protected payload: %d messages, %d bytes\n", n, b }' \
  "$W/ms.out"
echo "the SGSN's view (its clock started with it):"
grep -E ' (MS|SGSN|HLR|GGSN) +-> ' "$W/sgsn.trace"
echo "the GGSN's view: CTX_OPEN (IMSI, RAND from the PCO) to mtcsd, records both ways:"
grep -E ' (SGSN|GGSN|MTCs) +-> ' "$W/ggsn.trace"
echo "what each node held:"
printf '  SGSN:   IK only (%s); LLC MAC-I failures %s; payloads relayed unopened,\n' \
  "$(grep -o -E 'ck_received=[01] kc_received=[01]' "$W/sgsn.log" | head -n 1)" \
  "$(grep -c 'event=llc_mac_failure' "$W/sgsn.log" || true)"
printf '          "hello mtcsd" in its log or trace: %s times\n' \
  "$(cat "$W/sgsn.log" "$W/sgsn.trace" | grep -c 'hello mtcsd' || true)"
printf '  mtchpd: %s\n' "$(grep -o -E 'event=kup_request .*' "$W/mtchpd.log" |
  sed -E 's/ peer=[^ ]+//' | head -n 1)"
printf '  mtcsd:  K_UP from mtchpd, never CK: %s\n' \
  "$(grep -o -E 'imsi=[0-9]+ result=[a-z_]+ .*kup_ms=[0-9]+' "$W/mtcsd-cell.log" |
    sed -E 's/ (status|replaced)=[^ ]+//g' | head -n 1)"
{ exec 3<>"/dev/tcp/${METRICS%:*}/${METRICS##*:}" &&
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3; } 2>/dev/null |
  grep -E '^mtcsd_cellular_(payloads_total\{result="(ok|mic|replay)"\}|contexts )' |
  sed 's/^/          /'

section "What the devices logged"
grep -h -E 'event=(established|request)' "$W/dev1.log" "$W/dev2.log" |
  grep -v 'perms=0x' | sed -E 's/^ts=[^ ]+ //' | head -n 8

printf '\ndemo: done; stopping everything and removing %s\n' "$W"
