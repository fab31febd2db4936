#!/bin/sh
# mtcsec-3gpp end to end: vector inputs without their outputs go in, the
# outputs of the vector files must come out; bad input must fail cleanly.
#
#   cli_check.sh MTCSEC_3GPP
set -u

BIN=$1
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
FAILS=0

fail() {
  echo "FAIL: $*"
  FAILS=$((FAILS + 1))
}

# expect KIND 'json input' field value [field value ...]
expect() {
  kind=$1
  input=$2
  shift 2
  if ! printf '%s\n' "$input" | "$BIN" "$kind" >"$TMP/out" 2>"$TMP/err"; then
    fail "$kind exited $? on valid input: $(cat "$TMP/err")"
    return
  fi
  while [ $# -ge 2 ]; do
    if ! grep -Eq "\"$1\":[[:space:]]*$2,?\$" "$TMP/out"; then
      fail "$kind: expected $1 = $2, got: $(grep "\"$1\"" "$TMP/out")"
    fi
    shift 2
  done
}

# expect_fail KIND 'json input' STATUS
expect_fail() {
  printf '%s\n' "$2" | "$BIN" "$1" >"$TMP/out" 2>"$TMP/err"
  rc=$?
  [ "$rc" -eq "$3" ] || fail "$1: exit $rc, expected $3 for: $2"
  [ -s "$TMP/err" ] || fail "$1: no error message for: $2"
  [ -s "$TMP/out" ] && fail "$1: output on error for: $2"
}

# TS 35.207 test set 1, with OP, then with OPc only.
expect milenage '{"K":"465b5ce8b199b49faa5f0a2ee238a6bc","RAND":"23553cbe9637a89d218ae64dae47bf35","SQN":"ff9bb4d0b607","AMF":"b9b9","OP":"cdc202d5123e20f62b6d676ac72cb318"}' \
  OPc '"cd63cb71954a9f4e48a5994e37a02baf"' f1 '"4a9ffac354dfafb3"' \
  f1star '"01cfaf9ec4e871e9"' f2 '"a54211d5e3ba50bf"' \
  f3 '"b40ba9a3c58b2a05bbf0d987b21bf8cb"' \
  f4 '"f769bcd751044604127672711c6d3441"' f5 '"aa689c648370"' \
  f5star '"451e8beca43b"'
expect milenage '{"K":"465B5CE8B199B49FAA5F0A2EE238A6BC","RAND":"23553cbe9637a89d218ae64dae47bf35","SQN":"ff9bb4d0b607","AMF":"b9b9","OPc":"cd63cb71954a9f4e48a5994e37a02baf"}' \
  f1 '"4a9ffac354dfafb3"' f5star '"451e8beca43b"'
# TS 33.401 C.2 set 1 (58 bits) and C.1 set 3 (310 bits); count as number.
expect eia2 '{"key":"2bd6459f82c5b300952c49104881ff48","count":"38a6f056","bearer":"18","direction":0,"length_bits":58,"message":"3332346263393840"}' \
  mac_i '"118c6eb8"'
expect eia2 '{"key":"2bd6459f82c5b300952c49104881ff48","count":950464598,"bearer":24,"direction":0,"length_bits":58,"message":"3332346263393840"}' \
  mac_i '"118c6eb8"'
expect eea2 '{"key":"0a8b6bd8d9b08b08d64e32d1817777fb","count":"544d49cd","bearer":"04","direction":0,"length_bits":310,"plaintext":"fd40a41d370a1f65745095687d47ba1d36d2349e23f644392c8ea9c49d40c13271aff264d0f248"}' \
  ciphertext '"75750d37b4bba2a4dedb34235bd68c6645acdaaca48138a3b0c471e2a7041a576423d2927287f0"'
# LLC: a captured XID frame, then the same with a flipped FCS octet.
expect llc-fcs '{"frame":"41fb01000e0064110516019066b328"}' \
  fcs_octets '"66b328"' fcs_value '"28b366"' fcs_covered_octets 12 \
  fcs_ok true frame_len 15
expect llc-fcs '{"frame":"41fb01000e0064110516019066b329"}' \
  fcs_octets '"66b328"' fcs_ok false
expect kdf '{"key":"c4c7bc798ab94e3d354cd6608e79aa92f5569df46519507850051e36f018ca5f","fc":"15","params":["04","02"]}' \
  s '"15040001020001"' \
  output '"42f4f8c585ae8905a50d0f32a979d8b6fa1d6d1940f1d879cf0189342a8d73c2"'

# Bad input: exit 1 with a message and no output.
expect_fail milenage '{"K":"465b","RAND":"23553cbe9637a89d218ae64dae47bf35","SQN":"ff9bb4d0b607","AMF":"b9b9","OP":"cdc202d5123e20f62b6d676ac72cb318"}' 1
expect_fail milenage '{"K":"465b5ce8b199b49faa5f0a2ee238a6bc","RAND":"23553cbe9637a89d218ae64dae47bf35","SQN":"ff9bb4d0b607","AMF":"b9b9"}' 1
expect_fail milenage '{"K":"465b5ce8b199b49faa5f0a2ee238a6bc","RAND":"23553cbe9637a89d218ae64dae47bf35","SQN":"ff9bb4d0b607","AMF":"b9b9","OP":"cdc202d5123e20f62b6d676ac72cb318","OPc":"00000000000000000000000000000000"}' 1
expect_fail eia2 '{"key":"2bd6459f82c5b300952c49104881ff48","count":"38a6f056","bearer":"18","direction":0,"length_bits":70,"message":"3332346263393840"}' 1
expect_fail eia2 '{"key":"2bd6459f82c5b300952c49104881ff48","count":"38a6f056","bearer":"20","direction":0,"length_bits":58,"message":"3332346263393840"}' 1
expect_fail eea2 '{"key":"zz","count":"1","bearer":"1","direction":0,"length_bits":8,"plaintext":"00"}' 1
expect_fail llc-fcs '{"frame":"41fb"}' 1
expect_fail llc-fcs '[1,2]' 1
expect_fail llc-fcs 'not json' 1
expect_fail nosuchkind '{}' 2

"$BIN" --help >"$TMP/out" 2>&1 || fail "--help exited non-zero"
grep -q 'llc-fcs' "$TMP/out" || fail "--help does not list llc-fcs"
"$BIN" eia2 --help >"$TMP/out" 2>&1 || fail "eia2 --help exited non-zero"
"$BIN" >/dev/null 2>&1 && fail "no arguments accepted"

if [ "$FAILS" -ne 0 ]; then
  echo "$FAILS failure(s)"
  exit 1
fi
echo "OK"
