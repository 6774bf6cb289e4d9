# tmqtt-attest: inspect and appraise evidence files (thin main over tmqtt_attest),
# and `collateral fetch` (attest_collateral.c over tmqtt_collateral_fetch).
if(TARGET tmqtt_attest)
  add_executable(tmqtt-attest ${CMAKE_CURRENT_LIST_DIR}/tmqtt-attest.c
                 ${CMAKE_CURRENT_LIST_DIR}/attest_collateral.c)
  target_link_libraries(tmqtt-attest PRIVATE tmqtt_attest tmqtt_collateral_fetch)
endif()
