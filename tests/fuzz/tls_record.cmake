# Fuzz target for the server's TLS 1.3 record reader (src/net/tls_record.c).
# Seeds: corpus/tls_record, what a real OpenSSL client sends after the
# handshake with its traffic secret in front, and items-mode inputs whose
# records the harness seals (make_tls_record_seeds DIR writes them again;
# not run by the build).
#  - TMQTT_FUZZ=ON (clang): libFuzzer `fuzz_tls_record` with tls_record.c
#    instrumented; ctest `fuzz_tls_record_smoke` (20 s from the seeds).
#  - otherwise: `fuzz_tls_record_replay` replays the seeds (ctest fuzz_tls_record_replay).
set(TM_TLSREC_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/tls_record)
add_executable(make_tls_record_seeds ${CMAKE_CURRENT_LIST_DIR}/make_tls_record_seeds.c)
target_link_libraries(make_tls_record_seeds PRIVATE OpenSSL::SSL OpenSSL::Crypto)
if(TMQTT_FUZZ)
  add_executable(fuzz_tls_record ${CMAKE_CURRENT_LIST_DIR}/fuzz_tls_record.c
                 ${CMAKE_SOURCE_DIR}/src/net/tls_record.c)
  target_include_directories(fuzz_tls_record PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit)
  target_link_libraries(fuzz_tls_record PRIVATE OpenSSL::SSL OpenSSL::Crypto)
  target_compile_options(fuzz_tls_record PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(fuzz_tls_record PRIVATE -fsanitize=fuzzer,address,undefined)
  set(TM_TLSREC_WORK ${CMAKE_CURRENT_BINARY_DIR}/corpus-tls_record)
  file(MAKE_DIRECTORY ${TM_TLSREC_WORK})
  add_test(NAME fuzz_tls_record_smoke
           COMMAND fuzz_tls_record -max_total_time=20 -timeout=10 ${TM_TLSREC_WORK}
                   ${TM_TLSREC_CORPUS})
else()
  add_executable(fuzz_tls_record_replay ${CMAKE_CURRENT_LIST_DIR}/fuzz_tls_record.c)
  target_compile_definitions(fuzz_tls_record_replay PRIVATE TM_FUZZ_REPLAY)
  target_include_directories(fuzz_tls_record_replay PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit)
  target_link_libraries(fuzz_tls_record_replay PRIVATE tmqtt_net)
  add_test(NAME fuzz_tls_record_replay COMMAND fuzz_tls_record_replay ${TM_TLSREC_CORPUS})
endif()
