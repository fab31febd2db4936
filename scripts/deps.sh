#!/usr/bin/env bash
# Installs the Debian packages mtcsec needs to build, test and run its demo,
# and nothing when they are all present.  Debian 12 (bookworm).
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libssl-dev openssl libmbedtls-dev libcmocka-dev libcjson-dev
  libosmocore-dev libsqlite3-dev osmo-hlr
  valgrind spin tshark python3 iproute2
)
if [ "${MTCSEC_DEPS_EXTRA:-}" != "" ]; then
  # shellcheck disable=SC2206
  PKGS+=(${MTCSEC_DEPS_EXTRA})
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
      grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "deps: missing packages (${missing[*]}) and not root: install them" \
         "with apt-get as root, then run this again" >&2
    exit 1
  fi
fi
echo "deps: installing ${missing[*]}" >&2
# tshark asks whether non-root users may capture; we only read pcap files.
echo 'wireshark-common wireshark-common/install-setuid boolean false' |
  $SUDO debconf-set-selections
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
  --no-install-recommends "${missing[@]}" >/dev/null
