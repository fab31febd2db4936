/*
 * mtchpd.conf: key = value lines (apps/common config parser).  Every key,
 * its default and its meaning are in docs/CELLULAR-HOME-PROXY.md.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtchpd.h"

typedef struct conf_key {
  const char *key;
  const char *def;
} conf_key;

static const conf_key conf_keys[] = {{"gsup_listen", "127.0.0.1:4222"},
                                     {"kup_listen", "127.0.0.1:4443"},
                                     {"metrics_listen", "127.0.0.1:9789"},
                                     {"database", "hlr.db"},
                                     {"kek_file", "kek"},
                                     {"ca", "ca.pem"},
                                     {"cert", "server.pem"},
                                     {"key", "server.key"},
                                     {"upstream_hlr", ""},
                                     {"unit_name", "MTCHPD"},
                                     {"upstream_timeout", "5"},
                                     {"isd_timeout", "5"},
                                     {"vector_lifetime", "600"},
                                     {"vector_cache_max", "65536"},
                                     {"num_vectors", "5"},
                                     {"max_connections", "256"},
                                     {"kup_max_connections", "64"},
                                     {"kup_max_per_peer", "8"},
                                     {"idle_timeout", "10"},
                                     {"gsup_handshake_timeout", "10"},
                                     {"gsup_keepalive", "30"},
                                     {"gsup_allowed_peers", ""},
                                     {"allowed_servers", ""},
                                     {"integrity_only", ""},
                                     {"log_level", "info"},
                                     {NULL, NULL}};

typedef struct conf_ctx {
  char *err;
  size_t errlen;
  const char *path;
} conf_ctx;

static int conf_check_key(void *ud, const char *key, const char *value,
                          int line) {
  conf_ctx *cc = ud;
  size_t i;
  (void)value;
  for (i = 0; conf_keys[i].key != NULL; i++) {
    if (strcmp(conf_keys[i].key, key) == 0) {
      return 0;
    }
  }
  snprintf(cc->err, cc->errlen, "%s:%d: unknown key '%s'", cc->path, line, key);
  return -1;
}

static const char *conf_get(const app_config *c, const char *key) {
  const char *v = app_config_get(c, key);
  size_t i;
  if (v != NULL) {
    return v;
  }
  for (i = 0; conf_keys[i].key != NULL; i++) {
    if (strcmp(conf_keys[i].key, key) == 0) {
      return conf_keys[i].def;
    }
  }
  return "";
}

/* dir of the config file + value, unless value is absolute. */
static int conf_path(char *out, size_t outlen, const char *file,
                     const char *value) {
  const char *slash = strrchr(file, '/');
  int n;
  if (value[0] == '/' || slash == NULL) {
    n = snprintf(out, outlen, "%s", value);
  } else {
    n = snprintf(out, outlen, "%.*s/%s", (int)(slash - file), file, value);
  }
  return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static int conf_copy(char *out, size_t outlen, const char *v) {
  int n = snprintf(out, outlen, "%s", v);
  return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static int conf_uint(const char *v, unsigned long min, unsigned long max,
                     unsigned long *out) {
  char *end = NULL;
  unsigned long x;
  if (v[0] < '0' || v[0] > '9') {
    return -1;
  }
  errno = 0;
  x = strtoul(v, &end, 10);
  if (errno != 0 || *end != '\0' || x < min || x > max) {
    return -1;
  }
  *out = x;
  return 0;
}

/* Splits a comma/space separated list; calls fn on each item.  Items are at
 * most 63 characters. */
static int conf_list(const char *v, int (*fn)(hp_config *, const char *),
                     hp_config *cfg) {
  char item[64];
  while (*v != '\0') {
    size_t n = strcspn(v, ", \t");
    if (n > 0) {
      if (n >= sizeof(item)) {
        return -1;
      }
      memcpy(item, v, n);
      item[n] = '\0';
      if (fn(cfg, item) != 0) {
        return -1;
      }
    }
    v += n;
    v += strspn(v, ", \t");
  }
  return 0;
}

static int conf_add_allowed(hp_config *cfg, const char *item) {
  if (cfg->nallowed == HP_MAX_ALLOWED ||
      app_parse_id(item, cfg->allowed[cfg->nallowed]) != 0) {
    return -1;
  }
  cfg->nallowed++;
  return 0;
}

static int conf_add_io(hp_config *cfg, const char *item) {
  if (cfg->nio_imsis == HP_MAX_IO_IMSIS ||
      !mtcsec_auc_imsi_valid(item, strlen(item))) {
    return -1;
  }
  snprintf(cfg->io_imsis[cfg->nio_imsis++], MTCSEC_IMSI_MAX_DIGITS + 1, "%s",
           item);
  return 0;
}

int hp_net_parse(const char *s, hp_net *out) {
  char host[INET6_ADDRSTRLEN + 1];
  const char *slash = strchr(s, '/');
  size_t hl = slash != NULL ? (size_t)(slash - s) : strlen(s);
  unsigned long bits = 0;
  struct in_addr a4;
  int v4;

  memset(out, 0, sizeof(*out));
  if (hl == 0 || hl >= sizeof(host)) {
    return -1;
  }
  memcpy(host, s, hl);
  host[hl] = '\0';
  if (inet_pton(AF_INET, host, &a4) == 1) {
    v4 = 1;
    out->addr[10] = 0xff;
    out->addr[11] = 0xff;
    memcpy(out->addr + 12, &a4, 4);
  } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
    v4 = 0;
  } else {
    return -1;
  }
  if (slash != NULL &&
      (slash[1] < '0' || slash[1] > '9' || strlen(slash + 1) > 3 ||
       conf_uint(slash + 1, 0, v4 ? 32 : 128, &bits) != 0)) {
    return -1;
  }
  out->prefix = slash == NULL ? 128u : (unsigned)bits + (v4 ? 96u : 0u);
  return 0;
}

int hp_net_match(const hp_net *net, const uint8_t addr[16]) {
  unsigned full = net->prefix / 8, rest = net->prefix % 8;
  if (memcmp(net->addr, addr, full) != 0) {
    return 0;
  }
  if (rest != 0) {
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (net->addr[full] & mask) == (addr[full] & mask);
  }
  return 1;
}

int hp_sockaddr_addr(const struct sockaddr *sa, uint8_t addr16[16], char *text,
                     size_t textlen) {
  char buf[INET6_ADDRSTRLEN];
  memset(addr16, 0, 16);
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
    addr16[10] = 0xff;
    addr16[11] = 0xff;
    memcpy(addr16 + 12, &in->sin_addr, 4);
    if (inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf)) == NULL) {
      snprintf(buf, sizeof(buf), "?");
    }
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 =
      (const struct sockaddr_in6 *)(const void *)sa;
    memcpy(addr16, &in6->sin6_addr, 16);
    if (inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf)) == NULL) {
      snprintf(buf, sizeof(buf), "?");
    }
  } else {
    if (text != NULL && textlen > 0) {
      snprintf(text, textlen, "?");
    }
    return -1;
  }
  if (text != NULL && textlen > 0) {
    snprintf(text, textlen, "%s", buf);
  }
  return 0;
}

int hp_config_gsup_allowed(const hp_config *cfg, const uint8_t addr16[16]) {
  size_t i;
  if (cfg->ngsup_allowed == 0) {
    return 1; /* as osmo-hlr: any peer */
  }
  for (i = 0; i < cfg->ngsup_allowed; i++) {
    if (hp_net_match(&cfg->gsup_allowed[i], addr16)) {
      return 1;
    }
  }
  return 0;
}

static int conf_add_gsup_peer(hp_config *cfg, const char *item) {
  if (cfg->ngsup_allowed == HP_MAX_GSUP_PEERS ||
      hp_net_parse(item, &cfg->gsup_allowed[cfg->ngsup_allowed]) != 0) {
    return -1;
  }
  cfg->ngsup_allowed++;
  return 0;
}

int hp_config_load(hp_config *cfg, const char *path, char *err, size_t errlen) {
  app_config *c;
  conf_ctx cc;
  unsigned long u;
  uint32_t secs;
  int rv = -1;
  const char *bad = NULL;

  memset(cfg, 0, sizeof(*cfg));
  c = app_config_load(path, err, errlen);
  if (c == NULL) {
    return -1;
  }
  cc.err = err;
  cc.errlen = errlen;
  cc.path = path;
  if (app_config_foreach(c, conf_check_key, &cc) != 0) {
    goto cleanup;
  }
  if (conf_copy(cfg->file, sizeof(cfg->file), path) != 0 ||
      conf_copy(cfg->gsup_listen, sizeof(cfg->gsup_listen),
                conf_get(c, "gsup_listen")) != 0 ||
      conf_copy(cfg->kup_listen, sizeof(cfg->kup_listen),
                conf_get(c, "kup_listen")) != 0 ||
      conf_copy(cfg->metrics_listen, sizeof(cfg->metrics_listen),
                conf_get(c, "metrics_listen")) != 0 ||
      conf_copy(cfg->upstream_hlr, sizeof(cfg->upstream_hlr),
                conf_get(c, "upstream_hlr")) != 0 ||
      conf_copy(cfg->unit_name, sizeof(cfg->unit_name),
                conf_get(c, "unit_name")) != 0 ||
      conf_path(cfg->database, sizeof(cfg->database), path,
                conf_get(c, "database")) != 0 ||
      conf_path(cfg->kek_file, sizeof(cfg->kek_file), path,
                conf_get(c, "kek_file")) != 0 ||
      conf_path(cfg->ca, sizeof(cfg->ca), path, conf_get(c, "ca")) != 0 ||
      conf_path(cfg->cert, sizeof(cfg->cert), path, conf_get(c, "cert")) != 0 ||
      conf_path(cfg->key, sizeof(cfg->key), path, conf_get(c, "key")) != 0) {
    snprintf(err, errlen, "%s: a value is too long", path);
    goto cleanup;
  }
  cfg->metrics_listen_given = app_config_get(c, "metrics_listen") != NULL;
  if (cfg->gsup_listen[0] == '\0') {
    bad = "gsup_listen";
  } else if (app_parse_duration(conf_get(c, "upstream_timeout"), &secs) != 0 ||
             secs == 0 || secs > 300) {
    bad = "upstream_timeout";
  } else if ((cfg->upstream_timeout = secs,
              app_parse_duration(conf_get(c, "isd_timeout"), &secs)) != 0 ||
             secs == 0 || secs > 300) {
    bad = "isd_timeout";
  } else if ((cfg->isd_timeout = secs,
              app_parse_duration(conf_get(c, "vector_lifetime"), &secs)) != 0 ||
             secs == 0 || secs > 86400) {
    bad = "vector_lifetime";
  } else if ((cfg->vector_lifetime = secs,
              conf_uint(conf_get(c, "vector_cache_max"), 1, 10000000, &u)) !=
             0) {
    bad = "vector_cache_max";
  } else if ((cfg->vector_cache_max = (uint32_t)u,
              conf_uint(conf_get(c, "num_vectors"), 1, 5, &u)) != 0) {
    bad = "num_vectors";
  } else if ((cfg->num_vectors = (unsigned)u,
              conf_uint(conf_get(c, "max_connections"), 1, 65536, &u)) != 0) {
    bad = "max_connections";
  } else if ((cfg->max_connections = (unsigned)u,
              conf_uint(conf_get(c, "kup_max_connections"), 1, HP_KUP_MAX_CONN,
                        &u)) != 0) {
    bad = "kup_max_connections";
  } else if ((cfg->kup_max_connections = (unsigned)u,
              conf_uint(conf_get(c, "kup_max_per_peer"), 1, HP_KUP_MAX_CONN,
                        &u)) != 0) {
    bad = "kup_max_per_peer";
  } else if ((cfg->kup_max_per_peer = (unsigned)u,
              app_parse_duration(conf_get(c, "idle_timeout"), &secs)) != 0 ||
             secs == 0 || secs > 3600) {
    bad = "idle_timeout";
  } else if ((cfg->idle_timeout = secs,
              app_parse_duration(conf_get(c, "gsup_handshake_timeout"),
                                 &secs)) != 0 ||
             secs == 0 || secs > 300) {
    bad = "gsup_handshake_timeout";
  } else if ((cfg->gsup_handshake_timeout = secs,
              app_parse_duration(conf_get(c, "gsup_keepalive"), &secs)) != 0 ||
             secs > 3600) {
    bad = "gsup_keepalive";
  } else if ((cfg->gsup_keepalive = secs,
              conf_list(conf_get(c, "gsup_allowed_peers"), conf_add_gsup_peer,
                        cfg)) != 0) {
    bad = "gsup_allowed_peers";
  } else if (conf_list(conf_get(c, "allowed_servers"), conf_add_allowed, cfg) !=
             0) {
    bad = "allowed_servers";
  } else if (conf_list(conf_get(c, "integrity_only"), conf_add_io, cfg) != 0) {
    bad = "integrity_only";
  } else if (app_parse_log_level(conf_get(c, "log_level"), &cfg->log_level) !=
             0) {
    bad = "log_level";
  }
  if (bad != NULL) {
    snprintf(err, errlen, "%s: bad value of '%s': '%s' (see mtchpd(8))", path,
             bad, conf_get(c, bad));
    goto cleanup;
  }
  rv = 0;

cleanup:
  app_config_free(c);
  return rv;
}

int hp_config_io_imsi(const hp_config *cfg, const char *imsi) {
  size_t i;
  for (i = 0; i < cfg->nio_imsis; i++) {
    if (strcmp(cfg->io_imsis[i], imsi) == 0) {
      return 1;
    }
  }
  return 0;
}

void hp_config_restart_keys(const hp_config *a, const hp_config *b, char *out,
                            size_t outlen) {
  size_t n = 0;
  out[0] = '\0';
#define CMP_KEY(cond, name) app_config_note_key(out, outlen, &n, (cond), name)
  CMP_KEY(strcmp(a->gsup_listen, b->gsup_listen) != 0, "gsup_listen");
  CMP_KEY(strcmp(a->kup_listen, b->kup_listen) != 0, "kup_listen");
  CMP_KEY(strcmp(a->metrics_listen, b->metrics_listen) != 0, "metrics_listen");
  CMP_KEY(strcmp(a->database, b->database) != 0, "database");
  CMP_KEY(strcmp(a->kek_file, b->kek_file) != 0, "kek_file");
  CMP_KEY(strcmp(a->upstream_hlr, b->upstream_hlr) != 0, "upstream_hlr");
  CMP_KEY(strcmp(a->unit_name, b->unit_name) != 0, "unit_name");
  CMP_KEY(a->max_connections != b->max_connections, "max_connections");
  CMP_KEY(a->vector_lifetime != b->vector_lifetime, "vector_lifetime");
  CMP_KEY(a->vector_cache_max != b->vector_cache_max, "vector_cache_max");
#undef CMP_KEY
}

void hp_config_keep_restart(hp_config *nc, const hp_config *old) {
  memcpy(nc->gsup_listen, old->gsup_listen, sizeof(nc->gsup_listen));
  memcpy(nc->kup_listen, old->kup_listen, sizeof(nc->kup_listen));
  memcpy(nc->metrics_listen, old->metrics_listen, sizeof(nc->metrics_listen));
  nc->metrics_listen_given = old->metrics_listen_given;
  memcpy(nc->database, old->database, sizeof(nc->database));
  memcpy(nc->kek_file, old->kek_file, sizeof(nc->kek_file));
  memcpy(nc->upstream_hlr, old->upstream_hlr, sizeof(nc->upstream_hlr));
  memcpy(nc->unit_name, old->unit_name, sizeof(nc->unit_name));
  nc->max_connections = old->max_connections;
  nc->vector_lifetime = old->vector_lifetime;
  nc->vector_cache_max = old->vector_cache_max;
}
