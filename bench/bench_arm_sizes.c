/*
 * sizeof() of the device-side objects as the Cortex-M4 compiler lays them
 * out (item 4 of docs/BENCHMARKS.md).  scripts/bench.sh compiles this file
 * with arm-none-eabi-gcc -c and reads each array's size, which is the
 * sizeof() it names, with arm-none-eabi-nm -S.  Not part of any build.
 */
#include <mtcsec/channel.h>
#include <mtcsec/device.h>
#ifdef MTCSEC_BENCH_MBEDTLS
#  include <mtcsec/crypto_mbedtls.h>
#endif

extern char sizeof_mtcsec_dev[sizeof(mtcsec_dev)];
extern char sizeof_mtcsec_dev_pending[sizeof(mtcsec_dev_pending)];
extern char sizeof_mtcsec_dev_session[sizeof(mtcsec_dev_session)];
extern char sizeof_mtcsec_chan[sizeof(mtcsec_chan)];

char sizeof_mtcsec_dev[sizeof(mtcsec_dev)];
char sizeof_mtcsec_dev_pending[sizeof(mtcsec_dev_pending)];
char sizeof_mtcsec_dev_session[sizeof(mtcsec_dev_session)];
char sizeof_mtcsec_chan[sizeof(mtcsec_chan)];

#ifdef MTCSEC_BENCH_MBEDTLS
extern char sizeof_mtcsec_mbedtls_state[sizeof(mtcsec_mbedtls_state)];
char sizeof_mtcsec_mbedtls_state[sizeof(mtcsec_mbedtls_state)];
#endif
