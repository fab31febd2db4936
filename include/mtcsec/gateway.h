/*
 * GW role: a relay (gateway or second UE) on the device link, extended mode
 * of the paper (6 messages).  Sans-IO and allocation-free.
 *
 * A relay forwards M0 toward the device with its own ID appended to the hop
 * list (section 4), and forwards M1, M4, channel records and revocations
 * unchanged after a structural check.  Which link address a message goes to
 * is the caller's business (a relay holds one flow per UE-device pair).
 */
#ifndef MTCSEC_GATEWAY_H
#define MTCSEC_GATEWAY_H

#include <mtcsec/mtcsec.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mtcsec_gw_dir {
  MTCSEC_GW_TO_DEVICE = 0, /* came from the UE side */
  MTCSEC_GW_TO_UE = 1      /* came from the device side */
} mtcsec_gw_dir;

/** Per-type forwarding counters, indexed by type & 0x0f (0..7). */
typedef struct mtcsec_gw {
  uint8_t gwid[MTCSEC_ID_LEN];
  uint64_t forwarded[8];
  uint64_t dropped;
} mtcsec_gw;

/** Initializes gw with its 8-byte ID.  Returns 0 or INVALID_ARGUMENT. */
int mtcsec_gw_init(mtcsec_gw *gw, const uint8_t gwid[MTCSEC_ID_LEN]);

/**
 * Relays one datagram in direction dir into dest.  Toward the device: M0
 * (hop appended), M4, records, revocations.  Toward the UE: M1, records.
 * Returns the length to forward, MALFORMED, UNEXPECTED (a type that does
 * not travel in that direction) or NOBUF; errors count as dropped.
 */
mtcsec_ssize mtcsec_gw_relay(mtcsec_gw *gw, mtcsec_gw_dir dir, uint8_t *dest,
                             size_t destlen, const uint8_t *in, size_t inlen);

#ifdef __cplusplus
}
#endif

#endif /* MTCSEC_GATEWAY_H */
