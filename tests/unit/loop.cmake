# The event loop (src/net/loop.h) with the platform's backend (test_loop) and
# with the poll backend, the WASI one (test_loop_poll): the same test_loop.c.
foreach(variant "loop;tmqtt_net" "loop_poll;tmqtt_net_poll")
  list(GET variant 0 name)
  list(GET variant 1 lib)
  add_executable(test_${name} ${CMAKE_CURRENT_LIST_DIR}/test_loop.c)
  target_link_libraries(test_${name} PRIVATE ${lib})
  target_include_directories(test_${name} PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  add_test(NAME ${name} COMMAND test_${name})
endforeach()
