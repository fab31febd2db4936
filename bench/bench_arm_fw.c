/*
 * A device firmware stand-in for the Cortex-M4 size measurement (item 4 of
 * docs/BENCHMARKS.md); scripts/bench.sh compiles it with arm-none-eabi-gcc
 * and links it against the device-only build, with --gc-sections.  It is
 * not part of the host build and never runs.
 *
 * It calls every public function of the device role, so that the linker
 * keeps all of mtcsec's device-side code, and nothing else of mtcsec.  The
 * crypto provider is a stub table defined here (the real firmware links the
 * Mbed TLS glue, src/crypto/provider_mbedtls.c, measured separately, and
 * Mbed TLS itself or a hardware AES engine), so that the image holds
 * mtcsec's own code only: core (codec, channel, kdf, util) and device role.
 * The radio is a pair of volatile buffers.
 */
#include <stddef.h>
#include <stdint.h>

#include <mtcsec/device.h>

volatile uint8_t radio_rx[128];
volatile size_t radio_rx_len;
volatile uint8_t radio_tx[128];
volatile size_t radio_tx_len;
volatile uint32_t ticks;

static int stub_mac(void *ctx, mtcsec_mac_alg alg, const uint8_t *key,
                    size_t keylen, const mtcsec_iov *iov, size_t iovcnt,
                    uint8_t *out, size_t outlen) {
  (void)ctx;
  (void)alg;
  (void)key;
  (void)keylen;
  (void)iov;
  (void)iovcnt;
  (void)out;
  (void)outlen;
  return MTCSEC_ERR_CRYPTO;
}

static int stub_ccm(void *ctx, const uint8_t *key, size_t keylen,
                    const uint8_t nonce[MTCSEC_IV_LEN], const uint8_t *aad,
                    size_t aadlen, const uint8_t *in, size_t inlen,
                    uint8_t *out, size_t taglen) {
  (void)ctx;
  (void)key;
  (void)keylen;
  (void)nonce;
  (void)aad;
  (void)aadlen;
  (void)in;
  (void)inlen;
  (void)out;
  (void)taglen;
  return MTCSEC_ERR_CRYPTO;
}

static int stub_random(void *ctx, uint8_t *out, size_t len) {
  (void)ctx;
  (void)out;
  (void)len;
  return MTCSEC_ERR_CRYPTO;
}

static const mtcsec_crypto_ops STUB_OPS = {stub_mac, stub_ccm, stub_ccm,
                                           NULL,     NULL,     stub_random};
static const mtcsec_crypto STUB = {&STUB_OPS, NULL};

static int persist(void *ud, uint64_t next) {
  (void)ud;
  (void)next;
  return 0;
}

static const mtcsec_dev_callbacks CB = {persist, NULL};

/* The device context lives in .bss: its size is the RAM figure. */
static mtcsec_dev dev;
/* One live DMKey: the per-session RAM figure. */
static mtcsec_dev_session sessions[1];

static size_t rx(uint8_t *buf) {
  size_t i, n = radio_rx_len;
  if (n > 128) {
    n = 128;
  }
  for (i = 0; i < n; i++) {
    buf[i] = radio_rx[i];
  }
  return n;
}

static void tx(const uint8_t *buf, mtcsec_ssize n) {
  size_t i;
  for (i = 0; n > 0 && i < (size_t)n; i++) {
    radio_tx[i] = buf[i];
  }
  radio_tx_len = n > 0 ? (size_t)n : 0;
}

int main(void) {
  static const uint8_t psk[16] = {1, 2,  3,  4,  5,  6,  7,  8,
                                  9, 10, 11, 12, 13, 14, 15, 16};
  mtcsec_dev_config cfg;
  uint8_t buf[128], pt[128];
  uint64_t peer;
  size_t n;

  mtcsec_dev_config_default(&cfg);
  cfg.pskey = psk;
  cfg.sessions = sessions;
  cfg.nsessions = 1;
  if (mtcsec_dev_init(&dev, &cfg, &STUB, &CB, NULL) != 0) {
    return 1;
  }
  mtcsec_dev_set_status(&dev, 1, 90, 0, 0, 0);
  (void)mtcsec_dev_start(&dev, psk, 0, ticks);
  for (;;) {
    mtcsec_dev_time now = ticks;
    n = rx(buf);
    if (n > 0 && buf[0] == 0x16) {
      mtcsec_dev_record_info info;
      mtcsec_ssize m =
        mtcsec_dev_open(&dev, pt, sizeof(pt), buf, n, now, &info);
      if (m >= 0 && mtcsec_dev_authorize(&dev, info.key_id, 1, now) == 0) {
        tx(buf, mtcsec_dev_seal(&dev, info.key_id, buf, sizeof(buf), pt,
                                (size_t)m, now));
      }
    } else if (n > 0) {
      (void)mtcsec_dev_read(&dev, buf, n, 1, now);
    }
    tx(buf, mtcsec_dev_write(&dev, buf, sizeof(buf), &peer, now));
    if (mtcsec_dev_get_expiry(&dev) <= now) {
      (void)mtcsec_dev_handle_expiry(&dev, now);
    }
    if (mtcsec_dev_next_nonce(&dev) == UINT64_MAX) {
      break;
    }
  }
  mtcsec_dev_deinit(&dev);
  return 0;
}
