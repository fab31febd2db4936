/*
 * GSUP handling (docs/CELLULAR-HOME-PROXY.md): Send Auth Info from the
 * built-in AuC or relayed to the upstream HLR, the (IMSI, RAND) -> (CK, IK)
 * table, and P2/P3 for integrity-only subscribers: the tuples the SGSN gets
 * hold RAND, SRES, IK, AUTN and XRES but neither CK nor Kc (Kc = c3(CK, IK)
 * is a ciphering key too), and the message carries the policy IE
 * HP_GSUP_POLICY_IE (integrity on, ciphering off).
 *
 * Update Location in built-in mode follows osmo-hlr (lu_fsm.c): the
 * subscriber must exist; an Insert Subscriber Data request goes to the
 * SGSN first (MSISDN when hlr.db has one; CN domain as requested, PS by
 * default; for PS one PDP info with the wildcard APN "*"), and the Update
 * Location result only follows the SGSN's Insert Subscriber Data result.
 * An ISD error, or no answer within isd_timeout, gives an Update Location
 * error (cause network failure, as osmo-hlr).
 *
 * Decoding uses libosmocore's osmo_gsup_decode().  Results are encoded
 * with osmo_gsup_encode() for the header (type, IMSI) and the tuples are
 * appended here, because libosmocore's encoder always writes CK with IK
 * and Kc with SRES.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include <osmocom/core/msgb.h>
#include <osmocom/crypt/auth.h>
#include <osmocom/gsm/apn.h>
#include <osmocom/gsm/gsm48_ie.h>
#include <osmocom/gsm/gsup.h>
#include <osmocom/gsm/protocol/gsm_04_08_gprs.h>
#include <osmocom/gsm/protocol/ipaccess.h>

#include "mtchpd.h"

#define GSUP_OUT_MAX 2048

/* Encodes the generic part of m (type, IMSI, cause ...) into out. */
static mtcsec_ssize gsup_encode_head(const struct osmo_gsup_message *m,
                                     uint8_t *out, size_t outlen) {
  struct msgb *msg = msgb_alloc(GSUP_OUT_MAX, "mtchpd-gsup");
  mtcsec_ssize rv = MTCSEC_ERR_NOBUF;
  if (msg == NULL) {
    return MTCSEC_ERR_NOMEM;
  }
  if (osmo_gsup_encode(msg, m) == 0 && msgb_length(msg) <= outlen) {
    memcpy(out, msgb_data(msg), msgb_length(msg));
    rv = (mtcsec_ssize)msgb_length(msg);
  }
  msgb_free(msg);
  return rv;
}

/* The error type answering a request type (low two bits 00 -> 01), or -1
 * for a message that is not a request. */
static int gsup_err_type(unsigned type) {
  return (type & 3u) == 0 ? (int)(type | 1u) : -1;
}

static int gsup_send_raw(hp_conn *c, const uint8_t *data, size_t len) {
  return hp_conn_send(c, IPAC_PROTO_OSMO, IPAC_PROTO_EXT_GSUP, data, len);
}

static int gsup_send_error(hp_conn *c, const char *imsi, int err_type,
                           enum gsm48_gmm_cause cause) {
  struct osmo_gsup_message m;
  uint8_t out[256];
  mtcsec_ssize n;
  if (err_type < 0) {
    return 0; /* no error type for this message: nothing to answer */
  }
  memset(&m, 0, sizeof(m));
  m.message_type = (enum osmo_gsup_message_type)err_type;
  snprintf(m.imsi, sizeof(m.imsi), "%s", imsi);
  m.cause = cause;
  n = gsup_encode_head(&m, out, sizeof(out));
  if (n < 0) {
    return -1;
  }
  return gsup_send_raw(c, out, (size_t)n);
}

static int gsup_send_simple(hp_conn *c, const char *imsi, int type) {
  struct osmo_gsup_message m;
  uint8_t out[256];
  mtcsec_ssize n;
  memset(&m, 0, sizeof(m));
  m.message_type = (enum osmo_gsup_message_type)type;
  snprintf(m.imsi, sizeof(m.imsi), "%s", imsi);
  n = gsup_encode_head(&m, out, sizeof(out));
  if (n < 0) {
    return -1;
  }
  return gsup_send_raw(c, out, (size_t)n);
}

static size_t gsup_put_tlv(uint8_t *p, uint8_t tag, const uint8_t *v,
                           size_t len) {
  p[0] = tag;
  p[1] = (uint8_t)len;
  memcpy(p + 2, v, len);
  return 2 + len;
}

/* SRES = c2(XRES) of TS 33.102 6.8.1.2: the XOR of the 32-bit words of
 * XRES padded to 128 bits. */
static void gsup_c2(uint8_t sres[4], const uint8_t *res, size_t res_len) {
  size_t i;
  memset(sres, 0, 4);
  for (i = 0; i < res_len && i < 16; i++) {
    sres[i % 4] ^= res[i];
  }
}

/*
 * Sends a Send Auth Info Result holding n tuples.  integrity_only: no CK,
 * no Kc, and the policy IE.
 */
static int gsup_send_sai_result(hp_conn *c, const char *imsi,
                                const struct osmo_auth_vector *v, size_t n,
                                int integrity_only) {
  struct osmo_gsup_message m;
  uint8_t out[GSUP_OUT_MAX];
  mtcsec_ssize hl;
  size_t off, i;
  int rv;

  memset(&m, 0, sizeof(m));
  m.message_type = OSMO_GSUP_MSGT_SEND_AUTH_INFO_RESULT;
  snprintf(m.imsi, sizeof(m.imsi), "%s", imsi);
  hl = gsup_encode_head(&m, out, sizeof(out));
  if (hl < 0) {
    return -1;
  }
  off = (size_t)hl;
  for (i = 0; i < n; i++) {
    size_t start = off;
    off += 2; /* tag and length of the tuple, below */
    off += gsup_put_tlv(out + off, OSMO_GSUP_RAND_IE, v[i].rand, 16);
    if (v[i].auth_types & OSMO_AUTH_TYPE_GSM) {
      off += gsup_put_tlv(out + off, OSMO_GSUP_SRES_IE, v[i].sres, 4);
      if (!integrity_only) {
        off += gsup_put_tlv(out + off, OSMO_GSUP_KC_IE, v[i].kc, 8);
      }
    }
    if (v[i].auth_types & OSMO_AUTH_TYPE_UMTS) {
      off += gsup_put_tlv(out + off, OSMO_GSUP_IK_IE, v[i].ik, 16);
      if (!integrity_only) {
        off += gsup_put_tlv(out + off, OSMO_GSUP_CK_IE, v[i].ck, 16);
      }
      off += gsup_put_tlv(out + off, OSMO_GSUP_AUTN_IE, v[i].autn, 16);
      off += gsup_put_tlv(out + off, OSMO_GSUP_RES_IE, v[i].res,
                          v[i].res_len <= 16 ? v[i].res_len : 16);
    }
    out[start] = OSMO_GSUP_AUTH_TUPLE_IE;
    out[start + 1] = (uint8_t)(off - start - 2);
  }
  if (integrity_only) {
    const uint8_t pol[2] = {HP_POLICY_VERSION, HP_POLICY_INTEGRITY_ON};
    off += gsup_put_tlv(out + off, HP_GSUP_POLICY_IE, pol, sizeof(pol));
  }
  rv = gsup_send_raw(c, out, off);
  mtcsec_zeroize(out, sizeof(out));
  return rv;
}

static int gsup_io(hp_daemon *d, const char *imsi, int sub_flag) {
  return sub_flag || hp_config_io_imsi(&d->cfg, imsi);
}

/* The vector table flags of a vector sent with gsup_send_sai_result(...,
 * integrity_only): unless the subscriber is integrity-only, CK (and Kc =
 * c3(CK, IK)) leave the home network with IK, so the visited SGSN could
 * compute K_UP = KDF(CK || IK, server ID, RAND) itself (CELLULAR.md); such
 * a vector must never get K_UP. */
static unsigned gsup_vec_flags(int integrity_only) {
  return integrity_only ? 0u : HP_VEC_CK_RELEASED;
}

/* ----------------------------------------------------- built-in AuC */

static int gsup_sai_builtin(hp_daemon *d, hp_conn *c,
                            const struct osmo_gsup_message *req) {
  struct osmo_auth_vector ov[OSMO_GSUP_MAX_NUM_AUTH_INFO];
  mtcsec_auc_sub sub;
  mtcsec_aka_vector v;
  uint8_t rand[MTCSEC_3GPP_RAND_LEN];
  uint64_t sqn, sqn_ms = 0;
  mtcsec_tstamp now = app_now_ms();
  int resync = req->auts != NULL && req->rand != NULL, rv, io;
  unsigned i, n = d->cfg.num_vectors;
  const char *why = NULL;
  enum gsm48_gmm_cause cause = GMM_CAUSE_NET_FAIL;

  memset(ov, 0, sizeof(ov));
  if (d->store == NULL) {
    why = "no_database";
    goto fail;
  }
  rv = mtcsec_auc_store_get(d->store, req->imsi, &sub, 1);
  if (rv == MTCSEC_ERR_NOT_FOUND) {
    why = "unknown_imsi";
    cause = GMM_CAUSE_IMSI_UNKNOWN;
    goto fail;
  }
  if (rv != 0) {
    app_log(MTCSEC_LOG_ERROR, "event=store_error imsi=%s err=%s msg=\"%s\"",
            req->imsi, mtcsec_strerror(rv), mtcsec_auc_store_errmsg(d->store));
    why = "store_error";
    goto fail;
  }
  io = gsup_io(d, req->imsi, sub.integrity_only);
  sqn = sub.sqn;
  for (i = 0; i < n; i++) {
    if (d->crypto.ops->random(d->crypto.ctx, rand, sizeof(rand)) != 0) {
      why = "random_failed";
      goto fail_keys;
    }
    if (i == 0 && resync) {
      rv = mtcsec_auc_resync(sub.k, sub.opc, sub.amf, &sqn, sub.ind_bitlen, 0,
                             req->rand, req->auts, rand, &v, &sqn_ms);
      if (rv == MTCSEC_ERR_MIC) {
        /* A forged AUTS, or one for another RAND: nothing changes. */
        why = "auts_invalid";
        cause = GMM_CAUSE_SYNC_FAIL;
        goto fail_keys;
      }
    } else {
      rv = mtcsec_auc_gen_vector(sub.k, sub.opc, sub.amf, &sqn, sub.ind_bitlen,
                                 0, rand, &v);
    }
    if (rv != 0) {
      why = rv == MTCSEC_ERR_EXHAUSTED ? "sqn_exhausted" : "auc_error";
      goto fail_keys;
    }
    memcpy(ov[i].rand, v.rand, 16);
    memcpy(ov[i].autn, v.autn, 16);
    memcpy(ov[i].ck, v.ck, 16);
    memcpy(ov[i].ik, v.ik, 16);
    memcpy(ov[i].res, v.xres, MTCSEC_3GPP_RES_LEN);
    ov[i].res_len = MTCSEC_3GPP_RES_LEN;
    osmo_auth_c3(ov[i].kc, v.ck, v.ik);
    gsup_c2(ov[i].sres, v.xres, MTCSEC_3GPP_RES_LEN);
    ov[i].auth_types = OSMO_AUTH_TYPE_UMTS | OSMO_AUTH_TYPE_GSM;
    mtcsec_zeroize(&v, sizeof(v));
  }
  /* SQN_HE is durable before any vector leaves (TS 33.102 C.3: a vector
   * must never be issued twice with the same SQN). */
  rv = mtcsec_auc_store_set_sqn(d->store, req->imsi, sqn);
  if (rv != 0) {
    app_log(MTCSEC_LOG_ERROR, "event=store_error imsi=%s err=%s msg=\"%s\"",
            req->imsi, mtcsec_strerror(rv), mtcsec_auc_store_errmsg(d->store));
    why = "store_error";
    goto fail_keys;
  }
  /* A normal subscriber's CK and Kc go to the SGSN below: mark those
   * vectors so that K_UP is never served for them (gsup_vec_flags). */
  for (i = 0; i < n; i++) {
    hp_cache_put(&d->cache, req->imsi, ov[i].rand, ov[i].ck, ov[i].ik,
                 gsup_vec_flags(io), now);
  }
  rv = gsup_send_sai_result(c, req->imsi, ov, n, io);
  mtcsec_zeroize(ov, sizeof(ov));
  mtcsec_zeroize(&sub, sizeof(sub));
  hp_metrics_gsup(&d->metrics, req->message_type, 1);
  atomic_fetch_add_explicit(&d->metrics.vectors_auc, n, memory_order_relaxed);
  if (io) {
    atomic_fetch_add_explicit(&d->metrics.vectors_stripped, n,
                              memory_order_relaxed);
  }
  if (resync) {
    atomic_fetch_add_explicit(&d->metrics.resync_ok, 1, memory_order_relaxed);
  }
  app_log(MTCSEC_LOG_INFO,
          "event=sai conn=%llu imsi=%s source=auc vectors=%u resync=%d "
          "policy=%s result=ok",
          (unsigned long long)c->id, req->imsi, n, resync,
          io ? "integrity-only" : "normal");
  return rv;

fail_keys:
  mtcsec_zeroize(ov, sizeof(ov));
  mtcsec_zeroize(&v, sizeof(v));
  mtcsec_zeroize(&sub, sizeof(sub));
fail:
  app_log(MTCSEC_LOG_WARN,
          "event=sai conn=%llu imsi=%s source=auc resync=%d result=error "
          "reason=%s cause=%d",
          (unsigned long long)c->id, req->imsi, resync, why, (int)cause);
  hp_metrics_gsup(&d->metrics, req->message_type, 0);
  if (resync) {
    atomic_fetch_add_explicit(&d->metrics.resync_failed, 1,
                              memory_order_relaxed);
  }
  return gsup_send_error(c, req->imsi, OSMO_GSUP_MSGT_SEND_AUTH_INFO_ERROR,
                         cause);
}

/* ------------------------------------------ Update Location (built-in) */

static hp_lu *gsup_find_lu(hp_daemon *d, const char *imsi, uint64_t conn_id) {
  size_t i;
  for (i = 0; i < HP_MAX_PENDING; i++) {
    hp_lu *l = &d->lus[i];
    if (l->used && l->conn_id == conn_id && strcmp(l->imsi, imsi) == 0) {
      return l;
    }
  }
  return NULL;
}

/* Insert Subscriber Data request, as osmo-hlr's
 * osmo_gsup_create_insert_subscriber_data_msg() builds it (but without an
 * MSISDN IE when none is known). */
static int gsup_send_isd(hp_conn *c, const char *imsi, const char *msisdn,
                         int ps) {
  struct osmo_gsup_message m;
  uint8_t msisdn_enc[OSMO_GSUP_MAX_CALLED_PARTY_BCD_LEN];
  uint8_t apn[APN_MAXLEN], out[512];
  mtcsec_ssize n;
  int l;

  memset(&m, 0, sizeof(m));
  m.message_type = OSMO_GSUP_MSGT_INSERT_DATA_REQUEST;
  snprintf(m.imsi, sizeof(m.imsi), "%s", imsi);
  if (msisdn[0] != '\0') {
    l = gsm48_encode_bcd_number(msisdn_enc, sizeof(msisdn_enc), 0, msisdn);
    if (l < 1) {
      return -1;
    }
    m.msisdn_enc = msisdn_enc;
    m.msisdn_enc_len = (size_t)l;
  }
  m.cn_domain = ps ? OSMO_GSUP_CN_DOMAIN_PS : OSMO_GSUP_CN_DOMAIN_CS;
  if (ps) {
    l = osmo_apn_from_str(apn, sizeof(apn), "*");
    if (l <= 0) {
      return -1;
    }
    m.pdp_infos[0].context_id = 1;
    m.pdp_infos[0].have_info = 1;
    m.pdp_infos[0].apn_enc = apn;
    m.pdp_infos[0].apn_enc_len = (size_t)l;
    m.num_pdp_infos = 1;
  }
  n = gsup_encode_head(&m, out, sizeof(out));
  if (n < 0) {
    return -1;
  }
  return gsup_send_raw(c, out, (size_t)n);
}

static int gsup_ul_builtin(hp_daemon *d, hp_conn *c,
                           const struct osmo_gsup_message *req) {
  mtcsec_auc_sub sub;
  hp_lu *l;
  size_t i;
  /* TS 29.002 / GSUP: PS is the default CN domain (osmo-hlr does so). */
  int ps = req->cn_domain != OSMO_GSUP_CN_DOMAIN_CS, rv;
  const char *why = NULL;

  rv = d->store != NULL ? mtcsec_auc_store_get(d->store, req->imsi, &sub, 0)
                        : MTCSEC_ERR_NOT_FOUND;
  if (rv != 0) {
    app_log(MTCSEC_LOG_INFO,
            "event=update_location conn=%llu imsi=%s result=unknown",
            (unsigned long long)c->id, req->imsi);
    hp_metrics_gsup(&d->metrics, req->message_type, 0);
    return gsup_send_error(c, req->imsi, OSMO_GSUP_MSGT_UPDATE_LOCATION_ERROR,
                           GMM_CAUSE_IMSI_UNKNOWN);
  }
  /* A repeated request from the same SGSN restarts its wait. */
  l = gsup_find_lu(d, req->imsi, c->id);
  for (i = 0; l == NULL && i < HP_MAX_PENDING; i++) {
    if (!d->lus[i].used) {
      l = &d->lus[i];
    }
  }
  if (l == NULL) {
    why = "congested";
  } else if (gsup_send_isd(c, req->imsi, sub.msisdn, ps) != 0) {
    why = "send";
    l = NULL;
  }
  if (l == NULL) {
    app_log(MTCSEC_LOG_WARN,
            "event=update_location conn=%llu imsi=%s result=error reason=%s",
            (unsigned long long)c->id, req->imsi, why);
    hp_metrics_gsup(&d->metrics, req->message_type, 0);
    return gsup_send_error(c, req->imsi, OSMO_GSUP_MSGT_UPDATE_LOCATION_ERROR,
                           GMM_CAUSE_NET_FAIL);
  }
  l->used = 1;
  /* IMSIs have at most 15 digits (checked on decode); the source buffer is
   * larger. */
  memcpy(l->imsi, req->imsi, sizeof(l->imsi));
  l->imsi[sizeof(l->imsi) - 1] = '\0';
  l->conn_id = c->id;
  l->deadline = app_now_ms() + (mtcsec_tstamp)d->cfg.isd_timeout * 1000u;
  app_log(MTCSEC_LOG_INFO,
          "event=insert_data conn=%llu imsi=%s msisdn=%s domain=%s",
          (unsigned long long)c->id, req->imsi,
          sub.msisdn[0] != '\0' ? sub.msisdn : "-", ps ? "ps" : "cs");
  return 0;
}

/* The SGSN's answer to our Insert Subscriber Data: the Update Location
 * waiting for it gets its result (or an error). */
static int gsup_isd_answer(hp_daemon *d, hp_conn *c,
                           const struct osmo_gsup_message *m) {
  hp_lu *l = gsup_find_lu(d, m->imsi, c->id);
  int ok = m->message_type == OSMO_GSUP_MSGT_INSERT_DATA_RESULT;

  if (l == NULL) {
    app_log(MTCSEC_LOG_INFO,
            "event=insert_data_orphan conn=%llu imsi=%s (no Update Location "
            "waits for it)",
            (unsigned long long)c->id, m->imsi);
    return 0;
  }
  memset(l, 0, sizeof(*l));
  hp_metrics_gsup(&d->metrics, OSMO_GSUP_MSGT_UPDATE_LOCATION_REQUEST, ok);
  if (!ok) {
    app_log(MTCSEC_LOG_WARN,
            "event=update_location conn=%llu imsi=%s result=error "
            "reason=insert_data_error cause=%d",
            (unsigned long long)c->id, m->imsi, (int)m->cause);
    return gsup_send_error(c, m->imsi, OSMO_GSUP_MSGT_UPDATE_LOCATION_ERROR,
                           GMM_CAUSE_NET_FAIL);
  }
  app_log(MTCSEC_LOG_INFO, "event=update_location conn=%llu imsi=%s result=ok",
          (unsigned long long)c->id, m->imsi);
  return gsup_send_simple(c, m->imsi, OSMO_GSUP_MSGT_UPDATE_LOCATION_RESULT);
}

static int gsup_builtin(hp_daemon *d, hp_conn *c,
                        const struct osmo_gsup_message *req) {
  switch (req->message_type) {
  case OSMO_GSUP_MSGT_SEND_AUTH_INFO_REQUEST:
    return gsup_sai_builtin(d, c, req);
  case OSMO_GSUP_MSGT_UPDATE_LOCATION_REQUEST:
    return gsup_ul_builtin(d, c, req);
  case OSMO_GSUP_MSGT_INSERT_DATA_RESULT:
  case OSMO_GSUP_MSGT_INSERT_DATA_ERROR:
    return gsup_isd_answer(d, c, req);
  case OSMO_GSUP_MSGT_PURGE_MS_REQUEST:
    hp_metrics_gsup(&d->metrics, req->message_type, 1);
    return gsup_send_simple(c, req->imsi, OSMO_GSUP_MSGT_PURGE_MS_RESULT);
  case OSMO_GSUP_MSGT_AUTH_FAIL_REPORT:
    hp_metrics_gsup(&d->metrics, req->message_type, 1);
    app_log(MTCSEC_LOG_WARN, "event=auth_fail_report conn=%llu imsi=%s",
            (unsigned long long)c->id, req->imsi);
    return 0;
  default:
    if ((req->message_type & 3) != 0) {
      return 0; /* a result or error from the SGSN: nothing to do */
    }
    hp_metrics_gsup(&d->metrics, req->message_type, 0);
    app_log(MTCSEC_LOG_INFO,
            "event=gsup_unsupported conn=%llu imsi=%s type=0x%02x",
            (unsigned long long)c->id, req->imsi, (unsigned)req->message_type);
    return gsup_send_error(c, req->imsi,
                           gsup_err_type((unsigned)req->message_type),
                           GMM_CAUSE_MSGT_NOTEXIST_NOTIMPL);
  }
}

/* ------------------------------------------------------------- upstream */

static int gsup_relay_up(hp_daemon *d, hp_conn *c,
                         const struct osmo_gsup_message *req,
                         const uint8_t *data, size_t len) {
  size_t i;
  hp_pending *p = NULL;

  if ((req->message_type & 3) != 0) {
    /* A result/error answering the HLR (Insert Subscriber Data ...), or an
     * Authentication Failure Report (type 0x0b), which has no answer. */
    if (req->message_type == OSMO_GSUP_MSGT_AUTH_FAIL_REPORT) {
      hp_metrics_gsup(&d->metrics, req->message_type,
                      d->up != NULL && d->up->ready);
    }
    if (d->up != NULL && d->up->ready) {
      (void)gsup_send_raw(d->up, data, len);
    }
    return 0;
  }
  if (d->up == NULL || !d->up->ready) {
    hp_metrics_gsup(&d->metrics, req->message_type, 0);
    if (req->auts != NULL) {
      atomic_fetch_add_explicit(&d->metrics.resync_failed, 1,
                                memory_order_relaxed);
    }
    app_log(MTCSEC_LOG_WARN,
            "event=relay conn=%llu imsi=%s type=0x%02x result=error "
            "reason=upstream_down",
            (unsigned long long)c->id, req->imsi, (unsigned)req->message_type);
    return gsup_send_error(c, req->imsi,
                           gsup_err_type((unsigned)req->message_type),
                           GMM_CAUSE_NET_FAIL);
  }
  for (i = 0; i < HP_MAX_PENDING; i++) {
    if (!d->pending[i].used) {
      p = &d->pending[i];
      break;
    }
  }
  if (p == NULL || gsup_send_raw(d->up, data, len) != 0) {
    hp_metrics_gsup(&d->metrics, req->message_type, 0);
    if (req->auts != NULL) {
      atomic_fetch_add_explicit(&d->metrics.resync_failed, 1,
                                memory_order_relaxed);
    }
    app_log(MTCSEC_LOG_WARN,
            "event=relay conn=%llu imsi=%s type=0x%02x result=error "
            "reason=%s",
            (unsigned long long)c->id, req->imsi, (unsigned)req->message_type,
            p == NULL ? "congested" : "send");
    return gsup_send_error(c, req->imsi,
                           gsup_err_type((unsigned)req->message_type),
                           GMM_CAUSE_NET_FAIL);
  }
  p->used = 1;
  /* IMSIs have at most 15 digits; the source buffer is larger. */
  memcpy(p->imsi, req->imsi, sizeof(p->imsi));
  p->imsi[sizeof(p->imsi) - 1] = '\0';
  p->msg_type = (uint8_t)req->message_type;
  p->resync = req->auts != NULL;
  p->conn_id = c->id;
  p->deadline = app_now_ms() + (mtcsec_tstamp)d->cfg.upstream_timeout * 1000u;
  app_log(MTCSEC_LOG_DEBUG, "event=relay_up conn=%llu imsi=%s type=0x%02x",
          (unsigned long long)c->id, req->imsi, (unsigned)req->message_type);
  return 0;
}

int hp_gsup_from_sgsn(hp_daemon *d, hp_conn *c, const uint8_t *data,
                      size_t len) {
  struct osmo_gsup_message req;
  int rv = osmo_gsup_decode(data, len, &req);

  if (rv < 0 || req.imsi[0] == '\0' ||
      !mtcsec_auc_imsi_valid(req.imsi, strlen(req.imsi))) {
    /* Without an IMSI there is nobody to answer (osmo-hlr drops too). */
    app_log(MTCSEC_LOG_WARN, "event=gsup_malformed conn=%llu len=%zu rc=%d",
            (unsigned long long)c->id, len, rv);
    hp_metrics_gsup(&d->metrics, 0, 0);
    return 0;
  }
  if (d->cfg.upstream_hlr[0] != '\0') {
    return gsup_relay_up(d, c, &req, data, len);
  }
  return gsup_builtin(d, c, &req);
}

/* The pending entry answering (imsi, type): the one with the earliest
 * deadline, i.e. the oldest request (FIFO per IMSI and type, as the
 * upstream HLR answers in order).  Requests from the HLR (type low bits 0)
 * take the oldest entry for the IMSI, of any type, without consuming it. */
static hp_pending *gsup_find_pending(hp_daemon *d, const char *imsi,
                                     uint8_t type) {
  hp_pending *best = NULL;
  size_t i;
  for (i = 0; i < HP_MAX_PENDING; i++) {
    hp_pending *p = &d->pending[i];
    if (!p->used || strcmp(p->imsi, imsi) != 0) {
      continue;
    }
    if ((type & 3) != 0 && p->msg_type != (type & 0xfc)) {
      continue;
    }
    if (best == NULL || p->deadline < best->deadline) {
      best = p;
    }
  }
  return best;
}

int hp_gsup_from_upstream(hp_daemon *d, const uint8_t *data, size_t len) {
  struct osmo_gsup_message m;
  hp_pending *p;
  hp_conn *c;
  size_t i;
  int rv = osmo_gsup_decode(data, len, &m), io, resync;
  uint8_t type;

  if (rv < 0 || !mtcsec_auc_imsi_valid(m.imsi, strlen(m.imsi))) {
    app_log(MTCSEC_LOG_WARN, "event=gsup_malformed peer=upstream len=%zu", len);
    return 0;
  }
  type = (uint8_t)m.message_type;
  p = gsup_find_pending(d, m.imsi, type);
  c = p != NULL ? hp_find_conn(d, p->conn_id) : NULL;
  resync = p != NULL && p->resync;
  if (p != NULL && (type & 3) != 0) {
    /* The answer to a relayed request: counted when it reaches the SGSN. */
    if (c != NULL) {
      int ok = (type & 3) == 2;
      hp_metrics_gsup(&d->metrics, p->msg_type, ok);
      if (p->resync) {
        atomic_fetch_add_explicit(ok ? &d->metrics.resync_ok
                                     : &d->metrics.resync_failed,
                                  1, memory_order_relaxed);
      }
    }
    memset(p, 0, sizeof(*p));
  }
  if (c == NULL) {
    app_log(MTCSEC_LOG_WARN,
            "event=relay_orphan imsi=%s type=0x%02x (no waiting SGSN)", m.imsi,
            (unsigned)type);
    return 0;
  }
  if (m.message_type != OSMO_GSUP_MSGT_SEND_AUTH_INFO_RESULT) {
    app_log(MTCSEC_LOG_INFO,
            "event=relay conn=%llu imsi=%s type=0x%02x result=relayed",
            (unsigned long long)c->id, m.imsi, (unsigned)type);
    (void)gsup_send_raw(c, data, len);
    return 0;
  }
  /* Send Auth Info Result: remember CK/IK, strip for integrity-only. */
  {
    mtcsec_auc_sub sub;
    int flag = 0;
    mtcsec_tstamp now = app_now_ms();
    if (d->store != NULL &&
        mtcsec_auc_store_get(d->store, m.imsi, &sub, 0) == 0) {
      flag = sub.integrity_only;
    }
    io = gsup_io(d, m.imsi, flag);
    for (i = 0; i < m.num_auth_vectors; i++) {
      if (m.auth_vectors[i].auth_types & OSMO_AUTH_TYPE_UMTS) {
        hp_cache_put(&d->cache, m.imsi, m.auth_vectors[i].rand,
                     m.auth_vectors[i].ck, m.auth_vectors[i].ik,
                     gsup_vec_flags(io), now);
      } else if (io) {
        app_log(MTCSEC_LOG_WARN,
                "event=sai_gsm_only imsi=%s (a 2G tuple cannot be made "
                "integrity-only)",
                m.imsi);
      }
    }
    rv =
      gsup_send_sai_result(c, m.imsi, m.auth_vectors, m.num_auth_vectors, io);
    atomic_fetch_add_explicit(&d->metrics.vectors_upstream, m.num_auth_vectors,
                              memory_order_relaxed);
    if (io) {
      atomic_fetch_add_explicit(&d->metrics.vectors_stripped,
                                m.num_auth_vectors, memory_order_relaxed);
    }
    app_log(MTCSEC_LOG_INFO,
            "event=sai conn=%llu imsi=%s source=upstream vectors=%zu "
            "resync=%d policy=%s result=ok",
            (unsigned long long)c->id, m.imsi, m.num_auth_vectors, resync,
            io ? "integrity-only" : "normal");
    mtcsec_zeroize(&m, sizeof(m));
    (void)rv; /* a failed send shows on the SGSN socket */
    return 0;
  }
}

void hp_gsup_expire(hp_daemon *d, mtcsec_tstamp now, int all) {
  size_t i;
  for (i = 0; i < HP_MAX_PENDING; i++) {
    hp_pending *p = &d->pending[i];
    hp_conn *c;
    if (!p->used || (!all && p->deadline > now)) {
      continue;
    }
    c = hp_find_conn(d, p->conn_id);
    app_log(MTCSEC_LOG_WARN,
            "event=relay imsi=%s type=0x%02x result=error reason=%s", p->imsi,
            (unsigned)p->msg_type, all ? "upstream_lost" : "timeout");
    if (c != NULL) {
      hp_metrics_gsup(&d->metrics, p->msg_type, 0);
      if (p->resync) {
        atomic_fetch_add_explicit(&d->metrics.resync_failed, 1,
                                  memory_order_relaxed);
      }
      (void)gsup_send_error(c, p->imsi, gsup_err_type(p->msg_type),
                            GMM_CAUSE_NET_FAIL);
    }
    memset(p, 0, sizeof(*p));
  }
  if (all) {
    return;
  }
  for (i = 0; i < HP_MAX_PENDING; i++) {
    hp_lu *l = &d->lus[i];
    hp_conn *c;
    if (!l->used || l->deadline > now) {
      continue;
    }
    c = hp_find_conn(d, l->conn_id);
    app_log(MTCSEC_LOG_WARN,
            "event=update_location conn=%llu imsi=%s result=error "
            "reason=insert_data_timeout",
            (unsigned long long)l->conn_id, l->imsi);
    if (c != NULL) {
      hp_metrics_gsup(&d->metrics, OSMO_GSUP_MSGT_UPDATE_LOCATION_REQUEST, 0);
      (void)gsup_send_error(c, l->imsi, OSMO_GSUP_MSGT_UPDATE_LOCATION_ERROR,
                            GMM_CAUSE_NET_FAIL);
    }
    memset(l, 0, sizeof(*l));
  }
}

void hp_gsup_conn_closed(hp_daemon *d, uint64_t conn_id) {
  size_t i;
  for (i = 0; i < HP_MAX_PENDING; i++) {
    if (d->lus[i].used && d->lus[i].conn_id == conn_id) {
      memset(&d->lus[i], 0, sizeof(d->lus[i]));
    }
  }
}
