/*
 * Files (apps/common/app.h): atomic replacement and whole-file reads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"

static int file_write_all(int fd, const void *data, size_t len) {
  const uint8_t *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* fsync of the directory that holds path (so that the rename is durable). */
static int file_sync_dir(const char *path) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  int fd, rv;

  if (slash == NULL) {
    strcpy(dir, ".");
  } else if (slash == path) {
    strcpy(dir, "/");
  } else {
    size_t n = (size_t)(slash - path);
    if (n >= sizeof(dir)) {
      errno = ENAMETOOLONG;
      return -1;
    }
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return -1;
  }
  rv = fsync(fd);
  close(fd);
  return rv;
}

int app_write_file_atomic(const char *path, const void *data, size_t len,
                          unsigned mode) {
  char tmp[PATH_MAX];
  int fd, saved;

  if (path == NULL || (data == NULL && len != 0)) {
    errno = EINVAL;
    return -1;
  }
  if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >=
      sizeof(tmp)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  fd = mkostemp(tmp, O_CLOEXEC); /* created 0600: never wider than mode */
  if (fd < 0) {
    return -1;
  }
  if (fchmod(fd, (mode_t)(mode & 07777)) != 0 ||
      file_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
    goto fail;
  }
  if (close(fd) != 0) {
    fd = -1;
    goto fail;
  }
  fd = -1;
  if (rename(tmp, path) != 0) {
    goto fail;
  }
  return file_sync_dir(path);

fail:
  saved = errno;
  if (fd >= 0) {
    close(fd);
  }
  unlink(tmp);
  errno = saved;
  return -1;
}

char *app_read_file(const char *path, size_t max, size_t *len) {
  char *buf = NULL;
  size_t cap = 0, n = 0;
  int fd, saved;

  if (path == NULL) {
    errno = EINVAL;
    return NULL;
  }
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return NULL;
  }
  for (;;) {
    ssize_t r;
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 4096;
      char *nb;
      if (ncap > max + 1) {
        ncap = max + 1;
      }
      if (ncap <= cap) {
        errno = EFBIG; /* more than max bytes */
        goto fail;
      }
      nb = realloc(buf, ncap + 1);
      if (nb == NULL) {
        errno = ENOMEM;
        goto fail;
      }
      buf = nb;
      cap = ncap;
    }
    r = read(fd, buf + n, cap - n);
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      goto fail;
    }
    if (r == 0) {
      break;
    }
    n += (size_t)r;
    if (n > max) {
      errno = EFBIG;
      goto fail;
    }
  }
  close(fd);
  buf[n] = '\0';
  if (len != NULL) {
    *len = n;
  }
  return buf;

fail:
  saved = errno;
  close(fd);
  free(buf);
  errno = saved;
  return NULL;
}
