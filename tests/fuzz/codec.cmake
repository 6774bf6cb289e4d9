# Decode fuzzer for the MQTT codec (src/mqtt).
#  - TMQTT_FUZZ=ON (CMAKE_C_COMPILER=clang): libFuzzer target `fuzz_decode` built
#    with the codec sources instrumented, and ctest `fuzz_decode_smoke` (20 s on
#    the seed corpus; new inputs go to the build tree, never to the sources).
#  - otherwise: `fuzz_decode_replay`, the same checks as a plain program that
#    replays the seed corpus, registered as ctest `fuzz_decode_replay`.
set(TM_DECODE_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/decode)

if(TMQTT_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "TMQTT_FUZZ needs clang: -DCMAKE_C_COMPILER=clang")
  endif()
  file(GLOB TM_MQTT_FUZZ_SRCS ${CMAKE_SOURCE_DIR}/src/mqtt/*.c)
  add_executable(fuzz_decode ${CMAKE_CURRENT_LIST_DIR}/fuzz_decode.c ${TM_MQTT_FUZZ_SRCS})
  target_include_directories(fuzz_decode PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit)
  target_compile_options(fuzz_decode PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(fuzz_decode PRIVATE -fsanitize=fuzzer,address,undefined)
  set(TM_DECODE_WORK ${CMAKE_CURRENT_BINARY_DIR}/corpus-decode)
  file(MAKE_DIRECTORY ${TM_DECODE_WORK})
  add_test(NAME fuzz_decode_smoke
           COMMAND fuzz_decode -max_total_time=20 -timeout=10 ${TM_DECODE_WORK}
                   ${TM_DECODE_CORPUS})
else()
  add_executable(fuzz_decode_replay ${CMAKE_CURRENT_LIST_DIR}/fuzz_decode.c)
  target_compile_definitions(fuzz_decode_replay PRIVATE TM_FUZZ_REPLAY)
  target_include_directories(fuzz_decode_replay PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit)
  target_link_libraries(fuzz_decode_replay PRIVATE tmqtt_mqtt)
  add_test(NAME fuzz_decode_replay COMMAND fuzz_decode_replay ${TM_DECODE_CORPUS})
endif()
