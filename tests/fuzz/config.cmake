# Fuzz target for the configuration parser (src/broker/config.c, fuzz_config.c).
#  - TMQTT_FUZZ=ON (clang): libFuzzer `fuzz_config`, ctest `fuzz_config_smoke`
#    (bounded time from the seeds; new inputs go to the build tree).
#  - otherwise: `fuzz_config_replay` replays the seeds (ctest fuzz_config_replay).
set(TM_CONFIG_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/config)
if(TMQTT_FUZZ)
  file(GLOB TM_CONFIG_FUZZ_SRCS ${CMAKE_SOURCE_DIR}/src/mqtt/*.c)
  add_executable(fuzz_config ${CMAKE_CURRENT_LIST_DIR}/fuzz_config.c
                 ${CMAKE_SOURCE_DIR}/src/broker/config.c ${CMAKE_SOURCE_DIR}/src/broker/log.c
                 ${TM_CONFIG_FUZZ_SRCS})
  target_link_libraries(fuzz_config PRIVATE OpenSSL::Crypto)
  target_compile_options(fuzz_config PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(fuzz_config PRIVATE -fsanitize=fuzzer,address,undefined)
  set(TM_CONFIG_WORK ${CMAKE_CURRENT_BINARY_DIR}/corpus-config)
  file(MAKE_DIRECTORY ${TM_CONFIG_WORK})
  add_test(NAME fuzz_config_smoke
           COMMAND fuzz_config -max_total_time=30 -timeout=10 -max_len=4096
                   -dict=${CMAKE_CURRENT_LIST_DIR}/config.dict ${TM_CONFIG_WORK} ${TM_CONFIG_CORPUS})
  set_tests_properties(fuzz_config_smoke PROPERTIES TIMEOUT 300)
else()
  add_executable(fuzz_config_replay ${CMAKE_CURRENT_LIST_DIR}/fuzz_config.c)
  target_compile_definitions(fuzz_config_replay PRIVATE TM_FUZZ_REPLAY)
  target_include_directories(fuzz_config_replay PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(fuzz_config_replay PRIVATE tmqtt_broker)
  add_test(NAME fuzz_config_replay COMMAND fuzz_config_replay ${TM_CONFIG_CORPUS})
endif()
