/*
 * Inner entry points of the core for the device role (never installed).
 *
 * Each one does the work of a public function of codec.h, channel.h or the
 * key schedule without the argument checks of its public wrapper: NULL
 * pointers, unknown suites, lengths the caller itself chose.  The device
 * role has validated those once, at its own API (mtcsec_dev_init() and the
 * MTCSEC_CFG_CHECK_PARAMS checks of device.h), so checking them again on
 * every call only costs flash.  Checks of received bytes are never skipped:
 * framing, lengths, TLV rules, MICs, tags and the replay window are those
 * of the public functions, which call the same code.
 *
 * sp is the suite of the call (mtcsec_suite_get()), never NULL; its key
 * length fits MTCSEC_CFG_MAX_KEY_LEN where a key is stored.
 */
#ifndef MTCSEC_CORE_INTERNAL_H
#define MTCSEC_CORE_INTERNAL_H

#include <mtcsec/mtcsec.h>
#include <mtcsec/channel.h>
#include <mtcsec/codec.h>
#include <mtcsec/crypto.h>

/* ---------------------------------------------------------------- util */

/** The suites of section 2, in order (0x01, 0x02, 0x03). */
extern const mtcsec_suite_params mtcsec_suite_table[3];

/**
 * mtcsec_window_check() of n and, when upd is not NULL and n is new, the
 * window after mtcsec_window_update() written to upd (which may be w):
 * one code path for both.  Returns 0 or MTCSEC_ERR_REPLAY (upd untouched).
 */
int mtcsec_window_step(const mtcsec_window *w, uint64_t n, mtcsec_window *upd);

/* ---------------------------------------------------------------- codec */

/**
 * mtcsec_m4_decode() without the NULL checks and without zeroing the
 * outputs on error (they are then unspecified).  Returns 0 or MALFORMED.
 */
int mtcsec_m4_parse(mtcsec_hs *m4, mtcsec_sinfo *si, const uint8_t *in,
                    size_t inlen);

/**
 * mtcsec_m1_build_encoded() for a caller that has checked its arguments:
 * f->suite is sp's, f->info holds f->info_len <= 255 bytes of well-formed
 * MTCdInfo, and dest has room for 35 + info_len + sp->miclen bytes.
 * Returns the length or the provider's error (dest is then wiped).
 */
mtcsec_ssize mtcsec_m1_write(uint8_t *dest, const mtcsec_crypto *crypto,
                             const mtcsec_suite_params *sp,
                             const uint8_t *k_auth, const mtcsec_m1_fields *f);

/**
 * Computes MIC(key, iov...) with sp's MAC and compares its t bytes with
 * expect in constant time.  Returns 0, MTCSEC_ERR_MIC or the provider's
 * error; the computed MIC is wiped.
 */
int mtcsec_mic_check(const mtcsec_crypto *crypto, const mtcsec_suite_params *sp,
                     const uint8_t *key, const mtcsec_iov *iov, size_t iovcnt,
                     const uint8_t *expect);

/**
 * mtcsec_m4_verify_tail() of an M4 that mtcsec_m4_parse() accepted with
 * suite sp, against m1_tail = MTCdNonce || info_len || MTCdInfo of the M1
 * it answers (m1_tail_len = 9 + m1_tail[8]).
 */
int mtcsec_m4_check(const mtcsec_hs *m4, const mtcsec_crypto *crypto,
                    const mtcsec_suite_params *sp, const uint8_t *k_auth,
                    const uint8_t *m1_tail, size_t m1_tail_len);

/* --------------------------------------------------------- key schedule */

/**
 * K_auth and K_dm from pskey (section 2); ids = MTCdID || MTCsID (16
 * bytes).  Outputs are zeroed on failure.
 */
int mtcsec_kdf_device_keys(const mtcsec_crypto *crypto,
                           const mtcsec_suite_params *sp, const uint8_t *pskey,
                           const uint8_t *ids, uint8_t *k_auth, uint8_t *k_dm);

/** DMKey (section 4); ids = MTCdID || MTCsID (16 bytes). */
int mtcsec_kdf_dmkey(const mtcsec_crypto *crypto, const mtcsec_suite_params *sp,
                     const uint8_t *k_dm, const uint8_t *ids,
                     const uint8_t *mtcd_nonce, const uint8_t *mtcs_nonce,
                     const uint8_t *ueid, uint8_t *dmkey);

/**
 * The four channel values of section 6 for key_id, in the order K_d2u,
 * IV_d2u, K_u2d, IV_u2d (keys of sp's length, IVs of 13 bytes).  Stops at
 * the first failure and returns the provider's error.
 */
int mtcsec_kdf_chan(const mtcsec_crypto *crypto, const mtcsec_suite_params *sp,
                    const uint8_t *dmkey, uint16_t key_id,
                    uint8_t *const out[4]);

/* -------------------------------------------------------------- channel */

/**
 * mtcsec_chan_init() without its checks and without a lifetime (expiry 0:
 * the caller keeps the lifetime and calls only the _live functions below).
 * On a provider failure ch is zeroized and the error returned.
 */
int mtcsec_chan_setup(mtcsec_chan *ch, const mtcsec_crypto *crypto,
                      const mtcsec_suite_params *sp, mtcsec_chan_end end,
                      const uint8_t *dmkey, uint16_t key_id);

/**
 * mtcsec_chan_seal() of a live channel whose lifetime the caller has
 * checked: sequence exhaustion, NOBUF, the AEAD.
 */
mtcsec_ssize mtcsec_chan_seal_live(mtcsec_chan *ch, uint8_t *dest,
                                   size_t destlen, const uint8_t *pt,
                                   size_t ptlen);

/**
 * mtcsec_chan_open() of a live channel, for a record whose header the
 * caller decoded with the channel's tag length (sequence number seq) and
 * whose key id and lifetime it checked: the replay checks, NOBUF, the
 * AEAD, then the window.
 */
mtcsec_ssize mtcsec_chan_open_live(mtcsec_chan *ch, uint8_t *dest,
                                   size_t destlen, const uint8_t *rec,
                                   size_t reclen, uint32_t seq);

#endif /* MTCSEC_CORE_INTERNAL_H */
