/*
 * Fuzz target: the Gi frame decoder (apps/common/gi.h,
 * docs/CELLULAR-SYSTEM.md section 3), the bytes a GGSN (or mtcsd, for the
 * GGSN agent) sends over TLS.
 *
 * The input is a byte stream as it arrives on a connection.  Invariants:
 *  - gi_decode agrees with a model written here from section 3: length
 *    field 5..2048, known type, body 24/1/0 bytes for CTX_OPEN / CTX_RESULT
 *    / CTX_CLOSE; "need more" (0) exactly when the frame is incomplete and
 *    its length field (if present) is in range;
 *  - a decoded frame never extends past the input, and every shorter prefix
 *    of it says "need more" (or malformed, when the length field is out of
 *    range: then as soon as two bytes are there);
 *  - gi_encode of the decoded fields gives back the same bytes, and with a
 *    buffer one byte too small returns NOBUF without writing;
 *  - decoding a stream frame by frame consumes at most the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "gi.h"

/* The model: the expected gi_decode return for in[0..n). */
static mtcsec_ssize model(const uint8_t *in, size_t n) {
  size_t len, body;
  if (n < 2) {
    return 0;
  }
  len = ((size_t)in[0] << 8) | in[1];
  if (len < 5 || len > 2048) {
    return MTCSEC_ERR_MALFORMED;
  }
  if (n < 2 + len) {
    return 0;
  }
  body = len - 5;
  switch (in[2]) {
  case 0x01:
    return body == 24 ? (mtcsec_ssize)(2 + len) : MTCSEC_ERR_MALFORMED;
  case 0x02:
    return body == 1 ? (mtcsec_ssize)(2 + len) : MTCSEC_ERR_MALFORMED;
  case 0x03:
    return body == 0 ? (mtcsec_ssize)(2 + len) : MTCSEC_ERR_MALFORMED;
  case 0x10:
  case 0x11:
    return (mtcsec_ssize)(2 + len);
  default:
    return MTCSEC_ERR_MALFORMED;
  }
}

/* Checks one decode at in[0..n); returns its result. */
static mtcsec_ssize check_one(const uint8_t *in, size_t n) {
  gi_frame f, g;
  mtcsec_ssize r, e;
  size_t cut;

  memset(&f, 0x5a, sizeof(f));
  memset(&g, 0x5a, sizeof(g));
  r = gi_decode(&f, in, n);
  e = model(in, n);
  FZ_CHECK(r == e);
  if (r <= 0) {
    FZ_CHECK(memcmp(&f, &g, sizeof(f)) == 0); /* not written */
    return r;
  }
  FZ_CHECK((size_t)r <= n);
  FZ_CHECK(f.type == in[2]);
  FZ_CHECK(f.bodylen == (size_t)r - GI_HDR_LEN);
  FZ_CHECK(f.bodylen == 0 ? f.body == NULL : f.body == in + GI_HDR_LEN);
  FZ_CHECK(f.ctx == (((uint32_t)in[3] << 24) | ((uint32_t)in[4] << 16) |
                     ((uint32_t)in[5] << 8) | in[6]));
  /* Every shorter prefix: need more. */
  for (cut = 0; cut < (size_t)r; cut++) {
    FZ_CHECK(gi_decode(&g, in, cut) == 0);
  }
  /* Re-encoding gives the same bytes; one byte less is NOBUF, untouched. */
  {
    uint8_t *out = malloc((size_t)r);
    uint8_t *small = (size_t)r > 1 ? malloc((size_t)r - 1) : NULL;
    FZ_CHECK(out != NULL);
    FZ_CHECK(gi_encode(f.type, f.ctx, f.body, f.bodylen, out, (size_t)r) == r);
    FZ_CHECK(memcmp(out, in, (size_t)r) == 0);
    if (small != NULL) {
      memset(small, 0xee, (size_t)r - 1);
      FZ_CHECK(gi_encode(f.type, f.ctx, f.body, f.bodylen, small,
                         (size_t)r - 1) == MTCSEC_ERR_NOBUF);
      for (cut = 0; cut < (size_t)r - 1; cut++) {
        FZ_CHECK(small[cut] == 0xee);
      }
    }
    free(small);
    free(out);
  }
  return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* An exact-size copy: any read past the end is an ASan report. */
  uint8_t *buf = malloc(size > 0 ? size : 1);
  size_t off = 0;
  if (buf == NULL) {
    return 0;
  }
  if (size > 0) {
    memcpy(buf, data, size);
  }
  /* The stream, frame by frame, as a connection reads it. */
  for (;;) {
    mtcsec_ssize r = check_one(buf + off, size - off);
    if (r <= 0) {
      break;
    }
    off += (size_t)r;
    FZ_CHECK(off <= size);
  }
  free(buf);
  return 0;
}
