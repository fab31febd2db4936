#!/usr/bin/env bash
# Independent second computation of the committed test vectors
# (PROTOCOL.md section 8) with the `openssl` command-line tool only.
#
#   usage: openssl_cli_check.sh DIR      (checks every DIR/*.json)
#
# No mtcsec code is used.  python3 (standard library only) merely assembles
# bytes, hex and JSON and runs `openssl` through subprocess; every
# cryptographic operation is done by the openssl CLI:
#   - KDF   : `openssl kdf ... KBKDF` (SP 800-108 counter mode), cross-checked
#             against the spec's literal formula evaluated with `openssl mac`
#   - MIC   : `openssl mac ... CMAC` / `openssl mac ... HMAC`, truncated to t
#   - AES-CCM: `openssl enc` refuses AEAD modes, so CCM (RFC 3610) is composed
#             here from openssl's raw AES: CBC-MAC with `openssl enc -cbc
#             -nopad` (zero IV; last block = CBC-MAC) and the CTR key stream
#             with one `openssl enc -ecb -nopad` call over all counter blocks.
#             This composition is a TEST ORACLE, not product code; it is
#             checked first against RFC 3610 Packet Vector #1.
#
# Prints one line per vector and one per mismatching field, then
# "N vectors, M mismatches".  Exit 1 on any mismatch (or oracle failure),
# 77 if openssl or python3 is missing.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
command -v openssl >/dev/null 2>&1 || { echo "skip: openssl not found"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "skip: python3 not found"; exit 77; }

exec python3 - "$1" <<'PY'
import glob, json, os, subprocess, sys

DIR = sys.argv[1]


def die(msg):
    print("FATAL: " + msg)
    sys.exit(1)


def openssl(args, data=b""):
    p = subprocess.run(["openssl"] + args, input=data, capture_output=True)
    if p.returncode != 0:
        die("openssl %s failed: %s" % (" ".join(args),
                                      p.stderr.decode(errors="replace")))
    return p.stdout


def xor(a, b):
    assert len(a) == len(b)
    return bytes(x ^ y for x, y in zip(a, b))


def u16(n): return n.to_bytes(2, "big")
def u32(n): return n.to_bytes(4, "big")


# ---------------------------------------------------------------- suites
# PROTOCOL.md section 2.
SUITES = {
    1: dict(mac="CMAC", t=8, keylen=16, aes="aes-128"),
    2: dict(mac="HMAC", t=16, keylen=16, aes="aes-128"),
    3: dict(mac="HMAC", t=16, keylen=32, aes="aes-256"),
}


def mac_full(suite, key, data):
    """Untruncated PRF/MAC output from `openssl mac`."""
    if SUITES[suite]["mac"] == "CMAC":
        assert len(key) == 16
        args = ["mac", "-binary", "-cipher", "AES-128-CBC",
                "-macopt", "hexkey:" + key.hex(), "CMAC"]
    else:
        args = ["mac", "-binary", "-digest", "SHA256",
                "-macopt", "hexkey:" + key.hex(), "HMAC"]
    out = openssl(args, data)
    if len(out) != (16 if SUITES[suite]["mac"] == "CMAC" else 32):
        die("unexpected MAC output length %d" % len(out))
    return out


def mic(suite, key, data):
    """Section 2: a MIC is the MAC output truncated to its first t bytes."""
    return mac_full(suite, key, data)[:SUITES[suite]["t"]]


def kdf(suite, key, label, context, nbytes):
    """Section 2 KDF via `openssl kdf KBKDF` (salt = Label, info = Context).

    Cross-checked against the spec's literal definition evaluated with
    `openssl mac`: K(i) = PRF(key, [i]32 || Label || 0x00 || Context || [L]32),
    L = 8 * nbytes, output = first nbytes of K(1) || K(2) || ...
    A disagreement means the "exactly OpenSSL's KBKDF" claim (or this oracle)
    is wrong, so it is fatal.
    """
    label = label.encode("ascii")
    if SUITES[suite]["mac"] == "CMAC":
        prf = ["-kdfopt", "mac:CMAC", "-kdfopt", "cipher:AES128"]
    else:
        prf = ["-kdfopt", "mac:HMAC", "-kdfopt", "digest:SHA256"]
    out = openssl(["kdf", "-binary", "-keylen", str(nbytes)] + prf +
                  ["-kdfopt", "hexkey:" + key.hex(),
                   "-kdfopt", "hexsalt:" + label.hex(),
                   "-kdfopt", "hexinfo:" + context.hex(), "KBKDF"])
    fixed = label + b"\x00" + context + u32(8 * nbytes)
    lit, i = b"", 1
    while len(lit) < nbytes:
        lit += mac_full(suite, key, u32(i) + fixed)
        i += 1
    lit = lit[:nbytes]
    if out != lit:
        die("openssl KBKDF (%s) != literal SP 800-108 formula (%s) for label %r"
            % (out.hex(), lit.hex(), label))
    return out


# ---------------------------------------------------------------- AES-CCM
# RFC 3610 composed from openssl's raw AES.  Only what the protocol needs:
# 13-byte nonce (so L = 15 - 13 = 2), non-empty AAD shorter than 2^16 - 2^8.

def aes_cbc_mac(aes, key, data):
    """RFC 3610 section 2.2: X_1 = E(K, B_0); X_{i+1} = E(K, X_i XOR B_i).
    That is CBC encryption with a zero IV; T is taken from the last block."""
    assert len(data) % 16 == 0 and data
    ct = openssl(["enc", "-" + aes + "-cbc", "-nopad", "-K", key.hex(),
                  "-iv", "00" * 16], data)
    if len(ct) != len(data):
        die("unexpected CBC output length")
    return ct[-16:]


def aes_ecb(aes, key, blocks):
    """E(K, block) for many blocks in a single openssl call."""
    assert len(blocks) % 16 == 0
    out = openssl(["enc", "-" + aes + "-ecb", "-nopad", "-K", key.hex()], blocks)
    if len(out) != len(blocks):
        die("unexpected ECB output length")
    return out


def pad16(b):
    return b + b"\x00" * (-len(b) % 16)


def ccm_encrypt(aes, key, nonce, aad, msg, M):
    L = 15 - len(nonce)                               # RFC 3610 section 2
    assert L == 2 and 0 < len(aad) < 0xFF00 and len(msg) < (1 << 16)
    assert M in (4, 6, 8, 10, 12, 14, 16)
    # Section 2.2, authentication.  Flags = Reserved(0)*128 | Adata*64 |
    # M'*8 | L' with M' = (M-2)/2, L' = L-1.
    flags = (0x40 if aad else 0) | (((M - 2) // 2) << 3) | (L - 1)
    b0 = bytes([flags]) + nonce + len(msg).to_bytes(L, "big")
    # 0 < l(a) < 2^16-2^8: l(a) encoded as 2 octets, then a, zero-padded.
    blocks = b0 + pad16(u16(len(aad)) + aad) + pad16(msg)
    T = aes_cbc_mac(aes, key, blocks)[:M]
    # Section 2.3, encryption.  A_i = Flags(L') || Nonce || Counter i (L
    # octets); S_i = E(K, A_i); C = m XOR first l(m) octets of S_1 || S_2 ..;
    # U = T XOR first M octets of S_0.  All S_i in one ECB call.
    nblk = (len(msg) + 15) // 16
    A = b"".join(bytes([L - 1]) + nonce + i.to_bytes(L, "big")
                 for i in range(nblk + 1))
    S = aes_ecb(aes, key, A)
    C = xor(msg, S[16:16 + len(msg)])
    U = xor(T, S[:M])
    return C + U


def ccm_selftest():
    """RFC 3610 section 8, Packet Vector #1 (AES-128, M = 8, L = 2)."""
    key = bytes.fromhex("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf")
    nonce = bytes.fromhex("00000003020100a0a1a2a3a4a5")
    pkt = bytes(range(0x00, 0x1f))                    # 31 octets
    aad, msg = pkt[:8], pkt[8:]
    want = bytes.fromhex(
        "0001020304050607588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417"
        "e8d12cfdf926e0")
    got = aad + ccm_encrypt("aes-128", key, nonce, aad, msg, 8)
    if got != want:
        die("CCM oracle fails RFC 3610 Packet Vector #1:\n  got  %s\n  want %s"
            % (got.hex(), want.hex()))


# ---------------------------------------------------------------- protocol
def key_id_of(mtcs_info):
    """Section 3: KEY_ID (type 0x92, uint16) from the MTCsInfo TLVs."""
    i, kid = 0, None
    while i < len(mtcs_info):
        if i + 2 > len(mtcs_info):
            raise ValueError("truncated TLV in MTCsInfo")
        typ, ln = mtcs_info[i], mtcs_info[i + 1]
        val = mtcs_info[i + 2:i + 2 + ln]
        if len(val) != ln:
            raise ValueError("truncated TLV in MTCsInfo")
        if typ == 0x92:
            if ln != 2 or kid is not None:
                raise ValueError("bad KEY_ID TLV")
            kid = val
        i += 2 + ln
    if kid is None:
        raise ValueError("MTCsInfo has no KEY_ID")
    return kid


def frame(typ, req_id, body):
    """Section 5: len(2) || type(1) || req_id(4) || body, len = 5 + |body|."""
    return u16(5 + len(body)) + bytes([typ]) + u32(req_id) + body


def record(suite, key, iv, key_id, seq, plaintext):
    """Section 6: 0x16 || key_id(2) || seq(4) || ciphertext || tag(t);
    nonce = IV XOR (9 zero bytes || seq), AAD = the first 7 bytes."""
    s = SUITES[suite]
    hdr = b"\x16" + key_id + u32(seq)
    nonce = xor(iv, b"\x00" * 9 + u32(seq))
    return hdr + ccm_encrypt(s["aes"], key, nonce, hdr, plaintext, s["t"])


def compute(suite, inp):
    s = SUITES[suite]
    h = lambda k: bytes.fromhex(inp[k])
    dID, sID, ueID = h("MTCdID"), h("MTCsID"), h("UEID")
    psk, dN, sN = h("PSKey"), h("MTCdNonce"), h("MTCsNonce")
    dInfo, sInfo = h("MTCdInfo"), h("MTCsInfo")
    hops = [bytes.fromhex(x) for x in inp["hops"]]
    for name, v, n in (("MTCdID", dID, 8), ("MTCsID", sID, 8), ("UEID", ueID, 8),
                       ("MTCdNonce", dN, 8), ("MTCsNonce", sN, 8),
                       ("PSKey", psk, s["keylen"])):
        if len(v) != n:
            raise ValueError("%s must be %d bytes" % (name, n))
    if len(dInfo) > 255 or len(sInfo) > 255:
        raise ValueError("info longer than 255 bytes")
    kl, sb = s["keylen"], bytes([suite])
    o = {}
    # Section 2, key separation.
    k_auth = kdf(suite, psk, "mtcsec K_auth", dID + sID, kl)
    k_dm = kdf(suite, psk, "mtcsec K_dm", dID + sID, kl)
    o["K_auth"], o["K_dm"] = k_auth, k_dm
    # Section 4, M0: 0x10 || UEID || REQ_PERMS || n || hops.
    o["M0"] = (b"\x10" + ueID + bytes([inp["REQ_PERMS"]]) + bytes([len(hops)])
               + b"".join(hops))
    # Section 4, M1.
    m1 = b"\x11" + sb + dID + sID + dN + ueID + bytes([len(dInfo)]) + dInfo
    m1 += mic(suite, k_auth, m1)
    o["M1"] = m1
    # Section 4, M4; MTCsMIC also covers MTCdNonce || info_len(M1) || MTCdInfo.
    m4 = b"\x14" + sb + sID + dID + sN + ueID + bytes([len(sInfo)]) + sInfo
    m4 += mic(suite, k_auth, m4 + dN + bytes([len(dInfo)]) + dInfo)
    o["M4"] = m4
    dm = kdf(suite, k_dm, "mtcsec DMKey", dID + sID + dN + sN + ueID, kl)
    o["DMKey"] = dm
    # Section 5 frames.
    o["M2_frame"] = frame(0x12, inp["req_id"], m1)
    o["M3_frame"] = frame(0x13, inp["req_id"], m4 + dm)
    # Section 6 channel.
    kid = key_id_of(sInfo)
    o["K_d2u"] = kdf(suite, dm, "mtcsec d2u key", kid, kl)
    o["IV_d2u"] = kdf(suite, dm, "mtcsec d2u iv", kid, 13)
    o["K_u2d"] = kdf(suite, dm, "mtcsec u2d key", kid, kl)
    o["IV_u2d"] = kdf(suite, dm, "mtcsec u2d iv", kid, 13)
    o["record_d2u"] = record(suite, o["K_d2u"], o["IV_d2u"], kid,
                             inp["d2u_seq"], h("d2u_plaintext"))
    o["record_u2d"] = record(suite, o["K_u2d"], o["IV_u2d"], kid,
                             inp["u2d_seq"], h("u2d_plaintext"))
    # Section 7 revocation.
    rev = b"\x17" + sID + dID + kid + dN
    o["revocation"] = rev + mic(suite, k_auth, rev)
    return {k: v.hex() for k, v in o.items()}


FIELDS = ["K_auth", "K_dm", "M0", "M1", "M2_frame", "M3_frame", "M4", "DMKey",
          "K_d2u", "IV_d2u", "K_u2d", "IV_u2d", "record_d2u", "record_u2d",
          "revocation"]

ccm_selftest()
print("ok   CCM oracle matches RFC 3610 Packet Vector #1")

files = sorted(glob.glob(os.path.join(DIR, "*.json")))
if not files:
    die("no vectors in " + DIR)
nvec = nbad = 0
for path in files:
    name = os.path.basename(path)
    nvec += 1
    try:
        v = json.load(open(path))
        if v["suite"] not in SUITES:
            raise ValueError("unknown suite %r" % v["suite"])
        got = compute(v["suite"], v["inputs"])
    except (ValueError, KeyError, TypeError) as e:
        print("FAIL %s: cannot compute: %r" % (name, e))
        nbad += 1
        continue
    want = v.get("outputs", {})
    bad = []
    for f in FIELDS:
        if want.get(f) != got[f]:
            bad.append(f)
            print("  MISMATCH %s %s:\n    vector  %s\n    openssl %s"
                  % (name, f, want.get(f), got[f]))
    for f in sorted(set(want) - set(FIELDS)):
        bad.append(f)
        print("  MISMATCH %s %s: field not defined by PROTOCOL.md section 8"
              % (name, f))
    nbad += len(bad)
    print("%s %s (suite %d, %d fields)" % ("FAIL" if bad else "ok  ", name,
                                          v["suite"], len(FIELDS)))
print("%d vectors, %d mismatches" % (nvec, nbad))
sys.exit(1 if nbad else 0)
PY
