# WebSocket layer (src/net/stream_ws.c) over a scripted lower layer: short writes and
# "would block" every other call, frames split anywhere (test_ws.c).
add_executable(test_ws ${CMAKE_CURRENT_LIST_DIR}/test_ws.c)
target_link_libraries(test_ws PRIVATE tmqtt_net)
target_include_directories(test_ws PRIVATE ${CMAKE_CURRENT_LIST_DIR})
add_test(NAME ws COMMAND test_ws)
