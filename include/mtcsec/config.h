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

#if MTCSEC_CFG_MAX_KEY_LEN != 16 && MTCSEC_CFG_MAX_KEY_LEN != 32
#  error "MTCSEC_CFG_MAX_KEY_LEN must be 16 or 32"
#endif
#if MTCSEC_DEV_MAX_PENDING < 1 || MTCSEC_DEV_MAX_PENDING > 16
#  error "MTCSEC_DEV_MAX_PENDING must be 1..16"
#endif
#if MTCSEC_DEV_MAX_INFO < 16 || MTCSEC_DEV_MAX_INFO > 255
#  error "MTCSEC_DEV_MAX_INFO must be 16..255"
#endif

#endif /* MTCSEC_CONFIG_H */
