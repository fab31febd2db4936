/*
 * mtcsec-vectors: computes the test vector of PROTOCOL.md section 8.
 *
 * Reads one JSON object {"suite": n, "inputs": {...}} on standard input and
 * writes the same object with "outputs" added on standard output.  Every
 * value comes from the library's own builders, so a second implementation
 * that feeds its inputs here can compare every field.  No randomness is
 * involved: both nonces are inputs.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/codec.h>
#include <mtcsec/channel.h>

#define MAX_INPUT (1u << 20)
#define MAX_PLAINTEXT 4096

static const char *prog = "mtcsec-vectors";

static void usage(FILE *f) {
  fprintf(f,
          "usage: %s < input.json > vector.json\n"
          "\n"
          "Reads {\"suite\": 1|2|3, \"inputs\": {...}} (PROTOCOL.md section "
          "8) on\nstandard input and writes it back with \"outputs\" "
          "computed.\n"
          "Exit status: 0 on success, 1 on bad input, 2 on internal "
          "error.\n",
          prog);
}

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return 1;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

/* Reads a JSON string of hex digits into out (at most max bytes).  want is
 * the exact length required, or 0 for any.  name is for messages.
 * Returns 0 or prints an error. */
static int hex_item(const cJSON *it, const char *name, uint8_t *out, size_t max,
                    size_t want, size_t *outlen) {
  const char *s;
  size_t n, i;
  if (!cJSON_IsString(it) || it->valuestring == NULL) {
    return fail("inputs.%s: missing, or not a string of hex digits", name);
  }
  s = it->valuestring;
  n = strlen(s);
  if (n % 2 != 0) {
    return fail("inputs.%s: odd number of hex digits", name);
  }
  if (n / 2 > max || (want != 0 && n / 2 != want)) {
    if (want != 0) {
      return fail("inputs.%s: expected %zu hex digits (%zu bytes), got %zu",
                  name, 2 * want, want, n);
    }
    return fail("inputs.%s: longer than %zu bytes", name, max);
  }
  for (i = 0; i < n / 2; i++) {
    int hi = hexval((unsigned char)s[2 * i]);
    int lo = hexval((unsigned char)s[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return fail("inputs.%s: not a hex digit at position %zu", name, 2 * i);
    }
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  if (outlen != NULL) {
    *outlen = n / 2;
  }
  return 0;
}

static int get_hex(const cJSON *in, const char *name, uint8_t *out, size_t max,
                   size_t want, size_t *outlen) {
  return hex_item(cJSON_GetObjectItemCaseSensitive(in, name), name, out, max,
                  want, outlen);
}

static int get_uint(const cJSON *in, const char *name, double max,
                    uint32_t *out) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(in, name);
  double v;
  if (!cJSON_IsNumber(it)) {
    return fail("inputs.%s: missing, or not a number", name);
  }
  v = it->valuedouble;
  if (v < 0 || v > max || v != (double)(uint32_t)v) {
    return fail("inputs.%s: must be a whole number from 0 to %.0f", name, max);
  }
  *out = (uint32_t)v;
  return 0;
}

static int put_hex(cJSON *obj, const char *name, const uint8_t *b, size_t n) {
  static const char digits[] = "0123456789abcdef";
  char *s = malloc(2 * n + 1);
  size_t i;
  int ok;
  if (s == NULL) {
    return -1;
  }
  for (i = 0; i < n; i++) {
    s[2 * i] = digits[b[i] >> 4];
    s[2 * i + 1] = digits[b[i] & 15];
  }
  s[2 * n] = 0;
  ok = cJSON_AddStringToObject(obj, name, s) != NULL;
  free(s);
  return ok ? 0 : -1;
}

static char *read_all(FILE *f, size_t *len) {
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  if (buf == NULL) {
    return NULL;
  }
  for (;;) {
    size_t r;
    if (n + 1 >= cap) {
      char *nb;
      if (cap >= MAX_INPUT) {
        free(buf);
        errno = EFBIG;
        return NULL;
      }
      cap *= 2;
      nb = realloc(buf, cap);
      if (nb == NULL) {
        free(buf);
        return NULL;
      }
      buf = nb;
    }
    r = fread(buf + n, 1, cap - n - 1, f);
    n += r;
    if (r == 0) {
      break;
    }
  }
  if (ferror(f)) {
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

typedef struct vec_in {
  uint8_t suite;
  uint8_t mtcd_id[8], mtcs_id[8], ueid[8];
  uint8_t pskey[MTCSEC_MAX_KEY_LEN];
  uint8_t mtcd_nonce[8], mtcs_nonce[8];
  uint32_t req_perms, req_id, d2u_seq, u2d_seq;
  uint8_t hops[255 * 8];
  size_t nhops;
  uint8_t dinfo[255], sinfo[255];
  size_t dinfo_len, sinfo_len;
  uint8_t d2u_pt[MAX_PLAINTEXT], u2d_pt[MAX_PLAINTEXT];
  size_t d2u_len, u2d_len;
} vec_in;

static int parse_inputs(const cJSON *root, vec_in *v) {
  const cJSON *suite = cJSON_GetObjectItemCaseSensitive(root, "suite");
  const cJSON *in = cJSON_GetObjectItemCaseSensitive(root, "inputs");
  const cJSON *hops, *h;
  const mtcsec_suite_params *sp;
  mtcsec_dinfo di;
  mtcsec_sinfo si;

  if (!cJSON_IsNumber(suite) || suite->valuedouble < 1 ||
      suite->valuedouble > 255 ||
      suite->valuedouble != (double)(int)suite->valuedouble) {
    return fail("suite: missing, or not a number from 1 to 3");
  }
  v->suite = (uint8_t)suite->valueint;
  sp = mtcsec_suite_get(v->suite);
  if (sp == NULL) {
    return fail("suite: %u is not a suite of PROTOCOL.md section 2 (1, 2, 3)",
                (unsigned)v->suite);
  }
  if (!cJSON_IsObject(in)) {
    return fail("inputs: missing, or not an object");
  }
  if (get_hex(in, "MTCdID", v->mtcd_id, 8, 8, NULL) ||
      get_hex(in, "MTCsID", v->mtcs_id, 8, 8, NULL) ||
      get_hex(in, "UEID", v->ueid, 8, 8, NULL) ||
      get_hex(in, "PSKey", v->pskey, sizeof(v->pskey), sp->keylen, NULL) ||
      get_hex(in, "MTCdNonce", v->mtcd_nonce, 8, 8, NULL) ||
      get_hex(in, "MTCsNonce", v->mtcs_nonce, 8, 8, NULL) ||
      get_uint(in, "REQ_PERMS", 255, &v->req_perms) ||
      get_hex(in, "MTCdInfo", v->dinfo, 255, 0, &v->dinfo_len) ||
      get_hex(in, "MTCsInfo", v->sinfo, 255, 0, &v->sinfo_len) ||
      get_uint(in, "req_id", 4294967295.0, &v->req_id) ||
      get_uint(in, "d2u_seq", 4294967294.0, &v->d2u_seq) ||
      get_hex(in, "d2u_plaintext", v->d2u_pt, MAX_PLAINTEXT, 0, &v->d2u_len) ||
      get_uint(in, "u2d_seq", 4294967294.0, &v->u2d_seq) ||
      get_hex(in, "u2d_plaintext", v->u2d_pt, MAX_PLAINTEXT, 0, &v->u2d_len)) {
    return 1;
  }
  hops = cJSON_GetObjectItemCaseSensitive(in, "hops");
  if (!cJSON_IsArray(hops)) {
    return fail("inputs.hops: missing, or not an array (use [] for direct)");
  }
  v->nhops = 0;
  cJSON_ArrayForEach(h, hops) {
    if (v->nhops == 255) {
      return fail("inputs.hops: more than 255 relays");
    }
    if (hex_item(h, "hops[]", v->hops + 8 * v->nhops, 8, 8, NULL)) {
      return 1;
    }
    v->nhops++;
  }
  if (mtcsec_dinfo_decode(&di, v->dinfo, v->dinfo_len) != 0) {
    return fail("inputs.MTCdInfo: not valid MTCdInfo TLVs (section 3)");
  }
  if (mtcsec_sinfo_decode(&si, v->sinfo, v->sinfo_len) != 0) {
    return fail("inputs.MTCsInfo: not valid MTCsInfo TLVs (section 3: "
                "LIFETIME, PERMS and KEY_ID required)");
  }
  /* Section 8: a relayed run's MTCdInfo carries the PATH of its hops. */
  if ((v->nhops != 0) != ((di.present & MTCSEC_DINFO_PATH) != 0) ||
      (v->nhops != 0 &&
       (di.npath != v->nhops || memcmp(di.path, v->hops, 8 * v->nhops) != 0))) {
    return fail("inputs.MTCdInfo: its PATH TLV must list exactly the hops "
                "(and be absent when hops is empty)");
  }
  return 0;
}

/* Seals one record at sequence number seq (the channel starts at 0; the
 * vector asks for a given seq, so skip the counter ahead). */
static mtcsec_ssize seal_at(const mtcsec_crypto *c, uint8_t suite,
                            mtcsec_chan_end end, const uint8_t *dmkey,
                            uint16_t key_id, uint32_t seq, const uint8_t *pt,
                            size_t ptlen, uint8_t *out, size_t outlen) {
  mtcsec_chan ch;
  mtcsec_ssize n;
  int rv =
    mtcsec_chan_init(&ch, c, suite, end, dmkey, key_id, MTCSEC_TSTAMP_NEVER);
  if (rv != 0) {
    return rv;
  }
  ch.tx_seq = seq;
  n = mtcsec_chan_seal(&ch, out, outlen, pt, ptlen, 0);
  mtcsec_chan_deinit(&ch);
  return n;
}

typedef struct vec_out {
  uint8_t k_auth[MTCSEC_MAX_KEY_LEN], k_dm[MTCSEC_MAX_KEY_LEN];
  uint8_t dmkey[MTCSEC_MAX_KEY_LEN];
  uint8_t k_d2u[MTCSEC_MAX_KEY_LEN], k_u2d[MTCSEC_MAX_KEY_LEN];
  uint8_t iv_d2u[MTCSEC_IV_LEN], iv_u2d[MTCSEC_IV_LEN];
  uint8_t m0[11 + 255 * 8], m1[MTCSEC_HS_MAX_LEN], m4[MTCSEC_HS_MAX_LEN];
  uint8_t m2[MTCSEC_FRAME_HDR_LEN + MTCSEC_HS_MAX_LEN];
  uint8_t m3body[MTCSEC_M3_BODY_MAX_LEN];
  uint8_t m3[MTCSEC_FRAME_HDR_LEN + MTCSEC_M3_BODY_MAX_LEN];
  uint8_t rec_d2u[MAX_PLAINTEXT + 32], rec_u2d[MAX_PLAINTEXT + 32];
  uint8_t revoke[MTCSEC_REVOKE_FIXED_LEN + MTCSEC_MAX_MIC_LEN];
  size_t m0_len, m1_len, m4_len, m2_len, m3_len, d2u_len, u2d_len, rv_len;
} vec_out;

static int compute(const mtcsec_crypto *c, const vec_in *v, vec_out *o) {
  const mtcsec_suite_params *sp = mtcsec_suite_get(v->suite);
  mtcsec_m1_fields f1;
  mtcsec_m4_fields f4;
  mtcsec_sinfo si;
  mtcsec_ssize n;
  int rv;

  rv = mtcsec_derive_device_keys(c, v->suite, v->pskey, v->mtcd_id, v->mtcs_id,
                                 o->k_auth, o->k_dm);
  if (rv != 0) {
    return rv;
  }
  n = mtcsec_m0_encode(o->m0, sizeof(o->m0), v->ueid, (uint8_t)v->req_perms,
                       v->hops, (uint8_t)v->nhops);
  if (n < 0) {
    return (int)n;
  }
  o->m0_len = (size_t)n;

  f1.suite = v->suite;
  f1.mtcd_id = v->mtcd_id;
  f1.mtcs_id = v->mtcs_id;
  f1.nonce = v->mtcd_nonce;
  f1.ueid = v->ueid;
  f1.info = v->dinfo;
  f1.info_len = v->dinfo_len;
  n = mtcsec_m1_build(o->m1, sizeof(o->m1), c, o->k_auth, &f1);
  if (n < 0) {
    return (int)n;
  }
  o->m1_len = (size_t)n;
  n = mtcsec_frame_encode(o->m2, sizeof(o->m2), MTCSEC_MSG_M2, v->req_id, o->m1,
                          o->m1_len);
  if (n < 0) {
    return (int)n;
  }
  o->m2_len = (size_t)n;

  f4.suite = v->suite;
  f4.mtcs_id = v->mtcs_id;
  f4.mtcd_id = v->mtcd_id;
  f4.mtcs_nonce = v->mtcs_nonce;
  f4.ueid = v->ueid;
  f4.info = v->sinfo;
  f4.info_len = v->sinfo_len;
  f4.mtcd_nonce = v->mtcd_nonce;
  f4.m1_info = v->dinfo;
  f4.m1_info_len = v->dinfo_len;
  n = mtcsec_m4_build(o->m4, sizeof(o->m4), c, o->k_auth, &f4);
  if (n < 0) {
    return (int)n;
  }
  o->m4_len = (size_t)n;

  rv = mtcsec_derive_dmkey(c, v->suite, o->k_dm, v->mtcd_id, v->mtcs_id,
                           v->mtcd_nonce, v->mtcs_nonce, v->ueid, o->dmkey);
  if (rv != 0) {
    return rv;
  }
  memcpy(o->m3body, o->m4, o->m4_len);
  memcpy(o->m3body + o->m4_len, o->dmkey, sp->keylen);
  n = mtcsec_frame_encode(o->m3, sizeof(o->m3), MTCSEC_MSG_M3, v->req_id,
                          o->m3body, o->m4_len + sp->keylen);
  if (n < 0) {
    return (int)n;
  }
  o->m3_len = (size_t)n;

  /* KEY_ID for the channel and the revocation: the one in MTCsInfo. */
  rv = mtcsec_sinfo_decode(&si, v->sinfo, v->sinfo_len);
  if (rv != 0) {
    return rv;
  }
  rv = mtcsec_chan_derive(c, v->suite, o->dmkey, si.key_id, o->k_d2u, o->iv_d2u,
                          o->k_u2d, o->iv_u2d);
  if (rv != 0) {
    return rv;
  }
  n = seal_at(c, v->suite, MTCSEC_CHAN_DEVICE, o->dmkey, si.key_id, v->d2u_seq,
              v->d2u_pt, v->d2u_len, o->rec_d2u, sizeof(o->rec_d2u));
  if (n < 0) {
    return (int)n;
  }
  o->d2u_len = (size_t)n;
  n = seal_at(c, v->suite, MTCSEC_CHAN_UE, o->dmkey, si.key_id, v->u2d_seq,
              v->u2d_pt, v->u2d_len, o->rec_u2d, sizeof(o->rec_u2d));
  if (n < 0) {
    return (int)n;
  }
  o->u2d_len = (size_t)n;
  n = mtcsec_revoke_build(o->revoke, sizeof(o->revoke), c, v->suite, o->k_auth,
                          v->mtcs_id, v->mtcd_id, si.key_id, v->mtcd_nonce);
  if (n < 0) {
    return (int)n;
  }
  o->rv_len = (size_t)n;
  return 0;
}

static int emit(cJSON *root, const vec_in *v, const vec_out *o) {
  const mtcsec_suite_params *sp = mtcsec_suite_get(v->suite);
  cJSON *out;
  size_t k = sp->keylen;

  cJSON_DeleteItemFromObjectCaseSensitive(root, "outputs");
  out = cJSON_AddObjectToObject(root, "outputs");
  if (out == NULL || put_hex(out, "K_auth", o->k_auth, k) ||
      put_hex(out, "K_dm", o->k_dm, k) ||
      put_hex(out, "M0", o->m0, o->m0_len) ||
      put_hex(out, "M1", o->m1, o->m1_len) ||
      put_hex(out, "M2_frame", o->m2, o->m2_len) ||
      put_hex(out, "M3_frame", o->m3, o->m3_len) ||
      put_hex(out, "M4", o->m4, o->m4_len) ||
      put_hex(out, "DMKey", o->dmkey, k) ||
      put_hex(out, "K_d2u", o->k_d2u, k) ||
      put_hex(out, "IV_d2u", o->iv_d2u, MTCSEC_IV_LEN) ||
      put_hex(out, "K_u2d", o->k_u2d, k) ||
      put_hex(out, "IV_u2d", o->iv_u2d, MTCSEC_IV_LEN) ||
      put_hex(out, "record_d2u", o->rec_d2u, o->d2u_len) ||
      put_hex(out, "record_u2d", o->rec_u2d, o->u2d_len) ||
      put_hex(out, "revocation", o->revoke, o->rv_len)) {
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  mtcsec_crypto crypto;
  vec_in *v = NULL;
  vec_out *o = NULL;
  cJSON *root = NULL;
  char *text = NULL, *printed = NULL;
  size_t len = 0;
  int rv, status = 2;

  if (argc > 1) {
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
      usage(stdout);
      return 0;
    }
    usage(stderr);
    return 1;
  }
  if (mtcsec_crypto_openssl_new(&crypto) != 0) {
    fprintf(stderr, "%s: cannot set up the OpenSSL provider\n", prog);
    return 2;
  }
  v = calloc(1, sizeof(*v));
  o = calloc(1, sizeof(*o));
  text = read_all(stdin, &len);
  if (v == NULL || o == NULL) {
    fprintf(stderr, "%s: out of memory\n", prog);
    goto cleanup;
  }
  if (text == NULL) {
    fprintf(stderr, "%s: cannot read standard input: %s\n", prog,
            errno == EFBIG ? "input larger than 1 MiB" : strerror(errno));
    status = 1;
    goto cleanup;
  }
  root = cJSON_ParseWithLength(text, len);
  if (!cJSON_IsObject(root)) {
    const char *at = cJSON_GetErrorPtr();
    fprintf(stderr, "%s: standard input is not a JSON object%s%.20s\n", prog,
            at != NULL ? " near: " : "", at != NULL ? at : "");
    status = 1;
    goto cleanup;
  }
  if (parse_inputs(root, v) != 0) {
    status = 1;
    goto cleanup;
  }
  rv = compute(&crypto, v, o);
  if (rv != 0) {
    fprintf(stderr, "%s: computing the vector failed: %s\n", prog,
            mtcsec_strerror(rv));
    goto cleanup;
  }
  if (emit(root, v, o) != 0 || (printed = cJSON_Print(root)) == NULL) {
    fprintf(stderr, "%s: out of memory\n", prog);
    goto cleanup;
  }
  if (printf("%s\n", printed) < 0 || fflush(stdout) != 0) {
    fprintf(stderr, "%s: cannot write standard output\n", prog);
    goto cleanup;
  }
  status = 0;
cleanup:
  if (v != NULL) {
    mtcsec_zeroize(v, sizeof(*v));
  }
  if (o != NULL) {
    mtcsec_zeroize(o, sizeof(*o));
  }
  free(v);
  free(o);
  free(text);
  cJSON_free(printed);
  cJSON_Delete(root);
  mtcsec_crypto_openssl_del(&crypto);
  return status;
}
