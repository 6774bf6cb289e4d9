# Fuzz target for key-attested evidence (src/attest/keyatt.c): the
# KeyAttestedEvidence parser and the +key appraisal, with and without the
# cache of appraised platform evidence.
#  - TMQTT_FUZZ=ON (clang): libFuzzer `fuzz_keyatt`, ctest `fuzz_keyatt_smoke`
#    (20 s from the seeds; new inputs go to the build tree).
#  - otherwise: `fuzz_keyatt_replay` replays the seeds and their prefixes.
# Seeds (corpus/keyatt): byte 0 selects the format, then sim+key evidence made
# with `tmqtt-attest sim-quote --key-attested` (see corpus/keyatt/README).
set(TM_KEYATT_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/keyatt)
if(TMQTT_FUZZ)
  file(GLOB TM_KEYATT_FUZZ_SRCS ${CMAKE_SOURCE_DIR}/src/attest/*.c)
  list(FILTER TM_KEYATT_FUZZ_SRCS EXCLUDE REGEX "/atls[^/]*\\.c$")
  add_executable(fuzz_keyatt ${CMAKE_CURRENT_LIST_DIR}/fuzz_keyatt.c ${TM_KEYATT_FUZZ_SRCS})
  target_link_libraries(fuzz_keyatt PRIVATE OpenSSL::Crypto)
  target_compile_options(fuzz_keyatt PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(fuzz_keyatt PRIVATE -fsanitize=fuzzer,address,undefined)
  set(TM_KEYATT_WORK ${CMAKE_CURRENT_BINARY_DIR}/corpus-keyatt)
  file(MAKE_DIRECTORY ${TM_KEYATT_WORK})
  add_test(NAME fuzz_keyatt_smoke
           COMMAND fuzz_keyatt -max_total_time=20 -timeout=10 -max_len=20000
                   ${TM_KEYATT_WORK} ${TM_KEYATT_CORPUS})
elseif(TARGET tmqtt_attest)
  add_executable(fuzz_keyatt_replay ${CMAKE_CURRENT_LIST_DIR}/fuzz_keyatt.c)
  target_compile_definitions(fuzz_keyatt_replay PRIVATE TM_FUZZ_REPLAY)
  target_link_libraries(fuzz_keyatt_replay PRIVATE tmqtt_attest)
  add_test(NAME fuzz_keyatt_replay COMMAND fuzz_keyatt_replay ${TM_KEYATT_CORPUS})
endif()
