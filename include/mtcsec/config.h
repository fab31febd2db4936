/*
 * Build-time configuration and its checks (the one check_config of mtcsec).
 * Every knob can be set with -D on the compiler command line (the CMake
 * options do that); the defaults suit hosts.
 */
#ifndef MTCSEC_CONFIG_H
#define MTCSEC_CONFIG_H

/** Largest key the build supports: 32 (all suites) or 16 (suites 1, 2). */
#ifndef MTCSEC_CFG_MAX_KEY_LEN
#  define MTCSEC_CFG_MAX_KEY_LEN 32
#endif
/** Pending exchanges a device keeps at once (section 4, default 1). */
#ifndef MTCSEC_DEV_MAX_PENDING
#  define MTCSEC_DEV_MAX_PENDING 1
#endif
/** Room for the device's own MTCdInfo (enough for all TLVs and 2 hops). */
#ifndef MTCSEC_DEV_MAX_INFO
#  define MTCSEC_DEV_MAX_INFO 48
#endif

/**
 * Suites the device role accepts, one bit per suite: bit 0 for suite 0x01,
 * bit 1 for 0x02, bit 2 for 0x03 (default all).  A device is provisioned
 * with one suite; its firmware build sets that suite's bit alone.  The
 * codec, the key schedule and the channel are not restricted (the UE and
 * the server speak every suite).
 */
#ifndef MTCSEC_CFG_SUITES
#  define MTCSEC_CFG_SUITES 0x07
#endif
/**
 * 1 (default): the public device API (device.h) rejects NULL pointers and
 * invalid configurations with MTCSEC_ERR_INVALID_ARGUMENT.  0: those
 * checks of programming errors are compiled out and the caller must pass
 * valid pointers and a valid configuration, as each function's comment
 * says (the Mbed TLS idea of MBEDTLS_CHECK_PARAMS).  Checks of received
 * bytes, buffer sizes and the device's state are never compiled out.
 */
#ifndef MTCSEC_CFG_CHECK_PARAMS
#  define MTCSEC_CFG_CHECK_PARAMS 1
#endif

/**
 * 1: the device role keeps time in 32 bits of seconds (mtcsec_dev_time,
 * device.h) instead of 64 bits of milliseconds: a Cortex-M does no 64-bit
 * arithmetic for its timers.  0 (default): mtcsec_dev_time is
 * mtcsec_tstamp.  Only the device API changes; the rest of the library
 * keeps mtcsec_tstamp.
 */
#ifndef MTCSEC_CFG_DEV_TIME32
#  define MTCSEC_CFG_DEV_TIME32 0
#endif

#if MTCSEC_CFG_MAX_KEY_LEN != 16 && MTCSEC_CFG_MAX_KEY_LEN != 32
#  error "MTCSEC_CFG_MAX_KEY_LEN must be 16 or 32"
#endif
#if MTCSEC_DEV_MAX_PENDING < 1 || MTCSEC_DEV_MAX_PENDING > 16
#  error "MTCSEC_DEV_MAX_PENDING must be 1..16"
#endif
#if MTCSEC_DEV_MAX_INFO < 16 || MTCSEC_DEV_MAX_INFO > 255
#  error "MTCSEC_DEV_MAX_INFO must be 16..255"
#endif

#if MTCSEC_CFG_SUITES < 1 || MTCSEC_CFG_SUITES > 7
#  error "MTCSEC_CFG_SUITES must be 1..7 (bits of suites 0x01..0x03)"
#endif
#if MTCSEC_CFG_MAX_KEY_LEN == 16 && MTCSEC_CFG_SUITES == 4
#  error "suite 0x03 alone needs MTCSEC_CFG_MAX_KEY_LEN 32"
#endif
#if MTCSEC_CFG_DEV_TIME32 != 0 && MTCSEC_CFG_DEV_TIME32 != 1
#  error "MTCSEC_CFG_DEV_TIME32 must be 0 or 1"
#endif
#if MTCSEC_CFG_CHECK_PARAMS != 0 && MTCSEC_CFG_CHECK_PARAMS != 1
#  error "MTCSEC_CFG_CHECK_PARAMS must be 0 or 1"
#endif

#endif /* MTCSEC_CONFIG_H */
