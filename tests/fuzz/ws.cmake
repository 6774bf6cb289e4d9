# Fuzz target for the WebSocket listener's parsers (src/net/ws_http.c: request
# heads and the upgrade decision; src/net/ws_frame.c: frames decoded in place,
# whole and in chunks, which must agree).
#  - TMQTT_FUZZ=ON (clang): libFuzzer `fuzz_ws`; ctest `fuzz_ws_smoke` (30 s
#    from the seeds; new inputs go to the build tree).
#  - otherwise: `fuzz_ws_replay` replays the seeds (ctest fuzz_ws_replay).
set(TM_WS_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/ws)
set(TM_WS_FUZZ_SRCS ${CMAKE_SOURCE_DIR}/src/net/ws_http.c ${CMAKE_SOURCE_DIR}/src/net/ws_frame.c)
if(TMQTT_FUZZ)
  add_executable(fuzz_ws ${CMAKE_CURRENT_LIST_DIR}/fuzz_ws.c ${TM_WS_FUZZ_SRCS})
  target_link_libraries(fuzz_ws PRIVATE OpenSSL::Crypto)
  target_compile_options(fuzz_ws PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(fuzz_ws PRIVATE -fsanitize=fuzzer,address,undefined)
  set(TM_WS_WORK ${CMAKE_CURRENT_BINARY_DIR}/corpus-ws)
  file(MAKE_DIRECTORY ${TM_WS_WORK})
  add_test(NAME fuzz_ws_smoke
           COMMAND fuzz_ws -max_total_time=30 -timeout=10 -max_len=4096 ${TM_WS_WORK} ${TM_WS_CORPUS})
  set_tests_properties(fuzz_ws_smoke PROPERTIES TIMEOUT 120)
else()
  add_executable(fuzz_ws_replay ${CMAKE_CURRENT_LIST_DIR}/fuzz_ws.c ${TM_WS_FUZZ_SRCS})
  target_compile_definitions(fuzz_ws_replay PRIVATE TM_FUZZ_REPLAY)
  target_link_libraries(fuzz_ws_replay PRIVATE OpenSSL::Crypto)
  add_test(NAME fuzz_ws_replay COMMAND fuzz_ws_replay ${TM_WS_CORPUS})
endif()
