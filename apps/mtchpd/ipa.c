/*
 * IPA framing (as libosmo-abis and osmo-hlr use it): a 3-byte header
 * len(16, big-endian) || proto, where len counts the bytes after the
 * header; for proto IPAC_PROTO_OSMO the first of them is the extension
 * (IPAC_PROTO_EXT_GSUP for GSUP).  CCM (proto IPAC_PROTO_IPACCESS): we
 * answer PING with PONG, ID_GET with ID_RESP (unit name), ID_RESP with
 * ID_ACK, like osmo-hlr's server and libosmo-gsup-client.  The framing
 * and the identity response are apps/common/ipa.c, shared with the SGSN
 * agent; the connection buffers are mtchpd's.
 *
 * GSUP results from the upstream HLR carry CK and IK: every message is
 * wiped from the read buffer as soon as it has been handled, and the
 * bytes the compaction leaves behind too (as the SGSN agent does), so no
 * key material waits in the buffer until a later read overwrites it.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <osmocom/gsm/protocol/ipaccess.h>

#include "ipa.h"
#include "mtchpd.h"

hp_conn *hp_conn_new(int fd, hp_conn_kind kind, uint64_t id) {
  hp_conn *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    return NULL;
  }
  c->rbuf = malloc(HP_IPA_HDR_LEN + HP_IPA_MAX_PAYLOAD);
  if (c->rbuf == NULL) {
    free(c);
    return NULL;
  }
  c->fd = fd;
  c->kind = kind;
  c->id = id;
  return c;
}

void hp_conn_free(hp_conn *c) {
  if (c == NULL) {
    return;
  }
  if (c->fd >= 0) {
    (void)close(c->fd);
  }
  /* GSUP results carry IK (and CK/Kc for normal subscribers). */
  if (c->wbuf != NULL) {
    mtcsec_zeroize(c->wbuf, c->wcap);
  }
  mtcsec_zeroize(c->rbuf, HP_IPA_HDR_LEN + HP_IPA_MAX_PAYLOAD);
  free(c->wbuf);
  free(c->rbuf);
  free(c);
}

int hp_conn_flush(hp_conn *c) {
  while (c->wlen > 0) {
    ssize_t w = write(c->fd, c->wbuf, c->wlen);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return 0;
      }
      return -1;
    }
    memmove(c->wbuf, c->wbuf + w, c->wlen - (size_t)w);
    c->wlen -= (size_t)w;
  }
  return 0;
}

int hp_conn_send(hp_conn *c, uint8_t proto, int ext, const uint8_t *data,
                 size_t len) {
  size_t plen = len + (ext >= 0 ? 1u : 0u), need = HP_IPA_HDR_LEN + plen;
  mtcsec_ssize hl;
  uint8_t *p;
  if (plen > HP_IPA_MAX_PAYLOAD || c->wlen + need > HP_WBUF_MAX) {
    return -1;
  }
  if (c->wlen + need > c->wcap) {
    size_t ncap = c->wcap == 0 ? 4096 : c->wcap;
    uint8_t *nb;
    while (ncap < c->wlen + need) {
      ncap *= 2;
    }
    nb = malloc(ncap);
    if (nb == NULL) {
      return -1;
    }
    if (c->wbuf != NULL) {
      memcpy(nb, c->wbuf, c->wlen);
      mtcsec_zeroize(c->wbuf, c->wcap);
      free(c->wbuf);
    }
    c->wbuf = nb;
    c->wcap = ncap;
  }
  p = c->wbuf + c->wlen;
  hl = ipa_encode_header(proto, ext, len, p, need);
  if (hl < 0) {
    return -1;
  }
  p += hl;
  if (len > 0) {
    memcpy(p, data, len);
  }
  c->wlen += need;
  return hp_conn_flush(c);
}

int hp_conn_read(hp_conn *c,
                 int (*fn)(void *ud, hp_conn *c, uint8_t proto, int ext,
                           const uint8_t *data, size_t len),
                 void *ud) {
  for (;;) {
    size_t room = HP_IPA_HDR_LEN + HP_IPA_MAX_PAYLOAD - c->rlen, off = 0;
    ssize_t r = read(c->fd, c->rbuf + c->rlen, room);
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
    if (r == 0) {
      return 1;
    }
    c->rlen += (size_t)r;
    c->last_rx = app_now_ms();
    c->pings = 0; /* any byte shows the peer is alive */
    /* Every complete message in the buffer. */
    for (;;) {
      ipa_msg m;
      mtcsec_ssize used = ipa_decode(&m, c->rbuf + off, c->rlen - off);
      if (used < 0) {
        return -1;
      }
      if (used == 0) {
        break;
      }
      if (fn(ud, c, m.proto, m.ext, m.data, m.len) != 0) {
        return -1; /* the caller frees c, which zeroizes the buffer */
      }
      mtcsec_zeroize(c->rbuf + off, (size_t)used);
      off += (size_t)used;
    }
    if (off > 0) {
      memmove(c->rbuf, c->rbuf + off, c->rlen - off);
      /* The tail the move copied from: a partial message's bytes. */
      mtcsec_zeroize(c->rbuf + c->rlen - off, off);
      c->rlen -= off;
    }
  }
}

int hp_ipa_send_id_get(hp_conn *c) {
  static const uint8_t req[] = {IPAC_MSGT_ID_GET, 0x01, IPAC_IDTAG_UNITNAME};
  return hp_conn_send(c, IPAC_PROTO_IPACCESS, -1, req, sizeof(req));
}

int hp_ipa_send_ping(hp_conn *c) {
  static const uint8_t ping[] = {IPAC_MSGT_PING};
  return hp_conn_send(c, IPAC_PROTO_IPACCESS, -1, ping, sizeof(ping));
}

/* ID_RESP to an ID_GET (data = the ID_GET payload, type byte first), built
 * by libosmocore with every tag the peer asked for, as osmo-sgsn's GSUP
 * client answers: osmo-hlr refuses a response without the unit ID tag. */
static int ipa_send_id_resp(hp_conn *c, const uint8_t *data, size_t len,
                            const char *unit_name) {
  uint8_t resp[2048];
  mtcsec_ssize n = ipa_make_id_resp(data, len, unit_name, resp, sizeof(resp));
  if (n < 0) {
    return -1;
  }
  return hp_conn_send(c, IPAC_PROTO_IPACCESS, -1, resp, (size_t)n);
}

int hp_ipa_ccm(hp_conn *c, const uint8_t *data, size_t len,
               const char *unit_name) {
  static const uint8_t pong[] = {IPAC_MSGT_PONG};
  static const uint8_t ack[] = {IPAC_MSGT_ID_ACK};
  if (len < 1) {
    return -1;
  }
  switch (data[0]) {
  case IPAC_MSGT_PING:
    return hp_conn_send(c, IPAC_PROTO_IPACCESS, -1, pong, sizeof(pong));
  case IPAC_MSGT_PONG:
    return 0;
  case IPAC_MSGT_ID_GET:
    if (ipa_send_id_resp(c, data, len, unit_name) != 0) {
      return -1;
    }
    if (c->kind == HP_CONN_UPSTREAM && !c->ready) {
      c->ready = 1;
      app_log(MTCSEC_LOG_INFO, "event=upstream_ready peer=%s", c->peer);
    }
    return 0;
  case IPAC_MSGT_ID_RESP:
    ipa_id_resp_unit_name(data, len, c->name, sizeof(c->name));
    c->identified = 1; /* the identity exchange is complete */
    app_log(MTCSEC_LOG_INFO, "event=gsup_peer_id conn=%llu unit=\"%s\"",
            (unsigned long long)c->id, c->name);
    return hp_conn_send(c, IPAC_PROTO_IPACCESS, -1, ack, sizeof(ack));
  case IPAC_MSGT_ID_ACK:
    return 0; /* answering an ACK with an ACK could loop */
  default:
    app_log(MTCSEC_LOG_DEBUG, "event=ipa_ccm_ignored conn=%llu type=%u",
            (unsigned long long)c->id, data[0]);
    return 0;
  }
}
