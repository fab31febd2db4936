/*
 * Structured logs (apps/common/app.h): one line per event,
 *   ts=<RFC 3339 UTC, ms> level=<lvl> prog=<name> key=value ...
 * Lines from several threads never interleave (one locked write per line).
 * The level can change at run time (SIGHUP) from any thread.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "app.h"

/* Longest line; longer bodies are cut and end with "...". */
#define LOG_LINE_MAX 2048

static _Atomic int log_level = MTCSEC_LOG_INFO;
static FILE *log_out;
static char log_prog[32] = "mtcsec";
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void app_log_init(const char *prog, int level, FILE *out) {
  pthread_mutex_lock(&log_mu);
  if (prog != NULL) {
    snprintf(log_prog, sizeof(log_prog), "%s", prog);
  }
  log_out = out;
  pthread_mutex_unlock(&log_mu);
  app_log_set_level(level);
}

void app_log_set_level(int level) {
  if (level < MTCSEC_LOG_ERROR) {
    level = MTCSEC_LOG_ERROR;
  }
  if (level > MTCSEC_LOG_DEBUG) {
    level = MTCSEC_LOG_DEBUG;
  }
  atomic_store(&log_level, level);
}

int app_log_level(void) { return atomic_load(&log_level); }

int app_parse_log_level(const char *s, int *level) {
  int i;
  if (s == NULL || level == NULL) {
    return -1;
  }
  for (i = 0; i < 4; i++) {
    if (strcmp(s, level_names[i]) == 0) {
      *level = i;
      return 0;
    }
  }
  return -1;
}

/* Writes the "ts=... level=... prog=... " prefix; returns its length. */
static size_t log_prefix(char *buf, size_t len, int level) {
  struct timespec ts;
  struct tm tm;
  char when[32];
  int n;

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
  n = snprintf(buf, len, "ts=%s.%03ldZ level=%s prog=%s ", when,
               ts.tv_nsec / 1000000L, level_names[level], log_prog);
  if (n < 0) {
    return 0;
  }
  return (size_t)n < len ? (size_t)n : len - 1;
}

static void log_emit(char *line, size_t n, size_t cap) {
  FILE *out;
  if (n >= cap - 1) {
    /* Cut: mark it. */
    n = cap - 2;
    memcpy(line + n - 3, "...", 3);
  }
  line[n++] = '\n';
  pthread_mutex_lock(&log_mu);
  out = log_out != NULL ? log_out : stderr;
  fwrite(line, 1, n, out);
  fflush(out);
  pthread_mutex_unlock(&log_mu);
}

void app_log(int level, const char *fmt, ...) {
  char line[LOG_LINE_MAX];
  size_t n;
  va_list ap;
  int m;

  if (level < MTCSEC_LOG_ERROR || level > atomic_load(&log_level)) {
    return;
  }
  n = log_prefix(line, sizeof(line), level);
  va_start(ap, fmt);
  m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
  va_end(ap);
  if (m < 0) {
    return;
  }
  n += (size_t)m;
  if (n > sizeof(line) - 1) {
    n = sizeof(line) - 1;
  }
  log_emit(line, n, sizeof(line));
}

/*
 * The library's lines look like "srv ue=... result=...": a module word, then
 * key=value pairs.  The word becomes mod=<word>.
 */
void app_log_hook(void *user_data, int level, const char *msg) {
  const char *sp;
  size_t wl;
  (void)user_data;
  if (msg == NULL) {
    return;
  }
  sp = strchr(msg, ' ');
  wl = sp != NULL ? (size_t)(sp - msg) : strlen(msg);
  if (wl > 0 && memchr(msg, '=', wl) == NULL) {
    app_log(level, "mod=%.*s%s", (int)wl, msg, sp != NULL ? sp : "");
  } else {
    app_log(level, "%s", msg);
  }
}
