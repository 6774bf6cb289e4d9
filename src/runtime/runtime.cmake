# runtime.cmake — building tmqtt-wasm runtimes (docs/wasm-runtime.md).
#
#   tm_wasm_runtime(TARGET name MODULE path/to/module.wasm [DEPENDS target...])
#       translates the module with wasm2c at build time and links the generated C
#       with the host (WASI, sockets, tmqtt_ra, traps) into executable `name`.
#   tm_wasm_module(OUTPUT path.wasm SOURCES a.c ... [CFLAGS ...] [LDFLAGS ...] [DEPENDS ...])
#       compiles C for wasm32-wasi with Debian's clang (helper for test modules).
#
# Safe to include from several directories (the broker's build includes it to call
# tm_wasm_runtime); the host library `tm_wasm_host` is defined once.
#
# Bounds checking of linear memory (TMQTT_WASM_BOUNDS):
#   guard    (default) 8 GiB reservation + guard pages, faults become traps; fastest.
#   explicit every access is range-checked and call depth is counted; used by default
#            with TMQTT_SANITIZE, where AddressSanitizer owns SIGSEGV.
include_guard(GLOBAL)

# CACHE INTERNAL: the functions below may be called from any directory, including ones
# processed after the one that included this file first.
set(TM_RUNTIME_DIR ${CMAKE_CURRENT_LIST_DIR} CACHE INTERNAL "src/runtime")
find_program(TM_WASM2C wasm2c REQUIRED)
# The module compiler: clang 16 (Debian 12's clang-16 + lld-16 + libclang-rt-16-dev-wasm32)
# for bulk memory (memory.copy/memory.fill, see src/platform/wasi_mem.c); clang 14 aborts
# with -mbulk-memory on wasi-libc's `errno` ("only -ftls-model=local-exec is supported").
# Every part of a module (its C, OpenSSL, the platform layer) is compiled by this one
# compiler with the same target flags; wasi-libc comes prebuilt from Debian (objects of
# either version link together: same object format, same C ABI). A cache variable of its
# own name so that trees configured before (TM_WASM_CLANG = clang 14) switch too.
find_program(TMQTT_WASM_CC NAMES clang-16 clang-15 clang clang-14 REQUIRED
             DOC "C compiler for wasm32-wasi modules (clang >= 15 for bulk memory)")
set(TM_WASM_CLANG ${TMQTT_WASM_CC} CACHE INTERNAL "")
execute_process(COMMAND ${TM_WASM_CLANG} --version OUTPUT_VARIABLE _tm_cc_ver ERROR_QUIET)
string(REGEX MATCH "clang version ([0-9]+)" _tm_cc_match "${_tm_cc_ver}")
set(TM_WASM_CLANG_MAJOR "${CMAKE_MATCH_1}" CACHE INTERNAL "")
if(TM_WASM_CLANG_MAJOR AND TM_WASM_CLANG_MAJOR GREATER_EQUAL 15)
  set(TM_WASM_BULK_MEMORY ON CACHE INTERNAL "")
  set(TM_WASM_TARGET_FLAGS --target=wasm32-wasi -mbulk-memory CACHE INTERNAL "")
else()
  message(WARNING "tmqtt-wasm: ${TM_WASM_CLANG} is clang ${TM_WASM_CLANG_MAJOR}: modules built without "
          "bulk memory (slow memcpy); install clang-16 lld-16 libclang-rt-16-dev-wasm32 (scripts/setup)")
  set(TM_WASM_BULK_MEMORY OFF CACHE INTERNAL "")
  set(TM_WASM_TARGET_FLAGS --target=wasm32-wasi CACHE INTERNAL "")
endif()
# Platform sources every module that links wasi-libc should take first.
if(TM_WASM_BULK_MEMORY)
  set(TM_WASM_MEM_SOURCES ${CMAKE_SOURCE_DIR}/src/platform/wasi_mem.c CACHE INTERNAL "")
else()
  set(TM_WASM_MEM_SOURCES "" CACHE INTERNAL "")
endif()
set(TM_WASM_RT_DIR /usr/share/wabt/wasm2c CACHE PATH "wabt's wasm2c runtime sources (wasm-rt-impl.c)")
if(TMQTT_SANITIZE)
  set(_tm_bounds_default explicit)
else()
  set(_tm_bounds_default guard)
endif()
set(TMQTT_WASM_BOUNDS ${_tm_bounds_default} CACHE STRING "guard or explicit (see runtime.cmake)")
set(TMQTT_WASM_STACK_DEPTH 8000 CACHE STRING "max wasm call depth with TMQTT_WASM_BOUNDS=explicit")

set(_tm_rt_defs)
if(TMQTT_WASM_BOUNDS STREQUAL "explicit")
  list(APPEND _tm_rt_defs WASM_RT_MEMCHECK_SIGNAL_HANDLER=0 WASM_RT_USE_STACK_DEPTH_COUNT=1
       WASM_RT_MAX_CALL_STACK_DEPTH=${TMQTT_WASM_STACK_DEPTH})
elseif(TMQTT_WASM_BOUNDS STREQUAL "guard")
  list(APPEND _tm_rt_defs WASM_RT_MEMCHECK_SIGNAL_HANDLER=1)
else()
  message(FATAL_ERROR "TMQTT_WASM_BOUNDS must be guard or explicit")
endif()

add_library(tm_wasm_host STATIC
  ${TM_RUNTIME_DIR}/main.c
  ${TM_RUNTIME_DIR}/wasi_core.c
  ${TM_RUNTIME_DIR}/wasi_fd.c
  ${TM_RUNTIME_DIR}/wasi_path.c
  ${TM_RUNTIME_DIR}/wasi_sock.c
  ${TM_RUNTIME_DIR}/ra.c
  ${TM_RUNTIME_DIR}/seal_host.c
  ${CMAKE_SOURCE_DIR}/src/broker/seal.c
  ${TM_RUNTIME_DIR}/crypto.c
  ${TM_RUNTIME_DIR}/event.c
  ${TM_RUNTIME_DIR}/trap.c
  ${TM_WASM_RT_DIR}/wasm-rt-impl.c)
target_include_directories(tm_wasm_host PUBLIC ${CMAKE_SOURCE_DIR}/src ${TM_WASM_RT_DIR})
target_compile_definitions(tm_wasm_host PUBLIC ${_tm_rt_defs})
# wabt's runtime is third-party code: no warnings, and every trap goes through our hook.
set_source_files_properties(${TM_WASM_RT_DIR}/wasm-rt-impl.c PROPERTIES
  COMPILE_OPTIONS "-w;-include;${TM_RUNTIME_DIR}/trap_hook.h"
  COMPILE_DEFINITIONS "WASM_RT_TRAP_HANDLER=tm_trap_hook")
target_link_libraries(tm_wasm_host PUBLIC OpenSSL::Crypto m)
if(TARGET tmqtt_attest)
  target_compile_definitions(tm_wasm_host PRIVATE TM_HAVE_ATTEST_PROVIDER=1)
  target_link_libraries(tm_wasm_host PUBLIC tmqtt_attest)
else()
  message(STATUS "tmqtt-wasm: attestation library (target tmqtt_attest) not found; only --attest none")
endif()

function(tm_wasm_runtime)
  cmake_parse_arguments(A "" "TARGET;MODULE;NAME" "DEPENDS" ${ARGN})
  if(NOT A_TARGET OR NOT A_MODULE)
    message(FATAL_ERROR "tm_wasm_runtime(TARGET name MODULE file.wasm [DEPENDS ...])")
  endif()
  if(NOT A_NAME)
    get_filename_component(A_NAME ${A_MODULE} NAME)
  endif()
  set(gen ${CMAKE_CURRENT_BINARY_DIR}/${A_TARGET}.w2c)
  add_custom_command(
    OUTPUT ${gen}/module.c ${gen}/module.h ${gen}/glue.c
    COMMAND ${CMAKE_COMMAND} -E make_directory ${gen}
    COMMAND ${TM_WASM2C} ${A_MODULE} -n tmmod -o ${gen}/module.c
    COMMAND ${CMAKE_COMMAND} -DMODULE=${A_MODULE} -DHEADER=${gen}/module.h -DOUT=${gen}/glue.c
            -DPREFIX=tmmod -DNAME=${A_NAME} -P ${TM_RUNTIME_DIR}/tm_wasm_glue.cmake
    DEPENDS ${A_MODULE} ${A_DEPENDS} ${TM_RUNTIME_DIR}/tm_wasm_glue.cmake
    COMMENT "wasm2c ${A_NAME} -> ${A_TARGET}"
    VERBATIM)
  add_executable(${A_TARGET} ${gen}/module.c ${gen}/glue.c)
  # Generated code: not ours to warn about; always optimised; no sanitizer
  # instrumentation (wasm semantics already bound every access; ASan covers the host).
  set_source_files_properties(${gen}/module.c PROPERTIES
    COMPILE_OPTIONS "-w;-O2;-g0;-fno-sanitize=all")
  target_include_directories(${A_TARGET} PRIVATE ${gen})
  target_link_libraries(${A_TARGET} PRIVATE tm_wasm_host)
endfunction()

# Compiles each source to an object, then links without -O: clang runs binaryen's
# wasm-opt when it links with optimisation, and wasm-opt drops the "name" section,
# which tmqtt-wasm uses to name the function in trap messages (the code is already
# optimised by LLVM at -O2; wasm-opt adds little on top).
function(tm_wasm_module)
  cmake_parse_arguments(A "" "OUTPUT" "SOURCES;CFLAGS;LDFLAGS;DEPENDS" ${ARGN})
  set(objs)
  foreach(src ${A_SOURCES})
    get_filename_component(base ${src} NAME_WE)
    get_filename_component(outname ${A_OUTPUT} NAME_WE)
    set(obj ${CMAKE_CURRENT_BINARY_DIR}/${outname}.wasm-obj/${base}.o)
    add_custom_command(
      OUTPUT ${obj}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/${outname}.wasm-obj
      COMMAND ${TM_WASM_CLANG} ${TM_WASM_TARGET_FLAGS} -O2 -Wall -Wextra -Werror
              -I${CMAKE_SOURCE_DIR}/src ${A_CFLAGS} -c ${src} -o ${obj}
      DEPENDS ${src} ${A_DEPENDS}
      COMMENT "clang --target=wasm32-wasi ${base}.c"
      VERBATIM)
    list(APPEND objs ${obj})
  endforeach()
  add_custom_command(
    OUTPUT ${A_OUTPUT}
    COMMAND ${TM_WASM_CLANG} ${TM_WASM_TARGET_FLAGS} ${objs} -o ${A_OUTPUT} ${A_LDFLAGS}
    DEPENDS ${objs} ${A_DEPENDS}
    COMMENT "wasm-ld -> ${A_OUTPUT}"
    VERBATIM)
endfunction()

# OpenSSL for wasm32-wasi, built once per build tree from Debian's source package
# (scripts/build-openssl-wasm) and cached there, with the module compiler and target
# flags. The stamp file names them (.stamp-clang16-bulk-memory): a tree whose OpenSSL
# was built otherwise (clang 14, no bulk memory) rebuilds it once. Point
# TMQTT_OPENSSL_WASM_DIR at an existing build to share one between build trees.
set(TMQTT_OPENSSL_WASM_DIR ${CMAKE_BINARY_DIR}/openssl-wasm CACHE PATH
    "OpenSSL for wasm32-wasi ({include,lib/libssl.a,lib/libcrypto.a})")
set(TM_OPENSSL_WASM_LIBS ${TMQTT_OPENSSL_WASM_DIR}/lib/libssl.a ${TMQTT_OPENSSL_WASM_DIR}/lib/libcrypto.a
    CACHE INTERNAL "OpenSSL for wasm32-wasi: static libraries")
if(TM_WASM_BULK_MEMORY)
  set(_tm_ossl_id clang${TM_WASM_CLANG_MAJOR}-bulk-memory)
else()
  set(_tm_ossl_id clang${TM_WASM_CLANG_MAJOR})
endif()
set(TM_OPENSSL_WASM_STAMP ${TMQTT_OPENSSL_WASM_DIR}/.stamp-${_tm_ossl_id} CACHE INTERNAL "")
if(NOT TARGET openssl_wasm)
  if(EXISTS ${TM_OPENSSL_WASM_STAMP} AND EXISTS ${TMQTT_OPENSSL_WASM_DIR}/lib/libssl.a)
    add_custom_target(openssl_wasm)
  else()
    get_filename_component(_tm_ossl_parent ${TMQTT_OPENSSL_WASM_DIR} DIRECTORY)
    get_filename_component(_tm_ossl_name ${TMQTT_OPENSSL_WASM_DIR} NAME)
    if(NOT _tm_ossl_name STREQUAL "openssl-wasm")
      message(FATAL_ERROR "TMQTT_OPENSSL_WASM_DIR=${TMQTT_OPENSSL_WASM_DIR} has no ${_tm_ossl_id} build "
              "(${TM_OPENSSL_WASM_STAMP}); scripts/build-openssl-wasm can only create a directory named openssl-wasm")
    endif()
    string(REPLACE ";" " " _tm_ossl_flags "${TM_WASM_TARGET_FLAGS}")
    add_custom_command(
      OUTPUT ${TM_OPENSSL_WASM_STAMP} ${TM_OPENSSL_WASM_LIBS}
      COMMAND ${CMAKE_COMMAND} -E env TM_WASM_CC=${TM_WASM_CLANG} "TM_WASM_CFLAGS=${_tm_ossl_flags}"
              TM_WASM_BUILD_ID=${_tm_ossl_id}
              ${CMAKE_SOURCE_DIR}/scripts/build-openssl-wasm ${_tm_ossl_parent}
      COMMENT "building OpenSSL for wasm32-wasi with ${_tm_ossl_id} (once, ~3 minutes)"
      VERBATIM)
    add_custom_target(openssl_wasm DEPENDS ${TM_OPENSSL_WASM_STAMP})
  endif()
endif()
