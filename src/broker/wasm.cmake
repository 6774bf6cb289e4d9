# src/broker/wasm.cmake — tmqtt-broker.wasm (the broker compiled to wasm32-wasi) and
# tmqtt-wasm (the runtime built for it), with -DTMQTT_WASM=ON. docs/wasm-broker.md.
#
# How the same sources are compiled twice in one CMake project: the native build uses
# CMake's C compiler as usual; the module is compiled by custom commands calling
# Debian's `clang --target=wasm32-wasi` on the SAME source files (no copies, no second
# configure). Each object gets a clang depfile (-MD), so header edits rebuild exactly
# what they should; the module is linked once per build tree and translated by wasm2c
# once (tm_wasm_runtime). An ExternalProject re-configuring the tree with a toolchain
# file was rejected: every directory's CMakeLists.txt would have to learn to build
# "module only", and a second configure costs CI time for nothing.
#
# What goes in is what the native tmqtt-broker links: codec (src/mqtt), broker
# (src/broker), net with the poll() backend (WASI has no epoll), tls_server.c,
# attestation incl. atls.c, plus the guest-side platform layer (src/platform) and
# OpenSSL 3 for wasm32-wasi (scripts/build-openssl-wasm via runtime.cmake, built once
# into the build tree and reused). The module-only differences: provider_wasi.c
# (evidence from the runtime's tmqtt_ra import), wasi_crypto_prov.c (TLS record
# ciphers in the host, through tmqtt_crypto, when the host offers it) and wasi_mem.c
# (memcpy/memmove/memset as memory.copy/memory.fill). Compiler and target flags
# (clang-16, -mbulk-memory) come from runtime.cmake and are OpenSSL's too.
#
# Memory layout: 16 MiB stack placed first (--stack-first), so an overflow runs below
# address 0 and traps instead of silently overwriting static data (wasm-ld's default is
# 64 KiB after the data); initial memory = static data + stack, rounded up by wasm-ld;
# no maximum in the module (4 GiB, the wasm32 limit): cap it per deployment with
# `tmqtt-wasm --max-memory`. Why 16 MiB: wasi-libc's poll() builds its poll_oneoff
# subscription and event arrays as variable-length arrays ON THE STACK, 160 bytes per
# watched descriptor (2 subscriptions of 48 + 2 events of 32): 10 000 connections need
# 1.6 MiB, 65 536 (tmqtt-wasm --max-fds) 10.5 MiB. Only touched pages are resident.
#
# Included from src/broker/CMakeLists.txt after every library directory (the
# top-level list orders src/mqtt, src/net and src/attest before src/broker).
include_guard(GLOBAL)
if(NOT TMQTT_WASM)
  return()
endif()
include(${CMAKE_SOURCE_DIR}/src/runtime/runtime.cmake)

set(TM_WASM_STACK_SIZE 16777216 CACHE STRING "tmqtt-broker.wasm: shadow stack size in bytes")

set(_tw_src ${CMAKE_SOURCE_DIR}/src)
# The sources are the native libraries' own lists (each CMakeLists.txt adds
# its portable files to the global property TM_WASM_SOURCES), so a file added
# to a library is in the module too; only the guest platform layer is extra.
get_property(TM_BROKER_WASM_SOURCES GLOBAL PROPERTY TM_WASM_SOURCES)
list(APPEND TM_BROKER_WASM_SOURCES ${_tw_src}/platform/wasi_socket.c ${_tw_src}/platform/wasi_glue.c
     ${_tw_src}/platform/wasi_crypto_prov.c ${TM_WASM_MEM_SOURCES})

# Same language level and warnings as the native build (top-level CMakeLists.txt).
set(TM_BROKER_WASM_CFLAGS
  ${TM_WASM_TARGET_FLAGS} -O2 -std=c11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
  -D_GNU_SOURCE -fno-strict-aliasing
  -D_WASI_EMULATED_SIGNAL -D_WASI_EMULATED_PROCESS_CLOCKS -D_WASI_EMULATED_MMAN
  -I${_tw_src} -I${TMQTT_OPENSSL_WASM_DIR}/include)
# Linked without -O: clang would run wasm-opt, which drops the "name" section that
# tmqtt-wasm uses to name functions in trap messages (runtime.cmake).
set(TM_BROKER_WASM_LDFLAGS
  ${TM_WASM_TARGET_FLAGS}
  -Wl,-z,stack-size=${TM_WASM_STACK_SIZE} -Wl,--stack-first
  ${TM_OPENSSL_WASM_LIBS}
  -lwasi-emulated-signal -lwasi-emulated-process-clocks -lwasi-emulated-mman
  -Wl,-u,getentropy)

set(_tw_objdir ${CMAKE_CURRENT_BINARY_DIR}/tmqtt-broker.wasm-obj)
file(MAKE_DIRECTORY ${_tw_objdir})
set(_tw_objs)
foreach(src ${TM_BROKER_WASM_SOURCES})
  file(RELATIVE_PATH rel ${_tw_src} ${src})
  string(REPLACE "/" "_" base ${rel})
  string(REGEX REPLACE "\\.c$" "" base ${base})
  set(obj ${_tw_objdir}/${base}.o)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${TM_WASM_CLANG} ${TM_BROKER_WASM_CFLAGS} -MD -MF ${obj}.d -c ${src} -o ${obj}
    DEPENDS ${src} openssl_wasm
    DEPFILE ${obj}.d
    COMMENT "clang --target=wasm32-wasi ${rel}"
    VERBATIM)
  list(APPEND _tw_objs ${obj})
endforeach()

set(TM_BROKER_WASM ${CMAKE_BINARY_DIR}/bin/tmqtt-broker.wasm)
add_custom_command(
  OUTPUT ${TM_BROKER_WASM}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/bin
  COMMAND ${TM_WASM_CLANG} ${_tw_objs} -o ${TM_BROKER_WASM} ${TM_BROKER_WASM_LDFLAGS}
  DEPENDS ${_tw_objs} openssl_wasm ${TM_OPENSSL_WASM_LIBS}
  COMMENT "wasm-ld -> bin/tmqtt-broker.wasm"
  VERBATIM)
add_custom_target(tmqtt-broker-wasm ALL DEPENDS ${TM_BROKER_WASM})

# The runtime, with the module translated ahead of time. DEPENDS on the target (not
# only the file) so that make never runs the module's link rule from two targets.
tm_wasm_runtime(TARGET tmqtt-wasm MODULE ${TM_BROKER_WASM} NAME tmqtt-broker.wasm
                DEPENDS tmqtt-broker-wasm)

# The broker module on hosts with and without the extension imports, and its bulk-memory
# mem* functions (tests/runtime/driver.py, cases broker-*).
find_program(TMQTT_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT TMQTT_PYTHON3)
  find_program(TMQTT_PYTHON3 python3)
endif()
if(TMQTT_PYTHON3)
  set(_tw_cases broker-without-ra broker-host-crypto broker-event-loop broker-tls-resets)
  if(TM_WASM_BULK_MEMORY)
    list(APPEND _tw_cases broker-bulk-memory)
  endif()
  foreach(case ${_tw_cases})
    add_test(NAME runtime.${case}
             COMMAND ${TMQTT_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/runtime/driver.py
                     --runtime $<TARGET_FILE:tmqtt-wasm> --broker $<TARGET_FILE:tmqtt-wasm>
                     --broker-module ${TM_BROKER_WASM} ${case})
    set_tests_properties(runtime.${case} PROPERTIES TIMEOUT 120 LABELS "runtime;wasm")
  endforeach()
endif()

# The integration suite against the Wasm broker (tests/integration, --broker=wasm).
if(TMQTT_PYTHON3 AND EXISTS ${CMAKE_SOURCE_DIR}/tests/integration/conftest.py)
  add_test(NAME integration_wasm
           COMMAND ${TMQTT_PYTHON3} -m pytest -q -p no:cacheprovider
                   ${CMAKE_SOURCE_DIR}/tests/integration
                   --broker=wasm --build-dir=${CMAKE_BINARY_DIR}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(integration_wasm PROPERTIES TIMEOUT 1200 LABELS "integration;wasm")
endif()
