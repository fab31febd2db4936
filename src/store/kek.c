/*
 * Key-encryption key (KEK) of the SQLite store: the KEK file, and AES key
 * wrap with padding (RFC 5649) of device keys under it, through OpenSSL's
 * "AES-256-WRAP-PAD" (id-aes256-wrap-pad).  The only file of the store that
 * includes OpenSSL.
 *
 * The KEK file holds 64 hex digits and an optional newline, and must be
 * accessible by its owner only: anyone who can read it (and the database)
 * can unwrap every device's K_auth and K_dm.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <mtcsec/store_sqlite.h>

#include "store/sqlite_schema.h"

/* 64 hex digits and a newline. */
#define KEK_HEX_LEN (2 * MTCSEC_KEK_LEN)

static void kek_errf(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;

static void kek_errf(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || errlen == 0) {
    return;
  }
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static int kek_hexval(char c) {
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

int mtcsec_kek_load(const char *path, uint8_t kek[MTCSEC_KEK_LEN], char *err,
                    size_t errlen) {
  char buf[KEK_HEX_LEN + 8];
  size_t len = 0, i;
  struct stat sb;
  int fd = -1, rv = MTCSEC_ERR_INVALID_ARGUMENT;
  unsigned mode;

  if (err != NULL && errlen != 0) {
    err[0] = '\0';
  }
  if (kek == NULL) {
    kek_errf(err, errlen, "kek: no output buffer");
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  mtcsec_zeroize(kek, MTCSEC_KEK_LEN);
  if (path == NULL || path[0] == '\0') {
    kek_errf(err, errlen, "kek: no file name given (set kek_file)");
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  /* O_NONBLOCK: a FIFO must not hang us; it is refused below. */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    kek_errf(err, errlen,
             "kek: cannot open %s: %s; check kek_file and that this user "
             "owns the file",
             path, strerror(errno));
    return MTCSEC_ERR_STORE;
  }
  /* fstat on the open descriptor: no race between check and read. */
  if (fstat(fd, &sb) != 0) {
    kek_errf(err, errlen, "kek: cannot stat %s: %s", path, strerror(errno));
    rv = MTCSEC_ERR_STORE;
    goto cleanup;
  }
  if (!S_ISREG(sb.st_mode)) {
    kek_errf(err, errlen,
             "kek: %s is not a regular file; point kek_file at the key file",
             path);
    goto cleanup;
  }
  mode = (unsigned)(sb.st_mode & 07777);
  if ((mode & 077) != 0) {
    kek_errf(err, errlen,
             "kek: file is %s by group or others (mode %04o); run: "
             "chmod 600 %s",
             (mode & 044) != 0 ? "readable" : "accessible", mode, path);
    goto cleanup;
  }
  for (;;) {
    ssize_t r = read(fd, buf + len, sizeof(buf) - len);
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      kek_errf(err, errlen, "kek: cannot read %s: %s", path, strerror(errno));
      rv = MTCSEC_ERR_STORE;
      goto cleanup;
    }
    if (r == 0) {
      break;
    }
    len += (size_t)r;
    if (len == sizeof(buf)) {
      break; /* too long: refused below */
    }
  }
  if (!(len == KEK_HEX_LEN ||
        (len == KEK_HEX_LEN + 1 && buf[KEK_HEX_LEN] == '\n'))) {
    kek_errf(err, errlen,
             "kek: %s must contain exactly 64 hexadecimal digits (a 32-byte "
             "key), optionally followed by a newline, but it has %s%zu "
             "bytes; restore the right key file",
             path, len == sizeof(buf) ? "at least " : "", len);
    goto cleanup;
  }
  for (i = 0; i < MTCSEC_KEK_LEN; i++) {
    int hi = kek_hexval(buf[2 * i]), lo = kek_hexval(buf[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      kek_errf(err, errlen,
               "kek: %s must contain exactly 64 hexadecimal digits, but "
               "character %zu is not one; restore the right key file",
               path, 2 * i + (hi < 0 ? 0u : 1u) + 1);
      goto cleanup;
    }
    kek[i] = (uint8_t)((hi << 4) | lo);
  }
  rv = 0;

cleanup:
  mtcsec_zeroize(buf, sizeof(buf));
  if (rv != 0) {
    mtcsec_zeroize(kek, MTCSEC_KEK_LEN);
  }
  (void)close(fd);
  return rv;
}

int mtcsec_kek_create(const char *path, const mtcsec_crypto *crypto, char *err,
                      size_t errlen) {
  static const char digits[] = "0123456789abcdef";
  uint8_t kek[MTCSEC_KEK_LEN];
  char buf[KEK_HEX_LEN + 1];
  size_t i, off = 0;
  int fd, rv = MTCSEC_ERR_STORE;

  if (err != NULL && errlen != 0) {
    err[0] = '\0';
  }
  if (path == NULL || path[0] == '\0' || crypto == NULL ||
      crypto->ops == NULL || crypto->ops->random == NULL) {
    kek_errf(err, errlen, "kek: no file name or no random generator given");
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      kek_errf(err, errlen,
               "kek: %s exists already; refusing to overwrite a "
               "key-encryption key (the device keys wrapped under it would "
               "become unreadable)",
               path);
    } else {
      kek_errf(err, errlen, "kek: cannot create %s: %s", path, strerror(errno));
    }
    return MTCSEC_ERR_STORE;
  }
  /* Exactly 0600 whatever the umask. */
  if (fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
    kek_errf(err, errlen, "kek: cannot chmod 600 %s: %s", path,
             strerror(errno));
    goto cleanup;
  }
  if (crypto->ops->random(crypto->ctx, kek, sizeof(kek)) != 0) {
    kek_errf(err, errlen, "kek: the random generator failed");
    goto cleanup;
  }
  for (i = 0; i < MTCSEC_KEK_LEN; i++) {
    buf[2 * i] = digits[kek[i] >> 4];
    buf[2 * i + 1] = digits[kek[i] & 15];
  }
  buf[KEK_HEX_LEN] = '\n';
  while (off < sizeof(buf)) {
    ssize_t w = write(fd, buf + off, sizeof(buf) - off);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      kek_errf(err, errlen, "kek: cannot write %s: %s", path, strerror(errno));
      goto cleanup;
    }
    off += (size_t)w;
  }
  if (fsync(fd) != 0) {
    kek_errf(err, errlen, "kek: cannot sync %s: %s", path, strerror(errno));
    goto cleanup;
  }
  rv = 0;

cleanup:
  mtcsec_zeroize(kek, sizeof(kek));
  mtcsec_zeroize(buf, sizeof(buf));
  if (close(fd) != 0 && rv == 0) {
    kek_errf(err, errlen, "kek: cannot close %s: %s", path, strerror(errno));
    rv = MTCSEC_ERR_STORE;
  }
  if (rv != 0) {
    (void)unlink(path); /* never leave a partial key behind */
  }
  return rv;
}

/* ------------------------------------------------------ RFC 5649 wrap */

/* Both contexts are keyed once, at new(); a call only restarts one with
 * EVP_CipherInit_ex2(ctx, NULL, NULL, NULL, ...), which keeps the key
 * schedule, so that unwrapping a device record on every M2 neither
 * allocates nor expands the KEK again. */
struct mtcsec_kek_ctx {
  EVP_CIPHER *cipher; /* fetched once per handle */
  EVP_CIPHER_CTX *wrap, *unwrap;
};

static int kek_ctx_key(EVP_CIPHER_CTX *c, const EVP_CIPHER *cipher,
                       const uint8_t kek[MTCSEC_KEK_LEN], int enc) {
  /* OpenSSL 3.0 refuses wrap modes through EVP without this flag. */
  EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  return EVP_CipherInit_ex2(c, cipher, kek, NULL, enc, NULL) == 1 ? 0 : -1;
}

int mtcsec_kek_ctx_new(mtcsec_kek_ctx **pk, const uint8_t kek[MTCSEC_KEK_LEN]) {
  mtcsec_kek_ctx *k;
  if (pk == NULL || kek == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  *pk = NULL;
  k = calloc(1, sizeof(*k));
  if (k == NULL) {
    return MTCSEC_ERR_NOMEM;
  }
  k->cipher = EVP_CIPHER_fetch(NULL, "AES-256-WRAP-PAD", NULL);
  k->wrap = EVP_CIPHER_CTX_new();
  k->unwrap = EVP_CIPHER_CTX_new();
  if (k->cipher == NULL || k->wrap == NULL || k->unwrap == NULL ||
      kek_ctx_key(k->wrap, k->cipher, kek, 1) != 0 ||
      kek_ctx_key(k->unwrap, k->cipher, kek, 0) != 0) {
    mtcsec_kek_ctx_del(k);
    return MTCSEC_ERR_CRYPTO;
  }
  *pk = k;
  return 0;
}

void mtcsec_kek_ctx_del(mtcsec_kek_ctx *k) {
  if (k == NULL) {
    return;
  }
  EVP_CIPHER_CTX_free(k->wrap); /* cleanses the key schedule */
  EVP_CIPHER_CTX_free(k->unwrap);
  EVP_CIPHER_free(k->cipher);
  mtcsec_zeroize(k, sizeof(*k));
  free(k);
}

/* One whole wrap or unwrap: RFC 5649 is not a streaming mode. */
static mtcsec_ssize kek_run(mtcsec_kek_ctx *k, int enc, const uint8_t *in,
                            size_t inlen, uint8_t *out, size_t outlen) {
  EVP_CIPHER_CTX *c;
  int n = 0, fin = 0;

  if (k == NULL || in == NULL || out == NULL || inlen == 0 || inlen > 256) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  if (outlen < (enc ? MTCSEC_KEK_WRAP_LEN(inlen) : inlen)) {
    return MTCSEC_ERR_NOBUF;
  }
  c = enc ? k->wrap : k->unwrap;
  if (EVP_CipherInit_ex2(c, NULL, NULL, NULL, enc, NULL) != 1) {
    return MTCSEC_ERR_CRYPTO;
  }
  if (EVP_CipherUpdate(c, out, &n, in, (int)inlen) != 1 || n <= 0 ||
      EVP_CipherFinal_ex(c, out + n, &fin) != 1) {
    mtcsec_zeroize(out, outlen);
    /* Unwrap: the integrity check of RFC 5649 section 3 failed. */
    return enc ? MTCSEC_ERR_CRYPTO : MTCSEC_ERR_MIC;
  }
  return (mtcsec_ssize)n + fin;
}

mtcsec_ssize mtcsec_kek_wrap(mtcsec_kek_ctx *k, const uint8_t *in, size_t inlen,
                             uint8_t *out, size_t outlen) {
  return kek_run(k, 1, in, inlen, out, outlen);
}

mtcsec_ssize mtcsec_kek_unwrap(mtcsec_kek_ctx *k, const uint8_t *in,
                               size_t inlen, uint8_t *out, size_t outlen) {
  if (inlen < 16 || inlen % 8 != 0) {
    return MTCSEC_ERR_MIC; /* not an RFC 5649 output */
  }
  return kek_run(k, 0, in, inlen, out, outlen);
}
