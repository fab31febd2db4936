# Cross build for a Cortex-M4 device (bare metal, newlib-nano), with the GNU
# Arm Embedded toolchain as Debian packages it (gcc-arm-none-eabi,
# libnewlib-arm-none-eabi).  Use with the device-only configuration:
#
#   cmake -S . -B build/arm \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-arm-none-eabi.cmake \
#     -DCMAKE_BUILD_TYPE=MinSizeRel -DMTCSEC_DEVICE_ONLY=ON \
#     -DMTCSEC_CFG_MAX_KEY_LEN=16 -DMTCSEC_WITH_MBEDTLS=ON \
#     -DMTCSEC_ARM_MBEDTLS_INCLUDE=<dir holding mbedtls/> \
#     -DMBEDCRYPTO_LIB=<a Cortex-M build of libmbedcrypto.a>
#
# with CFLAGS=-DMTCSEC_LOG_LEVEL=-1 in the environment to compile the logs
# out.  Give extra flags through CFLAGS (CMake prepends it to the flags
# below): -DCMAKE_C_FLAGS=... on the command line would replace them, CPU
# flags included.  MinSizeRel gives -Os (Release would give -O3).
#
# The Mbed TLS provider includes <mbedtls/...>; point MTCSEC_ARM_MBEDTLS_INCLUDE
# at the headers of the Mbed TLS you link (they are searched after newlib's,
# with -idirafter, so that a host include directory cannot shadow newlib).
# Only static libraries are built here, so MBEDCRYPTO_LIB is not linked; any
# value satisfies the configure step.

set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(MTCSEC_ARM_PREFIX arm-none-eabi-)
set(CMAKE_C_COMPILER ${MTCSEC_ARM_PREFIX}gcc)
set(CMAKE_ASM_COMPILER ${MTCSEC_ARM_PREFIX}gcc)
set(CMAKE_AR ${MTCSEC_ARM_PREFIX}ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${MTCSEC_ARM_PREFIX}ranlib CACHE FILEPATH "")
set(CMAKE_SIZE ${MTCSEC_ARM_PREFIX}size CACHE FILEPATH "")
set(CMAKE_OBJCOPY ${MTCSEC_ARM_PREFIX}objcopy CACHE FILEPATH "")

# No host executable can run: test compiles link a static library instead.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(MTCSEC_ARM_CPU_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=soft")
set(CMAKE_C_FLAGS_INIT
    "${MTCSEC_ARM_CPU_FLAGS} -ffunction-sections -fdata-sections")
set(CMAKE_EXE_LINKER_FLAGS_INIT
    "--specs=nano.specs --specs=nosys.specs -Wl,--gc-sections")

set(MTCSEC_ARM_MBEDTLS_INCLUDE "" CACHE PATH
    "Directory that holds the mbedtls/ headers for the device build")
if(MTCSEC_ARM_MBEDTLS_INCLUDE)
  string(APPEND CMAKE_C_FLAGS_INIT " -idirafter ${MTCSEC_ARM_MBEDTLS_INCLUDE}")
endif()

# Look for programs on the host, for libraries and headers in the target
# environment only.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
