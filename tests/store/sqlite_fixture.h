/*
 * Helpers of the SQLite store tests: a temporary directory under /tmp
 * (removed at the end), KEK files, opening a store, a second SQLite
 * connection for fault injection.  Include after cmocka.h, with
 * _DEFAULT_SOURCE defined before the first system header.
 */
#ifndef MTCSEC_TESTS_SQLITE_FIXTURE_H
#define MTCSEC_TESTS_SQLITE_FIXTURE_H

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include <mtcsec/store_sqlite.h>

#include "crypto_fixture.h"

/* The KEK the tests provision with, and another one. */
static const uint8_t sfx_kek[MTCSEC_KEK_LEN] = {
  0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
  0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
  0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};
static const uint8_t sfx_kek2[MTCSEC_KEK_LEN] = {
  0xff, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
  0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
  0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};

#define SFX_PATH_MAX 256

/* Creates a fresh directory under /tmp into dir (SFX_PATH_MAX bytes). */
static inline void sfx_mkdtemp(char *dir) {
  snprintf(dir, SFX_PATH_MAX, "/tmp/mtcsec-store-XXXXXX");
  if (mkdtemp(dir) == NULL) {
    fail_msg("mkdtemp failed");
  }
}

/* Removes dir and the files in it (the tests create no subdirectories). */
static inline void sfx_rmtree(const char *dir) {
  char path[SFX_PATH_MAX];
  struct dirent *e;
  DIR *d = opendir(dir);
  if (d == NULL) {
    return;
  }
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
      continue;
    }
    if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >=
        (int)sizeof(path)) {
      continue;
    }
    (void)chmod(path, 0600);
    (void)unlink(path);
  }
  closedir(d);
  (void)rmdir(dir);
}

static inline void sfx_join(char *out, const char *dir, const char *name) {
  if (snprintf(out, SFX_PATH_MAX, "%s/%s", dir, name) >= SFX_PATH_MAX) {
    fail_msg("path too long");
  }
}

/* Writes len bytes to path (created or truncated) and sets its mode. */
static inline void sfx_write(const char *path, const void *data, size_t len,
                             mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  assert_int_equal(fchmod(fd, mode), 0);
  assert_int_equal(close(fd), 0);
}

/* Reads a whole file into a malloc'd buffer (NULL when missing). */
static inline uint8_t *sfx_read(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf;
  long n;
  *len = 0;
  if (f == NULL) {
    return NULL;
  }
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  n = ftell(f);
  assert_true(n >= 0);
  rewind(f);
  buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return buf;
}

/* 1 if needle (n bytes) occurs in hay (len bytes). */
static inline int sfx_contains(const uint8_t *hay, size_t len,
                               const uint8_t *needle, size_t n) {
  size_t i;
  for (i = 0; i + n <= len; i++) {
    if (memcmp(hay + i, needle, n) == 0) {
      return 1;
    }
  }
  return 0;
}

/* Opens the store at path with kek and flags; fails the test on error. */
static inline mtcsec_sqlite *sfx_open(const char *path, const uint8_t *kek,
                                      int flags) {
  mtcsec_sqlite *st = NULL;
  char err[512];
  int rv =
    mtcsec_sqlite_open(&st, path, kek, th_openssl(), flags, err, sizeof(err));
  if (rv != 0) {
    fail_msg("mtcsec_sqlite_open: %d: %s", rv, err);
  }
  return st;
}

/* Runs sql on a second connection to path. */
static inline void sfx_exec(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  char *msg = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    fail_msg("sqlite3_exec(%s): %s", sql, msg != NULL ? msg : "?");
  }
  sqlite3_close(db);
}

/* One integer from a one-row query on connection db. */
static inline int64_t sfx_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *s = NULL;
  int64_t v;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return v;
}

/* One integer from a one-row query on a second connection to path. */
static inline int64_t sfx_int_at(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  int64_t v;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  v = sfx_int(db, sql);
  sqlite3_close(db);
  return v;
}

#endif /* MTCSEC_TESTS_SQLITE_FIXTURE_H */
