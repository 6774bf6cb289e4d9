# The server's own TLS 1.3 record layer (src/net/tls_record.c) and the
# takeover after the handshake (src/net/stream_tls.c), against a real
# OpenSSL client over a socketpair, in one thread.
add_executable(test_tls_record ${CMAKE_CURRENT_LIST_DIR}/test_tls_record.c)
target_link_libraries(test_tls_record PRIVATE tmqtt_net)
target_include_directories(test_tls_record PRIVATE ${CMAKE_CURRENT_LIST_DIR})
add_test(NAME tls_record COMMAND test_tls_record)
set_tests_properties(tls_record PROPERTIES TIMEOUT 120)
