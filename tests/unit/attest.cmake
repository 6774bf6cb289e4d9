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

# test_attest_tcb: the collateral / TCB-level logic on edited collateral. Its
# own copy of the attestation sources is built with TM_FUZZ_BYPASS_SIGNATURES
# (signature checks pass, as in the fuzzer; attest_int.h), so it must never
# link tmqtt_attest.
if(TARGET tmqtt_attest)
  file(GLOB TM_ATTEST_TCB_SRCS ${CMAKE_SOURCE_DIR}/src/attest/*.c)
  list(FILTER TM_ATTEST_TCB_SRCS EXCLUDE REGEX "/(atls|provider)[^/]*\\.c$")
  add_executable(test_attest_tcb ${CMAKE_CURRENT_LIST_DIR}/test_attest_tcb.c ${TM_ATTEST_TCB_SRCS})
  target_include_directories(test_attest_tcb PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(test_attest_tcb PRIVATE OpenSSL::Crypto)
  target_compile_definitions(test_attest_tcb PRIVATE TM_TESTDATA_DIR="${TM_ATTEST_TESTDATA}"
                             TM_FUZZ_BYPASS_SIGNATURES FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)
  add_test(NAME attest_tcb COMMAND test_attest_tcb)
endif()
