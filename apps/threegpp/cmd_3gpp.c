/*
 * mtcsec-3gpp: reads ONE JSON object shaped like an entry of the vector
 * files (tests/cellular/vectors/<kind>.json), computes every output field
 * with the mtcsec cellular primitives and writes the object back with those
 * fields filled in (fields already present are replaced in place, so a full
 * vector entry comes back unchanged when it is right).
 *
 * Hex strings are case-insensitive.  Numbers that the vector files write as
 * hex strings ("count", "bearer", "fc") may also be given as JSON numbers.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>
#include <mtcsec/cellular.h>

#include "cmd_3gpp.h"

/* Largest input document and largest hex field we accept. */
#define T3_MAX_INPUT (1024 * 1024)
#define T3_MAX_BYTES 4096

enum { T3_OK = 0, T3_BAD = 1, T3_USAGE = 2 };

typedef struct t3_ctx {
  const char *prog; /* for messages */
  const char *kind;
  cJSON *obj;
} t3_ctx;

typedef int (*t3_fn)(t3_ctx *t);

typedef struct t3_cmd {
  const char *name;
  t3_fn fn;
  const char *in;  /* input fields */
  const char *out; /* output fields */
} t3_cmd;

#if defined(__GNUC__)
#  define T3_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define T3_PRINTF(a, b)
#endif

static void t3_err(const t3_ctx *t, const char *fmt, ...) T3_PRINTF(2, 3);

/* "prog: kind: message" on stderr. */
static void t3_err(const t3_ctx *t, const char *fmt, ...) {
  va_list ap;

  fprintf(stderr, "%s: %s: ", t->prog, t->kind);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

static int hexval(char c) {
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

/* Parses hex string s into out (at most max bytes); -1 on bad input. */
static long hex_decode(const char *s, uint8_t *out, size_t max) {
  size_t n = strlen(s), i;
  int hi, lo;

  if (n % 2 != 0 || n / 2 > max) {
    return -1;
  }
  for (i = 0; i < n / 2; i++) {
    hi = hexval(s[2 * i]);
    lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return -1;
    }
    out[i] = (uint8_t)((hi << 4) | lo);
  }
  return (long)(n / 2);
}

static void hex_encode(char *out, const uint8_t *in, size_t n) {
  static const char digits[] = "0123456789abcdef";
  size_t i;

  for (i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 0x0f];
  }
  out[2 * n] = '\0';
}

/* Replaces (in place) or adds field name. Returns 0 or -1 (no memory). */
static int t3_set(t3_ctx *t, const char *name, cJSON *item) {
  if (item == NULL) {
    return -1;
  }
  if (cJSON_GetObjectItemCaseSensitive(t->obj, name) != NULL) {
    return cJSON_ReplaceItemInObjectCaseSensitive(t->obj, name, item) ? 0 : -1;
  }
  return cJSON_AddItemToObject(t->obj, name, item) ? 0 : -1;
}

static int t3_set_hex(t3_ctx *t, const char *name, const uint8_t *v, size_t n) {
  char buf[2 * T3_MAX_BYTES + 1];

  if (n > T3_MAX_BYTES) {
    return -1;
  }
  hex_encode(buf, v, n);
  return t3_set(t, name, cJSON_CreateString(buf));
}

static cJSON *t3_field(t3_ctx *t, const char *name) {
  cJSON *it = cJSON_GetObjectItemCaseSensitive(t->obj, name);

  if (it == NULL || cJSON_IsNull(it)) {
    return NULL;
  }
  return it;
}

/*
 * Reads hex field name.  want > 0: exactly want bytes.  Otherwise up to max
 * bytes, the count stored in *len.  Returns 0, 1 (absent and !required) or
 * -1 (error reported).
 */
static int t3_hex(t3_ctx *t, const char *name, int required, uint8_t *out,
                  size_t want, size_t max, size_t *len) {
  cJSON *it = t3_field(t, name);
  char wantbuf[32];
  long n;

  if (it == NULL) {
    if (required) {
      t3_err(t, "missing field \"%s\"", name);
      return -1;
    }
    return 1;
  }
  if (!cJSON_IsString(it) || it->valuestring == NULL) {
    t3_err(t, "field \"%s\" must be a hex string", name);
    return -1;
  }
  n = hex_decode(it->valuestring, out, want > 0 ? want : max);
  if (n < 0 || (want > 0 && (size_t)n != want)) {
    if (want > 0) {
      snprintf(wantbuf, sizeof(wantbuf), "%zu", 2 * want);
    } else {
      snprintf(wantbuf, sizeof(wantbuf), "at most %zu", 2 * max);
    }
    t3_err(t, "field \"%s\" must hold %s hex digits", name, wantbuf);
    return -1;
  }
  if (len != NULL) {
    *len = (size_t)n;
  }
  return 0;
}

/* Reads an unsigned field: a JSON number, or (if hex_ok) a hex string. */
static int t3_uint(t3_ctx *t, const char *name, int hex_ok, uint64_t max,
                   uint64_t *v) {
  cJSON *it = t3_field(t, name);
  const char *s;
  char *end;
  unsigned long long x;

  if (it == NULL) {
    t3_err(t, "missing field \"%s\"", name);
    return -1;
  }
  if (cJSON_IsNumber(it)) {
    if (!(it->valuedouble >= 0) || it->valuedouble > (double)max ||
        floor(it->valuedouble) != it->valuedouble) {
      t3_err(t, "field \"%s\" is out of range", name);
      return -1;
    }
    *v = (uint64_t)it->valuedouble;
    return 0;
  }
  if (hex_ok && cJSON_IsString(it) && it->valuestring != NULL) {
    s = it->valuestring;
    errno = 0;
    x = strtoull(s, &end, 16);
    if (*s == '\0' || *end != '\0' || *s == '-' || *s == '+' || errno != 0 ||
        x > max || strlen(s) > 16) {
      t3_err(t, "field \"%s\" must be a hex number in range", name);
      return -1;
    }
    *v = (uint64_t)x;
    return 0;
  }
  t3_err(t, "field \"%s\" must be %s", name,
         hex_ok ? "a number or a hex string" : "a number");
  return -1;
}

static int t3_nomem(t3_ctx *t) {
  t3_err(t, "out of memory");
  return T3_BAD;
}

static int t3_crypto(t3_ctx *t, mtcsec_crypto *crypto) {
  int rv = mtcsec_crypto_openssl_new(crypto);

  if (rv != 0) {
    t3_err(t, "crypto provider: %s", mtcsec_strerror(rv));
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------- milenage */

static int t3_milenage(t3_ctx *t) {
  uint8_t k[16], op[16], opc[16], rnd[16], sqnb[6], amf[2];
  mtcsec_milenage_out o;
  int has_op, has_opc, rv = T3_BAD;

  if (t3_hex(t, "K", 1, k, 16, 0, NULL) < 0 ||
      t3_hex(t, "RAND", 1, rnd, 16, 0, NULL) < 0 ||
      t3_hex(t, "SQN", 1, sqnb, 6, 0, NULL) < 0 ||
      t3_hex(t, "AMF", 1, amf, 2, 0, NULL) < 0) {
    return T3_BAD;
  }
  has_op = t3_hex(t, "OP", 0, op, 16, 0, NULL);
  has_opc = t3_hex(t, "OPc", 0, opc, 16, 0, NULL);
  if (has_op < 0 || has_opc < 0) {
    return T3_BAD;
  }
  if (has_op != 0 && has_opc != 0) {
    t3_err(t, "missing field \"OP\" or \"OPc\"");
    return T3_BAD;
  }
  /* With both, OP is used and the given OPc must match the derived one. */
  if (mtcsec_milenage(k, has_op == 0 ? op : NULL, has_op == 0 ? NULL : opc, rnd,
                      mtcsec_sqn_load(sqnb), amf, &o) != 0) {
    t3_err(t, "MILENAGE failed (libosmocore)");
    goto cleanup;
  }
  if (has_op == 0 && has_opc == 0 && memcmp(opc, o.opc, 16) != 0) {
    t3_err(t, "\"OPc\" does not match the OPc derived from \"OP\"");
    goto cleanup;
  }
  if (t3_set_hex(t, "OPc", o.opc, 16) != 0 ||
      t3_set_hex(t, "f1", o.f1, 8) != 0 ||
      t3_set_hex(t, "f1star", o.f1star, 8) != 0 ||
      t3_set_hex(t, "f2", o.f2, 8) != 0 || t3_set_hex(t, "f3", o.f3, 16) != 0 ||
      t3_set_hex(t, "f4", o.f4, 16) != 0 || t3_set_hex(t, "f5", o.f5, 6) != 0 ||
      t3_set_hex(t, "f5star", o.f5star, 6) != 0) {
    rv = t3_nomem(t);
    goto cleanup;
  }
  rv = T3_OK;

cleanup:
  mtcsec_zeroize(&o, sizeof(o));
  mtcsec_zeroize(k, sizeof(k));
  mtcsec_zeroize(op, sizeof(op));
  mtcsec_zeroize(opc, sizeof(opc));
  return rv;
}

/* ------------------------------------------------------- eia2 and eea2 */

typedef struct t3_bits {
  uint8_t key[16];
  uint64_t count, bearer, direction, bitlen;
  uint8_t data[T3_MAX_BYTES];
  size_t datalen;
} t3_bits;

static int t3_bits_read(t3_ctx *t, t3_bits *b, const char *datafield) {
  size_t need;

  if (t3_hex(t, "key", 1, b->key, 16, 0, NULL) < 0 ||
      t3_uint(t, "count", 1, UINT32_MAX, &b->count) < 0 ||
      t3_uint(t, "bearer", 1, MTCSEC_3GPP_BEARER_MAX, &b->bearer) < 0 ||
      t3_uint(t, "direction", 0, 1, &b->direction) < 0 ||
      t3_uint(t, "length_bits", 0, 8 * (uint64_t)T3_MAX_BYTES, &b->bitlen) <
        0 ||
      t3_hex(t, datafield, 1, b->data, 0, sizeof(b->data), &b->datalen) < 0) {
    return -1;
  }
  need = (size_t)(b->bitlen / 8 + (b->bitlen % 8 != 0));
  if (b->datalen != need) {
    char got[24], exp[24];
    snprintf(got, sizeof(got), "%zu", b->datalen);
    snprintf(exp, sizeof(exp), "%zu", need);
    t3_err(t, "data holds %s bytes, length_bits needs %s", got, exp);
    return -1;
  }
  return 0;
}

static int t3_eia2(t3_ctx *t) {
  static t3_bits b;
  mtcsec_crypto crypto = {NULL, NULL};
  uint8_t mac[4];
  int rv = T3_BAD, r;

  if (t3_bits_read(t, &b, "message") < 0 || t3_crypto(t, &crypto) < 0) {
    goto cleanup;
  }
  r = mtcsec_eia2(&crypto, b.key, (uint32_t)b.count, (uint8_t)b.bearer,
                  (uint8_t)b.direction, b.data, (size_t)b.bitlen, mac);
  if (r != 0) {
    t3_err(t, "128-EIA2 failed: %s", mtcsec_strerror(r));
    goto cleanup;
  }
  rv = t3_set_hex(t, "mac_i", mac, sizeof(mac)) == 0 ? T3_OK : t3_nomem(t);

cleanup:
  mtcsec_crypto_openssl_del(&crypto);
  mtcsec_zeroize(&b, sizeof(b));
  return rv;
}

static int t3_eea2(t3_ctx *t) {
  static t3_bits b;
  static uint8_t out[T3_MAX_BYTES];
  mtcsec_crypto crypto = {NULL, NULL};
  int rv = T3_BAD, r;

  if (t3_bits_read(t, &b, "plaintext") < 0 || t3_crypto(t, &crypto) < 0) {
    goto cleanup;
  }
  r = mtcsec_eea2(&crypto, b.key, (uint32_t)b.count, (uint8_t)b.bearer,
                  (uint8_t)b.direction, b.data, (size_t)b.bitlen, out);
  if (r != 0) {
    t3_err(t, "128-EEA2 failed: %s", mtcsec_strerror(r));
    goto cleanup;
  }
  rv = t3_set_hex(t, "ciphertext", out, b.datalen) == 0 ? T3_OK : t3_nomem(t);

cleanup:
  mtcsec_crypto_openssl_del(&crypto);
  mtcsec_zeroize(&b, sizeof(b));
  return rv;
}

/* -------------------------------------------------------------- llc-fcs */

static int t3_llc_fcs(t3_ctx *t) {
  static uint8_t frame[T3_MAX_BYTES];
  uint8_t octets[3], value[3];
  size_t len;
  mtcsec_ssize cover;
  uint32_t calc = 0;
  int ok;

  if (t3_hex(t, "frame", 1, frame, 0, sizeof(frame), &len) < 0) {
    return T3_BAD;
  }
  cover = mtcsec_llc_fcs_coverage(frame, len);
  if (cover < 0) {
    t3_err(t, "not an LLC frame with FCS (%s)", mtcsec_strerror((int)cover));
    return T3_BAD;
  }
  ok = mtcsec_llc_fcs_verify(frame, len, &calc) == 0;
  /* On the wire: least significant octet first; "fcs_value" is the number. */
  octets[0] = (uint8_t)calc;
  octets[1] = (uint8_t)(calc >> 8);
  octets[2] = (uint8_t)(calc >> 16);
  value[0] = octets[2];
  value[1] = octets[1];
  value[2] = octets[0];
  if (t3_set(t, "frame_len", cJSON_CreateNumber((double)len)) != 0 ||
      t3_set_hex(t, "fcs_octets", octets, 3) != 0 ||
      t3_set_hex(t, "fcs_value", value, 3) != 0 ||
      t3_set(t, "fcs_covered_octets", cJSON_CreateNumber((double)cover)) != 0 ||
      t3_set(t, "fcs_ok", cJSON_CreateBool(ok)) != 0) {
    return t3_nomem(t);
  }
  return T3_OK;
}

/* ------------------------------------------------------------------ kdf */

static int t3_kdf(t3_ctx *t) {
  static uint8_t key[T3_MAX_BYTES];
  static uint8_t pbuf[MTCSEC_KDF_33220_MAX_PARAMS][T3_MAX_BYTES / 8];
  static uint8_t s[1 + MTCSEC_KDF_33220_MAX_PARAMS * (T3_MAX_BYTES / 8 + 2)];
  mtcsec_iov params[MTCSEC_KDF_33220_MAX_PARAMS];
  mtcsec_crypto crypto = {NULL, NULL};
  uint8_t out[MTCSEC_KDF_33220_LEN];
  size_t keylen, np = 0, slen = 0;
  uint64_t fc;
  long n;
  cJSON *arr, *it;
  int rv = T3_BAD, r;

  if (t3_hex(t, "key", 1, key, 0, sizeof(key), &keylen) < 0 ||
      t3_uint(t, "fc", 1, 0xff, &fc) < 0) {
    goto cleanup;
  }
  if (keylen == 0) {
    t3_err(t, "field \"%s\" is empty", "key");
    goto cleanup;
  }
  arr = t3_field(t, "params");
  if (arr == NULL || !cJSON_IsArray(arr)) {
    t3_err(t, "field \"%s\" must be an array of hex strings", "params");
    goto cleanup;
  }
  s[slen++] = (uint8_t)fc;
  cJSON_ArrayForEach(it, arr) {
    if (np == MTCSEC_KDF_33220_MAX_PARAMS || !cJSON_IsString(it) ||
        it->valuestring == NULL ||
        (n = hex_decode(it->valuestring, pbuf[np], sizeof(pbuf[np]))) < 0) {
      t3_err(t, "\"params\": at most 8 hex strings of up to 512 bytes");
      goto cleanup;
    }
    params[np].base = pbuf[np];
    params[np].len = (size_t)n;
    memcpy(s + slen, pbuf[np], (size_t)n);
    slen += (size_t)n;
    s[slen++] = (uint8_t)((size_t)n >> 8);
    s[slen++] = (uint8_t)n;
    np++;
  }
  if (t3_crypto(t, &crypto) < 0) {
    goto cleanup;
  }
  r = mtcsec_kdf_33220(&crypto, key, keylen, (uint8_t)fc, params, np, out);
  if (r != 0) {
    t3_err(t, "KDF failed: %s", mtcsec_strerror(r));
    goto cleanup;
  }
  rv = (t3_set_hex(t, "s", s, slen) == 0 &&
        t3_set_hex(t, "output", out, sizeof(out)) == 0 &&
        t3_set(t, "output_bits", cJSON_CreateNumber(256)) == 0)
         ? T3_OK
         : t3_nomem(t);

cleanup:
  mtcsec_crypto_openssl_del(&crypto);
  mtcsec_zeroize(key, sizeof(key));
  mtcsec_zeroize(out, sizeof(out));
  return rv;
}

/* ------------------------------------------------------------- dispatch */

static const t3_cmd t3_cmds[] = {
  {"milenage", t3_milenage, "K, RAND, SQN, AMF, OP or OPc",
   "OPc, f1, f1star, f2, f3, f4, f5, f5star"},
  {"eia2", t3_eia2, "key, count, bearer, direction, length_bits, message",
   "mac_i"},
  {"eea2", t3_eea2, "key, count, bearer, direction, length_bits, plaintext",
   "ciphertext"},
  {"llc-fcs", t3_llc_fcs, "frame (the whole LLC frame with its 3-byte FCS)",
   "frame_len, fcs_octets, fcs_value, fcs_covered_octets, fcs_ok"},
  {"kdf", t3_kdf, "key, fc, params (TS 33.220 Annex B.2)",
   "s, output, output_bits"},
};

#define T3_NCMDS (sizeof(t3_cmds) / sizeof(t3_cmds[0]))

static void t3_usage(FILE *f, const char *prog) {
  size_t i;

  fprintf(f,
          "usage: %s KIND [FILE]\n"
          "       %s KIND --help\n"
          "\n"
          "Reads one JSON object (from FILE, or stdin when FILE is absent or\n"
          "\"-\") in the format of the matching vector file and writes it\n"
          "back on stdout with every output field computed by mtcsec.\n"
          "Exit status: 0 done, 1 bad input, 2 usage error.\n"
          "\n"
          "KIND     input fields -> output fields\n",
          prog, prog);
  for (i = 0; i < T3_NCMDS; i++) {
    fprintf(f, "  %-8s %s\n           -> %s\n", t3_cmds[i].name, t3_cmds[i].in,
            t3_cmds[i].out);
  }
  fprintf(f, "\n"
             "Hex strings for byte fields; count, bearer and fc are hex "
             "strings\n"
             "as in the vector files (or JSON numbers).  milenage: SQN is "
             "the\n"
             "SQN of the challenge; with OP and OPc both given, OPc must "
             "match.\n"
             "llc-fcs: a wrong FCS is not an error: fcs_ok is false.\n");
}

/* Reads all of f into a NUL-terminated malloc'ed buffer; NULL on error. */
static char *t3_slurp(FILE *f) {
  size_t cap = 4096, len = 0, n;
  char *buf = malloc(cap), *nb;

  while (buf != NULL) {
    if (cap - len < 2) {
      if (cap >= T3_MAX_INPUT) {
        free(buf);
        return NULL;
      }
      nb = realloc(buf, cap * 2);
      if (nb == NULL) {
        free(buf);
        return NULL;
      }
      buf = nb;
      cap *= 2;
    }
    n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
    if (n == 0) {
      if (ferror(f)) {
        free(buf);
        return NULL;
      }
      buf[len] = '\0';
      return buf;
    }
  }
  return NULL;
}

int mtcsec_cmd_3gpp(int argc, char **argv) {
  const char *prog = argc > 0 && argv[0] != NULL ? argv[0] : "mtcsec-3gpp";
  const t3_cmd *cmd = NULL;
  const char *path = NULL;
  t3_ctx t;
  FILE *f = stdin;
  char *text, *printed;
  size_t i;
  int rv;

  if (argc < 2) {
    t3_usage(stderr, prog);
    return T3_USAGE;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    t3_usage(stdout, prog);
    return T3_OK;
  }
  for (i = 0; i < T3_NCMDS; i++) {
    if (strcmp(argv[1], t3_cmds[i].name) == 0) {
      cmd = &t3_cmds[i];
    }
  }
  if (cmd == NULL) {
    fprintf(stderr, "%s: unknown kind \"%s\" (try --help)\n", prog, argv[1]);
    return T3_USAGE;
  }
  if (argc > 3) {
    fprintf(stderr, "%s: %s: too many arguments (try --help)\n", prog,
            cmd->name);
    return T3_USAGE;
  }
  if (argc == 3) {
    if (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) {
      printf("usage: %s %s [FILE]\n  input:  %s\n  output: %s\n", prog,
             cmd->name, cmd->in, cmd->out);
      return T3_OK;
    }
    if (strcmp(argv[2], "-") != 0) {
      path = argv[2];
    }
  }

  t.prog = prog;
  t.kind = cmd->name;
  t.obj = NULL;
  if (path != NULL) {
    f = fopen(path, "rb");
    if (f == NULL) {
      fprintf(stderr, "%s: %s: cannot open %s: %s\n", prog, cmd->name, path,
              strerror(errno));
      return T3_BAD;
    }
  }
  text = t3_slurp(f);
  if (path != NULL) {
    fclose(f);
  }
  if (text == NULL) {
    t3_err(&t, "cannot read the input (I/O error or over 1 MiB)");
    return T3_BAD;
  }
  t.obj = cJSON_Parse(text);
  free(text);
  if (t.obj == NULL || !cJSON_IsObject(t.obj)) {
    t3_err(&t, "input is not one JSON object");
    cJSON_Delete(t.obj);
    return T3_BAD;
  }

  rv = cmd->fn(&t);
  if (rv == T3_OK) {
    printed = cJSON_Print(t.obj);
    if (printed == NULL) {
      rv = t3_nomem(&t);
    } else {
      printf("%s\n", printed);
      cJSON_free(printed);
      if (fflush(stdout) != 0) {
        rv = T3_BAD;
      }
    }
  }
  cJSON_Delete(t.obj);
  return rv;
}
