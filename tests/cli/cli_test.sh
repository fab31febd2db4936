#!/usr/bin/env bash
# Tests of the mtcsec admin tool against docs/OPERATIONS.md and mtcsec(1).
#
#   usage: cli_test.sh MTCSEC CASE [SEED_SESSION]
#
# Runs the built binary in a fresh temporary directory (removed on exit).
# CASE is one of: init device ue relay grant sessions revoke audit errors
# kek help.  SEED_SESSION is tests/cli/seed_session.c, which records a
# session the way mtcsd does.  Exit 0 pass, 1 fail, 77 skipped (no openssl
# or python3).
set -u

if [ $# -lt 2 ]; then
  echo "usage: $0 MTCSEC CASE [SEED_SESSION]" >&2
  exit 2
fi
abspath() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
BIN=$(abspath "$1")
CASE=$2
SEED=${3:+$(abspath "$3")}
command -v openssl >/dev/null 2>&1 || { echo "skip: no openssl"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "skip: no python3"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/mtcsec-cli.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
export MTCSEC_DIR="$T/st"
unset POSIXLY_CORRECT

fail() {
  echo "FAIL [$CASE]: $*" >&2
  if [ -f "$T/out" ]; then
    echo "--- stdout:" >&2
    cat "$T/out" >&2
    echo "--- stderr:" >&2
    cat "$T/err" >&2
  fi
  exit 1
}

# expect RC ARGS...: runs mtcsec ARGS, requires exit status RC; output is
# left in $T/out and $T/err.
expect() {
  local want=$1 rc
  shift
  "$BIN" "$@" >"$T/out" 2>"$T/err"
  rc=$?
  [ "$rc" -eq "$want" ] || fail "mtcsec $* exited $rc, want $want"
}

out_has() { grep -q -- "$1" "$T/out" || fail "stdout lacks '$1'"; }
err_has() { grep -q -- "$1" "$T/err" || fail "stderr lacks '$1'"; }
mode_is() {
  local m
  m=$(stat -c %a "$1") || fail "no file $1"
  [ "$m" = "$2" ] || fail "$1 has mode $m, want $2"
}

MTCS=5e00000000000001
DEV1=0200000000000001
DEV3=0200000000000003
UE=0a0b0c0d0e0f1011
GW=0300000000000001

setup() {
  expect 0 init st --mtcs-id "$MTCS"
}

# --------------------------------------------------------------- cases

case_init() {
  setup
  out_has "$MTCS"
  for f in mtcsd.conf mtcsd.db kek ca.pem ca.key server.pem server.key; do
    [ -f "st/$f" ] || fail "init did not create $f"
  done
  for d in devices ues; do
    [ -d "st/$d" ] || fail "init did not create $d/"
  done
  mode_is st/kek 600
  mode_is st/ca.key 600
  mode_is st/server.key 600
  mode_is st/mtcsd.db 600
  mode_is st/ca.pem 644
  mode_is st/server.pem 644
  mode_is st/mtcsd.conf 644
  grep -Eq '^[0-9a-f]{64}$' st/kek || fail "kek is not 64 hex digits"

  # Every key of docs/OPERATIONS.md, with the given MTCsID.
  grep -q "^mtcs_id = $MTCS\$" st/mtcsd.conf || fail "mtcs_id not in conf"
  for k in listen metrics_listen database kek_file ca cert key workers \
    log_level dup_cache_size rate_per_minute max_connections idle_timeout \
    commit_max_batch commit_max_delay_ms; do
    grep -q "^$k = " st/mtcsd.conf || fail "mtcsd.conf lacks $k"
  done
  grep -q '^listen = 127.0.0.1:7788$' st/mtcsd.conf || fail "listen default"

  # The CA: self-signed P-256, CA:TRUE, keyCertSign, about 10 years.
  openssl x509 -in st/ca.pem -noout -text >"$T/ca.txt" || fail "ca.pem"
  grep -q 'CA:TRUE' "$T/ca.txt" || fail "CA lacks CA:TRUE"
  grep -q 'Certificate Sign' "$T/ca.txt" || fail "CA lacks keyCertSign"
  grep -Eq 'ASN1 OID: prime256v1|NIST CURVE: P-256' "$T/ca.txt" ||
    fail "CA key is not P-256"
  grep -q 'ecdsa-with-SHA256' "$T/ca.txt" || fail "CA not signed w/ SHA-256"
  openssl x509 -in st/ca.pem -noout -checkend $((9 * 365 * 86400)) \
    >/dev/null || fail "CA valid for less than 9 years"
  openssl x509 -in st/ca.pem -noout -checkend $((11 * 365 * 86400)) \
    >/dev/null && fail "CA valid for more than 11 years"

  # mtcsd's certificate: CN, SAN, serverAuth, 2 years, chains to the CA.
  openssl x509 -in st/server.pem -noout -text >"$T/srv.txt"
  openssl x509 -in st/server.pem -noout -subject -nameopt RFC2253 |
    grep -q "CN=mtcsd $MTCS" || fail "server CN"
  grep -q 'DNS:localhost' "$T/srv.txt" || fail "SAN lacks localhost"
  grep -q 'IP Address:127.0.0.1' "$T/srv.txt" || fail "SAN lacks 127.0.0.1"
  grep -Eq 'IP Address:(0:0:0:0:0:0:0:1|::1)' "$T/srv.txt" ||
    fail "SAN lacks ::1"
  grep -q 'TLS Web Server Authentication' "$T/srv.txt" || fail "serverAuth"
  openssl verify -CAfile st/ca.pem -purpose sslserver st/server.pem \
    >/dev/null || fail "server.pem does not chain to ca.pem"
  openssl x509 -in st/server.pem -noout -checkend $((700 * 86400)) \
    >/dev/null || fail "server cert shorter than 2 years"
  openssl x509 -in st/server.pem -noout -checkend $((740 * 86400)) \
    >/dev/null && fail "server cert longer than 2 years"
  openssl pkey -in st/server.key -pubout >"$T/k.pub" || fail "server.key"
  openssl x509 -in st/server.pem -noout -pubkey | cmp -s - "$T/k.pub" ||
    fail "server.key does not match server.pem"

  # A non-empty directory is refused without --force.
  expect 1 init st
  err_has "--force"
  expect 0 init st --force --listen 192.0.2.7:7788
  grep -q '^listen = 192.0.2.7:7788$' st/mtcsd.conf || fail "--listen"
  grep -q "^mtcs_id = $MTCS\$" st/mtcsd.conf && fail "random MTCsID"
  grep -Eq '^mtcs_id = [0-9a-f]{16}$' st/mtcsd.conf || fail "MTCsID format"
  openssl x509 -in st/server.pem -noout -text |
    grep -q 'IP Address:192.0.2.7' || fail "--listen host not in SAN"
  expect 0 -d st device list

  # A file where DIR should be; bad options.
  : >plainfile
  expect 4 init plainfile
  expect 2 init other --mtcs-id 12
  expect 2 init other --listen nonsense
  [ -e other ] && fail "init created DIR despite a usage error"

  # mtcsd's client certificate for the home proxy: CN = the MTCsID exactly,
  # clientAuth, signed by the CA (docs/CELLULAR-SYSTEM.md section 5).
  local id
  id=$(sed -n 's/^mtcs_id = //p' st/mtcsd.conf)
  mode_is st/mtcs-client.key 600
  mode_is st/mtcs-client.pem 644
  openssl x509 -in st/mtcs-client.pem -noout -subject -nameopt RFC2253 |
    grep -q "CN=$id\$" || fail "mtcs-client CN is not the MTCsID"
  openssl x509 -in st/mtcs-client.pem -noout -text |
    grep -q 'TLS Web Client Authentication' || fail "mtcs-client clientAuth"
  openssl verify -CAfile st/ca.pem -purpose sslclient st/mtcs-client.pem \
    >/dev/null || fail "mtcs-client.pem does not chain to ca.pem"
  openssl pkey -in st/mtcs-client.key -pubout >"$T/c.pub" || fail "client key"
  openssl x509 -in st/mtcs-client.pem -noout -pubkey | cmp -s - "$T/c.pub" ||
    fail "mtcs-client.key does not match mtcs-client.pem"

  # hp init: mtchpd.conf, hp.pem/hp.key, an empty hlr.db.
  expect 0 -d st hp init
  for f in mtchpd.conf hp.pem hp.key hlr.db; do
    [ -f "st/$f" ] || fail "hp init did not create $f"
  done
  mode_is st/hp.key 600
  mode_is st/hp.pem 644
  mode_is st/hlr.db 600
  mode_is st/mtchpd.conf 644
  grep -q "^allowed_servers = $id\$" st/mtchpd.conf || fail "allowed_servers"
  grep -q '^ca = ca.pem$' st/mtchpd.conf || fail "mtchpd.conf ca"
  grep -q '^kek_file = kek$' st/mtchpd.conf || fail "mtchpd.conf kek_file"
  grep -q '^cert = hp.pem$' st/mtchpd.conf || fail "mtchpd.conf cert"
  grep -q '^key = hp.key$' st/mtchpd.conf || fail "mtchpd.conf key"
  grep -q '^database = hlr.db$' st/mtchpd.conf || fail "mtchpd.conf database"
  grep -q '^gsup_listen = 127.0.0.1:4222$' st/mtchpd.conf || fail "gsup"
  grep -q '^kup_listen = 127.0.0.1:4443$' st/mtchpd.conf || fail "kup"
  openssl x509 -in st/hp.pem -noout -text >"$T/hp.txt" || fail "hp.pem"
  grep -q 'TLS Web Server Authentication' "$T/hp.txt" || fail "hp serverAuth"
  grep -q 'DNS:localhost' "$T/hp.txt" || fail "hp SAN localhost"
  grep -q 'IP Address:127.0.0.1' "$T/hp.txt" || fail "hp SAN 127.0.0.1"
  grep -Eq 'IP Address:(0:0:0:0:0:0:0:1|::1)' "$T/hp.txt" || fail "hp SAN ::1"
  openssl verify -CAfile st/ca.pem -purpose sslserver st/hp.pem >/dev/null ||
    fail "hp.pem does not chain to ca.pem"
  expect 0 -d st audit
  out_has "hp init"
  # Not twice without --force; --force keeps hlr.db and its subscribers.
  expect 1 -d st hp init
  err_has "--force"
  expect 0 -d st sub add 001010000000009 --k 465b5ce8b199b49faa5f0a2ee238a6bc \
    --opc cd63cb71954a9f4e48a5994e37a02baf
  expect 0 -d st hp init --force --kup-listen 192.0.2.9:4443 \
    --gsup-listen :4222
  grep -q '^kup_listen = 192.0.2.9:4443$' st/mtchpd.conf || fail "--kup-listen"
  grep -q '^gsup_listen = :4222$' st/mtchpd.conf || fail "--gsup-listen"
  err_has "home_proxy"
  openssl x509 -in st/hp.pem -noout -text | grep -q 'IP Address:192.0.2.9' ||
    fail "--kup-listen host not in hp.pem's SAN"
  expect 0 -d st sub list
  out_has 001010000000009
  expect 2 -d st hp init --kup-listen nonsense
  expect 2 -d st hp init extra
  expect 2 -d st hp frob
  expect 2 -d st hp
  expect 4 -d nowhere hp init
  return 0
}

check_device_file() { # FILE ID SUITE
  python3 - "$1" "$2" "$MTCS" "$3" <<'PY' || fail "provisioning file $1"
import json, re, sys
path, dev, mtcs, suite = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
d = json.load(open(path))
assert list(d) == ["MTCdID", "MTCsID", "suite", "PSKey"], list(d)
assert d["MTCdID"] == dev, d
assert d["MTCsID"] == mtcs, d
assert d["suite"] == suite and type(d["suite"]) is int, d
keylen = {1: 16, 2: 16, 3: 32}[suite]
assert re.fullmatch("[0-9a-f]{%d}" % (2 * keylen), d["PSKey"]), d
PY
}

case_device() {
  setup
  expect 0 device add "$DEV1" --label "kitchen sensor" --group g1
  [ "$(cat "$T/out")" = "$T/st/devices/$DEV1.json" ] ||
    fail "device add printed '$(cat "$T/out")'"
  mode_is "st/devices/$DEV1.json" 600
  check_device_file "st/devices/$DEV1.json" "$DEV1" 1

  expect 0 device add "${DEV3^^}" --suite 3
  check_device_file "st/devices/$DEV3.json" "$DEV3" 3

  expect 0 device add
  rnd=$(basename "$(cat "$T/out")" .json)
  [[ "$rnd" =~ ^[0-9a-f]{16}$ ]] || fail "random device ID '$rnd'"
  check_device_file "st/devices/$rnd.json" "$rnd" 1
  cmp -s "st/devices/$rnd.json" "st/devices/$DEV1.json" &&
    fail "two devices share a provisioning file"
  psk1=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["PSKey"])' \
    "st/devices/$DEV1.json")
  psk2=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["PSKey"])' \
    "st/devices/$rnd.json")
  [ "$psk1" != "$psk2" ] || fail "two devices share a PSKey"

  expect 1 device add "$DEV1"
  err_has "exists already"
  expect 2 device add 0200000000000009 --suite 4
  expect 2 device add 02000000000000
  [ -e st/devices/0200000000000009.json ] && fail "file left after error"

  expect 0 device list
  out_has "LAST NONCE"
  out_has "$DEV1"
  out_has "$DEV3"
  out_has "$rnd"
  grep "$DEV1" "$T/out" | grep -q "kitchen sensor" || fail "label in list"
  grep "$DEV1" "$T/out" | grep -q "g1" || fail "group in list"
  grep "$DEV1" "$T/out" | grep -q "enabled" || fail "state in list"
  grep "$DEV3" "$T/out" | grep -Eq "^$DEV3 +3 " || fail "suite in list"

  expect 0 device show "$DEV1"
  out_has "kitchen sensor"
  out_has "enabled"
  out_has "grants"
  expect 3 device show 0200000000000009
  err_has "no device"

  expect 0 device disable "$DEV1"
  expect 0 device list
  grep "$DEV1" "$T/out" | grep -q "disabled" || fail "disable not listed"
  expect 0 device enable "$DEV1"
  expect 0 device show "$DEV1"
  out_has "enabled"
  expect 3 device disable 0200000000000009
  expect 2 device disable
  return 0
}

case_ue() {
  setup
  expect 0 ue add "$UE"
  out_has "ues/$UE.pem"
  out_has "ues/$UE.key"
  mode_is "st/ues/$UE.key" 600
  mode_is "st/ues/$UE.pem" 644
  subj=$(openssl x509 -in "st/ues/$UE.pem" -noout -subject -nameopt RFC2253)
  [ "$subj" = "subject=CN=$UE" ] || fail "UE subject '$subj'"
  openssl verify -CAfile st/ca.pem "st/ues/$UE.pem" >/dev/null ||
    fail "UE certificate does not chain to ca.pem"
  openssl verify -CAfile st/ca.pem -purpose sslclient "st/ues/$UE.pem" \
    >/dev/null || fail "UE certificate is not for clientAuth"
  openssl x509 -in "st/ues/$UE.pem" -noout -checkend $((360 * 86400)) \
    >/dev/null || fail "UE cert shorter than a year"
  openssl x509 -in "st/ues/$UE.pem" -noout -checkend $((370 * 86400)) \
    >/dev/null && fail "UE cert longer than a year"
  openssl pkey -in "st/ues/$UE.key" -pubout >"$T/k.pub" || fail "UE key"
  openssl x509 -in "st/ues/$UE.pem" -noout -pubkey | cmp -s - "$T/k.pub" ||
    fail "UE key does not match its certificate"

  # Upper-case input, lower-case CN; random UEID; duplicates refused.
  expect 0 ue add 0A0B0C0D0E0F10FF
  subj=$(openssl x509 -in st/ues/0a0b0c0d0e0f10ff.pem -noout -subject \
    -nameopt RFC2253)
  [ "$subj" = "subject=CN=0a0b0c0d0e0f10ff" ] || fail "CN case '$subj'"
  expect 0 ue add
  pem=$(head -n 1 "$T/out")
  id=$(basename "$pem" .pem)
  [[ "$id" =~ ^[0-9a-f]{16}$ ]] || fail "random UEID '$id'"
  openssl x509 -in "$pem" -noout -subject -nameopt RFC2253 |
    grep -q "CN=$id" || fail "random UE CN"
  expect 1 ue add "$UE"
  expect 2 ue add nothex
  return 0
}

case_relay() {
  setup
  expect 0 device add "$DEV1" --group g1
  expect 0 gw add "$GW" --label "roof"
  [ -f "st/relays/$GW.json" ] || fail "no relays/$GW.json"
  expect 0 relay allow "$GW" "$DEV1"
  expect 0 relay allow "$GW" @g1
  expect 3 relay allow 0300000000000009 "$DEV1"
  err_has "gw add"
  expect 3 relay allow "$GW" 0200000000000009
  expect 2 relay allow "$GW"
  expect 2 relay allow "$GW" @
  expect 2 relay frob
  expect 0 device show "$DEV1"
  out_has "GW $GW"
  expect 0 gw add
  grep -Eq '^relay [0-9a-f]{16} registered' "$T/out" || fail "random GWID"
  return 0
}

case_grant() {
  setup
  expect 0 device add "$DEV1" --group g1
  expect 0 grant "$UE" "$DEV1" --perms read,write --lifetime 2h \
    --from 2024-01-01 --until 2099-01-01T00:00:00Z
  out_has "read,write"
  out_has "7200"
  out_has "2099-01-01T00:00:00Z"
  : >"st/ues/$UE.pem" # device show looks for UEs in ues/
  expect 0 device show "$DEV1"
  out_has "UE $UE"
  out_has "read,write"
  expect 0 grant "$UE" @g1 --perms 0x0f --lifetime 600 --from 1700000000
  out_has "read,write,actuate,configure"
  expect 0 grant 0a0b0c0d0e0f1012 "$DEV1"
  out_has "perms read"
  out_has "3600"

  # A grant valid only in the past is not listed as valid now.
  expect 0 grant 0a0b0c0d0e0f1013 "$DEV1" --from 2001-01-01 --until 2002-01-01
  : >st/ues/0a0b0c0d0e0f1013.pem
  expect 0 device show "$DEV1"
  grep -q "UE 0a0b0c0d0e0f1013" "$T/out" && fail "expired grant shown"

  expect 2 grant "$UE" "$DEV1" --perms fly
  expect 2 grant "$UE" "$DEV1" --perms none
  expect 2 grant "$UE" "$DEV1" --lifetime 0
  expect 2 grant "$UE" "$DEV1" --from 2024-13-01
  expect 2 grant "$UE" "$DEV1" --from 2024-02-30
  expect 2 grant "$UE" "$DEV1" --until 2024-01-01T25:00:00Z
  expect 2 grant "$UE" "$DEV1" --from 2030-01-01 --until 2029-01-01
  expect 2 grant "$UE"
  expect 2 grant "$UE" "$DEV1" extra
  expect 3 grant "$UE" 0200000000000009
  err_has "no device"

  expect 0 grant --delete "$UE" "$DEV1"
  expect 3 grant --delete "$UE" "$DEV1"
  expect 0 grant --delete "$UE" @g1
  expect 2 grant --delete "$UE" "$DEV1" --perms read
  return 0
}

case_sessions() {
  setup
  expect 0 sessions
  [ -s "$T/out" ] && fail "sessions printed rows with no sessions"
  expect 0 sessions --json
  python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == []' \
    "$T/out" || fail "sessions --json with no sessions"
  expect 0 device add "$DEV1"
  expect 0 sessions "$DEV1" --limit 5
  expect 3 sessions 0200000000000009
  expect 2 sessions --limit x
  expect 2 sessions a b

  [ -x "$SEED" ] || fail "no seed_session helper"
  "$SEED" st "$DEV1" "$UE" 0000000000000005 7 || fail "seed_session"
  "$SEED" st "$DEV1" "$UE" 0000000000000006 8 || fail "seed_session"
  expect 0 sessions
  out_has "KEY_ID"
  grep -Eq "^1 +$DEV1 +$UE +7 +read .*active" "$T/out" || fail "session row"
  expect 0 sessions --limit 1 --json
  python3 - "$T/out" "$DEV1" "$UE" <<'PY' || fail "sessions --json"
import json, sys
s = json.load(open(sys.argv[1]))
assert len(s) == 1, s
s = s[0]
assert s["id"] == 2 and s["KEY_ID"] == 8, s           # newest first
assert s["MTCdID"] == sys.argv[2] and s["UEID"] == sys.argv[3], s
assert s["MTCdNonce"] == "0000000000000006" and s["state"] == "active", s
assert s["PATH"] == [] and s["LIFETIME"] == 3600 and s["PERMS"] == 1, s
PY
  return 0
}

case_revoke() {
  setup
  expect 3 revoke 42
  err_has "no session 42"
  expect 2 revoke abc
  expect 2 revoke
  expect 0 device add "$DEV1"
  [ -x "$SEED" ] || fail "no seed_session helper"
  "$SEED" st "$DEV1" "$UE" 0000000000000005 7 || fail "seed_session"
  expect 0 revoke 1
  hex=$(cat "$T/out")
  # 0x17 || MTCsID || MTCdID || key_id || MTCdNonce || MIC(8): section 7,
  # the MIC recomputed with the openssl CLI from the provisioning file.
  python3 - "$hex" "st/devices/$DEV1.json" <<'PY' || fail "revocation '$hex'"
import json, subprocess, sys
msg = bytes.fromhex(sys.argv[1])
d = json.load(open(sys.argv[2]))
want = (bytes([0x17]) + bytes.fromhex(d["MTCsID"]) + bytes.fromhex(d["MTCdID"])
        + (7).to_bytes(2, "big") + (5).to_bytes(8, "big"))
assert msg[:-8] == want and len(msg) == len(want) + 8, msg.hex()
def ossl(args, data=b""):
    return subprocess.run(["openssl"] + args, input=data, check=True,
                          capture_output=True).stdout
ctx = bytes.fromhex(d["MTCdID"]) + bytes.fromhex(d["MTCsID"])
kauth = ossl(["kdf", "-binary", "-keylen", "16", "-kdfopt", "mac:CMAC",
              "-kdfopt", "cipher:AES-128-CBC", "-kdfopt", "hexkey:" + d["PSKey"],
              "-kdfopt", "salt:mtcsec K_auth", "-kdfopt", "hexinfo:" + ctx.hex(),
              "KBKDF"])
mic = ossl(["mac", "-binary", "-cipher", "AES-128-CBC", "-macopt",
            "hexkey:" + kauth.hex(), "CMAC"], msg[:-8])[:8]
assert mic == msg[-8:], "MIC"
PY
  expect 0 sessions
  grep -Eq "^1 .*revoked" "$T/out" || fail "session not shown revoked"
  expect 0 revoke 1 --out rev.bin
  [ "$(od -An -v -tx1 rev.bin | tr -d ' \n')" = "$hex" ] ||
    fail "--out differs from the hex"
  return 0
}

case_audit() {
  setup
  expect 0 device add "$DEV1"
  expect 0 device disable "$DEV1"
  expect 0 device enable "$DEV1"
  expect 0 ue add "$UE"
  expect 0 gw add "$GW"
  expect 0 grant "$UE" "$DEV1"
  expect 0 grant --delete "$UE" "$DEV1"
  expect 0 relay allow "$GW" "$DEV1"
  if [ -x "$SEED" ]; then
    "$SEED" st "$DEV1" "$UE" 0000000000000001 0 || fail "seed_session"
    expect 0 revoke 1
  fi
  expect 0 device list # read-only: not audited
  expect 0 audit
  who=$(id -un)
  for a in init "device add" "device disable" "device enable" "ue add" \
    "gw add" "grant" "grant delete" "relay allow" revoke; do
    grep -q "  $a  " "$T/out" || fail "audit lacks '$a'"
  done
  grep -q "  $who  " "$T/out" || fail "audit lacks the user $who"
  [ "$(grep -c "$DEV1" "$T/out")" -ge 3 ] || fail "audit lacks the device ID"
  expect 0 audit --json
  python3 - "$T/out" "$who" <<'PY' || fail "audit --json"
import json, sys
a = json.load(open(sys.argv[1]))
assert [e["action"] for e in a][:3] == ["init", "device add", "device disable"]
assert all(e["who"] == sys.argv[2] for e in a)
assert not any("PSKey" in e["detail"] for e in a)
PY
  expect 2 audit extra
  return 0
}

case_errors() {
  expect 2
  expect 2 frobnicate
  err_has "not a command"
  expect 2 --bogus
  expect 2 device
  expect 2 device frob
  expect 2 ue
  expect 2 gw
  expect 2 relay
  expect 2 sessions --bogus
  expect 0 --version

  # No state directory, or not one.
  expect 4 device list
  err_has "mtcsec init"
  mkdir empty
  expect 4 -d empty device list
  expect 4 --dir=empty audit

  setup
  expect 2 device show nothex
  expect 3 device show 0200000000000009
  expect 3 revoke 42
  cp st/mtcsd.conf conf.orig
  echo "frobnicate = 1" >>st/mtcsd.conf
  expect 4 device list
  err_has "unknown key"
  sed 's/^mtcs_id = .*/mtcs_id = xyz/' conf.orig >st/mtcsd.conf
  expect 4 device list
  err_has "mtcs_id"
  cp conf.orig st/mtcsd.conf
  mv st/mtcsd.db st/db.away
  expect 4 device list
  mv st/db.away st/mtcsd.db
  expect 0 device list
  return 0
}

case_kek() {
  setup
  expect 0 device add "$DEV1"
  chmod 644 st/kek
  expect 4 device list
  err_has "chmod 600"
  expect 4 device add
  err_has "chmod 600"
  expect 4 audit
  chmod 600 st/kek
  expect 0 device list
  mv st/kek st/kek.away
  expect 4 device list
  mv st/kek.away st/kek
  echo "not a key" >st/kek.bad
  chmod 600 st/kek.bad
  sed -i 's/^kek_file = .*/kek_file = kek.bad/' st/mtcsd.conf
  expect 4 device list
  return 0
}

case_help() {
  local c
  for c in "--help" "-h" "help" "init --help" "device --help" \
    "device add --help" "device list --help" "device show --help" \
    "device disable --help" "device enable --help" "ue --help" \
    "ue add --help" "gw --help" "gw add --help" "grant --help" \
    "relay --help" "relay allow --help" "sessions --help" "revoke --help" \
    "audit --help" "3gpp --help"; do
    # shellcheck disable=SC2086
    expect 0 $c
    [ -s "$T/out" ] || fail "mtcsec $c printed nothing"
    [ -s "$T/err" ] && fail "mtcsec $c wrote to stderr"
  done
  expect 0 init --help
  out_has "Exit status"
  [ -e st ] && fail "--help created a state directory"
  expect 0 init --help
  out_has "mtcs-client.pem"
  for c in "hp --help" "hp init --help"; do
    # shellcheck disable=SC2086
    expect 0 $c
    out_has "mtchpd.conf"
    [ -s "$T/err" ] && fail "mtcsec $c wrote to stderr"
  done
  [ -e st ] && fail "hp --help created a state directory"
  return 0
}

case "$CASE" in
init | device | ue | relay | grant | sessions | revoke | audit | errors | \
  kek | help)
  "case_$CASE"
  ;;
*)
  echo "unknown case '$CASE'" >&2
  exit 2
  ;;
esac
rm -f "$T/out" "$T/err"
echo "ok cli.$CASE"
