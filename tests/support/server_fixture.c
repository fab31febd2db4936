/*
 * Helpers shared by the server core's tests (server_fixture.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "server_fixture.h"

const uint8_t th_mtcs_id[8] = {0x5e, 0x4f, 0, 0, 0, 0, 0, 0x01};
const uint8_t th_dev_id[8] = {0xd0, 0x0d, 0, 0, 0, 0, 0, 0x01};
const uint8_t th_unknown_dev[8] = {0xd0, 0x0d, 0, 0, 0, 0, 0, 0x99};
const uint8_t th_ue_id[8] = {0xe0, 0xe0, 0, 0, 0, 0, 0, 0x01};
const uint8_t th_ue2_id[8] = {0xe0, 0xe0, 0, 0, 0, 0, 0, 0x02};
const uint8_t th_gw1[8] = {0x96, 0x96, 0, 0, 0, 0, 0, 0x01};
const uint8_t th_gw2[8] = {0x96, 0x96, 0, 0, 0, 0, 0, 0x02};

const uint8_t th_psk[MTCSEC_MAX_KEY_LEN] = {
  0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa,
  0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5,
  0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf};

void th_device_keys(const mtcsec_crypto *crypto, uint8_t suite,
                    const uint8_t id[8], uint8_t *k_auth, uint8_t *k_dm) {
  assert_int_equal(mtcsec_derive_device_keys(crypto, suite, th_psk, id,
                                             th_mtcs_id, k_auth, k_dm),
                   0);
}

size_t th_build_m1(const mtcsec_crypto *crypto, const th_m1 *o, uint8_t *out,
                   size_t outlen) {
  mtcsec_m1_fields mf;
  uint8_t nonce[8];
  mtcsec_ssize n;

  mtcsec_put_u64(nonce, o->nonce);
  memset(&mf, 0, sizeof(mf));
  mf.suite = o->suite;
  mf.mtcd_id = o->mtcd_id;
  mf.mtcs_id = o->mtcs_id;
  mf.nonce = nonce;
  mf.ueid = o->ueid;
  mf.info = o->info;
  mf.info_len = o->info_len;
  n = mtcsec_m1_build(out, outlen, crypto, o->k_auth, &mf);
  assert_true(n > 0);
  return (size_t)n;
}

size_t th_build_info(uint8_t *out, int battery, int req, uint8_t req_perms,
                     const uint8_t *path, uint8_t npath) {
  mtcsec_dinfo d;
  mtcsec_ssize n;

  memset(&d, 0, sizeof(d));
  if (battery >= 0) {
    d.present |= MTCSEC_DINFO_BATTERY;
    d.battery = (uint8_t)battery;
  }
  if (req) {
    d.present |= MTCSEC_DINFO_REQ_PERMS;
    d.req_perms = req_perms;
  }
  if (npath) {
    d.present |= MTCSEC_DINFO_PATH;
    d.path = path;
    d.npath = npath;
  }
  n = mtcsec_dinfo_encode(out, MTCSEC_MAX_INFO_LEN, &d);
  if (d.present != 0) {
    assert_true(n > 0);
  } else {
    assert_int_equal(n, 0);
  }
  return (size_t)n;
}

int th_srv_send(mtcsec_srv *srv, uint64_t conn, const uint8_t *ueid,
                uint8_t type, uint32_t req_id, const uint8_t *body,
                size_t bodylen, mtcsec_tstamp now) {
  uint8_t frame[MTCSEC_FRAME_HDR_LEN + 512];
  mtcsec_ssize n =
    mtcsec_frame_encode(frame, sizeof(frame), type, req_id, body, bodylen);
  assert_true(n > 0);
  return mtcsec_srv_recv(srv, conn, ueid, frame, (size_t)n, now);
}

int th_srv_read(mtcsec_srv *srv, th_answer *a) {
  uint8_t buf[1024];
  mtcsec_frame fr;
  uint64_t conn = 0;
  mtcsec_ssize n = mtcsec_srv_write(srv, buf, sizeof(buf), &conn);

  assert_true(n >= 0);
  if (n == 0) {
    return 0;
  }
  assert_int_equal(mtcsec_frame_parse(&fr, buf, (size_t)n), n);
  memset(a, 0, sizeof(*a));
  a->conn = conn;
  a->type = fr.type;
  a->req_id = fr.req_id;
  assert_true(fr.bodylen <= sizeof(a->body));
  memcpy(a->body, fr.body, fr.bodylen);
  a->bodylen = fr.bodylen;
  return 1;
}

uint8_t th_srv_exchange(mtcsec_srv *srv, uint64_t conn, const uint8_t *ueid,
                        uint32_t req_id, const uint8_t *m1, size_t m1len,
                        mtcsec_tstamp now, th_answer *a) {
  th_answer tmp;
  th_answer *p = a != NULL ? a : &tmp;

  assert_int_equal(
    th_srv_send(srv, conn, ueid, MTCSEC_MSG_M2, req_id, m1, m1len, now), 0);
  (void)mtcsec_srv_commit(srv, now);
  assert_int_equal(th_srv_read(srv, p), 1);
  assert_int_equal(p->req_id, req_id);
  assert_int_equal(th_srv_read(srv, &tmp), 0);
  if (p->type == MTCSEC_MSG_ERR) {
    return p->body[0];
  }
  assert_int_equal(p->type, MTCSEC_MSG_M3);
  return 0;
}

mtcsec_sinfo th_check_m3(const mtcsec_crypto *crypto, uint8_t suite,
                         const uint8_t *k_auth, const uint8_t *k_dm,
                         const th_answer *a, const uint8_t *m1, size_t m1len) {
  const mtcsec_suite_params *sp = mtcsec_suite_get(suite);
  uint8_t dm[MTCSEC_MAX_KEY_LEN];
  mtcsec_hs m4, h1;
  const uint8_t *dk;
  size_t dklen;
  mtcsec_sinfo si;

  assert_non_null(sp);
  assert_int_equal(mtcsec_m3_decode(&m4, &dk, &dklen, a->body, a->bodylen), 0);
  assert_int_equal(mtcsec_hs_decode(&h1, MTCSEC_MSG_M1, m1, m1len), 0);
  assert_int_equal(m4.suite, suite);
  assert_memory_equal(m4.id_a, th_mtcs_id, 8);
  assert_memory_equal(m4.id_b, h1.id_a, 8);
  assert_memory_equal(m4.ueid, h1.ueid, 8);
  assert_int_equal(
    mtcsec_m4_verify(&m4, crypto, k_auth, h1.nonce, h1.info, h1.info_len), 0);
  assert_int_equal(dklen, sp->keylen);
  assert_int_equal(mtcsec_derive_dmkey(crypto, suite, k_dm, h1.id_a, th_mtcs_id,
                                       h1.nonce, m4.nonce, h1.ueid, dm),
                   0);
  assert_memory_equal(dm, dk, dklen);
  assert_int_equal(mtcsec_sinfo_decode(&si, m4.info, m4.info_len), 0);
  return si;
}
