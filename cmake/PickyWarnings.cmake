# Warnings after ngtcp2's cmake/PickyWarningsC.cmake.
set(MTCSEC_PICKY_FLAGS
    -Wall -Wextra -Wconversion -Wsign-conversion -Wshadow -Wvla
    -Wmissing-prototypes -Wstrict-prototypes -Wmissing-declarations
    -Wpointer-arith -Wwrite-strings -Wformat=2 -Wundef -Wcast-qual
    -Wdeclaration-after-statement -Wimplicit-fallthrough -Wnull-dereference
    -Wold-style-definition -Wredundant-decls)
set(MTCSEC_LIGHT_FLAGS -Wall -Wextra -Wshadow -Wvla -Wformat=2 -Wundef)
if(MTCSEC_WERROR)
  list(APPEND MTCSEC_PICKY_FLAGS -Werror)
  list(APPEND MTCSEC_LIGHT_FLAGS -Werror)
endif()
function(mtcsec_picky target)
  target_compile_options(${target} PRIVATE ${MTCSEC_PICKY_FLAGS})
endfunction()
# Tests: the same core set without the conversion warnings that cmocka's
# macros trigger.
function(mtcsec_light target)
  target_compile_options(${target} PRIVATE ${MTCSEC_LIGHT_FLAGS})
endfunction()
