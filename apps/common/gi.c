/*
 * Gi frames (docs/CELLULAR-SYSTEM.md section 3; apps/common/gi.h).
 */
#include <string.h>

#include "gi.h"

/* Expected body length of a fixed-size type, -1 for any length, -2 for a
 * type that does not exist. */
static long gi_body_rule(uint8_t type) {
  switch (type) {
  case GI_CTX_OPEN:
    return GI_CTX_OPEN_LEN;
  case GI_CTX_RESULT:
    return GI_CTX_RESULT_LEN;
  case GI_CTX_CLOSE:
    return GI_CTX_CLOSE_LEN;
  case GI_UPLINK:
  case GI_DOWNLINK:
    return -1;
  default:
    return -2;
  }
}

static int gi_body_ok(uint8_t type, size_t bodylen) {
  long rule = gi_body_rule(type);
  if (rule == -2 || bodylen > GI_BODY_MAX) {
    return 0;
  }
  return rule == -1 || (size_t)rule == bodylen;
}

mtcsec_ssize gi_encode(uint8_t type, uint32_t ctx, const uint8_t *body,
                       size_t bodylen, uint8_t *out, size_t outlen) {
  size_t len;
  if (out == NULL || (body == NULL && bodylen > 0) ||
      !gi_body_ok(type, bodylen)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (outlen < GI_HDR_LEN + bodylen) {
    return MTCSEC_ERR_NOBUF;
  }
  len = GI_HDR_MIN + bodylen;
  out[0] = (uint8_t)(len >> 8);
  out[1] = (uint8_t)len;
  out[2] = type;
  out[3] = (uint8_t)(ctx >> 24);
  out[4] = (uint8_t)(ctx >> 16);
  out[5] = (uint8_t)(ctx >> 8);
  out[6] = (uint8_t)ctx;
  if (bodylen > 0) {
    memmove(out + GI_HDR_LEN, body, bodylen);
  }
  return (mtcsec_ssize)(GI_HDR_LEN + bodylen);
}

mtcsec_ssize gi_decode(gi_frame *f, const uint8_t *in, size_t inlen) {
  size_t len, bodylen;
  uint8_t type;

  if (f == NULL || (in == NULL && inlen > 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (inlen < 2) {
    return 0;
  }
  len = ((size_t)in[0] << 8) | in[1];
  if (len < GI_HDR_MIN || len > GI_LEN_MAX) {
    return MTCSEC_ERR_MALFORMED;
  }
  if (inlen - 2 < len) {
    return 0;
  }
  type = in[2];
  bodylen = len - GI_HDR_MIN;
  if (!gi_body_ok(type, bodylen)) {
    return MTCSEC_ERR_MALFORMED;
  }
  f->type = type;
  f->ctx = ((uint32_t)in[3] << 24) | ((uint32_t)in[4] << 16) |
           ((uint32_t)in[5] << 8) | in[6];
  f->body = bodylen > 0 ? in + GI_HDR_LEN : NULL;
  f->bodylen = bodylen;
  return (mtcsec_ssize)(2 + len);
}

const char *gi_type_name(uint8_t type) {
  switch (type) {
  case GI_CTX_OPEN:
    return "CTX_OPEN";
  case GI_CTX_RESULT:
    return "CTX_RESULT";
  case GI_CTX_CLOSE:
    return "CTX_CLOSE";
  case GI_UPLINK:
    return "UPLINK";
  case GI_DOWNLINK:
    return "DOWNLINK";
  default:
    return "UNKNOWN";
  }
}

const char *gi_status_name(uint8_t status) {
  switch (status) {
  case GI_STATUS_OK:
    return "ok";
  case GI_STATUS_NOT_AUTHORIZED:
    return "not_authorized";
  case GI_STATUS_UNKNOWN_VECTOR:
    return "unknown_vector";
  case GI_STATUS_HP_FAILED:
    return "home_proxy_failed";
  case GI_STATUS_TOO_MANY:
    return "too_many_contexts";
  case GI_STATUS_MALFORMED:
    return "malformed";
  case GI_STATUS_STALE_RAND:
    return "stale_rand";
  case GI_STATUS_INTERNAL:
    return "internal";
  default:
    return "unknown";
  }
}
