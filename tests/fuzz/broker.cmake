# Fuzz target for the whole broker engine (src/broker, through broker.h):
# scripts of connections, packets and clock steps (fuzz_broker.c).
#  - TMQTT_FUZZ=ON (clang): libFuzzer `fuzz_broker` with the engine, the codec
#    and the attestation library instrumented; ctest `fuzz_broker_smoke`
#    (bounded time from the seeds; new inputs go to the build tree).
#  - otherwise: `fuzz_broker_replay` replays the seeds (ctest fuzz_broker_replay).
set(TM_BROKER_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/broker)
if(TMQTT_FUZZ)
  file(GLOB TM_BROKER_FUZZ_SRCS ${CMAKE_SOURCE_DIR}/src/broker/*.c ${CMAKE_SOURCE_DIR}/src/mqtt/*.c
                                ${CMAKE_SOURCE_DIR}/src/attest/*.c)
  list(FILTER TM_BROKER_FUZZ_SRCS EXCLUDE REGEX "/(main|service|passwd_main|db_main|bridge_link)\\.c$|_wasi\\.c$")
  add_executable(fuzz_broker ${CMAKE_CURRENT_LIST_DIR}/fuzz_broker.c ${TM_BROKER_FUZZ_SRCS})
  target_link_libraries(fuzz_broker PRIVATE OpenSSL::SSL OpenSSL::Crypto)
  target_compile_options(fuzz_broker PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(fuzz_broker PRIVATE -fsanitize=fuzzer,address,undefined)
  set(TM_BROKER_WORK ${CMAKE_CURRENT_BINARY_DIR}/corpus-broker)
  file(MAKE_DIRECTORY ${TM_BROKER_WORK})
  add_test(NAME fuzz_broker_smoke
           COMMAND fuzz_broker -max_total_time=60 -timeout=10 -max_len=8192 ${TM_BROKER_WORK}
                   ${TM_BROKER_CORPUS})
  set_tests_properties(fuzz_broker_smoke PROPERTIES TIMEOUT 300)
else()
  add_executable(fuzz_broker_replay ${CMAKE_CURRENT_LIST_DIR}/fuzz_broker.c)
  target_compile_definitions(fuzz_broker_replay PRIVATE TM_FUZZ_REPLAY)
  target_link_libraries(fuzz_broker_replay PRIVATE tmqtt_broker)
  add_test(NAME fuzz_broker_replay COMMAND fuzz_broker_replay ${TM_BROKER_CORPUS})
endif()
