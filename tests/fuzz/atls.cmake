# Fuzz target for the attested TLS extension parsers (src/attest/atls.c).
#  - TMQTT_FUZZ=ON (clang): libFuzzer `fuzz_atls` with atls.c and the
#    verifiers instrumented; ctest `fuzz_atls_smoke` (20 s from the seeds).
#  - otherwise: `fuzz_atls_replay` replays the seed corpus (ctest fuzz_atls_replay).
set(TM_ATLS_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/atls)
if(TMQTT_FUZZ)
  file(GLOB TM_ATLS_FUZZ_SRCS ${CMAKE_SOURCE_DIR}/src/attest/*.c)
  add_executable(fuzz_atls ${CMAKE_CURRENT_LIST_DIR}/fuzz_atls.c ${TM_ATLS_FUZZ_SRCS})
  target_link_libraries(fuzz_atls PRIVATE OpenSSL::SSL OpenSSL::Crypto)
  target_compile_options(fuzz_atls PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(fuzz_atls PRIVATE -fsanitize=fuzzer,address,undefined)
  set(TM_ATLS_WORK ${CMAKE_CURRENT_BINARY_DIR}/corpus-atls)
  file(MAKE_DIRECTORY ${TM_ATLS_WORK})
  add_test(NAME fuzz_atls_smoke
           COMMAND fuzz_atls -max_total_time=20 -timeout=10 ${TM_ATLS_WORK} ${TM_ATLS_CORPUS})
elseif(TARGET tmqtt_attest)
  add_executable(fuzz_atls_replay ${CMAKE_CURRENT_LIST_DIR}/fuzz_atls.c)
  target_compile_definitions(fuzz_atls_replay PRIVATE TM_FUZZ_REPLAY)
  target_link_libraries(fuzz_atls_replay PRIVATE tmqtt_attest)
  add_test(NAME fuzz_atls_replay COMMAND fuzz_atls_replay ${TM_ATLS_CORPUS})
endif()
