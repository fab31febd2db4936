/*
 * mtcsd.conf: the keys and defaults of docs/OPERATIONS.md.  Relative paths
 * are relative to the directory of the configuration file.  Unknown keys,
 * bad values and missing required keys are errors that name the file and
 * the line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "mtcsd.h"

typedef struct cfg_ctx {
  mtcsd_config *c;
  char dir[PATH_MAX]; /* directory of the configuration file, with '/' */
  int have_mtcs_id;
  char *err;
  size_t errlen;
} cfg_ctx;

typedef int (*cfg_setter)(cfg_ctx *x, const char *v, char *why, size_t whylen);

static int cfg_uint(const char *v, unsigned long min, unsigned long max,
                    unsigned long *out, char *why, size_t whylen) {
  char *end;
  unsigned long n;
  if (v[0] < '0' || v[0] > '9') {
    snprintf(why, whylen, "expected an integer %lu..%lu", min, max);
    return -1;
  }
  errno = 0;
  n = strtoul(v, &end, 10);
  if (errno != 0 || *end != '\0' || n < min || n > max) {
    snprintf(why, whylen, "expected an integer %lu..%lu", min, max);
    return -1;
  }
  *out = n;
  return 0;
}

static int cfg_path(cfg_ctx *x, char *dest, const char *v, int optional,
                    char *why, size_t whylen) {
  size_t n;
  if (v[0] == '\0') {
    if (optional) {
      dest[0] = '\0';
      return 0;
    }
    snprintf(why, whylen, "expected a file name");
    return -1;
  }
  if (v[0] == '/') {
    n = (size_t)snprintf(dest, PATH_MAX, "%s", v);
  } else {
    n = (size_t)snprintf(dest, PATH_MAX, "%s%s", x->dir, v);
  }
  if (n >= PATH_MAX) {
    snprintf(why, whylen, "file name too long");
    return -1;
  }
  return 0;
}

static int cfg_addr(char *dest, const char *v, int optional, char *why,
                    size_t whylen) {
  if (v[0] == '\0' && optional) {
    dest[0] = '\0';
    return 0;
  }
  if (strchr(v, ':') == NULL || strlen(v) >= MTCSD_ADDR_MAX) {
    snprintf(why, whylen, "expected host:port, [v6]:port or :port");
    return -1;
  }
  strcpy(dest, v);
  return 0;
}

static int set_mtcs_id(cfg_ctx *x, const char *v, char *why, size_t wl) {
  if (app_parse_id(v, x->c->mtcs_id) != 0) {
    snprintf(why, wl, "expected 16 hexadecimal digits");
    return -1;
  }
  x->have_mtcs_id = 1;
  return 0;
}
static int set_listen(cfg_ctx *x, const char *v, char *why, size_t wl) {
  return cfg_addr(x->c->listen, v, 0, why, wl);
}
static int set_metrics_listen(cfg_ctx *x, const char *v, char *why, size_t wl) {
  return cfg_addr(x->c->metrics_listen, v, 1, why, wl);
}
static int set_database(cfg_ctx *x, const char *v, char *why, size_t wl) {
  return cfg_path(x, x->c->database, v, 0, why, wl);
}
static int set_kek_file(cfg_ctx *x, const char *v, char *why, size_t wl) {
  return cfg_path(x, x->c->kek_file, v, 0, why, wl);
}
static int set_ca(cfg_ctx *x, const char *v, char *why, size_t wl) {
  return cfg_path(x, x->c->ca, v, 0, why, wl);
}
static int set_crl(cfg_ctx *x, const char *v, char *why, size_t wl) {
  return cfg_path(x, x->c->crl, v, 1, why, wl);
}
static int set_cert(cfg_ctx *x, const char *v, char *why, size_t wl) {
  return cfg_path(x, x->c->cert, v, 0, why, wl);
}
static int set_key(cfg_ctx *x, const char *v, char *why, size_t wl) {
  return cfg_path(x, x->c->key, v, 0, why, wl);
}
static int set_workers(cfg_ctx *x, const char *v, char *why, size_t wl) {
  unsigned long n;
  if (cfg_uint(v, 1, MTCSD_MAX_WORKERS, &n, why, wl) != 0) {
    return -1;
  }
  x->c->workers = (unsigned)n;
  return 0;
}
static int set_log_level(cfg_ctx *x, const char *v, char *why, size_t wl) {
  if (app_parse_log_level(v, &x->c->log_level) != 0) {
    snprintf(why, wl, "expected error, warn, info or debug");
    return -1;
  }
  return 0;
}
static int set_dup_cache_size(cfg_ctx *x, const char *v, char *why, size_t wl) {
  unsigned long n;
  if (cfg_uint(v, 0, 1000000, &n, why, wl) != 0) {
    return -1;
  }
  x->c->dup_cache_size = n;
  return 0;
}
static int set_rate(cfg_ctx *x, const char *v, char *why, size_t wl) {
  unsigned long n;
  if (cfg_uint(v, 0, 1000000, &n, why, wl) != 0) {
    return -1;
  }
  x->c->rate_per_minute = (uint32_t)n;
  return 0;
}
static int set_max_connections(cfg_ctx *x, const char *v, char *why,
                               size_t wl) {
  unsigned long n;
  if (cfg_uint(v, 1, 1000000, &n, why, wl) != 0) {
    return -1;
  }
  x->c->max_connections = (unsigned)n;
  return 0;
}
static int cfg_seconds(const char *v, uint32_t min, uint32_t max, unsigned *out,
                       char *why, size_t wl) {
  uint32_t s;
  if (app_parse_duration(v, &s) != 0 || s < min || s > max) {
    snprintf(why, wl,
             "expected a duration of %u to %u seconds (\"60\", \"90s\", "
             "\"2m\")",
             (unsigned)min, (unsigned)max);
    return -1;
  }
  *out = s;
  return 0;
}
static int set_idle_timeout(cfg_ctx *x, const char *v, char *why, size_t wl) {
  return cfg_seconds(v, 1, 86400, &x->c->idle_timeout, why, wl);
}
static int set_shutdown_timeout(cfg_ctx *x, const char *v, char *why,
                                size_t wl) {
  return cfg_seconds(v, 1, 3600, &x->c->shutdown_timeout, why, wl);
}
static int set_commit_max_batch(cfg_ctx *x, const char *v, char *why,
                                size_t wl) {
  unsigned long n;
  if (cfg_uint(v, 1, 65536, &n, why, wl) != 0) {
    return -1;
  }
  x->c->commit_max_batch = n;
  return 0;
}
static int set_commit_max_delay(cfg_ctx *x, const char *v, char *why,
                                size_t wl) {
  unsigned long n;
  if (cfg_uint(v, 0, 1000, &n, why, wl) != 0) {
    return -1;
  }
  x->c->commit_max_delay_ms = (unsigned)n;
  return 0;
}

static int set_cellular_listen(cfg_ctx *x, const char *v, char *why,
                               size_t wl) {
  return cfg_addr(x->c->cellular_listen, v, 1, why, wl);
}
/* A list of 16-hex-digit IDs separated by commas and/or spaces. */
static int set_allowed_ggsns(cfg_ctx *x, const char *v, char *why, size_t wl) {
  const char *p = v;
  x->c->nallowed_ggsns = 0;
  for (;;) {
    char tok[32];
    size_t n;
    while (*p == ',' || *p == ' ' || *p == '\t') {
      p++;
    }
    if (*p == '\0') {
      return 0;
    }
    n = strcspn(p, ", \t");
    if (n >= sizeof(tok) || x->c->nallowed_ggsns >= MTCSD_MAX_GGSNS) {
      snprintf(why, wl, "expected at most %d IDs of 16 hexadecimal digits",
               MTCSD_MAX_GGSNS);
      return -1;
    }
    memcpy(tok, p, n);
    tok[n] = '\0';
    if (app_parse_id(tok, x->c->allowed_ggsns[x->c->nallowed_ggsns]) != 0) {
      snprintf(why, wl, "'%s' is not 16 hexadecimal digits", tok);
      return -1;
    }
    x->c->nallowed_ggsns++;
    p += n;
  }
}
static int set_home_proxy(cfg_ctx *x, const char *v, char *why, size_t wl) {
  return cfg_addr(x->c->home_proxy, v, 0, why, wl);
}
static int set_home_proxy_ca(cfg_ctx *x, const char *v, char *why, size_t wl) {
  return cfg_path(x, x->c->home_proxy_ca, v, 0, why, wl);
}
static int set_home_proxy_cert(cfg_ctx *x, const char *v, char *why,
                               size_t wl) {
  return cfg_path(x, x->c->home_proxy_cert, v, 0, why, wl);
}
static int set_home_proxy_key(cfg_ctx *x, const char *v, char *why, size_t wl) {
  return cfg_path(x, x->c->home_proxy_key, v, 0, why, wl);
}
static int set_cellular_max_contexts(cfg_ctx *x, const char *v, char *why,
                                     size_t wl) {
  unsigned long n;
  if (cfg_uint(v, 1, 1048576, &n, why, wl) != 0) {
    return -1;
  }
  x->c->cellular_max_contexts = n;
  return 0;
}
static int set_cellular_key_lifetime(cfg_ctx *x, const char *v, char *why,
                                     size_t wl) {
  return cfg_seconds(v, 1, 30u * 86400u, &x->c->cellular_key_lifetime, why, wl);
}

static int set_cellular_db(cfg_ctx *x, const char *v, char *why, size_t wl) {
  return cfg_path(x, x->c->cellular_db, v, 0, why, wl);
}

static const struct {
  const char *key;
  cfg_setter fn;
} cfg_keys[] = {
  {"mtcs_id", set_mtcs_id},
  {"listen", set_listen},
  {"metrics_listen", set_metrics_listen},
  {"database", set_database},
  {"kek_file", set_kek_file},
  {"ca", set_ca},
  {"crl", set_crl},
  {"cert", set_cert},
  {"key", set_key},
  {"workers", set_workers},
  {"log_level", set_log_level},
  {"dup_cache_size", set_dup_cache_size},
  {"rate_per_minute", set_rate},
  {"max_connections", set_max_connections},
  {"idle_timeout", set_idle_timeout},
  {"commit_max_batch", set_commit_max_batch},
  {"commit_max_delay_ms", set_commit_max_delay},
  {"shutdown_timeout", set_shutdown_timeout},
  {"cellular_listen", set_cellular_listen},
  {"allowed_ggsns", set_allowed_ggsns},
  {"home_proxy", set_home_proxy},
  {"home_proxy_ca", set_home_proxy_ca},
  {"home_proxy_cert", set_home_proxy_cert},
  {"home_proxy_key", set_home_proxy_key},
  {"cellular_max_contexts", set_cellular_max_contexts},
  {"cellular_key_lifetime", set_cellular_key_lifetime},
  {"cellular_db", set_cellular_db},
};

static int cfg_entry(void *ud, const char *key, const char *value, int line) {
  cfg_ctx *x = ud;
  char why[160];
  size_t i;

  /* The shared table (apps/common/mtcsd_conf.c) says which keys exist. */
  for (i = 0;
       app_mtcsd_key(key) != NULL && i < sizeof(cfg_keys) / sizeof(cfg_keys[0]);
       i++) {
    if (strcmp(cfg_keys[i].key, key) == 0) {
      why[0] = '\0';
      if (cfg_keys[i].fn(x, value, why, sizeof(why)) != 0) {
        snprintf(x->err, x->errlen, "%s:%d: %s: %s", x->c->file, line, key,
                 why);
        return -1;
      }
      return 0;
    }
  }
  snprintf(x->err, x->errlen, "%s:%d: unknown key '%s'", x->c->file, line, key);
  return -1;
}

/* Defaults: every key of the shared table that has one goes through its
 * setter, so that mtcsd and `mtcsec init` cannot disagree.  Returns 0, or
 * -1 when the table names a key this parser lacks (a build defect). */
static int cfg_defaults(cfg_ctx *x) {
  size_t i;
  for (i = 0; app_mtcsd_keys[i].key != NULL; i++) {
    if (app_mtcsd_keys[i].def != NULL &&
        cfg_entry(x, app_mtcsd_keys[i].key, app_mtcsd_keys[i].def, 0) != 0) {
      return -1;
    }
  }
  return 0;
}

int mtcsd_config_load(mtcsd_config *c, const char *path, char *err,
                      size_t errlen) {
  cfg_ctx x;
  app_config *ac;
  const char *slash;
  int rv;

  memset(c, 0, sizeof(*c));
  memset(&x, 0, sizeof(x));
  x.c = c;
  x.err = err;
  x.errlen = errlen;
  if (strlen(path) >= sizeof(c->file)) {
    snprintf(err, errlen, "%s: file name too long", path);
    return -1;
  }
  strcpy(c->file, path);
  slash = strrchr(path, '/');
  if (slash != NULL) {
    size_t n = (size_t)(slash - path) + 1;
    memcpy(x.dir, path, n);
    x.dir[n] = '\0';
  }
  if (cfg_defaults(&x) != 0) {
    return -1;
  }

  ac = app_config_load(path, err, errlen);
  if (ac == NULL) {
    return -1;
  }
  rv = app_config_foreach(ac, cfg_entry, &x);
  app_config_free(ac);
  if (rv != 0) {
    return -1;
  }
  if (!x.have_mtcs_id) {
    snprintf(err, errlen, "%s: missing required key 'mtcs_id'", path);
    return -1;
  }
  return 0;
}

void mtcsd_config_restart_keys(const mtcsd_config *a, const mtcsd_config *b,
                               char *out, size_t outlen) {
  size_t n = 0;
  out[0] = '\0';
#define CMP_KEY(cond, name) app_config_note_key(out, outlen, &n, (cond), name)
  CMP_KEY(memcmp(a->mtcs_id, b->mtcs_id, MTCSEC_ID_LEN) != 0, "mtcs_id");
  CMP_KEY(strcmp(a->listen, b->listen) != 0, "listen");
  CMP_KEY(strcmp(a->metrics_listen, b->metrics_listen) != 0, "metrics_listen");
  CMP_KEY(strcmp(a->database, b->database) != 0, "database");
  CMP_KEY(strcmp(a->kek_file, b->kek_file) != 0, "kek_file");
  CMP_KEY(a->workers != b->workers, "workers");
  CMP_KEY(a->dup_cache_size != b->dup_cache_size, "dup_cache_size");
  CMP_KEY(a->commit_max_batch != b->commit_max_batch, "commit_max_batch");
  CMP_KEY(a->commit_max_delay_ms != b->commit_max_delay_ms,
          "commit_max_delay_ms");
  CMP_KEY(a->shutdown_timeout != b->shutdown_timeout, "shutdown_timeout");
#undef CMP_KEY
}

SSL_CTX *mtcsd_tls_ctx(const mtcsd_config *c, char *err, size_t errlen) {
  SSL_CTX *ctx = app_tls_server_ctx(c->cert, c->key, c->ca, err, errlen);
  X509_STORE *st;
  X509_LOOKUP *lu;

  if (ctx == NULL || c->crl[0] == '\0') {
    return ctx;
  }
  st = SSL_CTX_get_cert_store(ctx);
  lu = X509_STORE_add_lookup(st, X509_LOOKUP_file());
  ERR_clear_error();
  if (lu == NULL || X509_load_crl_file(lu, c->crl, X509_FILETYPE_PEM) <= 0) {
    char reason[200];
    ERR_error_string_n(ERR_peek_last_error(), reason, sizeof(reason));
    ERR_clear_error();
    snprintf(err, errlen, "%s: cannot load the CRL: %s", c->crl, reason);
    SSL_CTX_free(ctx);
    return NULL;
  }
  X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
  return ctx;
}
