# Fuzz target for the parsers of `tmqtt-attest collateral fetch`
# (src/attest/collateral_pcs.c): PCS response bodies and headers, CRLs, quotes,
# cache files. Seeds: corpus/collateral (make_collateral_seeds.py) and the
# quotes in shared/testdata.
#  - TMQTT_FUZZ=ON (clang): libFuzzer `fuzz_collateral`, ctest
#    `fuzz_collateral_smoke` (20 s; new inputs go to the build tree).
#  - otherwise: `fuzz_collateral_replay` replays the seeds (ctest fuzz_collateral_replay).
set(TM_COLL_SEEDS ${CMAKE_CURRENT_LIST_DIR}/corpus/collateral
    ${CMAKE_SOURCE_DIR}/../shared/testdata/sgx ${CMAKE_SOURCE_DIR}/../shared/testdata/tdx)
if(TMQTT_FUZZ)
  file(GLOB TM_COLL_FUZZ_SRCS ${CMAKE_SOURCE_DIR}/src/attest/*.c)
  list(FILTER TM_COLL_FUZZ_SRCS EXCLUDE REGEX "/atls[^/]*\\.c$")
  add_executable(fuzz_collateral ${CMAKE_CURRENT_LIST_DIR}/fuzz_collateral.c ${TM_COLL_FUZZ_SRCS})
  target_link_libraries(fuzz_collateral PRIVATE OpenSSL::Crypto)
  target_compile_options(fuzz_collateral PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(fuzz_collateral PRIVATE -fsanitize=fuzzer,address,undefined)
  set(TM_COLL_WORK ${CMAKE_CURRENT_BINARY_DIR}/corpus-collateral)
  file(MAKE_DIRECTORY ${TM_COLL_WORK})
  add_test(NAME fuzz_collateral_smoke
           COMMAND fuzz_collateral -max_total_time=20 -timeout=10 -max_len=20000 ${TM_COLL_WORK}
                   ${TM_COLL_SEEDS})
elseif(TARGET tmqtt_collateral_fetch)
  add_executable(fuzz_collateral_replay ${CMAKE_CURRENT_LIST_DIR}/fuzz_collateral.c)
  target_compile_definitions(fuzz_collateral_replay PRIVATE TM_FUZZ_REPLAY)
  target_link_libraries(fuzz_collateral_replay PRIVATE tmqtt_collateral_fetch)
  add_test(NAME fuzz_collateral_replay COMMAND fuzz_collateral_replay ${TM_COLL_SEEDS})
endif()
