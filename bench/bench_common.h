/*
 * Small helpers shared by the benchmark programs (bench/bench_*.c).
 *
 * Benchmarks only measure and print; the only thing they check is that the
 * protocol actually ran (every handshake ended in M3, every device
 * established), and they exit non-zero when it did not.  They never assert
 * on a time.
 */
#ifndef MTCSEC_BENCH_COMMON_H
#define MTCSEC_BENCH_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mtcsec/mtcsec.h>

/* The world of every benchmark: one server, one UE, one relay. */
static const uint8_t BENCH_SRV[MTCSEC_ID_LEN] = {0x5e, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t BENCH_UE[MTCSEC_ID_LEN] = {0x0e, 0, 0, 0, 0, 0, 0, 0x42};
static const uint8_t BENCH_GW[MTCSEC_ID_LEN] = {0x67, 0, 0, 0, 0, 0, 0, 1};

/* Nanoseconds on the monotonic clock. */
static inline uint64_t bench_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Nanoseconds on clock id (a CPU-time clock, say), 0 if unreadable. */
static inline uint64_t bench_clock_ns(clockid_t id) {
  struct timespec ts;
  if (clock_gettime(id, &ts) != 0) {
    return 0;
  }
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void bench_sleep_ms(unsigned ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Device i's ID: 02 00 .. i (big-endian in the last four bytes). */
static inline void bench_dev_id(uint8_t id[MTCSEC_ID_LEN], uint32_t i) {
  memset(id, 0, MTCSEC_ID_LEN);
  id[0] = 0x02;
  id[4] = (uint8_t)(i >> 24);
  id[5] = (uint8_t)(i >> 16);
  id[6] = (uint8_t)(i >> 8);
  id[7] = (uint8_t)i;
}

/* Device i's PSKey (keylen bytes; only its distinctness matters). */
static inline void bench_dev_psk(uint8_t *psk, size_t keylen, uint32_t i) {
  size_t k;
  for (k = 0; k < keylen; k++) {
    psk[k] = (uint8_t)(k * 17u + i * 31u + (i >> 8));
  }
}

/*
 * CPU time of the calling thread in nanoseconds.  Rates are per CPU-second
 * of one thread ("on one core"), so that time the scheduler gives to other
 * processes on a shared machine is not counted.
 */
static inline uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Reports a failed step with its mtcsec error and exits with status 1. */
#define BENCH_CHECK(cond, what, rv)                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "bench: %s failed: %s (%ld) at %s:%d\n", (what),         \
              mtcsec_errname((int)(rv)), (long)(rv), __FILE__, __LINE__);      \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

/* Parses a decimal unsigned option value; exits on garbage. */
static inline unsigned long bench_parse_ul(const char *s, const char *name) {
  char *end = NULL;
  unsigned long v = strtoul(s, &end, 10);
  if (s[0] == '\0' || end == NULL || *end != '\0') {
    fprintf(stderr, "bench: bad value for %s: %s\n", name, s);
    exit(2);
  }
  return v;
}

#endif /* MTCSEC_BENCH_COMMON_H */
