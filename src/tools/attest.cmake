# tmqtt-attest: inspect and appraise evidence files (thin main over tmqtt_attest).
if(TARGET tmqtt_attest)
  add_executable(tmqtt-attest ${CMAKE_CURRENT_LIST_DIR}/tmqtt-attest.c)
  target_link_libraries(tmqtt-attest PRIVATE tmqtt_attest)
endif()
