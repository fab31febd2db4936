/*
 * What the cellular agents share: trace lines, socket names, randomness.
 */
#define _GNU_SOURCE

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "agent_cell.h"
#include "agent_common.h"
#include "cellsim.h"

void cell_trace(const char *from, const char *to, const char *name, size_t len,
                const char *note) {
  if (!agent_trace_enabled()) {
    return;
  }
  printf("  %9.1f ms  %-4s -> %-4s  %-19s %4zu B%s%s\n", agent_elapsed_ms(),
         from, to, name, len, note != NULL ? "  " : "",
         note != NULL ? note : "");
  fflush(stdout);
}

const char *cell_sock_name(int fd, char *out, size_t outlen) {
  agent_addr a;
  a.len = sizeof(a.ss);
  if (getsockname(fd, (struct sockaddr *)&a.ss, &a.len) != 0) {
    snprintf(out, outlen, "?");
    return out;
  }
  return agent_addr_str(&a, out, outlen);
}

uint32_t cell_random32(const mtcsec_crypto *crypto) {
  uint8_t b[4];
  uint32_t v;
  int tries;
  for (tries = 0; tries < 8; tries++) {
    if (crypto->ops->random(crypto->ctx, b, sizeof(b)) != 0) {
      return 0;
    }
    v = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) |
        ((uint32_t)b[2] << 8) | b[3];
    if (v != 0) {
      return v;
    }
  }
  return 0;
}

uint32_t cell_unique_id32(const mtcsec_crypto *crypto,
                          int (*taken)(void *arg, uint32_t v), void *arg) {
  unsigned tries;
  for (tries = 0; tries < CELL_ID_TRIES; tries++) {
    uint32_t v = cell_random32(crypto);
    if (v == 0) {
      return 0; /* the provider failed */
    }
    if (!taken(arg, v)) {
      return v;
    }
  }
  return 0;
}

int cell_policy_acceptable(int offered, int integrity_required) {
  return !integrity_required || (offered & CELLSIM_POLICY_INTEGRITY) != 0;
}

int cell_addr_host(const char *addr, char *host, size_t hostlen) {
  const char *end;
  size_t n;
  if (addr[0] == '[') {
    end = strchr(addr, ']');
    if (end == NULL || end[1] != ':') {
      return -1;
    }
    addr++;
  } else {
    end = strrchr(addr, ':');
    if (end == NULL) {
      return -1;
    }
  }
  n = (size_t)(end - addr);
  if (n == 0 || n >= hostlen) {
    return -1;
  }
  memcpy(host, addr, n);
  host[n] = '\0';
  return 0;
}

const char *cell_policy_name(int flags) {
  switch (flags & 0x03) {
  case 0x01:
    return "integrity";
  case 0x02:
    return "ciphering";
  case 0x03:
    return "integrity+ciphering";
  default:
    return "fcs";
  }
}

void cell_escape(char *out, size_t outlen, const uint8_t *p, size_t len) {
  size_t i, o = 0;
  if (outlen == 0) {
    return;
  }
  for (i = 0; i < len; i++) {
    if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
      if (o + 2 > outlen) {
        break;
      }
      out[o++] = (char)p[i];
    } else {
      if (o + 5 > outlen) {
        break;
      }
      snprintf(out + o, 5, "\\x%02x", p[i]);
      o += 4;
    }
  }
  out[o] = '\0';
}
