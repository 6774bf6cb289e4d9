# tmqtt-pub / tmqtt-sub: thin mains over src/client; options in tools_common.c.
add_library(tmqtt_tools_common STATIC ${CMAKE_CURRENT_LIST_DIR}/tools_common.c)
target_link_libraries(tmqtt_tools_common PUBLIC tmqtt_client)
add_executable(tmqtt-pub ${CMAKE_CURRENT_LIST_DIR}/tmqtt-pub.c)
target_link_libraries(tmqtt-pub PRIVATE tmqtt_tools_common)
add_executable(tmqtt-sub ${CMAKE_CURRENT_LIST_DIR}/tmqtt-sub.c)
target_link_libraries(tmqtt-sub PRIVATE tmqtt_tools_common)
