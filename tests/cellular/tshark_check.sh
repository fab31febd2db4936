#!/bin/sh
# tshark as an independent peer for mtcsec's LLC and PCO encodings.
#
#   tshark_check.sh PCAPGEN llc|pco
#
# llc: every LLC frame pcapgen writes must be shown by tshark's llcgprs
#      dissector with "FCS: 0x...... (correct)", except the deliberately
#      corrupted one, which must be "(incorrect, ...)".
# pco: tshark must list exactly the container IDs pcapgen put into the PCO
#      of a GTPv1-C Create PDP Context Request (0xff00 included), decode the
#      IMSI, and report nothing "Malformed".
# Exit 77 (skipped) when tshark is not installed.
set -u

PCAPGEN=$1
MODE=$2

if ! command -v tshark >/dev/null 2>&1; then
  echo "tshark not installed: skipped"
  exit 77
fi

TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
# Keep tshark away from the user's profile and quiet about running as root.
export HOME="$TMP"
export XDG_CONFIG_HOME="$TMP"

fail() {
  echo "FAIL: $*"
  exit 1
}

case "$MODE" in
llc)
  "$PCAPGEN" llc "$TMP/llc.pcap" >"$TMP/expected" || fail "pcapgen llc"
  # Map user DLT 147 to the GPRS LLC dissector (TSHARK.md).
  tshark -r "$TMP/llc.pcap" \
    -o 'uat:user_dlts:"User 0 (DLT=147)","llcgprs","0","","0",""' \
    -O llcgprs >"$TMP/out" 2>"$TMP/err" || {
    cat "$TMP/err"
    fail "tshark failed"
  }
  grep -E 'FCS: 0x' "$TMP/out" | sed -E \
    -e 's/.*FCS: 0x[0-9a-f]{6} +\(correct\).*/correct/' \
    -e 's/.*FCS: 0x[0-9a-f]{6} +\(incorrect, should be 0x[0-9a-f]{6}\).*/incorrect/' \
    >"$TMP/got"
  if ! cmp -s "$TMP/expected" "$TMP/got"; then
    echo "expected:"
    cat "$TMP/expected"
    echo "tshark:"
    grep -E '^Frame|FCS' "$TMP/out"
    fail "FCS verdicts differ"
  fi
  if grep -q 'Malformed' "$TMP/out"; then
    grep -n 'Malformed' "$TMP/out"
    fail "tshark reports a malformed frame"
  fi
  echo "OK: $(wc -l <"$TMP/got") LLC frames, tshark agrees on every FCS"
  ;;
pco)
  "$PCAPGEN" pco "$TMP/gtp.pcap" >"$TMP/expected" || fail "pcapgen pco"
  want_pid=$(sed -n 's/^pco_pid=//p' "$TMP/expected")
  want_imsi=$(sed -n 's/^imsi=//p' "$TMP/expected")
  got=$(tshark -r "$TMP/gtp.pcap" -T fields -e gtp.message \
    -e gsm_a.gm.sm.pco_pid -e e212.imsi 2>"$TMP/err") || {
    cat "$TMP/err"
    fail "tshark failed"
  }
  want=$(printf '0x10\t%s\t%s' "$want_pid" "$want_imsi")
  [ "$got" = "$want" ] || fail "tshark fields '$got', expected '$want'"
  tshark -r "$TMP/gtp.pcap" -V >"$TMP/verbose" 2>>"$TMP/err" ||
    fail "tshark -V failed"
  if grep -q 'Malformed' "$TMP/verbose"; then
    grep -n -B3 'Malformed' "$TMP/verbose"
    fail "tshark reports a malformed packet"
  fi
  grep -q 'Operator Specific Use (0xff00)' "$TMP/verbose" ||
    fail "container 0xff00 not decoded as operator specific"
  echo "OK: tshark lists $want_pid for IMSI $want_imsi, nothing malformed"
  ;;
*)
  echo "usage: $0 PCAPGEN llc|pco"
  exit 2
  ;;
esac
exit 0
