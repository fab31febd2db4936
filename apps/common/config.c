/*
 * key = value configuration files (apps/common/app.h).
 *
 * Grammar, one entry per line:
 *   line    = ws [ key ws "=" ws value ] ws [ "#" comment ]
 *   key     = 1*[a-z0-9_.]
 *   value   = bare / quoted
 *   bare    = characters up to "#" or the end of the line, trimmed
 *   quoted  = DQUOTE *(char / "\" DQUOTE / "\\") DQUOTE
 * A key may appear once.  Errors name the file and the line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

/* Largest configuration file read. */
#define CONFIG_MAX_SIZE (1024 * 1024)

typedef struct config_entry {
  char *key;
  char *value;
  int line;
} config_entry;

struct app_config {
  config_entry *e;
  size_t n, cap;
};

static int is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.';
}

static int is_ws(char c) { return c == ' ' || c == '\t'; }

void app_config_free(app_config *c) {
  size_t i;
  if (c == NULL) {
    return;
  }
  for (i = 0; i < c->n; i++) {
    free(c->e[i].key);
    free(c->e[i].value);
  }
  free(c->e);
  free(c);
}

static const config_entry *config_find(const app_config *c, const char *key) {
  size_t i;
  for (i = 0; i < c->n; i++) {
    if (strcmp(c->e[i].key, key) == 0) {
      return &c->e[i];
    }
  }
  return NULL;
}

static int config_add(app_config *c, const char *key, size_t keylen,
                      const char *value, size_t valuelen, int line) {
  config_entry *e;
  if (c->n == c->cap) {
    size_t ncap = c->cap ? c->cap * 2 : 16;
    config_entry *ne = realloc(c->e, ncap * sizeof(*ne));
    if (ne == NULL) {
      return -1;
    }
    c->e = ne;
    c->cap = ncap;
  }
  e = &c->e[c->n];
  e->key = strndup(key, keylen);
  e->value = strndup(value, valuelen);
  e->line = line;
  if (e->key == NULL || e->value == NULL) {
    free(e->key);
    free(e->value);
    return -1;
  }
  c->n++;
  return 0;
}

/* Parses one line (without its newline).  0, or -1 with err. */
static int config_line(app_config *c, const char *path, int lineno,
                       const char *p, const char *end, char *err,
                       size_t errlen) {
  const char *key, *v, *vend;
  size_t keylen;
  char *buf = NULL;
  size_t blen = 0;
  const config_entry *dup;
  int rv;

  while (p < end && is_ws(*p)) {
    p++;
  }
  if (p == end || *p == '#') {
    return 0;
  }
  key = p;
  while (p < end && is_key_char(*p)) {
    p++;
  }
  keylen = (size_t)(p - key);
  if (keylen == 0) {
    snprintf(err, errlen,
             "%s:%d: expected a key (lowercase letters, digits, '_', '.')",
             path, lineno);
    return -1;
  }
  while (p < end && is_ws(*p)) {
    p++;
  }
  if (p == end || *p != '=') {
    snprintf(err, errlen, "%s:%d: expected '=' after '%.*s'", path, lineno,
             (int)keylen, key);
    return -1;
  }
  p++;
  while (p < end && is_ws(*p)) {
    p++;
  }
  if (p < end && *p == '"') {
    /* Quoted: unescape \" and \\ into a copy. */
    buf = malloc((size_t)(end - p) + 1);
    if (buf == NULL) {
      snprintf(err, errlen, "%s:%d: out of memory", path, lineno);
      return -1;
    }
    p++;
    for (;;) {
      if (p == end) {
        free(buf);
        snprintf(err, errlen, "%s:%d: unterminated quoted value of '%.*s'",
                 path, lineno, (int)keylen, key);
        return -1;
      }
      if (*p == '"') {
        p++;
        break;
      }
      if (*p == '\\' && p + 1 < end && (p[1] == '"' || p[1] == '\\')) {
        p++;
      }
      buf[blen++] = *p++;
    }
    while (p < end && is_ws(*p)) {
      p++;
    }
    if (p < end && *p != '#') {
      free(buf);
      snprintf(err, errlen,
               "%s:%d: unexpected text after the quoted value of '%.*s'", path,
               lineno, (int)keylen, key);
      return -1;
    }
    v = buf;
    vend = buf + blen;
  } else {
    v = p;
    while (p < end && *p != '#') {
      p++;
    }
    vend = p;
    while (vend > v && is_ws(vend[-1])) {
      vend--;
    }
  }
  {
    char keybuf[128];
    snprintf(keybuf, sizeof(keybuf), "%.*s", (int)keylen, key);
    dup = config_find(c, keybuf);
  }
  if (dup != NULL) {
    snprintf(err, errlen, "%s:%d: duplicate key '%.*s' (first set on line %d)",
             path, lineno, (int)keylen, key, dup->line);
    free(buf);
    return -1;
  }
  rv = config_add(c, key, keylen, v, (size_t)(vend - v), lineno);
  free(buf);
  if (rv != 0) {
    snprintf(err, errlen, "%s:%d: out of memory", path, lineno);
  }
  return rv;
}

app_config *app_config_load(const char *path, char *err, size_t errlen) {
  app_config *c;
  char *text;
  size_t len, i, start;
  int lineno = 1;

  if (err != NULL && errlen > 0) {
    err[0] = '\0';
  }
  text = app_read_file(path, CONFIG_MAX_SIZE, &len);
  if (text == NULL) {
    snprintf(err, errlen, "%s: cannot read: %s", path,
             errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
    return NULL;
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL) {
    free(text);
    snprintf(err, errlen, "%s: out of memory", path);
    return NULL;
  }
  start = 0;
  for (i = 0; i <= len; i++) {
    if (i < len && text[i] == '\0') {
      snprintf(err, errlen, "%s:%d: NUL byte in the file", path, lineno);
      goto fail;
    }
    if (i == len || text[i] == '\n') {
      size_t e = i;
      if (e > start && text[e - 1] == '\r') {
        e--;
      }
      if (config_line(c, path, lineno, text + start, text + e, err, errlen) !=
          0) {
        goto fail;
      }
      start = i + 1;
      lineno++;
    }
  }
  free(text);
  return c;

fail:
  free(text);
  app_config_free(c);
  return NULL;
}

const char *app_config_get(const app_config *c, const char *key) {
  const config_entry *e;
  if (c == NULL || key == NULL) {
    return NULL;
  }
  e = config_find(c, key);
  return e != NULL ? e->value : NULL;
}

int app_config_foreach(const app_config *c,
                       int (*fn)(void *ud, const char *key, const char *value,
                                 int line),
                       void *ud) {
  size_t i;
  if (c == NULL || fn == NULL) {
    return 0;
  }
  for (i = 0; i < c->n; i++) {
    int rv = fn(ud, c->e[i].key, c->e[i].value, c->e[i].line);
    if (rv != 0) {
      return rv;
    }
  }
  return 0;
}

void app_config_note_key(char *out, size_t outlen, size_t *n, int changed,
                         const char *name) {
  int m;
  if (!changed) {
    return;
  }
  m = snprintf(out + *n, outlen - *n, "%s%s", *n ? "," : "", name);
  if (m > 0 && (size_t)m < outlen - *n) {
    *n += (size_t)m;
  }
}
