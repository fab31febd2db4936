/*
 * One GSUP Send Auth Info over IPA (tests/cellserver/gsup_sai.h).  The IPA
 * framing is len(2) || proto(1) || payload; GSUP rides in proto 0xee with
 * extension byte 0x05 (libosmocore's IPAC_PROTO_OSMO, IPAC_PROTO_EXT_GSUP).
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <osmocom/core/msgb.h>
#include <osmocom/gsm/protocol/ipaccess.h>

#include "gsup_sai.h"

static int read_full(int fd, uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) {
      return -1;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* One IPA message: the payload (after the extension byte, if any) into buf;
 * its length, or -1. */
static int ipa_recv(int fd, uint8_t *proto, int *ext, uint8_t *buf,
                    size_t buflen) {
  uint8_t h[3];
  size_t len;
  if (read_full(fd, h, 3) != 0) {
    return -1;
  }
  len = ((size_t)h[0] << 8) | h[1];
  *proto = h[2];
  if (len > buflen || read_full(fd, buf, len) != 0) {
    return -1;
  }
  *ext = -1;
  if (*proto == IPAC_PROTO_OSMO) {
    if (len < 1) {
      return -1;
    }
    *ext = buf[0];
    memmove(buf, buf + 1, len - 1);
    len--;
  }
  return (int)len;
}

static int ipa_send(int fd, uint8_t proto, int ext, const uint8_t *p,
                    size_t n) {
  uint8_t buf[2048];
  size_t plen = n + (ext >= 0 ? 1 : 0), off = 3;
  if (plen + 3 > sizeof(buf)) {
    return -1;
  }
  buf[0] = (uint8_t)(plen >> 8);
  buf[1] = (uint8_t)plen;
  buf[2] = proto;
  if (ext >= 0) {
    buf[off++] = (uint8_t)ext;
  }
  memcpy(buf + off, p, n);
  return write(fd, buf, off + n) == (ssize_t)(off + n) ? 0 : -1;
}

int gsup_sai_connect(int port) {
  static const uint8_t resp[] = {IPAC_MSGT_ID_RESP,
                                 0x00,
                                 0x0a,
                                 IPAC_IDTAG_UNITNAME,
                                 'T',
                                 'E',
                                 'S',
                                 'T',
                                 '-',
                                 'S',
                                 'G',
                                 'S',
                                 0};
  struct sockaddr_in sa;
  struct timeval tv = {5, 0};
  uint8_t buf[512], proto;
  int fd = socket(AF_INET, SOCK_STREAM, 0), ext, n;

  if (fd < 0) {
    return -1;
  }
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  n = ipa_recv(fd, &proto, &ext, buf, sizeof(buf));
  if (n < 1 || proto != IPAC_PROTO_IPACCESS || buf[0] != IPAC_MSGT_ID_GET ||
      ipa_send(fd, IPAC_PROTO_IPACCESS, -1, resp, sizeof(resp)) != 0) {
    close(fd);
    return -1;
  }
  n = ipa_recv(fd, &proto, &ext, buf, sizeof(buf));
  if (n < 1 || proto != IPAC_PROTO_IPACCESS || buf[0] != IPAC_MSGT_ID_ACK) {
    close(fd);
    return -1;
  }
  return fd;
}

int gsup_sai(int fd, const char *imsi, struct osmo_gsup_message *res,
             uint8_t *raw, size_t rawlen) {
  struct osmo_gsup_message m;
  struct msgb *msg = msgb_alloc(1024, "gsup_sai");
  uint8_t proto;
  int ext, n, rv;

  if (msg == NULL) {
    return -1;
  }
  memset(&m, 0, sizeof(m));
  m.message_type = OSMO_GSUP_MSGT_SEND_AUTH_INFO_REQUEST;
  snprintf(m.imsi, sizeof(m.imsi), "%s", imsi);
  rv = osmo_gsup_encode(msg, &m) == 0
         ? ipa_send(fd, IPAC_PROTO_OSMO, IPAC_PROTO_EXT_GSUP, msgb_data(msg),
                    msgb_length(msg))
         : -1;
  msgb_free(msg);
  if (rv != 0) {
    return -1;
  }
  for (;;) {
    n = ipa_recv(fd, &proto, &ext, raw, rawlen);
    if (n <= 0) {
      return -1;
    }
    if (proto == IPAC_PROTO_OSMO && ext == IPAC_PROTO_EXT_GSUP) {
      break;
    }
  }
  if (osmo_gsup_decode(raw, (size_t)n, res) != 0 ||
      strcmp(res->imsi, imsi) != 0) {
    return -1;
  }
  return 0;
}
