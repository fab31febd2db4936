/*
 * Test helper of tests/cli: records one session in a state directory's
 * database through the store's commit operation (what mtcsd does after an
 * exchange), so that `mtcsec sessions` and `mtcsec revoke` have something
 * to show.
 *
 *   usage: seed_session DIR MTCdID UEID NONCE_HEX KEY_ID
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtcsec/mtcsec.h>
#include <mtcsec/crypto.h>
#include <mtcsec/store_sqlite.h>

#include "app.h"

int main(int argc, char **argv) {
  char path[4096], err[512];
  uint8_t kek[MTCSEC_KEK_LEN];
  mtcsec_crypto crypto;
  mtcsec_sqlite *st = NULL;
  mtcsec_sqlite_devinfo info;
  mtcsec_store_txn txn;
  mtcsec_store_txn *txns[1];
  int result = -1, rv = 1, i;

  if (argc != 6) {
    fprintf(stderr, "usage: seed_session DIR MTCdID UEID NONCE_HEX KEY_ID\n");
    return 2;
  }
  memset(&txn, 0, sizeof(txn));
  if (app_parse_id(argv[2], txn.session.mtcd_id) != 0 ||
      app_parse_id(argv[3], txn.session.ueid) != 0 ||
      app_parse_hex(argv[4], txn.session.mtcd_nonce, MTCSEC_NONCE_LEN) != 0) {
    fprintf(stderr, "seed_session: bad ID or nonce\n");
    return 2;
  }
  for (i = 0; i < MTCSEC_NONCE_LEN; i++) {
    txn.nonce = (txn.nonce << 8) | txn.session.mtcd_nonce[i];
    txn.session.mtcs_nonce[i] = (uint8_t)(0xa0 + i);
  }
  txn.session.key_id = (uint16_t)atoi(argv[5]);
  txn.session.perms = 0x01;
  txn.session.lifetime = 3600;
  txn.session.issued_at = 1;
  txn.session.npath = 0;
  txns[0] = &txn;

  if (mtcsec_crypto_openssl_new(&crypto) != 0) {
    fprintf(stderr, "seed_session: no crypto\n");
    mtcsec_crypto_openssl_del(&crypto);
    return 1;
  }
  snprintf(path, sizeof(path), "%s/kek", argv[1]);
  if (mtcsec_kek_load(path, kek, err, sizeof(err)) != 0) {
    fprintf(stderr, "seed_session: %s\n", err);
    goto cleanup;
  }
  snprintf(path, sizeof(path), "%s/mtcsd.db", argv[1]);
  if (mtcsec_sqlite_open(&st, path, kek, &crypto, 0, err, sizeof(err)) != 0) {
    fprintf(stderr, "seed_session: %s\n", err);
    st = NULL;
    goto cleanup;
  }
  if (mtcsec_sqlite_device_get(st, txn.session.mtcd_id, &info) != 0) {
    fprintf(stderr, "seed_session: no such device\n");
    goto cleanup;
  }
  txn.session.suite = info.suite;
  if (mtcsec_sqlite_ops.commit(st, txns, 1, &result) != 0 || result != 0) {
    fprintf(stderr, "seed_session: commit failed (%d)\n", result);
    goto cleanup;
  }
  rv = 0;

cleanup:
  mtcsec_zeroize(kek, sizeof(kek));
  mtcsec_sqlite_close(st);
  mtcsec_crypto_openssl_del(&crypto);
  return rv;
}
