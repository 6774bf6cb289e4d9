# Fuzzer for the attestation parsers and verifiers (src/attest).
#  - TMQTT_FUZZ=ON (clang): libFuzzer target `fuzz_quote`, the attestation
#    sources instrumented, ctest `fuzz_quote_smoke` (20 s, seeds are the real
#    quotes and collateral in shared/testdata; new inputs go to the build tree).
#  - otherwise: `fuzz_quote_replay` replays the seeds (and their prefixes) as a
#    plain program, ctest `fuzz_quote_replay`.
set(TM_QUOTE_SEEDS ${CMAKE_SOURCE_DIR}/../shared/testdata/sgx ${CMAKE_SOURCE_DIR}/../shared/testdata/tdx)

if(TMQTT_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "TMQTT_FUZZ needs clang: -DCMAKE_C_COMPILER=clang")
  endif()
  file(GLOB TM_ATTEST_FUZZ_SRCS ${CMAKE_SOURCE_DIR}/src/attest/*.c)
  list(FILTER TM_ATTEST_FUZZ_SRCS EXCLUDE REGEX "/atls[^/]*\\.c$")
  add_executable(fuzz_quote ${CMAKE_CURRENT_LIST_DIR}/fuzz_quote.c ${TM_ATTEST_FUZZ_SRCS})
  target_link_libraries(fuzz_quote PRIVATE OpenSSL::Crypto)
  target_compile_options(fuzz_quote PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(fuzz_quote PRIVATE -fsanitize=fuzzer,address,undefined)
  set(TM_QUOTE_WORK ${CMAKE_CURRENT_BINARY_DIR}/corpus-quote)
  file(MAKE_DIRECTORY ${TM_QUOTE_WORK})
  add_test(NAME fuzz_quote_smoke
           COMMAND fuzz_quote -max_total_time=20 -timeout=10 -max_len=20000 ${TM_QUOTE_WORK} ${TM_QUOTE_SEEDS})
elseif(TARGET tmqtt_attest)
  add_executable(fuzz_quote_replay ${CMAKE_CURRENT_LIST_DIR}/fuzz_quote.c)
  target_compile_definitions(fuzz_quote_replay PRIVATE TM_FUZZ_REPLAY)
  target_link_libraries(fuzz_quote_replay PRIVATE tmqtt_attest)
  add_test(NAME fuzz_quote_replay COMMAND fuzz_quote_replay ${TM_QUOTE_SEEDS})
endif()
