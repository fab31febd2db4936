/* Internal helpers shared by the core and the roles (never installed). */
#ifndef MTCSEC_CORE_UTIL_H
#define MTCSEC_CORE_UTIL_H

#include <stdint.h>
#include <string.h>

static inline void mtcsec_put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline uint16_t mtcsec_get_u16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}
static inline void mtcsec_put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static inline uint32_t mtcsec_get_u32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | p[3];
}

/* Log helper: formats "key=value" lines into a stack buffer; compiled out
 * above MTCSEC_LOG_LEVEL (device builds set it). */
#ifndef MTCSEC_LOG_LEVEL
#  define MTCSEC_LOG_LEVEL 3
#endif

#include <mtcsec/mtcsec.h>

#if defined(__GNUC__)
#  define MTCSEC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define MTCSEC_PRINTF(a, b)
#endif

/* Formats one "key=value ..." line (at most 255 bytes) and calls fn. */
void mtcsec_logf(mtcsec_log_fn fn, void *user_data, int level, const char *fmt,
                 ...) MTCSEC_PRINTF(4, 5);

#define MTCSEC_LOG(fn, ud, lvl, ...)                                           \
  do {                                                                         \
    if ((lvl) <= MTCSEC_LOG_LEVEL && (fn) != NULL) {                           \
      mtcsec_logf((fn), (ud), (lvl), __VA_ARGS__);                             \
    }                                                                          \
  } while (0)

/* Hex of an 8-byte ID into out[17] for logs (IDs are not secret). */
const char *mtcsec_id_hex(char out[17], const uint8_t id[8]);

#endif /* MTCSEC_CORE_UTIL_H */
