#!/usr/bin/env bash
# The device link in network namespaces that cannot reach the server.
#
#   root namespace            UE namespace                device namespace
#   mtcsd on A.1  <-- veth -->  A.2   UE   B.1 <-- veth -->  B.2  device
#
# A and B are link-local /30s (169.254.x.y) chosen by this test.  The
# device namespace has only its veth to the UE namespace and no route to
# A: it provably cannot reach mtcsd.  After key establishment mtcsd is
# stopped, and UE and device still talk.  Needs root (CAP_NET_ADMIN):
# exits 77 (skipped) otherwise.
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh" "$@"

if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
  log "SKIP: needs root and iproute2"
  exit 77
fi
TAG=$$
NS_UE=mtcsec-ue-$TAG
NS_DEV=mtcsec-dev-$TAG
if ! ip netns add "$NS_UE" 2>/dev/null; then
  log "SKIP: cannot create network namespaces here"
  exit 77
fi
CLEANUP_HOOKS+=("ip netns del $NS_UE 2>/dev/null; ip netns del $NS_DEV 2>/dev/null; ip link del mr$TAG 2>/dev/null")
ip netns add "$NS_DEV"

# Two /30s from the PID, away from common link-local users (.0, .255).
X=$((TAG % 200 + 20))
Y=$(((TAG / 200) % 60 * 4))
# A = 169.254.X.Y/30 (root <-> UE: .1 mtcsd, .2 UE),
# B = 169.254.X+1.Y/30 (UE <-> device: .1 UE, .2 device).
A1=169.254.$X.$((Y + 1)); A2=169.254.$X.$((Y + 2))
B1=169.254.$((X + 1)).$((Y + 1)); B2=169.254.$((X + 1)).$((Y + 2))

if ! ip link add "mr$TAG" type veth peer name "mu$TAG" 2>/dev/null; then
  log "SKIP: cannot create veth pairs here"
  exit 77
fi
ip link set "mu$TAG" netns "$NS_UE"
ip addr add "$A1/30" dev "mr$TAG"
ip link set "mr$TAG" up
ip -n "$NS_UE" addr add "$A2/30" dev "mu$TAG"
ip -n "$NS_UE" link set "mu$TAG" up
ip -n "$NS_UE" link set lo up

ip -n "$NS_UE" link add "md$TAG" type veth peer name "mv$TAG"
ip -n "$NS_UE" link set "mv$TAG" netns "$NS_DEV"
ip -n "$NS_UE" addr add "$B1/30" dev "md$TAG"
ip -n "$NS_UE" link set "md$TAG" up
ip -n "$NS_DEV" addr add "$B2/30" dev "mv$TAG"
ip -n "$NS_DEV" link set "mv$TAG" up
ip -n "$NS_DEV" link set lo up
log "namespaces $NS_UE ($A2, $B1) and $NS_DEV ($B2); mtcsd on $A1"

DEV=0200000000000007
UE=0e00000000000007
setup_server "$A1"
mtcsec device add $DEV >/dev/null
mtcsec ue add $UE >/dev/null
mtcsec grant $UE $DEV --perms read,actuate >/dev/null
start_mtcsd "$A1"

in_ue() { ip netns exec "$NS_UE" "$@"; }
in_dev() { ip netns exec "$NS_DEV" "$@"; }

log "reachability"
in_ue bash -c "exec 3<>/dev/tcp/$A1/$SRV_PORT" || fail "the UE cannot reach mtcsd"
if in_dev timeout 3 bash -c "exec 3<>/dev/tcp/$A1/$SRV_PORT" 2>/dev/null; then
  fail "the device namespace reaches mtcsd"
fi
if in_dev ip route get "$A1" >/dev/null 2>&1; then
  fail "the device namespace has a route to $A1"
fi

start dev ip netns exec "$NS_DEV" "$MTCSEC" device run $DEV --listen "$B2:7700" \
  --m0-interval 200
wait_for 15 test -f "$MTCSEC_DIR/devices/$DEV.addr" || fail "device did not start"

log "key establishment: UE namespace <-> mtcsd, UE <-> device over the veth"
expect_status 0 in_ue timeout 30 "$MTCSEC" ue get $DEV temperature \
  --device-addr "$B2:7700" --trace
expect_output 'MTCs -> UE +M3'
expect_output '^temperature = '
log_has dev "event=established mtcd=$DEV ue=$UE"

log "mtcsd stopped: UE and device still talk"
stop mtcsd
expect_status 0 in_ue timeout 30 "$MTCSEC" ue put $DEV led on --actuate \
  --device-addr "$B2:7700"
expect_output 'mtcsd not contacted'
expect_output '^led = on$'
expect_status 0 in_ue timeout 30 "$MTCSEC" ue get $DEV led \
  --device-addr "$B2:7700" --cached-only
expect_output '^led = on$'

stop dev
log "ok"
