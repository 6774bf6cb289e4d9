# Unit tests of the attestation library (src/attest). Test data comes from
# shared/testdata next to the checkout.
if(TARGET tmqtt_attest)
  set(TM_ATTEST_TESTDATA "${CMAKE_SOURCE_DIR}/../shared/testdata")
  foreach(t dcap json sim policy provider snp)
    add_executable(test_attest_${t} ${CMAKE_CURRENT_LIST_DIR}/test_attest_${t}.c)
    target_link_libraries(test_attest_${t} PRIVATE tmqtt_attest)
    target_compile_definitions(test_attest_${t} PRIVATE TM_TESTDATA_DIR="${TM_ATTEST_TESTDATA}")
    add_test(NAME attest_${t} COMMAND test_attest_${t})
  endforeach()
  if(TARGET tmqtt-attest)
    add_test(NAME attest_tool
             COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/test_attest_tool.sh $<TARGET_FILE:tmqtt-attest>
                     ${TM_ATTEST_TESTDATA})
  endif()
endif()
