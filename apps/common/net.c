/*
 * Sockets (apps/common/app.h): "host:port", "[v6]:port" or ":port"
 * addresses, listening and connected TCP sockets, bound UDP sockets.  Every
 * descriptor is non-blocking and close-on-exec.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app.h"

/* How long app_tcp_connect() waits for the connection, ms. */
#define NET_CONNECT_TIMEOUT_MS 10000

/* Splits addr into host (NULL for ":port") and port.  0 or -1 with err. */
static int net_split(const char *addr, char *host, size_t hostlen, char *port,
                     size_t portlen, int *wildcard, char *err, size_t errlen) {
  const char *colon, *h;
  size_t hl;

  *wildcard = 0;
  if (addr == NULL || addr[0] == '\0') {
    snprintf(err, errlen, "empty address");
    return -1;
  }
  if (addr[0] == '[') {
    const char *close = strchr(addr, ']');
    if (close == NULL || close[1] != ':') {
      snprintf(err, errlen, "%s: expected [v6-address]:port", addr);
      return -1;
    }
    h = addr + 1;
    hl = (size_t)(close - h);
    colon = close + 1;
  } else {
    colon = strrchr(addr, ':');
    if (colon == NULL) {
      snprintf(err, errlen, "%s: expected host:port", addr);
      return -1;
    }
    if (memchr(addr, ':', (size_t)(colon - addr)) != NULL) {
      snprintf(err, errlen, "%s: write IPv6 addresses as [address]:port", addr);
      return -1;
    }
    h = addr;
    hl = (size_t)(colon - addr);
  }
  if (hl >= hostlen || strlen(colon + 1) >= portlen) {
    snprintf(err, errlen, "%s: address too long", addr);
    return -1;
  }
  if (colon[1] == '\0' ||
      strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
      strlen(colon + 1) > 5) {
    snprintf(err, errlen, "%s: bad port", addr);
    return -1;
  }
  memcpy(host, h, hl);
  host[hl] = '\0';
  memcpy(port, colon + 1, strlen(colon + 1) + 1);
  if (hl == 0) {
    *wildcard = 1;
  }
  return 0;
}

/* getaddrinfo for addr.  passive: wildcard host means every interface;
 * otherwise it means the loopback. */
static struct addrinfo *net_lookup(const char *addr, int socktype, int passive,
                                   char *err, size_t errlen) {
  char host[256], port[8];
  struct addrinfo hints, *res = NULL;
  int wildcard, rv;

  if (net_split(addr, host, sizeof(host), port, sizeof(port), &wildcard, err,
                errlen) != 0) {
    return NULL;
  }
  if (atoi(port) > 65535) {
    snprintf(err, errlen, "%s: bad port", addr);
    return NULL;
  }
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socktype;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  rv = getaddrinfo(wildcard ? NULL : host, port, &hints, &res);
  if (rv != 0) {
    snprintf(err, errlen, "%s: %s", addr, gai_strerror(rv));
    return NULL;
  }
  return res;
}

static int net_bind(const char *addr, int socktype, int listening, char *err,
                    size_t errlen) {
  struct addrinfo *res, *ai;
  int fd = -1, saved = 0;

  res = net_lookup(addr, socktype, 1, err, errlen);
  if (res == NULL) {
    return -1;
  }
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    int one = 1;
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                ai->ai_protocol);
    if (fd < 0) {
      saved = errno;
      continue;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
        (!listening || listen(fd, 1024) == 0)) {
      break;
    }
    saved = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    snprintf(err, errlen, "%s: cannot %s: %s", addr,
             listening ? "listen" : "bind", strerror(saved));
  }
  return fd;
}

int app_tcp_listen(const char *addr, char *err, size_t errlen) {
  return net_bind(addr, SOCK_STREAM, 1, err, errlen);
}

int app_udp_bind(const char *addr, char *err, size_t errlen) {
  return net_bind(addr, SOCK_DGRAM, 0, err, errlen);
}

/* Waits for a non-blocking connect; 0 or an errno value. */
static int net_wait_connect(int fd) {
  struct pollfd p;
  int soerr = 0, rv;
  socklen_t sl = sizeof(soerr);

  p.fd = fd;
  p.events = POLLOUT;
  p.revents = 0;
  do {
    rv = poll(&p, 1, NET_CONNECT_TIMEOUT_MS);
  } while (rv < 0 && errno == EINTR);
  if (rv < 0) {
    return errno;
  }
  if (rv == 0) {
    return ETIMEDOUT;
  }
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
    return errno;
  }
  return soerr;
}

int app_tcp_connect(const char *addr, char *err, size_t errlen) {
  struct addrinfo *res, *ai;
  int fd = -1, saved = 0;

  res = net_lookup(addr, SOCK_STREAM, 0, err, errlen);
  if (res == NULL) {
    return -1;
  }
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                ai->ai_protocol);
    if (fd < 0) {
      saved = errno;
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      break;
    }
    saved = errno;
    if (saved == EINPROGRESS) {
      saved = net_wait_connect(fd);
      if (saved == 0) {
        break;
      }
    }
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    snprintf(err, errlen, "%s: cannot connect: %s", addr, strerror(saved));
  }
  return fd;
}

int app_resolve(const char *addr, struct sockaddr_storage *ss, unsigned *sslen,
                char *err, size_t errlen) {
  struct addrinfo *res;

  if (ss == NULL || sslen == NULL) {
    snprintf(err, errlen, "no output for the address");
    return -1;
  }
  res = net_lookup(addr, SOCK_DGRAM, 0, err, errlen);
  if (res == NULL) {
    return -1;
  }
  if (res->ai_addrlen > sizeof(*ss)) {
    freeaddrinfo(res);
    snprintf(err, errlen, "%s: address too long", addr);
    return -1;
  }
  memset(ss, 0, sizeof(*ss));
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *sslen = (unsigned)res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}
