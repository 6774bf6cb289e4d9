# Unit tests of the pure half of `tmqtt-attest collateral fetch`
# (src/attest/collateral_pcs.c). Test data comes from shared/testdata.
if(TARGET tmqtt_collateral_fetch)
  add_executable(test_collateral_pcs ${CMAKE_CURRENT_LIST_DIR}/test_collateral_pcs.c)
  target_link_libraries(test_collateral_pcs PRIVATE tmqtt_collateral_fetch)
  target_compile_definitions(test_collateral_pcs PRIVATE
                             TM_TESTDATA_DIR="${CMAKE_SOURCE_DIR}/../shared/testdata")
  add_test(NAME collateral_pcs COMMAND test_collateral_pcs)
endif()
