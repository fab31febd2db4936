/*
 * Fuzz target: the relay (GW role, PROTOCOL.md sections 4, 6, 7) in both
 * directions.  A relay holds no key, so the checks are about lengths and
 * bytes: what it forwards is exactly what it got, except an M0 toward the
 * device, which grows by exactly 8 bytes (its own ID appended to the hop
 * list); it never writes past dest; every call counts once, as forwarded
 * under the message's type or as dropped.
 *
 * Input: a sequence of datagrams, each hdr(1) len(1) bytes(len).  hdr bit 0
 * is the direction (1: toward the UE), bit 1 relays in place (dest == in),
 * bits 2-7 choose the room in dest around the needed length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/codec.h>
#include <mtcsec/gateway.h>

#include "fuzz_common.h"

static const uint8_t GWID[MTCSEC_ID_LEN] = {0x67, 0, 0, 0, 0, 0, 0, 9};

static uint64_t total(const mtcsec_gw *gw) {
  uint64_t t = gw->dropped;
  size_t i;
  for (i = 0; i < 8; i++) {
    t += gw->forwarded[i];
  }
  return t;
}

/* What the relay must do with in, in direction dir: the forwarded length,
 * or a negative error when it must drop it (NOBUF aside). */
static mtcsec_ssize expected_len(mtcsec_gw_dir dir, const uint8_t *in,
                                 size_t n) {
  mtcsec_hs hs;
  mtcsec_m0 m0;
  if (n == 0) {
    return MTCSEC_ERR_MALFORMED;
  }
  if (dir == MTCSEC_GW_TO_DEVICE) {
    switch (in[0]) {
    case MTCSEC_MSG_M0:
      if (mtcsec_m0_decode(&m0, in, n) != 0 || m0.nhops == 255) {
        return MTCSEC_ERR_MALFORMED;
      }
      return (mtcsec_ssize)(n + MTCSEC_ID_LEN);
    case MTCSEC_MSG_M4:
      return mtcsec_hs_decode(&hs, MTCSEC_MSG_M4, in, n) == 0
               ? (mtcsec_ssize)n
               : MTCSEC_ERR_MALFORMED;
    case MTCSEC_MSG_RECORD:
      /* Header and the shortest tag of any suite. */
      return n >= 7 + 8 ? (mtcsec_ssize)n : MTCSEC_ERR_MALFORMED;
    case MTCSEC_MSG_REVOKE:
      return n >= 27 + 8 ? (mtcsec_ssize)n : MTCSEC_ERR_MALFORMED;
    default:
      return MTCSEC_ERR_UNEXPECTED;
    }
  }
  switch (in[0]) {
  case MTCSEC_MSG_M1:
    return mtcsec_hs_decode(&hs, MTCSEC_MSG_M1, in, n) == 0
             ? (mtcsec_ssize)n
             : MTCSEC_ERR_MALFORMED;
  case MTCSEC_MSG_RECORD:
    return n >= 7 + 8 ? (mtcsec_ssize)n : MTCSEC_ERR_MALFORMED;
  default:
    return MTCSEC_ERR_UNEXPECTED;
  }
}

static void relay_one(mtcsec_gw *gw, uint8_t hdr, const uint8_t *pkt,
                      size_t n) {
  mtcsec_gw_dir dir = (hdr & 1) ? MTCSEC_GW_TO_UE : MTCSEC_GW_TO_DEVICE;
  int in_place = (hdr & 2) != 0;
  mtcsec_ssize want = expected_len(dir, pkt, n);
  size_t need = want > 0 ? (size_t)want : n;
  size_t room, cap;
  uint8_t *buf, *in, *dest;
  uint64_t before = total(gw), fwd_before = 0, dropped_before = gw->dropped;
  mtcsec_ssize r;

  /* Room: mostly around the needed length, to hit the NOBUF edge. */
  room = (size_t)(hdr >> 2);
  if (room < 16) {
    room = need > room ? need - room : 0; /* short by 0..15 */
  } else if (room < 32) {
    room = need + (room - 16);
  } else {
    room = need;
  }
  if (n > 0 && (pkt[0] & 0x0f) < 8) {
    fwd_before = gw->forwarded[pkt[0] & 0x0f];
  }

  if (in_place) {
    /* One buffer: the datagram at its start, room bytes in all (at least
     * the datagram itself). */
    cap = room > n ? room : n;
    buf = malloc(cap != 0 ? cap : 1);
    FZ_CHECK(buf != NULL);
    if (n != 0) {
      memcpy(buf, pkt, n);
    }
    in = buf;
    dest = buf;
    room = cap;
  } else {
    buf = malloc(room != 0 ? room : 1);
    FZ_CHECK(buf != NULL);
    in = fz_dup(pkt, n);
    dest = buf;
  }

  r = mtcsec_gw_relay(gw, dir, room != 0 ? dest : NULL, room, in, n);

  FZ_CHECK(total(gw) == before + 1);
  if (want < 0) {
    FZ_CHECK(r == want);
    FZ_CHECK(gw->dropped == dropped_before + 1);
  } else if (room < (size_t)want) {
    FZ_CHECK(r == MTCSEC_ERR_NOBUF);
    FZ_CHECK(gw->dropped == dropped_before + 1);
  } else {
    FZ_CHECK(r == want && (size_t)r <= room);
    /* Only the types 0x10..0x17 are ever forwarded. */
    FZ_CHECK((pkt[0] & 0xf8) == 0x10);
    FZ_CHECK(gw->forwarded[pkt[0] & 0x0f] == fwd_before + 1);
    if (dir == MTCSEC_GW_TO_DEVICE && pkt[0] == MTCSEC_MSG_M0) {
      mtcsec_m0 a, b;
      /* Section 4: M0 grows by exactly 8, hop appended, rest intact. */
      FZ_CHECK((size_t)r == n + 8);
      FZ_CHECK(mtcsec_m0_decode(&a, pkt, n) == 0);
      FZ_CHECK(mtcsec_m0_decode(&b, dest, (size_t)r) == 0);
      FZ_CHECK(b.nhops == a.nhops + 1 && b.req_perms == a.req_perms);
      FZ_CHECK(memcmp(dest, pkt, 10) == 0);
      FZ_CHECK(memcmp(dest + 11, pkt + 11, n - 11) == 0);
      FZ_CHECK(memcmp(dest + n, GWID, 8) == 0);
    } else {
      FZ_CHECK((size_t)r == n && memcmp(dest, pkt, n) == 0);
    }
  }
  if (in != buf) {
    free(in);
  }
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mtcsec_gw gw;
  fz_in in;
  uint64_t calls = 0;

  FZ_CHECK(mtcsec_gw_init(&gw, GWID) == 0);
  FZ_CHECK(mtcsec_gw_init(NULL, GWID) == MTCSEC_ERR_INVALID_ARGUMENT);
  fz_init(&in, data, size);
  while (fz_more(&in)) {
    uint8_t hdr = fz_u8(&in);
    size_t len = fz_u8(&in), got;
    const uint8_t *pkt = fz_bytes(&in, len, &got);
    relay_one(&gw, hdr, pkt, got);
    calls++;
  }
  /* A direction that does not exist is refused and counted. */
  FZ_CHECK(mtcsec_gw_relay(&gw, (mtcsec_gw_dir)7, NULL, 0, data, size) ==
           (size == 0 ? MTCSEC_ERR_MALFORMED : MTCSEC_ERR_INVALID_ARGUMENT));
  FZ_CHECK(total(&gw) == calls + 1);
  return 0;
}
