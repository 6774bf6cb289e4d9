# Key-attested evidence (+key formats) below the TLS layer: codec, attestation
# keys, appraisal and its cache, the keyring's rotation, the providers'
# latency_ms knob against fake Gramine / configfs-tsm trees.
if(TARGET tmqtt_attest)
  add_executable(test_keyatt ${CMAKE_CURRENT_LIST_DIR}/test_keyatt.c)
  target_link_libraries(test_keyatt PRIVATE tmqtt_attest)
  target_compile_definitions(test_keyatt PRIVATE
                             TM_TESTDATA_DIR="${CMAKE_SOURCE_DIR}/../shared/testdata")
  add_test(NAME keyatt COMMAND test_keyatt)
endif()
