/*
 * Internal declarations of the cellular module (never installed).
 */
#ifndef MTCSEC_CELLULAR_INT_H
#define MTCSEC_CELLULAR_INT_H

#include <stddef.h>
#include <stdint.h>

#include <mtcsec/cellular.h>

/*
 * libosmogsm (1.7.0) exports the MILENAGE primitives of its
 * src/gsm/milenage/milenage.c, but installs no header for them; libosmocore's
 * own tests declare them the same way.  Checked with `nm -D libosmogsm.so`:
 * milenage_f1, milenage_f2345 and milenage_opc_gen are exported (version
 * node LIBOSMOGSM_1.0).  All return 0 on success and -1 on failure; every
 * output pointer may be NULL.
 */
int milenage_f1(const uint8_t *opc, const uint8_t *k, const uint8_t *_rand,
                const uint8_t *sqn, const uint8_t *amf, uint8_t *mac_a,
                uint8_t *mac_s);
int milenage_f2345(const uint8_t *opc, const uint8_t *k, const uint8_t *_rand,
                   uint8_t *res, uint8_t *ck, uint8_t *ik, uint8_t *ak,
                   uint8_t *akstar);
int milenage_opc_gen(uint8_t *opc, const uint8_t *k, const uint8_t *op);

/* The first two 32-bit words of the EIA2 message / EEA2 counter block:
 * COUNT(32) || BEARER(5) || DIRECTION(1) || 0^26 (TS 33.401 B.1.3, B.2.3). */
void mtcsec_3gpp_count_block(uint8_t out[8], uint32_t count, uint8_t bearer,
                             uint8_t direction);

/* 1 if sapi is one TS 44.064 6.2.3 does not reserve. */
int mtcsec_llc_sapi_valid(uint8_t sapi);

#endif /* MTCSEC_CELLULAR_INT_H */
