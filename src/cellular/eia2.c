/*
 * 128-EIA2 and 128-EEA2 (TS 33.401 Annex B.2.3 and B.1.3) over the crypto
 * provider: AES-CMAC through its mac op, AES-CTR through its aes_ctr op.
 * mtcsec implements neither AES nor CMAC; what is ours is only the framing
 * of COUNT/BEARER/DIRECTION and the handling of bit-granular lengths.
 */
#include <string.h>

#include <mtcsec/cellular.h>

#include "cellular/cellular_int.h"
#include "core/util.h"

#define AES_BLOCK 16

void mtcsec_3gpp_count_block(uint8_t out[8], uint32_t count, uint8_t bearer,
                             uint8_t direction) {
  mtcsec_put_u32(out, count);
  out[4] = (uint8_t)(((bearer & 0x1f) << 3) | ((direction & 1) << 2));
  out[5] = 0;
  out[6] = 0;
  out[7] = 0;
}

/* SP 800-38B subkey doubling: out = in << 1, XOR Rb = 0x87 if the top bit
 * was set (without a branch on the secret bit). */
static void eia2_dbl(uint8_t out[AES_BLOCK], const uint8_t in[AES_BLOCK]) {
  uint8_t rb = (uint8_t)(0x87 & (0u - (unsigned)(in[0] >> 7)));
  size_t i;

  for (i = 0; i < AES_BLOCK - 1; i++) {
    out[i] = (uint8_t)((in[i] << 1) | (in[i + 1] >> 7));
  }
  out[AES_BLOCK - 1] = (uint8_t)((in[AES_BLOCK - 1] << 1) ^ rb);
}

static int eia2_args_ok(const mtcsec_crypto *crypto, const uint8_t *key,
                        uint8_t bearer, uint8_t direction) {
  return crypto != NULL && crypto->ops != NULL && key != NULL &&
         bearer <= MTCSEC_3GPP_BEARER_MAX && direction <= 1;
}

int mtcsec_eia2(const mtcsec_crypto *crypto,
                const uint8_t key[MTCSEC_EIA2_KEY_LEN], uint32_t count,
                uint8_t bearer, uint8_t direction, const uint8_t *msg,
                size_t bitlen, uint8_t mac_i[MTCSEC_EIA2_MAC_LEN]) {
  static const uint8_t zero[AES_BLOCK] = {0};
  uint8_t hdr[8];
  uint8_t l[AES_BLOCK], k1[AES_BLOCK], k2[AES_BLOCK];
  uint8_t last[AES_BLOCK];
  mtcsec_iov iov[3];
  size_t niov = 0, totbits, full, rembits, nb, pos, i;
  int rv = MTCSEC_ERR_INVALID_ARGUMENT;

  if (!eia2_args_ok(crypto, key, bearer, direction) || mac_i == NULL ||
      crypto->ops->mac == NULL || (msg == NULL && bitlen != 0) ||
      bitlen > SIZE_MAX - 2 * 8 * AES_BLOCK) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  /* M = COUNT || BEARER || DIRECTION || 0^26 || MESSAGE (B.2.3). */
  mtcsec_3gpp_count_block(hdr, count, bearer, direction);

  if (bitlen % 8 == 0) {
    /* Whole bytes: the provider's CMAC pads a partial last block itself. */
    iov[0].base = hdr;
    iov[0].len = sizeof(hdr);
    iov[1].base = msg;
    iov[1].len = bitlen / 8;
    return crypto->ops->mac(crypto->ctx, MTCSEC_MAC_AES_CMAC, key,
                            MTCSEC_EIA2_KEY_LEN, iov, 2, mac_i,
                            MTCSEC_EIA2_MAC_LEN);
  }

  /*
   * A bit string whose length is not a multiple of 8.  Byte-oriented CMAC
   * APIs cannot express it, so we adapt the input, not the algorithm
   * (SP 800-38B 6.2): CMAC pads an incomplete last block Mn* to
   * Mn* || 1 || 0^j and XORs it with subkey K2, while a complete last block
   * is XORed with K1.  We build the padded block P = Mn* || 1 || 0^j
   * ourselves and hand the provider P ^ K2 ^ K1 as a complete last block;
   * the provider XORs K1 again, which cancels, so the block cipher sees
   * P ^ K2, exactly as for the bit string.  K1 = dbl(L), K2 = dbl(K1) with
   * L = AES(K, 0^128) from the provider's aes_block op.  Every AES and CMAC
   * computation stays in the provider.
   *
   * M is 64 + bitlen bits; with bitlen % 8 != 0 its last block is always
   * incomplete.  The complete blocks before it are passed through as is.
   */
  if (crypto->ops->aes_block == NULL) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  totbits = 64 + bitlen;
  full = (totbits / (8 * AES_BLOCK)) * AES_BLOCK; /* bytes: 0 or >= 16 */
  rembits = totbits - 8 * full;                   /* 1..127, not % 8 */
  nb = (rembits + 7) / 8;

  memset(last, 0, sizeof(last));
  for (i = 0; i < nb; i++) {
    pos = full + i;
    last[i] = pos < sizeof(hdr) ? hdr[pos] : msg[pos - sizeof(hdr)];
  }
  last[rembits / 8] &= (uint8_t)(0xff00u >> (rembits % 8));
  last[rembits / 8] |= (uint8_t)(0x80u >> (rembits % 8));

  rv = crypto->ops->aes_block(crypto->ctx, key, MTCSEC_EIA2_KEY_LEN, zero, l);
  if (rv != 0) {
    goto cleanup;
  }
  eia2_dbl(k1, l);
  eia2_dbl(k2, k1);
  for (i = 0; i < AES_BLOCK; i++) {
    last[i] = (uint8_t)(last[i] ^ k2[i] ^ k1[i]);
  }

  if (full > 0) {
    iov[niov].base = hdr;
    iov[niov].len = sizeof(hdr);
    niov++;
    iov[niov].base = msg;
    iov[niov].len = full - sizeof(hdr);
    niov++;
  }
  iov[niov].base = last;
  iov[niov].len = sizeof(last);
  niov++;
  rv =
    crypto->ops->mac(crypto->ctx, MTCSEC_MAC_AES_CMAC, key, MTCSEC_EIA2_KEY_LEN,
                     iov, niov, mac_i, MTCSEC_EIA2_MAC_LEN);

cleanup:
  mtcsec_zeroize(l, sizeof(l));
  mtcsec_zeroize(k1, sizeof(k1));
  mtcsec_zeroize(k2, sizeof(k2));
  mtcsec_zeroize(last, sizeof(last));
  return rv;
}

int mtcsec_eea2(const mtcsec_crypto *crypto,
                const uint8_t key[MTCSEC_EIA2_KEY_LEN], uint32_t count,
                uint8_t bearer, uint8_t direction, const uint8_t *in,
                size_t bitlen, uint8_t *out) {
  uint8_t icb[AES_BLOCK];
  size_t nbytes;
  int rv;

  if (!eia2_args_ok(crypto, key, bearer, direction) ||
      crypto->ops->aes_ctr == NULL ||
      ((in == NULL || out == NULL) && bitlen != 0)) {
    return MTCSEC_ERR_INVALID_ARGUMENT;
  }
  nbytes = bitlen / 8 + (bitlen % 8 != 0);
  if (nbytes == 0) {
    return 0;
  }
  /* T1 = COUNT || BEARER || DIRECTION || 0^26 || 0^64 (B.1.3). */
  memset(icb, 0, sizeof(icb));
  mtcsec_3gpp_count_block(icb, count, bearer, direction);
  rv = crypto->ops->aes_ctr(crypto->ctx, key, MTCSEC_EIA2_KEY_LEN, icb, in,
                            nbytes, out);
  if (rv != 0) {
    return rv;
  }
  if (bitlen % 8 != 0) {
    out[nbytes - 1] &= (uint8_t)(0xff00u >> (bitlen % 8));
  }
  return 0;
}
