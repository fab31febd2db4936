#!/usr/bin/env python3
"""Test helpers of the cellular end-to-end tests (tests/celle2e/*.sh).

Subcommands:
  relay    a UDP relay put between two programs (MS <-> SGSN radio, SGSN <->
           GGSN GTP) that records every datagram and, on request, sends a
           datagram of the test's choosing from the relay's own sockets, so
           that the receiver takes it for its usual peer (injection, replay)
  ctl      sends one such request to a running relay
  contains counts the recorded datagrams that contain a string (or bytes)
  kup      one K_UP request (docs/CELLULAR-HOME-PROXY.md) over TLS 1.3, with
           or without a client certificate; prints the HTTP status only
  gtp-create  a hand-made CREATE_PDP_REQUEST (docs/CELLULAR-SYSTEM.md 2)
           with a RAND of the test's choosing; prints the GGSN's cause
  vty      commands on an Osmocom VTY (telnet), e.g. osmo-hlr's

Only the Python standard library is used.  Keys are never printed.
"""
import argparse
import json
import os
import random
import selectors
import signal
import socket
import ssl
import struct
import sys
import time


def split_addr(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"celltool: bad address '{text}' (HOST:PORT)")
    return host.strip("[]"), int(port)


def fmt_addr(addr):
    return f"{addr[0]}:{addr[1]}"


# ------------------------------------------------------------------ relay
def cmd_relay(a):
    """Client side on --listen, server side toward --to.  Datagrams from the
    client go to the server from one socket (so the server always sees one
    peer address); answers go back to the last client address.  Every
    datagram is appended to --capture as 'up HEX' or 'down HEX'."""
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(split_addr(a.listen))
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.bind(("127.0.0.1", 0))
    ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ctl.bind(("127.0.0.1", 0))
    server = split_addr(a.to)
    client = None
    cap = open(a.capture, "a", buffering=1)

    def record(direction, data):
        cap.write(f"{direction} {data.hex()}\n")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    tmp = a.ready + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{fmt_addr(front.getsockname())} {ctl.getsockname()[1]}\n")
    os.rename(tmp, a.ready)

    sel = selectors.DefaultSelector()
    for s in (front, back, ctl):
        sel.register(s, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            data, peer = s.recvfrom(65535)
            if s is front:
                client = peer
                record("up", data)
                back.sendto(data, server)
            elif s is back:
                if peer != server:
                    continue
                record("down", data)
                if client is not None:
                    front.sendto(data, client)
            else:
                reply = b"ok"
                try:
                    direction, hexdata = data.decode().split()
                    payload = bytes.fromhex(hexdata)
                    if direction == "up":
                        record("inject-up", payload)
                        back.sendto(payload, server)
                    elif direction == "down" and client is not None:
                        record("inject-down", payload)
                        front.sendto(payload, client)
                    else:
                        reply = b"error: no client yet or bad direction"
                except ValueError:
                    reply = b"error: expected 'up|down HEX'"
                ctl.sendto(reply, peer)


def cmd_ctl(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(f"{a.direction} {a.hex}".encode(), ("127.0.0.1", a.port))
    reply = s.recv(256).decode()
    if reply != "ok":
        print(f"celltool ctl: {reply}", file=sys.stderr)
        return 1
    return 0


def cmd_contains(a):
    needle = bytes.fromhex(a.text) if a.hex else a.text.encode()
    n = 0
    with open(a.capture) as f:
        for line in f:
            _, _, hexdata = line.strip().partition(" ")
            if needle in bytes.fromhex(hexdata):
                n += 1
    print(n)
    return 0


# -------------------------------------------------------------------- kup
def cmd_kup(a):
    """POST /v1/kup; prints 'status=N error=CODE' (never the key itself)
    or 'tls_error=...' (exit 1) when TLS refuses the connection."""
    host, port = split_addr(a.addr)
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if a.cert:
        ctx.load_cert_chain(a.cert, a.key)
    body = f'{{"imsi": "{a.imsi}", "rand": "{a.rand}"}}'.encode()
    head = (f"POST /v1/kup HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    resp = b""
    try:
        with socket.create_connection((host, port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as s:
                s.sendall(head.encode() + body)
                while True:
                    d = s.recv(4096)
                    if not d:
                        break
                    resp += d
    except (ssl.SSLError, ConnectionError, OSError) as e:
        if not resp:
            print(f"tls_error={type(e).__name__}: {e}")
            return 1
    line = resp.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        print(f"bad_response={line!r}")
        return 1
    status = int(parts[1])
    payload = resp.partition(b"\r\n\r\n")[2].decode(errors="replace")
    if status == 200:
        kup = json.loads(payload).get("kup", "")
        print(f"status=200 kup_hex_digits={len(kup)}")
    else:
        print(f"status={status} body={payload}")
    return 0


# ------------------------------------------------------------- gtp-create
def tbcd(imsi):
    digits = [int(c) for c in imsi] + [0xF] * (16 - len(imsi))
    return bytes(digits[i] | digits[i + 1] << 4 for i in range(0, 16, 2))


def plmn_octets(mccmnc):
    d = [int(c) for c in mccmnc]
    mnc3 = d[5] if len(d) == 6 else 0xF
    return bytes([d[1] << 4 | d[0], mnc3 << 4 | d[2], d[4] << 4 | d[3]])


def cmd_gtp_create(a):
    rand = bytes.fromhex(a.rand)
    container = plmn_octets(a.plmn) + b"\x01" + rand
    pco = b"\x80" + b"\xff\x00" + bytes([len(container)]) + container
    seq = random.randint(0, 0xFFFF)
    teid = random.randint(1, 0xFFFFFFFF)
    body = tbcd(a.imsi) + bytes([5]) + struct.pack(">I", teid) + \
        bytes([len(pco)]) + pco
    msg = b"\x47\x10" + struct.pack(">H", seq) + body
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    deadline = time.monotonic() + a.wait
    s.sendto(msg, split_addr(a.to))
    while time.monotonic() < deadline:
        try:
            d = s.recv(2048)
        except socket.timeout:
            continue
        if len(d) == 9 and d[:2] == b"\x47\x11" and \
                struct.unpack(">H", d[2:4])[0] == seq:
            print(f"cause=0x{d[4]:02x} teid={struct.unpack('>I', d[5:9])[0]}")
            return 0
    print("no_answer")
    return 1


# -------------------------------------------------------------------- vty
def cmd_vty(a):
    """Runs each command at the VTY's enable node; fails on an error line."""
    host, port = split_addr(a.addr)
    s = socket.create_connection((host, port), timeout=10)

    def until_prompt():
        buf = b""
        while not (buf.rstrip().endswith(b">") or buf.rstrip().endswith(b"#")):
            d = s.recv(4096)
            if not d:
                raise SystemExit("celltool vty: connection closed")
            buf += d
        return buf.replace(b"\r", b"").decode(errors="replace")

    until_prompt()
    rc = 0
    for cmd in ["enable"] + a.commands:
        s.sendall(cmd.encode() + b"\n")
        out = until_prompt()
        lines = [ln for ln in out.split("\n")[1:-1] if ln.strip()]
        for ln in lines:
            print(ln)
            if ln.startswith("% ") and not ln.startswith("% Created"):
                rc = 1
    s.close()
    return rc


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("relay")
    r.add_argument("--listen", default="127.0.0.1:0")
    r.add_argument("--to", required=True)
    r.add_argument("--capture", required=True)
    r.add_argument("--ready", required=True)
    c = sub.add_parser("ctl")
    c.add_argument("port", type=int)
    c.add_argument("direction", choices=["up", "down"])
    c.add_argument("hex")
    n = sub.add_parser("contains")
    n.add_argument("capture")
    n.add_argument("text")
    n.add_argument("--hex", action="store_true",
                   help="TEXT is hex digits of the bytes to look for")
    k = sub.add_parser("kup")
    k.add_argument("--addr", required=True)
    k.add_argument("--ca", required=True)
    k.add_argument("--cert")
    k.add_argument("--key")
    k.add_argument("--imsi", required=True)
    k.add_argument("--rand", required=True)
    g = sub.add_parser("gtp-create")
    g.add_argument("--to", required=True)
    g.add_argument("--imsi", required=True)
    g.add_argument("--rand", required=True)
    g.add_argument("--plmn", default="00101")
    g.add_argument("--wait", type=float, default=15)
    v = sub.add_parser("vty")
    v.add_argument("--addr", required=True)
    v.add_argument("commands", nargs="+")
    a = p.parse_args()
    fn = {"relay": cmd_relay, "ctl": cmd_ctl, "contains": cmd_contains,
          "kup": cmd_kup, "gtp-create": cmd_gtp_create, "vty": cmd_vty}
    return fn[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
