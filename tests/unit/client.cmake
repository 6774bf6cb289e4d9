# Client library: state machine against a scripted fake server (socketpair),
# and the tools against a real Mosquitto broker (plain, TLS, PSK).
add_executable(test_client ${CMAKE_CURRENT_LIST_DIR}/test_client.c)
target_link_libraries(test_client PRIVATE tmqtt_client)
target_include_directories(test_client PRIVATE ${CMAKE_CURRENT_LIST_DIR})
add_test(NAME client COMMAND test_client)
set_tests_properties(client PROPERTIES TIMEOUT 120)

find_program(TM_MOSQUITTO mosquitto PATHS /usr/sbin /usr/local/sbin)
if(TM_MOSQUITTO)
  add_test(NAME client_tools_vs_mosquitto
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/tools_vs_mosquitto.sh
                   $<TARGET_FILE:tmqtt-pub> $<TARGET_FILE:tmqtt-sub> ${TM_MOSQUITTO})
  set_tests_properties(client_tools_vs_mosquitto PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77)
endif()
