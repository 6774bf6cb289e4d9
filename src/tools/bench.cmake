# tmqtt-bench: the load generator of bench/ (scenarios and command line in
# tmqtt-bench.c, the measuring engine in bench_core.c, idle connections held by
# worker processes in bench_idle.c). Attestation goes through the tools' hook
# tm_tools_attest_setup (tmqtt_tools_common, from client-tools.cmake), and so
# does option parsing (tm_opts_parse). The `storm` scenario (bench_storm.c)
# runs its established pair in a thread.
find_package(Threads REQUIRED)
add_executable(tmqtt-bench ${CMAKE_CURRENT_LIST_DIR}/tmqtt-bench.c
                           ${CMAKE_CURRENT_LIST_DIR}/bench_core.c
                           ${CMAKE_CURRENT_LIST_DIR}/bench_idle.c
                           ${CMAKE_CURRENT_LIST_DIR}/bench_storm.c)
target_link_libraries(tmqtt-bench PRIVATE tmqtt_tools_common tmqtt_client m Threads::Threads)
