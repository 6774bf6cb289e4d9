# Attested TLS 1.3 extension (src/attest/atls.c): in-memory handshakes over
# BIO pairs with the sim provider; codec, appraisal and every rejection.
if(TARGET tmqtt_attest)
  add_executable(test_atls ${CMAKE_CURRENT_LIST_DIR}/test_atls.c)
  target_link_libraries(test_atls PRIVATE tmqtt_attest OpenSSL::SSL)
  add_test(NAME atls COMMAND test_atls)
endif()

# The machine in the middle for tests/integration/test_attested_tls.py (a real
# process between tmqtt-sub --attest and the broker). Plain OpenSSL: it is the
# attacker's code, not tmqtt's.
find_package(Threads REQUIRED)
add_executable(tmqtt-test-atls-relay ${CMAKE_SOURCE_DIR}/tests/integration/atls_relay.c)
target_link_libraries(tmqtt-test-atls-relay PRIVATE OpenSSL::SSL Threads::Threads)
