/*
 * Helpers shared by the tests of the server core (tests/unit/test_server.c
 * over the in-memory store, tests/store/test_sqlite_server.c over SQLite):
 * the identities and the PSKey they provision, M1 and MTCdInfo builders,
 * sending M2 frames and reading answers, and the device's check of an M3.
 * Every helper fails the running cmocka test on an unexpected result.
 * Include after cmocka.h.
 */
#ifndef MTCSEC_TESTS_SERVER_FIXTURE_H
#define MTCSEC_TESTS_SERVER_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <mtcsec/server.h>
#include <mtcsec/codec.h>

#include "crypto_fixture.h"

/* The server, devices, UEs and relays of the tests. */
extern const uint8_t th_mtcs_id[8]; /* 5e4f000000000001 */
extern const uint8_t th_dev_id[8];  /* d00d000000000001 */
extern const uint8_t
  th_unknown_dev[8];               /* d00d000000000099, never provisioned */
extern const uint8_t th_ue_id[8];  /* e0e0000000000001 */
extern const uint8_t th_ue2_id[8]; /* e0e0000000000002 */
extern const uint8_t th_gw1[8];    /* 9696000000000001 */
extern const uint8_t th_gw2[8];    /* 9696000000000002 */

/** The PSKey every test device is provisioned with: a0 a1 ... bf. */
extern const uint8_t th_psk[MTCSEC_MAX_KEY_LEN];

/**
 * Derives K_auth and K_dm (each MTCSEC_MAX_KEY_LEN bytes of room) of device
 * id under th_psk and th_mtcs_id, as the server derives them.
 */
void th_device_keys(const mtcsec_crypto *crypto, uint8_t suite,
                    const uint8_t id[8], uint8_t *k_auth, uint8_t *k_dm);

/** One answer frame of the server link (section 5), copied out. */
typedef struct th_answer {
  uint64_t conn;
  uint8_t type;
  uint32_t req_id;
  uint8_t body[512];
  size_t bodylen;
} th_answer;

/** The fields of an M1; every pointer is 8 bytes unless NULL is allowed. */
typedef struct th_m1 {
  uint8_t suite;
  const uint8_t *mtcd_id, *mtcs_id, *ueid, *k_auth;
  uint64_t nonce;
  const uint8_t *info; /* may be NULL when info_len is 0 */
  size_t info_len;
} th_m1;

/** Builds the M1 of o into out (outlen bytes); returns its length. */
size_t th_build_m1(const mtcsec_crypto *crypto, const th_m1 *o, uint8_t *out,
                   size_t outlen);

/**
 * Encodes an MTCdInfo into out (MTCSEC_MAX_INFO_LEN bytes): BATTERY when
 * battery >= 0, REQ_PERMS when req, a PATH of npath relays (8 bytes each)
 * when npath.  Returns its length (0 when it holds nothing).
 */
size_t th_build_info(uint8_t *out, int battery, int req, uint8_t req_perms,
                     const uint8_t *path, uint8_t npath);

/** Hands one frame (type, req_id, body) of UE ueid on conn to the server;
 *  returns what mtcsec_srv_recv() returns. */
int th_srv_send(mtcsec_srv *srv, uint64_t conn, const uint8_t *ueid,
                uint8_t type, uint32_t req_id, const uint8_t *body,
                size_t bodylen, mtcsec_tstamp now);

/** Reads one queued answer into *a: 1, or 0 when the queue is empty. */
int th_srv_read(mtcsec_srv *srv, th_answer *a);

/**
 * One whole exchange: the M2 (m1 of UE ueid, on conn), a commit, and
 * exactly one answer with req_id.  Returns 0 for an M3 (in *a when a is not
 * NULL), else the ERR code.
 */
uint8_t th_srv_exchange(mtcsec_srv *srv, uint64_t conn, const uint8_t *ueid,
                        uint32_t req_id, const uint8_t *m1, size_t m1len,
                        mtcsec_tstamp now, th_answer *a);

/**
 * The device's side of an M3 answering m1 (section 4): the M4 names
 * th_mtcs_id, the device and the UE of m1, verifies under k_auth with the
 * device's own nonce and info, and DMKey is the one the device derives
 * from k_dm.  Returns the decoded MTCsInfo.
 */
mtcsec_sinfo th_check_m3(const mtcsec_crypto *crypto, uint8_t suite,
                         const uint8_t *k_auth, const uint8_t *k_dm,
                         const th_answer *a, const uint8_t *m1, size_t m1len);

#endif /* MTCSEC_TESTS_SERVER_FIXTURE_H */
