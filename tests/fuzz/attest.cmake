# Fuzzers for the attestation parsers and verifiers (src/attest).
#  - TMQTT_FUZZ=ON (clang): libFuzzer targets with the attestation sources
#    instrumented, each with a ctest smoke run (20 s from the seeds; new inputs
#    go to the build tree):
#      fuzz_quote  DCAP quotes, collateral, sim, policy text. Its copy of the
#                  sources is built with TM_FUZZ_BYPASS_SIGNATURES (and
#                  FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, which attest_int.h
#                  demands alongside): signature checks pass, so mutated inputs
#                  reach the collateral and TCB-level code. Never in a library.
#      fuzz_snp    SEV-SNP report, certificate table, VCEK extensions.
#  - otherwise: fuzz_quote_replay / fuzz_snp_replay replay the seeds (and their
#    prefixes) through the normal library as plain programs.
set(TM_QUOTE_SEEDS ${CMAKE_SOURCE_DIR}/../shared/testdata/sgx ${CMAKE_SOURCE_DIR}/../shared/testdata/tdx)
set(TM_SNP_SEEDS ${CMAKE_CURRENT_LIST_DIR}/corpus/snp ${CMAKE_SOURCE_DIR}/../shared/testdata/snp)
set(TM_FUZZ_TESTDATA_DEF TM_FUZZ_TESTDATA="${CMAKE_SOURCE_DIR}/../shared/testdata")

if(TMQTT_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "TMQTT_FUZZ needs clang: -DCMAKE_C_COMPILER=clang")
  endif()
  file(GLOB TM_ATTEST_FUZZ_SRCS ${CMAKE_SOURCE_DIR}/src/attest/*.c)
  list(FILTER TM_ATTEST_FUZZ_SRCS EXCLUDE REGEX "/atls[^/]*\\.c$")
  foreach(t quote snp)
    add_executable(fuzz_${t} ${CMAKE_CURRENT_LIST_DIR}/fuzz_${t}.c ${TM_ATTEST_FUZZ_SRCS})
    target_link_libraries(fuzz_${t} PRIVATE OpenSSL::Crypto)
    target_compile_definitions(fuzz_${t} PRIVATE ${TM_FUZZ_TESTDATA_DEF})
    target_compile_options(fuzz_${t} PRIVATE -fsanitize=fuzzer,address,undefined
                           -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer,address,undefined)
    set(TM_FUZZ_WORK ${CMAKE_CURRENT_BINARY_DIR}/corpus-${t})
    file(MAKE_DIRECTORY ${TM_FUZZ_WORK})
  endforeach()
  target_compile_definitions(fuzz_quote PRIVATE TM_FUZZ_BYPASS_SIGNATURES FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)
  add_test(NAME fuzz_quote_smoke
           COMMAND fuzz_quote -max_total_time=20 -timeout=10 -max_len=40000
                   ${CMAKE_CURRENT_BINARY_DIR}/corpus-quote ${TM_QUOTE_SEEDS})
  add_test(NAME fuzz_snp_smoke
           COMMAND fuzz_snp -max_total_time=20 -timeout=10 -max_len=20000
                   ${CMAKE_CURRENT_BINARY_DIR}/corpus-snp ${TM_SNP_SEEDS})
elseif(TARGET tmqtt_attest)
  foreach(t quote snp)
    add_executable(fuzz_${t}_replay ${CMAKE_CURRENT_LIST_DIR}/fuzz_${t}.c)
    target_compile_definitions(fuzz_${t}_replay PRIVATE TM_FUZZ_REPLAY ${TM_FUZZ_TESTDATA_DEF})
    target_link_libraries(fuzz_${t}_replay PRIVATE tmqtt_attest)
  endforeach()
  add_test(NAME fuzz_quote_replay COMMAND fuzz_quote_replay ${TM_QUOTE_SEEDS})
  add_test(NAME fuzz_snp_replay COMMAND fuzz_snp_replay ${TM_SNP_SEEDS})
endif()
